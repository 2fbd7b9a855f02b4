//! Services and host rules: failed services, an unsynchronised clock, and
//! how long the machine has run.

use sprijin_proto::diag_text::human_duration;
use sprijin_proto::message::diag::{Evidence, Finding, Severity, Snapshot};

use super::{Thresholds, scripts};

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

/// Units the service manager lists as failed; one finding each, at most
/// this many.
const MAX_FAILED_UNITS: usize = 10;

/// Each systemd unit in the failed state. Says nothing without systemd.
pub fn failed_units(s: &Snapshot, _t: &Thresholds) -> Vec<Finding> {
    let Some(services) = &s.services else {
        return Vec::new();
    };
    let all = services.failed_units.len();
    services
        .failed_units
        .iter()
        .take(MAX_FAILED_UNITS)
        .map(|unit| Finding {
            id: "service-failed".into(),
            severity: Severity::Warning,
            title: format!("Service {unit} has failed"),
            evidence: vec![
                Evidence::new("unit", unit),
                Evidence::new("state", "failed"),
                Evidence::new("failed units", all.to_string()),
            ],
            subject: Some(unit.clone()),
            script: Some(scripts::RESTART_UNIT.into()),
        })
        .collect()
}

/// The system says its clock is not synchronised: certificates, logins and
/// logs go wrong as it drifts. Says nothing when the system cannot tell.
pub fn clock_not_synchronized(s: &Snapshot, _t: &Thresholds) -> Vec<Finding> {
    if s.clock_synchronized != Some(false) {
        return Vec::new();
    }
    vec![Finding {
        id: "clock-not-synchronized".into(),
        severity: Severity::Warning,
        title: "The clock is not synchronised with a time server".into(),
        evidence: vec![
            Evidence::new("synchronised", "no"),
            Evidence::new("clock (unix)", (s.taken_at_ms / 1000).to_string()),
        ],
        subject: None,
        script: Some(scripts::TURN_ON_TIME_SYNC.into()),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;
    use sprijin_proto::message::diag::Services;

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

    #[test]
    fn each_failed_unit_is_named_with_the_restart_script() {
        let mut s = quiet();
        s.services = Some(Services {
            failed_units: vec!["cups.service".into(), "backup.timer".into()],
        });
        let f = failed_units(&s, &Thresholds::default());
        assert_eq!(ids(&f), ["service-failed", "service-failed"]);
        assert_eq!(f[0].title, "Service cups.service has failed");
        assert_eq!(f[0].subject.as_deref(), Some("cups.service"));
        assert_eq!(evidence(&f[0], "failed units"), "2");
        assert_eq!(f[0].script.as_deref(), Some(scripts::RESTART_UNIT));
        s.services = None;
        assert_eq!(failed_units(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn an_unsynchronised_clock_is_a_warning_an_unknown_one_is_quiet() {
        let mut s = quiet();
        s.clock_synchronized = Some(false);
        let f = only(clock_not_synchronized(&s, &Thresholds::default()));
        assert_eq!(f.id, "clock-not-synchronized");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.script.as_deref(), Some(scripts::TURN_ON_TIME_SYNC));
        s.clock_synchronized = None;
        assert_eq!(clock_not_synchronized(&s, &Thresholds::default()), vec![]);
    }
}
