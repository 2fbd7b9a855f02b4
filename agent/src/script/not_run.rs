//! Why a requested run did not start. Each reason reads as one sentence, for
//! the technician and for the audit log's `run_refused` record.

use sprijin_proto::catalog::CatalogError;

use crate::consent::Answer;
use crate::session::AgentError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotRun {
    #[error("no trusted catalog key is configured on this machine, so no scripts can run")]
    NoTrustedKey,
    #[error("no verified catalog in this session: the console must send a signed catalog first")]
    NoCatalog,
    #[error("there is no script {script:?} in the signed catalog")]
    UnknownScript { script: String },
    #[error("script {script:?} is not made for this platform")]
    WrongPlatform { script: String },
    #[error("refused: {0}")]
    Params(#[source] CatalogError),
    /// The audit log could not record the run, so it was not started.
    #[error("nothing was run: {0}")]
    Unrecorded(#[source] AgentError),
    #[error(
        "the technician withdrew the run of {script} before the person answered; nothing was run"
    )]
    WithdrawnByTechnician { script: String },
    #[error(
        "the run of {script} was withdrawn before the person answered ({why}); nothing was run"
    )]
    WithdrawnAsSessionEnded { script: String, why: String },
    #[error("{}", not_approved(*.answer, script))]
    NotApproved { script: String, answer: Answer },
    #[error("the run of {script} was not started: {why}")]
    SessionEnded { script: String, why: String },
}

/// Why a run did not start when the person did not say yes.
fn not_approved(answer: Answer, script: &str) -> String {
    match answer {
        Answer::NoInput => {
            format!("nobody answered whether to run {script}: the agent's input is closed")
        }
        Answer::NoAnswer => format!("the person did not answer in time whether to run {script}"),
        Answer::Withdrawn => {
            format!("the run of {script} was withdrawn before the person answered")
        }
        Answer::No | Answer::Yes => format!("the person declined the run of {script}"),
    }
}
