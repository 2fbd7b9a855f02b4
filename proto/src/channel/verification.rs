//! The verification words both people can read to each other to check that
//! they share one channel.
//!
//! Four words from the fixed word list, picked by forty bits of HKDF output
//! under the verification label, ten bits a word. The label is the words'
//! own, so showing them reveals nothing about the confirmation keys.

use crate::words::WORDS;

use super::kdf::VerificationSeed;

/// How many words the verification string has.
pub const VERIFICATION_WORD_COUNT: usize = 4;

/// Bits one word carries: the word list has 2^10 entries.
const BITS_PER_WORD: u32 = 10;
const WORD_MASK: u64 = (1 << BITS_PER_WORD) - 1;

// The masking below relies on the list having exactly 2^10 words.
const _: () = assert!(WORDS.len() == 1 << BITS_PER_WORD);
const _: () = assert!(VERIFICATION_WORD_COUNT as u32 * BITS_PER_WORD <= 40);

/// The four word indices, first word from the most significant bits.
pub(super) fn indices(seed: &VerificationSeed) -> [usize; VERIFICATION_WORD_COUNT] {
    let bits = seed.bits();
    let mut out = [0; VERIFICATION_WORD_COUNT];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = BITS_PER_WORD * (VERIFICATION_WORD_COUNT - 1 - i) as u32;
        // The mask keeps the index below WORDS.len(), checked above.
        *slot = ((bits >> shift) & WORD_MASK) as usize;
    }
    out
}

/// The words joined with `-`, e.g. `otter-lamp-river-maple`.
pub(super) fn words(indices: &[usize; VERIFICATION_WORD_COUNT]) -> String {
    indices
        .iter()
        .map(|&i| WORDS.get(i).copied().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::kdf::VerificationSeed;

    #[test]
    fn ten_bits_pick_each_word() {
        // 0000000001 0000000010 1111111111 0000000000
        let seed = VerificationSeed::from_bytes([0x00, 0x40, 0x2f, 0xfc, 0x00]);
        assert_eq!(indices(&seed), [1, 2, 1023, 0]);
    }

    #[test]
    fn words_come_from_the_word_list() {
        let shown = words(&[0, 1, 2, 1023]);
        let expected = [WORDS[0], WORDS[1], WORDS[2], WORDS[1023]].join("-");
        assert_eq!(shown, expected);
    }
}
