//! What a session's sockets know of the direct path, shared with the task
//! that finds and checks it: the probes' key, the addresses proven to be
//! the other side's, and (on the console, the QUIC client) where the
//! connection's datagrams go instead of the relay.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use crate::path::probe::{PROBE_LEN, Probe, ProbeKey, is_probe};
use crate::path::socket::TicketedSocket;
use crate::path::wire::Side;

/// How many addresses may be proven the other side's at once.
const MAX_PROVEN: usize = 8;
/// How many sent probes are remembered for their answers.
const MAX_SENT: usize = 64;

/// What to do with one datagram that did not come from the relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// QUIC from the other side's proven address: take it in.
    Quic,
    /// An authenticated probe: send this answer back to where it came from.
    Reply([u8; PROBE_LEN]),
    /// Nothing for this side.
    Drop,
}

pub(crate) struct DirectState {
    me: Side,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    key: Option<ProbeKey>,
    proven: VecDeque<SocketAddr>,
    route: Option<SocketAddr>,
    sent: VecDeque<(u64, SocketAddr)>,
    /// The last answer from each address, newest last.
    answers: VecDeque<(SocketAddr, Instant)>,
    /// Where the relay sees this side's socket.
    reflexive: Option<SocketAddr>,
    socket: Weak<TicketedSocket>,
    /// Counts resets, so the task sees that the path it checks is gone.
    generation: u64,
}

impl DirectState {
    pub(crate) fn new(me: Side) -> Arc<DirectState> {
        Arc::new(DirectState {
            me,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The socket now in use; a rebind replaces it and forgets every
    /// address proven over the old one.
    pub(crate) fn attach(&self, socket: &Arc<TicketedSocket>) {
        let mut inner = self.lock();
        inner.socket = Arc::downgrade(socket);
        inner.proven.clear();
        inner.route = None;
        inner.answers.clear();
        inner.reflexive = None;
        inner.generation += 1;
    }

    pub(crate) fn socket(&self) -> Option<Arc<TicketedSocket>> {
        self.lock().socket.upgrade()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Turns probing on: from now on this side answers the other side's
    /// probes and takes QUIC from addresses they prove.
    pub(crate) fn enable(&self, key: ProbeKey) {
        self.lock().key = Some(key);
    }

    pub(crate) fn set_reflexive(&self, addr: SocketAddr) {
        self.lock().reflexive = Some(addr);
    }

    pub(crate) fn reflexive(&self) -> Option<SocketAddr> {
        self.lock().reflexive
    }

    /// Where the connection's datagrams to the relay go instead.
    pub(crate) fn route(&self) -> Option<SocketAddr> {
        self.lock().route
    }

    pub(crate) fn set_route(&self, to: Option<SocketAddr>) {
        self.lock().route = to;
    }

    /// Whether `addr` was proven the other side's.
    pub(crate) fn proven(&self, addr: SocketAddr) -> bool {
        self.lock().proven.contains(&addr)
    }

    /// A probe to `to`, remembered for its answer; `None` before probing
    /// is on.
    pub(crate) fn probe(&self, to: SocketAddr) -> Option<[u8; PROBE_LEN]> {
        let mut inner = self.lock();
        let key = inner.key.clone()?;
        let id = rand::random::<u64>();
        if inner.sent.len() >= MAX_SENT {
            inner.sent.pop_front();
        }
        inner.sent.push_back((id, to));
        Some(key.probe(self.me, id))
    }

    /// When `from` last answered a probe of ours.
    pub(crate) fn answered(&self, from: SocketAddr) -> Option<Instant> {
        self.lock()
            .answers
            .iter()
            .find(|(a, _)| *a == from)
            .map(|(_, at)| *at)
    }

    /// An address that answered a probe of ours since `since`.
    pub(crate) fn first_answer_since(&self, since: Instant) -> Option<SocketAddr> {
        self.lock()
            .answers
            .iter()
            .find(|(_, at)| *at >= since)
            .map(|(a, _)| *a)
    }

    /// Looks at one datagram from `from`, not the relay.
    pub(crate) fn inbound(&self, d: &[u8], from: SocketAddr) -> Inbound {
        let mut inner = self.lock();
        if d.first().is_some_and(|b| b & 0x40 != 0) {
            return if inner.proven.contains(&from) {
                Inbound::Quic
            } else {
                Inbound::Drop
            };
        }
        if !is_probe(d) {
            return Inbound::Drop;
        }
        let Some(key) = inner.key.clone() else {
            return Inbound::Drop;
        };
        match key.read(self.me, d) {
            Some(Probe::Probe { id }) => {
                inner.prove(from);
                Inbound::Reply(key.answer(self.me, id, from))
            }
            Some(Probe::Answer { id, .. }) => {
                if inner.sent.iter().any(|(sent, _)| *sent == id) {
                    inner.prove(from);
                    inner.answers.retain(|(a, _)| *a != from);
                    if inner.answers.len() >= MAX_PROVEN {
                        inner.answers.pop_front();
                    }
                    inner.answers.push_back((from, Instant::now()));
                }
                Inbound::Drop
            }
            None => Inbound::Drop,
        }
    }
}

impl Inner {
    fn prove(&mut self, addr: SocketAddr) {
        if self.proven.contains(&addr) {
            return;
        }
        if self.proven.len() >= MAX_PROVEN {
            self.proven.pop_front();
        }
        self.proven.push_back(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn quic_is_taken_only_from_an_address_a_probe_proved() {
        let agent = DirectState::new(Side::Agent);
        let console = DirectState::new(Side::Console);
        let quic = [0x40u8, 1, 2, 3];
        let them = addr("192.0.2.9:7000");
        assert_eq!(agent.inbound(&quic, them), Inbound::Drop);
        let key = ProbeKey::new([1; 32]);
        // Before probing is on, even a good probe is not answered.
        console.enable(key.clone());
        let p = console.probe(addr("192.0.2.1:5000")).unwrap();
        assert_eq!(agent.inbound(&p, them), Inbound::Drop);
        agent.enable(key);
        let Inbound::Reply(answer) = agent.inbound(&p, them) else {
            panic!("a probe gets an answer");
        };
        assert_eq!(agent.inbound(&quic, them), Inbound::Quic);
        assert_eq!(agent.inbound(&quic, addr("192.0.2.10:7000")), Inbound::Drop);

        let from = addr("192.0.2.1:5000");
        let before = Instant::now();
        assert_eq!(console.inbound(&answer, from), Inbound::Drop);
        assert!(console.proven(from));
        assert_eq!(console.first_answer_since(before), Some(from));
        // An answer to a probe never sent proves nothing.
        let stray = ProbeKey::new([1; 32]).answer(Side::Agent, 5, from);
        let other = addr("192.0.2.2:5000");
        assert_eq!(console.inbound(&stray, other), Inbound::Drop);
        assert!(!console.proven(other));
    }
}
