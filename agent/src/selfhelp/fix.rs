//! One repair the person starts alone: the same question a technician's
//! run gets, the same records (the run marked `by: person`), then a check
//! of the machine that says whether the finding is gone, recorded too.
//!
//! The audit log is opened for the repair and closed after it, so a
//! session started later (Share in the same window) can open it.

use std::future::Future;
use std::time::Duration;

use sprijin_proto::message::diag::Finding;
use sprijin_proto::message::script::OutStream;
use tokio::sync::mpsc;

use super::{Offer, SelfHelp};
use crate::audit::{AuditError, AuditEvent, AuditLog, StartedBy};
use crate::consent::Answer;
use crate::diag::DiagError;
use crate::diag::findings::Thresholds;
use crate::face::{Face, Question, RunUpdate};
use crate::script::runner::{self, RunEvent, RunSpec};

/// How the person's repair ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Fixed {
    /// Nothing ran: the person said no, or did not answer.
    NotApproved(Answer),
    /// It ran. `run` names it in the audit log (the line of its start);
    /// `status` says how it ended; `still` is the finding as the check
    /// after the run found it, or `None` when it is gone.
    Ran {
        run: u64,
        status: String,
        still: Option<Finding>,
    },
}

/// Why the repair could not be asked for, recorded or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("checking again after the repair failed: {0}")]
    Check(#[from] DiagError),
    #[error("checking again after the repair stopped unexpectedly")]
    CheckTask,
}

/// Asks the person through `face`, runs `offer` for `finding` when they
/// agree, sends its output to `output`, checks the machine again and
/// records each step before the next. `cancel` stops the run.
pub async fn fix(
    help: &SelfHelp,
    finding: &Finding,
    offer: &Offer,
    face: &dyn Face,
    output: &mut (dyn FnMut(OutStream, &[u8]) + Send),
    cancel: impl Future<Output = ()>,
) -> Result<Fixed, FixError> {
    let mut log = AuditLog::open(&help.config.audit_path())?;
    for note in log.opened() {
        face.show(crate::face::Notice::AuditNote(note.to_string()));
    }
    // A repair whose records cannot be written is refused before the
    // person is asked, not after they said yes.
    log.check_writable()?;
    let script = &offer.script;
    let question = Question::run(StartedBy::Person, script, &offer.args);
    let answer = face.ask(&question, Box::pin(std::future::pending())).await;
    log.append(AuditEvent::Consent {
        question: question.text,
        answer: answer.approved(),
    })?;
    if !answer.approved() {
        return Ok(Fixed::NotApproved(answer));
    }
    let run = log.head().seq + 1;
    log.append(AuditEvent::RunStart {
        run,
        script: script.id.to_string(),
        title: script.title.clone(),
        program: script.program.clone(),
        args: offer.args.clone(),
        catalog_digest: offer.catalog_digest.clone(),
        risk: script.risk.to_string(),
        by: StartedBy::Person,
    })?;
    face.show_run(RunUpdate::Started {
        id: run,
        script: script.id.to_string(),
        title: script.title.clone(),
        by: StartedBy::Person,
    });
    let spec = RunSpec {
        program: script.program.clone(),
        args: offer.args.clone(),
        timeout: Duration::from_secs(script.timeout_secs),
        output_cap: help.config.output_cap,
    };
    let (events_tx, mut events) = mpsc::channel(8);
    let forward = async {
        while let Some(event) = events.recv().await {
            if let RunEvent::Output { stream, data } = event {
                output(stream, &data);
            }
        }
    };
    let (end, ()) = tokio::join!(runner::run(spec, events_tx, cancel), forward);
    log.append(AuditEvent::run_end(run, script.id.as_str(), &end))?;
    let status = end.status.to_string();
    face.show_run(RunUpdate::Ended {
        id: run,
        script: script.id.to_string(),
        status: status.clone(),
        stopped_because: None,
    });
    let watch = help.watch;
    let report = tokio::task::spawn_blocking(move || {
        crate::diag::report::take_report(&Thresholds::default(), watch)
    })
    .await
    .map_err(|_| FixError::CheckTask)??;
    let still = report
        .findings
        .into_iter()
        .find(|f| f.id == finding.id && f.subject == finding.subject);
    log.append(AuditEvent::RunChecked {
        run,
        finding: finding.id.clone(),
        fixed: still.is_none(),
    })?;
    Ok(Fixed::Ran { run, status, still })
}
