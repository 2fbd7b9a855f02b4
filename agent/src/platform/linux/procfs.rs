//! Readings `sysinfo` does not give, taken from Linux's `/proc` and the
//! kernel log: files deleted but still open, open descriptors against each
//! process's limit, default routes, and out-of-memory kills. Part of the
//! Linux diagnostics source (`super::diag`).
//!
//! Everything read here comes from outside the process and may vanish while
//! it is read (processes end, descriptors close), so every failure simply
//! leaves the entry out. On systems without `/proc` the readings are empty.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use sprijin_proto::message::diag::{DeletedOpenFiles, OomKill, OpenFileUse, Routes};

/// How many entries each list keeps.
pub const MAX_ENTRIES: usize = 10;

/// A process is listed under open files when it uses at least this share of
/// its limit.
const OPEN_FILES_LISTED_PERCENT: u64 = 50;

/// Descriptors examined per process at most; the rest are counted only.
const MAX_FDS_EXAMINED: usize = 65_536;

/// The suffix the kernel gives the link of a descriptor whose file was
/// deleted.
const DELETED_SUFFIX: &str = " (deleted)";

/// What one pass over every process's descriptors found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FdScan {
    pub deleted_open: Vec<DeletedOpenFiles>,
    pub open_files: Vec<OpenFileUse>,
}

/// Reads `/proc/PID/fd` of every process. `mount_points` are the mounted
/// file systems, to say where a deleted file's space is held.
pub fn scan_fds(proc_root: &Path, mount_points: &[String]) -> FdScan {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return FdScan::default();
    };
    let mut scan = FdScan::default();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let mut open: u64 = 0;
        let mut deleted: Vec<(u64, String)> = Vec::new();
        for fd in fds.filter_map(Result::ok) {
            open = open.saturating_add(1);
            if open as usize > MAX_FDS_EXAMINED {
                continue;
            }
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let Some(path) = target.strip_suffix(DELETED_SUFFIX) else {
                continue;
            };
            // Only regular files hold disk space; memfd and the like live
            // elsewhere and do not start with '/'.
            if !path.starts_with('/') || path.starts_with("/memfd:") {
                continue;
            }
            match fs::metadata(fd.path()) {
                Ok(m) if m.is_file() => deleted.push((m.len(), path.to_string())),
                _ => {}
            }
        }
        let name = process_name(&dir);
        if !deleted.is_empty() {
            deleted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let largest = deleted[0].1.clone();
            scan.deleted_open.push(DeletedOpenFiles {
                pid,
                name: name.clone(),
                mount_point: mount_point_of(&largest, mount_points),
                files: u32::try_from(deleted.len()).unwrap_or(u32::MAX),
                bytes: deleted.iter().fold(0u64, |a, d| a.saturating_add(d.0)),
                largest_path: largest,
            });
        }
        if let Some(limit) = soft_open_files_limit(&dir)
            && limit > 0
            && open.saturating_mul(100) >= limit.saturating_mul(OPEN_FILES_LISTED_PERCENT)
        {
            scan.open_files.push(OpenFileUse {
                pid,
                name,
                open,
                soft_limit: limit,
            });
        }
    }
    scan.deleted_open
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.pid.cmp(&b.pid)));
    scan.deleted_open.truncate(MAX_ENTRIES);
    // Closest to the limit first: compare open/limit without floats.
    scan.open_files.sort_by(|a, b| {
        (u128::from(b.open) * u128::from(a.soft_limit))
            .cmp(&(u128::from(a.open) * u128::from(b.soft_limit)))
            .then(a.pid.cmp(&b.pid))
    });
    scan.open_files.truncate(MAX_ENTRIES);
    scan
}

/// The short name of a process (`/proc/PID/comm`).
fn process_name(dir: &Path) -> String {
    read_small(&dir.join("comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// The soft "Max open files" of `/proc/PID/limits`; `None` when unlimited
/// or unreadable.
fn soft_open_files_limit(dir: &Path) -> Option<u64> {
    parse_soft_open_files_limit(&read_small(&dir.join("limits"))?)
}

fn parse_soft_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The longest mount point that holds `path`, or "" when none does.
pub fn mount_point_of(path: &str, mount_points: &[String]) -> String {
    mount_points
        .iter()
        .filter(|m| {
            m.as_str() == "/"
                || path == m.as_str()
                || path
                    .strip_prefix(m.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|m| m.len())
        .cloned()
        .unwrap_or_default()
}

/// Reads a small text file, at most 64 KiB.
pub(super) fn read_small(path: &Path) -> Option<String> {
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Default routes from `/proc/net/route` and `/proc/net/ipv6_route`;
/// `None` when neither can be read.
pub fn routes(proc_root: &Path) -> Option<Routes> {
    let v4 = read_small(&proc_root.join("net/route"));
    let v6 = read_small(&proc_root.join("net/ipv6_route"));
    if v4.is_none() && v6.is_none() {
        return None;
    }
    Some(Routes {
        ipv4_default: v4.as_deref().map(ipv4_default_routes).unwrap_or_default(),
        ipv6_default: v6.as_deref().map(ipv6_default_routes).unwrap_or_default(),
    })
}

const RTF_UP: u32 = 0x1;

/// Lines of `/proc/net/route` with destination and mask 0 and the route up.
fn ipv4_default_routes(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gateway, flags, mask) =
                (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            if *dest != "00000000" || *mask != "00000000" || flags & RTF_UP == 0 {
                return None;
            }
            // The gateway is printed in the host's byte order; on the
            // little-endian machines Linux mostly runs on, reversed.
            let g = u32::from_str_radix(gateway, 16).ok()?;
            let ip = std::net::Ipv4Addr::from(if cfg!(target_endian = "little") {
                g.swap_bytes()
            } else {
                g
            });
            Some(if ip.is_unspecified() {
                format!("on {iface}")
            } else {
                format!("via {ip} on {iface}")
            })
        })
        .collect()
}

/// Lines of `/proc/net/ipv6_route` for `::/0`, up, not the kernel's
/// "unreachable" placeholder on loopback.
fn ipv6_default_routes(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let (dest, prefix, next_hop, flags, iface) = (f[0], f[1], f[4], f[8], f[9]);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            if dest.chars().any(|c| c != '0')
                || prefix != "00"
                || flags & RTF_UP == 0
                || iface == "lo"
            {
                return None;
            }
            let hop = u128::from_str_radix(next_hop, 16).ok()?;
            let ip = std::net::Ipv6Addr::from(hop);
            Some(if ip.is_unspecified() {
                format!("on {iface}")
            } else {
                format!("via {ip} on {iface}")
            })
        })
        .collect()
}

/// Reads the kernel log (`/dev/kmsg`) as it grows, keeping the
/// out-of-memory kills it reports.
pub struct KernelLog {
    file: Option<fs::File>,
    kills: Vec<OomKill>,
}

impl KernelLog {
    /// Opens the kernel log without blocking; when it cannot be read (no
    /// permission, no such device) the reader stays empty.
    pub fn open(path: &Path) -> KernelLog {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .ok();
        KernelLog {
            file,
            kills: Vec::new(),
        }
    }

    /// Reads every record written since the last call.
    pub fn read_new(&mut self, boot_time_secs: u64) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        // One record per read; a record is at most about 8 KiB.
        let mut buf = vec![0u8; 16 * 1024];
        for _ in 0..100_000 {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let record = String::from_utf8_lossy(&buf[..n]);
                    if let Some(kill) = parse_oom_record(&record, boot_time_secs) {
                        self.kills.push(kill);
                        if self.kills.len() > MAX_ENTRIES {
                            self.kills.remove(0);
                        }
                    }
                }
                // Records overwritten before they were read: go on.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    /// The kills seen so far, oldest first.
    pub fn kills(&self) -> &[OomKill] {
        &self.kills
    }
}

/// One `/dev/kmsg` record ("PRIO,SEQ,USECS,FLAGS;TEXT") if it reports a
/// process killed for lack of memory.
fn parse_oom_record(record: &str, boot_time_secs: u64) -> Option<OomKill> {
    let (head, text) = record.split_once(';')?;
    let text = text.lines().next().unwrap_or("");
    let usecs: u64 = head.split(',').nth(2)?.parse().ok()?;
    let (before, rest) = text.split_once("Killed process ")?;
    if !before.contains("out of memory") && !before.contains("Out of memory") {
        return None;
    }
    let (pid, rest) = rest.split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    let name = rest.strip_prefix('(')?.split_once(')')?.0.to_string();
    let rss_kib: u64 = ["anon-rss:", "file-rss:", "shmem-rss:"]
        .iter()
        .filter_map(|key| {
            let v = rest.split(key).nth(1)?;
            v.split("kB").next()?.trim().parse::<u64>().ok()
        })
        .sum();
    Some(OomKill {
        pid,
        name,
        at_secs: boot_time_secs.saturating_add(usecs / 1_000_000),
        rss_bytes: rss_kib.saturating_mul(1024),
        limited_group: before.contains("Memory cgroup"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_is_read_from_the_limits_table() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax processes             63353                63353                processes \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_soft_open_files_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_soft_open_files_limit(unlimited), None);
    }

    #[test]
    fn deleted_files_are_placed_on_their_longest_mount_point() {
        let mounts = vec!["/".to_string(), "/var".to_string(), "/var/log".to_string()];
        assert_eq!(mount_point_of("/var/log/big.log", &mounts), "/var/log");
        assert_eq!(mount_point_of("/variable/x", &mounts), "/");
        assert_eq!(mount_point_of("/x", &[]), "");
    }

    #[test]
    fn default_routes_are_found_in_both_tables() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(ipv4_default_routes(v4), ["via 192.0.2.1 on eth0"]);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(ipv6_default_routes(v6), ["via fd00::1 on eth0"]);
        assert!(ipv4_default_routes("Iface\tDestination\n").is_empty());
    }

    #[test]
    fn oom_kill_records_name_the_process() {
        let r = "3,1234,5000000,-;Out of memory: Killed process 4242 (hog) total-vm:2000kB, anon-rss:1024kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0\n";
        let k = parse_oom_record(r, 1_000).unwrap();
        assert_eq!(k.pid, 4242);
        assert_eq!(k.name, "hog");
        assert_eq!(k.at_secs, 1_005);
        assert_eq!(k.rss_bytes, 1024 * 1024);
        assert!(!k.limited_group);
        let g = "3,9,1,-;Memory cgroup out of memory: Killed process 7 (tail) total-vm:1kB, anon-rss:0kB";
        assert!(parse_oom_record(g, 0).unwrap().limited_group);
        assert_eq!(parse_oom_record("6,1,1,-;eth0: link up", 0), None);
    }

    #[test]
    fn this_process_is_seen_holding_a_deleted_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        fs::write(&path, vec![0u8; 4096]).unwrap();
        let file = fs::File::open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let scan = scan_fds(Path::new("/proc"), &["/".to_string()]);
        let me = scan
            .deleted_open
            .iter()
            .find(|d| d.pid == std::process::id())
            .expect("this process holds a deleted file");
        assert!(me.bytes >= 4096);
        assert!(me.largest_path.ends_with("/held"), "{me:?}");
        drop(file);
    }
}
