//! The agent: runs on the machine that needs help. It collects diagnostics,
//! asks the person for consent, verifies the technician's signed catalog,
//! runs approved scripts and keeps a hash-chained audit log.
#![forbid(unsafe_code)]

pub mod audit;
pub mod diag;
pub mod script;
