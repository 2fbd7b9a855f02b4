//! The agent's validated configuration.

use std::path::PathBuf;
use std::time::Duration;

use sprijin_proto::catalog::VerifyingKey;
use sprijin_proto::fleet::{FleetError, RelayAddr, parse_relay_list};
use sprijin_proto::path::direct::Policy;
use sprijin_proto::tls::Fingerprint;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The relays to try, in order: the first that answers gives the code.
    pub relays: Vec<RelayAddr>,
    /// Pin the relays to this certificate fingerprint, unless one has its own.
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
    /// How long the session may hear nothing from the console before the
    /// connection counts as lost: the longest outage it survives.
    pub session_idle_timeout: Duration,
    /// Whether the session may move to a direct path to the console.
    pub direct: Policy,
}

impl AgentConfig {
    pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = sprijin_proto::tls::SESSION_IDLE_TIMEOUT;
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

/// What the `share` command line said. `None` (or an empty list) is "not
/// given": the config file's value, else the default, is used instead.
#[derive(Clone, Debug, Default)]
pub struct ShareFlags {
    /// Relays as given (repeated or comma-separated); empty is "not given".
    pub relays: Vec<String>,
    pub relay_fingerprint: Option<Fingerprint>,
    /// Added to the file's `trusted_keys`, after them.
    pub trusted_keys: Vec<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// Seconds; the command line already refuses 0.
    pub consent_timeout: Option<u64>,
    /// Has a default on the command line, so it is always given.
    pub output_cap: u64,
    pub fetch_cap: Option<u64>,
    /// Seconds; the command line already refuses 0.
    pub session_idle_timeout: Option<u64>,
    pub direct: Option<Policy>,
}

/// Flags and config file that do not make a configuration the agent can
/// start with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("no relay given: pass --relay HOST:PORT or set relay in the config file")]
    NoRelay,
    #[error(transparent)]
    Relay(#[from] FleetError),
    /// The file's `relay_fingerprint` is not a fingerprint.
    #[error(transparent)]
    Fingerprint(#[from] sprijin_proto::tls::TlsError),
    #[error(transparent)]
    TrustedKey(#[from] TrustedKeyError),
}

impl AgentConfig {
    /// Fails unless a relay is configured: sharing needs one, checking
    /// this machine does not.
    pub fn require_relay(&self) -> Result<(), ConfigError> {
        if self.relays.is_empty() {
            return Err(ConfigError::NoRelay);
        }
        Ok(())
    }

    /// Merges the command line with the config file: a flag beats the
    /// file, which beats the default. Trusted keys from both are loaded,
    /// the file's first; a key that cannot be read is an error.
    pub fn resolve(flags: ShareFlags, file: ConfigFile) -> Result<AgentConfig, ConfigError> {
        let relays = if flags.relays.is_empty() {
            parse_relay_list(&file.relay.map(RelayList::into_vec).unwrap_or_default())?
        } else {
            parse_relay_list(&flags.relays)?
        };
        let relay_fingerprint = match (flags.relay_fingerprint, file.relay_fingerprint) {
            (Some(fp), _) => Some(fp),
            (None, Some(text)) => Some(text.parse::<Fingerprint>()?),
            (None, None) => None,
        };
        let trusted_keys = file
            .trusted_keys
            .iter()
            .chain(flags.trusted_keys.iter())
            .map(|path| load_trusted_key(path))
            .collect::<Result<Vec<_>, _>>()?;
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        Ok(AgentConfig {
            relays,
            relay_fingerprint,
            trusted_keys,
            data_dir,
            consent_timeout: flags
                .consent_timeout
                .or(file.consent_timeout.map(u64::from))
                .map_or(Self::DEFAULT_CONSENT_TIMEOUT, Duration::from_secs),
            output_cap: flags.output_cap,
            sample_interval: Self::DEFAULT_SAMPLE_INTERVAL,
            fetch_cap: flags
                .fetch_cap
                .or(file.fetch_cap)
                .unwrap_or(Self::DEFAULT_FETCH_CAP),
            session_idle_timeout: flags
                .session_idle_timeout
                .or(file.session_idle_timeout.map(u64::from))
                .map_or(Self::DEFAULT_SESSION_IDLE_TIMEOUT, Duration::from_secs),
            direct: flags.direct.or(file.direct).unwrap_or_default(),
        })
    }
}

/// The agent's data folder when none is given: `~/.local/share/sprijin/agent`.
pub fn default_data_dir() -> PathBuf {
    crate::platform::default_data_dir()
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
/// in seconds), the largest file a technician may fetch (`fetch_cap`,
/// in bytes) and how long a session survives silence
/// (`session_idle_timeout`, in seconds), the window's language (`lang`),
/// the catalog folder for the person's own repairs (`catalog`) and whether
/// a session may go direct (`direct`: `allow` or `never`).
/// Flags on the command line add to it or override it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// One relay, or a list tried in order.
    pub relay: Option<RelayList>,
    pub relay_fingerprint: Option<String>,
    /// Also accepted as `trusted_key`, like the flag.
    #[serde(default, alias = "trusted_key")]
    pub trusted_keys: Vec<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// Seconds a question waits for the person's answer; at least 1.
    pub consent_timeout: Option<std::num::NonZeroU64>,
    /// The largest file the technician may fetch, in bytes.
    pub fetch_cap: Option<u64>,
    /// The window's language (`en`, `ro`); the `--lang` flag beats it.
    pub lang: Option<crate::face::strings::Lang>,
    /// Seconds the session may hear nothing from the console before it
    /// counts the connection as lost; at least 1.
    pub session_idle_timeout: Option<std::num::NonZeroU64>,
    /// A signed catalog folder the organisation installed for the repairs
    /// the person may run alone; the `--catalog` flag beats it.
    pub catalog: Option<PathBuf>,
    /// `allow` (the default) or `never`; the `--direct` flag beats it.
    pub direct: Option<Policy>,
}

/// The config file's `relay`: `"HOST:PORT"` or `["HOST:PORT", ...]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum RelayList {
    One(String),
    Many(Vec<String>),
}

impl RelayList {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            RelayList::One(one) => vec![one],
            RelayList::Many(many) => many,
        }
    }
}

impl From<&str> for RelayList {
    fn from(s: &str) -> Self {
        RelayList::One(s.to_string())
    }
}

impl ConfigFile {
    /// The person's own file (`$XDG_CONFIG_HOME/sprijin/agent.toml`, else
    /// `~/.config/sprijin/agent.toml`) when it exists, else the machine's
    /// machine's file (`platform::system_config_file`: `/etc/sprijin/agent.toml`,
    /// `%ProgramData%\Sprijin\agent.toml` on Windows), which an organisation installs once.
    pub fn default_path() -> Option<PathBuf> {
        match sprijin_cli::config_file::user_config_path("agent.toml") {
            Some(own) if own.exists() => Some(own),
            _ => Some(crate::platform::system_config_file()),
        }
    }

    /// The file named with `--config`, which must exist, else the
    /// [`default_path`](Self::default_path) one if present.
    pub fn load_chosen(named: Option<&std::path::Path>) -> Result<ConfigFile, ConfigFileError> {
        match named {
            Some(path) => ConfigFile::load(path, true),
            None => match ConfigFile::default_path() {
                Some(path) => ConfigFile::load(&path, false),
                None => Ok(ConfigFile::default()),
            },
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

    fn flags() -> ShareFlags {
        ShareFlags {
            output_cap: 4096,
            ..ShareFlags::default()
        }
    }

    const FP_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const FP_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    /// The ed25519 base point: a valid public key.
    const KEY: &str = "sprijin-catalog-key ed25519 5866666666666666666666666666666666666666666666666666666666666666\n";

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        let file = ConfigFile {
            relay: Some("file:1".into()),
            relay_fingerprint: Some(FP_B.into()),
            data_dir: Some(PathBuf::from("/file/dir")),
            consent_timeout: std::num::NonZeroU64::new(30),
            fetch_cap: Some(1000),
            ..ConfigFile::default()
        };
        let given = ShareFlags {
            relays: vec!["flag:1".into()],
            relay_fingerprint: Some(FP_A.parse().unwrap()),
            data_dir: Some(PathBuf::from("/flag/dir")),
            consent_timeout: Some(5),
            fetch_cap: Some(7),
            ..flags()
        };
        let c = AgentConfig::resolve(given, file).unwrap();
        assert_eq!(c.relays, vec![RelayAddr::new("flag:1")]);
        assert_eq!(c.relay_fingerprint, Some(FP_A.parse().unwrap()));
        assert_eq!(c.data_dir, PathBuf::from("/flag/dir"));
        assert_eq!(c.consent_timeout, Duration::from_secs(5));
        assert_eq!(c.fetch_cap, 7);
        assert_eq!(c.output_cap, 4096);

        let file = ConfigFile {
            relay: Some("file:1".into()),
            relay_fingerprint: Some(FP_B.into()),
            data_dir: Some(PathBuf::from("/file/dir")),
            consent_timeout: std::num::NonZeroU64::new(30),
            fetch_cap: Some(1000),
            ..ConfigFile::default()
        };
        let c = AgentConfig::resolve(flags(), file).unwrap();
        assert_eq!(c.relays, vec![RelayAddr::new("file:1")]);
        assert_eq!(c.relay_fingerprint, Some(FP_B.parse().unwrap()));
        assert_eq!(c.data_dir, PathBuf::from("/file/dir"));
        assert_eq!(c.consent_timeout, Duration::from_secs(30));
        assert_eq!(c.fetch_cap, 1000);

        let only_relay = ShareFlags {
            relays: vec!["flag:1".into()],
            ..flags()
        };
        let c = AgentConfig::resolve(only_relay, ConfigFile::default()).unwrap();
        assert_eq!(c.relay_fingerprint, None);
        assert_eq!(c.data_dir, default_data_dir());
        assert_eq!(c.consent_timeout, AgentConfig::DEFAULT_CONSENT_TIMEOUT);
        assert_eq!(c.fetch_cap, AgentConfig::DEFAULT_FETCH_CAP);
        assert_eq!(c.sample_interval, AgentConfig::DEFAULT_SAMPLE_INTERVAL);
        assert!(c.trusted_keys.is_empty());
    }

    #[test]
    fn no_relay_anywhere_says_where_to_give_one() {
        let config = AgentConfig::resolve(flags(), ConfigFile::default()).unwrap();
        let err = config.require_relay().unwrap_err();
        assert!(matches!(err, ConfigError::NoRelay));
        assert_eq!(
            err.to_string(),
            "no relay given: pass --relay HOST:PORT or set relay in the config file"
        );
    }

    #[test]
    fn a_bad_fingerprint_in_the_file_is_named() {
        let file = ConfigFile {
            relay: Some("file:1".into()),
            relay_fingerprint: Some("sha256:nothex".into()),
            ..ConfigFile::default()
        };
        let err = AgentConfig::resolve(flags(), file).unwrap_err();
        assert!(matches!(err, ConfigError::Fingerprint(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("\"sha256:nothex\" is not a relay fingerprint"),
            "{text}"
        );
        // A flag overrides the file, so its bad value is never read.
        let file = ConfigFile {
            relay: Some("file:1".into()),
            relay_fingerprint: Some("sha256:nothex".into()),
            ..ConfigFile::default()
        };
        let given = ShareFlags {
            relay_fingerprint: Some(FP_A.parse().unwrap()),
            ..flags()
        };
        assert!(AgentConfig::resolve(given, file).is_ok());
    }

    #[test]
    fn trusted_keys_come_from_the_file_and_the_flags_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("org.pub");
        std::fs::write(&good, KEY).unwrap();
        let file = ConfigFile {
            relay: Some("file:1".into()),
            trusted_keys: vec![good.clone()],
            ..ConfigFile::default()
        };
        let given = ShareFlags {
            trusted_keys: vec![good.clone()],
            ..flags()
        };
        let c = AgentConfig::resolve(given, file).unwrap();
        assert_eq!(c.trusted_keys.len(), 2);

        let missing = dir.path().join("missing.pub");
        let given = ShareFlags {
            relays: vec!["flag:1".into()],
            trusted_keys: vec![good, missing.clone()],
            ..flags()
        };
        let err = AgentConfig::resolve(given, ConfigFile::default()).unwrap_err();
        assert!(matches!(err, ConfigError::TrustedKey(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot use trusted key {}: ", missing.display())),
            "{text}"
        );
    }

    #[test]
    fn config_file_parses_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "relay = \"r:1\"\ntrusted_keys = [\"/etc/k.pub\"]\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
        assert_eq!(c.relay, Some(RelayList::One("r:1".into())));
        std::fs::write(&path, "relay = [\"a:1\", \"b:2\"]\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
        let c = AgentConfig::resolve(flags(), c).unwrap();
        assert_eq!(c.relays, vec![RelayAddr::new("a:1"), RelayAddr::new("b:2")]);
        let c = AgentConfig::resolve(
            ShareFlags {
                relays: vec!["c:3,d:4".into()],
                ..flags()
            },
            ConfigFile::load(&path, true).unwrap(),
        )
        .unwrap();
        assert_eq!(c.relays, vec![RelayAddr::new("c:3"), RelayAddr::new("d:4")]);
        std::fs::write(&path, "relay = \"r:1\"\ntrusted_keys = [\"/etc/k.pub\"]\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
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

    #[test]
    fn the_windows_language_comes_from_the_file_and_an_unknown_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "lang = \"ro\"\n").unwrap();
        let c = ConfigFile::load(&path, true).unwrap();
        assert_eq!(c.lang, Some(crate::face::strings::Lang::Ro));
        std::fs::write(&path, "lang = \"de\"\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("de"), "{err}");
    }

    #[test]
    fn the_session_idle_timeout_comes_from_the_flag_the_file_or_the_default() {
        let file = || ConfigFile {
            relay: Some("file:1".into()),
            session_idle_timeout: std::num::NonZeroU64::new(30),
            ..ConfigFile::default()
        };
        let from_flag = ShareFlags {
            session_idle_timeout: Some(90),
            ..flags()
        };
        let config = AgentConfig::resolve(from_flag, file()).unwrap();
        assert_eq!(config.session_idle_timeout, Duration::from_secs(90));
        let config = AgentConfig::resolve(flags(), file()).unwrap();
        assert_eq!(config.session_idle_timeout, Duration::from_secs(30));
        let only_relay = ConfigFile {
            relay: Some("file:1".into()),
            ..ConfigFile::default()
        };
        let config = AgentConfig::resolve(flags(), only_relay).unwrap();
        assert_eq!(
            config.session_idle_timeout,
            AgentConfig::DEFAULT_SESSION_IDLE_TIMEOUT
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "session_idle_timeout = 0\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(err.contains("nonzero"), "{err}");
    }

    #[test]
    fn a_direct_path_is_allowed_unless_the_flag_or_the_file_says_never() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "relay = \"file:1\"\ndirect = \"never\"\n").unwrap();
        let never = ConfigFile::load(&path, true).unwrap();
        assert_eq!(never.direct, Some(Policy::Never));
        let config = AgentConfig::resolve(flags(), never).unwrap();
        assert_eq!(config.direct, Policy::Never);
        let allow = ShareFlags {
            direct: Some(Policy::Allow),
            ..flags()
        };
        let config = AgentConfig::resolve(allow, ConfigFile::load(&path, true).unwrap()).unwrap();
        assert_eq!(config.direct, Policy::Allow);
        let config = AgentConfig::resolve(flags(), ConfigFile::default()).unwrap();
        assert_eq!(config.direct, Policy::Allow);
        std::fs::write(&path, "direct = \"sometimes\"\n").unwrap();
        let err = ConfigFile::load(&path, true).unwrap_err().to_string();
        assert!(
            err.contains("sometimes") || err.contains("unknown variant"),
            "{err}"
        );
    }
}
