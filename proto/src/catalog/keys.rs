//! The text forms of catalog keys and signatures.
//!
//! Each is one line, `TAG ed25519 HEX`, so a person can tell the files apart
//! at a glance and a wrong file gets a precise error. The algorithm word
//! leaves room for another algorithm later without guessing from lengths.
//! Errors never quote a key file's contents: it may be the secret key.

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::error::{CatalogError, shown};

/// First word of a secret (signing) key file.
pub const SECRET_KEY_TAG: &str = "sprijin-catalog-secret-key";
/// First word of a public (verifying) key file.
pub const PUBLIC_KEY_TAG: &str = "sprijin-catalog-key";
/// First word of the signature file (see `CatalogSignature` for its lines).
pub const SIGNATURE_TAG: &str = "sprijin-catalog-signature";
/// Name of the signature file inside a catalog folder.
pub const SIGNATURE_FILE: &str = "catalog.sig";

const ALGORITHM: &str = "ed25519";
const SECRET_KEY_FILE: &str = "secret key file";
const PUBLIC_KEY_FILE: &str = "public key file";

/// Reads a secret key file's text.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, CatalogError> {
    let bytes =
        parse_line::<32>(text, SECRET_KEY_TAG).map_err(|reason| CatalogError::MalformedKey {
            what: SECRET_KEY_FILE,
            reason,
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// The text of a secret key file, ending in a newline.
pub fn format_signing_key(key: &SigningKey) -> String {
    format!(
        "{SECRET_KEY_TAG} {ALGORITHM} {}\n",
        hex::encode(key.to_bytes())
    )
}

/// Reads a public key file's text.
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, CatalogError> {
    let malformed = |reason| CatalogError::MalformedKey {
        what: PUBLIC_KEY_FILE,
        reason,
    };
    let bytes = parse_line::<32>(text, PUBLIC_KEY_TAG).map_err(malformed)?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| malformed("the 32 bytes are not a valid ed25519 public key".into()))
}

/// The text of a public key file, ending in a newline.
pub fn format_verifying_key(key: &VerifyingKey) -> String {
    format!(
        "{PUBLIC_KEY_TAG} {ALGORITHM} {}\n",
        hex::encode(key.as_bytes())
    )
}

/// Reads a one-line signature, `sprijin-catalog-signature ed25519 HEX`, into
/// the raw 64-byte signature. This was the whole signature file of the first
/// catalog format, which had no dates; it is read only to recognise such a
/// file and say how to sign it again.
pub fn parse_signature(text: &str) -> Result<Vec<u8>, CatalogError> {
    parse_line::<64>(text, SIGNATURE_TAG)
        .map(Vec::from)
        .map_err(|reason| CatalogError::MalformedSignature { reason })
}

/// The one-line form [`parse_signature`] reads, ending in a newline.
pub fn format_signature(signature: &[u8]) -> String {
    format!("{SIGNATURE_TAG} {ALGORITHM} {}\n", hex::encode(signature))
}

/// A short id for a public key, shown to people to say which key signed:
/// `ed25519:` and the first 8 bytes of the SHA-256 of the key, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("{ALGORITHM}:{}", hex::encode(&digest[..8]))
}

/// Parses `TAG ed25519 HEX` where HEX is `N` bytes. The reason on failure
/// completes "the … is malformed: ".
fn parse_line<const N: usize>(text: &str, tag: &str) -> Result<[u8; N], String> {
    let line = text.trim();
    let expected = format!(
        "expected one line `{tag} {ALGORITHM} <{} hex digits>`",
        N * 2
    );
    if line.is_empty() {
        return Err(format!("it is empty; {expected}"));
    }
    if line.contains('\n') {
        return Err(format!("it has more than one line; {expected}"));
    }
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let first = words.first().copied().unwrap_or_default();
    if first != tag {
        let found = match first {
            SECRET_KEY_TAG => "it is a secret key file".to_owned(),
            PUBLIC_KEY_TAG => "it is a public key file".to_owned(),
            SIGNATURE_TAG => "it is a catalog signature file".to_owned(),
            // Only the first word is quoted: later words may be key material.
            _ => format!("it starts with {}", shown(first)),
        };
        return Err(format!("{found}; {expected}"));
    }
    if words.len() != 3 {
        return Err(format!("it has {} words; {expected}", words.len()));
    }
    if words[1] != ALGORITHM {
        return Err(format!(
            "algorithm {} is not supported, only {ALGORITHM}; {expected}",
            shown(words[1])
        ));
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(words[2], &mut bytes).map_err(|_| {
        format!(
            "the last word is {} characters and must be exactly {} hex digits; {expected}",
            words[2].len(),
            N * 2
        )
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn malformed(err: CatalogError) -> String {
        let message = err.to_string();
        assert!(!message.contains('\n'), "{message}");
        match err {
            CatalogError::MalformedKey { reason, .. }
            | CatalogError::MalformedSignature { reason } => {
                assert!(message.contains(&reason));
                message
            }
            other => panic!("expected a malformed key or signature, got {other:?}"),
        }
    }

    #[test]
    fn keys_and_signatures_round_trip() {
        let secret = format_signing_key(&key());
        assert!(secret.starts_with("sprijin-catalog-secret-key ed25519 "));
        assert!(secret.ends_with('\n'));
        assert_eq!(
            parse_signing_key(&secret).unwrap().to_bytes(),
            key().to_bytes()
        );

        let public = format_verifying_key(&key().verifying_key());
        assert!(public.starts_with("sprijin-catalog-key ed25519 "));
        assert_eq!(parse_verifying_key(&public).unwrap(), key().verifying_key());

        let signature = vec![0xab; 64];
        let text = format_signature(&signature);
        assert_eq!(
            text,
            format!("sprijin-catalog-signature ed25519 {}\n", "ab".repeat(64))
        );
        assert_eq!(parse_signature(&text).unwrap(), signature);
        // Files edited on other systems may gain a CRLF or lose the newline.
        assert_eq!(parse_signature(text.trim_end()).unwrap(), signature);
        assert_eq!(
            parse_signature(&text.replace('\n', "\r\n")).unwrap(),
            signature
        );
    }

    #[test]
    fn swapped_key_files_are_named_without_leaking_the_secret() {
        let secret = format_signing_key(&key());
        let secret_hex = hex::encode(key().to_bytes());
        let message = malformed(parse_verifying_key(&secret).unwrap_err());
        assert!(
            message.contains("public key file is malformed: it is a secret key file"),
            "{message}"
        );
        assert!(!message.contains(&secret_hex));

        let public = format_verifying_key(&key().verifying_key());
        let message = malformed(parse_signing_key(&public).unwrap_err());
        assert!(
            message.contains("secret key file is malformed: it is a public key file"),
            "{message}"
        );

        let message = malformed(parse_signing_key(&format!("garbage {secret_hex}")).unwrap_err());
        assert!(!message.contains(&secret_hex), "{message}");

        let message = malformed(parse_signature(&public).unwrap_err());
        assert!(message.contains("it is a public key file"), "{message}");
    }

    #[test]
    fn malformed_key_files_get_a_clear_reason() {
        let hex64 = "00".repeat(32);
        let cases = [
            (String::new(), "it is empty"),
            ("\n\n".to_string(), "it is empty"),
            (
                format!("sprijin-catalog-secret-key ed25519 {hex64}\nmore"),
                "more than one line",
            ),
            (
                format!("sprijin-catalog-secret-key ed25519 {hex64} extra"),
                "it has 4 words",
            ),
            (
                format!("sprijin-catalog-secret-key rsa {hex64}"),
                "algorithm \"rsa\" is not supported",
            ),
            (
                "sprijin-catalog-secret-key ed25519 abcd".to_string(),
                "must be exactly 64 hex digits",
            ),
            (
                format!("sprijin-catalog-secret-key ed25519 {}zz", "00".repeat(31)),
                "must be exactly 64 hex digits",
            ),
            (
                "sprijin-catalog-secret-key ed25519 é".to_string(),
                "must be exactly 64 hex digits",
            ),
        ];
        for (text, expected) in cases {
            let message = malformed(parse_signing_key(&text).unwrap_err());
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(
                message.contains("sprijin-console catalog keygen"),
                "{message}"
            );
        }
        let message =
            malformed(parse_signature("sprijin-catalog-signature ed25519 00").unwrap_err());
        assert!(message.contains("128 hex digits"), "{message}");
    }

    #[test]
    fn a_public_key_that_is_not_a_curve_point_is_refused() {
        // About half of all 32-byte strings do not decode to a point.
        let not_a_point = (0u8..=255)
            .map(|i| [i; 32])
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some byte pattern is not a point");
        let text = format!("sprijin-catalog-key ed25519 {}", hex::encode(not_a_point));
        let message = malformed(parse_verifying_key(&text).unwrap_err());
        assert!(
            message.contains("not a valid ed25519 public key"),
            "{message}"
        );
    }

    #[test]
    fn key_ids_are_short_and_stable() {
        let id = key_id(&key().verifying_key());
        assert!(id.starts_with("ed25519:"));
        assert_eq!(id.len(), "ed25519:".len() + 16);
        assert_eq!(id, key_id(&key().verifying_key()));
        assert_ne!(
            id,
            key_id(&SigningKey::from_bytes(&[8u8; 32]).verifying_key())
        );
    }
}
