//! Findings: rules that read a snapshot and say, in plain words and with the
//! numbers, what looks wrong.
//!
//! Each rule is a plain function of a [`Snapshot`] and the [`Thresholds`],
//! so it can be tested on a hand-made snapshot. [`evaluate`] runs every rule
//! in [`RULES`] and lists the findings most severe first. A rule says
//! nothing when its data is missing (no swap, no sensors, no interfaces
//! listed): silence means "nothing wrong seen", never a guess.
//!
//! Where a catalog script addresses a finding, the finding names it by id;
//! the console offers it, and the person still approves every run.

use std::net::IpAddr;

use sprijin_proto::diag_text::{human_bytes, human_duration, percent, shorten};
use sprijin_proto::message::diag::{
    Disk, Evidence, Finding, NetworkInterface, ProcessInfo, Severity, Snapshot,
};

/// Catalog script ids the rules suggest.
pub mod scripts {
    /// Lists the folders taking the most space under a mount point.
    pub const LARGEST_FOLDERS: &str = "largest-folders";
    /// Trims the system journal; for a full `/` or `/var`.
    pub const JOURNAL_VACUUM: &str = "journal-vacuum";
    /// Clears a user's cache folder; for a full home file system.
    pub const CLEAR_USER_CACHE: &str = "clear-user-cache";
    /// Ends one process by pid.
    pub const STOP_PROCESS: &str = "stop-process";
    /// Checks name resolution and reachability.
    pub const TEST_CONNECTIVITY: &str = "test-connectivity";
}

const GIB: u64 = 1 << 30;

/// Longest command line quoted as evidence; enough to recognise a program.
const EVIDENCE_COMMAND_CHARS: usize = 160;

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
        }
    }
}

/// A rule: reads a snapshot, returns what it finds (often nothing).
pub type Rule = fn(&Snapshot, &Thresholds) -> Vec<Finding>;

/// Every rule [`evaluate`] runs, in the order equal-severity findings are
/// listed.
pub const RULES: &[Rule] = &[
    disk_nearly_full,
    memory_nearly_exhausted,
    heavy_swapping,
    cpu_saturated,
    process_cpu_hog,
    process_memory_hog,
    many_zombies,
    load_above_cores,
    high_temperature,
    network_errors,
    no_network_address,
    long_uptime,
];

/// Runs every rule over the snapshot; the most severe findings come first.
pub fn evaluate(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let mut all: Vec<Finding> = RULES.iter().flat_map(|rule| rule(s, t)).collect();
    // Stable: equal severities keep the rules' order.
    all.sort_by_key(|f| std::cmp::Reverse(f.severity));
    all
}

/// File system types whose "fullness" means nothing: kernel interfaces,
/// read-only images, optical media. `tmpfs` is not among them: a full `/tmp`
/// or `/dev/shm` breaks programs like a full disk does.
const PSEUDO_FILE_SYSTEMS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse.lxcfs",
    "fuse.snapfuse",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tracefs",
    "udf",
];

/// A file system at or past the warning share. Critical when past the
/// critical share, or when past the warning share with under
/// `disk_critical_free_bytes` left (a small disk at 92% may have only
/// megabytes left, while a small disk at 50% is fine).
///
/// Bind mounts show one file system at several mount points; it is reported
/// once, under its shortest mount point.
pub fn disk_nearly_full(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let mut seen: Vec<&Disk> = Vec::new();
    let mut candidates: Vec<&Disk> = s
        .disks
        .iter()
        .filter(|d| d.total_bytes > 0 && !d.read_only)
        .filter(|d| !PSEUDO_FILE_SYSTEMS.contains(&d.file_system.as_str()))
        .collect();
    candidates.sort_by_key(|d| (d.mount_point.len(), d.mount_point.as_str()));
    for d in candidates {
        let same_file_system = |o: &&Disk| {
            o.device == d.device
                && o.file_system == d.file_system
                && o.total_bytes == d.total_bytes
                && o.available_bytes == d.available_bytes
        };
        if !seen.iter().any(same_file_system) {
            seen.push(d);
        }
    }

    let mut out = Vec::new();
    for d in seen {
        let free = d.available_bytes.min(d.total_bytes);
        let used = d.total_bytes - free;
        let used_percent = percent(used, d.total_bytes);
        if used_percent < t.disk_warning_percent {
            continue;
        }
        let severity =
            if used_percent >= t.disk_critical_percent || free < t.disk_critical_free_bytes {
                Severity::Critical
            } else {
                Severity::Warning
            };
        out.push(Finding {
            id: "disk-nearly-full".into(),
            severity,
            title: format!(
                "Disk {} is {}% full, {} free",
                d.mount_point,
                used_percent.floor(),
                human_bytes(free)
            ),
            evidence: vec![
                Evidence::new("mount point", &d.mount_point),
                Evidence::new("used", format!("{used_percent:.1}%")),
                Evidence::new("used size", human_bytes(used)),
                Evidence::new("free", human_bytes(free)),
                Evidence::new("size", human_bytes(d.total_bytes)),
                Evidence::new("file system", &d.file_system),
                Evidence::new("device", &d.device),
            ],
            subject: Some(d.mount_point.clone()),
            script: Some(disk_script(&d.mount_point).into()),
        });
    }
    out
}

/// The script that frees space where it most likely went.
fn disk_script(mount_point: &str) -> &'static str {
    let under = |root: &str| {
        mount_point == root
            || mount_point
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if mount_point == "/" || under("/var") {
        scripts::JOURNAL_VACUUM
    } else if under("/home") {
        scripts::CLEAR_USER_CACHE
    } else {
        scripts::LARGEST_FOLDERS
    }
}

/// Memory in use (total less what is still available) at or past the
/// warning share.
pub fn memory_nearly_exhausted(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let m = &s.memory;
    if m.total_bytes == 0 {
        return Vec::new();
    }
    let available = m.available_bytes.min(m.total_bytes);
    let used = m.total_bytes - available;
    let used_percent = percent(used, m.total_bytes);
    if used_percent < t.memory_warning_percent {
        return Vec::new();
    }
    let severity = if used_percent >= t.memory_critical_percent {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut evidence = vec![
        Evidence::new("used", format!("{used_percent:.1}%")),
        Evidence::new("available", human_bytes(available)),
        Evidence::new("total", human_bytes(m.total_bytes)),
    ];
    if let Some(top) = s.processes.top_memory.first() {
        evidence.push(Evidence::new(
            "largest process",
            format!(
                "{} (pid {}) {}",
                top.name,
                top.pid,
                human_bytes(top.memory_bytes)
            ),
        ));
    }
    vec![Finding {
        id: "memory-nearly-exhausted".into(),
        severity,
        title: format!(
            "Memory is {}% used, {} available",
            used_percent.floor(),
            human_bytes(available)
        ),
        evidence,
        subject: None,
        script: None,
    }]
}

/// Swap in use at or past the warning share of swap size: the machine has
/// been short of memory and is likely slow from paging.
pub fn heavy_swapping(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let w = &s.swap;
    if w.total_bytes == 0 {
        return Vec::new();
    }
    let used = w.used_bytes.min(w.total_bytes);
    let used_percent = percent(used, w.total_bytes);
    if used_percent < t.swap_warning_percent {
        return Vec::new();
    }
    let severity = if used_percent >= t.swap_critical_percent {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Finding {
        id: "heavy-swapping".into(),
        severity,
        title: format!(
            "Swap is {}% used: the machine is short of memory",
            used_percent.floor()
        ),
        evidence: vec![
            Evidence::new("swap used", format!("{used_percent:.1}%")),
            Evidence::new("swap used size", human_bytes(used)),
            Evidence::new("swap size", human_bytes(w.total_bytes)),
            Evidence::new("memory available", human_bytes(s.memory.available_bytes)),
        ],
        subject: None,
        script: None,
    }]
}

/// All cores together busy at or past the warning share.
pub fn cpu_saturated(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let c = &s.cpu;
    if c.usage_percent < t.cpu_warning_percent {
        return Vec::new();
    }
    let severity = if c.usage_percent >= t.cpu_critical_percent {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut evidence = vec![
        Evidence::new("usage", format!("{:.1}%", c.usage_percent)),
        Evidence::new("logical cores", c.logical_cores.to_string()),
        Evidence::new(
            "load average",
            format!(
                "{:.2} {:.2} {:.2}",
                c.load_average.one, c.load_average.five, c.load_average.fifteen
            ),
        ),
    ];
    if let Some(top) = s.processes.top_cpu.first() {
        evidence.push(Evidence::new(
            "busiest process",
            format!("{} (pid {}) {:.1}%", top.name, top.pid, top.cpu_percent),
        ));
    }
    vec![Finding {
        id: "cpu-saturated".into(),
        severity,
        title: format!("CPU is {:.0}% busy", c.usage_percent.floor()),
        evidence,
        subject: None,
        script: None,
    }]
}

/// Each process using at least the threshold share of one core.
pub fn process_cpu_hog(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.processes
        .top_cpu
        .iter()
        .filter(|p| p.cpu_percent >= t.process_cpu_percent)
        .map(|p| Finding {
            id: "process-cpu-hog".into(),
            severity: Severity::Warning,
            title: format!(
                "Process {} (pid {}) is using {:.0}% of a core",
                p.name,
                p.pid,
                p.cpu_percent.floor()
            ),
            evidence: process_evidence(
                s,
                p,
                Evidence::new("cpu", format!("{:.1}% of one core", p.cpu_percent)),
            ),
            subject: Some(p.pid.to_string()),
            script: Some(scripts::STOP_PROCESS.into()),
        })
        .collect()
}

/// Each process holding at least the threshold share of all memory.
pub fn process_memory_hog(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let total = s.memory.total_bytes;
    if total == 0 {
        return Vec::new();
    }
    s.processes
        .top_memory
        .iter()
        .filter(|p| percent(p.memory_bytes, total) >= t.process_memory_percent)
        .map(|p| {
            let share = percent(p.memory_bytes, total);
            Finding {
                id: "process-memory-hog".into(),
                severity: Severity::Warning,
                title: format!(
                    "Process {} (pid {}) holds {}% of memory",
                    p.name,
                    p.pid,
                    share.floor()
                ),
                evidence: process_evidence(
                    s,
                    p,
                    Evidence::new(
                        "memory",
                        format!(
                            "{} ({share:.1}% of {})",
                            human_bytes(p.memory_bytes),
                            human_bytes(total)
                        ),
                    ),
                ),
                subject: Some(p.pid.to_string()),
                script: Some(scripts::STOP_PROCESS.into()),
            }
        })
        .collect()
}

/// What a technician needs to recognise a process, plus the one measure
/// that made it a finding.
fn process_evidence(s: &Snapshot, p: &ProcessInfo, measure: Evidence) -> Vec<Evidence> {
    let mut evidence = vec![
        Evidence::new("pid", p.pid.to_string()),
        Evidence::new("name", &p.name),
        measure,
        Evidence::new("user", p.user.as_deref().unwrap_or("unknown")),
    ];
    if !p.command.is_empty() {
        evidence.push(Evidence::new(
            "command",
            shorten(&p.command, EVIDENCE_COMMAND_CHARS),
        ));
    }
    let now_secs = s.taken_at_ms / 1000;
    if p.start_time_secs > 0 && now_secs >= p.start_time_secs {
        evidence.push(Evidence::new(
            "running for",
            human_duration(now_secs - p.start_time_secs),
        ));
    }
    evidence
}

/// Zombies (finished processes nobody collected) at or past the threshold:
/// a parent program is misbehaving, and they can exhaust process ids.
pub fn many_zombies(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let p = &s.processes;
    if p.zombies < t.zombie_count {
        return Vec::new();
    }
    vec![Finding {
        id: "many-zombies".into(),
        severity: Severity::Warning,
        title: format!("{} zombie processes are waiting to be collected", p.zombies),
        evidence: vec![
            Evidence::new("zombies", p.zombies.to_string()),
            Evidence::new("processes", p.count.to_string()),
        ],
        subject: None,
        script: None,
    }]
}

/// The five-minute load average at or past the threshold per logical core:
/// more work is waiting than the cores can run, sustained rather than a spike.
pub fn load_above_cores(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let c = &s.cpu;
    if c.logical_cores == 0 {
        return Vec::new();
    }
    let cores = f64::from(c.logical_cores);
    let per_core = c.load_average.five / cores;
    if per_core < t.load_per_core_warning {
        return Vec::new();
    }
    let severity = if per_core >= t.load_per_core_critical {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Finding {
        id: "load-above-cores".into(),
        severity,
        title: format!(
            "Load {:.2} over 5 minutes is above the {} cores",
            c.load_average.five, c.logical_cores
        ),
        evidence: vec![
            Evidence::new(
                "load average",
                format!(
                    "{:.2} {:.2} {:.2}",
                    c.load_average.one, c.load_average.five, c.load_average.fifteen
                ),
            ),
            Evidence::new("logical cores", c.logical_cores.to_string()),
            Evidence::new("load per core", format!("{per_core:.2}")),
            Evidence::new("cpu usage", format!("{:.1}%", c.usage_percent)),
        ],
        subject: None,
        script: None,
    }]
}

/// Up for at least the threshold: worth a restart to apply updates and
/// clear slow leaks. Information, not a fault.
pub fn long_uptime(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let up = s.host.uptime_secs;
    if up < t.uptime_secs {
        return Vec::new();
    }
    vec![Finding {
        id: "long-uptime".into(),
        severity: Severity::Info,
        title: format!("Running for {} without a restart", human_duration(up)),
        evidence: vec![
            Evidence::new("uptime", human_duration(up)),
            Evidence::new("uptime seconds", up.to_string()),
            Evidence::new("boot time (unix)", s.host.boot_time_secs.to_string()),
        ],
        subject: None,
        script: None,
    }]
}

/// Each sensor at or past the warning temperature; critical at the sensor's
/// own critical mark or the critical threshold, whichever is lower.
pub fn high_temperature(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.temperatures
        .iter()
        .filter_map(|temp| {
            let critical_at = temp
                .critical_celsius
                .map_or(t.temperature_critical_celsius, |c| {
                    c.min(t.temperature_critical_celsius)
                });
            let severity = if temp.celsius >= critical_at {
                Severity::Critical
            } else if temp.celsius >= t.temperature_warning_celsius {
                Severity::Warning
            } else {
                return None;
            };
            let mut evidence = vec![
                Evidence::new("sensor", &temp.label),
                Evidence::new("temperature", format!("{:.1} °C", temp.celsius)),
            ];
            if let Some(c) = temp.critical_celsius {
                evidence.push(Evidence::new(
                    "sensor's critical mark",
                    format!("{c:.1} °C"),
                ));
            }
            Some(Finding {
                id: "high-temperature".into(),
                severity,
                title: format!("{} is at {:.0} °C", temp.label, temp.celsius.floor()),
                evidence,
                subject: Some(temp.label.clone()),
                script: None,
            })
        })
        .collect()
}

/// Each interface (loopback aside) with at least the threshold count of
/// errors that are also at least the threshold share of its packets: a bad
/// cable, port, driver or duplex setting.
pub fn network_errors(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.networks
        .iter()
        .filter(|n| !is_loopback(n))
        .filter_map(|n| {
            let errors = n.errors_in.saturating_add(n.errors_out);
            let packets = n.packets_in.saturating_add(n.packets_out);
            // Errored frames may not be counted as packets, so they are added
            // to the whole; this also keeps the share defined at 0 packets.
            let share = percent(errors, packets.saturating_add(errors));
            if errors < t.network_error_count || share < t.network_error_percent {
                return None;
            }
            Some(Finding {
                id: "network-errors".into(),
                severity: Severity::Warning,
                title: format!(
                    "Network interface {} has {} errors ({share:.1}% of packets)",
                    n.name, errors
                ),
                evidence: vec![
                    Evidence::new("interface", &n.name),
                    Evidence::new("errors in", n.errors_in.to_string()),
                    Evidence::new("errors out", n.errors_out.to_string()),
                    Evidence::new("packets in", n.packets_in.to_string()),
                    Evidence::new("packets out", n.packets_out.to_string()),
                    Evidence::new("error share", format!("{share:.2}%")),
                ],
                subject: Some(n.name.clone()),
                script: Some(scripts::TEST_CONNECTIVITY.into()),
            })
        })
        .collect()
}

/// No interface has an address that can reach another machine: loopback,
/// link-local (what is left when DHCP fails) and unspecified addresses do
/// not count. Says nothing when no interfaces were listed at all, since that
/// means the list could not be read.
pub fn no_network_address(s: &Snapshot, _t: &Thresholds) -> Vec<Finding> {
    if s.networks.is_empty() {
        return Vec::new();
    }
    let usable = s
        .networks
        .iter()
        .filter(|n| !is_loopback(n))
        .flat_map(|n| &n.addresses)
        .any(|a| parse_address(a).is_some_and(is_usable));
    if usable {
        return Vec::new();
    }
    let names: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    let addresses: Vec<String> = s
        .networks
        .iter()
        .filter(|n| !is_loopback(n))
        .flat_map(|n| {
            n.addresses
                .iter()
                .map(move |a| format!("{a} on {}", n.name))
        })
        .collect();
    vec![Finding {
        id: "no-network-address".into(),
        severity: Severity::Critical,
        title: "No network address: this machine cannot reach the network".into(),
        evidence: vec![
            Evidence::new("interfaces", names.join(", ")),
            Evidence::new(
                "addresses other than loopback",
                if addresses.is_empty() {
                    "none".to_string()
                } else {
                    addresses.join(", ")
                },
            ),
        ],
        subject: None,
        script: Some(scripts::TEST_CONNECTIVITY.into()),
    }]
}

fn is_loopback(n: &NetworkInterface) -> bool {
    // Loopback is named "lo" on Linux and "lo0" on the BSDs and macOS;
    // failing the name, an interface whose every address is loopback is one.
    n.name == "lo"
        || n.name == "lo0"
        || (!n.addresses.is_empty()
            && n.addresses
                .iter()
                .all(|a| parse_address(a).is_some_and(|ip| ip.is_loopback())))
}

/// "192.168.1.20/24" or a bare address to an address.
fn parse_address(s: &str) -> Option<IpAddr> {
    let addr = s.split_once('/').map_or(s, |(addr, _)| addr);
    addr.parse().ok()
}

fn is_usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_unspecified() || v4.is_link_local()),
        IpAddr::V6(v6) => {
            // fe80::/10; `is_unicast_link_local` is not stable on our minimum
            // Rust version.
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            !(v6.is_loopback() || v6.is_unspecified() || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::message::diag::{
        Cpu, Host, LoadAverage, Memory, Processes, Swap, Temperature,
    };

    const MIB: u64 = 1 << 20;
    const NOW_SECS: u64 = 1_700_000_000;

    /// A healthy machine: every rule stays quiet on it, so a test changes
    /// one reading and sees exactly one rule answer.
    fn quiet() -> Snapshot {
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
        }
    }

    fn disk(mount_point: &str, total: u64, available: u64) -> Disk {
        Disk {
            mount_point: mount_point.into(),
            device: format!("/dev/{}", mount_point.len()),
            file_system: "ext4".into(),
            total_bytes: total,
            available_bytes: available,
            ..Disk::default()
        }
    }

    fn process(pid: u32, name: &str, cpu: f32, memory: u64) -> ProcessInfo {
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

    fn ids(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    fn evidence<'a>(f: &'a Finding, label: &str) -> &'a str {
        f.evidence
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.as_str())
            .unwrap_or_else(|| panic!("no evidence {label:?} in {:?}", f.evidence))
    }

    fn only(f: Vec<Finding>) -> Finding {
        assert_eq!(f.len(), 1, "expected one finding, got {f:#?}");
        f.into_iter().next().unwrap()
    }

    #[test]
    fn quiet_machine_has_no_findings() {
        assert_eq!(evaluate(&quiet(), &Thresholds::default()), vec![]);
    }

    #[test]
    fn empty_snapshot_has_no_findings() {
        // An unsampled snapshot must not read as "offline" or "out of memory".
        assert_eq!(
            evaluate(&Snapshot::default(), &Thresholds::default()),
            vec![]
        );
    }

    // Disk

    #[test]
    fn disk_at_90_percent_is_a_warning_with_its_numbers() {
        let mut s = quiet();
        s.disks[1] = disk("/srv/data", 100 * GIB, 10 * GIB);
        let f = only(disk_nearly_full(&s, &Thresholds::default()));
        assert_eq!(f.id, "disk-nearly-full");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.as_deref(), Some("/srv/data"));
        assert_eq!(f.title, "Disk /srv/data is 90% full, 10.0 GiB free");
        assert_eq!(evidence(&f, "used"), "90.0%");
        assert_eq!(evidence(&f, "free"), "10.0 GiB");
        assert_eq!(evidence(&f, "size"), "100.0 GiB");
        assert_eq!(f.script.as_deref(), Some(scripts::LARGEST_FOLDERS));
    }

    #[test]
    fn disk_just_below_90_percent_is_quiet() {
        let mut s = quiet();
        s.disks[1] = disk("/srv/data", 1000 * GIB, 100 * GIB + 1);
        assert_eq!(disk_nearly_full(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn disk_at_97_percent_is_critical() {
        let mut s = quiet();
        s.disks[0] = disk("/", 1000 * GIB, 30 * GIB);
        let f = only(disk_nearly_full(&s, &Thresholds::default()));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.script.as_deref(), Some(scripts::JOURNAL_VACUUM));
        // Just below 97% with plenty left is still only a warning.
        s.disks[0] = disk("/", 1000 * GIB, 30 * GIB + 1);
        assert_eq!(
            only(disk_nearly_full(&s, &Thresholds::default())).severity,
            Severity::Warning
        );
    }

    #[test]
    fn small_disk_past_warning_with_under_a_gib_free_is_critical() {
        let mut s = quiet();
        s.disks[1] = disk("/boot", 10 * GIB - 1, GIB - 1);
        assert_eq!(
            only(disk_nearly_full(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
        s.disks[1] = disk("/boot", 10 * GIB, GIB);
        assert_eq!(
            only(disk_nearly_full(&s, &Thresholds::default())).severity,
            Severity::Warning
        );
        // Under a GiB free but far from full is not a finding at all.
        s.disks[1] = disk("/boot", GIB, GIB / 2);
        assert_eq!(disk_nearly_full(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn pseudo_read_only_and_empty_file_systems_are_ignored() {
        let mut s = quiet();
        let mut snap = disk("/snap/core/1", GIB, 0);
        snap.file_system = "squashfs".into();
        let mut cdrom = disk("/media/cdrom", GIB, 0);
        cdrom.read_only = true;
        s.disks.extend([snap, cdrom, disk("/sys/x", 0, 0)]);
        assert_eq!(disk_nearly_full(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn full_tmpfs_is_reported() {
        let mut s = quiet();
        let mut tmp = disk("/tmp", 8 * MIB, MIB / 8);
        tmp.file_system = "tmpfs".into();
        s.disks.push(tmp);
        let f = only(disk_nearly_full(&s, &Thresholds::default()));
        assert_eq!(f.subject.as_deref(), Some("/tmp"));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(evidence(&f, "file system"), "tmpfs");
    }

    #[test]
    fn bind_mounts_of_one_file_system_are_reported_once_under_the_shortest_path() {
        let mut s = quiet();
        let full = disk("/", 100 * GIB, GIB / 2);
        let mut hosts = full.clone();
        hosts.mount_point = "/etc/hosts".into();
        s.disks = vec![hosts, full];
        let f = only(disk_nearly_full(&s, &Thresholds::default()));
        assert_eq!(f.subject.as_deref(), Some("/"));
    }

    #[test]
    fn disk_scripts_follow_the_mount_point() {
        assert_eq!(disk_script("/"), scripts::JOURNAL_VACUUM);
        assert_eq!(disk_script("/var"), scripts::JOURNAL_VACUUM);
        assert_eq!(disk_script("/var/log"), scripts::JOURNAL_VACUUM);
        assert_eq!(disk_script("/home"), scripts::CLEAR_USER_CACHE);
        assert_eq!(disk_script("/home/ana"), scripts::CLEAR_USER_CACHE);
        assert_eq!(disk_script("/homework"), scripts::LARGEST_FOLDERS);
        assert_eq!(disk_script("/variable"), scripts::LARGEST_FOLDERS);
        assert_eq!(disk_script("/srv"), scripts::LARGEST_FOLDERS);
    }

    // Memory and swap

    #[test]
    fn memory_at_90_percent_used_is_a_warning() {
        let mut s = quiet();
        s.memory.available_bytes = 10 * GIB / 10;
        s.memory.total_bytes = 10 * GIB;
        let f = only(memory_nearly_exhausted(&s, &Thresholds::default()));
        assert_eq!(f.id, "memory-nearly-exhausted");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "used"), "90.0%");
        assert_eq!(evidence(&f, "available"), "1.0 GiB");
        assert_eq!(evidence(&f, "largest process"), "browser (pid 101) 2.0 GiB");
        assert_eq!(f.subject, None);
    }

    #[test]
    fn memory_just_below_90_percent_is_quiet() {
        let mut s = quiet();
        s.memory.total_bytes = 10 * GIB;
        s.memory.available_bytes = GIB + 1;
        assert_eq!(memory_nearly_exhausted(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn memory_at_97_percent_is_critical() {
        let mut s = quiet();
        s.memory.total_bytes = 100 * GIB;
        s.memory.available_bytes = 3 * GIB;
        assert_eq!(
            only(memory_nearly_exhausted(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn swap_half_used_is_a_warning_and_80_percent_critical() {
        let mut s = quiet();
        s.swap.total_bytes = 10 * GIB;
        s.swap.used_bytes = 5 * GIB;
        let f = only(heavy_swapping(&s, &Thresholds::default()));
        assert_eq!(f.id, "heavy-swapping");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "swap used"), "50.0%");
        assert_eq!(evidence(&f, "swap size"), "10.0 GiB");
        assert_eq!(evidence(&f, "memory available"), "12.0 GiB");
        s.swap.used_bytes = 8 * GIB;
        assert_eq!(
            only(heavy_swapping(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
        s.swap.used_bytes = 8 * GIB - 1;
        assert_eq!(
            only(heavy_swapping(&s, &Thresholds::default())).severity,
            Severity::Warning
        );
    }

    #[test]
    fn swap_just_below_half_or_absent_is_quiet() {
        let mut s = quiet();
        s.swap.used_bytes = GIB - 1;
        assert_eq!(heavy_swapping(&s, &Thresholds::default()), vec![]);
        s.swap = Swap::default();
        assert_eq!(heavy_swapping(&s, &Thresholds::default()), vec![]);
    }

    // CPU and load

    #[test]
    fn cpu_at_90_percent_is_a_warning_naming_the_busiest_process() {
        let mut s = quiet();
        s.cpu.usage_percent = 90.0;
        let f = only(cpu_saturated(&s, &Thresholds::default()));
        assert_eq!(f.id, "cpu-saturated");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "usage"), "90.0%");
        assert_eq!(evidence(&f, "busiest process"), "editor (pid 100) 5.0%");
        s.cpu.usage_percent = 98.0;
        assert_eq!(
            only(cpu_saturated(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn cpu_just_below_90_percent_is_quiet() {
        let mut s = quiet();
        s.cpu.usage_percent = 89.9;
        assert_eq!(cpu_saturated(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn process_at_80_percent_of_a_core_is_named_by_pid_and_name() {
        let mut s = quiet();
        s.processes
            .top_cpu
            .insert(0, process(4242, "spin", 80.0, MIB));
        let f = only(process_cpu_hog(&s, &Thresholds::default()));
        assert_eq!(f.id, "process-cpu-hog");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.as_deref(), Some("4242"));
        assert_eq!(f.title, "Process spin (pid 4242) is using 80% of a core");
        assert_eq!(evidence(&f, "pid"), "4242");
        assert_eq!(evidence(&f, "name"), "spin");
        assert_eq!(evidence(&f, "cpu"), "80.0% of one core");
        assert_eq!(evidence(&f, "user"), "ana");
        assert_eq!(evidence(&f, "command"), "/usr/bin/spin --flag");
        assert_eq!(evidence(&f, "running for"), "1h 0m");
        assert_eq!(f.script.as_deref(), Some(scripts::STOP_PROCESS));
    }

    #[test]
    fn process_just_below_80_percent_of_a_core_is_quiet() {
        let mut s = quiet();
        s.processes
            .top_cpu
            .insert(0, process(4242, "spin", 79.9, MIB));
        assert_eq!(process_cpu_hog(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn long_command_lines_are_shortened_in_evidence() {
        let mut s = quiet();
        let mut hog = process(4242, "spin", 100.0, MIB);
        hog.command = "x".repeat(500);
        s.processes.top_cpu = vec![hog];
        let f = only(process_cpu_hog(&s, &Thresholds::default()));
        assert_eq!(
            evidence(&f, "command").chars().count(),
            EVIDENCE_COMMAND_CHARS
        );
    }

    #[test]
    fn every_hogging_process_gets_its_own_finding() {
        let mut s = quiet();
        s.processes.top_cpu = vec![
            process(1, "a", 190.0, MIB),
            process(2, "b", 100.0, MIB),
            process(3, "c", 1.0, MIB),
        ];
        let f = process_cpu_hog(&s, &Thresholds::default());
        let subjects: Vec<_> = f.iter().map(|f| f.subject.as_deref()).collect();
        assert_eq!(subjects, [Some("1"), Some("2")]);
    }

    #[test]
    fn process_holding_40_percent_of_memory_is_named() {
        let mut s = quiet();
        s.memory.total_bytes = 10 * GIB;
        s.processes.top_memory[0].memory_bytes = 4 * GIB;
        let f = only(process_memory_hog(&s, &Thresholds::default()));
        assert_eq!(f.id, "process-memory-hog");
        assert_eq!(f.subject.as_deref(), Some("101"));
        assert_eq!(f.title, "Process browser (pid 101) holds 40% of memory");
        assert_eq!(evidence(&f, "memory"), "4.0 GiB (40.0% of 10.0 GiB)");
        assert_eq!(evidence(&f, "name"), "browser");
        assert_eq!(f.script.as_deref(), Some(scripts::STOP_PROCESS));
    }

    #[test]
    fn process_just_below_40_percent_of_memory_is_quiet() {
        let mut s = quiet();
        s.memory.total_bytes = 10 * GIB;
        s.processes.top_memory[0].memory_bytes = 4 * GIB - 1;
        assert_eq!(process_memory_hog(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn twenty_zombies_are_a_warning_nineteen_are_not() {
        let mut s = quiet();
        s.processes.zombies = 20;
        let f = only(many_zombies(&s, &Thresholds::default()));
        assert_eq!(f.id, "many-zombies");
        assert_eq!(evidence(&f, "zombies"), "20");
        assert_eq!(evidence(&f, "processes"), "200");
        s.processes.zombies = 19;
        assert_eq!(many_zombies(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn load_at_core_count_is_a_warning_and_twice_critical() {
        let mut s = quiet();
        s.cpu.load_average.five = 4.0;
        let f = only(load_above_cores(&s, &Thresholds::default()));
        assert_eq!(f.id, "load-above-cores");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "logical cores"), "4");
        assert_eq!(evidence(&f, "load per core"), "1.00");
        assert_eq!(evidence(&f, "load average"), "0.50 4.00 0.30");
        s.cpu.load_average.five = 8.0;
        assert_eq!(
            only(load_above_cores(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn load_just_below_core_count_is_quiet() {
        let mut s = quiet();
        s.cpu.load_average.five = 3.99;
        s.cpu.load_average.one = 12.0; // a spike alone is not sustained load
        assert_eq!(load_above_cores(&s, &Thresholds::default()), vec![]);
    }

    // Host

    #[test]
    fn thirty_days_up_is_information() {
        let mut s = quiet();
        s.host.uptime_secs = 30 * 86_400;
        let f = only(long_uptime(&s, &Thresholds::default()));
        assert_eq!(f.id, "long-uptime");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(evidence(&f, "uptime"), "30d 0h");
        s.host.uptime_secs = 30 * 86_400 - 1;
        assert_eq!(long_uptime(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn sensor_at_85_is_a_warning_and_at_its_critical_mark_critical() {
        let mut s = quiet();
        s.temperatures[0].celsius = 85.0;
        let f = only(high_temperature(&s, &Thresholds::default()));
        assert_eq!(f.id, "high-temperature");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.as_deref(), Some("Package id 0"));
        assert_eq!(evidence(&f, "temperature"), "85.0 °C");
        assert_eq!(evidence(&f, "sensor's critical mark"), "100.0 °C");
        s.temperatures[0].critical_celsius = Some(90.0);
        s.temperatures[0].celsius = 90.0;
        assert_eq!(
            only(high_temperature(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
        s.temperatures[0].critical_celsius = None;
        s.temperatures[0].celsius = 95.0;
        assert_eq!(
            only(high_temperature(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn sensor_just_below_85_is_quiet() {
        let mut s = quiet();
        s.temperatures[0].celsius = 84.9;
        assert_eq!(high_temperature(&s, &Thresholds::default()), vec![]);
    }

    // Network

    #[test]
    fn interface_with_enough_errors_is_named() {
        let mut s = quiet();
        s.networks[1].packets_in = 9_000;
        s.networks[1].packets_out = 900;
        s.networks[1].errors_in = 80;
        s.networks[1].errors_out = 20;
        let f = only(network_errors(&s, &Thresholds::default()));
        assert_eq!(f.id, "network-errors");
        assert_eq!(f.subject.as_deref(), Some("eth0"));
        assert_eq!(evidence(&f, "errors in"), "80");
        assert_eq!(evidence(&f, "errors out"), "20");
        assert_eq!(evidence(&f, "error share"), "1.00%");
        assert_eq!(f.script.as_deref(), Some(scripts::TEST_CONNECTIVITY));
    }

    #[test]
    fn interface_errors_below_either_threshold_are_quiet() {
        let mut s = quiet();
        // 99 errors, a high share: too few to matter.
        s.networks[1].packets_in = 100;
        s.networks[1].packets_out = 0;
        s.networks[1].errors_in = 99;
        assert_eq!(network_errors(&s, &Thresholds::default()), vec![]);
        // Many errors, but a tiny share of a busy link.
        s.networks[1].packets_in = 10_000_000;
        s.networks[1].errors_in = 5_000;
        assert_eq!(network_errors(&s, &Thresholds::default()), vec![]);
        // Loopback is never reported.
        s.networks[0].errors_in = 1_000;
        assert_eq!(network_errors(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn only_loopback_and_link_local_addresses_mean_no_network() {
        let mut s = quiet();
        s.networks[1].addresses = vec!["169.254.7.1/16".into(), "fe80::1/64".into()];
        let f = only(no_network_address(&s, &Thresholds::default()));
        assert_eq!(f.id, "no-network-address");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(evidence(&f, "interfaces"), "lo, eth0");
        assert_eq!(
            evidence(&f, "addresses other than loopback"),
            "169.254.7.1/16 on eth0, fe80::1/64 on eth0"
        );
        assert_eq!(f.script.as_deref(), Some(scripts::TEST_CONNECTIVITY));
        s.networks[1].addresses.clear();
        assert_eq!(
            evidence(
                &only(no_network_address(&s, &Thresholds::default())),
                "addresses other than loopback"
            ),
            "none"
        );
    }

    #[test]
    fn one_global_address_is_enough() {
        let mut s = quiet();
        s.networks[1].addresses = vec!["fe80::1/64".into(), "2001:db8::5/64".into()];
        assert_eq!(no_network_address(&s, &Thresholds::default()), vec![]);
    }

    // All together

    #[test]
    fn evaluate_lists_the_most_severe_first() {
        let mut s = quiet();
        s.host.uptime_secs = 400 * 86_400;
        s.disks[0] = disk("/", 100 * GIB, GIB / 10);
        s.cpu.usage_percent = 91.0;
        let f = evaluate(&s, &Thresholds::default());
        assert_eq!(
            ids(&f),
            ["disk-nearly-full", "cpu-saturated", "long-uptime"]
        );
        assert!(f.windows(2).all(|w| w[0].severity >= w[1].severity));
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
