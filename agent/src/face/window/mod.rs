//! The person's window: the code in large type, who the technician is,
//! each question as a dialog with Allow and Deny, what happened, and an
//! End session button that is always there.
//!
//! The window owns the main thread (the display system requires it); the
//! session runs on a thread of its own with its own async runtime. They
//! talk through channels: [`bridge::WindowFace`] sends [`ToWindow`]
//! messages, each question carries its own reply channel, and End session
//! (or closing the window) fires the session's stop, which ends it with
//! the same authenticated goodbye as Ctrl-C at the terminal.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use eframe::egui;
use tokio::sync::oneshot;

use crate::config::AgentConfig;
use crate::consent::{Answer, TextAnswer};
use crate::face::strings::Lang;
use crate::face::{Notice, Question, RunUpdate};
use crate::selfhelp::SelfHelp;
use crate::session::{self, AgentError, Ending};

pub mod app;
pub mod bridge;
pub mod check_view;
mod checkup;

pub use app::WindowApp;
pub use bridge::{Technician, WindowFace};
pub use check_view::{CheckShown, FixShown, ItemShown};

/// What the person asks of the check screen's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromWindow {
    /// Run the repair offered for the finding at this place in the list.
    Fix(usize),
    CheckAgain,
    /// Start sharing: the code screen follows.
    Share,
}

/// What the session tells the window.
pub enum ToWindow {
    Code {
        code: String,
        valid_for: Duration,
    },
    Connected(Technician),
    Notice(Notice),
    Message(String),
    Run(RunUpdate),
    AuditHead(String),
    Ask {
        id: u64,
        question: Question,
        timeout: Duration,
        reply: oneshot::Sender<Answer>,
    },
    AskText {
        id: u64,
        text: String,
        timeout: Duration,
        reply: oneshot::Sender<TextAnswer>,
    },
    /// The session took question `id` back, for this reason.
    Withdraw {
        id: u64,
        why: String,
    },
    /// Question `id` was not answered in time.
    TimedOut {
        id: u64,
    },
    /// The session is over; `Some` says what failed.
    Finished(Option<String>),
    /// The check screen: a check is under way.
    Checking,
    /// The check screen: what the check found.
    Checked(CheckShown),
    /// The check screen: a repair is running.
    Fixing,
    /// The check screen: how the person's repair went.
    Fixed(FixShown),
    /// Sharing starts; the check screen gives way to the session's.
    Sharing,
}

/// The window could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    #[error("cannot open the window ({0}): check DISPLAY or WAYLAND_DISPLAY, or pass --terminal")]
    Open(String),
    #[error("cannot start the async runtime for the session: {0}")]
    Runtime(std::io::Error),
    #[error("the session's thread stopped unexpectedly")]
    SessionThread,
    /// What stopped the check screen's work (shown on its last screen too).
    #[error("{0}")]
    Work(String),
}

/// Runs one session with the window as its face, until the person closes
/// the window. Must be called on the main thread. `Err(Open)` means no
/// window was shown and no session started.
pub fn share(config: AgentConfig, lang: Lang) -> Result<Result<Ending, AgentError>, WindowError> {
    let timeout = config.consent_timeout;
    serve(
        lang,
        timeout,
        None,
        move |face, ended| run_session(config, face, ended),
        |result| match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        },
    )?
}

/// Opens the window on its check screen: the findings, Fix where the
/// person may repair alone, and Get help, which starts sharing in the same
/// window. Returns once the window is closed. Must be called on the main
/// thread.
pub fn check(help: SelfHelp, lang: Lang) -> Result<(), WindowError> {
    let timeout = help.config.consent_timeout;
    let (commands, asked) = mpsc::channel();
    serve(
        lang,
        timeout,
        Some(commands),
        move |face, ended| checkup::serve(help, lang, face, ended, asked),
        |result| result.as_ref().err().cloned(),
    )?
    .map_err(WindowError::Work)
}

/// Shows the window on this thread (the main one) while `work` runs on a
/// thread of its own with the window's face and the End channel (fired by
/// End session, dropped with the window); returns what `work` returned once
/// the window is closed. With `commands`, the window starts on the check
/// screen and sends the person's requests there. `failed` says what went
/// wrong, if anything, for the window's last screen. `Err(Open)` means
/// `work` never started.
pub fn serve<R: Send + 'static>(
    lang: Lang,
    timeout: Duration,
    commands: Option<mpsc::Sender<FromWindow>>,
    work: impl FnOnce(Arc<WindowFace>, oneshot::Receiver<()>) -> R + Send + 'static,
    failed: fn(&R) -> Option<String>,
) -> Result<R, WindowError> {
    let s = lang.strings();
    let (to_window, from_session) = mpsc::channel();
    let (end, ended) = oneshot::channel::<()>();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(s.window_title)
            .with_app_id("sprijin-agent")
            .with_inner_size([900.0, 580.0])
            .with_min_inner_size([560.0, 420.0]),
        ..Default::default()
    };
    let mut worker = None;
    let started = &mut worker;
    let shown = eframe::run_native(
        "sprijin-agent",
        options,
        Box::new(move |cc| {
            let face = Arc::new(WindowFace::new(
                to_window.clone(),
                cc.egui_ctx.clone(),
                timeout,
            ));
            let repaint = cc.egui_ctx.clone();
            *started = Some(std::thread::spawn(move || {
                let result = work(face, ended);
                let _ = to_window.send(ToWindow::Finished(failed(&result)));
                repaint.request_repaint();
                result
            }));
            let app = WindowApp::new(from_session, end, lang);
            Ok(Box::new(match commands {
                Some(commands) => app.on_check_screen(commands),
                None => app,
            }))
        }),
    );
    // The window is closed; its End channel is dropped, which stops the
    // work. Wait for it (the goodbye and the records).
    match worker {
        None => Err(WindowError::Open(match shown {
            Err(e) => e.to_string(),
            Ok(()) => "it closed before it was shown".to_string(),
        })),
        Some(thread) => thread.join().map_err(|_| WindowError::SessionThread),
    }
}

fn run_session(
    config: AgentConfig,
    face: Arc<WindowFace>,
    ended: oneshot::Receiver<()>,
) -> Result<Result<Ending, AgentError>, WindowError> {
    let runtime = sprijin_proto::runtime::session().map_err(WindowError::Runtime)?;
    Ok(runtime.block_on(session::share(
        config,
        face,
        async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                // Fired by End session, or dropped with the window.
                _ = ended => {}
            }
        },
        None,
    )))
}

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod tests;
