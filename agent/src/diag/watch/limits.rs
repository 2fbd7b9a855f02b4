//! Control groups held at a limit: the reader gives each group's counters
//! of hitting its limits (cgroup v2's `pids.events`, `memory.events` and
//! `cpu.stat`; v1's `pids.events`, `memory.failcnt` and `cpu.stat`), and a
//! counter that rises while watched is a hit.

use std::collections::HashMap;

use sprijin_proto::message::diag::GroupLimit;

/// Most groups listed.
pub const MAX_GROUPS: usize = 10;

/// One counter of one group as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitCounter {
    pub group: String,
    /// "pids", "memory" or "cpu".
    pub limit: String,
    /// The limit, for people.
    pub value: String,
    /// Times the limit was hit since the group began.
    pub count: u64,
    pub version: u8,
}

#[derive(Debug, Default)]
pub struct Tracker {
    first: HashMap<(String, String), u64>,
    latest: Vec<LimitCounter>,
}

impl Tracker {
    pub fn step(&mut self, counters: Vec<LimitCounter>) {
        for c in &counters {
            self.first
                .entry((c.group.clone(), c.limit.clone()))
                .or_insert(c.count);
        }
        self.first.retain(|(group, limit), _| {
            counters
                .iter()
                .any(|c| &c.group == group && &c.limit == limit)
        });
        self.latest = counters;
    }

    /// Groups whose counters rose while watched, most hits first.
    pub fn hits(&self) -> Vec<GroupLimit> {
        let mut hits: Vec<GroupLimit> = self
            .latest
            .iter()
            .filter_map(|c| {
                let first = self.first.get(&(c.group.clone(), c.limit.clone()))?;
                let hits = c.count.checked_sub(*first)?;
                (hits > 0).then(|| GroupLimit {
                    group: c.group.clone(),
                    unit: super::unit_of(&c.group),
                    limit: c.limit.clone(),
                    value: c.value.clone(),
                    hits,
                    version: c.version,
                })
            })
            .collect();
        hits.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.group.cmp(&b.group)));
        hits.truncate(MAX_GROUPS);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pids(group: &str, count: u64) -> LimitCounter {
        LimitCounter {
            group: group.into(),
            limit: "pids".into(),
            value: "16 processes".into(),
            count,
            version: 1,
        }
    }

    #[test]
    fn only_a_counter_rising_while_watched_is_a_hit() {
        let mut t = Tracker::default();
        t.step(vec![
            pids("/old.service", 500),
            pids("/system.slice/cups.service", 0),
        ]);
        t.step(vec![
            pids("/old.service", 500),
            pids("/system.slice/cups.service", 7),
        ]);
        let h = t.hits();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].group, "/system.slice/cups.service");
        assert_eq!(h[0].unit.as_deref(), Some("cups.service"));
        assert_eq!(h[0].hits, 7);
    }

    #[test]
    fn a_group_that_went_away_and_came_back_starts_again() {
        let mut t = Tracker::default();
        t.step(vec![pids("/a", 3)]);
        t.step(vec![]);
        t.step(vec![pids("/a", 9)]);
        assert!(t.hits().is_empty());
    }
}
