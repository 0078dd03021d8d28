//! Server-side publish through `ripple dev`: `ripple publish` finds the running `ripple dev`,
//! writes as the reserved sender `server`, and every member of the channel receives one event
//! from it; no client can connect as a reserved name; a malformed publish writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use ripple::dev::DevOptions;
use ripple::publish::PublishArgs;
use ripple_common::auth::sign_hs256;
use ripple_common::config::Settings;
use ripple_common::protocol::ErrorCode;
use ripple_common::publish::{Publication, PublishError, publish};
use ripple_tests::{WsClient, dev_with_alice_and_bob, start_dev, ws_url as url};
use serde_json::json;

fn args(server: &ripple::dev::DevServer, channel: &str) -> PublishArgs {
    PublishArgs {
        channel: channel.into(),
        text: None,
        position: None,
        seq: None,
        data: None,
        from: "server".into(),
        dev: server.http_url(),
        dynamodb_endpoint: None,
        table: None,
        region: None,
        profile: None,
    }
}

#[tokio::test]
async fn ripple_publish_reaches_every_member_once_as_server() {
    // GIVEN alice and bob in arena on a running ripple dev
    let (server, mut alice, mut bob) = dev_with_alice_and_bob("arena").await.unwrap();
    // (each is in arena's roster once its snapshot came)
    alice.wait_for_snapshot("arena").await.unwrap();
    bob.wait_for_snapshot("arena").await.unwrap();

    // WHEN a backend publishes a message and a position with `ripple publish` (found by --dev)
    let mut message = args(&server, "arena");
    message.text = Some("hello".into());
    ripple::publish::run(message).await.unwrap();
    let mut position = args(&server, "arena");
    position.position = Some("1.5,-2,3".into());
    position.data = Some(r#"{"kind":"flag"}"#.into());
    ripple::publish::run(position).await.unwrap();

    // THEN both members get the message and the position from `server`
    for client in [&mut alice, &mut bob] {
        let pos = client
            .wait_for_event(|e| e["type"] == "position" && e["user"] == "server")
            .await
            .unwrap();
        assert_eq!(
            (&pos["x"], &pos["y"], &pos["z"], &pos["data"]),
            (
                &json!(1.5),
                &json!(-2.0),
                &json!(3.0),
                &json!({"kind": "flag"})
            )
        );
        // (the message and the position are in different partitions, so different stream
        // shards: they may arrive in either order)
        if !client.seen_events().iter().any(|e| e["type"] == "message") {
            client
                .wait_for_event(|e| e["type"] == "message")
                .await
                .unwrap();
        }
        let messages: Vec<_> = client
            .seen_events()
            .into_iter()
            .filter(|e| e["type"] == "message")
            .collect();
        assert_eq!(messages.len(), 1, "one message: {messages:?}");
        assert_eq!(
            (&messages[0]["user"], &messages[0]["text"]),
            (&json!("server"), &json!("hello"))
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_or_unreserved_publish_is_refused_and_writes_nothing() {
    let server = start_dev(DevOptions::default()).await.unwrap();
    let settings = Settings::for_table(server.store.table());
    let text = |t: &str| Publication::Message { text: t.into() };
    let cases = [
        (
            "server",
            "bad channel!",
            text("x"),
            Some(ErrorCode::BadRequest),
        ),
        ("server", "arena", text(""), Some(ErrorCode::BadRequest)),
        (
            "server",
            "arena",
            text(&"x".repeat(4097)),
            Some(ErrorCode::TooLarge),
        ),
        (
            "server",
            "arena",
            Publication::Position {
                x: f64::INFINITY,
                y: 0.0,
                z: None,
                seq: None,
                data: None,
            },
            Some(ErrorCode::BadRequest),
        ),
        ("alice", "arena", text("pretending"), None),
    ];
    for (sender, channel, what, code) in cases {
        match (
            publish(&server.store, &settings, sender, channel, what).await,
            code,
        ) {
            (Err(PublishError::Refused(refusal)), Some(code)) => assert_eq!(refusal.code, code),
            (Err(PublishError::NotReserved { .. }), None) => {}
            (other, _) => panic!("{sender}@{channel}: not refused as expected: {other:?}"),
        }
    }
    // THEN nothing is in the table's arena history
    let written = server.store.messages_since("arena", 0, 100).await.unwrap();
    assert!(written.is_empty(), "written: {written:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn no_client_connects_as_a_reserved_name() {
    // GIVEN ripple dev without auth, and one with a JWT secret
    let open = start_dev(DevOptions::default()).await.unwrap();
    for user in ["server", "server:matchmaker"] {
        // WHEN a client asks for a reserved name
        let url = url(&open, &format!("user={user}&channel=arena"));
        // THEN the upgrade is refused with 400
        assert_eq!(
            WsClient::upgrade_refusal(&url).await.unwrap(),
            Some(400),
            "{user}"
        );
    }
    assert_eq!(
        WsClient::upgrade_refusal(&url(&open, "user=serverless&channel=arena"))
            .await
            .unwrap(),
        None,
        "a name that merely starts with `server` is fine"
    );
    open.shutdown().await;

    let secret = "publish-test-secret";
    let authed = start_dev(ripple_tests::dev_options(|s| {
        s.jwt_secret = Some(secret.into())
    }))
    .await
    .unwrap();
    let now = (ripple_common::now_ms() / 1000) as i64;
    let token = sign_hs256(
        &json!({"sub": "server", "exp": now + 300}),
        secret.as_bytes(),
    );
    // AND a validly signed token whose subject is `server` is refused too
    let url = url(&authed, &format!("token={token}&channel=arena"));
    assert_eq!(WsClient::upgrade_refusal(&url).await.unwrap(), Some(400));
    authed.shutdown().await;
}
