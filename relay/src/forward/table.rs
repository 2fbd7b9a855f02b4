//! The forwarding table: session id -> each side's address, key and the
//! highest presentation counter seen, and what to do with one datagram.
//!
//! Steady state costs a hash lookup and an address compare. Only a
//! presentation (the full ticket, a counter above any seen for that side,
//! and a MAC under the side's key) binds or moves a side's address, so a
//! third party who copies a data header, or replays a presentation, from
//! its own address gets nothing: its datagrams are dropped, and it is only
//! asked for a ticket it cannot present.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sprijin_proto::path::wire::{self, ASK_LEN, Datagram, Side, TicketMint};

use crate::metrics::Dropped;

/// Datagrams held for a side whose peer has not presented yet (the first
/// QUIC packets often arrive before the peer's presentation).
const PENDING_MAX: usize = 8;

/// Session ids are random and made by the relay, and only a valid
/// presentation inserts one, so the id itself is a fine hash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A per-side token bucket for `session_bytes_per_sec`.
struct Pace {
    tokens: u64,
    at: Instant,
}

struct SideState {
    addr: SocketAddr,
    counter: u64,
    expires_at: u64,
    pace: Pace,
}

struct Entry {
    sides: [Option<SideState>; 2],
    last_seen: Instant,
    /// Datagrams waiting for the receiving side's address, by sender.
    pending: Vec<(Side, Vec<u8>)>,
}

/// The time, twice: for idle and pacing, and for ticket expiry.
#[derive(Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub unix: u64,
}

/// What to do with one datagram.
pub enum Verdict<'a> {
    /// Send `payload` to `to`; it came from `from`.
    Forward {
        to: SocketAddr,
        from: Side,
        payload: &'a [u8],
    },
    /// QUIC for the relay's own endpoint.
    Control,
    /// Dropped; if `ask`, answer the source with this request for its
    /// ticket.
    Drop {
        why: Dropped,
        ask: Option<[u8; ASK_LEN]>,
    },
    /// A presentation was accepted (or was a repeat); these held
    /// datagrams can go now.
    Presented {
        release: Vec<(SocketAddr, Side, Vec<u8>)>,
    },
    /// Kept until the peer presents.
    Held,
    /// Not ours to act on (an ask sent to the relay, say).
    Ignore,
}

pub struct Table {
    entries: HashMap<u64, Entry, BuildHasherDefault<IdHasher>>,
    mint: TicketMint,
    bytes_per_sec: Option<u64>,
}

impl Table {
    pub fn new(mint: TicketMint, bytes_per_sec: Option<u64>) -> Table {
        Table {
            entries: HashMap::default(),
            mint,
            bytes_per_sec,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets sessions that carried nothing for `idle`.
    pub fn sweep(&mut self, now: Instant, idle: Duration) {
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_seen) < idle);
    }

    pub fn handle<'a>(&mut self, src: SocketAddr, d: &'a [u8], now: Now) -> Verdict<'a> {
        match wire::parse(d) {
            Datagram::Quic => Verdict::Control,
            Datagram::Data {
                session,
                side,
                payload,
            } => self.data(src, session, side, payload, now),
            Datagram::Present(p) => self.present(src, &p, now),
            Datagram::Ask { .. } => Verdict::Ignore,
            Datagram::Malformed => Verdict::Drop {
                why: Dropped::Forged,
                ask: None,
            },
        }
    }

    fn data<'a>(
        &mut self,
        src: SocketAddr,
        session: u64,
        side: Side,
        payload: &'a [u8],
        now: Now,
    ) -> Verdict<'a> {
        let ask = Some(wire::ask(session, side));
        let Some(entry) = self.entries.get_mut(&session) else {
            return Verdict::Drop {
                why: Dropped::Unknown,
                ask,
            };
        };
        let Some(me) = &mut entry.sides[side.index()] else {
            return Verdict::Drop {
                why: Dropped::Unknown,
                ask,
            };
        };
        if me.addr != src {
            return Verdict::Drop {
                why: Dropped::ThirdParty,
                ask,
            };
        }
        if me.expires_at < now.unix {
            return Verdict::Drop {
                why: Dropped::Expired,
                ask: None,
            };
        }
        if let Some(rate) = self.bytes_per_sec
            && !take(&mut me.pace, rate, payload.len() as u64, now.instant)
        {
            return Verdict::Drop {
                why: Dropped::OverRate,
                ask: None,
            };
        }
        entry.last_seen = now.instant;
        match &entry.sides[side.peer().index()] {
            Some(peer) => Verdict::Forward {
                to: peer.addr,
                from: side,
                payload,
            },
            None if entry.pending.len() < PENDING_MAX => {
                entry.pending.push((side, payload.to_vec()));
                Verdict::Held
            }
            None => Verdict::Drop {
                why: Dropped::PeerUnknown,
                ask: None,
            },
        }
    }

    fn present(
        &mut self,
        src: SocketAddr,
        p: &wire::Presentation<'_>,
        now: Now,
    ) -> Verdict<'static> {
        let fields = match self.mint.check(p.token, now.unix) {
            Ok(fields) => fields,
            Err(wire::TicketError::Expired) => {
                return Verdict::Drop {
                    why: Dropped::Expired,
                    ask: None,
                };
            }
            Err(_) => {
                return Verdict::Drop {
                    why: Dropped::Forged,
                    ask: None,
                };
            }
        };
        if fields.side != p.side || !wire::presentation_valid(p, &self.mint.key_for(p.token)) {
            return Verdict::Drop {
                why: Dropped::Forged,
                ask: None,
            };
        }
        let entry = self.entries.entry(fields.session).or_insert_with(|| Entry {
            sides: [None, None],
            last_seen: now.instant,
            pending: Vec::new(),
        });
        let slot = &mut entry.sides[fields.side.index()];
        match slot {
            Some(me) if p.counter <= me.counter => {
                if me.addr != src {
                    // A replay from elsewhere cannot move the side.
                    return Verdict::Drop {
                        why: Dropped::ThirdParty,
                        ask: None,
                    };
                }
            }
            Some(me) => {
                me.addr = src;
                me.counter = p.counter;
                me.expires_at = fields.expires_at;
            }
            None => {
                *slot = Some(SideState {
                    addr: src,
                    counter: p.counter,
                    expires_at: fields.expires_at,
                    pace: Pace {
                        tokens: self.bytes_per_sec.unwrap_or(0),
                        at: now.instant,
                    },
                });
            }
        }
        entry.last_seen = now.instant;
        // Release what waited for an address now known.
        let mut release = Vec::new();
        let mut kept = Vec::new();
        for (from, bytes) in entry.pending.drain(..) {
            match &entry.sides[from.peer().index()] {
                Some(to) => release.push((to.addr, from, bytes)),
                None => kept.push((from, bytes)),
            }
        }
        entry.pending = kept;
        Verdict::Presented { release }
    }
}

/// Takes `n` bytes from the bucket, refilled at `rate` per second with at
/// most a second's worth held.
fn take(pace: &mut Pace, rate: u64, n: u64, now: Instant) -> bool {
    let elapsed = now.saturating_duration_since(pace.at);
    let refill = (u128::from(rate) * elapsed.as_micros() / 1_000_000) as u64;
    if refill > 0 {
        pace.tokens = pace.tokens.saturating_add(refill).min(rate);
        pace.at = now;
    }
    if pace.tokens >= n {
        pace.tokens -= n;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            unix: 1_000,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn data(session: u64, side: Side) -> Vec<u8> {
        let mut d = wire::data_header(session, side).to_vec();
        d.extend_from_slice(b"\x40payload");
        d
    }

    #[test]
    fn datagrams_go_to_the_other_side_once_both_presented() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None);
        let a = mint.issue(7, Side::Agent, 2_000);
        let c = mint.issue(7, Side::Console, 2_000);
        let pa = wire::presentation(&a.token, &a.key, 1).unwrap();
        assert!(matches!(
            table.handle(addr(1), &pa, now()),
            Verdict::Presented { .. }
        ));
        let early = data(7, Side::Agent);
        assert!(matches!(
            table.handle(addr(1), &early, now()),
            Verdict::Held
        ));
        let pc = wire::presentation(&c.token, &c.key, 1).unwrap();
        match table.handle(addr(2), &pc, now()) {
            Verdict::Presented { release } => {
                assert_eq!(release.len(), 1);
                assert_eq!(release[0].0, addr(2));
            }
            _ => panic!("not presented"),
        }
        let d = data(7, Side::Console);
        match table.handle(addr(2), &d, now()) {
            Verdict::Forward { to, payload, .. } => {
                assert_eq!(to, addr(1));
                assert_eq!(payload, b"\x40payload");
            }
            _ => panic!("not forwarded"),
        }
    }

    #[test]
    fn only_a_fresh_presentation_moves_a_side() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None);
        let a = mint.issue(7, Side::Agent, 2_000);
        let p1 = wire::presentation(&a.token, &a.key, 10).unwrap();
        table.handle(addr(1), &p1, now());
        // A copied header from elsewhere is dropped and asked for a ticket.
        assert!(matches!(
            table.handle(addr(9), &data(7, Side::Agent), now()),
            Verdict::Drop {
                why: Dropped::ThirdParty,
                ask: Some(_)
            }
        ));
        // A replayed presentation from elsewhere does not move the side.
        assert!(matches!(
            table.handle(addr(9), &p1, now()),
            Verdict::Drop {
                why: Dropped::ThirdParty,
                ..
            }
        ));
        // A forged one (wrong key) neither.
        let forged = wire::presentation(&a.token, &[0; 32], 11).unwrap();
        assert!(matches!(
            table.handle(addr(9), &forged, now()),
            Verdict::Drop {
                why: Dropped::Forged,
                ..
            }
        ));
        // The side itself, after a network change, moves.
        let p2 = wire::presentation(&a.token, &a.key, 11).unwrap();
        assert!(matches!(
            table.handle(addr(3), &p2, now()),
            Verdict::Presented { .. }
        ));
        assert!(matches!(
            table.handle(addr(1), &data(7, Side::Agent), now()),
            Verdict::Drop {
                why: Dropped::ThirdParty,
                ..
            }
        ));
    }

    #[test]
    fn expired_tickets_and_unknown_sessions_are_dropped() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None);
        let old = mint.issue(7, Side::Agent, 999);
        let p = wire::presentation(&old.token, &old.key, 1).unwrap();
        assert!(matches!(
            table.handle(addr(1), &p, now()),
            Verdict::Drop {
                why: Dropped::Expired,
                ..
            }
        ));
        assert!(matches!(
            table.handle(addr(1), &data(8, Side::Agent), now()),
            Verdict::Drop {
                why: Dropped::Unknown,
                ask: Some(_)
            }
        ));
        assert!(matches!(
            table.handle(addr(1), b"\x10", now()),
            Verdict::Drop {
                why: Dropped::Forged,
                ..
            }
        ));
    }

    #[test]
    fn pacing_drops_what_is_over_the_rate() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), Some(100));
        for (side, port) in [(Side::Agent, 1), (Side::Console, 2)] {
            let t = mint.issue(7, side, 2_000);
            let p = wire::presentation(&t.token, &t.key, 1).unwrap();
            table.handle(addr(port), &p, now());
        }
        let t = now();
        let mut big = wire::data_header(7, Side::Agent).to_vec();
        big.extend_from_slice(&[0x40; 60]);
        assert!(matches!(
            table.handle(addr(1), &big, t),
            Verdict::Forward { .. }
        ));
        assert!(matches!(
            table.handle(addr(1), &big, t),
            Verdict::Drop {
                why: Dropped::OverRate,
                ..
            }
        ));
    }
}
