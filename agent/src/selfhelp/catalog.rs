//! Where the person's repairs come from. The organisation may install a
//! signed catalog folder on the machine (`--catalog`, or `catalog` in the
//! config file); without one, the agent keeps the last catalog a
//! technician's session brought and it accepted. Either way it is verified
//! again, against this machine's trusted keys, its expiry and the record
//! of newer catalogs, every time it is used.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sprijin_proto::catalog::{Catalog, FolderError, SignedCatalog, load_folder};

use super::SelfHelp;
use crate::config::AgentConfig;
use crate::script::catalog_memory::{self, CatalogRefusal};

/// Name of the kept catalog inside the agent's data dir.
pub const KEPT_FILE: &str = "catalog-kept.json";

/// The largest kept catalog read: a catalog's files and signature with room.
const MAX_KEPT_BYTES: u64 = 16 * 1024 * 1024;

/// Said when no catalog is installed and no session brought one yet.
pub const NONE_KEPT: &str = "no repair catalog is on this machine yet: the organisation installs \
     one, or a technician's session brings it";

/// Why the catalog cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogSourceError {
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error("cannot read the kept catalog {}: {reason}", .path.display())]
    Kept { path: PathBuf, reason: String },
    #[error("no trusted catalog key is configured (--trusted-key), so no repair can run")]
    NoTrustedKey,
    #[error("the repair catalog is refused: {0}")]
    Refused(#[from] CatalogRefusal),
}

/// Where the last accepted catalog is kept.
pub fn kept_path(config: &AgentConfig) -> PathBuf {
    config.data_dir.join(KEPT_FILE)
}

/// Keeps `signed`, just accepted in a session, for the person's own
/// repairs, replacing the one kept before.
pub fn keep(signed: &SignedCatalog, path: &Path) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(signed).map_err(io::Error::other)?;
    bytes.push(b'\n');
    crate::folder::replace(path, &bytes)
}

/// The catalog the person's repairs come from, verified now; `None` when
/// there is none.
pub fn load(help: &SelfHelp) -> Result<Option<Catalog>, CatalogSourceError> {
    let signed = match &help.catalog {
        Some(dir) => load_folder(dir)?,
        None => match read_kept(&kept_path(&help.config))? {
            Some(signed) => signed,
            None => return Ok(None),
        },
    };
    if help.config.trusted_keys.is_empty() {
        return Err(CatalogSourceError::NoTrustedKey);
    }
    Ok(Some(catalog_memory::accept(
        &signed,
        &help.config.trusted_keys,
        &help.config.catalog_memory_path(),
        SystemTime::now(),
    )?))
}

fn read_kept(path: &Path) -> Result<Option<SignedCatalog>, CatalogSourceError> {
    let unreadable = |reason: String| CatalogSourceError::Kept {
        path: path.to_owned(),
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let size = file
        .metadata()
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if size > MAX_KEPT_BYTES {
        return Err(unreadable(format!(
            "it is {size} bytes, more than the limit of {MAX_KEPT_BYTES}"
        )));
    }
    serde_json::from_reader(io::BufReader::new(file))
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}
