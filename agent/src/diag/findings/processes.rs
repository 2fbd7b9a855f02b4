//! Process rules: single processes hogging the machine, zombies, processes
//! at their open-file limit, and processes stuck in uninterruptible sleep.

use sprijin_proto::diag_text::{human_bytes, human_duration, percent, shorten};
use sprijin_proto::message::diag::{Evidence, Finding, ProcessInfo, Severity, Snapshot};

use super::EVIDENCE_COMMAND_CHARS;
use super::Thresholds;

/// Each process using at least the threshold share of one core.
pub fn process_cpu_hog(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.processes
        .top_cpu
        .iter()
        .filter(|p| p.cpu_percent >= t.process_cpu_percent)
        .map(|p| Finding {
            id: "process-cpu-hog".into(),
            severity: Severity::Warning,
            title: format!(
                "Process {} (pid {}) is using {:.0}% of a core",
                p.name,
                p.pid,
                p.cpu_percent.floor()
            ),
            evidence: process_evidence(
                s,
                p,
                Evidence::new("cpu", format!("{:.1}% of one core", p.cpu_percent)),
            ),
            subject: Some(p.pid.to_string()),
            script: t.fixes().stop_process.map(String::from),
            params: Vec::new(),
        })
        .collect()
}

/// Each process holding at least the threshold share of all memory.
pub fn process_memory_hog(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let total = s.memory.total_bytes;
    if total == 0 {
        return Vec::new();
    }
    s.processes
        .top_memory
        .iter()
        .filter(|p| percent(p.memory_bytes, total) >= t.process_memory_percent)
        .map(|p| {
            let share = percent(p.memory_bytes, total);
            Finding {
                id: "process-memory-hog".into(),
                severity: Severity::Warning,
                title: format!(
                    "Process {} (pid {}) holds {}% of memory",
                    p.name,
                    p.pid,
                    share.floor()
                ),
                evidence: process_evidence(
                    s,
                    p,
                    Evidence::new(
                        "memory",
                        format!(
                            "{} ({share:.1}% of {})",
                            human_bytes(p.memory_bytes),
                            human_bytes(total)
                        ),
                    ),
                ),
                subject: Some(p.pid.to_string()),
                script: t.fixes().stop_process.map(String::from),
                params: Vec::new(),
            }
        })
        .collect()
}

/// What a technician needs to recognise a process, plus the one measure
/// that made it a finding.
fn process_evidence(s: &Snapshot, p: &ProcessInfo, measure: Evidence) -> Vec<Evidence> {
    let mut evidence = vec![
        Evidence::new("pid", p.pid.to_string()),
        Evidence::new("name", &p.name),
        measure,
        Evidence::new("user", p.user.as_deref().unwrap_or("unknown")),
    ];
    if !p.command.is_empty() {
        evidence.push(Evidence::new(
            "command",
            shorten(&p.command, EVIDENCE_COMMAND_CHARS),
        ));
    }
    let now_secs = s.taken_at_ms / 1000;
    if p.start_time_secs > 0 && now_secs >= p.start_time_secs {
        evidence.push(Evidence::new(
            "running for",
            human_duration(now_secs - p.start_time_secs),
        ));
    }
    evidence
}

/// Zombies (finished processes nobody collected) at or past the threshold:
/// a parent program is misbehaving, and they can exhaust process ids.
pub fn many_zombies(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let p = &s.processes;
    if p.zombies < t.zombie_count {
        return Vec::new();
    }
    vec![Finding {
        id: "many-zombies".into(),
        severity: Severity::Warning,
        title: format!("{} zombie processes are waiting to be collected", p.zombies),
        evidence: vec![
            Evidence::new("zombies", p.zombies.to_string()),
            Evidence::new("processes", p.count.to_string()),
        ],
        subject: None,
        script: None,
        params: Vec::new(),
    }]
}

/// Each process at or near its open-file limit (open descriptors against
/// its soft `RLIMIT_NOFILE`): at the limit it can open no file, socket or
/// pipe, and fails in ways that rarely say why.
pub fn open_file_limit(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.open_files
        .iter()
        .filter(|p| p.soft_limit > 0)
        .filter_map(|p| {
            let share = percent(p.open, p.soft_limit);
            if share < t.open_files_warning_percent {
                return None;
            }
            let severity = if share >= t.open_files_critical_percent {
                Severity::Critical
            } else {
                Severity::Warning
            };
            Some(Finding {
                id: "open-file-limit".into(),
                severity,
                title: format!(
                    "{} (pid {}) has {} files open of its limit of {}",
                    p.name, p.pid, p.open, p.soft_limit
                ),
                evidence: vec![
                    Evidence::new("process", format!("{} (pid {})", p.name, p.pid)),
                    Evidence::new("open descriptors", p.open.to_string()),
                    Evidence::new("soft limit", p.soft_limit.to_string()),
                    Evidence::new("share of the limit", format!("{share:.1}%")),
                ],
                subject: Some(p.pid.to_string()),
                script: t.fixes().list_open_files.map(String::from),
                params: Vec::new(),
            })
        })
        .collect()
}

/// Each process seen in uninterruptible sleep (state D) without a break
/// for at least the threshold: it waits on a disk or a network file system
/// that does not answer, cannot be killed, and often drags others along.
pub fn stuck_processes(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.stuck_processes
        .iter()
        .filter(|p| p.stuck_secs >= t.stuck_secs)
        .map(|p| {
            let mut evidence = vec![
                Evidence::new("process", format!("{} (pid {})", p.name, p.pid)),
                Evidence::new("state", "D (uninterruptible sleep)"),
                Evidence::new("stuck for", human_duration(p.stuck_secs)),
            ];
            if !p.command.is_empty() {
                evidence.push(Evidence::new(
                    "command",
                    shorten(&p.command, EVIDENCE_COMMAND_CHARS),
                ));
            }
            Finding {
                id: "process-stuck".into(),
                severity: Severity::Warning,
                title: format!(
                    "{} (pid {}) has been stuck waiting on input or output for {}",
                    p.name,
                    p.pid,
                    human_duration(p.stuck_secs)
                ),
                evidence,
                subject: Some(p.pid.to_string()),
                script: None,
                params: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;
    use sprijin_proto::message::diag::{OpenFileUse, StuckProcess};

    #[test]
    fn process_at_80_percent_of_a_core_is_named_by_pid_and_name() {
        let mut s = quiet();
        s.processes
            .top_cpu
            .insert(0, process(4242, "spin", 80.0, MIB));
        let f = only(process_cpu_hog(&s, &linux()));
        assert_eq!(f.id, "process-cpu-hog");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.as_deref(), Some("4242"));
        assert_eq!(f.title, "Process spin (pid 4242) is using 80% of a core");
        assert_eq!(evidence(&f, "pid"), "4242");
        assert_eq!(evidence(&f, "name"), "spin");
        assert_eq!(evidence(&f, "cpu"), "80.0% of one core");
        assert_eq!(evidence(&f, "user"), "ana");
        assert_eq!(evidence(&f, "command"), "/usr/bin/spin --flag");
        assert_eq!(evidence(&f, "running for"), "1h 0m");
        assert_eq!(f.script.as_deref(), Some("stop-process"));
    }

    #[test]
    fn process_just_below_80_percent_of_a_core_is_quiet() {
        let mut s = quiet();
        s.processes
            .top_cpu
            .insert(0, process(4242, "spin", 79.9, MIB));
        assert_eq!(process_cpu_hog(&s, &linux()), vec![]);
    }

    #[test]
    fn long_command_lines_are_shortened_in_evidence() {
        let mut s = quiet();
        let mut hog = process(4242, "spin", 100.0, MIB);
        hog.command = "x".repeat(500);
        s.processes.top_cpu = vec![hog];
        let f = only(process_cpu_hog(&s, &linux()));
        assert_eq!(
            evidence(&f, "command").chars().count(),
            EVIDENCE_COMMAND_CHARS
        );
    }

    #[test]
    fn every_hogging_process_gets_its_own_finding() {
        let mut s = quiet();
        s.processes.top_cpu = vec![
            process(1, "a", 190.0, MIB),
            process(2, "b", 100.0, MIB),
            process(3, "c", 1.0, MIB),
        ];
        let f = process_cpu_hog(&s, &linux());
        let subjects: Vec<_> = f.iter().map(|f| f.subject.as_deref()).collect();
        assert_eq!(subjects, [Some("1"), Some("2")]);
    }

    #[test]
    fn process_holding_40_percent_of_memory_is_named() {
        let mut s = quiet();
        s.memory.total_bytes = 10 * GIB;
        s.processes.top_memory[0].memory_bytes = 4 * GIB;
        let f = only(process_memory_hog(&s, &linux()));
        assert_eq!(f.id, "process-memory-hog");
        assert_eq!(f.subject.as_deref(), Some("101"));
        assert_eq!(f.title, "Process browser (pid 101) holds 40% of memory");
        assert_eq!(evidence(&f, "memory"), "4.0 GiB (40.0% of 10.0 GiB)");
        assert_eq!(evidence(&f, "name"), "browser");
        assert_eq!(f.script.as_deref(), Some("stop-process"));
    }

    #[test]
    fn process_just_below_40_percent_of_memory_is_quiet() {
        let mut s = quiet();
        s.memory.total_bytes = 10 * GIB;
        s.processes.top_memory[0].memory_bytes = 4 * GIB - 1;
        assert_eq!(process_memory_hog(&s, &linux()), vec![]);
    }

    #[test]
    fn twenty_zombies_are_a_warning_nineteen_are_not() {
        let mut s = quiet();
        s.processes.zombies = 20;
        let f = only(many_zombies(&s, &linux()));
        assert_eq!(f.id, "many-zombies");
        assert_eq!(evidence(&f, "zombies"), "20");
        assert_eq!(evidence(&f, "processes"), "200");
        s.processes.zombies = 19;
        assert_eq!(many_zombies(&s, &linux()), vec![]);
    }

    #[test]
    fn process_near_its_open_file_limit_is_named() {
        let mut s = quiet();
        s.open_files = vec![OpenFileUse {
            pid: 77,
            name: "nginx".into(),
            open: 922,
            soft_limit: 1024,
        }];
        let f = only(open_file_limit(&s, &linux()));
        assert_eq!(f.id, "open-file-limit");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.title,
            "nginx (pid 77) has 922 files open of its limit of 1024"
        );
        assert_eq!(evidence(&f, "share of the limit"), "90.0%");
        assert_eq!(f.subject.as_deref(), Some("77"));
        assert_eq!(f.script.as_deref(), Some("list-open-files"));
        s.open_files[0].open = 1024;
        assert_eq!(
            only(open_file_limit(&s, &linux())).severity,
            Severity::Critical
        );
        s.open_files[0].open = 921;
        assert_eq!(open_file_limit(&s, &linux()), vec![]);
    }

    #[test]
    fn process_stuck_a_minute_in_state_d_is_named() {
        let mut s = quiet();
        s.stuck_processes = vec![StuckProcess {
            pid: 31,
            name: "cp".into(),
            command: "cp big /mnt/nfs/".into(),
            stuck_secs: 60,
        }];
        let f = only(stuck_processes(&s, &linux()));
        assert_eq!(f.id, "process-stuck");
        assert_eq!(
            f.title,
            "cp (pid 31) has been stuck waiting on input or output for 1m 0s"
        );
        assert_eq!(evidence(&f, "command"), "cp big /mnt/nfs/");
        s.stuck_processes[0].stuck_secs = 59;
        assert_eq!(stuck_processes(&s, &linux()), vec![]);
    }
}
