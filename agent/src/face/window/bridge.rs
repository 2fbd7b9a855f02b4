//! The session's side of the window: a [`Face`] that turns every call into
//! a message for the window's thread, and waits for the person's answer on
//! a channel of its own. The timeout and a withdrawal are decided here, on
//! the session's clock, whatever the window does; the window is told so it
//! takes the question off the screen.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use eframe::egui;
use sprijin_proto::code::SessionCode;
use tokio::sync::{Mutex, oneshot};

use super::ToWindow;
use crate::audit::Head;
use crate::consent::{Answer, TextAnswer};
use crate::face::{Asking, Face, Notice, Question, RunUpdate, Withdrawn};
use crate::identity::Identity;

/// Who the technician is, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technician {
    /// The name and how it stands, put in the person's words when drawn.
    pub identity: Identity,
    pub words: String,
}

/// A [`Face`] drawn by the window.
pub struct WindowFace {
    to_window: mpsc::Sender<ToWindow>,
    /// Wakes the window when something arrives.
    repaint: egui::Context,
    timeout: Duration,
    /// One question at a time, as at the terminal.
    turn: Mutex<()>,
    next_id: AtomicU64,
}

impl WindowFace {
    pub fn new(
        to_window: mpsc::Sender<ToWindow>,
        repaint: egui::Context,
        timeout: Duration,
    ) -> WindowFace {
        WindowFace {
            to_window,
            repaint,
            timeout,
            turn: Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }

    pub(super) fn send(&self, msg: ToWindow) {
        // A closed window is the session ending; the stop reaches it.
        let _ = self.to_window.send(msg);
        self.repaint.request_repaint();
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts a question on the screen and waits for its answer, the timeout
    /// or the withdrawal, whichever comes first.
    async fn asked<T>(
        &self,
        withdrawn: Withdrawn<'_>,
        question: impl FnOnce(u64, oneshot::Sender<T>) -> ToWindow,
        closed: T,
        timed_out: T,
        taken_back: T,
    ) -> T {
        let mut withdrawn = withdrawn;
        let _turn = tokio::select! {
            turn = self.turn.lock() => turn,
            _ = &mut withdrawn => return taken_back,
        };
        let id = self.next_id();
        let (reply, answer) = oneshot::channel();
        self.send(question(id, reply));
        tokio::select! {
            answer = answer => answer.unwrap_or(closed),
            () = tokio::time::sleep(self.timeout) => {
                self.send(ToWindow::TimedOut { id });
                timed_out
            }
            why = &mut withdrawn => {
                self.send(ToWindow::Withdraw { id, why });
                taken_back
            }
        }
    }
}

impl Face for WindowFace {
    fn show_code(&self, code: &SessionCode, valid_for: Duration) {
        // Printed in every mode: scripts read it, and so can a person at the terminal.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "code: {code}");
        let _ = out.flush();
        self.send(ToWindow::Code {
            code: code.to_string(),
            valid_for,
        });
    }

    fn show_connected(&self, technician: &Identity, words: &str) {
        self.send(ToWindow::Connected(Technician {
            identity: technician.clone(),
            words: words.to_string(),
        }));
    }

    fn show(&self, notice: Notice) {
        self.send(ToWindow::Notice(notice));
    }

    fn show_message(&self, text: &str) {
        self.send(ToWindow::Message(text.to_string()));
    }

    fn show_run(&self, run: RunUpdate) {
        self.send(ToWindow::Run(run));
    }

    fn show_audit_head(&self, head: &Head) {
        self.send(ToWindow::AuditHead(head.to_string()));
    }

    fn ask<'a>(&'a self, question: &'a Question, withdrawn: Withdrawn<'a>) -> Asking<'a, Answer> {
        let timeout = self.timeout;
        Box::pin(self.asked(
            withdrawn,
            move |id, reply| ToWindow::Ask {
                id,
                question: question.clone(),
                timeout,
                reply,
            },
            Answer::NoInput,
            Answer::NoAnswer,
            Answer::Withdrawn,
        ))
    }

    fn ask_text<'a>(
        &'a self,
        question: &'a str,
        withdrawn: Withdrawn<'a>,
    ) -> Asking<'a, TextAnswer> {
        let timeout = self.timeout;
        Box::pin(self.asked(
            withdrawn,
            move |id, reply| ToWindow::AskText {
                id,
                text: question.to_string(),
                timeout,
                reply,
            },
            TextAnswer::NoInput,
            TextAnswer::NoAnswer,
            TextAnswer::Withdrawn,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::Detail;

    fn question() -> Question {
        Question {
            text: "q".into(),
            detail: Detail::File {
                path: "/etc/hosts".into(),
            },
        }
    }

    fn face(timeout: Duration) -> (WindowFace, mpsc::Receiver<ToWindow>) {
        let (tx, rx) = mpsc::channel();
        (WindowFace::new(tx, egui::Context::default(), timeout), rx)
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_no_answer_and_the_window_is_told() {
        let (face, rx) = face(Duration::from_secs(30));
        let q = question();
        let answer = face.ask(&q, Box::pin(std::future::pending())).await;
        assert_eq!(answer, Answer::NoAnswer);
        assert!(matches!(rx.try_recv(), Ok(ToWindow::Ask { id: 1, .. })));
        assert!(matches!(rx.try_recv(), Ok(ToWindow::TimedOut { id: 1 })));
    }

    #[tokio::test]
    async fn a_withdrawn_question_leaves_the_window_with_its_reason() {
        let (face, rx) = face(Duration::from_secs(30));
        let answer = face
            .ask_text("which printer?", Box::pin(async { "ended".to_string() }))
            .await;
        assert_eq!(answer, TextAnswer::Withdrawn);
        // Withdrawn while waiting for its turn or once shown: never answered.
        while let Ok(msg) = rx.try_recv() {
            if let ToWindow::Withdraw { why, .. } = msg {
                assert_eq!(why, "ended");
            }
        }
    }

    #[tokio::test]
    async fn the_windows_answer_is_the_answer() {
        let (face, rx) = face(Duration::from_secs(30));
        let q = question();
        let window = std::thread::spawn(move || match rx.recv() {
            Ok(ToWindow::Ask { reply, .. }) => {
                let _ = reply.send(Answer::Yes);
            }
            _ => panic!("no question reached the window"),
        });
        let answer = face.ask(&q, Box::pin(std::future::pending())).await;
        assert_eq!(answer, Answer::Yes);
        window.join().unwrap();
    }
}
