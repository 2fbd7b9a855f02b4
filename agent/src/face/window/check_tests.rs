//! The check screen drawn headless: findings listed most important first,
//! Fix only where the person may repair alone, the same consent dialog as
//! a technician's run, the result, and Get help.

use std::sync::mpsc;
use std::time::Duration;

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use sprijin_proto::message::diag::Severity;
use tokio::sync::oneshot;

use super::check_view::{CheckShown, FixShown, ItemShown};
use super::{FromWindow, ToWindow, WindowApp};
use crate::consent::Answer;
use crate::face::strings::{Lang, Strings};
use crate::face::{Detail, Question};

struct Screen {
    harness: Harness<'static, WindowApp>,
    to_window: mpsc::Sender<ToWindow>,
    asked: mpsc::Receiver<FromWindow>,
    _end: oneshot::Receiver<()>,
    s: &'static Strings,
}

impl Screen {
    fn new(lang: Lang) -> Screen {
        let (to_window, from_work) = mpsc::channel();
        let (end, _end) = oneshot::channel();
        let (commands, asked) = mpsc::channel();
        let app = WindowApp::new(from_work, end, lang).on_check_screen(commands);
        let harness = Harness::builder()
            .with_size(egui::vec2(1024.0, 700.0))
            .build_ui_state(|ui, app: &mut WindowApp| app.show(ui), app);
        Screen {
            harness,
            to_window,
            asked,
            _end,
            s: lang.strings(),
        }
    }

    /// A screen showing a full disk the person may fix and a problem only
    /// a technician can.
    fn checked(lang: Lang) -> Screen {
        let mut screen = Screen::new(lang);
        screen.send(ToWindow::Checking);
        screen.frames(1);
        screen.send(ToWindow::Checked(CheckShown {
            items: vec![
                ItemShown {
                    severity: Severity::Critical,
                    title: "Disk /home is 95% full, 500.0 KiB free".into(),
                    detail: None,
                    fix: Some("Delete old files from your cache".into()),
                },
                ItemShown {
                    severity: Severity::Warning,
                    title: "The clock is not synchronised with a time server".into(),
                    detail: None,
                    fix: None,
                },
            ],
            failed: None,
            no_repairs: None,
        }));
        screen.frames(1);
        screen
    }

    fn send(&self, msg: ToWindow) {
        self.to_window.send(msg).unwrap();
    }

    fn frames(&mut self, n: usize) {
        for _ in 0..n {
            self.harness.step();
        }
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.harness.step();
    }

    fn shows(&self, text: &str) -> bool {
        self.harness
            .query_all_by_label_contains(text)
            .next()
            .is_some()
    }
}

fn run_question() -> Question {
    Question {
        text: "you asked to run a repair script".into(),
        detail: Detail::Run {
            by: crate::audit::StartedBy::Person,
            title: "Delete old files from your cache".into(),
            description: "Deletes the files in your own cache folder.".into(),
            risk: "low".into(),
            program: "find".into(),
            args: vec!["/home/ana/.cache".into(), "-delete".into()],
            stops_after_secs: 300,
        },
    }
}

#[test]
fn findings_are_listed_with_fix_only_where_the_person_may_repair() {
    let mut screen = Screen::checked(Lang::En);
    let s = screen.s;
    assert!(screen.shows(s.check_title));
    assert!(screen.shows("Disk /home is 95% full"));
    assert!(screen.shows("The clock is not synchronised"));
    assert!(screen.shows(s.severity_critical));
    assert!(screen.shows(&(s.you_may_fix)("Delete old files from your cache")));
    assert_eq!(
        screen.harness.query_all_by_label(s.fix).count(),
        1,
        "one Fix button, for the finding the person may repair"
    );
    screen.click(s.fix);
    assert_eq!(screen.asked.try_recv(), Ok(FromWindow::Fix(0)));
}

#[test]
fn fix_asks_the_same_question_and_says_whether_the_finding_is_gone() {
    let mut screen = Screen::checked(Lang::En);
    let s = screen.s;
    screen.click(s.fix);
    assert_eq!(screen.asked.try_recv(), Ok(FromWindow::Fix(0)));
    screen.send(ToWindow::Fixing);
    let (reply, mut answer) = oneshot::channel();
    screen.send(ToWindow::Ask {
        id: 1,
        question: run_question(),
        timeout: Duration::from_secs(60),
        reply,
    });
    screen.frames(1);
    // The technician's dialog: title, risk, the exact command.
    assert!(screen.shows(s.run_title_person));
    assert!(screen.shows("/home/ana/.cache"));
    assert!(screen.shows(s.risk_low));
    // Allow waits until the question was on the screen a moment.
    screen.click(s.allow);
    assert_eq!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    screen.frames(6);
    screen.click(s.allow);
    assert_eq!(answer.try_recv(), Ok(Answer::Yes));

    let title = "Disk /home is 95% full, 500.0 KiB free".to_string();
    screen.send(ToWindow::Fixed(FixShown::Fixed {
        title: title.clone(),
    }));
    screen.frames(1);
    assert!(screen.shows(&(s.fixed)(&title)));

    screen.send(ToWindow::Fixed(FixShown::StillThere {
        title: title.clone(),
    }));
    screen.frames(1);
    assert!(screen.shows(&(s.still_there)(&title)));
    assert!(!screen.shows(&(s.fixed)(&title)));
    // Get help stays one click away.
    screen.click(s.get_help);
    assert_eq!(screen.asked.try_recv(), Ok(FromWindow::Share));
}

#[test]
fn buttons_wait_while_a_check_or_repair_is_under_way() {
    let mut screen = Screen::checked(Lang::En);
    let s = screen.s;
    screen.send(ToWindow::Checking);
    screen.frames(1);
    assert!(screen.shows(s.checking));
    screen.click(s.check_again);
    assert!(screen.asked.try_recv().is_err(), "Check again is disabled");
}

#[test]
fn get_help_turns_the_window_into_the_sharing_screen() {
    let mut screen = Screen::checked(Lang::En);
    let s = screen.s;
    screen.click(s.get_help);
    assert_eq!(screen.asked.try_recv(), Ok(FromWindow::Share));
    screen.send(ToWindow::Sharing);
    screen.send(ToWindow::Code {
        code: "7-velvet-harbor".into(),
        valid_for: Duration::from_secs(600),
    });
    screen.frames(1);
    assert!(screen.harness.state().check_screen().is_none());
    assert!(screen.shows("7-velvet-harbor"));
    assert!(screen.shows(s.stop_sharing));
}

#[test]
fn the_check_screen_speaks_romanian() {
    let mut screen = Screen::checked(Lang::Ro);
    assert!(screen.shows("Verifică acest calculator"));
    assert!(screen.shows("Repară"));
    assert!(screen.shows("Cere ajutorul unui tehnician"));
    screen.send(ToWindow::Checked(CheckShown {
        items: Vec::new(),
        failed: None,
        no_repairs: Some("no repair catalog is on this machine yet".into()),
    }));
    screen.frames(1);
    assert!(screen.shows("Nimic nu pare în neregulă"));
    assert!(screen.shows("Nu este disponibilă nicio reparație"));
    // A translated headline keeps the agent's own line under it.
    screen.send(ToWindow::Checked(CheckShown {
        items: vec![ItemShown {
            severity: Severity::Critical,
            title: "Discul /home este aproape plin: mai are liber 500.0 KiB".into(),
            detail: Some("Disk /home is 95% full, 500.0 KiB free".into()),
            fix: None,
        }],
        failed: None,
        no_repairs: None,
    }));
    screen.frames(1);
    assert!(screen.shows("Discul /home este aproape plin"));
    assert!(screen.shows("Disk /home is 95% full, 500.0 KiB free"));
}
