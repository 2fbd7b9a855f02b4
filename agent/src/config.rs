//! The agent's validated configuration.

use std::path::PathBuf;
use std::time::Duration;

use sprijin_proto::catalog::VerifyingKey;
use sprijin_proto::tls::Fingerprint;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The relay, as `HOST:PORT`.
    pub relay: String,
    /// Pin the relay to this certificate fingerprint.
    pub relay_fingerprint: Option<Fingerprint>,
    /// Catalog signers this machine trusts; empty means no script may run.
    pub trusted_keys: Vec<VerifyingKey>,
    /// Where the audit log lives.
    pub data_dir: PathBuf,
    /// How long a question waits for the person's answer.
    pub consent_timeout: Duration,
    /// Output forwarded per run before the rest is dropped.
    pub output_cap: u64,
    /// How often the background sampler refreshes the snapshot.
    pub sample_interval: Duration,
}

impl AgentConfig {
    pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

    pub fn audit_path(&self) -> PathBuf {
        self.data_dir.join("audit.log")
    }
}

/// Reads a catalog public key file (`sprijin-catalog-key ed25519 HEX`).
pub fn load_trusted_key(path: &std::path::Path) -> Result<VerifyingKey, TrustedKeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrustedKeyError {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    sprijin_proto::catalog::parse_verifying_key(&text).map_err(|e| TrustedKeyError {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use trusted key {path}: {reason}")]
pub struct TrustedKeyError {
    pub path: String,
    pub reason: String,
}
