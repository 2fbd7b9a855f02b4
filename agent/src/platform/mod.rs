//! Everything about the agent that differs by operating system, one module
//! per system: `linux`, `macos` and `windows`, with what Linux and macOS
//! share in `unix`. Each system module offers the same names, re-exported
//! here, so session, consent, audit and catalog code never needs a `cfg`.

#[cfg(unix)]
mod unix;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;

// Calling Windows' APIs needs unsafe code; each block says why it is sound.
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows;
#[cfg(windows)]
pub use windows::*;
