//! The real agent program in a session: what it costs at rest, and how fast
//! it answers a diagnostics request.
//!
//! The console's side is the console library's [`Session`], in this process:
//! it claims the agent's code, runs the handshake and gets the person's "y"
//! (typed ahead on the agent's input). After one first snapshot, the session
//! sits idle while the agent's memory is sampled each second and its CPU
//! share measured over the window; its background sampler keeps running, as
//! it does in every session. Then the console asks for diagnostics again and
//! again and times each answer.

use std::time::Duration;

use anyhow::{Context, bail};
use sprijin_console::session::{ConnectOptions, Session};
use sprijin_proto::message::session::{AgentMsg, Request};
use tokio::time::Instant;

use super::procfs::{self, CpuMeter};
use super::programs::{Agent, Relay};
use super::stats::Timings;

/// How long one diagnostics request may take.
const STUCK: Duration = Duration::from_secs(30);

/// Pause after the first snapshot before the quiet window starts.
const SETTLE: Duration = Duration::from_secs(1);

pub struct Plan {
    pub window: Duration,
    pub snapshots: u32,
}

pub struct Outcome {
    /// The largest resident size seen during the window.
    pub rss_bytes: u64,
    pub cpu_pct: f64,
    pub snapshots: Timings,
}

pub async fn measure(relay: &Relay, agent: &Agent, plan: &Plan) -> anyhow::Result<Outcome> {
    let options = ConnectOptions {
        relay: relay.addr.clone(),
        relay_fingerprint: Some(relay.fingerprint),
        technician: "bench".into(),
        token: None,
        session_idle_timeout: sprijin_proto::tls::SESSION_IDLE_TIMEOUT,
        // The bench measures the relayed path here.
        direct: sprijin_proto::path::direct::Policy::Never,
    };
    let session = tokio::time::timeout(STUCK, Session::connect(&agent.code, &options))
        .await
        .context("the session did not start in time")?
        .context("cannot connect to the agent")?;
    diagnostics(&session).await?;
    tokio::time::sleep(SETTLE).await;

    let pid = agent.pid();
    let meter = CpuMeter::start(pid)?;
    let end = Instant::now() + plan.window;
    let mut rss_bytes = procfs::rss_bytes(pid)?;
    while Instant::now() < end {
        let step = (end - Instant::now()).min(Duration::from_secs(1));
        tokio::time::sleep(step).await;
        rss_bytes = rss_bytes.max(procfs::rss_bytes(pid)?);
    }
    let cpu_pct = meter.percent()?;

    let mut snapshots = Timings::new();
    for _ in 0..plan.snapshots {
        let start = Instant::now();
        diagnostics(&session).await?;
        snapshots.record(start.elapsed());
    }
    session.close().await;
    Ok(Outcome {
        rss_bytes,
        cpu_pct,
        snapshots,
    })
}

/// One diagnostics request and its answer.
async fn diagnostics(session: &Session) -> anyhow::Result<()> {
    let (_, mut replies) = session.request(Request::Diagnostics).await?;
    match tokio::time::timeout(STUCK, replies.recv())
        .await
        .context("no diagnostics in time")?
    {
        Some(AgentMsg::Diagnostics { .. }) => Ok(()),
        other => bail!("expected diagnostics, got {other:?}"),
    }
}
