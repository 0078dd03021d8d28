//! `ripple redrive` and `ripple replay` on real parts: DynamoDB Local's stream, fanout, a
//! loopback `@connections` server. The on-failure messages are Lambda's invocation records
//! (`DDBStreamBatchInfo` with shard and sequence range) for records really in the stream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use ripple::redrive::{RedriveArgs, ReplayArgs, TargetArgs, redrive, replay};
use ripple::stream::streams_client;
use ripple_common::config::local_sdk_config;
use ripple_common::items::{Kind, MessageItem};
use ripple_common::keys;
use ripple_tests::{
    ALICE_AND_BOB_IN_ARENA, RecordingConnections, TWO_CHANNELS, TestTable, seed_members,
};
use serde_json::json;

async fn put_message(table: &TestTable, user: &str, sender: &str, text: &str) {
    let now = ripple_common::now_ms();
    let id = format!("{text}-{now}").replace(' ', "-");
    table
        .store
        .put_message(&MessageItem {
            pk: keys::message_pk("arena"),
            sk: keys::message_sk(now, &id),
            kind: Kind::Message,
            channel: "arena".into(),
            user: user.into(),
            sender: sender.into(),
            id,
            text: text.into(),
            ts: now,
            expires_at: now / 1000 + 86_400,
        })
        .await
        .unwrap();
}

/// The shard and sequence number of the stream record that wrote the message `text`.
async fn record_of(table: &TestTable, text: &str) -> (String, String) {
    let client = streams_client(&local_sdk_config(), Some(&table.endpoint));
    let arn = table.stream.stream_arn().to_owned();
    for _ in 0..50 {
        let shards = client
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .unwrap()
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default();
        for shard in shards {
            let shard_id = shard.shard_id.unwrap_or_default();
            let mut it = client
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(&shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            for _ in 0..5 {
                let Some(i) = it.take() else { break };
                let out = client.get_records().shard_iterator(i).send().await.unwrap();
                for r in out.records.unwrap_or_default() {
                    let Some(db) = r.dynamodb else { continue };
                    let has_text = db
                        .new_image
                        .as_ref()
                        .and_then(|img| img.get("text"))
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|t| t == text);
                    if has_text {
                        return (shard_id, db.sequence_number.unwrap_or_default());
                    }
                }
                it = out.next_shard_iterator;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no stream record for {text:?}");
}

/// Lambda's on-failure invocation record for a DynamoDB stream batch (the shape AWS documents in
/// "Retaining discarded records for a DynamoDB event source").
fn on_failure_record(stream_arn: &str, shard: &str, start: &str, end: &str, size: u32) -> String {
    json!({
        "requestContext": {
            "requestId": "316aa6d0-8154-4ee7-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:ripple-fanout",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 6
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "version": "1.0",
        "timestamp": "2026-11-26T22:00:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": start,
            "endSequenceNumber": end,
            "approximateArrivalOfFirstRecord": "2026-11-26T22:00:19Z",
            "approximateArrivalOfLastRecord": "2026-11-26T22:00:19Z",
            "batchSize": size,
            "streamArn": stream_arn
        }
    })
    .to_string()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/redrive-test")
        .join(format!(
            "{name}-{}-{}",
            std::process::id(),
            ripple_common::now_ms()
        ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn target(table: &TestTable, server: &RecordingConnections) -> TargetArgs {
    TargetArgs {
        dynamodb_endpoint: Some(table.endpoint.clone()),
        table: table.store.table().to_owned(),
        connections_endpoint: server.url.clone(),
    }
}

/// `ripple redrive` over the on-failure folder `dir`, delivering to `target`.
async fn redrive_folder(dir: &Path, target: TargetArgs) -> anyhow::Result<()> {
    redrive(RedriveArgs {
        queue_url: None,
        dir: Some(dir.to_path_buf()),
        dry_run: false,
        target,
    })
    .await
}

fn message_texts(server: &RecordingConnections, connection_id: &str) -> Vec<String> {
    server
        .events(connection_id)
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn redrive_delivers_exactly_the_records_of_an_on_failure_message_and_files_it_as_done() {
    // GIVEN alice and bob in arena, and three messages from alice in the table's stream
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    seed_members(&table, &server, &ALICE_AND_BOB_IN_ARENA)
        .await
        .unwrap();
    for text in ["before", "lost one", "lost two", "after"] {
        put_message(&table, "alice", "c-alice", text).await;
    }
    // AND the on-failure message Lambda would have sent for the batch of the two middle ones
    let (shard, start) = record_of(&table, "lost one").await;
    let (shard_end, end) = record_of(&table, "lost two").await;
    assert_eq!(
        shard, shard_end,
        "DynamoDB Local keeps a new table in one shard"
    );
    let dir = scratch_dir("ok");
    let file = dir.join("0001.json");
    std::fs::write(
        &file,
        on_failure_record(table.stream.stream_arn(), &shard, &start, &end, 2),
    )
    .unwrap();

    // WHEN ripple redrive reads the folder
    redrive_folder(&dir, target(&table, &server)).await.unwrap();

    // THEN bob received the two lost messages, in order, and nothing outside the range
    assert_eq!(message_texts(&server, "c-bob"), ["lost one", "lost two"]);
    // AND alice, the sender, none of her own
    assert!(message_texts(&server, "c-alice").is_empty());
    // AND the message moved to done/, so a second redrive sends nothing again
    assert!(!file.exists());
    assert!(dir.join("done/0001.json").exists());
    redrive_folder(&dir, target(&table, &server)).await.unwrap();
    assert_eq!(message_texts(&server, "c-bob").len(), 2);
}

#[tokio::test]
async fn a_message_that_is_not_an_on_failure_record_is_kept_and_reported() {
    // GIVEN a folder with a file that is not a DynamoDB stream on-failure record
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let dir = scratch_dir("bad");
    let file = dir.join("0001.json");
    std::fs::write(&file, r#"{"version":"1.0","KinesisBatchInfo":{}}"#).unwrap();

    // WHEN ripple redrive reads the folder
    let err = redrive_folder(&dir, target(&table, &server))
        .await
        .expect_err("an unreadable message must fail the run");

    // THEN it says so, posts nothing and keeps the file
    assert!(format!("{err}").contains("could not be redriven"), "{err}");
    assert_eq!(server.post_count(), 0);
    assert!(file.exists());
}

#[tokio::test]
async fn replay_runs_a_recorded_batch_through_fanout_against_the_table() {
    // GIVEN the members of the recorded two-channel batch
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    seed_members(&table, &server, &TWO_CHANNELS).await.unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stream-two-channels.json");

    // WHEN ripple replay runs the file
    replay(ReplayArgs {
        file,
        target: target(&table, &server),
    })
    .await
    .unwrap();

    // THEN it is delivered as Lambda's invocation would deliver it
    assert_eq!(server.events("c-frank").len(), 1);
    assert_eq!(message_texts(&server, "c-alice"), ["hi all", "second"]);
}

#[tokio::test]
async fn a_batch_ripple_dev_gave_up_on_is_delivered_by_redrive_once_the_fault_is_lifted() {
    use ripple::dev::DevOptions;
    use ripple::dev::faults::FaultSpec;
    use ripple_tests::dev_with_alice_and_bob_on;
    // GIVEN ripple dev whose stream mapping retries a failing batch once, then writes its
    // on-failure message to a folder, and alice and bob in arena
    let dir = scratch_dir("dev");
    let mut opts = DevOptions::default();
    opts.mapping.max_retries = Some(1);
    opts.mapping.on_failure_dir = Some(dir.clone());
    let (server, mut alice, mut bob) = dev_with_alice_and_bob_on(opts, "arena").await.unwrap();
    alice.wait_for_snapshot("arena").await.unwrap();
    bob.wait_for_snapshot("arena").await.unwrap();

    // WHEN every @connections post fails while alice chats
    server.faults.set("error=1".parse::<FaultSpec>().unwrap());
    alice
        .send(r#"{"action":"message","channel":"arena","text":"lost while down"}"#)
        .await
        .unwrap();
    // THEN the mapping gives up on the batch and its metadata reaches the folder
    let file = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "json"))
            });
            if let Some(path) = found {
                return path;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("no on-failure message from ripple dev");
    let message: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        message["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );

    // WHEN the fault is lifted and ripple redrive reads the folder
    server.faults.set(FaultSpec::default());
    redrive_folder(
        &dir,
        TargetArgs {
            dynamodb_endpoint: Some(server.dynamodb_endpoint.clone()),
            table: server.table.clone(),
            connections_endpoint: server.http_url(),
        },
    )
    .await
    .unwrap();
    // THEN bob gets the message after all
    bob.wait_for_event(|e| e["text"] == "lost while down")
        .await
        .unwrap();
    server.shutdown().await;
}
