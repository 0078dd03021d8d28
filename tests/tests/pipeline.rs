//! The full path on real parts: API Gateway events into `connect` and `ingest`, the records they
//! cause read back from DynamoDB Local's stream API (in Lambda's shape), replayed into `fanout`,
//! posted to a loopback `@connections` server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use aws_lambda_events::encodings::Body;
use connect::ConnectState;
use fanout::FanoutState;
use ingest::IngestState;
use ripple::apigw::{connect_event, disconnect_event, message_event};
use ripple_tests::{RecordingConnections, TestTable, ws_context as ctx};
use serde_json::{Value, json};

struct Stack {
    table: TestTable,
    server: RecordingConnections,
    connect: ConnectState,
    ingest: IngestState,
    fanout: FanoutState,
}

impl Stack {
    async fn new() -> Self {
        let table = TestTable::new().await.unwrap();
        let server = RecordingConnections::start().await.unwrap();
        let connect = ConnectState::new(table.store.clone(), table.settings.clone());
        let ingest = IngestState::new(table.store.clone(), table.settings.clone());
        let fanout = FanoutState::new(table.store.clone(), server.client(), &table.settings);
        Self {
            table,
            server,
            connect,
            ingest,
            fanout,
        }
    }

    async fn connect(&self, id: &str, query: &[(&str, &str)]) -> i64 {
        let q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ev = connect_event(&ctx(id), &[], &q, ripple_common::now_ms()).unwrap();
        let status = connect::handle(&self.connect, ev).await.status_code;
        // API Gateway establishes the connection once `$connect` answers 200.
        if status == 200 {
            self.server.mark_live(id);
        }
        status
    }

    /// Sends a frame; returns the route response body, if any.
    async fn send(&self, id: &str, body: &str) -> Option<Value> {
        self.send_on(&self.ingest, id, body).await
    }

    /// Sends a frame through the ingest instance `ingest`.
    async fn send_on(&self, ingest: &IngestState, id: &str, body: &str) -> Option<Value> {
        let ev = message_event(&ctx(id), body, ripple_common::now_ms()).unwrap();
        let resp = ingest::handle(ingest, ev).await;
        assert_eq!(resp.status_code, 200);
        match resp.body {
            Some(Body::Text(t)) => Some(serde_json::from_str(&t).unwrap()),
            _ => None,
        }
    }

    /// Reads what the stream has and hands it to fanout, as the event source mapping would,
    /// until fanout's own writes (the `welcomed` mark, roster entries) have been through too.
    async fn pump(&mut self) {
        loop {
            let event = self.table.take_stream_event().await.unwrap();
            if event.records.is_empty() {
                return;
            }
            // Round-trip through JSON: fanout gets exactly what Lambda would deliver.
            let json = serde_json::to_string(&event).unwrap();
            let event = serde_json::from_str(&json).unwrap();
            let (response, _) = fanout::process(&self.fanout, event).await;
            assert!(response.batch_item_failures.is_empty());
        }
    }

    /// The `seq` of `user`'s stored position in arena (none when it has none).
    async fn stored_seqs(&self, user: &str) -> Vec<u64> {
        let users = [user.to_owned()];
        let stored = self.table.store.positions_of("arena", &users).await;
        stored.unwrap().iter().map(|p| p.seq).collect()
    }
}

/// A position frame in arena with `seq`.
fn position(seq: u64) -> String {
    format!(r#"{{"action":"position","channel":"arena","x":{seq},"y":0,"seq":{seq}}}"#)
}

impl Stack {
    /// A stack with alice connected to arena, in its roster.
    async fn with_alice_in_arena() -> Self {
        let mut s = Stack::new().await;
        let status = s.connect("A", &[("user", "alice"), ("channel", "arena")]);
        assert_eq!(status.await, 200);
        s.pump().await;
        s
    }
}

#[tokio::test]
async fn connect_ingest_stream_fanout_delivers_to_the_channel_and_disconnect_cleans_up() {
    // GIVEN alice and bob connected to arena, carol to lobby
    let mut s = Stack::new().await;
    assert_eq!(
        s.connect("A", &[("user", "alice"), ("channel", "arena")])
            .await,
        200
    );
    assert_eq!(
        s.connect(
            "B",
            &[("user", "bob"), ("channel", "arena"), ("channel", "extra")]
        )
        .await,
        200
    );
    assert_eq!(
        s.connect("C", &[("user", "carol"), ("channel", "lobby")])
            .await,
        200
    );
    s.pump().await;

    // WHEN alice moves twice and bob chats
    assert_eq!(
        s.send(
            "A",
            r#"{"action":"position","channel":"arena","x":1,"y":2,"seq":1}"#
        )
        .await,
        None
    );
    assert_eq!(
        s.send(
            "A",
            r#"{"action":"position","channel":"arena","x":5,"y":6,"z":7,"seq":2}"#
        )
        .await,
        None
    );
    assert_eq!(
        s.send("B", r#"{"action":"message","channel":"arena","text":"gg"}"#)
            .await
            .map(|answer| answer["type"].clone()),
        Some(serde_json::json!("ack"))
    );
    s.pump().await;

    // THEN each connection heard welcome first
    for (id, user) in [("A", "alice"), ("B", "bob"), ("C", "carol")] {
        assert_eq!(
            s.server.frames(id)[0],
            json!({"type":"welcome","connectionId":id,"user":user})
        );
    }
    // AND bob saw alice's latest position, and the join of alice if it came after his
    let bob = s.server.events("B");
    let positions: Vec<_> = bob.iter().filter(|e| e["type"] == "position").collect();
    assert_eq!(positions.last().unwrap()["seq"], 2);
    assert_eq!(positions.last().unwrap()["z"], 7.0);
    assert!(
        positions.last().unwrap()["ts"].as_u64().unwrap() > 0,
        "ingest stamps the write time"
    );
    // AND alice saw bob's message, never her own positions
    let alice = s.server.events("A");
    assert!(
        alice
            .iter()
            .any(|e| e["type"] == "message" && e["text"] == "gg" && e["user"] == "bob")
    );
    assert!(
        !alice
            .iter()
            .any(|e| e["type"] == "position" && e["user"] == "alice")
    );
    // AND carol, in lobby, saw none of it
    assert!(s.server.events("C").iter().all(|e| e["channel"] == "lobby"));

    // WHEN bob disconnects
    let ev = disconnect_event(&ctx("B"), 1000, "bye", ripple_common::now_ms()).unwrap();
    assert_eq!(connect::handle(&s.connect, ev).await.status_code, 200);
    // THEN his connection and both memberships are gone
    assert_eq!(s.table.connection_item_count("B").await.unwrap(), 0);
    // AND alice is told he left arena
    s.pump().await;
    let alice = s.server.events("A");
    assert!(
        alice
            .iter()
            .any(|e| *e == json!({"type":"leave","channel":"arena","user":"bob"}))
    );
}

#[tokio::test]
async fn positions_prove_membership_without_a_read_and_a_leaver_cannot_publish_again() {
    // GIVEN alice and bob in arena
    let mut s = Stack::new().await;
    for (id, user) in [("A", "alice"), ("B", "bob")] {
        assert_eq!(
            s.connect(id, &[("user", user), ("channel", "arena")]).await,
            200
        );
    }
    s.pump().await;
    let reads = || {
        s.ingest
            .membership_reads
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    // WHEN alice moves three times, the third time with a stale seq
    for seq in [1, 2, 1] {
        assert_eq!(s.send("A", &position(seq)).await, None);
    }
    // THEN only her first position read her membership
    assert_eq!(reads(), 1);
    // AND bob gets seq 1 and 2, once each
    s.pump().await;
    let seqs = |s: &Stack| -> Vec<u64> {
        s.server
            .events("B")
            .iter()
            .filter(|e| e["type"] == "position" && e["user"] == "alice")
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&s), [1, 2]);

    // WHEN she leaves arena, and the instance that knows her publishes her next position
    assert_eq!(
        s.send("A", r#"{"action":"leave","channel":"arena"}"#)
            .await
            .map(|answer| answer["type"].clone()),
        Some(serde_json::json!("left"))
    );
    let reply = s.send("A", &position(3)).await.unwrap();
    // THEN it is refused as from a non-member
    assert_eq!(reply["code"], "not_member", "{reply}");
    // AND the stored position is still seq 2, and bob sees her leave but no position after it
    assert_eq!(s.stored_seqs("alice").await, [2]);
    s.pump().await;
    assert_eq!(seqs(&s), [1, 2]);
    assert!(
        s.server
            .events("B")
            .iter()
            .any(|e| *e == json!({"type":"leave","channel":"arena","user":"alice"}))
    );

    // WHEN she joins again and moves
    assert_eq!(
        s.send("A", r#"{"action":"join","channel":"arena"}"#)
            .await
            .map(|answer| answer["type"].clone()),
        Some(serde_json::json!("joined"))
    );
    assert_eq!(s.send("A", &position(4)).await, None);
    // THEN the position proves her new membership and reaches bob
    s.pump().await;
    assert_eq!(seqs(&s), [1, 2, 4]);
}

#[tokio::test]
async fn a_leave_retried_on_another_instance_takes_back_the_mark_a_half_done_leave_left() {
    // GIVEN alice publishing in arena through an instance that knows her
    let s = Stack::with_alice_in_arena().await;
    assert_eq!(s.send("A", &position(1)).await, None);
    // AND a leave that failed half-way: her membership is deleted, her publisher mark is not
    assert!(
        s.table
            .store
            .delete_member("A", "arena")
            .await
            .unwrap()
            .is_some()
    );

    // WHEN she retries the leave and it lands on an instance that never saw her
    let other = IngestState::new(s.table.store.clone(), s.table.settings.clone());
    let reply = s
        .send_on(&other, "A", r#"{"action":"leave","channel":"arena"}"#)
        .await
        .unwrap();
    // THEN she is told she is not a member
    assert_eq!(reply["code"], "not_member", "{reply}");
    // AND the mark is gone: the instance that knows her refuses her next position, unwritten
    let reply = s.send("A", &position(2)).await.unwrap();
    assert_eq!(reply["code"], "not_member", "{reply}");
    assert_eq!(s.stored_seqs("alice").await, [1]);
}

#[tokio::test]
async fn bad_frames_get_an_error_reply_and_write_nothing() {
    // GIVEN alice connected to arena
    let mut s = Stack::with_alice_in_arena().await;
    let items_before = s.table.item_count().await.unwrap();

    // WHEN she sends frames that must be refused
    let cases = [
        ("not json", "bad_request"),
        (r#"{"action":"dance"}"#, "unknown_action"),
        (
            r#"{"action":"position","channel":"arena","x":"NaN","y":0,"seq":1}"#,
            "bad_request",
        ),
        (
            r#"{"action":"position","channel":"lobby","x":0,"y":0,"seq":1}"#,
            "not_member",
        ),
        (
            r#"{"action":"message","channel":"arena","text":""}"#,
            "bad_request",
        ),
        (r#"{"action":"join","channel":"no spaces"}"#, "bad_request"),
        (r#"{"action":"leave","channel":"lobby"}"#, "not_member"),
    ];
    for (body, code) in cases {
        // THEN each gets an error frame with its code
        let reply = s
            .send("A", body)
            .await
            .unwrap_or_else(|| panic!("no reply to {body}"));
        assert_eq!(reply["type"], "error", "{body}");
        assert_eq!(reply["code"], code, "{body}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // AND nothing was written: same items, no stream records
    assert_eq!(s.table.item_count().await.unwrap(), items_before);
    assert!(
        s.table
            .take_stream_event()
            .await
            .unwrap()
            .records
            .is_empty()
    );
}

#[tokio::test]
async fn a_connect_with_a_bad_channel_is_refused_and_writes_nothing() {
    let mut s = Stack::new().await;
    // WHEN a client connects with a bad channel name
    let status = s
        .connect(
            "Z",
            &[("user", "zed"), ("channel", "ok"), ("channel", "bad/name")],
        )
        .await;
    // THEN API Gateway is told 400 and nothing is stored
    assert_eq!(status, 400);
    assert_eq!(s.table.item_count().await.unwrap(), 0);
    assert!(
        s.table
            .take_stream_event()
            .await
            .unwrap()
            .records
            .is_empty()
    );
}

#[tokio::test]
async fn join_then_leave_moves_a_connection_between_channels() {
    // GIVEN alice connected with no channel and bob in lobby
    let mut s = Stack::new().await;
    assert_eq!(s.connect("A", &[("user", "alice")]).await, 200);
    assert_eq!(
        s.connect("B", &[("user", "bob"), ("channel", "lobby")])
            .await,
        200
    );
    s.pump().await;
    // WHEN alice joins lobby, says hi, and leaves
    assert_eq!(
        s.send("A", r#"{"action":"join","channel":"lobby"}"#)
            .await
            .map(|answer| answer["type"].clone()),
        Some(serde_json::json!("joined"))
    );
    s.pump().await;
    assert_eq!(
        s.send("A", r#"{"action":"message","channel":"lobby","text":"hi"}"#)
            .await
            .map(|answer| answer["type"].clone()),
        Some(serde_json::json!("ack"))
    );
    assert_eq!(
        s.send("A", r#"{"action":"leave","channel":"lobby"}"#)
            .await
            .map(|answer| answer["type"].clone()),
        Some(serde_json::json!("left"))
    );
    s.pump().await;
    // THEN bob saw her join, her message and her leave, in that order
    let seen: Vec<_> = s
        .server
        .events("B")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(seen, ["join", "message", "leave"]);
    // AND publishing after leaving is refused
    let reply = s
        .send(
            "A",
            r#"{"action":"message","channel":"lobby","text":"ghost"}"#,
        )
        .await
        .unwrap();
    assert_eq!(reply["code"], "not_member");
}
