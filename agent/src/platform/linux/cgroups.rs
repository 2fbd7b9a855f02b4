//! Control groups held at a limit, for the watcher: each group's counters
//! of hitting its limits (cgroup v2's `pids.events`, `memory.events` and
//! `cpu.stat`; v1's `pids.events`, `memory.failcnt` and `cpu.stat`), and,
//! where v2 gives it, each group's pressure (memory, disk, CPU).

use std::fs;
use std::path::{Path, PathBuf};

use sprijin_proto::message::diag::Stalled;

use super::watch::{parse_pressure, read_text};
use crate::diag::watch::{LimitCounter, unit_of};

/// Where the kernel mounts the groups.
pub const ROOT: &str = "/sys/fs/cgroup";

/// Most control groups walked.
const MAX_GROUPS: usize = 4096;
/// A group stalling less than this share on memory is not named.
const GROUP_STALL_NAMED_PERCENT: f64 = 1.0;

/// The value of `key` in a flat keyed file (`max 3`, `nr_throttled 12`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The control groups' limit counters, and (v2) the groups stalling on
/// memory.
pub fn limits(root: &Path) -> (Vec<LimitCounter>, Vec<Stalled>) {
    let mut counters = Vec::new();
    let mut stalled = Vec::new();
    if root.join("cgroup.controllers").is_file() {
        for dir in groups(root) {
            let group = group_name(root, &dir);
            v2_counters(&dir, &group, &mut counters);
            if group == "/" {
                continue;
            }
            for (resource, file, what) in [
                ("memory", "memory.pressure", "memory"),
                ("io", "io.pressure", "the disk"),
                ("cpu", "cpu.pressure", "the CPU"),
            ] {
                if let Some(p) = read_text(dir.join(file)).map(|t| parse_pressure(&t))
                    && p.some_avg10 >= GROUP_STALL_NAMED_PERCENT
                {
                    stalled.push(Stalled {
                        resource: resource.into(),
                        who: unit_of(&group).unwrap_or_else(|| group.clone()),
                        measure: format!("waited for {what} {:.0}% of the last 10 s", p.some_avg10),
                        weight: p.some_avg10,
                    });
                }
            }
        }
    } else {
        for (controller, files) in [
            ("pids", v1_pids as fn(&Path, &str, &mut Vec<LimitCounter>)),
            ("memory", v1_memory),
            ("cpu", v1_cpu),
        ] {
            let hierarchy = root.join(controller);
            for dir in groups(&hierarchy) {
                files(&dir, &group_name(&hierarchy, &dir), &mut counters);
            }
        }
    }
    (counters, stalled)
}

/// Every group folder under `root`, `root` included, at most [`MAX_GROUPS`].
fn groups(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if found.len() >= MAX_GROUPS {
            break;
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            todo.extend(
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        found.push(dir);
    }
    found
}

fn group_name(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    format!("/{}", rel.to_string_lossy())
}

fn limit_value(raw: Option<String>, unit: &str) -> Option<String> {
    let raw = raw?;
    let raw = raw.trim();
    (raw != "max" && !raw.is_empty()).then(|| format!("{raw} {unit}"))
}

fn bytes_value(raw: Option<String>) -> Option<String> {
    let bytes: u64 = raw?.trim().parse().ok()?;
    // v1 writes "no limit" as a number near 2^63.
    (bytes < 1 << 62).then(|| format!("{} MiB", bytes >> 20))
}

fn push(
    out: &mut Vec<LimitCounter>,
    group: &str,
    limit: &str,
    value: Option<String>,
    count: Option<u64>,
    version: u8,
) {
    if let (Some(value), Some(count)) = (value, count) {
        out.push(LimitCounter {
            group: group.to_owned(),
            limit: limit.to_owned(),
            value,
            count,
            version,
        });
    }
}

fn v2_counters(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    let events = read_text(dir.join("pids.events"));
    push(
        out,
        group,
        "pids",
        limit_value(read_text(dir.join("pids.max")), "processes"),
        events.and_then(|e| keyed(&e, "max")),
        2,
    );
    let memory = read_text(dir.join("memory.events"));
    push(
        out,
        group,
        "memory",
        bytes_value(read_text(dir.join("memory.max"))),
        memory
            .as_deref()
            .and_then(|e| Some(keyed(e, "max")? + keyed(e, "oom_kill").unwrap_or(0))),
        2,
    );
    push(
        out,
        group,
        "memory.high",
        bytes_value(read_text(dir.join("memory.high"))),
        memory.as_deref().and_then(|e| keyed(e, "high")),
        2,
    );
    let cpu_max =
        read_text(dir.join("cpu.max")).and_then(|m| m.split_whitespace().next().map(str::to_owned));
    push(
        out,
        group,
        "cpu",
        limit_value(cpu_max, "µs of CPU a period"),
        read_text(dir.join("cpu.stat")).and_then(|s| keyed(&s, "nr_throttled")),
        2,
    );
}

fn v1_pids(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    push(
        out,
        group,
        "pids",
        limit_value(read_text(dir.join("pids.max")), "processes"),
        read_text(dir.join("pids.events")).and_then(|e| keyed(&e, "max")),
        1,
    );
}

fn v1_memory(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    push(
        out,
        group,
        "memory",
        bytes_value(read_text(dir.join("memory.limit_in_bytes"))),
        read_text(dir.join("memory.failcnt")).and_then(|c| c.trim().parse().ok()),
        1,
    );
}

fn v1_cpu(dir: &Path, group: &str, out: &mut Vec<LimitCounter>) {
    let quota = read_text(dir.join("cpu.cfs_quota_us")).filter(|q| q.trim() != "-1");
    push(
        out,
        group,
        "cpu",
        limit_value(quota, "µs of CPU a period"),
        read_text(dir.join("cpu.stat")).and_then(|s| keyed(&s, "nr_throttled")),
        1,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_groups_give_their_counters() {
        let root = tempfile::tempdir().unwrap();
        let g = root.path().join("pids/system.slice/app.service");
        fs::create_dir_all(&g).unwrap();
        fs::write(g.join("pids.max"), "16\n").unwrap();
        fs::write(g.join("pids.events"), "max 5\n").unwrap();
        let (counters, _) = limits(root.path());
        assert_eq!(
            counters,
            [LimitCounter {
                group: "/system.slice/app.service".into(),
                limit: "pids".into(),
                value: "16 processes".into(),
                count: 5,
                version: 1,
            }]
        );

        let v2 = tempfile::tempdir().unwrap();
        fs::write(v2.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let g = v2.path().join("web.slice");
        fs::create_dir_all(&g).unwrap();
        fs::write(g.join("memory.max"), "536870912\n").unwrap();
        fs::write(
            g.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(
            g.join("memory.pressure"),
            "some avg10=35.00 avg60=10.00 avg300=1.00 total=5\n",
        )
        .unwrap();
        fs::write(g.join("pids.max"), "max\n").unwrap();
        fs::write(g.join("pids.events"), "max 0\n").unwrap();
        let (counters, stalled) = limits(v2.path());
        let memory = counters.iter().find(|c| c.limit == "memory").unwrap();
        assert_eq!(
            (memory.count, memory.value.as_str(), memory.version),
            (4, "512 MiB", 2)
        );
        assert!(
            counters.iter().all(|c| c.limit != "pids"),
            "no limit set: {counters:?}"
        );
        assert_eq!(stalled.len(), 1);
        assert_eq!(stalled[0].who, "web.slice");
        assert_eq!(stalled[0].measure, "waited for memory 35% of the last 10 s");
    }
}
