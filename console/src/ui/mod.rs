//! The full-screen console for a technician at a terminal.
//!
//! One loop selects on terminal events (read on a thread of their own, since
//! reading a terminal blocks), answers from the agent, a refresh tick and the
//! end of the session; after each, it redraws from the state in [`app`].
//! The terminal is restored on every way out: quit, error, panic (ratatui's
//! hook), Ctrl-C (a key in raw mode) and the person ending the session.

pub mod app;
pub mod draw;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use sprijin_proto::catalog::ScriptId;
use sprijin_proto::message::session::{AgentMsg, Request, RequestId};
use tokio::sync::mpsc;

use crate::driver::LocalCatalog;
use crate::fetch::Receiving;
use crate::report::SessionRecord;
use crate::session::Session;
use app::{Action, App, Prompt, View};

/// How often the machine's state is refreshed on its own.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Restores the terminal when dropped, whatever way the loop ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the interactive console until the technician quits. Returns the
/// record of the session and why it ended, if the agent ended it.
pub async fn run(
    session: Session,
    record: SessionRecord,
    catalog: Option<LocalCatalog>,
) -> std::io::Result<(SessionRecord, Option<String>)> {
    let scripts = catalog
        .as_ref()
        .map(|c| {
            c.scripts
                .iter()
                .map(|(id, s)| (id.clone(), s.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut app = App::new(record, scripts);
    let (net_tx, mut net_rx) = mpsc::channel::<AgentMsg>(256);

    if let Some(cat) = &catalog {
        send(
            &session,
            &mut app,
            &net_tx,
            Request::Catalog(cat.signed.clone()),
        )
        .await;
    }
    refresh(&session, &mut app, &net_tx).await;

    let mut terminal = ratatui::init();
    let _guard = TerminalGuard;
    let stop = Arc::new(AtomicBool::new(false));
    let mut keys = spawn_key_reader(stop.clone());
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.tick().await;
    let mut redraw = tokio::time::interval(Duration::from_millis(250));

    let result = loop {
        if let Err(e) = terminal.draw(|frame| draw::draw(frame, &app)) {
            break Err(e);
        }
        tokio::select! {
            key = keys.recv() => {
                let Some(key) = key else { break Ok(()) };
                let Some(action) = on_key(&mut app, key) else { continue };
                match action {
                    Action::Quit => break Ok(()),
                    Action::Refresh => refresh(&session, &mut app, &net_tx).await,
                    Action::Run { script, params } => match script.parse::<ScriptId>() {
                        Ok(id) => {
                            if let Some(run) = send(&session, &mut app, &net_tx, Request::Run { script: id, params: params.clone() }).await {
                                app.run_requested(run, script, &params);
                            }
                        }
                        Err(e) => app.status = e.to_string(),
                    },
                    Action::Cancel(run) => {
                        send(&session, &mut app, &net_tx, Request::Cancel { run }).await;
                        app.status = format!("asked the agent to stop run {run}");
                    }
                    Action::Say(text) => {
                        if let Some(id) = send(&session, &mut app, &net_tx, Request::Say { text: text.clone() }).await {
                            app.talk_requested(id, false, text);
                        }
                    }
                    Action::Ask(text) => {
                        if let Some(id) = send(&session, &mut app, &net_tx, Request::Ask { text: text.clone() }).await {
                            app.talk_requested(id, true, text);
                        }
                    }
                    Action::Fetch { path, local } => fetch(&session, &mut app, &net_tx, path, &local).await,
                    Action::Report => write_report(&mut app),
                }
            }
            Some(msg) = net_rx.recv() => app.on_agent(msg),
            _ = tick.tick() => refresh(&session, &mut app, &net_tx).await,
            _ = redraw.tick() => {}
            reason = session.wait_ended(), if app.ended.is_none() => app.on_ended(reason),
        }
    };
    stop.store(true, Ordering::Relaxed);
    drop(_guard);
    let ended = app.ended.clone();
    session.close().await;
    result.map(|()| (app.record, ended))
}

/// Sends a request and forwards its answers into the app's channel.
async fn send(
    session: &Session,
    app: &mut App,
    net: &mpsc::Sender<AgentMsg>,
    request: Request,
) -> Option<RequestId> {
    match session.request(request).await {
        Ok((id, mut replies)) => {
            let net = net.clone();
            tokio::spawn(async move {
                while let Some(msg) = replies.recv().await {
                    if net.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            Some(id)
        }
        Err(e) => {
            app.status = e.to_string();
            None
        }
    }
}

/// Asks the agent for the file at `path`, once `local` is known to be
/// free, so a name that cannot be used is found before the person is asked.
async fn fetch(
    session: &Session,
    app: &mut App,
    net: &mpsc::Sender<AgentMsg>,
    path: String,
    local: &Path,
) {
    let receiving = match Receiving::create(local) {
        Ok(receiving) => receiving,
        Err(e) => {
            app.status = e.to_string();
            return;
        }
    };
    if let Some(id) = send(session, app, net, Request::Fetch { path: path.clone() }).await {
        app.fetch_requested(id, path, receiving);
    }
}

async fn refresh(session: &Session, app: &mut App, net: &mpsc::Sender<AgentMsg>) {
    if app.pending_diag.is_some() || app.ended.is_some() {
        return;
    }
    app.pending_diag = send(session, app, net, Request::Diagnostics).await;
}

fn write_report(app: &mut App) {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(':', "");
    let path = format!("sprijin-report-{}-{stamp}.md", app.record.nameplate);
    app.status = match std::fs::write(&path, app.record.to_markdown()) {
        Ok(()) => format!("report written to {path}"),
        Err(e) => format!("cannot write the report to {path}: {e}"),
    };
}

/// Turns a key into an intent on the app, and maybe an action for the loop.
fn on_key(app: &mut App, key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match &app.prompt {
        Some(
            Prompt::Params { .. } | Prompt::Say { .. } | Prompt::Ask { .. } | Prompt::Fetch { .. },
        ) => match key.code {
            KeyCode::Enter => app.submit_prompt(),
            KeyCode::Esc => {
                app.cancel_prompt();
                None
            }
            KeyCode::Backspace => {
                app.backspace();
                None
            }
            KeyCode::Char(c) => {
                app.type_char(c);
                None
            }
            _ => None,
        },
        Some(Prompt::Confirm { .. }) => match key.code {
            KeyCode::Enter | KeyCode::Char('y') | KeyCode::Char('Y') => app.submit_prompt(),
            KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('N') => {
                app.cancel_prompt();
                None
            }
            _ => None,
        },
        None => match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Tab | KeyCode::Right => {
                app.next_view();
                None
            }
            KeyCode::BackTab | KeyCode::Left => {
                app.prev_view();
                None
            }
            KeyCode::Char(c @ '1'..='6') => {
                let i = c as usize - '1' as usize;
                app.show(View::ALL[i]);
                None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                app.select_next();
                None
            }
            KeyCode::Up | KeyCode::Char('k') => {
                app.select_prev();
                None
            }
            KeyCode::Enter => {
                app.activate();
                None
            }
            KeyCode::Char('s') => {
                app.toggle_sort();
                None
            }
            KeyCode::Char('r') => Some(Action::Refresh),
            KeyCode::Char('c') => app.cancel_run(),
            KeyCode::Char('p') => Some(Action::Report),
            KeyCode::Char('m') => {
                app.begin_talk(false);
                None
            }
            KeyCode::Char('a') => {
                app.begin_talk(true);
                None
            }
            KeyCode::Char('f') => {
                app.begin_fetch();
                None
            }
            _ => None,
        },
    }
}

/// Reads terminal events on a thread, until `stop` is set.
fn spawn_key_reader(stop: Arc<AtomicBool>) -> mpsc::Receiver<KeyEvent> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(Event::Key(key)) => {
                        if tx.blocking_send(key).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });
    rx
}
