//! The work behind the check screen, on the window's work thread: checks
//! the machine, runs the repair the person picks (asked in the window like
//! any question), checks again, and starts sharing when asked, in the same
//! window and with the same face.

use std::sync::{Arc, mpsc};

use sprijin_proto::text::clean_line;
use tokio::sync::oneshot;

use super::check_view::{CheckShown, FixShown, ItemShown};
use super::{FromWindow, ToWindow, WindowFace};
use crate::face::strings::Lang;
use crate::face::strings::findings::headline;
use crate::selfhelp::{self, Checkup, Fixed, SelfHelp};

/// Serves the check screen until the window closes, or until a session
/// started from it ends. `Err` says what failed, for the last screen.
pub fn serve(
    help: SelfHelp,
    lang: Lang,
    face: Arc<WindowFace>,
    mut ended: oneshot::Receiver<()>,
    asked: mpsc::Receiver<FromWindow>,
) -> Result<(), String> {
    let runtime = sprijin_proto::runtime::session()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mut checkup = check(&help, lang, &face);
    // Ends when the window is closed: its sender is dropped.
    while let Ok(request) = asked.recv() {
        match request {
            FromWindow::CheckAgain => checkup = check(&help, lang, &face),
            FromWindow::Fix(at) => {
                let Some(item) = checkup.as_ref().and_then(|c| c.items.get(at)) else {
                    continue;
                };
                let Some(offer) = &item.offer else {
                    continue;
                };
                face.send(ToWindow::Fixing);
                let title = clean_line(&headline(lang, &item.finding).0).into_owned();
                // Closing the window stops the repair; its end is recorded.
                let mut closed = false;
                let fixed = runtime.block_on(selfhelp::fix(
                    &help,
                    &item.finding,
                    offer,
                    &*face,
                    &mut |_, _| {},
                    async {
                        let _ = (&mut ended).await;
                        closed = true;
                    },
                ));
                if closed {
                    return fixed.map(|_| ()).map_err(|e| e.to_string());
                }
                face.send(ToWindow::Fixed(match fixed {
                    Ok(Fixed::NotApproved(_)) => FixShown::NothingRan,
                    Ok(Fixed::Ran { still: None, .. }) => FixShown::Fixed { title },
                    Ok(Fixed::Ran { still: Some(_), .. }) => FixShown::StillThere { title },
                    Err(e) => FixShown::Failed(e.to_string()),
                }));
                checkup = check(&help, lang, &face);
            }
            FromWindow::Share => {
                if let Err(e) = help.config.require_relay() {
                    face.send(ToWindow::Fixed(FixShown::CannotShare(e.to_string())));
                    continue;
                }
                face.send(ToWindow::Sharing);
                return runtime
                    .block_on(crate::session::share(
                        help.config.clone(),
                        face.clone(),
                        async {
                            tokio::select! {
                                _ = tokio::signal::ctrl_c() => {}
                                // Fired by End session, or dropped with the window.
                                _ = ended => {}
                            }
                        },
                        None,
                    ))
                    .map(|_| ())
                    .map_err(|e| e.to_string());
            }
        }
    }
    Ok(())
}

/// Checks the machine and shows what it found; `None` when the check
/// failed (said on the screen).
fn check(help: &SelfHelp, lang: Lang, face: &WindowFace) -> Option<Checkup> {
    face.send(ToWindow::Checking);
    match selfhelp::check(help) {
        Ok(checkup) => {
            let found: Vec<String> = checkup
                .items
                .iter()
                .map(|i| match &i.offer {
                    Some(o) => format!("{} (fix: {})", i.finding.id, o.script.id),
                    None => i.finding.id.clone(),
                })
                .collect();
            tracing::debug!(found = found.join(", "), "checked this computer");
            face.send(ToWindow::Checked(shown(&checkup, lang)));
            Some(checkup)
        }
        Err(e) => {
            face.send(ToWindow::Checked(CheckShown {
                items: Vec::new(),
                failed: Some(e.to_string()),
                no_repairs: None,
            }));
            None
        }
    }
}

/// What the screen shows of a check, in the person's language: every part
/// cleaned.
fn shown(checkup: &Checkup, lang: Lang) -> CheckShown {
    CheckShown {
        items: checkup
            .items
            .iter()
            .map(|item| {
                let (title, translated) = headline(lang, &item.finding);
                ItemShown {
                    severity: item.finding.severity,
                    title: clean_line(&title).into_owned(),
                    detail: translated.then(|| clean_line(&item.finding.title).into_owned()),
                    fix: item
                        .offer
                        .as_ref()
                        .map(|o| clean_line(&o.script.title).into_owned()),
                }
            })
            .collect(),
        failed: None,
        no_repairs: checkup.no_repairs.clone(),
    }
}
