//! `bench`: measures Sprijin's relay, agent and console on this machine and
//! prints one table (metric, ours, baseline, ratio, target, met?), with a
//! JSON copy on request. The harness lives in `sprijin_tests::bench`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sprijin_tests::bench::{self, Group, Options};

#[derive(Parser)]
#[command(
    about = "Benchmark the Sprijin relay, agent and console on 127.0.0.1 against baselines measured in the same run"
)]
struct Cli {
    /// Smaller loads and shorter windows (under a minute).
    #[arg(long)]
    quick: bool,
    /// Also write the results as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run only these groups (repeatable, or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
    /// Measure this relay program instead of the one built beside `bench`
    /// (to compare two builds in one sitting).
    #[arg(long)]
    relay: Option<PathBuf>,
    /// The number of idle waiting agents the scale group ends at (default:
    /// 10000, or 1000 with --quick).
    #[arg(long, value_name = "N")]
    idle_agents: Option<usize>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)` when a measurement failed; missed targets are not failures.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let report = bench::run(&Options {
        quick: cli.quick,
        only: cli.only,
        relay: cli.relay,
        idle_agents: cli.idle_agents,
        progress: Some(std::sync::Arc::new(|line: &str| eprintln!("{line}"))),
    })?;
    print!("{}", report.table());
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report.errors.is_empty())
}
