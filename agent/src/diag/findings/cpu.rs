//! CPU rules: busy cores, sustained load and heat.

use sprijin_proto::message::diag::{Evidence, Finding, Severity, Snapshot};

use super::Thresholds;

/// All cores together busy at or past the warning share.
pub fn cpu_saturated(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let c = &s.cpu;
    if c.usage_percent < t.cpu_warning_percent {
        return Vec::new();
    }
    let severity = if c.usage_percent >= t.cpu_critical_percent {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut evidence = vec![
        Evidence::new("usage", format!("{:.1}%", c.usage_percent)),
        Evidence::new("logical cores", c.logical_cores.to_string()),
        Evidence::new(
            "load average",
            format!(
                "{:.2} {:.2} {:.2}",
                c.load_average.one, c.load_average.five, c.load_average.fifteen
            ),
        ),
    ];
    if let Some(top) = s.processes.top_cpu.first() {
        evidence.push(Evidence::new(
            "busiest process",
            format!("{} (pid {}) {:.1}%", top.name, top.pid, top.cpu_percent),
        ));
    }
    vec![Finding {
        id: "cpu-saturated".into(),
        severity,
        title: format!("CPU is {:.0}% busy", c.usage_percent.floor()),
        evidence,
        subject: None,
        script: None,
        params: Vec::new(),
    }]
}

/// The five-minute load average at or past the threshold per logical core:
/// more work is waiting than the cores can run, sustained rather than a spike.
pub fn load_above_cores(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let c = &s.cpu;
    if c.logical_cores == 0 {
        return Vec::new();
    }
    let cores = f64::from(c.logical_cores);
    let per_core = c.load_average.five / cores;
    if per_core < t.load_per_core_warning {
        return Vec::new();
    }
    let severity = if per_core >= t.load_per_core_critical {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Finding {
        id: "load-above-cores".into(),
        severity,
        title: format!(
            "Load {:.2} over 5 minutes is above the {} cores",
            c.load_average.five, c.logical_cores
        ),
        evidence: vec![
            Evidence::new(
                "load average",
                format!(
                    "{:.2} {:.2} {:.2}",
                    c.load_average.one, c.load_average.five, c.load_average.fifteen
                ),
            ),
            Evidence::new("logical cores", c.logical_cores.to_string()),
            Evidence::new("load per core", format!("{per_core:.2}")),
            Evidence::new("cpu usage", format!("{:.1}%", c.usage_percent)),
        ],
        subject: None,
        script: None,
        params: Vec::new(),
    }]
}

/// Each sensor at or past the warning temperature; critical at the sensor's
/// own critical mark or the critical threshold, whichever is lower.
pub fn high_temperature(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.temperatures
        .iter()
        .filter_map(|temp| {
            let critical_at = temp
                .critical_celsius
                .map_or(t.temperature_critical_celsius, |c| {
                    c.min(t.temperature_critical_celsius)
                });
            let severity = if temp.celsius >= critical_at {
                Severity::Critical
            } else if temp.celsius >= t.temperature_warning_celsius {
                Severity::Warning
            } else {
                return None;
            };
            let mut evidence = vec![
                Evidence::new("sensor", &temp.label),
                Evidence::new("temperature", format!("{:.1} °C", temp.celsius)),
            ];
            if let Some(c) = temp.critical_celsius {
                evidence.push(Evidence::new(
                    "sensor's critical mark",
                    format!("{c:.1} °C"),
                ));
            }
            Some(Finding {
                id: "high-temperature".into(),
                severity,
                title: format!("{} is at {:.0} °C", temp.label, temp.celsius.floor()),
                evidence,
                subject: Some(temp.label.clone()),
                script: None,
                params: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;

    #[test]
    fn cpu_at_90_percent_is_a_warning_naming_the_busiest_process() {
        let mut s = quiet();
        s.cpu.usage_percent = 90.0;
        let f = only(cpu_saturated(&s, &linux()));
        assert_eq!(f.id, "cpu-saturated");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "usage"), "90.0%");
        assert_eq!(evidence(&f, "busiest process"), "editor (pid 100) 5.0%");
        s.cpu.usage_percent = 98.0;
        assert_eq!(
            only(cpu_saturated(&s, &linux())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn cpu_just_below_90_percent_is_quiet() {
        let mut s = quiet();
        s.cpu.usage_percent = 89.9;
        assert_eq!(cpu_saturated(&s, &linux()), vec![]);
    }

    #[test]
    fn load_at_core_count_is_a_warning_and_twice_critical() {
        let mut s = quiet();
        s.cpu.load_average.five = 4.0;
        let f = only(load_above_cores(&s, &linux()));
        assert_eq!(f.id, "load-above-cores");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(evidence(&f, "logical cores"), "4");
        assert_eq!(evidence(&f, "load per core"), "1.00");
        assert_eq!(evidence(&f, "load average"), "0.50 4.00 0.30");
        s.cpu.load_average.five = 8.0;
        assert_eq!(
            only(load_above_cores(&s, &linux())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn load_just_below_core_count_is_quiet() {
        let mut s = quiet();
        s.cpu.load_average.five = 3.99;
        s.cpu.load_average.one = 12.0; // a spike alone is not sustained load
        assert_eq!(load_above_cores(&s, &linux()), vec![]);
    }

    #[test]
    fn sensor_at_85_is_a_warning_and_at_its_critical_mark_critical() {
        let mut s = quiet();
        s.temperatures[0].celsius = 85.0;
        let f = only(high_temperature(&s, &linux()));
        assert_eq!(f.id, "high-temperature");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.as_deref(), Some("Package id 0"));
        assert_eq!(evidence(&f, "temperature"), "85.0 °C");
        assert_eq!(evidence(&f, "sensor's critical mark"), "100.0 °C");
        s.temperatures[0].critical_celsius = Some(90.0);
        s.temperatures[0].celsius = 90.0;
        assert_eq!(
            only(high_temperature(&s, &linux())).severity,
            Severity::Critical
        );
        s.temperatures[0].critical_celsius = None;
        s.temperatures[0].celsius = 95.0;
        assert_eq!(
            only(high_temperature(&s, &linux())).severity,
            Severity::Critical
        );
    }

    #[test]
    fn sensor_just_below_85_is_quiet() {
        let mut s = quiet();
        s.temperatures[0].celsius = 84.9;
        assert_eq!(high_temperature(&s, &linux()), vec![]);
    }
}
