//! Sealing and opening messages once the keys are confirmed.
//!
//! Each direction has its own ChaCha20-Poly1305 key. The 96-bit nonce is
//! four zero bytes and a 64-bit message counter (big-endian) that starts at
//! zero on both ends and goes up by one per message. The counter is never
//! sent: the opener expects the next number, so a frame that was altered,
//! replayed, reordered, dropped before it, or cut short fails to open. After
//! one failure the opener refuses everything, because the stream it was
//! following is no longer the one the peer sent.
//!
//! A counter that would wrap is an error, never a wrap, so no nonce is ever
//! used twice under one key.

use std::fmt;

use chacha20poly1305::aead::Aead as _;
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

use super::ChannelError;
use super::kdf::SealKey;

/// Bytes a sealed message adds to its plaintext: the Poly1305 tag.
pub const SEAL_OVERHEAD: usize = 16;

/// The per-message counter of one direction.
#[derive(Clone, Copy)]
struct Counter {
    /// The number of the next message; `None` once every number is used.
    next: Option<u64>,
}

impl Counter {
    const fn starting_at(next: u64) -> Counter {
        Counter { next: Some(next) }
    }

    /// The nonce of the next message, without using it up.
    fn nonce(&self) -> Result<Nonce, ChannelError> {
        let n = self.next.ok_or(ChannelError::Exhausted)?;
        let mut nonce = Nonce::default();
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        Ok(nonce)
    }

    /// Marks the current number used. Only called after it was used
    /// successfully, so both ends stay in step.
    fn advance(&mut self) {
        self.next = self.next.and_then(|n| n.checked_add(1));
    }
}

/// Seals the messages we send.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    counter: Counter,
}

impl Sealer {
    pub(super) fn new(key: SealKey) -> Sealer {
        Sealer::starting_at(key, 0)
    }

    fn starting_at(key: SealKey, next: u64) -> Sealer {
        Sealer {
            cipher: key.into_cipher(),
            counter: Counter::starting_at(next),
        }
    }

    /// Seals the next message. The result is [`SEAL_OVERHEAD`] bytes longer
    /// than `plaintext` and must reach the peer's [`Opener`] in order.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let nonce = self.counter.nonce()?;
        let sealed =
            self.cipher
                .encrypt(&nonce, plaintext)
                .map_err(|_| ChannelError::TooLarge {
                    len: plaintext.len(),
                })?;
        // Only a message that was actually produced uses up its number;
        // otherwise the peer would expect one we never sent.
        self.counter.advance();
        Ok(sealed)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("next_message", &self.counter.next)
            .finish_non_exhaustive()
    }
}

/// Opens the messages the peer sends.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    counter: Counter,
    /// Set by the first frame that failed to open; the session is over.
    failed: bool,
}

impl Opener {
    pub(super) fn new(key: SealKey) -> Opener {
        Opener::starting_at(key, 0)
    }

    fn starting_at(key: SealKey, next: u64) -> Opener {
        Opener {
            cipher: key.into_cipher(),
            counter: Counter::starting_at(next),
            failed: false,
        }
    }

    /// Opens the next message from the peer.
    ///
    /// Fails with [`ChannelError::Tampered`] if the frame is not exactly the
    /// next one the peer sealed, and from then on fails for every frame.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if self.failed {
            return Err(ChannelError::Tampered);
        }
        let nonce = self.counter.nonce()?;
        match self.cipher.decrypt(&nonce, sealed) {
            Ok(plaintext) => {
                self.counter.advance();
                Ok(plaintext)
            }
            Err(_) => {
                self.failed = true;
                Err(ChannelError::Tampered)
            }
        }
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("next_message", &self.counter.next)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::kdf::PakeKey;

    /// A sealer and the opener that reads it.
    fn pair_starting_at(next: u64) -> (Sealer, Opener) {
        let keys = PakeKey::new(vec![3; 32]).derive();
        let same = PakeKey::new(vec![3; 32]).derive();
        (
            Sealer::starting_at(keys.agent_to_console, next),
            Opener::starting_at(same.agent_to_console, next),
        )
    }

    #[test]
    fn sealed_message_opens() {
        let (mut sealer, mut opener) = pair_starting_at(0);
        for text in [&b"hello"[..], b"", b"third"] {
            let sealed = sealer.seal(text).unwrap();
            assert_eq!(sealed.len(), text.len() + SEAL_OVERHEAD);
            assert_eq!(opener.open(&sealed).unwrap(), text);
        }
    }

    #[test]
    fn same_plaintext_seals_differently_each_time() {
        let (mut sealer, _) = pair_starting_at(0);
        assert_ne!(sealer.seal(b"same").unwrap(), sealer.seal(b"same").unwrap());
    }

    #[test]
    fn nonce_is_zero_prefixed_big_endian_counter() {
        let nonce = Counter::starting_at(0x0102).nonce().unwrap();
        assert_eq!(nonce.as_slice(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn sealer_refuses_to_wrap_its_counter() {
        let (mut sealer, mut opener) = pair_starting_at(u64::MAX);
        let last = sealer.seal(b"last").unwrap();
        assert!(matches!(
            sealer.seal(b"one more"),
            Err(ChannelError::Exhausted)
        ));
        assert!(matches!(sealer.seal(b""), Err(ChannelError::Exhausted)));
        assert_eq!(opener.open(&last).unwrap(), b"last");
        assert!(matches!(opener.open(&last), Err(ChannelError::Exhausted)));
    }

    #[test]
    fn opener_stays_dead_after_a_failure() {
        let (mut sealer, mut opener) = pair_starting_at(0);
        let first = sealer.seal(b"first").unwrap();
        let mut bad = first.clone();
        bad[0] ^= 1;
        assert!(matches!(opener.open(&bad), Err(ChannelError::Tampered)));
        assert!(matches!(opener.open(&first), Err(ChannelError::Tampered)));
    }

    #[test]
    fn debug_shows_counts_not_keys() {
        let (mut sealer, opener) = pair_starting_at(0);
        sealer.seal(b"x").unwrap();
        assert_eq!(
            format!("{sealer:?}"),
            "Sealer { next_message: Some(1), .. }"
        );
        assert_eq!(
            format!("{opener:?}"),
            "Opener { next_message: Some(0), failed: false, .. }"
        );
    }
}
