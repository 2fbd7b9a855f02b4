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
    /// Where the audit log and the memory of accepted catalogs live.
    pub data_dir: PathBuf,
    /// How long a question waits for the person's answer.
    pub consent_timeout: Duration,
    /// Output forwarded per run before the rest is dropped.
    pub output_cap: u64,
    /// How often the background sampler refreshes the snapshot.
    pub sample_interval: Duration,
    /// The largest file the technician may fetch, in bytes.
    pub fetch_cap: u64,
}

impl AgentConfig {
    pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
    pub const DEFAULT_FETCH_CAP: u64 = 64 * 1024 * 1024;

    pub fn audit_path(&self) -> PathBuf {
        self.data_dir.join("audit.log")
    }

    /// Where the newest accepted catalog signing time per key is kept.
    pub fn catalog_memory_path(&self) -> PathBuf {
        self.data_dir
            .join(crate::script::catalog_memory::MEMORY_FILE)
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

/// The agent's optional config file (TOML), for what an organisation sets
/// once on a machine: which relay, its fingerprint, the catalog keys it
/// trusts, how long a question waits for the person (`consent_timeout`,
/// in seconds) and the largest file a technician may fetch (`fetch_cap`,
/// in bytes). Flags on the command line add to it or override it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub relay: Option<String>,
    pub relay_fingerprint: Option<String>,
    /// Also accepted as `trusted_key`, like the flag.
    #[serde(default, alias = "trusted_key")]
    pub trusted_keys: Vec<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// Seconds a question waits for the person's answer; at least 1.
    pub consent_timeout: Option<std::num::NonZeroU64>,
    /// The largest file the technician may fetch, in bytes.
    pub fetch_cap: Option<u64>,
}

/// The machine-wide agent config file, used when a person has none of their own.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/sprijin/agent.toml";

impl ConfigFile {
    /// The person's own file (`$XDG_CONFIG_HOME/sprijin/agent.toml`, else
    /// `~/.config/sprijin/agent.toml`) when it exists, else the machine's
    /// [`SYSTEM_CONFIG_FILE`], which an organisation installs once.
    pub fn default_path() -> Option<PathBuf> {
        match sprijin_cli::config_file::user_config_path("agent.toml") {
            Some(own) if own.exists() => Some(own),
            _ => Some(PathBuf::from(SYSTEM_CONFIG_FILE)),
        }
    }

    /// Reads `path`; a missing file at the default place is no error. An
    /// unknown key is an error naming the key and its line.
    pub fn load(path: &std::path::Path, required: bool) -> Result<ConfigFile, ConfigFileError> {
        if required {
            sprijin_cli::config_file::load(path)
        } else {
            Ok(sprijin_cli::config_file::load_if_present(path)?.unwrap_or_default())
        }
    }
}

pub use sprijin_cli::config_file::ConfigFileError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_parses_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "relay = \"r:1\"\ntrusted_keys = [\"/etc/k.pub\"]\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
        assert_eq!(c.relay.as_deref(), Some("r:1"));
        assert_eq!(c.trusted_keys, vec![PathBuf::from("/etc/k.pub")]);
        std::fs::write(&path, "relai = \"r:1\"\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("relai"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        assert!(ConfigFile::load(&dir.path().join("missing.toml"), false).is_ok());
        std::fs::write(&path, "consent_timeout = 30\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
        assert_eq!(c.consent_timeout.map(u64::from), Some(30));
        std::fs::write(&path, "consent_timeout = 0\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("nonzero"), "{err}");
        assert!(ConfigFile::load(&dir.path().join("missing.toml"), true).is_err());
        std::fs::write(&path, "fetch_cap = 1048576\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
        assert_eq!(c.fetch_cap, Some(1_048_576));
    }
}
