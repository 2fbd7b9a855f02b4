//! Services and host rules: how long the machine has run.

use sprijin_proto::diag_text::human_duration;
use sprijin_proto::message::diag::{Evidence, Finding, Severity, Snapshot};

use super::Thresholds;

/// Up for at least the threshold: worth a restart to apply updates and
/// clear slow leaks. Information, not a fault.
pub fn long_uptime(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let up = s.host.uptime_secs;
    if up < t.uptime_secs {
        return Vec::new();
    }
    vec![Finding {
        id: "long-uptime".into(),
        severity: Severity::Info,
        title: format!("Running for {} without a restart", human_duration(up)),
        evidence: vec![
            Evidence::new("uptime", human_duration(up)),
            Evidence::new("uptime seconds", up.to_string()),
            Evidence::new("boot time (unix)", s.host.boot_time_secs.to_string()),
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
    fn thirty_days_up_is_information() {
        let mut s = quiet();
        s.host.uptime_secs = 30 * 86_400;
        let f = only(long_uptime(&s, &Thresholds::default()));
        assert_eq!(f.id, "long-uptime");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(evidence(&f, "uptime"), "30d 0h");
        s.host.uptime_secs = 30 * 86_400 - 1;
        assert_eq!(long_uptime(&s, &Thresholds::default()), vec![]);
    }
}
