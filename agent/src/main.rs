//! `sprijin-agent`: lets a technician help with this machine, with your
//! consent for everything they do.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use sprijin_agent::config::{AgentConfig, ConfigFile, ShareFlags, default_data_dir};
use sprijin_agent::face::choose::FaceChoice;
use sprijin_agent::face::strings::Lang;
use sprijin_agent::selfhelp::{self, SelfHelp};
use sprijin_cli::pages::{self, CompletionsArgs, ManArgs};
use sprijin_proto::path::direct::Policy;
use sprijin_proto::tls::Fingerprint;

#[derive(Parser)]
#[command(
    version,
    about = "Sprijin agent: share this machine with a support technician, who sees its state and may run repairs only with your approval",
    after_help = "Without a command (started from a desktop menu or a double click), it runs `check`."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    log: sprijin_cli::LogArgs,
}

/// Where the relay is and how a session behaves.
#[derive(clap::Args, Default)]
struct RelayArgs {
    /// The relay, HOST:PORT[@sha256:HEX] (or `relay` in the config file). Repeat it, or separate with commas, to give several: the first that answers within a few seconds gives the code.
    #[arg(long, env = "SPRIJIN_RELAY", value_delimiter = ',')]
    relay: Vec<String>,
    /// Accept only the relay with this certificate fingerprint (sha256:HEX).
    #[arg(long, env = "SPRIJIN_RELAY_FINGERPRINT")]
    relay_fingerprint: Option<Fingerprint>,
    /// The largest file the technician may fetch, in bytes (or
    /// `fetch_cap` in the config file). Default: 67108864 (64 MiB)
    #[arg(long, value_name = "BYTES")]
    fetch_cap: Option<u64>,
    /// Seconds the session may hear nothing from the technician (a relay
    /// restart, a network change) before it counts as lost (or
    /// `session_idle_timeout` in the config file). Default: 60
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    session_idle_timeout: Option<u64>,
    /// Whether the session may leave the relay for a direct path to the
    /// technician when one answers (or `direct` in the config file):
    /// `allow` (the default) or `never`. A direct path shows the
    /// technician this machine's addresses; `never` keeps the session on
    /// the relay, and neither side learns the other's address.
    #[arg(long, value_name = "allow|never")]
    direct: Option<Policy>,
}

/// What this machine trusts, where it keeps its records, and how it asks.
#[derive(clap::Args)]
struct LocalArgs {
    /// Config file (TOML: relay, relay_fingerprint, trusted_keys, data_dir, consent_timeout, fetch_cap, session_idle_timeout, lang, catalog, direct). Default: ~/.config/sprijin/agent.toml if present, else /etc/sprijin/agent.toml if present (on Windows: %ProgramData%\Sprijin\agent.toml)
    #[arg(long, env = "SPRIJIN_AGENT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// A public key whose signed script catalogs you trust (repeatable). Without one, no script can run.
    #[arg(long)]
    trusted_key: Vec<PathBuf>,
    /// Where the audit log and the record of accepted catalogs are kept. Default: ~/.local/share/sprijin/agent (on Windows: %LOCALAPPDATA%\Sprijin)
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seconds to wait for your answer to a question before it counts as no
    /// (or `consent_timeout` in the config file). Default: 120
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    consent_timeout: Option<u64>,
    /// Output bytes per run sent to the technician; the rest is counted, not sent.
    #[arg(long, default_value_t = sprijin_agent::script::runner::DEFAULT_OUTPUT_CAP)]
    output_cap: u64,
    /// The window's language: en or ro (or `lang` in the config file).
    /// Default: from the system locale (LC_ALL, LC_MESSAGES, LANG)
    #[arg(long, value_name = "LANG")]
    lang: Option<Lang>,
}

/// Window or terminal.
#[derive(clap::Args)]
struct FaceArgs {
    /// Use the window, even when the display is not detected (fails if no
    /// window can open).
    #[arg(long, conflicts_with = "terminal")]
    window: bool,
    /// Use this terminal, even when a display is available.
    #[arg(long)]
    terminal: bool,
}

/// The repairs the person may run alone.
#[derive(clap::Args)]
struct CatalogArgs {
    /// A signed catalog folder your organisation installed (or `catalog`
    /// in the config file). Default: the last catalog a technician's
    /// session brought
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
    /// Seconds to watch this computer before saying what looks wrong
    #[arg(long, value_name = "SECS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    watch: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Get a one-time code to read to your technician, and serve their session.
    Share {
        #[command(flatten)]
        relay: RelayArgs,
        #[command(flatten)]
        local: LocalArgs,
        #[command(flatten)]
        face: FaceArgs,
    },
    /// Check this computer: what looks wrong, and the repairs your
    /// organisation lets you run yourself. Opens the window when there is
    /// a display (Share is one click away there), else prints the list.
    Check {
        #[command(flatten)]
        local: LocalArgs,
        #[command(flatten)]
        catalog: CatalogArgs,
        #[command(flatten)]
        face: FaceArgs,
        /// For Share in the window: the relay and the rest of `share`'s
        /// settings (or the config file).
        #[command(flatten)]
        relay: RelayArgs,
    },
    /// Run the repair offered for finding N of `check`, after asking you,
    /// then check again whether the finding is gone.
    Fix {
        /// The finding's number, as `check` printed it.
        #[arg(value_parser = clap::value_parser!(u64).range(1..=1000))]
        number: u64,
        #[command(flatten)]
        local: LocalArgs,
        #[command(flatten)]
        catalog: CatalogArgs,
    },
    /// Show this machine's state and what looks wrong, without any network.
    Diag {
        /// Print the snapshot and findings as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds to watch before reporting, so what changes over time (a
        /// program restarting, a disk filling, a group at its limit) shows;
        /// 0 for a quick look
        #[arg(long, value_name = "SECS", default_value_t = 3,
              value_parser = clap::value_parser!(u64).range(0..=600))]
        watch: u64,
    },
    /// The audit log of sessions and runs on this machine.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, ...) on stdout.
    Completions(CompletionsArgs),
    /// Write the man pages to a folder.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that no line of the audit log was changed or removed, and that
    /// it is still the log this machine started.
    Verify {
        /// The agent's data folder, holding audit.log. Default: ~/.local/share/sprijin/agent (on Windows: %LOCALAPPDATA%\Sprijin)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Also check that the log reaches this head (SEQ:HASH, from a session report).
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<sprijin_agent::audit::Head>,
    },
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if cli.command.is_none() {
        // The start screen: check this computer, with its defaults.
        cli.command = Cli::parse_from(["sprijin-agent", "check"]).command;
    }
    sprijin_cli::log::init(cli.log.log_format);
    sprijin_cli::exit(run(cli).map(|()| ExitCode::SUCCESS))
}

/// The configuration from the flags and the config file, the language,
/// and the file's catalog folder.
fn resolve(
    relay: Option<RelayArgs>,
    local: LocalArgs,
) -> anyhow::Result<(AgentConfig, Lang, Option<PathBuf>)> {
    let file = ConfigFile::load_chosen(local.config.as_deref())?;
    let lang = local.lang.or(file.lang).unwrap_or_else(Lang::from_env);
    let catalog = file.catalog.clone();
    let relay = relay.unwrap_or_default();
    let flags = ShareFlags {
        relays: relay.relay,
        relay_fingerprint: relay.relay_fingerprint,
        trusted_keys: local.trusted_key,
        data_dir: local.data_dir,
        consent_timeout: local.consent_timeout,
        output_cap: local.output_cap,
        fetch_cap: relay.fetch_cap,
        session_idle_timeout: relay.session_idle_timeout,
        direct: relay.direct,
    };
    Ok((AgentConfig::resolve(flags, file)?, lang, catalog))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // `main` gives every run a command.
    let Some(command) = cli.command else {
        return Ok(());
    };
    match command {
        Command::Share { relay, local, face } => {
            let (config, lang, _) = resolve(Some(relay), local)?;
            config.require_relay()?;
            if config.trusted_keys.is_empty() {
                println!(
                    "no trusted catalog key is configured (--trusted-key): the technician can look, but no script can run"
                );
            }
            let face = FaceChoice::from_flags(face.window, face.terminal);
            sprijin_agent::face::launch::share(config, face, lang)?;
            Ok(())
        }
        Command::Check {
            local,
            catalog,
            face,
            relay,
        } => {
            let (config, lang, file_catalog) = resolve(Some(relay), local)?;
            let help = SelfHelp {
                config,
                catalog: catalog.catalog.or(file_catalog),
                watch: std::time::Duration::from_secs(catalog.watch),
            };
            let face = FaceChoice::from_flags(face.window, face.terminal);
            if let Some(list) = sprijin_agent::face::launch::check(help, face, lang)? {
                print!("{list}");
            }
            Ok(())
        }
        Command::Fix {
            number,
            local,
            catalog,
        } => {
            let (config, _, file_catalog) = resolve(None, local)?;
            let help = SelfHelp {
                config,
                catalog: catalog.catalog.or(file_catalog),
                watch: std::time::Duration::from_secs(catalog.watch),
            };
            let number = usize::try_from(number).unwrap_or(usize::MAX);
            println!("{}", selfhelp::terminal::run_fix(&help, number)?);
            Ok(())
        }
        Command::Completions(args) => Ok(pages::print_completions(Cli::command(), args.shell)?),
        Command::Man(args) => {
            pages::write_man_pages(Cli::command(), &args.dir)
                .with_context(|| format!("cannot write man pages to {}", args.dir.display()))?;
            Ok(())
        }
        Command::Diag { json, watch } => {
            let watch = std::time::Duration::from_secs(watch);
            print!(
                "{}",
                sprijin_agent::diag::report::local_report(json, watch)?
            );
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    data_dir: dir,
                    head,
                },
        } => {
            let path = dir.unwrap_or_else(default_data_dir).join("audit.log");
            let report = sprijin_agent::audit::verify(&path, head.as_ref())?;
            println!(
                "{}: the chain of {} lines is intact (head {})",
                path.display(),
                report.lines,
                report.head
            );
            if let Some(head) = head {
                println!("it reaches the head {head}");
            }
            for note in &report.notes {
                println!("note: {note}");
            }
            Ok(())
        }
    }
}
