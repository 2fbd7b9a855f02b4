//! Relays of a fleet as programs name them: a relay address with an
//! optional pin (`HOST:PORT` or `HOST:PORT@sha256:HEX`), and a peer of a
//! relay (`ID=HOST:PORT[@sha256:HEX]`). Parsed at the boundary, so past it
//! every relay address is known to have a port.

use std::fmt;
use std::str::FromStr;

use crate::code::{CodeError, RelayId};
use crate::tls::Fingerprint;

/// A relay to connect to, and the fingerprint to pin it by if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayAddr {
    /// `HOST:PORT`, resolved when connecting.
    pub address: String,
    pub fingerprint: Option<Fingerprint>,
}

impl RelayAddr {
    /// A relay at `address` (`HOST:PORT`, as a program already knows it),
    /// with no pin of its own.
    pub fn new(address: impl Into<String>) -> Self {
        RelayAddr {
            address: address.into(),
            fingerprint: None,
        }
    }
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)?;
        if let Some(fp) = &self.fingerprint {
            write!(f, "@{fp}")?;
        }
        Ok(())
    }
}

impl FromStr for RelayAddr {
    type Err = FleetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (address, fingerprint) = match s.split_once('@') {
            Some((a, fp)) => (
                a,
                Some(
                    fp.parse::<Fingerprint>()
                        .map_err(|_| FleetError::BadFingerprint(s.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        let port_ok = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || address.chars().any(char::is_whitespace) {
            return Err(FleetError::BadAddress(s.to_string()));
        }
        Ok(RelayAddr {
            address: address.to_string(),
            fingerprint,
        })
    }
}

/// Splits a list of relays as given on a command line or in an
/// environment variable: repeated, or separated by commas.
pub fn parse_relay_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<RelayAddr>, FleetError> {
    items
        .iter()
        .flat_map(|item| item.as_ref().split(','))
        .filter(|part| !part.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Another relay of the fleet, as one relay knows it. In a config file it
/// is written like on the command line: `"2=relay-2.example.org:7420"`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Peer {
    pub id: RelayId,
    pub addr: RelayAddr,
}

impl FromStr for Peer {
    type Err = FleetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, addr) = s
            .trim()
            .split_once('=')
            .ok_or_else(|| FleetError::BadPeer(s.to_string()))?;
        Ok(Peer {
            id: id.parse().map_err(FleetError::RelayId)?,
            addr: addr.parse()?,
        })
    }
}

impl TryFrom<String> for Peer {
    type Error = FleetError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.id, self.addr)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    #[error(
        "{0:?} is not a relay address: give it as HOST:PORT, optionally followed by @sha256:HEX"
    )]
    BadAddress(String),
    #[error(
        "{0:?} has a malformed fingerprint after '@': give sha256: and 64 hex digits, as `sprijin-relay fingerprint` prints"
    )]
    BadFingerprint(String),
    #[error("{0:?} is not a peer: give it as ID=HOST:PORT, like 2=relay-2.example.org:7420")]
    BadPeer(String),
    #[error(transparent)]
    RelayId(CodeError),
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn relay_lists_split_on_commas_and_keep_their_pins() {
        let list =
            parse_relay_list(&["a.example:7420, b.example:1", &format!("[::1]:9@{FP}")]).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1].address, "b.example:1");
        assert_eq!(list[2].address, "[::1]:9");
        assert_eq!(list[2].fingerprint, Some(FP.parse().unwrap()));
        assert_eq!(list[2].to_string(), format!("[::1]:9@{FP}"));
    }

    #[test]
    fn malformed_relays_and_peers_are_refused_with_the_form_to_use() {
        for bad in ["relay", "relay:", ":7420", "relay:port", "a b:1"] {
            let err = bad.parse::<RelayAddr>().unwrap_err();
            assert!(err.to_string().contains("HOST:PORT"), "{err}");
        }
        assert!(matches!(
            "r:1@sha256:zz".parse::<RelayAddr>(),
            Err(FleetError::BadFingerprint(_))
        ));
        assert!(matches!("r:1".parse::<Peer>(), Err(FleetError::BadPeer(_))));
        assert!(matches!(
            "x=r:1".parse::<Peer>(),
            Err(FleetError::RelayId(_))
        ));
        assert!(matches!(
            "1000=r:1".parse::<Peer>(),
            Err(FleetError::RelayId(_))
        ));
        let peer: Peer = " 2=relay-2.example:7420 ".parse().unwrap();
        assert_eq!(peer.id.get(), 2);
        assert_eq!(peer.to_string(), "2=relay-2.example:7420");
    }
}
