//! Bulk transfer from the agent's end to the console's, for a fixed time:
//! sealed session messages (`AgentMsg::Output`, as a script's output travels)
//! or bare frames of the same size, over any [`Pair`]; and the sealed
//! transfer over an in-memory pipe, to tell the end-to-end layer's own cost
//! from the network's.
//!
//! The rate is taken at the receiver, from the arrival of the first message
//! to the arrival of the last, so connection set-up and the handshake are
//! not in it.

use std::time::Duration;

use super::framed::{self as secure, SecureReader, SecureWriter};
use anyhow::{Context, bail};
use sprijin_proto::code::{Nameplate, Password, SessionCode};
use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::Role;
use sprijin_proto::message::script::OutStream;
use sprijin_proto::message::session::AgentMsg;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::pairs::{Pair, SealedPair};
use super::procfs::MIB;

/// Payload bytes per message.
pub const MESSAGE: usize = 64 * 1024;

/// The in-memory pipe's buffer, about what a QUIC stream window holds.
const PIPE: usize = 1024 * 1024;

/// How long a transfer may overrun its planned time before it counts as stuck.
const GRACE: Duration = Duration::from_secs(30);

/// Bytes moved over a stretch of time.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub bytes: u64,
    pub secs: f64,
}

impl Rate {
    pub fn mib_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 / MIB / self.secs
        } else {
            0.0
        }
    }
}

/// Counts what the receiver got, starting at the first arrival.
struct Meter {
    first: Option<Instant>,
    bytes: u64,
}

impl Meter {
    fn new() -> Meter {
        Meter {
            first: None,
            bytes: 0,
        }
    }

    fn arrived(&mut self, n: usize) {
        // The first message starts the clock, so its bytes are not counted.
        if self.first.is_none() {
            self.first = Some(Instant::now());
        } else {
            self.bytes += n as u64;
        }
    }

    fn rate(&self) -> anyhow::Result<Rate> {
        let Some(first) = self.first else {
            bail!("nothing arrived");
        };
        Ok(Rate {
            bytes: self.bytes,
            secs: first.elapsed().as_secs_f64(),
        })
    }
}

/// Sealed session messages for `duration`, agent to console.
pub async fn sealed(pair: Pair, duration: Duration) -> anyhow::Result<Rate> {
    let SealedPair {
        agent,
        console,
        hold,
    } = pair.establish().await?;
    let rate = sealed_transfer(agent.writer, console.reader, duration).await?;
    hold.close();
    Ok(rate)
}

/// The same transfer between two ends in this process joined by an
/// in-memory pipe: the end-to-end layer alone (encoding, sealing, framing),
/// with no network and no QUIC.
pub async fn in_memory(duration: Duration) -> anyhow::Result<Rate> {
    let (agent_io, console_io) = tokio::io::duplex(PIPE);
    let (agent_read, agent_write) = tokio::io::split(agent_io);
    let (console_read, console_write) = tokio::io::split(console_io);
    let code = SessionCode::new(
        Nameplate::new(1).context("nameplate 1")?,
        Password::generate(),
    );
    let (agent, console) = tokio::join!(
        secure::establish(
            Role::Agent,
            &code,
            FrameReader::new(agent_read),
            FrameWriter::new(agent_write),
        ),
        secure::establish(
            Role::Console,
            &code,
            FrameReader::new(console_read),
            FrameWriter::new(console_write),
        ),
    );
    let (agent, console) = (agent?, console?);
    sealed_transfer(agent.writer, console.reader, duration).await
}

/// Sends [`MESSAGE`]-sized output messages until `duration` is up, then a
/// goodbye, and measures them at the receiving end.
async fn sealed_transfer<W, R>(
    mut writer: SecureWriter<W>,
    mut reader: SecureReader<R>,
    duration: Duration,
) -> anyhow::Result<Rate>
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let sender = tokio::spawn(async move {
        let msg = AgentMsg::Output {
            id: 1,
            stream: OutStream::Stdout,
            data: vec![0x5a; MESSAGE],
        };
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            writer.send(&msg).await?;
        }
        writer
            .send(&AgentMsg::Bye {
                reason: "done".into(),
            })
            .await?;
        let _ = writer.get_mut().shutdown().await;
        Ok::<_, anyhow::Error>(writer)
    });
    let receive = async {
        let mut meter = Meter::new();
        loop {
            match reader.recv::<AgentMsg>().await? {
                Some(AgentMsg::Output { data, .. }) => meter.arrived(data.len()),
                Some(AgentMsg::Bye { .. }) | None => break,
                Some(other) => bail!("unexpected message: {other:?}"),
            }
        }
        meter.rate()
    };
    let rate = tokio::time::timeout(duration + GRACE, receive)
        .await
        .context("the sealed transfer got stuck")??;
    // Keep the sender's stream until the receiver saw the end.
    let _writer = sender.await??;
    Ok(rate)
}

/// Bare frames of the same size for `duration`: the transport alone,
/// without the end-to-end encoding and sealing.
pub async fn bare(pair: Pair, duration: Duration) -> anyhow::Result<Rate> {
    let Pair {
        agent,
        console,
        hold,
        ..
    } = pair;
    let mut writer = FrameWriter::new(agent.send);
    let sender = tokio::spawn(async move {
        let frame = vec![0x5a; MESSAGE];
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            writer.write_frame(&frame).await?;
        }
        let _ = writer.get_mut().finish();
        Ok::<_, anyhow::Error>(writer)
    });
    let mut reader = FrameReader::new(console.recv);
    let receive = async {
        let mut meter = Meter::new();
        while let Some(frame) = reader.read_frame().await? {
            meter.arrived(frame.len());
        }
        meter.rate()
    };
    let rate = tokio::time::timeout(duration + GRACE, receive)
        .await
        .context("the bare transfer got stuck")??;
    let _writer = sender.await??;
    hold.close();
    Ok(rate)
}
