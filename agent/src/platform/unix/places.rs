//! Where the agent keeps its files on Linux and macOS.

use std::path::PathBuf;

/// The machine-wide settings an organisation installs once.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/sprijin/agent.toml";

/// `$XDG_DATA_HOME/sprijin/agent`, else `~/.local/share/sprijin/agent`.
pub fn default_data_dir() -> PathBuf {
    sprijin_proto::paths::default_data_dir("agent")
}

/// See [`SYSTEM_CONFIG_FILE`].
pub fn system_config_file() -> PathBuf {
    PathBuf::from(SYSTEM_CONFIG_FILE)
}
