//! Two connected ends, an agent's and a console's, built from the libraries
//! in one of two ways the benchmark compares:
//!
//! - through the relay: each side connects with `RelayLink`, the agent
//!   opens a nameplate and the console claims it, exactly as the programs
//!   do; then the two connect end to end through the relay's forwarder with
//!   their tickets, and one stream of that connection is what the ends get;
//! - direct: the same two endpoints' settings connected to each other
//!   without the relay, one bidirectional stream between them. This is the
//!   ceiling the relay is measured against.
//!
//! Either way the ends can then say hello and talk in session messages
//! framed as in a session, or use the bare stream.

use super::framed::{self as secure, SecureReader, SecureWriter};
use anyhow::{Context, bail};
use quinn::{Connection, Endpoint, RecvStream, SendStream};

use sprijin_proto::code::{Password, SessionCode};
use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::Role;
use sprijin_proto::tls::Fingerprint;

/// One end's halves of the session stream.
pub struct Stream {
    pub send: SendStream,
    pub recv: RecvStream,
}

/// One end of an established end-to-end session.
pub struct Sealed {
    pub reader: SecureReader<RecvStream>,
    pub writer: SecureWriter<SendStream>,
}

/// What keeps a pair's connections open while its streams are in use.
pub struct Hold {
    _endpoints: Vec<Endpoint>,
    connections: Vec<Connection>,
    /// The relayed paths and control links the connection needs.
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

impl Hold {
    /// Closes the connections at once (the transfer is over).
    pub fn close(self) {
        for c in &self.connections {
            c.close(0u32.into(), b"done");
        }
    }
}

/// Two connected ends, before the end-to-end handshake.
pub struct Pair {
    pub agent: Stream,
    pub console: Stream,
    /// The code both ends use for the handshake.
    pub code: SessionCode,
    pub hold: Hold,
}

/// An established end-to-end session between the two ends.
pub struct SealedPair {
    pub agent: Sealed,
    pub console: Sealed,
    pub hold: Hold,
}

impl Pair {
    /// Runs the real handshake on both ends at once.
    pub async fn establish(self) -> anyhow::Result<SealedPair> {
        let Pair {
            agent,
            console,
            code,
            hold,
        } = self;
        let (a, c) = tokio::join!(
            secure::establish(
                Role::Agent,
                &code,
                FrameReader::new(agent.recv),
                FrameWriter::new(agent.send),
            ),
            secure::establish(
                Role::Console,
                &code,
                FrameReader::new(console.recv),
                FrameWriter::new(console.send),
            ),
        );
        let (a, c) = (
            a.context("agent handshake failed")?,
            c.context("console handshake failed")?,
        );
        if a.verification != c.verification {
            bail!("the two ends derived different verification words");
        }
        Ok(SealedPair {
            agent: Sealed {
                reader: a.reader,
                writer: a.writer,
            },
            console: Sealed {
                reader: c.reader,
                writer: c.writer,
            },
            hold,
        })
    }
}

/// Pairs an agent and a console through the relay at `relay`, the way the
/// programs do.
pub async fn through_relay(relay: &str, pin: Fingerprint) -> anyhow::Result<Pair> {
    let tickets = super::relayed::pair(relay, pin).await?;
    let ends = super::relayed::through_relay(tickets.relay, &tickets).await?;
    open_pair(ends, vec![Box::new(tickets.link)]).await
}

/// The same two endpoints' settings connected to each other directly: the
/// ceiling the relay is measured against.
pub async fn direct() -> anyhow::Result<Pair> {
    open_pair(super::relayed::direct().await?, Vec::new()).await
}

/// Opens one bidirectional stream between the two ends of a connection.
async fn open_pair(
    ends: super::relayed::Ends,
    mut keep: Vec<Box<dyn std::any::Any + Send>>,
) -> anyhow::Result<Pair> {
    let (mut console_send, console_recv) = ends.console.open_bi().await?;
    // A stream is only announced to the peer with its first byte; this one
    // is read and dropped below, before either end starts.
    console_send.write_all(&[0]).await?;
    let (agent_send, mut agent_recv) = ends.agent.accept_bi().await?;
    let mut first = [0u8; 1];
    agent_recv.read_exact(&mut first).await?;
    let code = SessionCode::new(
        sprijin_proto::code::Nameplate::new(1).context("nameplate 1")?,
        Password::generate(),
    );
    keep.extend(
        [ends.agent_path, ends.console_path]
            .into_iter()
            .flatten()
            .map(|p| Box::new(p) as Box<dyn std::any::Any + Send>),
    );
    Ok(Pair {
        agent: Stream {
            send: agent_send,
            recv: agent_recv,
        },
        console: Stream {
            send: console_send,
            recv: console_recv,
        },
        code,
        hold: Hold {
            _endpoints: ends.endpoints,
            connections: vec![ends.console, ends.agent],
            _keep: keep,
        },
    })
}
