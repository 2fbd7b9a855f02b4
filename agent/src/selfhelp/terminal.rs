//! `sprijin-agent check` and `sprijin-agent fix N` at a terminal: the
//! findings with numbers, and one repair asked for and run with the
//! terminal's question (input typed before it is discarded).

use std::io::Write;
use std::sync::Arc;

use sprijin_proto::message::script::OutStream;
use sprijin_proto::text::clean_line;

use super::listed::{self, ListError};
use super::{Checkup, Fixed, SelfHelp, check, fix};
use crate::consent::Consent;

/// Why `check` or `fix` at the terminal failed, or did not fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerminalError {
    #[error(transparent)]
    Check(#[from] crate::diag::DiagError),
    #[error(transparent)]
    Fix(#[from] super::FixError),
    #[error(
        "there is no finding {asked}: the last check found {found}; run `sprijin-agent check` to see them"
    )]
    NoSuchFinding { asked: usize, found: usize },
    #[error(transparent)]
    List(#[from] ListError),
    #[error("finding {number} ({title}) is no longer there: nothing to fix")]
    Gone { number: usize, title: String },
    #[error(
        "finding {number} ({title}) has no repair you may run alone; run `sprijin-agent share` to get help from a technician"
    )]
    NoRepair { number: usize, title: String },
    #[error("finding {number} ({title}) cannot be repaired alone here: {why}")]
    NoCatalog {
        number: usize,
        title: String,
        why: String,
    },
    #[error("nothing ran: {0}")]
    NotApproved(&'static str),
    #[error(
        "the repair ran ({status}) but the finding is still there: {title}; run `sprijin-agent share` to get help from a technician"
    )]
    StillThere { status: String, title: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The findings, numbered, each with the repair the person may run.
pub fn render(checkup: &Checkup) -> String {
    let mut out = String::new();
    if checkup.items.is_empty() {
        out.push_str("nothing looks wrong on this computer\n");
    }
    for (i, item) in checkup.items.iter().enumerate() {
        let number = i + 1;
        let f = &item.finding;
        out.push_str(&format!(
            "{number}. [{}] {}\n",
            f.severity,
            clean_line(&f.title)
        ));
        match &item.offer {
            Some(offer) => out.push_str(&format!(
                "   you may fix it: {} (`sprijin-agent fix {number}`)\n",
                clean_line(&offer.script.title)
            )),
            None => out.push_str("   a technician can help: `sprijin-agent share`\n"),
        }
    }
    if let Some(why) = &checkup.no_repairs {
        out.push_str(&format!("note: {why}\n"));
    }
    out
}

/// `sprijin-agent check` at a terminal: the numbered list, remembered
/// for `fix N`.
pub fn run_check(help: &SelfHelp) -> Result<String, TerminalError> {
    println!(
        "checking this computer for {} s...",
        help.watch.as_secs().max(1)
    );
    let checkup = check(help)?;
    let mut out = render(&checkup);
    let list = listed::path(&help.config.data_dir);
    if let Err(e) = listed::remember(&checkup, &list) {
        out.push_str(&format!(
            "note: cannot keep this list for `sprijin-agent fix` in {}: {e}\n",
            list.display()
        ));
    }
    Ok(out)
}

/// `sprijin-agent fix N`: finds the finding the last check numbered N in
/// a new check, asks about its repair at the terminal, runs it and says
/// whether the finding is gone.
pub fn run_fix(help: &SelfHelp, number: usize) -> Result<String, TerminalError> {
    let listed = listed::recall(&listed::path(&help.config.data_dir))?;
    let seen =
        number
            .checked_sub(1)
            .and_then(|i| listed.get(i))
            .ok_or(TerminalError::NoSuchFinding {
                asked: number,
                found: listed.len(),
            })?;
    println!(
        "checking this computer for {} s...",
        help.watch.as_secs().max(1)
    );
    let checkup = check(help)?;
    let item = checkup
        .items
        .iter()
        .find(|i| seen.is(&i.finding))
        .ok_or_else(|| TerminalError::Gone {
            number,
            title: clean_line(&seen.title).into_owned(),
        })?;
    let title = clean_line(&item.finding.title).into_owned();
    let offer = item
        .offer
        .as_ref()
        .ok_or_else(|| match &checkup.no_repairs {
            Some(why) => TerminalError::NoCatalog {
                number,
                title: title.clone(),
                why: why.clone(),
            },
            None => TerminalError::NoRepair {
                number,
                title: title.clone(),
            },
        })?;
    println!("finding {number}: {title}");
    let face = Arc::new(Consent::from_stdin(help.config.consent_timeout));
    let runtime = sprijin_proto::runtime::session().map_err(TerminalError::Runtime)?;
    let mut output = |stream: OutStream, data: &[u8]| {
        let _ = match stream {
            OutStream::Stdout => std::io::stdout().write_all(data),
            OutStream::Stderr => std::io::stderr().write_all(data),
        };
    };
    let fixed = runtime.block_on(fix(
        help,
        &item.finding,
        offer,
        &*face,
        &mut output,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ))?;
    match fixed {
        Fixed::NotApproved(answer) => Err(TerminalError::NotApproved(answer.describe())),
        Fixed::Ran {
            status,
            still: None,
            ..
        } => Ok(format!("fixed: the finding is gone ({status})")),
        Fixed::Ran {
            status,
            still: Some(f),
            ..
        } => Err(TerminalError::StillThere {
            status,
            title: clean_line(&f.title).into_owned(),
        }),
    }
}
