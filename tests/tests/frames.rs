//! API Gateway's per-connection rules on `ripple dev`'s defaults: every client frame is its own
//! invocation (no order among a connection's frames), `$disconnect` is best effort, a client can
//! vanish without a close or stop reading (closed as a slow consumer), `@connections` has the
//! account's rate and knows a connection only under its stage.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use ripple::dev::DevOptions;
use ripple::dev::faults::FaultSpec;
use ripple_tests::dev_counter as counter;
use ripple_tests::{WsClient, connect, dev_with_alice_and_bob_on, http, start_dev};
use serde_json::Value;

fn texts_from(client: &WsClient, user: &str) -> Vec<String> {
    client
        .seen_events()
        .iter()
        .filter(|e| e["type"] == "message" && e["user"] == user)
        .filter_map(|e| e["text"].as_str().map(str::to_owned))
        .collect()
}

fn lines(prefix: &str) -> Vec<String> {
    (0..20).map(|i| format!("{prefix} {i:02}")).collect()
}

#[tokio::test]
async fn chat_sent_back_to_back_arrives_once_in_any_order_and_in_order_when_each_waits_for_its_ack()
{
    // GIVEN ripple dev on its defaults (frames handled concurrently), with a wide jitter so the
    // race always shows, and alice and bob in arena
    let opts = DevOptions {
        frame_jitter: Duration::from_millis(50),
        ..ripple_tests::dev_options(|s| s.message_rate = 100)
    };
    let (server, mut alice, mut bob) = dev_with_alice_and_bob_on(opts, "arena").await.unwrap();
    bob.wait_for_snapshot("arena").await.unwrap();
    alice.wait_for_snapshot("arena").await.unwrap();
    bob.wait_for_event(|e| e["type"] == "join" && e["user"] == "alice")
        .await
        .ok();

    // WHEN alice sends 20 lines back to back, not waiting for answers
    for line in lines("burst") {
        alice
            .send(&format!(
                r#"{{"action":"message","channel":"arena","text":"{line}"}}"#
            ))
            .await
            .unwrap();
    }
    // THEN alice gets 20 acks (the answers of frames not waited for; their order says nothing)
    let mut acks = 0;
    while acks < 20 {
        let frame = alice.next_frame().await.unwrap().unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        acks += usize::from(frame["type"] == "ack");
    }
    // AND bob gets every one exactly once, but not in the order sent (each was its own
    // invocation: documented in docs/protocol.md, "Frames of one connection")
    let mut got = Vec::new();
    while got.len() < 20 {
        let e = bob
            .wait_for_event(|e| {
                e["user"] == "alice" && e["text"].as_str().is_some_and(|t| t.starts_with("burst"))
            })
            .await
            .unwrap();
        got.push(e["text"].as_str().unwrap().to_owned());
    }
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, lines("burst"), "each line once");
    assert_ne!(got, lines("burst"), "frames not waited for run in no order");

    // WHEN alice sends 20 more, each after the `ack` of the one before
    for line in lines("acked") {
        let answer = alice
            .request(&format!(
                r#"{{"action":"message","channel":"arena","text":"{line}"}}"#
            ))
            .await
            .unwrap();
        // THEN each is acknowledged with the id and time its event carries
        assert_eq!(answer["type"], "ack", "{answer}");
        assert!(answer["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    // AND bob gets them in the order sent
    bob.wait_for_event(|e| e["text"] == "acked 19")
        .await
        .unwrap();
    let acked: Vec<String> = texts_from(&bob, "alice")
        .into_iter()
        .filter(|t| t.starts_with("acked"))
        .collect();
    assert_eq!(acked, lines("acked"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_sent_with_its_join_may_be_refused_and_one_sent_after_joined_is_accepted() {
    // GIVEN ripple dev on its defaults and carol connected to no channel
    let opts = DevOptions {
        frame_jitter: Duration::from_millis(50),
        ..DevOptions::default()
    };
    let server = start_dev(opts).await.unwrap();
    let mut carol = connect(&server, "user=carol").await.unwrap();

    // WHEN she sends `join` and a `message` to the channel at once, eight times over (within the
    // burst of joins a connection may make)
    let mut answers: Vec<Value> = Vec::new();
    for i in 0..8 {
        carol
            .send(&format!(r#"{{"action":"join","channel":"room{i}"}}"#))
            .await
            .unwrap();
        carol
            .send(&format!(
                r#"{{"action":"message","channel":"room{i}","text":"hi"}}"#
            ))
            .await
            .unwrap();
    }
    while answers.len() < 16 {
        let frame = carol.next_frame().await.unwrap().unwrap();
        if ["joined", "ack", "error"].contains(&frame["type"].as_str().unwrap_or_default()) {
            answers.push(frame);
        }
    }
    // THEN every join is answered `joined`, and each message either `ack` or `not_member` (it
    // may run before its join: the documented outcome), never anything else
    assert_eq!(answers.iter().filter(|a| a["type"] == "joined").count(), 8);
    for a in answers.iter().filter(|a| a["type"] != "joined") {
        assert!(
            a["type"] == "ack" || a["code"] == "not_member",
            "unexpected answer {a}"
        );
    }
    // WHEN she waits for `joined` before publishing THEN the message is accepted
    let joined = carol
        .request(r#"{"action":"join","channel":"hall"}"#)
        .await
        .unwrap();
    assert_eq!(joined["type"], "joined");
    let ack = carol
        .request(r#"{"action":"message","channel":"hall","text":"hi"}"#)
        .await
        .unwrap();
    assert_eq!(ack["type"], "ack", "{ack}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_lost_disconnect_and_a_vanished_client_are_noticed_only_when_api_gateway_closes_them() {
    // GIVEN ripple dev losing every `$disconnect`, a 2-second idle timeout, alice and bob in
    // arena
    let opts = DevOptions {
        faults: "disconnect-loss=1".parse::<FaultSpec>().unwrap(),
        idle_timeout: Duration::from_secs(2),
        ..DevOptions::default()
    };
    let (server, mut alice, mut bob) = dev_with_alice_and_bob_on(opts, "arena").await.unwrap();
    alice.wait_for_snapshot("arena").await.unwrap();
    bob.wait_for_snapshot("arena").await.unwrap();

    // WHEN bob's client vanishes without a close (a phone off Wi-Fi)
    let (status, _) = http(
        "POST",
        &format!("{}/_local/vanish/{}", server.http_url(), bob.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    // THEN `@connections` still answers 200 for him, and what is posted goes nowhere
    let delivered_before = counter(&server, "posts_delivered_total");
    let (status, _) = http(
        "POST",
        &format!("{}/@connections/{}", server.http_url(), bob.id),
        Some(r#"{"type":"events","events":[]}"#),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(counter(&server, "posts_delivered_total") > delivered_before);
    // AND once the idle timeout closed him, with his `$disconnect` lost, his connection item is
    // still in the table: the next post to him answers 410, and fanout removes him then
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        counter(&server, "disconnects_lost_total"),
        2,
        "alice idle too"
    );
    let still_there = server.store.get_connection(&bob.id).await.unwrap();
    assert!(still_there.is_some(), "nothing ran $disconnect");
    let (status, _) = http(
        "GET",
        &format!("{}/@connections/{}", server.http_url(), bob.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 410);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_api_has_the_accounts_rate_and_serves_one_stage() {
    // GIVEN ripple dev with an account rate of 10 @connections requests/s (bursts of 5), and
    // alice connected at its one stage, `local`
    let opts = DevOptions {
        connections_rate: 10,
        ..DevOptions::default()
    };
    let server = start_dev(opts).await.unwrap();
    let alice = connect(&server, "user=alice").await.unwrap();
    // WHEN asked about her under another stage THEN 403: no such stage
    let (status, body) = http(
        "GET",
        &format!("{}/prod/@connections/{}", server.http_url(), alice.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("`prod` is not a stage"), "{body}");
    // WHEN a client connects under another stage THEN refused; at `/local` THEN connected
    let elsewhere = format!("{}/prod?user=bob", server.ws_url());
    assert!(WsClient::connect(&elsewhere).await.is_err());
    let staged = format!("{}/local?user=bob", server.ws_url());
    assert!(WsClient::connect(&staged).await.is_ok());
    // AND fanout posts under the stage, as deployed
    assert_eq!(
        server.connections_endpoint,
        format!("{}/local", server.http_url())
    );
    // WHEN 20 requests come at once under her stage THEN those above the bucket answer 429
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, _) = http(
            "GET",
            &format!("{}/local/@connections/{}", server.http_url(), alice.id),
            None,
        )
        .await
        .unwrap();
        statuses.push(status);
    }
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(counter(&server, "connections_throttled_total") > 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_member_that_stops_reading_is_closed_as_a_slow_consumer_and_catches_up_from_the_table() {
    // GIVEN ripple dev holding at most 4 frames for a client that does not read, and alice, bob
    // and carol in arena
    let opts = DevOptions {
        outbound_frames: 4,
        ..ripple_tests::dev_options(|s| s.message_rate = 100)
    };
    let (server, mut alice, mut bob) = dev_with_alice_and_bob_on(opts, "arena").await.unwrap();
    let mut carol = connect(&server, "user=carol&channel=arena").await.unwrap();
    for client in [&mut alice, &mut bob, &mut carol] {
        client.wait_for_snapshot("arena").await.unwrap();
    }
    bob.wait_for_event(|e| e["type"] == "join" && e["user"] == "carol")
        .await
        .unwrap();
    let before_stall = ripple_common::now_ms();
    let bob_url = format!("{}/@connections/{}", server.http_url(), bob.id);

    // WHEN bob stops reading his socket
    let (status, _) = http(
        "POST",
        &format!("{}/_local/stall/{}", server.http_url(), bob.id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204);
    // AND alice chats, a line each stream poll, until @connections no longer knows bob
    let mut sent = Vec::new();
    for i in 0..40 {
        let line = format!("line {i:02}");
        let ack = alice
            .request(&format!(
                r#"{{"action":"message","channel":"arena","text":"{line}"}}"#
            ))
            .await
            .unwrap();
        assert_eq!(ack["type"], "ack", "{ack}");
        sent.push(line);
        if http("GET", &bob_url, None).await.unwrap().0 == 410 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // THEN fanout closed bob once his queue was full (posts to him answered 429), well before
    // alice ran out of lines, and his `$disconnect` removed his connection
    assert_eq!(
        http("GET", &bob_url, None).await.unwrap().0,
        410,
        "bob still open"
    );
    assert!(
        sent.len() < 40,
        "{} lines before bob was closed",
        sent.len()
    );
    assert!(counter(&server, "posts_backlogged_total") > 0);
    ripple_tests::eventually("bob's $disconnect ran", Duration::from_secs(10), || {
        counter(&server, "disconnects_total") >= 1
    })
    .await
    .unwrap();
    // AND carol, who reads, got every line once, in order, while bob was stuck
    carol
        .wait_for_event(|e| e["type"] == "message" && e["text"] == *sent.last().unwrap())
        .await
        .unwrap();
    assert_eq!(texts_from(&carol, "alice"), sent);
    // AND bob, back with `since` the last chat he read, gets every line he missed, once
    let mut bob = connect(
        &server,
        &format!("user=bob&channel=arena&since={before_stall}"),
    )
    .await
    .unwrap();
    let snapshot = bob.wait_for_snapshot("arena").await.unwrap();
    let recovered: Vec<String> = snapshot["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovered, sent);
    server.shutdown().await;
}
