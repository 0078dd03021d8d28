//! `$connect` authentication on `ripple dev` with a JWT secret: HS256 tokens by query string or
//! `Sec-WebSocket-Protocol`; missing, expired or badly signed tokens are refused with 401 and
//! nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use ripple::dev::DevOptions;
use ripple_common::auth::sign_hs256;
use ripple_tests::{WsClient, start_dev};
use serde_json::json;

const SECRET: &str = "test-secret-for-ripple";

fn token(sub: &str, exp_offset: i64, secret: &str) -> String {
    let now = (ripple_common::now_ms() / 1000) as i64;
    sign_hs256(
        &json!({"sub": sub, "exp": now + exp_offset}),
        secret.as_bytes(),
    )
}

async fn table_items(server: &ripple::dev::DevServer) -> usize {
    let out = server
        .store
        .client()
        .scan()
        .table_name(server.store.table())
        .send()
        .await
        .unwrap();
    out.items.unwrap_or_default().len()
}

#[tokio::test]
async fn a_signed_token_sets_the_identity_and_bad_ones_are_refused_with_401() {
    // GIVEN ripple dev with a JWT secret
    let opts = DevOptions {
        jwt_secret: Some(SECRET.into()),
        ..DevOptions::default()
    };
    let server = start_dev(opts).await.unwrap();
    let base = server.ws_url();

    // WHEN alice connects with a valid token (and claims to be someone else by `user`)
    let url = format!(
        "{base}/?token={}&user=mallory&channel=arena",
        token("alice", 300, SECRET)
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
    let items = table_items(&server).await;

    // WHEN connects come with no token, an expired one, or one signed with another secret
    let refused = [
        format!("{base}/?user=eve&channel=arena"),
        format!(
            "{base}/?token={}&channel=arena",
            token("eve", -3600, SECRET)
        ),
        format!(
            "{base}/?token={}&channel=arena",
            token("eve", 300, "not-the-secret")
        ),
        format!("{base}/?token=not.a.jwt&channel=arena"),
    ];
    for url in refused {
        // THEN each upgrade is refused with 401
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401, "{url}")
            }
            other => panic!("{url}: expected 401, got {other:?}"),
        }
    }
    // AND nothing was written for them
    assert_eq!(table_items(&server).await, items);
    server.shutdown().await;
}
