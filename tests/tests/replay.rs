//! Replaying recorded DynamoDB Streams events (Lambda's JSON shape) into `fanout`, against
//! DynamoDB Local for the members and a loopback `@connections` server for the posts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use fanout::FanoutState;
use ripple_common::connections::PostOutcome;
use ripple_common::items::{ConnectionItem, Endpoint, MemberItem};
use ripple_common::protocol::BILLED_MESSAGE_BYTES;
use ripple_common::stream_record::StreamRecord;
use ripple_tests::{
    ALICE_AND_BOB_IN_ARENA, FaultyDynamo, RecordingConnections, TWO_CHANNELS, TestTable, batch,
    fixture, seed, seed_live, seed_new, table_with_members,
};
use serde_json::json;

fn fanout_state(table: &TestTable, server: &RecordingConnections) -> FanoutState {
    FanoutState::new(table.store.clone(), server.client(), &table.settings)
}

/// The `text` of every event posted to `connection_id`, in order.
fn texts(server: &RecordingConnections, connection_id: &str) -> Vec<serde_json::Value> {
    server
        .events(connection_id)
        .iter()
        .map(|e| e["text"].clone())
        .collect()
}

#[tokio::test]
async fn a_batch_reaches_each_member_once_without_its_own_events_and_stays_in_its_channel() {
    // GIVEN alice, bob and erin in arena (erin's connection is gone), carol and frank in lobby
    let (table, server) = table_with_members(&TWO_CHANNELS).await.unwrap();
    // (erin's socket closed after she connected)
    seed_live(&table, &server, "c-erin", "erin", &["arena"])
        .await
        .unwrap();
    server.mark_gone("c-erin");
    let event = fixture("stream-two-channels.json", &[]).unwrap();

    // WHEN fanout handles the recorded batch
    let (response, report) = fanout::process(&fanout_state(&table, &server), event).await;

    // THEN nothing failed
    assert!(response.batch_item_failures.is_empty());
    // AND bob gets one frame: both of alice's positions in seq order (a 10 Hz sender is heard
    // at 10 Hz), not his messages
    let bob = server.frames("c-bob");
    assert_eq!(
        bob.len(),
        1,
        "one events frame per recipient per batch: {bob:?}"
    );
    assert_eq!(
        bob[0],
        json!({"type":"events","events":[
            {"type":"position","channel":"arena","user":"alice","x":1.5,"y":2.0,"z":0.0,"seq":1,"ts":1795000000000u64},
            {"type":"position","channel":"arena","user":"alice","x":3.5,"y":4.0,"z":0.0,"seq":2,"ts":1795000000050u64}
        ]})
    );
    // AND alice gets bob's two messages in order, not her own position
    let alice = server.events("c-alice");
    let texts: Vec<_> = alice
        .iter()
        .map(|e| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["hi all", "second"]);
    assert!(alice.iter().all(|e| e["type"] == "message"));
    // AND lobby is isolated: frank gets only carol's position, carol nothing of her own
    let frank = server.events("c-frank");
    assert_eq!(frank.len(), 1);
    assert_eq!(frank[0]["user"], "carol");
    assert_eq!(frank[0]["channel"], "lobby");
    assert!(server.frames("c-carol").is_empty());
    // AND the TTL removal of dave's old position was ignored
    assert!(!server.events("c-bob").iter().any(|e| e["user"] == "dave"));
    // AND erin's gone connection was deleted with its membership
    assert_eq!(report.gone_removed, 1);
    assert_eq!(table.connection_item_count("c-erin").await.unwrap(), 0);
    assert_eq!(table.connection_item_count("c-bob").await.unwrap(), 2);
    assert_eq!(report.updates_delivered, 2 + 2 + 1);
}

#[tokio::test]
async fn a_member_whose_id_api_gateway_never_had_answers_410_and_is_removed_as_gone() {
    // GIVEN alice in arena, and dan in arena with an id that was never established (never live:
    // a mangled id, or one whose client never finished connecting), connected long ago
    let (table, server) = table_with_members(&[("c-alice", "alice", "arena")])
        .await
        .unwrap();
    seed(&table, "c-dan", "dan", &["arena"]).await.unwrap();

    // WHEN a frame is posted to dan's id
    let posted = server
        .client()
        .post(&server.url, "c-dan", b"{}".to_vec())
        .await;
    // THEN it answers 410, as API Gateway does, and nothing is recorded
    assert_eq!(posted, PostOutcome::Gone);
    assert!(server.raw_frames("c-dan").is_empty());

    // WHEN fanout handles a message from bob to arena
    let event = batch(vec![message_record(1, "m1", "hello")]).unwrap();
    let (response, report) = fanout::process(&fanout_state(&table, &server), event).await;

    // THEN alice has it, and dan's connection is taken as gone: deleted with its membership
    assert!(response.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(texts(&server, "c-alice"), [json!("hello")]);
    assert_eq!(report.gone_removed, 1, "{report:?}");
    assert_eq!(table.connection_item_count("c-dan").await.unwrap(), 0);
}

#[tokio::test]
async fn a_channel_whose_members_cannot_be_read_fails_from_its_first_record() {
    // GIVEN bob and alice in arena, and a batch whose second record is in channel `broken`,
    // for which DynamoDB answers 500 InternalServerError (through a loopback proxy)
    let (table, server) = table_with_members(&ALICE_AND_BOB_IN_ARENA).await.unwrap();
    let faulty = FaultyDynamo::start(&table.endpoint, "chan#broken")
        .await
        .unwrap();
    let state = FanoutState::new(faulty.store(&table), server.client(), &table.settings);
    let event = fixture("stream-query-failure.json", &[]).unwrap();
    let failed_seq = event.records[1].change.sequence_number.clone();

    // WHEN fanout handles it
    let (response, report) = fanout::process(&state, event).await;

    // THEN batchItemFailures names the failing record
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, failed_seq);
    assert_eq!(report.first_failed, Some(1));
    // AND only what came before it was posted: Lambda's resend of the tail posts the rest once
    assert_eq!(texts(&server, "c-alice"), [json!("before the failure")]);
}

#[tokio::test]
async fn a_new_connection_gets_welcome_and_odd_records_are_skipped_not_failed() {
    // GIVEN nina's connection insert, a malformed position, a DynamoDB Local style TTL record
    // with an unknown event name, and a message to arena where nina is a member
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    seed_new(&table, "c-new", "nina", &["arena"]).await.unwrap();
    server.mark_live("c-new");
    let event = fixture("stream-welcome-and-oddities.json", &[]).unwrap();

    // WHEN fanout handles it
    let (response, report) = fanout::process(&fanout_state(&table, &server), event).await;

    // THEN nina hears welcome first: nothing reaches her before it
    let frames = server.frames("c-new");
    assert_eq!(
        frames[0],
        json!({"type":"welcome","connectionId":"c-new","user":"nina"})
    );
    // AND the message reaches her after it, in this batch if its roster was read after her
    // entry was put (greeting runs beside delivery), else in the snapshot her roster entry's own
    // record brings (chat since the join)
    assert!(frames.len() <= 2, "{frames:?}");
    if let Some(events) = frames.get(1) {
        assert_eq!(events["events"][0]["text"], "welcome aboard");
    }
    let roster = table.store.channel_members("arena").await.unwrap();
    assert!(roster.iter().any(|m| m.connection_id == "c-new"));
    // AND the malformed record is skipped (logged), not reported for retry
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.malformed, 1);
    assert_eq!(report.skipped, 1);
}

#[tokio::test]
async fn when_lambda_resends_the_tail_each_event_reaches_each_member_once() {
    // GIVEN the batch whose second record's channel cannot be read, handled once
    let (table, server) = table_with_members(&ALICE_AND_BOB_IN_ARENA).await.unwrap();
    let faulty = FaultyDynamo::start(&table.endpoint, "chan#broken")
        .await
        .unwrap();
    let state = FanoutState::new(faulty.store(&table), server.client(), &table.settings);
    let event = fixture("stream-query-failure.json", &[]).unwrap();
    let (response, _) = fanout::process(&state, event.clone()).await;
    let failed = response.batch_item_failures[0].item_identifier.clone();

    // WHEN DynamoDB recovers and Lambda resends everything from the failed record on
    faulty.heal();
    let from = event
        .records
        .iter()
        .position(|r| r.change.sequence_number == failed)
        .unwrap();
    let mut tail = event.clone();
    tail.records = event.records[from..].to_vec();
    let (response, _) = fanout::process(&state, tail).await;

    // THEN nothing fails and alice has every arena message exactly once, in order
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        texts(&server, "c-alice"),
        [json!("before the failure"), json!("after the failure")]
    );
}

#[tokio::test]
async fn a_batch_delivered_twice_gives_only_duplicates_a_client_can_drop_by_seq_and_id() {
    // GIVEN a batch handled once (as when Lambda retries a whole batch after a timeout)
    let (table, server) = table_with_members(&ALICE_AND_BOB_IN_ARENA).await.unwrap();
    let state = fanout_state(&table, &server);
    let event = fixture("stream-two-channels.json", &[]).unwrap();
    fanout::process(&state, event.clone()).await;
    let first: Vec<_> = server
        .events("c-bob")
        .into_iter()
        .chain(server.events("c-alice"))
        .collect();

    // WHEN the same batch is handled again
    fanout::process(&state, event).await;

    // THEN the second copy is identical event for event: same `seq` for positions, same `id`
    // for messages, so a client that drops seq ≤ last seen and ids seen loses nothing
    let bob = server.events("c-bob");
    let alice = server.events("c-alice");
    let again: Vec<_> = bob[bob.len() / 2..]
        .iter()
        .chain(&alice[alice.len() / 2..])
        .cloned()
        .collect();
    assert_eq!(again, first);
    let mut ids: Vec<_> = alice
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    ids.dedup();
    assert_eq!(
        ids.len(),
        alice.len(),
        "no message id repeats back to back within one copy"
    );
}

#[tokio::test]
async fn members_past_their_ttl_are_skipped_even_before_dynamodb_deletes_them() {
    // GIVEN bob in arena, and carol whose membership expired an hour ago but still exists
    let (table, server) = table_with_members(&[("c-bob", "bob", "arena")])
        .await
        .unwrap();
    let endpoint = Endpoint {
        domain: "x".into(),
        stage: "prod".into(),
    };
    let expired_at = ripple_common::now_ms() / 1000 - 3600;
    let carol = ConnectionItem::new("c-carol", "carol", &endpoint, 1, expired_at);
    table.store.put_connection(&carol).await.unwrap();
    table
        .store
        .put_member(&MemberItem::new(&carol, "arena", 1))
        .await
        .unwrap();
    // Live, so that a post to her would be recorded.
    server.mark_live("c-carol");

    // WHEN a batch for arena is fanned out
    let event = fixture("stream-two-channels.json", &[]).unwrap();
    fanout::process(&fanout_state(&table, &server), event).await;

    // THEN bob gets it and carol is not posted to at all
    assert!(!server.events("c-bob").is_empty());
    assert!(server.raw_frames("c-carol").is_empty());
}

/// A Lambda-shaped INSERT record of a chat message.
fn message_record(seq: u64, id: &str, text: &str) -> serde_json::Value {
    let ts = 1_795_000_000_000u64 + seq;
    let image = json!({
        "pk": {"S": "msg#arena"}, "sk": {"S": format!("{ts:013}#{id}")}, "kind": {"S": "message"},
        "channel": {"S": "arena"}, "user": {"S": "bob"}, "sender": {"S": "c-bob"},
        "id": {"S": id}, "text": {"S": text}, "ts": {"N": ts.to_string()},
        "expires_at": {"N": "4000000000"}
    });
    StreamRecord::write("INSERT", format!("e{seq}"), image)
        .created_secs(1_795_000_000)
        .sequence_number(format!(
            "{}",
            500_000_000_000_000_000_000u128 + u128::from(seq)
        ))
        .size_bytes(4200)
        .to_json()
}

#[tokio::test]
async fn a_big_batch_is_split_into_frames_of_at_most_32_kb_in_order() {
    // GIVEN alice and bob in arena, and a batch of 20 chat messages of 4,000 bytes from bob
    let (table, server) = table_with_members(&ALICE_AND_BOB_IN_ARENA).await.unwrap();
    let records: Vec<_> = (0..20)
        .map(|i| {
            message_record(
                i,
                &format!("m{i:02}"),
                &format!("{i:02}{}", "x".repeat(3998)),
            )
        })
        .collect();
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_value(json!({ "Records": records })).unwrap();

    // WHEN fanout handles it
    fanout::process(&fanout_state(&table, &server), event).await;

    // THEN alice gets it in as few frames as fit under 32 KB (one billed message each)
    let frames = server.raw_frames("c-alice");
    assert!(
        frames.iter().all(|f| f.len() <= BILLED_MESSAGE_BYTES),
        "sizes {:?}",
        frames.iter().map(|f| f.len()).collect::<Vec<_>>()
    );
    let total: usize = frames.iter().map(|f| f.len()).sum();
    assert_eq!(
        frames.len(),
        total.div_ceil(BILLED_MESSAGE_BYTES),
        "no more frames than the bytes need"
    );
    // AND every message arrives once, in the order bob sent them
    let ids: Vec<_> = server
        .events("c-alice")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, (0..20).map(|i| format!("m{i:02}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_warm_member_cache_serves_repeat_batches_but_never_one_with_a_join() {
    // GIVEN alice and bob in arena, and fanout with a 1 s member cache reached through a proxy
    let (table, server) = table_with_members(&ALICE_AND_BOB_IN_ARENA).await.unwrap();
    let faulty = FaultyDynamo::start(&table.endpoint, "chan#arena")
        .await
        .unwrap();
    faulty.heal();
    let mut settings = table.settings.clone();
    settings.member_cache_ms = 1_000;
    let state = FanoutState::new(faulty.store(&table), server.client(), &settings);
    let batch = fixture("stream-query-failure.json", &[]).unwrap();
    let mut first = batch.clone();
    first.records.truncate(1);
    let (response, _) = fanout::process(&state, first).await;
    assert!(response.batch_item_failures.is_empty());

    // WHEN arena's member Query starts failing and another arena batch comes within the second
    faulty.break_again();
    let mut second = batch.clone();
    second.records = vec![batch.records[2].clone()];
    let (response, _) = fanout::process(&state, second).await;

    // THEN it is served from the cache: delivered, nothing failed
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        texts(&server, "c-alice"),
        [json!("before the failure"), json!("after the failure")]
    );

    // WHEN a batch carries a join to arena THEN the members are read fresh (and here fail)
    let join = fixture("stream-two-channels.json", &[]).unwrap();
    let mut with_join = join.clone();
    with_join.records = vec![join_record()];
    let (response, _) = fanout::process(&state, with_join).await;
    assert_eq!(response.batch_item_failures.len(), 1);
}

/// A Lambda-shaped INSERT of carol's arena roster entry (her join).
fn join_record() -> aws_lambda_events::dynamodb::EventRecord {
    let image = json!({
        "pk": {"S": "chan#arena"}, "sk": {"S": "c-carol"}, "kind": {"S": "roster"},
        "channel": {"S": "arena"},
        "connection_id": {"S": "c-carol"}, "user": {"S": "carol"},
        "domain": {"S": "abc.execute-api.us-east-1.amazonaws.com"}, "stage": {"S": "prod"},
        "ts": {"N": "1795000000500"}, "expires_at": {"N": "4000000000"}
    });
    let record = StreamRecord::write("INSERT", "j1", image)
        .created_secs(1_795_000_000)
        .sequence_number("600000000000000000001")
        .size_bytes(300);
    serde_json::from_value(record.to_json()).unwrap()
}
