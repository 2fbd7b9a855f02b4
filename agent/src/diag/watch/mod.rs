//! The watcher: what the agent sees change over time, so findings can name
//! causes that one snapshot cannot show (a program restarting in a loop, a
//! file filling a disk, a group held at its limit, memory thrash).
//!
//! The platform's reader (`crate::platform::WatchReader`; on systems
//! with nothing more to watch, [`NothingToWatch`]) takes one
//! [`Reading`] a second: the kernel's fork counter, the process table,
//! free space, pressure stall information, control group counters and the
//! package manager's locks. The [`Watcher`] keeps what the rules need of
//! the last [`HISTORY`] and turns it into [`Trends`]; it is plain data in,
//! plain data out, so every rule is tested on recorded readings. The
//! watcher also tells the reader where to look closer: the file systems
//! that are filling (for the files growing on them) and whether memory
//! stalls (for page faults by process).

mod churn;
mod growth;
mod limits;

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{LockHolder, PackageState, Pressure, Stall, Stalled, Trends};

pub use churn::ProcEntry;
pub use growth::{MountSpace, OpenFile};
pub use limits::LimitCounter;

/// One reading a second.
pub const STEP: Duration = Duration::from_secs(1);

/// How far back the watcher remembers.
pub const HISTORY: Duration = Duration::from_secs(600);

/// The window rates are measured over.
pub const RATE_WINDOW_MS: u64 = 60_000;

/// Memory stalling at least this share (some, last 10 s) makes the reader
/// read page faults by process.
pub const MEMORY_STALL_LOOK_PERCENT: f64 = 5.0;

/// A process reading at least this many pages a second from disk is named
/// as stalled on memory.
pub const FAULTS_PER_SEC_NAMED: f64 = 50.0;

/// How many entries each list of trends keeps.
pub const MAX_ENTRIES: usize = 5;

/// What the reader saw at one moment. `None` (or empty) where it did not
/// read that part this time.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Milliseconds on a clock that only goes forward.
    pub at_ms: u64,
    /// Processes started since boot.
    pub forks: Option<u64>,
    /// Every process, when the table was read.
    pub processes: Option<Vec<ProcEntry>>,
    /// Free space of each local file system.
    pub mounts: Vec<MountSpace>,
    /// Files open on the file systems that are filling.
    pub open_files: Vec<OpenFile>,
    /// System-wide stall shares and the groups that report their own.
    pub pressure: Option<PressureReading>,
    /// Page faults that read from disk, by process (only while memory
    /// stalls): pid, name, total since the process began.
    pub faults: Vec<(u32, String, u64)>,
    /// Control group counters, when the groups were walked.
    pub limits: Option<Vec<LimitCounter>>,
    /// The package manager's state, when it was read.
    pub packages: Option<PackageReading>,
}

/// Pressure stall information as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PressureReading {
    pub cpu: Stall,
    pub memory: Stall,
    pub io: Stall,
    /// Control groups stalling on memory (cgroup v2 only).
    pub groups: Vec<Stalled>,
}

/// The package manager as read: whether an install was cut off, and who
/// holds its locks (path, pid, process name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackageReading {
    pub manager: String,
    pub interrupted: bool,
    pub locks: Vec<(String, u32, String)>,
}

/// Everything remembered between readings.
#[derive(Debug, Default)]
pub struct Watcher {
    first_ms: Option<u64>,
    last_ms: u64,
    forks: VecDeque<(u64, u64)>,
    churn: churn::Tracker,
    growth: growth::Tracker,
    limits: limits::Tracker,
    pressure: Option<PressureReading>,
    faults: HashMap<u32, (u64, u64)>,
    fault_rates: Vec<Stalled>,
    packages: Option<PackageReading>,
    lock_since: HashMap<(String, u32), u64>,
}

impl Watcher {
    pub fn new() -> Watcher {
        Watcher::default()
    }

    /// Takes one reading in.
    pub fn step(&mut self, r: Reading) {
        let now = r.at_ms;
        self.first_ms.get_or_insert(now);
        self.last_ms = now;
        let horizon = now.saturating_sub(HISTORY.as_millis() as u64);
        if let Some(forks) = r.forks {
            self.forks.push_back((now, forks));
            while self.forks.front().is_some_and(|(at, _)| *at < horizon) {
                self.forks.pop_front();
            }
        }
        if let Some(processes) = r.processes {
            self.churn.step(now, processes);
        }
        self.growth.step(now, r.mounts, r.open_files);
        if let Some(limits) = r.limits {
            self.limits.step(limits);
        }
        if r.pressure.is_some() {
            self.pressure = r.pressure;
        }
        self.step_faults(now, &r.faults);
        if let Some(packages) = r.packages {
            let held: Vec<(String, u32)> = packages
                .locks
                .iter()
                .map(|(path, pid, _)| (path.clone(), *pid))
                .collect();
            self.lock_since.retain(|k, _| held.contains(k));
            for k in held {
                self.lock_since.entry(k).or_insert(now);
            }
            self.packages = Some(packages);
        }
    }

    fn step_faults(&mut self, now: u64, faults: &[(u32, String, u64)]) {
        let mut rates = Vec::new();
        let mut seen = HashMap::new();
        for (pid, name, total) in faults {
            if let Some((at, before)) = self.faults.get(pid) {
                let secs = now.saturating_sub(*at) as f64 / 1000.0;
                if secs > 0.0 && total >= before {
                    let rate = (total - before) as f64 / secs;
                    if rate >= FAULTS_PER_SEC_NAMED {
                        rates.push(Stalled {
                            resource: "memory".into(),
                            who: format!("{name} (pid {pid})"),
                            measure: format!("{rate:.0} page reads from disk a second"),
                            weight: rate,
                        });
                    }
                }
            }
            seen.insert(*pid, (now, *total));
        }
        self.faults = seen;
        if !faults.is_empty() || !self.stalls_memory() {
            rates.sort_by(|a, b| b.weight.total_cmp(&a.weight));
            rates.truncate(MAX_ENTRIES);
            self.fault_rates = rates;
        }
    }

    /// The file systems whose files the reader should measure.
    pub fn filling(&self) -> Vec<String> {
        self.growth.filling()
    }

    /// Whether the reader should read page faults by process.
    pub fn stalls_memory(&self) -> bool {
        self.pressure
            .as_ref()
            .is_some_and(|p| p.memory.some_avg10 >= MEMORY_STALL_LOOK_PERCENT)
    }

    /// What the watcher has seen, as the rules read it.
    pub fn trends(&self) -> Trends {
        let watched_ms = self
            .last_ms
            .saturating_sub(self.first_ms.unwrap_or(self.last_ms));
        Trends {
            watched_secs: watched_ms / 1000,
            forks_per_minute: self.forks_per_minute(),
            churn: self.churn.churn(self.last_ms),
            growth: self.growth.growth(),
            pressure: self.pressure.as_ref().map(|p| {
                let mut stalled: Vec<Stalled> =
                    p.groups.iter().chain(&self.fault_rates).cloned().collect();
                stalled.sort_by(|a, b| b.weight.total_cmp(&a.weight));
                // Up to MAX_ENTRIES for each of memory, disk and CPU.
                stalled.truncate(3 * MAX_ENTRIES);
                Pressure {
                    cpu: p.cpu.clone(),
                    memory: p.memory.clone(),
                    io: p.io.clone(),
                    stalled,
                }
            }),
            limits: self.limits.hits(),
        }
    }

    /// The package manager's state, with how long each lock has been held.
    pub fn packages(&self) -> Option<PackageState> {
        let p = self.packages.as_ref()?;
        Some(PackageState {
            manager: p.manager.clone(),
            interrupted: p.interrupted,
            locks: p
                .locks
                .iter()
                .map(|(path, pid, process)| LockHolder {
                    path: path.clone(),
                    pid: *pid,
                    process: process.clone(),
                    held_secs: self
                        .lock_since
                        .get(&(path.clone(), *pid))
                        .map_or(0, |since| self.last_ms.saturating_sub(*since) / 1000),
                })
                .collect(),
        })
    }

    /// Forks over the last minute, scaled up when less was watched.
    fn forks_per_minute(&self) -> u64 {
        let Some(&(last_at, last)) = self.forks.back() else {
            return 0;
        };
        let from = last_at.saturating_sub(RATE_WINDOW_MS);
        let Some(&(first_at, first)) = self.forks.iter().find(|(at, _)| *at >= from) else {
            return 0;
        };
        let span = last_at.saturating_sub(first_at);
        if span == 0 {
            return 0;
        }
        last.saturating_sub(first).saturating_mul(RATE_WINDOW_MS) / span
    }
}

/// What the watcher publishes for snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    pub trends: Option<Trends>,
    pub packages: Option<PackageState>,
}

impl Watcher {
    fn watched(&self) -> Watched {
        Watched {
            trends: Some(self.trends()),
            packages: self.packages(),
        }
    }
}

/// Watches on this thread, one reading a [`STEP`], publishing into `out`
/// after each, until `stop` says so or its sender is dropped.
pub fn run(stop: &mpsc::Receiver<()>, out: &Arc<Mutex<Watched>>) {
    let mut reader = crate::platform::WatchReader::new();
    let mut watcher = Watcher::new();
    loop {
        let reading = reader.read(&watcher);
        watcher.step(reading);
        if let Ok(mut o) = out.lock() {
            *o = watcher.watched();
        }
        match stop.recv_timeout(STEP) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Watches on this thread for `how_long` and returns what was seen (for a
/// one-shot report).
pub fn watch_for(how_long: Duration) -> Watched {
    let mut reader = crate::platform::WatchReader::new();
    let mut watcher = Watcher::new();
    let until = Instant::now() + how_long;
    loop {
        let reading = reader.read(&watcher);
        watcher.step(reading);
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return watcher.watched();
        }
        std::thread::sleep(left.min(STEP));
    }
}

/// The reader of a system with nothing to watch beyond what snapshots
/// hold: its readings carry only the time.
pub struct NothingToWatch {
    started: Instant,
}

impl Default for NothingToWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl NothingToWatch {
    pub fn new() -> NothingToWatch {
        NothingToWatch {
            started: Instant::now(),
        }
    }

    pub fn read(&mut self, _watcher: &Watcher) -> Reading {
        Reading {
            at_ms: self.started.elapsed().as_millis() as u64,
            ..Reading::default()
        }
    }
}

/// The unit a control group path names, where its last part is one
/// (`…/cups.service` gives `cups.service`).
pub fn unit_of(group: &str) -> Option<String> {
    let last = group.rsplit('/').next()?;
    [".service", ".scope", ".slice", ".socket", ".mount"]
        .iter()
        .any(|s| last.ends_with(s))
        .then(|| last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_are_counted_per_minute_even_before_a_minute_passed() {
        let mut w = Watcher::new();
        for i in 0..11u64 {
            w.step(Reading {
                at_ms: i * 1000,
                forks: Some(1000 + i * 30),
                ..Reading::default()
            });
        }
        assert_eq!(w.trends().forks_per_minute, 1800);
        assert_eq!(w.trends().watched_secs, 10);
    }

    #[test]
    fn a_fork_counter_that_stands_still_is_zero() {
        let mut w = Watcher::new();
        for i in 0..3u64 {
            w.step(Reading {
                at_ms: i * 1000,
                forks: Some(5),
                ..Reading::default()
            });
        }
        assert_eq!(w.trends().forks_per_minute, 0);
    }

    #[test]
    fn page_faults_name_the_thrashing_process_only_while_memory_stalls() {
        let stalled = PressureReading {
            memory: Stall {
                some_avg10: 40.0,
                ..Stall::default()
            },
            ..PressureReading::default()
        };
        let mut w = Watcher::new();
        w.step(Reading {
            at_ms: 0,
            pressure: Some(stalled.clone()),
            ..Reading::default()
        });
        assert!(w.stalls_memory());
        for (at, faults) in [(1000, 100), (2000, 900)] {
            w.step(Reading {
                at_ms: at,
                pressure: Some(stalled.clone()),
                faults: vec![(42, "hog".into(), faults), (7, "calm".into(), 3)],
                ..Reading::default()
            });
        }
        let p = w.trends().pressure.unwrap();
        assert_eq!(p.stalled.len(), 1, "{:?}", p.stalled);
        assert_eq!(p.stalled[0].who, "hog (pid 42)");
        assert_eq!(p.stalled[0].measure, "800 page reads from disk a second");
        // Memory calm again: nobody is named.
        w.step(Reading {
            at_ms: 3000,
            pressure: Some(PressureReading::default()),
            ..Reading::default()
        });
        assert!(w.trends().pressure.unwrap().stalled.is_empty());
    }

    #[test]
    fn a_lock_held_is_timed_from_when_it_was_first_seen() {
        let mut w = Watcher::new();
        for at in [0, 30_000, 90_000] {
            w.step(Reading {
                at_ms: at,
                packages: Some(PackageReading {
                    manager: "dpkg".into(),
                    interrupted: false,
                    locks: vec![("/var/lib/dpkg/lock".into(), 77, "apt-get".into())],
                }),
                ..Reading::default()
            });
        }
        let p = w.packages().unwrap();
        assert_eq!(p.locks[0].held_secs, 90);
        assert_eq!(p.locks[0].process, "apt-get");
        // Another holder starts the count again.
        w.step(Reading {
            at_ms: 91_000,
            packages: Some(PackageReading {
                manager: "dpkg".into(),
                interrupted: false,
                locks: vec![("/var/lib/dpkg/lock".into(), 78, "dpkg".into())],
            }),
            ..Reading::default()
        });
        assert_eq!(w.packages().unwrap().locks[0].held_secs, 0);
    }

    #[test]
    fn units_are_named_from_their_group() {
        assert_eq!(
            unit_of("/system.slice/cups.service").as_deref(),
            Some("cups.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/session-2.scope").as_deref(),
            Some("session-2.scope")
        );
        assert_eq!(unit_of("/docker/abc"), None);
    }
}
