//! Rules on what the watcher saw over time (`Snapshot::trends`) and on the
//! package manager: a program restarting in a loop, a file filling its
//! disk, memory, disk or CPU stalls, a control group held at its limit,
//! and an installation that was cut off or is held by a lock.

use sprijin_proto::diag_text::{human_bytes, human_duration};
use sprijin_proto::message::diag::{Evidence, Finding, Severity, Snapshot};

use super::Thresholds;

/// A program ending and being started again at least the threshold times
/// a minute, under one parent.
pub fn restart_loop(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(trends) = &s.trends else {
        return Vec::new();
    };
    trends
        .churn
        .iter()
        .filter(|c| c.deaths_per_minute >= t.restarts_per_minute)
        .map(|c| {
            let parent = if c.parent_name.is_empty() {
                format!("process {}", c.parent_pid)
            } else {
                format!("{} (pid {})", c.parent_name, c.parent_pid)
            };
            let by = match &c.unit {
                Some(unit) => format!("service {unit}"),
                None => parent.clone(),
            };
            let mut evidence = vec![
                Evidence::new("program", &c.name),
                Evidence::new("seen ending (last minute)", c.deaths_seen.to_string()),
                Evidence::new("rate", format!("about {} a minute", c.deaths_per_minute)),
                Evidence::new("started again by", &parent),
            ];
            if !c.parent_command.is_empty() {
                evidence.push(Evidence::new("parent command", &c.parent_command));
            }
            if let Some(unit) = &c.unit {
                evidence.push(Evidence::new("service", unit));
            }
            if let Some(exit) = &c.last_exit {
                evidence.push(Evidence::new("last exit", exit));
            }
            evidence.push(Evidence::new(
                "processes started a minute",
                trends.forks_per_minute.to_string(),
            ));
            Finding {
                id: "restart-loop".into(),
                severity: Severity::Warning,
                title: format!(
                    "{} keeps ending and being started again by {by}: about {} times a minute",
                    c.name, c.deaths_per_minute
                ),
                evidence,
                subject: Some(c.name.clone()),
                script: c
                    .unit
                    .as_ref()
                    .and_then(|_| t.fixes().restart_service)
                    .map(String::from),
                params: Vec::new(),
            }
        })
        .collect()
}

/// A file system that will be full soon at the rate it is filling, with
/// the file that grows fastest on it and its writer.
pub fn disk_filling(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(trends) = &s.trends else {
        return Vec::new();
    };
    trends
        .growth
        .iter()
        .filter(|g| g.secs_to_full <= t.filling_warning_secs)
        .map(|g| {
            let severity = if g.secs_to_full <= t.filling_critical_secs {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let left = human_duration(g.secs_to_full.max(1));
            let rate = format!("{}/s", human_bytes(g.bytes_per_sec));
            let mut evidence = vec![
                Evidence::new("file system", &g.mount_point),
                Evidence::new("free", human_bytes(g.available_bytes)),
                Evidence::new("filling at", &rate),
                Evidence::new("full in", &left),
            ];
            let title = match &g.file {
                Some(f) => {
                    evidence.extend([
                        Evidence::new("file", &f.path),
                        Evidence::new("file size", human_bytes(f.size_bytes)),
                        Evidence::new(
                            "file grows at",
                            format!("{}/s", human_bytes(f.bytes_per_sec)),
                        ),
                        Evidence::new("written by", format!("{} (pid {})", f.process, f.pid)),
                    ]);
                    format!(
                        "{} grows {}/s, written by {} (pid {}): {} will be full in {left}",
                        f.path,
                        human_bytes(f.bytes_per_sec),
                        f.process,
                        f.pid,
                        g.mount_point
                    )
                }
                None => format!("{} is filling at {rate}: full in {left}", g.mount_point),
            };
            Finding {
                id: "disk-filling".into(),
                severity,
                title,
                evidence,
                subject: Some(g.mount_point.clone()),
                script: if g.file.is_some() {
                    t.fixes().stop_process
                } else {
                    t.fixes().largest_folders
                }
                .map(String::from),
                params: Vec::new(),
            }
        })
        .collect()
}

/// Work waiting for memory (thrash, with or without an out-of-memory
/// kill) or for the disk, from pressure stall information.
pub fn stalls(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(p) = s.trends.as_ref().and_then(|t| t.pressure.as_ref()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (resource, stall, id, what) in [
        (
            "memory",
            &p.memory,
            "memory-thrash",
            "memory: the system is thrashing",
        ),
        ("io", &p.io, "io-stall", "the disk"),
    ] {
        if stall.some_avg10 < t.stall_warning_percent {
            continue;
        }
        let severity = if stall.full_avg10 >= t.stall_critical_percent {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut evidence = vec![
            Evidence::new("some waited (10 s)", format!("{:.0}%", stall.some_avg10)),
            Evidence::new("some waited (60 s)", format!("{:.0}%", stall.some_avg60)),
            Evidence::new("all waited (10 s)", format!("{:.0}%", stall.full_avg10)),
        ];
        let worst = p.stalled.iter().find(|w| w.resource == resource);
        for w in p.stalled.iter().filter(|w| w.resource == resource) {
            evidence.push(Evidence::new(
                "stalled",
                format!("{}: {}", w.who, w.measure),
            ));
        }
        let title = match worst {
            Some(w) => format!(
                "Work waited for {what} {:.0}% of the last 10 s, most in {}",
                stall.some_avg10, w.who
            ),
            None => format!(
                "Work waited for {what} {:.0}% of the last 10 s",
                stall.some_avg10
            ),
        };
        found.push(Finding {
            id: id.into(),
            severity,
            title,
            evidence,
            subject: worst.map(|w| w.who.clone()),
            script: None,
            params: Vec::new(),
        });
    }
    // Work queued for the CPU: beside "the CPU is busy", how much work
    // waited for it. Information: the busy CPU is the finding to act on.
    if p.cpu.some_avg10 >= t.cpu_stall_percent {
        let worst = p.stalled.iter().find(|w| w.resource == "cpu");
        let mut evidence = vec![
            Evidence::new("some waited (10 s)", format!("{:.0}%", p.cpu.some_avg10)),
            Evidence::new("some waited (60 s)", format!("{:.0}%", p.cpu.some_avg60)),
        ];
        for w in p.stalled.iter().filter(|w| w.resource == "cpu") {
            evidence.push(Evidence::new(
                "stalled",
                format!("{}: {}", w.who, w.measure),
            ));
        }
        found.push(Finding {
            id: "cpu-stall".into(),
            severity: Severity::Info,
            title: match worst {
                Some(w) => format!(
                    "Work waited for the CPU {:.0}% of the last 10 s, most in {}",
                    p.cpu.some_avg10, w.who
                ),
                None => format!(
                    "Work waited for the CPU {:.0}% of the last 10 s",
                    p.cpu.some_avg10
                ),
            },
            evidence,
            subject: worst.map(|w| w.who.clone()),
            script: None,
            params: Vec::new(),
        });
    }
    found
}

/// A control group whose limit was hit while watched: forks refused at its
/// process limit, memory held at its limit, CPU throttled.
pub fn group_limits(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(trends) = &s.trends else {
        return Vec::new();
    };
    trends
        .limits
        .iter()
        .filter_map(|l| {
            let who = match &l.unit {
                Some(unit) => format!("Service {unit}"),
                None => format!("Control group {}", l.group),
            };
            let (id, severity, title) = match l.limit.as_str() {
                "pids" => (
                    "group-process-limit",
                    Severity::Warning,
                    format!(
                        "{who} is at its process limit ({}): {} new processes refused",
                        l.value, l.hits
                    ),
                ),
                "memory" => (
                    "group-memory-limit",
                    Severity::Warning,
                    format!("{who} hit its memory limit ({}) {} times", l.value, l.hits),
                ),
                "memory.high" if l.hits >= t.group_throttle_hits => (
                    "group-memory-limit",
                    Severity::Info,
                    format!(
                        "{who} is held at its memory ceiling ({}): slowed {} times",
                        l.value, l.hits
                    ),
                ),
                "cpu" if l.hits >= t.group_throttle_hits => (
                    "group-cpu-limit",
                    Severity::Info,
                    format!(
                        "{who} is throttled by its CPU limit ({}): {} times",
                        l.value, l.hits
                    ),
                ),
                _ => return None,
            };
            Some(Finding {
                id: id.into(),
                severity,
                title,
                evidence: vec![
                    Evidence::new("group", &l.group),
                    Evidence::new("limit", &l.value),
                    Evidence::new("hits while watched", l.hits.to_string()),
                    Evidence::new("control group version", l.version.to_string()),
                ],
                subject: Some(l.unit.clone().unwrap_or_else(|| l.group.clone())),
                script: None,
                params: Vec::new(),
            })
        })
        .collect()
}

/// An installation cut off half done, or the package manager's lock held
/// for long: updates cannot install.
pub fn package_manager(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(p) = &s.packages else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if p.interrupted {
        found.push(Finding {
            id: "install-interrupted".into(),
            severity: Severity::Warning,
            title: format!(
                "A software installation was interrupted: {} has packages half configured, and no update can install",
                p.manager
            ),
            evidence: vec![
                Evidence::new("package manager", &p.manager),
                Evidence::new("state", "interrupted: pending updates in its journal"),
            ],
            subject: Some(p.manager.clone()),
            script: t.fixes().finish_install.map(String::from),
            params: Vec::new(),
        });
    }
    for lock in p.locks.iter().filter(|l| l.held_secs >= t.lock_held_secs) {
        found.push(Finding {
            id: "package-lock-held".into(),
            severity: Severity::Warning,
            title: format!(
                "{} (pid {}) has held the {} lock for {}: updates cannot install",
                lock.process,
                lock.pid,
                p.manager,
                human_duration(lock.held_secs)
            ),
            evidence: vec![
                Evidence::new("lock", &lock.path),
                Evidence::new("held by", format!("{} (pid {})", lock.process, lock.pid)),
                Evidence::new("held for at least", human_duration(lock.held_secs)),
            ],
            subject: Some(lock.path.clone()),
            script: t.fixes().stop_process.map(String::from),
            params: Vec::new(),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use sprijin_proto::message::diag::{
        Churn, GroupLimit, GrowingFile, Growth, LockHolder, PackageState, Pressure, Stall, Stalled,
        Trends,
    };

    fn with(trends: Trends) -> Snapshot {
        Snapshot {
            trends: Some(trends),
            ..quiet()
        }
    }

    fn churn(n: u64) -> Churn {
        Churn {
            name: "crashy".into(),
            deaths_seen: n,
            deaths_per_minute: n,
            parent_pid: 812,
            parent_name: "supervise".into(),
            parent_command: "/usr/bin/supervise crashy".into(),
            unit: None,
            last_exit: None,
        }
    }

    #[test]
    fn a_restart_loop_names_program_and_parent() {
        let f = only(restart_loop(
            &with(Trends {
                churn: vec![churn(40)],
                forks_per_minute: 90,
                ..Trends::default()
            }),
            &linux(),
        ));
        assert_eq!(
            f.title,
            "crashy keeps ending and being started again by supervise (pid 812): about 40 times a minute"
        );
        assert_eq!(evidence(&f, "parent command"), "/usr/bin/supervise crashy");
        assert_eq!(f.script, None);
    }

    #[test]
    fn a_service_in_a_loop_is_named_and_offered_a_restart() {
        let mut c = churn(12);
        c.unit = Some("app.service".into());
        let f = only(restart_loop(
            &with(Trends {
                churn: vec![c],
                ..Trends::default()
            }),
            &linux(),
        ));
        assert!(f.title.contains("by service app.service"), "{}", f.title);
        assert_eq!(f.script.as_deref(), Some("restart-unit"));
    }

    #[test]
    fn a_few_exits_a_minute_are_not_a_loop() {
        assert!(
            restart_loop(
                &with(Trends {
                    churn: vec![churn(5)],
                    ..Trends::default()
                }),
                &linux()
            )
            .is_empty()
        );
    }

    fn growth(secs: u64, file: bool) -> Growth {
        Growth {
            mount_point: "/var".into(),
            available_bytes: 300 << 20,
            bytes_per_sec: 2 << 20,
            secs_to_full: secs,
            file: file.then(|| GrowingFile {
                path: "/var/log/app.log".into(),
                size_bytes: 9 << 30,
                bytes_per_sec: 2 << 20,
                pid: 4100,
                process: "app".into(),
            }),
        }
    }

    #[test]
    fn a_growing_file_is_named_with_its_writer_rate_and_time_left() {
        let f = only(disk_filling(
            &with(Trends {
                growth: vec![growth(150, true)],
                ..Trends::default()
            }),
            &linux(),
        ));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "/var/log/app.log grows 2.0 MiB/s, written by app (pid 4100): /var will be full in 2m 30s"
        );
        assert_eq!(evidence(&f, "written by"), "app (pid 4100)");
        assert_eq!(f.subject.as_deref(), Some("/var"));
    }

    #[test]
    fn filling_without_a_file_seen_names_the_disk_and_is_slower_to_alarm() {
        let f = only(disk_filling(
            &with(Trends {
                growth: vec![growth(1800, false)],
                ..Trends::default()
            }),
            &linux(),
        ));
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.title.starts_with("/var is filling at 2.0 MiB/s"),
            "{}",
            f.title
        );
        assert_eq!(f.script.as_deref(), Some("largest-folders"));
        assert!(
            disk_filling(
                &with(Trends {
                    growth: vec![growth(20 * 3600, false)],
                    ..Trends::default()
                }),
                &linux()
            )
            .is_empty()
        );
    }

    fn pressure(memory: f64, full: f64, stalled: Vec<Stalled>) -> Trends {
        Trends {
            pressure: Some(Pressure {
                memory: Stall {
                    some_avg10: memory,
                    some_avg60: memory / 2.0,
                    full_avg10: full,
                    full_avg60: 0.0,
                },
                stalled,
                ..Pressure::default()
            }),
            ..Trends::default()
        }
    }

    #[test]
    fn memory_thrash_names_who_stalls_most() {
        let who = Stalled {
            resource: "memory".into(),
            who: "hog (pid 77)".into(),
            measure: "900 page reads from disk a second".into(),
            weight: 900.0,
        };
        let f = only(stalls(&with(pressure(45.0, 30.0, vec![who])), &linux()));
        assert_eq!(f.id, "memory-thrash");
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.title.ends_with("most in hog (pid 77)"), "{}", f.title);
        assert_eq!(
            evidence(&f, "stalled"),
            "hog (pid 77): 900 page reads from disk a second"
        );
    }

    #[test]
    fn work_queued_for_the_cpu_is_information() {
        let mut trends = pressure(0.0, 0.0, vec![]);
        let p = trends.pressure.as_mut().unwrap();
        p.cpu.some_avg10 = 72.0;
        let f = only(stalls(&with(trends.clone()), &linux()));
        assert_eq!(f.id, "cpu-stall");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.title, "Work waited for the CPU 72% of the last 10 s");
        trends.pressure.as_mut().unwrap().cpu.some_avg10 = 30.0;
        assert!(stalls(&with(trends), &linux()).is_empty());
    }

    #[test]
    fn a_little_pressure_is_quiet_even_when_noisy() {
        for (some, full) in [(0.0, 0.0), (3.5, 0.2), (9.99, 9.0)] {
            assert!(
                stalls(&with(pressure(some, full, vec![])), &linux()).is_empty(),
                "{some}"
            );
        }
    }

    fn limit(kind: &str, hits: u64) -> GroupLimit {
        GroupLimit {
            group: "/system.slice/app.service".into(),
            unit: Some("app.service".into()),
            limit: kind.into(),
            value: "16 processes".into(),
            hits,
            version: 1,
        }
    }

    #[test]
    fn a_group_at_its_process_limit_is_named() {
        let f = only(group_limits(
            &with(Trends {
                limits: vec![limit("pids", 7)],
                ..Trends::default()
            }),
            &linux(),
        ));
        assert_eq!(
            f.title,
            "Service app.service is at its process limit (16 processes): 7 new processes refused"
        );
        assert_eq!(f.subject.as_deref(), Some("app.service"));
    }

    #[test]
    fn light_throttling_is_not_named() {
        let t = Trends {
            limits: vec![limit("cpu", 3), limit("memory.high", 2)],
            ..Trends::default()
        };
        assert!(group_limits(&with(t), &linux()).is_empty());
        let t = Trends {
            limits: vec![limit("cpu", 500)],
            ..Trends::default()
        };
        assert_eq!(only(group_limits(&with(t), &linux())).id, "group-cpu-limit");
    }

    #[test]
    fn an_interrupted_install_offers_to_finish_it() {
        let s = Snapshot {
            packages: Some(PackageState {
                manager: "dpkg".into(),
                interrupted: true,
                locks: vec![],
            }),
            ..quiet()
        };
        let f = only(package_manager(&s, &linux()));
        assert_eq!(f.script.as_deref(), Some("dpkg-configure"));
        assert!(package_manager(&s, &windows())[0].script.is_none());
    }

    #[test]
    fn a_lock_held_long_names_its_holder() {
        let lock = |held_secs| LockHolder {
            path: "/var/lib/dpkg/lock-frontend".into(),
            pid: 900,
            process: "apt-get".into(),
            held_secs,
        };
        let s = |held| Snapshot {
            packages: Some(PackageState {
                manager: "dpkg".into(),
                interrupted: false,
                locks: vec![lock(held)],
            }),
            ..quiet()
        };
        assert!(package_manager(&s(5), &linux()).is_empty());
        let f = only(package_manager(&s(600), &linux()));
        assert_eq!(
            f.title,
            "apt-get (pid 900) has held the dpkg lock for 10m 0s: updates cannot install"
        );
    }
}
