//! File systems filling up: free space is remembered per file system, and
//! where it shrinks fast enough to run out within [`FILLING_WITHIN_SECS`],
//! the reader is asked for the files open on it; the one growing fastest,
//! with the process holding it, is named.

use std::collections::{HashMap, VecDeque};

use sprijin_proto::message::diag::{GrowingFile, Growth};

use super::{MAX_ENTRIES, RATE_WINDOW_MS};

/// A file system that would be full within this long is "filling", and
/// the files open on it are measured (twice the rules' warning horizon, so
/// the culprit is known by the time a finding names it; looking at every
/// open file is the watcher's one costly reading).
pub const FILLING_WITHIN_SECS: u64 = 2 * 3600;

/// Free space is measured over at least this long before a rate is given.
pub const MIN_SPAN_MS: u64 = 3_000;

/// One file system's free space.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountSpace {
    pub mount_point: String,
    pub available: u64,
}

/// A regular file open on a filling file system, and who holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenFile {
    pub mount_point: String,
    pub path: String,
    pub size: u64,
    pub pid: u32,
    pub process: String,
}

/// Readings of one number over the window: (milliseconds, value).
type Samples = VecDeque<(u64, u64)>;

#[derive(Debug, Default)]
pub struct Tracker {
    space: HashMap<String, Samples>,
    /// By holder and path: the file as last seen, and its sizes.
    files: HashMap<(u32, String), (OpenFile, Samples)>,
}

/// Bytes a second that `samples` (time, value) fell by over the last
/// [`RATE_WINDOW_MS`]; `None` before [`MIN_SPAN_MS`] of them.
fn falling_rate(samples: &Samples) -> Option<f64> {
    let &(last_at, last) = samples.back()?;
    let from = last_at.saturating_sub(RATE_WINDOW_MS);
    let &(first_at, first) = samples.iter().find(|(at, _)| *at >= from)?;
    let span = last_at.checked_sub(first_at)?;
    if span < MIN_SPAN_MS {
        return None;
    }
    Some((first as f64 - last as f64) * 1000.0 / span as f64)
}

fn keep_window(samples: &mut Samples, now: u64) {
    let from = now.saturating_sub(RATE_WINDOW_MS);
    while samples.front().is_some_and(|(at, _)| *at < from) {
        samples.pop_front();
    }
}

impl Tracker {
    pub fn step(&mut self, at_ms: u64, mounts: Vec<MountSpace>, files: Vec<OpenFile>) {
        if !mounts.is_empty() {
            self.space
                .retain(|m, _| mounts.iter().any(|s| &s.mount_point == m));
        }
        for m in mounts {
            let samples = self.space.entry(m.mount_point).or_default();
            samples.push_back((at_ms, m.available));
            keep_window(samples, at_ms);
        }
        let filling = self.filling();
        self.files
            .retain(|(_, _), (f, _)| filling.contains(&f.mount_point));
        let mut seen = Vec::new();
        for f in files {
            let key = (f.pid, f.path.clone());
            seen.push(key.clone());
            let entry = self
                .files
                .entry(key)
                .or_insert_with(|| (f.clone(), VecDeque::new()));
            entry.1.push_back((at_ms, f.size));
            keep_window(&mut entry.1, at_ms);
            entry.0 = f;
        }
        if !seen.is_empty() {
            self.files.retain(|k, _| seen.contains(k));
        }
    }

    /// Bytes a second and seconds left for each file system losing space.
    fn rates(&self) -> Vec<(String, u64, f64, u64)> {
        self.space
            .iter()
            .filter_map(|(mount, samples)| {
                let rate = falling_rate(samples)?;
                let available = samples.back()?.1;
                (rate >= 1.0).then(|| {
                    let secs = (available as f64 / rate) as u64;
                    (mount.clone(), available, rate, secs)
                })
            })
            .filter(|(_, _, _, secs)| *secs <= FILLING_WITHIN_SECS)
            .collect()
    }

    /// The file systems that would be full within [`FILLING_WITHIN_SECS`]
    /// at the rate seen.
    pub fn filling(&self) -> Vec<String> {
        let mut mounts: Vec<String> = self.rates().into_iter().map(|r| r.0).collect();
        mounts.sort();
        mounts
    }

    pub fn growth(&self) -> Vec<Growth> {
        let mut growth: Vec<Growth> = self
            .rates()
            .into_iter()
            .map(|(mount, available, rate, secs)| Growth {
                file: self.fastest_file(&mount),
                mount_point: mount,
                available_bytes: available,
                bytes_per_sec: rate as u64,
                secs_to_full: secs,
            })
            .collect();
        growth.sort_by(|a, b| {
            a.secs_to_full
                .cmp(&b.secs_to_full)
                .then(a.mount_point.cmp(&b.mount_point))
        });
        growth.truncate(MAX_ENTRIES);
        growth
    }

    fn fastest_file(&self, mount: &str) -> Option<GrowingFile> {
        self.files
            .values()
            .filter(|(f, _)| f.mount_point == mount)
            .filter_map(|(f, sizes)| {
                // A growing file's size rises: the falling rate is negative.
                let rate = -falling_rate(sizes)?;
                (rate >= 1.0).then_some((f, rate))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, rate)| GrowingFile {
                path: f.path.clone(),
                size_bytes: f.size,
                bytes_per_sec: rate as u64,
                pid: f.pid,
                process: f.process.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn space(mount: &str, available: u64) -> MountSpace {
        MountSpace {
            mount_point: mount.into(),
            available,
        }
    }

    fn file(path: &str, size: u64, pid: u32) -> OpenFile {
        OpenFile {
            mount_point: "/var".into(),
            path: path.into(),
            size,
            pid,
            process: "logger".into(),
        }
    }

    #[test]
    fn a_file_filling_its_disk_is_named_with_rate_and_time_left() {
        let mut t = Tracker::default();
        for i in 0..10u64 {
            let files = if t.filling().contains(&"/var".to_string()) {
                vec![
                    file("/var/log/app.log", 10 * MIB + i * 2 * MIB, 300),
                    file("/var/log/quiet.log", MIB, 301),
                ]
            } else {
                vec![]
            };
            t.step(
                i * 1000,
                vec![
                    space("/", 50_000 * MIB),
                    space("/var", 400 * MIB - i * 2 * MIB),
                ],
                files,
            );
        }
        let g = t.growth();
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].mount_point, "/var");
        assert_eq!(g[0].bytes_per_sec, 2 * MIB);
        assert_eq!(g[0].secs_to_full, (400 - 18) / 2);
        let f = g[0].file.as_ref().expect("the growing file");
        assert_eq!(f.path, "/var/log/app.log");
        assert_eq!(f.pid, 300);
        assert_eq!(f.bytes_per_sec, 2 * MIB);
    }

    #[test]
    fn noise_and_slow_use_are_not_filling() {
        let mut t = Tracker::default();
        for (i, free) in [100, 101, 99, 100, 100, 99, 101].iter().enumerate() {
            // A gigabyte free, losing at most a few bytes now and then.
            t.step(i as u64 * 1000, vec![space("/", (1 << 30) + free)], vec![]);
        }
        assert!(t.growth().is_empty());
        assert!(t.filling().is_empty());
    }

    #[test]
    fn no_rate_before_a_few_seconds_were_watched() {
        let mut t = Tracker::default();
        t.step(0, vec![space("/", 100 * MIB)], vec![]);
        t.step(1000, vec![space("/", 50 * MIB)], vec![]);
        assert!(t.growth().is_empty());
    }

    #[test]
    fn space_freed_is_not_growth() {
        let mut t = Tracker::default();
        for i in 0..6u64 {
            t.step(i * 1000, vec![space("/", 100 * MIB + i * MIB)], vec![]);
        }
        assert!(t.growth().is_empty());
    }
}
