//! Signing a set of catalog files and checking that signature.
//!
//! The signature covers the signature file's own fields (format, key id,
//! signing time, expiry), then a canonical manifest of the files: a header
//! line naming the format, then `SHA256-HEX  NAME` per file, sorted by name.
//! So a changed, added, removed or renamed file, or an edited date, all break
//! the signature, and the order files were read in does not matter. The
//! current time is an argument, so expiry is checked with any clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::dates::{format_time, parse_time};
use super::error::CatalogError;
use super::keys::key_id;
use super::script::{Script, ScriptId};
use super::signature::CatalogSignature;
use super::{Catalog, CatalogFile, SignedCatalog};

/// First line of every manifest; names the manifest format.
pub const MANIFEST_HEADER: &str = "sprijin-catalog-manifest v1";
/// Most files one catalog may hold.
pub const MAX_FILES: usize = 256;
/// Largest catalog file, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

const MAX_FILE_NAME_LEN: usize = 128;

/// The canonical list of the files, which names this exact set of files
/// (its SHA-256 is [`Catalog::digest`]).
pub fn manifest(files: &[CatalogFile]) -> Vec<u8> {
    let mut sorted: Vec<&CatalogFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = format!("{MANIFEST_HEADER}\n");
    for file in sorted {
        let digest = Sha256::digest(file.contents.as_bytes());
        out.push_str(&format!("{}  {}\n", hex::encode(digest), file.name));
    }
    out.into_bytes()
}

/// The bytes a signature covers: its own fields, then the manifest.
fn signed_message(signature: &CatalogSignature, files: &[CatalogFile]) -> Vec<u8> {
    let mut message = signature.signed_fields().into_bytes();
    message.extend_from_slice(&manifest(files));
    message
}

/// Signs the files, valid from `signed_at` until `expires_at`, and returns
/// the signature file's bytes; they go in [`SignedCatalog::signature`] and in
/// `catalog.sig`. Both times are kept to the second.
///
/// This does not check the files: call [`parse_scripts`] first, so a broken
/// catalog is never signed.
pub fn sign(
    files: &[CatalogFile],
    key: &SigningKey,
    signed_at: SystemTime,
    expires_at: SystemTime,
) -> Result<Vec<u8>, CatalogError> {
    let to_second = |at: SystemTime| {
        let text = format_time(at);
        parse_time(&text).map_err(|reason| CatalogError::InvalidExpiry {
            input: text,
            reason,
        })
    };
    let (signed_at, expires_at) = (to_second(signed_at)?, to_second(expires_at)?);
    if expires_at <= signed_at {
        return Err(CatalogError::ExpiryInPast {
            input: format_time(expires_at),
            expires: expires_at,
            now: signed_at,
        });
    }
    let mut signature = CatalogSignature {
        key_id: key_id(&key.verifying_key()),
        signed_at,
        expires_at,
        signature: [0; 64],
    };
    signature.signature = key.sign(&signed_message(&signature, files)).to_bytes();
    Ok(signature.to_text().into_bytes())
}

/// Checks the signature against the keys this machine trusts and its expiry
/// against `now`, then parses every file. Only a catalog that passes all of
/// them is returned.
pub fn verify(
    signed: &SignedCatalog,
    trusted: &[VerifyingKey],
    now: SystemTime,
) -> Result<Catalog, CatalogError> {
    if trusted.is_empty() {
        return Err(CatalogError::NoTrustedKeys);
    }
    if signed.signature.is_empty() {
        return Err(CatalogError::Unsigned);
    }
    let sealed = CatalogSignature::parse(&signed.signature)?;
    // The names must be plain before the manifest is built, so no name can
    // smuggle a line break into it.
    check_files(&signed.files)?;
    let named: Vec<&VerifyingKey> = trusted
        .iter()
        .filter(|key| key_id(key) == sealed.key_id)
        .collect();
    if named.is_empty() {
        return Err(CatalogError::UntrustedKey {
            key: sealed.key_id,
            trusted: trusted.iter().map(key_id).collect::<Vec<_>>().join(", "),
        });
    }
    let message = signed_message(&sealed, &signed.files);
    let signature = Signature::from_bytes(&sealed.signature);
    let signer = named
        .into_iter()
        .find(|key| key.verify_strict(&message, &signature).is_ok())
        .ok_or_else(|| CatalogError::SignatureMismatch {
            key: sealed.key_id.clone(),
        })?;
    if now >= sealed.expires_at {
        return Err(CatalogError::Expired {
            expired: sealed.expires_at,
            signed: sealed.signed_at,
            key: sealed.key_id,
        });
    }
    let scripts = parse_scripts(&signed.files)?;
    Ok(Catalog {
        scripts,
        digest: hex::encode(Sha256::digest(manifest(&signed.files))),
        signer: key_id(signer),
        signed_at: sealed.signed_at,
        expires_at: sealed.expires_at,
    })
}

/// Refuses a verified catalog signed before `newest_accepted`, the newest
/// signing time this machine accepted from the same key: an older catalog
/// may hold scripts withdrawn since, or looser parameter patterns.
pub fn check_not_superseded(
    catalog: &Catalog,
    newest_accepted: Option<SystemTime>,
) -> Result<(), CatalogError> {
    match newest_accepted {
        Some(newest) if catalog.signed_at < newest => Err(CatalogError::Superseded {
            signed: catalog.signed_at,
            newest,
            key: catalog.signer.clone(),
        }),
        _ => Ok(()),
    }
}

/// Checks the file set and parses every file into a script, refusing
/// duplicate ids. Used before signing and after verifying.
pub fn parse_scripts(files: &[CatalogFile]) -> Result<BTreeMap<ScriptId, Script>, CatalogError> {
    check_files(files)?;
    let mut scripts = BTreeMap::new();
    let mut origin: BTreeMap<ScriptId, &str> = BTreeMap::new();
    for file in files {
        let script = Script::from_toml(&file.name, &file.contents)?;
        if let Some(first) = origin.insert(script.id.clone(), &file.name) {
            return Err(CatalogError::DuplicateId {
                id: script.id.to_string(),
                first: first.to_owned(),
                second: file.name.clone(),
            });
        }
        scripts.insert(script.id.clone(), script);
    }
    Ok(scripts)
}

/// A catalog file name is a plain `NAME.toml`: letters, digits, `.`, `_` and
/// `-`, not starting with `.` or `-`, with no path separators.
pub fn check_file_name(name: &str) -> Result<(), CatalogError> {
    let refuse = |reason| {
        Err(CatalogError::InvalidFileName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.contains(['/', '\\']) {
        return refuse("it contains a path separator; give the plain file name");
    }
    let Some(stem) = name.strip_suffix(".toml") else {
        return refuse("catalog files must end in .toml");
    };
    if stem.is_empty() || name.len() > MAX_FILE_NAME_LEN {
        return refuse("it must have 1 to 123 characters before .toml");
    }
    if stem.starts_with(['.', '-']) {
        return refuse("it must not start with '.' or '-'");
    }
    if !stem
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return refuse("use only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn check_files(files: &[CatalogFile]) -> Result<(), CatalogError> {
    if files.len() > MAX_FILES {
        return Err(CatalogError::TooManyFiles {
            count: files.len(),
            limit: MAX_FILES,
        });
    }
    let mut names = BTreeSet::new();
    for file in files {
        check_file_name(&file.name)?;
        if !names.insert(file.name.as_str()) {
            return Err(CatalogError::DuplicateFileName {
                name: file.name.clone(),
            });
        }
        if file.contents.len() > MAX_FILE_BYTES {
            return Err(CatalogError::FileTooLarge {
                name: file.name.clone(),
                size: file.contents.len(),
                limit: MAX_FILE_BYTES,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::keys::format_signature;
    use std::time::{Duration, UNIX_EPOCH};

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    /// 2026-11-25T18:07:20Z, the signing time of [`signed`] catalogs.
    fn signing_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_630_040)
    }

    /// A day after signing: the clock of the agents in these tests.
    fn now() -> SystemTime {
        signing_time() + DAY
    }

    fn script_file(id: &str) -> CatalogFile {
        CatalogFile {
            name: format!("{id}.toml"),
            contents: format!(
                "id = \"{id}\"\ntitle = \"Say {id}\"\ndescription = \"Prints a word.\"\n\
                 risk = \"low\"\nplatforms = [\"linux\"]\ntimeout_secs = 5\n\
                 program = \"echo\"\nargs = [\"{id}\"]\n"
            ),
        }
    }

    fn files() -> Vec<CatalogFile> {
        vec![
            script_file("beta"),
            script_file("alpha"),
            script_file("gamma"),
        ]
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn signed_at(
        files: Vec<CatalogFile>,
        key: &SigningKey,
        signed_at: SystemTime,
        expires_at: SystemTime,
    ) -> SignedCatalog {
        let signature = sign(&files, key, signed_at, expires_at).unwrap();
        SignedCatalog { files, signature }
    }

    /// Signed at [`signing_time`] for 90 days.
    fn signed(files: Vec<CatalogFile>, key: &SigningKey) -> SignedCatalog {
        signed_at(files, key, signing_time(), signing_time() + 90 * DAY)
    }

    fn verify(catalog: &SignedCatalog, trusted: &[VerifyingKey]) -> Result<Catalog, CatalogError> {
        super::verify(catalog, trusted, now())
    }

    fn refused(catalog: &SignedCatalog, trusted: &[VerifyingKey]) -> CatalogError {
        let err = verify(catalog, trusted).unwrap_err();
        let message = err.to_string();
        assert!(!message.contains('\n'), "{message}");
        err
    }

    #[test]
    fn manifest_is_sorted_and_names_its_version() {
        let text = String::from_utf8(manifest(&files())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "sprijin-catalog-manifest v1");
        assert_eq!(lines.len(), 4);
        let alpha = hex::encode(Sha256::digest(script_file("alpha").contents.as_bytes()));
        assert_eq!(lines[1], format!("{alpha}  alpha.toml"));
        assert!(lines[2].ends_with("  beta.toml") && lines[3].ends_with("  gamma.toml"));
        assert!(text.ends_with('\n'));
        let mut reversed = files();
        reversed.reverse();
        assert_eq!(manifest(&reversed), manifest(&files()));
    }

    #[test]
    fn a_signed_catalog_verifies() {
        let catalog = signed(files(), &key(1));
        let verified = verify(&catalog, &[key(1).verifying_key()]).unwrap();
        assert_eq!(verified.len(), 3);
        assert!(verified.get("alpha").is_some());
        assert!(verified.get("Alpha").is_none());
        assert_eq!(verified.signer, key_id(&key(1).verifying_key()));
        assert_eq!(
            verified.digest,
            hex::encode(Sha256::digest(manifest(&files())))
        );
        // The digest names the files, whenever and by whom they were signed.
        let again = signed_at(files(), &key(2), now(), now() + DAY);
        let trusted = [key(2).verifying_key()];
        assert_eq!(verify(&again, &trusted).unwrap().digest, verified.digest);
    }

    #[test]
    fn any_trusted_key_may_have_signed() {
        let catalog = signed(files(), &key(2));
        let trusted = [key(1).verifying_key(), key(2).verifying_key()];
        let verified = verify(&catalog, &trusted).unwrap();
        assert_eq!(verified.signer, key_id(&key(2).verifying_key()));
    }

    #[test]
    fn no_trusted_keys_means_nothing_runs() {
        let catalog = signed(files(), &key(1));
        let err = refused(&catalog, &[]);
        assert_eq!(err, CatalogError::NoTrustedKeys);
        assert!(err.to_string().starts_with(
            "no trusted catalog key is configured on this machine, so no scripts can run"
        ));
    }

    #[test]
    fn unsigned_and_malformed_signatures_are_refused() {
        let trusted = [key(1).verifying_key()];
        let unsigned = SignedCatalog {
            files: files(),
            signature: Vec::new(),
        };
        assert_eq!(refused(&unsigned, &trusted), CatalogError::Unsigned);
        let short = SignedCatalog {
            files: files(),
            signature: vec![1; 63],
        };
        assert!(matches!(
            refused(&short, &trusted),
            CatalogError::MalformedSignature { .. }
        ));
        let garbage = SignedCatalog {
            files: files(),
            signature: b"sprijin-catalog-signature v2\nkey x\n".to_vec(),
        };
        assert!(matches!(
            refused(&garbage, &trusted),
            CatalogError::MalformedSignature { .. }
        ));
    }

    #[test]
    fn a_file_changed_after_signing_is_refused() {
        let mut catalog = signed(files(), &key(1));
        catalog.files[0].contents = catalog.files[0].contents.replace("echo", "rm");
        let err = refused(&catalog, &[key(1).verifying_key()]);
        assert!(matches!(err, CatalogError::SignatureMismatch { .. }));
        let message = err.to_string();
        assert!(
            message.contains("does not match its files: a file was changed, added, removed or renamed after signing"),
            "{message}"
        );
        assert!(
            message.contains(&key_id(&key(1).verifying_key())),
            "{message}"
        );
    }

    #[test]
    fn a_file_added_after_signing_is_refused() {
        let mut catalog = signed(files(), &key(1));
        catalog.files.push(script_file("delta"));
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::SignatureMismatch { .. }
        ));
    }

    #[test]
    fn a_file_removed_after_signing_is_refused() {
        let mut catalog = signed(files(), &key(1));
        catalog.files.pop();
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::SignatureMismatch { .. }
        ));
    }

    #[test]
    fn a_file_renamed_after_signing_is_refused() {
        let mut catalog = signed(files(), &key(1));
        catalog.files[0].name = "zeta.toml".into();
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::SignatureMismatch { .. }
        ));
    }

    #[test]
    fn a_catalog_signed_by_an_untrusted_key_is_told_apart_from_a_tampered_one() {
        let trusted = [key(1).verifying_key(), key(2).verifying_key()];
        let foreign = refused(&signed(files(), &key(9)), &trusted);
        let expected = format!(
            "the catalog is signed by key {}, which this machine does not trust (it trusts {}, {}); \
             send a catalog signed with a key this machine trusts",
            key_id(&key(9).verifying_key()),
            key_id(&key(1).verifying_key()),
            key_id(&key(2).verifying_key())
        );
        assert_eq!(foreign.to_string(), expected);

        let mut tampered = signed(files(), &key(2));
        tampered.files[1].contents.push_str("# edited\n");
        let tampered = refused(&tampered, &trusted);
        assert_eq!(
            tampered,
            CatalogError::SignatureMismatch {
                key: key_id(&key(2).verifying_key())
            }
        );
        assert!(!tampered.to_string().contains("does not trust"));
        assert!(!foreign.to_string().contains("does not match"));
    }

    #[test]
    fn a_signature_names_its_key_signing_time_and_expiry() {
        let catalog = signed_at(
            files(),
            &key(1),
            signing_time() + Duration::from_millis(700),
            signing_time() + 30 * DAY,
        );
        let text = String::from_utf8(catalog.signature.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "sprijin-catalog-signature v2");
        assert_eq!(lines[1], format!("key {}", key_id(&key(1).verifying_key())));
        assert_eq!(lines[2], "signed 2026-11-25T18:07:20Z");
        assert_eq!(lines[3], "expires 2026-12-25T18:07:20Z");
        assert!(lines[4].starts_with("signature ed25519 "));
        let verified = verify(&catalog, &[key(1).verifying_key()]).unwrap();
        assert_eq!(verified.signed_at, signing_time());
        assert_eq!(verified.expires_at, signing_time() + 30 * DAY);
        assert_eq!(verified.signer, key_id(&key(1).verifying_key()));
    }

    #[test]
    fn a_signature_expires_at_its_expiry() {
        let catalog = signed(files(), &key(1));
        let trusted = [key(1).verifying_key()];
        let expiry = signing_time() + 90 * DAY;
        let second = Duration::from_secs(1);
        assert!(super::verify(&catalog, &trusted, expiry - second).is_ok());
        for late in [expiry, expiry + 400 * DAY] {
            let err = super::verify(&catalog, &trusted, late).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the catalog expired on 2027-02-23T18:07:20Z (signed on 2026-11-25T18:07:20Z \
                     by key {}); ask the organisation for a newly signed catalog",
                    key_id(&key(1).verifying_key())
                )
            );
        }
    }

    #[test]
    fn an_edited_date_or_key_id_breaks_the_signature() {
        let catalog = signed(files(), &key(1));
        let text = String::from_utf8(catalog.signature.clone()).unwrap();
        let later = text.replace("expires 2027-02-23", "expires 2099-02-23");
        let earlier = text.replace("signed 2026-11-25", "signed 2026-11-24");
        for edited in [later, earlier] {
            assert_ne!(edited, text);
            let forged = SignedCatalog {
                files: files(),
                signature: edited.into_bytes(),
            };
            assert!(matches!(
                refused(&forged, &[key(1).verifying_key()]),
                CatalogError::SignatureMismatch { .. }
            ));
        }
        // Naming another trusted key does not make the signature its own.
        let other = key_id(&key(2).verifying_key());
        let renamed = SignedCatalog {
            files: files(),
            signature: text
                .replace(&key_id(&key(1).verifying_key()), &other)
                .into_bytes(),
        };
        assert_eq!(
            refused(&renamed, &[key(1).verifying_key(), key(2).verifying_key()]),
            CatalogError::SignatureMismatch { key: other }
        );
    }

    #[test]
    fn a_catalog_signed_the_old_way_is_refused_with_the_way_out() {
        let old_signature = key(1).sign(&manifest(&files())).to_bytes();
        for bytes in [
            format_signature(&old_signature).into_bytes(),
            old_signature.to_vec(),
        ] {
            let catalog = SignedCatalog {
                files: files(),
                signature: bytes,
            };
            let err = refused(&catalog, &[key(1).verifying_key()]);
            assert_eq!(err, CatalogError::LegacySignature);
            assert!(
                err.to_string().ends_with(
                    "sign the catalog again with this version: \
                     `sprijin-console catalog sign DIR --key FILE`"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn signing_refuses_an_expiry_not_after_the_signing_time() {
        for expires in [signing_time(), signing_time() - DAY] {
            assert!(matches!(
                sign(&files(), &key(1), signing_time(), expires),
                Err(CatalogError::ExpiryInPast { .. })
            ));
        }
    }

    #[test]
    fn an_older_catalog_than_the_newest_accepted_is_refused_with_both_dates() {
        let trusted = [key(1).verifying_key()];
        let older = verify(&signed(files(), &key(1)), &trusted).unwrap();
        let newest = signing_time() + 10 * DAY;
        assert!(check_not_superseded(&older, None).is_ok());
        assert!(check_not_superseded(&older, Some(signing_time())).is_ok());
        assert!(check_not_superseded(&older, Some(signing_time() - DAY)).is_ok());
        let err = check_not_superseded(&older, Some(newest)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the catalog was signed on 2026-11-25T18:07:20Z, before the newest catalog this \
                 machine already accepted from key {}, signed on 2026-12-05T18:07:20Z; an older \
                 catalog may hold withdrawn scripts, so send the current catalog",
                key_id(&key(1).verifying_key())
            )
        );
    }

    #[test]
    fn file_names_must_be_plain_toml_names() {
        for good in ["a.toml", "flush-dns.toml", "x_1.v2.toml"] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "../a.toml",
            "dir/a.toml",
            "dir\\a.toml",
            "/a.toml",
            "a.txt",
            ".toml",
            ".hidden.toml",
            "-a.toml",
            "a b.toml",
            "a\n.toml",
            "catalog.sig",
            "é.toml",
        ] {
            assert!(
                matches!(
                    check_file_name(bad),
                    Err(CatalogError::InvalidFileName { .. })
                ),
                "{bad}"
            );
        }
        let mut catalog = signed(files(), &key(1));
        catalog.files[0].name = "../evil.toml".into();
        let message = refused(&catalog, &[key(1).verifying_key()]).to_string();
        assert!(
            message.contains("\"../evil.toml\"") && message.contains("path separator"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_names_and_ids_are_refused() {
        let mut twice = files();
        twice.push(script_file("alpha"));
        let catalog = signed(twice, &key(1));
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::DuplicateFileName { .. }
        ));

        let mut same_id = files();
        same_id.push(CatalogFile {
            name: "alpha-copy.toml".into(),
            contents: script_file("alpha").contents,
        });
        let catalog = signed(same_id, &key(1));
        let err = refused(&catalog, &[key(1).verifying_key()]);
        assert_eq!(
            err.to_string(),
            "script id \"alpha\" is used by both \"alpha.toml\" and \"alpha-copy.toml\"; \
             give each script its own id"
        );
    }

    #[test]
    fn a_signed_but_broken_file_is_named() {
        let mut broken = files();
        broken.push(CatalogFile {
            name: "oops.toml".into(),
            contents: "id = \n".into(),
        });
        let catalog = signed(broken, &key(1));
        let err = refused(&catalog, &[key(1).verifying_key()]);
        assert!(
            matches!(err, CatalogError::Toml { ref file, .. } if file == "oops.toml"),
            "{err:?}"
        );
    }

    #[test]
    fn catalogs_are_bounded() {
        let many: Vec<CatalogFile> = (0..=MAX_FILES)
            .map(|i| script_file(&format!("s{i}")))
            .collect();
        let catalog = signed(many, &key(1));
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::TooManyFiles { .. }
        ));
        let mut big = files();
        big[0].contents.push_str(&"#".repeat(MAX_FILE_BYTES));
        let catalog = signed(big, &key(1));
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::FileTooLarge { .. }
        ));
    }

    #[test]
    fn a_signed_catalog_survives_the_wire() {
        let catalog = signed(files(), &key(1));
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&catalog, config).unwrap();
        let (back, _): (SignedCatalog, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, catalog);
        assert!(verify(&back, &[key(1).verifying_key()]).is_ok());
    }
}
