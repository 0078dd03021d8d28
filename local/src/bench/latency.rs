//! Write→receive latencies: a histogram of whole milliseconds (the resolution of the `ts` Ripple
//! stamps at ingest) and its nearest-rank percentiles.

/// Latencies above this are counted here (10 minutes): the histogram stays small.
pub const MAX_MS: u64 = 600_000;

/// A histogram with one bucket per millisecond.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latencies {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, ms: u64) {
        let ms = ms.min(MAX_MS);
        let index = usize::try_from(ms).unwrap_or(usize::MAX);
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0);
        }
        if let Some(slot) = self.counts.get_mut(index) {
            *slot += 1;
        }
        self.total += 1;
        self.sum += u128::from(ms);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Count per millisecond, from 0.
    pub fn buckets(&self) -> &[u64] {
        &self.counts
    }

    /// The nearest-rank `p`-th percentile (0 < p ≤ 100): the smallest latency with at least
    /// `ceil(p/100 · n)` samples at or below it.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(ms as u64);
            }
        }
        self.max()
    }

    pub fn max(&self) -> Option<u64> {
        self.counts.iter().rposition(|c| *c > 0).map(|ms| ms as u64)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        // GIVEN latencies 1..=100 ms, once each
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.record(ms);
        }
        // WHEN asked for percentiles THEN p50 is 50, p95 is 95, p99 is 99, p100 the max
        assert_eq!(l.percentile(50.0), Some(50));
        assert_eq!(l.percentile(95.0), Some(95));
        assert_eq!(l.percentile(99.0), Some(99));
        assert_eq!(l.percentile(100.0), Some(100));
        assert_eq!(l.max(), Some(100));
        assert_eq!(l.mean(), Some(50.5));
    }

    #[test]
    fn a_single_slow_sample_shows_only_in_the_tail() {
        // GIVEN 99 samples of 10 ms and one of 900 ms
        let mut l = Latencies::default();
        for _ in 0..99 {
            l.record(10);
        }
        l.record(900);
        // WHEN asked THEN p99 is still 10 ms and only p100 sees the outlier
        assert_eq!(l.percentile(99.0), Some(10));
        assert_eq!(l.percentile(100.0), Some(900));
    }

    #[test]
    fn nothing_recorded_has_no_percentiles_and_huge_values_are_capped() {
        // GIVEN no samples THEN no percentile
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        // WHEN a sample beyond the cap is recorded THEN it counts at the cap
        l.record(u64::MAX);
        assert_eq!(l.max(), Some(MAX_MS));
        assert_eq!(l.count(), 1);
    }
}
