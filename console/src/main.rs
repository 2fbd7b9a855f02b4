//! `sprijin-console`: the technician's side of a support session.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use sprijin_cli::pages::{self, CompletionsArgs, ManArgs};
use sprijin_console::cli::{self, ConnectFlags};
use sprijin_proto::path::direct::Policy;
use sprijin_proto::tls::Fingerprint;

#[derive(Parser)]
#[command(
    version,
    about = "Sprijin console: connect to a person's machine with the code they read out, see what is wrong, and run approved repairs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: sprijin_cli::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to a person's agent with the code they read out (e.g. 7-velvet-harbor).
    Connect {
        /// The code, NAMEPLATE-WORD-WORD.
        code: String,
        /// The relay, HOST:PORT (or `relay` in the config file).
        #[arg(long, env = "SPRIJIN_RELAY")]
        relay: Option<String>,
        /// Accept only the relay with this certificate fingerprint (sha256:HEX).
        #[arg(long, env = "SPRIJIN_RELAY_FINGERPRINT")]
        relay_fingerprint: Option<Fingerprint>,
        /// Config file (TOML, keys named like these flags: relay, relay_fingerprint, name, token, catalog, credential, data_dir, session_idle_timeout, direct). Default: ~/.config/sprijin/console.toml if present
        #[arg(long, env = "SPRIJIN_CONSOLE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Your name, shown to the person. Default: "a technician"
        #[arg(long, env = "SPRIJIN_NAME")]
        name: Option<String>,
        /// Your access token, for relays that only accept listed technicians.
        #[arg(long, env = "SPRIJIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The signed script catalog folder to offer.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Your technician credential (from `credential issue`): the agent then shows your name as verified by your organisation.
        #[arg(long, value_name = "FILE")]
        credential: Option<PathBuf>,
        /// Run this session command and exit (repeatable, in order): diag, findings, processes, scripts, run ID [KEY=VALUE]..., cancel RUN, report FILE, quit.
        #[arg(long)]
        exec: Vec<String>,
        /// Print one JSON object per line for every result and event.
        #[arg(long)]
        json: bool,
        /// Where the console keeps its session logs. Default: ~/.local/share/sprijin/console
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Seconds the session may hear nothing from the agent (a relay
        /// restart, a network change) before it counts as lost (or
        /// `session_idle_timeout` in the config file). Default: 60
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        session_idle_timeout: Option<u64>,
        /// Whether the session may leave the relay for a direct path to
        /// the person's computer when one answers (or `direct` in the
        /// config file): `allow` (the default) or `never`. A direct path
        /// shows the person's side this computer's addresses; `never`
        /// keeps the session on the relay, and neither side learns the
        /// other's address.
        #[arg(long, value_name = "allow|never")]
        direct: Option<Policy>,
    },
    /// Script catalog tooling: keys and signatures.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Technician credentials: the organisation vouches for a technician's name.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, ...) on stdout.
    Completions(CompletionsArgs),
    /// Write the man pages to a folder.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Make a technician key pair and a credential for NAME signed with the organisation's key.
    ///
    /// FILE holds the credential (name, the technician's public key, issue and expiry
    /// times, the issuing key's id and its signature: all public) and the technician's
    /// private key (SECRET: whoever holds FILE can act as this technician). It is
    /// written owner-only (mode 0600); give it to the technician alone, who passes it
    /// to `connect --credential FILE`. Agents that trust the organisation's public key
    /// (`--trusted-key`, the key that verifies catalogs) show the name as verified.
    Issue {
        /// The organisation's secret key file (made by `catalog keygen`).
        #[arg(long, value_name = "ORG_KEY")]
        key: PathBuf,
        /// The technician's name, as the person should see it.
        #[arg(long)]
        name: String,
        /// Days the credential is valid, 1 to 3650. Default: 30.
        #[arg(long, value_name = "N")]
        valid_days: Option<String>,
        /// Where to write the credential and private key; must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Make an ed25519 key pair: the private key in OUT (owner-only), the public key in OUT.pub.
    Keygen {
        /// Where to write the private key; the public key goes to OUT.pub.
        out: PathBuf,
    },
    /// Sign every script in DIR with the private key.
    Sign {
        /// The catalog folder: one TOML file per script; the signature is written beside them.
        dir: PathBuf,
        /// The private key file (made by `catalog keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// When the signature expires: a date YYYY-MM-DD (start of that day, UTC) or an RFC 3339 time. Default: 90 days from now.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
    },
    /// Check DIR's signature against a public key.
    Verify {
        /// The signed catalog folder.
        dir: PathBuf,
        /// The public key file (OUT.pub from `catalog keygen`).
        #[arg(long, value_name = "PUBFILE")]
        key: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sprijin_cli::log::init(cli.log.log_format);
    sprijin_cli::exit_with(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Connect {
            code,
            relay,
            relay_fingerprint,
            config,
            name,
            token,
            catalog,
            credential,
            exec,
            json,
            data_dir,
            session_idle_timeout,
            direct,
        } => {
            let flags = ConnectFlags {
                relay,
                relay_fingerprint,
                config,
                name,
                token,
                catalog,
                credential,
                exec,
                json,
                data_dir,
                session_idle_timeout,
                direct,
            };
            Ok(cli::run_connect(cli::connect_args(&code, flags)?)?)
        }
        Command::Completions(args) => {
            pages::print_completions(Cli::command(), args.shell)?;
            Ok(true)
        }
        Command::Man(args) => {
            pages::write_man_pages(Cli::command(), &args.dir)
                .with_context(|| format!("cannot write man pages to {}", args.dir.display()))?;
            Ok(true)
        }
        Command::Catalog { command } => {
            let line = match command {
                CatalogCommand::Keygen { out } => cli::catalog_keygen(&out)?,
                CatalogCommand::Sign { dir, key, expires } => {
                    cli::catalog_sign(&dir, &key, expires.as_deref())?
                }
                CatalogCommand::Verify { dir, key } => cli::catalog_verify(&dir, &key)?,
            };
            println!("{line}");
            Ok(true)
        }
        Command::Credential {
            command:
                CredentialCommand::Issue {
                    key,
                    name,
                    valid_days,
                    out,
                },
        } => {
            println!(
                "{}",
                cli::credential_issue(&key, &name, valid_days.as_deref(), &out)?
            );
            Ok(true)
        }
    }
}
