//! The rendezvous table: nameplates handed to waiting agents, claimed once by
//! a console, forgotten after a while.
//!
//! An agent's entry holds the sending half of a oneshot channel; the console
//! that claims the nameplate takes it and sends its own stream through, so the
//! agent's task can splice the two. A nameplate works once: after a claim, an
//! expiry or the agent leaving, it is remembered as gone (for a clear error)
//! and never handed out again while remembered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use sprijin_proto::code::Nameplate;
use sprijin_proto::message::control::{ErrorCode, ErrorFrame};
use tokio::sync::oneshot;
use tokio::time::Instant;

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
    addr: IpAddr,
    claim: oneshot::Sender<T>,
}

struct Inner<T> {
    waiting: HashMap<Nameplate, Waiting<T>>,
    gone: HashMap<Nameplate, (ClaimError, Instant)>,
    per_addr: HashMap<IpAddr, usize>,
}

/// The table, generic over what a claim delivers to the waiting agent.
pub struct Rendezvous<T> {
    inner: Mutex<Inner<T>>,
    waiting_per_address: usize,
}

impl<T> Rendezvous<T> {
    pub fn new(waiting_per_address: usize) -> Self {
        Rendezvous {
            inner: Mutex::new(Inner {
                waiting: HashMap::new(),
                gone: HashMap::new(),
                per_addr: HashMap::new(),
            }),
            waiting_per_address,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than refusing service, so carry on.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands out a fresh nameplate to an agent at `addr`.
    pub fn open(&self, addr: IpAddr) -> Result<(Nameplate, oneshot::Receiver<T>), OpenError> {
        let mut inner = self.lock();
        let held = inner.per_addr.get(&addr).copied().unwrap_or(0);
        if held >= self.waiting_per_address {
            return Err(OpenError::TooManyWaiting(self.waiting_per_address));
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
            inner
                .gone
                .insert(nameplate, (ClaimError::Used, Instant::now()));
            return Ok(w.claim);
        }
        Err(inner
            .gone
            .get(&nameplate)
            .map(|(why, _)| *why)
            .unwrap_or(ClaimError::Unknown))
    }

    /// The agent's nameplate ran out of time, or the agent left.
    pub fn retire(&self, nameplate: Nameplate, why: ClaimError) {
        let mut inner = self.lock();
        if remove_waiting(&mut inner, nameplate).is_some() {
            inner.gone.insert(nameplate, (why, Instant::now()));
        }
    }

    /// Forgets nameplates gone for longer than [`REMEMBER_GONE`].
    pub fn sweep(&self) {
        let now = Instant::now();
        self.lock()
            .gone
            .retain(|_, (_, at)| now.duration_since(*at) < REMEMBER_GONE);
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
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
    let in_use = inner.waiting.len() + inner.gone.len();
    let mut range: u32 = 999;
    while (in_use as u64) * 2 > range as u64 {
        range = range.checked_mul(10).ok_or(OpenError::Full)?;
    }
    let mut rng = rand::thread_rng();
    for _ in 0..64 {
        let n = Nameplate::new(rng.gen_range(1..=range)).ok_or(OpenError::Full)?;
        if !inner.waiting.contains_key(&n) && !inner.gone.contains_key(&n) {
            return Ok(n);
        }
    }
    Err(OpenError::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn a_nameplate_is_claimed_once() {
        let r = Rendezvous::<u8>::new(5);
        let (n, mut rx) = r.open(A).unwrap();
        r.claim(n).unwrap().send(7).unwrap();
        assert_eq!(rx.try_recv().unwrap(), 7);
        assert_eq!(r.claim(n).err(), Some(ClaimError::Used));
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn unknown_expired_and_left_are_told_apart() {
        let r = Rendezvous::<u8>::new(5);
        assert_eq!(
            r.claim(Nameplate::new(123456).unwrap()).err(),
            Some(ClaimError::Unknown)
        );
        let (n, _rx) = r.open(A).unwrap();
        r.retire(n, ClaimError::Expired);
        assert_eq!(r.claim(n).err(), Some(ClaimError::Expired));
        let (m, _rx) = r.open(A).unwrap();
        r.retire(m, ClaimError::Left);
        assert_eq!(r.claim(m).err(), Some(ClaimError::Left));
    }

    #[test]
    fn waiting_nameplates_per_address_are_bounded() {
        let r = Rendezvous::<u8>::new(2);
        let (n, _a) = r.open(A).unwrap();
        let _b = r.open(A).unwrap();
        assert_eq!(r.open(A).err(), Some(OpenError::TooManyWaiting(2)));
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert!(r.open(other).is_ok());
        r.retire(n, ClaimError::Left);
        assert!(r.open(A).is_ok());
    }

    #[test]
    fn nameplates_stay_unique_as_the_table_grows() {
        let r = Rendezvous::<u8>::new(usize::MAX);
        let mut seen = std::collections::HashSet::new();
        let mut keep = Vec::new();
        for _ in 0..3000 {
            let (n, rx) = r.open(A).unwrap();
            assert!(seen.insert(n));
            keep.push(rx);
        }
    }
}
