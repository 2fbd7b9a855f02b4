//! Key confirmation: each side proves it derived the same keys, on the same
//! TLS connection, before the session starts.
//!
//! Each side sends an HMAC-SHA256 tag under its own confirmation key over
//! the transcript: the nameplate, both PAKE messages (agent's first), the
//! connection's TLS exporter and both certificates (agent's first). A side
//! that used another password (or another nameplate) derived other keys,
//! and a side whose TLS connection ends somewhere else saw another exporter
//! and other certificates, so its tag fails here, on both sides. The two confirmation keys
//! differ, so a tag reflected back to its sender fails too.

use hmac::Mac as _;

use super::kdf::ConfirmKey;
use super::pake::PAKE_MESSAGE_LEN;
use super::{ChannelError, LinkBinding, PROTOCOL};

/// Length of a key-confirmation tag on the wire.
pub const CONFIRMATION_LEN: usize = 32;

/// What both sides saw during the PAKE, in one fixed encoding.
pub(super) struct Transcript(Vec<u8>);

impl Transcript {
    pub(super) fn new(
        nameplate: &str,
        agent_message: &[u8],
        console_message: &[u8],
        link: &LinkBinding,
    ) -> Transcript {
        let mut bytes = Vec::with_capacity(
            128 + nameplate.len()
                + 2 * PAKE_MESSAGE_LEN
                + link.exporter.len()
                + link.agent_certificate.len()
                + link.console_certificate.len(),
        );
        bytes.extend_from_slice(PROTOCOL.as_bytes());
        bytes.extend_from_slice(b" transcript");
        // Length prefixes keep the fields apart, so no two different
        // transcripts encode to the same bytes.
        for field in [
            nameplate.as_bytes(),
            agent_message,
            console_message,
            &link.exporter,
            &link.agent_certificate,
            &link.console_certificate,
        ] {
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

    fn link() -> LinkBinding {
        LinkBinding {
            exporter: vec![9; 32],
            agent_certificate: b"agent".to_vec(),
            console_certificate: b"console".to_vec(),
        }
    }

    #[test]
    fn tag_has_the_documented_length() {
        let keys = PakeKey::new(vec![1; 32]).derive(&[9; 32]);
        let transcript = Transcript::new("7", b"a", b"b", &link());
        assert_eq!(
            tag(&keys.agent_confirm, &transcript).len(),
            CONFIRMATION_LEN
        );
    }

    #[test]
    fn transcript_fields_cannot_run_into_each_other() {
        let one = Transcript::new("7", b"ab", b"c", &link());
        let two = Transcript::new("7", b"a", b"bc", &link());
        let three = Transcript::new("7a", b"b", b"c", &link());
        assert_ne!(one.0, two.0);
        assert_ne!(one.0, three.0);
    }

    #[test]
    fn tag_under_one_key_fails_under_the_other() {
        let keys = PakeKey::new(vec![1; 32]).derive(&[9; 32]);
        let transcript = Transcript::new("7", b"a", b"b", &link());
        let agent_tag = tag(&keys.agent_confirm, &transcript);
        assert!(verify(&keys.agent_confirm, &transcript, &agent_tag).is_ok());
        assert!(matches!(
            verify(&keys.console_confirm, &transcript, &agent_tag),
            Err(ChannelError::WrongCode)
        ));
    }
}
