//! Tracing set-up shared by the binaries: JSON lines in Lambda (CloudWatch parses them), readable
//! text locally. Levels come from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON logs for a Lambda function. Lambda adds the timestamp; the request id rides on the span
/// `lambda_runtime` opens for every invocation.
pub fn init_lambda() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Human-readable logs for the local `ripple` command.
pub fn init_local() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .compact()
        .try_init();
}
