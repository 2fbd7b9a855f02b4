//! The logging set-up every program shares: lines on stderr, filtered by
//! `RUST_LOG`, as text for people or as one JSON object per line for
//! journald or a log shipper.

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain lines, for people.
    #[default]
    Text,
    /// One JSON object per line, for journald or a log shipper.
    Json,
}

/// The logging flag, flattened into each program's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// How log lines on stderr look: text, or json (one object per line). Which lines: RUST_LOG (e.g. info).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SPRIJIN_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Starts logging to stderr in `format`. Call once, after the arguments
/// (and any config file) are read.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_writer(std::io::stderr);
    // A second call (tests driving a program in-process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
