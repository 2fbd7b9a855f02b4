//! The person checks their own machine and runs, alone, the repairs the
//! organisation marked `self_service` in its signed catalog.
//!
//! [`check`] samples the machine like `diag` and pairs each finding with
//! the repair the person may run for it ([`offers`]); [`fix`] runs one,
//! with the same question and the same audit records as a technician's
//! run (marked `by: person`), then checks again and records whether the
//! finding is gone. The catalog comes from a folder the organisation
//! installs, or else from the last one a technician's session brought
//! ([`catalog`]). [`terminal`] is `sprijin-agent check` and `fix N` at a
//! terminal; the window's check screen drives the same functions.

use std::path::PathBuf;
use std::time::Duration;

use sprijin_proto::catalog::{Catalog, ParamSource, Platform, Script};
use sprijin_proto::message::diag::Finding;

use crate::config::AgentConfig;
use crate::diag::DiagError;
use crate::diag::findings::Thresholds;

pub mod catalog;
mod fix;
pub mod listed;
pub mod terminal;

pub use fix::{FixError, Fixed, fix};

/// What `check` and `fix` need: the agent's configuration (its relays may
/// be empty: checking needs no network), where the catalog is, and how
/// long to watch the machine.
#[derive(Debug, Clone)]
pub struct SelfHelp {
    pub config: AgentConfig,
    /// A signed catalog folder the organisation installed; `None` uses the
    /// one kept from the last session.
    pub catalog: Option<PathBuf>,
    /// How long each check watches the machine.
    pub watch: Duration,
}

/// One finding, and the repair the person may run for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub finding: Finding,
    pub offer: Option<Offer>,
}

/// A repair the person may start with one click: the script and its
/// arguments, every value bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub script: Script,
    pub args: Vec<String>,
    /// The digest of the catalog it came from, for the record.
    pub catalog_digest: String,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkup {
    /// Most important first.
    pub items: Vec<Item>,
    /// Why no repair is offered at all, when that is so: no catalog, or
    /// one that failed verification.
    pub no_repairs: Option<String>,
}

/// Checks this machine: watches it for `help.watch`, draws the findings
/// and pairs each with a repair from the verified catalog. A catalog that
/// cannot be used is said in [`Checkup::no_repairs`], not an error: the
/// findings are still worth showing.
pub fn check(help: &SelfHelp) -> Result<Checkup, DiagError> {
    let (catalog, no_repairs) = match catalog::load(help) {
        Ok(Some(catalog)) => (Some(catalog), None),
        Ok(None) => (None, Some(catalog::NONE_KEPT.to_string())),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut report = crate::diag::report::take_report(&Thresholds::default(), help.watch)?;
    // The check's own work (drawing the window, sampling) is not something
    // wrong with the machine.
    let me = std::process::id().to_string();
    report
        .findings
        .retain(|f| !(f.id.starts_with("process-") && f.subject.as_deref() == Some(me.as_str())));
    let platform = crate::diag::findings::fixes::this_platform();
    Ok(Checkup {
        items: offers(report.findings, catalog.as_ref(), platform),
        no_repairs,
    })
}

/// Pairs each finding with the script it names when the catalog lets the
/// person run that script alone on `platform` and every parameter has a
/// value: from the finding where the script says `from = "finding"`, else
/// the finding's or the first of the script's choices.
pub fn offers(findings: Vec<Finding>, catalog: Option<&Catalog>, platform: Platform) -> Vec<Item> {
    findings
        .into_iter()
        .map(|finding| {
            let offer = catalog.and_then(|c| offer(&finding, c, platform));
            Item { finding, offer }
        })
        .collect()
}

fn offer(finding: &Finding, catalog: &Catalog, platform: Platform) -> Option<Offer> {
    let script = catalog.get(finding.script.as_deref()?)?;
    if !script.self_service || !script.runs_on(platform) {
        return None;
    }
    let given = |name: &str| {
        finding
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut values = Vec::new();
    for (name, spec) in &script.params {
        let value = match (spec.from, &spec.choices) {
            (Some(ParamSource::Finding), _) => given(name)?,
            (None, Some(choices)) => given(name).or_else(|| choices.first().cloned())?,
            (None, None) => return None,
        };
        values.push((name.clone(), value));
    }
    let args = script.bind(&values).ok()?;
    Some(Offer {
        script: script.clone(),
        args,
        catalog_digest: catalog.digest.clone(),
    })
}

#[cfg(test)]
mod tests;
