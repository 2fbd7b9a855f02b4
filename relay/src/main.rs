//! `sprijin-relay`: pairs agents with consoles by code and forwards bytes it
//! cannot read.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sprijin_relay::RelayConfig;
use sprijin_relay::config::{IdentitySource, Limits};
use sprijin_relay::tokens::ConsoleTokens;

#[derive(Parser)]
#[command(
    version,
    about = "Sprijin relay: pairs a person's agent with a technician's console by a one-time code and forwards end-to-end encrypted bytes it cannot read"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (UDP, QUIC).
    #[arg(long, default_value = "0.0.0.0:7420")]
    listen: SocketAddr,
    /// Folder holding the relay's identity (made on first start). Default: ~/.local/share/sprijin/relay
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PEM certificate to present instead of the self-signed identity (needs --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP on this address.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Only consoles presenting a token listed in this file (lines of `NAME TOKEN`) may claim.
    #[arg(long)]
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
}

#[derive(Subcommand)]
enum Command {
    /// Print the relay's certificate fingerprint (sha256:HEX), making the identity if missing.
    Fingerprint {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir =
        |d: Option<PathBuf>| d.unwrap_or_else(|| sprijin_proto::paths::default_data_dir("relay"));
    if let Some(Command::Fingerprint { data_dir: dir }) = cli.command {
        let dir = data_dir(dir.or(cli.data_dir));
        let identity = sprijin_relay::identity::load_or_create(&dir)
            .with_context(|| format!("cannot load the relay identity in {}", dir.display()))?;
        println!("{}", identity.fingerprint());
        return Ok(());
    }
    let identity = match (cli.cert, cli.key) {
        (Some(cert), Some(key)) => IdentitySource::Files { cert, key },
        _ => IdentitySource::DataDir(data_dir(cli.data_dir)),
    };
    let console_tokens = cli
        .console_tokens
        .map(|p| ConsoleTokens::load(&p))
        .transpose()?;
    let config = RelayConfig {
        listen: cli.listen,
        identity,
        limits: Limits {
            nameplate_ttl: Duration::from_secs(cli.nameplate_ttl),
            claims_per_minute: cli.claims_per_minute,
            opens_per_minute: cli.opens_per_minute,
            waiting_per_address: cli.waiting_per_address,
            connections_per_address: cli.connections_per_address,
            remembered_nameplates: cli.max_remembered_nameplates,
            metrics_connections: cli.metrics_connections,
            max_sessions: cli.max_sessions,
            max_connections: cli.max_connections,
            session_bytes_per_sec: cli.session_rate,
            session_idle_timeout: Duration::from_secs(cli.idle_timeout),
            handshake_timeout: Duration::from_secs(cli.handshake_timeout),
            ..Limits::default()
        },
        console_tokens,
        tap: None,
        interceptor: None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(sprijin_relay::serve(config, cli.metrics))?;
    Ok(())
}
