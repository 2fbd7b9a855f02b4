//! macOS's diagnostics sources: `sysinfo` covers the snapshot; inodes and
//! resolvers come from what macOS shares with Linux (`statvfs`,
//! `/etc/resolv.conf`). Nothing here has run on a Mac; it is compiled and
//! linked only.

use std::path::{Path, PathBuf};

use sprijin_proto::message::diag::Snapshot;

use crate::diag::probes::SlowReadings;

pub use crate::platform::unix::diag::inodes;

/// `sysinfo`'s CPU usage works here.
pub const SYSINFO_CPU_USAGE: bool = true;

/// `sysinfo`'s sensors work here (SMC).
pub const SYSINFO_SENSORS: bool = true;

/// Nothing is read beyond `sysinfo` on each sample.
#[derive(Default)]
pub struct Readings;

impl Readings {
    pub fn new() -> Readings {
        Readings
    }

    pub fn sample(&mut self, _mount_points: &[String], _boot_time_secs: u64) {}

    pub fn fill(&self, _s: &mut Snapshot) {}
}

/// The resolvers of `/etc/resolv.conf`, which macOS keeps current.
pub fn resolvers() -> Vec<String> {
    crate::platform::unix::diag::resolvers(Path::new(crate::platform::unix::diag::RESOLV_CONF))
}

/// No slow sources of its own.
pub fn slow_readings(_slow: &mut SlowReadings) {}

/// No folders measured.
pub fn folders_to_measure() -> Vec<(String, PathBuf)> {
    Vec::new()
}
