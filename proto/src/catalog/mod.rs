//! The signed script catalog: the only things a technician can run on the
//! person's machine.
//!
//! Data flows one way. The organisation keeps a folder of TOML files, one
//! script each, and signs it (`sprijin-console catalog sign`), which writes a
//! [`CatalogSignature`] naming the key, the signing time and the expiry, over
//! those and a [`manifest`] of every file's SHA-256. The console reads the
//! folder into a [`SignedCatalog`] and sends it to the agent. The agent calls
//! [`verify`] with the keys it trusts and the current time, then
//! [`check_not_superseded`] with the newest signing time it remembers for
//! that key; only then are the files parsed into a [`Catalog`] of
//! [`Script`]s. For each run, [`Script::bind`] checks the
//! technician's parameter values and returns the exact argument vector the
//! runner executes directly, never through a shell. The agent must take the
//! script from its verified catalog, never from the message asking to run it.
//!
//! Everything here is pure: callers read files and pass their text in, so the
//! checks are unit-tested without a disk, and nothing panics on any input.

mod dates;
mod error;
mod folder;
mod keys;
mod param;
mod script;
mod signature;
mod signing;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use dates::{DEFAULT_VALIDITY, default_expiry, format_time, parse_expiry, parse_time};
pub use error::{CatalogError, ValueProblem};
pub use folder::{FolderError, load_folder, read_folder};
pub use keys::{
    PUBLIC_KEY_TAG, SECRET_KEY_TAG, SIGNATURE_FILE, SIGNATURE_TAG, format_signature,
    format_signing_key, format_verifying_key, key_id, parse_signature, parse_signing_key,
    parse_verifying_key,
};
pub use param::{MAX_CHOICES, MAX_VALUE_LEN, ParamSource, ParamSpec, ParamValue, parse_assignment};
pub use script::{
    MAX_ARG_LEN, MAX_ARGS, MAX_PARAMS, MAX_TIMEOUT_SECS, Platform, Risk, Script, ScriptId,
    display_command,
};
pub use signature::{CatalogSignature, MAX_SIGNATURE_BYTES, SIGNATURE_HEADER};
pub use signing::{
    MANIFEST_HEADER, MAX_FILE_BYTES, MAX_FILES, check_file_name, check_not_superseded, manifest,
    parse_scripts, sign, verify,
};

// The key types callers need to hold keys, re-exported so every crate names
// the same version of them.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// One file of a catalog folder, as read from disk by the caller.
///
/// `name` is the plain file name (`flush-dns.toml`), never a path.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CatalogFile {
    pub name: String,
    pub contents: String,
}

/// A catalog as it travels from the console to the agent: the files and the
/// bytes of their signature file ([`CatalogSignature`], `catalog.sig`), which
/// only the agent's [`verify`] interprets. An empty signature means the
/// folder was never signed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SignedCatalog {
    pub files: Vec<CatalogFile>,
    pub signature: Vec<u8>,
}

/// A catalog whose signature checked out against a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub scripts: BTreeMap<ScriptId, Script>,
    /// SHA-256 hex of the manifest: names this exact set of files in records.
    pub digest: String,
    /// [`key_id`] of the trusted key the signature verified with.
    pub signer: String,
    /// When the organisation signed it, to the second.
    pub signed_at: SystemTime,
    /// When the signature stops being accepted.
    pub expires_at: SystemTime,
}

impl Catalog {
    /// Looks a script up by the id a technician typed.
    pub fn get(&self, id: &str) -> Option<&Script> {
        let id = id.parse::<ScriptId>().ok()?;
        self.scripts.get(&id)
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}
