//! The terminal face: every notice is one line on standard output and
//! every question is read by [`Consent`], with its protections against an
//! answer typed before the question appeared. What it prints is what the
//! agent has always printed; scripts and tests read it.

use std::time::Duration;

use sprijin_proto::code::SessionCode;
use sprijin_proto::text::clean_line;

use super::{Asking, Face, Notice, Question, RunUpdate, Withdrawn};
use crate::audit::Head;
use crate::consent::{Answer, Consent, TextAnswer};
use crate::identity::Identity;

impl Face for Consent {
    fn show_code(&self, code: &SessionCode, valid_for: Duration) {
        println!("code: {code}");
        println!(
            "read this code to your technician; it works once and expires in {} minutes",
            valid_for.as_secs().div_ceil(60)
        );
    }

    fn show_connected(&self, technician: &Identity, words: &str) {
        println!(
            "connected: technician {}",
            clean_line(&technician.to_string())
        );
        println!("verification words: {words}");
        println!("press Ctrl-C at any time to end the session at once");
    }

    fn show(&self, notice: Notice) {
        if let Some(line) = notice.line() {
            println!("{line}");
        }
    }

    fn show_message(&self, text: &str) {
        println!("message from the technician: {text}");
    }

    fn show_run(&self, run: RunUpdate) {
        println!("{}", run.line());
    }

    fn show_audit_head(&self, _head: &Head) {}

    fn ask<'a>(&'a self, question: &'a Question, withdrawn: Withdrawn<'a>) -> Asking<'a, Answer> {
        Box::pin(self.ask_unless(&question.text, withdrawn))
    }

    fn ask_text<'a>(
        &'a self,
        question: &'a str,
        withdrawn: Withdrawn<'a>,
    ) -> Asking<'a, TextAnswer> {
        Box::pin(async move {
            let question = format!("the technician asks: {question}");
            self.ask_text_unless(&question, withdrawn).await
        })
    }
}
