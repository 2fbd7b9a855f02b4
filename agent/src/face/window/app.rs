//! The window's state and drawing. It holds what the session told it (the
//! code, the technician, the open question, what happened) and draws it
//! every frame; the person's clicks become answers sent back on the
//! question's own channel, and End session becomes the session's stop.
//!
//! Time is egui's clock (`InputState::time`), so a test steps it frame by
//! frame.

use std::sync::mpsc;
use std::time::Duration;

use eframe::egui::{self, Button, Key, Modifiers, RichText, TextEdit};
use sprijin_proto::catalog::display_command;
use tokio::sync::oneshot;

use super::bridge::Technician;
use super::check_view::{CheckScreen, Pressed};
use super::{FromWindow, ToWindow};
use crate::audit::StartedBy;
use crate::consent::{Answer, TextAnswer};
use crate::face::strings::{Lang, Strings};
use crate::face::{Detail, EndedBy, Notice, Question, RunUpdate};

/// How long a question is on the screen before Allow can be pressed: a
/// click or a key meant for something else is not an answer to it.
pub const ARM_DELAY: f64 = crate::consent::ARM_DELAY.as_secs_f64();

/// How often the countdowns are redrawn.
const TICK: Duration = Duration::from_millis(250);

const CODE_SIZE: f32 = 56.0;

/// The window's state.
pub struct WindowApp {
    from_session: mpsc::Receiver<ToWindow>,
    /// Dropped or fired, it stops the session.
    end: Option<oneshot::Sender<()>>,
    s: &'static Strings,
    styled: bool,
    /// The end was drawn (said once in the log).
    end_drawn: bool,
    code: Option<CodeShown>,
    technician: Option<Technician>,
    /// Whether the session's connection is direct; `None` until it moves.
    direct: Option<bool>,
    dialog: Option<Dialog>,
    history: Vec<Entry>,
    audit_head: Option<String>,
    ended: Option<EndedBy>,
    copied: bool,
    /// The check screen, while the window shows it (before any sharing).
    check: Option<CheckScreen>,
    /// Where the check screen's buttons go.
    commands: Option<mpsc::Sender<FromWindow>>,
}

struct CodeShown {
    code: String,
    valid_for: Duration,
    /// When it was first drawn, on egui's clock.
    since: Option<f64>,
}

/// A question on the screen.
struct Dialog {
    id: u64,
    timeout: Duration,
    /// When it was first drawn; Allow waits [`ARM_DELAY`] from here.
    shown_at: Option<f64>,
    /// Allow has been enabled.
    armed: bool,
    typed: String,
    kind: Kind,
}

enum Kind {
    YesNo {
        question: Question,
        reply: oneshot::Sender<Answer>,
    },
    Text {
        text: String,
        reply: oneshot::Sender<TextAnswer>,
    },
}

impl Kind {
    /// What the question was about, in a few words, for the history.
    fn about(&self, s: &Strings) -> String {
        match self {
            Kind::YesNo { question, .. } => match &question.detail {
                Detail::View { .. } => s.view_title.to_string(),
                Detail::Run { title, .. } => title.clone(),
                Detail::File { path, .. } => path.clone(),
            },
            Kind::Text { text, .. } => text.clone(),
        }
    }
}

/// One line of what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Note(String),
    Message(String),
    Answered {
        about: String,
        how: String,
    },
    Run {
        id: u64,
        title: String,
        state: String,
    },
}

impl WindowApp {
    pub fn new(
        from_session: mpsc::Receiver<ToWindow>,
        end: oneshot::Sender<()>,
        lang: Lang,
    ) -> WindowApp {
        WindowApp {
            from_session,
            end: Some(end),
            s: lang.strings(),
            styled: false,
            end_drawn: false,
            code: None,
            technician: None,
            direct: None,
            dialog: None,
            history: Vec::new(),
            audit_head: None,
            ended: None,
            copied: false,
            check: None,
            commands: None,
        }
    }

    /// The same window, starting on the check screen; its buttons are sent
    /// to `commands`.
    pub fn on_check_screen(mut self, commands: mpsc::Sender<FromWindow>) -> WindowApp {
        self.check = Some(CheckScreen::default());
        self.commands = Some(commands);
        self
    }

    /// The check screen, while it is shown.
    pub fn check_screen(&self) -> Option<&CheckScreen> {
        self.check.as_ref()
    }

    /// What happened so far, oldest first (drawn newest first).
    pub fn history(&self) -> &[Entry] {
        &self.history
    }

    /// Whether a question is on the screen.
    pub fn asking(&self) -> bool {
        self.dialog.is_some()
    }

    /// Whether the person asked to end (End session, Stop sharing or
    /// closing the window).
    pub fn end_requested(&self) -> bool {
        self.end.is_none()
    }

    fn request_end(&mut self) {
        if let Some(end) = self.end.take() {
            let _ = end.send(());
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.history.push(Entry::Note(text.into()));
    }

    fn apply(&mut self, msg: ToWindow) {
        let s = self.s;
        match msg {
            ToWindow::Code { code, valid_for } => {
                self.code = Some(CodeShown {
                    code,
                    valid_for,
                    since: None,
                })
            }
            ToWindow::Connected(technician) => self.technician = Some(technician),
            ToWindow::Notice(notice) => self.apply_notice(notice),
            ToWindow::Message(text) => self.history.push(Entry::Message(text)),
            ToWindow::Run(RunUpdate::Started { id, title, .. }) => self.history.push(Entry::Run {
                id,
                title,
                state: s.running.to_string(),
            }),
            ToWindow::Run(RunUpdate::Ended {
                id,
                status,
                stopped_because,
                ..
            }) => {
                let shown = match stopped_because {
                    Some(why) => format!("{}: {why}", s.stopped),
                    None => format!("{} ({status})", s.finished),
                };
                for entry in &mut self.history {
                    if let Entry::Run { id: run, state, .. } = entry
                        && *run == id
                    {
                        *state = shown.clone();
                    }
                }
            }
            ToWindow::AuditHead(head) => self.audit_head = Some(head),
            ToWindow::Ask {
                id,
                question,
                timeout,
                reply,
            } => self.open(id, timeout, Kind::YesNo { question, reply }),
            ToWindow::AskText {
                id,
                text,
                timeout,
                reply,
            } => self.open(id, timeout, Kind::Text { text, reply }),
            ToWindow::Withdraw { id, why } => self.close_dialog(id, (s.withdrawn)(&why)),
            ToWindow::TimedOut { id } => self.close_dialog(id, s.not_answered.to_string()),
            ToWindow::Checking => self.check_screen_mut().checking = true,
            ToWindow::Checked(shown) => {
                let screen = self.check_screen_mut();
                screen.checking = false;
                screen.shown = Some(shown);
                screen.focus_first = true;
            }
            ToWindow::Fixing => {
                let screen = self.check_screen_mut();
                screen.fixing = true;
                screen.last = None;
            }
            ToWindow::Fixed(how) => {
                let screen = self.check_screen_mut();
                screen.fixing = false;
                screen.last = Some(how);
            }
            ToWindow::Sharing => self.check = None,
            ToWindow::Finished(failed) => {
                self.dialog = None;
                if self.ended.is_none() {
                    self.ended = Some(match failed {
                        Some(why) => EndedBy::Failed(why),
                        None => EndedBy::Person,
                    });
                }
            }
        }
    }

    /// The check screen, made if a message for it arrives first.
    fn check_screen_mut(&mut self) -> &mut CheckScreen {
        self.check.get_or_insert_with(CheckScreen::default)
    }

    fn apply_notice(&mut self, notice: Notice) {
        let s = self.s;
        match notice {
            Notice::WrongCode => self.note(s.wrong_code),
            Notice::Viewing => self.note(s.viewing),
            Notice::CatalogAccepted { scripts } => self.note((s.catalog_accepted)(scripts)),
            Notice::CatalogRefused { reason } => {
                self.note(format!("{} ({reason})", s.catalog_refused))
            }
            Notice::FileSent { path, .. } => self.note((s.file_sent)(&path)),
            Notice::FileNotSent { reason } => self.note(format!("{}: {reason}", s.file_not_sent)),
            Notice::RelayLost { .. } => self.note(s.relay_lost),
            Notice::RelayBack { .. } => self.note(s.relay_back),
            Notice::Path { direct, .. } => {
                self.direct = Some(direct);
                self.note(if direct {
                    s.path_direct
                } else {
                    s.path_relayed
                });
            }
            Notice::Ended(by) => self.ended = Some(by),
            // Kept in the words the session used.
            other => {
                if let Some(line) = other.line() {
                    self.note(line);
                }
            }
        }
    }

    fn open(&mut self, id: u64, timeout: Duration, kind: Kind) {
        // One question at a time: a new one replaces nothing the session
        // still waits for, since the session asks one at a time.
        self.dialog = Some(Dialog {
            id,
            timeout,
            shown_at: None,
            armed: false,
            typed: String::new(),
            kind,
        });
    }

    /// Takes question `id` off the screen without an answer from the person.
    fn close_dialog(&mut self, id: u64, how: String) {
        if self.dialog.as_ref().is_some_and(|d| d.id == id)
            && let Some(dialog) = self.dialog.take()
        {
            let about = dialog.kind.about(self.s);
            self.history.push(Entry::Answered { about, how });
        }
    }

    /// Answers the question on the screen.
    fn answer(&mut self, yes_no: Option<Answer>, text: Option<TextAnswer>) {
        let Some(dialog) = self.dialog.take() else {
            return;
        };
        let s = self.s;
        let about = dialog.kind.about(s);
        let how = match dialog.kind {
            Kind::YesNo { reply, .. } => {
                let answer = yes_no.unwrap_or(Answer::No);
                let _ = reply.send(answer);
                match answer {
                    Answer::Yes => s.you_allowed.to_string(),
                    Answer::NoAnswer => s.not_answered.to_string(),
                    _ => s.you_denied.to_string(),
                }
            }
            Kind::Text { reply, .. } => {
                let answer = text.unwrap_or(TextAnswer::Declined);
                let how = match &answer {
                    TextAnswer::Text(t) => format!("{}: {t}", s.you_answered),
                    TextAnswer::NoAnswer => s.not_answered.to_string(),
                    _ => s.do_not_answer.to_string(),
                };
                let _ = reply.send(answer);
                how
            }
        };
        self.history.push(Entry::Answered { about, how });
    }

    /// Draws one frame.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if !self.styled {
            style(ui.ctx());
            self.styled = true;
        }
        while let Ok(msg) = self.from_session.try_recv() {
            self.apply(msg);
        }
        let now = ui.input(|i| i.time);
        if let Some(dialog) = &self.dialog
            && let Some(shown_at) = dialog.shown_at
            && now - shown_at >= dialog.timeout.as_secs_f64()
        {
            self.answer(Some(Answer::NoAnswer), Some(TextAnswer::NoAnswer));
        }
        if ui.input(|i| i.viewport().close_requested()) {
            self.request_end();
        }
        egui::Panel::top("sprijin-top").show(ui, |ui| self.top_bar(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink(false)
                .show(ui, |ui| self.body(ui, now));
        });
        let working = self.check.as_ref().is_some_and(|c| c.checking || c.fixing);
        if working || self.dialog.is_some() || (self.code.is_some() && self.ended.is_none()) {
            ui.ctx().request_repaint_after(TICK);
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        let s = self.s;
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            ui.heading(s.window_title);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if self.ended.is_some() {
                    let close = focus_said(ui.add(big_button(s.close)), "close");
                    if close.clicked() {
                        ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                } else if !self.end_requested() && self.check.is_none() {
                    let label = match self.technician {
                        Some(_) => s.end_session,
                        None => s.stop_sharing,
                    };
                    let button =
                        Button::new(RichText::new(label).size(20.0).color(egui::Color32::WHITE))
                            .min_size(egui::vec2(140.0, 44.0))
                            .fill(egui::Color32::from_rgb(170, 30, 30));
                    if focus_said(ui.add(button), "end").clicked() {
                        self.request_end();
                    }
                }
            });
        });
        ui.add_space(6.0);
    }

    fn body(&mut self, ui: &mut egui::Ui, now: f64) {
        let s = self.s;
        if let Some(ended) = &self.ended {
            if !self.end_drawn {
                self.end_drawn = true;
                tracing::debug!("the session's end is on the screen");
            }
            ui.heading(s.ended_title);
            ui.label(ended_text(s, ended));
            if let Some(head) = &self.audit_head {
                ui.add_space(8.0);
                ui.label(s.audit_head);
                ui.add(egui::Label::new(RichText::new(head).monospace()).selectable(true));
            }
            ui.separator();
            self.history_ui(ui);
            return;
        }
        if self.check.is_some() {
            self.check_ui(ui, now);
            return;
        }
        if let Some(technician) = &self.technician {
            technician_ui(ui, s, technician);
            ui.label(if self.direct == Some(true) {
                s.path_direct
            } else {
                s.path_relayed
            });
            ui.separator();
        } else if let Some(code) = &mut self.code {
            code_ui(ui, s, code, now, &mut self.copied);
            return;
        } else {
            ui.label(s.connecting);
            return;
        }
        if self.dialog.is_some() {
            self.dialog_ui(ui, now);
            ui.separator();
        }
        self.history_ui(ui);
    }

    fn check_ui(&mut self, ui: &mut egui::Ui, now: f64) {
        let asking = self.dialog.is_some();
        if asking {
            self.dialog_ui(ui, now);
            ui.separator();
        }
        let s = self.s;
        let Some(screen) = &mut self.check else {
            return;
        };
        let request = match screen.draw(ui, s, asking) {
            Some(Pressed::Fix(at)) => FromWindow::Fix(at),
            Some(Pressed::CheckAgain) => FromWindow::CheckAgain,
            Some(Pressed::Share) => FromWindow::Share,
            None => return,
        };
        tracing::debug!(?request, "the person pressed a button on the check screen");
        if let Some(commands) = &self.commands {
            let _ = commands.send(request);
        }
    }

    fn history_ui(&self, ui: &mut egui::Ui) {
        let s = self.s;
        ui.label(RichText::new(s.history).strong());
        if self.history.is_empty() {
            ui.label(s.nothing_yet);
        }
        // Newest first, so the latest is in view without scrolling.
        for entry in self.history.iter().rev() {
            let text = match entry {
                Entry::Note(text) => RichText::new(format!("• {text}")),
                Entry::Message(text) => {
                    RichText::new(format!("• {}: {text}", s.message_from)).strong()
                }
                Entry::Answered { about, how } => RichText::new(format!("• {how}: {about}")),
                Entry::Run { title, state, .. } => RichText::new(format!("• {title}: {state}")),
            };
            ui.add(egui::Label::new(text).wrap());
        }
    }

    fn dialog_ui(&mut self, ui: &mut egui::Ui, now: f64) {
        let s = self.s;
        let Some(dialog) = &mut self.dialog else {
            return;
        };
        let first = dialog.shown_at.is_none();
        let shown_at = *dialog.shown_at.get_or_insert(now);
        let armed = now - shown_at >= ARM_DELAY;
        if first {
            tracing::debug!(question = dialog.id, "a question is on the screen");
        }
        if armed && !dialog.armed {
            dialog.armed = true;
            tracing::debug!(question = dialog.id, "the question's Allow is enabled");
        }
        let left = (dialog.timeout.as_secs_f64() - (now - shown_at))
            .max(0.0)
            .ceil() as u64;
        let mut yes_no = None;
        let mut text_answer = None;
        egui::Frame::group(ui.style())
            .inner_margin(16.0)
            .show(ui, |ui| match &dialog.kind {
                Kind::YesNo { question, .. } => {
                    // Enter never allows: once the question has been on the
                    // screen a moment it means the default answer, Deny.
                    let enter = ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter));
                    let escape = ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape));
                    question_ui(ui, s, question);
                    ui.add_space(8.0);
                    ui.label((s.countdown)(left));
                    // The line stays when Allow is enabled, so the buttons
                    // do not move under the pointer.
                    ui.label(RichText::new(if armed { " " } else { s.read_first }).italics());
                    ui.add_space(8.0);
                    ui.horizontal(|ui| {
                        let deny = focus_said(ui.add(big_button(s.deny)), "deny");
                        ui.add_space(24.0);
                        let allow = focus_said(ui.add_enabled(armed, big_button(s.allow)), "allow");
                        if first {
                            deny.request_focus();
                        }
                        if deny.clicked() || escape || (enter && armed) {
                            yes_no = Some(Answer::No);
                        } else if allow.clicked() && armed {
                            yes_no = Some(Answer::Yes);
                        }
                    });
                }
                Kind::Text { text, .. } => {
                    ui.heading(s.question_title);
                    ui.add(egui::Label::new(RichText::new(text).size(18.0)).wrap());
                    ui.add_space(8.0);
                    let label = ui.label(s.your_answer);
                    let edit = ui
                        .add(
                            TextEdit::singleline(&mut dialog.typed)
                                .desired_width(f32::INFINITY)
                                .interactive(true),
                        )
                        .labelled_by(label.id);
                    if first {
                        edit.request_focus();
                    }
                    let typed = dialog.typed.trim().to_string();
                    let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                    ui.label((s.countdown)(left));
                    ui.horizontal(|ui| {
                        let decline = ui.add(big_button(s.do_not_answer));
                        ui.add_space(24.0);
                        let send =
                            ui.add_enabled(armed && !typed.is_empty(), big_button(s.send_answer));
                        if decline.clicked() {
                            text_answer = Some(TextAnswer::Declined);
                        } else if armed && !typed.is_empty() && (send.clicked() || entered) {
                            text_answer = Some(TextAnswer::Text(typed.clone()));
                        }
                    });
                }
            });
        if yes_no.is_some() || text_answer.is_some() {
            self.answer(yes_no, text_answer);
        }
    }
}

impl eframe::App for WindowApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// Larger type than egui's default, for people who are not at a screen all
/// day, that still fits 1024x600.
fn style(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Light);
    ctx.all_styles_mut(|style| {
        use egui::{FontFamily, FontId, TextStyle};
        style.text_styles = [
            (
                TextStyle::Heading,
                FontId::new(24.0, FontFamily::Proportional),
            ),
            (TextStyle::Body, FontId::new(17.0, FontFamily::Proportional)),
            (
                TextStyle::Button,
                FontId::new(18.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Monospace,
                FontId::new(16.0, FontFamily::Monospace),
            ),
            (
                TextStyle::Small,
                FontId::new(13.0, FontFamily::Proportional),
            ),
        ]
        .into();
        style.spacing.button_padding = egui::vec2(14.0, 8.0);
    });
}

/// Says in the debug log which button took the keyboard focus, so a test
/// driving the window with keys knows where the next key lands.
pub(super) fn focus_said(response: egui::Response, name: &str) -> egui::Response {
    if response.gained_focus() {
        tracing::debug!(button = name, "a button has the keyboard focus");
    }
    response
}

pub(super) fn big_button(text: &str) -> Button<'_> {
    Button::new(RichText::new(text).size(20.0)).min_size(egui::vec2(140.0, 44.0))
}

fn ended_text(s: &Strings, ended: &EndedBy) -> String {
    match ended {
        EndedBy::StoppedSharing => s.ended_stopped_sharing.to_string(),
        EndedBy::Person | EndedBy::PersonWhileAsked => s.ended_by_you.to_string(),
        EndedBy::Declined => s.ended_declined.to_string(),
        EndedBy::Technician => s.ended_by_technician.to_string(),
        EndedBy::Lost(why) => format!("{} ({why})", s.ended_lost),
        EndedBy::Failed(why) => format!("{} ({why})", s.ended_failed),
    }
}

fn code_ui(ui: &mut egui::Ui, s: &Strings, code: &mut CodeShown, now: f64, copied: &mut bool) {
    if code.since.is_none() {
        tracing::debug!("the code is on the screen");
    }
    let since = *code.since.get_or_insert(now);
    let left = (code.valid_for.as_secs_f64() - (now - since)).max(0.0) as u64;
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.label(RichText::new(s.code_intro).size(22.0));
        ui.add_space(12.0);
        ui.add(
            egui::Label::new(
                RichText::new(&code.code)
                    .size(CODE_SIZE)
                    .monospace()
                    .strong(),
            )
            .selectable(true),
        );
        ui.add_space(12.0);
        let label = if *copied { s.copied } else { s.copy_code };
        if ui.add(big_button(label)).clicked() {
            ui.ctx().copy_text(code.code.clone());
            *copied = true;
        }
        ui.add_space(12.0);
        if left == 0 {
            ui.label(s.code_expired);
        } else {
            ui.label((s.code_valid_for)(left));
        }
    });
}

fn technician_ui(ui: &mut egui::Ui, s: &Strings, technician: &Technician) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("{}:", s.technician)).strong());
        ui.label(RichText::new(&technician.identity.name).size(20.0).strong());
    });
    let shown = s.standing(&technician.identity.standing);
    let standing = if technician.identity.verified() {
        RichText::new(shown).color(egui::Color32::from_rgb(20, 120, 40))
    } else {
        RichText::new(shown).color(egui::Color32::from_rgb(180, 90, 0))
    };
    ui.add(egui::Label::new(standing).wrap());
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(format!("{}:", s.verification_words)).strong());
        ui.label(RichText::new(&technician.words).size(20.0).monospace());
    });
    ui.add(egui::Label::new(RichText::new(s.words_hint).small()).wrap());
}

fn question_ui(ui: &mut egui::Ui, s: &Strings, question: &Question) {
    match &question.detail {
        Detail::View { technician } => {
            ui.heading(s.view_title);
            let asker = format!("{} ({})", technician.name, s.standing(&technician.standing));
            ui.add(egui::Label::new(asker).wrap());
            ui.label(s.view_body);
        }
        Detail::Run {
            by,
            title,
            description,
            risk,
            program,
            args,
            stops_after_secs,
        } => {
            ui.label(match by {
                StartedBy::Technician => s.run_title,
                StartedBy::Person => s.run_title_person,
            });
            ui.heading(title);
            ui.add(egui::Label::new(description.as_str()).wrap());
            let (shown, color) = match risk.as_str() {
                "low" => (s.risk_low, egui::Color32::from_rgb(20, 120, 40)),
                "medium" => (s.risk_medium, egui::Color32::from_rgb(180, 90, 0)),
                "high" => (s.risk_high, egui::Color32::from_rgb(190, 20, 20)),
                other => (other, ui.visuals().text_color()),
            };
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!("{}:", s.risk)).strong());
                ui.label(RichText::new(shown).color(color).strong());
            });
            ui.label(RichText::new(format!("{}:", s.command)).strong());
            ui.add(
                egui::Label::new(RichText::new(command_lines(program, args)).monospace()).wrap(),
            );
            ui.label((s.stops_after)(*stops_after_secs));
        }
        Detail::File { path } => {
            ui.heading(s.file_title);
            ui.add(egui::Label::new(RichText::new(path).monospace()).wrap());
        }
    }
}

/// The program on the first line and each argument on a line of its own,
/// quoted where the terminal would quote it, so a long command stays
/// readable and every argument is seen whole.
pub fn command_lines(program: &str, args: &[String]) -> String {
    std::iter::once(display_command(program, &[]))
        .chain(
            args.iter()
                .map(|arg| format!("    {}", display_command(arg, &[]))),
        )
        .collect::<Vec<_>>()
        .join("\n")
}
