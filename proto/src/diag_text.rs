//! Plain-text renderings of a diagnostics snapshot and its findings, for
//! people: the agent's `diag` command prints them, the console shows them and
//! a technician pastes them into a ticket.
//!
//! Everything here is a pure function of the message types, so the same
//! input always gives the same text and each piece is tested alone. Sizes are
//! binary units ("3.2 GiB"), durations keep their two largest units
//! ("4d 3h"), and shares are whole percents rounded down, so "90%" never
//! stands for 89.6.
//!
//! Every string in a snapshot or a finding comes from the agent's machine
//! (a host name, a process's command line, a disk's mount point) and may be
//! hostile, so each passes through [`clean_line`] on its way in: the text
//! printed here holds no control character other than its own line breaks.

use std::fmt::Write as _;

use crate::text::clean_line;

use crate::message::diag::{
    DiagReport, Finding, PersonRun, ProcessInfo, ResolutionOutcome, Snapshot,
};

/// What [`findings`] says when there is nothing to report.
pub const NO_FINDINGS: &str = "no findings: nothing looks wrong";

/// Widest command line shown in a process table; longer ones are cut.
const COMMAND_COLUMN_CHARS: usize = 60;

/// A summary of the machine for a ticket: host, OS, uptime, CPU, memory,
/// swap, disks, network, temperatures and processes, then the findings most
/// severe first.
pub fn overview(s: &Snapshot, f: &[Finding]) -> String {
    let mut out = machine(s);
    let _ = writeln!(out);
    let _ = writeln!(out, "Findings");
    for line in findings(f).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// A whole report as the technician reads it: the [`overview`], then the
/// repairs the person ran alone since the previous session, if any.
pub fn report(r: &DiagReport) -> String {
    let mut out = overview(&r.snapshot, &r.findings);
    if !r.person_runs.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Run by the person since the last session");
        for line in person_runs(&r.person_runs).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// One line per repair the person ran alone: when, which script, how it
/// ended and what the check after it found.
pub fn person_runs(runs: &[PersonRun]) -> String {
    let mut out = String::new();
    for r in runs {
        let checked = after_check(r);
        let _ = writeln!(
            out,
            "{}  {} ({}): {}{checked}",
            clean_line(&r.started_at),
            clean_line(&r.script),
            clean_line(&r.title),
            clean_line(&r.status),
        );
    }
    out
}

/// What the check after a person's run found, to follow its status: empty
/// when there was no check (the run did not finish).
pub fn after_check(r: &PersonRun) -> &'static str {
    match r.fixed {
        Some(true) => ", the finding was gone after it",
        Some(false) => ", the finding was still there after it",
        None => "",
    }
}

/// The machine's state alone, without findings: host, OS, uptime, CPU,
/// memory, swap, disks, network, temperatures and processes.
pub fn machine(s: &Snapshot) -> String {
    let mut out = String::new();
    let h = &s.host;
    let _ = writeln!(out, "Host      {}", or_unknown(&h.name));
    if s.taken_at_ms > 0 {
        let _ = writeln!(
            out,
            "Taken     {}",
            crate::utc::readable(s.taken_at_ms / 1000)
        );
    }
    let _ = writeln!(
        out,
        "OS        {} {} (kernel {}, {})",
        or_unknown(&h.os_name),
        clean_line(&h.os_version),
        or_unknown(&h.kernel),
        or_unknown(&h.arch)
    );
    let _ = writeln!(out, "Uptime    {}", human_duration(h.uptime_secs));
    if !s.users.is_empty() {
        let _ = writeln!(out, "Users     {}", clean_line(&s.users.join(", ")));
    }

    let c = &s.cpu;
    let cores = match c.physical_cores {
        Some(p) => format!("{} logical cores ({} physical)", c.logical_cores, p),
        None => format!("{} logical cores", c.logical_cores),
    };
    let _ = writeln!(
        out,
        "CPU       {}, {}, {:.1}% busy, load {:.2} {:.2} {:.2}",
        or_unknown(&c.model),
        cores,
        c.usage_percent,
        c.load_average.one,
        c.load_average.five,
        c.load_average.fifteen
    );

    let m = &s.memory;
    let _ = writeln!(
        out,
        "Memory    {} of {} used ({}), {} available",
        human_bytes(m.used_bytes),
        human_bytes(m.total_bytes),
        whole_percent(m.used_bytes, m.total_bytes),
        human_bytes(m.available_bytes)
    );
    if s.swap.total_bytes == 0 {
        let _ = writeln!(out, "Swap      none");
    } else {
        let _ = writeln!(
            out,
            "Swap      {} of {} used ({})",
            human_bytes(s.swap.used_bytes),
            human_bytes(s.swap.total_bytes),
            whole_percent(s.swap.used_bytes, s.swap.total_bytes)
        );
    }

    let _ = writeln!(out, "Disks");
    if s.disks.is_empty() {
        let _ = writeln!(out, "  none reported");
    }
    for d in &s.disks {
        let used = d.total_bytes.saturating_sub(d.available_bytes);
        let mut flags = String::new();
        if d.read_only {
            flags.push_str(", read-only");
        }
        if d.removable {
            flags.push_str(", removable");
        }
        if d.inodes_total > 0 {
            let used_inodes = d.inodes_total.saturating_sub(d.inodes_free);
            let _ = write!(
                flags,
                ", inodes {} used",
                whole_percent(used_inodes, d.inodes_total)
            );
        }
        let _ = writeln!(
            out,
            "  {:<20} {:<8} {} of {} used ({}), {} free{}",
            clean_line(&d.mount_point),
            clean_line(&d.file_system),
            human_bytes(used),
            human_bytes(d.total_bytes),
            whole_percent(used, d.total_bytes),
            human_bytes(d.available_bytes),
            flags
        );
    }

    let _ = writeln!(out, "Network");
    if s.networks.is_empty() {
        let _ = writeln!(out, "  none reported");
    }
    for n in &s.networks {
        let addresses = if n.addresses.is_empty() {
            "no address".to_string()
        } else {
            clean_line(&n.addresses.join(" ")).into_owned()
        };
        let _ = writeln!(
            out,
            "  {:<12} {}  in {}  out {}  errors {} in / {} out",
            clean_line(&n.name),
            addresses,
            human_bytes(n.bytes_in),
            human_bytes(n.bytes_out),
            n.errors_in,
            n.errors_out
        );
    }

    network_state(&mut out, s);

    if !s.temperatures.is_empty() {
        let _ = writeln!(out, "Temperatures");
        for t in &s.temperatures {
            match t.critical_celsius {
                Some(c) => {
                    let _ = writeln!(
                        out,
                        "  {:<24} {:.1} °C (critical {:.1} °C)",
                        clean_line(&t.label),
                        t.celsius,
                        c
                    );
                }
                None => {
                    let _ = writeln!(out, "  {:<24} {:.1} °C", clean_line(&t.label), t.celsius);
                }
            }
        }
    }

    let p = &s.processes;
    let _ = writeln!(out, "Processes {} (zombies: {})", p.count, p.zombies);
    process_troubles(&mut out, s);
    watched(&mut out, s);
    out
}

/// What the agent's watcher saw over time, when it watched.
fn watched(out: &mut String, s: &Snapshot) {
    let Some(t) = &s.trends else {
        return;
    };
    let mut line = format!(
        "Watched   {}: {} processes started a minute",
        human_duration(t.watched_secs),
        t.forks_per_minute
    );
    if let Some(p) = &t.pressure {
        let _ = write!(
            line,
            "; work waited for CPU {:.0}%, memory {:.0}%, disk {:.0}% of the last 10 s",
            p.cpu.some_avg10, p.memory.some_avg10, p.io.some_avg10
        );
    }
    let _ = writeln!(out, "{line}");
}

/// Routes, name resolution, services and the clock, each only when known.
fn network_state(out: &mut String, s: &Snapshot) {
    if let Some(r) = &s.routes {
        let all: Vec<&String> = r.ipv4_default.iter().chain(&r.ipv6_default).collect();
        let routes = if all.is_empty() {
            "no default route".to_string()
        } else {
            let all: Vec<&str> = all.iter().map(|r| r.as_str()).collect();
            format!("default {}", all.join(", "))
        };
        let _ = writeln!(out, "Routes    {}", clean_line(&routes));
    }
    if let Some(n) = &s.name_resolution {
        let resolvers = if n.resolvers.is_empty() {
            "none configured".to_string()
        } else {
            format!("{} configured", n.resolvers.join(", "))
        };
        let by = n.answered_by.as_deref().unwrap_or("?");
        let outcome = match n.outcome {
            ResolutionOutcome::Resolved => format!("resolved by {by} in {} ms", n.elapsed_ms),
            ResolutionOutcome::NameDoesNotExist => format!("{by} says it does not exist"),
            ResolutionOutcome::ResolverFailed => format!("{by} answers with an error"),
            ResolutionOutcome::NoResolverAnswers => {
                format!("no resolver answers within {} ms", n.elapsed_ms)
            }
            ResolutionOutcome::NoResolverConfigured => "no resolver to ask".to_string(),
        };
        let _ = writeln!(
            out,
            "Names     {}: {} ({})",
            clean_line(&n.name),
            clean_line(&outcome),
            clean_line(&resolvers)
        );
    }
    if let Some(sv) = &s.services {
        if sv.failed_units.is_empty() && sv.stopped_automatic.is_empty() {
            let _ = writeln!(out, "Services  none failed");
        }
        if !sv.failed_units.is_empty() {
            let _ = writeln!(
                out,
                "Services  {} failed: {}",
                sv.failed_units.len(),
                clean_line(&sv.failed_units.join(", "))
            );
        }
        if !sv.stopped_automatic.is_empty() {
            let names: Vec<&str> = sv
                .stopped_automatic
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            let _ = writeln!(
                out,
                "Services  {} automatic stopped: {}",
                names.len(),
                clean_line(&names.join(", "))
            );
        }
    }
    match s.clock_synchronized {
        Some(true) => {
            let _ = writeln!(out, "Clock     synchronised");
        }
        Some(false) => {
            let _ = writeln!(out, "Clock     not synchronised");
        }
        None => {}
    }
    if let Some(c) = &s.relay_clock {
        let _ = writeln!(
            out,
            "Clock     {} against relay {}",
            clock_offset(c.offset_secs),
            clean_line(&c.relay)
        );
    }
    match &s.pending_reboot {
        Some(reasons) if !reasons.is_empty() => {
            let _ = writeln!(
                out,
                "Restart   pending: {}",
                clean_line(&reasons.join(", "))
            );
        }
        _ => {}
    }
}

/// "12s ahead", "3m 20s behind", "on time" for a clock offset.
pub fn clock_offset(offset_secs: i64) -> String {
    let amount = human_duration(offset_secs.unsigned_abs());
    match offset_secs {
        0 => "on time".to_string(),
        o if o > 0 => format!("{amount} ahead"),
        _ => format!("{amount} behind"),
    }
}

/// Deleted files held open, processes near their open-file limit or stuck
/// in uninterruptible sleep, and out-of-memory kills, each only when any.
fn process_troubles(out: &mut String, s: &Snapshot) {
    if !s.deleted_open.is_empty() {
        let _ = writeln!(out, "Deleted files still open");
        for d in &s.deleted_open {
            let _ = writeln!(
                out,
                "  {} (pid {}) {} in {} file(s) on {}, largest {}",
                clean_line(&d.name),
                d.pid,
                human_bytes(d.bytes),
                d.files,
                or_unknown(&d.mount_point),
                clean_line(&shorten(&d.largest_path, COMMAND_COLUMN_CHARS))
            );
        }
    }
    if !s.open_files.is_empty() {
        let _ = writeln!(out, "Open files against the limit");
        for o in &s.open_files {
            let _ = writeln!(
                out,
                "  {} (pid {}) {} of {} ({})",
                clean_line(&o.name),
                o.pid,
                o.open,
                o.soft_limit,
                whole_percent(o.open, o.soft_limit)
            );
        }
    }
    if !s.stuck_processes.is_empty() {
        let _ = writeln!(out, "Waiting on input or output (state D)");
        for p in &s.stuck_processes {
            let _ = writeln!(
                out,
                "  {} (pid {}) for {}",
                clean_line(&p.name),
                p.pid,
                human_duration(p.stuck_secs)
            );
        }
    }
    if !s.oom_kills.is_empty() {
        let _ = writeln!(out, "Killed for lack of memory");
        for k in &s.oom_kills {
            let _ = writeln!(
                out,
                "  {} (pid {}) at {}, {}{}",
                clean_line(&k.name),
                k.pid,
                crate::utc::readable(k.at_secs),
                human_bytes(k.rss_bytes),
                if k.limited_group { ", group limit" } else { "" }
            );
        }
    }
}

/// Two tables, the processes busiest on CPU and those holding the most
/// memory.
pub fn processes(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Top by CPU ({} processes, zombies: {})",
        s.processes.count, s.processes.zombies
    );
    process_table(&mut out, &s.processes.top_cpu);
    let _ = writeln!(out);
    let _ = writeln!(out, "Top by memory");
    process_table(&mut out, &s.processes.top_memory);
    out
}

fn process_table(out: &mut String, rows: &[ProcessInfo]) {
    if rows.is_empty() {
        let _ = writeln!(out, "  none reported");
        return;
    }
    let _ = writeln!(
        out,
        "  {:>7} {:>6} {:>10} {:<10} {:<16} COMMAND",
        "PID", "CPU%", "MEMORY", "USER", "NAME"
    );
    for p in rows {
        let command = if p.command.is_empty() {
            p.name.as_str()
        } else {
            p.command.as_str()
        };
        let _ = writeln!(
            out,
            "  {:>7} {:>6.1} {:>10} {:<10} {:<16} {}",
            p.pid,
            p.cpu_percent,
            human_bytes(p.memory_bytes),
            shorten(&clean_line(p.user.as_deref().unwrap_or("?")), 10),
            shorten(&clean_line(&p.name), 16),
            shorten(&clean_line(command), COMMAND_COLUMN_CHARS)
        );
    }
}

/// The findings, most severe first, each with its evidence and the script
/// suggested for it; [`NO_FINDINGS`] when there are none.
pub fn findings(f: &[Finding]) -> String {
    if f.is_empty() {
        return format!("{NO_FINDINGS}\n");
    }
    let mut sorted: Vec<&Finding> = f.iter().collect();
    // Stable, so findings of equal severity keep the order the rules gave.
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut out = String::new();
    for finding in sorted {
        let _ = writeln!(
            out,
            "[{}] {}",
            finding.severity.as_str().to_uppercase(),
            clean_line(&finding.title)
        );
        for e in &finding.evidence {
            let _ = writeln!(
                out,
                "    {}: {}",
                clean_line(&e.label),
                clean_line(&e.value)
            );
        }
        if let Some(script) = &finding.script {
            let _ = writeln!(out, "    suggested script: {}", clean_line(script));
        }
    }
    out
}

/// A byte count in binary units with one decimal: "512 B", "3.2 GiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Moving up at 1023.95 keeps "1024.0 KiB" from ever being printed.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in its two largest units: "45s", "12m 5s", "3h 20m", "4d 3h".
pub fn human_duration(secs: u64) -> String {
    let days = secs / 86_400;
    let hours = secs % 86_400 / 3_600;
    let minutes = secs % 3_600 / 60;
    let seconds = secs % 60;
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `part` as a share of `whole`, 0 to 100; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `part` of `whole` as a whole percent rounded down: "97%".
pub fn whole_percent(part: u64, whole: u64) -> String {
    format!("{}%", percent(part, whole).floor())
}

/// The field, cleaned, or "unknown" when the machine gave none.
fn or_unknown(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_empty() {
        "unknown".into()
    } else {
        clean_line(s)
    }
}

/// At most `max` characters, ending in "…" when shortened; never splits a
/// character.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut short: String = s.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::diag::{
        Cpu, DeletedOpenFiles, Disk, Evidence, Host, LoadAverage, Memory, NameResolution,
        NetworkInterface, OomKill, OpenFileUse, Processes, Routes, Services, Severity,
        StuckProcess, Swap, Temperature,
    };

    const GIB: u64 = 1 << 30;

    fn snapshot() -> Snapshot {
        Snapshot {
            taken_at_ms: 1_700_000_000_000,
            host: Host {
                name: "desk-12".into(),
                os_name: "Debian GNU/Linux".into(),
                os_version: "12".into(),
                kernel: "6.1.0-18-amd64".into(),
                arch: "x86_64".into(),
                uptime_secs: 4 * 86_400 + 3 * 3_600 + 59,
                boot_time_secs: 0,
            },
            cpu: Cpu {
                model: "Example CPU".into(),
                physical_cores: Some(4),
                logical_cores: 8,
                usage_percent: 12.5,
                per_core_percent: vec![12.5; 8],
                load_average: LoadAverage {
                    one: 1.0,
                    five: 0.5,
                    fifteen: 0.25,
                },
            },
            memory: Memory {
                total_bytes: 16 * GIB,
                used_bytes: 4 * GIB,
                available_bytes: 12 * GIB,
            },
            swap: Swap {
                total_bytes: 2 * GIB,
                used_bytes: GIB / 2,
            },
            disks: vec![Disk {
                mount_point: "/".into(),
                device: "/dev/sda1".into(),
                file_system: "ext4".into(),
                total_bytes: 100 * GIB,
                available_bytes: 2 * GIB,
                ..Disk::default()
            }],
            networks: vec![NetworkInterface {
                name: "eth0".into(),
                addresses: vec!["192.168.1.20/24".into()],
                bytes_in: 3 * GIB,
                ..NetworkInterface::default()
            }],
            processes: Processes {
                count: 120,
                zombies: 1,
                top_cpu: vec![ProcessInfo {
                    pid: 4242,
                    name: "spin".into(),
                    command: "spin --forever".into(),
                    user: Some("ana".into()),
                    cpu_percent: 99.5,
                    memory_bytes: 3 * 1024 * 1024,
                    start_time_secs: 0,
                    status: "Runnable".into(),
                }],
                top_memory: vec![],
            },
            temperatures: vec![Temperature {
                label: "Package id 0".into(),
                celsius: 61.0,
                critical_celsius: Some(100.0),
            }],
            users: vec!["ana".into()],
            ..Snapshot::default()
        }
    }

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            severity,
            title: format!("title of {id}"),
            evidence: vec![Evidence::new("measured", "42%")],
            subject: None,
            script: Some(format!("script-for-{id}")),
            params: Vec::new(),
        }
    }

    #[test]
    fn the_report_lists_what_the_person_ran_alone_after_the_findings() {
        let mut r = DiagReport {
            snapshot: snapshot(),
            findings: Vec::new(),
            person_runs: Vec::new(),
        };
        assert!(!report(&r).contains("Run by the person"));
        r.person_runs = vec![
            PersonRun {
                started_at: "2026-12-05T01:42:21.890Z".into(),
                script: "clear-my-cache".into(),
                title: "Delete old files from your cache".into(),
                status: "exited with status 0".into(),
                fixed: Some(true),
            },
            PersonRun {
                started_at: "2026-12-05T02:00:00.000Z".into(),
                script: "flush-dns".into(),
                title: "Flush the DNS cache\u{1b}[2J".into(),
                status: "did not finish: the agent stopped during it".into(),
                fixed: None,
            },
        ];
        let text = report(&r);
        let (_, runs) = text
            .split_once("Run by the person since the last session\n")
            .unwrap();
        let lines: Vec<&str> = runs.lines().collect();
        assert_eq!(
            lines,
            [
                "  2026-12-05T01:42:21.890Z  clear-my-cache (Delete old files from your cache): exited with status 0, the finding was gone after it",
                "  2026-12-05T02:00:00.000Z  flush-dns (Flush the DNS cache\u{fffd}[2J): did not finish: the agent stopped during it",
            ]
        );
    }

    #[test]
    fn what_was_watched_is_one_line_and_absent_when_nothing_watched() {
        use crate::message::diag::{Pressure, Stall, Trends};
        let mut s = snapshot();
        assert!(!machine(&s).contains("Watched"));
        s.trends = Some(Trends {
            watched_secs: 75,
            forks_per_minute: 820,
            pressure: Some(Pressure {
                memory: Stall {
                    some_avg10: 12.4,
                    ..Stall::default()
                },
                ..Pressure::default()
            }),
            ..Trends::default()
        });
        assert!(
            machine(&s).contains(
                "Watched   1m 15s: 820 processes started a minute; work waited for CPU 0%, memory 12%, disk 0% of the last 10 s\n"
            ),
            "{}",
            machine(&s)
        );
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * GIB + GIB / 5), "3.2 GiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn durations_keep_two_units() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(12 * 60 + 5), "12m 5s");
        assert_eq!(human_duration(3 * 3600 + 20 * 60 + 7), "3h 20m");
        assert_eq!(human_duration(4 * 86_400 + 3 * 3600 + 59), "4d 3h");
    }

    #[test]
    fn percents_round_down_and_survive_zero() {
        assert_eq!(whole_percent(0, 0), "0%");
        assert_eq!(whole_percent(896, 1000), "89%");
        assert_eq!(whole_percent(1, 1), "100%");
    }

    #[test]
    fn overview_covers_every_section_and_the_findings() {
        let text = overview(
            &snapshot(),
            &[finding("disk-nearly-full", Severity::Warning)],
        );
        for expected in [
            "Host      desk-12",
            "Taken     2023-11-14 22:13:20 UTC",
            "OS        Debian GNU/Linux 12 (kernel 6.1.0-18-amd64, x86_64)",
            "Uptime    4d 3h",
            "Users     ana",
            "8 logical cores (4 physical), 12.5% busy, load 1.00 0.50 0.25",
            "Memory    4.0 GiB of 16.0 GiB used (25%), 12.0 GiB available",
            "Swap      512.0 MiB of 2.0 GiB used (25%)",
            "98.0 GiB of 100.0 GiB used (98%), 2.0 GiB free",
            "eth0         192.168.1.20/24  in 3.0 GiB",
            "Package id 0",
            "61.0 °C (critical 100.0 °C)",
            "Processes 120 (zombies: 1)",
            "[WARNING] title of disk-nearly-full",
            "suggested script: script-for-disk-nearly-full",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let host = text.find("Host").unwrap();
        let disks = text.find("Disks").unwrap();
        let findings = text.find("Findings").unwrap();
        assert!(host < disks && disks < findings);
    }

    #[test]
    fn overview_of_an_empty_snapshot_says_unknown_not_blank() {
        let text = overview(&Snapshot::default(), &[]);
        assert!(text.contains("Host      unknown"));
        assert!(text.contains("Swap      none"));
        assert!(text.contains("none reported"));
        assert!(text.contains(NO_FINDINGS));
    }

    #[test]
    fn findings_list_most_severe_first_with_evidence() {
        let text = findings(&[
            finding("long-uptime", Severity::Info),
            finding("disk-nearly-full", Severity::Critical),
            finding("cpu-saturated", Severity::Warning),
        ]);
        let critical = text.find("[CRITICAL] title of disk-nearly-full").unwrap();
        let warning = text.find("[WARNING] title of cpu-saturated").unwrap();
        let info = text.find("[INFO] title of long-uptime").unwrap();
        assert!(critical < warning && warning < info, "{text}");
        assert!(text.contains("    measured: 42%"));
        assert!(text.contains("    suggested script: script-for-long-uptime"));
    }

    #[test]
    fn shortening_keeps_characters_whole() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("ăbcd", 3), "ăb…");
        assert_eq!(shorten("abc", 0), "");
        assert_eq!(shorten("abc", 1), "…");
    }

    #[test]
    fn no_findings_says_so() {
        assert_eq!(findings(&[]), "no findings: nothing looks wrong\n");
    }

    #[test]
    fn process_table_shows_both_lists() {
        let mut s = snapshot();
        s.processes.top_memory = s.processes.top_cpu.clone();
        s.processes.top_cpu[0].command = "x".repeat(200);
        let text = processes(&s);
        assert!(text.starts_with("Top by CPU (120 processes, zombies: 1)"));
        assert!(text.contains("Top by memory"));
        assert!(text.contains("   4242   99.5    3.0 MiB ana        spin"));
        assert!(text.contains("spin --forever"));
        assert!(text.contains(&format!("{}…", "x".repeat(COMMAND_COLUMN_CHARS - 1))));
        assert!(!text.contains(&"x".repeat(COMMAND_COLUMN_CHARS)));
    }

    #[test]
    fn empty_process_lists_say_so() {
        let text = processes(&Snapshot::default());
        assert_eq!(text.matches("none reported").count(), 2);
    }

    /// True when `text` holds no control character but line breaks, and no
    /// bidirectional mark.
    fn terminal_safe(text: &str) -> bool {
        crate::text::clean_text(text) == text && !text.contains('\t')
    }

    #[test]
    fn causes_behind_the_symptoms_are_shown_when_known() {
        let mut s = snapshot();
        assert!(
            !machine(&s).contains("Routes"),
            "unknown parts are left out"
        );
        s.disks[0].inodes_total = 100;
        s.disks[0].inodes_free = 0;
        s.routes = Some(Routes::default());
        s.name_resolution = Some(NameResolution {
            name: "example.com".into(),
            resolvers: vec!["10.0.0.53".into()],
            outcome: ResolutionOutcome::NoResolverAnswers,
            answered_by: None,
            elapsed_ms: 2000,
            checked_at_ms: 0,
        });
        s.services = Some(Services {
            failed_units: vec!["cups.service".into()],
            ..Services::default()
        });
        s.clock_synchronized = Some(false);
        s.deleted_open = vec![DeletedOpenFiles {
            pid: 9,
            name: "tail".into(),
            mount_point: "/srv/t".into(),
            files: 1,
            bytes: 6 * 1024 * 1024,
            largest_path: "/srv/t/big".into(),
        }];
        s.open_files = vec![OpenFileUse {
            pid: 10,
            name: "bash".into(),
            open: 64,
            soft_limit: 64,
        }];
        s.stuck_processes = vec![StuckProcess {
            pid: 11,
            name: "cp".into(),
            command: "cp".into(),
            stuck_secs: 125,
        }];
        s.oom_kills = vec![OomKill {
            pid: 12,
            name: "tail".into(),
            at_secs: 1_700_000_000,
            rss_bytes: 20 * 1024 * 1024,
            limited_group: true,
        }];
        let text = machine(&s);
        for line in [
            "  /                    ext4     98.0 GiB of 100.0 GiB used (98%), 2.0 GiB free, inodes 100% used",
            "Routes    no default route",
            "Names     example.com: no resolver answers within 2000 ms (10.0.0.53 configured)",
            "Services  1 failed: cups.service",
            "Clock     not synchronised",
            "  tail (pid 9) 6.0 MiB in 1 file(s) on /srv/t, largest /srv/t/big",
            "  bash (pid 10) 64 of 64 (100%)",
            "  cp (pid 11) for 2m 5s",
            "  tail (pid 12) at 2023-11-14 22:13:20 UTC, 20.0 MiB, group limit",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn hostile_strings_from_the_machine_are_neutralised() {
        let evil = "x\x1b]0;pwned\x07\x1b[2J\u{202E}\r\nfake line";
        let mut s = snapshot();
        s.host.name = evil.into();
        s.host.os_name = evil.into();
        s.host.os_version = evil.into();
        s.host.kernel = evil.into();
        s.host.arch = evil.into();
        s.cpu.model = evil.into();
        s.users = vec![evil.into()];
        s.disks[0].mount_point = evil.into();
        s.disks[0].file_system = evil.into();
        s.networks[0].name = evil.into();
        s.networks[0].addresses = vec![evil.into()];
        s.temperatures[0].label = evil.into();
        s.temperatures.push(Temperature {
            label: evil.into(),
            celsius: 1.0,
            critical_celsius: None,
        });
        s.deleted_open = vec![DeletedOpenFiles {
            name: evil.into(),
            mount_point: evil.into(),
            largest_path: evil.into(),
            ..DeletedOpenFiles::default()
        }];
        s.open_files = vec![OpenFileUse {
            name: evil.into(),
            ..OpenFileUse::default()
        }];
        s.stuck_processes = vec![StuckProcess {
            name: evil.into(),
            ..StuckProcess::default()
        }];
        s.oom_kills = vec![OomKill {
            name: evil.into(),
            ..OomKill::default()
        }];
        s.routes = Some(Routes {
            ipv4_default: vec![evil.into()],
            ipv6_default: vec![],
        });
        s.name_resolution = Some(NameResolution {
            name: evil.into(),
            resolvers: vec![evil.into()],
            answered_by: Some(evil.into()),
            outcome: ResolutionOutcome::NameDoesNotExist,
            ..NameResolution::default()
        });
        s.services = Some(Services {
            failed_units: vec![evil.into()],
            ..Services::default()
        });
        let p = &mut s.processes.top_cpu[0];
        p.name = evil.into();
        p.command = evil.into();
        p.user = Some(evil.into());
        s.processes.top_memory = s.processes.top_cpu.clone();
        let f = Finding {
            id: "x".into(),
            severity: Severity::Warning,
            title: evil.into(),
            evidence: vec![Evidence::new(evil, evil)],
            subject: None,
            script: Some(evil.into()),
            params: Vec::new(),
        };
        for text in [
            overview(&s, std::slice::from_ref(&f)),
            processes(&s),
            findings(&[f]),
        ] {
            assert!(terminal_safe(&text), "{text:?}");
            assert!(text.contains("x�]0;pwned��[2J�"), "{text}");
            // A line break in a field cannot start a line of its own.
            assert!(!text.lines().any(|l| l.starts_with("fake line")), "{text}");
        }
    }

    #[test]
    fn windows_services_restart_and_relay_clock_are_shown() {
        let s = Snapshot {
            services: Some(Services {
                stopped_automatic: vec![crate::message::diag::StoppedService {
                    name: "Spooler".into(),
                    display_name: "Print Spooler".into(),
                    exit_code: 0,
                }],
                ..Services::default()
            }),
            pending_reboot: Some(vec!["Windows Update".into()]),
            relay_clock: Some(crate::message::diag::RelayClock {
                offset_secs: -400,
                relay: "r:7420".into(),
            }),
            ..Snapshot::default()
        };
        let text = overview(&s, &[]);
        for line in [
            "Services  1 automatic stopped: Spooler",
            "Clock     6m 40s behind against relay r:7420",
            "Restart   pending: Windows Update",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
        assert!(!text.contains("none failed"));
        assert_eq!(clock_offset(0), "on time");
        assert_eq!(clock_offset(12), "12s ahead");
    }
}
