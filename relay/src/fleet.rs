//! This relay's place in a fleet: its id, which decides the block its
//! nameplates come from, and the static list of its peers (id → address),
//! which tells a console that claims another relay's nameplate where to go.
//!
//! Relays share no state: a nameplate says which relay owns it
//! ([`Nameplate::owner`]), and a claim sent to the wrong relay is answered
//! with a [`Redirect`] to the owner, or a plain refusal when the owner is not
//! on the list. One list can serve the whole fleet: a relay skips its own
//! entry.

use std::collections::BTreeMap;
use std::time::Duration;

use quinn::Connection;
use sprijin_proto::code::{Nameplate, RelayId};
use sprijin_proto::fleet::{Peer, RelayAddr};
use sprijin_proto::framing::FrameWriter;
use sprijin_proto::message::control::{ErrorCode, ErrorFrame, Redirect, RelayMsg};
use tracing::debug;

use crate::metrics::Metrics;

/// How long the relay waits for a redirected console to read its answer
/// and go, before it closes the connection.
const LINGER: Duration = Duration::from_secs(2);

/// This relay's id and the peers it knows.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub id: RelayId,
    peers: BTreeMap<RelayId, RelayAddr>,
}

impl Fleet {
    /// Relay `id` with `peers`; an entry for `id` itself is skipped, and
    /// two different addresses for one id are an error.
    pub fn new(id: RelayId, peers: Vec<Peer>) -> Result<Fleet, FleetConfigError> {
        let mut map: BTreeMap<RelayId, RelayAddr> = BTreeMap::new();
        for peer in peers {
            if peer.id == id {
                continue;
            }
            if let Some(known) = map.get(&peer.id)
                && *known != peer.addr
            {
                return Err(FleetConfigError::TwoAddresses {
                    id: peer.id,
                    first: known.to_string(),
                    second: peer.addr.to_string(),
                });
            }
            map.insert(peer.id, peer.addr);
        }
        Ok(Fleet { id, peers: map })
    }

    pub fn peers(&self) -> impl Iterator<Item = (RelayId, &RelayAddr)> {
        self.peers.iter().map(|(id, addr)| (*id, addr))
    }

    /// `None` when `nameplate` is this relay's; otherwise the answer that
    /// sends the console to its owner, or says the owner is unknown.
    pub fn elsewhere(&self, nameplate: Nameplate) -> Option<RelayMsg> {
        let owner = nameplate.owner();
        // A lone relay has no one to send a console to: a number from
        // another block is then most likely mistyped, and the rendezvous
        // table says no one is waiting with it.
        if owner == self.id || self.peers.is_empty() {
            return None;
        }
        Some(match self.peers.get(&owner) {
            Some(addr) => RelayMsg::Redirect(Redirect {
                relay_id: owner.get(),
                address: addr.address.clone(),
                fingerprint: addr.fingerprint.map(|fp| fp.to_string()),
            }),
            None => RelayMsg::Error(ErrorFrame::new(
                ErrorCode::UnknownRelay,
                format!(
                    "code {nameplate} belongs to relay {owner}, which this relay (relay {}) does not know: check the number with the person, or connect to the relay their agent uses",
                    self.id
                ),
            )),
        })
    }
}

/// Sends a console that claimed another relay's nameplate on its way (or
/// tells it the owner is unknown), then closes its connection.
pub async fn send_away(
    metrics: &Metrics,
    connection: &Connection,
    mut writer: FrameWriter<quinn::SendStream>,
    answer: RelayMsg,
) {
    match &answer {
        RelayMsg::Redirect(r) => debug!(relay = r.relay_id, "claim redirected to {}", r.address),
        RelayMsg::Error(frame) => {
            debug!("claim refused: {}", frame.message);
            metrics.refused(frame.code);
            metrics.claim_refused(frame.code);
        }
        _ => {}
    }
    let _ = writer.write_msg(&answer).await;
    let _ = writer.get_mut().finish();
    let _ = tokio::time::timeout(LINGER, connection.closed()).await;
    connection.close(1u32.into(), b"claim belongs to another relay");
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetConfigError {
    #[error(
        "relay {id} is listed twice, as {first} and as {second}: give each relay id one address in the peer list"
    )]
    TwoAddresses {
        id: RelayId,
        first: String,
        second: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(id: u16, peers: &[&str]) -> Fleet {
        let peers = peers.iter().map(|p| p.parse().unwrap()).collect();
        Fleet::new(RelayId::new(id).unwrap(), peers).unwrap()
    }

    #[test]
    fn a_claim_goes_to_the_owner_or_is_refused_plainly() {
        let f = fleet(0, &["0=self:1", "2=relay-2:7420"]);
        assert_eq!(f.peers().count(), 1, "its own entry is skipped");
        assert_eq!(f.elsewhere(Nameplate::new(7).unwrap()), None);
        let lone = fleet(0, &[]);
        assert_eq!(lone.elsewhere(Nameplate::new(2042).unwrap()), None);
        match f.elsewhere(Nameplate::new(2042).unwrap()) {
            Some(RelayMsg::Redirect(r)) => {
                assert_eq!((r.relay_id, r.address.as_str()), (2, "relay-2:7420"))
            }
            other => panic!("{other:?}"),
        }
        match f.elsewhere(Nameplate::new(5042).unwrap()) {
            Some(RelayMsg::Error(e)) => {
                assert_eq!(e.code, ErrorCode::UnknownRelay);
                assert!(e.message.contains("relay 5"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_id_with_two_addresses_is_refused() {
        let peers = vec!["1=a:1".parse().unwrap(), "1=b:1".parse().unwrap()];
        let err = Fleet::new(RelayId::default(), peers).unwrap_err();
        assert!(err.to_string().contains("relay 1 is listed twice"), "{err}");
    }
}
