//! Says which group runs and how long it has been running, so a full run
//! (several minutes) is never silent: a line when a group starts and ends,
//! and one every [`HEARTBEAT`] in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a running group is reported.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Where progress lines go (the `bench` program prints them on stderr).
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// The group running now: its name, place and start.
type Current = Arc<Mutex<Option<(String, Instant)>>>;

pub struct Progress {
    say: Say,
    current: Current,
    stop: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(say: Say) -> Progress {
        let current: Current = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (say, current, stop) = (say.clone(), current.clone(), stop.clone());
            std::thread::spawn(move || {
                let tick = Duration::from_millis(200);
                let mut next = Instant::now() + HEARTBEAT;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    if Instant::now() < next {
                        continue;
                    }
                    next = Instant::now() + HEARTBEAT;
                    let line = match current.lock() {
                        Ok(c) => c.as_ref().map(|(name, at)| {
                            format!("bench: {name} running, {} s so far", at.elapsed().as_secs())
                        }),
                        Err(_) => None,
                    };
                    if let Some(line) = line {
                        say(&line);
                    }
                }
            })
        };
        Progress {
            say,
            current,
            stop,
            heartbeat: Some(heartbeat),
        }
    }

    /// Group `name`, the `n`th of `of`, starts.
    pub fn group(&self, name: &str, n: usize, of: usize) {
        let label = format!("{name} ({n}/{of})");
        (self.say)(&format!("bench: {label} started"));
        if let Ok(mut c) = self.current.lock() {
            *c = Some((label, Instant::now()));
        }
    }

    /// The running group ended, well or with `error`.
    pub fn done(&self, error: Option<&str>) {
        let Some((label, at)) = self.current.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        let secs = at.elapsed().as_secs_f64();
        match error {
            None => (self.say)(&format!("bench: {label} done in {secs:.1} s")),
            Some(e) => (self.say)(&format!("bench: {label} failed after {secs:.1} s: {e}")),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}
