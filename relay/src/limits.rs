//! Per-address claim rate limiting: a sliding one-minute window of claim
//! times per source address. Guessing codes costs claims, so this bounds how
//! fast anyone can guess.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

pub struct ClaimLimiter {
    per_minute: u32,
    recent: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl ClaimLimiter {
    pub fn new(per_minute: u32) -> Self {
        ClaimLimiter {
            per_minute,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Records a claim from `addr` now; false when it is over the limit
    /// (refused claims are not recorded, so waiting always helps).
    pub fn allow(&self, addr: IpAddr) -> bool {
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let times = recent.entry(addr).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= self.per_minute as usize {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Drops addresses with no claim in the window, so the map stays small.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_eleventh_claim_in_a_minute_is_refused_per_address() {
        let limiter = ClaimLimiter::new(10);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..10 {
            assert!(limiter.allow(a));
        }
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
        tokio::time::advance(WINDOW).await;
        assert!(limiter.allow(a));
        limiter.sweep();
    }
}
