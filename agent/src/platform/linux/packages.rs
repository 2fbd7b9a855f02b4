//! The package manager, for the watcher: whether dpkg was cut off with
//! packages half configured, and who holds dpkg's, apt's or rpm's lock
//! (matched by file in `/proc/locks`).

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::watch::read_text;
use crate::diag::watch::PackageReading;

/// dpkg's and apt's locks, then rpm's.
const DPKG_LOCKS: &[&str] = &[
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
];
const DPKG_UPDATES: &str = "/var/lib/dpkg/updates";
const RPM_LOCK: &str = "/var/lib/rpm/.rpm.lock";

/// dpkg's state (or rpm's, where there is no dpkg).
pub fn state() -> Option<PackageReading> {
    let locks = read_text("/proc/locks").unwrap_or_default();
    let held = parse_locks(&locks);
    let holders = |paths: &[&str]| -> Vec<(String, u32, String)> {
        paths
            .iter()
            .filter_map(|p| {
                let meta = fs::metadata(p).ok()?;
                let key = (major(meta.dev()), minor(meta.dev()), meta.ino());
                let pid = held.iter().find(|(_, k)| *k == key)?.0;
                let process = read_text(format!("/proc/{pid}/comm"))
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
}
