//! Idle agents held by one relay program: thousands of QUIC connections from
//! a few client endpoints in this process, each saying `Hello(Agent)` and
//! `Open` and getting its nameplate; then each waits apart from its
//! connection as the agent does while its person reads out the code: the
//! connection closed, a wait datagram every 20 s, spread evenly over a few
//! sockets. At each step the relay's resident memory is read and its CPU
//! share is measured over a quiet window, in which the relay must answer
//! the waits.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use quinn::Endpoint;
use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::{ClientMsg, Hello, RelayMsg, Role, close_code};
use sprijin_proto::tls;
use sprijin_proto::waiting::{KIND_ANSWER, WaitingTicket};
use tokio::net::UdpSocket;
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

/// How often each waiting agent sends a wait, as the agent does.
const WAIT_EVERY: Duration = tls::KEEP_ALIVE;

/// The waits of all agents are spread over this many ticks of a period.
const TICKS: u32 = 200;

/// The share of expected waits the relay must answer in a window.
const ANSWERED_AT_LEAST: f64 = 0.9;

/// One waiting agent: its ticket, for its waits.
struct Idle {
    ticket: WaitingTicket,
}

/// Sends every held agent's waits from a few sockets and counts the
/// relay's answers.
struct Waiters {
    tickets: Vec<Arc<Mutex<Vec<WaitingTicket>>>>,
    answered: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl Waiters {
    async fn start(relay: SocketAddr) -> anyhow::Result<Waiters> {
        let answered = Arc::new(AtomicU64::new(0));
        // Counters grow per wait across all agents, from the clock, as the
        // agent's do.
        let counter = Arc::new(AtomicU64::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_micros() as u64,
        ));
        let mut tickets = Vec::new();
        let mut tasks = JoinSet::new();
        for _ in 0..ENDPOINTS {
            let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .context("cannot bind a socket for waits")?;
            socket.connect(relay).await?;
            let held = Arc::new(Mutex::new(Vec::new()));
            tickets.push(held.clone());
            tasks.spawn(send_waits(socket, held, counter.clone(), answered.clone()));
        }
        Ok(Waiters {
            tickets,
            answered,
            tasks,
        })
    }

    fn add(&self, i: usize, ticket: WaitingTicket) {
        let held = &self.tickets[i % self.tickets.len()];
        held.lock().unwrap_or_else(|e| e.into_inner()).push(ticket);
    }

    fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

/// One socket's share of the waits: each agent once per [`WAIT_EVERY`],
/// in [`TICKS`] slices, and the answers drained at each tick.
async fn send_waits(
    socket: UdpSocket,
    held: Arc<Mutex<Vec<WaitingTicket>>>,
    counter: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(WAIT_EVERY / TICKS);
    let mut slice = 0usize;
    let mut buf = [0u8; 64];
    loop {
        tick.tick().await;
        slice = (slice + 1) % TICKS as usize;
        // Agent j of n goes at tick j * TICKS / n: evenly spread, however
        // few.
        let waits: Vec<_> = {
            let held = held.lock().unwrap_or_else(|e| e.into_inner());
            let n = held.len();
            held.iter()
                .enumerate()
                .filter(|(j, _)| j * TICKS as usize / n == slice)
                .map(|(_, t)| t.wait(counter.fetch_add(1, Ordering::Relaxed), false))
                .collect()
        };
        for wait in waits {
            let _ = socket.send(&wait).await;
        }
        while let Ok(len) = socket.try_recv(&mut buf) {
            if len > 0 && buf[0] == KIND_ANSWER {
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
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
    let mut waiters = Waiters::start(addr).await?;
    let empty = measure(relay, 0, 0.0, plan, &waiters).await?;
    let mut held = 0;
    let mut steps = Vec::new();
    for &count in &plan.counts {
        let started = Instant::now();
        let opening = open_up_to(&endpoints, addr, count, &mut held, &waiters);
        tokio::time::timeout(RAMP_LIMIT, opening)
            .await
            .with_context(|| format!("opening {count} idle agents took too long"))??;
        let ramp = started.elapsed().as_secs_f64();
        steps.push(measure(relay, held, ramp, plan, &waiters).await?);
    }
    waiters.tasks.shutdown().await;
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
    waiters: &Waiters,
) -> anyhow::Result<Step> {
    tokio::time::sleep(plan.settle).await;
    let answered = waiters.answered();
    let meter = CpuMeter::start(relay.pid())?;
    tokio::time::sleep(plan.window).await;
    let cpu_pct = meter.percent()?;
    let answered = waiters.answered() - answered;
    let expected = agents as f64 * plan.window.as_secs_f64() / WAIT_EVERY.as_secs_f64();
    // Where the window falls in each socket's round moves the count by a
    // wait or two per socket.
    let least = (expected * ANSWERED_AT_LEAST - (2 * ENDPOINTS) as f64).max(expected.min(1.0));
    if (answered as f64) < least {
        bail!(
            "the relay answered {answered} waits of about {expected:.0} from {agents} waiting agents"
        );
    }
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
    held: &mut usize,
    waiters: &Waiters,
) -> anyhow::Result<()> {
    let mut opening = JoinSet::new();
    let mut next = *held;
    let mut failures = 0usize;
    let mut last_failure = String::new();
    while *held < count {
        while *held + opening.len() < count && opening.len() < IN_FLIGHT {
            let endpoint = endpoints[next % endpoints.len()].clone();
            next += 1;
            opening.spawn(open_one(endpoint, relay));
        }
        match opening.join_next().await {
            Some(Ok(Ok(idle))) => {
                waiters.add(*held, idle.ticket);
                *held += 1;
            }
            Some(Ok(Err(e))) => {
                failures += 1;
                last_failure = format!("{e:#}");
            }
            Some(Err(e)) => bail!("a connecting task failed: {e}"),
            None => {}
        }
        // A few losses under load are retried; many mean the relay refuses.
        if failures > count / 100 + 10 {
            bail!("{failures} idle agents could not connect (held {held}); last: {last_failure}");
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
        RelayMsg::Opened { ticket, .. } => {
            connection.close(close_code::PARKED.into(), b"waiting apart");
            Ok(Idle { ticket })
        }
        other => bail!("the relay did not open a nameplate: {other:?}"),
    }
}
