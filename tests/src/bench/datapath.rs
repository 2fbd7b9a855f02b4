//! The end-to-end data path through the relay program's datagram
//! forwarder: two endpoints with relayed paths and tickets from a real
//! rendezvous, against the same two endpoints connected directly.
//!
//! - throughput: one stream for a fixed time, direct and relayed taking
//!   turns, and the relay program's CPU while it forwards (percent of a
//!   core, and CPU seconds per GiB forwarded); then the same turns again
//!   with the relay on a core of its own and both ends on the others, as
//!   when it runs on its own machine (see [`Apart`]);
//! - latency: round trips of a small message on one stream;
//! - migration: the agent's side moves to a new socket in the middle of a
//!   transfer, which must still arrive whole;
//! - restart: the relay program is killed in the middle of a transfer and
//!   started again on the same address and data dir; the transfer must
//!   arrive whole. The restart's gap is how long after the relay is back
//!   (it stays down a second, as a real restart does) the side that only
//!   receives reads again: the agent's end, whose output comes paced like a
//!   script's, so it sends nothing but acknowledgements and is quiet by the
//!   time the relay returns; the relay can learn it again only from its
//!   own presentations.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use quinn::Connection;
use sprijin_proto::path::direct::{PathChange, Policy};
use tokio::time::Instant;

use super::affinity::Apart;
use super::procfs::{CpuMeter, MIB};
use super::programs::Relay;
use super::relayed::{self, Ends};
use super::stats::Timings;

const GIB: f64 = 1024.0 * MIB;

/// Turns each of the direct and the relayed transfer takes, sharing the
/// plan's transfer time.
const ROUNDS: u32 = 3;

/// How long a transfer in the migration and restart runs may take.
const LIMIT: Duration = Duration::from_secs(60);

/// Bytes moved in the migration run.
const MOVED: u64 = 32 * 1024 * 1024;

/// Bytes moved in the restart run, a 64 KiB piece every [`RESTART_PACE`],
/// as a script's output comes: the receiving side then only acknowledges
/// each piece and is quiet in between, so nothing it sends after the
/// restart tells the relay where it is.
const RESTART_MOVED: u64 = 4 * 1024 * 1024;
const RESTART_PACE: Duration = Duration::from_millis(20);

/// How long the relay stays down in the restart run, as when it is stopped,
/// replaced and started again.
const RESTART_OUTAGE: Duration = Duration::from_secs(1);

pub struct Plan {
    pub transfer: Duration,
    pub warmup: u32,
    pub samples: u32,
}

#[derive(Default)]
pub struct Outcome {
    pub relay_mib_s: f64,
    pub direct_mib_s: f64,
    pub relay_cpu_pct: f64,
    pub relay_cpu_s_per_gib: f64,
    /// This process's CPU (both ends) during the relayed and the direct
    /// turns: the ends cost the same per byte either way, so the ratio
    /// follows their share of the machine.
    pub ends_cpu_pct_relay: f64,
    pub ends_cpu_pct_direct: f64,
    /// The same turns with the relay on a core of its own and both ends on
    /// the others, as when the relay runs on its own machine; `None` with
    /// one core.
    pub apart_relay_mib_s: Option<f64>,
    pub apart_direct_mib_s: Option<f64>,
    pub latency_relay: Timings,
    pub latency_direct: Timings,
    pub migration_ok: bool,
    /// The relayed connection moved to a direct path both ends punched.
    pub direct_ok: bool,
    /// A transfer on the connection once direct, against plain direct QUIC.
    pub direct_after_move_mib_s: f64,
    pub restart_ok: bool,
    pub restart_gap_ms: f64,
    pub errors: Vec<String>,
}

/// Sends zeros on one stream for `time`; returns the bytes the other end
/// read and the seconds it took.
async fn stream_for(ends: &Ends, time: Duration) -> anyhow::Result<(u64, f64)> {
    let chunk = vec![0u8; 64 * 1024];
    let console = ends.console.clone();
    let sender = tokio::spawn(async move {
        let mut send = console.open_uni().await?;
        let end = Instant::now() + time;
        while Instant::now() < end {
            send.write_all(&chunk).await?;
        }
        send.finish()?;
        anyhow::Ok(())
    });
    let mut recv = ends.agent.accept_uni().await?;
    let started = Instant::now();
    let mut total = 0u64;
    while let Some(c) = recv.read_chunk(usize::MAX, true).await? {
        total += c.bytes.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    sender.await??;
    Ok((total, secs))
}

/// Times round trips of a 32-byte message the agent's end echoes.
async fn round_trips(ends: &Ends, warmup: u32, samples: u32) -> anyhow::Result<Timings> {
    let agent = ends.agent.clone();
    let echo = tokio::spawn(async move {
        let (mut send, mut recv) = agent.accept_bi().await?;
        let mut buf = [0u8; 32];
        while recv.read_exact(&mut buf).await.is_ok() {
            send.write_all(&buf).await?;
        }
        anyhow::Ok(())
    });
    let (mut send, mut recv) = ends.console.open_bi().await?;
    let mut timings = Timings::new();
    let mut buf = [7u8; 32];
    for i in 0..warmup + samples {
        let at = Instant::now();
        send.write_all(&buf).await?;
        tokio::time::timeout(LIMIT, recv.read_exact(&mut buf))
            .await
            .context("a round trip took too long")??;
        if i >= warmup {
            timings.record(at.elapsed());
        }
    }
    send.finish()?;
    let _ = tokio::time::timeout(Duration::from_secs(5), echo).await;
    Ok(timings)
}

async fn connect(relay: &Relay) -> anyhow::Result<(relayed::Tickets, Ends)> {
    let tickets = relayed::pair(&relay.addr, relay.fingerprint).await?;
    let addr = relay.addr.parse().context("the relay's address")?;
    let ends = tokio::time::timeout(LIMIT, relayed::through_relay(addr, &tickets))
        .await
        .context("connecting through the relay took too long")??;
    Ok((tickets, ends))
}

/// Sends `moved` bytes of the pattern, console to agent, paced by `pace`
/// when given; once a third has arrived, runs `midway`. Returns whether all
/// arrived intact, the longest gap between two reads at the agent (which
/// only receives) after `midway` began, in milliseconds, and when each of
/// those reads came.
async fn transfer_across(
    ends: &Ends,
    moved: u64,
    pace: Option<Duration>,
    midway: impl AsyncFnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<(bool, f64, Vec<Instant>)> {
    let console = ends.console.clone();
    let sender =
        tokio::spawn(async move { relayed::send_pattern_paced(&console, moved, pace).await });
    let agent: Connection = ends.agent.clone();
    let (third_tx, third_rx) = tokio::sync::oneshot::channel::<()>();
    let gap = Arc::new(std::sync::Mutex::new((
        None::<Instant>,
        0f64,
        false,
        Vec::<Instant>::new(),
    )));
    let receiver = {
        let gap = gap.clone();
        tokio::spawn(async move {
            let mut third = Some(third_tx);
            relayed::receive(&agent, |n| {
                let now = Instant::now();
                if let Ok(mut g) = gap.lock() {
                    if g.2
                        && let Some(last) = g.0
                    {
                        g.1 = g.1.max(now.duration_since(last).as_secs_f64() * 1000.0);
                    }
                    if g.2 {
                        g.3.push(now);
                    }
                    g.0 = Some(now);
                }
                if n >= moved / 3
                    && let Some(t) = third.take()
                {
                    let _ = t.send(());
                }
            })
            .await
        })
    };
    tokio::time::timeout(LIMIT, third_rx)
        .await
        .context("a third of the transfer did not arrive")??;
    if let Ok(mut g) = gap.lock() {
        g.2 = true;
    }
    midway().await?;
    let (len, digest) = tokio::time::timeout(LIMIT, receiver)
        .await
        .context("the transfer did not finish")???;
    sender.await??;
    let ok = len == moved && digest == relayed::pattern_digest(moved);
    let (worst, reads) = gap
        .lock()
        .map(|mut g| (g.1, std::mem::take(&mut g.3)))
        .unwrap_or_default();
    Ok((ok, worst, reads))
}

/// What the direct and the relayed transfers moved, taking turns.
#[derive(Default)]
struct Turns {
    direct_bytes: u64,
    direct_secs: f64,
    direct_wall_s: f64,
    ends_direct_cpu_s: f64,
    relay_bytes: u64,
    relay_secs: f64,
    relay_wall_s: f64,
    ends_relay_cpu_s: f64,
    relay_cpu_s: f64,
}

impl Turns {
    fn direct_mib_s(&self) -> f64 {
        self.direct_bytes as f64 / MIB / self.direct_secs
    }

    fn relay_mib_s(&self) -> f64 {
        self.relay_bytes as f64 / MIB / self.relay_secs
    }
}

/// Direct and relayed take [`ROUNDS`] turns of `piece` each, so a busy
/// moment of the machine falls on both rather than on one; this process's
/// CPU (both ends) is measured in both, the relay's in the relayed turns.
async fn turns(
    direct: &Ends,
    ends: &Ends,
    relay: &Relay,
    piece: Duration,
) -> anyhow::Result<Turns> {
    let mut t = Turns::default();
    let me = std::process::id();
    for _ in 0..ROUNDS {
        let ends_cpu = CpuMeter::start(me)?;
        let wall = Instant::now();
        let (bytes, secs) = stream_for(direct, piece).await?;
        let wall = wall.elapsed().as_secs_f64();
        t.ends_direct_cpu_s += ends_cpu.percent()? / 100.0 * wall;
        t.direct_wall_s += wall;
        t.direct_bytes += bytes;
        t.direct_secs += secs;
        let relay_cpu = CpuMeter::start(relay.pid())?;
        let ends_cpu = CpuMeter::start(me)?;
        let wall = Instant::now();
        let (bytes, secs) = stream_for(ends, piece).await?;
        let wall = wall.elapsed().as_secs_f64();
        t.relay_cpu_s += relay_cpu.percent()? / 100.0 * wall;
        t.ends_relay_cpu_s += ends_cpu.percent()? / 100.0 * wall;
        t.relay_wall_s += wall;
        t.relay_bytes += bytes;
        t.relay_secs += secs;
    }
    Ok(t)
}

pub async fn measure(
    relay: &Relay,
    program: Option<&std::path::Path>,
    plan: &Plan,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();

    let direct = relayed::direct().await?;
    let (_tickets, ends) = connect(relay).await?;
    let piece = plan.transfer / ROUNDS;
    let shared = turns(&direct, &ends, relay, piece).await?;
    out.direct_mib_s = shared.direct_mib_s();
    out.relay_mib_s = shared.relay_mib_s();
    out.relay_cpu_pct = shared.relay_cpu_s / shared.relay_wall_s * 100.0;
    out.relay_cpu_s_per_gib = shared.relay_cpu_s / (shared.relay_bytes as f64 / GIB);
    out.ends_cpu_pct_relay = shared.ends_relay_cpu_s / shared.relay_wall_s * 100.0;
    out.ends_cpu_pct_direct = shared.ends_direct_cpu_s / shared.direct_wall_s * 100.0;
    match Apart::new(relay.pid()) {
        Ok(None) => {}
        Ok(Some(apart)) => {
            let result = turns(&direct, &ends, relay, piece).await;
            drop(apart);
            let apart = result?;
            out.apart_direct_mib_s = Some(apart.direct_mib_s());
            out.apart_relay_mib_s = Some(apart.relay_mib_s());
        }
        Err(e) => out
            .errors
            .push(format!("relay on a core of its own: {e:#}")),
    }
    out.latency_direct = round_trips(&direct, plan.warmup, plan.samples).await?;
    drop(direct);
    out.latency_relay = round_trips(&ends, plan.warmup, plan.samples).await?;
    drop(ends);

    match migration(relay).await {
        Ok(ok) => out.migration_ok = ok,
        Err(e) => out.errors.push(format!("migration: {e:#}")),
    }
    match moved_direct(relay, plan.transfer).await {
        Ok(Some(mib_s)) => {
            out.direct_ok = true;
            out.direct_after_move_mib_s = mib_s;
        }
        Ok(None) => out.errors.push("direct path: no probe was answered".into()),
        Err(e) => out.errors.push(format!("direct path: {e:#}")),
    }
    match restart(program).await {
        Ok((ok, gap)) => {
            out.restart_ok = ok;
            out.restart_gap_ms = gap;
        }
        Err(e) => out.errors.push(format!("relay restart: {e:#}")),
    }
    Ok(out)
}

async fn migration(relay: &Relay) -> anyhow::Result<bool> {
    let (_tickets, ends) = connect(relay).await?;
    let (ok, _, _) = transfer_across(&ends, MOVED, None, async || {
        let path = ends.agent_path.as_ref().context("no relayed path")?;
        path.rebind()?;
        Ok(())
    })
    .await?;
    Ok(ok)
}

/// Connects through the relay, lets both ends find and move to the direct
/// path as the programs do, and measures one stream on it; `None` when the
/// connection did not move.
async fn moved_direct(relay: &Relay, time: Duration) -> anyhow::Result<Option<f64>> {
    let (_tickets, ends) = connect(relay).await?;
    let (Some(agent_path), Some(console_path)) = (&ends.agent_path, &ends.console_path) else {
        bail!("no relayed path");
    };
    let (agent_tx, _agent_rx) = tokio::sync::mpsc::channel(8);
    let (console_tx, mut console_rx) = tokio::sync::mpsc::channel::<PathChange>(8);
    tokio::spawn(
        agent_path
            .direct()
            .agent(ends.agent.clone(), Policy::Allow, agent_tx),
    );
    tokio::spawn(
        console_path
            .direct()
            .console(ends.console.clone(), console_tx),
    );
    let moved = tokio::time::timeout(LIMIT, async {
        while let Some(change) = console_rx.recv().await {
            if change.direct.is_some() {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !moved {
        return Ok(None);
    }
    let (bytes, secs) = stream_for(&ends, time).await?;
    Ok(Some(bytes as f64 / MIB / secs))
}

async fn restart(program: Option<&std::path::Path>) -> anyhow::Result<(bool, f64)> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("relay");
    let first = Relay::start_at(program, 10, "127.0.0.1:0", &data_dir)?;
    let addr = first.addr.clone();
    let (_tickets, ends) = connect(&first).await?;
    let mut first = Some(first);
    let mut second = None;
    let mut back = None;
    let (ok, _, reads) = transfer_across(&ends, RESTART_MOVED, Some(RESTART_PACE), async || {
        if let Some(mut old) = first.take() {
            let _ = old.proc.child.kill();
            let _ = old.proc.child.wait();
        }
        // The outage a real restart has; the receiving side has long sent
        // its last acknowledgement when the relay is back.
        tokio::time::sleep(RESTART_OUTAGE).await;
        let new = tokio::task::block_in_place(|| Relay::start_at(program, 10, &addr, &data_dir))?;
        back = Some(Instant::now());
        if new.addr != addr {
            bail!("the relay came back on {} instead of {addr}", new.addr);
        }
        second = Some(new);
        Ok(())
    })
    .await?;
    let back = back.context("the relay did not come back")?;
    let resumed = reads
        .iter()
        .find(|r| **r >= back)
        .context("nothing arrived after the relay came back")?;
    Ok((ok, resumed.duration_since(back).as_secs_f64() * 1000.0))
}
