//! The console's optional config file (TOML), for what a technician sets
//! once: which relay and its fingerprint, their name, token, catalog and
//! credential. Keys are named like `connect`'s flags; a flag or its
//! `SPRIJIN_...` variable overrides the key; an unknown key is an error.

use std::path::PathBuf;

pub use sprijin_cli::config_file::ConfigFileError;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFile {
    pub relay: Option<String>,
    pub relay_fingerprint: Option<String>,
    pub name: Option<String>,
    pub token: Option<String>,
    pub catalog: Option<PathBuf>,
    pub credential: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// Seconds the session may hear nothing from the agent before it
    /// counts the connection as lost; at least 1.
    pub session_idle_timeout: Option<std::num::NonZeroU64>,
    /// `allow` (the default) or `never`: whether a session may go direct.
    pub direct: Option<sprijin_proto::path::direct::Policy>,
}

impl ConsoleFile {
    /// `$XDG_CONFIG_HOME/sprijin/console.toml`, else `~/.config/sprijin/console.toml`.
    pub fn default_path() -> Option<PathBuf> {
        sprijin_cli::config_file::user_config_path("console.toml")
    }

    /// The file named with `--config`, else the default one if present.
    pub fn load(named: Option<&std::path::Path>) -> Result<ConsoleFile, ConfigFileError> {
        match named {
            Some(path) => sprijin_cli::config_file::load(path),
            None => match Self::default_path() {
                Some(path) => {
                    Ok(sprijin_cli::config_file::load_if_present(&path)?.unwrap_or_default())
                }
                None => Ok(ConsoleFile::default()),
            },
        }
    }
}
