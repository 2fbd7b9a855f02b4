//! The probes agent and console send each other, straight from the
//! session's socket, to find a direct path: pure functions over bytes.
//!
//! Both kinds are [`PROBE_LEN`] bytes, so an answer is never bigger than
//! the probe it answers, and start with a kind byte whose QUIC fixed bit
//! is clear, so they never look like QUIC:
//!
//! - probe: `0xA0|side | id (8) | zeros (19) | MAC (16)`;
//! - answer: `0xB0|side | id (8) | address (19) | MAC (16)`, the probe's id
//!   and the address the probe came from.
//!
//! `side` is the sender's. The MAC is a truncated HMAC-SHA256 under a key
//! both ends take from their connection's TLS exporter
//! ([`EXPORTER_LABEL`]), over the kind byte, the id and the address, so
//! only the two ends of this session can make one, and neither takes its
//! own probe reflected back as the other's.

use std::net::SocketAddr;

use super::wire::{ADDR_LEN, MAC_LEN, Side, hmac, read_addr, same, write_addr};

/// The label of the TLS exporter the probes' key comes from.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-sprijin-direct/1 probe";

/// The length of a probe and of an answer.
pub const PROBE_LEN: usize = 1 + 8 + ADDR_LEN + MAC_LEN;

const KIND_PROBE: u8 = 0xA0;
const KIND_ANSWER: u8 = 0xB0;
const MAC_LABEL: &[u8] = b"sprijin probe v1";

/// The key of one session's probes.
#[derive(Clone)]
pub struct ProbeKey([u8; 32]);

impl std::fmt::Debug for ProbeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeKey")
    }
}

impl ProbeKey {
    pub fn new(bytes: [u8; 32]) -> ProbeKey {
        ProbeKey(bytes)
    }

    /// The key for `connection`'s probes; `None` when the connection has
    /// no keys to export (it is not set up).
    pub fn of(connection: &quinn::Connection) -> Option<ProbeKey> {
        let mut key = [0u8; 32];
        connection
            .export_keying_material(&mut key, EXPORTER_LABEL, b"")
            .ok()?;
        Some(ProbeKey(key))
    }

    fn seal(&self, kind: u8, id: u64, addr: &[u8; ADDR_LEN]) -> [u8; PROBE_LEN] {
        let mut out = [0u8; PROBE_LEN];
        out[0] = kind;
        out[1..9].copy_from_slice(&id.to_be_bytes());
        out[9..9 + ADDR_LEN].copy_from_slice(addr);
        let mac = hmac(&self.0, &[MAC_LABEL, &out[..9 + ADDR_LEN]]);
        out[9 + ADDR_LEN..].copy_from_slice(&mac[..MAC_LEN]);
        out
    }

    /// A probe from `from` with `id`.
    pub fn probe(&self, from: Side, id: u64) -> [u8; PROBE_LEN] {
        self.seal(KIND_PROBE | side_bit(from), id, &[0; ADDR_LEN])
    }

    /// The answer from `from` to probe `id`, which came from `seen`.
    pub fn answer(&self, from: Side, id: u64, seen: SocketAddr) -> [u8; PROBE_LEN] {
        self.seal(KIND_ANSWER | side_bit(from), id, &write_addr(seen))
    }

    /// Reads a datagram the other side (not `me`) made under this key;
    /// `None` for anything else, this side's own probes included.
    pub fn read(&self, me: Side, d: &[u8]) -> Option<Probe> {
        if d.len() != PROBE_LEN || !is_probe(d) {
            return None;
        }
        let (body, mac) = d.split_at(9 + ADDR_LEN);
        let expected = hmac(&self.0, &[MAC_LABEL, body]);
        if !same(&expected[..MAC_LEN], mac) {
            return None;
        }
        let from = if d[0] & 1 == 0 {
            Side::Agent
        } else {
            Side::Console
        };
        if from == me || d[0] & 0x0e != 0 {
            return None;
        }
        let id = u64::from_be_bytes(d[1..9].try_into().ok()?);
        match d[0] & 0xf0 {
            KIND_PROBE => Some(Probe::Probe { id }),
            KIND_ANSWER => Some(Probe::Answer {
                id,
                seen: read_addr(&d[9..9 + ADDR_LEN])?,
            }),
            _ => None,
        }
    }
}

/// What the other side sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Probe { id: u64 },
    Answer { id: u64, seen: SocketAddr },
}

/// Whether `d` starts like a probe or an answer (checked no further).
pub fn is_probe(d: &[u8]) -> bool {
    matches!(d.first(), Some(b) if matches!(b & 0xf0, KIND_PROBE | KIND_ANSWER))
}

fn side_bit(side: Side) -> u8 {
    u8::try_from(side.index()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_answered_with_its_id_and_where_it_came_from() {
        let key = ProbeKey::new([3; 32]);
        let p = key.probe(Side::Console, 77);
        assert_eq!(p[0] & 0x40, 0, "the QUIC fixed bit is clear");
        assert!(is_probe(&p));
        assert_eq!(key.read(Side::Agent, &p), Some(Probe::Probe { id: 77 }));
        let seen: SocketAddr = "198.51.100.4:6000".parse().unwrap();
        let a = key.answer(Side::Agent, 77, seen);
        assert_eq!(a.len(), p.len(), "an answer is no bigger than its probe");
        assert_eq!(
            key.read(Side::Console, &a),
            Some(Probe::Answer { id: 77, seen })
        );
    }

    #[test]
    fn own_reflected_wrong_key_and_altered_probes_are_refused() {
        let key = ProbeKey::new([3; 32]);
        let p = key.probe(Side::Console, 1);
        assert_eq!(key.read(Side::Console, &p), None, "reflected");
        assert_eq!(ProbeKey::new([4; 32]).read(Side::Agent, &p), None);
        for i in 0..p.len() {
            let mut bad = p;
            bad[i] ^= 1;
            assert_eq!(key.read(Side::Agent, &bad), None, "byte {i} flipped");
        }
        assert_eq!(key.read(Side::Agent, &p[..PROBE_LEN - 1]), None);
        assert_eq!(key.read(Side::Agent, &[]), None);
    }
}
