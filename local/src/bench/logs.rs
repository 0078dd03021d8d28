//! What the functions would print to CloudWatch Logs for a `bench e2e` run, for the bill's
//! ingestion line ($0.50 per GB in us-east-1). Three kinds of lines:
//!
//! - Lambda's own `START` / `END` / `REPORT` lines, one set per invocation, only when the
//!   functions' system log level is `INFO` or `DEBUG` (`terraform/` deploys `WARN`, which leaves
//!   them out: `ripple_common::deploy::LAMBDA_SYSTEM_LOG_LEVEL`);
//! - the metrics lines: each function's [`Aggregator`] prints a window about once a second per
//!   instance (or every 100 invocations), rendered here with the functions' own line builders;
//! - the application's per-invocation logs at the deployed `info` level: fanout's
//!   `batch fanned out` per batch, ingest's `frame refused` per refusal, connect's `connected` /
//!   `disconnected` per event (sample lines of the JSON subscriber's shape).
//!
//! Pure arithmetic over the run's counts.

use std::time::Duration;

use fanout::metrics::{BatchMetrics, Lag};
use ingest::Outcome;
use ripple_common::emf::{Aggregator, FlushPolicy, MetricLine};
use serde::Serialize;

/// Lambda's platform lines for one invocation (text format), with a real-length request id.
const PLATFORM_LINES: &str = "START RequestId: 6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718 Version: $LATEST\n\
END RequestId: 6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718\n\
REPORT RequestId: 6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718\tDuration: 2.48 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 31 MB\t\n";

/// fanout's `info` line per batch, as the JSON subscriber prints it.
const FANOUT_BATCH_LOG: &str = r#"{"timestamp":"2026-11-26T21:00:00.000000Z","level":"INFO","fields":{"message":"batch fanned out","records":12,"events":12,"recipients":49,"posts":49,"delivered":49,"gone":0,"failed_from":"None"},"target":"fanout","requestId":"6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718","xrayTraceId":"Root=1-6745f1a0-0123456789abcdef01234567"}
"#;

/// ingest's `info` line per refused frame.
const INGEST_REFUSAL_LOG: &str = r#"{"timestamp":"2026-11-26T21:00:00.000000Z","level":"INFO","fields":{"message":"frame refused","connection_id":"AbCdEfGhIjKlM=","code":"rate_limited","reason":"too many positions: at most 20 per second"},"target":"ingest","requestId":"6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718","xrayTraceId":"Root=1-6745f1a0-0123456789abcdef01234567"}
"#;

/// connect's `info` line per `$connect` / `$disconnect`.
const CONNECT_LOG: &str = r#"{"timestamp":"2026-11-26T21:00:00.000000Z","level":"INFO","fields":{"message":"connected","connection_id":"AbCdEfGhIjKlM=","user":"p0001","channels":1},"target":"connect","requestId":"6f1d3c2e-9b8a-4e7f-a1b2-c3d4e5f60718","xrayTraceId":"Root=1-6745f1a0-0123456789abcdef01234567"}
"#;

/// One function's invocations over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Invocations {
    pub count: u64,
    /// Time per invocation, ms.
    pub ms: f64,
}

/// The run, as the log estimate needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunShape {
    pub seconds: f64,
    pub ingest: Invocations,
    pub connect: Invocations,
    pub fanout: Invocations,
    pub frames_refused: u64,
    /// Lambda prints its `START`/`END`/`REPORT` lines (system log level `INFO` or `DEBUG`).
    pub platform_lines: bool,
    /// Records and recipients of an average batch (for the sample metrics line).
    pub records_per_batch: f64,
    pub posts_per_batch: f64,
}

/// Bytes the functions would print, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogBytes {
    pub platform: u64,
    pub metrics: u64,
    /// Metrics lines printed (all three functions).
    pub metrics_lines: u64,
    pub application: u64,
    pub total: u64,
}

/// Bytes and lines of the windows a function's aggregators print for `f`, each event's line
/// made by `line`: a window about once a second per instance (instances by Little's law:
/// invocations per second × seconds each, at least one), or every 100 invocations.
fn metrics_bytes(run: &RunShape, f: Invocations, line: impl Fn(u64) -> MetricLine) -> (u64, u64) {
    if f.count == 0 || run.seconds <= 0.0 {
        return (0, 0);
    }
    let instances = ((f.count as f64 / run.seconds) * f.ms / 1000.0)
        .ceil()
        .max(1.0) as u64;
    let policy = FlushPolicy::default();
    let by_time = (run.seconds.max(1.0).ceil() as u64).saturating_mul(instances);
    let windows = by_time
        .max(f.count.div_ceil(policy.max_events as u64))
        .min(f.count)
        .max(1);
    // One window, rendered for real, times the number of windows.
    let sample = Aggregator::new(std::io::sink(), policy);
    (0..f.count.div_ceil(windows).max(1)).for_each(|i| sample.record(&line(i), false));
    sample.flush();
    let printed = sample.printed();
    (
        printed.bytes.saturating_mul(windows),
        printed.lines.saturating_mul(windows),
    )
}

/// Estimates what the run's functions would print.
pub fn estimate(run: &RunShape) -> LogBytes {
    let all = run.ingest.count + run.connect.count + run.fanout.count;
    let platform = if run.platform_lines {
        all * PLATFORM_LINES.len() as u64
    } else {
        0
    };
    let ts = 1_795_000_000_000;
    let (ingest_bytes, ingest_lines) = metrics_bytes(run, run.ingest, |i| {
        ingest::metrics::frame_line("ripple-ingest", ts + i, &Outcome::Accepted)
    });
    let (connect_bytes, connect_lines) = metrics_bytes(run, run.connect, |i| {
        connect::metrics::event_line("ripple-connect", ts + i, "CONNECT", 200)
            .unwrap_or_else(|| MetricLine::new("ripple-connect", ts + i))
    });
    let (records, posts) = (
        run.records_per_batch.round(),
        run.posts_per_batch.round() as u64,
    );
    let batch = BatchMetrics {
        records_in: records as u64,
        events_delivered: posts,
        posts,
        billed_messages: posts,
        batch_duration: Duration::from_secs_f64(run.fanout.ms.max(0.0) / 1000.0),
        lag: Some(Lag {
            events: records as usize,
            average_ms: 43.7,
            max_ms: 88,
        }),
        ..BatchMetrics::default()
    };
    let (fanout_bytes, fanout_lines) =
        metrics_bytes(run, run.fanout, |i| batch.line("ripple-fanout", ts + i));
    let application = run.fanout.count * FANOUT_BATCH_LOG.len() as u64
        + run.frames_refused * INGEST_REFUSAL_LOG.len() as u64
        + run.connect.count * CONNECT_LOG.len() as u64;
    let metrics = ingest_bytes + connect_bytes + fanout_bytes;
    let metrics_lines = ingest_lines + connect_lines + fanout_lines;
    LogBytes {
        platform,
        metrics,
        metrics_lines,
        application,
        total: platform + metrics + application,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seconds: f64, frames: u64) -> RunShape {
        RunShape {
            seconds,
            ingest: Invocations {
                count: frames,
                ms: 3.0,
            },
            connect: Invocations {
                count: 100,
                ms: 3.0,
            },
            fanout: Invocations {
                count: frames / 10,
                ms: 8.0,
            },
            frames_refused: 0,
            platform_lines: true,
            records_per_batch: 10.0,
            posts_per_batch: 49.0,
        }
    }

    #[test]
    fn metrics_print_a_window_per_second_per_instance_or_per_100_invocations() {
        // GIVEN 20 s of 500 frames/s (10,000 ingest invocations on 2 instances), 1,000 fanout
        // batches (1 instance) and 100 connects
        let e = estimate(&run(20.0, 10_000));
        // THEN ingest prints 100 windows (100 frames each), fanout 20 (one a second), connect 20:
        // 140 lines where one per invocation would be 11,100
        assert_eq!(e.metrics_lines, 100 + 20 + 20, "{e:?}");
        // AND the platform lines are one set per invocation
        assert_eq!(e.platform, 11_100 * PLATFORM_LINES.len() as u64);
        assert_eq!(e.total, e.platform + e.metrics + e.application);
        // AND a quiet run (10 frames/s) prints one ingest window a second, not one per frame
        let quiet = estimate(&run(20.0, 200));
        assert_eq!(quiet.metrics_lines, 20 + 20 + 20, "{quiet:?}");
    }

    #[test]
    fn at_system_log_level_warn_lambda_prints_no_platform_lines() {
        // GIVEN the same run with the deployed system log level (WARN)
        let warn = estimate(&RunShape {
            platform_lines: false,
            ..run(20.0, 10_000)
        });
        // THEN only the functions' own lines are billed
        assert_eq!(warn.platform, 0);
        assert_eq!(warn.total, warn.metrics + warn.application);
        assert!(warn.total > 0);
    }

    #[test]
    fn nothing_run_prints_nothing() {
        let nothing = estimate(&RunShape::default());
        assert_eq!(nothing, LogBytes::default());
    }
}
