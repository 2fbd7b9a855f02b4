//! Config files: TOML whose keys are named like the program's flags
//! (`--data-dir` is `data_dir`). The caller's type says which keys exist
//! (`#[serde(deny_unknown_fields)]`), so a misspelt key is an error that
//! names the key and its line rather than a setting silently ignored.
//! Flags given on the command line override the file; the caller merges.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A config file that cannot be read or does not fit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path}, line {line}: {reason}; fix or remove that line")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Reads and parses the config file at `path`, which must exist.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse(path, &text)
}

/// Like [`load`], but a missing file is `None`: for a default place that
/// need not hold a file.
pub fn load_if_present<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ConfigFileError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => load(path).map(Some),
    }
}

/// Parses `text`, read from `path`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigFileError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
        let line = text.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        ConfigFileError::Invalid {
            path: path.to_path_buf(),
            line,
            reason: e.message().trim().replace('\n', " "),
        }
    })
}

/// `$XDG_CONFIG_HOME/sprijin/NAME`, else `~/.config/sprijin/NAME`: where a
/// person's own config file for a program lives.
pub fn user_config_path(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("sprijin").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        listen: Option<String>,
        limit: Option<u32>,
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let path = Path::new("relay.toml");
        let err = parse::<Sample>(path, "listen = \"a:1\"\n\n# note\nlisten_addr = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("listen_addr"), "{err}");
        assert!(err.contains("relay.toml"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_wrong_type_is_named_with_its_line() {
        let err = parse::<Sample>(Path::new("f"), "limit = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let ok: Sample = parse(Path::new("f"), "limit = 3\n").unwrap();
        assert_eq!(ok.limit, Some(3));
        assert_eq!(ok.listen, None);
    }

    #[test]
    fn a_missing_default_file_is_none_but_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        assert!(load_if_present::<Sample>(&missing).unwrap().is_none());
        assert!(matches!(
            load::<Sample>(&missing),
            Err(ConfigFileError::Read { .. })
        ));
    }
}
