//! Presence, late-join snapshot, session resume and the stale-connection sweep, against
//! `ripple dev` (real WebSockets, DynamoDB Local with its TTL and stream) and recorded records.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use fanout::FanoutState;
use fanout::sweep::{SweepConfig, sweep};
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
    alice
        .send(r#"{"action":"message","channel":"arena","text":"missed 1"}"#)
        .await
        .unwrap();
    alice
        .send(r#"{"action":"message","channel":"lobby","text":"missed 2"}"#)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

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
