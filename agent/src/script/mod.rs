//! Repair scripts: catalog verification, why a run did not start, and the
//! runner.

pub mod catalog_memory;
pub mod not_run;
mod pump;
pub mod runner;
