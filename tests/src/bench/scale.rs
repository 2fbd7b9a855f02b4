//! Idle agents held by one relay program: thousands of QUIC connections from
//! a few client endpoints in this process, each saying `Hello(Agent)` and
//! `Open`, getting its nameplate and then waiting, keepalives on, as an agent
//! does while its person reads out the code. At each step the relay's
//! resident memory is read and its CPU share is measured over a quiet window.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::{ClientMsg, Hello, RelayMsg, Role};
use sprijin_proto::tls;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::procfs::{self, CpuMeter};
use super::programs::Relay;

/// Client endpoints (UDP sockets) the idle agents share.
const ENDPOINTS: usize = 8;

/// Connections being set up at once.
const IN_FLIGHT: usize = 48;

/// How long one step may take to open its connections.
const RAMP_LIMIT: Duration = Duration::from_secs(180);

/// What the relay cost at one number of idle agents.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub agents: usize,
    pub rss_bytes: u64,
    pub cpu_pct: f64,
    /// Seconds it took to open this step's new connections.
    pub ramp_secs: f64,
}

pub struct Scale {
    /// The relay with no connection at all.
    pub empty: Step,
    pub steps: Vec<Step>,
}

pub struct Plan {
    pub counts: Vec<usize>,
    /// Pause after the last connection of a step, before measuring.
    pub settle: Duration,
    /// How long idle CPU is measured at each step.
    pub window: Duration,
}

/// One waiting agent's connection and stream, kept open.
struct Idle {
    _connection: Connection,
    _send: SendStream,
    _recv: RecvStream,
}

/// Measures `relay` empty and then at each count in `plan`.
pub async fn idle_agents(relay: &Relay, plan: &Plan) -> anyhow::Result<Scale> {
    let addr: SocketAddr = relay.addr.parse().context("relay address")?;
    let (config, _) = tls::client_config(Some(relay.fingerprint))?;
    let mut endpoints = Vec::with_capacity(ENDPOINTS);
    for _ in 0..ENDPOINTS {
        let mut e = Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
            .context("cannot bind a client endpoint")?;
        e.set_default_client_config(config.clone());
        endpoints.push(e);
    }
    let empty = measure(relay, 0, 0.0, plan).await?;
    let mut held: Vec<Idle> = Vec::new();
    let mut steps = Vec::new();
    for &count in &plan.counts {
        let started = Instant::now();
        let opening = open_up_to(&endpoints, addr, count, &mut held);
        tokio::time::timeout(RAMP_LIMIT, opening)
            .await
            .with_context(|| format!("opening {count} idle agents took too long"))??;
        let ramp = started.elapsed().as_secs_f64();
        steps.push(measure(relay, held.len(), ramp, plan).await?);
    }
    drop(held);
    for e in &endpoints {
        e.close(0u32.into(), b"done");
    }
    for e in &endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(2), e.wait_idle()).await;
    }
    Ok(Scale { empty, steps })
}

async fn measure(
    relay: &Relay,
    agents: usize,
    ramp_secs: f64,
    plan: &Plan,
) -> anyhow::Result<Step> {
    tokio::time::sleep(plan.settle).await;
    let meter = CpuMeter::start(relay.pid())?;
    tokio::time::sleep(plan.window).await;
    let cpu_pct = meter.percent()?;
    Ok(Step {
        agents,
        rss_bytes: procfs::rss_bytes(relay.pid())?,
        cpu_pct,
        ramp_secs,
    })
}

/// Opens connections, at most [`IN_FLIGHT`] at a time, until `held` has `count`.
async fn open_up_to(
    endpoints: &[Endpoint],
    relay: SocketAddr,
    count: usize,
    held: &mut Vec<Idle>,
) -> anyhow::Result<()> {
    let mut opening = JoinSet::new();
    let mut next = held.len();
    let mut failures = 0usize;
    let mut last_failure = String::new();
    while held.len() < count {
        while held.len() + opening.len() < count && opening.len() < IN_FLIGHT {
            let endpoint = endpoints[next % endpoints.len()].clone();
            next += 1;
            opening.spawn(open_one(endpoint, relay));
        }
        match opening.join_next().await {
            Some(Ok(Ok(idle))) => held.push(idle),
            Some(Ok(Err(e))) => {
                failures += 1;
                last_failure = format!("{e:#}");
            }
            Some(Err(e)) => bail!("a connecting task failed: {e}"),
            None => {}
        }
        // A few losses under load are retried; many mean the relay refuses.
        if failures > count / 100 + 10 {
            bail!(
                "{failures} idle agents could not connect (held {}); last: {last_failure}",
                held.len()
            );
        }
    }
    Ok(())
}

async fn open_one(endpoint: Endpoint, relay: SocketAddr) -> anyhow::Result<Idle> {
    let connection = endpoint.connect(relay, "localhost")?.await?;
    let (send, recv) = connection.open_bi().await?;
    let mut writer = FrameWriter::new(send);
    writer.write_msg(&Hello::new(Role::Agent)).await?;
    writer.write_msg(&ClientMsg::Open).await?;
    let mut reader = FrameReader::new(recv);
    match reader.expect_msg::<RelayMsg>().await? {
        RelayMsg::Opened { .. } => Ok(Idle {
            _connection: connection,
            _send: writer.into_inner(),
            _recv: reader.into_inner(),
        }),
        other => bail!("the relay did not open a nameplate: {other:?}"),
    }
}
