//! The technician talking to the person: a message shown on the screen
//! (`say`) and a question the person answers by typing (`ask`).
//!
//! Text from the technician is cleaned of control characters before it is
//! shown and recorded, so what the log holds is what the person saw. A
//! question follows the rules of every question ([`crate::consent`]): one
//! at a time, only a line typed after it counts, and the same timeout.

use sprijin_proto::message::session::{AgentMsg, RequestId};
use sprijin_proto::text::clean_text;
use tokio::sync::watch;

use super::{Ctx, StopReason, record, stop_requested};
use crate::audit::AuditEvent;
use crate::consent::TextAnswer;
use crate::face::Notice;

/// The longest message or question, in bytes: a few paragraphs.
pub const MAX_TEXT: usize = 4096;

/// Checks the technician's text; an `Err` is the reason it is refused.
pub fn check_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the text is empty: give the words to show the person".to_string());
    }
    if text.len() > MAX_TEXT {
        return Err(format!(
            "the text is {} bytes, over the limit of {MAX_TEXT}: split it into shorter messages",
            text.len()
        ));
    }
    Ok(())
}

/// Text as the person sees it: cleaned, with later lines indented under
/// the first.
fn shown(text: &str) -> String {
    clean_text(text.trim()).replace('\n', "\n  ")
}

/// Shows the technician's message to the person, after recording it.
pub(super) async fn say(ctx: &Ctx, id: RequestId, text: String) {
    if let Err(reason) = check_text(&text) {
        return ctx.refuse(id, reason).await;
    }
    let text = shown(&text);
    if let Err(e) = record(&ctx.audit, AuditEvent::Message { text: text.clone() }).await {
        ctx.face.show(Notice::Problem(e.to_string()));
        return ctx
            .refuse(id, format!("the message was not shown: {e}"))
            .await;
    }
    ctx.face.show_message(&text);
    ctx.send(AgentMsg::Ack { id }).await;
}

/// Asks the person the technician's question and sends back the typed
/// answer, or a refusal saying why there is none.
pub(super) async fn ask(
    ctx: &Ctx,
    id: RequestId,
    text: String,
    mut stop: watch::Receiver<Option<StopReason>>,
) {
    if let Err(reason) = check_text(&text) {
        return ctx.refuse(id, reason).await;
    }
    let text = shown(&text);
    let answer = ctx
        .face
        .ask_text(
            &text,
            Box::pin(async { stop_requested(&mut stop).await.withdrawn() }),
        )
        .await;
    let (answer, why) = match answer {
        TextAnswer::Text(answer) => (Some(answer), None),
        other => (
            None,
            Some(unanswered(&other, ctx.config.consent_timeout.as_secs())),
        ),
    };
    let event = AuditEvent::Question {
        text,
        answer: answer.as_deref().map(|a| clean_text(a).into_owned()),
        why: why.clone(),
    };
    if let Err(e) = record(&ctx.audit, event).await {
        ctx.face.show(Notice::Problem(e.to_string()));
        return ctx
            .refuse(id, format!("the answer was not sent: {e}"))
            .await;
    }
    match (answer, why) {
        (Some(text), _) => {
            ctx.send(AgentMsg::Answer { id, text }).await;
        }
        (None, why) => {
            let why = why.unwrap_or_default();
            ctx.refuse(id, why).await;
        }
    }
}

/// Why a question has no answer, as a sentence for the technician and the
/// audit log.
pub fn unanswered(answer: &TextAnswer, timeout_secs: u64) -> String {
    match answer {
        TextAnswer::Text(_) => "the person answered".to_string(),
        TextAnswer::Declined => {
            "the person chose not to answer (they pressed Enter without typing)".to_string()
        }
        TextAnswer::NoInput => "nobody can answer: the agent's input is closed".to_string(),
        TextAnswer::NoAnswer => {
            format!("the person did not answer within {timeout_secs} s")
        }
        TextAnswer::Withdrawn => {
            "the question was withdrawn before the person answered".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_long_texts_are_refused() {
        assert!(check_text("is the printer on?").is_ok());
        assert!(check_text("  \n ").unwrap_err().contains("empty"));
        let long = "a".repeat(MAX_TEXT + 1);
        assert!(check_text(&long).unwrap_err().contains("over the limit"));
    }

    #[test]
    fn shown_text_is_clean_and_indented() {
        assert_eq!(shown(" a\x1b[2Jb\nc "), "a\u{FFFD}[2Jb\n  c");
    }

    #[test]
    fn every_missing_answer_says_why() {
        assert!(unanswered(&TextAnswer::NoAnswer, 7).contains("within 7 s"));
        assert!(unanswered(&TextAnswer::Declined, 7).contains("chose not to answer"));
        assert!(unanswered(&TextAnswer::NoInput, 7).contains("input is closed"));
        assert!(unanswered(&TextAnswer::Withdrawn, 7).contains("withdrawn"));
    }
}
