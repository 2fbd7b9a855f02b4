//! Linux's side of the watcher (`crate::diag::watch`): one [`Reading`] a
//! second from `/proc` and `/sys/fs/cgroup`.
//!
//! Every second: the fork counter (`/proc/stat`), the process table (only
//! new processes are read in full), free space of each local file system,
//! and pressure stall information (`/proc/pressure`). Only where the
//! watcher asks: the files open on a filling file system, and page faults
//! by process while memory stalls. Every few seconds: the control groups'
//! limit counters and memory pressure (`super::cgroups`). Every ten
//! seconds: the package manager's state (`super::packages`). A failure
//! leaves that part empty.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sprijin_proto::message::diag::{Stall, Stalled};
use sprijin_proto::text::clean_line;

use super::{cgroups, packages};
use crate::diag::watch::{
    MountSpace, OpenFile, PressureReading, ProcEntry, Reading, Watcher, unit_of,
};

/// Readings between two looks at the files open on a filling file system
/// (the costliest reading: every descriptor of every process).
const FILES_EVERY: u64 = 2;
/// Readings between two walks of the control groups.
const LIMITS_EVERY: u64 = 5;
/// Readings between two looks at the package manager and the mounts.
const SLOW_EVERY: u64 = 10;
/// Most descriptors looked at when looking for growing files.
const MAX_FDS: usize = 65_536;
/// Most open files handed to the watcher, the largest kept: it remembers a
/// minute of sizes for each.
const MAX_OPEN_FILES: usize = 1024;
/// Longest command line kept for a process.
const COMMAND_CHARS: usize = 160;

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
            self.mounts = local_mounts(&read_text("/proc/self/mounts").unwrap_or_default());
        }
        let filling = watcher.filling();
        let (limits, groups) = if n.is_multiple_of(LIMITS_EVERY) {
            let (l, g) = cgroups::limits(Path::new(cgroups::ROOT));
            (Some(l), g)
        } else {
            (None, Vec::new())
        };
        Reading {
            at_ms: self.started.elapsed().as_millis() as u64,
            forks: read_text("/proc/stat").and_then(|s| forks(&s)),
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
            packages: n.is_multiple_of(SLOW_EVERY).then(packages::state).flatten(),
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

pub(super) fn read_text(path: impl AsRef<Path>) -> Option<String> {
    super::procfs::read_small(path.as_ref())
}

/// One process read in full: its stat line, command line and service.
fn process(pid: u32) -> Option<ProcEntry> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let stat = parse_stat(&read_text(dir.join("stat"))?)?;
    let command = fs::read(dir.join("cmdline"))
        .map(|c| {
            let text = String::from_utf8_lossy(&c).replace('\0', " ");
            clean_line(text.trim())
                .chars()
                .take(COMMAND_CHARS)
                .collect()
        })
        .unwrap_or_default();
    let unit = read_text(dir.join("cgroup")).and_then(|c| unit_of_cgroup_file(&c));
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

/// Regular files open on the file systems in `mounts`, by descriptor, the
/// [`MAX_OPEN_FILES`] largest.
fn open_files(mounts: &[String]) -> Vec<OpenFile> {
    let mut files = every_open_file(mounts);
    files.sort_by_key(|f| std::cmp::Reverse(f.size));
    files.truncate(MAX_OPEN_FILES);
    files
}

fn every_open_file(mounts: &[String]) -> Vec<OpenFile> {
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
            let process = read_text(format!("/proc/{pid}/comm"))
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
pub(super) fn parse_pressure(text: &str) -> Stall {
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
        cpu: parse_pressure(&read_text(root.join("cpu"))?),
        memory: parse_pressure(&read_text(root.join("memory"))?),
        io: parse_pressure(&read_text(root.join("io"))?),
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
            let s = parse_stat(&read_text(format!("/proc/{pid}/stat"))?)?;
            Some((pid, s.name, s.majflt))
        })
        .collect()
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
}
