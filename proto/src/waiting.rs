//! The waiting ticket: what lets an agent keep its code when its connection
//! to the relay is lost while it waits, even across a relay restart.
//!
//! With `Opened` the relay gives the agent a [`WaitingTicket`]: the
//! nameplate, when it expires, and a MAC under a key only the relay holds
//! (kept in its data dir, so it survives a restart). An agent that lost its
//! connection presents the ticket again (`ClientMsg::Reopen`); the relay
//! checks the MAC and the expiry without having remembered anything, and
//! makes the nameplate wait again. The ticket is opaque to the agent.
//!
//! An agent does not keep its connection while it waits: once it has its
//! code it closes the connection (with [`close_code::PARKED`]) and keeps
//! the code with small datagrams instead, which the relay's forwarder
//! answers without any QUIC state. Their MACs are keyed with the ticket's
//! own MAC, which only the agent (told it inside TLS) and the relay (which
//! recomputes it) know; the ticket itself never crosses the network in the
//! clear.
//!
//! - wait, agent to relay: `0x04 | nameplate (4) | expires_at (8) |
//!   counter (8) | leaving (1) | zeros up to 240 bytes | MAC (16)`. The
//!   counter is the agent's clock in microseconds, larger at every send,
//!   so a replayed wait moves nothing; `leaving` 1 says the person stopped
//!   sharing. The zeros make a wait longer than any answer.
//! - answer, relay to agent: `0x0C | nameplate (4) | counter (8) | state
//!   (1) | MAC (16)`: the wait's counter, and whether the code still
//!   waits, is not held here (the relay restarted, or the code is gone:
//!   reconnect to take it back or to hear why not), or the relay is
//!   shutting down (reconnect, once it is back).
//! - paired answer, relay to agent, once a console claimed the code:
//!   `0x0E | nameplate (4) | counter (8) | nonce (12) | sealed pairing |
//!   tag (16)`. The pairing (the agent's forwarding ticket and who
//!   claimed) is sealed with ChaCha20-Poly1305 under a key derived from
//!   the ticket's MAC, the first 13 bytes as associated data, so only the
//!   agent reads it and it opens its side of the session at once, with no
//!   new connection to the relay.
//!
//! Every answer is shorter than the wait it answers. The relay also sends
//! an answer unasked: the paired one when a console claims the code,
//! `closing` to every agent it has heard from when it shuts down.
//!
//! Pure functions: no I/O here.
//!
//! [`close_code::PARKED`]: crate::message::control::close_code::PARKED

use hmac::{Hmac, Mac};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::code::Nameplate;
use crate::message::control::Technician;
use crate::path::Ticket;
use crate::path::wire::{TOKEN_LEN, hmac, same};

type HmacSha256 = Hmac<Sha256>;

/// Binds the MAC to its purpose, so no other MAC under the key can pass
/// for a waiting ticket.
const LABEL: &[u8] = b"sprijin waiting ticket v1";

/// A waiting agent's proof that the relay gave it this nameplate.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WaitingTicket {
    pub nameplate: Nameplate,
    /// Seconds since the Unix epoch after which the code no longer works.
    pub expires_at: u64,
    pub mac: [u8; 32],
}

/// The relay's secret for waiting tickets.
#[derive(Clone)]
pub struct WaitingKey([u8; 32]);

impl std::fmt::Debug for WaitingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitingKey(..)")
    }
}

impl WaitingKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        WaitingKey(bytes)
    }

    fn mac(&self, nameplate: Nameplate, expires_at: u64) -> HmacSha256 {
        // HMAC pads a short key with zeros to its block, so this is the
        // HMAC of the 32-byte key itself.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let mut mac = HmacSha256::new(&block.into());
        mac.update(LABEL);
        mac.update(&nameplate.get().to_be_bytes());
        mac.update(&expires_at.to_be_bytes());
        mac
    }

    /// A ticket for `nameplate`, good until `expires_at` (Unix seconds).
    pub fn issue(&self, nameplate: Nameplate, expires_at: u64) -> WaitingTicket {
        WaitingTicket {
            nameplate,
            expires_at,
            mac: self
                .mac(nameplate, expires_at)
                .finalize()
                .into_bytes()
                .into(),
        }
    }

    /// Checks that this key made `ticket` and that it has not expired at
    /// `now` (Unix seconds); on success, the seconds it has left.
    pub fn check(&self, ticket: &WaitingTicket, now: u64) -> Result<u64, TicketError> {
        self.mac(ticket.nameplate, ticket.expires_at)
            .verify_slice(&ticket.mac)
            .map_err(|_| TicketError::Forged)?;
        match ticket.expires_at.checked_sub(now) {
            Some(left) if left > 0 => Ok(left),
            _ => Err(TicketError::Expired),
        }
    }
}

/// The kind byte of a wait (QUIC's fixed bit clear, like every datagram
/// the relay's forwarder reads; see [`crate::path::wire`]).
pub const KIND_WAIT: u8 = 0x04;
/// The kind byte of the relay's answer to a wait.
pub const KIND_ANSWER: u8 = 0x0C;
/// The kind byte of the answer that carries a claim's pairing.
pub const KIND_PAIRED: u8 = 0x0E;
/// A truncated datagram MAC's length.
const DATAGRAM_MAC_LEN: usize = 16;
/// The most bytes of the technician's name a pairing carries; a longer
/// name is cut at a character boundary.
pub const NAME_MAX: usize = 128;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// A pairing as sealed: token, side key, expiry, vouched, the name's
/// length, the name padded to [`NAME_MAX`].
const PAIRING_LEN: usize = TOKEN_LEN + 32 + 8 + 1 + 1 + NAME_MAX;
/// Kind, nameplate and counter: what every answer starts with.
const ANSWER_HEAD: usize = 1 + 4 + 8;
/// An answer's length.
pub const ANSWER_LEN: usize = ANSWER_HEAD + 1 + DATAGRAM_MAC_LEN;
/// A paired answer's length.
pub const PAIRED_LEN: usize = ANSWER_HEAD + NONCE_LEN + PAIRING_LEN + TAG_LEN;
/// A wait's fields, before its padding.
const WAIT_FIELDS: usize = 1 + 4 + 8 + 8 + 1;
/// A wait's length: padded so that every answer, a paired one too, is
/// shorter than the wait it answers.
pub const WAIT_LEN: usize = 256;
const _: () = assert!(ANSWER_LEN < WAIT_LEN && PAIRED_LEN < WAIT_LEN);

const WAIT_LABEL: &[u8] = b"sprijin wait v1";
const ANSWER_LABEL: &[u8] = b"sprijin wait answer v1";
const PAIRING_LABEL: &[u8] = b"sprijin pairing v1";

/// A wait as read, its MAC not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub nameplate: Nameplate,
    pub expires_at: u64,
    pub counter: u64,
    /// The person stopped sharing.
    pub leaving: bool,
    mac: [u8; DATAGRAM_MAC_LEN],
}

/// The agent's side of a claimed session: what it needs to open the
/// session at once, without coming back to the relay's control endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// The agent's forwarding ticket.
    pub ticket: Ticket,
    /// Who claimed, as far as the relay can tell.
    pub technician: Technician,
}

/// What the relay says of a waiting code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// It waits; nothing to do.
    Waiting,
    /// A console claimed it: open the session with this pairing.
    Claimed(Pairing),
    /// Not held here: reconnect and present the ticket, to take it back
    /// or to hear why not.
    NotHere,
    /// The relay is shutting down: reconnect and present the ticket once
    /// it is back.
    Closing,
}

impl Held {
    /// The state byte of an answer that carries no pairing.
    fn byte(&self) -> Option<u8> {
        match self {
            Held::Waiting => Some(0),
            Held::Claimed(_) => None,
            Held::NotHere => Some(2),
            Held::Closing => Some(3),
        }
    }

    fn from_byte(b: u8) -> Option<Held> {
        match b {
            0 => Some(Held::Waiting),
            2 => Some(Held::NotHere),
            3 => Some(Held::Closing),
            _ => None,
        }
    }
}

/// A relay's answer as the agent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The counter of the wait it answers (the latest one, when unasked).
    pub counter: u64,
    pub held: Held,
}

fn datagram_mac(key: &[u8; 32], label: &[u8], body: &[u8]) -> [u8; DATAGRAM_MAC_LEN] {
    let full = hmac(key, &[label, body]);
    let mut out = [0u8; DATAGRAM_MAC_LEN];
    out.copy_from_slice(&full[..DATAGRAM_MAC_LEN]);
    out
}

/// The AEAD key that seals pairings under a ticket's MAC.
fn pairing_key(mac: &[u8; 32]) -> Option<LessSafeKey> {
    let key = hmac(mac, &[PAIRING_LABEL]);
    UnboundKey::new(&CHACHA20_POLY1305, &key)
        .ok()
        .map(LessSafeKey::new)
}

/// The start every answer has: kind, nameplate, counter.
fn answer_head(kind: u8, nameplate: Nameplate, counter: u64) -> [u8; ANSWER_HEAD] {
    let mut head = [0u8; ANSWER_HEAD];
    head[0] = kind;
    head[1..5].copy_from_slice(&nameplate.get().to_be_bytes());
    head[5..13].copy_from_slice(&counter.to_be_bytes());
    head
}

/// `name` cut to at most [`NAME_MAX`] bytes at a character boundary.
fn clip(name: &str) -> &str {
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A pairing as sealed; `None` for a token not of this version's length.
fn pairing_bytes(p: &Pairing) -> Option<Vec<u8>> {
    if p.ticket.token.len() != TOKEN_LEN {
        return None;
    }
    let name = clip(&p.technician.name);
    let mut out = Vec::with_capacity(PAIRING_LEN + TAG_LEN);
    out.extend_from_slice(&p.ticket.token);
    out.extend_from_slice(&p.ticket.key);
    out.extend_from_slice(&p.ticket.expires_at.to_be_bytes());
    out.push(u8::from(p.technician.vouched));
    // At most NAME_MAX, which fits a byte.
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.resize(PAIRING_LEN, 0);
    Some(out)
}

fn read_pairing(b: &[u8]) -> Option<Pairing> {
    if b.len() != PAIRING_LEN {
        return None;
    }
    let (token, rest) = b.split_at(TOKEN_LEN);
    let (key, rest) = rest.split_at(32);
    let (expires_at, rest) = rest.split_at(8);
    let vouched = match rest[0] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let len = usize::from(rest[1]);
    let name = std::str::from_utf8(rest[2..].get(..len)?).ok()?;
    Some(Pairing {
        ticket: Ticket {
            token: token.to_vec(),
            key: key.try_into().ok()?,
            expires_at: u64::from_be_bytes(expires_at.try_into().ok()?),
        },
        technician: Technician {
            name: name.to_string(),
            vouched,
        },
    })
}

impl WaitingTicket {
    /// The wait to send with `counter`; `leaving` when the person stopped.
    pub fn wait(&self, counter: u64, leaving: bool) -> [u8; WAIT_LEN] {
        let mut d = [0u8; WAIT_LEN];
        d[0] = KIND_WAIT;
        d[1..5].copy_from_slice(&self.nameplate.get().to_be_bytes());
        d[5..13].copy_from_slice(&self.expires_at.to_be_bytes());
        d[13..21].copy_from_slice(&counter.to_be_bytes());
        d[21] = u8::from(leaving);
        // The rest up to the MAC is zeros, covered by the MAC.
        let body = WAIT_LEN - DATAGRAM_MAC_LEN;
        let mac = datagram_mac(&self.mac, WAIT_LABEL, &d[..body]);
        d[body..].copy_from_slice(&mac);
        d
    }

    /// Reads an answer to this ticket's waits; `None` for anything else,
    /// or one that does not check under the ticket.
    pub fn read_answer(&self, d: &[u8]) -> Option<Answer> {
        let head = d.get(..ANSWER_HEAD)?;
        let nameplate = u32::from_be_bytes(head[1..5].try_into().ok()?);
        if nameplate != self.nameplate.get() {
            return None;
        }
        let counter = u64::from_be_bytes(head[5..13].try_into().ok()?);
        let held = match (head[0], d.len()) {
            (KIND_ANSWER, ANSWER_LEN) => {
                let body = ANSWER_LEN - DATAGRAM_MAC_LEN;
                let mac = datagram_mac(&self.mac, ANSWER_LABEL, &d[..body]);
                if !same(&mac, &d[body..]) {
                    return None;
                }
                Held::from_byte(d[ANSWER_HEAD])?
            }
            (KIND_PAIRED, PAIRED_LEN) => {
                let nonce: [u8; NONCE_LEN] =
                    d[ANSWER_HEAD..ANSWER_HEAD + NONCE_LEN].try_into().ok()?;
                let mut sealed = d[ANSWER_HEAD + NONCE_LEN..].to_vec();
                let open = pairing_key(&self.mac)?
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(head),
                        &mut sealed,
                    )
                    .ok()?;
                Held::Claimed(read_pairing(open)?)
            }
            _ => return None,
        };
        Some(Answer { counter, held })
    }
}

/// Reads a wait; `None` when `d` is not one. The MAC is the relay's to
/// check ([`WaitingKey::check_wait`]).
pub fn read_wait(d: &[u8]) -> Option<Wait> {
    if d.len() != WAIT_LEN || d[0] != KIND_WAIT {
        return None;
    }
    // The MAC is over zeros here: anything else is not a wait.
    if d[WAIT_FIELDS..WAIT_LEN - DATAGRAM_MAC_LEN]
        .iter()
        .any(|&b| b != 0)
    {
        return None;
    }
    let leaving = match d[WAIT_FIELDS - 1] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let mut mac = [0u8; DATAGRAM_MAC_LEN];
    mac.copy_from_slice(&d[WAIT_LEN - DATAGRAM_MAC_LEN..]);
    Some(Wait {
        nameplate: Nameplate::new(u32::from_be_bytes(d[1..5].try_into().ok()?))?,
        expires_at: u64::from_be_bytes(d[5..13].try_into().ok()?),
        counter: u64::from_be_bytes(d[13..21].try_into().ok()?),
        leaving,
        mac,
    })
}

/// The key of a ticket's datagrams, as the relay holds it.
#[derive(Clone)]
pub struct DatagramKey([u8; 32]);

impl DatagramKey {
    /// The answer to a wait with `counter`; a claim's pairing is sealed
    /// into it, for the agent's eyes only. `None` only for a pairing whose
    /// ticket this version cannot carry.
    pub fn answer(&self, nameplate: Nameplate, counter: u64, held: &Held) -> Option<Vec<u8>> {
        let Held::Claimed(pairing) = held else {
            let mut d = answer_head(KIND_ANSWER, nameplate, counter).to_vec();
            d.push(held.byte()?);
            let mac = datagram_mac(&self.0, ANSWER_LABEL, &d);
            d.extend_from_slice(&mac);
            return Some(d);
        };
        let head = answer_head(KIND_PAIRED, nameplate, counter);
        // A fresh random nonce each time: the same pairing may be sealed
        // many times, and counters are the agent's to choose.
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = pairing_bytes(pairing)?;
        pairing_key(&self.0)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(head),
                &mut sealed,
            )
            .ok()?;
        let mut d = Vec::with_capacity(PAIRED_LEN);
        d.extend_from_slice(&head);
        d.extend_from_slice(&nonce);
        d.extend_from_slice(&sealed);
        Some(d)
    }
}

impl WaitingKey {
    /// Checks that the wait comes from the holder of a ticket this key
    /// made; its datagram key if so. Expiry is the caller's to judge.
    pub fn check_wait(&self, wait: &Wait) -> Option<DatagramKey> {
        let ticket = self.issue(wait.nameplate, wait.expires_at);
        let mut d = ticket.wait(wait.counter, wait.leaving);
        let body = WAIT_LEN - DATAGRAM_MAC_LEN;
        same(&d[body..], &wait.mac).then(|| {
            d.fill(0);
            DatagramKey(ticket.mac)
        })
    }
}

/// Why a waiting ticket is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    #[error(
        "this relay did not issue the waiting ticket (it was altered, or the relay's key changed): start sharing again for a new code"
    )]
    Forged,
    #[error(
        "the code expired while the agent was reconnecting: start sharing again for a new code"
    )]
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_passes_until_it_expires_and_not_when_altered() {
        let key = WaitingKey::from_bytes([7; 32]);
        let n = Nameplate::new(42).unwrap();
        let ticket = key.issue(n, 1_000);
        assert_eq!(key.check(&ticket, 400), Ok(600));
        assert_eq!(key.check(&ticket, 1_000), Err(TicketError::Expired));
        let mut later = ticket.clone();
        later.expires_at += 3600;
        assert_eq!(key.check(&later, 400), Err(TicketError::Forged));
        let mut other = ticket.clone();
        other.nameplate = Nameplate::new(43).unwrap();
        assert_eq!(key.check(&other, 400), Err(TicketError::Forged));
        let stranger = WaitingKey::from_bytes([8; 32]);
        assert_eq!(stranger.check(&ticket, 400), Err(TicketError::Forged));
    }

    /// A pairing as the relay makes one, for Ana.
    fn pairing(name: &str) -> Pairing {
        let mint = crate::path::wire::TicketMint::new([3; 32]);
        Pairing {
            ticket: mint.issue(9, crate::path::wire::Side::Agent, 2_000),
            technician: Technician {
                name: name.to_string(),
                vouched: true,
            },
        }
    }

    #[test]
    fn a_wait_checks_under_the_relays_key_and_its_answer_under_the_tickets() {
        let key = WaitingKey::from_bytes([7; 32]);
        let n = Nameplate::new(42).unwrap();
        let ticket = key.issue(n, 1_000);
        let d = ticket.wait(77, false);
        let wait = read_wait(&d).unwrap();
        assert_eq!((wait.nameplate, wait.expires_at), (n, 1_000));
        assert_eq!((wait.counter, wait.leaving), (77, false));
        let datagrams = key.check_wait(&wait).unwrap();
        assert!(read_wait(&ticket.wait(78, true)).unwrap().leaving);

        let claimed = Held::Claimed(pairing("Ana"));
        for held in [Held::Waiting, claimed.clone(), Held::NotHere, Held::Closing] {
            let answer = datagrams.answer(n, 77, &held).unwrap();
            assert!(answer.len() < d.len(), "an answer is shorter than its wait");
            assert_eq!(
                ticket.read_answer(&answer),
                Some(Answer { counter: 77, held })
            );
        }
        let answer = datagrams.answer(n, 77, &claimed).unwrap();
        assert!(
            !answer.windows(3).any(|w| w == b"Ana"),
            "the pairing is sealed"
        );
        // Another relay's key, or another ticket, reads nothing.
        let stranger = WaitingKey::from_bytes([8; 32]);
        assert!(stranger.check_wait(&wait).is_none());
        let other = key.issue(n, 1_001);
        assert_eq!(other.read_answer(&answer), None);
    }

    #[test]
    fn a_long_name_is_cut_at_a_character_boundary() {
        let key = WaitingKey::from_bytes([7; 32]);
        let n = Nameplate::new(42).unwrap();
        let ticket = key.issue(n, 1_000);
        let datagrams = key
            .check_wait(&read_wait(&ticket.wait(1, false)).unwrap())
            .unwrap();
        // Three bytes a character: 128 is not a boundary.
        let long = "ă€".repeat(40);
        let answer = datagrams
            .answer(n, 1, &Held::Claimed(pairing(&long)))
            .unwrap();
        let Some(Answer {
            held: Held::Claimed(p),
            ..
        }) = ticket.read_answer(&answer)
        else {
            panic!("no pairing read");
        };
        assert!(p.technician.name.len() <= NAME_MAX);
        assert!(long.starts_with(&p.technician.name));
        assert!(p.technician.name.len() > NAME_MAX - 3);
    }

    #[test]
    fn every_altered_byte_of_a_wait_or_an_answer_is_refused() {
        let key = WaitingKey::from_bytes([7; 32]);
        let n = Nameplate::new(42).unwrap();
        let ticket = key.issue(n, 1_000);
        let d = ticket.wait(77, false);
        for i in 0..d.len() {
            let mut bad = d;
            bad[i] ^= 0x01;
            let refused = read_wait(&bad).is_none_or(|w| key.check_wait(&w).is_none());
            assert!(refused, "byte {i} of a wait altered passed");
        }
        let datagrams = key.check_wait(&read_wait(&d).unwrap()).unwrap();
        for held in [Held::Waiting, Held::Claimed(pairing("Ana"))] {
            let answer = datagrams.answer(n, 77, &held).unwrap();
            for i in 0..answer.len() {
                let mut bad = answer.clone();
                bad[i] ^= 0x01;
                assert_eq!(ticket.read_answer(&bad), None, "byte {i} of an answer");
            }
            assert_eq!(ticket.read_answer(&answer[..answer.len() - 1]), None);
        }
        assert!(read_wait(&d[..WAIT_LEN - 1]).is_none());
    }
}
