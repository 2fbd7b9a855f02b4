//! Memory rules: memory and swap running out, and processes the kernel
//! killed for lack of memory.

use sprijin_proto::diag_text::{human_bytes, human_duration, percent};
use sprijin_proto::message::diag::{Evidence, Finding, Severity, Snapshot};

use super::Thresholds;

/// Memory in use (total less what is still available) at or past the
/// warning share.
pub fn memory_nearly_exhausted(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let m = &s.memory;
    if m.total_bytes == 0 {
        return Vec::new();
    }
    let available = m.available_bytes.min(m.total_bytes);
    let used = m.total_bytes - available;
    let used_percent = percent(used, m.total_bytes);
    if used_percent < t.memory_warning_percent {
        return Vec::new();
    }
    let severity = if used_percent >= t.memory_critical_percent {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut evidence = vec![
        Evidence::new("used", format!("{used_percent:.1}%")),
        Evidence::new("available", human_bytes(available)),
        Evidence::new("total", human_bytes(m.total_bytes)),
    ];
    if let Some(top) = s.processes.top_memory.first() {
        evidence.push(Evidence::new(
            "largest process",
            format!(
                "{} (pid {}) {}",
                top.name,
                top.pid,
                human_bytes(top.memory_bytes)
            ),
        ));
    }
    vec![Finding {
        id: "memory-nearly-exhausted".into(),
        severity,
        title: format!(
            "Memory is {}% used, {} available",
            used_percent.floor(),
            human_bytes(available)
        ),
        evidence,
        subject: None,
        script: None,
        params: Vec::new(),
    }]
}

/// Swap in use at or past the warning share of swap size: the machine has
/// been short of memory and is likely slow from paging.
pub fn heavy_swapping(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let w = &s.swap;
    if w.total_bytes == 0 {
        return Vec::new();
    }
    let used = w.used_bytes.min(w.total_bytes);
    let used_percent = percent(used, w.total_bytes);
    if used_percent < t.swap_warning_percent {
        return Vec::new();
    }
    let severity = if used_percent >= t.swap_critical_percent {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Finding {
        id: "heavy-swapping".into(),
        severity,
        title: format!(
            "Swap is {}% used: the machine is short of memory",
            used_percent.floor()
        ),
        evidence: vec![
            Evidence::new("swap used", format!("{used_percent:.1}%")),
            Evidence::new("swap used size", human_bytes(used)),
            Evidence::new("swap size", human_bytes(w.total_bytes)),
            Evidence::new("memory available", human_bytes(s.memory.available_bytes)),
        ],
        subject: None,
        script: None,
        params: Vec::new(),
    }]
}

/// Processes the kernel killed for lack of memory within the threshold
/// time: the cause behind a program that "just vanished". Critical when the
/// whole machine ran out; a warning when a group limit (a container or a
/// service's memory cap) was hit.
pub fn recent_oom_kills(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let now = s.taken_at_ms / 1000;
    let recent: Vec<_> = s
        .oom_kills
        .iter()
        .filter(|k| now > 0 && k.at_secs.saturating_add(t.oom_recent_secs) >= now)
        .collect();
    let Some(last) = recent.last() else {
        return Vec::new();
    };
    let severity = if recent.iter().any(|k| !k.limited_group) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let killed: Vec<String> = recent
        .iter()
        .rev()
        .map(|k| {
            format!(
                "{} (pid {}) {} ago{}",
                k.name,
                k.pid,
                human_duration(now.saturating_sub(k.at_secs)),
                if k.limited_group { ", group limit" } else { "" }
            )
        })
        .collect();
    let mut evidence = vec![
        Evidence::new("killed", killed.join(", ")),
        Evidence::new("kills", recent.len().to_string()),
        Evidence::new("last killed", format!("{} (pid {})", last.name, last.pid)),
        Evidence::new("its memory", human_bytes(last.rss_bytes)),
        Evidence::new(
            "limit hit",
            if last.limited_group {
                "a memory limit of its group (cgroup)"
            } else {
                "the whole machine's memory"
            },
        ),
    ];
    evidence.push(Evidence::new(
        "memory available now",
        human_bytes(s.memory.available_bytes),
    ));
    vec![Finding {
        id: "recent-oom-kills".into(),
        severity,
        title: format!(
            "The kernel killed {} (pid {}) for lack of memory {} ago",
            last.name,
            last.pid,
            human_duration(now.saturating_sub(last.at_secs))
        ),
        evidence,
        subject: Some(last.name.clone()),
        script: None,
        params: Vec::new(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;

    #[test]
    fn memory_at_90_percent_used_is_a_warning() {
        let mut s = quiet();
        s.memory.available_bytes = 10 * GIB / 10;
        s.memory.total_bytes = 10 * GIB;
        let f = only(memory_nearly_exhausted(&s, &linux()));
        assert_eq!(f.id, "memory-nearly-exhausted");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "used"), "90.0%");
        assert_eq!(evidence(&f, "available"), "1.0 GiB");
        assert_eq!(evidence(&f, "largest process"), "browser (pid 101) 2.0 GiB");
        assert_eq!(f.subject, None);
    }

    #[test]
    fn memory_just_below_90_percent_is_quiet() {
        let mut s = quiet();
        s.memory.total_bytes = 10 * GIB;
        s.memory.available_bytes = GIB + 1;
        assert_eq!(memory_nearly_exhausted(&s, &linux()), vec![]);
    }

    #[test]
    fn memory_at_97_percent_is_critical() {
        let mut s = quiet();
        s.memory.total_bytes = 100 * GIB;
        s.memory.available_bytes = 3 * GIB;
        assert_eq!(
            only(memory_nearly_exhausted(&s, &linux())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn swap_half_used_is_a_warning_and_80_percent_critical() {
        let mut s = quiet();
        s.swap.total_bytes = 10 * GIB;
        s.swap.used_bytes = 5 * GIB;
        let f = only(heavy_swapping(&s, &linux()));
        assert_eq!(f.id, "heavy-swapping");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "swap used"), "50.0%");
        assert_eq!(evidence(&f, "swap size"), "10.0 GiB");
        assert_eq!(evidence(&f, "memory available"), "12.0 GiB");
        s.swap.used_bytes = 8 * GIB;
        assert_eq!(
            only(heavy_swapping(&s, &linux())).severity,
            Severity::Critical
        );
        s.swap.used_bytes = 8 * GIB - 1;
        assert_eq!(
            only(heavy_swapping(&s, &linux())).severity,
            Severity::Warning
        );
    }

    #[test]
    fn swap_just_below_half_or_absent_is_quiet() {
        let mut s = quiet();
        s.swap.used_bytes = GIB - 1;
        assert_eq!(heavy_swapping(&s, &linux()), vec![]);
        s.swap = sprijin_proto::message::diag::Swap::default();
        assert_eq!(heavy_swapping(&s, &linux()), vec![]);
    }

    #[test]
    fn a_recent_oom_kill_names_the_killed_process() {
        let mut s = quiet();
        s.oom_kills = vec![
            sprijin_proto::message::diag::OomKill {
                pid: 10,
                name: "old".into(),
                at_secs: NOW_SECS - 2 * 86_400,
                rss_bytes: MIB,
                limited_group: false,
            },
            sprijin_proto::message::diag::OomKill {
                pid: 4242,
                name: "java".into(),
                at_secs: NOW_SECS - 600,
                rss_bytes: 3 * GIB,
                limited_group: false,
            },
        ];
        let f = only(recent_oom_kills(&s, &linux()));
        assert_eq!(f.id, "recent-oom-kills");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "The kernel killed java (pid 4242) for lack of memory 10m 0s ago"
        );
        assert_eq!(evidence(&f, "killed"), "java (pid 4242) 10m 0s ago");
        assert_eq!(evidence(&f, "its memory"), "3.0 GiB");
        s.oom_kills[1].limited_group = true;
        assert_eq!(
            only(recent_oom_kills(&s, &linux())).severity,
            Severity::Warning
        );
        s.oom_kills.pop();
        assert_eq!(recent_oom_kills(&s, &linux()), vec![]);
    }
}
