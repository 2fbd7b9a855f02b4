//! The control stream between a client (agent or console) and the relay.
//!
//! Every stream starts with a [`Hello`] naming the protocol version; its
//! layout never changes, so a peer of any version can read it and be told
//! plainly that the versions differ. After the hello, the client sends one
//! [`ClientMsg`] and the relay answers with [`RelayMsg`]s. A claiming
//! console hears `Paired` at once; the waiting agent finds its side of the
//! pairing in the relay's answer to its wait (see [`crate::waiting`]), or
//! as `Paired` if it comes back on a connection for it. Each side opens the
//! end-to-end session with its ticket (see [`crate::path`] and
//! [`crate::e2e`]) and closes its connection to the relay once that session
//! is set up, with a [`close_code`] saying how set-up ended.

use serde::{Deserialize, Serialize};

use crate::code::Nameplate;

/// The protocol version this build speaks.
///
/// Version 5: a claim's pairing (the agent's forwarding ticket and who
/// claimed) is sealed into the relay's answer to the waiting agent, which
/// opens its side of the session at once instead of reconnecting for
/// `Paired`; waits are padded to stay longer than that answer. The console
/// hears it is paired at once, and the relay learns how set-up ended from
/// the console's close code.
///
/// Version 4: a waiting agent closes its relay connection once it has its
/// code and keeps the code with MACed datagrams (see [`crate::waiting`]);
/// a claim reaches it as a datagram, and it reconnects with its ticket to
/// be paired. The console's `Paired` comes once the agent is back, so the
/// console's end-to-end connection finds the agent there.
///
/// Version 3: after pairing, agent and console talk one QUIC connection to
/// each other (ALPN `sprijin-e2e/3`, a fresh self-signed certificate on each
/// side, the agent as server) whose datagrams the relay forwards under
/// forwarding tickets; the SPAKE2 handshake runs on its first stream, bound
/// to the TLS exporter and both certificates; the application-level sealing
/// is gone (QUIC's TLS is the only encryption); runs, questions and file
/// transfers each answer on a stream of their own that starts with a
/// `StreamHead`.
///
/// Version 2: the console proves its credential first in the session; audit
/// heads, identity, conversation and file messages; catalog signatures with
/// key, time and expiry.
pub const PROTOCOL_VERSION: u16 = 5;

/// Who is on the other end of a stream.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Console,
}

/// The first message on every stream. Keep its layout stable forever.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
    pub role: Role,
}

impl Hello {
    pub fn new(role: Role) -> Self {
        Hello {
            version: PROTOCOL_VERSION,
            role,
        }
    }
}

/// What a client asks of the relay after its hello.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    /// An agent asks for a nameplate and waits to be paired.
    Open,
    /// A console claims a waiting agent's nameplate.
    Claim {
        nameplate: Nameplate,
        /// The technician's name as typed on the console.
        technician: String,
        /// An access token, for relays that only let listed technicians claim.
        token: Option<String>,
    },
    /// An agent that lost its connection while waiting asks for its
    /// nameplate back, with the ticket it was given in `Opened`.
    Reopen {
        ticket: crate::waiting::WaitingTicket,
    },
}

/// Who the agent has been paired with, as far as the relay can tell.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Technician {
    pub name: String,
    /// True when the relay checked the console's token and the name is the
    /// one the relay has on file; false when it is only what the console said.
    pub vouched: bool,
}

impl std::fmt::Display for Technician {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.vouched {
            write!(f, "{} (vouched for by the relay)", self.name)
        } else {
            write!(f, "{} (name not verified)", self.name)
        }
    }
}

/// What the relay tells a client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum RelayMsg {
    /// The agent's nameplate, unclaimed for at most `expires_in_secs`.
    Opened {
        nameplate: Nameplate,
        expires_in_secs: u64,
        /// What the agent presents to get the nameplate back if its
        /// connection is lost while it waits.
        ticket: crate::waiting::WaitingTicket,
    },
    /// The two sides are paired; each now opens the end-to-end session
    /// through the relay's forwarder with its ticket. The agent learns who
    /// claimed; the console gets `None`.
    Paired {
        technician: Option<Technician>,
        /// This side's forwarding ticket for the end-to-end data path.
        ticket: crate::path::Ticket,
    },
    /// The request failed; the relay closes the stream after this.
    Error(ErrorFrame),
    /// The claimed nameplate belongs to another relay of the fleet: claim
    /// it there. The relay closes the stream after this.
    Redirect(Redirect),
}

/// Where a claim belongs: the relay that handed the nameplate out.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub relay_id: u16,
    /// `HOST:PORT`.
    pub address: String,
    /// The other relay's certificate fingerprint (`sha256:HEX`) when the
    /// redirecting relay knows it; the console pins it, since it trusts the
    /// relay that told it.
    pub fingerprint: Option<String>,
}

/// A refusal with a machine-readable reason and a sentence for people.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    VersionMismatch,
    UnknownNameplate,
    ExpiredNameplate,
    UsedNameplate,
    WrongRole,
    ProtocolViolation,
    RateLimited,
    TooManyWaiting,
    Busy,
    Unauthorized,
    Timeout,
    ShuttingDown,
    /// The nameplate belongs to a relay this relay does not know.
    UnknownRelay,
    /// A waiting ticket this relay did not issue.
    BadTicket,
}

/// The message for a version mismatch, naming both versions.
pub fn version_mismatch(ours: u16, theirs: u16) -> String {
    format!(
        "protocol version mismatch: this side speaks version {ours}, the peer speaks version {theirs}; update the older program"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn hello_layout_is_stable() {
        // The version as a varint, then role 0: any future version can still read this.
        assert_eq!(encode(&Hello::new(Role::Agent)).unwrap(), vec![5, 0]);
    }

    #[test]
    fn control_messages_round_trip() {
        let msgs = [
            RelayMsg::Opened {
                nameplate: Nameplate::new(5).unwrap(),
                expires_in_secs: 600,
                ticket: crate::waiting::WaitingKey::from_bytes([1; 32])
                    .issue(Nameplate::new(5).unwrap(), 1_800_000_000),
            },
            RelayMsg::Redirect(Redirect {
                relay_id: 2,
                address: "relay-2.example:7420".into(),
                fingerprint: None,
            }),
            RelayMsg::Paired {
                technician: Some(Technician {
                    name: "Ana".into(),
                    vouched: true,
                }),
                ticket: crate::path::Ticket {
                    token: vec![1, 2, 3],
                    key: [7; 32],
                    expires_at: 1_800_000_000,
                },
            },
            RelayMsg::Error(ErrorFrame::new(ErrorCode::UsedNameplate, "used")),
        ];
        for m in msgs {
            assert_eq!(decode::<RelayMsg>(&encode(&m).unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn version_mismatch_names_both_versions() {
        let text = version_mismatch(1, 9);
        assert!(text.contains("version 1") && text.contains("version 9"));
    }
}

/// QUIC close codes a client ends its relay connection with, right after
/// the end-to-end set-up, and the two ends close their session connection
/// with. The relay cannot read the session, so these are how it learns, for
/// its metrics, whether set-up succeeded or the code was wrong.
pub mod close_code {
    /// The session ended normally.
    pub const ENDED: u32 = 0;
    /// The end-to-end session is set up: the relay connection has done its
    /// work. The same value as [`ENDED`], so relays count it as a success.
    pub const SET_UP: u32 = ENDED;
    /// The end-to-end set-up failed for another reason.
    pub const SETUP_FAILED: u32 = 1;
    /// The end-to-end set-up proved the code wrong.
    pub const WRONG_CODE: u32 = 3;
    /// The agent has its code and waits apart from this connection, with
    /// datagrams (see [`crate::waiting`]).
    pub const PARKED: u32 = 4;
}
