//! Round trips of a small sealed session message: the console's end sends a
//! request, the agent's end answers at once, the console times the answer.
//! The messages are real session messages of a few bytes (a cancel request
//! and its refusal), sealed and framed as in a session.

use std::time::Duration;

use anyhow::{Context, bail};
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg, Request};
use tokio::time::Instant;

use super::pairs::{Pair, SealedPair};
use super::stats::Timings;

/// How long one round trip may take before the measurement gives up.
const STUCK: Duration = Duration::from_secs(10);

/// Times `samples` round trips after `warmup` untimed ones.
pub async fn round_trips(pair: Pair, warmup: u32, samples: u32) -> anyhow::Result<Timings> {
    let SealedPair {
        agent,
        console,
        hold,
    } = pair.establish().await?;
    let (mut agent_reader, mut agent_writer) = (agent.reader, agent.writer);
    let echo = tokio::spawn(async move {
        while let Some(ConsoleMsg::Request { id, .. }) = agent_reader.recv::<ConsoleMsg>().await? {
            agent_writer
                .send(&AgentMsg::Refused {
                    id,
                    reason: String::new(),
                })
                .await?;
        }
        let _ = agent_writer.get_mut().finish();
        Ok::<_, anyhow::Error>(())
    });
    let (mut reader, mut writer) = (console.reader, console.writer);
    let mut timings = Timings::new();
    for id in 0..warmup + samples {
        let start = Instant::now();
        writer
            .send(&ConsoleMsg::Request {
                id,
                request: Request::Cancel { run: id },
            })
            .await?;
        let answer = tokio::time::timeout(STUCK, reader.recv::<AgentMsg>())
            .await
            .context("a round trip got stuck")??;
        let elapsed = start.elapsed();
        match answer {
            Some(AgentMsg::Refused { id: got, .. }) if got == id => {}
            other => bail!("unexpected answer to request {id}: {other:?}"),
        }
        if id >= warmup {
            timings.record(elapsed);
        }
    }
    writer.send(&ConsoleMsg::Bye).await?;
    let _ = writer.get_mut().finish();
    tokio::time::timeout(STUCK, echo)
        .await
        .context("the echoing end did not stop")???;
    hold.close();
    Ok(timings)
}
