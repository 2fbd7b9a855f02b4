//! Key confirmation: each side proves it derived the same keys before any
//! sealed message flows.
//!
//! Each side sends an HMAC-SHA256 tag under its own confirmation key over
//! the transcript: the nameplate and both PAKE messages, agent's first. A
//! side that used another password (or another nameplate) derived other
//! keys, so its tag fails here, on both sides. The two confirmation keys
//! differ, so a tag reflected back to its sender fails too.

use hmac::Mac as _;

use super::kdf::ConfirmKey;
use super::pake::PAKE_MESSAGE_LEN;
use super::{ChannelError, PROTOCOL};

/// Length of a key-confirmation tag on the wire.
pub const CONFIRMATION_LEN: usize = 32;

/// What both sides saw during the PAKE, in one fixed encoding.
pub(super) struct Transcript(Vec<u8>);

impl Transcript {
    pub(super) fn new(nameplate: &str, agent_message: &[u8], console_message: &[u8]) -> Transcript {
        let mut bytes = Vec::with_capacity(64 + nameplate.len() + 2 * PAKE_MESSAGE_LEN);
        bytes.extend_from_slice(PROTOCOL.as_bytes());
        bytes.extend_from_slice(b" transcript");
        // Length prefixes keep the fields apart, so no two different
        // transcripts encode to the same bytes.
        for field in [nameplate.as_bytes(), agent_message, console_message] {
            bytes.extend_from_slice(&(field.len() as u64).to_be_bytes());
            bytes.extend_from_slice(field);
        }
        Transcript(bytes)
    }
}

/// The tag that proves the holder of `key` saw `transcript`.
pub(super) fn tag(key: &ConfirmKey, transcript: &Transcript) -> Vec<u8> {
    let mut mac = key.mac();
    mac.update(&transcript.0);
    mac.finalize().into_bytes().to_vec()
}

/// Checks the peer's tag in constant time. A tag of any other length is a
/// mismatch like any other.
pub(super) fn verify(
    key: &ConfirmKey,
    transcript: &Transcript,
    peer_tag: &[u8],
) -> Result<(), ChannelError> {
    let mut mac = key.mac();
    mac.update(&transcript.0);
    mac.verify_slice(peer_tag)
        .map_err(|_| ChannelError::WrongCode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::kdf::PakeKey;

    #[test]
    fn tag_has_the_documented_length() {
        let keys = PakeKey::new(vec![1; 32]).derive();
        let transcript = Transcript::new("7", b"a", b"b");
        assert_eq!(
            tag(&keys.agent_confirm, &transcript).len(),
            CONFIRMATION_LEN
        );
    }

    #[test]
    fn transcript_fields_cannot_run_into_each_other() {
        let one = Transcript::new("7", b"ab", b"c");
        let two = Transcript::new("7", b"a", b"bc");
        let three = Transcript::new("7a", b"b", b"c");
        assert_ne!(one.0, two.0);
        assert_ne!(one.0, three.0);
    }

    #[test]
    fn tag_under_one_key_fails_under_the_other() {
        let keys = PakeKey::new(vec![1; 32]).derive();
        let transcript = Transcript::new("7", b"a", b"b");
        let agent_tag = tag(&keys.agent_confirm, &transcript);
        assert!(verify(&keys.agent_confirm, &transcript, &agent_tag).is_ok());
        assert!(matches!(
            verify(&keys.console_confirm, &transcript, &agent_tag),
            Err(ChannelError::WrongCode)
        ));
    }
}
