//! The signature file, `catalog.sig`: which key signed, when, until when,
//! and the ed25519 signature itself.
//!
//! ```text
//! sprijin-catalog-signature v2
//! key ed25519:0123456789abcdef
//! signed 2026-11-25T18:07:20Z
//! expires 2027-02-23T18:07:20Z
//! signature ed25519 <128 hex digits>
//! ```
//!
//! The file travels to the agent byte for byte, and only the agent's parse
//! counts. The key id tells the agent which trusted key to check with, so a
//! signature by a key it does not trust is told apart from files changed
//! after signing. The signature covers the key id and both dates, so none
//! of them can be altered. The first version was a single line with the
//! signature alone; it is recognised and refused with the way out.

use std::time::SystemTime;

use super::dates::{format_time, parse_time};
use super::error::{CatalogError, shown};
use super::keys::{
    PUBLIC_KEY_TAG, SECRET_KEY_TAG, SIGNATURE_TAG, parse_signature, parse_verifying_key,
};

/// First line of a signature file in the current format.
pub const SIGNATURE_HEADER: &str = "sprijin-catalog-signature v2";
/// Largest signature file read; a real one is about 260 bytes.
pub const MAX_SIGNATURE_BYTES: usize = 1024;

const ALGORITHM: &str = "ed25519";
const EXPECTED: &str = "expected five lines: `sprijin-catalog-signature v2`, `key ID`, \
                        `signed TIME`, `expires TIME`, `signature ed25519 HEX`";
/// Length of an ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// A parsed signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSignature {
    /// [`key_id`](super::key_id) of the key that signed.
    pub key_id: String,
    pub signed_at: SystemTime,
    pub expires_at: SystemTime,
    pub signature: [u8; SIGNATURE_LEN],
}

impl CatalogSignature {
    /// Reads a signature file's bytes, as sent in
    /// [`SignedCatalog::signature`](super::SignedCatalog::signature).
    pub fn parse(bytes: &[u8]) -> Result<CatalogSignature, CatalogError> {
        let malformed = |reason: String| CatalogError::MalformedSignature { reason };
        if bytes.len() > MAX_SIGNATURE_BYTES {
            return Err(malformed(format!(
                "it is {} bytes, more than the limit of {MAX_SIGNATURE_BYTES}; {EXPECTED}",
                bytes.len()
            )));
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            // The first version sent the bare 64-byte signature.
            if bytes.len() == SIGNATURE_LEN {
                return Err(CatalogError::LegacySignature);
            }
            return Err(malformed(format!("it is not text; {EXPECTED}")));
        };
        if parse_signature(text).is_ok() {
            return Err(CatalogError::LegacySignature);
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(malformed(format!("it is empty; {EXPECTED}")));
        }
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        check_header(lines[0]).map_err(malformed)?;
        if lines.len() != 5 {
            return Err(malformed(format!(
                "it has {} lines; {EXPECTED}",
                lines.len()
            )));
        }
        let key_id = field(lines[1], "key").map_err(malformed)?;
        check_key_id(key_id).map_err(malformed)?;
        let signed_at = parse_time(field(lines[2], "signed").map_err(malformed)?)
            .map_err(|reason| malformed(format!("its signing time {reason}")))?;
        let expires_at = parse_time(field(lines[3], "expires").map_err(malformed)?)
            .map_err(|reason| malformed(format!("its expiry {reason}")))?;
        if expires_at <= signed_at {
            return Err(malformed(format!(
                "it expires ({}) no later than it was signed ({})",
                format_time(expires_at),
                format_time(signed_at)
            )));
        }
        let signature = parse_signature_line(lines[4]).map_err(malformed)?;
        Ok(CatalogSignature {
            key_id: key_id.to_owned(),
            signed_at,
            expires_at,
            signature,
        })
    }

    /// The text of the signature file, ending in a newline.
    pub fn to_text(&self) -> String {
        format!(
            "{}signature {ALGORITHM} {}\n",
            self.signed_fields(),
            hex::encode(self.signature)
        )
    }

    /// The lines the signature covers besides the files: the format, the
    /// key id and both dates, as they appear in the file.
    pub(crate) fn signed_fields(&self) -> String {
        format!(
            "{SIGNATURE_HEADER}\nkey {}\nsigned {}\nexpires {}\n",
            self.key_id,
            format_time(self.signed_at),
            format_time(self.expires_at)
        )
    }
}

fn check_header(line: &str) -> Result<(), String> {
    if line == SIGNATURE_HEADER {
        return Ok(());
    }
    let mut words = line.split_ascii_whitespace();
    let first = words.next().unwrap_or_default();
    Err(match first {
        SIGNATURE_TAG => format!(
            "format {} is not supported, this version reads v2; sign the catalog again \
             with this version",
            shown(words.next().unwrap_or_default())
        ),
        SECRET_KEY_TAG => format!("it is a secret key file; {EXPECTED}"),
        PUBLIC_KEY_TAG => format!("it is a public key file; {EXPECTED}"),
        // Only the first word is quoted: the rest may be key material.
        _ => format!("it starts with {}; {EXPECTED}", shown(first)),
    })
}

/// The value of a `NAME VALUE` line.
fn field<'a>(line: &'a str, name: &str) -> Result<&'a str, String> {
    line.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(' '))
        .filter(|value| !value.is_empty() && !value.contains(char::is_whitespace))
        .ok_or_else(|| {
            let found = line.split_ascii_whitespace().next().unwrap_or_default();
            format!(
                "a line `{name} VALUE` is missing where {} stands; {EXPECTED}",
                shown(found)
            )
        })
}

/// A key id is what [`key_id`](super::key_id) writes: `ed25519:` and 16
/// lower-case hex digits.
fn check_key_id(id: &str) -> Result<(), String> {
    let well_formed = id.strip_prefix("ed25519:").is_some_and(|hex| {
        hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if well_formed {
        Ok(())
    } else if parse_verifying_key(id).is_ok() {
        Err("its key line holds a whole public key instead of a key id".into())
    } else {
        Err(format!(
            "key id {} is not `ed25519:` and 16 hex digits",
            shown(id)
        ))
    }
}

fn parse_signature_line(line: &str) -> Result<[u8; SIGNATURE_LEN], String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    match words.as_slice() {
        ["signature", ALGORITHM, hex_digits] => {
            let mut bytes = [0u8; SIGNATURE_LEN];
            hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| {
                format!(
                    "the signature is {} characters and must be exactly {} hex digits",
                    hex_digits.len(),
                    SIGNATURE_LEN * 2
                )
            })?;
            Ok(bytes)
        }
        ["signature", algorithm, _] => Err(format!(
            "algorithm {} is not supported, only {ALGORITHM}",
            shown(algorithm)
        )),
        _ => Err(format!(
            "its last line is not `signature {ALGORITHM} HEX`; {EXPECTED}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::keys::format_signature;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample() -> CatalogSignature {
        CatalogSignature {
            key_id: "ed25519:0123456789abcdef".into(),
            signed_at: UNIX_EPOCH + Duration::from_secs(1_795_630_040),
            expires_at: UNIX_EPOCH + Duration::from_secs(1_803_406_040),
            signature: [0xab; 64],
        }
    }

    fn malformed(text: &str) -> String {
        match CatalogSignature::parse(text.as_bytes()) {
            Err(CatalogError::MalformedSignature { reason }) => {
                assert!(!reason.contains('\n'), "{reason}");
                reason
            }
            other => panic!("expected a malformed signature for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_file_names_format_key_dates_and_signature_and_reads_back() {
        let text = sample().to_text();
        assert_eq!(
            text,
            format!(
                "sprijin-catalog-signature v2\nkey ed25519:0123456789abcdef\n\
                 signed 2026-11-25T18:07:20Z\nexpires 2027-02-23T18:07:20Z\n\
                 signature ed25519 {}\n",
                "ab".repeat(64)
            )
        );
        assert_eq!(CatalogSignature::parse(text.as_bytes()).unwrap(), sample());
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(CatalogSignature::parse(crlf.as_bytes()).unwrap(), sample());
    }

    #[test]
    fn a_signature_of_the_first_version_is_told_apart() {
        let old = format_signature(&[0xab; 64]);
        for bytes in [old.as_bytes(), old.trim_end().as_bytes(), &[0xab; 64][..]] {
            let err = CatalogSignature::parse(bytes).unwrap_err();
            assert_eq!(err, CatalogError::LegacySignature);
            let message = err.to_string();
            assert!(
                message.contains("older version")
                    && message.contains("sign the catalog again with this version"),
                "{message}"
            );
        }
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let good = sample().to_text();
        let reason = malformed(&good.replace("v2", "v3"));
        assert!(
            reason.contains("format \"v3\" is not supported"),
            "{reason}"
        );
        let reason = malformed(&good.replace("key ed25519:", "kee ed25519:"));
        assert!(reason.contains("a line `key VALUE` is missing"), "{reason}");
        let reason = malformed(&good.replace("0123456789abcdef", "0123"));
        assert!(reason.contains("key id \"ed25519:0123\""), "{reason}");
        let reason = malformed(&good.replace("2026-11-25T18:07:20Z", "yesterday"));
        assert!(reason.contains("signing time \"yesterday\""), "{reason}");
        let reason = malformed(&good.replace("2027-02-23T18:07:20Z", "2026-11-25T18:07:20Z"));
        assert!(reason.contains("no later than it was signed"), "{reason}");
        let reason = malformed(&good.replace("abab\n", "ab\n"));
        assert!(reason.contains("exactly 128 hex digits"), "{reason}");
        let reason = malformed(&good.replace("signature ed25519", "signature rsa"));
        assert!(reason.contains("algorithm \"rsa\""), "{reason}");
        let reason = malformed(&format!("{good}extra\n"));
        assert!(reason.contains("it has 6 lines"), "{reason}");
        let reason = malformed("sprijin-catalog-key ed25519 00");
        assert!(reason.contains("it is a public key file"), "{reason}");
        let reason = malformed("");
        assert!(reason.contains("it is empty"), "{reason}");
        let reason = malformed(&"x".repeat(MAX_SIGNATURE_BYTES + 1));
        assert!(reason.contains("more than the limit"), "{reason}");
        assert!(matches!(
            CatalogSignature::parse(&[0xff; 10]),
            Err(CatalogError::MalformedSignature { .. })
        ));
    }

    #[test]
    fn no_input_makes_parsing_panic() {
        let text = sample().to_text();
        for (i, _) in text.char_indices() {
            let _ = CatalogSignature::parse(&text.as_bytes()[..i]);
            for odd in ["\n", " ", "é", "\u{0}"] {
                let mut mutated = text.clone();
                mutated.replace_range(i..i + 1, odd);
                let _ = CatalogSignature::parse(mutated.as_bytes());
            }
        }
    }
}
