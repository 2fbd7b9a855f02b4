//! `share` with the right face: the window when it is wanted and can open,
//! else the terminal exactly as it has always been.

use std::sync::Arc;

use super::choose::{FaceChoice, Surroundings};
use super::strings::Lang;
use super::window::{self, WindowError};
use crate::config::AgentConfig;
use crate::consent::Consent;
use crate::selfhelp::SelfHelp;
use crate::session::{self, AgentError, Ending};

/// Why sharing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    #[error(transparent)]
    Session(#[from] AgentError),
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Terminal(#[from] crate::selfhelp::terminal::TerminalError),
}

/// `check` with the face `choice` asks for: the window's check screen
/// (`None` once it is closed), else the numbered list for the terminal.
pub fn check(
    help: SelfHelp,
    choice: FaceChoice,
    lang: Lang,
) -> Result<Option<String>, LaunchError> {
    if choice.wants_window(&Surroundings::here()) {
        match window::check(help.clone(), lang) {
            Ok(()) => return Ok(None),
            Err(e @ WindowError::Open(_)) if choice == FaceChoice::Auto => {
                eprintln!("{e}; using the terminal");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(crate::selfhelp::terminal::run_check(&help)?))
}

/// Serves one session with the face `choice` asks for. When the window was
/// only wanted (not forced) and cannot open, the terminal serves instead.
pub fn share(config: AgentConfig, choice: FaceChoice, lang: Lang) -> Result<Ending, LaunchError> {
    if choice.wants_window(&Surroundings::here()) {
        match window::share(config.clone(), lang) {
            Ok(result) => return Ok(result?),
            Err(e @ WindowError::Open(_)) if choice == FaceChoice::Auto => {
                eprintln!("{e}; using the terminal");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let consent = Arc::new(Consent::from_stdin(config.consent_timeout));
    let runtime = sprijin_proto::runtime::session().map_err(LaunchError::Runtime)?;
    Ok(runtime.block_on(session::share(
        config,
        consent,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        None,
    ))?)
}
