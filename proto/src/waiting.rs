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
//!   counter (8) | leaving (1) | MAC (16)`. The counter is the agent's
//!   clock in microseconds, larger at every send, so a replayed wait moves
//!   nothing; `leaving` 1 says the person stopped sharing.
//! - answer, relay to agent: `0x0C | nameplate (4) | counter (8) | state
//!   (1) | MAC (16)`, shorter than the wait: the wait's counter, and
//!   whether the code still waits, was claimed (reconnect now and present
//!   the ticket), is not held here (the relay restarted, or the code is
//!   gone: reconnect to take it back or to hear why not), or the relay is
//!   shutting down (reconnect, once it is back). The relay also sends an
//!   answer unasked: `claimed` when a console claims the code, `closing`
//!   to every agent it has heard from when it shuts down.
//!
//! Pure functions: no I/O here.
//!
//! [`close_code::PARKED`]: crate::message::control::close_code::PARKED

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::code::Nameplate;
use crate::path::wire::{hmac, same};

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
/// A truncated datagram MAC's length.
const DATAGRAM_MAC_LEN: usize = 16;
/// A wait's length.
pub const WAIT_LEN: usize = 1 + 4 + 8 + 8 + 1 + DATAGRAM_MAC_LEN;
/// An answer's length: shorter than the wait it answers.
pub const ANSWER_LEN: usize = 1 + 4 + 8 + 1 + DATAGRAM_MAC_LEN;

const WAIT_LABEL: &[u8] = b"sprijin wait v1";
const ANSWER_LABEL: &[u8] = b"sprijin wait answer v1";

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

/// What the relay says of a waiting code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// It waits; nothing to do.
    Waiting,
    /// A console claimed it: reconnect and present the ticket.
    Claimed,
    /// Not held here: reconnect and present the ticket, to take it back
    /// or to hear why not.
    NotHere,
    /// The relay is shutting down: reconnect and present the ticket once
    /// it is back.
    Closing,
}

impl Held {
    fn byte(self) -> u8 {
        match self {
            Held::Waiting => 0,
            Held::Claimed => 1,
            Held::NotHere => 2,
            Held::Closing => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Held> {
        match b {
            0 => Some(Held::Waiting),
            1 => Some(Held::Claimed),
            2 => Some(Held::NotHere),
            3 => Some(Held::Closing),
            _ => None,
        }
    }
}

/// A relay's answer as the agent reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl WaitingTicket {
    /// The wait to send with `counter`; `leaving` when the person stopped.
    pub fn wait(&self, counter: u64, leaving: bool) -> [u8; WAIT_LEN] {
        let mut d = [0u8; WAIT_LEN];
        d[0] = KIND_WAIT;
        d[1..5].copy_from_slice(&self.nameplate.get().to_be_bytes());
        d[5..13].copy_from_slice(&self.expires_at.to_be_bytes());
        d[13..21].copy_from_slice(&counter.to_be_bytes());
        d[21] = u8::from(leaving);
        let body = WAIT_LEN - DATAGRAM_MAC_LEN;
        let mac = datagram_mac(&self.mac, WAIT_LABEL, &d[..body]);
        d[body..].copy_from_slice(&mac);
        d
    }

    /// Reads an answer to this ticket's waits; `None` for anything else,
    /// or a MAC that is not right.
    pub fn read_answer(&self, d: &[u8]) -> Option<Answer> {
        if d.len() != ANSWER_LEN || d[0] != KIND_ANSWER {
            return None;
        }
        let body = ANSWER_LEN - DATAGRAM_MAC_LEN;
        let mac = datagram_mac(&self.mac, ANSWER_LABEL, &d[..body]);
        if !same(&mac, &d[body..]) {
            return None;
        }
        let nameplate = u32::from_be_bytes(d[1..5].try_into().ok()?);
        if nameplate != self.nameplate.get() {
            return None;
        }
        Some(Answer {
            counter: u64::from_be_bytes(d[5..13].try_into().ok()?),
            held: Held::from_byte(d[13])?,
        })
    }
}

/// Reads a wait; `None` when `d` is not one. The MAC is the relay's to
/// check ([`WaitingKey::check_wait`]).
pub fn read_wait(d: &[u8]) -> Option<Wait> {
    if d.len() != WAIT_LEN || d[0] != KIND_WAIT {
        return None;
    }
    let leaving = match d[21] {
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
    /// The answer to a wait with `counter`.
    pub fn answer(&self, nameplate: Nameplate, counter: u64, held: Held) -> [u8; ANSWER_LEN] {
        let mut d = [0u8; ANSWER_LEN];
        d[0] = KIND_ANSWER;
        d[1..5].copy_from_slice(&nameplate.get().to_be_bytes());
        d[5..13].copy_from_slice(&counter.to_be_bytes());
        d[13] = held.byte();
        let body = ANSWER_LEN - DATAGRAM_MAC_LEN;
        let mac = datagram_mac(&self.0, ANSWER_LABEL, &d[..body]);
        d[body..].copy_from_slice(&mac);
        d
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

        for held in [Held::Waiting, Held::Claimed, Held::NotHere, Held::Closing] {
            let answer = datagrams.answer(n, 77, held);
            assert!(answer.len() < d.len(), "an answer is shorter than its wait");
            assert_eq!(
                ticket.read_answer(&answer),
                Some(Answer { counter: 77, held })
            );
        }
        let answer = datagrams.answer(n, 77, Held::Claimed);
        // Another relay's key, or another ticket, reads nothing.
        let stranger = WaitingKey::from_bytes([8; 32]);
        assert!(stranger.check_wait(&wait).is_none());
        let other = key.issue(n, 1_001);
        assert_eq!(other.read_answer(&answer), None);
    }

    #[test]
    fn every_altered_byte_of_a_wait_or_an_answer_is_refused() {
        let key = WaitingKey::from_bytes([7; 32]);
        let ticket = key.issue(Nameplate::new(42).unwrap(), 1_000);
        let d = ticket.wait(77, false);
        for i in 0..d.len() {
            let mut bad = d;
            bad[i] ^= 0x01;
            let refused = read_wait(&bad).is_none_or(|w| key.check_wait(&w).is_none());
            assert!(refused, "byte {i} of a wait altered passed");
        }
        let answer = key.check_wait(&read_wait(&d).unwrap()).unwrap().answer(
            Nameplate::new(42).unwrap(),
            77,
            Held::Waiting,
        );
        for i in 0..answer.len() {
            let mut bad = answer;
            bad[i] ^= 0x01;
            assert_eq!(ticket.read_answer(&bad), None, "byte {i} of an answer");
        }
        assert!(read_wait(&d[..WAIT_LEN - 1]).is_none());
        assert_eq!(ticket.read_answer(&answer[..ANSWER_LEN - 1]), None);
    }
}
