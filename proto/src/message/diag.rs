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
    /// Repairs the person ran alone since the previous session, oldest
    /// first, from the agent's audit log.
    #[serde(default)]
    pub person_runs: Vec<PersonRun>,
}

/// A repair the person started alone, and how it went.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonRun {
    /// When it started, RFC 3339 UTC.
    pub started_at: String,
    pub script: String,
    pub title: String,
    /// How it ended, in words ("exited with status 0"); "did not finish"
    /// when the agent stopped during it.
    pub status: String,
    /// What the check after the run found: `Some(true)` when the finding
    /// it was meant to fix was gone.
    pub fixed: Option<bool>,
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
    /// Processes keeping deleted files open, largest total first; a bounded
    /// number of entries. The space stays used until they close the files.
    #[serde(default)]
    pub deleted_open: Vec<DeletedOpenFiles>,
    /// Processes using at least half of their open-file limit, closest to
    /// the limit first; a bounded number of entries.
    #[serde(default)]
    pub open_files: Vec<OpenFileUse>,
    /// Processes seen in uninterruptible sleep (state D) on every sample for
    /// a while, longest first; a bounded number of entries.
    #[serde(default)]
    pub stuck_processes: Vec<StuckProcess>,
    /// Default routes; `None` when the routing table could not be read.
    #[serde(default)]
    pub routes: Option<Routes>,
    /// The latest name resolution check; `None` until one has finished.
    #[serde(default)]
    pub name_resolution: Option<NameResolution>,
    /// Service manager state; `None` when systemd does not run here.
    #[serde(default)]
    pub services: Option<Services>,
    /// Whether the kernel's clock is kept synchronised (by NTP or the
    /// like); `None` when the system cannot tell.
    #[serde(default)]
    pub clock_synchronized: Option<bool>,
    /// Processes the kernel killed for lack of memory since boot, newest
    /// last; a bounded number of entries. Empty when the kernel log cannot
    /// be read.
    #[serde(default)]
    pub oom_kills: Vec<OomKill>,
    /// Why the system waits for a restart (Windows: servicing, updates,
    /// file renames); empty when nothing waits, `None` when the system has
    /// no such notion or it could not be read.
    #[serde(default)]
    pub pending_reboot: Option<Vec<String>>,
    /// This machine's clock against the relay's, as measured when the
    /// code was handed out; `None` outside a session.
    #[serde(default)]
    pub relay_clock: Option<RelayClock>,
    /// Sizes of folders that commonly fill a disk (temporary files, update
    /// downloads), largest first; empty where none are measured.
    #[serde(default)]
    pub folders: Vec<FolderSize>,
    /// What changed over the last minutes, from the agent's watcher (one
    /// reading a second); `None` where nothing watched.
    #[serde(default)]
    pub trends: Option<Trends>,
    /// The package manager's state (dpkg, rpm); `None` where there is none.
    #[serde(default)]
    pub packages: Option<PackageState>,
}

/// What the watcher saw over time.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Trends {
    /// How long it has watched, up to its history (ten minutes).
    pub watched_secs: u64,
    /// Processes started in the last minute (the kernel's fork counter),
    /// scaled to a minute when it has watched less.
    pub forks_per_minute: u64,
    /// Programs dying and being started again, most deaths first.
    pub churn: Vec<Churn>,
    /// File systems filling at the current rate, soonest full first.
    pub growth: Vec<Growth>,
    /// Pressure stall information; `None` where the kernel has none.
    pub pressure: Option<Pressure>,
    /// Control groups held at a limit, most hits first.
    pub limits: Vec<GroupLimit>,
}

/// One program that keeps dying under the same parent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Churn {
    /// The program that dies.
    pub name: String,
    /// How many of its processes were seen to end in the last minute (one
    /// that starts and ends between two readings is not seen).
    pub deaths_seen: u64,
    /// The same as a rate a minute, over what was watched of the minute.
    pub deaths_per_minute: u64,
    pub parent_pid: u32,
    pub parent_name: String,
    /// The parent's command line, cleaned.
    pub parent_command: String,
    /// The service manager's unit, where the parent is systemd and the
    /// program belongs to one.
    pub unit: Option<String>,
    /// The last exit status seen, where the system says it.
    pub last_exit: Option<String>,
}

/// One file system filling up, with the file that grows fastest on it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Growth {
    pub mount_point: String,
    pub available_bytes: u64,
    /// How fast its free space shrinks, bytes a second.
    pub bytes_per_sec: u64,
    /// At that rate, when it is full.
    pub secs_to_full: u64,
    /// The file growing fastest on it, with its writer; `None` when no open
    /// file was seen growing.
    pub file: Option<GrowingFile>,
}

/// A file seen growing, and who writes it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct GrowingFile {
    pub path: String,
    pub size_bytes: u64,
    pub bytes_per_sec: u64,
    pub pid: u32,
    pub process: String,
}

/// Pressure stall information: the share of time work waited, over the
/// last 10 and 60 seconds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Pressure {
    pub cpu: Stall,
    pub memory: Stall,
    pub io: Stall,
    /// Who stalls most: control groups (where they report pressure) or
    /// processes (by page faults that read from disk), worst first.
    pub stalled: Vec<Stalled>,
}

/// One resource's stall shares, percent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Stall {
    /// Some task waited.
    pub some_avg10: f64,
    pub some_avg60: f64,
    /// Every task waited at once.
    pub full_avg10: f64,
    pub full_avg60: f64,
}

/// A group or process that stalls.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Stalled {
    /// "memory", "io" or "cpu".
    pub resource: String,
    /// A control group's path, a service name, or a process name and id.
    pub who: String,
    /// What was measured, for people: "memory stall 35% of the last 10 s",
    /// "410 page reads from disk a second".
    pub measure: String,
    /// For ordering: a share in percent, or a rate.
    pub weight: f64,
}

/// A control group held at one of its limits.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct GroupLimit {
    /// The group's path under the hierarchy, e.g. "/system.slice/cups.service".
    pub group: String,
    /// The service, where the group is one.
    pub unit: Option<String>,
    /// "pids", "memory" or "cpu".
    pub limit: String,
    /// The limit, for people: "64 processes", "512 MiB".
    pub value: String,
    /// How many times the limit was hit (or the group throttled) while
    /// watched.
    pub hits: u64,
    /// Which control group version the kernel gave (1 or 2).
    pub version: u8,
}

/// The package manager's state.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct PackageState {
    /// "dpkg" or "rpm".
    pub manager: String,
    /// An installation was cut off and left packages half configured.
    pub interrupted: bool,
    /// Locks held now, by whom.
    pub locks: Vec<LockHolder>,
}

/// A package manager's lock and the process holding it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct LockHolder {
    pub path: String,
    pub pid: u32,
    pub process: String,
    /// How long it has been held while watched, seconds.
    pub held_secs: u64,
}

/// This machine's clock compared with the relay's.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct RelayClock {
    /// This clock minus the relay's, in seconds: positive when this
    /// machine is ahead. Good to a second or two.
    pub offset_secs: i64,
    /// The relay it was compared with, `HOST:PORT`.
    pub relay: String,
}

/// How much one folder holds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct FolderSize {
    pub path: String,
    /// What it is, for people: "your temporary files".
    pub label: String,
    pub bytes: u64,
    pub files: u64,
    /// False when the count stopped at its bound: the folder holds at
    /// least this much.
    pub complete: bool,
}

/// One process holding files that were deleted but are still open.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct DeletedOpenFiles {
    pub pid: u32,
    pub name: String,
    /// The mount point of the file system holding the largest of them.
    pub mount_point: String,
    /// How many deleted files it keeps open.
    pub files: u32,
    /// Their size together.
    pub bytes: u64,
    /// The largest one's former path.
    pub largest_path: String,
}

/// Open file descriptors of one process against its soft limit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct OpenFileUse {
    pub pid: u32,
    pub name: String,
    pub open: u64,
    /// The soft `RLIMIT_NOFILE` ("Max open files").
    pub soft_limit: u64,
}

/// A process in uninterruptible sleep, usually waiting on a disk or a
/// network file system that does not answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct StuckProcess {
    pub pid: u32,
    pub name: String,
    pub command: String,
    /// How long it has been seen in that state without a break.
    pub stuck_secs: u64,
}

/// Default routes as the kernel's routing tables list them.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Routes {
    /// IPv4 default routes, e.g. "via 192.168.1.1 on eth0".
    pub ipv4_default: Vec<String>,
    /// IPv6 default routes, e.g. "via fe80::1 on eth0".
    pub ipv6_default: Vec<String>,
}

/// The outcome of resolving one name through the configured resolvers.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct NameResolution {
    /// The name asked for.
    pub name: String,
    /// The resolvers configured (`nameserver` lines), in order.
    pub resolvers: Vec<String>,
    pub outcome: ResolutionOutcome,
    /// The resolver that gave the answer, when one did.
    pub answered_by: Option<String>,
    /// How long the answer took, or the whole wait when none came.
    pub elapsed_ms: u64,
    /// When the check finished, Unix milliseconds.
    pub checked_at_ms: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolutionOutcome {
    /// The name resolved to at least one address.
    Resolved,
    /// A resolver answered that the name does not exist.
    NameDoesNotExist,
    /// A resolver answered, but with an error of its own (e.g. it could not
    /// reach the servers behind it).
    ResolverFailed,
    /// No configured resolver answered in time.
    #[default]
    NoResolverAnswers,
    /// No resolver is configured at all.
    NoResolverConfigured,
}

/// What the service manager says.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Services {
    /// Units in the failed state, e.g. "cups.service", sorted.
    pub failed_units: Vec<String>,
    /// Services set to start automatically that are not running (Windows'
    /// Service Control Manager), sorted by name.
    #[serde(default)]
    pub stopped_automatic: Vec<StoppedService>,
}

/// A service that should run but does not.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct StoppedService {
    /// The service's key name, e.g. "Spooler".
    pub name: String,
    /// Its name for people, e.g. "Print Spooler".
    pub display_name: String,
    /// The exit code it last stopped with; 0 when it stopped cleanly.
    pub exit_code: u32,
}

/// A process the kernel's out-of-memory killer ended.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct OomKill {
    pub pid: u32,
    pub name: String,
    /// When, Unix seconds (from the kernel's time since boot).
    pub at_secs: u64,
    /// Its resident memory when killed, where the kernel said.
    pub rss_bytes: u64,
    /// Whether a memory limit of a group of processes (a cgroup) was hit
    /// rather than the whole machine running out.
    pub limited_group: bool,
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
    /// Inodes (file and folder entries) in all and still free; 0 when the
    /// file system does not count them.
    #[serde(default)]
    pub inodes_total: u64,
    #[serde(default)]
    pub inodes_free: u64,
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
    /// Values this finding gives the script's parameters marked
    /// `from = "finding"` (name, value), so the person can run it alone.
    #[serde(default)]
    pub params: Vec<(String, String)>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DiagReport {
        DiagReport {
            snapshot: Snapshot {
                taken_at_ms: 1_700_000_000_000,
                host: Host {
                    name: "desk-12".into(),
                    os_name: "Debian GNU/Linux".into(),
                    os_version: "12".into(),
                    kernel: "6.1.0".into(),
                    arch: "x86_64".into(),
                    uptime_secs: 3600,
                    boot_time_secs: 1_699_996_400,
                },
                cpu: Cpu {
                    model: "Example CPU".into(),
                    physical_cores: None,
                    logical_cores: 2,
                    usage_percent: 12.5,
                    per_core_percent: vec![10.0, 15.0],
                    load_average: LoadAverage {
                        one: 0.5,
                        five: 0.25,
                        fifteen: 0.1,
                    },
                },
                disks: vec![Disk {
                    mount_point: "/".into(),
                    total_bytes: 100,
                    available_bytes: 40,
                    ..Disk::default()
                }],
                processes: Processes {
                    count: 1,
                    zombies: 0,
                    top_cpu: vec![ProcessInfo {
                        pid: 7,
                        user: Some("ana".into()),
                        ..ProcessInfo::default()
                    }],
                    top_memory: vec![],
                },
                temperatures: vec![Temperature {
                    label: "cpu".into(),
                    celsius: 50.0,
                    critical_celsius: Some(100.0),
                }],
                users: vec!["ana".into()],
                deleted_open: vec![DeletedOpenFiles {
                    pid: 9,
                    bytes: 6 << 20,
                    ..DeletedOpenFiles::default()
                }],
                routes: Some(Routes::default()),
                name_resolution: Some(NameResolution {
                    outcome: ResolutionOutcome::NameDoesNotExist,
                    answered_by: Some("10.0.0.53".into()),
                    ..NameResolution::default()
                }),
                services: Some(Services {
                    failed_units: vec!["cups.service".into()],
                    stopped_automatic: vec![StoppedService {
                        name: "Spooler".into(),
                        display_name: "Print Spooler".into(),
                        exit_code: 1067,
                    }],
                }),
                clock_synchronized: Some(false),
                oom_kills: vec![OomKill::default()],
                pending_reboot: Some(vec!["Windows Update".into()]),
                relay_clock: Some(RelayClock {
                    offset_secs: -400,
                    relay: "relay.example.org:7420".into(),
                }),
                folders: vec![FolderSize {
                    path: r"C:\Users\ana\AppData\Local\Temp".into(),
                    bytes: 5 << 30,
                    ..FolderSize::default()
                }],
                ..Snapshot::default()
            },
            person_runs: vec![PersonRun {
                started_at: "2026-12-05T01:42:21.890Z".into(),
                script: "clear-my-cache".into(),
                title: "Delete old files from your cache".into(),
                status: "exited with status 0".into(),
                fixed: Some(true),
            }],
            findings: vec![Finding {
                id: "disk-nearly-full".into(),
                severity: Severity::Warning,
                title: "Disk / is 60% full".into(),
                evidence: vec![Evidence::new("used", "60%")],
                subject: Some("/".into()),
                script: None,
                params: Vec::new(),
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
