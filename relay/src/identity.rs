//! The relay's TLS identity: a self-signed certificate made on first start and
//! kept in the data dir (so its fingerprint stays the same across restarts),
//! or PEM files the operator provides.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sprijin_proto::tls::Fingerprint;

use crate::config::IdentitySource;

const CERT_FILE: &str = "relay-cert.pem";
const KEY_FILE: &str = "relay-key.pem";

pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }

    pub fn load(source: &IdentitySource) -> Result<Identity, IdentityError> {
        match source {
            IdentitySource::DataDir(dir) => load_or_create(dir),
            IdentitySource::Files { cert, key } => load_pem(cert, key),
        }
    }
}

/// Loads the identity from `dir`, creating the folder and a new self-signed
/// certificate when there is none yet.
pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if cert_path.exists() || key_path.exists() {
        return load_pem(&cert_path, &key_path);
    }
    fs::create_dir_all(dir).map_err(|e| IdentityError::io(dir, e))?;
    let generated = rcgen::generate_simple_self_signed(vec![
        "sprijin-relay".to_string(),
        "localhost".to_string(),
    ])
    .map_err(|e| IdentityError::Generate(e.to_string()))?;
    write_private(&key_path, generated.key_pair.serialize_pem().as_bytes())?;
    fs::write(&cert_path, generated.cert.pem()).map_err(|e| IdentityError::io(&cert_path, e))?;
    load_pem(&cert_path, &key_path)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| IdentityError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| IdentityError::io(path, e))
}

fn load_pem(cert_path: &Path, key_path: &Path) -> Result<Identity, IdentityError> {
    let cert_pem = fs::read(cert_path).map_err(|e| IdentityError::io(cert_path, e))?;
    let key_pem = fs::read(key_path).map_err(|e| IdentityError::io(key_path, e))?;
    let cert = rustls_pemfile::certs(&mut &cert_pem[..])
        .next()
        .ok_or_else(|| IdentityError::Malformed(cert_path.to_path_buf(), "no certificate"))?
        .map_err(|_| IdentityError::Malformed(cert_path.to_path_buf(), "not valid PEM"))?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|_| IdentityError::Malformed(key_path.to_path_buf(), "not valid PEM"))?
        .ok_or_else(|| IdentityError::Malformed(key_path.to_path_buf(), "no private key"))?;
    Ok(Identity { cert, key })
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0}: {1}; give a PEM certificate and key, or remove both files to make a new identity"
    )]
    Malformed(PathBuf, &'static str),
    #[error("cannot generate the relay certificate: {0}")]
    Generate(String),
}

impl IdentityError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        IdentityError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap().fingerprint();
        let second = load_or_create(dir.path()).unwrap().fingerprint();
        assert_eq!(first, second);
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[test]
    fn a_corrupt_identity_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CERT_FILE), "garbage").unwrap();
        fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        let err = load_or_create(dir.path()).err().unwrap().to_string();
        assert!(err.contains("no certificate"), "{err}");
    }
}
