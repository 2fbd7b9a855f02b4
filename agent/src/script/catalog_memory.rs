//! What this machine remembers of the catalogs it accepted, so an older one
//! cannot be replayed: per signing key, the newest signing time accepted.
//!
//! [`accept`] is the agent's whole check of a catalog a technician sends:
//! verify the signature and its expiry (`sprijin_proto::catalog::verify`),
//! refuse a catalog signed before the newest one remembered for its key,
//! then remember this one before it is used. The memory is a small JSON file
//! in the data dir, replaced whole through a temporary file, `fsync` and
//! `rename`, then an `fsync` of the folder, so a crash leaves either the old
//! memory or the new one, never half of one. A memory that cannot be read is
//! an error, never an empty memory: forgetting would let an old catalog in.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sprijin_proto::catalog::{
    self, Catalog, CatalogError, SignedCatalog, VerifyingKey, format_time,
};

/// Name of the memory file inside the agent's data dir.
pub const MEMORY_FILE: &str = "catalog-memory.json";
/// Largest memory file read; one line per key is a few dozen bytes.
const MAX_MEMORY_BYTES: u64 = 1024 * 1024;

/// Why a catalog was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogRefusal {
    /// The catalog itself: unsigned, untrusted, tampered, expired, older
    /// than one accepted before, or broken.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(
        "cannot read this machine's record of accepted catalogs {}: {reason}; \
         restore or repair the file (removing it forgets which catalogs were superseded)",
        .path.display()
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "cannot record the accepted catalog in {}: {cause}; free space or fix the \
         permissions of that folder",
        .path.display()
    )]
    Unwritable { path: PathBuf, cause: io::Error },
}

/// The file's contents: key id → newest signing time accepted, as RFC 3339.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Memory {
    newest_signed: BTreeMap<String, String>,
}

/// Verifies `signed` against the `trusted` keys at time `now`, refuses it if
/// this machine already accepted a newer catalog from the same key, and
/// otherwise remembers its signing time in the file at `memory` before
/// returning it.
pub fn accept(
    signed: &SignedCatalog,
    trusted: &[VerifyingKey],
    memory: &Path,
    now: SystemTime,
) -> Result<Catalog, CatalogRefusal> {
    let catalog = catalog::verify(signed, trusted, now)?;
    let mut remembered = load(memory)?;
    let newest = match remembered.newest_signed.get(&catalog.signer) {
        Some(text) => Some(parse_remembered(memory, &catalog.signer, text)?),
        None => None,
    };
    catalog::check_not_superseded(&catalog, newest)?;
    if newest.is_none_or(|newest| catalog.signed_at > newest) {
        remembered
            .newest_signed
            .insert(catalog.signer.clone(), format_time(catalog.signed_at));
        store(memory, &remembered)?;
    }
    Ok(catalog)
}

/// The newest signing time remembered for each key id.
pub fn newest_accepted(memory: &Path) -> Result<BTreeMap<String, SystemTime>, CatalogRefusal> {
    load(memory)?
        .newest_signed
        .iter()
        .map(|(key, text)| Ok((key.clone(), parse_remembered(memory, key, text)?)))
        .collect()
}

fn parse_remembered(path: &Path, key: &str, text: &str) -> Result<SystemTime, CatalogRefusal> {
    catalog::parse_time(text).map_err(|reason| CatalogRefusal::Unreadable {
        path: path.to_owned(),
        reason: format!("the time remembered for key {key:?}: {reason}"),
    })
}

fn load(path: &Path) -> Result<Memory, CatalogRefusal> {
    let unreadable = |reason: String| CatalogRefusal::Unreadable {
        path: path.to_owned(),
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Memory::default()),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let size = file
        .metadata()
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if size > MAX_MEMORY_BYTES {
        return Err(unreadable(format!(
            "it is {size} bytes, more than the limit of {MAX_MEMORY_BYTES}"
        )));
    }
    serde_json::from_reader(io::BufReader::new(file)).map_err(|e| unreadable(e.to_string()))
}

fn store(path: &Path, memory: &Memory) -> Result<(), CatalogRefusal> {
    let unwritable = |cause| CatalogRefusal::Unwritable {
        path: path.to_owned(),
        cause,
    };
    let mut text = serde_json::to_vec_pretty(memory).map_err(|e| unwritable(e.into()))?;
    text.push(b'\n');
    crate::folder::replace(path, &text).map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::catalog::{CatalogFile, SigningKey, key_id};
    use std::time::{Duration, UNIX_EPOCH};

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    /// 2026-11-25T18:07:20Z.
    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_630_040)
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn catalog(key: &SigningKey, signed_at: SystemTime) -> SignedCatalog {
        let files = vec![CatalogFile {
            name: "hello.toml".into(),
            contents: "id = \"hello\"\ntitle = \"Say hello\"\ndescription = \"Prints a word.\"\n\
                       risk = \"low\"\nplatforms = [\"linux\"]\ntimeout_secs = 5\n\
                       program = \"echo\"\nargs = [\"hello\"]\n"
                .into(),
        }];
        let signature = catalog::sign(&files, key, signed_at, signed_at + 90 * DAY).unwrap();
        SignedCatalog { files, signature }
    }

    #[test]
    fn an_older_catalog_is_refused_after_a_newer_one_from_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let memory = dir.path().join("data").join(MEMORY_FILE);
        let trusted = [key(1).verifying_key(), key(2).verifying_key()];
        let now = t0() + 20 * DAY;

        accept(&catalog(&key(1), t0() + 10 * DAY), &trusted, &memory, now).unwrap();
        // The same catalog again, and a newer one, are fine.
        accept(&catalog(&key(1), t0() + 10 * DAY), &trusted, &memory, now).unwrap();
        accept(&catalog(&key(1), t0() + 11 * DAY), &trusted, &memory, now).unwrap();
        // Another key has a memory of its own.
        accept(&catalog(&key(2), t0()), &trusted, &memory, now).unwrap();

        let err = accept(&catalog(&key(1), t0()), &trusted, &memory, now).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("signed on 2026-11-25T18:07:20Z")
                && message.contains("signed on 2026-12-06T18:07:20Z")
                && message.contains(&key_id(&key(1).verifying_key())),
            "{message}"
        );
        let newest = newest_accepted(&memory).unwrap();
        assert_eq!(newest[&key_id(&key(1).verifying_key())], t0() + 11 * DAY);
        assert_eq!(newest[&key_id(&key(2).verifying_key())], t0());
        assert!(!memory.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_refused_catalog_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let memory = dir.path().join(MEMORY_FILE);
        let trusted = [key(1).verifying_key()];
        let expired = catalog(&key(1), t0());
        assert!(matches!(
            accept(&expired, &trusted, &memory, t0() + 100 * DAY),
            Err(CatalogRefusal::Catalog(CatalogError::Expired { .. }))
        ));
        let mut tampered = catalog(&key(1), t0() + DAY);
        tampered.files[0].contents.push('\n');
        assert!(accept(&tampered, &trusted, &memory, t0() + DAY).is_err());
        assert!(!memory.exists());
    }

    #[test]
    fn an_unreadable_memory_refuses_rather_than_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let memory = dir.path().join(MEMORY_FILE);
        std::fs::write(&memory, "not json").unwrap();
        let trusted = [key(1).verifying_key()];
        let err = accept(&catalog(&key(1), t0()), &trusted, &memory, t0() + DAY).unwrap_err();
        assert!(matches!(err, CatalogRefusal::Unreadable { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("cannot read this machine's record"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}
