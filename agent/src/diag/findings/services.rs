//! Services and host rules: failed services, automatic services that are
//! stopped, a pending restart, a clock that is not synchronised or is off
//! from the relay's, and how long the machine has run.

use sprijin_proto::diag_text::{clock_offset, human_duration};
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
        params: Vec::new(),
    }]
}

/// Units the service manager lists as failed; one finding each, at most
/// this many.
const MAX_FAILED_UNITS: usize = 10;

/// Each systemd unit in the failed state. Says nothing without systemd.
pub fn failed_units(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
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
            script: t.fixes().restart_service.map(String::from),
            params: Vec::new(),
        })
        .collect()
}

/// The system says its clock is not synchronised: certificates, logins and
/// logs go wrong as it drifts. Says nothing when the system cannot tell.
pub fn clock_not_synchronized(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
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
        script: t.fixes().sync_time.map(String::from),
        params: Vec::new(),
    }]
}

/// Stopped automatic services named at most this many times.
const MAX_STOPPED_SERVICES: usize = 10;

/// Each service set to start automatically that is stopped (Windows'
/// Service Control Manager): with an error, or one the desktop needs.
/// Says nothing where the system has no such list.
pub fn stopped_services(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(services) = &s.services else {
        return Vec::new();
    };
    let all = services.stopped_automatic.len();
    services
        .stopped_automatic
        .iter()
        .take(MAX_STOPPED_SERVICES)
        .map(|v| {
            let how = if v.exit_code == 0 {
                "stopped".to_string()
            } else {
                format!("stopped with error {}", v.exit_code)
            };
            Finding {
                id: "service-stopped".into(),
                severity: Severity::Warning,
                title: format!(
                    "Service {} ({}) should start automatically but is {how}",
                    v.display_name, v.name
                ),
                evidence: vec![
                    Evidence::new("service", &v.name),
                    Evidence::new("display name", &v.display_name),
                    Evidence::new("start type", "automatic"),
                    Evidence::new("state", "stopped"),
                    Evidence::new("exit code", v.exit_code.to_string()),
                    Evidence::new("automatic services stopped", all.to_string()),
                ],
                subject: Some(v.name.clone()),
                script: t.fixes().start_service.map(String::from),
                params: Vec::new(),
            }
        })
        .collect()
}

/// The system waits for a restart to finish installing updates or
/// replacing files in use: until then fixes are half applied, and some
/// installs refuse to run.
pub fn reboot_pending(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(reasons) = &s.pending_reboot else {
        return Vec::new();
    };
    if reasons.is_empty() {
        return Vec::new();
    }
    let mut evidence: Vec<Evidence> = reasons
        .iter()
        .map(|r| Evidence::new("waiting for a restart", r))
        .collect();
    evidence.push(Evidence::new("uptime", human_duration(s.host.uptime_secs)));
    vec![Finding {
        id: "restart-pending".into(),
        severity: Severity::Warning,
        title: "A restart is pending to finish installing updates".into(),
        evidence,
        subject: None,
        script: t.fixes().restart_computer.map(String::from),
        params: Vec::new(),
    }]
}

/// This clock differs from the relay's by at least the warning threshold:
/// sign-ins, certificates and file times go wrong. Says nothing outside a
/// session, where there is no relay to compare with.
pub fn clock_off_from_relay(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(c) = &s.relay_clock else {
        return Vec::new();
    };
    let off = c.offset_secs.unsigned_abs();
    if off < t.clock_offset_warning_secs {
        return Vec::new();
    }
    let severity = if off >= t.clock_offset_critical_secs {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Finding {
        id: "clock-off".into(),
        severity,
        title: format!(
            "The clock is {} the relay's: {}",
            clock_offset(c.offset_secs),
            if severity == Severity::Critical {
                "secure web sites and sign-ins will fail"
            } else {
                "sign-ins may start to fail"
            }
        ),
        evidence: vec![
            Evidence::new("offset", clock_offset(c.offset_secs)),
            Evidence::new("offset seconds", c.offset_secs.to_string()),
            Evidence::new("compared with", &c.relay),
            Evidence::new("clock (unix)", (s.taken_at_ms / 1000).to_string()),
        ],
        subject: None,
        script: t.fixes().sync_time.map(String::from),
        params: Vec::new(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;
    use sprijin_proto::message::diag::{RelayClock, Services, StoppedService};

    #[test]
    fn thirty_days_up_is_information() {
        let mut s = quiet();
        s.host.uptime_secs = 30 * 86_400;
        let f = only(long_uptime(&s, &linux()));
        assert_eq!(f.id, "long-uptime");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(evidence(&f, "uptime"), "30d 0h");
        s.host.uptime_secs = 30 * 86_400 - 1;
        assert_eq!(long_uptime(&s, &linux()), vec![]);
    }

    #[test]
    fn each_failed_unit_is_named_with_the_restart_script() {
        let mut s = quiet();
        s.services = Some(Services {
            failed_units: vec!["cups.service".into(), "backup.timer".into()],
            ..Services::default()
        });
        let f = failed_units(&s, &linux());
        assert_eq!(ids(&f), ["service-failed", "service-failed"]);
        assert_eq!(f[0].title, "Service cups.service has failed");
        assert_eq!(f[0].subject.as_deref(), Some("cups.service"));
        assert_eq!(evidence(&f[0], "failed units"), "2");
        assert_eq!(f[0].script.as_deref(), Some("restart-unit"));
        s.services = None;
        assert_eq!(failed_units(&s, &linux()), vec![]);
    }

    #[test]
    fn an_unsynchronised_clock_is_a_warning_an_unknown_one_is_quiet() {
        let mut s = quiet();
        s.clock_synchronized = Some(false);
        let f = only(clock_not_synchronized(&s, &linux()));
        assert_eq!(f.id, "clock-not-synchronized");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.script.as_deref(), Some("turn-on-time-sync"));
        s.clock_synchronized = None;
        assert_eq!(clock_not_synchronized(&s, &linux()), vec![]);
    }

    #[test]
    fn a_stopped_automatic_service_names_the_start_script() {
        let mut s = quiet();
        s.services = Some(Services {
            stopped_automatic: vec![StoppedService {
                name: "Spooler".into(),
                display_name: "Print Spooler".into(),
                exit_code: 1067,
            }],
            ..Services::default()
        });
        let f = only(stopped_services(&s, &windows()));
        assert_eq!(f.id, "service-stopped");
        assert_eq!(
            f.title,
            "Service Print Spooler (Spooler) should start automatically but is stopped with error 1067"
        );
        assert_eq!(f.subject.as_deref(), Some("Spooler"));
        assert_eq!(f.script.as_deref(), Some("windows-start-service"));
        assert_eq!(failed_units(&s, &windows()), vec![]);
        s.services = None;
        assert_eq!(stopped_services(&s, &windows()), vec![]);
    }

    #[test]
    fn a_pending_restart_gives_its_reasons() {
        let mut s = quiet();
        s.pending_reboot = Some(vec![]);
        assert_eq!(reboot_pending(&s, &windows()), vec![]);
        s.pending_reboot = Some(vec!["Windows Update".into(), "2 file(s) to replace".into()]);
        let f = only(reboot_pending(&s, &windows()));
        assert_eq!(f.id, "restart-pending");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.evidence[0].value, "Windows Update");
        assert_eq!(f.evidence[1].value, "2 file(s) to replace");
        assert_eq!(f.script.as_deref(), Some("windows-restart-computer"));
        s.pending_reboot = None;
        assert_eq!(reboot_pending(&s, &windows()), vec![]);
    }

    #[test]
    fn a_clock_off_from_the_relay_is_named_by_how_far() {
        let mut s = quiet();
        let at = |offset_secs| {
            Some(RelayClock {
                offset_secs,
                relay: "relay.example.org:7420".into(),
            })
        };
        s.relay_clock = at(59);
        assert_eq!(clock_off_from_relay(&s, &windows()), vec![]);
        s.relay_clock = at(-120);
        let f = only(clock_off_from_relay(&s, &windows()));
        assert_eq!(f.id, "clock-off");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.title,
            "The clock is 2m 0s behind the relay's: sign-ins may start to fail"
        );
        assert_eq!(f.script.as_deref(), Some("windows-sync-time"));
        s.relay_clock = at(3600);
        let f = only(clock_off_from_relay(&s, &linux()));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(evidence(&f, "offset"), "1h 0m ahead");
        assert!(
            f.title
                .ends_with(": secure web sites and sign-ins will fail")
        );
        assert_eq!(f.script.as_deref(), Some("turn-on-time-sync"));
    }
}
