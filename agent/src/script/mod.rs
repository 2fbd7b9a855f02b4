//! Repair scripts: catalog verification and the runner.
