//! `ripple dev`'s stream mapping rules beyond the deployed settings, on DynamoDB Local's real
//! stream records: a panicking function, at-least-once redelivery (`--redeliver`) and shard
//! placement (`--shard-by`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use ripple::dev::mapping::{MappingConfig, ShardBy, route};
use ripple_tests::{Mapping, TestTable, chat_message, eventually, first_file_in, texts};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// One shard, one concurrent batch, polled every 50 ms: every record in one lane, in order.
fn one_lane() -> MappingConfig {
    MappingConfig {
        shards: 1,
        parallelization_factor: 1,
        poll_interval: Duration::from_millis(50),
        ..MappingConfig::default()
    }
}

/// Writes bob's messages `from..to` to arena, each with the text `label(i)`.
async fn write(table: &TestTable, from: u64, to: u64, label: impl Fn(u64) -> String) {
    for i in from..to {
        table
            .store
            .put_message(&chat_message(i, &label(i)))
            .await
            .unwrap();
    }
}

/// Texts `{prefix} {i}`, but `odd_text` for message `odd`.
fn all_but(odd: u64, odd_text: &'static str, prefix: &'static str) -> impl Fn(u64) -> String {
    move |i| {
        if i == odd {
            odd_text.to_owned()
        } else {
            format!("{prefix} {i}")
        }
    }
}

/// A function that only records the texts of each batch it is invoked with (in invocation order).
fn recording(
    invocations: &Arc<Mutex<Vec<Vec<String>>>>,
) -> impl Fn(Event, tokio::time::Instant) -> std::future::Ready<ripple::dev::mapping::Invocation>
+ Clone
+ Send
+ Sync
+ 'static {
    let invocations = Arc::clone(invocations);
    move |event: Event, _deadline| {
        invocations.lock().unwrap().push(texts(&event));
        std::future::ready(Ok(DynamoDbEventResponse::default()))
    }
}

/// How many times each text was in an invocation.
fn deliveries(invocations: &Mutex<Vec<Vec<String>>>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for text in invocations.lock().unwrap().iter().flatten() {
        *counts.entry(text.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_panic_in_the_function_is_a_function_error_and_the_shard_keeps_going() {
    // GIVEN eight messages in one lane, one of which makes the function panic
    let table = TestTable::new().await.unwrap();
    write(&table, 0, 8, all_but(5, "poison", "fine")).await;
    let dir = std::env::temp_dir().join(format!("ripple-panic-{}", ripple_common::now_ms()));
    let config = MappingConfig {
        max_retries: Some(1),
        on_failure_dir: Some(dir.clone()),
        ..one_lane()
    };
    let poisoned: Arc<Mutex<Vec<usize>>> = Arc::default();
    let processed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    // (it panics on odd tries before it returns its future, on even ones while the future runs)
    let handler = {
        let (poisoned, processed) = (Arc::clone(&poisoned), Arc::clone(&processed));
        move |event: Event, _deadline| {
            let texts = texts(&event);
            let poison = texts.iter().any(|t| t == "poison");
            let tries = {
                let mut poisoned = poisoned.lock().unwrap();
                if poison {
                    poisoned.push(texts.len());
                }
                poisoned.len()
            };
            if poison && tries % 2 == 1 {
                panic!("a poison record, before the future");
            }
            let processed = Arc::clone(&processed);
            async move {
                if poison {
                    panic!("a poison record, in the future");
                }
                processed.lock().unwrap().extend(texts);
                Ok(DynamoDbEventResponse::default())
            }
        }
    };
    let mapping = Mapping::start(&table, config, handler).await.unwrap();

    // WHEN the mapping runs until the poison record is discarded, and three more messages follow
    let file = first_file_in(&dir, WAIT).await.unwrap();
    write(&table, 8, 11, |i| format!("after {i}")).await;

    // THEN the seven other records and the three later ones are processed (the shard went on)
    let expected: BTreeSet<String> = (0..11)
        .filter(|i| *i != 5)
        .map(|i| format!("{} {i}", if i < 8 { "fine" } else { "after" }))
        .collect();
    eventually("every record but the poison one processed", WAIT, || {
        *processed.lock().unwrap() == expected
    })
    .await
    .unwrap();
    mapping.stop().await;
    // AND the panicking batch was bisected down to the poison record, which was retried alone
    // (max_retries 1) and then discarded as any failing record is
    let sizes = poisoned.lock().unwrap().clone();
    assert!(sizes[0] > 1, "{sizes:?}");
    assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "{sizes:?}");
    assert!(sizes.ends_with(&[1, 1]), "{sizes:?}");
    let message: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        message["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        message["requestContext"]["approximateInvokeCount"],
        sizes.len()
    );
    assert_eq!(message["DDBStreamBatchInfo"]["batchSize"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_redeliver_one_every_processed_batch_is_invoked_once_more() {
    // GIVEN six messages and a mapping that redelivers every processed batch
    let table = TestTable::new().await.unwrap();
    write(&table, 0, 6, |i| format!("r{i}")).await;
    let invocations: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let config = MappingConfig {
        redeliver: 1.0,
        ..one_lane()
    };
    let mapping = Mapping::start(&table, config, recording(&invocations))
        .await
        .unwrap();
    // WHEN every record has been seen twice, and a few more polls pass
    eventually("every record delivered twice", WAIT, || {
        let counts = deliveries(&invocations);
        counts.len() == 6 && counts.values().all(|n| *n >= 2)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    mapping.stop().await;
    // THEN each record came exactly twice: each batch again, right after it (a redelivery is
    // not redelivered)
    assert!(deliveries(&invocations).values().all(|n| *n == 2));
    let invocations = invocations.lock().unwrap();
    assert_eq!(invocations.len() % 2, 0, "{invocations:?}");
    assert!(
        invocations.chunks(2).all(|pair| pair[0] == pair[1]),
        "{invocations:?}"
    );
}

#[tokio::test]
async fn with_redeliver_zero_every_processed_batch_is_invoked_once() {
    // GIVEN six messages and the default mapping (no redelivery)
    let table = TestTable::new().await.unwrap();
    write(&table, 0, 6, |i| format!("r{i}")).await;
    let invocations: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let mapping = Mapping::start(&table, one_lane(), recording(&invocations))
        .await
        .unwrap();
    // WHEN every record has been seen, and twenty more polls pass
    eventually("every record delivered", WAIT, || {
        deliveries(&invocations).len() == 6
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    mapping.stop().await;
    // THEN each record came once
    assert!(
        deliveries(&invocations).values().all(|n| *n == 1),
        "{:?}",
        invocations.lock().unwrap()
    );
}

/// What a gated run shows of the shards: twelve messages of one channel (one partition key,
/// twelve sort keys) on four shards, the first of them making the function wait until released.
struct Gated {
    /// Shards the records are placed in ([`route`]).
    shards: BTreeSet<usize>,
    /// The records in other shards than the gated record's.
    elsewhere: BTreeSet<String>,
    /// The records processed while the gated record's batch was held (a second after the other
    /// shards' records were).
    while_held: BTreeSet<String>,
}

async fn gated(shard_by: ShardBy) -> Gated {
    let mut table = TestTable::new().await.unwrap();
    write(&table, 0, 12, all_but(0, "gate", "item")).await;
    let config = MappingConfig {
        shards: 4,
        shard_by,
        ..one_lane()
    };
    // Where the mapping places each record, by the records as they are on the stream.
    let records = table.take_stream_event().await.unwrap();
    let placed: Vec<(String, usize)> = records
        .records
        .iter()
        .zip(texts(&records))
        .map(|(r, text)| (text, route(r, shard_by, config.shards, 1).0))
        .collect();
    let gate_shard = placed.iter().find(|(t, _)| t == "gate").unwrap().1;
    let shards = placed.iter().map(|(_, s)| *s).collect();
    let elsewhere: BTreeSet<String> = placed
        .iter()
        .filter(|(_, s)| *s != gate_shard)
        .map(|(t, _)| t.clone())
        .collect();

    let (release, released) = tokio::sync::watch::channel(false);
    let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let processed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let handler = {
        let (held, processed) = (Arc::clone(&held), Arc::clone(&processed));
        move |event: Event, _deadline| {
            let (held, processed, mut released) =
                (Arc::clone(&held), Arc::clone(&processed), released.clone());
            async move {
                let texts = texts(&event);
                if texts.iter().any(|t| t == "gate") {
                    held.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = released.wait_for(|r| *r).await;
                }
                processed.lock().unwrap().extend(texts);
                Ok(DynamoDbEventResponse::default())
            }
        }
    };
    let mapping = Mapping::start(&table, config, handler).await.unwrap();
    eventually("the gated record's batch invoked", WAIT, || {
        held.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await
    .unwrap();
    eventually("the other shards' records processed", WAIT, || {
        processed.lock().unwrap().is_superset(&elsewhere)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let while_held = processed.lock().unwrap().clone();
    let _ = release.send(true);
    eventually("every record processed once released", WAIT, || {
        processed.lock().unwrap().len() == 12
    })
    .await
    .unwrap();
    mapping.stop().await;
    Gated {
        shards,
        elsewhere,
        while_held,
    }
}

#[tokio::test]
async fn by_partition_one_channels_items_share_a_shard_and_wait_behind_each_other() {
    // GIVEN twelve messages of one channel, placed by partition key (the default)
    // WHEN the first one's batch is held
    let run = gated(ShardBy::Partition).await;
    // THEN they are all in one shard, and nothing else is processed meanwhile
    assert_eq!(run.shards.len(), 1);
    assert!(run.elsewhere.is_empty());
    assert!(run.while_held.is_empty(), "{:?}", run.while_held);
}

#[tokio::test]
async fn by_item_one_channels_items_spread_over_shards_and_only_the_held_shard_waits() {
    // GIVEN twelve messages of one channel, placed by the whole item key
    // WHEN the first one's batch is held
    let run = gated(ShardBy::Item).await;
    // THEN they are in more than one shard, and exactly the other shards' records are
    // processed meanwhile (a shard holds its records in order; shards run on their own)
    assert!(run.shards.len() > 1, "{:?}", run.shards);
    assert!(!run.elsewhere.is_empty());
    assert_eq!(run.while_held, run.elsewhere);
}
