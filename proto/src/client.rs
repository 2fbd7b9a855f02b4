//! Connecting to the relay as a client (agent or console): resolve the
//! address, set up QUIC with the right trust (pin or system roots), open the
//! control stream and say hello.

use std::net::SocketAddr;

use quinn::{Connection, Endpoint, RecvStream, SendStream};

use crate::framing::{FrameError, FrameReader, FrameWriter};
use crate::message::control::{ErrorFrame, Hello, RelayMsg, Role};
use crate::tls::{self, Fingerprint, TlsError};

/// An open control stream to the relay, with the connection that carries it.
pub struct RelayLink {
    pub endpoint: Endpoint,
    pub connection: Connection,
    pub writer: FrameWriter<SendStream>,
    pub reader: FrameReader<RecvStream>,
}

impl RelayLink {
    /// Connects to `relay` (`HOST:PORT`) and sends our hello.
    pub async fn connect(
        relay: &str,
        pin: Option<Fingerprint>,
        role: Role,
    ) -> Result<RelayLink, ConnectError> {
        let addr = resolve(relay).await?;
        Self::connect_at(relay, addr, pin, role).await
    }

    /// Like [`connect`](Self::connect), to `relay` at `addr`.
    async fn connect_at(
        relay: &str,
        addr: SocketAddr,
        pin: Option<Fingerprint>,
        role: Role,
    ) -> Result<RelayLink, ConnectError> {
        let host = relay
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(relay);
        let (config, pin_report) = tls::client_config(pin)?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0"
                .parse()
                .map_err(|_| ConnectError::Endpoint("bad bind address".into()))?
        } else {
            "0.0.0.0:0"
                .parse()
                .map_err(|_| ConnectError::Endpoint("bad bind address".into()))?
        };
        let mut endpoint =
            crate::udp::client_endpoint(bind).map_err(|e| ConnectError::Endpoint(e.to_string()))?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint
            .connect(addr, host)
            .map_err(|e| ConnectError::Connect {
                relay: relay.to_string(),
                reason: e.to_string(),
            })?;
        let connection = match connecting.await {
            Ok(c) => c,
            Err(e) => {
                if let (Some(expected), Some(got)) = (pin, pin_report.mismatch()) {
                    return Err(ConnectError::PinMismatch { expected, got });
                }
                if refused(&e) {
                    return Err(ConnectError::Refused {
                        relay: relay.to_string(),
                    });
                }
                return Err(ConnectError::Connect {
                    relay: relay.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let (send, recv) = connection
            .open_bi()
            .await
            .map_err(|e| ConnectError::Connect {
                relay: relay.to_string(),
                reason: e.to_string(),
            })?;
        let mut writer = FrameWriter::new(send);
        writer.write_msg(&Hello::new(role)).await?;
        Ok(RelayLink {
            endpoint,
            connection,
            writer,
            reader: FrameReader::new(recv),
        })
    }
}

impl RelayLink {
    /// Like [`connect`](Self::connect), giving up when the relay has not
    /// answered within `within`: a relay that is down sends nothing back,
    /// and QUIC alone would wait out its whole idle timeout.
    pub async fn connect_within(
        relay: &str,
        pin: Option<Fingerprint>,
        role: Role,
        within: std::time::Duration,
    ) -> Result<RelayLink, ConnectError> {
        tokio::time::timeout(within, Self::connect(relay, pin, role))
            .await
            .map_err(|_| ConnectError::NoAnswer {
                relay: relay.to_string(),
                secs: within.as_secs(),
            })?
    }

    /// Closes the relay connection once the end-to-end set-up is over, with
    /// a code that tells the relay how it went (set up, wrong code, or
    /// failed): the relay cannot see the session, only this.
    pub fn close_after_set_up<T>(&self, set_up: &Result<T, crate::e2e::E2eError>) {
        use crate::message::control::close_code;
        let code = match set_up {
            Ok(_) => close_code::SET_UP,
            Err(e) if e.is_wrong_code() => close_code::WRONG_CODE,
            Err(_) => close_code::SETUP_FAILED,
        };
        self.connection.close(code.into(), b"session set up");
    }

    /// The relay's next answer on the control stream; its error frame
    /// becomes [`LinkError::Refused`].
    pub async fn answer(&mut self) -> Result<RelayMsg, LinkError> {
        match self.reader.expect_msg::<RelayMsg>().await? {
            RelayMsg::Error(e) => Err(LinkError::Refused(e)),
            msg => Ok(msg),
        }
    }
}

/// Whether the relay turned the connection away before the handshake (it
/// does so at its connection limits).
fn refused(e: &quinn::ConnectionError) -> bool {
    matches!(
        e,
        quinn::ConnectionError::ConnectionClosed(close)
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED
    )
}

async fn resolve(relay: &str) -> Result<SocketAddr, ConnectError> {
    let mut addrs = tokio::net::lookup_host(relay)
        .await
        .map_err(|e| ConnectError::Resolve {
            relay: relay.to_string(),
            reason: e.to_string(),
        })?;
    addrs.next().ok_or_else(|| ConnectError::Resolve {
        relay: relay.to_string(),
        reason: "no address found".into(),
    })
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("cannot resolve relay address {relay:?}: {reason}; give it as HOST:PORT")]
    Resolve { relay: String, reason: String },
    #[error(
        "relay fingerprint mismatch: expected {expected}, got {got}; check --relay-fingerprint with the relay's operator"
    )]
    PinMismatch {
        expected: Fingerprint,
        got: Fingerprint,
    },
    #[error("cannot connect to relay {relay}: {reason}")]
    Connect { relay: String, reason: String },
    #[error(
        "relay {relay} did not answer within {secs} s: check the address, or that the relay runs"
    )]
    NoAnswer { relay: String, secs: u64 },
    #[error(
        "relay {relay} refused the connection: it is at its connection limit, in total or for your address; close other sessions or try again later"
    )]
    Refused { relay: String },
    #[error("cannot open a network endpoint: {0}")]
    Endpoint(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("relay connection failed: {0}")]
    Frame(#[from] FrameError),
}

/// What goes wrong between a client (agent or console) and the relay,
/// before the end-to-end channel exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("relay refused: {0}")]
    Refused(ErrorFrame),
    #[error("relay connection failed: {0}")]
    Frame(#[from] FrameError),
    #[error("unexpected message from the relay: {0}")]
    Unexpected(String),
}

impl LinkError {
    /// The relay sent `msg` where another answer belonged.
    pub fn unexpected(msg: &RelayMsg) -> Self {
        LinkError::Unexpected(format!("{msg:?}"))
    }
}
