//! Repair scripts: catalog verification and the runner.

pub mod catalog_memory;
pub mod runner;
