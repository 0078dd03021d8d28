//! Counters of `ripple dev`, served at `GET /metrics` in Prometheus text format and summarised
//! by `--stats`. The fanout counters are the numbers of the EMF line fanout prints in Lambda
//! (`fanout::metrics::BatchMetrics`); refusals are also counted per error code, as ingest's
//! `Refused` metric is per `Code`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fanout::metrics::BatchMetrics;

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// Monotonic counters (cheap to clone; all clones share them).
        #[derive(Debug, Clone, Default)]
        pub struct Metrics {
            inner: Arc<Counters>,
            /// Shared with ingest's state, which counts its membership reads.
            pub membership_reads: Arc<AtomicU64>,
            refused_by_code: Arc<Mutex<BTreeMap<String, u64>>>,
        }

        #[derive(Debug, Default)]
        struct Counters { $($name: AtomicU64,)* }

        impl Metrics {
            /// Every counter as (name, help, value).
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                let mut all = vec![$((stringify!($name), $help, self.inner.$name.load(Ordering::Relaxed)),)*];
                all.push((
                    "membership_reads_total",
                    "strongly consistent membership reads by ingest",
                    self.membership_reads.load(Ordering::Relaxed),
                ));
                all
            }
        }
    };
}

counters! {
    connects_total: "WebSocket connections accepted by $connect",
    connects_rejected_total: "WebSocket upgrades rejected by $connect",
    disconnects_total: "WebSocket connections closed",
    frames_accepted_total: "client frames ingested",
    frames_refused_total: "client frames refused with an error frame",
    frames_failed_total: "client frames that failed with an internal error",
    posts_delivered_total: "@connections POSTs delivered to a socket",
    post_bytes_total: "bytes delivered by @connections POSTs",
    posts_gone_total: "@connections POSTs answered 410",
    posts_faulted_total: "@connections POSTs answered by fault injection",
    fanout_batches_total: "stream batches handed to fanout",
    fanout_records_total: "stream records handed to fanout",
    fanout_updates_delivered_total: "events delivered by fanout, summed over recipients",
    fanout_failed_batches_total: "batches fanout reported batchItemFailures for",
    fanout_gone_removed_total: "gone connections fanout removed",
    fanout_posts_total: "@connections POSTs fanout made, retries included",
    fanout_billed_messages_total: "API Gateway messages billed for fanout's delivered frames (32 KB units)",
    fanout_throttled_posts_total: "fanout POSTs answered 429",
    fanout_retries_total: "fanout POSTs retried (429, 5xx, timeouts)",
    fanout_failed_posts_total: "frames fanout gave up on after its retries",
    fanout_malformed_records_total: "stream records fanout skipped as malformed",
    fanout_batch_ms_total: "milliseconds fanout spent on batches",
    fanout_lag_events_total: "positions and messages whose write-to-post lag was measured",
    fanout_lag_ms_total: "write-to-post lag of those events, summed (ms)",
}

/// A Prometheus label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

impl Metrics {
    fn add(&self, f: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        f(&self.inner).fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self, f: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        f(&self.inner).load(Ordering::Relaxed)
    }
    pub fn connected(&self) {
        self.add(|c| &c.connects_total, 1);
    }
    pub fn connect_rejected(&self) {
        self.add(|c| &c.connects_rejected_total, 1);
    }
    pub fn disconnected(&self) {
        self.add(|c| &c.disconnects_total, 1);
    }
    pub fn frame_accepted(&self) {
        self.add(|c| &c.frames_accepted_total, 1);
    }
    /// A frame refused with `error_frame` (ingest's `{"type":"error","code":…}` reply).
    pub fn frame_refused(&self, error_frame: &str) {
        self.add(|c| &c.frames_refused_total, 1);
        let code = serde_json::from_str::<serde_json::Value>(error_frame)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        if let Ok(mut by_code) = self.refused_by_code.lock() {
            *by_code.entry(code).or_default() += 1;
        }
    }
    pub fn frame_failed(&self) {
        self.add(|c| &c.frames_failed_total, 1);
    }
    pub fn post_delivered(&self, bytes: usize) {
        self.add(|c| &c.posts_delivered_total, 1);
        self.add(|c| &c.post_bytes_total, bytes as u64);
    }
    pub fn post_gone(&self) {
        self.add(|c| &c.posts_gone_total, 1);
    }
    pub fn post_faulted(&self) {
        self.add(|c| &c.posts_faulted_total, 1);
    }
    /// One fanout batch, as its metrics line would report it.
    pub fn fanout(&self, batch: &BatchMetrics) {
        self.add(|c| &c.fanout_batches_total, 1);
        self.add(|c| &c.fanout_records_total, batch.records_in);
        self.add(
            |c| &c.fanout_updates_delivered_total,
            batch.events_delivered,
        );
        self.add(|c| &c.fanout_gone_removed_total, batch.gone_removed);
        self.add(|c| &c.fanout_failed_batches_total, batch.failed_records);
        self.add(|c| &c.fanout_posts_total, batch.posts);
        self.add(|c| &c.fanout_billed_messages_total, batch.billed_messages);
        self.add(|c| &c.fanout_throttled_posts_total, batch.throttled_posts);
        self.add(|c| &c.fanout_retries_total, batch.retries);
        self.add(|c| &c.fanout_failed_posts_total, batch.failed_posts);
        self.add(
            |c| &c.fanout_malformed_records_total,
            batch.malformed_records,
        );
        let batch_ms = u64::try_from(batch.batch_duration.as_millis()).unwrap_or(u64::MAX);
        self.add(|c| &c.fanout_batch_ms_total, batch_ms);
        if let Some(lag) = batch.lag {
            self.add(|c| &c.fanout_lag_events_total, lag.events as u64);
            let sum = (lag.average_ms * lag.events as f64).round() as u64;
            self.add(|c| &c.fanout_lag_ms_total, sum);
        }
    }

    /// Refused frames by error code.
    pub fn refused_by_code(&self) -> BTreeMap<String, u64> {
        self.refused_by_code
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Average write-to-post lag since start (ms), if any was measured.
    pub fn average_lag_ms(&self) -> Option<f64> {
        let events = self.get(|c| &c.fanout_lag_events_total);
        (events > 0).then(|| self.get(|c| &c.fanout_lag_ms_total) as f64 / events as f64)
    }

    /// Prometheus text exposition.
    pub fn render(&self, open_connections: usize) -> String {
        let mut out = String::new();
        for (name, help, value) in self.snapshot() {
            let _ = writeln!(
                out,
                "# HELP ripple_{name} {help}\n# TYPE ripple_{name} counter\nripple_{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ripple_frames_refused_by_code_total client frames refused, by error code\n# TYPE ripple_frames_refused_by_code_total counter"
        );
        for (code, n) in self.refused_by_code() {
            let _ = writeln!(
                out,
                "ripple_frames_refused_by_code_total{{code=\"{}\"}} {n}",
                label(&code)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ripple_connections_open WebSocket connections open now\n# TYPE ripple_connections_open gauge\nripple_connections_open {open_connections}"
        );
        out
    }

    /// One line for `--stats`.
    pub fn summary(&self, open_connections: usize) -> String {
        let refused: Vec<String> = self
            .refused_by_code()
            .into_iter()
            .map(|(code, n)| format!("{code}:{n}"))
            .collect();
        let lag = self
            .average_lag_ms()
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}ms"));
        format!(
            "open={open_connections} connects={} frames={} refused={}{} batches={} records={} delivered={} posts={} throttled={} gone={} failed_batches={} lag_avg={lag}",
            self.get(|c| &c.connects_total),
            self.get(|c| &c.frames_accepted_total),
            self.get(|c| &c.frames_refused_total),
            if refused.is_empty() {
                String::new()
            } else {
                format!("({})", refused.join(","))
            },
            self.get(|c| &c.fanout_batches_total),
            self.get(|c| &c.fanout_records_total),
            self.get(|c| &c.fanout_updates_delivered_total),
            self.get(|c| &c.fanout_posts_total),
            self.get(|c| &c.fanout_throttled_posts_total),
            self.get(|c| &c.posts_gone_total),
            self.get(|c| &c.fanout_failed_batches_total),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fanout::metrics::Lag;

    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_batch_and_refusals_show_in_the_exposition_and_the_summary() {
        // GIVEN two refusals and one fanout batch
        let m = Metrics::default();
        m.frame_refused(r#"{"type":"error","code":"not_member","message":"join first"}"#);
        m.frame_refused(r#"{"type":"error","code":"not_member","message":"join first"}"#);
        m.frame_refused("not json");
        m.fanout(&BatchMetrics {
            records_in: 5,
            events_delivered: 8,
            posts: 4,
            throttled_posts: 1,
            retries: 1,
            batch_duration: Duration::from_millis(30),
            lag: Some(Lag {
                events: 2,
                average_ms: 15.0,
                max_ms: 20,
            }),
            ..BatchMetrics::default()
        });
        // WHEN they are rendered
        let text = m.render(2);
        // THEN every number is there
        assert_eq!(value(&text, "ripple_frames_refused_total"), Some(3.0));
        assert_eq!(
            value(
                &text,
                r#"ripple_frames_refused_by_code_total{code="not_member"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                r#"ripple_frames_refused_by_code_total{code="unknown"}"#
            ),
            Some(1.0)
        );
        assert_eq!(value(&text, "ripple_fanout_records_total"), Some(5.0));
        assert_eq!(value(&text, "ripple_fanout_posts_total"), Some(4.0));
        assert_eq!(
            value(&text, "ripple_fanout_throttled_posts_total"),
            Some(1.0)
        );
        assert_eq!(value(&text, "ripple_fanout_lag_ms_total"), Some(30.0));
        assert_eq!(value(&text, "ripple_connections_open"), Some(2.0));
        // AND the summary line names them
        let line = m.summary(2);
        assert!(line.contains("refused=3(not_member:2,unknown:1)"), "{line}");
        assert!(
            line.contains("posts=4") && line.contains("lag_avg=15ms"),
            "{line}"
        );
    }
}
