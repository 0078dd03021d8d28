//! Isolation: one connection's trouble stays its own. Recorded batches in Lambda's shape go
//! through the real `fanout` on DynamoDB Local, posting to the loopback `@connections` server:
//! a member that never reads, a connection that never gets established, a clean-up cut short.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use aws_lambda_events::encodings::Body;
use fanout::FanoutState;
use fanout::welcome::WELCOME_TRIES;
use ingest::IngestState;
use ripple::apigw::message_event;
use ripple_tests::{
    FaultyDynamo, RecordingConnections, TestTable, batch, message_record, seed, seed_live,
    ws_context,
};

fn state(table: &TestTable, server: &RecordingConnections) -> FanoutState {
    FanoutState::new(table.store.clone(), server.client(), &table.settings)
}

fn texts(server: &RecordingConnections, id: &str) -> Vec<String> {
    server
        .events(id)
        .iter()
        .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_member_that_never_reads_is_disconnected_and_nobody_else_gets_copies_or_waits() {
    // GIVEN alice, carol and dan in arena, and carol's client not reading (every post: 429)
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    for (id, user) in [("c-alice", "alice"), ("c-carol", "carol"), ("c-dan", "dan")] {
        seed_live(&table, &server, id, user, &["arena"])
            .await
            .unwrap();
    }
    server.mark_throttled("c-carol");
    let state = state(&table, &server);
    let now = ripple_common::now_ms();
    let event = batch(vec![
        message_record("100", "m1", "one", now),
        message_record("200", "m2", "two", now + 1),
    ])
    .unwrap();

    // WHEN fanout handles a batch of two messages from bob
    let (response, report) = fanout::process(&state, event).await;

    // THEN the batch is not handed back: nobody gets the messages a second time
    assert!(response.batch_item_failures.is_empty());
    // AND alice and dan have each message once
    for id in ["c-alice", "c-dan"] {
        assert_eq!(texts(&server, id), ["one", "two"], "{id}");
    }
    // AND carol, the slow consumer, was disconnected (DELETE @connections), nobody else
    assert_eq!(server.deleted(), ["c-carol"]);
    assert_eq!(report.slow_disconnected, 1);
    // AND her 429s slowed the shared pacer once at most (1 ms), not once per retry
    assert!(state.pacer.slowdown() <= Duration::from_millis(1));
}

#[tokio::test]
async fn when_most_members_get_429_it_is_the_account_rate_and_the_batch_goes_back() {
    // GIVEN three members in arena, all answered 429 (the account's rate, not their clients)
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    for (id, user) in [("c-alice", "alice"), ("c-carol", "carol"), ("c-dan", "dan")] {
        seed_live(&table, &server, id, user, &["arena"])
            .await
            .unwrap();
        server.mark_throttled(id);
    }
    let state = state(&table, &server);
    let now = ripple_common::now_ms();
    let event = batch(vec![message_record("100", "m1", "one", now)]).unwrap();

    // WHEN fanout handles the batch
    let (response, report) = fanout::process(&state, event).await;

    // THEN Lambda gets it back to retry, and nobody is disconnected for it
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(report.slow_disconnected, 0);
    assert!(server.deleted().is_empty());
}

#[tokio::test]
async fn a_welcome_that_meets_410_is_tried_again_through_the_stream_and_holds_nobody_back() {
    // GIVEN alice in arena, and a new connection (not welcomed) that answers 410: a client that
    // opened and dropped at once, whose `$disconnect` never came (never marked live, it would
    // answer 410 too, as one whose `$connect` has not completed)
    let mut table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    seed_live(&table, &server, "c-alice", "alice", &["arena"])
        .await
        .unwrap();
    let connection = ripple_common::items::ConnectionItem::new(
        "c-ghost",
        "ghost",
        &ripple_common::items::Endpoint {
            domain: "abc.execute-api.us-east-1.amazonaws.com".into(),
            stage: "prod".into(),
        },
        ripple_common::now_ms(),
        4_000_000_000,
    );
    ripple::seed::connection(&table.store, &connection, &["arena"], 1)
        .await
        .unwrap();
    server.mark_gone("c-ghost");
    table.take_stream_event().await.unwrap();
    let state = state(&table, &server);
    let now = ripple_common::now_ms();
    let insert = ripple_common::stream_record::StreamRecord::write(
        "INSERT",
        "50",
        serde_json::to_value(serde_dynamo::to_item::<_, serde_dynamo::Item>(&connection).unwrap())
            .unwrap(),
    )
    .created_secs(1_795_000_000)
    .sequence_number("50")
    .size_bytes(300)
    .to_json();

    // WHEN fanout handles a batch: the ghost's connection record, then a message to arena
    let (response, report) = fanout::process(
        &state,
        batch(vec![insert, message_record("100", "m1", "one", now)]).unwrap(),
    )
    .await;

    // THEN nothing is handed back and alice has the message at once: nobody waits for the ghost
    assert!(response.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(texts(&server, "c-alice"), ["one"], "{report:?}");
    assert_eq!(report.welcome_retries, 1);
    // AND each further try comes back through the stream, until the tries are spent and the
    // connection is deleted with its membership
    let mut greetings = 1;
    while table.connection_item_count("c-ghost").await.unwrap() > 0 {
        let event = table.take_stream_event().await.unwrap();
        assert!(
            !event.records.is_empty(),
            "a try must come back through the stream"
        );
        let (response, _) = fanout::process(&state, event).await;
        assert!(response.batch_item_failures.is_empty());
        greetings += 1;
        assert!(greetings <= WELCOME_TRIES, "more greetings than tries");
    }
    assert_eq!(greetings, WELCOME_TRIES);
    // AND it never reached arena's roster: nobody heard it join
    assert!(
        !server
            .events("c-alice")
            .iter()
            .any(|e| e["user"] == "ghost"),
        "{:?}",
        server.events("c-alice")
    );
}

#[tokio::test]
async fn a_clean_up_cut_short_leaves_the_connection_to_find_again_not_a_ghost_member() {
    // GIVEN carol connected and in arena's roster, and DynamoDB failing every write that names
    // her roster entry (its sort key is her connection id)
    let table = TestTable::new().await.unwrap();
    seed(&table, "c-carol", "carol", &["arena"]).await.unwrap();
    let faulty = FaultyDynamo::start(&table.endpoint, r#""S":"c-carol""#)
        .await
        .unwrap();
    let store = faulty.store(&table);

    // WHEN her connection is deleted (a 410, the sweep, `$disconnect`) and the roster step fails
    assert!(store.delete_connection("c-carol").await.is_err());

    // THEN her connection item and her membership are still there, so the sweep or the next
    // 410 finds them again, and through the membership the roster entry it names
    let connection = table.store.get_connection("c-carol").await.unwrap();
    assert!(connection.is_some());
    let members = table.store.connection_members("c-carol").await.unwrap();
    assert_eq!(members.len(), 1);
    // AND once DynamoDB recovers, deleting again leaves nothing of her, roster included
    faulty.heal();
    store.delete_connection("c-carol").await.unwrap();
    assert_eq!(table.connection_item_count("c-carol").await.unwrap(), 0);
    assert!(
        table
            .store
            .channel_members("arena")
            .await
            .unwrap()
            .iter()
            .all(|m| m.connection_id != "c-carol")
    );
}

/// What ingest answered `frame` from `connection_id`: the answer's `type`, or its error `code`.
async fn answer(ingest: &IngestState, connection_id: &str, frame: &str) -> String {
    let event = message_event(&ws_context(connection_id), frame, ripple_common::now_ms()).unwrap();
    let response = ingest::handle(ingest, event).await;
    let Some(Body::Text(body)) = response.body else {
        return "no answer".into();
    };
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    match reply["type"].as_str() {
        Some("error") => reply["code"].as_str().unwrap_or_default().to_owned(),
        other => other.unwrap_or_default().to_owned(),
    }
}

#[tokio::test]
async fn a_join_after_the_clean_up_began_is_refused_and_writes_nothing() {
    // GIVEN carol's clean-up begun and cut short (DynamoDB failing every write naming her roster
    // entry), so her connection item is still there, marked closing
    let table = TestTable::new().await.unwrap();
    seed(&table, "c-carol", "carol", &["arena"]).await.unwrap();
    let faulty = FaultyDynamo::start(&table.endpoint, r#""S":"c-carol""#)
        .await
        .unwrap();
    assert!(
        faulty
            .store(&table)
            .delete_connection("c-carol")
            .await
            .is_err()
    );
    let before = table.connection_item_count("c-carol").await.unwrap();
    // WHEN a `join` of hers runs now (frames and `$disconnect` are separate invocations)
    let ingest = IngestState::new(table.store.clone(), table.settings.clone());
    let code = answer(&ingest, "c-carol", r#"{"action":"join","channel":"lobby"}"#).await;
    // THEN it is refused and writes no membership for the clean-up to miss
    assert_eq!(code, "bad_request");
    assert_eq!(
        table.connection_item_count("c-carol").await.unwrap(),
        before
    );
    assert!(
        table
            .store
            .get_member("c-carol", "lobby")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn joins_racing_the_clean_up_leave_no_member_behind() {
    // GIVEN ten connections, each in arena
    let table = TestTable::new().await.unwrap();
    let ids: Vec<String> = (0..10).map(|i| format!("c-racer-{i}")).collect();
    for id in &ids {
        seed(&table, id, id, &["arena"]).await.unwrap();
    }
    let ingest = IngestState::new(table.store.clone(), table.settings.clone());
    // WHEN each sends eight joins while its `$disconnect` clean-up runs
    let mut answers = Vec::new();
    for id in &ids {
        let joins = (0..8).map(|i| {
            let frame = format!(r#"{{"action":"join","channel":"room-{i}"}}"#);
            let ingest = &ingest;
            async move { answer(ingest, id, &frame).await }
        });
        let (clean_up, joined) = tokio::join!(
            table.store.delete_connection(id),
            futures::future::join_all(joins)
        );
        clean_up.unwrap();
        answers.extend(joined);
    }
    // THEN each join was either written before the clean-up (and removed by it) or refused,
    // and nothing of any connection is left
    assert!(
        answers.iter().all(|a| a == "joined" || a == "bad_request"),
        "{answers:?}"
    );
    for id in &ids {
        assert_eq!(table.connection_item_count(id).await.unwrap(), 0, "{id}");
    }
}

#[tokio::test]
async fn a_join_storm_in_one_batch_gets_its_snapshots_built_together_within_the_deadline() {
    // GIVEN 20 connections joining arena in one batch (their roster entries' stream records),
    // and the channel's chat history slow to read (500 ms per Query: 10 s one after another)
    let mut table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("c-joiner-{i:02}")).collect();
    for id in &ids {
        seed_live(&table, &server, id, id, &["arena"])
            .await
            .unwrap();
    }
    let event = table.take_stream_event().await.unwrap();
    let slow = FaultyDynamo::slow(&table.endpoint, "msg#arena", Duration::from_millis(500))
        .await
        .unwrap();
    let state = FanoutState::new(slow.store(&table), server.client(), &table.settings);
    // WHEN fanout runs it with 6 s left before its deadline
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    let (response, report) = fanout::process_until(&state, event, Some(deadline)).await;
    // THEN every joiner got its snapshot and nothing was handed back
    assert!(response.batch_item_failures.is_empty(), "{report:?}");
    for id in &ids {
        let snapshots = server
            .frames(id)
            .iter()
            .filter(|f| f["type"] == "snapshot")
            .count();
        assert_eq!(snapshots, 1, "{id}");
    }
}
