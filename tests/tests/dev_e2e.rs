//! End-to-end: real WebSocket clients against `ripple dev` (gateway, `@connections`, stream
//! trigger, DynamoDB Local), the same handler code Lambda runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use futures::StreamExt;
use ripple::dev::DevOptions;
use ripple_tests::{WsClient, dev_with_alice_and_bob, start_dev, ws_url as url};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn two_players_in_a_channel_see_each_other_and_another_channel_sees_nothing() {
    // GIVEN alice and bob in arena, carol in lobby
    let (server, mut alice, mut bob) = dev_with_alice_and_bob("arena").await.unwrap();
    let mut carol = WsClient::connect(&url(&server, "user=carol&channel=lobby"))
        .await
        .unwrap();
    assert!(!alice.id.is_empty() && alice.id != bob.id);

    // WHEN alice moves and bob chats
    alice
        .send(r#"{"action":"position","channel":"arena","x":10.5,"y":-3,"seq":1}"#)
        .await
        .unwrap();
    bob.send(r#"{"action":"message","channel":"arena","text":"hi alice"}"#)
        .await
        .unwrap();

    // THEN bob sees alice's position, alice sees bob's message
    let pos = bob
        .wait_for_event(|e| e["type"] == "position")
        .await
        .unwrap();
    assert_eq!(
        (
            pos["user"].clone(),
            pos["x"].clone(),
            pos["y"].clone(),
            pos["seq"].clone()
        ),
        (json!("alice"), json!(10.5), json!(-3.0), json!(1))
    );
    let msg = alice
        .wait_for_event(|e| e["type"] == "message")
        .await
        .unwrap();
    assert_eq!(
        (msg["user"].clone(), msg["text"].clone()),
        (json!("bob"), json!("hi alice"))
    );
    // AND neither got its own event back
    assert!(!alice.seen_events().iter().any(|e| e["user"] == "alice"));
    assert!(!bob.seen_events().iter().any(|e| e["user"] == "bob"));

    // AND carol, in lobby, received nothing at all after her welcome: a marker message she
    // sends to herself-only channel proves the stream went past arena's records
    let mut dave = WsClient::connect(&url(&server, "user=dave&channel=lobby"))
        .await
        .unwrap();
    dave.send(r#"{"action":"message","channel":"lobby","text":"marker"}"#)
        .await
        .unwrap();
    carol
        .wait_for_event(|e| e["text"] == "marker")
        .await
        .unwrap();
    assert!(
        carol.seen_events().iter().all(|e| e["channel"] == "lobby"),
        "{:?}",
        carol.seen
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_disconnect_removes_the_connection_and_tells_the_channel() {
    // GIVEN alice and bob in arena
    let (server, mut alice, bob) = dev_with_alice_and_bob("arena").await.unwrap();
    let bob_id = bob.id.clone();
    alice
        .wait_for_event(|e| e["type"] == "join" && e["user"] == "bob")
        .await
        .unwrap();
    assert!(
        server
            .store
            .get_connection(&bob_id)
            .await
            .unwrap()
            .is_some()
    );

    // WHEN bob closes his socket
    bob.close().await;

    // THEN alice hears that bob left, and bob's items are gone from the table
    alice
        .wait_for_event(|e| e["type"] == "leave" && e["user"] == "bob")
        .await
        .unwrap();
    assert!(
        server
            .store
            .get_connection(&bob_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        server
            .store
            .get_member(&bob_id, "arena")
            .await
            .unwrap()
            .is_none()
    );
    server.shutdown().await;
}

async fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    ripple_tests::http(method, url, body).await.unwrap()
}

fn encode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[tokio::test]
async fn the_connections_api_posts_reports_and_closes_like_api_gateway() {
    // GIVEN one connected client
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&url(&server, "user=alice"))
        .await
        .unwrap();
    let base = format!("{}/@connections/{}", server.http_url(), encode(&alice.id));
    let staged = format!(
        "{}/local/@connections/{}",
        server.http_url(),
        encode(&alice.id)
    );

    // WHEN a backend POSTs a frame (plain and under the stage)
    assert_eq!(http("POST", &base, Some(r#"{"hello":1}"#)).await.0, 200);
    assert_eq!(http("POST", &staged, Some(r#"{"hello":2}"#)).await.0, 200);
    // THEN the client receives both, in order
    assert_eq!(
        alice.next_frame().await.unwrap().unwrap(),
        json!({"hello":1})
    );
    assert_eq!(
        alice.next_frame().await.unwrap().unwrap(),
        json!({"hello":2})
    );

    // WHEN it GETs the connection THEN it sees when it connected and from where
    let (status, body) = http("GET", &base, None).await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&body).unwrap();
    assert!(info["connectedAt"].as_str().unwrap().ends_with('Z'));
    assert!(info["lastActiveAt"].is_string());
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");

    // WHEN it POSTs more than 128 KB THEN 413
    let big = "x".repeat(ripple_common::protocol::MAX_CLIENT_MESSAGE_BYTES + 1);
    assert_eq!(http("POST", &base, Some(&big)).await.0, 413);

    // WHEN it DELETEs the connection THEN 204, and the client sees its socket close
    assert_eq!(http("DELETE", &base, None).await.0, 204);
    match alice.next_message().await.unwrap() {
        Some(Message::Close(_)) | None => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
    // AND the connection is then gone for every verb
    tokio::time::sleep(Duration::from_millis(300)).await;
    for method in ["POST", "GET", "DELETE"] {
        assert_eq!(
            http(method, &base, Some("{}")).await.0,
            410,
            "{method} after close"
        );
    }
    assert_eq!(
        http(
            "GET",
            &format!("{}/@connections/nope%3D", server.http_url()),
            None
        )
        .await
        .0,
        410
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_error_replies_and_the_connection_stays_open() {
    // GIVEN alice in arena and bob watching it
    let (server, mut alice, mut bob) = dev_with_alice_and_bob("arena").await.unwrap();
    for (frame, code) in [
        ("{nope", "bad_request"),
        (r#"{"action":"fly"}"#, "unknown_action"),
        (
            r#"{"action":"position","channel":"arena","x":1,"y":"2","seq":1}"#,
            "bad_request",
        ),
        (
            r#"{"action":"message","channel":"elsewhere","text":"hi"}"#,
            "not_member",
        ),
    ] {
        // WHEN she sends a bad frame THEN she alone gets the matching error
        alice.send(frame).await.unwrap();
        let reply = loop {
            let f = alice.next_frame().await.unwrap().unwrap();
            if f["type"] == "error" {
                break f;
            }
        };
        assert_eq!(reply["code"], code, "{frame}");
    }
    // AND the connection still works
    alice
        .send(r#"{"action":"message","channel":"arena","text":"still here"}"#)
        .await
        .unwrap();
    bob.wait_for_event(|e| e["text"] == "still here")
        .await
        .unwrap();
    assert!(!bob.seen.iter().any(|f| f["type"] == "error"));
    server.shutdown().await;
}

#[tokio::test]
async fn api_gateway_limits_apply_oversized_messages_idle_sockets_and_bad_connects() {
    // GIVEN ripple dev with AWS's idle timeout, and one with a 1-second idle timeout
    let server = start_dev(DevOptions::default()).await.unwrap();
    let opts = DevOptions {
        idle_timeout: Duration::from_secs(1),
        ..DevOptions::default()
    };
    let impatient = start_dev(opts).await.unwrap();

    // WHEN a client sends a 100 KB message in four frames of 25 KB THEN it is read (and refused
    // as too large a text: the socket stays open)
    let mut big = WsClient::connect(&url(&server, "user=big")).await.unwrap();
    let message = format!(
        r#"{{"action":"message","channel":"a","text":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let parts: Vec<&[u8]> = message.as_bytes().chunks(25 * 1024).collect();
    for (i, part) in parts.iter().enumerate() {
        use tokio_tungstenite::tungstenite::protocol::frame::{Frame, coding};
        let opcode = if i == 0 {
            coding::OpCode::Data(coding::Data::Text)
        } else {
            coding::OpCode::Data(coding::Data::Continue)
        };
        let frame = Frame::message(part.to_vec(), opcode, i + 1 == parts.len());
        big.send_raw(Message::Frame(frame)).await.unwrap();
    }
    let answer = big.next_frame().await.unwrap().unwrap();
    assert_eq!(answer["code"], "too_large", "{answer}");

    // WHEN a client sends one frame over 32 KB (API Gateway's frame quota) THEN the socket
    // closes with 1009
    big.send(&format!(
        r#"{{"action":"message","channel":"a","text":"{}"}}"#,
        "x".repeat(33 * 1024)
    ))
    .await
    .unwrap();
    match big.next_message().await.unwrap() {
        Some(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }

    // WHEN a client stays silent past the idle timeout THEN it is closed (going away). It does
    // not wait for its welcome: on a loaded machine the welcome may come after the timeout.
    let (mut idle, _) = tokio_tungstenite::connect_async(url(&impatient, "user=idle"))
        .await
        .unwrap();
    let closed = loop {
        match tokio::time::timeout(ripple::wsclient::E2E_WAIT, idle.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {} // its welcome, if it came first
            other => panic!("expected close 1001, got {other:?}"),
        }
    };
    assert_eq!(closed, Some(1001));

    // WHEN a client connects with a bad channel name THEN the upgrade is refused with 400
    let refusal = WsClient::upgrade_refusal(&url(&server, "user=x&channel=bad%20name")).await;
    assert_eq!(refusal.unwrap(), Some(400));
    server.shutdown().await;
    impatient.shutdown().await;
}
