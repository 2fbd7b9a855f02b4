//! Helpers for the tests that make real faults on this machine (root,
//! tmpfs, processes killed when a test ends) and read the agent's report
//! of them: `findings_faults.rs` (what one snapshot shows) and
//! `findings_over_time.rs` (what the watcher sees).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{DiagReport, Finding};

use crate::bin;

pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// True when the test can go on; outside CI a test that needs root is
/// skipped, in CI (which runs as root) it fails.
pub fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "this test needs root; CI runs as root, so it must work there"
    );
    eprintln!("skipping: needs root (set CI to make this a failure)");
    false
}

pub fn parse_report(out: std::process::Output, what: &str) -> DiagReport {
    assert!(
        out.status.success(),
        "{what} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what} gave bad json ({e}): {text}"))
}

/// `sprijin-agent diag --json` at a quick look (no watching).
pub fn diag_json() -> DiagReport {
    diag_json_watching(0)
}

/// `sprijin-agent diag --json --watch SECS`.
pub fn diag_json_watching(secs: u64) -> DiagReport {
    let out = Command::new(bin("sprijin-agent"))
        .args(["diag", "--json", "--watch", &secs.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    parse_report(out, "diag --json")
}

/// The finding with this id about this subject, or a failure showing all.
pub fn finding<'a>(report: &'a DiagReport, id: &str, subject: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.id == id && f.subject.as_deref() == Some(subject))
        .unwrap_or_else(|| panic!("no {id} about {subject} in {:#?}", report.findings))
}

pub fn evidence<'a>(f: &'a Finding, label: &str) -> &'a str {
    f.evidence
        .iter()
        .find(|e| e.label == label)
        .map(|e| e.value.as_str())
        .unwrap_or_else(|| panic!("no evidence {label:?} in {f:#?}"))
}

/// Kills and reaps the child when the test ends, pass or fail.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmpfs mounted for one test; unmounted and its folder removed when the
/// test ends, pass or fail.
pub struct Tmpfs {
    pub path: PathBuf,
    // Holds the folder when it lives in a temporary directory.
    _dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// Mounts a tmpfs with these options at a fresh temporary folder.
    pub fn mount(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        mount_tmpfs(&path, options);
        Tmpfs {
            path,
            _dir: Some(dir),
        }
    }

    /// Mounts a tmpfs at `path`, creating the folder; both go at the end.
    pub fn mount_at(path: PathBuf, options: &str) -> Tmpfs {
        fs::create_dir_all(&path).unwrap();
        let t = Tmpfs { path, _dir: None };
        mount_tmpfs(&t.path, options);
        t
    }

    pub fn mount_point(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

pub fn mount_tmpfs(path: &Path, options: &str) {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "sprijin-test"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs -o {options} failed");
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match Command::new("umount").arg(&self.path).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("could not unmount {}: {other:?}", self.path.display()),
        }
        if self._dir.is_none() {
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// A name no other test run uses at the same time.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits for one line on the child's output, with a deadline.
pub fn wait_for_line(child: &mut Child, want: &str) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.trim() == want => return,
            Ok(_) => {}
            Err(e) => panic!("the child never said {want:?}: {e}"),
        }
    }
}

/// A home folder on a tmpfs of about 10 MiB whose `.cache` fills it past 90% with
/// files last changed 30 days ago: the disk finding names the repair the
/// person may run alone. Mounted at a plain path (no part starts with a
/// dot), as a real home is.
pub fn home_full_of_cache() -> Tmpfs {
    // Each a different size: the agent reports file systems that look the
    // same (device, type, size, free space) once, as bind mounts of one,
    // and tests run side by side.
    static HOMES: AtomicUsize = AtomicUsize::new(0);
    let kib = 10 * 1024 + 64 * HOMES.fetch_add(1, Ordering::Relaxed) as u64;
    let home = Tmpfs::mount_at(
        std::env::temp_dir().join(unique("sprijin-home")),
        &format!("size={kib}k,mode=0700"),
    );
    let cache = home.path.join(".cache").join("browser");
    fs::create_dir_all(&cache).unwrap();
    let month_ago = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
    let blobs = kib * 1024 * 92 / 100 / 500_000 + 1;
    for i in 0..blobs {
        let path = cache.join(format!("blob-{i}"));
        fs::write(&path, vec![0x5a; 500_000]).unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(month_ago)
            .unwrap();
    }
    home
}

/// How full the file system at `path` is, in percent, from `df`.
pub fn used_percent(path: &Path) -> u32 {
    let out = Command::new("df")
        .args(["--output=pcent"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("df said {text:?}"))
}
