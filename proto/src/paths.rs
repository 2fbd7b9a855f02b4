//! Default places on disk for each program's state.

use std::path::PathBuf;

/// `$XDG_DATA_HOME/sprijin/<component>`, else `~/.local/share/sprijin/<component>`,
/// else `./sprijin-<component>` when there is no home at all.
pub fn default_data_dir(component: &str) -> PathBuf {
    if let Some(base) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(base).join("sprijin").join(component);
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home)
            .join(".local/share/sprijin")
            .join(component);
    }
    PathBuf::from(format!("sprijin-{component}"))
}
