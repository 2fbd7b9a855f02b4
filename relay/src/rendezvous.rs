//! The rendezvous table: nameplates handed to waiting agents, claimed once by
//! a console, forgotten after a while.
//!
//! An agent's entry holds the sending half of a oneshot channel; the console
//! that claims the nameplate takes it and sends its claim through, so the
//! agent's task can give both sides their forwarding tickets. A nameplate works once: after a claim, an
//! expiry or the agent leaving, it is remembered as gone (for a clear error)
//! and never handed out again while remembered. The memory of gone
//! nameplates is bounded in time and in size: past its cap the oldest is
//! forgotten first.
//!
//! Nameplates come from this relay's block ([`Nameplate::of_relay`]), so any
//! relay of a fleet can tell which relay a nameplate belongs to. An agent
//! that lost its connection while waiting may take its nameplate back
//! ([`Rendezvous::reopen`]) unless it was claimed or expired meanwhile;
//! every waiting entry has an [`EntryId`], so the task of a replaced entry
//! cannot retire its successor.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rand::Rng;
use sprijin_proto::code::{LONG_MAX, LONG_MIN, Nameplate, RelayId, SHORT_MAX};
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
    entry: EntryId,
    /// When the agent's code expires, as its waiting ticket says: it tells
    /// the agent that lost this entry's connection from another agent a
    /// restarted relay gave the same nameplate to.
    expires_at: u64,
}

/// Which waiting entry of a nameplate: a nameplate taken back after a lost
/// connection is a new entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryId(u64);

impl EntryId {
    /// An entry id made up, for other modules' tests.
    #[cfg(test)]
    pub fn for_tests(n: u64) -> EntryId {
        EntryId(n)
    }
}

/// A nameplate now waiting, and where its claim will arrive.
pub struct Opened<T> {
    pub nameplate: Nameplate,
    pub entry: EntryId,
    pub claimed: oneshot::Receiver<T>,
}

/// Gone nameplates: why each went and when, and the order they went in,
/// oldest first. A nameplate taken back leaves `why` but stays in `order`
/// until swept; an `order` entry only forgets `why` when the times match.
#[derive(Default)]
struct Gone {
    why: HashMap<Nameplate, (ClaimError, Instant)>,
    order: VecDeque<(Nameplate, Instant)>,
}

impl Gone {
    /// Drops the oldest entry of `order`, forgetting its reason if it is
    /// still the current one.
    fn pop_oldest(&mut self) -> Option<(Nameplate, Instant)> {
        let (nameplate, at) = self.order.pop_front()?;
        if self.why.get(&nameplate).is_some_and(|(_, t)| *t == at) {
            self.why.remove(&nameplate);
        }
        Some((nameplate, at))
    }
}

struct Inner<T> {
    waiting: HashMap<Nameplate, Waiting<T>>,
    gone: Gone,
    per_addr: HashMap<LimitKey, usize>,
    next_entry: u64,
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
    relay: RelayId,
}

impl<T> Rendezvous<T> {
    pub fn new(limits: TableLimits, metrics: TableMetrics) -> Self {
        Rendezvous {
            inner: Mutex::new(Inner {
                waiting: HashMap::new(),
                gone: Gone::default(),
                per_addr: HashMap::new(),
                next_entry: 0,
            }),
            limits,
            metrics,
            relay: RelayId::default(),
        }
    }

    /// Hands out nameplates from relay `relay`'s block.
    pub fn for_relay(mut self, relay: RelayId) -> Self {
        self.relay = relay;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than refusing service, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out a fresh nameplate to an agent at `addr`.
    /// `expires_at` is when its ticket expires.
    pub fn open(&self, addr: LimitKey, expires_at: u64) -> Result<Opened<T>, OpenError> {
        let mut inner = self.lock();
        self.room_for(&inner, addr)?;
        let nameplate = allocate(&inner, self.relay)?;
        Ok(insert(&mut inner, nameplate, addr, expires_at))
    }

    /// Makes `nameplate` wait again for an agent that lost its connection
    /// (the caller has checked its ticket). A waiting entry for it, left
    /// from the lost connection, is replaced; a nameplate claimed or expired
    /// meanwhile stays gone. One this relay does not remember (it
    /// restarted) waits again. One waiting under another ticket (a
    /// restarted relay gave it to someone else) stays theirs.
    pub fn reopen(
        &self,
        addr: LimitKey,
        nameplate: Nameplate,
        expires_at: u64,
    ) -> Result<Opened<T>, ReopenError> {
        let mut inner = self.lock();
        if inner
            .waiting
            .get(&nameplate)
            .is_some_and(|w| w.expires_at != expires_at)
        {
            return Err(ReopenError::Taken);
        }
        match inner.gone.why.get(&nameplate).map(|(why, _)| *why) {
            Some(why @ (ClaimError::Used | ClaimError::Expired)) => {
                return Err(ReopenError::Gone(why));
            }
            Some(_) => {
                inner.gone.why.remove(&nameplate);
            }
            None => {}
        }
        remove_waiting(&mut inner, nameplate);
        self.room_for(&inner, addr).map_err(ReopenError::Open)?;
        Ok(insert(&mut inner, nameplate, addr, expires_at))
    }

    fn room_for(&self, inner: &Inner<T>, addr: LimitKey) -> Result<(), OpenError> {
        let held = inner.per_addr.get(&addr).copied().unwrap_or(0);
        let most = self.limits.waiting_per_address;
        if held >= most {
            return Err(OpenError::TooManyWaiting(most));
        }
        Ok(())
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
            .map_or(ClaimError::Unknown, |(why, _)| *why))
    }

    /// The agent's nameplate ran out of time, or the agent left; nothing
    /// happens if `entry` was replaced meanwhile.
    pub fn retire(&self, nameplate: Nameplate, entry: EntryId, why: ClaimError) {
        let mut inner = self.lock();
        if inner
            .waiting
            .get(&nameplate)
            .is_some_and(|w| w.entry == entry)
        {
            remove_waiting(&mut inner, nameplate);
            self.remember(&mut inner.gone, nameplate, why);
        }
    }

    /// Notes a nameplate as gone, forgetting the oldest one past the cap.
    fn remember(&self, gone: &mut Gone, nameplate: Nameplate, why: ClaimError) {
        let now = Instant::now();
        gone.why.insert(nameplate, (why, now));
        gone.order.push_back((nameplate, now));
        while gone.order.len() > self.limits.remembered {
            if gone.pop_oldest().is_some() {
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
        while let Some((_, at)) = gone.order.front().copied() {
            if now.duration_since(at) < REMEMBER_GONE {
                break;
            }
            gone.pop_oldest();
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

fn insert<T>(
    inner: &mut Inner<T>,
    nameplate: Nameplate,
    addr: LimitKey,
    expires_at: u64,
) -> Opened<T> {
    let (tx, rx) = oneshot::channel();
    inner.next_entry += 1;
    let entry = EntryId(inner.next_entry);
    inner.waiting.insert(
        nameplate,
        Waiting {
            addr,
            claim: tx,
            entry,
            expires_at,
        },
    );
    *inner.per_addr.entry(addr).or_insert(0) += 1;
    Opened {
        nameplate,
        entry,
        claimed: rx,
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

/// Picks a random free nameplate of `relay`'s block, keeping numbers short
/// while the table is small: the short numbers while at most half of them
/// are in use, then long ones, whose range grows tenfold whenever it is
/// more than half in use.
fn allocate<T>(inner: &Inner<T>, relay: RelayId) -> Result<Nameplate, OpenError> {
    let in_use = (inner.waiting.len() + inner.gone.order.len()) as u64;
    let (mut low, mut high) = (1, SHORT_MAX);
    while in_use * 2 > u64::from(high - low + 1) {
        low = LONG_MIN;
        high = high * 10 + 9;
        if high > LONG_MAX {
            return Err(OpenError::Full);
        }
    }
    let mut rng = rand::thread_rng();
    for _ in 0..64 {
        let n = Nameplate::of_relay(relay, rng.gen_range(low..=high)).ok_or(OpenError::Full)?;
        if !inner.waiting.contains_key(&n) && !inner.gone.why.contains_key(&n) {
            return Ok(n);
        }
    }
    Err(OpenError::Full)
}

/// Why a nameplate cannot wait again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReopenError {
    #[error("{0}")]
    Gone(ClaimError),
    #[error(
        "the relay restarted and gave your code to someone else before the agent reconnected: start sharing again for a new code"
    )]
    Taken,
    #[error("{0}")]
    Open(OpenError),
}

impl ReopenError {
    /// The error frame the agent is sent.
    pub fn frame(&self) -> ErrorFrame {
        match self {
            ReopenError::Gone(ClaimError::Used) => ErrorFrame::new(
                ErrorCode::UsedNameplate,
                "your code was used while the agent was reconnecting: start sharing again for a new code",
            ),
            ReopenError::Gone(why) => why.frame(),
            ReopenError::Taken => ErrorFrame::new(ErrorCode::UsedNameplate, self.to_string()),
            ReopenError::Open(e) => e.frame(),
        }
    }
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
        let Opened {
            nameplate: n,
            claimed: mut rx,
            ..
        } = r.open(addr("10.0.0.1"), 0).unwrap();
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
        let o = r.open(addr("10.0.0.1"), 0).unwrap();
        let n = o.nameplate;
        r.retire(n, o.entry, ClaimError::Expired);
        assert_eq!(r.claim(n).err(), Some(ClaimError::Expired));
        let o = r.open(addr("10.0.0.1"), 0).unwrap();
        let m = o.nameplate;
        r.retire(m, o.entry, ClaimError::Left);
        assert_eq!(r.claim(m).err(), Some(ClaimError::Left));
    }

    #[test]
    fn a_nameplate_whose_agent_left_waits_again_unless_claimed_or_expired() {
        let r = table(5);
        let a = addr("10.0.0.1");
        let first = r.open(a, 0).unwrap();
        let n = first.nameplate;
        // The lost connection's entry is replaced, and retiring it later
        // does not touch the new one.
        let second = r.reopen(a, n, 0).unwrap();
        r.retire(n, first.entry, ClaimError::Left);
        assert_eq!(r.waiting(), 1);
        r.retire(n, second.entry, ClaimError::Left);
        assert_eq!(r.claim(n).err(), Some(ClaimError::Left));
        let third = r.reopen(a, n, 0).unwrap();
        r.claim(n).unwrap().send(1).unwrap();
        drop(third);
        assert_eq!(
            r.reopen(a, n, 0).err(),
            Some(ReopenError::Gone(ClaimError::Used))
        );
        let o = r.open(a, 0).unwrap();
        r.retire(o.nameplate, o.entry, ClaimError::Expired);
        assert_eq!(
            r.reopen(a, o.nameplate, 0).err(),
            Some(ReopenError::Gone(ClaimError::Expired))
        );
        // A nameplate a restarted relay never saw waits again, but not one
        // it gave to someone else meanwhile.
        let unseen = Nameplate::new(77).unwrap();
        assert!(r.reopen(a, unseen, 0).is_ok());
        assert_eq!(r.waiting(), 1);
        let theirs = r.open(a, 5).unwrap();
        assert_eq!(
            r.reopen(a, theirs.nameplate, 4).err(),
            Some(ReopenError::Taken)
        );
        assert!(r.reopen(a, theirs.nameplate, 5).is_ok());
    }

    #[test]
    fn nameplates_come_from_this_relays_block() {
        let relay = RelayId::new(7).unwrap();
        let r = table(usize::MAX).for_relay(relay);
        let mut keep = Vec::new();
        for _ in 0..1200 {
            let o = r.open(addr("10.0.0.1"), 0).unwrap();
            assert_eq!(o.nameplate.owner(), relay);
            keep.push(o);
        }
        let short = keep
            .iter()
            .filter(|o| o.nameplate.get() < 1_000_000)
            .count();
        assert!((400..=600).contains(&short), "{short} short nameplates");
    }

    #[test]
    fn waiting_nameplates_per_address_are_bounded() {
        let r = table(2);
        let a = r.open(addr("10.0.0.1"), 0).unwrap();
        let _b = r.open(addr("10.0.0.1"), 0).unwrap();
        assert_eq!(
            r.open(addr("10.0.0.1"), 0).err(),
            Some(OpenError::TooManyWaiting(2))
        );
        assert!(r.open(addr("10.0.0.2"), 0).is_ok());
        r.retire(a.nameplate, a.entry, ClaimError::Left);
        assert!(r.open(addr("10.0.0.1"), 0).is_ok());
    }

    #[test]
    fn nameplates_stay_unique_as_the_table_grows() {
        let r = table(usize::MAX);
        let mut seen = std::collections::HashSet::new();
        let mut keep = Vec::new();
        for _ in 0..3000 {
            let o = r.open(addr("10.0.0.1"), 0).unwrap();
            assert!(seen.insert(o.nameplate));
            keep.push(o.claimed);
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
            let n = r.open(a, 0).unwrap().nameplate;
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
        let o = r.open(addr("10.0.0.1"), 0).unwrap();
        let n = o.nameplate;
        r.retire(n, o.entry, ClaimError::Expired);
        r.sweep();
        assert_eq!(r.claim(n).err(), Some(ClaimError::Expired));
        tokio::time::advance(REMEMBER_GONE).await;
        r.sweep();
        assert_eq!(r.claim(n).err(), Some(ClaimError::Unknown));
        assert_eq!(metrics.remembered.get(), 0);
    }
}
