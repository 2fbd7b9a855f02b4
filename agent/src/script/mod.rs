//! Repair scripts: catalog verification and the runner.

pub mod runner;
