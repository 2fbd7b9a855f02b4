//! Programs that keep dying and being started again: every process seen in
//! one reading and gone (or replaced under the same id) in the next is a
//! death, remembered for a minute by its name and its parent. A process
//! that starts and ends between two readings is not seen, so the counts
//! are at least what happened.

use std::collections::{HashMap, VecDeque};

use sprijin_proto::message::diag::Churn;

use super::{MAX_ENTRIES, RATE_WINDOW_MS};

/// A program is listed after this many deaths in the window.
pub const MIN_DEATHS: u64 = 3;

/// One process as the reader saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcEntry {
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    /// When it started, in the kernel's ticks since boot: a new process
    /// under an old id has another.
    pub start: u64,
    /// Its command line, cleaned and cut.
    pub command: String,
    /// The service it runs in, where the service manager says.
    pub unit: Option<String>,
}

#[derive(Debug, Clone)]
struct Death {
    at_ms: u64,
    name: String,
    ppid: u32,
    unit: Option<String>,
}

#[derive(Debug, Default)]
pub struct Tracker {
    alive: HashMap<u32, ProcEntry>,
    deaths: VecDeque<Death>,
    /// When the table was first read.
    first_ms: Option<u64>,
}

impl Tracker {
    pub fn step(&mut self, at_ms: u64, processes: Vec<ProcEntry>) {
        let now: HashMap<u32, ProcEntry> = processes.into_iter().map(|p| (p.pid, p)).collect();
        if self.first_ms.is_some() {
            for (pid, before) in &self.alive {
                let gone = now.get(pid).is_none_or(|p| p.start != before.start);
                if gone {
                    self.deaths.push_back(Death {
                        at_ms,
                        name: before.name.clone(),
                        ppid: before.ppid,
                        unit: before.unit.clone(),
                    });
                }
            }
        }
        self.first_ms.get_or_insert(at_ms);
        self.alive = now;
        let from = at_ms.saturating_sub(RATE_WINDOW_MS);
        while self.deaths.front().is_some_and(|d| d.at_ms < from) {
            self.deaths.pop_front();
        }
    }

    /// The programs that died at least [`MIN_DEATHS`] times in the last
    /// minute under one parent, most deaths first. Watched for less than a
    /// minute, the rate is scaled up from what was watched.
    pub fn churn(&self, now_ms: u64) -> Vec<Churn> {
        let from = now_ms.saturating_sub(RATE_WINDOW_MS);
        let watched = now_ms
            .saturating_sub(self.first_ms.unwrap_or(now_ms))
            .clamp(1, RATE_WINDOW_MS);
        let mut counts: HashMap<(&str, u32), (u64, Option<&String>)> = HashMap::new();
        for d in self.deaths.iter().filter(|d| d.at_ms >= from) {
            let entry = counts.entry((&d.name, d.ppid)).or_insert((0, None));
            entry.0 += 1;
            entry.1 = entry.1.or(d.unit.as_ref());
        }
        let mut churn: Vec<Churn> = counts
            .into_iter()
            .filter(|(_, (n, _))| *n >= MIN_DEATHS)
            .map(|((name, ppid), (n, unit))| {
                let parent = self.alive.get(&ppid);
                Churn {
                    name: name.to_owned(),
                    deaths_seen: n,
                    deaths_per_minute: n.saturating_mul(RATE_WINDOW_MS) / watched,
                    parent_pid: ppid,
                    parent_name: parent.map(|p| p.name.clone()).unwrap_or_default(),
                    parent_command: parent.map(|p| p.command.clone()).unwrap_or_default(),
                    unit: unit.cloned(),
                    last_exit: None,
                }
            })
            .collect();
        churn.sort_by(|a, b| {
            b.deaths_per_minute
                .cmp(&a.deaths_per_minute)
                .then(a.name.cmp(&b.name))
        });
        churn.truncate(MAX_ENTRIES);
        churn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, name: &str, start: u64) -> ProcEntry {
        ProcEntry {
            pid,
            ppid,
            name: name.into(),
            start,
            command: format!("/usr/bin/{name}"),
            unit: None,
        }
    }

    /// A supervisor (pid 10) whose child `crashy` dies every second, a
    /// new one under a new id each time, beside a long-lived editor.
    fn restart_loop(t: &mut Tracker, seconds: u64) {
        for i in 0..seconds {
            t.step(
                i * 1000,
                vec![
                    p(1, 0, "init", 1),
                    p(10, 1, "supervise", 5),
                    p(20, 1, "editor", 6),
                    p(100 + i as u32, 10, "crashy", 100 + i),
                ],
            );
        }
    }

    #[test]
    fn a_restart_loop_names_the_program_and_its_parent() {
        let mut t = Tracker::default();
        restart_loop(&mut t, 20);
        let c = t.churn(19_000);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].name, "crashy");
        assert_eq!(c[0].deaths_seen, 19);
        assert_eq!(c[0].deaths_per_minute, 60);
        assert_eq!(c[0].parent_pid, 10);
        assert_eq!(c[0].parent_name, "supervise");
        assert_eq!(c[0].parent_command, "/usr/bin/supervise");
    }

    #[test]
    fn deaths_older_than_a_minute_are_forgotten() {
        let mut t = Tracker::default();
        restart_loop(&mut t, 5);
        for i in 5..70 {
            t.step(i * 1000, vec![p(1, 0, "init", 1), p(10, 1, "supervise", 5)]);
        }
        assert!(t.churn(69_000).is_empty());
    }

    #[test]
    fn an_id_reused_by_a_new_process_is_a_death() {
        let mut t = Tracker::default();
        for i in 0..4u64 {
            t.step(i * 1000, vec![p(10, 1, "sh", 1), p(50, 10, "job", 10 + i)]);
        }
        assert_eq!(t.churn(3000)[0].deaths_seen, 3);
    }

    #[test]
    fn a_few_ordinary_exits_are_not_churn() {
        let mut t = Tracker::default();
        t.step(
            0,
            vec![p(10, 1, "sh", 1), p(50, 10, "ls", 2), p(51, 10, "cat", 3)],
        );
        t.step(1000, vec![p(10, 1, "sh", 1)]);
        assert!(t.churn(1000).is_empty());
    }

    #[test]
    fn the_first_reading_counts_no_deaths() {
        let mut t = Tracker::default();
        t.step(0, vec![]);
        t.step(1000, vec![p(1, 0, "a", 1)]);
        assert!(t.deaths.is_empty());
    }

    #[test]
    fn a_minute_watched_counts_the_deaths_as_they_are() {
        let mut t = Tracker::default();
        for i in 0..=90u64 {
            // One death every three seconds.
            let job = p(50 + (i / 3) as u32, 10, "job", 100 + i / 3);
            t.step(i * 1000, vec![p(10, 1, "sh", 1), job]);
        }
        let c = t.churn(90_000);
        // Deaths at 30, 33, ... 90 s: the window holds both ends.
        assert_eq!((c[0].deaths_seen, c[0].deaths_per_minute), (21, 21));
    }
}
