//! The SPAKE2 exchange that turns the password part of the session code into
//! a shared key.
//!
//! The agent is SPAKE2 side A and the console side B. Both identities name
//! the protocol, the role and the nameplate, so a key agreed under one
//! nameplate is useless under another, and a message made for one role
//! cannot be played back as the other. SPAKE2 tags each message with its
//! side, so a message reflected back to its sender is refused here.

use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::kdf::PakeKey;
use super::{ChannelError, PROTOCOL, Side};

/// Length of a PAKE message on the wire: one side byte and one compressed
/// Edwards point.
pub const PAKE_MESSAGE_LEN: usize = 33;

/// Our half of a SPAKE2 exchange that is waiting for the peer's message.
pub(super) struct Pake {
    state: Spake2<Ed25519Group>,
}

impl Pake {
    /// Starts the exchange and returns the message to send to the peer.
    pub(super) fn start(side: Side, nameplate: &str, password: &str) -> (Pake, Vec<u8>) {
        let password = Password::new(password.as_bytes());
        let (id_agent, id_console) = identities(nameplate);
        let (state, outbound) = match side {
            Side::Agent => Spake2::<Ed25519Group>::start_a(&password, &id_agent, &id_console),
            Side::Console => Spake2::<Ed25519Group>::start_b(&password, &id_agent, &id_console),
        };
        (Pake { state }, outbound)
    }

    /// Finishes the exchange with the peer's message.
    ///
    /// A wrong password is not detected here: SPAKE2 then yields a key that
    /// differs from the peer's, and key confirmation catches it.
    pub(super) fn finish(self, peer_message: &[u8]) -> Result<PakeKey, ChannelError> {
        // The crate's errors (wrong length, wrong side, not a curve point)
        // all mean the same to a caller: the peer sent something unusable.
        self.state
            .finish(peer_message)
            .map(PakeKey::new)
            .map_err(|_| ChannelError::MalformedPake)
    }
}

/// The SPAKE2 identities of the agent and the console for one nameplate.
fn identities(nameplate: &str) -> (Identity, Identity) {
    let agent = format!("{PROTOCOL} agent nameplate {nameplate}");
    let console = format!("{PROTOCOL} console nameplate {nameplate}");
    (
        Identity::new(agent.as_bytes()),
        Identity::new(console.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_name_role_and_nameplate() {
        let (agent, console) = identities("7");
        assert_eq!(agent.as_slice(), b"sprijin/3 agent nameplate 7");
        assert_eq!(console.as_slice(), b"sprijin/3 console nameplate 7");
    }

    #[test]
    fn outbound_message_has_the_documented_length() {
        let (_, agent) = Pake::start(Side::Agent, "7", "velvet-harbor");
        let (_, console) = Pake::start(Side::Console, "7", "velvet-harbor");
        assert_eq!(agent.len(), PAKE_MESSAGE_LEN);
        assert_eq!(console.len(), PAKE_MESSAGE_LEN);
    }
}
