//! CloudWatch Embedded Metric Format (EMF): metrics as JSON log lines, no API calls.
//!
//! Not `metrics` + `metrics_cloudwatch_embedded` (0.10, checked): that exporter is one global recorder flushed per invocation or by a timer thread (which a frozen Lambda instance never runs), where Ripple prints a window from the next invocation and the tests run several handlers' aggregators in one process.
//!
//! Each function adds every invocation's [`MetricLine`] to its instance's [`Aggregator`], which
//! prints the sums to stdout about once a second (see [`FlushPolicy`]); CloudWatch Logs turns
//! the lines into metrics in the `Ripple` namespace. The line's shape
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
//!
//! Aggregating keeps the statistics the dashboard and alarms read: counts are summed (they are
//! only ever read as `Sum`), and each invocation's durations are kept as EMF's array of values
//! (up to 100 per metric, so `Average`, `p99` and `Maximum` are still per invocation). A
//! breakdown (`Code`, `Status`) gets a line of its own per value, with its own sum. Lambda freezes
//! an idle instance, so nothing can print on a timer: a window is printed by the first invocation
//! that finds it a second old (before adding to it, under the window's own timestamp), by the
//! 100th event, or at once when an event carries a failure an alarm watches. What an instance
//! gathered in its last second before Lambda retires it is never printed (Lambda sends no
//! shutdown signal to a function without extensions).
//!

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Mutex;

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every Ripple metric.
pub const NAMESPACE: &str = "Ripple";
/// The dimension every metric carries: the function's name.
pub const FUNCTION_DIMENSION: &str = "Function";
/// The dimension of ingest's per-error-code refusals (`bad_request`, `not_member`, …).
pub const CODE_DIMENSION: &str = "Code";
/// The dimension of connect's rejections by HTTP status (`400`, `401`).
pub const STATUS_DIMENSION: &str = "Status";

/// Metric names of `fanout` (a line per stream batch, summed per instance).
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

/// Metric names of `ingest` (a line per client frame, summed per instance).
pub mod ingest {
    pub const FUNCTION: &str = "ingest";
    /// Frames written (or a stale position deliberately dropped).
    pub const ACCEPTED: &str = "Accepted";
    /// Frames refused with an `error` frame; also per `Code`.
    pub const REFUSED: &str = "Refused";
    /// Frames that failed on a store error (answered 500).
    pub const FAILED: &str = "Failed";
}

/// Metric names of `connect` (a line per `$connect` / `$disconnect`, summed per instance).
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

/// When an [`Aggregator`] prints its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// A window this old (ms) is printed by the next event, before that event is added.
    pub interval_ms: u64,
    /// A window with this many events is printed at once (at most 100: EMF's values per metric).
    pub max_events: usize,
}

/// EMF's limit on the values of one metric in one line.
pub const MAX_VALUES: usize = 100;

impl Default for FlushPolicy {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            max_events: MAX_VALUES,
        }
    }
}

/// A metric's value over a window.
#[derive(Debug, Clone, PartialEq)]
enum Gathered {
    /// Counts, summed.
    Sum(u64),
    /// Durations, one per event.
    Values(Vec<f64>),
}

/// The events gathered since the last print.
#[derive(Debug, Default)]
struct Window {
    opened_ms: u64,
    events: usize,
    function: String,
    metrics: Vec<(&'static str, Unit, Gathered)>,
    /// (dimension, value) → (metric, sum).
    breakdowns: BTreeMap<(&'static str, String), Vec<(&'static str, u64)>>,
}

impl Window {
    fn add(&mut self, line: &MetricLine) {
        if self.events == 0 {
            self.opened_ms = line.timestamp_ms;
            if let Some(Value::String(f)) = line.root.get(FUNCTION_DIMENSION) {
                self.function = f.clone();
            }
        }
        self.events += 1;
        for (name, unit) in &line.metrics {
            let Some(value) = line.root.get(*name) else {
                continue;
            };
            let slot = match self.metrics.iter_mut().find(|(n, _, _)| n == name) {
                Some(slot) => slot,
                None => {
                    let empty = match unit {
                        Unit::Count => Gathered::Sum(0),
                        Unit::Milliseconds => Gathered::Values(Vec::new()),
                    };
                    self.metrics.push((name, *unit, empty));
                    let last = self.metrics.len() - 1;
                    &mut self.metrics[last]
                }
            };
            match &mut slot.2 {
                Gathered::Sum(sum) => *sum += value.as_u64().unwrap_or(0),
                Gathered::Values(values) => values.extend(value.as_f64()),
            }
        }
        for (dimension, names) in &line.breakdowns {
            let Some(Value::String(value)) = line.root.get(*dimension) else {
                continue;
            };
            let sums = self
                .breakdowns
                .entry((dimension, value.clone()))
                .or_default();
            for name in names {
                let n = line.root.get(*name).and_then(Value::as_u64).unwrap_or(0);
                match sums.iter_mut().find(|(m, _)| m == name) {
                    Some((_, sum)) => *sum += n,
                    None => sums.push((name, n)),
                }
            }
        }
    }

    fn full(&self, policy: &FlushPolicy) -> bool {
        self.events >= policy.max_events.clamp(1, MAX_VALUES)
    }

    /// The window's lines: the sums under `Function`, then one line per breakdown value.
    fn lines(&self) -> Vec<Value> {
        let directive = |dimensions: Value, names: Vec<Value>| json!({"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": names});
        let envelope = |directive: Value| json!({"Timestamp": self.opened_ms, "CloudWatchMetrics": [directive]});
        let mut main = Map::new();
        main.insert(FUNCTION_DIMENSION.to_owned(), json!(self.function));
        let mut names = Vec::new();
        for (name, unit, gathered) in &self.metrics {
            let value = match gathered {
                Gathered::Sum(sum) => json!(sum),
                Gathered::Values(values) if values.len() == 1 => json!(values[0]),
                Gathered::Values(values) if values.is_empty() => continue,
                Gathered::Values(values) => json!(values),
            };
            main.insert((*name).to_owned(), compact(value));
            names.push(json!({"Name": name, "Unit": unit.as_str()}));
        }
        let mut lines = Vec::new();
        if !names.is_empty() {
            main.insert(
                "_aws".to_owned(),
                envelope(directive(json!([FUNCTION_DIMENSION]), names)),
            );
            lines.push(Value::Object(main));
        }
        for ((dimension, value), sums) in &self.breakdowns {
            let mut line = Map::new();
            let names = sums
                .iter()
                .map(|(name, _)| json!({"Name": name, "Unit": Unit::Count.as_str()}))
                .collect();
            line.insert(
                "_aws".to_owned(),
                envelope(directive(json!([FUNCTION_DIMENSION, dimension]), names)),
            );
            line.insert(FUNCTION_DIMENSION.to_owned(), json!(self.function));
            line.insert((*dimension).to_owned(), json!(value));
            for (name, sum) in sums {
                line.insert((*name).to_owned(), json!(sum));
            }
            lines.push(Value::Object(line));
        }
        lines
    }
}

/// Whole numbers print as integers (`12`, not `12.0`), as [`MetricLine::milliseconds`] does.
fn compact(value: Value) -> Value {
    match value {
        Value::Array(values) => Value::Array(values.into_iter().map(compact).collect()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        other => other,
    }
}

/// What an [`Aggregator`] has printed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Printed {
    pub lines: u64,
    pub bytes: u64,
    /// Events added (invocations).
    pub events: u64,
}

#[derive(Debug)]
struct AggregatorState<W> {
    out: W,
    window: Window,
    printed: Printed,
}

/// One Lambda instance's metrics: [`MetricLine`]s added per invocation, printed as sums (see the
/// module's docs). Shared by the instance's invocations; each call locks briefly, never across
/// an await.
#[derive(Debug)]
pub struct Aggregator<W> {
    policy: FlushPolicy,
    state: Mutex<AggregatorState<W>>,
}

impl Aggregator<io::Stdout> {
    /// The Lambda binaries' aggregator: stdout, the default policy.
    pub fn stdout() -> Self {
        Self::new(io::stdout(), FlushPolicy::default())
    }
}

impl<W: Write> Aggregator<W> {
    pub fn new(out: W, policy: FlushPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(AggregatorState {
                out,
                window: Window::default(),
                printed: Printed::default(),
            }),
        }
    }

    /// Adds one invocation's line (at its timestamp); prints the window when it is due, and at
    /// once when `urgent` (a failure an alarm watches).
    pub fn record(&self, line: &MetricLine, urgent: bool) {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let state = &mut *state;
        let window = &mut state.window;
        if window.events > 0
            && line.timestamp_ms.saturating_sub(window.opened_ms) >= self.policy.interval_ms
        {
            Self::print(state);
        }
        state.window.add(line);
        state.printed.events += 1;
        if urgent || state.window.full(&self.policy) {
            Self::print(state);
        }
    }

    /// Prints whatever is gathered.
    pub fn flush(&self) {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        Self::print(&mut state);
    }

    /// Lines and bytes printed so far.
    pub fn printed(&self) -> Printed {
        match self.state.lock() {
            Ok(state) => state.printed,
            Err(poisoned) => poisoned.into_inner().printed,
        }
    }

    /// Prints what is gathered and hands back the writer.
    pub fn into_inner(self) -> W {
        self.flush();
        match self.state.into_inner() {
            Ok(state) => state.out,
            Err(poisoned) => poisoned.into_inner().out,
        }
    }

    fn print(state: &mut AggregatorState<W>) {
        let window = std::mem::take(&mut state.window);
        if window.events == 0 {
            return;
        }
        let mut bytes = Vec::new();
        for line in window.lines() {
            if serde_json::to_writer(&mut bytes, &line).is_ok() {
                bytes.push(b'\n');
                state.printed.lines += 1;
            }
        }
        state.printed.bytes += bytes.len() as u64;
        if let Err(err) = state.out.write_all(&bytes).and_then(|()| state.out.flush()) {
            tracing::warn!(error = %err, "could not write the metrics lines");
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
    fn refused(at: u64, code: &str) -> MetricLine {
        MetricLine::new("ripple-ingest", at)
            .count(ingest::ACCEPTED, 0)
            .count(ingest::REFUSED, 1)
            .breakdown(CODE_DIMENSION, code, &[ingest::REFUSED])
    }

    fn accepted(at: u64) -> MetricLine {
        MetricLine::new("ripple-ingest", at)
            .count(ingest::ACCEPTED, 1)
            .count(ingest::REFUSED, 0)
    }

    fn printed_lines(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_window_prints_the_sums_once_and_a_line_per_breakdown_value() {
        // GIVEN an aggregator that prints every 4 events
        let policy = FlushPolicy {
            interval_ms: 60_000,
            max_events: 4,
        };
        let agg = Aggregator::new(Vec::new(), policy);
        // WHEN 3 events come: nothing is printed yet
        agg.record(&accepted(1000), false);
        agg.record(&refused(1001, "not_member"), false);
        agg.record(&refused(1002, "bad_request"), false);
        assert_eq!(
            agg.printed(),
            Printed {
                lines: 0,
                bytes: 0,
                events: 3
            }
        );
        // AND the 4th fills the window
        agg.record(&refused(1003, "not_member"), false);
        let printed = agg.printed();
        let out = agg.into_inner();
        // THEN the sums in one line under Function, at the window's first timestamp
        let lines = printed_lines(&out);
        assert_eq!(printed.lines, 3);
        assert_eq!(printed.bytes, out.len() as u64);
        assert_eq!(lines[0]["_aws"]["Timestamp"], 1000);
        assert_eq!(
            (&lines[0]["Accepted"], &lines[0]["Refused"]),
            (&json!(1), &json!(3))
        );
        assert!(lines[0].get("Code").is_none());
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
        // AND each code's refusals in a line of their own, under Function and Code
        let by_code: Vec<(&str, u64)> = lines[1..]
            .iter()
            .map(|l| (l["Code"].as_str().unwrap(), l["Refused"].as_u64().unwrap()))
            .collect();
        assert_eq!(by_code, [("bad_request", 1), ("not_member", 2)]);
        for l in &lines[1..] {
            let d = &l["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(d["Dimensions"], json!([["Function", "Code"]]));
            assert_eq!(d["Metrics"], json!([{"Name": "Refused", "Unit": "Count"}]));
            assert!(l.get("Accepted").is_none());
        }
    }

    #[test]
    fn durations_keep_one_value_per_event_so_percentiles_stay_per_invocation() {
        let agg = Aggregator::new(Vec::new(), FlushPolicy::default());
        for (at, ms) in [(0, 12.0), (10, 7.25), (20, 30.0)] {
            agg.record(
                &MetricLine::new("f", at)
                    .count(fanout::POSTS, 2)
                    .milliseconds(fanout::BATCH_DURATION_MS, ms),
                false,
            );
        }
        let lines = printed_lines(&agg.into_inner());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["Posts"], 6);
        assert_eq!(lines[0]["BatchDurationMs"], json!([12, 7.3, 30]));
    }

    #[test]
    fn after_an_idle_second_the_next_event_prints_the_old_window_first_under_its_own_time() {
        // GIVEN one event gathered at t=1000
        let agg = Aggregator::new(Vec::new(), FlushPolicy::default());
        agg.record(&accepted(1000), false);
        assert_eq!(agg.printed().lines, 0);
        // WHEN the next invocation comes a minute later
        agg.record(&accepted(61_000), false);
        // THEN the old window is printed alone, stamped when it opened; the new one waits
        assert_eq!(agg.printed().lines, 1);
        let lines = printed_lines(&agg.into_inner());
        assert_eq!(lines[0]["_aws"]["Timestamp"], 1000);
        assert_eq!(lines[0]["Accepted"], 1);
        assert_eq!(lines[1]["_aws"]["Timestamp"], 61_000);
    }

    #[test]
    fn an_urgent_event_prints_at_once() {
        let agg = Aggregator::new(Vec::new(), FlushPolicy::default());
        agg.record(&accepted(5), false);
        agg.record(
            &MetricLine::new("ripple-ingest", 6).count(ingest::FAILED, 1),
            true,
        );
        let lines = printed_lines(&agg.into_inner());
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (&lines[0]["Accepted"], &lines[0]["Failed"]),
            (&json!(1), &json!(1))
        );
    }
}
