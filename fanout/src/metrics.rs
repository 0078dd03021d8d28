//! What `fanout` tells CloudWatch: one Embedded Metric Format line per batch
//! ([`ripple_common::emf`]), added by [`crate::lambda::handle_with_metrics`] (what the Lambda
//! binary runs) to the instance's aggregator, which prints the sums about once a second.
//!
//! The write→post lag is measured from the `ts` ingest stamps on every position and message
//! (in the stream image, so fanout never reads the item back) to the moment the batch's posts are
//! done: an upper bound for each event, and exactly what the slowest recipient waited. Records
//! from the first failed one on are left out (they were not posted, Lambda resends them).

use std::time::Duration;

use ripple_common::emf::{MetricLine, fanout as names};

use crate::Report;

/// The write→post lag of a batch's positions and messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Positions and messages measured.
    pub events: usize,
    pub average_ms: f64,
    pub max_ms: u64,
}

/// What one batch came to, as its metrics line reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchMetrics {
    pub records_in: u64,
    pub events_delivered: u64,
    pub posts: u64,
    pub billed_messages: u64,
    pub gone_removed: u64,
    pub throttled_posts: u64,
    pub retries: u64,
    pub failed_posts: u64,
    /// 1 when the batch returned `batchItemFailures`.
    pub failed_records: u64,
    pub malformed_records: u64,
    pub batch_duration: Duration,
    /// None when nothing was delivered (no post, no lag).
    pub lag: Option<Lag>,
}

impl BatchMetrics {
    pub fn new(report: &Report, batch_duration: Duration, lag: Option<Lag>) -> Self {
        let d = &report.delivery;
        Self {
            records_in: report.records as u64,
            events_delivered: report.updates_delivered,
            posts: d.attempts,
            billed_messages: d.billed_messages,
            gone_removed: report.gone_removed as u64,
            throttled_posts: d.throttled_answers,
            retries: d.throttled + d.retried,
            failed_posts: d.failed,
            failed_records: u64::from(report.first_failed.is_some()),
            malformed_records: report.malformed as u64,
            batch_duration,
            lag,
        }
    }

    /// The EMF line, with `function` as the `Function` dimension.
    pub fn line(&self, function: &str, timestamp_ms: u64) -> MetricLine {
        let mut line = MetricLine::new(function, timestamp_ms)
            .count(names::RECORDS_IN, self.records_in)
            .count(names::EVENTS_DELIVERED, self.events_delivered)
            .count(names::POSTS, self.posts)
            .count(names::BILLED_MESSAGES, self.billed_messages)
            .count(names::GONE_REMOVED, self.gone_removed)
            .count(names::THROTTLED_POSTS, self.throttled_posts)
            .count(names::RETRIES, self.retries)
            .count(names::FAILED_POSTS, self.failed_posts)
            .count(names::FAILED_RECORDS, self.failed_records)
            .count(names::MALFORMED_RECORDS, self.malformed_records)
            .milliseconds(
                names::BATCH_DURATION_MS,
                self.batch_duration.as_secs_f64() * 1000.0,
            );
        if let Some(lag) = self.lag {
            line = line
                .milliseconds(names::WRITE_TO_POST_LAG_MS, lag.average_ms)
                .milliseconds(names::WRITE_TO_POST_LAG_MAX_MS, lag.max_ms as f64);
        }
        line
    }
}

/// The lag at `now_ms` of the write times of records before `cutoff` (the first failed record).
pub fn lag(write_times: &[(usize, u64)], cutoff: Option<usize>, now_ms: u64) -> Option<Lag> {
    let cutoff = cutoff.unwrap_or(usize::MAX);
    let lags: Vec<u64> = write_times
        .iter()
        .filter(|(index, _)| *index < cutoff)
        .map(|(_, ts)| now_ms.saturating_sub(*ts))
        .collect();
    let max_ms = *lags.iter().max()?;
    let sum: u128 = lags.iter().map(|l| u128::from(*l)).sum();
    Some(Lag {
        events: lags.len(),
        average_ms: sum as f64 / lags.len() as f64,
        max_ms,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ripple_common::emf;

    use super::*;

    #[test]
    fn lag_is_averaged_and_maxed_up_to_the_first_failed_record() {
        let times = [(0, 1000), (2, 1200), (5, 1500)];
        // all three, at 2000 ms: 1000, 800, 500
        let all = lag(&times, None, 2000).unwrap();
        assert_eq!((all.events, all.max_ms), (3, 1000));
        assert!((all.average_ms - 766.666).abs() < 0.01);
        // record 5 failed: it was not posted
        let before = lag(&times, Some(5), 2000).unwrap();
        assert_eq!(
            (before.events, before.max_ms, before.average_ms),
            (2, 1000, 900.0)
        );
        // a clock behind a stamp never gives a negative lag
        assert_eq!(lag(&[(0, 3000)], None, 2000).unwrap().max_ms, 0);
        assert!(lag(&times, Some(0), 2000).is_none());
    }

    #[test]
    fn the_line_has_every_batch_metric_and_lag_only_when_measured() {
        // GIVEN a report of a batch that delivered and one that failed before posting
        let mut report = Report {
            records: 7,
            updates_delivered: 9,
            gone_removed: 1,
            ..Report::default()
        };
        report.delivery.attempts = 6;
        report.delivery.billed_messages = 5;
        report.delivery.throttled = 2;
        report.delivery.retried = 1;
        report.delivery.throttled_answers = 3;
        report.delivery.failed = 1;
        let lagged = Lag {
            events: 2,
            average_ms: 40.5,
            max_ms: 70,
        };
        let line = BatchMetrics::new(&report, Duration::from_millis(12), Some(lagged))
            .line("ripple-fanout", 5)
            .to_json();
        // THEN the numbers are where the catalog says, with its units
        assert_eq!(line["RecordsIn"], 7);
        assert_eq!(line["EventsDelivered"], 9);
        assert_eq!(line["Posts"], 6);
        assert_eq!(line["BilledMessages"], 5);
        assert_eq!(line["GoneRemoved"], 1);
        assert_eq!(line["ThrottledPosts"], 3);
        assert_eq!(line["Retries"], 3);
        assert_eq!(line["FailedPosts"], 1);
        assert_eq!(line["FailedRecords"], 0);
        assert_eq!(line["BatchDurationMs"], 12);
        assert_eq!(line["WriteToPostLagMs"], 40.5);
        assert_eq!(line["WriteToPostLagMaxMs"], 70);
        for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = m["Name"].as_str().unwrap();
            let spec = emf::lookup("fanout", name).unwrap();
            assert_eq!(m["Unit"], spec.unit.as_str(), "{name}");
        }
        // AND without lag the lag metrics are not declared at all
        report.first_failed = Some(0);
        let failed = BatchMetrics::new(&report, Duration::ZERO, None)
            .line("ripple-fanout", 5)
            .to_json();
        assert_eq!(failed["FailedRecords"], 1);
        assert!(failed.get("WriteToPostLagMs").is_none());
        assert!(!failed.to_string().contains("WriteToPostLag"));
    }
}
