//! Where the agent keeps its files on Windows: the audit log and what it
//! remembers in the user's `%LOCALAPPDATA%\Sprijin`, the organisation's
//! settings in `%ProgramData%\Sprijin\agent.toml`.

use std::path::PathBuf;

/// The folder name under `%LOCALAPPDATA%` and `%ProgramData%`.
const FOLDER: &str = "Sprijin";

/// `%LOCALAPPDATA%\Sprijin`, else `sprijin-agent` in the current folder.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("LOCALAPPDATA").filter(|v| !v.is_empty()) {
        Some(base) => PathBuf::from(base).join(FOLDER),
        None => PathBuf::from("sprijin-agent"),
    }
}

/// `%ProgramData%\Sprijin\agent.toml`.
pub fn system_config_file() -> PathBuf {
    let base = std::env::var_os("ProgramData")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from);
    base.join(FOLDER).join("agent.toml")
}
