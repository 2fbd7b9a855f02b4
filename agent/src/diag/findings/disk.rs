//! Disk rules: file systems running out of space.

use sprijin_proto::diag_text::{human_bytes, percent};
use sprijin_proto::message::diag::{Disk, Evidence, Finding, Severity, Snapshot};

use super::{Thresholds, scripts};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;

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
}
