//! The Lambda event source mapping (DynamoDB stream → fanout), played locally as strictly as AWS
//! runs it. Each rule cites the page it follows; the defaults are `terraform/`'s
//! ([`ripple_common::deploy::FANOUT_MAPPING`]).
//!
//! - **Shards.** Records are split over `shards` shards by a hash of their partition key: one
//!   partition's records stay in one shard, in order, as DynamoDB Streams keeps them ("DynamoDB
//!   Streams: shards and lineage", DynamoDB developer guide). DynamoDB Local itself has one shard.
//! - **Polling.** Each shard is polled on its own, every `poll_interval` (250 ms: "Lambda polls
//!   shards in your DynamoDB stream for records at a base rate of 4 times per second", Lambda
//!   developer guide, "Using Lambda with DynamoDB"), with its own phase.
//! - **Parallelization.** `parallelization_factor` batches of one shard run at once; records are
//!   spread over them by a hash of the item key (partition and sort key), so order is kept per
//!   item only ("Lambda ... ensures in-order processing at the item level", same guide,
//!   "Concurrent batches per shard").
//! - **Batches.** At most `batch_size` records; with a batching window, a batch waits for more
//!   records until the window closes or the batch is full.
//! - **Failures.** ("Error handling", "Configuring partial batch response") A function error or a
//!   timeout (`function_timeout`) fails the whole batch: with `bisect_on_error` it is split in two
//!   and the halves retried (a split does not count as a retry); a `batchItemFailures` response
//!   checkpoints before the lowest reported sequence number and retries from it (an identifier
//!   that matches no record fails the whole batch). After `max_retries` retries, or for records
//!   older than `max_record_age`, the batch's metadata (not its records) goes to the on-failure
//!   destination, a folder of JSON files in the shape Lambda sends to SQS, and the shard moves on.
//!
//! - **Panics.** A panic in the function is a function error (the runtime reports the
//!   invocation failed), retried and bisected like any other; the shard keeps going.
//! - **Redelivery.** `redeliver` (`ripple dev --redeliver P`) invokes a fraction P of processed
//!   batches once more: the mapping processes each record "at least once" and "duplicate
//!   processing of records can occur" (Lambda developer guide). Default 0: AWS documents no rate,
//!   and a random default would make every run differ; turn it on to test idempotence.
//! - **Shard placement.** `shard_by` (`--shard-by partition|item`). DynamoDB may split a hot
//!   partition key's items over partitions by sort key, so only per-item order is promised;
//!   `item` routes by the whole item key. The default stays `partition` because the product's
//!   chat-order promise currently relies on one channel's messages sharing a shard: to be
//!   revisited.
//!
//! - **Filter criteria.** Records that do not pass the deployed filter (`FANOUT_UPSERT_KINDS`,
//!   `FANOUT_REMOVE_KINDS`) never reach the function ("Lambda event filtering").
//!
//! Left out: shard splits and rollover (DynamoDB Local has one shard for the table's life), the
//! 24 h retention limit, the 2-readers-per-shard limit, tumbling windows,
//! Lambda's own concurrency limits and scaling delay, the exact retry backoff (here 100 ms doubling
//! to 3.2 s), SNS destinations.

mod settle;

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use rand::Rng;
use ripple_common::deploy::{FANOUT_MAPPING, LOCAL_STREAM_SHARDS, STREAM_POLL_INTERVAL_MS};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::stream::{ShardRecord, StreamReader};
pub use settle::failure_record;

/// What places a record in a shard ([`MappingConfig::shard_by`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ShardBy {
    /// The partition key: all items of one partition key share a shard (the default).
    #[default]
    Partition,
    /// The whole item key (partition and sort key): one partition key's items may be spread
    /// over shards, as DynamoDB does when it splits a hot partition by sort key; only the order
    /// of each item is kept.
    Item,
}

/// How the mapping reads, batches and retries. [`Default`] is what `terraform/` deploys.
#[derive(Debug, Clone)]
pub struct MappingConfig {
    pub shards: usize,
    pub parallelization_factor: usize,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub poll_interval: Duration,
    pub function_timeout: Duration,
    pub bisect_on_error: bool,
    /// None: retry until the record is too old (`-1` on AWS).
    pub max_retries: Option<u32>,
    /// None: no age limit (`-1` on AWS).
    pub max_record_age: Option<Duration>,
    /// Where the on-failure destination's messages are written (None: logged only).
    pub on_failure_dir: Option<PathBuf>,
    /// The chance that a batch the function processed is invoked once more (0 to 1).
    pub redeliver: f64,
    /// What places a record in a shard.
    pub shard_by: ShardBy,
}

impl Default for MappingConfig {
    fn default() -> Self {
        let deployed = FANOUT_MAPPING;
        Self {
            shards: LOCAL_STREAM_SHARDS,
            parallelization_factor: deployed.parallelization_factor,
            batch_size: deployed.batch_size,
            batching_window: Duration::from_secs(deployed.maximum_batching_window_secs),
            poll_interval: Duration::from_millis(STREAM_POLL_INTERVAL_MS),
            function_timeout: Duration::from_secs(deployed.function_timeout_secs),
            bisect_on_error: deployed.bisect_batch_on_function_error,
            max_retries: u32::try_from(deployed.maximum_retry_attempts).ok(),
            max_record_age: u64::try_from(deployed.maximum_record_age_secs)
                .ok()
                .map(Duration::from_secs),
            on_failure_dir: None,
            redeliver: 0.0,
            shard_by: ShardBy::Partition,
        }
    }
}

/// What one invocation of the function came to, as Lambda sees it.
pub type Invocation = Result<DynamoDbEventResponse, String>;

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

/// FNV-1a: stable across runs, so a test can tell where a record goes.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn key_part(record: &EventRecord, name: &str) -> String {
    match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
        Some(serde_dynamo::AttributeValue::N(n)) => n.clone(),
        _ => String::new(),
    }
}

/// (shard, lane) of a record: the shard by its partition key (or, [`ShardBy::Item`], its whole
/// item key), the concurrent batch within the shard by its whole item key.
pub fn route(record: &EventRecord, by: ShardBy, shards: usize, lanes: usize) -> (usize, usize) {
    let pk = key_part(record, ripple_common::keys::PK);
    let sk = key_part(record, ripple_common::keys::SK);
    let item = fnv(&[&pk, &sk]);
    let placed = match by {
        ShardBy::Partition => fnv(&[&pk]),
        // Another mix of the item key than the lane's, so shard and lane are independent.
        ShardBy::Item => fnv(&[&sk, &pk]),
    };
    let shard = (placed % shards.max(1) as u64) as usize;
    let lane = (item % lanes.max(1) as u64) as usize;
    (shard, lane)
}

/// Whether the deployed filter criteria let the record through to the function.
pub fn passes_filter(record: &EventRecord) -> bool {
    use ripple_common::deploy::{FANOUT_REMOVE_KINDS, FANOUT_UPSERT_KINDS};
    let (image, kinds) = match record.event_name.as_str() {
        "INSERT" | "MODIFY" => (&record.change.new_image, FANOUT_UPSERT_KINDS),
        "REMOVE" => (&record.change.old_image, FANOUT_REMOVE_KINDS),
        _ => return false,
    };
    matches!(image.get(ripple_common::keys::KIND), Some(serde_dynamo::AttributeValue::S(k)) if kinds.contains(&k.as_str()))
}

/// Runs until `shutdown` turns true. `handler` is the function: it gets the batch and its
/// deadline (Lambda's `context.deadline`), and is cut off at the deadline as a timeout.
pub async fn run<F, Fut>(
    mut reader: StreamReader,
    config: MappingConfig,
    handler: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Event, Instant) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Invocation> + Send + 'static,
{
    let shards = config.shards.max(1);
    let lanes = config.parallelization_factor.clamp(1, 10);
    let config = Arc::new(config);
    let mut senders = Vec::with_capacity(shards * lanes);
    let mut workers = Vec::with_capacity(shards * lanes);
    for shard in 0..shards {
        // Each shard has its own poll phase, as each shard has its own poller on AWS.
        let phase = config
            .poll_interval
            .mul_f64(rand::rng().random_range(0.0..1.0));
        for _ in 0..lanes {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            workers.push(tokio::spawn(lane(
                format!("shard-{shard:02}"),
                rx,
                Arc::clone(&config),
                handler.clone(),
                phase,
                shutdown.clone(),
            )));
        }
    }
    // The feed: DynamoDB Local's stream, read often, split into the emulated shards. What the
    // function sees is paced by each shard's own poll, not by this loop.
    let feed_every = config.poll_interval.min(Duration::from_millis(50));
    loop {
        if *shutdown.borrow() {
            break;
        }
        match reader.poll_shards(1000).await {
            Ok(records) => {
                for record in records.into_iter().filter(|r| passes_filter(&r.record)) {
                    let (shard, lane) = route(&record.record, config.shard_by, shards, lanes);
                    let _ = senders[shard * lanes + lane].send(record);
                }
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "stream poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(feed_every) => {}
            _ = shutdown.changed() => {}
        }
    }
    drop(senders);
    for worker in workers {
        worker.abort();
    }
}

/// One concurrent batch of one shard: polls at the shard's cadence, invokes, retries, and only
/// then moves on (a failing batch blocks its records' successors, as on AWS).
async fn lane<F, Fut>(
    shard: String,
    mut rx: mpsc::UnboundedReceiver<ShardRecord>,
    config: Arc<MappingConfig>,
    handler: F,
    phase: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Event, Instant) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let mut buffer: VecDeque<ShardRecord> = VecDeque::new();
    let mut first_seen: Option<Instant> = None;
    let batch_size = config.batch_size.clamp(1, 10_000);
    let mut next_poll = Instant::now() + phase;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_poll) => {}
            _ = shutdown.changed() => return,
        }
        next_poll += config.poll_interval;
        if next_poll < Instant::now() {
            next_poll = Instant::now() + config.poll_interval;
        }
        loop {
            match rx.try_recv() {
                Ok(record) => buffer.push_back(record),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    if buffer.is_empty() {
                        return;
                    }
                    break;
                }
            }
        }
        if buffer.is_empty() {
            continue;
        }
        let since = *first_seen.get_or_insert_with(Instant::now);
        if buffer.len() < batch_size && since.elapsed() < config.batching_window {
            continue;
        }
        let n = batch_size.min(buffer.len());
        let batch: Vec<ShardRecord> = buffer.drain(..n).collect();
        first_seen = (!buffer.is_empty()).then(Instant::now);
        settle::invoke_until_settled(&shard, batch, &config, &handler).await;
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

    fn keyed(pk: &str, sk: &str) -> EventRecord {
        let mut r = EventRecord::default();
        r.change
            .keys
            .insert("pk".into(), serde_dynamo::AttributeValue::S(pk.to_owned()));
        r.change
            .keys
            .insert("sk".into(), serde_dynamo::AttributeValue::S(sk.to_owned()));
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

    #[test]
    fn a_partition_stays_in_one_shard_and_an_item_in_one_lane() {
        // GIVEN many messages of one channel (one partition, many items)
        let routes: Vec<(usize, usize)> = (0..50)
            .map(|i| {
                route(
                    &keyed("msg#arena", &format!("{i:013}#m")),
                    ShardBy::Partition,
                    4,
                    2,
                )
            })
            .collect();
        // THEN they share one shard, and spread over both concurrent batches of it
        assert!(routes.iter().all(|(s, _)| *s == routes[0].0));
        assert!(routes.iter().any(|(_, l)| *l == 0) && routes.iter().any(|(_, l)| *l == 1));
        // AND one item always takes the same lane
        let item = keyed("pos#arena#alice", "pos");
        assert_eq!(
            route(&item, ShardBy::Partition, 4, 2),
            route(&item, ShardBy::Partition, 4, 2)
        );
        // AND partitions spread over the shards
        let shards: std::collections::HashSet<usize> = (0..64)
            .map(|i| {
                route(
                    &keyed(&format!("pos#arena#p{i}"), "pos"),
                    ShardBy::Partition,
                    4,
                    1,
                )
                .0
            })
            .collect();
        assert_eq!(shards.len(), 4);
    }

    #[test]
    fn shard_by_item_spreads_one_partition_over_shards_and_keeps_an_item_in_place() {
        // GIVEN many messages of one channel (one partition key, many items)
        let items: Vec<EventRecord> = (0..64)
            .map(|i| keyed("msg#arena", &format!("{i:013}#m")))
            .collect();
        // WHEN they are routed by the whole item key
        let shards: std::collections::HashSet<usize> = items
            .iter()
            .map(|r| route(r, ShardBy::Item, 4, 1).0)
            .collect();
        // THEN they spread over every shard (only per-item order is kept)
        assert_eq!(shards.len(), 4);
        // AND one item always takes the same shard and lane
        assert_eq!(
            route(&items[0], ShardBy::Item, 4, 2),
            route(&items[0], ShardBy::Item, 4, 2)
        );
    }

    #[test]
    fn the_defaults_are_what_terraform_deploys() {
        let config = MappingConfig::default();
        assert_eq!(
            config.parallelization_factor,
            FANOUT_MAPPING.parallelization_factor
        );
        assert_eq!(config.batch_size, FANOUT_MAPPING.batch_size);
        assert_eq!(config.max_retries, Some(5));
        assert_eq!(config.max_record_age, Some(Duration::from_secs(600)));
        assert_eq!(config.poll_interval, Duration::from_millis(250));
        assert!(config.shards > 1);
        assert_eq!(config.shard_by, ShardBy::Partition);
        assert_eq!(config.redeliver, 0.0);
    }
}
