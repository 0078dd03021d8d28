//! Counters of `ripple dev`, served at `GET /metrics` in Prometheus text format (by the
//! Prometheus project's client, `prometheus-client`) and summarised by `--stats`. The fanout
//! counters are the numbers of the EMF line fanout prints in Lambda
//! (`fanout::metrics::BatchMetrics`); refusals are also counted per error code, as ingest's
//! `Refused` metric is per `Code`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fanout::metrics::BatchMetrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// Monotonic counters, exposed as `ripple_<name>_total`.
        #[derive(Debug, Default)]
        struct Counters { $($name: Counter,)* }

        impl Counters {
            fn register(&self, registry: &mut Registry) {
                $(registry.register(stringify!($name), $help, self.$name.clone());)*
            }

            /// Every counter as (exposed name without `ripple_`, help, value).
            fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((concat!(stringify!($name), "_total"), $help, self.$name.get()),)*]
            }
        }
    };
}

counters! {
    connects: "WebSocket connections accepted by $connect",
    connects_rejected: "WebSocket upgrades rejected by $connect",
    disconnects: "WebSocket connections closed",
    disconnects_lost: "$disconnect events lost by fault injection",
    frames_accepted: "client frames ingested",
    frames_refused: "client frames refused with an error frame",
    frames_failed: "client frames that failed with an internal error",
    posts_delivered: "@connections POSTs delivered to a socket",
    post_bytes: "bytes delivered by @connections POSTs",
    posts_gone: "@connections POSTs answered 410",
    posts_faulted: "@connections POSTs answered by fault injection",
    connections_throttled: "@connections requests answered 429 above the account's rate",
    posts_backlogged: "@connections POSTs answered 429 because the client is not reading",
    fanout_batches: "stream batches handed to fanout",
    fanout_records: "stream records handed to fanout",
    fanout_updates_delivered: "events delivered by fanout, summed over recipients",
    fanout_failed_batches: "batches fanout reported batchItemFailures for",
    fanout_gone_removed: "gone connections fanout removed",
    fanout_posts: "@connections POSTs fanout made, retries included",
    fanout_billed_messages: "API Gateway messages billed for fanout's delivered frames (32 KB units)",
    fanout_throttled_posts: "fanout POSTs answered 429",
    fanout_retries: "fanout POSTs retried (429, 5xx, timeouts)",
    fanout_failed_posts: "frames fanout gave up on after its retries",
    fanout_malformed_records: "stream records fanout skipped as malformed",
    fanout_batch_ms: "milliseconds fanout spent on batches",
    fanout_lag_events: "positions and messages whose write-to-post lag was measured",
    fanout_lag_ms: "write-to-post lag of those events, summed (ms)",
}

/// Refused frames by error code: one map, read by the exposition (`ripple_frames_refused_by_code_total`)
/// and by the `--stats` line.
#[derive(Debug, Default)]
struct RefusedByCode(Mutex<BTreeMap<String, u64>>);

impl RefusedByCode {
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Collector for RefusedByCode {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let by_code = self.snapshot();
        let family = ConstCounter::new(0u64);
        let mut metric = encoder.encode_descriptor(
            "frames_refused_by_code",
            "client frames refused, by error code",
            None,
            family.metric_type(),
        )?;
        for (code, n) in by_code {
            let labels = [("code", code)];
            ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Ingest's strongly consistent membership reads: the count lives in ingest's state
/// (`IngestState::membership_reads`, shared with it), exposed as `ripple_membership_reads_total`.
#[derive(Debug, Default)]
struct MembershipReads(Arc<AtomicU64>);

const MEMBERSHIP_READS_HELP: &str = "strongly consistent membership reads by ingest";

impl Collector for MembershipReads {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.0.load(Ordering::Relaxed));
        let metric = encoder.encode_descriptor(
            "membership_reads",
            MEMBERSHIP_READS_HELP,
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

struct Inner {
    counters: Counters,
    membership_reads: Arc<MembershipReads>,
    refused_by_code: Arc<RefusedByCode>,
    open_connections: Gauge,
    registry: Registry,
}

/// `ripple dev`'s counters (cheap to clone; all clones share them).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("counters", &self.inner.counters)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ripple");
        let counters = Counters::default();
        counters.register(&mut registry);
        let refused_by_code = Arc::new(RefusedByCode::default());
        registry.register_collector(Box::new(Arc::clone(&refused_by_code)));
        let membership_reads = Arc::new(MembershipReads::default());
        registry.register_collector(Box::new(Arc::clone(&membership_reads)));
        let open_connections = Gauge::default();
        registry.register(
            "connections_open",
            "WebSocket connections open now",
            open_connections.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                counters,
                membership_reads,
                refused_by_code,
                open_connections,
                registry,
            }),
        }
    }
}

impl Metrics {
    fn add(&self, f: impl Fn(&Counters) -> &Counter, n: u64) {
        f(&self.inner.counters).inc_by(n);
    }
    fn get(&self, f: impl Fn(&Counters) -> &Counter) -> u64 {
        f(&self.inner.counters).get()
    }
    pub fn connected(&self) {
        self.add(|c| &c.connects, 1);
    }
    pub fn connect_rejected(&self) {
        self.add(|c| &c.connects_rejected, 1);
    }
    pub fn disconnected(&self) {
        self.add(|c| &c.disconnects, 1);
    }
    pub fn frame_accepted(&self) {
        self.add(|c| &c.frames_accepted, 1);
    }
    pub fn disconnect_lost(&self) {
        self.add(|c| &c.disconnects_lost, 1);
    }
    pub fn connections_throttled(&self) {
        self.add(|c| &c.connections_throttled, 1);
    }
    /// A frame answered with `frame` (ingest's route response): refused when it is an `error`.
    pub fn frame_answered(&self, frame: &str) {
        let refused = serde_json::from_str::<serde_json::Value>(frame)
            .map_or(true, |v| v["type"] == "error" || v["type"].is_null());
        if refused {
            self.frame_refused(frame);
        } else {
            self.frame_accepted();
        }
    }
    /// A frame refused with `error_frame` (ingest's `{"type":"error","code":…}` reply).
    pub fn frame_refused(&self, error_frame: &str) {
        self.add(|c| &c.frames_refused, 1);
        let code = serde_json::from_str::<serde_json::Value>(error_frame)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        if let Ok(mut by_code) = self.inner.refused_by_code.0.lock() {
            *by_code.entry(code).or_default() += 1;
        }
    }
    pub fn frame_failed(&self) {
        self.add(|c| &c.frames_failed, 1);
    }
    pub fn post_delivered(&self, bytes: usize) {
        self.add(|c| &c.posts_delivered, 1);
        self.add(|c| &c.post_bytes, bytes as u64);
    }
    pub fn post_gone(&self) {
        self.add(|c| &c.posts_gone, 1);
    }
    pub fn post_backlogged(&self) {
        self.add(|c| &c.posts_backlogged, 1);
    }
    pub fn post_faulted(&self) {
        self.add(|c| &c.posts_faulted, 1);
    }
    /// One fanout batch, as its metrics line would report it.
    pub fn fanout(&self, batch: &BatchMetrics) {
        self.add(|c| &c.fanout_batches, 1);
        self.add(|c| &c.fanout_records, batch.records_in);
        self.add(|c| &c.fanout_updates_delivered, batch.events_delivered);
        self.add(|c| &c.fanout_gone_removed, batch.gone_removed);
        self.add(|c| &c.fanout_failed_batches, batch.failed_records);
        self.add(|c| &c.fanout_posts, batch.posts);
        self.add(|c| &c.fanout_billed_messages, batch.billed_messages);
        self.add(|c| &c.fanout_throttled_posts, batch.throttled_posts);
        self.add(|c| &c.fanout_retries, batch.retries);
        self.add(|c| &c.fanout_failed_posts, batch.failed_posts);
        self.add(|c| &c.fanout_malformed_records, batch.malformed_records);
        let batch_ms = u64::try_from(batch.batch_duration.as_millis()).unwrap_or(u64::MAX);
        self.add(|c| &c.fanout_batch_ms, batch_ms);
        if let Some(lag) = batch.lag {
            self.add(|c| &c.fanout_lag_events, lag.events as u64);
            let sum = (lag.average_ms * lag.events as f64).round() as u64;
            self.add(|c| &c.fanout_lag_ms, sum);
        }
    }

    /// The membership-read count to hand to ingest's state.
    pub fn membership_reads(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.inner.membership_reads.0)
    }

    /// Every counter as (name without `ripple_`, e.g. `connects_total`; help; value).
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut all = self.inner.counters.snapshot();
        all.push((
            "membership_reads_total",
            MEMBERSHIP_READS_HELP,
            self.inner.membership_reads.0.load(Ordering::Relaxed),
        ));
        all
    }

    /// Refused frames by error code.
    pub fn refused_by_code(&self) -> BTreeMap<String, u64> {
        self.inner.refused_by_code.snapshot()
    }

    /// Average write-to-post lag since start (ms), if any was measured.
    pub fn average_lag_ms(&self) -> Option<f64> {
        let events = self.get(|c| &c.fanout_lag_events);
        (events > 0).then(|| self.get(|c| &c.fanout_lag_ms) as f64 / events as f64)
    }

    /// Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]).
    pub fn render(&self, open_connections: usize) -> String {
        self.inner
            .open_connections
            .set(i64::try_from(open_connections).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry);
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
            self.get(|c| &c.connects),
            self.get(|c| &c.frames_accepted),
            self.get(|c| &c.frames_refused),
            if refused.is_empty() {
                String::new()
            } else {
                format!("({})", refused.join(","))
            },
            self.get(|c| &c.fanout_batches),
            self.get(|c| &c.fanout_records),
            self.get(|c| &c.fanout_updates_delivered),
            self.get(|c| &c.fanout_posts),
            self.get(|c| &c.fanout_throttled_posts),
            self.get(|c| &c.posts_gone),
            self.get(|c| &c.fanout_failed_batches),
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
