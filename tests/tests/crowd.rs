//! Many connections on one `ripple dev`, black box: a channel at its member cap, and healthy
//! users chatting through a storm of sick connections (opened and dropped, flapping, not reading)
//! with every `$disconnect` lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use std::time::Duration;

use ripple::bench::isolation::{IsolationArgs, measure};
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

#[tokio::test]
async fn healthy_chat_reaches_every_healthy_user_once_through_a_storm_of_sick_connections() {
    // GIVEN ripple dev on one shard with every $disconnect lost, and 6 healthy users in arena,
    // one more member that will stop reading
    let args = IsolationArgs {
        healthy: 6,
        rate: 2.0,
        seconds: 4.0,
        aborts: 10.0,
        flappers: 1,
        flap_rate: 50.0,
        non_readers: 1,
        outbound_frames: 8,
        shards: 1,
        dynamodb_endpoint: std::env::var("RIPPLE_TEST_DYNAMODB_ENDPOINT").ok(),
        json: true,
    };

    // WHEN they chat calmly, then beside connections opened and dropped at once, one joining and
    // leaving as fast as it can and the member that stopped reading
    let results = measure(&args).await.unwrap();

    // THEN in both phases every line reached every other healthy user exactly once
    for phase in ["calm", "storm"] {
        let t = &results[phase];
        assert!(t["lines"].as_u64().unwrap() > 0, "{results}");
        assert_eq!(t["missing"], 0, "{phase}: {results}");
        assert_eq!(t["copies"], 0, "{phase}: {results}");
    }
    // AND the storm happened: aborted connections, a flapper refused `rate_limited`, and the
    // member that stopped reading was closed as a slow consumer
    let sick = &results["sick"];
    assert!(sick["aborted"].as_u64().unwrap() > 0, "{results}");
    assert!(sick["flapper_refused"].as_u64().unwrap() > 0, "{results}");
    assert_eq!(
        sick["non_readers_closed_after_ms"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{results}"
    );
    assert!(
        results["server"]["disconnects_lost_total"]
            .as_u64()
            .unwrap()
            > 0
    );
}
