//! Linux's diagnostics sources beyond `sysinfo`: `/proc` (files deleted
//! but held open, open-file limits, default routes), the kernel log
//! (out-of-memory kills), systemd-logind's sessions (who is logged in),
//! `systemctl` (failed units) and `timedatectl` (clock synchronisation;
//! without it, the kernel's own mark, `super::clock`).
//!
//! [`Readings`] is taken with every sample; [`slow_readings`] runs on the
//! slow-check thread. Everything read here comes from outside the process,
//! so a failure leaves the reading empty rather than failing the snapshot.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{Routes, Services, Snapshot};

use super::procfs::{self, FdScan, KernelLog};
use crate::diag::probes::{COMMAND_TIMEOUT, SlowReadings};

pub use crate::platform::unix::diag::inodes;

/// `sysinfo`'s CPU usage works here.
pub const SYSINFO_CPU_USAGE: bool = true;

/// `sysinfo`'s sensors work here (hwmon).
pub const SYSINFO_SENSORS: bool = true;

/// Where systemd-logind describes open login sessions, one file each.
const LOGIND_SESSIONS_DIR: &str = "/run/systemd/sessions";

/// Present when systemd is the service manager.
const SYSTEMD_RUNTIME_DIR: &str = "/run/systemd/system";

/// Bounds on reading logind's session files, which are tiny in practice.
const MAX_SESSION_FILES: usize = 256;
const MAX_SESSION_FILE_BYTES: u64 = 64 * 1024;

/// Most a command's output is read.
const MAX_COMMAND_OUTPUT: u64 = 1 << 20;

/// How often a running command is checked for its end.
const COMMAND_POLL: Duration = Duration::from_millis(20);

/// What one sample reads beyond `sysinfo`.
pub struct Readings {
    fd_scan: FdScan,
    routes: Option<Routes>,
    kernel_log: KernelLog,
    logged_in: Vec<String>,
}

impl Default for Readings {
    fn default() -> Self {
        Self::new()
    }
}

impl Readings {
    pub fn new() -> Readings {
        Readings {
            fd_scan: FdScan::default(),
            routes: None,
            kernel_log: KernelLog::open(Path::new("/dev/kmsg")),
            logged_in: Vec::new(),
        }
    }

    /// Reads once more. `mount_points` are the mounted file systems (to
    /// place deleted files); `boot_time_secs` dates the kernel's records.
    pub fn sample(&mut self, mount_points: &[String], boot_time_secs: u64) {
        let proc_root = Path::new("/proc");
        self.fd_scan = procfs::scan_fds(proc_root, mount_points);
        self.routes = procfs::routes(proc_root);
        self.kernel_log.read_new(boot_time_secs);
        self.logged_in = logged_in_users(Path::new(LOGIND_SESSIONS_DIR));
    }

    /// Puts the readings into a snapshot `sysinfo` has filled.
    pub fn fill(&self, s: &mut Snapshot) {
        s.users = self.logged_in.clone();
        s.deleted_open = self.fd_scan.deleted_open.clone();
        s.open_files = self.fd_scan.open_files.clone();
        s.routes = self.routes.clone();
        s.oom_kills = self.kernel_log.kills().to_vec();
    }
}

/// The resolvers the C library uses.
pub fn resolvers() -> Vec<String> {
    crate::platform::unix::diag::resolvers(Path::new(crate::platform::unix::diag::RESOLV_CONF))
}

/// Failed units and the clock as systemd says, where it runs; elsewhere
/// (or where its time service does not answer) the clock as the kernel
/// says.
pub fn slow_readings(slow: &mut SlowReadings) {
    if Path::new(SYSTEMD_RUNTIME_DIR).is_dir() {
        slow.services = failed_units();
        slow.clock_synchronized = clock_synchronized();
    }
    if slow.clock_synchronized.is_none() {
        slow.clock_synchronized = super::clock::kernel_clock_synchronized();
    }
}

/// Folders whose size the slow checks measure: the person's own cache
/// (`$XDG_CACHE_HOME`, else `~/.cache`), which the person may clear alone.
/// Other folders are measured by a script the disk findings name.
pub fn folders_to_measure() -> Vec<(String, PathBuf)> {
    user_cache()
        .map(|dir| (crate::diag::folders::USER_CACHE.to_string(), dir))
        .into_iter()
        .collect()
}

/// The person's cache folder, from an absolute `$XDG_CACHE_HOME` or else
/// `$HOME/.cache`.
fn user_cache() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| Some(std::env::var_os("HOME").and_then(absolute)?.join(".cache")))
}

/// Names of people with an open login session, from systemd-logind's
/// session files. `sysinfo` lists the accounts of a machine but not who is
/// logged in; without logind (other init systems, other platforms) this is
/// empty rather than a guess.
fn logged_in_users(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .take(MAX_SESSION_FILES)
        // The directory also holds FIFOs (".ref"), and opening one would
        // block until someone writes to it.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let mut text = String::new();
            fs::File::open(e.path())
                .ok()?
                .take(MAX_SESSION_FILE_BYTES)
                .read_to_string(&mut text)
                .ok()?;
            session_user(&text)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The user of one logind session file, if it is a person's session that is
/// still open (not a login greeter, not closing).
fn session_user(text: &str) -> Option<String> {
    let mut user = None;
    let mut class = None;
    let mut state = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            match key {
                "USER" => user = Some(value.trim()),
                "CLASS" => class = Some(value.trim()),
                "STATE" => state = Some(value.trim()),
                _ => {}
            }
        }
    }
    let is_person = class.is_none_or(|c| c == "user");
    let is_open = state.is_none_or(|s| s != "closing");
    user.filter(|u| !u.is_empty() && is_person && is_open)
        .map(str::to_string)
}

/// Runs a program with a deadline; its standard output when it ends in
/// time with success.
pub fn output_within(program: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut stdout, MAX_COMMAND_OUTPUT),
            &mut out,
        );
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(COMMAND_POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = reader.join().ok()?;
    status
        .filter(|s| s.success())
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// Units in the failed state, as `systemctl` lists them.
fn failed_units() -> Option<Services> {
    let out = output_within(
        "systemctl",
        &["--failed", "--plain", "--no-legend", "--no-pager"],
        COMMAND_TIMEOUT,
    )?;
    Some(Services {
        failed_units: parse_failed_units(&out),
        ..Services::default()
    })
}

fn parse_failed_units(out: &str) -> Vec<String> {
    let mut units: Vec<String> = out
        .lines()
        // Some versions print a bullet even with --plain.
        .filter_map(|l| l.split_whitespace().find(|w| *w != "●" && *w != "*"))
        .map(|u| u.trim_start_matches('●').to_string())
        .filter(|u| !u.is_empty() && u.contains('.'))
        .collect();
    units.sort();
    units.dedup();
    units
}

/// Whether the clock is synchronised, as systemd's time service says.
fn clock_synchronized() -> Option<bool> {
    let out = output_within(
        "timedatectl",
        &["show", "-p", "NTPSynchronized", "--value"],
        COMMAND_TIMEOUT,
    )?;
    match out.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_user_session_names_its_user() {
        let text = "# This is private data. Do not parse.\nUID=1000\nUSER=ana\nACTIVE=1\nSTATE=active\nCLASS=user\n";
        assert_eq!(session_user(text), Some("ana".to_string()));
    }

    #[test]
    fn greeter_and_closing_sessions_are_not_people() {
        assert_eq!(
            session_user("USER=gdm\nCLASS=greeter\nSTATE=online\n"),
            None
        );
        assert_eq!(session_user("USER=ana\nCLASS=user\nSTATE=closing\n"), None);
        assert_eq!(session_user("CLASS=user\n"), None);
    }

    #[test]
    fn logged_in_users_reads_files_only_sorted_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("3"), "USER=ion\nCLASS=user\n").unwrap();
        fs::write(dir.path().join("1"), "USER=ana\nCLASS=user\n").unwrap();
        fs::write(dir.path().join("2"), "USER=ana\nCLASS=user\n").unwrap();
        fs::create_dir(dir.path().join("4")).unwrap();
        assert_eq!(logged_in_users(dir.path()), ["ana", "ion"]);
    }

    #[test]
    fn missing_session_dir_means_no_users() {
        let dir = tempfile::tempdir().unwrap();
        assert!(logged_in_users(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn failed_units_are_the_first_column() {
        let out =
            "cups.service loaded failed failed CUPS Scheduler\n● x.mount loaded failed failed X\n";
        assert_eq!(parse_failed_units(out), ["cups.service", "x.mount"]);
    }

    #[test]
    fn a_command_past_its_deadline_is_ended() {
        let started = Instant::now();
        assert_eq!(
            output_within("sleep", &["10"], Duration::from_millis(200)),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            output_within("echo", &["hi"], Duration::from_secs(5)).as_deref(),
            Some("hi\n")
        );
    }
}
