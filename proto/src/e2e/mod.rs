//! The end-to-end session between agent and console: one QUIC connection
//! between the two, authenticated inside by the code's password.
//!
//! The relay only forwards the connection's datagrams, so TLS runs between
//! the two ends. Each side uses a fresh self-signed certificate and accepts
//! any certificate at the TLS layer (see [`crate::tls::session_server_config`]);
//! what proves the other end is the one the person read the code to is the
//! handshake here, on the connection's first bidirectional stream (the
//! *control stream*, opened by the console):
//!
//! ```text
//!  agent (QUIC server)                          console (QUIC client)
//!                     ◀── Hello, PAKE message ──
//!  ── Hello, PAKE message ──▶
//!  ── confirmation ──▶            ◀── confirmation ──
//! ```
//!
//! The PAKE's transcript binds the connection's TLS exporter (under
//! [`EXPORTER_LABEL`]) and both certificates ([`crate::channel::LinkBinding`]),
//! so a relay that terminates TLS towards either side, or a wrong code, fails
//! key confirmation on both sides as [`ChannelError::WrongCode`]. After that,
//! QUIC's TLS 1.3 is the only encryption: session messages are plain
//! length-prefixed frames on QUIC streams.
//!
//! Streams ([`streams`]): the control stream carries the session's own
//! messages (identity, welcome, diagnostics, catalog, cancel, say, audit
//! heads, goodbye); every run, question and file transfer gets a
//! unidirectional stream of its own from the agent, whose first frame names
//! the request, so a long output never delays anything else.

pub mod streams;

use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use rustls::pki_types::CertificateDer;

use crate::channel::{ChannelError, Handshake, LinkBinding, SessionBinding, Side};
use crate::code::SessionCode;
use crate::framing::{FrameError, FrameReader, FrameWriter};
use crate::message::control::{Hello, PROTOCOL_VERSION, Role, close_code, version_mismatch};
use crate::tls::SessionIdentity;

/// The label of the TLS exporter the handshake is bound to.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-sprijin-e2e/3 pake";

/// How long a side that found the code wrong waits for the other to
/// acknowledge our confirmation before it closes the connection.
const WRONG_CODE_LINGER: Duration = Duration::from_secs(2);

/// The authenticated session: its connection, the control stream, the
/// words both people can compare, and the value that ties a signature to
/// this session (see [`crate::credential`]).
pub struct Established {
    pub connection: Connection,
    pub reader: FrameReader<RecvStream>,
    pub writer: FrameWriter<SendStream>,
    pub verification: String,
    pub binding: SessionBinding,
}

/// Runs the handshake as `role` with the code's password on `connection`,
/// whose TLS identity on this side is `identity`. The console opens the
/// control stream; the agent accepts it.
///
/// On a wrong code the connection is closed with
/// [`close_code::WRONG_CODE`] before this returns.
pub async fn establish(
    role: Role,
    code: &SessionCode,
    connection: Connection,
    identity: &SessionIdentity,
) -> Result<Established, E2eError> {
    let result = handshake(role, code, &connection, identity).await;
    match result {
        Ok((reader, writer, verification, binding)) => Ok(Established {
            connection,
            reader,
            writer,
            verification,
            binding,
        }),
        Err(e) => {
            let close = if e.is_wrong_code() {
                close_code::WRONG_CODE
            } else {
                close_code::SETUP_FAILED
            };
            connection.close(close.into(), b"session set-up failed");
            Err(e)
        }
    }
}

type Opened = (
    FrameReader<RecvStream>,
    FrameWriter<SendStream>,
    String,
    SessionBinding,
);

async fn handshake(
    role: Role,
    code: &SessionCode,
    connection: &Connection,
    identity: &SessionIdentity,
) -> Result<Opened, E2eError> {
    let link = link_binding(role, connection, identity)?;
    let side = match role {
        Role::Agent => Side::Agent,
        Role::Console => Side::Console,
    };
    let (send, recv) = match role {
        Role::Console => connection.open_bi().await,
        Role::Agent => connection.accept_bi().await,
    }
    .map_err(|e| lost(&e))?;
    let mut writer = FrameWriter::new(send);
    let mut reader = FrameReader::new(recv);
    let (handshake, pake) = Handshake::start(
        side,
        &code.nameplate().to_string(),
        code.password().as_str(),
        link,
    );
    writer.write_msg(&Hello::new(role)).await?;
    writer.write_frame(&pake).await?;

    let hello: Hello = reader
        .expect_msg()
        .await
        .map_err(|e| closed(connection, e))?;
    if hello.version != PROTOCOL_VERSION {
        return Err(E2eError::VersionMismatch(version_mismatch(
            PROTOCOL_VERSION,
            hello.version,
        )));
    }
    if hello.role == role {
        return Err(E2eError::SameRole);
    }
    let peer_pake = reader
        .read_frame()
        .await
        .map_err(|e| closed(connection, e))?
        .ok_or_else(|| closed(connection, FrameError::Closed))?;
    let confirming = handshake.receive(&peer_pake)?;
    writer.write_frame(&confirming.confirmation()).await?;
    let peer_confirmation = reader
        .read_frame()
        .await
        .map_err(|e| closed(connection, e))?
        .ok_or_else(|| closed(connection, FrameError::Closed))?;
    let channel = match confirming.verify(&peer_confirmation) {
        Ok(channel) => channel,
        Err(e) => {
            // Our tag must reach the other side before the connection
            // closes, so it finds the code wrong too rather than lost.
            let send = writer.get_mut();
            let _ = send.finish();
            let _ = tokio::time::timeout(WRONG_CODE_LINGER, send.stopped()).await;
            return Err(e.into());
        }
    };
    Ok((
        reader,
        writer,
        channel.verification_words(),
        channel.binding().clone(),
    ))
}

/// What this side sees of the connection: the exporter and both
/// certificates, agent's first.
fn link_binding(
    role: Role,
    connection: &Connection,
    identity: &SessionIdentity,
) -> Result<LinkBinding, E2eError> {
    let mut exporter = vec![0u8; 32];
    connection
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .map_err(|_| E2eError::Exporter)?;
    let peer = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().map(|c| c.to_vec()))
        .ok_or(E2eError::NoPeerCertificate)?;
    let own = identity.certificate().to_vec();
    let (agent_certificate, console_certificate) = match role {
        Role::Agent => (own, peer),
        Role::Console => (peer, own),
    };
    Ok(LinkBinding {
        exporter,
        agent_certificate,
        console_certificate,
    })
}

/// A read that failed because the peer closed the connection with the
/// wrong-code close is the wrong code, not a lost connection: the peer
/// found out first.
fn closed(connection: &Connection, e: FrameError) -> E2eError {
    match connection.close_reason() {
        Some(reason) => lost(&reason),
        None => E2eError::Frame(e),
    }
}

fn lost(e: &quinn::ConnectionError) -> E2eError {
    match e {
        quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code == quinn::VarInt::from_u32(close_code::WRONG_CODE) =>
        {
            E2eError::Channel(ChannelError::WrongCode)
        }
        other => E2eError::Connection(other.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    #[error("{0}")]
    VersionMismatch(String),
    #[error("the peer claims the same role as this side: the relay paired the wrong peers")]
    SameRole,
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the connection to the other side failed: {0}")]
    Connection(String),
    #[error("the session connection has no tls keys to bind the handshake to; start again")]
    Exporter,
    #[error("the other side presented no certificate; it is not a sprijin program of this version")]
    NoPeerCertificate,
}

impl E2eError {
    /// True when the other side used a different password, or someone in
    /// between tried to take part.
    pub fn is_wrong_code(&self) -> bool {
        matches!(self, E2eError::Channel(ChannelError::WrongCode))
    }

    /// True when the other side went away during set-up.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            E2eError::Connection(_)
                | E2eError::Frame(FrameError::Closed | FrameError::Io(_) | FrameError::Truncated)
        )
    }
}

#[cfg(test)]
mod tests;
