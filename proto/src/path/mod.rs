//! The end-to-end data path: after pairing, agent and console talk one QUIC
//! connection to each other, and the relay only forwards its UDP datagrams.
//!
//! On pairing the relay gives each side a [`Ticket`]. A [`RelayedPath`] is a
//! QUIC endpoint whose socket puts the ticket's header on every datagram it
//! sends to the relay and takes the relay's forwarded datagrams in; the
//! connection on it is an ordinary `quinn` connection whose remote address is
//! the relay's.

pub mod direct;
pub mod probe;
pub(crate) mod socket;
pub mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use direct::{Direct, DirectState};
use socket::{Presenter, TicketedSocket};
pub use socket::{RECV_BUFFER, WritablePoller};
pub use wire::QUIC_PAYLOAD_LIMIT;

/// What the relay hands one side of a paired session: proof that the relay
/// paired it, which the relay can check without remembering it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The ticket as the relay made it; opaque to clients, which send it
    /// back in datagram headers and when the relay asks for it again.
    #[serde(with = "serde_bytes")]
    pub token: Vec<u8>,
    /// A key only this side and the relay know, for the MAC on datagrams
    /// that move this side's address.
    pub key: [u8; 32],
    /// Seconds since the Unix epoch after which the relay drops the
    /// ticket's datagrams.
    pub expires_at: u64,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("token", &hex::encode(&self.token))
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A QUIC endpoint whose datagrams go through the relay at `relay` under
/// one side's ticket. The agent passes a server configuration and accepts;
/// the console connects to [`RelayedPath::relay`].
///
/// Its endpoint does not grease QUIC's fixed bit (the relay tells its
/// datagrams from QUIC by that bit) and limits QUIC's datagrams to
/// [`QUIC_PAYLOAD_LIMIT`] bytes, so each with its header fits a 1500-byte
/// MTU over IPv6.
pub struct RelayedPath {
    endpoint: quinn::Endpoint,
    relay: SocketAddr,
    presenter: Arc<Presenter>,
    direct: Arc<DirectState>,
}

/// The endpoint configuration every endpoint on the relayed path uses.
pub fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    config.grease_quic_bit(false);
    // The limit is within quinn's bounds (1200..=65527), so this cannot fail.
    let _ = config.max_udp_payload_size(QUIC_PAYLOAD_LIMIT);
    config
}

impl RelayedPath {
    /// Opens a path on a fresh local socket. Needs a tokio runtime.
    pub fn new(
        relay: SocketAddr,
        ticket: Ticket,
        server: Option<quinn::ServerConfig>,
    ) -> Result<RelayedPath, PathError> {
        let socket = bind_for(relay)?;
        RelayedPath::with_socket(relay, ticket, server, socket)
    }

    /// Opens a path on `socket`. Needs a tokio runtime.
    pub fn with_socket(
        relay: SocketAddr,
        ticket: Ticket,
        server: Option<quinn::ServerConfig>,
        socket: std::net::UdpSocket,
    ) -> Result<RelayedPath, PathError> {
        let presenter = Arc::new(Presenter::new(&ticket).ok_or(PathError::Ticket)?);
        let direct = DirectState::new(presenter.side());
        let socket = TicketedSocket::new(socket, relay, presenter.clone(), direct.clone())
            .map_err(PathError::Socket)?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            endpoint_config(),
            server,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(PathError::Socket)?;
        Ok(RelayedPath {
            endpoint,
            relay,
            presenter,
            direct,
        })
    }

    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// The relay's address: the remote address of the session's connection.
    pub fn relay(&self) -> SocketAddr {
        self.relay
    }

    /// The handle on this path's direct path, for the task that finds one.
    pub fn direct(&self) -> Direct {
        Direct::new(self.direct.clone(), self.relay)
    }

    /// Moves to a fresh local socket, as after a network change; the
    /// session's connection carries on over it. The new socket presents
    /// the ticket at once, so the relay moves this side's address.
    pub fn rebind(&self) -> Result<(), PathError> {
        self.rebind_to(bind_for(self.relay)?)
    }

    /// Moves to `socket`, as [`RelayedPath::rebind`] does.
    pub fn rebind_to(&self, socket: std::net::UdpSocket) -> Result<(), PathError> {
        let socket = TicketedSocket::new(
            socket,
            self.relay,
            self.presenter.clone(),
            self.direct.clone(),
        )
        .map_err(PathError::Socket)?;
        self.endpoint
            .rebind_abstract(socket)
            .map_err(PathError::Socket)
    }
}

fn bind_for(relay: SocketAddr) -> Result<std::net::UdpSocket, PathError> {
    let any: SocketAddr = if relay.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(any).map_err(PathError::Socket)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("cannot open a network socket for the session: {0}")]
    Socket(#[source] std::io::Error),
    #[error(
        "the relay's forwarding ticket is not in a format this program reads: update the program or the relay"
    )]
    Ticket,
}
