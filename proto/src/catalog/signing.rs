//! Signing a set of catalog files and checking that signature.
//!
//! The signature covers a canonical manifest, not the files one by one: a
//! header line naming the format, then `SHA256-HEX  NAME` per file, sorted by
//! name. So a changed, added, removed or renamed file all break the
//! signature, and the order files were read in does not matter.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::error::CatalogError;
use super::keys::key_id;
use super::script::{Script, ScriptId};
use super::{Catalog, CatalogFile, SignedCatalog};

/// First line of every manifest; names the manifest format.
pub const MANIFEST_HEADER: &str = "sprijin-catalog-manifest v1";
/// Most files one catalog may hold.
pub const MAX_FILES: usize = 256;
/// Largest catalog file, in bytes.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

const MAX_FILE_NAME_LEN: usize = 128;

/// The canonical bytes a catalog signature covers.
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

/// Signs the files' manifest; the result goes in [`SignedCatalog::signature`].
///
/// This does not check the files: call [`parse_scripts`] first, so a broken
/// catalog is never signed.
pub fn sign(files: &[CatalogFile], key: &SigningKey) -> Vec<u8> {
    key.sign(&manifest(files)).to_bytes().to_vec()
}

/// Checks the signature against the keys this machine trusts, then parses
/// every file. Only a catalog that passes both is returned.
pub fn verify(signed: &SignedCatalog, trusted: &[VerifyingKey]) -> Result<Catalog, CatalogError> {
    if trusted.is_empty() {
        return Err(CatalogError::NoTrustedKeys);
    }
    if signed.signature.is_empty() {
        return Err(CatalogError::Unsigned);
    }
    let bytes: [u8; 64] =
        signed
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| CatalogError::MalformedSignature {
                reason: format!(
                    "it is {} bytes, an ed25519 signature is 64",
                    signed.signature.len()
                ),
            })?;
    let signature = Signature::from_bytes(&bytes);
    // The names must be plain before the manifest is built, so no name can
    // smuggle a line break into it.
    check_files(&signed.files)?;
    let manifest = manifest(&signed.files);
    let signer = trusted
        .iter()
        .find(|key| key.verify_strict(&manifest, &signature).is_ok())
        .ok_or_else(|| CatalogError::SignatureMismatch {
            trusted: trusted.iter().map(key_id).collect::<Vec<_>>().join(", "),
        })?;
    let scripts = parse_scripts(&signed.files)?;
    Ok(Catalog {
        scripts,
        digest: hex::encode(Sha256::digest(&manifest)),
        signer: key_id(signer),
    })
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

    fn signed(files: Vec<CatalogFile>, key: &SigningKey) -> SignedCatalog {
        let signature = sign(&files, key);
        SignedCatalog { files, signature }
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
            signature: vec![0xff; 64],
        };
        assert!(matches!(
            refused(&garbage, &trusted),
            CatalogError::SignatureMismatch { .. }
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
            message.contains("changed, added or removed after signing"),
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
    fn a_catalog_signed_by_another_key_is_refused() {
        let catalog = signed(files(), &key(9));
        assert!(matches!(
            refused(&catalog, &[key(1).verifying_key()]),
            CatalogError::SignatureMismatch { .. }
        ));
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
