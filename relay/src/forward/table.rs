//! The forwarding table: session id -> each side's address, and what to do
//! with one datagram.
//!
//! Steady state costs a hash lookup and an address compare. A presentation
//! (the full ticket and a MAC under the side's key) from an address the
//! relay already has for that side is a keep-alive; from any other address
//! it is answered with a challenge, shorter than the presentation, and only
//! the side's echo of that challenge from the same address binds or moves
//! it. So the relay forwards nothing to an address that has not proven it
//! receives there, and a presentation replayed from elsewhere (before or
//! after a restart) moves nothing: the echo needs the side's key and a
//! nonce made for that address a moment ago.
//!
//! Everything the table keeps is bounded: entries by `max_sessions`, and
//! datagrams held for a side not yet known by count and bytes per entry, by
//! bytes in total, and by time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sprijin_proto::path::wire::{
    self, ASK_LEN, CHALLENGE_LEN, Datagram, PATH_DATAGRAM_MAX, SEEN_LEN, Side, TicketMint,
};

use crate::metrics::Dropped;

/// Datagrams held for a side whose peer has not bound yet (the first QUIC
/// packets often arrive before the peer's echo).
const PENDING_MAX: usize = 8;

/// Bytes held for one entry.
const PENDING_BYTES_MAX: usize = PENDING_MAX * PATH_DATAGRAM_MAX;

/// Bytes held across every entry.
const HELD_BYTES_MAX: usize = 8 * 1024 * 1024;

/// How long held datagrams wait for their receiver; QUIC sends them again.
const HOLD_FOR: Duration = Duration::from_secs(5);

/// A challenge's nonce is good for this time step and the next.
pub const CHALLENGE_STEP_SECS: u64 = 10;

/// Session ids are random and made by the relay, and only a valid echo
/// inserts one, so the id itself is a fine hash.
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
    /// The relay's address this side sends to; what it is sent from.
    local: Option<IpAddr>,
    expires_at: u64,
    pace: Pace,
}

struct Entry {
    sides: [Option<SideState>; 2],
    last_seen: Instant,
    /// Datagrams waiting for the receiving side's address, by sender.
    pending: Vec<(Side, Vec<u8>)>,
    pending_bytes: usize,
    /// When the oldest held datagram arrived.
    held_since: Instant,
}

/// The time, twice: for idle and pacing, and for ticket expiry.
#[derive(Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    pub unix: u64,
}

/// A datagram released to a side that has just bound.
pub struct Release {
    pub to: SocketAddr,
    pub via: Option<IpAddr>,
    pub from: Side,
    pub bytes: Vec<u8>,
}

/// What to do with one datagram.
pub enum Verdict<'a> {
    /// Send `payload` to `to`, from the relay's address `via`; it came
    /// from `from`.
    Forward {
        to: SocketAddr,
        via: Option<IpAddr>,
        from: Side,
        payload: &'a [u8],
    },
    /// QUIC for the relay's own endpoint.
    Control,
    /// A waiting agent keeping its code, for the parked table.
    Wait,
    /// Dropped; if `ask`, answer the source with this request for its
    /// ticket.
    Drop {
        why: Dropped,
        ask: Option<[u8; ASK_LEN]>,
    },
    /// A valid presentation from an address not yet proven: answer the
    /// source with this challenge and the address it was seen at, and
    /// nothing else.
    Challenge([u8; CHALLENGE_LEN], [u8; SEEN_LEN]),
    /// A side was bound (or kept its address); these held datagrams can go
    /// now. `arrived` is the session whose agent side just bound for the
    /// first time.
    Bound {
        release: Vec<Release>,
        arrived: Option<u64>,
    },
    /// Kept until the peer binds.
    Held,
    /// Not ours to act on (an ask sent to the relay, say).
    Ignore,
}

pub struct Table {
    entries: HashMap<u64, Entry, BuildHasherDefault<IdHasher>>,
    mint: TicketMint,
    bytes_per_sec: Option<u64>,
    max_entries: usize,
    held_bytes: usize,
}

/// The address's bytes the challenge nonce is bound to.
fn peer_bytes(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

impl Table {
    pub fn new(mint: TicketMint, bytes_per_sec: Option<u64>, max_entries: usize) -> Table {
        Table {
            entries: HashMap::default(),
            mint,
            bytes_per_sec,
            max_entries,
            held_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held for sides not yet known, across every entry.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Forgets sessions that carried nothing for `idle`, and held
    /// datagrams that waited [`HOLD_FOR`].
    pub fn sweep(&mut self, now: Instant, idle: Duration) {
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let keep = now.saturating_duration_since(e.last_seen) < idle;
            if !keep || now.saturating_duration_since(e.held_since) >= HOLD_FOR {
                freed += e.pending_bytes;
                e.pending = Vec::new();
                e.pending_bytes = 0;
            }
            keep
        });
        self.held_bytes = self.held_bytes.saturating_sub(freed);
    }

    /// What to do with `d`, which came from `src` to the relay's address
    /// `dst` (when the system says).
    pub fn handle<'a>(
        &mut self,
        src: SocketAddr,
        dst: Option<IpAddr>,
        d: &'a [u8],
        now: Now,
    ) -> Verdict<'a> {
        if d.len() > PATH_DATAGRAM_MAX {
            return Verdict::Drop {
                why: Dropped::Oversize,
                ask: None,
            };
        }
        match wire::parse(d) {
            Datagram::Quic => Verdict::Control,
            Datagram::Data {
                session,
                side,
                payload,
            } => self.data(src, session, side, payload, now),
            Datagram::Present(p) => self.present(src, &p, now),
            Datagram::Echo(e) => self.echo(src, dst, &e, now),
            Datagram::Wait => Verdict::Wait,
            Datagram::Ask { .. }
            | Datagram::Challenge { .. }
            | Datagram::Seen { .. }
            | Datagram::WaitAnswer => Verdict::Ignore,
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
                via: peer.local,
                from: side,
                payload,
            },
            None if entry.pending.len() < PENDING_MAX
                && entry.pending_bytes + payload.len() <= PENDING_BYTES_MAX
                && self.held_bytes + payload.len() <= HELD_BYTES_MAX =>
            {
                if entry.pending.is_empty() {
                    entry.held_since = now.instant;
                }
                entry.pending.push((side, payload.to_vec()));
                entry.pending_bytes += payload.len();
                self.held_bytes += payload.len();
                Verdict::Held
            }
            None => Verdict::Drop {
                why: Dropped::PeerUnknown,
                ask: None,
            },
        }
    }

    /// Checks a ticket and says what it is for, or why it is refused.
    fn ticket(&self, token: &[u8], side: Side, now: Now) -> Result<wire::TokenFields, Dropped> {
        match self.mint.check(token, now.unix) {
            Ok(fields) if fields.side == side => Ok(fields),
            Ok(_) => Err(Dropped::Forged),
            Err(wire::TicketError::Expired) => Err(Dropped::Expired),
            Err(_) => Err(Dropped::Forged),
        }
    }

    fn present(
        &mut self,
        src: SocketAddr,
        p: &wire::Presentation<'_>,
        now: Now,
    ) -> Verdict<'static> {
        let fields = match self.ticket(p.token, p.side, now) {
            Ok(fields) => fields,
            Err(why) => return Verdict::Drop { why, ask: None },
        };
        if !wire::presentation_valid(p, &self.mint.key_for(p.token)) {
            return Verdict::Drop {
                why: Dropped::Forged,
                ask: None,
            };
        }
        let known = self
            .entries
            .get(&fields.session)
            .and_then(|e| e.sides[fields.side.index()].as_ref())
            .is_some_and(|me| me.addr == src);
        if known {
            // A keep-alive from where the side already is.
            if let Some(entry) = self.entries.get_mut(&fields.session) {
                entry.last_seen = now.instant;
            }
            return Verdict::Bound {
                release: Vec::new(),
                arrived: None,
            };
        }
        let step = now.unix / CHALLENGE_STEP_SECS;
        let nonce = self
            .mint
            .nonce(fields.session, fields.side, &peer_bytes(src), step);
        Verdict::Challenge(
            wire::challenge(fields.session, fields.side, &nonce),
            wire::seen(fields.session, fields.side, src),
        )
    }

    fn echo(
        &mut self,
        src: SocketAddr,
        dst: Option<IpAddr>,
        e: &wire::Echo<'_>,
        now: Now,
    ) -> Verdict<'static> {
        let fields = match self.ticket(e.token, e.side, now) {
            Ok(fields) => fields,
            Err(why) => return Verdict::Drop { why, ask: None },
        };
        let step = now.unix / CHALLENGE_STEP_SECS;
        let peer = peer_bytes(src);
        let fresh = [step, step.saturating_sub(1)].iter().any(|s| {
            wire::nonce_matches(
                &self.mint.nonce(fields.session, fields.side, &peer, *s),
                e.nonce,
            )
        });
        if !fresh || !wire::echo_valid(e, &self.mint.key_for(e.token)) {
            return Verdict::Drop {
                why: Dropped::Forged,
                ask: None,
            };
        }
        if !self.entries.contains_key(&fields.session) && self.entries.len() >= self.max_entries {
            return Verdict::Drop {
                why: Dropped::Full,
                ask: None,
            };
        }
        let entry = self.entries.entry(fields.session).or_insert_with(|| Entry {
            sides: [None, None],
            last_seen: now.instant,
            pending: Vec::new(),
            pending_bytes: 0,
            held_since: now.instant,
        });
        let slot = &mut entry.sides[fields.side.index()];
        let arrived = (slot.is_none() && fields.side == Side::Agent).then_some(fields.session);
        match slot {
            Some(me) => {
                me.addr = src;
                me.local = dst;
                me.expires_at = fields.expires_at;
            }
            None => {
                *slot = Some(SideState {
                    addr: src,
                    local: dst,
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
        let mut freed = 0;
        for (from, bytes) in entry.pending.drain(..) {
            match &entry.sides[from.peer().index()] {
                Some(to) => {
                    freed += bytes.len();
                    release.push(Release {
                        to: to.addr,
                        via: to.local,
                        from,
                        bytes,
                    });
                }
                None => kept.push((from, bytes)),
            }
        }
        entry.pending = kept;
        entry.pending_bytes -= freed;
        self.held_bytes = self.held_bytes.saturating_sub(freed);
        Verdict::Bound { release, arrived }
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

    /// Presents `t` from `from`, echoes the challenge, and returns what the
    /// echo did.
    fn bind(
        table: &mut Table,
        t: &sprijin_proto::path::Ticket,
        from: SocketAddr,
    ) -> Verdict<'static> {
        let p = wire::presentation(&t.token, &t.key, 1).unwrap();
        let Verdict::Challenge(c, _) = table.handle(from, None, &p, now()) else {
            panic!("a presentation from a new address is not challenged");
        };
        let Datagram::Challenge { nonce, .. } = wire::parse(&c) else {
            panic!("not a challenge");
        };
        let e = wire::echo(&t.token, &t.key, nonce).unwrap();
        match table.handle(from, None, &e, now()) {
            Verdict::Bound { release, arrived } => Verdict::Bound { release, arrived },
            _ => panic!("a right echo does not bind"),
        }
    }

    #[test]
    fn datagrams_go_to_the_other_side_once_both_proved_their_address() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None, 10);
        let a = mint.issue(7, Side::Agent, 2_000);
        let c = mint.issue(7, Side::Console, 2_000);
        assert!(matches!(
            bind(&mut table, &a, addr(1)),
            Verdict::Bound {
                arrived: Some(7),
                ..
            }
        ));
        let early = data(7, Side::Agent);
        assert!(matches!(
            table.handle(addr(1), None, &early, now()),
            Verdict::Held
        ));
        assert!(table.held_bytes() > 0);
        // The console presents: challenged, nothing released yet.
        let pc = wire::presentation(&c.token, &c.key, 1).unwrap();
        assert!(matches!(
            table.handle(addr(2), None, &pc, now()),
            Verdict::Challenge(..)
        ));
        match bind(&mut table, &c, addr(2)) {
            Verdict::Bound { release, arrived } => {
                assert_eq!(arrived, None, "the console's side is no arrival");
                assert_eq!(release.len(), 1);
                assert_eq!(release[0].to, addr(2));
            }
            _ => unreachable!(),
        }
        assert_eq!(table.held_bytes(), 0);
        let d = data(7, Side::Console);
        match table.handle(addr(2), None, &d, now()) {
            Verdict::Forward { to, payload, .. } => {
                assert_eq!(to, addr(1));
                assert_eq!(payload, b"\x40payload");
            }
            _ => panic!("not forwarded"),
        }
    }

    #[test]
    fn only_an_echo_from_the_address_moves_a_side() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None, 10);
        let a = mint.issue(7, Side::Agent, 2_000);
        bind(&mut table, &a, addr(1));
        // A copied header from elsewhere is dropped and asked for a ticket.
        assert!(matches!(
            table.handle(addr(9), None, &data(7, Side::Agent), now()),
            Verdict::Drop {
                why: Dropped::ThirdParty,
                ask: Some(_)
            }
        ));
        // A replayed presentation from elsewhere gets a challenge only.
        let p1 = wire::presentation(&a.token, &a.key, 10).unwrap();
        let Verdict::Challenge(c, _) = table.handle(addr(9), None, &p1, now()) else {
            panic!("not challenged");
        };
        assert!(c.len() < p1.len());
        // Without the key, the challenge cannot be answered.
        let Datagram::Challenge { nonce, .. } = wire::parse(&c) else {
            panic!("not a challenge");
        };
        let forged = wire::echo(&a.token, &[0; 32], nonce).unwrap();
        assert!(matches!(
            table.handle(addr(9), None, &forged, now()),
            Verdict::Drop {
                why: Dropped::Forged,
                ..
            }
        ));
        // A right echo sent from another address than the challenged one
        // neither.
        let echo = wire::echo(&a.token, &a.key, nonce).unwrap();
        assert!(matches!(
            table.handle(addr(8), None, &echo, now()),
            Verdict::Drop {
                why: Dropped::Forged,
                ..
            }
        ));
        assert!(matches!(
            table.handle(addr(1), None, &data(7, Side::Agent), now()),
            Verdict::Held
        ));
        // The side itself, after a network change, moves.
        bind(&mut table, &a, addr(3));
        assert!(matches!(
            table.handle(addr(1), None, &data(7, Side::Agent), now()),
            Verdict::Drop {
                why: Dropped::ThirdParty,
                ..
            }
        ));
        // An echo from a time step long past is refused.
        let old = mint.nonce(
            7,
            Side::Agent,
            &peer_bytes(addr(4)),
            1_000 / CHALLENGE_STEP_SECS - 2,
        );
        let stale = wire::echo(&a.token, &a.key, &old).unwrap();
        assert!(matches!(
            table.handle(addr(4), None, &stale, now()),
            Verdict::Drop {
                why: Dropped::Forged,
                ..
            }
        ));
    }

    #[test]
    fn expired_tickets_unknown_sessions_and_oversize_datagrams_are_dropped() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None, 10);
        let old = mint.issue(7, Side::Agent, 999);
        let p = wire::presentation(&old.token, &old.key, 1).unwrap();
        assert!(matches!(
            table.handle(addr(1), None, &p, now()),
            Verdict::Drop {
                why: Dropped::Expired,
                ..
            }
        ));
        assert!(matches!(
            table.handle(addr(1), None, &data(8, Side::Agent), now()),
            Verdict::Drop {
                why: Dropped::Unknown,
                ask: Some(_)
            }
        ));
        assert!(matches!(
            table.handle(addr(1), None, b"\x10", now()),
            Verdict::Drop {
                why: Dropped::Forged,
                ..
            }
        ));
        let big = vec![0x40; PATH_DATAGRAM_MAX + 1];
        assert!(matches!(
            table.handle(addr(1), None, &big, now()),
            Verdict::Drop {
                why: Dropped::Oversize,
                ..
            }
        ));
    }

    #[test]
    fn entries_and_held_bytes_are_bounded() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), None, 2);
        for session in [1, 2] {
            bind(
                &mut table,
                &mint.issue(session, Side::Agent, 2_000),
                addr(1),
            );
        }
        let third = mint.issue(3, Side::Agent, 2_000);
        let p = wire::presentation(&third.token, &third.key, 1).unwrap();
        let Verdict::Challenge(c, _) = table.handle(addr(1), None, &p, now()) else {
            panic!("not challenged");
        };
        let Datagram::Challenge { nonce, .. } = wire::parse(&c) else {
            panic!("not a challenge");
        };
        let e = wire::echo(&third.token, &third.key, nonce).unwrap();
        assert!(matches!(
            table.handle(addr(1), None, &e, now()),
            Verdict::Drop {
                why: Dropped::Full,
                ..
            }
        ));
        assert_eq!(table.len(), 2);
        let mut full = wire::data_header(1, Side::Agent).to_vec();
        full.resize(PATH_DATAGRAM_MAX, 0x40);
        let mut held = 0;
        for _ in 0..100 {
            if matches!(table.handle(addr(1), None, &full, now()), Verdict::Held) {
                held += 1;
            }
        }
        assert!(held <= PENDING_MAX);
        assert!(table.held_bytes() <= PENDING_BYTES_MAX);
        table.sweep(Instant::now() + HOLD_FOR, Duration::from_secs(600));
        assert_eq!(table.held_bytes(), 0, "held datagrams wait a bounded time");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn pacing_drops_what_is_over_the_rate() {
        let mint = TicketMint::new([1; 32]);
        let mut table = Table::new(mint.clone(), Some(100), 10);
        for (side, port) in [(Side::Agent, 1), (Side::Console, 2)] {
            bind(&mut table, &mint.issue(7, side, 2_000), addr(port));
        }
        let t = now();
        let mut big = wire::data_header(7, Side::Agent).to_vec();
        big.extend_from_slice(&[0x40; 60]);
        assert!(matches!(
            table.handle(addr(1), None, &big, t),
            Verdict::Forward { .. }
        ));
        assert!(matches!(
            table.handle(addr(1), None, &big, t),
            Verdict::Drop {
                why: Dropped::OverRate,
                ..
            }
        ));
    }
}
