//! The window drawn headless: every question's answers, the timeout, End
//! session, answers that arrive too early, long commands and both
//! languages. Each frame advances egui's clock by a quarter second.

use std::sync::mpsc;
use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tokio::sync::oneshot;

use super::{Technician, ToWindow, WindowApp};
use crate::consent::{Answer, TextAnswer};
use crate::face::strings::Lang;
use crate::face::{Detail, Question};
use crate::identity::{Identity, Standing, Unverified};

/// Frames per second of the harness's clock.
const FPS: usize = 4;

struct Window {
    harness: Harness<'static, WindowApp>,
    to_window: mpsc::Sender<ToWindow>,
    end: oneshot::Receiver<()>,
    lang: Lang,
}

impl Window {
    fn new(lang: Lang) -> Window {
        let (to_window, from_session) = mpsc::channel();
        let (end_tx, end) = oneshot::channel();
        let app = WindowApp::new(from_session, end_tx, lang);
        let harness = Harness::builder()
            .with_size(egui::vec2(1024.0, 600.0))
            .build_ui_state(|ui, app: &mut WindowApp| app.show(ui), app);
        Window {
            harness,
            to_window,
            end,
            lang,
        }
    }

    /// A window already connected to a technician.
    fn connected(lang: Lang) -> Window {
        let mut window = Window::new(lang);
        window.send(ToWindow::Code {
            code: "7-velvet-harbor".into(),
            valid_for: Duration::from_secs(600),
        });
        window.send(ToWindow::Connected(Technician {
            identity: ana(verified()),
            words: "amber river".into(),
        }));
        window.frames(1);
        window
    }

    fn send(&self, msg: ToWindow) {
        self.to_window.send(msg).unwrap();
    }

    fn frames(&mut self, n: usize) {
        for _ in 0..n {
            self.harness.step();
        }
    }

    /// Puts a yes/no question up (drawn in the next frame).
    fn ask(&self, question: Question, timeout: Duration) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        self.send(ToWindow::Ask {
            id: 1,
            question,
            timeout,
            reply,
        });
        answer
    }

    fn s(&self) -> &'static crate::face::strings::Strings {
        self.lang.strings()
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.harness.step();
    }
}

fn verified() -> Standing {
    Standing::Verified {
        key_id: "ed25519:0123456789abcdef".into(),
        valid_until: "2031-01-01".into(),
    }
}

fn ana(standing: Standing) -> Identity {
    Identity {
        name: "Ana Pop".into(),
        standing,
    }
}

fn view_question() -> Question {
    view_question_from(ana(verified()))
}

fn view_question_from(technician: Identity) -> Question {
    Question {
        text: "technician Ana Pop wants to see this machine's state".into(),
        detail: Detail::View { technician },
    }
}

fn run_question(args: Vec<String>) -> Question {
    Question {
        text: "the technician asks to run a repair script".into(),
        detail: Detail::Run {
            by: crate::audit::StartedBy::Technician,
            title: "Restart the printer queue".into(),
            description: "Stops and starts the print spooler.".into(),
            risk: "medium".into(),
            program: "/usr/bin/systemctl".into(),
            args,
            stops_after_secs: 30,
        },
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn allow_approves_once_the_dialog_was_read() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), MINUTE);
    w.frames(FPS + 1);
    w.click(w.s().allow);
    assert_eq!(answer.try_recv(), Ok(Answer::Yes));
    assert!(!w.harness.state().asking());
}

#[test]
fn deny_declines() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), MINUTE);
    w.frames(2);
    w.click(w.s().deny);
    assert_eq!(answer.try_recv(), Ok(Answer::No));
    assert!(!w.harness.state().asking());
}

#[test]
fn an_unanswered_dialog_times_out_as_no_answer() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), Duration::from_secs(3));
    w.frames(2 * FPS);
    assert_eq!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    w.frames(2 * FPS);
    assert_eq!(answer.try_recv(), Ok(Answer::NoAnswer));
    assert!(!w.harness.state().asking());
}

#[test]
fn end_session_stops_the_session() {
    let mut w = Window::connected(Lang::En);
    assert!(w.end.try_recv().is_err());
    w.click(w.s().end_session);
    assert_eq!(w.end.try_recv(), Ok(()));
    assert!(w.harness.state().end_requested());
}

#[test]
fn stop_sharing_stops_while_waiting_for_the_technician() {
    let mut w = Window::new(Lang::En);
    w.send(ToWindow::Code {
        code: "7-velvet-harbor".into(),
        valid_for: Duration::from_secs(600),
    });
    w.frames(1);
    w.harness.get_by_label("7-velvet-harbor");
    w.click(w.s().stop_sharing);
    assert_eq!(w.end.try_recv(), Ok(()));
}

#[test]
fn a_click_on_allow_before_the_dialog_was_read_does_not_allow() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), MINUTE);
    w.frames(1);
    // Allow is on the screen but not yet enabled: the click is lost, and
    // does not count later either.
    w.click(w.s().allow);
    w.frames(FPS + 1);
    assert_eq!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    assert!(w.harness.state().asking());
    // A click once it was read does.
    w.click(w.s().allow);
    assert_eq!(answer.try_recv(), Ok(Answer::Yes));
}

#[test]
fn a_click_that_arrives_with_the_dialog_does_not_allow() {
    let mut w = Window::connected(Lang::En);
    // Learn where Allow is drawn, then answer that question.
    let first = w.ask(view_question(), MINUTE);
    w.frames(1);
    let allow_at = w.harness.get_by_label(w.s().allow).rect().center();
    w.click(w.s().deny);
    drop(first);
    // The next question arrives in the same frame as a click where Allow
    // will be: the click was aimed at something else.
    let mut answer = w.ask(view_question(), MINUTE);
    w.harness.event(egui::Event::PointerMoved(allow_at));
    w.harness.event(egui::Event::PointerButton {
        pos: allow_at,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    w.harness.event(egui::Event::PointerButton {
        pos: allow_at,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    w.frames(2 * FPS);
    assert_eq!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    assert!(w.harness.state().asking());
}

#[test]
fn enter_never_allows() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), MINUTE);
    w.frames(1);
    // An Enter while the dialog is new is nothing at all.
    w.harness.key_press(egui::Key::Enter);
    w.frames(1);
    assert_eq!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    w.frames(FPS + 1);
    // Even with Allow focused, Enter is the default answer, Deny.
    w.harness.get_by_label(w.s().allow).focus();
    w.frames(1);
    assert!(w.harness.get_by_label(w.s().allow).is_focused());
    w.harness.key_press(egui::Key::Enter);
    w.frames(1);
    assert_eq!(answer.try_recv(), Ok(Answer::No));
}

#[test]
fn deny_has_the_focus_when_a_dialog_opens() {
    let mut w = Window::connected(Lang::En);
    let _answer = w.ask(view_question(), MINUTE);
    w.frames(2);
    assert!(w.harness.get_by_label(w.s().deny).is_focused());
}

#[test]
fn a_withdrawn_question_leaves_the_screen() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), MINUTE);
    w.frames(2);
    w.send(ToWindow::Withdraw {
        id: 1,
        why: "the technician withdrew this request".into(),
    });
    w.frames(1);
    assert!(!w.harness.state().asking());
    assert!(answer.try_recv().is_err());
    assert!(
        w.harness
            .query_by_label_contains("the technician withdrew this request")
            .is_some()
    );
}

#[test]
fn a_long_command_line_is_wrapped_and_shown_whole() {
    let mut w = Window::connected(Lang::En);
    let args: Vec<String> = (0..12)
        .map(|i| format!("--option-number-{i}=/var/lib/some/rather/long/path/to/a/file-{i}.conf"))
        .chain(["a word with spaces".to_string()])
        .collect();
    let _answer = w.ask(run_question(args.clone()), MINUTE);
    w.frames(2);
    let shown = super::app::command_lines("/usr/bin/systemctl", &args);
    let node = w.harness.get_by_label(&shown);
    for arg in &args[..12] {
        assert!(shown.contains(arg.as_str()), "{arg} is missing");
    }
    assert!(shown.contains("\"a word with spaces\""));
    // Every line fits the window's width: nothing is cut off at the side.
    assert!(node.rect().max.x <= 1024.0, "{:?}", node.rect());
    w.harness.get_by_label("Restart the printer queue");
    w.harness.get_by_label("medium");
}

#[test]
fn a_typed_answer_is_sent() {
    let mut w = Window::connected(Lang::En);
    let (reply, mut answer) = oneshot::channel();
    w.send(ToWindow::AskText {
        id: 2,
        text: "Which printer is it?".into(),
        timeout: MINUTE,
        reply,
    });
    w.frames(FPS + 1);
    w.harness
        .get_by_label(w.s().your_answer)
        .type_text("the one upstairs");
    w.frames(2);
    w.click(w.s().send_answer);
    assert_eq!(
        answer.try_recv(),
        Ok(TextAnswer::Text("the one upstairs".into()))
    );
}

#[test]
fn the_end_shows_why_and_the_audit_head() {
    let mut w = Window::connected(Lang::En);
    w.send(ToWindow::Notice(crate::face::Notice::Ended(
        crate::face::EndedBy::Technician,
    )));
    w.send(ToWindow::AuditHead("7:abcdef".into()));
    w.send(ToWindow::Finished(None));
    w.frames(1);
    w.harness.get_by_label(w.s().ended_by_technician);
    w.harness.get_by_label("7:abcdef");
    w.harness.get_by_label(w.s().close);
}

#[test]
fn romanian_dialogs_read_and_answer_in_romanian() {
    let mut w = Window::connected(Lang::Ro);
    let mut answer = w.ask(run_question(vec!["restart".into(), "cups".into()]), MINUTE);
    w.frames(FPS + 1);
    w.harness
        .get_by_label("Tehnicianul cere să ruleze o reparație");
    w.harness.get_by_label("mediu");
    w.harness.get_by_label("Refuză");
    w.harness.get_by_label("Încheie sesiunea");
    w.click("Permite");
    assert_eq!(answer.try_recv(), Ok(Answer::Yes));
}

#[test]
fn an_unverified_name_is_marked_in_the_persons_language() {
    let mut w = Window::new(Lang::Ro);
    w.send(ToWindow::Code {
        code: "7-velvet-harbor".into(),
        valid_for: Duration::from_secs(600),
    });
    let unverified = ana(Standing::NotVerified {
        reason: Unverified::NoCredential,
    });
    w.send(ToWindow::Connected(Technician {
        identity: unverified.clone(),
        words: "amber river".into(),
    }));
    let _answer = w.ask(view_question_from(unverified), MINUTE);
    w.frames(FPS + 1);
    w.harness.get_by_label("neverificat (fără acreditare)");
    w.harness
        .get_by_label("Ana Pop (neverificat (fără acreditare))");
    let english = Lang::En.strings().standing(&Standing::NotVerified {
        reason: Unverified::Refused("bad proof".into()),
    });
    assert_eq!(
        english,
        "not verified (the credential does not hold: bad proof)"
    );
}

#[test]
fn every_language_names_every_button() {
    for lang in Lang::ALL {
        let s = lang.strings();
        for text in [s.allow, s.deny, s.end_session, s.copy_code, s.close] {
            assert!(!text.is_empty(), "{lang}");
        }
    }
    assert_eq!(Lang::from_locale("ro_RO.UTF-8"), Lang::Ro);
    assert_eq!(Lang::from_locale("en_GB.UTF-8"), Lang::En);
    assert_eq!(Lang::from_locale("C"), Lang::En);
    assert_eq!("RO".parse::<Lang>(), Ok(Lang::Ro));
    assert!("de".parse::<Lang>().is_err());
}

#[test]
fn messages_and_runs_are_listed_with_their_status() {
    let mut w = Window::connected(Lang::En);
    w.send(ToWindow::Message("I am looking at the printer".into()));
    w.send(ToWindow::Run(crate::face::RunUpdate::Started {
        id: 4,
        script: "restart-unit".into(),
        title: "Restart the printer queue".into(),
        by: crate::audit::StartedBy::Technician,
    }));
    w.frames(1);
    w.harness
        .get_by_label("• Message from the technician: I am looking at the printer");
    w.harness
        .get_by_label("• Restart the printer queue: running");
    w.send(ToWindow::Run(crate::face::RunUpdate::Ended {
        id: 4,
        script: "restart-unit".into(),
        status: "exited with status 0".into(),
        stopped_because: None,
    }));
    w.frames(1);
    w.harness
        .get_by_label("• Restart the printer queue: finished (exited with status 0)");
    assert!(
        w.harness
            .query_by_label("• Restart the printer queue: running")
            .is_none()
    );
}

#[test]
fn escape_denies() {
    let mut w = Window::connected(Lang::En);
    let mut answer = w.ask(view_question(), MINUTE);
    w.frames(2);
    w.harness.key_press(egui::Key::Escape);
    w.frames(1);
    assert_eq!(answer.try_recv(), Ok(Answer::No));
}

#[test]
fn the_window_says_whether_the_session_goes_straight_or_through_the_relay() {
    for lang in [Lang::En, Lang::Ro] {
        let mut w = Window::connected(lang);
        w.frames(1);
        let count = |w: &Window, label: &str| w.harness.query_all_by_label(label).count();
        let (direct, relayed) = (w.s().path_direct, w.s().path_relayed);
        assert_eq!((count(&w, direct), count(&w, relayed)), (0, 1));
        let moved = |direct: bool| {
            ToWindow::Notice(crate::face::Notice::Path {
                direct,
                peer: direct.then(|| "203.0.113.5:4000".to_string()),
                reason: "test".into(),
            })
        };
        w.send(moved(true));
        w.frames(1);
        assert_eq!((count(&w, direct), count(&w, relayed)), (1, 0));
        w.send(moved(false));
        w.frames(1);
        assert_eq!((count(&w, direct), count(&w, relayed)), (0, 1));
    }
}
