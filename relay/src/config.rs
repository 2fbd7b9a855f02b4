//! The relay's validated configuration, with every bound named once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sprijin_proto::framing::{MAX_CONTROL_FRAME, MAX_FRAME};

use crate::splice::{Interceptor, Tap};
use crate::tokens::ConsoleTokens;

/// Where the relay's TLS identity comes from.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// A self-signed certificate kept in this folder, made on first start.
    DataDir(PathBuf),
    /// PEM files given by the operator.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub identity: IdentitySource,
    pub limits: Limits,
    /// Only consoles with one of these tokens may claim, when set.
    pub console_tokens: Option<ConsoleTokens>,
    /// Sees every byte the relay forwards; for tests that prove it sees
    /// nothing readable.
    pub tap: Option<Tap>,
    /// Takes over paired streams instead of splicing them; tests of a
    /// malicious relay only.
    pub interceptor: Option<Interceptor>,
}

/// Every bound the relay enforces, with its default.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a nameplate waits to be claimed.
    pub nameplate_ttl: Duration,
    /// Claims one source address may make per minute.
    pub claims_per_minute: u32,
    /// Nameplates one source address may open per minute.
    pub opens_per_minute: u32,
    /// Nameplates one source address may hold waiting at once.
    pub waiting_per_address: usize,
    /// Connections one source address may hold open at once.
    pub connections_per_address: usize,
    /// Used or expired nameplates remembered (so a late claim hears "used"
    /// or "expired"); past this the oldest is forgotten first.
    pub remembered_nameplates: usize,
    /// The largest control message read from a client before pairing.
    pub control_frame: usize,
    /// Connections the metrics endpoint serves at once.
    pub metrics_connections: usize,
    /// Paired sessions in total.
    pub max_sessions: usize,
    /// Connections in total (waiting agents included).
    pub max_connections: usize,
    /// Bytes per second per session and direction; `None` is unlimited.
    pub session_bytes_per_sec: Option<u64>,
    /// A session with no bytes either way for this long is ended.
    pub session_idle_timeout: Duration,
    /// A client must say hello and ask for something within this time.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nameplate_ttl: Duration::from_secs(600),
            claims_per_minute: 10,
            opens_per_minute: 10,
            waiting_per_address: 5,
            connections_per_address: 64,
            remembered_nameplates: 100_000,
            control_frame: MAX_CONTROL_FRAME,
            metrics_connections: 16,
            max_sessions: 10_000,
            max_connections: 50_000,
            session_bytes_per_sec: None,
            session_idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl RelayConfig {
    /// A relay on `listen` with its identity in `data_dir` and default limits.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        RelayConfig {
            listen,
            identity: IdentitySource::DataDir(data_dir),
            limits: Limits::default(),
            console_tokens: None,
            tap: None,
            interceptor: None,
        }
    }
}

/// Where the relay looks for its config file when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/sprijin/relay.toml";

/// The relay's config file (TOML): one optional key per flag, named like
/// the flag (`--data-dir` is `data_dir`). A flag or its environment
/// variable given at start overrides the key; an unknown key is an error.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayFile {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub console_tokens: Option<PathBuf>,
    pub nameplate_ttl: Option<u64>,
    pub claims_per_minute: Option<u32>,
    pub waiting_per_address: Option<usize>,
    pub opens_per_minute: Option<u32>,
    pub connections_per_address: Option<usize>,
    pub max_remembered_nameplates: Option<usize>,
    pub metrics_connections: Option<usize>,
    pub max_sessions: Option<usize>,
    pub max_connections: Option<usize>,
    pub session_rate: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub handshake_timeout: Option<u64>,
    pub log_format: Option<sprijin_cli::LogFormat>,
}

/// The smallest control frame limit that still fits every control message.
const MIN_CONTROL_FRAME: usize = 1024;

impl Limits {
    /// Checks that every bound lets the relay work at all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("--opens-per-minute", self.opens_per_minute as usize),
            ("--connections-per-address", self.connections_per_address),
            ("--max-remembered-nameplates", self.remembered_nameplates),
            ("--metrics-connections", self.metrics_connections),
        ];
        for (flag, value) in at_least_one {
            if value == 0 {
                return Err(ConfigError::Zero { flag });
            }
        }
        if !(MIN_CONTROL_FRAME..=MAX_FRAME).contains(&self.control_frame) {
            return Err(ConfigError::ControlFrame {
                got: self.control_frame,
                min: MIN_CONTROL_FRAME,
                max: MAX_FRAME,
            });
        }
        Ok(())
    }
}

/// A configuration the relay cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{flag} must be at least 1: with 0 the relay would refuse everyone; raise it")]
    Zero { flag: &'static str },
    #[error(
        "the control frame limit of {got} bytes is out of range: give between {min} and {max} bytes"
    )]
    ControlFrame { got: usize, min: usize, max: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_a_zero_limit_is_named() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let zero = Limits {
            connections_per_address: 0,
            ..Limits::default()
        };
        let err = zero.validate().unwrap_err();
        assert!(
            err.to_string().contains("--connections-per-address"),
            "{err}"
        );
        let huge = Limits {
            control_frame: MAX_FRAME + 1,
            ..Limits::default()
        };
        assert!(matches!(
            huge.validate(),
            Err(ConfigError::ControlFrame { .. })
        ));
    }
}
