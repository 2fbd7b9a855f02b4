//! The organisation's side of the catalog: `sprijin-console catalog keygen`,
//! `sign` and `verify`, and [`load`], which reads a catalog folder to send to
//! an agent.
//!
//! This is the file-system shell around `sprijin_proto::catalog`: it reads
//! the `*.toml` files and key files, hands their text to the pure checks
//! there, and writes keys and `catalog.sig`. Keys are written so a failure
//! never leaves half a key pair or a readable secret key behind.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::rngs::OsRng;
use sprijin_proto::catalog::{
    self, CatalogError, FolderError, SIGNATURE_FILE, SignedCatalog, SigningKey, VerifyingKey,
    format_time,
};
use thiserror::Error;

/// Hex digits of the catalog digest shown in summaries; the full digest is
/// in the summary's field.
const SHOWN_DIGEST_CHARS: usize = 12;

/// Why a catalog command failed. Each message is complete on its own line,
/// causes included, so callers print it as it is.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CatalogToolError {
    #[error(
        "{} already exists; refusing to overwrite a key file, choose another name or move the old file away",
        .path.display()
    )]
    KeyExists { path: PathBuf },
    #[error("could not {action} {}: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("{} is not UTF-8 text; save it as UTF-8", .path.display())]
    NotText { path: PathBuf },
    #[error("key file {}: {cause}", .path.display())]
    Key {
        path: PathBuf,
        cause: Box<CatalogError>,
    },
    #[error(
        "catalog {} has no *.toml scripts; check the folder name",
        .dir.display()
    )]
    Empty { dir: PathBuf },
    #[error("catalog {} is refused: {cause}", .dir.display())]
    Catalog {
        dir: PathBuf,
        cause: Box<CatalogError>,
    },
    #[error("--expires: {cause}")]
    Expiry { cause: Box<CatalogError> },
    #[error(transparent)]
    Folder(#[from] FolderError),
}

/// The result of `catalog sign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignSummary {
    pub dir: PathBuf,
    pub signature_file: PathBuf,
    pub scripts: usize,
    /// SHA-256 hex of the signed manifest.
    pub digest: String,
    /// Id of the key that signed.
    pub signer: String,
    pub signed_at: SystemTime,
    pub expires_at: SystemTime,
}

impl fmt::Display for SignSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "signed {} in {} with key {} on {}, expires {} (digest {})",
            count(self.scripts),
            self.dir.display(),
            self.signer,
            format_time(self.signed_at),
            format_time(self.expires_at),
            short(&self.digest)
        )
    }
}

/// The result of `catalog verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    pub dir: PathBuf,
    pub scripts: usize,
    /// SHA-256 hex of the verified manifest.
    pub digest: String,
    /// Id of the key the signature verified with.
    pub signer: String,
    pub signed_at: SystemTime,
    pub expires_at: SystemTime,
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "catalog {} verifies: {} signed by key {} on {}, expires {} (digest {})",
            self.dir.display(),
            count(self.scripts),
            self.signer,
            format_time(self.signed_at),
            format_time(self.expires_at),
            short(&self.digest)
        )
    }
}

fn count(scripts: usize) -> String {
    match scripts {
        1 => "1 script".to_owned(),
        n => format!("{n} scripts"),
    }
}

fn short(digest: &str) -> String {
    match digest.get(..SHOWN_DIGEST_CHARS) {
        Some(head) if digest.len() > SHOWN_DIGEST_CHARS => format!("{head}…"),
        _ => digest.to_owned(),
    }
}

/// Creates a new catalog signing key: the secret key at `out`, readable by
/// the owner only, and the public key at `out` + `.pub`, which is returned.
/// Refuses to overwrite either file.
pub fn keygen(out: &Path) -> Result<PathBuf, CatalogToolError> {
    let public = public_key_path(out);
    for path in [out, public.as_path()] {
        // symlink_metadata so a dangling link counts as existing too.
        if path.symlink_metadata().is_ok() {
            return Err(CatalogToolError::KeyExists {
                path: path.to_owned(),
            });
        }
    }
    let key = SigningKey::generate(&mut OsRng);
    write_new(out, &catalog::format_signing_key(&key), 0o600)?;
    if let Err(err) = write_new(
        &public,
        &catalog::format_verifying_key(&key.verifying_key()),
        0o644,
    ) {
        // Half a key pair is worse than none: the next run would refuse to
        // overwrite the secret key.
        let _ = fs::remove_file(out);
        return Err(err);
    }
    Ok(public)
}

/// `OUT.pub`: the suffix is appended, so `team.key` gives `team.key.pub`.
pub fn public_key_path(out: &Path) -> PathBuf {
    let mut name = OsString::from(out.as_os_str());
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path` (it must not exist) with `mode` from the start, so the
/// secret key is never readable by others, not even for a moment.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CatalogToolError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|cause| {
        if cause.kind() == io::ErrorKind::AlreadyExists {
            CatalogToolError::KeyExists {
                path: path.to_owned(),
            }
        } else {
            io_error("create", path, cause)
        }
    })?;
    if let Err(cause) = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
    {
        let _ = fs::remove_file(path);
        return Err(io_error("write", path, cause));
    }
    Ok(())
}

/// Signs every `*.toml` script in `dir` with the secret key in `key`, valid
/// from `now` until `expires` (`YYYY-MM-DD` or an RFC 3339 time; by default
/// [`catalog::DEFAULT_VALIDITY`] on), and writes `dir/catalog.sig`. Refuses a
/// catalog with any broken script, and an expiry that is not in the future.
pub fn sign(
    dir: &Path,
    key: &Path,
    expires: Option<&str>,
    now: SystemTime,
) -> Result<SignSummary, CatalogToolError> {
    let expires_at = match expires {
        Some(text) => {
            catalog::parse_expiry(text, now).map_err(|cause| CatalogToolError::Expiry {
                cause: Box::new(cause),
            })?
        }
        None => catalog::default_expiry(now),
    };
    let signing_key =
        catalog::parse_signing_key(&read_text(key, "read key file")?).map_err(key_error(key))?;
    let files = read_scripts(dir)?;
    if files.is_empty() {
        return Err(CatalogToolError::Empty {
            dir: dir.to_owned(),
        });
    }
    catalog::parse_scripts(&files).map_err(refused(dir))?;
    let signature = catalog::sign(&files, &signing_key, now, expires_at).map_err(|cause| {
        CatalogToolError::Expiry {
            cause: Box::new(cause),
        }
    })?;
    // Verify what was just signed the way an agent will, so a signature that
    // would be refused is never written.
    let signed = SignedCatalog { files, signature };
    let verified =
        catalog::verify(&signed, &[signing_key.verifying_key()], now).map_err(refused(dir))?;
    let signature_file = dir.join(SIGNATURE_FILE);
    write_replacing(&signature_file, &signed.signature)?;
    Ok(SignSummary {
        dir: dir.to_owned(),
        signature_file,
        scripts: verified.len(),
        digest: verified.digest,
        signer: verified.signer,
        signed_at: verified.signed_at,
        expires_at: verified.expires_at,
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half
/// a signature.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), CatalogToolError> {
    let mut temporary = OsString::from(path.as_os_str());
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()));
    if let Err(cause) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error("write", &temporary, cause));
    }
    fs::rename(&temporary, path).map_err(|cause| {
        let _ = fs::remove_file(&temporary);
        io_error("replace", path, cause)
    })
}

/// Checks the catalog in `dir` against the public key in `pubkey` at time
/// `now`, as an agent that trusts only that key would.
pub fn verify(
    dir: &Path,
    pubkey: &Path,
    now: SystemTime,
) -> Result<VerifySummary, CatalogToolError> {
    let key = read_public_key(pubkey)?;
    let signed = load(dir)?;
    let verified = catalog::verify(&signed, &[key], now).map_err(refused(dir))?;
    Ok(VerifySummary {
        dir: dir.to_owned(),
        scripts: verified.len(),
        digest: verified.digest,
        signer: verified.signer,
        signed_at: verified.signed_at,
        expires_at: verified.expires_at,
    })
}

/// Reads a public key file (`sprijin-catalog-key ed25519 HEX`).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, CatalogToolError> {
    catalog::parse_verifying_key(&read_text(path, "read key file")?).map_err(key_error(path))
}

/// Reads a catalog folder and its signature, ready to send to an agent.
pub use sprijin_proto::catalog::{load_folder as load, read_folder as read_scripts};

fn read_text(path: &Path, action: &'static str) -> Result<String, CatalogToolError> {
    fs::read_to_string(path).map_err(|cause| {
        if cause.kind() == io::ErrorKind::InvalidData {
            CatalogToolError::NotText {
                path: path.to_owned(),
            }
        } else {
            io_error(action, path, cause)
        }
    })
}

fn key_error(path: &Path) -> impl Fn(CatalogError) -> CatalogToolError + '_ {
    move |cause| CatalogToolError::Key {
        path: path.to_owned(),
        cause: Box::new(cause),
    }
}

fn refused(dir: &Path) -> impl Fn(CatalogError) -> CatalogToolError + '_ {
    move |cause| CatalogToolError::Catalog {
        dir: dir.to_owned(),
        cause: Box::new(cause),
    }
}

fn io_error(action: &'static str, path: &Path, cause: io::Error) -> CatalogToolError {
    CatalogToolError::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn sign_now(dir: &Path, key: &Path) -> Result<SignSummary, CatalogToolError> {
        sign(dir, key, None, SystemTime::now())
    }

    fn verify_now(dir: &Path, public: &Path) -> Result<VerifySummary, CatalogToolError> {
        verify(dir, public, SystemTime::now())
    }

    const ECHO: &str = r#"
id = "echo-test"
title = "Echo a word back"
description = "Prints a word."
risk = "low"
platforms = ["linux"]
timeout_secs = 10
program = "echo"
args = ["sprijin", "{word}"]

[params.word]
pattern = '^[a-z]{1,16}$'
"#;

    struct Fixture {
        _root: tempfile::TempDir,
        dir: PathBuf,
        key: PathBuf,
        public: PathBuf,
    }

    fn fixture() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("catalog");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("echo-test.toml"), ECHO).unwrap();
        fs::write(
            dir.join("disk-usage.toml"),
            ECHO.replace("echo-test", "disk-usage")
                .replace("\"sprijin\", \"{word}\"", "\"-h\"")
                .replace("[params.word]\npattern = '^[a-z]{1,16}$'\n", "")
                .replace("\"echo\"", "\"df\""),
        )
        .unwrap();
        let key = root.path().join("team.key");
        let public = keygen(&key).unwrap();
        Fixture {
            _root: root,
            dir,
            key,
            public,
        }
    }

    #[test]
    fn keygen_writes_a_private_secret_key_and_a_public_key() {
        let f = fixture();
        assert_eq!(f.public, f.key.with_file_name("team.key.pub"));
        let secret = catalog::parse_signing_key(&fs::read_to_string(&f.key).unwrap()).unwrap();
        let public = read_public_key(&f.public).unwrap();
        assert_eq!(secret.verifying_key(), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&f.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn keygen_refuses_to_overwrite_either_file() {
        let f = fixture();
        let before = fs::read(&f.key).unwrap();
        let err = keygen(&f.key).unwrap_err();
        assert!(matches!(err, CatalogToolError::KeyExists { .. }));
        assert!(err.to_string().contains("refusing to overwrite"));
        assert_eq!(fs::read(&f.key).unwrap(), before);

        let other = f.key.with_file_name("other.key");
        fs::write(public_key_path(&other), "keep me").unwrap();
        assert!(matches!(
            keygen(&other),
            Err(CatalogToolError::KeyExists { .. })
        ));
        assert!(!other.exists(), "no secret key without its public key");
    }

    #[test]
    fn sign_then_verify_and_load() {
        let f = fixture();
        let signed = sign_now(&f.dir, &f.key).unwrap();
        assert_eq!(signed.scripts, 2);
        assert!(f.dir.join("catalog.sig").is_file());
        assert!(!f.dir.join("catalog.sig.tmp").exists());
        let line = signed.to_string();
        assert!(
            line.starts_with(&format!("signed 2 scripts in {}", f.dir.display())),
            "{line}"
        );

        let verified = verify_now(&f.dir, &f.public).unwrap();
        assert_eq!(verified.digest, signed.digest);
        assert_eq!(verified.signer, signed.signer);
        assert!(verified.to_string().contains("verifies: 2 scripts"));

        let loaded = load(&f.dir).unwrap();
        let names: Vec<&str> = loaded.files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(names, ["disk-usage.toml", "echo-test.toml"]);
    }

    #[test]
    fn signing_again_after_an_edit_verifies_again() {
        let f = fixture();
        sign_now(&f.dir, &f.key).unwrap();
        fs::write(
            f.dir.join("echo-test.toml"),
            ECHO.replace("a word", "one word"),
        )
        .unwrap();
        assert!(verify_now(&f.dir, &f.public).is_err());
        sign_now(&f.dir, &f.key).unwrap();
        assert!(verify_now(&f.dir, &f.public).is_ok());
    }

    #[test]
    fn an_edit_after_signing_fails_verify() {
        let f = fixture();
        sign_now(&f.dir, &f.key).unwrap();
        fs::write(f.dir.join("echo-test.toml"), ECHO.replace("echo", "rm")).unwrap();
        let message = verify_now(&f.dir, &f.public).unwrap_err().to_string();
        assert!(message.contains("does not match its files"), "{message}");
        assert!(!message.contains('\n'));
    }

    #[test]
    fn an_unsigned_catalog_says_how_to_sign_it() {
        let f = fixture();
        let err = load(&f.dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "catalog {0} is not signed: run `sprijin-console catalog sign {0} --key FILE`",
                f.dir.display()
            )
        );
    }

    #[test]
    fn sign_refuses_a_broken_script_and_names_it() {
        let f = fixture();
        fs::write(f.dir.join("broken.toml"), "id = \"broken\"\ntitle = \n").unwrap();
        let message = sign_now(&f.dir, &f.key).unwrap_err().to_string();
        assert!(
            message.contains("\"broken.toml\" is not valid TOML: line 2"),
            "{message}"
        );
        assert!(!f.dir.join("catalog.sig").exists());
    }

    #[test]
    fn sign_refuses_an_empty_folder_and_a_wrong_key_file() {
        let f = fixture();
        let empty = f.dir.with_file_name("empty");
        fs::create_dir(&empty).unwrap();
        assert!(matches!(
            sign_now(&empty, &f.key),
            Err(CatalogToolError::Empty { .. })
        ));
        let message = sign_now(&f.dir, &f.public).unwrap_err().to_string();
        assert!(message.starts_with("key file "), "{message}");
        assert!(message.contains("it is a public key file"), "{message}");
        let missing = sign_now(&f.dir, &f.dir.join("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("could not read key file "), "{missing}");
    }

    #[test]
    fn verify_with_another_key_fails() {
        let f = fixture();
        sign_now(&f.dir, &f.key).unwrap();
        let other = keygen(&f.key.with_file_name("other.key")).unwrap();
        let message = verify_now(&f.dir, &other).unwrap_err().to_string();
        assert!(
            message.contains("which this machine does not trust"),
            "{message}"
        );
    }

    #[test]
    fn hidden_and_other_files_are_not_part_of_the_catalog() {
        let f = fixture();
        fs::write(f.dir.join(".#echo-test.toml"), "junk").unwrap();
        fs::write(f.dir.join("README.md"), "notes").unwrap();
        assert_eq!(read_scripts(&f.dir).unwrap().len(), 2);
        fs::create_dir(f.dir.join("folder.toml")).unwrap();
        assert!(matches!(
            read_scripts(&f.dir),
            Err(FolderError::NotAFile { .. })
        ));
    }

    #[test]
    fn oversized_and_non_utf8_scripts_are_refused() {
        let f = fixture();
        fs::write(
            f.dir.join("big.toml"),
            vec![b'#'; catalog::MAX_FILE_BYTES + 1],
        )
        .unwrap();
        assert!(matches!(
            read_scripts(&f.dir),
            Err(FolderError::TooLarge { .. })
        ));
        fs::remove_file(f.dir.join("big.toml")).unwrap();
        fs::write(f.dir.join("latin1.toml"), b"title = \"caf\xe9\"").unwrap();
        assert!(matches!(
            read_scripts(&f.dir),
            Err(FolderError::NotText { .. })
        ));
    }

    #[test]
    fn sign_writes_the_signing_time_and_expiry_and_verify_shows_them() {
        let f = fixture();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_630_040);
        let signed = sign(&f.dir, &f.key, None, now).unwrap();
        assert_eq!(signed.signed_at, now);
        assert_eq!(signed.expires_at, now + 90 * DAY);
        let line = signed.to_string();
        assert!(
            line.contains(&format!(
                "with key {} on 2026-11-25T18:07:20Z, expires 2027-02-23T18:07:20Z",
                signed.signer
            )),
            "{line}"
        );
        let verified = verify(&f.dir, &f.public, now + DAY).unwrap();
        let line = verified.to_string();
        assert!(
            line.contains(&format!(
                "signed by key {} on 2026-11-25T18:07:20Z, expires 2027-02-23T18:07:20Z",
                signed.signer
            )),
            "{line}"
        );
        let expired = verify(&f.dir, &f.public, now + 90 * DAY).unwrap_err();
        assert!(
            expired
                .to_string()
                .contains("the catalog expired on 2027-02-23T18:07:20Z"),
            "{expired}"
        );
        let chosen = sign(&f.dir, &f.key, Some("2027-01-31"), now).unwrap();
        assert_eq!(format_time(chosen.expires_at), "2027-01-31T00:00:00Z");
    }

    #[test]
    fn sign_refuses_a_past_or_unreadable_expiry_and_keeps_the_old_signature() {
        let f = fixture();
        sign_now(&f.dir, &f.key).unwrap();
        let before = fs::read(f.dir.join("catalog.sig")).unwrap();
        for (expires, expected) in [
            (
                "2001-01-01",
                "--expires: expiry \"2001-01-01\" is in the past",
            ),
            ("next week", "--expires: expiry \"next week\" is not valid"),
        ] {
            let message = sign(&f.dir, &f.key, Some(expires), SystemTime::now())
                .unwrap_err()
                .to_string();
            assert!(message.starts_with(expected), "{message}");
        }
        assert_eq!(fs::read(f.dir.join("catalog.sig")).unwrap(), before);
    }

    #[test]
    fn a_catalog_signed_the_old_way_is_refused_when_loaded() {
        let f = fixture();
        fs::write(
            f.dir.join("catalog.sig"),
            catalog::format_signature(&[7; 64]),
        )
        .unwrap();
        let message = load(&f.dir).unwrap_err().to_string();
        assert!(
            message.contains("sign the catalog again with this version"),
            "{message}"
        );
    }

    #[test]
    fn sign_refuses_a_pattern_that_escapes_its_anchors() {
        let f = fixture();
        fs::write(
            f.dir.join("echo-test.toml"),
            ECHO.replace("'^[a-z]{1,16}$'", r"'^a)|(?:b$'"),
        )
        .unwrap();
        let message = sign_now(&f.dir, &f.key).unwrap_err().to_string();
        assert!(message.contains("does not compile on its own"), "{message}");
        assert!(!f.dir.join("catalog.sig").exists());
    }
}
