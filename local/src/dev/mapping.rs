//! The Lambda event source mapping, played locally: polls the table's stream and calls the
//! fanout handler with `dynamodb::Event` batches. Batch size and batching window as configured;
//! on `batchItemFailures`, the batch is retried from the lowest failed sequence number (records
//! before it are done); after `max_retries` retries of the same record, that record is logged and
//! skipped and the rest goes on.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::stream::StreamReader;

/// How the mapping batches and retries.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    pub batch_size: usize,
    pub batching_window: Duration,
    pub poll_interval: Duration,
    pub max_retries: u32,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            batching_window: Duration::ZERO,
            poll_interval: Duration::from_millis(50),
            max_retries: 3,
        }
    }
}

/// Index of the record Lambda would resume from, if the response reports failures. An
/// identifier that matches no record fails the whole batch, as Lambda does.
pub fn resume_index(batch: &[EventRecord], response: &DynamoDbEventResponse) -> Option<usize> {
    response
        .batch_item_failures
        .iter()
        .map(|f| {
            f.item_identifier
                .as_deref()
                .and_then(|id| {
                    batch
                        .iter()
                        .position(|r| r.change.sequence_number.as_deref() == Some(id))
                })
                .unwrap_or(0)
        })
        .min()
}

/// Runs until `shutdown` turns true.
pub async fn run<F, Fut>(
    mut reader: StreamReader,
    config: MappingConfig,
    mut handler: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    let mut buffer: VecDeque<EventRecord> = VecDeque::new();
    let mut oldest: Option<Instant> = None;
    let mut attempts: HashMap<String, u32> = HashMap::new();
    let batch_size = config.batch_size.clamp(1, 10_000);
    loop {
        if *shutdown.borrow() {
            break;
        }
        match reader.poll(1000).await {
            Ok(records) => {
                if !records.is_empty() && buffer.is_empty() {
                    oldest = Some(Instant::now());
                }
                buffer.extend(records);
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "stream poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let window_over = oldest.is_some_and(|t| t.elapsed() >= config.batching_window);
        if !buffer.is_empty() && (buffer.len() >= batch_size || window_over) {
            let n = batch_size.min(buffer.len());
            let batch: Vec<EventRecord> = buffer.drain(..n).collect();
            let mut event = Event::default();
            event.records = batch.clone();
            let response = handler(event).await;
            if let Some(index) = resume_index(&batch, &response) {
                let seq = batch[index]
                    .change
                    .sequence_number
                    .clone()
                    .unwrap_or_default();
                let tries = attempts.entry(seq.clone()).or_insert(0);
                *tries += 1;
                let mut resume_from = index;
                if *tries > config.max_retries {
                    tracing::error!(sequence_number = %seq, retries = config.max_retries, "record still failing; skipped");
                    attempts.remove(&seq);
                    resume_from += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(100 << (*tries).min(5))).await;
                }
                for record in batch.into_iter().skip(resume_from).rev() {
                    buffer.push_front(record);
                }
            } else {
                for record in &batch {
                    if let Some(seq) = &record.change.sequence_number {
                        attempts.remove(seq);
                    }
                }
            }
            oldest = if buffer.is_empty() {
                None
            } else {
                Some(Instant::now())
            };
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::streams::DynamoDbBatchItemFailure;

    fn record(seq: &str) -> EventRecord {
        let mut r = EventRecord::default();
        r.change.sequence_number = Some(seq.to_owned());
        r
    }

    fn failing(ids: &[&str]) -> DynamoDbEventResponse {
        let mut resp = DynamoDbEventResponse::default();
        for id in ids {
            let mut f = DynamoDbBatchItemFailure::default();
            f.item_identifier = Some((*id).to_owned());
            resp.batch_item_failures.push(f);
        }
        resp
    }

    #[test]
    fn the_lowest_failed_sequence_number_is_where_the_retry_starts() {
        let batch = [record("10"), record("20"), record("30")];
        assert_eq!(resume_index(&batch, &failing(&[])), None);
        assert_eq!(resume_index(&batch, &failing(&["30", "20"])), Some(1));
        // An identifier Lambda cannot match fails the whole batch.
        assert_eq!(resume_index(&batch, &failing(&["99"])), Some(0));
    }
}
