//! The agent: runs on the machine that needs help. It collects diagnostics,
//! asks the person for consent, verifies the technician's signed catalog,
//! runs approved scripts and keeps a hash-chained audit log.
//!
//! `session` drives one sharing session; `face` shows the person what
//! happens and asks them (at the terminal or in a window); `consent` reads
//! answers at the terminal; `diag` samples the machine and draws findings;
//! `script` runs approved scripts;
//! `audit` records every decision before it takes effect; `identity` decides
//! how the technician's name is shown; `folder` makes and syncs the folders
//! that hold the agent's files; `relays` gets the code from the first relay
//! that answers and keeps it until a technician claims it; `platform`
//! holds what differs by operating system. Unsafe code is refused
//! everywhere but in `platform::windows`, where Windows' APIs are called.
#![deny(unsafe_code)]

pub mod audit;
pub mod config;
pub mod consent;
pub mod diag;
pub mod face;
pub mod folder;
pub mod identity;
pub mod platform;
pub mod relays;
pub mod script;
pub mod selfhelp;
pub mod session;
