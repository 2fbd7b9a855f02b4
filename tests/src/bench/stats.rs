//! Timings collected in an HDR histogram (nanosecond resolution, three
//! significant digits), read back as milliseconds at a quantile.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest timing recorded; anything longer is clamped to it.
const LONGEST: Duration = Duration::from_secs(600);

pub struct Timings {
    histogram: Histogram<u64>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings::new()
    }
}

impl Timings {
    pub fn new() -> Timings {
        Timings {
            // The bounds are constants that hdrhistogram accepts.
            histogram: Histogram::new_with_bounds(1, LONGEST.as_nanos() as u64, 3)
                .expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, elapsed: Duration) {
        let ns = elapsed.as_nanos().clamp(1, LONGEST.as_nanos()) as u64;
        self.histogram.saturating_record(ns);
    }

    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The timing at quantile `q` (0.5 for the median), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1e6
    }

    pub fn max_ms(&self) -> f64 {
        self.histogram.max() as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_back_in_milliseconds() {
        let mut t = Timings::new();
        for ms in 1..=100 {
            t.record(Duration::from_millis(ms));
        }
        assert_eq!(t.len(), 100);
        assert!((t.ms(0.5) - 50.0).abs() < 0.1, "{}", t.ms(0.5));
        assert!((t.ms(0.99) - 99.0).abs() < 0.1, "{}", t.ms(0.99));
        assert!((t.max_ms() - 100.0).abs() < 0.1);
    }
}
