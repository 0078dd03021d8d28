//! The Lambda entry of `fanout`: what one invocation runs, from the raw payload to the response.
//! `main.rs` only wires the state and hands each invocation to [`invoke`].
//!
//! A stream batch goes through [`crate::process_until`], measured ([`process_measured`]), and its
//! metrics line ([`crate::metrics`]) joins the instance's aggregator; the scheduled sweep runs
//! [`crate::sweep::sweep_until`]. Both stop before Lambda's deadline.

use std::io::Write;
use std::time::Instant;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use ripple_common::emf::{self, Aggregator, fanout as names};
use serde_json::Value;

use crate::invocation::{Invocation, InvocationError, classify};
use crate::metrics::{BatchMetrics, lag};
use crate::sweep::{SweepConfig, sweep_until};
use crate::{FanoutState, Report};

/// One invocation: a stream batch (its `batchItemFailures` response) or the scheduled sweep (what
/// it examined and deleted). `deadline` is Lambda's (`context.deadline`).
pub async fn invoke(
    state: &FanoutState,
    payload: Value,
    deadline: Instant,
    aggregator: &Aggregator<impl Write>,
) -> Result<Value, InvokeError> {
    match classify(payload)? {
        Invocation::Stream(batch) => {
            let response =
                handle_with_metrics_until(state, batch, Some(deadline), aggregator).await;
            Ok(serde_json::to_value(response)?)
        }
        Invocation::Sweep => {
            let report = sweep_until(
                state,
                &SweepConfig::default(),
                ripple_common::now_ms(),
                Some(tokio::time::Instant::from_std(deadline)),
            )
            .await;
            Ok(serde_json::json!({
                "examined": report.examined,
                "alive": report.alive,
                "deleted": report.deleted,
                "unknown": report.unknown,
                "cycle_finished": report.cycle_finished,
            }))
        }
    }
}

/// Why an invocation failed as a whole (Lambda reports it as a function error).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Payload(#[from] InvocationError),
    #[error("could not encode the response: {0}")]
    Response(#[from] serde_json::Error),
}

/// Runs [`crate::process_until`] and measures it: duration, and lag when something was delivered.
pub async fn process_measured(
    state: &FanoutState,
    event: Event,
    deadline: Option<Instant>,
) -> (DynamoDbEventResponse, Report, BatchMetrics) {
    let started = Instant::now();
    let (response, report) = crate::process_until(state, event, deadline).await;
    let lag = if report.updates_delivered > 0 {
        lag(
            &report.write_times,
            report.first_failed,
            ripple_common::now_ms(),
        )
    } else {
        None
    };
    let metrics = BatchMetrics::new(&report, started.elapsed(), lag);
    (response, report, metrics)
}

/// The stream-batch handler, adding the batch's metrics line to the instance's aggregator (stdout
/// in Lambda); a batch with failed records or given-up posts prints at once (alarms watch them).
pub async fn handle_with_metrics(
    state: &FanoutState,
    event: Event,
    aggregator: &Aggregator<impl Write>,
) -> DynamoDbEventResponse {
    handle_with_metrics_until(state, event, None, aggregator).await
}

/// As [`handle_with_metrics`], stopping before Lambda's deadline (`context.deadline`).
pub async fn handle_with_metrics_until(
    state: &FanoutState,
    event: Event,
    deadline: Option<Instant>,
    aggregator: &Aggregator<impl Write>,
) -> DynamoDbEventResponse {
    let (response, _, metrics) = process_measured(state, event, deadline).await;
    let urgent = metrics.failed_records > 0 || metrics.failed_posts > 0;
    aggregator.record(
        &metrics.line(
            &emf::function_name(names::FUNCTION),
            ripple_common::now_ms(),
        ),
        urgent,
    );
    response
}
