//! `sprijin-console`: the technician's side of a support session.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use sprijin_cli::pages::{self, CompletionsArgs, ManArgs};
use sprijin_console::config::ConsoleFile;
use sprijin_console::connect::{ConnectArgs, connect};
use sprijin_console::session::ConnectOptions;
use sprijin_proto::code::SessionCode;
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
        /// Config file (TOML, keys named like these flags: relay, relay_fingerprint, name, token, catalog, credential, data_dir). Default: ~/.config/sprijin/console.toml if present
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
    sprijin_cli::exit(run(cli).map(|ok| {
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }))
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    // Reading standard input blocks a runtime thread that cannot be
    // interrupted, so the runtime is shut down without waiting for it.
    let block_on = |work: std::pin::Pin<
        Box<dyn std::future::Future<Output = anyhow::Result<bool>>>,
    >| {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let result = runtime.block_on(work);
        runtime.shutdown_timeout(std::time::Duration::from_millis(200));
        result
    };
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
        } => {
            let code: SessionCode = code.parse()?;
            // Flags and their variables first, then the config file.
            let file = ConsoleFile::load(config.as_deref())?;
            let relay = relay.or(file.relay).context(
                "no relay given: pass --relay HOST:PORT, set SPRIJIN_RELAY, or set relay in the config file",
            )?;
            let relay_fingerprint = match (relay_fingerprint, file.relay_fingerprint) {
                (Some(fp), _) => Some(fp),
                (None, Some(text)) => Some(text.parse::<Fingerprint>()?),
                (None, None) => None,
            };
            let name = name
                .or(file.name)
                .unwrap_or_else(|| "a technician".to_string());
            let token = token.or(file.token);
            let catalog = catalog.or(file.catalog);
            let credential = credential.or(file.credential);
            let data_dir = data_dir.or(file.data_dir);
            let credential = credential
                .as_deref()
                .map(sprijin_console::credential_tool::load)
                .transpose()?;
            let args = ConnectArgs {
                code,
                options: ConnectOptions {
                    relay,
                    relay_fingerprint,
                    technician: name,
                    token,
                },
                catalog,
                credential,
                exec,
                json,
                data_dir: data_dir
                    .unwrap_or_else(|| sprijin_proto::paths::default_data_dir("console")),
            };
            block_on(Box::pin(async { Ok(connect(args).await?) }))
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
            use sprijin_console::catalog_tool;
            match command {
                CatalogCommand::Keygen { out } => {
                    let public = catalog_tool::keygen(&out)?;
                    println!(
                        "wrote the private key to {} and the public key to {}",
                        out.display(),
                        public.display()
                    );
                }
                CatalogCommand::Sign { dir, key, expires } => {
                    let now = std::time::SystemTime::now();
                    println!(
                        "{}",
                        catalog_tool::sign(&dir, &key, expires.as_deref(), now)?
                    )
                }
                CatalogCommand::Verify { dir, key } => {
                    let now = std::time::SystemTime::now();
                    println!("{}", catalog_tool::verify(&dir, &key, now)?)
                }
            }
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
            use sprijin_console::credential_tool;
            let days = credential_tool::valid_days(valid_days.as_deref())?;
            let summary =
                credential_tool::issue(&key, &name, days, &out, std::time::SystemTime::now())?;
            println!("{summary}");
            Ok(true)
        }
    }
}
