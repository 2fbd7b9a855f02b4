//! Diagnostics messages: a snapshot of the machine's state and the findings
//! the agent's rules drew from it.
//!
//! The agent builds a [`Snapshot`] from its background sampler, runs its
//! rules over it to get [`Finding`]s, and sends both to the console inside a
//! [`DiagReport`]. The same types are printed as JSON by
//! `sprijin-agent diag --json` and by the console's `--json` mode, so they
//! stay plain: no flattening, no untagged or internally tagged enums, no
//! skipped fields and no maps. That keeps them decodable by bincode (which
//! cannot skip or guess fields) and keeps the JSON field set fixed.
//!
//! Units are carried in field names (`_bytes`, `_secs`, `_ms`, `_percent`,
//! `_celsius`), so the JSON reads without a manual. Times are Unix time.

use serde::{Deserialize, Serialize};

/// One snapshot together with the findings drawn from it: what the agent
/// answers to a diagnostics request and what `diag --json` prints.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct DiagReport {
    pub snapshot: Snapshot,
    pub findings: Vec<Finding>,
}

/// The machine's state at one moment.
///
/// A default snapshot (`taken_at_ms == 0`) means "nothing sampled yet".
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// When the newest sample was taken, Unix milliseconds.
    pub taken_at_ms: u64,
    pub host: Host,
    pub cpu: Cpu,
    pub memory: Memory,
    pub swap: Swap,
    pub disks: Vec<Disk>,
    pub networks: Vec<NetworkInterface>,
    pub processes: Processes,
    /// Empty when the machine reports no sensors (common in virtual machines).
    pub temperatures: Vec<Temperature>,
    /// Names of people with an open login session, sorted, each once. Empty
    /// when the system does not say.
    pub users: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Host {
    pub name: String,
    /// Distribution or product name, e.g. "Ubuntu" or "Windows".
    pub os_name: String,
    pub os_version: String,
    pub kernel: String,
    /// CPU architecture, e.g. "x86_64" or "aarch64".
    pub arch: String,
    pub uptime_secs: u64,
    pub boot_time_secs: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Cpu {
    pub model: String,
    /// `None` when the system does not tell physical cores apart.
    pub physical_cores: Option<u32>,
    pub logical_cores: u32,
    /// Share of all logical cores in use, 0 to 100.
    pub usage_percent: f32,
    /// Each logical core's use, 0 to 100, in the system's order.
    pub per_core_percent: Vec<f32>,
    pub load_average: LoadAverage,
}

/// Run-queue length averaged over 1, 5 and 15 minutes. All zero where the
/// system has no such notion.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// What new work can still get without swapping; the number that matters
    /// for "is memory running out".
    pub available_bytes: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Swap {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Disk {
    pub mount_point: String,
    /// The device or source the file system is mounted from, e.g. "/dev/sda1".
    pub device: String,
    /// File system type, e.g. "ext4" or "tmpfs".
    pub file_system: String,
    pub kind: DiskKind,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub removable: bool,
    pub read_only: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskKind {
    Hdd,
    Ssd,
    #[default]
    Unknown,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct NetworkInterface {
    pub name: String,
    /// Each address with its prefix length, e.g. "192.168.1.20/24".
    pub addresses: Vec<String>,
    /// "00:00:00:00:00:00" when the interface has none.
    pub mac: String,
    /// Counters since the interface came up.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors_in: u64,
    pub errors_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Processes {
    pub count: u32,
    pub zombies: u32,
    /// Busiest first; a bounded number of entries.
    pub top_cpu: Vec<ProcessInfo>,
    /// Largest resident memory first; a bounded number of entries.
    pub top_memory: Vec<ProcessInfo>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
    /// Arguments joined by spaces, shortened when very long.
    pub command: String,
    /// `None` when the owner cannot be resolved to a name.
    pub user: Option<String>,
    /// Share of one core: a process keeping two cores busy shows 200.
    pub cpu_percent: f32,
    /// Resident memory.
    pub memory_bytes: u64,
    pub start_time_secs: u64,
    /// As the system names it, e.g. "Runnable", "Sleeping", "Zombie".
    pub status: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Temperature {
    pub label: String,
    pub celsius: f32,
    /// The sensor's own critical mark, where it reports one.
    pub critical_celsius: Option<f32>,
}

/// How much a finding matters. Ordered so that `Critical` is the greatest:
/// sort descending to list the most severe first.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; not a fault by itself.
    Info,
    /// Likely to cause trouble; look at it.
    Warning,
    /// Causing trouble now or about to.
    Critical,
}

impl Severity {
    /// Lower-case name for people and logs: "info", "warning", "critical".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that looks wrong, said plainly, with the numbers behind it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Finding {
    /// Short and stable, names the rule: "disk-nearly-full".
    pub id: String,
    pub severity: Severity,
    /// One line a person understands: "Disk / is 98% full".
    pub title: String,
    pub evidence: Vec<Evidence>,
    /// What it is about: a mount point, a pid, an interface, a sensor.
    pub subject: Option<String>,
    /// The id of a catalog script that addresses it, where one fits.
    pub script: Option<String>,
}

/// One labelled number behind a finding, already formatted for people.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub label: String,
    pub value: String,
}

impl Evidence {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Evidence {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// A full snapshot of a plausible machine, for the tests of everything that
/// reads one.
#[cfg(test)]
pub(crate) fn sample_snapshot() -> Snapshot {
    const GIB: u64 = 1 << 30;
    Snapshot {
        taken_at_ms: 1_700_000_000_000,
        host: Host {
            name: "desk-12".into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            kernel: "6.1.0-18-amd64".into(),
            arch: "x86_64".into(),
            uptime_secs: 4 * 86_400 + 3 * 3_600 + 59,
            boot_time_secs: 0,
        },
        cpu: Cpu {
            model: "Example CPU".into(),
            physical_cores: Some(4),
            logical_cores: 8,
            usage_percent: 12.5,
            per_core_percent: vec![12.5; 8],
            load_average: LoadAverage {
                one: 1.0,
                five: 0.5,
                fifteen: 0.25,
            },
        },
        memory: Memory {
            total_bytes: 16 * GIB,
            used_bytes: 4 * GIB,
            available_bytes: 12 * GIB,
        },
        swap: Swap {
            total_bytes: 2 * GIB,
            used_bytes: GIB / 2,
        },
        disks: vec![Disk {
            mount_point: "/".into(),
            device: "/dev/sda1".into(),
            file_system: "ext4".into(),
            total_bytes: 100 * GIB,
            available_bytes: 2 * GIB,
            ..Disk::default()
        }],
        networks: vec![NetworkInterface {
            name: "eth0".into(),
            addresses: vec!["192.168.1.20/24".into()],
            bytes_in: 3 * GIB,
            ..NetworkInterface::default()
        }],
        processes: Processes {
            count: 120,
            zombies: 1,
            top_cpu: vec![ProcessInfo {
                pid: 4242,
                name: "spin".into(),
                command: "spin --forever".into(),
                user: Some("ana".into()),
                cpu_percent: 99.5,
                memory_bytes: 3 * 1024 * 1024,
                start_time_secs: 0,
                status: "Runnable".into(),
            }],
            top_memory: vec![],
        },
        temperatures: vec![Temperature {
            label: "Package id 0".into(),
            celsius: 61.0,
            critical_celsius: Some(100.0),
        }],
        users: vec!["ana".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DiagReport {
        DiagReport {
            snapshot: sample_snapshot(),
            findings: vec![Finding {
                id: "disk-nearly-full".into(),
                severity: Severity::Warning,
                title: "Disk / is 60% full".into(),
                evidence: vec![Evidence::new("used", "60%")],
                subject: Some("/".into()),
                script: None,
            }],
        }
    }

    #[test]
    fn report_survives_bincode_round_trip() {
        let report = sample();
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&report, config).unwrap();
        let (back, used): (DiagReport, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, report);
    }

    #[test]
    fn critical_is_the_most_severe() {
        assert!(Severity::Critical > Severity::Warning);
        assert!(Severity::Warning > Severity::Info);
        let mut all = vec![Severity::Warning, Severity::Critical, Severity::Info];
        all.sort_by(|a, b| b.cmp(a));
        assert_eq!(all, [Severity::Critical, Severity::Warning, Severity::Info]);
    }
}
