//! The forwarding ticket and the datagrams between a client and the relay's
//! forwarder, as pure functions over bytes.
//!
//! A token is `version (1) | session id (8) | side (1) | expires_at (8, big
//! endian) | MAC (16)`, the MAC a truncated HMAC-SHA256 under the relay's
//! secret, so the relay checks a ticket without remembering it. The side's
//! key is HMAC(secret, "key" || token): the relay recomputes it from the
//! token, and the client received it over the control connection.
//!
//! Datagrams the relay's forwarder reads start with a kind byte whose QUIC
//! fixed bit (0x40) is clear, so they never look like QUIC (every endpoint
//! on this path and the relay's control endpoint turn off greasing that
//! bit):
//!
//! - data, client to relay: `0x10|side | session id (8) | QUIC payload`;
//!   9 bytes of header.
//! - presentation, client to relay: `0x20|side | token | counter (8) |
//!   MAC (16)`, the MAC under the side's key over the token and counter
//!   (the client's clock in microseconds, so two never look alike). From
//!   the address the relay has for that side it is a keep-alive; from any
//!   other the relay answers with a challenge.
//! - ask, relay to client: `0x30 | session id (8) | side (1)`, "present
//!   your ticket", sent when the relay does not know this address for the
//!   session (after a restart, a network change, or to a third party).
//! - challenge, relay to client: `0x80 | session id (8) | side (1) |
//!   nonce (16)`, the relay's answer to a valid presentation from an
//!   address it has not seen that side at. The nonce is the relay's MAC
//!   over the session, side, address and a time step, so the relay keeps
//!   nothing per challenge. It is shorter than the presentation, so a
//!   forged source gets no more bytes than were sent in its name.
//! - seen, relay to client, right after a challenge: `0x88 | session id
//!   (8) | side (1) | address (19)`, the address the relay sees the
//!   presentation come from (the side's reflexive address, a candidate for
//!   a direct path). With the challenge it is still shorter than the
//!   presentation.
//! - echo, client to relay: `0x90|side | token | nonce (16) | MAC (16)`,
//!   the MAC under the side's key over the token and the nonce. Only an
//!   echo binds or moves a side's address: it proves the address receives
//!   there, and, the nonce being fresh and the key the side's, that the
//!   side sent it now, so a presentation replayed from elsewhere (before
//!   or after a relay restart) moves nothing.
//!
//! - wait and its answer, between a waiting agent and the relay (kinds
//!   `0x04` and `0x0C`): see [`crate::waiting`].
//!
//! The relay sends data to clients without a header: a client tells the
//! relay's asks from QUIC by the fixed bit.

use std::net::{IpAddr, SocketAddr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The ticket format's version, first byte of every token.
pub const TOKEN_VERSION: u8 = 1;
/// A token's length.
pub const TOKEN_LEN: usize = 1 + 8 + 1 + 8 + MAC_LEN;
/// The length of a truncated MAC.
pub const MAC_LEN: usize = 16;
/// The header the client puts in front of each QUIC datagram.
pub const DATA_HEADER_LEN: usize = 1 + 8;
/// A presentation's length.
pub const PRESENTATION_LEN: usize = 1 + TOKEN_LEN + 8 + MAC_LEN;
/// An ask's length.
pub const ASK_LEN: usize = 1 + 8 + 1;
/// A challenge nonce's length.
pub const NONCE_LEN: usize = 16;
/// A challenge's length: shorter than the presentation it answers.
pub const CHALLENGE_LEN: usize = 1 + 8 + 1 + NONCE_LEN;
/// A socket address as written in datagrams: family (4 or 6), 16 bytes of
/// address (an IPv4 one in the first four), port (big endian).
pub const ADDR_LEN: usize = 1 + 16 + 2;
/// A seen datagram's length.
pub const SEEN_LEN: usize = 1 + 8 + 1 + ADDR_LEN;
/// An echo's length.
pub const ECHO_LEN: usize = 1 + TOKEN_LEN + NONCE_LEN + MAC_LEN;

/// The largest UDP payload on the relayed path, either way: QUIC's
/// datagrams with the header, and the QUIC the relay's own endpoint takes.
pub const PATH_DATAGRAM_MAX: usize = 1452;

/// The largest UDP payload a QUIC endpoint on this path may send, so that
/// it and the header fit the common 1500-byte MTU over IPv6 (1452 bytes of
/// UDP payload).
pub const QUIC_PAYLOAD_LIMIT: u16 = 1452 - DATA_HEADER_LEN as u16;

const KIND_DATA: u8 = 0x10;
const KIND_PRESENT: u8 = 0x20;
const KIND_ASK: u8 = 0x30;
const KIND_CHALLENGE: u8 = 0x80;
const KIND_ECHO: u8 = 0x90;
const KIND_SEEN: u8 = 0x88;
/// QUIC's fixed bit: set on every QUIC packet when greasing is off.
const QUIC_FIXED_BIT: u8 = 0x40;

const TOKEN_LABEL: &[u8] = b"sprijin forwarding ticket v1";
const KEY_LABEL: &[u8] = b"key";
const PRESENT_LABEL: &[u8] = b"sprijin presentation v1";
const ECHO_LABEL: &[u8] = b"sprijin echo v1";
const NONCE_LABEL: &[u8] = b"sprijin challenge v1";

/// Which end of a session a ticket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Agent,
    Console,
}

impl Side {
    fn bit(self) -> u8 {
        match self {
            Side::Agent => 0,
            Side::Console => 1,
        }
    }

    fn from_bit(bit: u8) -> Option<Side> {
        match bit {
            0 => Some(Side::Agent),
            1 => Some(Side::Console),
            _ => None,
        }
    }

    /// 0 for the agent, 1 for the console, for tables indexed by side.
    pub fn index(self) -> usize {
        usize::from(self.bit())
    }

    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::Agent => Side::Console,
            Side::Console => Side::Agent,
        }
    }
}

/// What a token says, once read (checked or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFields {
    pub session: u64,
    pub side: Side,
    pub expires_at: u64,
}

/// Reads a token's fields without checking its MAC (clients do this to
/// build their header); `None` when it is not a token of this format.
pub fn read_token(token: &[u8]) -> Option<TokenFields> {
    if token.len() != TOKEN_LEN || token[0] != TOKEN_VERSION {
        return None;
    }
    let session = u64::from_be_bytes(token[1..9].try_into().ok()?);
    let side = Side::from_bit(token[9])?;
    let expires_at = u64::from_be_bytes(token[10..18].try_into().ok()?);
    Some(TokenFields {
        session,
        side,
        expires_at,
    })
}

/// Why the relay refuses a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    #[error("the forwarding ticket is not one this relay made")]
    Forged,
    #[error("the forwarding ticket has expired: pair again for a new one")]
    Expired,
}

/// Makes and checks tickets under the relay's secret.
#[derive(Clone)]
pub struct TicketMint {
    secret: [u8; 32],
}

impl std::fmt::Debug for TicketMint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketMint")
    }
}

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts any key length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares in time independent of where the first difference is.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TicketMint {
    pub fn new(secret: [u8; 32]) -> TicketMint {
        TicketMint { secret }
    }

    /// The ticket for one side of session `session`.
    pub fn issue(&self, session: u64, side: Side, expires_at: u64) -> super::Ticket {
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&session.to_be_bytes());
        token.push(side.bit());
        token.extend_from_slice(&expires_at.to_be_bytes());
        let mac = hmac(&self.secret, &[TOKEN_LABEL, &token]);
        token.extend_from_slice(&mac[..MAC_LEN]);
        let key = self.key_for(&token);
        super::Ticket {
            token,
            key,
            expires_at,
        }
    }

    /// The nonce of a challenge to `peer` (the address's bytes, as the
    /// relay writes them) for `session`'s `side` in time step `step`.
    pub fn nonce(&self, session: u64, side: Side, peer: &[u8], step: u64) -> [u8; NONCE_LEN] {
        let mac = hmac(
            &self.secret,
            &[
                NONCE_LABEL,
                &session.to_be_bytes(),
                &[side.bit()],
                &step.to_be_bytes(),
                peer,
            ],
        );
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&mac[..NONCE_LEN]);
        nonce
    }

    /// The side's key for a token.
    pub fn key_for(&self, token: &[u8]) -> [u8; 32] {
        hmac(&self.secret, &[KEY_LABEL, token])
    }

    /// Checks that this relay made `token` and that it has not expired at
    /// `now` (seconds since the Unix epoch).
    pub fn check(&self, token: &[u8], now: u64) -> Result<TokenFields, TicketError> {
        let fields = read_token(token).ok_or(TicketError::Forged)?;
        let (body, mac) = token.split_at(TOKEN_LEN - MAC_LEN);
        let expected = hmac(&self.secret, &[TOKEN_LABEL, body]);
        if !same(&expected[..MAC_LEN], mac) {
            return Err(TicketError::Forged);
        }
        if fields.expires_at < now {
            return Err(TicketError::Expired);
        }
        Ok(fields)
    }
}

/// The header a client puts in front of each QUIC datagram.
pub fn data_header(session: u64, side: Side) -> [u8; DATA_HEADER_LEN] {
    let mut h = [0u8; DATA_HEADER_LEN];
    h[0] = KIND_DATA | side.bit();
    h[1..].copy_from_slice(&session.to_be_bytes());
    h
}

/// A presentation of `token` with `counter`, MACed under the side's `key`.
/// `None` when the token is not of this format.
pub fn presentation(token: &[u8], key: &[u8; 32], counter: u64) -> Option<Vec<u8>> {
    let fields = read_token(token)?;
    let mut out = Vec::with_capacity(PRESENTATION_LEN);
    out.push(KIND_PRESENT | fields.side.bit());
    out.extend_from_slice(token);
    out.extend_from_slice(&counter.to_be_bytes());
    let mac = hmac(key, &[PRESENT_LABEL, token, &counter.to_be_bytes()]);
    out.extend_from_slice(&mac[..MAC_LEN]);
    Some(out)
}

/// Whether a presentation's MAC is right under `key`.
pub fn presentation_valid(p: &Presentation<'_>, key: &[u8; 32]) -> bool {
    let mac = hmac(key, &[PRESENT_LABEL, p.token, &p.counter.to_be_bytes()]);
    same(&mac[..MAC_LEN], p.mac)
}

/// The relay's request that a client present its ticket.
pub fn ask(session: u64, side: Side) -> [u8; ASK_LEN] {
    let mut a = [0u8; ASK_LEN];
    a[0] = KIND_ASK;
    a[1..9].copy_from_slice(&session.to_be_bytes());
    a[9] = side.bit();
    a
}

/// The relay's challenge to an address that presented `session`'s `side`.
pub fn challenge(session: u64, side: Side, nonce: &[u8; NONCE_LEN]) -> [u8; CHALLENGE_LEN] {
    let mut c = [0u8; CHALLENGE_LEN];
    c[0] = KIND_CHALLENGE;
    c[1..9].copy_from_slice(&session.to_be_bytes());
    c[9] = side.bit();
    c[10..].copy_from_slice(nonce);
    c
}

/// The address the relay sees `session`'s `side` at, sent with a
/// challenge.
pub fn seen(session: u64, side: Side, addr: SocketAddr) -> [u8; SEEN_LEN] {
    let mut d = [0u8; SEEN_LEN];
    d[0] = KIND_SEEN;
    d[1..9].copy_from_slice(&session.to_be_bytes());
    d[9] = side.bit();
    d[10..].copy_from_slice(&write_addr(addr));
    d
}

/// `addr` in [`ADDR_LEN`] bytes.
pub fn write_addr(addr: SocketAddr) -> [u8; ADDR_LEN] {
    let mut out = [0u8; ADDR_LEN];
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&ip.octets());
        }
    }
    out[17..].copy_from_slice(&addr.port().to_be_bytes());
    out
}

/// Reads what [`write_addr`] wrote; `None` for anything else.
pub fn read_addr(b: &[u8]) -> Option<SocketAddr> {
    if b.len() != ADDR_LEN {
        return None;
    }
    let port = u16::from_be_bytes([b[17], b[18]]);
    let ip = match b[0] {
        4 => IpAddr::from(<[u8; 4]>::try_from(&b[1..5]).ok()?),
        6 => IpAddr::from(<[u8; 16]>::try_from(&b[1..17]).ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The answer to a challenge: `token` and the relay's `nonce`, MACed under
/// the side's `key`. `None` when the token is not of this format.
pub fn echo(token: &[u8], key: &[u8; 32], nonce: &[u8]) -> Option<Vec<u8>> {
    let fields = read_token(token)?;
    if nonce.len() != NONCE_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(ECHO_LEN);
    out.push(KIND_ECHO | fields.side.bit());
    out.extend_from_slice(token);
    out.extend_from_slice(nonce);
    let mac = hmac(key, &[ECHO_LABEL, token, nonce]);
    out.extend_from_slice(&mac[..MAC_LEN]);
    Some(out)
}

/// Whether an echo's MAC is right under `key`.
pub fn echo_valid(e: &Echo<'_>, key: &[u8; 32]) -> bool {
    let mac = hmac(key, &[ECHO_LABEL, e.token, e.nonce]);
    same(&mac[..MAC_LEN], e.mac)
}

/// Whether `nonce` is the one [`TicketMint::nonce`] makes for these
/// inputs, compared in constant time.
pub fn nonce_matches(expected: &[u8; NONCE_LEN], nonce: &[u8]) -> bool {
    same(expected, nonce)
}

/// An echo as read, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo<'a> {
    pub side: Side,
    pub token: &'a [u8],
    pub nonce: &'a [u8],
    pub mac: &'a [u8],
}

/// A presentation as read, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation<'a> {
    pub side: Side,
    pub token: &'a [u8],
    pub counter: u64,
    pub mac: &'a [u8],
}

/// What one datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// QUIC, for the relay's own endpoint.
    Quic,
    /// A client's QUIC datagram for the other side.
    Data {
        session: u64,
        side: Side,
        payload: &'a [u8],
    },
    Present(Presentation<'a>),
    Ask {
        session: u64,
        side: Side,
    },
    Challenge {
        session: u64,
        side: Side,
        nonce: &'a [u8],
    },
    Echo(Echo<'a>),
    /// A waiting agent keeping its code (see [`crate::waiting`]).
    Wait,
    /// The relay's answer to a wait, for the agent.
    WaitAnswer,
    /// Where the relay sees a side.
    Seen {
        session: u64,
        side: Side,
        addr: SocketAddr,
    },
    /// Starts like ours but is not well formed.
    Malformed,
}

/// Classifies a datagram; never fails, whatever the bytes.
pub fn parse(d: &[u8]) -> Datagram<'_> {
    let Some(&first) = d.first() else {
        return Datagram::Malformed;
    };
    if first & QUIC_FIXED_BIT != 0 {
        return Datagram::Quic;
    }
    match (first, d.len()) {
        (crate::waiting::KIND_WAIT, crate::waiting::WAIT_LEN) => return Datagram::Wait,
        (crate::waiting::KIND_ANSWER, crate::waiting::ANSWER_LEN) => return Datagram::WaitAnswer,
        _ => {}
    }
    if first == KIND_SEEN {
        let (Some(side), Some(addr)) = (
            d.get(9).and_then(|&b| Side::from_bit(b)),
            d.get(10..).and_then(read_addr),
        ) else {
            return Datagram::Malformed;
        };
        let session = u64::from_be_bytes(d[1..9].try_into().unwrap_or_default());
        return Datagram::Seen {
            session,
            side,
            addr,
        };
    }
    let side_bit = first & 0x0f;
    match (first & 0xf0, Side::from_bit(side_bit)) {
        (KIND_DATA, Some(side)) if d.len() > DATA_HEADER_LEN => {
            let session = u64::from_be_bytes(d[1..9].try_into().unwrap_or_default());
            Datagram::Data {
                session,
                side,
                payload: &d[DATA_HEADER_LEN..],
            }
        }
        (KIND_PRESENT, Some(side)) if d.len() == PRESENTATION_LEN => {
            let token = &d[1..1 + TOKEN_LEN];
            let counter_at = 1 + TOKEN_LEN;
            let counter =
                u64::from_be_bytes(d[counter_at..counter_at + 8].try_into().unwrap_or_default());
            Datagram::Present(Presentation {
                side,
                token,
                counter,
                mac: &d[counter_at + 8..],
            })
        }
        (KIND_CHALLENGE, Some(Side::Agent)) if d.len() == CHALLENGE_LEN => {
            let session = u64::from_be_bytes(d[1..9].try_into().unwrap_or_default());
            match Side::from_bit(d[9]) {
                Some(side) => Datagram::Challenge {
                    session,
                    side,
                    nonce: &d[10..],
                },
                None => Datagram::Malformed,
            }
        }
        (KIND_ECHO, Some(side)) if d.len() == ECHO_LEN => {
            let nonce_at = 1 + TOKEN_LEN;
            Datagram::Echo(Echo {
                side,
                token: &d[1..nonce_at],
                nonce: &d[nonce_at..nonce_at + NONCE_LEN],
                mac: &d[nonce_at + NONCE_LEN..],
            })
        }
        (KIND_ASK, Some(Side::Agent)) if side_bit == 0 && d.len() == ASK_LEN => {
            let session = u64::from_be_bytes(d[1..9].try_into().unwrap_or_default());
            match Side::from_bit(d[9]) {
                Some(side) => Datagram::Ask { session, side },
                None => Datagram::Malformed,
            }
        }
        _ => Datagram::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mint() -> TicketMint {
        TicketMint::new([9; 32])
    }

    #[test]
    fn a_ticket_checks_and_says_what_it_is_for() {
        let t = mint().issue(42, Side::Console, 1_000);
        assert_eq!(t.token.len(), TOKEN_LEN);
        let fields = mint().check(&t.token, 999).unwrap();
        assert_eq!(
            fields,
            TokenFields {
                session: 42,
                side: Side::Console,
                expires_at: 1_000
            }
        );
        assert_eq!(read_token(&t.token), Some(fields));
        assert_eq!(mint().key_for(&t.token), t.key);
        assert_ne!(mint().issue(42, Side::Agent, 1_000).key, t.key);
    }

    #[test]
    fn forged_and_expired_tickets_are_refused() {
        let t = mint().issue(42, Side::Agent, 1_000);
        assert_eq!(mint().check(&t.token, 1_001), Err(TicketError::Expired));
        let other = TicketMint::new([8; 32]);
        assert_eq!(other.check(&t.token, 0), Err(TicketError::Forged));
        for i in 0..t.token.len() {
            let mut bad = t.token.clone();
            bad[i] ^= 1;
            assert!(mint().check(&bad, 0).is_err(), "byte {i} flipped");
        }
        assert_eq!(mint().check(&[], 0), Err(TicketError::Forged));
        assert_eq!(
            mint().check(&t.token[..TOKEN_LEN - 1], 0),
            Err(TicketError::Forged)
        );
    }

    #[test]
    fn the_data_header_is_short_and_never_looks_like_quic() {
        const { assert!(DATA_HEADER_LEN <= 32) };
        const { assert!(QUIC_PAYLOAD_LIMIT as usize + DATA_HEADER_LEN <= 1452) };
        for side in [Side::Agent, Side::Console] {
            let h = data_header(7, side);
            assert_eq!(h[0] & QUIC_FIXED_BIT, 0);
            let mut d = h.to_vec();
            d.extend_from_slice(b"\xc0quic");
            assert_eq!(
                parse(&d),
                Datagram::Data {
                    session: 7,
                    side,
                    payload: b"\xc0quic"
                }
            );
        }
        assert_eq!(ask(1, Side::Agent)[0] & QUIC_FIXED_BIT, 0);
        assert_eq!(parse(b"\x40short header"), Datagram::Quic);
        assert_eq!(parse(b"\xc0long header"), Datagram::Quic);
    }

    #[test]
    fn a_presentation_round_trips_and_its_mac_binds_token_and_counter() {
        let t = mint().issue(5, Side::Agent, 1_000);
        let p = presentation(&t.token, &t.key, 77).unwrap();
        assert_eq!(p.len(), PRESENTATION_LEN);
        let Datagram::Present(read) = parse(&p) else {
            panic!("not a presentation");
        };
        assert_eq!(read.counter, 77);
        assert_eq!(read.token, &t.token[..]);
        assert!(presentation_valid(&read, &t.key));
        assert!(!presentation_valid(&read, &[0; 32]));
        let mut changed = p.clone();
        changed[1 + TOKEN_LEN] ^= 1;
        let Datagram::Present(read) = parse(&changed) else {
            panic!("not a presentation");
        };
        assert!(!presentation_valid(&read, &t.key));
        assert_eq!(presentation(b"junk", &t.key, 1), None);
    }

    #[test]
    fn seen_says_the_address_either_family_and_nothing_else_reads_as_one() {
        for addr in ["203.0.113.7:4433", "[2001:db8::5]:9"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let d = seen(7, Side::Agent, addr);
            assert_eq!(d[0] & QUIC_FIXED_BIT, 0);
            assert_eq!(
                parse(&d),
                Datagram::Seen {
                    session: 7,
                    side: Side::Agent,
                    addr
                }
            );
            assert_eq!(parse(&d[..SEEN_LEN - 1]), Datagram::Malformed);
        }
        let mut bad = seen(7, Side::Agent, "10.0.0.1:1".parse().unwrap());
        bad[10] = 5;
        assert_eq!(parse(&bad), Datagram::Malformed);
    }

    #[test]
    fn a_challenge_is_answered_by_an_echo_only_the_side_can_make() {
        let t = mint().issue(5, Side::Console, 1_000);
        let nonce = mint().nonce(5, Side::Console, b"127.0.0.2:9", 3);
        assert_ne!(nonce, mint().nonce(5, Side::Console, b"127.0.0.3:9", 3));
        assert_ne!(nonce, mint().nonce(5, Side::Console, b"127.0.0.2:9", 4));
        let c = challenge(5, Side::Console, &nonce);
        assert_eq!(c[0] & QUIC_FIXED_BIT, 0);
        const { assert!(CHALLENGE_LEN + SEEN_LEN < PRESENTATION_LEN) };
        let Datagram::Challenge {
            session,
            side,
            nonce: read,
        } = parse(&c)
        else {
            panic!("not a challenge");
        };
        assert_eq!((session, side, read), (5, Side::Console, &nonce[..]));
        let e = echo(&t.token, &t.key, read).unwrap();
        assert_eq!(e.len(), ECHO_LEN);
        assert_eq!(e[0] & QUIC_FIXED_BIT, 0);
        let Datagram::Echo(read) = parse(&e) else {
            panic!("not an echo");
        };
        assert_eq!(read.token, &t.token[..]);
        assert!(nonce_matches(&nonce, read.nonce));
        assert!(echo_valid(&read, &t.key));
        assert!(!echo_valid(&read, &[0; 32]));
        assert_eq!(echo(&t.token, &t.key, b"short"), None);
    }

    #[test]
    fn asks_round_trip() {
        assert_eq!(
            parse(&ask(9, Side::Console)),
            Datagram::Ask {
                session: 9,
                side: Side::Console
            }
        );
    }

    #[test]
    fn no_input_makes_parse_panic() {
        let mut state = 1u64;
        for len in 0..200 {
            for _ in 0..50 {
                let d: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (state >> 56) as u8
                    })
                    .collect();
                let _ = parse(&d);
                let _ = read_token(&d);
                let _ = mint().check(&d, 0);
            }
        }
        for first in 0..=255u8 {
            for len in 0..80 {
                let mut d = vec![0u8; len];
                if let Some(f) = d.first_mut() {
                    *f = first;
                }
                let _ = parse(&d);
            }
        }
    }
}
