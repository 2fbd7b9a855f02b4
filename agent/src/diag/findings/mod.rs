//! Findings: rules that read a snapshot and say, in plain words and with the
//! numbers, what looks wrong.
//!
//! Each rule is a plain function of a [`Snapshot`] and the [`Thresholds`],
//! so it can be tested on a hand-made snapshot. [`evaluate`] runs every rule
//! in [`RULES`] and lists the findings most severe first. A rule says
//! nothing when its data is missing (no swap, no sensors, no interfaces
//! listed): silence means "nothing wrong seen", never a guess.
//!
//! Where a catalog script addresses a finding, the finding names it by id,
//! chosen in `fixes` for the platform the snapshot came from (so a Windows
//! machine is never offered a Linux script); the console offers it, and
//! the person still approves every run.
//!
//! The rules live by subject, one file each: `disk` (space, inodes,
//! deleted files held open, read-only mounts), `memory` (memory, swap,
//! out-of-memory kills), `cpu` (usage, load, temperature), `processes`
//! (hogs, zombies, open-file limits, stuck processes), `network`
//! (interface errors, addresses, routes, name resolution), `services`
//! (failed units, stopped automatic services, a pending restart, the
//! clock, uptime) and `trends` (what the watcher saw over time: restart
//! loops, a disk filling, stalls, group limits, the package manager).
//! This file holds the thresholds, the list of rules, and which causes
//! explain which symptoms.

use sprijin_proto::catalog::Platform;
use sprijin_proto::message::diag::{Evidence, Finding, Snapshot};

mod cpu;
mod disk;
pub mod fixes;
mod memory;
mod network;
mod processes;
mod services;
mod trends;

pub use cpu::{cpu_saturated, high_temperature, load_above_cores};
pub use disk::{
    deleted_files_hold_space, disk_nearly_full, inodes_exhausted, read_only_file_system,
};
pub use fixes::Fixes;
pub use memory::{heavy_swapping, memory_nearly_exhausted, recent_oom_kills};
pub use network::{name_resolution_failing, network_errors, no_default_route, no_network_address};
pub use processes::{
    many_zombies, open_file_limit, process_cpu_hog, process_memory_hog, stuck_processes,
};
pub use services::{
    clock_not_synchronized, clock_off_from_relay, failed_units, long_uptime, reboot_pending,
    stopped_services,
};
pub use trends::{disk_filling, group_limits, package_manager, restart_loop, stalls};

pub(crate) const GIB: u64 = 1 << 30;

/// Longest command line quoted as evidence; enough to recognise a program.
pub(crate) const EVIDENCE_COMMAND_CHARS: usize = 160;

/// Every threshold the rules use, in one place. Percentages are 0 to 100.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// A file system this full (used share) is a warning...
    pub disk_warning_percent: f64,
    /// ...and this full is critical...
    pub disk_critical_percent: f64,
    /// ...as is one past the warning mark with less than this left.
    pub disk_critical_free_bytes: u64,
    /// Memory in use (total less available) as a share of total.
    pub memory_warning_percent: f64,
    pub memory_critical_percent: f64,
    /// Swap in use as a share of swap size.
    pub swap_warning_percent: f64,
    pub swap_critical_percent: f64,
    /// Use of all cores together.
    pub cpu_warning_percent: f32,
    pub cpu_critical_percent: f32,
    /// One process's use of one core (a process can pass 100 on several).
    pub process_cpu_percent: f32,
    /// One process's resident memory as a share of total memory.
    pub process_memory_percent: f64,
    /// Zombie processes counted at once.
    pub zombie_count: u32,
    /// Five-minute load average per logical core.
    pub load_per_core_warning: f64,
    pub load_per_core_critical: f64,
    /// Time since boot worth mentioning (pending updates, slow leaks).
    pub uptime_secs: u64,
    /// Sensor readings; a sensor's own critical mark also counts as critical.
    pub temperature_warning_celsius: f32,
    pub temperature_critical_celsius: f32,
    /// An interface is reported when it has at least this many errors...
    pub network_error_count: u64,
    /// ...and they are at least this share of its packets.
    pub network_error_percent: f64,
    /// Inodes in use as a share of a file system's inodes.
    pub inode_warning_percent: f64,
    pub inode_critical_percent: f64,
    /// A process holding deleted files is reported when they take at least
    /// this much...
    pub deleted_open_bytes: u64,
    /// ...or at least this share of their file system's size.
    pub deleted_open_percent: f64,
    /// Open descriptors as a share of a process's soft limit.
    pub open_files_warning_percent: f64,
    pub open_files_critical_percent: f64,
    /// Time in uninterruptible sleep, seen without a break, worth naming.
    pub stuck_secs: u64,
    /// Out-of-memory kills this recent are reported.
    pub oom_recent_secs: u64,
    /// Mount points that should be writable: "/" itself, and each of the
    /// others with everything mounted below it.
    pub writable_mounts: Vec<String>,
    /// This clock this far from the relay's (either way) is a warning...
    pub clock_offset_warning_secs: u64,
    /// ...and this far critical: sign-ins (Kerberos allows 5 minutes) and
    /// certificates start to fail.
    pub clock_offset_critical_secs: u64,
    /// A measured folder (temporary files, update downloads) holding at
    /// least this share of its disk is named as where the space went.
    pub folder_share_percent: f64,
    /// A program ending this many times a minute under one parent is in a
    /// restart loop.
    pub restarts_per_minute: u64,
    /// A file system full within this long at the rate it fills is a
    /// warning...
    pub filling_warning_secs: u64,
    /// ...and within this long critical.
    pub filling_critical_secs: u64,
    /// Work waiting this share of the last 10 s (memory, disk) is a
    /// warning...
    pub stall_warning_percent: f64,
    /// ...and all work waiting at once this share is critical.
    pub stall_critical_percent: f64,
    /// Work waiting for the CPU this share of the last 10 s is named.
    pub cpu_stall_percent: f64,
    /// A group slowed by its memory ceiling or CPU limit this many times
    /// while watched is named.
    pub group_throttle_hits: u64,
    /// The package manager's lock held this long is named: an update
    /// holds it for minutes, one stuck at a question holds it for ever.
    pub lock_held_secs: u64,
    /// Whose catalog scripts the findings name: the platform the snapshot
    /// came from.
    pub platform: Platform,
}

impl Thresholds {
    /// The scripts findings name on [`Thresholds::platform`].
    pub fn fixes(&self) -> &'static Fixes {
        fixes::for_platform(self.platform)
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            disk_warning_percent: 90.0,
            disk_critical_percent: 97.0,
            disk_critical_free_bytes: GIB,
            memory_warning_percent: 90.0,
            memory_critical_percent: 97.0,
            swap_warning_percent: 50.0,
            swap_critical_percent: 80.0,
            cpu_warning_percent: 90.0,
            cpu_critical_percent: 98.0,
            process_cpu_percent: 80.0,
            process_memory_percent: 40.0,
            zombie_count: 20,
            load_per_core_warning: 1.0,
            load_per_core_critical: 2.0,
            uptime_secs: 30 * 86_400,
            temperature_warning_celsius: 85.0,
            temperature_critical_celsius: 95.0,
            network_error_count: 100,
            network_error_percent: 1.0,
            inode_warning_percent: 90.0,
            inode_critical_percent: 97.0,
            deleted_open_bytes: GIB,
            deleted_open_percent: 10.0,
            open_files_warning_percent: 90.0,
            open_files_critical_percent: 98.0,
            stuck_secs: 60,
            oom_recent_secs: 86_400,
            writable_mounts: ["/", "/home", "/var", "/srv", "/tmp", "/opt"]
                .into_iter()
                .map(String::from)
                .collect(),
            clock_offset_warning_secs: 60,
            clock_offset_critical_secs: 300,
            folder_share_percent: 5.0,
            restarts_per_minute: 10,
            filling_warning_secs: 3_600,
            filling_critical_secs: 600,
            stall_warning_percent: 10.0,
            stall_critical_percent: 20.0,
            cpu_stall_percent: 50.0,
            group_throttle_hits: 100,
            lock_held_secs: 600,
            platform: fixes::this_platform(),
        }
    }
}

/// A rule: reads a snapshot, returns what it finds (often nothing).
pub type Rule = fn(&Snapshot, &Thresholds) -> Vec<Finding>;

/// Every rule [`evaluate`] runs, in the order equal-severity findings are
/// listed.
pub const RULES: &[Rule] = &[
    read_only_file_system,
    disk_filling,
    disk_nearly_full,
    inodes_exhausted,
    deleted_files_hold_space,
    recent_oom_kills,
    stalls,
    memory_nearly_exhausted,
    heavy_swapping,
    restart_loop,
    group_limits,
    cpu_saturated,
    process_cpu_hog,
    process_memory_hog,
    many_zombies,
    load_above_cores,
    high_temperature,
    network_errors,
    no_network_address,
    no_default_route,
    name_resolution_failing,
    open_file_limit,
    stuck_processes,
    failed_units,
    stopped_services,
    package_manager,
    reboot_pending,
    clock_not_synchronized,
    clock_off_from_relay,
    long_uptime,
];

/// Causes and the symptoms they explain: (cause, symptom, whether the two
/// must be about the same subject, such as one file system).
const CAUSES: &[(&str, &str, bool)] = &[
    ("disk-filling", "disk-nearly-full", true),
    ("restart-loop", "cpu-saturated", false),
    ("restart-loop", "load-above-cores", false),
    ("restart-loop", "cpu-stall", false),
    ("memory-thrash", "memory-nearly-exhausted", false),
    ("memory-thrash", "heavy-swapping", false),
];

/// Runs every rule over the snapshot; the most severe findings come
/// first, and a cause comes before the symptom it explains, which points
/// at it.
pub fn evaluate(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let mut all: Vec<Finding> = RULES.iter().flat_map(|rule| rule(s, t)).collect();
    // A cause is at least as severe as what it explains, and the symptom
    // names it.
    for &(cause, symptom, same_subject) in CAUSES {
        let pairs: Vec<(usize, usize)> = all
            .iter()
            .enumerate()
            .filter(|(_, f)| f.id == symptom)
            .filter_map(|(si, sf)| {
                let ci = all
                    .iter()
                    .position(|c| c.id == cause && (!same_subject || c.subject == sf.subject))?;
                Some((ci, si))
            })
            .collect();
        for (ci, si) in pairs {
            all[ci].severity = all[ci].severity.max(all[si].severity);
            let title = all[ci].title.clone();
            all[si].evidence.push(Evidence::new("see first", title));
        }
    }
    // Stable: equal severities keep the rules' order, where causes come
    // before their symptoms.
    all.sort_by_key(|f| std::cmp::Reverse(f.severity));
    all
}

#[cfg(test)]
pub(crate) mod testing {
    //! A hand-made healthy snapshot and small helpers shared by the rules' tests.
    use sprijin_proto::message::diag::{
        Cpu, Disk, Finding, Host, LoadAverage, Memory, NameResolution, NetworkInterface,
        ProcessInfo, Processes, ResolutionOutcome, Routes, Services, Snapshot, Swap, Temperature,
    };

    pub(crate) use super::GIB;
    pub const MIB: u64 = 1 << 20;
    pub const NOW_SECS: u64 = 1_700_000_000;

    /// A healthy machine: every rule stays quiet on it, so a test changes
    /// one reading and sees exactly one rule answer.
    pub fn quiet() -> Snapshot {
        Snapshot {
            taken_at_ms: NOW_SECS * 1000,
            host: Host {
                name: "desk-12".into(),
                os_name: "Debian GNU/Linux".into(),
                os_version: "12".into(),
                kernel: "6.1.0".into(),
                arch: "x86_64".into(),
                uptime_secs: 3 * 86_400,
                boot_time_secs: NOW_SECS - 3 * 86_400,
            },
            cpu: Cpu {
                model: "Example CPU".into(),
                physical_cores: Some(2),
                logical_cores: 4,
                usage_percent: 10.0,
                per_core_percent: vec![10.0; 4],
                load_average: LoadAverage {
                    one: 0.5,
                    five: 0.4,
                    fifteen: 0.3,
                },
            },
            memory: Memory {
                total_bytes: 16 * GIB,
                used_bytes: 4 * GIB,
                available_bytes: 12 * GIB,
            },
            swap: Swap {
                total_bytes: 2 * GIB,
                used_bytes: 0,
            },
            disks: vec![
                disk("/", 100 * GIB, 60 * GIB),
                disk("/home", 400 * GIB, 300 * GIB),
            ],
            networks: vec![
                NetworkInterface {
                    name: "lo".into(),
                    addresses: vec!["127.0.0.1/8".into(), "::1/128".into()],
                    ..NetworkInterface::default()
                },
                NetworkInterface {
                    name: "eth0".into(),
                    addresses: vec!["192.168.1.20/24".into(), "fe80::1/64".into()],
                    mac: "52:54:00:12:34:56".into(),
                    packets_in: 1_000_000,
                    packets_out: 800_000,
                    ..NetworkInterface::default()
                },
            ],
            processes: Processes {
                count: 200,
                zombies: 0,
                top_cpu: vec![process(100, "editor", 5.0, 300 * MIB)],
                top_memory: vec![process(101, "browser", 1.0, 2 * GIB)],
            },
            temperatures: vec![Temperature {
                label: "Package id 0".into(),
                celsius: 55.0,
                critical_celsius: Some(100.0),
            }],
            users: vec!["ana".into()],
            routes: Some(Routes {
                ipv4_default: vec!["via 192.168.1.1 on eth0".into()],
                ipv6_default: vec![],
            }),
            name_resolution: Some(NameResolution {
                name: "example.com".into(),
                resolvers: vec!["192.168.1.1".into()],
                outcome: ResolutionOutcome::Resolved,
                answered_by: Some("192.168.1.1".into()),
                elapsed_ms: 12,
                checked_at_ms: NOW_SECS * 1000,
            }),
            services: Some(Services::default()),
            clock_synchronized: Some(true),
            ..Snapshot::default()
        }
    }

    pub fn disk(mount_point: &str, total: u64, available: u64) -> Disk {
        Disk {
            mount_point: mount_point.into(),
            device: format!("/dev/{}", mount_point.len()),
            file_system: "ext4".into(),
            total_bytes: total,
            available_bytes: available,
            inodes_total: 1_000_000,
            inodes_free: 900_000,
            ..Disk::default()
        }
    }

    pub fn process(pid: u32, name: &str, cpu: f32, memory: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            name: name.into(),
            command: format!("/usr/bin/{name} --flag"),
            user: Some("ana".into()),
            cpu_percent: cpu,
            memory_bytes: memory,
            start_time_secs: NOW_SECS - 3_600,
            status: "Running".into(),
        }
    }

    /// The default thresholds, naming Linux's scripts.
    pub fn linux() -> super::Thresholds {
        super::Thresholds {
            platform: sprijin_proto::catalog::Platform::Linux,
            ..super::Thresholds::default()
        }
    }

    /// The default thresholds, naming Windows' scripts.
    pub fn windows() -> super::Thresholds {
        super::Thresholds {
            platform: sprijin_proto::catalog::Platform::Windows,
            ..super::Thresholds::default()
        }
    }

    pub fn ids(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    pub fn evidence<'a>(f: &'a Finding, label: &str) -> &'a str {
        f.evidence
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.as_str())
            .unwrap_or_else(|| panic!("no evidence {label:?} in {:?}", f.evidence))
    }

    pub fn only(f: Vec<Finding>) -> Finding {
        assert_eq!(f.len(), 1, "expected one finding, got {f:#?}");
        f.into_iter().next().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn quiet_machine_has_no_findings() {
        assert_eq!(evaluate(&quiet(), &linux()), vec![]);
    }

    #[test]
    fn empty_snapshot_has_no_findings() {
        // An unsampled snapshot must not read as "offline" or "out of memory".
        assert_eq!(evaluate(&Snapshot::default(), &linux()), vec![]);
    }

    // All together

    #[test]
    fn evaluate_lists_the_most_severe_first() {
        let mut s = quiet();
        s.host.uptime_secs = 400 * 86_400;
        s.disks[0] = disk("/", 100 * GIB, GIB / 10);
        s.cpu.usage_percent = 91.0;
        let f = evaluate(&s, &linux());
        assert_eq!(
            ids(&f),
            ["disk-nearly-full", "cpu-saturated", "long-uptime"]
        );
        assert!(f.windows(2).all(|w| w[0].severity >= w[1].severity));
    }

    #[test]
    fn a_cause_comes_before_its_symptom_which_points_at_it() {
        use sprijin_proto::message::diag::{Churn, GrowingFile, Growth, Trends};
        let mut s = quiet();
        // The disk is nearly full (critical) because a log grows (found
        // at warning), and the CPU is busy while a program restarts.
        s.disks[1] = disk("/home", 100 * GIB, GIB / 2);
        s.cpu.usage_percent = 99.0;
        s.trends = Some(Trends {
            growth: vec![Growth {
                mount_point: "/home".into(),
                available_bytes: GIB / 2,
                bytes_per_sec: 200_000,
                secs_to_full: 2_600,
                file: Some(GrowingFile {
                    path: "/home/ana/app.log".into(),
                    size_bytes: 90 * GIB,
                    bytes_per_sec: 200_000,
                    pid: 500,
                    process: "app".into(),
                }),
            }],
            churn: vec![Churn {
                name: "crashy".into(),
                deaths_per_minute: 30,
                parent_pid: 1,
                parent_name: "systemd".into(),
                ..Churn::default()
            }],
            ..Trends::default()
        });
        let f = evaluate(&s, &linux());
        assert_eq!(
            ids(&f),
            [
                "disk-filling",
                "disk-nearly-full",
                "restart-loop",
                "cpu-saturated"
            ]
        );
        assert_eq!(f[0].severity, f[1].severity, "the cause is raised");
        assert_eq!(evidence(&f[1], "see first"), f[0].title);
        assert_eq!(evidence(&f[3], "see first"), f[2].title);
    }

    #[test]
    fn a_cause_on_another_disk_explains_nothing() {
        use sprijin_proto::message::diag::{Growth, Trends};
        let mut s = quiet();
        s.disks[0] = disk("/", 100 * GIB, GIB / 2);
        s.trends = Some(Trends {
            growth: vec![Growth {
                mount_point: "/home".into(),
                available_bytes: GIB,
                bytes_per_sec: 500_000,
                secs_to_full: 2_000,
                file: None,
            }],
            ..Trends::default()
        });
        let f = evaluate(&s, &linux());
        assert_eq!(ids(&f), ["disk-nearly-full", "disk-filling"]);
        assert!(f[0].evidence.iter().all(|e| e.label != "see first"));
    }

    #[test]
    fn thresholds_are_honoured_when_changed() {
        let mut s = quiet();
        s.cpu.usage_percent = 50.0;
        let t = Thresholds {
            cpu_warning_percent: 50.0,
            ..Thresholds::default()
        };
        assert_eq!(ids(&evaluate(&s, &t)), ["cpu-saturated"]);
    }
}
