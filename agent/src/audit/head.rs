//! Where a log's chain stands: the sequence number of its last line and the
//! hash of that line, written `SEQ:HASH`. The agent sends it to the console
//! after every entry, the data dir keeps the latest copy beside the log, and
//! `audit verify --head SEQ:HASH` checks that the log still reaches it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::chain::FIRST_PREV;

/// The last line of a chain: its `seq` and the SHA-256 hex of its bytes.
/// An empty log's head is `0:` followed by 64 zeros.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    /// The head of a log with no lines.
    pub fn start() -> Head {
        Head {
            seq: 0,
            hash: FIRST_PREV.to_owned(),
        }
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not an audit log head: expected SEQ:HASH, a line number, a colon and 64 hex digits, as the session report shows it"
)]
pub struct HeadParseError {
    pub text: String,
}

impl FromStr for Head {
    type Err = HeadParseError;

    fn from_str(text: &str) -> Result<Head, HeadParseError> {
        let bad = || HeadParseError {
            text: text.to_owned(),
        };
        let (seq, hash) = text.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq.parse::<u64>().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}
