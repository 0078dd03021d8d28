//! One batch, from its first invocation until it is settled: retried, bisected, checkpointed,
//! redelivered or discarded to the on-failure destination, by the rules in [`super`].

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use futures::FutureExt;
use rand::Rng;
use serde_json::json;
use tokio::time::Instant;

use super::{Invocation, MappingConfig, resume_index};
use crate::stream::ShardRecord;

/// A batch (or part of one) still to invoke.
struct Work {
    records: Vec<ShardRecord>,
    retries: u32,
    invocations: u32,
    /// Already invoked successfully once and handed again (never redelivered twice).
    redelivery: bool,
}

/// What a panic carried, as the runtime reports it.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    format!("the function panicked: {text}")
}

/// One invocation, cut off at its deadline; a panic is a function error, as the Lambda runtime
/// reports one (the process dies, the invocation fails, the mapping retries).
pub(super) async fn invoke_once<F, Fut>(
    handler: &F,
    records: &[ShardRecord],
    timeout: Duration,
) -> Invocation
where
    F: Fn(Event, Instant) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let mut event = Event::default();
    event.records = records.iter().map(|r| r.record.clone()).collect();
    let deadline = Instant::now() + timeout;
    // The function may panic while it makes its future as well as while the future runs.
    let call = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(event, deadline))) {
        Ok(future) => AssertUnwindSafe(future).catch_unwind(),
        Err(payload) => return Err(panic_message(payload.as_ref())),
    };
    match tokio::time::timeout_at(deadline, call).await {
        Ok(Ok(invocation)) => invocation,
        Ok(Err(payload)) => Err(panic_message(payload.as_ref())),
        Err(_) => Err(format!(
            "Task timed out after {:.2} seconds",
            timeout.as_secs_f64()
        )),
    }
}

/// Invokes with one batch until every record is processed, retried out or too old.
pub(super) async fn invoke_until_settled<F, Fut>(
    shard: &str,
    batch: Vec<ShardRecord>,
    config: &MappingConfig,
    handler: &F,
) where
    F: Fn(Event, Instant) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let mut work = VecDeque::from([Work {
        records: batch,
        retries: 0,
        invocations: 0,
        redelivery: false,
    }]);
    while let Some(Work {
        mut records,
        retries,
        invocations,
        redelivery,
    }) = work.pop_front()
    {
        if let Some(max_age) = config.max_record_age {
            let now = chrono::Utc::now();
            let too_old = |r: &ShardRecord| {
                (now - r.record.change.approximate_creation_date_time)
                    .to_std()
                    .is_ok_and(|age| age > max_age)
            };
            // Records are in order: the old ones are at the front.
            let fresh_from = records
                .iter()
                .position(|r| !too_old(r))
                .unwrap_or(records.len());
            if fresh_from > 0 {
                let old: Vec<ShardRecord> = records.drain(..fresh_from).collect();
                discard(config, &old, "RecordAgeExceeded", invocations).await;
            }
            if records.is_empty() {
                continue;
            }
        }
        let outcome = invoke_once(handler, &records, config.function_timeout).await;
        let invocations = invocations + 1;
        let failed_from = match outcome {
            Ok(response) => {
                let batch: Vec<EventRecord> = records.iter().map(|r| r.record.clone()).collect();
                match resume_index(&batch, &response) {
                    None => {
                        // At least once: now and then a processed batch comes again.
                        if !redelivery && rand::rng().random_bool(config.redeliver.clamp(0.0, 1.0))
                        {
                            tracing::info!(%shard, records = records.len(), "redelivering a processed batch");
                            work.push_front(Work {
                                records,
                                retries,
                                invocations,
                                redelivery: true,
                            });
                        }
                        continue;
                    }
                    Some(index) => {
                        tracing::info!(%shard, from = index, of = records.len(), "batch reported failures; retrying from there");
                        records.drain(..index);
                        None
                    }
                }
            }
            Err(error) => Some(error),
        };
        if let Some(error) = &failed_from {
            tracing::warn!(%shard, records = records.len(), %error, "function error");
            if config.bisect_on_error && records.len() > 1 {
                let second = records.split_off(records.len() / 2);
                for records in [second, records] {
                    work.push_front(Work {
                        records,
                        retries,
                        invocations,
                        redelivery,
                    });
                }
                continue;
            }
        }
        if config.max_retries.is_some_and(|max| retries >= max) {
            discard(config, &records, "RetryAttemptsExhausted", invocations).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(100 << retries.min(5))).await;
        work.push_front(Work {
            records,
            retries: retries + 1,
            invocations,
            redelivery,
        });
    }
}

/// The on-failure destination: the batch's metadata, as Lambda sends it to SQS ("Retaining
/// discarded batches", Lambda developer guide).
pub fn failure_record(
    records: &[ShardRecord],
    condition: &str,
    invocations: u32,
) -> serde_json::Value {
    let seq = |r: Option<&ShardRecord>| {
        r.and_then(|r| r.record.change.sequence_number.clone())
            .unwrap_or_default()
    };
    let arrival = |r: Option<&ShardRecord>| {
        r.map(|r| {
            r.record
                .change
                .approximate_creation_date_time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default()
    };
    let first = records.first();
    let last = records.last();
    json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:ripple-fanout",
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": first.map(|r| r.shard_id.clone()).unwrap_or_default(),
            "startSequenceNumber": seq(first),
            "endSequenceNumber": seq(last),
            "approximateArrivalOfFirstRecord": arrival(first),
            "approximateArrivalOfLastRecord": arrival(last),
            "batchSize": records.len(),
            "streamArn": first.map(|r| r.record.event_source_arn.clone().unwrap_or_default()).unwrap_or_default(),
        }
    })
}

async fn discard(
    config: &MappingConfig,
    records: &[ShardRecord],
    condition: &str,
    invocations: u32,
) {
    if records.is_empty() {
        return;
    }
    let message = failure_record(records, condition, invocations);
    tracing::error!(%condition, records = records.len(), "batch discarded to the on-failure destination");
    let Some(dir) = &config.on_failure_dir else {
        return;
    };
    let name = format!(
        "{}-{}.json",
        ripple_common::now_ms(),
        message["DDBStreamBatchInfo"]["startSequenceNumber"]
            .as_str()
            .unwrap_or("batch")
    );
    let written = async {
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::write(dir.join(name), message.to_string()).await
    }
    .await;
    if let Err(err) = written {
        tracing::error!(error = %err, dir = %dir.display(), "could not write the on-failure message");
    }
}
