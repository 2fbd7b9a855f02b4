//! `sprijin-demo`: a relay, an agent and a console on this machine, the whole
//! product in one command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Sprijin demo: start a relay and an agent on this machine and connect to it with the console, the whole product in one command"
)]
struct Cli {
    /// Print one JSON object per line for every result and event.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    log: sprijin_cli::LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sprijin_cli::log::init(cli.log.log_format);
    sprijin_cli::exit_with(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    Ok(sprijin_demo::run(cli.json)?)
}
