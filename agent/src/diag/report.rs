//! The local report behind `sprijin-agent diag [--json]`: this machine's
//! snapshot and findings, with no network and no session.
//!
//! It samples twice, [`FIRST_SAMPLE_GAP`] apart, so CPU usage is measured,
//! runs the rules, and renders either the text overview for people or one
//! line of JSON holding a [`DiagReport`] (`{"snapshot": ..., "findings":
//! [...]}`).

use std::time::Duration;

use sprijin_proto::diag_text;
use sprijin_proto::message::diag::{DiagReport, Snapshot};

use super::collect::Collector;
use super::error::DiagError;
use super::findings::{Thresholds, evaluate};
use super::probes;
use super::sampler::FIRST_SAMPLE_GAP;
use super::watch;

/// This machine's report as text or as one line of JSON, without a trailing
/// newline, after watching for `watch` (at least [`FIRST_SAMPLE_GAP`]).
pub fn local_report(json: bool, watch: Duration) -> Result<String, DiagError> {
    let report = take_report(&Thresholds::default(), watch)?;
    if json {
        serde_json::to_string(&report).map_err(DiagError::Json)
    } else {
        Ok(diag_text::overview(&report.snapshot, &report.findings)
            .trim_end()
            .to_string())
    }
}

/// How long a local report waits for the slow checks (name resolution,
/// services, clock) before it goes without them.
pub const SLOW_WAIT: Duration = Duration::from_secs(4);

/// How much longer it waits for the folder sizes before it goes without
/// them.
pub const FOLDERS_WAIT: Duration = Duration::from_secs(4);

/// How long `diag` watches unless told otherwise.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(3);

/// Samples this machine at the start and the end of `watch` (CPU usage is
/// measured across it), watches in between (`super::watch`), runs the
/// slow checks alongside (waiting at most [`SLOW_WAIT`] for them, and
/// [`FOLDERS_WAIT`] more for the folder sizes), and evaluates the rules.
/// Fails only when the system gave no CPU or memory figures at all.
pub fn take_report(t: &Thresholds, watch: Duration) -> Result<DiagReport, DiagError> {
    let watch = watch.max(FIRST_SAMPLE_GAP);
    let (watched_tx, watched_rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("diag-watch".into())
        .spawn(move || {
            let _ = watched_tx.send(watch::watch_for(watch));
        });
    let (checks_tx, checks_rx) = std::sync::mpsc::channel();
    let (folders_tx, folders_rx) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("diag-probes".into())
        .spawn(move || {
            let _ = checks_tx.send(probes::run_checks());
            let _ = folders_tx.send(probes::measure_folders());
        });
    let mut collector = Collector::new();
    collector.sample();
    std::thread::sleep(watch);
    collector.sample();
    if let Ok(watched) = watched_rx.recv_timeout(SLOW_WAIT) {
        collector.set_watched(watched);
    }
    if let Ok(mut slow) = checks_rx.recv_timeout(SLOW_WAIT) {
        if let Ok(folders) = folders_rx.recv_timeout(FOLDERS_WAIT) {
            slow.folders = folders;
        }
        collector.set_slow(slow);
    }
    let snapshot = collector.snapshot();
    if snapshot.cpu.logical_cores == 0 && snapshot.memory.total_bytes == 0 {
        return Err(DiagError::NothingRead);
    }
    Ok(report_for(snapshot, t))
}

/// A snapshot together with what the rules find in it.
pub fn report_for(snapshot: Snapshot, t: &Thresholds) -> DiagReport {
    DiagReport {
        findings: evaluate(&snapshot, t),
        snapshot,
        person_runs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_report_is_one_line_and_reads_back() {
        let json = local_report(true, FIRST_SAMPLE_GAP).unwrap();
        assert!(!json.contains('\n'));
        let report: DiagReport = serde_json::from_str(&json).unwrap();
        assert!(report.snapshot.cpu.logical_cores > 0);
        assert!(report.snapshot.memory.total_bytes > 0);
        assert_eq!(
            report.findings,
            evaluate(&report.snapshot, &Thresholds::default())
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for path in [
            "/snapshot/taken_at_ms",
            "/snapshot/host/name",
            "/snapshot/cpu/logical_cores",
            "/snapshot/memory/total_bytes",
            "/snapshot/disks",
            "/snapshot/processes/top_cpu",
            "/findings",
        ] {
            assert!(value.pointer(path).is_some(), "missing {path} in {json}");
        }
    }

    #[test]
    fn json_from_an_agent_without_the_newer_parts_still_reads() {
        let mut value: serde_json::Value =
            serde_json::from_str(&local_report(true, FIRST_SAMPLE_GAP).unwrap()).unwrap();
        let snapshot = value["snapshot"].as_object_mut().unwrap();
        for key in [
            "deleted_open",
            "open_files",
            "stuck_processes",
            "routes",
            "name_resolution",
            "services",
            "clock_synchronized",
            "oom_kills",
        ] {
            assert!(snapshot.remove(key).is_some(), "{key} is in the report");
        }
        for disk in value["snapshot"]["disks"].as_array_mut().unwrap() {
            let disk = disk.as_object_mut().unwrap();
            disk.remove("inodes_total");
            disk.remove("inodes_free");
        }
        let back: DiagReport = serde_json::from_value(value).unwrap();
        assert_eq!(back.snapshot.name_resolution, None);
        assert!(back.snapshot.oom_kills.is_empty());
    }

    #[test]
    fn text_report_is_the_overview() {
        let text = local_report(false, FIRST_SAMPLE_GAP).unwrap();
        assert!(text.starts_with("Host "));
        assert!(text.contains("\nFindings\n"));
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn report_for_orders_findings_most_severe_first() {
        let mut s = Snapshot::default();
        s.host.uptime_secs = 365 * 86_400;
        s.cpu.usage_percent = 99.0;
        let report = report_for(s, &Thresholds::default());
        let ids: Vec<_> = report.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["cpu-saturated", "long-uptime"]);
    }
}
