//! Message families, one file each.
pub mod control;
pub mod diag;
pub mod script;
pub mod session;
