//! The end-to-end authentication between agent and console: a PAKE on the
//! first stream of their QUIC connection, bound to that connection, and key
//! confirmation in both directions.
//!
//! The session code is `NAMEPLATE-WORD-WORD`. The relay pairs the two sides
//! by the nameplate; the password (the words) never leaves the two ends. This
//! module turns that password into keys the relay cannot know, and it does so
//! as a state machine over byte strings: it never reads or writes a stream,
//! so the caller carries each byte string to the peer however it likes.
//!
//! ```text
//!  agent                                        console
//!  Handshake::start(Agent, np, pw, link) ──pake──▶
//!                                   ◀──pake──   Handshake::start(Console, np, pw, link)
//!  receive(peer pake) → Confirming              receive(peer pake) → Confirming
//!  confirmation()            ──confirmation──▶
//!                            ◀──confirmation──  confirmation()
//!  verify(peer tag) → Channel                   verify(peer tag) → Channel
//! ```
//!
//! Both PAKE messages may be sent at once, and so may both confirmations.
//!
//! 1. **PAKE** (`pake.rs`): SPAKE2 over Ed25519, agent as side A, console as
//!    side B, with identities that name the role and the nameplate. A relay
//!    that tampers gets one online guess at the password, and a wrong guess
//!    ends the session.
//! 2. **Keys** (`kdf.rs`): HKDF-SHA256 from the SPAKE2 key, salted with the
//!    connection's TLS exporter, one label per purpose: a confirmation key
//!    per side and
//!    the seed of the verification words, and a [`SessionBinding`] that
//!    signatures meant for this session only are made over. Each key's type
//!    names its purpose.
//! 3. **Confirmation** (`confirm.rs`): each side sends an HMAC-SHA256 tag
//!    under its own confirmation key over the transcript: the nameplate, both
//!    PAKE messages, the connection's TLS exporter and both TLS certificates
//!    (the [`LinkBinding`]). A wrong password, or a relay that terminated TLS
//!    on either side (its exporter and certificates differ from the ones the
//!    two ends see), shows up here, on both sides, as
//!    [`ChannelError::WrongCode`]. Only [`Confirming::verify`] yields a
//!    [`Channel`]; nothing of the session is sent before.
//! 4. **Verification words** (`verification.rs`): four words both people can
//!    compare to be sure they share one channel.
//!
//! Secrets (the password and every key) never appear in `Debug` output.

mod confirm;
mod kdf;
mod pake;
mod verification;

#[cfg(test)]
mod tests;

use std::fmt;

pub use confirm::CONFIRMATION_LEN;
pub use kdf::SessionBinding;
pub use pake::PAKE_MESSAGE_LEN;
pub use verification::VERIFICATION_WORD_COUNT;

use confirm::Transcript;
use kdf::ConfirmKey;
use pake::Pake;

/// The protocol name that starts every identity, label and transcript.
const PROTOCOL: &str = "sprijin/3";

/// Which end of the session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The user's machine; SPAKE2 side A.
    Agent,
    /// The technician; SPAKE2 side B.
    Console,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::Agent => Side::Console,
            Side::Console => Side::Agent,
        }
    }
}

/// Why the channel could not be set up or a message could not pass.
///
/// Every kind ends the session.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum ChannelError {
    /// Key confirmation failed: the peer holds other keys, because it used
    /// another password or another nameplate, or someone in between tried
    /// to guess the password.
    #[error("the code was wrong: the other side used a different password; ask for the code again")]
    WrongCode,
    /// The peer's PAKE message was not a valid SPAKE2 message for its role.
    #[error(
        "the other side sent a malformed key exchange message; end the session and start again with a new code"
    )]
    MalformedPake,
}

/// What ties the handshake to one TLS connection: both ends see the same
/// values only when no one terminated TLS between them.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkBinding {
    /// Keying material exported from the connection's TLS session under
    /// the handshake's own label.
    pub exporter: Vec<u8>,
    /// The agent's TLS certificate (DER), as the agent sent it and the
    /// console received it.
    pub agent_certificate: Vec<u8>,
    /// The console's TLS certificate (DER).
    pub console_certificate: Vec<u8>,
}

impl fmt::Debug for LinkBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkBinding").finish_non_exhaustive()
    }
}

/// The first step: our PAKE message is out, the peer's is awaited.
pub struct Handshake {
    side: Side,
    nameplate: String,
    link: LinkBinding,
    pake: Pake,
    /// Our PAKE message, kept for the transcript.
    outbound: Vec<u8>,
}

impl Handshake {
    /// Starts the handshake and returns the PAKE message to send.
    ///
    /// `nameplate` is bound into the identities; `password` is the secret
    /// words part of the code, already parsed and normalised so that both
    /// sides pass the same bytes. `link` is what this side sees of the
    /// connection the handshake runs on.
    pub fn start(
        side: Side,
        nameplate: &str,
        password: &str,
        link: LinkBinding,
    ) -> (Handshake, Vec<u8>) {
        let (pake, outbound) = Pake::start(side, nameplate, password);
        let handshake = Handshake {
            side,
            nameplate: nameplate.to_owned(),
            link,
            pake,
            outbound: outbound.clone(),
        };
        (handshake, outbound)
    }

    /// Takes the peer's PAKE message and derives the session keys.
    ///
    /// A malformed message is [`ChannelError::MalformedPake`]. A wrong
    /// password is not visible yet; it fails at [`Confirming::verify`].
    pub fn receive(self, peer_pake: &[u8]) -> Result<Confirming, ChannelError> {
        let root = self.pake.finish(peer_pake)?;
        let keys = root.derive(&self.link.exporter);
        let (agent_message, console_message) = match self.side {
            Side::Agent => (self.outbound.as_slice(), peer_pake),
            Side::Console => (peer_pake, self.outbound.as_slice()),
        };
        let transcript =
            Transcript::new(&self.nameplate, agent_message, console_message, &self.link);
        let (own_confirm, peer_confirm) = match self.side {
            Side::Agent => (keys.agent_confirm, keys.console_confirm),
            Side::Console => (keys.console_confirm, keys.agent_confirm),
        };
        Ok(Confirming {
            side: self.side,
            nameplate: self.nameplate,
            transcript,
            own_confirm,
            peer_confirm,
            words: verification::indices(&keys.verification),
            binding: keys.binding,
        })
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("side", &self.side)
            .field("nameplate", &self.nameplate)
            .finish_non_exhaustive()
    }
}

/// The second step: keys are derived but not yet confirmed, so the session
/// may not start yet.
pub struct Confirming {
    side: Side,
    nameplate: String,
    transcript: Transcript,
    own_confirm: ConfirmKey,
    peer_confirm: ConfirmKey,
    words: [usize; VERIFICATION_WORD_COUNT],
    binding: SessionBinding,
}

impl Confirming {
    /// Our key-confirmation tag ([`CONFIRMATION_LEN`] bytes) to send.
    pub fn confirmation(&self) -> Vec<u8> {
        confirm::tag(&self.own_confirm, &self.transcript)
    }

    /// Checks the peer's tag; on success the channel is open.
    ///
    /// A tag that does not match, whatever its length, is
    /// [`ChannelError::WrongCode`].
    pub fn verify(self, peer_confirmation: &[u8]) -> Result<Channel, ChannelError> {
        confirm::verify(&self.peer_confirm, &self.transcript, peer_confirmation)?;
        Ok(Channel {
            side: self.side,
            nameplate: self.nameplate,
            words: self.words,
            binding: self.binding,
        })
    }
}

impl fmt::Debug for Confirming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confirming")
            .field("side", &self.side)
            .field("nameplate", &self.nameplate)
            .finish_non_exhaustive()
    }
}

/// The confirmed channel.
pub struct Channel {
    side: Side,
    nameplate: String,
    words: [usize; VERIFICATION_WORD_COUNT],
    binding: SessionBinding,
}

impl Channel {
    /// Four words from [`crate::words::WORDS`] joined by `-`, the same on
    /// both sides, e.g. `otter-lamp-river-maple`.
    pub fn verification_words(&self) -> String {
        verification::words(&self.words)
    }

    /// Which end of the session we are.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The nameplate the channel was set up under.
    pub fn nameplate(&self) -> &str {
        &self.nameplate
    }

    /// The value that ties a signature to this session: the same on both
    /// sides, different in every other session. Only a confirmed channel
    /// has one, so a proof is never made for keys the peer does not hold.
    pub fn binding(&self) -> &SessionBinding {
        &self.binding
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("side", &self.side)
            .field("nameplate", &self.nameplate)
            .finish_non_exhaustive()
    }
}
