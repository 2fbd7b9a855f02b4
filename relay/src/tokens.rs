//! Technician access control: a file of tokens, one per line, each with the
//! technician's name (`NAME TOKEN`; blank lines and `#` comments ignored).
//! When configured, only a console presenting a listed token may claim, and
//! the agent is told the name on file, vouched for by the relay.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct ConsoleTokens {
    // Keyed by the token's hash so lookups do not leak timing about tokens.
    by_hash: Arc<HashMap<[u8; 32], String>>,
}

impl ConsoleTokens {
    pub fn parse(text: &str) -> Result<ConsoleTokens, TokensError> {
        let mut by_hash = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, token) = line
                .rsplit_once(char::is_whitespace)
                .map(|(n, t)| (n.trim(), t.trim()))
                .filter(|(n, t)| !n.is_empty() && t.len() >= 16)
                .ok_or(TokensError::Line(i + 1))?;
            by_hash.insert(hash(token), name.to_string());
        }
        if by_hash.is_empty() {
            return Err(TokensError::Empty);
        }
        Ok(ConsoleTokens {
            by_hash: Arc::new(by_hash),
        })
    }

    pub fn load(path: &Path) -> Result<ConsoleTokens, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokensError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// The technician's name for a token, if it is listed.
    pub fn name_for(&self, token: &str) -> Option<&str> {
        self.by_hash.get(&hash(token)).map(String::as_str)
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    #[error("cannot read console tokens file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(
        "console tokens file line {0} is malformed: write `NAME TOKEN`, with a token of at least 16 characters"
    )]
    Line(usize),
    #[error("console tokens file lists no tokens: add lines of `NAME TOKEN`")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_names() {
        let t = ConsoleTokens::parse("# team\nAna Pop 0123456789abcdef0\n\nBo x123456789abcdefg\n")
            .unwrap();
        assert_eq!(t.name_for("0123456789abcdef0"), Some("Ana Pop"));
        assert_eq!(t.name_for("x123456789abcdefg"), Some("Bo"));
        assert_eq!(t.name_for("nope"), None);
    }

    #[test]
    fn malformed_lines_are_named() {
        assert!(matches!(
            ConsoleTokens::parse("ok 0123456789abcdef\nshort x\n"),
            Err(TokensError::Line(2))
        ));
        assert!(matches!(
            ConsoleTokens::parse("# nothing\n"),
            Err(TokensError::Empty)
        ));
    }
}
