//! Waiting codes that outlive the relay process.
//!
//! The relay keeps one secret in its data dir (`waiting.key`, 32 random
//! bytes, mode 0600, written durably on first start). From it come the MAC
//! of every waiting ticket ([`WaitingKey`]) and QUIC's stateless-reset key,
//! so after a restart the relay can both take a waiting agent back from its
//! ticket and tell the agent at once that its old connection is gone: the
//! first packet the agent sends to the restarted relay is answered with a
//! stateless reset the agent recognises, instead of silence until the idle
//! timeout.
//!
//! [`admit`] turns an agent's request (a new code, or its ticket back) into
//! a waiting entry in the rendezvous table and the ticket to send it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use sprijin_proto::code::{Nameplate, RelayId};
use sprijin_proto::message::control::{ErrorCode, ErrorFrame};
use sprijin_proto::waiting::{TicketError, WaitingKey, WaitingTicket};

use crate::limits::LimitKey;
use crate::rendezvous::{Opened, Rendezvous};

/// The file in the data dir holding the secret.
pub const KEY_FILE: &str = "waiting.key";

/// The relay's secret for waiting tickets and stateless resets.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl Secret {
    /// Reads the secret at `path`, or makes one there when the file does
    /// not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Secret, SecretError> {
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

/// A nameplate now waiting for an agent, and what to tell the agent.
pub struct Admitted<T> {
    pub opened: Opened<T>,
    /// How long the nameplate waits from now.
    pub ttl: Duration,
    pub ticket: WaitingTicket,
}

/// Admits an agent: a fresh nameplate for `Open`, or its own back for a
/// `Reopen` with a valid ticket; the error frame to refuse it with
/// otherwise.
pub fn admit<T>(
    table: &Rendezvous<T>,
    key: &WaitingKey,
    relay: RelayId,
    addr: LimitKey,
    reopen: Option<&WaitingTicket>,
    ttl: Duration,
) -> Result<Admitted<T>, ErrorFrame> {
    let now = unix_now();
    match reopen {
        None => {
            let expires_at = now + ttl.as_secs();
            let opened = table.open(addr, expires_at).map_err(|e| e.frame())?;
            let ticket = key.issue(opened.nameplate, expires_at);
            Ok(Admitted {
                opened,
                ttl,
                ticket,
            })
        }
        Some(ticket) => {
            let left = key
                .check(ticket, now)
                .map_err(|e| refusal(e, ticket.nameplate))?;
            if ticket.nameplate.owner() != relay {
                return Err(refusal(TicketError::Forged, ticket.nameplate));
            }
            let opened = table
                .reopen(addr, ticket.nameplate, ticket.expires_at)
                .map_err(|e| e.frame())?;
            Ok(Admitted {
                opened,
                ttl: Duration::from_secs(left),
                ticket: ticket.clone(),
            })
        }
    }
}

fn refusal(e: TicketError, nameplate: Nameplate) -> ErrorFrame {
    let code = match e {
        TicketError::Expired => ErrorCode::ExpiredNameplate,
        _ => ErrorCode::BadTicket,
    };
    ErrorFrame::new(code, format!("cannot take code {nameplate} back: {e}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("cannot use the waiting-ticket key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the waiting-ticket key {path} holds {len} bytes, not 32: restore it from a backup, or remove it to make a new one (codes waiting now are then lost)"
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
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_secret_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(KEY_FILE);
        let first = Secret::load_or_create(&path).unwrap();
        let second = Secret::load_or_create(&path).unwrap();
        assert_eq!(first.0, second.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let n = Nameplate::new(5).unwrap();
        let ticket = first.tickets().issue(n, u64::MAX);
        assert!(second.tickets().check(&ticket, 0).is_ok());
        std::fs::write(&path, b"short").unwrap();
        let err = Secret::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("holds 5 bytes, not 32"), "{err}");
    }
}
