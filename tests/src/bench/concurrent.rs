//! Many sessions through one relay at the same moment, each moving its own
//! payload from the agent's end to the console's over the sealed session
//! channel, followed by the payload's SHA-256. The console's end hashes what
//! arrived and compares it with both the digest the agent sent and the one
//! the harness computed; a session counts only if all three agree and every
//! byte arrived.
//!
//! All sessions are paired and their handshakes done first; then one signal
//! starts every transfer, and the aggregate rate is the bytes of the good
//! sessions over the time until the last one finished.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use sprijin_proto::message::script::OutStream;
use sprijin_proto::message::session::AgentMsg;
use sprijin_proto::tls::Fingerprint;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::pairs::{self, SealedPair};
use super::throughput::MESSAGE;

/// Sessions being paired at once while setting up.
const PAIRING_IN_FLIGHT: usize = 16;

pub struct Plan {
    pub sessions: usize,
    /// Payload bytes per session.
    pub payload: usize,
    /// The longest the whole measurement may take.
    pub limit: Duration,
}

pub struct Outcome {
    pub total: usize,
    pub ok: usize,
    /// Payload bytes of the sessions that arrived whole.
    pub bytes: u64,
    /// From the start signal to the last session's end.
    pub secs: f64,
    /// The first few things that went wrong, for the report.
    pub failures: Vec<String>,
}

/// A paired session with its payload, ready to go.
struct Ready {
    pair: SealedPair,
    messages: Vec<AgentMsg>,
    digest: [u8; 32],
    len: usize,
}

pub async fn sessions(relay: &str, pin: Fingerprint, plan: &Plan) -> anyhow::Result<Outcome> {
    tokio::time::timeout(plan.limit, run(relay, pin, plan))
        .await
        .context("the concurrent sessions did not finish in time")?
}

async fn run(relay: &str, pin: Fingerprint, plan: &Plan) -> anyhow::Result<Outcome> {
    let mut failures = Vec::new();
    let mut ready = Vec::with_capacity(plan.sessions);
    let mut pairing = JoinSet::new();
    let relay: Arc<str> = relay.into();
    for i in 0..plan.sessions {
        if pairing.len() >= PAIRING_IN_FLIGHT {
            collect(&mut pairing, &mut ready, &mut failures).await?;
        }
        let relay = relay.clone();
        let len = plan.payload;
        pairing.spawn(async move { prepare(&relay, pin, i as u64, len).await });
    }
    while !pairing.is_empty() {
        collect(&mut pairing, &mut ready, &mut failures).await?;
    }

    let (go, start) = watch::channel(false);
    let mut running = JoinSet::new();
    for session in ready {
        let mut start = start.clone();
        running.spawn(async move {
            start
                .wait_for(|go| *go)
                .await
                .map_err(|_| anyhow::anyhow!("start signal lost"))?;
            transfer(session).await
        });
    }
    let started = Instant::now();
    go.send_replace(true);
    let (mut ok, mut bytes) = (0, 0u64);
    while let Some(done) = running.join_next().await {
        match done.context("a session task failed")? {
            Ok(n) => {
                ok += 1;
                bytes += n as u64;
            }
            Err(e) => note(&mut failures, e),
        }
    }
    Ok(Outcome {
        total: plan.sessions,
        ok,
        bytes,
        secs: started.elapsed().as_secs_f64(),
        failures,
    })
}

async fn collect(
    pairing: &mut JoinSet<anyhow::Result<Ready>>,
    ready: &mut Vec<Ready>,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    if let Some(done) = pairing.join_next().await {
        match done.context("a pairing task failed")? {
            Ok(r) => ready.push(r),
            Err(e) => note(failures, e.context("pairing")),
        }
    }
    Ok(())
}

fn note(failures: &mut Vec<String>, e: anyhow::Error) {
    if failures.len() < 5 {
        failures.push(format!("{e:#}"));
    }
}

/// Pairs one session through the relay and builds its payload messages.
async fn prepare(relay: &str, pin: Fingerprint, seed: u64, len: usize) -> anyhow::Result<Ready> {
    let pair = pairs::through_relay(relay, pin).await?.establish().await?;
    let payload = payload(seed, len);
    let digest = Sha256::digest(&payload).into();
    let messages = payload
        .chunks(MESSAGE)
        .map(|chunk| AgentMsg::Output {
            id: 1,
            stream: OutStream::Stdout,
            data: chunk.to_vec(),
        })
        .collect();
    Ok(Ready {
        pair,
        messages,
        digest,
        len,
    })
}

/// Sends the payload and its digest one way and checks them on arrival.
/// Returns the payload bytes that arrived whole.
async fn transfer(session: Ready) -> anyhow::Result<usize> {
    let Ready {
        pair,
        messages,
        digest,
        len,
    } = session;
    let (mut writer, mut reader) = (pair.agent.writer, pair.console.reader);
    let send = async move {
        for msg in &messages {
            writer.send(msg).await?;
        }
        writer
            .send(&AgentMsg::Bye {
                reason: hex::encode(digest),
            })
            .await?;
        let _ = writer.get_mut().finish();
        Ok::<_, anyhow::Error>(writer)
    };
    let receive = async move {
        let mut hasher = Sha256::new();
        let mut got = 0usize;
        let claimed = loop {
            match reader.recv::<AgentMsg>().await? {
                Some(AgentMsg::Output { data, .. }) => {
                    hasher.update(&data);
                    got += data.len();
                }
                Some(AgentMsg::Bye { reason }) => break reason,
                Some(other) => bail!("unexpected message: {other:?}"),
                None => bail!("the stream ended after {got} of {len} bytes"),
            }
        };
        let arrived: [u8; 32] = hasher.finalize().into();
        if got != len {
            bail!("{got} of {len} bytes arrived");
        }
        if arrived != digest || claimed != hex::encode(digest) {
            bail!("the payload arrived corrupted");
        }
        Ok(got)
    };
    let (sent, received) = tokio::join!(send, receive);
    let _writer = sent?;
    let got = received?;
    pair.hold.close();
    Ok(got)
}

/// `len` bytes that differ between sessions: splitmix64 from `seed`.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_differ_by_seed_and_have_the_asked_length() {
        let a = payload(1, 1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, payload(1, 1000));
        assert_ne!(a, payload(2, 1000));
    }
}
