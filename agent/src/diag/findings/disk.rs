//! Disk rules: file systems running out of space or inodes, space held by
//! deleted files still open, and file systems mounted read-only.

use sprijin_proto::catalog::Platform;
use sprijin_proto::diag_text::{human_bytes, percent};
use sprijin_proto::message::diag::{Disk, Evidence, Finding, FolderSize, Severity, Snapshot};

use super::Thresholds;
use crate::diag::folders;

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
        let folder = big_folder(s, d, t);
        let mut evidence = vec![
            Evidence::new("mount point", &d.mount_point),
            Evidence::new("used", format!("{used_percent:.1}%")),
            Evidence::new("used size", human_bytes(used)),
            Evidence::new("free", human_bytes(free)),
            Evidence::new("size", human_bytes(d.total_bytes)),
            Evidence::new("file system", &d.file_system),
            Evidence::new("device", &d.device),
        ];
        if let Some(f) = folder {
            evidence.push(Evidence::new(
                "largest known folder",
                format!(
                    "{} ({}): {}{} in {} files",
                    f.path,
                    f.label,
                    if f.complete { "" } else { "at least " },
                    human_bytes(f.bytes),
                    f.files
                ),
            ));
        }
        let (script, params) = disk_script(d, folder, t);
        out.push(Finding {
            id: "disk-nearly-full".into(),
            severity,
            title: format!(
                "Disk {} is {}% full, {} free",
                d.mount_point,
                used_percent.floor(),
                human_bytes(free)
            ),
            evidence,
            subject: Some(d.mount_point.clone()),
            script: script.map(String::from),
            params,
        });
    }
    out
}

/// The script that frees space where it most likely went, with the values
/// the finding gives it: the measured folder that holds much of the disk
/// when there is one, else by where the file system is mounted.
fn disk_script(
    d: &Disk,
    folder: Option<&FolderSize>,
    t: &Thresholds,
) -> (Option<&'static str>, Vec<(String, String)>) {
    let fixes = t.fixes();
    match folder {
        Some(f) if f.label == folders::USER_CACHE && fixes.clear_own_cache.is_some() => {
            return (
                fixes.clear_own_cache,
                vec![("dir".to_string(), f.path.clone())],
            );
        }
        Some(f) if f.label == folders::USER_TEMP => return (fixes.clear_user_files, Vec::new()),
        _ => {}
    }
    (by_mount_point(d, t), Vec::new())
}

/// The script for a full disk by where it is mounted.
fn by_mount_point(d: &Disk, t: &Thresholds) -> Option<&'static str> {
    let fixes = t.fixes();
    if t.platform != Platform::Linux {
        return fixes.largest_folders;
    }
    let mount_point = d.mount_point.as_str();
    let under = |root: &str| {
        mount_point == root
            || mount_point
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if mount_point == "/" || under("/var") {
        fixes.free_system_space
    } else if under("/home") {
        fixes.clear_user_files
    } else {
        fixes.largest_folders
    }
}

/// The largest measured folder on this disk holding at least the
/// threshold share of it.
fn big_folder<'a>(s: &'a Snapshot, d: &Disk, t: &Thresholds) -> Option<&'a FolderSize> {
    s.folders
        .iter()
        .filter(|f| is_below(&f.path, &d.mount_point))
        .filter(|f| percent(f.bytes, d.total_bytes) >= t.folder_share_percent)
        .max_by_key(|f| f.bytes)
}

/// Whether `path` is on the file system mounted at `mount_point`. Windows
/// drive letters ("C:\\") compare without case.
fn is_below(path: &str, mount_point: &str) -> bool {
    let (p, m) = (path.to_lowercase(), mount_point.to_lowercase());
    match p.strip_prefix(&m) {
        Some(rest) => m.ends_with(['/', '\\']) || rest.is_empty() || rest.starts_with(['/', '\\']),
        None => false,
    }
}

/// File system types that are read-only by design: images and optical media.
const READ_ONLY_BY_DESIGN: &[&str] = &["squashfs", "iso9660", "udf", "erofs", "cramfs"];

/// Whether a mount point is one that should be writable: "/" itself, or a
/// watched root or anything mounted below one.
fn should_be_writable(mount_point: &str, t: &Thresholds) -> bool {
    t.writable_mounts.iter().any(|root| {
        mount_point == root
            || (root != "/"
                && mount_point
                    .strip_prefix(root.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    })
}

/// A file system that should be writable (the root, `/home`, `/var`, ...)
/// is mounted read-only: the kernel does that after disk errors, and every
/// program writing there fails.
pub fn read_only_file_system(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.disks
        .iter()
        .filter(|d| d.read_only && should_be_writable(&d.mount_point, t))
        .filter(|d| {
            let fs = d.file_system.as_str();
            !PSEUDO_FILE_SYSTEMS.contains(&fs) && !READ_ONLY_BY_DESIGN.contains(&fs)
        })
        // Snap packages mount read-only images below /var/lib/snapd.
        .filter(|d| !d.mount_point.starts_with("/var/lib/snapd/"))
        .map(|d| Finding {
            id: "read-only-file-system".into(),
            severity: Severity::Critical,
            title: format!(
                "File system {} is mounted read-only: nothing can be saved there",
                d.mount_point
            ),
            evidence: vec![
                Evidence::new("mount point", &d.mount_point),
                Evidence::new("mounted", "read-only"),
                Evidence::new("file system", &d.file_system),
                Evidence::new("device", &d.device),
                Evidence::new("free", human_bytes(d.available_bytes.min(d.total_bytes))),
            ],
            subject: Some(d.mount_point.clone()),
            script: None,
            params: Vec::new(),
        })
        .collect()
}

/// A file system out of (or nearly out of) inodes while it may still have
/// free bytes: no new file can be created, and "disk full" errors appear on
/// a disk that `df -h` shows with room.
pub fn inodes_exhausted(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let mut seen: Vec<&Disk> = Vec::new();
    let mut out = Vec::new();
    let mut candidates: Vec<&Disk> = s
        .disks
        .iter()
        .filter(|d| d.inodes_total > 0 && !d.read_only)
        .filter(|d| !PSEUDO_FILE_SYSTEMS.contains(&d.file_system.as_str()))
        .collect();
    candidates.sort_by_key(|d| (d.mount_point.len(), d.mount_point.as_str()));
    for d in candidates {
        let same = |o: &&Disk| {
            o.device == d.device
                && o.file_system == d.file_system
                && o.inodes_total == d.inodes_total
                && o.inodes_free == d.inodes_free
        };
        if seen.iter().any(same) {
            continue;
        }
        seen.push(d);
        let free = d.inodes_free.min(d.inodes_total);
        let used = d.inodes_total - free;
        let used_percent = percent(used, d.inodes_total);
        if used_percent < t.inode_warning_percent {
            continue;
        }
        let severity = if used_percent >= t.inode_critical_percent || free == 0 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let bytes_free = d.available_bytes.min(d.total_bytes);
        let title = if free == 0 {
            format!(
                "File system {} has no inodes left: no new file can be created, though {} is free",
                d.mount_point,
                human_bytes(bytes_free)
            )
        } else {
            format!(
                "File system {} has used {}% of its inodes, {} left; {} free",
                d.mount_point,
                used_percent.floor(),
                free,
                human_bytes(bytes_free)
            )
        };
        out.push(Finding {
            id: "inodes-exhausted".into(),
            severity,
            title,
            evidence: vec![
                Evidence::new("mount point", &d.mount_point),
                Evidence::new("inodes used", format!("{used} of {}", d.inodes_total)),
                Evidence::new("inodes used share", format!("{used_percent:.1}%")),
                Evidence::new("inodes free", free.to_string()),
                Evidence::new("space free", human_bytes(bytes_free)),
                Evidence::new("size", human_bytes(d.total_bytes)),
                Evidence::new("file system", &d.file_system),
                Evidence::new("device", &d.device),
            ],
            subject: Some(d.mount_point.clone()),
            script: t.fixes().folders_with_most_files.map(String::from),
            params: Vec::new(),
        });
    }
    out
}

/// A process keeping deleted files open that take at least the threshold
/// bytes, or share of their file system: the space stays used until the
/// process closes them, so `df` says full while `du` finds nothing.
pub fn deleted_files_hold_space(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.deleted_open
        .iter()
        .filter_map(|p| {
            let disk = s.disks.iter().find(|d| d.mount_point == p.mount_point);
            let size = disk.map_or(0, |d| d.total_bytes);
            let share = percent(p.bytes, size);
            if p.bytes < t.deleted_open_bytes && (size == 0 || share < t.deleted_open_percent) {
                return None;
            }
            let on_mount: Vec<String> = s
                .deleted_open
                .iter()
                .filter(|o| o.mount_point == p.mount_point)
                .map(|o| format!("{} (pid {}) {}", o.name, o.pid, human_bytes(o.bytes)))
                .collect();
            let severity = match disk {
                Some(d)
                    if percent(d.total_bytes - d.available_bytes.min(d.total_bytes), d.total_bytes)
                        >= t.disk_warning_percent =>
                {
                    Severity::Critical
                }
                _ => Severity::Warning,
            };
            let mut evidence = vec![
                Evidence::new("process", format!("{} (pid {})", p.name, p.pid)),
                Evidence::new("held by deleted files", human_bytes(p.bytes)),
                Evidence::new("deleted files open", p.files.to_string()),
                Evidence::new("largest", &p.largest_path),
                Evidence::new("mount point", &p.mount_point),
            ];
            if let Some(d) = disk {
                evidence.push(Evidence::new(
                    "share of the file system",
                    format!("{share:.1}% of {}", human_bytes(d.total_bytes)),
                ));
                evidence.push(Evidence::new(
                    "free",
                    human_bytes(d.available_bytes.min(d.total_bytes)),
                ));
            }
            evidence.push(Evidence::new("all holders there", on_mount.join(", ")));
            Some(Finding {
                id: "deleted-files-hold-space".into(),
                severity,
                title: format!(
                    "{} (pid {}) keeps {} of deleted files open on {}: the space returns when it closes them",
                    p.name,
                    p.pid,
                    human_bytes(p.bytes),
                    if p.mount_point.is_empty() { "?" } else { &p.mount_point }
                ),
                evidence,
                subject: Some(p.pid.to_string()),
                script: t.fixes().list_deleted_open_files.map(String::from),
                params: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;
    use sprijin_proto::message::diag::DeletedOpenFiles;

    #[test]
    fn disk_at_90_percent_is_a_warning_with_its_numbers() {
        let mut s = quiet();
        s.disks[1] = disk("/srv/data", 100 * GIB, 10 * GIB);
        let f = only(disk_nearly_full(&s, &linux()));
        assert_eq!(f.id, "disk-nearly-full");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.as_deref(), Some("/srv/data"));
        assert_eq!(f.title, "Disk /srv/data is 90% full, 10.0 GiB free");
        assert_eq!(evidence(&f, "used"), "90.0%");
        assert_eq!(evidence(&f, "free"), "10.0 GiB");
        assert_eq!(evidence(&f, "size"), "100.0 GiB");
        assert_eq!(f.script.as_deref(), Some("largest-folders"));
    }

    #[test]
    fn disk_just_below_90_percent_is_quiet() {
        let mut s = quiet();
        s.disks[1] = disk("/srv/data", 1000 * GIB, 100 * GIB + 1);
        assert_eq!(disk_nearly_full(&s, &linux()), vec![]);
    }

    #[test]
    fn disk_at_97_percent_is_critical() {
        let mut s = quiet();
        s.disks[0] = disk("/", 1000 * GIB, 30 * GIB);
        let f = only(disk_nearly_full(&s, &linux()));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.script.as_deref(), Some("journal-vacuum"));
        // Just below 97% with plenty left is still only a warning.
        s.disks[0] = disk("/", 1000 * GIB, 30 * GIB + 1);
        assert_eq!(
            only(disk_nearly_full(&s, &linux())).severity,
            Severity::Warning
        );
    }

    #[test]
    fn small_disk_past_warning_with_under_a_gib_free_is_critical() {
        let mut s = quiet();
        s.disks[1] = disk("/boot", 10 * GIB - 1, GIB - 1);
        assert_eq!(
            only(disk_nearly_full(&s, &linux())).severity,
            Severity::Critical
        );
        s.disks[1] = disk("/boot", 10 * GIB, GIB);
        assert_eq!(
            only(disk_nearly_full(&s, &linux())).severity,
            Severity::Warning
        );
        // Under a GiB free but far from full is not a finding at all.
        s.disks[1] = disk("/boot", GIB, GIB / 2);
        assert_eq!(disk_nearly_full(&s, &linux()), vec![]);
    }

    #[test]
    fn pseudo_read_only_and_empty_file_systems_are_ignored() {
        let mut s = quiet();
        let mut snap = disk("/snap/core/1", GIB, 0);
        snap.file_system = "squashfs".into();
        let mut cdrom = disk("/media/cdrom", GIB, 0);
        cdrom.read_only = true;
        s.disks.extend([snap, cdrom, disk("/sys/x", 0, 0)]);
        assert_eq!(disk_nearly_full(&s, &linux()), vec![]);
    }

    #[test]
    fn full_tmpfs_is_reported() {
        let mut s = quiet();
        let mut tmp = disk("/tmp", 8 * MIB, MIB / 8);
        tmp.file_system = "tmpfs".into();
        s.disks.push(tmp);
        let f = only(disk_nearly_full(&s, &linux()));
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
        let f = only(disk_nearly_full(&s, &linux()));
        assert_eq!(f.subject.as_deref(), Some("/"));
    }

    #[test]
    fn disk_scripts_follow_the_mount_point() {
        let t = linux();
        let script = |m: &str| by_mount_point(&disk(m, GIB, 0), &t);
        assert_eq!(script("/"), Some("journal-vacuum"));
        assert_eq!(script("/var"), Some("journal-vacuum"));
        assert_eq!(script("/var/log"), Some("journal-vacuum"));
        assert_eq!(script("/home"), Some("clear-user-cache"));
        assert_eq!(script("/home/ana"), Some("clear-user-cache"));
        assert_eq!(script("/homework"), Some("largest-folders"));
        assert_eq!(script("/variable"), Some("largest-folders"));
        assert_eq!(script("/srv"), Some("largest-folders"));
    }

    #[test]
    fn a_disk_filled_by_the_persons_cache_names_the_script_they_may_run_with_the_folder() {
        let mut s = quiet();
        s.disks = vec![disk("/home", 10 * GIB, GIB / 2)];
        s.folders = vec![FolderSize {
            path: "/home/ana/.cache".into(),
            label: folders::USER_CACHE.into(),
            bytes: 6 * GIB,
            files: 5000,
            complete: true,
        }];
        let f = only(disk_nearly_full(&s, &linux()));
        assert_eq!(f.script.as_deref(), Some("clear-my-cache"));
        assert_eq!(
            f.params,
            [("dir".to_string(), "/home/ana/.cache".to_string())]
        );
        // A small cache leaves the choice to the mount point, with no values.
        s.folders[0].bytes = GIB / 100;
        let f = only(disk_nearly_full(&s, &linux()));
        assert_eq!(f.script.as_deref(), Some("clear-user-cache"));
        assert!(f.params.is_empty());
    }

    /// A Windows system drive, as `sysinfo` and the folder walk report it.
    fn windows_c(free: u64) -> Snapshot {
        let mut s = quiet();
        s.disks = vec![Disk {
            mount_point: "C:\\".into(),
            device: "Windows".into(),
            file_system: "NTFS".into(),
            total_bytes: 100 * GIB,
            available_bytes: free,
            ..Disk::default()
        }];
        s.folders = vec![
            FolderSize {
                path: r"c:\Users\ana\AppData\Local\Temp".into(),
                label: folders::USER_TEMP.into(),
                bytes: 30 * GIB,
                files: 120_000,
                complete: false,
            },
            FolderSize {
                path: r"C:\Windows\SoftwareDistribution\Download".into(),
                label: "downloaded Windows updates".into(),
                bytes: 4 * GIB,
                files: 300,
                complete: true,
            },
        ];
        s
    }

    #[test]
    fn a_full_windows_drive_names_the_folder_that_filled_it() {
        let s = windows_c(2 * GIB);
        let f = only(disk_nearly_full(&s, &windows()));
        assert_eq!(f.title, "Disk C:\\ is 98% full, 2.0 GiB free");
        assert_eq!(
            evidence(&f, "largest known folder"),
            r"c:\Users\ana\AppData\Local\Temp (your temporary files): at least 30.0 GiB in 120000 files"
        );
        assert_eq!(f.script.as_deref(), Some("windows-clear-temp"));
    }

    #[test]
    fn a_full_windows_drive_without_a_big_known_folder_lists_folders() {
        let mut s = windows_c(2 * GIB);
        s.folders.remove(0);
        let f = only(disk_nearly_full(&s, &windows()));
        assert!(f.evidence.iter().all(|e| e.label != "largest known folder"));
        assert_eq!(f.script.as_deref(), Some("windows-largest-folders"));
        assert!(is_below(r"D:\x", "d:\\"));
        assert!(!is_below(r"D:\x", "C:\\"));
        assert!(!is_below("/srvx/a", "/srv"));
    }

    // Read-only, inodes, deleted files

    #[test]
    fn root_mounted_read_only_is_critical() {
        let mut s = quiet();
        s.disks[0].read_only = true;
        let f = only(read_only_file_system(&s, &linux()));
        assert_eq!(f.id, "read-only-file-system");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.as_deref(), Some("/"));
        assert_eq!(evidence(&f, "mounted"), "read-only");
        assert_eq!(evidence(&f, "file system"), "ext4");
    }

    #[test]
    fn images_and_unwatched_mounts_may_be_read_only() {
        let mut s = quiet();
        let mut snap = disk("/var/lib/snapd/snap/core/1", GIB, 0);
        snap.read_only = true;
        snap.file_system = "squashfs".into();
        let mut usb = disk("/media/usb", GIB, 0);
        usb.read_only = true;
        let mut cgroup = disk("/sys/fs/cgroup", 0, 0);
        cgroup.read_only = true;
        cgroup.file_system = "tmpfs".into();
        let mut lookalike = disk("/homework", GIB, 0);
        lookalike.read_only = true;
        s.disks.extend([snap, usb, cgroup, lookalike]);
        assert_eq!(read_only_file_system(&s, &linux()), vec![]);
        let mut below = disk("/srv/data", GIB, GIB);
        below.read_only = true;
        s.disks.push(below);
        assert_eq!(
            only(read_only_file_system(&s, &linux())).subject.as_deref(),
            Some("/srv/data")
        );
    }

    #[test]
    fn no_inodes_left_with_bytes_free_is_critical() {
        let mut s = quiet();
        let mut tmp = disk("/srv/mail", 4 * MIB, 3 * MIB);
        tmp.inodes_total = 64;
        tmp.inodes_free = 0;
        s.disks.push(tmp);
        let f = only(inodes_exhausted(&s, &linux()));
        assert_eq!(f.id, "inodes-exhausted");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.as_deref(), Some("/srv/mail"));
        assert_eq!(
            f.title,
            "File system /srv/mail has no inodes left: no new file can be created, though 3.0 MiB is free"
        );
        assert_eq!(evidence(&f, "inodes used"), "64 of 64");
        assert_eq!(evidence(&f, "space free"), "3.0 MiB");
        assert_eq!(f.script.as_deref(), Some("folders-with-most-files"));
    }

    #[test]
    fn inodes_at_90_percent_warn_and_below_are_quiet() {
        let mut s = quiet();
        s.disks[1].inodes_free = 100_000;
        let f = only(inodes_exhausted(&s, &linux()));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "inodes used share"), "90.0%");
        s.disks[1].inodes_free = 100_001;
        assert_eq!(inodes_exhausted(&s, &linux()), vec![]);
        // A file system that does not count inodes says nothing.
        s.disks[1].inodes_total = 0;
        s.disks[1].inodes_free = 0;
        assert_eq!(inodes_exhausted(&s, &linux()), vec![]);
    }

    fn holder(pid: u32, name: &str, mount_point: &str, bytes: u64) -> DeletedOpenFiles {
        DeletedOpenFiles {
            pid,
            name: name.into(),
            mount_point: mount_point.into(),
            files: 2,
            bytes,
            largest_path: format!("{mount_point}/old.log"),
        }
    }

    #[test]
    fn deleted_files_held_open_name_the_process_and_its_share() {
        let mut s = quiet();
        s.disks[0] = disk("/", 100 * GIB, 5 * GIB);
        s.deleted_open = vec![
            holder(812, "rsyslogd", "/", 30 * GIB),
            holder(900, "less", "/", MIB),
        ];
        let f = only(deleted_files_hold_space(&s, &linux()));
        assert_eq!(f.id, "deleted-files-hold-space");
        assert_eq!(f.severity, Severity::Critical, "the disk is 95% full");
        assert_eq!(f.subject.as_deref(), Some("812"));
        assert_eq!(
            f.title,
            "rsyslogd (pid 812) keeps 30.0 GiB of deleted files open on /: the space returns when it closes them"
        );
        assert_eq!(evidence(&f, "held by deleted files"), "30.0 GiB");
        assert_eq!(
            evidence(&f, "share of the file system"),
            "30.0% of 100.0 GiB"
        );
        assert_eq!(
            evidence(&f, "all holders there"),
            "rsyslogd (pid 812) 30.0 GiB, less (pid 900) 1.0 MiB"
        );
        assert_eq!(f.script.as_deref(), Some("list-deleted-open-files"));
    }

    #[test]
    fn small_deleted_files_are_quiet_but_a_large_share_of_a_small_disk_is_not() {
        let mut s = quiet();
        s.deleted_open = vec![holder(5, "a", "/", GIB - 1)];
        assert_eq!(deleted_files_hold_space(&s, &linux()), vec![]);
        let mut tmp = disk("/srv/t", 8 * MIB, 2 * MIB);
        tmp.file_system = "tmpfs".into();
        s.disks.push(tmp);
        s.deleted_open = vec![holder(6, "tail", "/srv/t", 6 * MIB)];
        let f = only(deleted_files_hold_space(&s, &linux()));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "share of the file system"), "75.0% of 8.0 MiB");
    }
}
