//! CloudWatch Embedded Metric Format (EMF): metrics as JSON log lines, no API calls.
//!
//! Each function prints one line per invocation to stdout; CloudWatch Logs turns it into
//! metrics in the `Ripple` namespace. The line's shape
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//!
//! ```json
//! {"_aws":{"Timestamp":1795000000000,"CloudWatchMetrics":[{"Namespace":"Ripple",
//!   "Dimensions":[["Function"]],"Metrics":[{"Name":"RecordsIn","Unit":"Count"}]}]},
//!  "Function":"ripple-fanout","RecordsIn":12}
//! ```
//!
//! The `Function` dimension is the deployed function name (`AWS_LAMBDA_FUNCTION_NAME`, so two
//! stacks in one account keep separate series), or the package name outside Lambda. Breakdowns
//! (ingest refusals by `Code`, rejected connects by `Status`) go in a second directive of the
//! same line, so only the broken-down metric is published per code.
//!
//! [`CATALOG`] lists every metric the functions emit; the tests check the lines and
//! `terraform/` (dashboard, alarms) against it.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every Ripple metric.
pub const NAMESPACE: &str = "Ripple";
/// The dimension every metric carries: the function's name.
pub const FUNCTION_DIMENSION: &str = "Function";
/// The dimension of ingest's per-error-code refusals (`bad_request`, `not_member`, …).
pub const CODE_DIMENSION: &str = "Code";
/// The dimension of connect's rejections by HTTP status (`400`, `401`).
pub const STATUS_DIMENSION: &str = "Status";

/// Metric names of `fanout` (one line per stream batch).
pub mod fanout {
    pub const FUNCTION: &str = "fanout";
    /// Stream records in the batch.
    pub const RECORDS_IN: &str = "RecordsIn";
    /// Events delivered, summed over recipients (one position to 10 players counts 10).
    pub const EVENTS_DELIVERED: &str = "EventsDelivered";
    /// `@connections` POSTs made, retries included.
    pub const POSTS: &str = "Posts";
    /// API Gateway messages billed for the delivered frames: each frame's size in 32 KB units.
    pub const BILLED_MESSAGES: &str = "BilledMessages";
    /// Connections that answered 410 and were deleted with their memberships.
    pub const GONE_REMOVED: &str = "GoneRemoved";
    /// POSTs answered 429 (throttled, or the client's buffer was full).
    pub const THROTTLED_POSTS: &str = "ThrottledPosts";
    /// POSTs retried (after a 429, a 5xx or a timeout).
    pub const RETRIES: &str = "Retries";
    /// Frames given up on after their retries (never 410).
    pub const FAILED_POSTS: &str = "FailedPosts";
    /// 1 when the batch returned `batchItemFailures` (a channel's members could not be read).
    pub const FAILED_RECORDS: &str = "FailedRecords";
    /// Records skipped because their image did not decode.
    pub const MALFORMED_RECORDS: &str = "MalformedRecords";
    /// Wall time of the invocation's work.
    pub const BATCH_DURATION_MS: &str = "BatchDurationMs";
    /// Average, over the batch's positions and messages, of ingest's write time → posts done.
    pub const WRITE_TO_POST_LAG_MS: &str = "WriteToPostLagMs";
    /// The largest of those lags in the batch.
    pub const WRITE_TO_POST_LAG_MAX_MS: &str = "WriteToPostLagMaxMs";
}

/// Metric names of `ingest` (one line per client frame).
pub mod ingest {
    pub const FUNCTION: &str = "ingest";
    /// Frames written (or a stale position deliberately dropped).
    pub const ACCEPTED: &str = "Accepted";
    /// Frames refused with an `error` frame; also per `Code`.
    pub const REFUSED: &str = "Refused";
    /// Frames that failed on a store error (answered 500).
    pub const FAILED: &str = "Failed";
}

/// Metric names of `connect` (one line per `$connect` / `$disconnect`).
pub mod connect {
    pub const FUNCTION: &str = "connect";
    /// `$connect` accepted (200).
    pub const CONNECTS: &str = "Connects";
    /// `$connect` rejected: 400 (bad parameters) or 401 (token); also per `Status`.
    pub const REJECTED_CONNECTS: &str = "RejectedConnects";
    /// `$disconnect` handled.
    pub const DISCONNECTS: &str = "Disconnects";
    /// `$connect` or `$disconnect` that failed on a store error (answered 500).
    pub const FAILED: &str = "Failed";
}

/// A metric's CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric a function emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSpec {
    /// The function package (`fanout`, `ingest`, `connect`).
    pub function: &'static str,
    pub name: &'static str,
    pub unit: Unit,
    /// The extra dimension it is also published under, if any.
    pub breakdown: Option<&'static str>,
}

const fn spec(
    function: &'static str,
    name: &'static str,
    unit: Unit,
    breakdown: Option<&'static str>,
) -> MetricSpec {
    MetricSpec {
        function,
        name,
        unit,
        breakdown,
    }
}

/// Every metric Ripple emits.
pub const CATALOG: &[MetricSpec] = &[
    spec(fanout::FUNCTION, fanout::RECORDS_IN, Unit::Count, None),
    spec(
        fanout::FUNCTION,
        fanout::EVENTS_DELIVERED,
        Unit::Count,
        None,
    ),
    spec(fanout::FUNCTION, fanout::POSTS, Unit::Count, None),
    spec(fanout::FUNCTION, fanout::BILLED_MESSAGES, Unit::Count, None),
    spec(fanout::FUNCTION, fanout::GONE_REMOVED, Unit::Count, None),
    spec(fanout::FUNCTION, fanout::THROTTLED_POSTS, Unit::Count, None),
    spec(fanout::FUNCTION, fanout::RETRIES, Unit::Count, None),
    spec(fanout::FUNCTION, fanout::FAILED_POSTS, Unit::Count, None),
    spec(fanout::FUNCTION, fanout::FAILED_RECORDS, Unit::Count, None),
    spec(
        fanout::FUNCTION,
        fanout::MALFORMED_RECORDS,
        Unit::Count,
        None,
    ),
    spec(
        fanout::FUNCTION,
        fanout::BATCH_DURATION_MS,
        Unit::Milliseconds,
        None,
    ),
    spec(
        fanout::FUNCTION,
        fanout::WRITE_TO_POST_LAG_MS,
        Unit::Milliseconds,
        None,
    ),
    spec(
        fanout::FUNCTION,
        fanout::WRITE_TO_POST_LAG_MAX_MS,
        Unit::Milliseconds,
        None,
    ),
    spec(ingest::FUNCTION, ingest::ACCEPTED, Unit::Count, None),
    spec(
        ingest::FUNCTION,
        ingest::REFUSED,
        Unit::Count,
        Some(CODE_DIMENSION),
    ),
    spec(ingest::FUNCTION, ingest::FAILED, Unit::Count, None),
    spec(connect::FUNCTION, connect::CONNECTS, Unit::Count, None),
    spec(
        connect::FUNCTION,
        connect::REJECTED_CONNECTS,
        Unit::Count,
        Some(STATUS_DIMENSION),
    ),
    spec(connect::FUNCTION, connect::DISCONNECTS, Unit::Count, None),
    spec(connect::FUNCTION, connect::FAILED, Unit::Count, None),
];

/// The catalog entry of `function`'s metric `name`.
pub fn lookup(function: &str, name: &str) -> Option<&'static MetricSpec> {
    CATALOG
        .iter()
        .find(|m| m.function == function && m.name == name)
}

/// The `Function` dimension's value: the deployed name in Lambda, else the package name.
pub fn function_name(package: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| package.to_owned())
}

/// One EMF line under construction.
#[derive(Debug, Clone)]
pub struct MetricLine {
    timestamp_ms: u64,
    root: Map<String, Value>,
    metrics: Vec<(&'static str, Unit)>,
    /// (dimension, metrics published per value of it).
    breakdowns: Vec<(&'static str, Vec<&'static str>)>,
}

impl MetricLine {
    /// A line for `function` (the `Function` dimension's value) at `timestamp_ms`.
    pub fn new(function: &str, timestamp_ms: u64) -> Self {
        let mut root = Map::new();
        root.insert(FUNCTION_DIMENSION.to_owned(), json!(function));
        Self {
            timestamp_ms,
            root,
            metrics: Vec::new(),
            breakdowns: Vec::new(),
        }
    }

    /// Adds a count.
    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.metric(name, Unit::Count, json!(value))
    }

    /// Adds a duration in milliseconds (a non-finite value is left out).
    pub fn milliseconds(self, name: &'static str, value: f64) -> Self {
        if !value.is_finite() {
            return self;
        }
        // Whole milliseconds print as integers; fractions keep a tenth.
        let value = if value.fract() == 0.0 && value.abs() < 9.0e15 {
            json!(value as i64)
        } else {
            json!((value * 10.0).round() / 10.0)
        };
        self.metric(name, Unit::Milliseconds, value)
    }

    fn metric(mut self, name: &'static str, unit: Unit, value: Value) -> Self {
        if self.root.insert(name.to_owned(), value).is_none() {
            self.metrics.push((name, unit));
        }
        self
    }

    /// Also publishes `metrics` (added before) under `dimension` = `value`, besides `Function`.
    pub fn breakdown(
        mut self,
        dimension: &'static str,
        value: &str,
        metrics: &[&'static str],
    ) -> Self {
        self.root.insert(dimension.to_owned(), json!(value));
        let known: Vec<&'static str> = metrics
            .iter()
            .copied()
            .filter(|m| self.metrics.iter().any(|(n, _)| n == m))
            .collect();
        if !known.is_empty() {
            self.breakdowns.push((dimension, known));
        }
        self
    }

    /// Adds a property that is not a metric (searchable in CloudWatch Logs Insights).
    pub fn property(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.root.entry(key.to_owned()).or_insert(value.into());
        self
    }

    /// The line as JSON.
    pub fn to_json(&self) -> Value {
        let unit_of = |name: &str| {
            self.metrics
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Unit::Count, |(_, u)| *u)
        };
        let definitions = |names: &[&str]| -> Vec<Value> {
            names
                .iter()
                .map(|n| json!({"Name": n, "Unit": unit_of(n).as_str()}))
                .collect()
        };
        let all: Vec<&str> = self.metrics.iter().map(|(n, _)| *n).collect();
        let mut directives = vec![json!({
            "Namespace": NAMESPACE,
            "Dimensions": [[FUNCTION_DIMENSION]],
            "Metrics": definitions(&all),
        })];
        for (dimension, names) in &self.breakdowns {
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [[FUNCTION_DIMENSION, dimension]],
                "Metrics": definitions(names),
            }));
        }
        let mut out = Map::new();
        out.insert(
            "_aws".to_owned(),
            json!({"Timestamp": self.timestamp_ms, "CloudWatchMetrics": directives}),
        );
        out.extend(self.root.clone());
        Value::Object(out)
    }

    /// Writes the line (one `write_all`, newline included) to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(&self.to_json()).map_err(io::Error::other)?;
        bytes.push(b'\n');
        out.write_all(&bytes)?;
        out.flush()
    }

    /// Writes the line, logging (never failing the invocation) when it cannot be written.
    pub fn emit(&self, out: &mut impl Write) {
        if let Err(err) = self.write_to(out) {
            tracing::warn!(error = %err, "could not write the metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_line_follows_the_emf_shape_with_a_breakdown_in_its_own_directive() {
        // GIVEN a refused ingest frame's line
        let line = MetricLine::new("ripple-ingest", 1_795_000_000_000)
            .count(ingest::ACCEPTED, 0)
            .count(ingest::REFUSED, 1)
            .breakdown(CODE_DIMENSION, "not_member", &[ingest::REFUSED]);
        // WHEN it is written
        let mut out = Vec::new();
        line.write_to(&mut out).unwrap();
        // THEN it is one JSON line in EMF's shape
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({
                "_aws": {"Timestamp": 1_795_000_000_000u64, "CloudWatchMetrics": [
                    {"Namespace": "Ripple", "Dimensions": [["Function"]], "Metrics": [
                        {"Name": "Accepted", "Unit": "Count"}, {"Name": "Refused", "Unit": "Count"}]},
                    {"Namespace": "Ripple", "Dimensions": [["Function", "Code"]], "Metrics": [
                        {"Name": "Refused", "Unit": "Count"}]}
                ]},
                "Function": "ripple-ingest", "Accepted": 0, "Refused": 1, "Code": "not_member"
            })
        );
    }

    #[test]
    fn durations_keep_a_tenth_of_a_millisecond_and_non_finite_ones_are_left_out() {
        let v = MetricLine::new("fanout", 0)
            .milliseconds(fanout::BATCH_DURATION_MS, 12.0)
            .milliseconds(fanout::WRITE_TO_POST_LAG_MS, 7.26)
            .milliseconds(fanout::WRITE_TO_POST_LAG_MAX_MS, f64::NAN)
            .to_json();
        assert_eq!(v["BatchDurationMs"], json!(12));
        assert_eq!(v["WriteToPostLagMs"], json!(7.3));
        assert!(v.get("WriteToPostLagMaxMs").is_none());
        let defined = &v["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(defined.as_array().map(Vec::len), Some(2));
        assert_eq!(defined[0]["Unit"], "Milliseconds");
    }

    #[test]
    fn every_catalogued_metric_is_unique_and_breaks_down_only_by_known_dimensions() {
        for (i, m) in CATALOG.iter().enumerate() {
            assert!(
                CATALOG[..i]
                    .iter()
                    .all(|o| (o.function, o.name) != (m.function, m.name)),
                "{m:?} listed twice"
            );
            assert!(matches!(
                m.breakdown,
                None | Some(CODE_DIMENSION | STATUS_DIMENSION)
            ));
        }
        assert!(lookup("fanout", "RecordsIn").is_some());
        assert!(lookup("ingest", "RecordsIn").is_none());
    }
}
