//! Per-address limits: how many connections one source may hold at once, and
//! how many claims or nameplate opens it may make in a sliding minute.
//!
//! Every per-address limit counts by [`LimitKey`], made by [`limit_key`]: an
//! IPv4 address as it is, an IPv6 address by its /64, since one host can
//! pick any address in its /64 and would otherwise get a fresh allowance
//! with each one. Guessing codes costs claims, so the claim rate bounds how
//! fast anyone can guess; the open rate and the connection count bound what
//! one source can make the relay hold.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// What one per-address limit counts by: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitKey(IpAddr);

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// The key every per-address limit counts `addr` under. An IPv4 address
/// mapped into IPv6 (a dual-stack socket's view of an IPv4 client) counts as
/// that IPv4 address.
pub fn limit_key(addr: IpAddr) -> LimitKey {
    match addr {
        IpAddr::V4(a) => LimitKey(IpAddr::V4(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => LimitKey(IpAddr::V4(v4)),
            None => {
                let prefix = u128::from(a) & !((1u128 << 64) - 1);
                LimitKey(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        },
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves at worst a count off by one,
    // which matters less than refusing service, so carry on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A sliding one-minute window of event times per key.
pub struct RateLimiter {
    per_minute: u32,
    recent: Mutex<HashMap<LimitKey, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event from `key` now; false when it is over the limit
    /// (refused events are not recorded, so waiting always helps).
    pub fn allow(&self, key: LimitKey) -> bool {
        let now = Instant::now();
        let mut recent = lock(&self.recent);
        let times = recent.entry(key).or_default();
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

    /// Drops keys with no event in the window, so the map stays small.
    pub fn sweep(&self) {
        let now = Instant::now();
        lock(&self.recent).retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < WINDOW)
        });
    }
}

/// Counts the connections each key holds open.
pub struct ConnectionLimiter {
    per_key: usize,
    held: Arc<Mutex<HashMap<LimitKey, usize>>>,
}

/// One connection counted against its key; dropping it gives the place back.
pub struct ConnectionSlot {
    key: LimitKey,
    held: Arc<Mutex<HashMap<LimitKey, usize>>>,
}

impl ConnectionLimiter {
    pub fn new(per_key: usize) -> Self {
        ConnectionLimiter {
            per_key,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for one more connection from `key`, or `None` when it
    /// already holds as many as allowed.
    pub fn acquire(&self, key: LimitKey) -> Option<ConnectionSlot> {
        let mut held = lock(&self.held);
        let n = held.entry(key).or_insert(0);
        if *n >= self.per_key {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            key,
            held: self.held.clone(),
        })
    }

    /// How many connections `key` holds now.
    pub fn held(&self, key: LimitKey) -> usize {
        lock(&self.held).get(&key).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> LimitKey {
        limit_key(s.parse().unwrap())
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_by_the_address() {
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:abcd::9").to_string(), "2001:db8:1:2::/64");
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
        assert_eq!(key("10.0.0.1").to_string(), "10.0.0.1");
        // A dual-stack socket sees an IPv4 client as ::ffff:a.b.c.d.
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("::ffff:10.0.0.1"), key("::ffff:10.0.0.2"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_eleventh_event_in_a_minute_is_refused_per_key() {
        let limiter = RateLimiter::per_minute(10);
        let a = key("10.0.0.1");
        let b = key("10.0.0.2");
        for _ in 0..10 {
            assert!(limiter.allow(a));
        }
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
        tokio::time::advance(WINDOW).await;
        assert!(limiter.allow(a));
        limiter.sweep();
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_64_shares_one_rate() {
        let limiter = RateLimiter::per_minute(2);
        assert!(limiter.allow(key("2001:db8::1")));
        assert!(limiter.allow(key("2001:db8::2")));
        assert!(!limiter.allow(key("2001:db8::3")));
        assert!(limiter.allow(key("2001:db8:0:1::1")));
    }

    #[test]
    fn connection_places_come_back_when_dropped() {
        let limiter = ConnectionLimiter::new(2);
        let a = key("10.0.0.1");
        let first = limiter.acquire(a).unwrap();
        let _second = limiter.acquire(a).unwrap();
        assert!(limiter.acquire(a).is_none());
        assert!(limiter.acquire(key("10.0.0.2")).is_some());
        drop(first);
        assert_eq!(limiter.held(a), 1);
        assert!(limiter.acquire(a).is_some());
    }
}
