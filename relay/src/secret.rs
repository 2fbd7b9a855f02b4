//! The relay's one secret: 32 random bytes made on first start and kept in
//! the data dir (`secret.key`, mode 0600, written durably). Every key the
//! relay needs across a restart comes from it, one per purpose: the MAC of
//! forwarding tickets (so sessions carry on through a restart), the MAC of
//! waiting tickets (so waiting agents keep their codes), and QUIC's
//! stateless-reset and connection-id keys (so an agent whose control
//! connection a restart dropped is told so at once, instead of hearing
//! nothing until its idle timeout).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use sprijin_proto::path::wire::PATH_DATAGRAM_MAX;
use sprijin_proto::waiting::WaitingKey;

/// The file in the data dir holding the secret.
pub const FILE: &str = "secret.key";

/// The relay's secret.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl Secret {
    /// Reads the secret in `data_dir`, or makes one there when there is
    /// none yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Secret, SecretError> {
        let path = &data_dir.join(FILE);
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes: [u8; 32] =
                    bytes.try_into().map_err(|b: Vec<u8>| SecretError::Length {
                        path: path.to_path_buf(),
                        len: b.len(),
                    })?;
                Ok(Secret(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
            Err(e) => Err(SecretError::io(path, e)),
        }
    }

    /// The key waiting tickets are made and checked with.
    pub fn tickets(&self) -> WaitingKey {
        WaitingKey::from_bytes(self.derive(b"sprijin waiting tickets"))
    }

    /// The key forwarding tickets are made and checked with.
    pub fn forwarding(&self) -> [u8; 32] {
        self.derive(b"sprijin forwarding tickets")
    }

    /// An endpoint configuration whose stateless-reset key survives
    /// restarts.
    /// Both keys that decide whether a packet of a connection from before
    /// a restart is answered with a stateless reset survive it: the reset
    /// key, and the key that marks connection ids as this relay's (a packet
    /// whose id does not check is dropped without an answer).
    pub fn endpoint_config(&self) -> quinn::EndpointConfig {
        let mut config =
            quinn::EndpointConfig::new(Arc::new(ResetKey(self.derive(b"sprijin stateless reset"))));
        let cid = self.derive(b"sprijin connection ids");
        let mut cid_key = [0u8; 8];
        cid_key.copy_from_slice(&cid[..8]);
        let cid_key = u64::from_le_bytes(cid_key);
        config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        // The forwarder tells its datagrams from QUIC by the fixed bit, so
        // no client may be told it can grease it.
        config.grease_quic_bit(false);
        // The forwarder drops anything longer than the path's largest
        // datagram, so no client may be told it can send more. The limit is
        // within quinn's bounds (1200..=65527), so this cannot fail.
        let _ = config.max_udp_payload_size(PATH_DATAGRAM_MAX as u16);
        config
    }

    /// A key for one purpose, so no two purposes share one.
    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = hmac_of(&self.0);
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn hmac_of(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC pads a short key with zeros to its block, so this is the HMAC
    // of the 32-byte key itself.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    Hmac::<Sha256>::new(&block.into())
}

/// Writes a fresh secret to a temporary file beside `path`, flushes it to
/// disk and renames it into place, so a crash leaves either no file or a
/// whole one. If another relay process won the race, its secret is used.
fn create(path: &Path) -> Result<Secret, SecretError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| SecretError::io(dir, e))?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SecretError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| SecretError::io(path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SecretError::io(dir, e))?;
    Ok(Secret(bytes))
}

/// QUIC's stateless-reset key, HMAC-SHA256 under a key from the secret.
struct ResetKey([u8; 32]);

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let mut mac = hmac_of(&self.0);
        mac.update(data);
        let tag = mac.finalize().into_bytes();
        let n = signature_out.len().min(tag.len());
        signature_out[..n].copy_from_slice(&tag[..n]);
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let mut mac = hmac_of(&self.0);
        mac.update(data);
        mac.verify_slice(signature)
            .map_err(|_| quinn::crypto::CryptoError)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("cannot use the relay's secret {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the relay's secret {path} holds {len} bytes, not 32: restore it from a backup, or remove it to make a new one (sessions and codes waiting now are then lost)"
    )]
    Length { path: PathBuf, len: usize },
}

impl SecretError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        SecretError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::code::Nameplate;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_secret_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let path = data.join(FILE);
        let first = Secret::load_or_create(&data).unwrap();
        let second = Secret::load_or_create(&data).unwrap();
        assert_eq!(first.0, second.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let n = Nameplate::new(5).unwrap();
        let ticket = first.tickets().issue(n, u64::MAX);
        assert!(second.tickets().check(&ticket, 0).is_ok());
        std::fs::write(&path, b"short").unwrap();
        let err = Secret::load_or_create(&data).unwrap_err().to_string();
        assert!(err.contains("holds 5 bytes, not 32"), "{err}");
    }
}
