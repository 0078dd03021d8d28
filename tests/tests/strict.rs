//! The rules AWS imposes, on `ripple dev`'s strict defaults and on replayed batches: posts
//! refused (410) before a connection is established, several shards read at Lambda's cadence,
//! posts failing, the function's deadline, and a roster read racing a join.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use fanout::FanoutState;
use ripple::dev::DevOptions;
use ripple::dev::faults::FaultSpec;
use ripple_tests::dev_counter as counter;
use ripple_tests::{
    Mapping, RecordingConnections, TestTable, WsClient, batch, chat_message, eventually,
    first_file_in, message_record, seed, seed_live, start_dev, texts, ws_url as url,
};
use serde_json::Value;

#[tokio::test]
async fn connections_still_being_established_keep_their_welcome_snapshot_and_memberships() {
    // GIVEN API Gateway taking 1.5 s to establish each connection after `$connect` returned
    let server = start_dev(DevOptions {
        connect_delay: Duration::from_millis(1500),
        ..DevOptions::default()
    })
    .await
    .unwrap();
    // WHEN four players connect to arena at the same moment
    let urls: Vec<String> = ["ann", "ben", "cat", "dan"]
        .iter()
        .map(|user| url(&server, &format!("user={user}&channel=arena")))
        .collect();
    let connects: Vec<_> = urls.iter().map(|u| WsClient::connect(u)).collect();
    let mut players: Vec<WsClient> = futures::future::join_all(connects)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // THEN each got `welcome` first (WsClient::connect insists) and then its snapshot (events of
    // the others' joins may come just before it: the snapshot is a state, not a fence)
    for p in &mut players {
        let snapshot = p.wait_for_snapshot("arena").await.unwrap();
        assert!(
            snapshot["members"]
                .as_array()
                .unwrap()
                .contains(&Value::from(p.user.clone()))
        );
    }
    // AND the emulator did refuse posts while they were being established (the race happened)
    assert!(counter(&server, "posts_gone_total") > 0);
    // AND every connection kept its items and can publish (not `not_member`)
    for p in &players {
        let items = server.store.connection_members(&p.id).await.unwrap();
        assert_eq!(items.len(), 1, "{} lost its membership", p.user);
    }
    players[0]
        .send(r#"{"action":"message","channel":"arena","text":"marker"}"#)
        .await
        .unwrap();
    for p in players.iter_mut().skip(1) {
        p.wait_for_event(|e| e["text"] == "marker").await.unwrap();
        // AND nobody heard a `leave` of someone still connected
        assert!(
            p.seen_events().iter().all(|e| e["type"] != "leave"),
            "{}: {:?}",
            p.user,
            p.seen_events()
        );
    }
    server.shutdown().await;
}

/// Chat messages by sender, in arrival order, each `id` once; and whether a user's position
/// `seq` ever went down.
fn chat_by_sender(events: &[Value]) -> (BTreeMap<String, Vec<String>>, bool) {
    let mut seen_ids = HashSet::new();
    let mut by_sender: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut went_back = false;
    for e in events {
        match e["type"].as_str() {
            Some("message") if seen_ids.insert(e["id"].as_str().unwrap().to_owned()) => {
                by_sender
                    .entry(e["user"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(e["text"].as_str().unwrap().to_owned());
            }
            Some("position") => {
                let user = e["user"].as_str().unwrap().to_owned();
                let seq = e["seq"].as_u64().unwrap();
                if last_seq.get(&user).is_some_and(|s| seq < *s) {
                    went_back = true;
                }
                last_seq.insert(user, seq);
            }
            _ => {}
        }
    }
    (by_sender, went_back)
}

async fn burst(
    server: &ripple::dev::DevServer,
    senders: &[&str],
    per_sender: usize,
    pause: Duration,
    receivers: &mut [WsClient],
) {
    let mut clients = Vec::new();
    for s in senders {
        let mut c = WsClient::connect(&url(server, &format!("user={s}&channel=arena")))
            .await
            .unwrap();
        c.wait_for_snapshot("arena").await.unwrap();
        clients.push(c);
    }
    for r in receivers.iter_mut() {
        for s in senders {
            r.wait_for_event(|e| e["type"] == "join" && e["user"] == *s)
                .await
                .unwrap();
        }
    }
    // Senders interleave: each sends its messages (and a position) in order, all at once; each
    // message after the one before was acknowledged (frames not waited for run concurrently).
    let sends = clients.iter_mut().map(|c| async move {
        for i in 0..per_sender {
            let answer = c
                .request(&format!(
                    r#"{{"action":"message","channel":"arena","text":"{} {i:03}"}}"#,
                    c.user
                ))
                .await
                .unwrap();
            assert_eq!(answer["type"], "ack", "{answer}");
            c.send(&format!(
                r#"{{"action":"position","channel":"arena","x":{i},"y":0,"seq":{}}}"#,
                i + 1
            ))
            .await
            .unwrap();
            tokio::time::sleep(pause).await;
        }
    });
    futures::future::join_all(sends).await;
    for r in receivers.iter_mut() {
        for s in senders {
            let last = format!("{s} {:03}", per_sender - 1);
            if !r.seen_events().iter().any(|e| e["text"] == last.as_str()) {
                r.wait_for_event(|e| e["text"] == last.as_str())
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn chat_bursts_over_four_shards_arrive_complete_and_in_each_senders_order() {
    // GIVEN the deployed mapping on 4 shards, and a receiver in arena
    let server = start_dev(ripple_tests::dev_options(|s| {
        s.message_rate = 1000;
        s.position_rate = 1000;
    }))
    .await
    .unwrap();
    assert_eq!(server_shards(), 4);
    let mut receiver = WsClient::connect(&url(&server, "user=rex&channel=arena"))
        .await
        .unwrap();
    receiver.wait_for_snapshot("arena").await.unwrap();
    // WHEN three senders burst 60 chat messages each, with positions in between
    let mut receivers = [receiver];
    burst(
        &server,
        &["s1", "s2", "s3"],
        60,
        Duration::ZERO,
        &mut receivers,
    )
    .await;
    // THEN every message arrived, in each sender's order, and no position went back
    let (chat, went_back) = chat_by_sender(&receivers[0].seen_events());
    for s in ["s1", "s2", "s3"] {
        let expected: Vec<String> = (0..60).map(|i| format!("{s} {i:03}")).collect();
        assert_eq!(chat.get(s), Some(&expected), "{s}");
    }
    assert!(!went_back);
    server.shutdown().await;
}

fn server_shards() -> usize {
    ripple::dev::mapping::MappingConfig::default().shards
}

#[tokio::test]
async fn with_four_in_ten_posts_failing_no_chat_message_is_lost() {
    // GIVEN @connections answering 500 to 40% of posts
    let server = start_dev(DevOptions {
        faults: "error=0.4".parse().unwrap(),
        ..ripple_tests::dev_options(|s| {
            s.message_rate = 1000;
            s.position_rate = 1000;
        })
    })
    .await
    .unwrap();
    let mut receivers = Vec::new();
    for user in ["r1", "r2"] {
        let mut r = WsClient::connect(&url(&server, &format!("user={user}&channel=arena")))
            .await
            .unwrap();
        r.wait_for_snapshot("arena").await.unwrap();
        receivers.push(r);
    }
    // WHEN two senders send 30 messages each, about one per poll (so each is its own batch and
    // its own posts: about 120 frames, of which ~3 fail all 4 attempts)
    burst(
        &server,
        &["s1", "s2"],
        30,
        Duration::from_millis(250),
        &mut receivers,
    )
    .await;
    // THEN every member got every message at least once, copies sharing one id, in order
    for r in &receivers {
        let (chat, _) = chat_by_sender(&r.seen_events());
        for s in ["s1", "s2"] {
            let expected: Vec<String> = (0..30).map(|i| format!("{s} {i:03}")).collect();
            assert_eq!(chat.get(s), Some(&expected), "{} from {s}", r.user);
        }
        let mut texts_by_id: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for e in r.seen_events().iter().filter(|e| e["type"] == "message") {
            texts_by_id
                .entry(e["id"].as_str().unwrap().to_owned())
                .or_default()
                .insert(e["text"].as_str().unwrap().to_owned());
        }
        assert!(texts_by_id.values().all(|t| t.len() == 1));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn near_the_deadline_fanout_stops_and_hands_the_rest_back_to_lambda() {
    // GIVEN ten members and @connections taking 300 ms a post, one at a time
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    for i in 0..10 {
        seed_live(
            &table,
            &server,
            &format!("c-{i}"),
            &format!("u{i}"),
            &["arena"],
        )
        .await
        .unwrap();
    }
    server.inject(FaultSpec {
        latency: Duration::from_millis(300),
        ..FaultSpec::default()
    });
    let mut settings = table.settings.clone();
    settings.max_in_flight = 1;
    let state = FanoutState::new(table.store.clone(), server.client(), &settings);
    let now = ripple_common::now_ms();
    let event = batch(vec![
        message_record("100", "m1", "one", now),
        message_record("200", "m2", "two", now + 1),
    ])
    .unwrap();
    // WHEN the invocation has 2 s left: not enough for ten posts
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let (response, report) = fanout::process_until(&state, event.clone(), Some(deadline)).await;
    // THEN it returned before the deadline, naming the first record not everyone got
    assert!(std::time::Instant::now() < deadline);
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some("100")
    );
    assert!(report.delivery.deadline_skipped > 0);
    // WHEN Lambda resends it without the deadline pressure
    server.inject(FaultSpec::default());
    let (response, _) = fanout::process(&state, event).await;
    assert!(response.batch_item_failures.is_empty());
    // THEN every member has both messages (once after dropping copies by id)
    for i in 0..10 {
        let ids: HashSet<String> = server
            .events(&format!("c-{i}"))
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids,
            HashSet::from(["m1".to_owned(), "m2".to_owned()]),
            "c-{i}"
        );
    }
}

#[tokio::test]
async fn a_joiner_gets_chat_whose_fan_out_read_the_roster_before_it_and_a_leaver_none_after() {
    // GIVEN alice in arena, and carol whose membership exists but whose roster entry is not
    // written yet (fanout has not activated it)
    let mut table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    seed_live(&table, &server, "c-alice", "alice", &["arena"])
        .await
        .unwrap();
    seed_live(&table, &server, "c-carol", "carol", &[])
        .await
        .unwrap();
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);
    let conn = table
        .store
        .get_connection("c-carol")
        .await
        .unwrap()
        .unwrap();
    let now = ripple_common::now_ms();
    let carol = ripple_common::items::MemberItem::new(&conn, "arena", now);
    table.store.put_member(&carol).await.unwrap();
    table.take_stream_event().await.unwrap();
    // WHEN a message written after her join is fanned out before her roster entry exists
    let message = ripple_common::items::MessageItem {
        pk: ripple_common::keys::message_pk("arena"),
        sk: ripple_common::keys::message_sk(now + 5, "m-late"),
        kind: ripple_common::items::Kind::Message,
        channel: "arena".into(),
        user: "bob".into(),
        sender: "c-bob".into(),
        id: "m-late".into(),
        text: "raced".into(),
        ts: now + 5,
        expires_at: 4_000_000_000,
    };
    table.store.put_message(&message).await.unwrap();
    let (response, _) = fanout::process(&state, table.take_stream_event().await.unwrap()).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(server.events("c-carol").is_empty());
    // AND then her activation and her join are fanned out (in the order the stream had them)
    assert!(fanout::welcome::activate(&state, &carol).await.unwrap());
    let (response, _) = fanout::process(&state, table.take_stream_event().await.unwrap()).await;
    assert!(response.batch_item_failures.is_empty());
    // THEN her snapshot carries the message she would have missed
    let snapshot = server
        .frames("c-carol")
        .into_iter()
        .find(|f| f["type"] == "snapshot")
        .unwrap();
    assert_eq!(snapshot["messages"][0]["id"], "m-late");

    // WHEN alice leaves and a message follows
    assert!(
        table
            .store
            .delete_member("c-alice", "arena")
            .await
            .unwrap()
            .is_some()
    );
    let before = server.events("c-alice").len();
    let mut bye = message.clone();
    bye.id = "m-after".into();
    bye.sk = ripple_common::keys::message_sk(now + 10, "m-after");
    bye.ts = now + 10;
    table.store.put_message(&bye).await.unwrap();
    fanout::process(&state, table.take_stream_event().await.unwrap()).await;
    // THEN she does not get it, carol does
    assert_eq!(server.events("c-alice").len(), before);
    assert!(
        server
            .events("c-carol")
            .iter()
            .any(|e| e["id"] == "m-after")
    );
}

#[tokio::test]
async fn a_batch_that_times_out_is_bisected_and_the_poison_record_goes_to_the_failure_folder() {
    use ripple::dev::mapping::MappingConfig;
    use std::sync::{Arc, Mutex};
    // GIVEN eight messages on the stream, one of which makes the function hang past its timeout
    let table = TestTable::new().await.unwrap();
    for i in 0..8 {
        let text = if i == 5 { "poison" } else { "fine" };
        table
            .store
            .put_message(&chat_message(i, text))
            .await
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("ripple-on-failure-{}", ripple_common::now_ms()));
    let config = MappingConfig {
        shards: 1,
        poll_interval: Duration::from_millis(50),
        function_timeout: Duration::from_secs(1),
        max_retries: Some(1),
        on_failure_dir: Some(dir.clone()),
        ..MappingConfig::default()
    };
    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&done);
    let handler = move |event: aws_lambda_events::dynamodb::Event, _deadline| {
        let seen = Arc::clone(&seen);
        async move {
            if texts(&event).iter().any(|t| t == "poison") {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            seen.lock().unwrap().extend(
                event
                    .records
                    .iter()
                    .filter_map(|r| r.change.sequence_number.clone()),
            );
            Ok(aws_lambda_events::streams::DynamoDbEventResponse::default())
        }
    };
    let mapping = Mapping::start(&table, config, handler).await.unwrap();

    // WHEN the mapping runs until the failure folder has a message
    let file = first_file_in(&dir, Duration::from_secs(30)).await.unwrap();
    // Shards are polled on their own: the others' records may still be on their way (no order
    // across shards), so they get the same bound before the mapping stops.
    let _ = eventually(
        "the seven other records processed",
        Duration::from_secs(30),
        || done.lock().unwrap().len() >= 7,
    )
    .await;
    mapping.stop().await;

    // THEN the other seven records were processed, and the poison one alone was discarded with
    // the metadata Lambda sends to SQS
    assert_eq!(done.lock().unwrap().len(), 7);
    let message: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let info = &message["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    assert!(
        !done
            .lock()
            .unwrap()
            .contains(&info["startSequenceNumber"].as_str().unwrap().to_owned())
    );
    assert!(info["shardId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        info["streamArn"]
            .as_str()
            .is_some_and(|s| s.contains("/stream/"))
    );
    assert_eq!(
        message["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    // (invoked as part of 8, 4 and 2 records, then alone, then its one retry)
    assert_eq!(message["requestContext"]["approximateInvokeCount"], 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_roster_entry_is_never_written_for_a_membership_that_is_gone() {
    // GIVEN a connection whose membership was deleted (a leave or a disconnect won the race)
    let table = TestTable::new().await.unwrap();
    seed(&table, "c-gone", "gus", &[]).await.unwrap();
    let conn = table.store.get_connection("c-gone").await.unwrap().unwrap();
    let member = ripple_common::items::MemberItem::new(&conn, "arena", 1);
    // WHEN fanout tries to put it in the roster
    let written = table.store.put_roster(&member).await.unwrap();
    // THEN nothing is written
    assert!(!written);
    assert!(
        table
            .store
            .channel_members("arena")
            .await
            .unwrap()
            .is_empty()
    );
}
