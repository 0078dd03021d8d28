//! Presence, late-join snapshot, session resume, the stale-connection sweep and the init warm-up,
//! against `ripple dev` (real WebSockets, DynamoDB Local with its TTL and stream) and recorded
//! records.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use fanout::FanoutState;
use fanout::sweep::{SweepConfig, SweepReport, sweep, sweep_until};
use ripple::dev::DevOptions;
use ripple_common::items::{ConnectionItem, Endpoint, MemberItem};
use ripple_tests::{RecordingConnections, TestTable, WsClient, fixture, start_dev, ws_url as url};
use serde_json::{Value, json};

/// Reads frames until a `snapshot` for `channel` arrives.
async fn snapshot(client: &mut WsClient, channel: &str) -> Value {
    client.wait_for_snapshot(channel).await.unwrap()
}

#[tokio::test]
async fn a_late_joiner_gets_members_positions_and_history_then_events() {
    // GIVEN alice in arena, who moved and chatted before bob arrived
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&url(&server, "user=alice&channel=arena"))
        .await
        .unwrap();
    let mut carol = WsClient::connect(&url(&server, "user=carol&channel=arena"))
        .await
        .unwrap();
    alice
        .send(r#"{"action":"position","channel":"arena","x":7,"y":8,"seq":3}"#)
        .await
        .unwrap();
    alice
        .send(r#"{"action":"message","channel":"arena","text":"before bob"}"#)
        .await
        .unwrap();
    carol
        .wait_for_event(|e| e["text"] == "before bob")
        .await
        .unwrap();

    // WHEN bob joins arena asking for the history since the epoch
    let mut bob = WsClient::connect(&url(&server, "user=bob&channel=arena&since=0"))
        .await
        .unwrap();
    let snap = snapshot(&mut bob, "arena").await;

    // THEN the snapshot lists everyone, alice's latest position and the chat so far
    assert_eq!(snap["members"], json!(["alice", "bob", "carol"]));
    let positions = snap["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 1, "{snap}");
    assert_eq!(
        (
            positions[0]["user"].clone(),
            positions[0]["x"].clone(),
            positions[0]["seq"].clone()
        ),
        (json!("alice"), json!(7.0), json!(3))
    );
    let texts: Vec<_> = snap["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, [json!("before bob")]);
    // AND alice hears bob join (presence), and what follows reaches bob as events
    alice
        .wait_for_event(|e| e["type"] == "join" && e["user"] == "bob")
        .await
        .unwrap();
    alice
        .send(r#"{"action":"message","channel":"arena","text":"hi bob"}"#)
        .await
        .unwrap();
    bob.wait_for_event(|e| e["text"] == "hi bob").await.unwrap();

    // AND a join without `since` gets a snapshot with the chat since the join only (none yet)
    bob.send(r#"{"action":"join","channel":"lobby"}"#)
        .await
        .unwrap();
    let lobby = snapshot(&mut bob, "lobby").await;
    assert_eq!(lobby["members"], json!(["bob"]));
    assert_eq!(lobby["messages"], json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn the_resume_cursor_is_the_close_not_the_late_handling_of_its_disconnect() {
    // GIVEN bob connected to arena, through the real connect handler
    let table = TestTable::new().await.unwrap();
    let connect = connect::ConnectState::new(table.store.clone(), table.settings.clone());
    let q = [
        ("user".to_owned(), "bob".to_owned()),
        ("channel".to_owned(), "arena".to_owned()),
    ];
    let bob = ripple_tests::ws_context("bob1");
    let ev = ripple::apigw::connect_event(&bob, &[], &q, 1).unwrap();
    assert_eq!(connect::handle(&connect, ev).await.status_code, 200);
    // WHEN his socket closes at `closed_at`, and his `$disconnect` (best effort on AWS, late
    // under load) is handled 2 s later
    let closed_at = ripple_common::now_ms() - 2_000;
    let bye = ripple::apigw::disconnect_event(&bob, 1001, "gone", closed_at).unwrap();
    assert_eq!(connect::handle(&connect, bye).await.status_code, 200);
    // THEN the session's cursor is the close (the event's requestTimeEpoch), so chat written
    // while the clean-up was on its way comes back with resume
    let session = table.store.take_session("bob").await.unwrap().unwrap();
    assert_eq!(session.channels, ["arena"]);
    assert_eq!(session.ended_at, closed_at);
}

#[tokio::test]
async fn a_user_who_reconnects_within_the_window_gets_its_channels_and_missed_chat_back() {
    // GIVEN bob in arena and lobby, and alice in both
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&url(&server, "user=alice&channel=arena&channel=lobby"))
        .await
        .unwrap();
    let bob = WsClient::connect(&url(&server, "user=bob&channel=arena&channel=lobby"))
        .await
        .unwrap();
    alice
        .wait_for_event(|e| e["type"] == "join" && e["user"] == "bob" && e["channel"] == "lobby")
        .await
        .unwrap();

    // WHEN bob's network drops and alice chats while he is away
    bob.close().await;
    alice
        .wait_for_event(|e| e["type"] == "leave" && e["user"] == "bob" && e["channel"] == "lobby")
        .await
        .unwrap();
    // (each written before he is back: an ack, not a pause, says so)
    for (channel, text) in [("arena", "missed 1"), ("lobby", "missed 2")] {
        let ack = alice
            .request(&format!(
                r#"{{"action":"message","channel":"{channel}","text":"{text}"}}"#
            ))
            .await
            .unwrap();
        assert_eq!(ack["type"], "ack", "{ack}");
    }

    // AND he reconnects with resume, naming no channel
    let mut bob = WsClient::connect(&url(&server, "user=bob&resume=1"))
        .await
        .unwrap();

    // THEN he is back in both channels, each snapshot carrying what he missed there
    let arena = snapshot(&mut bob, "arena").await;
    let lobby = snapshot(&mut bob, "lobby").await;
    let texts = |s: &Value| {
        s["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&arena), [json!("missed 1")]);
    assert_eq!(texts(&lobby), [json!("missed 2")]);
    // AND he receives new events again
    alice
        .send(r#"{"action":"message","channel":"lobby","text":"welcome back"}"#)
        .await
        .unwrap();
    bob.wait_for_event(|e| e["text"] == "welcome back")
        .await
        .unwrap();

    // AND the session was used up: another resume finds nothing to restore
    let mut again = WsClient::connect(&url(&server, "user=bob&resume=1"))
        .await
        .unwrap();
    again
        .send(r#"{"action":"message","channel":"arena","text":"x"}"#)
        .await
        .unwrap();
    let reply = again.next_frame().await.unwrap().unwrap();
    assert_eq!(reply["code"], "not_member", "{reply}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_ghost_membership_past_its_ttl_is_removed_and_announced_as_leave() {
    // GIVEN alice in arena, and a ghost: a membership (with its roster entry) past its TTL whose
    // connection API Gateway no longer knows
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&url(&server, "user=alice&channel=arena"))
        .await
        .unwrap();
    // (her snapshot comes once she is in arena's roster, from where she hears events)
    snapshot(&mut alice, "arena").await;
    let endpoint = Endpoint {
        domain: "127.0.0.1:1".into(),
        stage: "local".into(),
    };
    let now = ripple_common::now_ms();
    let ghost = ConnectionItem::new("ghost", "ghost", &endpoint, now, now / 1000 - 1);
    let membership = MemberItem::new(&ghost, "arena", now);
    server.store.put_member(&membership).await.unwrap();
    server.store.put_member(&membership.roster()).await.unwrap();

    // WHEN fanout meets it (its snapshot answers 410: it is deleted; or DynamoDB's TTL removes it)
    // THEN alice hears the ghost join and then leave
    alice
        .wait_for_event(|e| e["type"] == "join" && e["user"] == "ghost")
        .await
        .unwrap();
    let leave = alice
        .wait_for_event(|e| e["type"] == "leave" && e["user"] == "ghost")
        .await
        .unwrap();
    assert_eq!(leave["channel"], "arena");
    server.shutdown().await;
}

#[tokio::test]
async fn a_recorded_aws_ttl_removal_of_a_membership_is_announced_as_leave() {
    // GIVEN alice in arena and the record AWS's TTL service writes when dan's membership expires
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let endpoint = Endpoint {
        domain: "x".into(),
        stage: "prod".into(),
    };
    let alice = ConnectionItem::new("c-alice", "alice", &endpoint, 1, 4_000_000_000);
    table
        .store
        .put_member(&MemberItem::new(&alice, "arena", 1).roster())
        .await
        .unwrap();
    server.mark_live("c-alice");
    let event = fixture("stream-ttl-membership-removal.json", &[]).unwrap();
    assert_eq!(
        event.records[0]
            .user_identity
            .as_ref()
            .unwrap()
            .principal_id,
        "dynamodb.amazonaws.com"
    );

    // WHEN fanout handles it
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);
    fanout::process(&state, event).await;

    // THEN alice is told dan left
    assert_eq!(
        server.events("c-alice"),
        [json!({"type":"leave","channel":"arena","user":"dan"})]
    );
}

#[tokio::test]
async fn the_sweep_deletes_dead_connections_keeps_live_ones_and_announces_leave() {
    // GIVEN three connections in arena: alice (live, connected 30 minutes ago), one whose socket
    // is gone (20 minutes old) and one older than API Gateway's 2-hour maximum; and a fresh one
    // (2 minutes old) that the sweep leaves alone
    let mut table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let now = ripple_common::now_ms();
    let endpoint = Endpoint {
        domain: "127.0.0.1:1".into(),
        stage: "local".into(),
    };
    for (id, age_min) in [
        ("alice", 30),
        ("dead-20m", 20),
        ("dead-3h", 180),
        ("fresh", 2),
    ] {
        let conn =
            ConnectionItem::new(id, id, &endpoint, now - age_min * 60_000, now / 1000 + 3600);
        table.store.put_connection(&conn).await.unwrap();
        let member = MemberItem::new(&conn, "arena", now - age_min * 60_000);
        table.store.put_member(&member).await.unwrap();
        table.store.put_roster(&member).await.unwrap();
    }
    server.mark_live("alice");
    server.mark_live("dead-3h"); // API Gateway has closed it for sure: no need to ask
    table.take_stream_event().await.unwrap();

    // WHEN the sweep runs
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);
    let report = sweep(&state, &SweepConfig::default(), ripple_common::now_ms()).await;

    // THEN the two dead ones are deleted with their memberships, alice is kept, fresh not examined
    assert_eq!(
        (report.examined, report.deleted, report.alive),
        (3, 2, 1),
        "{report:?}"
    );
    for id in ["dead-20m", "dead-3h"] {
        assert_eq!(table.connection_item_count(id).await.unwrap(), 0, "{id}");
    }
    assert_eq!(table.connection_item_count("alice").await.unwrap(), 2);
    assert_eq!(table.connection_item_count("fresh").await.unwrap(), 2);
    // AND the over-age socket was closed through @connections DELETE
    assert_eq!(server.deleted(), ["dead-3h"]);

    // AND the removals, fanned out, tell alice both left
    let removals = table.take_stream_event().await.unwrap();
    fanout::process(&state, removals).await;
    let mut left: Vec<_> = server
        .events("alice")
        .iter()
        .filter(|e| e["type"] == "leave")
        .map(|e| e["user"].as_str().unwrap().to_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["dead-20m", "dead-3h"]);
}

/// `n` live connections in arena, connected 20 minutes ago (old enough to be checked), and one
/// fresh (2 minutes) that no sweep examines; the live ones answer `GET @connections` with 200.
async fn live_connections(
    table: &TestTable,
    server: &RecordingConnections,
    n: usize,
) -> Vec<String> {
    let now = ripple_common::now_ms();
    let endpoint = Endpoint {
        domain: "127.0.0.1:1".into(),
        stage: "local".into(),
    };
    let mut ids = Vec::new();
    for i in 0..=n {
        let (id, age_min) = if i == n {
            ("fresh".to_owned(), 2)
        } else {
            (format!("live-{i:02}"), 20)
        };
        let at = now - age_min * 60_000 + i as u64;
        let conn = ConnectionItem::new(&id, &id, &endpoint, at, now / 1000 + 3600);
        table.store.put_connection(&conn).await.unwrap();
        server.mark_live(&id);
        if i < n {
            ids.push(id);
        }
    }
    ids
}

/// A sweep that may start `max_checks` checks per run, fast, reading 2 connections per Query.
fn budgeted(max_checks: Option<usize>) -> SweepConfig {
    SweepConfig {
        checks_per_second: 10_000,
        max_checks,
        page_size: 2,
        ..SweepConfig::default()
    }
}

/// How many times `GET @connections` asked about each id.
fn checks_per_id(server: &RecordingConnections) -> std::collections::BTreeMap<String, usize> {
    let mut per_id = std::collections::BTreeMap::new();
    for id in server.checked() {
        *per_id.entry(id).or_insert(0) += 1;
    }
    per_id
}

#[tokio::test]
async fn a_budgeted_sweep_stops_saves_its_cursor_and_the_next_runs_check_everyone_once_per_cycle() {
    // GIVEN 10 live connections old enough to check (spread over the index shards) and a fresh one
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let ids = live_connections(&table, &server, 10).await;
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);

    // WHEN the sweep runs with a budget of 3 checks per run until a run finishes the cycle
    let mut runs: Vec<SweepReport> = Vec::new();
    while runs.last().is_none_or(|r| !r.cycle_finished) {
        assert!(runs.len() < 10, "the cycle never finished: {runs:?}");
        let report = sweep(&state, &budgeted(Some(3)), ripple_common::now_ms()).await;
        if !report.cycle_finished {
            // THEN a run that stopped early saved where it stopped
            assert!(report.stopped_early, "{report:?}");
            let cursor = table.store.sweep_cursor().await.unwrap().unwrap();
            assert!(cursor.after.is_some() || cursor.shard > 0, "{cursor:?}");
            assert_eq!(cursor.cycles, 0);
        }
        runs.push(report);
    }

    // THEN each run checked at most 3, and together they checked every old connection exactly once
    let examined: Vec<usize> = runs.iter().map(|r| r.examined).collect();
    assert_eq!(examined, [3, 3, 3, 1], "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r.alive == r.examined && r.deleted == 0 && !r.cursor_failed)
    );
    let per_id = checks_per_id(&server);
    assert_eq!(
        per_id.keys().cloned().collect::<Vec<_>>(),
        ids,
        "fresh is never checked"
    );
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    // AND the cursor is back at the start, one cycle done
    let cursor = table.store.sweep_cursor().await.unwrap().unwrap();
    assert_eq!((cursor.shard, cursor.after, cursor.cycles), (0, None, 1));

    // WHEN a second cycle runs (no budget)
    let report = sweep(&state, &budgeted(None), ripple_common::now_ms()).await;
    // THEN it checks everyone once more, and no more
    assert!(report.cycle_finished && !report.stopped_early, "{report:?}");
    assert_eq!(report.examined, 10);
    assert!(checks_per_id(&server).values().all(|n| *n == 2));
}

#[tokio::test]
async fn a_sweep_at_its_deadline_checks_nobody_keeps_its_cursor_and_the_next_run_goes_on() {
    // GIVEN 6 live old connections and a cycle stopped after 2 checks
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let ids = live_connections(&table, &server, 6).await;
    let state = FanoutState::new(table.store.clone(), server.client(), &table.settings);
    let first = sweep(&state, &budgeted(Some(2)), ripple_common::now_ms()).await;
    assert_eq!((first.examined, first.stopped_early), (2, true));
    let saved = table.store.sweep_cursor().await.unwrap().unwrap();

    // WHEN a run starts with its deadline already inside the reserve (a tiny time budget)
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1);
    let late = sweep_until(
        &state,
        &budgeted(None),
        ripple_common::now_ms(),
        Some(deadline),
    )
    .await;

    // THEN it checks nobody and leaves the cursor where it was
    assert_eq!((late.examined, late.stopped_early), (0, true), "{late:?}");
    let kept = table.store.sweep_cursor().await.unwrap().unwrap();
    assert_eq!((kept.shard, &kept.after), (saved.shard, &saved.after));
    assert_eq!(server.checked().len(), 2);

    // AND the next run with time to spare checks the other 4 and finishes the cycle
    let rest = sweep(&state, &budgeted(None), ripple_common::now_ms()).await;
    assert_eq!((rest.examined, rest.cycle_finished), (4, true), "{rest:?}");
    let per_id = checks_per_id(&server);
    assert_eq!(per_id.keys().cloned().collect::<Vec<_>>(), ids);
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
}

#[tokio::test]
async fn the_init_warm_up_opens_dynamodb_and_connections_and_survives_a_dead_endpoint() {
    // GIVEN a table with one old live connection, and a store pointed at nothing
    let table = TestTable::new().await.unwrap();
    let server = RecordingConnections::start().await.unwrap();
    let ids = live_connections(&table, &server, 1).await;
    let dead = ripple_common::store::Store::new(
        ripple_common::config::dynamodb_client(
            &ripple_common::config::local_sdk_config(),
            Some("http://127.0.0.1:9"),
        ),
        "nowhere".to_owned(),
    );

    // WHEN each function's warm-up runs, as their main.rs do before serving
    use ripple_common::warm::{Probe, connections, dynamodb};
    // THEN the reads of a missing key succeed against DynamoDB Local
    assert!(dynamodb(&table.store, Probe::GetItem).await);
    assert!(dynamodb(&table.store, Probe::Query).await);
    // AND fanout's asks @connections about a connection it found in the sweep index
    assert!(connections(&table.store, &server.client()).await);
    assert_eq!(server.checked().len(), 1);
    assert!(ids.contains(&server.checked()[0]) || server.checked()[0] == "fresh");
    // AND against a dead endpoint they report failure instead of stopping the function
    assert!(!dynamodb(&dead, Probe::GetItem).await);
    assert!(!connections(&dead, &server.client()).await);
    // AND nothing was written
    assert_eq!(table.item_count().await.unwrap(), 2);
}

#[tokio::test]
async fn presence_is_per_user_a_second_tab_coming_and_going_is_not_news() {
    // GIVEN alice and bob in arena
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&url(&server, "user=alice&channel=arena"))
        .await
        .unwrap();
    snapshot(&mut alice, "arena").await;
    let bob = WsClient::connect(&url(&server, "user=bob&channel=arena"))
        .await
        .unwrap();
    alice
        .wait_for_event(|e| e["type"] == "join" && e["user"] == "bob")
        .await
        .unwrap();

    // WHEN bob opens a second tab, it closes, and then his first tab closes
    let tab = WsClient::connect(&url(&server, "user=bob&channel=arena"))
        .await
        .unwrap();
    tab.close().await;
    // a marker from carol orders what alice sees after the tab's records were fanned out
    let mut carol = WsClient::connect(&url(&server, "user=carol&channel=arena"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    carol
        .send(r#"{"action":"message","channel":"arena","text":"marker"}"#)
        .await
        .unwrap();
    alice
        .wait_for_event(|e| e["text"] == "marker")
        .await
        .unwrap();
    // THEN alice heard neither a second join nor a leave of bob
    let bob_presence: Vec<_> = alice
        .seen_events()
        .into_iter()
        .filter(|e| e["user"] == "bob")
        .collect();
    assert_eq!(
        bob_presence,
        [json!({"type":"join","channel":"arena","user":"bob"})]
    );

    // WHEN bob's last connection closes THEN alice hears that he left
    bob.close().await;
    alice
        .wait_for_event(|e| e["type"] == "leave" && e["user"] == "bob")
        .await
        .unwrap();
    server.shutdown().await;
}
