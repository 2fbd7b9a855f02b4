//! The background sampler: keeps a fresh [`Snapshot`] ready so a request for
//! diagnostics is answered at once.
//!
//! One thread owns a [`Collector`] and samples the system every interval;
//! after each sample it publishes a snapshot on a `watch` channel. CPU usage
//! needs two samples, so the thread takes its second sample
//! [`FIRST_SAMPLE_GAP`] after the first and only then publishes. Until then
//! [`Sampler::latest`] returns an empty snapshot (`taken_at_ms == 0`);
//! [`Sampler::ready`] waits for the first real one.
//!
//! Beside it, the watcher (`super::watch`) takes one light reading a
//! second and keeps the last minutes, so the first report of a session
//! already shows what changed over time.
//!
//! The sampling runs on a plain thread because reading the process table is
//! blocking file I/O. The [`Sampler`] owns the thread: dropping it wakes the
//! thread, which ends without waiting out its interval, and joins it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sprijin_proto::message::diag::Snapshot;
use tokio::sync::watch;

use super::clock;
use super::collect::Collector;
use super::error::DiagError;
use super::probes::{self, SlowReadings};
use super::watch::Watched;

/// How often the slow checks (name resolution, services, clock) run.
pub const SLOW_INTERVAL: Duration = Duration::from_secs(60);

/// How often the sampler reads the system unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// The wait between the first two samples; CPU usage is measured across it.
/// `sysinfo` needs at least [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`].
pub const FIRST_SAMPLE_GAP: Duration = Duration::from_millis(250);

/// The shortest interval accepted; shorter ones are raised to it, since CPU
/// usage cannot be measured over less.
pub const MIN_INTERVAL: Duration = FIRST_SAMPLE_GAP;

/// A running background sampler. Dropping it stops the sampling thread.
pub struct Sampler {
    snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    empty: Arc<Snapshot>,
    // Dropping this sender is the stop signal: the thread's wait ends at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling every `interval` (at least [`MIN_INTERVAL`]) on a
    /// thread of its own. Returns at once; the first snapshot is ready after
    /// about [`FIRST_SAMPLE_GAP`].
    pub fn start(interval: Duration) -> Result<Sampler, DiagError> {
        let interval = interval.max(MIN_INTERVAL);
        let (publish, snapshots) = watch::channel(None);
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("diag-sampler".into())
            .spawn(move || run(interval, &publish, &stopped))
            .map_err(DiagError::SpawnSampler)?;
        Ok(Sampler {
            snapshots,
            empty: Arc::new(Snapshot::default()),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The newest snapshot, without waiting. Before the first real sample
    /// this is an empty snapshot whose `taken_at_ms` is 0.
    pub fn latest(&self) -> Arc<Snapshot> {
        match &*self.snapshots.borrow() {
            Some(snapshot) => Arc::clone(snapshot),
            None => Arc::clone(&self.empty),
        }
    }

    /// Whether a real snapshot (with CPU usage) is available.
    pub fn is_ready(&self) -> bool {
        self.snapshots.borrow().is_some()
    }

    /// Waits for the first real snapshot and returns the newest one.
    pub async fn ready(&self) -> Result<Arc<Snapshot>, DiagError> {
        let mut snapshots = self.snapshots.clone();
        let newest = snapshots
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DiagError::SamplerStopped)?;
        newest
            .as_ref()
            .map(Arc::clone)
            .ok_or(DiagError::SamplerStopped)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // Waits at most for a sample in progress. A panic in the thread
            // has already been reported by the panic hook; nothing to add.
            let _ = thread.join();
        }
    }
}

/// The sampling loop. Ends when the stop sender is dropped or nobody holds a
/// receiver any more.
fn run(
    interval: Duration,
    publish: &watch::Sender<Option<Arc<Snapshot>>>,
    stopped: &mpsc::Receiver<()>,
) {
    // The slow checks run on a thread of their own, so no snapshot waits
    // for a resolver or the service manager. Their thread ends when this
    // one does (the sender below is dropped), after the check in progress.
    let slow = Arc::new(Mutex::new(SlowReadings::default()));
    let (_stop_slow, slow_stopped) = mpsc::channel::<()>();
    {
        let slow = Arc::clone(&slow);
        let _ = std::thread::Builder::new()
            .name("diag-probes".into())
            .spawn(move || {
                loop {
                    let readings = probes::run_all();
                    if let Ok(mut s) = slow.lock() {
                        *s = readings;
                    }
                    match slow_stopped.recv_timeout(SLOW_INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
    }
    // The watcher, one reading a second, on a thread of its own too.
    let watched = Arc::new(Mutex::new(Watched::default()));
    let (_stop_watch, watch_stopped) = mpsc::channel::<()>();
    {
        let watched = Arc::clone(&watched);
        let _ = std::thread::Builder::new()
            .name("diag-watch".into())
            .spawn(move || super::watch::run(&watch_stopped, &watched));
    }
    let mut collector = Collector::new();
    collector.sample();
    let mut wait = FIRST_SAMPLE_GAP;
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        collector.sample();
        if let Ok(s) = slow.lock() {
            collector.set_slow(s.clone());
        }
        if let Ok(w) = watched.lock() {
            collector.set_watched(w.clone());
        }
        collector.set_relay_clock(clock::latest());
        if publish.send(Some(Arc::new(collector.snapshot()))).is_err() {
            return;
        }
        wait = interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    #[tokio::test]
    async fn first_snapshot_has_cpu_usage_and_real_host_data() {
        // Keep one core busy so the measured usage cannot be an honest 0.
        let spin = Arc::new(AtomicBool::new(true));
        let spinner = {
            let spin = Arc::clone(&spin);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while spin.load(Ordering::Relaxed) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            })
        };
        let sampler = Sampler::start(DEFAULT_INTERVAL).unwrap();
        assert_eq!(
            sampler.latest().taken_at_ms,
            0,
            "no sample can be ready yet"
        );
        assert!(!sampler.is_ready());

        let s = tokio::time::timeout(Duration::from_secs(10), sampler.ready())
            .await
            .unwrap()
            .unwrap();
        spin.store(false, Ordering::Relaxed);
        spinner.join().unwrap();

        assert!(sampler.is_ready());
        assert_eq!(sampler.latest().taken_at_ms, s.taken_at_ms);
        assert!(s.taken_at_ms > 0);
        assert!(
            s.cpu.usage_percent > 0.0,
            "cpu usage {}",
            s.cpu.usage_percent
        );
        assert!(s.cpu.logical_cores > 0);
        // Where the platform measures CPU itself, it measures no cores.
        if crate::platform::diag::SYSINFO_CPU_USAGE {
            assert!(s.cpu.per_core_percent.iter().any(|c| *c > 0.0));
        } else {
            assert!(s.cpu.per_core_percent.is_empty());
        }
        assert!(!s.host.name.is_empty());
        assert!(!s.host.kernel.is_empty());
        assert!(s.host.uptime_secs > 0);
        assert!(s.memory.total_bytes > 0);
        assert!(s.processes.count > 0);
        let me = std::process::id();
        let us = s
            .processes
            .top_cpu
            .iter()
            .find(|p| p.pid == me)
            .expect("the busy test process is among the top by cpu");
        assert!(us.cpu_percent > 0.0);
    }

    #[tokio::test]
    async fn the_relay_clock_reaches_the_next_snapshots() {
        let sampler = Sampler::start(MIN_INTERVAL).unwrap();
        sampler.ready().await.unwrap();
        // On time, so no other test of this process sees a finding from it.
        let clock = sprijin_proto::message::diag::RelayClock {
            offset_secs: 0,
            relay: "r:7420".into(),
        };
        clock::record(clock.clone());
        let mut snapshots = sampler.snapshots.clone();
        tokio::time::timeout(Duration::from_secs(10), async {
            while sampler.latest().relay_clock.as_ref() != Some(&clock) {
                snapshots.changed().await.unwrap();
            }
        })
        .await
        .unwrap();
    }

    #[test]
    fn dropping_the_sampler_does_not_wait_out_the_interval() {
        let sampler = Sampler::start(Duration::from_secs(3600)).unwrap();
        let started = Instant::now();
        drop(sampler);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn snapshots_keep_coming_at_the_interval() {
        let sampler = Sampler::start(MIN_INTERVAL).unwrap();
        let first = sampler.ready().await.unwrap();
        let mut snapshots = sampler.snapshots.clone();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                snapshots.changed().await.unwrap();
                if sampler.latest().taken_at_ms > first.taken_at_ms {
                    break;
                }
            }
        })
        .await
        .unwrap();
    }
}
