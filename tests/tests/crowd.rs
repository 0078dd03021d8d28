//! Many connections on one `ripple dev`, black box: a channel at its member cap, and healthy
//! users chatting through a storm of sick connections (opened and dropped, flapping, not reading)
//! with every `$disconnect` lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use ripple::dev::DevServer;
use ripple_tests::{WsClient, connect, dev_with_alice_and_bob_on, ws_url};

/// Waits until `channel`'s roster has `n` entries (fanout writes them after the `welcome`).
async fn roster_reaches(server: &DevServer, channel: &str, n: usize) {
    let counted = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if server
                .store
                .count_channel_members(channel, 100)
                .await
                .unwrap()
                == n
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "{channel}'s roster never had {n} entries");
}

const JOIN_ARENA: &str = r#"{"action":"join","channel":"arena"}"#;

#[tokio::test]
async fn a_channel_at_its_member_cap_refuses_joins_and_connects_with_channel_full_and_writes_nothing()
 {
    // GIVEN ripple dev capping channels at 2 members, and alice and bob in arena
    let opts = ripple_tests::dev_options(|s| s.max_members_per_channel = 2);
    let (server, mut alice, mut bob) = dev_with_alice_and_bob_on(opts, "arena").await.unwrap();
    for client in [&mut alice, &mut bob] {
        client.wait_for_snapshot("arena").await.unwrap();
    }
    roster_reaches(&server, "arena", 2).await;

    // WHEN carol, connected to no channel, joins arena
    let mut carol = connect(&server, "user=carol").await.unwrap();
    let refusal = carol.request(JOIN_ARENA).await.unwrap();

    // THEN she is refused channel_full, and no membership was written
    assert_eq!(refusal["code"], "channel_full", "{refusal}");
    assert!(
        server
            .store
            .get_member(&carol.id, "arena")
            .await
            .unwrap()
            .is_none()
    );
    // AND a connect asking for arena is refused with 409 (nothing stored: no welcome)
    let url = ws_url(&server, "user=dan&channel=arena");
    assert_eq!(WsClient::upgrade_refusal(&url).await.unwrap(), Some(409));
    // AND alice, already in, may join again (a join is idempotent)
    assert_eq!(alice.request(JOIN_ARENA).await.unwrap()["type"], "joined");

    // WHEN bob leaves
    let left = bob
        .request(r#"{"action":"leave","channel":"arena"}"#)
        .await
        .unwrap();
    assert_eq!(left["type"], "left", "{left}");
    roster_reaches(&server, "arena", 1).await;

    // THEN carol's join is accepted
    let joined = carol.request(JOIN_ARENA).await.unwrap();
    assert_eq!(joined["type"], "joined", "{joined}");
    server.shutdown().await;
}
