//! Waiting agents that hold no connection. Once an agent has its code it
//! closes its connection and keeps the code with small MACed datagrams
//! (see [`sprijin_proto::waiting`]); a QUIC connection costs the relay tens
//! of kilobytes for as long as it lives, an entry here about a hundred
//! bytes.
//!
//! [`Parked`] knows where each such agent was last heard from. The
//! forwarder answers its waits from it; the agent's task in the server
//! learns from it that the agent left or went silent, and where to tell it
//! of a claim. A claimed spot answers with the agent's pairing, sealed, so
//! the agent opens its side of the session at once; [`Arrivals`] tells the
//! claim's task when that side binds at the forwarder.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sprijin_proto::code::Nameplate;
use sprijin_proto::waiting::{DatagramKey, Held, Pairing, WaitingKey, read_wait};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::rendezvous::EntryId;

/// How long an agent waiting apart may go unheard before its code is
/// given up: three of its waits (one every 20 s) lost in a row.
pub const ABSENT_AFTER: Duration = Duration::from_secs(60);

/// How long a claim waits for its agent's side of the session to bind:
/// past the agent's next wait (one every 20 s), which reaches it if its
/// address changed since the last one.
pub const RETURN_WITHIN: Duration = Duration::from_secs(25);

/// How often an agent is told of its claim until its side binds.
pub const TELL_EVERY: Duration = Duration::from_millis(250);

/// A datagram for one agent, and where it goes.
pub struct Tell {
    pub to: SocketAddr,
    /// The relay's address to send from.
    pub via: Option<IpAddr>,
    pub datagram: Vec<u8>,
}

struct Spot {
    /// The waiting entry it belongs to: a code taken back is a new one.
    entry: EntryId,
    expires_at: u64,
    /// Where its last wait came from, and to which relay address.
    at: Option<(SocketAddr, Option<IpAddr>)>,
    /// The key of its datagrams, once it has sent one.
    key: Option<DatagramKey>,
    /// The largest counter seen, so a replayed wait moves nothing.
    counter: u64,
    heard: Instant,
    left: bool,
    /// The agent's side of its claim, once claimed.
    pairing: Option<Pairing>,
    /// Wakes the agent's task when the agent says it leaves.
    stirred: Arc<Notify>,
}

/// Where waiting agents without a connection were last heard from.
pub struct Parked {
    key: WaitingKey,
    spots: Mutex<HashMap<Nameplate, Spot>>,
}

impl Parked {
    pub fn new(key: WaitingKey) -> Parked {
        Parked {
            key,
            spots: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Nameplate, Spot>> {
        // Every change is one insert or field write, so a panic elsewhere
        // cannot leave a spot half-made: carry on.
        self.spots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts keeping `nameplate` for waiting entry `entry`, whose ticket
    /// expires at `expires_at`, as heard now; what wakes its task when the
    /// agent leaves.
    pub fn keep(&self, nameplate: Nameplate, entry: EntryId, expires_at: u64) -> Arc<Notify> {
        let stirred = Arc::new(Notify::new());
        self.lock().insert(
            nameplate,
            Spot {
                entry,
                expires_at,
                at: None,
                key: None,
                counter: 0,
                heard: Instant::now(),
                left: false,
                pairing: None,
                stirred: stirred.clone(),
            },
        );
        stirred
    }

    /// Stops keeping `nameplate` for `entry`, unless a later entry (the
    /// code taken back) keeps it now.
    pub fn forget(&self, nameplate: Nameplate, entry: EntryId) {
        let mut spots = self.lock();
        if spots.get(&nameplate).is_some_and(|s| s.entry == entry) {
            spots.remove(&nameplate);
        }
    }

    /// When the agent was last heard from; `None` once it said it leaves,
    /// or when it is not kept.
    pub fn heard(&self, nameplate: Nameplate) -> Option<Instant> {
        self.lock()
            .get(&nameplate)
            .filter(|s| !s.left)
            .map(|s| s.heard)
    }

    /// Marks `nameplate` claimed with the agent's side of the session:
    /// its waits are answered with it from now on.
    pub fn claimed(&self, nameplate: Nameplate, pairing: Pairing) {
        if let Some(spot) = self.lock().get_mut(&nameplate) {
            spot.pairing = Some(pairing);
        }
    }

    /// What to tell the agent of its claim now, if it has been heard from.
    pub fn tell_claimed(&self, nameplate: Nameplate) -> Option<Tell> {
        let spots = self.lock();
        let spot = spots.get(&nameplate)?;
        let (to, via) = spot.at?;
        let held = Held::Claimed(spot.pairing.clone()?);
        Some(Tell {
            to,
            via,
            datagram: spot.key.as_ref()?.answer(nameplate, spot.counter, &held)?,
        })
    }

    /// The agent's side of the claim on the code whose ticket expires at
    /// `expires_at`, for an agent that comes back on a connection for it.
    pub fn pairing(&self, nameplate: Nameplate, expires_at: u64) -> Option<Pairing> {
        self.lock()
            .get(&nameplate)
            .filter(|s| s.expires_at == expires_at)
            .and_then(|s| s.pairing.clone())
    }

    /// What to tell every agent heard from when the relay shuts down:
    /// that it is closing, so they reconnect once it is back rather than
    /// wait out their silence.
    pub fn closing(&self) -> Vec<Tell> {
        self.lock()
            .iter()
            .filter_map(|(nameplate, spot)| {
                let (to, via) = spot.at?;
                let key = spot.key.as_ref()?;
                Some(Tell {
                    to,
                    via,
                    datagram: key.answer(*nameplate, spot.counter, &Held::Closing)?,
                })
            })
            .collect()
    }

    /// The answer to datagram `d`, a wait that came from `from` to the
    /// relay's address `via`; `None` when it is not a wait made with one
    /// of this relay's tickets, or is a replay. `unix` is the time in
    /// seconds since the Unix epoch.
    pub fn answer(
        &self,
        from: SocketAddr,
        via: Option<IpAddr>,
        d: &[u8],
        now: Instant,
        unix: u64,
    ) -> Option<Tell> {
        let wait = read_wait(d)?;
        let key = self.key.check_wait(&wait)?;
        let mut spots = self.lock();
        let held = match spots.get_mut(&wait.nameplate) {
            Some(spot) if spot.expires_at == wait.expires_at && unix < wait.expires_at => {
                if wait.counter <= spot.counter {
                    return None;
                }
                spot.counter = wait.counter;
                spot.at = Some((from, via));
                spot.heard = now;
                if spot.key.is_none() {
                    spot.key = Some(key.clone());
                }
                if wait.leaving {
                    spot.left = true;
                    spot.stirred.notify_one();
                }
                match &spot.pairing {
                    Some(pairing) => Held::Claimed(pairing.clone()),
                    None => Held::Waiting,
                }
            }
            _ => Held::NotHere,
        };
        Some(Tell {
            to: from,
            via,
            datagram: key.answer(wait.nameplate, wait.counter, &held)?,
        })
    }

    /// Agents kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Claimed sessions whose agent has not bound its side at the forwarder
/// yet, by session id.
#[derive(Default)]
pub struct Arrivals {
    expected: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl Arrivals {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.expected.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes when the agent's side of `session` binds.
    pub fn expect(&self, session: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(session, tx);
        rx
    }

    /// The agent's side of `session` bound at the forwarder.
    pub fn arrived(&self, session: u64) {
        if let Some(tx) = self.lock().remove(&session) {
            let _ = tx.send(());
        }
    }

    /// Stops expecting `session`'s agent.
    pub fn forget(&self, session: u64) {
        self.lock().remove(&session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::waiting::{Answer, WaitingTicket};

    fn entry(n: u64) -> EntryId {
        EntryId::for_tests(n)
    }

    fn setup() -> (Parked, WaitingTicket, Nameplate) {
        let key = WaitingKey::from_bytes([5; 32]);
        let n = Nameplate::new(31).unwrap();
        let ticket = key.issue(n, 1_000);
        (Parked::new(key), ticket, n)
    }

    fn from() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 4000))
    }

    fn pairing() -> Pairing {
        let mint = sprijin_proto::path::wire::TicketMint::new([4; 32]);
        Pairing {
            ticket: mint.issue(77, sprijin_proto::path::wire::Side::Agent, 2_000),
            technician: sprijin_proto::message::control::Technician {
                name: "Ana".into(),
                vouched: false,
            },
        }
    }

    fn held(ticket: &WaitingTicket, tell: &Tell) -> Held {
        let Some(Answer { held, .. }) = ticket.read_answer(&tell.datagram) else {
            panic!("the answer does not read under the ticket");
        };
        held
    }

    #[test]
    fn closing_is_told_to_each_agent_heard_from_and_no_other() {
        let (parked, ticket, n) = setup();
        let quiet = Nameplate::new(32).unwrap();
        parked.keep(n, entry(1), 1_000);
        parked.keep(quiet, entry(2), 1_000);
        assert!(parked.closing().is_empty(), "no agent heard from yet");
        parked.answer(from(), None, &ticket.wait(10, false), Instant::now(), 500);
        let told = parked.closing();
        assert_eq!(told.len(), 1, "only the agent heard from, where it was");
        assert_eq!(told[0].to, from());
        assert_eq!(
            ticket.read_answer(&told[0].datagram),
            Some(Answer {
                counter: 10,
                held: Held::Closing
            })
        );
    }

    #[test]
    fn a_claim_is_told_where_the_agent_was_heard_and_a_replay_moves_nothing() {
        let (parked, ticket, n) = setup();
        let now = Instant::now();
        // Not kept yet (a restarted relay): reconnect.
        let tell = parked.answer(from(), None, &ticket.wait(1, false), now, 500);
        assert_eq!(held(&ticket, &tell.unwrap()), Held::NotHere);

        parked.keep(n, entry(1), 1_000);
        parked.claimed(n, pairing());
        assert!(
            parked.tell_claimed(n).is_none(),
            "never heard: nowhere to tell"
        );
        let claimed = Held::Claimed(pairing());
        let tell = parked
            .answer(from(), None, &ticket.wait(10, false), now, 500)
            .unwrap();
        assert_eq!((tell.to, held(&ticket, &tell)), (from(), claimed.clone()));

        // A replay from elsewhere is not answered and moves nothing.
        let elsewhere = SocketAddr::from(([198, 51, 100, 7], 9));
        assert!(
            parked
                .answer(elsewhere, None, &ticket.wait(10, false), now, 500)
                .is_none()
        );
        let tell = parked.tell_claimed(n).unwrap();
        assert_eq!((tell.to, held(&ticket, &tell)), (from(), claimed));
        // An agent back on a connection gets the same, with its ticket only.
        assert_eq!(parked.pairing(n, 1_000), Some(pairing()));
        assert_eq!(parked.pairing(n, 999), None);
    }

    #[test]
    fn a_kept_code_is_answered_waiting_until_claimed() {
        let (parked, ticket, n) = setup();
        parked.keep(n, entry(1), 1_000);
        let now = Instant::now();
        let tell = parked
            .answer(from(), None, &ticket.wait(10, false), now, 500)
            .unwrap();
        assert_eq!(held(&ticket, &tell), Held::Waiting);
        assert!(parked.tell_claimed(n).is_none(), "not claimed yet");
        parked.claimed(n, pairing());
        assert!(parked.tell_claimed(n).is_some());
        let tell = parked
            .answer(from(), None, &ticket.wait(11, false), now, 500)
            .unwrap();
        assert_eq!(held(&ticket, &tell), Held::Claimed(pairing()));
    }

    #[test]
    fn a_forged_or_expired_wait_is_not_kept() {
        let (parked, ticket, n) = setup();
        parked.keep(n, entry(1), 1_000);
        let stranger = WaitingKey::from_bytes([6; 32]).issue(n, 1_000);
        assert!(
            parked
                .answer(from(), None, &stranger.wait(5, false), Instant::now(), 500)
                .is_none()
        );
        let late = parked
            .answer(from(), None, &ticket.wait(5, false), Instant::now(), 1_000)
            .unwrap();
        assert_eq!(held(&ticket, &late), Held::NotHere);
    }

    #[test]
    fn leaving_wakes_the_task_and_a_later_entry_is_not_forgotten() {
        let (parked, ticket, n) = setup();
        let stirred = parked.keep(n, entry(1), 1_000);
        assert!(parked.heard(n).is_some());
        parked
            .answer(from(), None, &ticket.wait(3, true), Instant::now(), 500)
            .unwrap();
        assert!(parked.heard(n).is_none(), "a code whose agent left");
        let woken = stirred.notified();
        tokio::pin!(woken);
        assert!(
            woken.as_mut().enable(),
            "the task is woken even if it was not waiting yet"
        );

        // The code taken back: the first entry's task forgets nothing.
        parked.keep(n, entry(2), 1_000);
        parked.forget(n, entry(1));
        assert_eq!(parked.len(), 1, "an older entry's task forgot its own only");
        parked.forget(n, entry(2));
        assert_eq!(parked.len(), 0);
    }

    #[test]
    fn an_arrival_reaches_only_the_task_that_expects_it() {
        let arrivals = Arrivals::default();
        let mut first = arrivals.expect(1);
        let mut forgotten = arrivals.expect(2);
        arrivals.arrived(3);
        arrivals.forget(2);
        arrivals.arrived(2);
        assert!(first.try_recv().is_err(), "not arrived yet");
        arrivals.arrived(1);
        assert!(first.try_recv().is_ok());
        assert!(forgotten.try_recv().is_err());
        assert!(arrivals.lock().is_empty());
    }
}
