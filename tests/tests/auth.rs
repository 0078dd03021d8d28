//! `$connect` authentication and channel authorization on `ripple dev`: HS256 tokens (secret),
//! RS256 and ES256 tokens (keys from a JWKS the test serves on loopback, keys generated here),
//! refusals with 401 that write nothing, and the `channels` / `publish` grant: 403 at connect,
//! `forbidden` for `join` and publish, nothing refused written or fanned out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ripple::dev::DevServer;
use ripple_common::auth::issuer::{SigningKey, jwks};
use ripple_common::auth::sign_hs256;
use ripple_tests::{JsonServer, WsClient, dev_options, start_dev};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-for-ripple";
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "ripple-game";

fn now() -> i64 {
    (ripple_common::now_ms() / 1000) as i64
}

fn token(sub: &str, exp_offset: i64, secret: &str) -> String {
    sign_hs256(
        &json!({"sub": sub, "exp": now() + exp_offset}),
        secret.as_bytes(),
    )
}

/// An HS256 token for `sub`, valid 5 minutes, signed with [`SECRET`], with `grant`'s claims
/// (`channels`, `publish`) added.
fn granted(sub: &str, grant: Value) -> String {
    let mut claims = json!({"sub": sub, "exp": now() + 300});
    if let (Some(claims), Value::Object(grant)) = (claims.as_object_mut(), grant) {
        claims.extend(grant);
    }
    sign_hs256(&claims, SECRET.as_bytes())
}

/// `ripple dev` requiring HS256 tokens signed with [`SECRET`].
async fn start_with_secret() -> DevServer {
    start_dev(dev_options(|s| s.jwt_secret = Some(SECRET.into())))
        .await
        .unwrap()
}

/// The URL a client with `token` connects with, asking for `channels` (and `extra` query).
fn token_url(server: &DevServer, token: &str, channels: &[&str], extra: &str) -> String {
    let channels: String = channels.iter().map(|c| format!("&channel={c}")).collect();
    format!("{}/?token={token}{channels}{extra}", server.ws_url())
}

async fn table_items(server: &DevServer) -> Vec<Value> {
    let out = server
        .store
        .client()
        .scan()
        .table_name(server.store.table())
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item::<_, Value>(item).unwrap())
        .collect()
}

/// Connects and expects the upgrade to be refused with `status` (`what` names the case).
async fn assert_refused(url: &str, status: u16, what: &str) {
    let refusal = WsClient::upgrade_refusal(url).await;
    assert_eq!(refusal.ok().flatten(), Some(status), "{what}: {url}");
}

/// The first frame of `type` (and `channel`, when given), from those already read or the next
/// ones (snapshots of different channels come in any order).
async fn frame_of(client: &mut WsClient, kind: &str, channel: Option<&str>) -> Value {
    let wanted =
        |frame: &Value| frame["type"] == kind && channel.is_none_or(|c| frame["channel"] == c);
    if let Some(i) = client.seen.iter().position(wanted) {
        return client.seen.remove(i);
    }
    loop {
        let frame = client.next_frame().await.unwrap().expect("socket closed");
        if wanted(&frame) {
            return frame;
        }
        client.seen.push(frame);
    }
}

#[tokio::test]
async fn a_signed_token_sets_the_identity_and_bad_ones_are_refused_with_401() {
    // GIVEN ripple dev with a JWT secret
    let server = start_with_secret().await;
    let base = server.ws_url();

    // WHEN alice connects with a valid token (and claims to be someone else by `user`)
    let url = token_url(
        &server,
        &token("alice", 300, SECRET),
        &["arena"],
        "&user=mallory",
    );
    let mut alice = WsClient::connect(&url).await.unwrap();
    alice.wait_for_snapshot("arena").await.unwrap();
    // THEN her identity is the token's subject
    assert_eq!(alice.user, "alice");

    // WHEN bob passes his token in Sec-WebSocket-Protocol
    let bob_token = token("bob", 300, SECRET);
    let (mut bob, echoed) =
        WsClient::connect_with_protocol(&format!("{base}/?channel=arena"), Some(&bob_token))
            .await
            .unwrap();
    // (his snapshot comes once fanout has put him in arena's roster: the table is settled)
    bob.wait_for_snapshot("arena").await.unwrap();
    // THEN he is bob and the protocol is echoed back
    assert_eq!(bob.user, "bob");
    assert_eq!(echoed.as_deref(), Some(bob_token.as_str()));
    let items = table_items(&server).await.len();

    // WHEN connects come with no token, an expired one, or one signed with another secret
    let refused = [
        format!("{base}/?user=eve&channel=arena"),
        token_url(&server, &token("eve", -3600, SECRET), &["arena"], ""),
        token_url(
            &server,
            &token("eve", 300, "not-the-secret"),
            &["arena"],
            "",
        ),
        token_url(&server, "not.a.jwt", &["arena"], ""),
    ];
    for url in refused {
        // THEN each upgrade is refused with 401
        assert_refused(&url, 401, "bad token").await;
    }
    // AND nothing was written for them
    assert_eq!(table_items(&server).await.len(), items);
    server.shutdown().await;
}

#[tokio::test]
async fn rs256_es256_and_hs256_tokens_connect_as_sub_and_every_bad_token_gets_401() {
    // GIVEN an identity provider with an RSA and an EC key, publishing its JWKS on loopback
    let rsa = SigningKey::rs256("rsa-2026").unwrap();
    let ec = SigningKey::es256("ec-2026").unwrap();
    let unpublished = SigningKey::rs256("rsa-unpublished").unwrap();
    let idp = JsonServer::start(jwks(&[&rsa, &ec]).unwrap())
        .await
        .unwrap();
    // AND ripple dev trusting it (and an HS256 secret), with an issuer and an audience
    let server = start_dev(dev_options(|s| {
        s.jwt_secret = Some(SECRET.into());
        s.jwks_url = Some(idp.url.clone());
        s.jwt_issuer = Some(ISSUER.into());
        s.jwt_audience = Some(AUDIENCE.into());
    }))
    .await
    .unwrap();
    let claims =
        |sub: &str| json!({"sub": sub, "exp": now() + 300, "iss": ISSUER, "aud": AUDIENCE});
    let connect_url = |token: &str| token_url(&server, token, &["arena"], "");

    // WHEN valid RS256, ES256 and HS256 tokens connect
    let valid = [
        ("rs-user", rsa.sign(&claims("rs-user"))),
        ("es-user", ec.sign(&claims("es-user"))),
        ("hs-user", sign_hs256(&claims("hs-user"), SECRET.as_bytes())),
    ];
    let mut connected = Vec::new();
    for (sub, token) in &valid {
        let mut client = WsClient::connect(&connect_url(token)).await.unwrap();
        // THEN each identity is the token's `sub`
        assert_eq!(&client.user, sub);
        // (its snapshot comes once fanout has put it in arena's roster: the table is settled)
        client.wait_for_snapshot("arena").await.unwrap();
        connected.push(client);
    }
    let before = table_items(&server).await;

    // WHEN each kind of bad token connects
    let with = |key: &str, value: Value| {
        let mut c = claims("eve");
        c[key] = value;
        c
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims("eve"))
    );
    let mut confused_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    confused_header.kid = Some("rsa-2026".into());
    let hs256_with_rsa_public_key = jsonwebtoken::encode(
        &confused_header,
        &claims("eve"),
        &jsonwebtoken::EncodingKey::from_secret(rsa.public_key_bytes()),
    )
    .unwrap();
    let signed = rsa.sign(&claims("eve"));
    let parts: Vec<&str> = signed.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims("admin")), parts[2]);
    let bad = [
        ("no token", String::new()),
        ("alg none", alg_none),
        ("expired", rsa.sign(&with("exp", json!(now() - 3600)))),
        ("wrong aud", ec.sign(&with("aud", json!("another-app")))),
        (
            "wrong iss",
            rsa.sign(&with("iss", json!("https://evil.example"))),
        ),
        ("unknown kid", unpublished.sign(&claims("eve"))),
        ("HS256 with the RSA public key", hs256_with_rsa_public_key),
        (
            "wrong HS256 secret",
            sign_hs256(&claims("eve"), b"not-the-secret"),
        ),
        ("tampered payload", tampered),
    ];
    for (what, token) in &bad {
        let url = if token.is_empty() {
            format!("{}/?user=eve&channel=arena", server.ws_url())
        } else {
            connect_url(token)
        };
        // THEN each is refused with 401
        assert_refused(&url, 401, what).await;
    }
    // AND nothing was written for any of them
    assert_eq!(table_items(&server).await, before);
    drop(connected);
    server.shutdown().await;
}

#[tokio::test]
async fn a_grant_limits_joins_and_publishes_and_nothing_refused_is_written_or_fanned_out() {
    // GIVEN ripple dev with a JWT secret
    let server = start_with_secret().await;
    let url = |token: &str, channels: &[&str]| token_url(&server, token, channels, "");
    // AND an observer allowed everything, in lobby, room:7 and arena
    let everything = granted("observer", json!({}));
    let mut observer = WsClient::connect(&url(&everything, &["lobby", "room:7", "arena"]))
        .await
        .unwrap();
    for channel in ["lobby", "room:7", "arena"] {
        frame_of(&mut observer, "snapshot", Some(channel)).await;
    }
    // AND a spectator token that may join lobby and rooms but publish to rooms only
    let limited = granted(
        "spectator",
        json!({"channels": ["lobby", "room:*"], "publish": ["room:*"]}),
    );

    // WHEN the spectator connects to lobby
    let mut spectator = WsClient::connect(&url(&limited, &["lobby"])).await.unwrap();
    // THEN it is in
    frame_of(&mut spectator, "snapshot", Some("lobby")).await;
    // WHEN it joins room:7 and publishes there
    spectator
        .send(r#"{"action":"join","channel":"room:7"}"#)
        .await
        .unwrap();
    frame_of(&mut spectator, "snapshot", Some("room:7")).await;
    spectator
        .send(r#"{"action":"message","channel":"room:7","text":"hello room"}"#)
        .await
        .unwrap();
    // THEN the observer gets the message
    observer
        .wait_for_event(|e| e["text"] == "hello room")
        .await
        .unwrap();
    let before = table_items(&server).await;

    // WHEN it connects asking for arena, alone or with an allowed channel
    // THEN the upgrade is refused with 403
    assert_refused(&url(&limited, &["arena"]), 403, "arena alone").await;
    assert_refused(&url(&limited, &["lobby", "arena"]), 403, "lobby and arena").await;
    // WHEN it joins arena, and publishes a message and a position to lobby
    // THEN each gets a `forbidden` error frame and the socket stays open
    let refused = [
        r#"{"action":"join","channel":"arena"}"#,
        r#"{"action":"message","channel":"lobby","text":"psst"}"#,
        r#"{"action":"position","channel":"lobby","x":1,"y":2,"seq":1}"#,
    ];
    for frame in refused {
        spectator.send(frame).await.unwrap();
        let error = frame_of(&mut spectator, "error", None).await;
        assert_eq!(error["code"], "forbidden", "{frame}: {error}");
    }
    // AND nothing was written for any refusal
    assert_eq!(table_items(&server).await, before);

    // WHEN the spectator publishes to room:7 again, and the observer's friend writes to lobby
    spectator
        .send(r#"{"action":"message","channel":"room:7","text":"still here"}"#)
        .await
        .unwrap();
    let mut friend = WsClient::connect(&url(&everything, &["lobby"]))
        .await
        .unwrap();
    friend
        .send(r#"{"action":"message","channel":"lobby","text":"marker"}"#)
        .await
        .unwrap();
    // THEN the observer gets both, and never the refused publish or the spectator in arena
    observer
        .wait_for_event(|e| e["text"] == "still here")
        .await
        .unwrap();
    observer
        .wait_for_event(|e| e["text"] == "marker")
        .await
        .unwrap();
    for event in observer.seen_events() {
        assert_ne!(event["text"], "psst", "{event}");
        assert!(
            !(event["channel"] == "arena" && event["user"] == "spectator"),
            "{event}"
        );
        assert!(
            !(event["type"] == "position" && event["user"] == "spectator"),
            "{event}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn resume_restores_only_the_channels_the_new_token_may_join() {
    // GIVEN ripple dev with a JWT secret, and alice connected to lobby and arena with a full token
    let server = start_with_secret().await;
    let full = granted("alice", json!({}));
    let base = server.ws_url();
    let mut alice = WsClient::connect(&token_url(&server, &full, &["lobby", "arena"], ""))
        .await
        .unwrap();
    frame_of(&mut alice, "snapshot", Some("lobby")).await;
    frame_of(&mut alice, "snapshot", Some("arena")).await;
    alice.close().await;
    // AND her session is saved once the disconnect is through
    let saved = async {
        loop {
            let items = table_items(&server).await;
            if items.iter().any(|i| i["kind"] == "session")
                && !items.iter().any(|i| i["kind"] == "member")
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(ripple_tests::E2E_WAIT, saved)
        .await
        .unwrap();

    // WHEN someone without her token asks to resume as alice
    // THEN the upgrade is refused and the session stays
    assert_refused(&format!("{base}/?user=alice&resume=1"), 401, "no token").await;
    // WHEN alice resumes with a token that may only join lobby
    let lobby_only = granted("alice", json!({"channels": ["lobby"]}));
    let mut alice = WsClient::connect(&token_url(&server, &lobby_only, &[], "&resume=1"))
        .await
        .unwrap();
    // THEN she is back in lobby only
    frame_of(&mut alice, "snapshot", Some("lobby")).await;
    let members: Vec<String> = table_items(&server)
        .await
        .iter()
        .filter(|i| i["kind"] == "member")
        .map(|i| i["channel"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(members, ["lobby"]);
    server.shutdown().await;
}
