//! Technician credentials on the console: `sprijin-console credential issue`
//! makes one, and `connect --credential FILE` loads one to prove the
//! technician's name to the agent.
//!
//! This is the file-system shell around `sprijin_proto::credential`: it
//! reads the organisation's key file (the one `catalog keygen` makes) and
//! the credential file, and writes the credential file owner-only, since it
//! holds the technician's private key.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;
use sprijin_proto::catalog::{CatalogError, SigningKey};
use sprijin_proto::channel::SessionBinding;
use sprijin_proto::credential::{
    self, Credential, CredentialError, DEFAULT_VALID_DAYS, MAX_VALID_DAYS, Presentation,
};
use thiserror::Error;

/// Why a credential command failed, complete on one line.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CredentialToolError {
    #[error(
        "--valid-days must be a whole number of days from 1 to {MAX_VALID_DAYS}, not {given:?}"
    )]
    ValidDays { given: String },
    #[error("cannot issue a credential: {0}")]
    Issue(CredentialError),
    #[error(
        "{} already exists; refusing to overwrite a credential, choose another name or move the old file away",
        .path.display()
    )]
    Exists { path: PathBuf },
    #[error("could not {action} {}: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("organisation key file {}: {cause}", .path.display())]
    Key {
        path: PathBuf,
        cause: Box<CatalogError>,
    },
    #[error(
        "credential file {}: {cause}; issue a new one with `sprijin-console credential issue`",
        .path.display()
    )]
    Credential {
        path: PathBuf,
        cause: CredentialError,
    },
    #[error("this computer's clock is before 1970; set the clock and try again")]
    Clock,
}

/// A credential and the technician's private key, read from a file.
#[derive(Clone)]
pub struct HeldCredential {
    pub credential: Credential,
    secret: SigningKey,
}

impl std::fmt::Debug for HeldCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldCredential")
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl HeldCredential {
    /// The credential and the proof that we are in the session with
    /// `binding`.
    pub fn present(&self, binding: &SessionBinding) -> Presentation {
        credential::present(&self.credential, &self.secret, binding)
    }

    /// True when the private key is the one the credential names; when it
    /// is not, the agent will not verify the name.
    pub fn key_matches(&self) -> bool {
        self.credential.belongs_to(&self.secret)
    }
}

/// What `credential issue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSummary {
    pub out: PathBuf,
    pub name: String,
    pub issuer: String,
    pub valid_until: String,
}

impl std::fmt::Display for IssueSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote a credential for {} to {} (issued by key {}, valid until {}); the file holds the technician's private key: keep it private and give it only to them",
            self.name,
            self.out.display(),
            self.issuer,
            self.valid_until
        )
    }
}

/// Parses `--valid-days`: absent means the default.
pub fn valid_days(given: Option<&str>) -> Result<u64, CredentialToolError> {
    let Some(given) = given else {
        return Ok(DEFAULT_VALID_DAYS);
    };
    given
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|days| (1..=MAX_VALID_DAYS).contains(days))
        .ok_or_else(|| CredentialToolError::ValidDays {
            given: given.to_owned(),
        })
}

/// Makes a technician key pair and a credential for `name`, signed with the
/// organisation key in `key`, and writes both to `out` (owner-only; it must
/// not exist).
pub fn issue(
    key: &Path,
    name: &str,
    valid_days: u64,
    out: &Path,
    now: SystemTime,
) -> Result<IssueSummary, CredentialToolError> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CredentialToolError::Clock)?
        .as_secs();
    // Check what is cheap to check before touching any file.
    credential::check_name(name).map_err(CredentialToolError::Issue)?;
    if out.symlink_metadata().is_ok() {
        return Err(CredentialToolError::Exists {
            path: out.to_owned(),
        });
    }
    let text = read_text(key, "read organisation key file")?;
    let organisation =
        credential::parse_organisation_key(&text).map_err(|cause| CredentialToolError::Key {
            path: key.to_owned(),
            cause: Box::new(cause),
        })?;
    let secret = SigningKey::generate(&mut OsRng);
    let issued = credential::issue(
        &organisation,
        name,
        &secret.verifying_key(),
        now,
        valid_days,
    )
    .map_err(CredentialToolError::Issue)?;
    write_private(out, &credential::format_file(&issued, &secret))?;
    Ok(IssueSummary {
        out: out.to_owned(),
        name: issued.name.clone(),
        issuer: issued.issuer.clone(),
        valid_until: issued.valid_until(),
    })
}

/// Reads a credential file.
pub fn load(path: &Path) -> Result<HeldCredential, CredentialToolError> {
    let text = read_text(path, "read credential file")?;
    let (credential, secret) =
        credential::parse_file(&text).map_err(|cause| CredentialToolError::Credential {
            path: path.to_owned(),
            cause,
        })?;
    Ok(HeldCredential { credential, secret })
}

fn read_text(path: &Path, action: &'static str) -> Result<String, CredentialToolError> {
    fs::read_to_string(path).map_err(|cause| CredentialToolError::Io {
        action,
        path: path.to_owned(),
        cause,
    })
}

/// Creates `path` owner-only from the start, so the private key is never
/// readable by others, not even for a moment.
fn write_private(path: &Path, text: &str) -> Result<(), CredentialToolError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|cause| {
        if cause.kind() == io::ErrorKind::AlreadyExists {
            CredentialToolError::Exists {
                path: path.to_owned(),
            }
        } else {
            CredentialToolError::Io {
                action: "create",
                path: path.to_owned(),
                cause,
            }
        }
    })?;
    if let Err(cause) = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
    {
        let _ = fs::remove_file(path);
        return Err(CredentialToolError::Io {
            action: "write",
            path: path.to_owned(),
            cause,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::catalog::format_signing_key;

    fn organisation_key(dir: &Path) -> PathBuf {
        let path = dir.join("org.key");
        fs::write(
            &path,
            format_signing_key(&SigningKey::from_bytes(&[1u8; 32])),
        )
        .unwrap();
        path
    }

    #[test]
    fn issue_writes_an_owner_only_file_that_loads_and_matches() {
        let dir = tempfile::tempdir().unwrap();
        let key = organisation_key(dir.path());
        let out = dir.path().join("ana.cred");
        let summary = issue(&key, "Ana Pop", 30, &out, SystemTime::now()).unwrap();
        assert_eq!(summary.name, "Ana Pop");
        assert!(summary.to_string().contains("keep it private"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let held = load(&out).unwrap();
        assert!(held.key_matches());
        assert_eq!(held.credential.name, "Ana Pop");
        assert!(!format!("{held:?}").contains("secret"));
        // Never overwritten.
        assert!(matches!(
            issue(&key, "Ana Pop", 30, &out, SystemTime::now()),
            Err(CredentialToolError::Exists { .. })
        ));
    }

    #[test]
    fn valid_days_are_whole_numbers_in_range() {
        assert_eq!(valid_days(None).unwrap(), DEFAULT_VALID_DAYS);
        assert_eq!(valid_days(Some("7")).unwrap(), 7);
        for bad in ["0", "-1", "abc", "3651", "1.5", ""] {
            let err = valid_days(Some(bad)).unwrap_err().to_string();
            assert!(err.starts_with("--valid-days must be"), "{err}");
        }
    }
}
