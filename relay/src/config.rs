//! The relay's validated configuration, with every bound named once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sprijin_proto::code::RelayId;
use sprijin_proto::fleet::Peer;
use sprijin_proto::framing::{MAX_CONTROL_FRAME, MAX_FRAME};

use crate::fleet::{Fleet, FleetConfigError};

use crate::forward::Tap;
use crate::tokens::{ConsoleTokens, TokensError};

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
    /// The relay's state: its ticket key, and its identity unless given
    /// as files.
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// Only consoles with one of these tokens may claim, when set.
    pub console_tokens: Option<ConsoleTokens>,
    /// Sees every byte the relay forwards; for tests that prove it sees
    /// nothing readable.
    pub tap: Option<Tap>,
    /// This relay's id and its peers.
    pub fleet: Fleet,
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
    /// How long a session's forwarding tickets are good for.
    pub ticket_ttl: Duration,
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
            ticket_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl RelayConfig {
    /// A relay on `listen` with its identity in `data_dir` and default limits.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        RelayConfig {
            listen,
            identity: IdentitySource::DataDir(data_dir.clone()),
            data_dir,
            limits: Limits::default(),
            console_tokens: None,
            tap: None,
            fleet: Fleet::default(),
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
    pub ticket_ttl: Option<u64>,
    pub log_format: Option<sprijin_cli::LogFormat>,
    pub relay_id: Option<u16>,
    /// Also accepted as `peer`, like the flag.
    #[serde(alias = "peer")]
    pub peers: Option<Vec<Peer>>,
}

impl RelayFile {
    /// The file named with `--config`, which must exist, else
    /// [`DEFAULT_CONFIG_FILE`] if present.
    pub fn load_chosen(named: Option<&Path>) -> Result<RelayFile, ConfigFileError> {
        match named {
            Some(path) => sprijin_cli::config_file::load(path),
            None => Ok(
                sprijin_cli::config_file::load_if_present(Path::new(DEFAULT_CONFIG_FILE))?
                    .unwrap_or_default(),
            ),
        }
    }
}

pub use sprijin_cli::config_file::ConfigFileError;

/// The relay's settings as the command line gave them, its defaults filled
/// in: one field per flag, named like it (`--data-dir` is `data_dir`).
#[derive(Debug, Clone)]
pub struct RelayFlags {
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub console_tokens: Option<PathBuf>,
    pub nameplate_ttl: u64,
    pub claims_per_minute: u32,
    pub waiting_per_address: usize,
    pub opens_per_minute: u32,
    pub connections_per_address: usize,
    pub max_remembered_nameplates: usize,
    pub metrics_connections: usize,
    pub max_sessions: usize,
    pub max_connections: usize,
    pub session_rate: Option<u64>,
    pub idle_timeout: u64,
    pub handshake_timeout: u64,
    pub ticket_ttl: u64,
    pub log_format: sprijin_cli::LogFormat,
    pub relay_id: u16,
    pub peers: Vec<Peer>,
}

/// Takes each setting from the file unless it was given at start.
macro_rules! from_file {
    ($flags:ident, $file:ident, $given:ident; $($field:ident),* $(,)?) => {
        $(
            if !$given(stringify!($field))
                && let Some(value) = $file.$field
            {
                $flags.$field = value.into();
            }
        )*
    };
}

impl RelayFlags {
    /// Takes each setting from `file` unless `given(name)` says its flag
    /// (named like the field, `data_dir`) was given on the command line or
    /// in its environment variable: a flag beats the file, which beats the
    /// default.
    pub fn merge_file(mut self, file: RelayFile, given: impl Fn(&str) -> bool) -> RelayFlags {
        from_file!(self, file, given;
            listen, data_dir, cert, key, metrics, console_tokens, nameplate_ttl,
            claims_per_minute, waiting_per_address, opens_per_minute,
            connections_per_address, max_remembered_nameplates, metrics_connections,
            max_sessions, max_connections, session_rate, idle_timeout, handshake_timeout,
            ticket_ttl, log_format, relay_id, peers,
        );
        self
    }

    /// The relay's configuration: checks what the command line could not
    /// (the file's values) and reads the console tokens file.
    pub fn into_config(self) -> Result<RelayConfig, FlagsError> {
        if [
            self.nameplate_ttl,
            self.idle_timeout,
            self.handshake_timeout,
            self.ticket_ttl,
        ]
        .contains(&0)
        {
            return Err(FlagsError::ZeroTimeout);
        }
        let data_dir = self.data_dir.unwrap_or_else(default_data_dir);
        let identity = match (self.cert, self.key) {
            (Some(cert), Some(key)) => IdentitySource::Files { cert, key },
            (None, None) => IdentitySource::DataDir(data_dir.clone()),
            _ => return Err(FlagsError::CertWithoutKey),
        };
        let console_tokens = self
            .console_tokens
            .map(|p| ConsoleTokens::load(&p))
            .transpose()?;
        let relay_id = RelayId::new(self.relay_id).ok_or(FlagsError::RelayId(self.relay_id))?;
        let fleet = Fleet::new(relay_id, self.peers)?;
        Ok(RelayConfig {
            listen: self.listen,
            identity,
            data_dir,
            limits: Limits {
                nameplate_ttl: Duration::from_secs(self.nameplate_ttl),
                claims_per_minute: self.claims_per_minute,
                opens_per_minute: self.opens_per_minute,
                waiting_per_address: self.waiting_per_address,
                connections_per_address: self.connections_per_address,
                remembered_nameplates: self.max_remembered_nameplates,
                metrics_connections: self.metrics_connections,
                max_sessions: self.max_sessions,
                max_connections: self.max_connections,
                session_bytes_per_sec: self.session_rate,
                session_idle_timeout: Duration::from_secs(self.idle_timeout),
                handshake_timeout: Duration::from_secs(self.handshake_timeout),
                ticket_ttl: Duration::from_secs(self.ticket_ttl),
                ..Limits::default()
            },
            console_tokens,
            tap: None,
            fleet,
        })
    }
}

/// The relay's data folder when none is given: `~/.local/share/sprijin/relay`.
pub fn default_data_dir() -> PathBuf {
    sprijin_proto::paths::default_data_dir("relay")
}

/// Flags and config file that do not make a relay that can start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlagsError {
    #[error(
        "nameplate_ttl, idle_timeout, handshake_timeout and ticket_ttl must be at least 1 second: fix the config file"
    )]
    ZeroTimeout,
    #[error("cert and key go together: give both (or neither) in the config file")]
    CertWithoutKey,
    #[error(transparent)]
    ConsoleTokens(#[from] TokensError),
    #[error("relay_id {0} is out of range: give a number from 0 to 999")]
    RelayId(u16),
    #[error(transparent)]
    Fleet(#[from] FleetConfigError),
}

/// The smallest control frame limit that still fits every control message.
const MIN_CONTROL_FRAME: usize = 1024;

/// The least `--session-rate`, in bytes per second: a session's pace
/// holds at most one second's worth, and a QUIC handshake sends a flight
/// of several full-size datagrams (certificate and all) at once, so a
/// smaller rate could never carry one.
pub const MIN_SESSION_RATE: u64 = 16 * 1024;

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
        if let Some(rate) = self.session_bytes_per_sec
            && rate < MIN_SESSION_RATE
        {
            return Err(ConfigError::SessionRate {
                got: rate,
                min: MIN_SESSION_RATE,
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
    #[error(
        "a --session-rate of {got} bytes per second is below what a session's handshake needs: give at least {min}"
    )]
    SessionRate { got: u64, min: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: Result<RelayConfig, FlagsError>) -> FlagsError {
        match result {
            Ok(_) => panic!("accepted, but should be refused"),
            Err(e) => e,
        }
    }

    /// The command line's defaults, nothing given.
    fn defaults() -> RelayFlags {
        RelayFlags {
            listen: "0.0.0.0:7420".parse().unwrap(),
            data_dir: None,
            cert: None,
            key: None,
            metrics: None,
            console_tokens: None,
            nameplate_ttl: 600,
            claims_per_minute: 10,
            waiting_per_address: 5,
            opens_per_minute: 10,
            connections_per_address: 64,
            max_remembered_nameplates: 100_000,
            metrics_connections: 16,
            max_sessions: 10_000,
            max_connections: 50_000,
            session_rate: None,
            idle_timeout: 600,
            handshake_timeout: 10,
            ticket_ttl: 12 * 3600,
            log_format: sprijin_cli::LogFormat::Text,
            relay_id: 0,
            peers: Vec::new(),
        }
    }

    #[test]
    fn the_fleet_comes_from_the_file_unless_given() {
        let file = || -> RelayFile {
            sprijin_cli::config_file::parse(
                Path::new("relay.toml"),
                "relay_id = 2\npeers = [\"0=relay-0.example:7420\", \"2=relay-2.example:7420\"]\n",
            )
            .unwrap()
        };
        let config = defaults()
            .merge_file(file(), |_| false)
            .into_config()
            .unwrap();
        assert_eq!(config.fleet.id.get(), 2);
        let peers: Vec<_> = config
            .fleet
            .peers()
            .map(|(id, a)| (id.get(), a.to_string()))
            .collect();
        assert_eq!(peers, vec![(0, "relay-0.example:7420".to_string())]);

        let mut flags = defaults();
        flags.relay_id = 1;
        let config = flags
            .merge_file(file(), |n| n == "relay_id")
            .into_config()
            .unwrap();
        assert_eq!(config.fleet.id.get(), 1);

        let bad: Result<RelayFile, _> =
            sprijin_cli::config_file::parse(Path::new("relay.toml"), "peers = [\"relay-0:1\"]\n");
        let err = bad.unwrap_err().to_string();
        assert!(
            err.contains("ID=HOST:PORT") && err.contains("line 1"),
            "{err}"
        );
        let mut far = defaults();
        far.relay_id = 1000;
        assert!(matches!(
            refused(far.into_config()),
            FlagsError::RelayId(1000)
        ));
    }

    #[test]
    fn a_given_flag_beats_the_file_which_beats_the_default() {
        let file = || -> RelayFile {
            sprijin_cli::config_file::parse(
                Path::new("relay.toml"),
                "listen = \"127.0.0.1:9000\"\nnameplate_ttl = 30\nsession_rate = 5000\nlog_format = \"json\"\n",
            )
            .unwrap()
        };
        let mut flags = defaults();
        flags.listen = "127.0.0.1:1".parse().unwrap();
        flags.nameplate_ttl = 99;
        let merged = flags.merge_file(file(), |name| name == "listen");
        assert_eq!(merged.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(merged.nameplate_ttl, 30, "not given, so the file's");
        assert_eq!(merged.session_rate, Some(5000));
        assert_eq!(merged.log_format, sprijin_cli::LogFormat::Json);
        assert_eq!(merged.idle_timeout, 600, "in neither, so the default");

        let merged = defaults().merge_file(file(), |_| true);
        assert_eq!(merged.listen, "0.0.0.0:7420".parse().unwrap());
        assert_eq!(merged.nameplate_ttl, 600);
        assert_eq!(merged.session_rate, None);

        let config = defaults()
            .merge_file(file(), |_| false)
            .into_config()
            .unwrap();
        assert_eq!(config.limits.nameplate_ttl, Duration::from_secs(30));
        assert_eq!(config.limits.session_bytes_per_sec, Some(5000));
        assert!(matches!(config.identity, IdentitySource::DataDir(d) if d == default_data_dir()));
    }

    #[test]
    fn what_the_command_line_cannot_check_is_refused_with_its_fix() {
        let file: RelayFile =
            sprijin_cli::config_file::parse(Path::new("relay.toml"), "idle_timeout = 0\n").unwrap();
        let err = refused(defaults().merge_file(file, |_| false).into_config());
        assert!(matches!(err, FlagsError::ZeroTimeout), "{err:?}");
        assert!(err.to_string().ends_with("fix the config file"), "{err}");

        let mut half = defaults();
        half.cert = Some(PathBuf::from("/relay.pem"));
        let err = refused(half.into_config());
        assert_eq!(
            err.to_string(),
            "cert and key go together: give both (or neither) in the config file"
        );

        let dir = tempfile::tempdir().unwrap();
        let mut tokens = defaults();
        tokens.console_tokens = Some(dir.path().join("missing"));
        let err = refused(tokens.into_config());
        assert!(matches!(err, FlagsError::ConsoleTokens(_)), "{err:?}");
    }

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

    #[test]
    fn a_session_rate_too_small_for_a_handshake_is_refused() {
        let slow = Limits {
            session_bytes_per_sec: Some(MIN_SESSION_RATE - 1),
            ..Limits::default()
        };
        let err = slow.validate().unwrap_err();
        assert!(err.to_string().contains("--session-rate"), "{err}");
        let enough = Limits {
            session_bytes_per_sec: Some(MIN_SESSION_RATE),
            ..Limits::default()
        };
        assert_eq!(enough.validate(), Ok(()));
    }
}
