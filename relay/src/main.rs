//! `sprijin-relay`: pairs agents with consoles by code and forwards bytes it
//! cannot read.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use sprijin_cli::pages::{self, CompletionsArgs, ManArgs};
use sprijin_relay::config::{Limits, RelayFile, RelayFlags, default_data_dir};

#[derive(Parser)]
#[command(
    version,
    about = "Sprijin relay: pairs a person's agent with a technician's console by a one-time code and forwards end-to-end encrypted bytes it cannot read",
    after_help = "Every flag can also be set in the config file, as a key named like the flag (--data-dir is data_dir). Flags and SPRIJIN_RELAY_* variables override the file."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (TOML, keys named like the flags). Default: /etc/sprijin/relay.toml if present.
    #[arg(long, env = "SPRIJIN_RELAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: sprijin_cli::LogArgs,
    /// Address to listen on (UDP, QUIC).
    #[arg(long, default_value = "0.0.0.0:7420", env = "SPRIJIN_RELAY_LISTEN")]
    listen: SocketAddr,
    /// Folder holding the relay's identity and ticket key (made on first start; the key also with --cert). Default: ~/.local/share/sprijin/relay
    #[arg(long, env = "SPRIJIN_RELAY_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// PEM certificate to present instead of the self-signed identity (needs --key).
    #[arg(long, requires = "key", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Serve Prometheus metrics on this address over HTTP (/metrics), with /healthz for load balancers.
    #[arg(long, env = "SPRIJIN_RELAY_METRICS", value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Only consoles presenting a token listed in this file (lines of `NAME TOKEN`) may claim.
    #[arg(long, value_name = "FILE")]
    console_tokens: Option<PathBuf>,
    /// Seconds a nameplate waits to be claimed.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    nameplate_ttl: u64,
    /// Claims one source address may make per minute; an IPv6 /64 counts as one address.
    #[arg(long, default_value_t = 10)]
    claims_per_minute: u32,
    /// Nameplates one source address may have waiting at once; an IPv6 /64 counts as one address.
    #[arg(long, default_value_t = 5)]
    waiting_per_address: usize,
    /// Codes (nameplates) one source address may ask for per minute; an IPv6 /64 counts as one address.
    #[arg(long, default_value_t = Limits::default().opens_per_minute)]
    opens_per_minute: u32,
    /// Connections one source address may hold open at once; an IPv6 /64 counts as one address.
    #[arg(long, default_value_t = Limits::default().connections_per_address)]
    connections_per_address: usize,
    /// Used or expired codes remembered so a late claim is told why it fails; past this the oldest is forgotten.
    #[arg(long, default_value_t = Limits::default().remembered_nameplates)]
    max_remembered_nameplates: usize,
    /// Connections the metrics endpoint serves at once; more are answered 503.
    #[arg(long, default_value_t = Limits::default().metrics_connections)]
    metrics_connections: usize,
    /// Paired sessions at once, in total.
    #[arg(long, default_value_t = 10_000)]
    max_sessions: usize,
    /// Connections at once, in total.
    #[arg(long, default_value_t = 50_000)]
    max_connections: usize,
    /// Bytes per second per session and direction (default: unlimited).
    #[arg(long)]
    session_rate: Option<u64>,
    /// Seconds a session may go without any bytes before it is ended.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Seconds a client has to say hello and make its request.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// This relay's id in a fleet (0-999): its codes come from its own block (relay 0: 1-999, relay N: N001-N999), so other relays can send a console here.
    #[arg(long, default_value_t = 0, env = "SPRIJIN_RELAY_ID", value_parser = clap::value_parser!(u16).range(0..=999))]
    relay_id: u16,
    /// Another relay of the fleet, ID=HOST:PORT[@sha256:HEX] (repeatable, or comma-separated); a claim for its codes is redirected there. This relay's own entry is skipped, so every relay can share one list.
    #[arg(
        long = "peer",
        env = "SPRIJIN_RELAY_PEERS",
        value_name = "ID=HOST:PORT",
        value_delimiter = ','
    )]
    peers: Vec<sprijin_proto::fleet::Peer>,
    /// Seconds a session's forwarding tickets are good for; a session cannot outlive them.
    #[arg(long, default_value_t = 12 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    ticket_ttl: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Print the relay's certificate fingerprint (sha256:HEX), making the identity if missing.
    Fingerprint {
        /// Folder holding the relay's identity. Default: data_dir from the config file, else ~/.local/share/sprijin/relay
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, ...) on stdout.
    Completions(CompletionsArgs),
    /// Write the man pages to a folder.
    #[command(hide = true)]
    Man(ManArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    sprijin_cli::exit(run(matches))
}

/// Whether an argument was given on the command line or in its
/// environment variable, so it overrides the config file.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

fn run(matches: ArgMatches) -> anyhow::Result<ExitCode> {
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Some(Command::Completions(args)) => {
            pages::print_completions(Cli::command(), args.shell)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man(args)) => {
            pages::write_man_pages(Cli::command(), &args.dir)
                .with_context(|| format!("cannot write man pages to {}", args.dir.display()))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let file = RelayFile::load_chosen(cli.config.as_deref())?;
    let flags = RelayFlags {
        listen: cli.listen,
        data_dir: cli.data_dir,
        cert: cli.cert,
        key: cli.key,
        metrics: cli.metrics,
        console_tokens: cli.console_tokens,
        nameplate_ttl: cli.nameplate_ttl,
        claims_per_minute: cli.claims_per_minute,
        waiting_per_address: cli.waiting_per_address,
        opens_per_minute: cli.opens_per_minute,
        connections_per_address: cli.connections_per_address,
        max_remembered_nameplates: cli.max_remembered_nameplates,
        metrics_connections: cli.metrics_connections,
        max_sessions: cli.max_sessions,
        max_connections: cli.max_connections,
        session_rate: cli.session_rate,
        idle_timeout: cli.idle_timeout,
        handshake_timeout: cli.handshake_timeout,
        ticket_ttl: cli.ticket_ttl,
        log_format: cli.log.log_format,
        relay_id: cli.relay_id,
        peers: cli.peers,
    }
    .merge_file(file, |id| given(&matches, id));
    sprijin_cli::log::init(flags.log_format);
    if let Some(Command::Fingerprint { data_dir }) = cli.command {
        let dir = data_dir.or(flags.data_dir).unwrap_or_else(default_data_dir);
        let identity = sprijin_relay::identity::load_or_create(&dir)
            .with_context(|| format!("cannot load the relay identity in {}", dir.display()))?;
        println!("{}", identity.fingerprint());
        return Ok(ExitCode::SUCCESS);
    }
    let metrics = flags.metrics;
    let config = flags.into_config()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(sprijin_relay::serve(config, metrics))?;
    Ok(ExitCode::SUCCESS)
}
