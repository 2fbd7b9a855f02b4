//! Linux's side of the watcher (`crate::diag::watch`): one [`Reading`] a
//! second from `/proc` and `/sys/fs/cgroup`.
//!
//! Every second: the fork counter (`/proc/stat`), the process table (only
//! new processes are read in full), free space of each local file system,
//! and pressure stall information (`/proc/pressure`). Only where the
//! watcher asks: the files open on a filling file system, and page faults
//! by process while memory stalls. Every few seconds: the control groups'
//! limit counters (v1 and v2) and, where v2 gives them, each group's
//! memory pressure. Every ten seconds: dpkg's and rpm's state and who
//! holds their locks (`/proc/locks`). A failure leaves that part empty.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sprijin_proto::message::diag::{Stall, Stalled};
use sprijin_proto::text::clean_line;

use crate::diag::watch::{
    LimitCounter, MountSpace, OpenFile, PackageReading, PressureReading, ProcEntry, Reading,
    Watcher, unit_of,
};

/// Readings between two looks at the files open on a filling file system
/// (the costliest reading: every descriptor of every process).
const FILES_EVERY: u64 = 2;
/// Readings between two walks of the control groups.
const LIMITS_EVERY: u64 = 5;
/// Readings between two looks at the package manager and the mounts.
const SLOW_EVERY: u64 = 10;
/// Most control groups walked.
const MAX_GROUPS: usize = 4096;
/// Most descriptors looked at when looking for growing files.
const MAX_FDS: usize = 65_536;
/// Longest command line kept for a process.
const COMMAND_CHARS: usize = 160;
/// A group stalling less than this share on memory is not named.
const GROUP_STALL_NAMED_PERCENT: f64 = 1.0;

/// File system types that hold no files of the person's.
const VIRTUAL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "autofs",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "binfmt_misc",
    "devtmpfs",
    "nsfs",
    "rpc_pipefs",
    "squashfs",
    "efivarfs",
    "ramfs",
];

/// dpkg's and apt's locks, then rpm's.
const DPKG_LOCKS: &[&str] = &[
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
];
const DPKG_UPDATES: &str = "/var/lib/dpkg/updates";
const RPM_LOCK: &str = "/var/lib/rpm/.rpm.lock";

/// What the reader remembers between readings.
pub struct WatchReader {
    started: Instant,
    readings: u64,
    known: HashMap<u32, ProcEntry>,
    mounts: Vec<String>,
}

impl Default for WatchReader {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchReader {
    pub fn new() -> WatchReader {
        WatchReader {
            started: Instant::now(),
            readings: 0,
            known: HashMap::new(),
            mounts: Vec::new(),
        }
    }

    /// Takes one reading; `watcher` says where to look closer.
    pub fn read(&mut self, watcher: &Watcher) -> Reading {
        let n = self.readings;
        self.readings += 1;
        if n.is_multiple_of(SLOW_EVERY) {
            self.mounts = local_mounts(&read("/proc/self/mounts").unwrap_or_default());
        }
        let filling = watcher.filling();
        let (limits, groups) = if n.is_multiple_of(LIMITS_EVERY) {
            let (l, g) = cgroups(Path::new("/sys/fs/cgroup"));
            (Some(l), g)
        } else {
            (None, Vec::new())
        };
        Reading {
            at_ms: self.started.elapsed().as_millis() as u64,
            forks: read("/proc/stat").and_then(|s| forks(&s)),
            processes: Some(self.processes()),
            mounts: self
                .mounts
                .iter()
                .filter_map(|m| {
                    let s = nix::sys::statvfs::statvfs(m.as_str()).ok()?;
                    Some(MountSpace {
                        mount_point: m.clone(),
                        available: s.blocks_available().saturating_mul(s.fragment_size()),
                    })
                })
                .collect(),
            open_files: if filling.is_empty() || !n.is_multiple_of(FILES_EVERY) {
                Vec::new()
            } else {
                open_files(&filling)
            },
            pressure: pressure(groups),
            faults: if watcher.stalls_memory() {
                faults()
            } else {
                Vec::new()
            },
            limits,
            packages: (n.is_multiple_of(SLOW_EVERY)).then(packages).flatten(),
        }
    }

    /// Every process; only those not seen before are read in full.
    fn processes(&mut self) -> Vec<ProcEntry> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut now = HashMap::with_capacity(self.known.len());
        for pid in entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            let entry = match self.known.remove(&pid) {
                Some(known) => known,
                None => match process(pid) {
                    Some(p) => p,
                    None => continue,
                },
            };
            now.insert(pid, entry);
        }
        self.known = now;
        self.known.values().cloned().collect()
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    super::procfs::read_small(path.as_ref())
}

/// One process read in full: its stat line, command line and service.
fn process(pid: u32) -> Option<ProcEntry> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = parse_stat(&read(dir.join("stat"))?)?;
    let command = fs::read(dir.join("cmdline"))
        .map(|c| {
            let text = String::from_utf8_lossy(&c).replace('\0', " ");
            clean_line(text.trim())
                .chars()
                .take(COMMAND_CHARS)
                .collect()
        })
        .unwrap_or_default();
    let unit = read(dir.join("cgroup")).and_then(|c| unit_of_cgroup_file(&c));
    Some(ProcEntry {
        pid,
        ppid: stat.ppid,
        name: stat.name,
        start: stat.start,
        command,
        unit,
    })
}

/// What the watcher needs of `/proc/PID/stat`.
#[derive(Debug, PartialEq)]
struct Stat {
    name: String,
    ppid: u32,
    majflt: u64,
    start: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The name is in parentheses and may hold anything, ")" included.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        name,
        ppid: rest.get(1)?.parse().ok()?,
        majflt: rest.get(9)?.parse().ok()?,
        start: rest.get(19)?.parse().ok()?,
    })
}

/// The service a process runs in, from `/proc/PID/cgroup` (v2's `0::`
/// line, else v1's systemd hierarchy).
fn unit_of_cgroup_file(text: &str) -> Option<String> {
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| {
            text.lines()
                .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
        })?;
    unit_of(path.trim()).filter(|u| u.ends_with(".service"))
}

/// Processes started since boot, from `/proc/stat`.
fn forks(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("processes "))?
        .trim()
        .parse()
        .ok()
}

/// Mount points of local file systems, from `/proc/self/mounts`.
fn local_mounts(mounts: &str) -> Vec<String> {
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, kind) = (f.next()?, f.next()?, f.next()?);
            (!VIRTUAL_FS.contains(&kind)).then(|| point.replace("\\040", " "))
        })
        .collect();
    points.sort();
    points.dedup();
    points
}

/// Regular files open on the file systems in `mounts`, by descriptor.
fn open_files(mounts: &[String]) -> Vec<OpenFile> {
    let devices: Vec<(u64, &String)> = mounts
        .iter()
        .filter_map(|m| Some((fs::metadata(m).ok()?.dev(), m)))
        .collect();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut files = Vec::new();
    let mut looked = 0usize;
    for pid in entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            looked += 1;
            if looked > MAX_FDS {
                return files;
            }
            let Ok(meta) = fs::metadata(fd.path()) else {
                continue;
            };
            let Some((_, mount)) = devices.iter().find(|(dev, _)| *dev == meta.dev()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let process = read(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_default();
            files.push(OpenFile {
                mount_point: (*mount).clone(),
                path: clean_line(&target.to_string_lossy()).into_owned(),
                size: meta.len(),
                pid,
                process,
            });
        }
    }
    files
}

/// One line of a pressure file: `some avg10=1.00 avg60=0.50 avg300=0.10 total=123`.
fn parse_pressure(text: &str) -> Stall {
    let field = |line: Option<&str>, key: &str| -> f64 {
        line.and_then(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
    };
    let some = text.lines().find(|l| l.starts_with("some "));
    let full = text.lines().find(|l| l.starts_with("full "));
    Stall {
        some_avg10: field(some, "avg10"),
        some_avg60: field(some, "avg60"),
        full_avg10: field(full, "avg10"),
        full_avg60: field(full, "avg60"),
    }
}

fn pressure(groups: Vec<Stalled>) -> Option<PressureReading> {
    let root = Path::new("/proc/pressure");
    Some(PressureReading {
        cpu: parse_pressure(&read(root.join("cpu"))?),
        memory: parse_pressure(&read(root.join("memory"))?),
        io: parse_pressure(&read(root.join("io"))?),
        groups,
    })
}

/// Page faults that read from disk, for every process.
fn faults() -> Vec<(u32, String, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = parse_stat(&read(format!("/proc/{pid}/stat"))?)?;
            Some((pid, s.name, s.majflt))
        })
        .collect()
}

/// The value of `key` in a flat keyed file (`max 3`, `nr_throttled 12`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The control groups' limit counters, and (v2) the groups stalling on
/// memory.
fn cgroups(root: &Path) -> (Vec<LimitCounter>, Vec<Stalled>) {
    let mut counters = Vec::new();
    let mut stalled = Vec::new();
    if root.join("cgroup.controllers").is_file() {
        for dir in groups(root) {
            let group = group_name(root, &dir);
            v2_counters(&dir, &group, &mut counters);
            if let Some(p) = read(dir.join("memory.pressure")).map(|t| parse_pressure(&t))
                && p.some_avg10 >= GROUP_STALL_NAMED_PERCENT
                && group != "/"
            {
                stalled.push(Stalled {
                    resource: "memory".into(),
                    who: unit_of(&group).unwrap_or_else(|| group.clone()),
                    measure: format!("waited for memory {:.0}% of the last 10 s", p.some_avg10),
                    weight: p.some_avg10,
                });
            }
        }
    } else {
        for (controller, files) in [
            ("pids", v1_pids as fn(&Path, &str, &mut Vec<LimitCounter>)),
            ("memory", v1_memory),
            ("cpu", v1_cpu),
        ] {
            let hierarchy = root.join(controller);
            for dir in groups(&hierarchy) {
                files(&dir, &group_name(&hierarchy, &dir), &mut counters);
            }
        }
    }
    (counters, stalled)
}

/// Every group folder under `root`, `root` included, at most [`MAX_GROUPS`].
fn groups(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if found.len() >= MAX_GROUPS {
            break;
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            todo.extend(
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        found.push(dir);
    }
    found
}

fn group_name(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    format!("/{}", rel.to_string_lossy())
}

fn limit_value(raw: Option<String>, unit: &str) -> Option<String> {
    let raw = raw?;
    let raw = raw.trim();
    (raw != "max" && !raw.is_empty()).then(|| format!("{raw} {unit}"))
}

fn bytes_value(raw: Option<String>) -> Option<String> {
    let bytes: u64 = raw?.trim().parse().ok()?;
    // v1 writes "no limit" as a number near 2^63.
    (bytes < 1 << 62).then(|| format!("{} MiB", bytes >> 20))
}

fn push(
    out: &mut Vec<LimitCounter>,
    group: &str,
    limit: &str,
    value: Option<String>,
    count: Option<u64>,
    version: u8,
) {
    if let (Some(value), Some(count)) = (value, count) {
        out.push(LimitCounter {
            group: group.to_owned(),
            limit: limit.to_owned(),
            value,
            count,
            version,
        });
    }
}

fn v2_counters(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    let events = read(dir.join("pids.events"));
    push(
        out,
        group,
        "pids",
        limit_value(read(dir.join("pids.max")), "processes"),
        events.and_then(|e| keyed(&e, "max")),
        2,
    );
    let memory = read(dir.join("memory.events"));
    push(
        out,
        group,
        "memory",
        bytes_value(read(dir.join("memory.max"))),
        memory
            .as_deref()
            .and_then(|e| Some(keyed(e, "max")? + keyed(e, "oom_kill").unwrap_or(0))),
        2,
    );
    push(
        out,
        group,
        "memory.high",
        bytes_value(read(dir.join("memory.high"))),
        memory.as_deref().and_then(|e| keyed(e, "high")),
        2,
    );
    let cpu_max =
        read(dir.join("cpu.max")).and_then(|m| m.split_whitespace().next().map(str::to_owned));
    push(
        out,
        group,
        "cpu",
        limit_value(cpu_max, "µs of CPU a period"),
        read(dir.join("cpu.stat")).and_then(|s| keyed(&s, "nr_throttled")),
        2,
    );
}

fn v1_pids(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    push(
        out,
        group,
        "pids",
        limit_value(read(dir.join("pids.max")), "processes"),
        read(dir.join("pids.events")).and_then(|e| keyed(&e, "max")),
        1,
    );
}

fn v1_memory(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    push(
        out,
        group,
        "memory",
        bytes_value(read(dir.join("memory.limit_in_bytes"))),
        read(dir.join("memory.failcnt")).and_then(|c| c.trim().parse().ok()),
        1,
    );
}

fn v1_cpu(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    let quota = read(dir.join("cpu.cfs_quota_us")).filter(|q| q.trim() != "-1");
    push(
        out,
        group,
        "cpu",
        limit_value(quota, "µs of CPU a period"),
        read(dir.join("cpu.stat")).and_then(|s| keyed(&s, "nr_throttled")),
        1,
    );
}

/// dpkg's state (or rpm's, where there is no dpkg).
fn packages() -> Option<PackageReading> {
    let locks = read("/proc/locks").unwrap_or_default();
    let held = parse_locks(&locks);
    let holders = |paths: &[&str]| -> Vec<(String, u32, String)> {
        paths
            .iter()
            .filter_map(|p| {
                let meta = fs::metadata(p).ok()?;
                let key = (major(meta.dev()), minor(meta.dev()), meta.ino());
                let pid = held.iter().find(|(_, k)| *k == key)?.0;
                let process = read(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim_end().to_owned())
                    .unwrap_or_default();
                Some(((*p).to_owned(), pid, process))
            })
            .collect()
    };
    if Path::new("/var/lib/dpkg/status").is_file() {
        let interrupted = fs::read_dir(DPKG_UPDATES).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        });
        return Some(PackageReading {
            manager: "dpkg".into(),
            interrupted,
            locks: holders(DPKG_LOCKS),
        });
    }
    Path::new(RPM_LOCK).exists().then(|| PackageReading {
        manager: "rpm".into(),
        interrupted: false,
        locks: holders(&[RPM_LOCK]),
    })
}

/// Held locks from `/proc/locks`: pid, and the file as (major, minor, inode).
fn parse_locks(text: &str) -> Vec<(u32, (u64, u64, u64))> {
    text.lines()
        .filter(|l| !l.contains("->"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let pid = f.get(4)?.parse().ok()?;
            let mut id = f.get(5)?.split(':');
            let major = u64::from_str_radix(id.next()?, 16).ok()?;
            let minor = u64::from_str_radix(id.next()?, 16).ok()?;
            let inode = id.next()?.parse().ok()?;
            Some((pid, (major, minor, inode)))
        })
        .collect()
}

/// Linux's split of a device number.
fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_an_odd_name_reads() {
        let line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 900 0 31 0 10 5 0 0 20 0 1 0 123456 10000 200 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                name: "a) b (c)".into(),
                ppid: 17,
                majflt: 31,
                start: 123456,
            })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
    }

    #[test]
    fn the_fork_counter_is_read() {
        assert_eq!(
            forks("cpu 1 2 3\nctxt 99\nprocesses 81234\nprocs_running 2\n"),
            Some(81234)
        );
        assert_eq!(forks("cpu 1 2 3\n"), None);
    }

    #[test]
    fn pressure_lines_read_and_missing_ones_are_zero() {
        let p = parse_pressure(
            "some avg10=12.50 avg60=3.00 avg300=0.50 total=1\nfull avg10=4.00 avg60=1.00 avg300=0.00 total=2\n",
        );
        assert_eq!(p.some_avg10, 12.5);
        assert_eq!(p.some_avg60, 3.0);
        assert_eq!(p.full_avg10, 4.0);
        let cpu = parse_pressure("some avg10=0.10 avg60=0.20 avg300=0.00 total=9\n");
        assert_eq!(cpu.full_avg10, 0.0);
    }

    #[test]
    fn locks_name_their_holder_and_skip_waiters() {
        let text = "1: POSIX  ADVISORY  WRITE 812 fd:01:1835021 0 EOF\n1: -> POSIX  ADVISORY  WRITE 900 fd:01:1835021 0 EOF\n2: FLOCK  ADVISORY  WRITE 77 00:1a:42 0 EOF\n";
        assert_eq!(
            parse_locks(text),
            [(812, (0xfd, 1, 1_835_021)), (77, (0, 0x1a, 42))]
        );
    }

    #[test]
    fn device_numbers_split_as_the_kernel_encodes_them() {
        // makedev(253, 1) and makedev(259, 300000) in glibc's encoding.
        assert_eq!((major(0xfd01), minor(0xfd01)), (253, 1));
        let dev = (259u64 & 0xfff) << 8 | (300_000u64 & 0xff) | ((300_000u64 & !0xff) << 12);
        assert_eq!((major(dev), minor(dev)), (259, 300_000));
    }

    #[test]
    fn only_local_file_systems_are_watched() {
        let mounts = "proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\ntmpfs /run/my\\040disk tmpfs rw 0 0\ncgroup /sys/fs/cgroup/pids cgroup rw 0 0\n";
        assert_eq!(local_mounts(mounts), ["/", "/run/my disk"]);
    }

    #[test]
    fn services_are_read_from_either_cgroup_version() {
        assert_eq!(
            unit_of_cgroup_file("0::/system.slice/cups.service\n").as_deref(),
            Some("cups.service")
        );
        assert_eq!(
            unit_of_cgroup_file("12:pids:/x\n1:name=systemd:/system.slice/nginx.service\n")
                .as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit_of_cgroup_file("0::/user.slice/user-1000.slice/session-2.scope\n"),
            None
        );
    }

    #[test]
    fn v1_and_v2_groups_give_their_counters() {
        let root = tempfile::tempdir().unwrap();
        let g = root.path().join("pids/system.slice/app.service");
        fs::create_dir_all(&g).unwrap();
        fs::write(g.join("pids.max"), "16\n").unwrap();
        fs::write(g.join("pids.events"), "max 5\n").unwrap();
        let (counters, _) = cgroups(root.path());
        assert_eq!(
            counters,
            [LimitCounter {
                group: "/system.slice/app.service".into(),
                limit: "pids".into(),
                value: "16 processes".into(),
                count: 5,
                version: 1,
            }]
        );

        let v2 = tempfile::tempdir().unwrap();
        fs::write(v2.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let g = v2.path().join("web.slice");
        fs::create_dir_all(&g).unwrap();
        fs::write(g.join("memory.max"), "536870912\n").unwrap();
        fs::write(
            g.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(
            g.join("memory.pressure"),
            "some avg10=35.00 avg60=10.00 avg300=1.00 total=5\n",
        )
        .unwrap();
        fs::write(g.join("pids.max"), "max\n").unwrap();
        fs::write(g.join("pids.events"), "max 0\n").unwrap();
        let (counters, stalled) = cgroups(v2.path());
        let memory = counters.iter().find(|c| c.limit == "memory").unwrap();
        assert_eq!(
            (memory.count, memory.value.as_str(), memory.version),
            (4, "512 MiB", 2)
        );
        assert!(
            counters.iter().all(|c| c.limit != "pids"),
            "no limit set: {counters:?}"
        );
        assert_eq!(stalled.len(), 1);
        assert_eq!(stalled[0].who, "web.slice");
        assert_eq!(stalled[0].measure, "waited for memory 35% of the last 10 s");
    }
}
