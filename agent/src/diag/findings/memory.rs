//! Memory rules: memory and swap running out.

use sprijin_proto::diag_text::{human_bytes, percent};
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
        let f = only(memory_nearly_exhausted(&s, &Thresholds::default()));
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
        assert_eq!(memory_nearly_exhausted(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn memory_at_97_percent_is_critical() {
        let mut s = quiet();
        s.memory.total_bytes = 100 * GIB;
        s.memory.available_bytes = 3 * GIB;
        assert_eq!(
            only(memory_nearly_exhausted(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn swap_half_used_is_a_warning_and_80_percent_critical() {
        let mut s = quiet();
        s.swap.total_bytes = 10 * GIB;
        s.swap.used_bytes = 5 * GIB;
        let f = only(heavy_swapping(&s, &Thresholds::default()));
        assert_eq!(f.id, "heavy-swapping");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "swap used"), "50.0%");
        assert_eq!(evidence(&f, "swap size"), "10.0 GiB");
        assert_eq!(evidence(&f, "memory available"), "12.0 GiB");
        s.swap.used_bytes = 8 * GIB;
        assert_eq!(
            only(heavy_swapping(&s, &Thresholds::default())).severity,
            Severity::Critical
        );
        s.swap.used_bytes = 8 * GIB - 1;
        assert_eq!(
            only(heavy_swapping(&s, &Thresholds::default())).severity,
            Severity::Warning
        );
    }

    #[test]
    fn swap_just_below_half_or_absent_is_quiet() {
        let mut s = quiet();
        s.swap.used_bytes = GIB - 1;
        assert_eq!(heavy_swapping(&s, &Thresholds::default()), vec![]);
        s.swap = sprijin_proto::message::diag::Swap::default();
        assert_eq!(heavy_swapping(&s, &Thresholds::default()), vec![]);
    }
}
