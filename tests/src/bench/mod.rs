//! The benchmark harness: starts the real relay (and, where the measurement
//! is about them, the real agent and console programs) on 127.0.0.1, drives
//! them from this process, and reports every figure beside a baseline
//! measured in the same run where one exists.
//!
//! Flow: [`run`] raises the open-file limit, starts one relay program for the
//! session measurements, and runs the groups in turn, each bounded in count
//! and time: `throughput` and `latency` (the relay against a direct quinn
//! connection with the same TLS settings, both carrying the real sealed
//! session), `concurrent` (many checksummed sessions at once), `setup` (real
//! agent and console programs, console start to first snapshot), `agent`
//! (the real agent program at rest in a session, then diagnostics round
//! trips), and last `scale` (a fresh relay program holding thousands of idle
//! agents). A group that fails is noted in the report and the others go on.
//! `bench` (the program) only parses flags and prints what comes back; it
//! passes a [`progress::Say`] so each group's start, end and a line every
//! ten seconds in between appear on stderr.
//!
//! Run it in release, after building every program:
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p sprijin-tests --bin bench -- [--quick] [--json FILE] [--only GROUP,...] [--relay PROGRAM] [--idle-agents N]
//! ```
//!
//! `--relay` measures another build of the relay program against the same
//! harness, to compare a change with what it replaces in one sitting.

pub mod affinity;
pub mod agent;
pub mod concurrent;
pub mod datapath;
pub mod framed;
pub mod latency;
pub mod pairs;
pub mod procfs;
pub mod programs;
pub mod progress;
pub mod relayed;
pub mod report;
pub mod scale;
pub mod setup;
pub mod stats;
pub mod throughput;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use self::procfs::{CpuMeter, MIB};
use self::programs::{Agent, Relay};
pub use self::report::Report;

/// The measurement groups, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    Throughput,
    Latency,
    Datapath,
    Concurrent,
    Setup,
    Agent,
    Scale,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Throughput => "throughput",
            Group::Latency => "latency",
            Group::Datapath => "datapath",
            Group::Concurrent => "concurrent",
            Group::Setup => "setup",
            Group::Agent => "agent",
            Group::Scale => "scale",
        }
    }

    pub const ALL: [Group; 7] = [
        Group::Throughput,
        Group::Latency,
        Group::Datapath,
        Group::Concurrent,
        Group::Setup,
        Group::Agent,
        Group::Scale,
    ];
}

pub struct Options {
    /// Smaller loads and shorter windows: the whole run in under a minute.
    pub quick: bool,
    /// Only these groups; all when empty.
    pub only: Vec<Group>,
    /// The relay program to measure, to compare two builds; by default the
    /// one built beside the harness.
    pub relay: Option<PathBuf>,
    /// The number of idle waiting agents the `scale` group ends at,
    /// instead of the plan's.
    pub idle_agents: Option<usize>,
    /// Where to say which group runs and how far it is; silent when `None`.
    pub progress: Option<progress::Say>,
}

/// Every count and duration of one run, named once.
pub struct Plan {
    pub transfer: Duration,
    pub bare_transfer: Duration,
    pub latency_warmup: u32,
    pub latency_samples: u32,
    pub setup_sessions: usize,
    pub concurrent: concurrent::Plan,
    pub agent: agent::Plan,
    pub scale: scale::Plan,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            transfer: Duration::from_secs(5),
            bare_transfer: Duration::from_secs(3),
            latency_warmup: 200,
            latency_samples: 5_000,
            setup_sessions: 60,
            concurrent: concurrent::Plan {
                sessions: 500,
                payload: 256 * 1024,
                limit: Duration::from_secs(180),
            },
            agent: agent::Plan {
                window: Duration::from_secs(30),
                snapshots: 50,
            },
            scale: scale::Plan {
                counts: vec![1_000, 10_000],
                // Longer than a client's keep-alive interval, so the window
                // sees idle agents, not the tail of their set-up.
                settle: Duration::from_secs(25),
                window: Duration::from_secs(10),
            },
        }
    }

    pub fn quick() -> Plan {
        Plan {
            transfer: Duration::from_millis(1500),
            bare_transfer: Duration::from_millis(1000),
            latency_warmup: 50,
            latency_samples: 500,
            setup_sessions: 5,
            concurrent: concurrent::Plan {
                sessions: 50,
                payload: 256 * 1024,
                limit: Duration::from_secs(60),
            },
            agent: agent::Plan {
                window: Duration::from_secs(5),
                snapshots: 10,
            },
            scale: scale::Plan {
                counts: vec![200, 1_000],
                settle: Duration::from_millis(300),
                window: Duration::from_millis(1500),
            },
        }
    }
}

/// Runs the benchmark. Errors are for what stops the whole run (no runtime,
/// no relay); a failed measurement is noted in the report instead.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    let mut plan = if options.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if let Some(n) = options.idle_agents {
        plan.scale.counts.retain(|c| *c < n);
        plan.scale.counts.push(n);
    }
    let wanted = |g: Group| options.only.is_empty() || options.only.contains(&g);
    let mut report = Report {
        date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        mode: if options.quick { "quick" } else { "full" }.into(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Report::default()
    };
    report.relay_program = match &options.relay {
        Some(p) => p.display().to_string(),
        None => programs::path("sprijin-relay")?.display().to_string(),
    };
    // Thousands of sockets in the scale group need more than the usual 1024.
    if let Err(e) = procfs::raise_open_files() {
        report.errors.push(format!("open-file limit: {e:#}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sessions_relay = if Group::ALL.iter().any(|g| *g != Group::Scale && wanted(*g)) {
        Some(Relay::start(
            options.relay.as_deref(),
            plan.concurrent.sessions * 2,
        )?)
    } else {
        None
    };
    let progress = options.progress.clone().map(progress::Progress::start);
    let groups: Vec<Group> = Group::ALL.into_iter().filter(|g| wanted(*g)).collect();
    for (n, group) in groups.iter().copied().enumerate() {
        if let Some(p) = &progress {
            p.group(group.name(), n + 1, groups.len());
        }
        let started = std::time::Instant::now();
        let result = match (group, &sessions_relay) {
            (Group::Throughput, Some(relay)) => {
                runtime.block_on(throughput(&mut report, relay, &plan))
            }
            (Group::Latency, Some(relay)) => runtime.block_on(latency(&mut report, relay, &plan)),
            (Group::Datapath, Some(relay)) => runtime.block_on(datapath(
                &mut report,
                relay,
                options.relay.as_deref(),
                &plan,
            )),
            (Group::Concurrent, Some(relay)) => {
                runtime.block_on(concurrent(&mut report, relay, &plan))
            }
            (Group::Setup, Some(relay)) => setup(&mut report, relay, &plan),
            (Group::Agent, Some(relay)) => agent_at_rest(&mut report, relay, &plan, &runtime),
            (Group::Scale, _) => idle_agents(&mut report, options, &plan, &runtime),
            (_, None) => Ok(()),
        };
        let error = result.err().map(|e| format!("{e:#}"));
        if let Some(p) = &progress {
            p.done(error.as_deref());
        }
        if let Some(e) = error {
            report.errors.push(format!("{}: {e}", group.name()));
        }
        report
            .group_secs
            .insert(group.name().into(), started.elapsed().as_secs_f64());
    }
    Ok(report)
}

async fn throughput(report: &mut Report, relay: &Relay, plan: &Plan) -> anyhow::Result<()> {
    let me = std::process::id();

    let pair = pairs::direct().await?;
    let ends = CpuMeter::start(me)?;
    let d = throughput::sealed(pair, plan.transfer).await?;
    report.ends_cpu_pct_transfer_direct = Some(ends.percent()?);

    let pair = pairs::through_relay(&relay.addr, relay.fingerprint).await?;
    let ends = CpuMeter::start(me)?;
    let r = throughput::sealed(pair, plan.transfer).await?;
    report.ends_cpu_pct_transfer_relay = Some(ends.percent()?);

    report.direct_mib_s = Some(d.mib_s());
    report.relay_mib_s = Some(r.mib_s());
    report.throughput_ratio = Some(r.mib_s() / d.mib_s());

    let me_cpu = CpuMeter::start(me)?;
    let pipe = throughput::in_memory(plan.bare_transfer).await?;
    report.pipe_mib_s = Some(pipe.mib_s());
    report.ends_cpu_pct_transfer_pipe = Some(me_cpu.percent()?);

    let db = throughput::bare(pairs::direct().await?, plan.bare_transfer).await?;
    let pair = pairs::through_relay(&relay.addr, relay.fingerprint).await?;
    let rb = throughput::bare(pair, plan.bare_transfer).await?;
    report.direct_bare_mib_s = Some(db.mib_s());
    report.relay_bare_mib_s = Some(rb.mib_s());
    Ok(())
}

async fn latency(report: &mut Report, relay: &Relay, plan: &Plan) -> anyhow::Result<()> {
    let d = latency::round_trips(
        pairs::direct().await?,
        plan.latency_warmup,
        plan.latency_samples,
    )
    .await?;
    let pair = pairs::through_relay(&relay.addr, relay.fingerprint).await?;
    let r = latency::round_trips(pair, plan.latency_warmup, plan.latency_samples).await?;
    report.latency_direct_ms_p50 = Some(d.ms(0.5));
    report.latency_direct_ms_p99 = Some(d.ms(0.99));
    report.latency_relay_ms_p50 = Some(r.ms(0.5));
    report.latency_relay_ms_p99 = Some(r.ms(0.99));
    report.latency_added_ms_p50 = Some(r.ms(0.5) - d.ms(0.5));
    report.latency_added_ms_p99 = Some(r.ms(0.99) - d.ms(0.99));
    report.latency_samples = Some(r.len());
    Ok(())
}

async fn datapath(
    report: &mut Report,
    relay: &Relay,
    program: Option<&std::path::Path>,
    plan: &Plan,
) -> anyhow::Result<()> {
    let o = datapath::measure(
        relay,
        program,
        &datapath::Plan {
            transfer: plan.transfer,
            warmup: plan.latency_warmup,
            samples: plan.latency_samples,
        },
    )
    .await?;
    report.datapath_relay_mib_s = Some(o.relay_mib_s);
    report.datapath_direct_mib_s = Some(o.direct_mib_s);
    report.datapath_throughput_ratio = Some(o.relay_mib_s / o.direct_mib_s);
    report.relay_cpu_pct_transfer = Some(o.relay_cpu_pct);
    report.relay_cpu_s_per_gib = Some(o.relay_cpu_s_per_gib);
    report.datapath_ends_cpu_pct_relay = Some(o.ends_cpu_pct_relay);
    report.datapath_ends_cpu_pct_direct = Some(o.ends_cpu_pct_direct);
    report.datapath_apart_relay_mib_s = o.apart_relay_mib_s;
    report.datapath_apart_direct_mib_s = o.apart_direct_mib_s;
    report.datapath_apart_throughput_ratio = o
        .apart_relay_mib_s
        .zip(o.apart_direct_mib_s)
        .map(|(r, d)| r / d);
    let (r, d) = (o.latency_relay.ms(0.5), o.latency_direct.ms(0.5));
    report.datapath_latency_relay_ms_p50 = Some(r);
    report.datapath_latency_direct_ms_p50 = Some(d);
    report.datapath_latency_added_ms_p50 = Some(r - d);
    report.migration_ok = Some(o.migration_ok);
    report.direct_ok = Some(o.direct_ok);
    if o.direct_ok {
        report.direct_throughput_ratio = Some(o.direct_after_move_mib_s / o.direct_mib_s);
    }
    report.relay_restart_ok = Some(o.restart_ok);
    report.relay_restart_gap_ms = Some(o.restart_gap_ms);
    for e in o.errors {
        report.errors.push(format!("datapath: {e}"));
    }
    Ok(())
}

async fn concurrent(report: &mut Report, relay: &Relay, plan: &Plan) -> anyhow::Result<()> {
    let outcome = concurrent::sessions(&relay.addr, relay.fingerprint, &plan.concurrent).await?;
    report.sessions_concurrent_ok = Some(outcome.ok);
    report.sessions_concurrent_total = Some(outcome.total);
    report.sessions_concurrent_payload_kib = Some(plan.concurrent.payload / 1024);
    report.sessions_concurrent_secs = Some(outcome.secs);
    report.sessions_concurrent_mib_s = Some(outcome.bytes as f64 / MIB / outcome.secs);
    for f in outcome.failures {
        report.errors.push(format!("concurrent: {f}"));
    }
    Ok(())
}

fn setup(report: &mut Report, relay: &Relay, plan: &Plan) -> anyhow::Result<()> {
    let timings = setup::sessions(relay, plan.setup_sessions)?;
    report.setup_ms_p50 = Some(timings.ms(0.5));
    report.setup_ms_p99 = Some(timings.ms(0.99));
    report.setup_sessions = Some(timings.len());
    Ok(())
}

fn agent_at_rest(
    report: &mut Report,
    relay: &Relay,
    plan: &Plan,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let mut agent = Agent::start(relay)?;
    let outcome = runtime.block_on(agent::measure(relay, &agent, &plan.agent))?;
    // The agent ends after the console's goodbye; a straggler is killed on drop.
    agent.proc.wait(programs::READY);
    report.agent_rss_mib = Some(outcome.rss_bytes as f64 / MIB);
    report.agent_cpu_pct = Some(outcome.cpu_pct);
    report.agent_window_secs = Some(plan.agent.window.as_secs_f64());
    report.snapshot_ms_p50 = Some(outcome.snapshots.ms(0.5));
    report.snapshot_ms_p99 = Some(outcome.snapshots.ms(0.99));
    Ok(())
}

fn idle_agents(
    report: &mut Report,
    options: &Options,
    plan: &Plan,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let most = plan.scale.counts.iter().copied().max().unwrap_or(0);
    let relay = Relay::start(options.relay.as_deref(), most)?;
    let scale = runtime.block_on(scale::idle_agents(&relay, &plan.scale))?;
    let empty_mib = scale.empty.rss_bytes as f64 / MIB;
    report.relay_rss_mib_empty = Some(empty_mib);
    report.relay_idle_cpu_pct_empty = Some(scale.empty.cpu_pct);
    if let Some(last) = scale.steps.last() {
        let mib = last.rss_bytes as f64 / MIB;
        report.idle_agents = Some(last.agents);
        report.relay_rss_mib_idle = Some(mib);
        report.relay_rss_kib_per_agent =
            Some((mib - empty_mib) * 1024.0 / last.agents.max(1) as f64);
        report.relay_idle_cpu_pct = Some(last.cpu_pct);
        report.idle_relay_rss_mib = Some(mib);
        report.idle_relay_cpu_pct = Some(last.cpu_pct);
    }
    report.idle_steps = scale.steps;
    Ok(())
}
