//! Windows' diagnostics sources. `sysinfo` reads memory, processes (with
//! their CPU time from `GetProcessTimes`), disks and network counters; CPU
//! usage comes from `GetSystemTimes` (`sysinfo`'s CPU refresh needs the
//! performance counters, PDH, which are not everywhere), routes and
//! resolvers from IP Helper, services from the Service Control Manager
//! and a pending restart from the registry.
//!
//! Each source is a thin call here (`diag_cpu`, `diag_network`,
//! `diag_services`, `diag_registry`) whose result is turned into snapshot
//! parts by the pure functions of `crate::diag::windows`, which are
//! tested on every system on recorded inputs.

use std::path::{Path, PathBuf};

use sprijin_proto::message::diag::{Routes, Snapshot};

use super::{diag_cpu, diag_network, diag_registry, diag_services};
use crate::diag::folders;
use crate::diag::probes::SlowReadings;
use crate::diag::windows::{cpu, network, reboot, services};

/// `sysinfo`'s CPU usage needs PDH: measured here instead.
pub const SYSINFO_CPU_USAGE: bool = false;

/// `sysinfo`'s sensors need WMI and an administrator: not read.
pub const SYSINFO_SENSORS: bool = false;

/// What each sample reads beyond `sysinfo`.
#[derive(Default)]
pub struct Readings {
    times: Option<cpu::SystemTimes>,
    usage_percent: Option<f32>,
    routes: Option<Routes>,
}

impl Readings {
    pub fn new() -> Readings {
        Readings::default()
    }

    pub fn sample(&mut self, _mount_points: &[String], _boot_time_secs: u64) {
        let now = diag_cpu::system_times();
        if let (Some(before), Some(after)) = (self.times, now) {
            self.usage_percent = cpu::busy_percent(before, after).or(self.usage_percent);
        }
        if now.is_some() {
            self.times = now;
        }
        self.routes = match (diag_network::routes(), diag_network::adapters()) {
            (Some(rows), adapters) => Some(network::default_routes(
                &rows,
                &adapters.unwrap_or_default(),
            )),
            (None, _) => None,
        };
    }

    /// CPU usage measured here, cores as Windows counts them, and routes.
    pub fn fill(&self, s: &mut Snapshot) {
        if let Some(usage) = self.usage_percent {
            s.cpu.usage_percent = usage;
        }
        // Per-core figures would need PDH; an empty list is honest.
        s.cpu.per_core_percent.clear();
        if s.cpu.logical_cores == 0 {
            s.cpu.logical_cores = std::thread::available_parallelism()
                .ok()
                .and_then(|n| u32::try_from(n.get()).ok())
                .unwrap_or(0);
        }
        s.routes = self.routes.clone();
    }
}

/// Windows does not count inodes.
pub fn inodes(_mount_point: &Path) -> (u64, u64) {
    (0, 0)
}

/// The DNS servers of the adapters that are up.
pub fn resolvers() -> Vec<String> {
    diag_network::adapters()
        .map(|a| network::resolvers(&a))
        .unwrap_or_default()
}

/// Stopped automatic services and a pending restart.
pub fn slow_readings(slow: &mut SlowReadings) {
    slow.services =
        diag_services::records().map(|records| sprijin_proto::message::diag::Services {
            stopped_automatic: services::stopped_automatic(&records),
            ..Default::default()
        });
    slow.pending_reboot = Some(reboot::reasons(&diag_registry::reboot_marks()));
}

/// The person's temporary files, Windows' own, and update downloads.
pub fn folders_to_measure() -> Vec<(String, PathBuf)> {
    let mut out = vec![(folders::USER_TEMP.to_string(), std::env::temp_dir())];
    if let Some(root) = std::env::var_os("SystemRoot") {
        let root = PathBuf::from(root);
        out.push(("Windows' temporary files".to_string(), root.join("Temp")));
        out.push((
            "downloaded Windows updates".to_string(),
            root.join("SoftwareDistribution").join("Download"),
        ));
    }
    out
}

/// `s` as a NUL-terminated UTF-16 string for the API.
pub(super) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Longest string read from a pointer the API gave.
pub(super) const MAX_WIDE_CHARS: usize = 32 * 1024;

/// The NUL-terminated UTF-16 string at `p`, at most [`MAX_WIDE_CHARS`]
/// long; empty for a null pointer.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated UTF-16 string (or at
/// least [`MAX_WIDE_CHARS`] readable units).
pub(super) unsafe fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller promises the string is readable up to its NUL or
    // the bound, and `len` never passes either.
    while len < MAX_WIDE_CHARS && unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` units before the NUL were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}
