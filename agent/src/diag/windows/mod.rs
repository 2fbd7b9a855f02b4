//! The pure half of the Windows diagnostics source: what Windows' APIs
//! return, as plain data, and the functions that turn it into parts of a
//! snapshot. The API calls themselves are in `crate::platform::windows`;
//! everything here is compiled and unit-tested on every system, on inputs
//! recorded from those APIs, since no test machine can make every fault
//! real.
//!
//! `cpu` (`GetSystemTimes` counters to a busy share), `services` (the
//! Service Control Manager's records to the automatic services that are
//! stopped), `reboot` (the registry's marks of a pending restart) and
//! `network` (IP Helper's routes and adapters to default routes and
//! resolvers).

pub mod cpu;
pub mod network;
pub mod reboot;
#[cfg(test)]
mod recorded;
pub mod services;
