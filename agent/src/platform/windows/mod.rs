//! The agent on Windows.

pub mod diag;
mod diag_cpu;
mod diag_network;
mod diag_registry;
mod diag_services;
