//! The check screen: what looks wrong on this machine, most important
//! first, a Fix button where the organisation lets the person repair it
//! alone, how the last repair went, and Get help, which starts sharing.
//! It only draws and reports which button was pressed; the work thread
//! does the rest.

use eframe::egui::{self, Button, RichText};
use sprijin_proto::message::diag::Severity;

use super::app::{big_button, focus_said};
use crate::face::strings::Strings;

/// What a check found, as the screen shows it; every text already cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckShown {
    pub items: Vec<ItemShown>,
    /// Why the check could not finish.
    pub failed: Option<String>,
    /// Why no repair is offered at all.
    pub no_repairs: Option<String>,
}

/// One finding on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemShown {
    pub severity: Severity,
    /// In the person's language.
    pub title: String,
    /// The agent's own (English) line, shown small under a translated
    /// title: what the technician will see.
    pub detail: Option<String>,
    /// The repair's title, when the person may run it alone.
    pub fix: Option<String>,
}

/// How the person's last request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixShown {
    /// The repair ran and the finding, by its title, is gone.
    Fixed { title: String },
    /// The repair ran and the finding is still there.
    StillThere { title: String },
    /// The person did not allow it.
    NothingRan,
    /// The repair could not be asked for, recorded or checked.
    Failed(String),
    /// Get help could not start.
    CannotShare(String),
}

/// The check screen's state.
#[derive(Debug, Default)]
pub struct CheckScreen {
    pub checking: bool,
    pub fixing: bool,
    pub shown: Option<CheckShown>,
    pub last: Option<FixShown>,
    /// A new list arrived: its first button takes the keyboard focus.
    pub focus_first: bool,
}

/// A button the person pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressed {
    Fix(usize),
    CheckAgain,
    Share,
}

const GREEN: egui::Color32 = egui::Color32::from_rgb(20, 120, 40);
const ORANGE: egui::Color32 = egui::Color32::from_rgb(180, 90, 0);
const RED: egui::Color32 = egui::Color32::from_rgb(190, 20, 20);

impl CheckScreen {
    /// Draws the screen; `busy` (a question is open) disables its buttons.
    pub fn draw(&mut self, ui: &mut egui::Ui, s: &Strings, busy: bool) -> Option<Pressed> {
        let mut pressed = None;
        let idle = !busy && !self.checking && !self.fixing;
        // A new list puts the keyboard on its first Fix, else on Get help.
        let mut first = idle && std::mem::take(&mut self.focus_first);
        if first {
            tracing::debug!("the check's findings are on the screen");
            // The next frame reports the focus taken (and logs it).
            ui.ctx().request_repaint();
        }
        ui.heading(s.check_title);
        ui.add(egui::Label::new(s.check_intro).wrap());
        ui.add_space(8.0);
        if let Some(last) = &self.last {
            last_ui(ui, s, last);
            ui.add_space(8.0);
        }
        if self.fixing {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(s.fixing);
            });
        } else if self.checking {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(s.checking);
            });
        } else if let Some(shown) = &self.shown {
            if let Some(why) = &shown.failed {
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("{}: {why}", s.check_failed)).color(RED),
                    )
                    .wrap(),
                );
            } else if shown.items.is_empty() {
                ui.label(RichText::new(s.nothing_wrong).color(GREEN).size(20.0));
            }
            for (at, item) in shown.items.iter().enumerate() {
                egui::Frame::group(ui.style())
                    .inner_margin(10.0)
                    .show(ui, |ui| {
                        ui.set_width(ui.available_width());
                        let (word, color) = match item.severity {
                            Severity::Critical => (s.severity_critical, RED),
                            Severity::Warning => (s.severity_warning, ORANGE),
                            Severity::Info => (s.severity_info, ui.visuals().text_color()),
                        };
                        ui.label(RichText::new(word).color(color).strong());
                        ui.add(egui::Label::new(RichText::new(&item.title).size(19.0)).wrap());
                        if let Some(detail) = &item.detail {
                            ui.add(
                                egui::Label::new(
                                    RichText::new(detail).small().color(egui::Color32::GRAY),
                                )
                                .wrap(),
                            );
                        }
                        if let Some(fix) = &item.fix {
                            ui.horizontal_wrapped(|ui| {
                                let button = ui.add_enabled(idle, big_button(s.fix));
                                let button = focus_said(button, &format!("fix-{}", at + 1));
                                if first {
                                    button.request_focus();
                                    first = false;
                                }
                                if button.clicked() {
                                    pressed = Some(Pressed::Fix(at));
                                }
                                ui.add(
                                    egui::Label::new(
                                        RichText::new((s.you_may_fix)(fix)).color(GREEN),
                                    )
                                    .wrap(),
                                );
                            });
                        }
                    });
                ui.add_space(4.0);
            }
            if let Some(why) = &shown.no_repairs {
                ui.add(
                    egui::Label::new(RichText::new(format!("{}: {why}", s.no_repairs)).small())
                        .wrap(),
                );
            }
        }
        ui.add_space(8.0);
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            let again = ui.add_enabled(idle, Button::new(s.check_again));
            if focus_said(again, "check-again").clicked() {
                pressed = Some(Pressed::CheckAgain);
            }
            ui.add_space(16.0);
            let help = ui.add_enabled(!busy && !self.fixing, big_button(s.get_help));
            if first {
                help.request_focus();
            }
            if focus_said(help, "get-help").clicked() {
                pressed = Some(Pressed::Share);
            }
        });
        ui.label(RichText::new(s.get_help_hint).small());
        pressed
    }
}

fn last_ui(ui: &mut egui::Ui, s: &Strings, last: &FixShown) {
    let (text, color) = match last {
        FixShown::Fixed { title } => ((s.fixed)(title), GREEN),
        FixShown::StillThere { title } => ((s.still_there)(title), ORANGE),
        FixShown::NothingRan => (s.nothing_ran.to_string(), ui.visuals().text_color()),
        FixShown::Failed(why) => (format!("{}: {why}", s.fix_failed), RED),
        FixShown::CannotShare(why) => (format!("{}: {why}", s.cannot_share), RED),
    };
    ui.add(egui::Label::new(RichText::new(text).color(color).size(20.0).strong()).wrap());
}
