//! Key derivation: every key the handshake uses comes from the SPAKE2 key
//! through HKDF-SHA256, salted with the connection's TLS exporter, one
//! expansion per purpose, each under its own label.
//!
//! Each derived key is a newtype named for its purpose, and its bytes never
//! leave this module: a [`ConfirmKey`] can only become an HMAC. None of
//! them print their bytes in `Debug`.

use std::fmt;

use hkdf::Hkdf;
use hmac::Hmac;
use hmac::digest::KeyInit as _;
use sha2::Sha256;

/// HMAC-SHA256, the key-confirmation MAC.
pub(super) type HmacSha256 = Hmac<Sha256>;

// One label per purpose, each starting with the protocol name. Changing any
// of them changes the protocol.
const LABEL_CONFIRM_AGENT: &[u8] = b"sprijin/3 confirm agent";
const LABEL_CONFIRM_CONSOLE: &[u8] = b"sprijin/3 confirm console";
const LABEL_VERIFICATION_WORDS: &[u8] = b"sprijin/3 verification words";
const LABEL_SESSION_BINDING: &[u8] = b"sprijin/3 session binding";

/// The key SPAKE2 agreed on. It is only ever used as HKDF input.
pub(super) struct PakeKey(Vec<u8>);

impl PakeKey {
    pub(super) fn new(bytes: Vec<u8>) -> PakeKey {
        PakeKey(bytes)
    }

    /// Derives every key of the session, salted with the TLS exporter of
    /// the connection it runs on.
    pub(super) fn derive(&self, exporter: &[u8]) -> SessionKeys {
        let hkdf = Hkdf::<Sha256>::new(Some(exporter), &self.0);
        SessionKeys {
            agent_confirm: ConfirmKey(expand(&hkdf, LABEL_CONFIRM_AGENT)),
            console_confirm: ConfirmKey(expand(&hkdf, LABEL_CONFIRM_CONSOLE)),
            verification: VerificationSeed(expand(&hkdf, LABEL_VERIFICATION_WORDS)),
            binding: SessionBinding(expand(&hkdf, LABEL_SESSION_BINDING)),
        }
    }
}

impl fmt::Debug for PakeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PakeKey(..)")
    }
}

/// Every key of one session, named by direction and purpose.
#[derive(Debug)]
pub(super) struct SessionKeys {
    pub(super) agent_confirm: ConfirmKey,
    pub(super) console_confirm: ConfirmKey,
    pub(super) verification: VerificationSeed,
    pub(super) binding: SessionBinding,
}

/// An HMAC-SHA256 key that one side uses to prove it holds the session key.
///
/// It is a full HMAC block (64 bytes) long, so HMAC uses it as it is and
/// building the MAC cannot fail.
pub(super) struct ConfirmKey([u8; 64]);

impl ConfirmKey {
    pub(super) fn mac(&self) -> HmacSha256 {
        HmacSha256::new(&self.0.into())
    }
}

impl fmt::Debug for ConfirmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfirmKey(..)")
    }
}

/// Forty bits that pick the four verification words.
pub(super) struct VerificationSeed([u8; 5]);

impl VerificationSeed {
    #[cfg(test)]
    pub(super) fn from_bytes(bytes: [u8; 5]) -> VerificationSeed {
        VerificationSeed(bytes)
    }

    /// The seed as a number, first byte most significant.
    pub(super) fn bits(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
    }
}

impl fmt::Debug for VerificationSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationSeed(..)")
    }
}

/// A value both ends of one session share and no other session has, for
/// signatures that must hold for this session only (a technician's proof of
/// their credential). It is not a key: knowing it does not help to forge a
/// confirmation, because HKDF outputs under different labels are
/// independent.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionBinding([u8; 32]);

impl SessionBinding {
    /// A binding from known bytes, for tests and for checking proofs made
    /// elsewhere.
    pub fn from_bytes(bytes: [u8; 32]) -> SessionBinding {
        SessionBinding(bytes)
    }

    /// The bytes to sign or check a signature over.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SessionBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionBinding(..)")
    }
}

/// Expands `N` bytes under `label`.
fn expand<const N: usize>(hkdf: &Hkdf<Sha256>, label: &[u8]) -> [u8; N] {
    // HKDF-SHA256 can expand to at most 255 blocks of 32 bytes. Checking the
    // length at compile time makes the runtime error below impossible.
    const { assert!(N <= 255 * 32) };
    let mut out = [0u8; N];
    if hkdf.expand(label, &mut out).is_err() {
        unreachable!("hkdf output length is checked at compile time");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        PakeKey::new(vec![7; 32]).derive(&[1; 32])
    }

    #[test]
    fn every_purpose_gets_its_own_key() {
        let keys = keys();
        assert_ne!(keys.agent_confirm.0, keys.console_confirm.0);
        assert_ne!(&keys.agent_confirm.0[..32], keys.binding.as_bytes());
    }

    #[test]
    fn derivation_is_deterministic() {
        let one = keys();
        let two = keys();
        assert_eq!(one.agent_confirm.0, two.agent_confirm.0);
        assert_eq!(one.verification.0, two.verification.0);
        assert_eq!(one.binding, two.binding);
    }

    #[test]
    fn another_exporter_gives_other_keys() {
        let one = keys();
        let two = PakeKey::new(vec![7; 32]).derive(&[2; 32]);
        assert_ne!(one.agent_confirm.0, two.agent_confirm.0);
        assert_ne!(one.binding, two.binding);
    }

    #[test]
    fn the_binding_differs_from_every_key_and_between_sessions() {
        let keys = keys();
        let binding = keys.binding.0;
        assert_ne!(&binding[..], &keys.agent_confirm.0[..32]);
        assert_ne!(&binding[..], &keys.console_confirm.0[..32]);
        let other = PakeKey::new(vec![8; 32]).derive(&[1; 32]);
        assert_ne!(binding, other.binding.0);
    }

    #[test]
    fn labels_are_distinct_and_prefixed() {
        let labels = [
            LABEL_CONFIRM_AGENT,
            LABEL_CONFIRM_CONSOLE,
            LABEL_VERIFICATION_WORDS,
            LABEL_SESSION_BINDING,
        ];
        for (i, a) in labels.iter().enumerate() {
            let prefix = format!("{} ", super::super::PROTOCOL);
            assert!(a.starts_with(prefix.as_bytes()));
            for b in &labels[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn debug_hides_key_bytes() {
        let keys = keys();
        assert_eq!(format!("{:?}", PakeKey::new(vec![7; 32])), "PakeKey(..)");
        assert_eq!(format!("{:?}", keys.agent_confirm), "ConfirmKey(..)");
        assert_eq!(format!("{:?}", keys.verification), "VerificationSeed(..)");
        assert_eq!(format!("{:?}", keys.binding), "SessionBinding(..)");
    }

    #[test]
    fn seed_bits_are_big_endian() {
        let seed = VerificationSeed([0x01, 0x02, 0x03, 0x04, 0x05]);
        assert_eq!(seed.bits(), 0x01_0203_0405);
    }
}
