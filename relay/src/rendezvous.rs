//! The rendezvous table: nameplates handed to waiting agents, claimed once by
//! a console, forgotten after a while.
//!
//! An agent's entry holds the sending half of a oneshot channel; the console
//! that claims the nameplate takes it and sends its own stream through, so the
//! agent's task can splice the two. A nameplate works once: after a claim, an
//! expiry or the agent leaving, it is remembered as gone (for a clear error)
//! and never handed out again while remembered. The memory of gone
//! nameplates is bounded in time and in size: past its cap the oldest is
//! forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use sprijin_proto::code::Nameplate;
use sprijin_proto::message::control::{ErrorCode, ErrorFrame};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::limits::LimitKey;

/// How long a used or expired nameplate is remembered, so that a late claim
/// is told "used" or "expired" rather than "unknown".
pub const REMEMBER_GONE: Duration = Duration::from_secs(3600);

/// Why a nameplate cannot be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    #[error("no one is waiting with this code: check the number with the person")]
    Unknown,
    #[error("this code has expired: ask the person to start sharing again for a new code")]
    Expired,
    #[error("this code was already used: ask the person to start sharing again for a new code")]
    Used,
    #[error("the person who had this code has stopped sharing: ask them to start again")]
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("too many codes are waiting from this address ({0} at most): use or close one first")]
    TooManyWaiting(usize),
    #[error("the relay has no free nameplates right now: try again in a minute")]
    Full,
}

impl ClaimError {
    /// The error frame a console is sent for this refusal.
    pub fn frame(&self) -> ErrorFrame {
        let code = match self {
            ClaimError::Unknown | ClaimError::Left => ErrorCode::UnknownNameplate,
            ClaimError::Expired => ErrorCode::ExpiredNameplate,
            ClaimError::Used => ErrorCode::UsedNameplate,
        };
        ErrorFrame::new(code, self.to_string())
    }
}

impl OpenError {
    /// The error frame an agent is sent for this refusal.
    pub fn frame(&self) -> ErrorFrame {
        let code = match self {
            OpenError::TooManyWaiting(_) => ErrorCode::TooManyWaiting,
            OpenError::Full => ErrorCode::Busy,
        };
        ErrorFrame::new(code, self.to_string())
    }
}

struct Waiting<T> {
    addr: LimitKey,
    claim: oneshot::Sender<T>,
}

/// Gone nameplates: why each went, and the order they went in, oldest
/// first (each nameplate is in both or in neither).
#[derive(Default)]
struct Gone {
    why: HashMap<Nameplate, ClaimError>,
    order: VecDeque<(Nameplate, Instant)>,
}

struct Inner<T> {
    waiting: HashMap<Nameplate, Waiting<T>>,
    gone: Gone,
    per_addr: HashMap<LimitKey, usize>,
}

/// What the table reports to the relay's metrics.
#[derive(Clone, Default)]
pub struct TableMetrics {
    /// Gone nameplates remembered now.
    pub remembered: Gauge,
    /// Gone nameplates forgotten before their time because the table was full.
    pub forgotten_early: Counter,
}

/// The table's bounds.
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    /// Nameplates one address may hold waiting at once.
    pub waiting_per_address: usize,
    /// Gone nameplates remembered at most; the oldest is forgotten first.
    pub remembered: usize,
}

/// The table, generic over what a claim delivers to the waiting agent.
pub struct Rendezvous<T> {
    inner: Mutex<Inner<T>>,
    limits: TableLimits,
    metrics: TableMetrics,
}

impl<T> Rendezvous<T> {
    pub fn new(limits: TableLimits, metrics: TableMetrics) -> Self {
        Rendezvous {
            inner: Mutex::new(Inner {
                waiting: HashMap::new(),
                gone: Gone::default(),
                per_addr: HashMap::new(),
            }),
            limits,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than refusing service, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out a fresh nameplate to an agent at `addr`.
    pub fn open(&self, addr: LimitKey) -> Result<(Nameplate, oneshot::Receiver<T>), OpenError> {
        let mut inner = self.lock();
        let held = inner.per_addr.get(&addr).copied().unwrap_or(0);
        let most = self.limits.waiting_per_address;
        if held >= most {
            return Err(OpenError::TooManyWaiting(most));
        }
        let nameplate = allocate(&inner)?;
        let (tx, rx) = oneshot::channel();
        inner.waiting.insert(nameplate, Waiting { addr, claim: tx });
        *inner.per_addr.entry(addr).or_insert(0) += 1;
        Ok((nameplate, rx))
    }

    /// Takes a waiting nameplate for a console; it can never be claimed again.
    pub fn claim(&self, nameplate: Nameplate) -> Result<oneshot::Sender<T>, ClaimError> {
        let mut inner = self.lock();
        if let Some(w) = remove_waiting(&mut inner, nameplate) {
            self.remember(&mut inner.gone, nameplate, ClaimError::Used);
            return Ok(w.claim);
        }
        Err(inner
            .gone
            .why
            .get(&nameplate)
            .copied()
            .unwrap_or(ClaimError::Unknown))
    }

    /// The agent's nameplate ran out of time, or the agent left.
    pub fn retire(&self, nameplate: Nameplate, why: ClaimError) {
        let mut inner = self.lock();
        if remove_waiting(&mut inner, nameplate).is_some() {
            self.remember(&mut inner.gone, nameplate, why);
        }
    }

    /// Notes a nameplate as gone, forgetting the oldest one past the cap.
    fn remember(&self, gone: &mut Gone, nameplate: Nameplate, why: ClaimError) {
        gone.why.insert(nameplate, why);
        gone.order.push_back((nameplate, Instant::now()));
        while gone.order.len() > self.limits.remembered {
            if let Some((oldest, _)) = gone.order.pop_front() {
                gone.why.remove(&oldest);
                self.metrics.forgotten_early.inc();
            }
        }
        self.metrics.remembered.set(gone.order.len() as i64);
    }

    /// Forgets nameplates gone for longer than [`REMEMBER_GONE`].
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let gone = &mut inner.gone;
        while let Some((nameplate, at)) = gone.order.front().copied() {
            if now.duration_since(at) < REMEMBER_GONE {
                break;
            }
            gone.order.pop_front();
            gone.why.remove(&nameplate);
        }
        self.metrics.remembered.set(gone.order.len() as i64);
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Gone nameplates remembered now.
    pub fn remembered(&self) -> usize {
        self.lock().gone.order.len()
    }
}

fn remove_waiting<T>(inner: &mut Inner<T>, nameplate: Nameplate) -> Option<Waiting<T>> {
    let w = inner.waiting.remove(&nameplate)?;
    if let Some(n) = inner.per_addr.get_mut(&w.addr) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            inner.per_addr.remove(&w.addr);
        }
    }
    Some(w)
}

/// Picks a random free nameplate, keeping numbers short while the table is
/// small: the range grows tenfold whenever it is more than half in use.
fn allocate<T>(inner: &Inner<T>) -> Result<Nameplate, OpenError> {
    let in_use = inner.waiting.len() + inner.gone.order.len();
    let mut range: u32 = 999;
    while (in_use as u64) * 2 > range as u64 {
        range = range.checked_mul(10).ok_or(OpenError::Full)?;
    }
    let mut rng = rand::thread_rng();
    for _ in 0..64 {
        let n = Nameplate::new(rng.gen_range(1..=range)).ok_or(OpenError::Full)?;
        if !inner.waiting.contains_key(&n) && !inner.gone.why.contains_key(&n) {
            return Ok(n);
        }
    }
    Err(OpenError::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::limits::limit_key;

    fn addr(s: &str) -> LimitKey {
        limit_key(s.parse().unwrap())
    }

    fn table(waiting_per_address: usize) -> Rendezvous<u8> {
        Rendezvous::new(
            TableLimits {
                waiting_per_address,
                remembered: 100_000,
            },
            TableMetrics::default(),
        )
    }

    #[test]
    fn a_nameplate_is_claimed_once() {
        let r = table(5);
        let (n, mut rx) = r.open(addr("10.0.0.1")).unwrap();
        r.claim(n).unwrap().send(7).unwrap();
        assert_eq!(rx.try_recv().unwrap(), 7);
        assert_eq!(r.claim(n).err(), Some(ClaimError::Used));
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn unknown_expired_and_left_are_told_apart() {
        let r = table(5);
        assert_eq!(
            r.claim(Nameplate::new(123456).unwrap()).err(),
            Some(ClaimError::Unknown)
        );
        let (n, _rx) = r.open(addr("10.0.0.1")).unwrap();
        r.retire(n, ClaimError::Expired);
        assert_eq!(r.claim(n).err(), Some(ClaimError::Expired));
        let (m, _rx) = r.open(addr("10.0.0.1")).unwrap();
        r.retire(m, ClaimError::Left);
        assert_eq!(r.claim(m).err(), Some(ClaimError::Left));
    }

    #[test]
    fn waiting_nameplates_per_address_are_bounded() {
        let r = table(2);
        let (n, _a) = r.open(addr("10.0.0.1")).unwrap();
        let _b = r.open(addr("10.0.0.1")).unwrap();
        assert_eq!(
            r.open(addr("10.0.0.1")).err(),
            Some(OpenError::TooManyWaiting(2))
        );
        assert!(r.open(addr("10.0.0.2")).is_ok());
        r.retire(n, ClaimError::Left);
        assert!(r.open(addr("10.0.0.1")).is_ok());
    }

    #[test]
    fn nameplates_stay_unique_as_the_table_grows() {
        let r = table(usize::MAX);
        let mut seen = std::collections::HashSet::new();
        let mut keep = Vec::new();
        for _ in 0..3000 {
            let (n, rx) = r.open(addr("10.0.0.1")).unwrap();
            assert!(seen.insert(n));
            keep.push(rx);
        }
    }

    #[test]
    fn the_table_of_used_nameplates_stays_capped_and_forgets_the_oldest_first() {
        let metrics = TableMetrics::default();
        let r = Rendezvous::<u8>::new(
            TableLimits {
                waiting_per_address: usize::MAX,
                remembered: 3,
            },
            metrics.clone(),
        );
        let a = addr("10.0.0.1");
        let mut used = Vec::new();
        for _ in 0..5 {
            let (n, _rx) = r.open(a).unwrap();
            r.claim(n).unwrap();
            used.push(n);
        }
        assert_eq!(r.remembered(), 3);
        assert_eq!(metrics.remembered.get(), 3);
        assert_eq!(metrics.forgotten_early.get(), 2);
        // The two oldest are forgotten; the three newest are still "used".
        for n in &used[..2] {
            assert_eq!(r.claim(*n).err(), Some(ClaimError::Unknown));
        }
        for n in &used[2..] {
            assert_eq!(r.claim(*n).err(), Some(ClaimError::Used));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gone_nameplates_are_forgotten_after_their_time() {
        let metrics = TableMetrics::default();
        let r = Rendezvous::<u8>::new(
            TableLimits {
                waiting_per_address: 5,
                remembered: 10,
            },
            metrics.clone(),
        );
        let (n, _rx) = r.open(addr("10.0.0.1")).unwrap();
        r.retire(n, ClaimError::Expired);
        r.sweep();
        assert_eq!(r.claim(n).err(), Some(ClaimError::Expired));
        tokio::time::advance(REMEMBER_GONE).await;
        r.sweep();
        assert_eq!(r.claim(n).err(), Some(ClaimError::Unknown));
        assert_eq!(metrics.remembered.get(), 0);
    }
}
