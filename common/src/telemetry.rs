//! Tracing set-up shared by the binaries: JSON lines in Lambda (CloudWatch parses them), readable
//! text locally. Levels come from `RUST_LOG` (default `info`).
//!
//! In Lambda every line is one JSON object: `level`, `message`, the event's fields, and the
//! fields of the spans it happened in, innermost first, so the `requestId` of the span
//! `lambda_runtime` opens for each invocation is on every line at the top level, even inside a
//! nested span (the AWS SDK's, for example):
//!
//! ```json
//! {"level":"INFO","message":"batch fanned out","records":12,"requestId":"8f5c…","span":"Lambda runtime invoke"}
//! ```
//!
//! Lambda adds the timestamp. The metric lines of [`crate::emf`] are printed alongside.

use std::fmt;

use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON logs for a Lambda function, on stdout, filtered by `RUST_LOG`.
pub fn init_lambda() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .fmt_fields(JsonFields::new())
        .event_format(LambdaJson)
        .try_init();
}

/// The subscriber [`init_lambda`] installs, filtered by `directives` (`RUST_LOG` syntax) and
/// writing to `writer` (for tests).
pub fn lambda_subscriber<W>(directives: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .fmt_fields(JsonFields::new())
        .event_format(LambdaJson)
        .with_writer(writer)
        .finish()
}

/// Human-readable logs for the local `ripple` command.
pub fn init_local() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .compact()
        // stdout carries results (the ready line, `--json` reports); logs go to stderr.
        .with_writer(std::io::stderr)
        .try_init();
}

/// One flat JSON object per event: level, event fields, then the fields of every enclosing span
/// (innermost wins; an event's own field wins over a span's), and the innermost span's name.
#[derive(Debug, Default, Clone, Copy)]
pub struct LambdaJson;

impl<S, N> FormatEvent<S, N> for LambdaJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "level".to_owned(),
            Value::String(event.metadata().level().to_string()),
        );
        let mut fields = String::new();
        ctx.format_fields(Writer::new(&mut fields), event)?;
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&fields) {
            line.extend(map);
        }
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope {
                innermost.get_or_insert_with(|| span.name());
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(stored) {
                    for (key, value) in map {
                        line.entry(key).or_insert(value);
                    }
                }
            }
            if let Some(name) = innermost {
                line.entry("span")
                    .or_insert_with(|| Value::String(name.to_owned()));
            }
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    #[test]
    fn every_line_carries_the_invocation_request_id_even_inside_a_nested_span() {
        // GIVEN the Lambda subscriber at `info`, and the span lambda_runtime opens per invocation
        let out = Capture::default();
        let writer = out.clone();
        let subscriber = lambda_subscriber("info", move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let invoke = tracing::info_span!("Lambda runtime invoke", requestId = "req-1");
            let _in_invoke = invoke.enter();
            // WHEN the handler logs, directly and inside a nested span, and at debug
            tracing::info!(records = 12, "batch fanned out");
            let sdk = tracing::info_span!("invoke", service = "DynamoDB");
            let _in_sdk = sdk.enter();
            tracing::warn!(attempt = 2, "retrying");
            tracing::debug!("hidden below info");
        });
        // THEN two JSON lines, each with the request id at the top level
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "batch fanned out");
        assert_eq!(lines[0]["records"], 12);
        assert_eq!(lines[0]["requestId"], "req-1");
        assert_eq!(lines[0]["span"], "Lambda runtime invoke");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["requestId"], "req-1");
        assert_eq!(lines[1]["service"], "DynamoDB");
        assert_eq!(lines[1]["span"], "invoke");
    }

    #[test]
    fn an_events_own_field_wins_over_a_span_field_of_the_same_name() {
        let out = Capture::default();
        let writer = out.clone();
        let subscriber = lambda_subscriber("debug", move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("outer", channel = "arena", requestId = "req-2");
            let _entered = span.enter();
            tracing::debug!(channel = "lobby", "moved");
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["channel"], "lobby");
        assert_eq!(lines[0]["requestId"], "req-2");
        assert_eq!(lines[0]["level"], "DEBUG");
    }
}
