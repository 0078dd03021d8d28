//! The deployed artifacts, run locally: the three `bootstrap` binaries from the zips
//! `scripts/package.sh` builds (`--profile dev`: the same cargo-lambda build, unoptimised), each
//! started with the environment Terraform sets (the names in `ripple_common::deploy`, which the
//! Terraform test holds equal to `terraform/`) behind a loopback Lambda Runtime API, fed the
//! events AWS would send, with DynamoDB Local and a loopback `@connections` server behind them.
//!
//! What only this test catches: a fault in a `main.rs` (settings from the environment, the
//! invocation classification, the response JSON) or in the packaging itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use base64::Engine;
use ripple::apigw::{connect_event, message_event};
use ripple_common::auth::issuer::{SigningKey, jwks};
use ripple_common::deploy::{self, FunctionSpec};
use ripple_tests::runtime_api::{Outcome, PackagedBuild, PackagedFunction};
use ripple_tests::{
    JsonServer, RecordingConnections, TestTable, fixture, seed, seed_members, ws_context,
};
use serde_json::{Value, json};
use sha2::Digest;

/// The identity provider of the deployment under test: an RS256 key published as a JWKS on
/// loopback (Terraform's `jwks_url` mode: no secret to read from SSM, no network beyond loopback).
struct Idp {
    key: SigningKey,
    jwks: JsonServer,
}

async fn idp() -> Idp {
    let key = SigningKey::rs256("packaged-2026").unwrap();
    let jwks = JsonServer::start(jwks(&[&key]).unwrap()).await.unwrap();
    Idp { key, jwks }
}

/// The value Terraform gives each environment variable (its defaults) in `jwks_url` mode, by
/// name; `None`: Terraform leaves it unset.
fn terraform_value(
    name: &str,
    table: &TestTable,
    connections: &RecordingConnections,
    idp: &Idp,
) -> Option<String> {
    Some(match name {
        deploy::ENV_TABLE => table.store.table().to_owned(),
        deploy::ENV_CONNECTION_TTL_SECS => "7800".into(),
        deploy::ENV_JWKS_URL => idp.jwks.url.clone(),
        deploy::ENV_JWT_SECRET_PARAMETER
        | deploy::ENV_JWT_ISSUER
        | deploy::ENV_JWT_AUDIENCE
        | deploy::ENV_ALLOW_ANONYMOUS => return None,
        deploy::ENV_RESUME_WINDOW_SECS => "120".into(),
        deploy::ENV_POSITION_TTL_SECS => "900".into(),
        deploy::ENV_MESSAGE_TTL_SECS => "86400".into(),
        deploy::ENV_POSITION_RATE => "30".into(),
        deploy::ENV_MESSAGE_RATE => "5".into(),
        deploy::ENV_MAX_MEMBERS_PER_CHANNEL => "1000".into(),
        deploy::ENV_CONNECTIONS_ENDPOINT => connections.url.clone(),
        deploy::ENV_MAX_IN_FLIGHT => "64".into(),
        deploy::ENV_POSTS_PER_SECOND => "2000".into(),
        deploy::ENV_MEMBER_CACHE_MS => "0".into(),
        deploy::ENV_RUST_LOG => "info".into(),
        other => panic!(
            "{other} is in ripple_common::deploy but has no value in tests/tests/packaged.rs: give it the one Terraform sets"
        ),
    })
}

/// Exactly the variables of `spec` (required and optional), valued as Terraform values them.
fn terraform_env(
    spec: &FunctionSpec,
    table: &TestTable,
    connections: &RecordingConnections,
    idp: &Idp,
) -> Vec<(String, String)> {
    spec.env_required
        .iter()
        .chain(spec.env_optional)
        .filter_map(|name| {
            terraform_value(name, table, connections, idp).map(|v| ((*name).to_owned(), v))
        })
        .collect()
}

async fn start(
    build: &PackagedBuild,
    spec: &FunctionSpec,
    table: &TestTable,
    connections: &RecordingConnections,
    idp: &Idp,
) -> PackagedFunction {
    let bootstrap = build
        .extract(
            spec.package,
            &build.dir.join(format!("{}-task", spec.package)),
        )
        .unwrap();
    PackagedFunction::start(
        &format!("ripple-{}", spec.package),
        &bootstrap,
        &terraform_env(spec, table, connections, idp),
        &table.endpoint,
    )
    .await
    .unwrap()
}

fn response(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(v) => v,
        Outcome::Error(e) => panic!("the function answered an error: {e}"),
    }
}

fn to_json<T: serde::Serialize>(event: &T) -> Value {
    serde_json::to_value(event).unwrap()
}

fn connect_with_token(idp: &Idp, connection_id: &str, user: &str, channel: &str) -> Value {
    let token = idp
        .key
        .sign(&json!({"sub": user, "exp": ripple_common::now_ms() / 1000 + 600}));
    let query = [
        ("token".to_owned(), token),
        ("channel".to_owned(), channel.to_owned()),
    ];
    to_json(
        &connect_event(
            &ws_context(connection_id),
            &[("Host".into(), "127.0.0.1:1".into())],
            &query,
            ripple_common::now_ms(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn the_packaged_binaries_serve_connect_frames_stream_batches_and_the_sweep() {
    // GIVEN the zips and build record scripts/package.sh writes, for this machine's architecture
    let build = PackagedBuild::build().unwrap();
    let host_arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    };
    assert_eq!(build.record["architecture"], host_arch, "{}", build.record);
    for spec in deploy::FUNCTIONS {
        let bytes = std::fs::read(build.zip(spec.package).unwrap()).unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
        assert_eq!(
            build.record["functions"][spec.package]["base64sha256"], hash,
            "build.json records {}'s zip hash (what Terraform compares)",
            spec.package
        );
    }
    // AND the three binaries running with Terraform's environment, on DynamoDB Local
    let mut table = TestTable::new().await.unwrap();
    let connections = RecordingConnections::start().await.unwrap();
    let idp = idp().await;
    let mut connect = start(&build, &deploy::CONNECT, &table, &connections, &idp).await;
    let mut ingest = start(&build, &deploy::INGEST, &table, &connections, &idp).await;
    let mut fanout = start(&build, &deploy::FANOUT, &table, &connections, &idp).await;

    // WHEN alice and bob connect to arena with tokens
    for (id, user) in [("pk-alice", "alice"), ("pk-bob", "bob")] {
        let answer = response(
            connect
                .invoke(&connect_with_token(&idp, id, user, "arena"))
                .await
                .unwrap(),
        );
        // THEN connect answers 200 and stores the connection and its membership
        assert_eq!(answer["statusCode"], 200, "{answer}");
        assert_eq!(table.connection_item_count(id).await.unwrap(), 2);
        // (and API Gateway establishes the connection)
        connections.mark_live(id);
    }
    // AND a $connect without a token is refused with nothing written
    let no_token = to_json(
        &connect_event(
            &ws_context("pk-mallory"),
            &[],
            &[("user".into(), "mallory".into())],
            ripple_common::now_ms(),
        )
        .unwrap(),
    );
    let refused = response(connect.invoke(&no_token).await.unwrap());
    assert_eq!(refused["statusCode"], 401, "{refused}");
    assert_eq!(table.connection_item_count("pk-mallory").await.unwrap(), 0);

    // WHEN alice sends a chat message and a frame with an unknown action
    let sent = response(
        ingest
            .invoke(&to_json(
                &message_event(
                    &ws_context("pk-alice"),
                    r#"{"action":"message","channel":"arena","text":"hello from the zip"}"#,
                    ripple_common::now_ms(),
                )
                .unwrap(),
            ))
            .await
            .unwrap(),
    );
    // THEN the message is accepted
    assert_eq!(sent["statusCode"], 200, "{sent}");
    let bad = response(
        ingest
            .invoke(&to_json(
                &message_event(
                    &ws_context("pk-alice"),
                    r#"{"action":"dance"}"#,
                    ripple_common::now_ms(),
                )
                .unwrap(),
            ))
            .await
            .unwrap(),
    );
    // AND the bad frame gets the error frame as the route response's body
    let body: Value = serde_json::from_str(bad["body"].as_str().unwrap_or("null")).unwrap();
    assert_eq!(body["type"], "error", "{bad}");
    assert_eq!(body["code"], "unknown_action", "{bad}");

    // WHEN fanout gets the table's stream records as the event source mapping delivers them
    // (the connects and the message, then the roster entries fanout wrote once it had greeted)
    let heard = |connections: &RecordingConnections| {
        connections.frames("pk-bob").iter().any(|f| {
            let carried = |list: &Value| {
                list.as_array()
                    .is_some_and(|l| l.iter().any(|e| e["text"] == "hello from the zip"))
            };
            carried(&f["events"]) || carried(&f["messages"])
        })
    };
    for _ in 0..3 {
        let batch = table.take_stream_event().await.unwrap();
        let answer = response(fanout.invoke(&to_json(&batch)).await.unwrap());
        // THEN no record failed
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        if heard(&connections) {
            break;
        }
    }
    // AND bob received alice's message through @connections (as an event, or in the snapshot
    // of arena his roster entry brought)
    assert!(heard(&connections), "{:?}", connections.frames("pk-bob"));

    // WHEN fanout gets a recorded batch (tests/fixtures) for seeded members, all connected but
    // carol, the batch's only lobby sender, whose socket is gone
    let connected = [
        ("c-alice", "alice", "arena"),
        ("c-bob", "bob", "arena"),
        ("c-frank", "frank", "lobby"),
    ];
    seed_members(&table, &connections, &connected)
        .await
        .unwrap();
    seed(&table, "c-carol", "carol", &["lobby"]).await.unwrap();
    let recorded = fixture("stream-two-channels.json", &[]).unwrap();
    let answer = response(fanout.invoke(&to_json(&recorded)).await.unwrap());
    // THEN it is delivered as the in-process handler delivers it
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let frank = connections.events("c-frank");
    assert_eq!(frank.len(), 1, "{frank:?}");
    assert_eq!(frank[0]["user"], "carol");

    // WHEN EventBridge invokes fanout with the sweep's scheduled input, and carol's old
    // connection (seeded long ago) answers 410 to GET @connections
    let swept = response(fanout.invoke(&json!({"ripple": "sweep"})).await.unwrap());
    // THEN the sweep reports what it examined and deleted the dead connection with its membership
    assert!(
        swept["examined"].as_u64().unwrap_or(0) >= 1,
        "the sweep's report: {swept}"
    );
    assert!(swept["deleted"].as_u64().unwrap_or(0) >= 1, "{swept}");
    assert_eq!(table.connection_item_count("c-carol").await.unwrap(), 0);

    // WHEN fanout gets an event it does not know
    let unknown = fanout.invoke(&json!({"hello": "world"})).await.unwrap();
    // THEN it answers a runtime error (the invocation fails), not a made-up success
    assert!(matches!(unknown, Outcome::Error(_)), "{unknown:?}");
}

#[tokio::test]
async fn a_binary_started_without_its_table_reports_what_to_set() {
    // GIVEN the packaged connect binary, started without RIPPLE_TABLE (as a wrong variable name
    // in Terraform or in the code would leave it)
    let build = PackagedBuild::build().unwrap();
    let table = TestTable::new().await.unwrap();
    let connections = RecordingConnections::start().await.unwrap();
    let idp = idp().await;
    let env: Vec<_> = terraform_env(&deploy::CONNECT, &table, &connections, &idp)
        .into_iter()
        .filter(|(k, _)| k != deploy::ENV_TABLE)
        .collect();
    let bootstrap = build
        .extract("connect", &build.dir.join("connect-task"))
        .unwrap();
    let mut connect = PackagedFunction::start("ripple-connect", &bootstrap, &env, &table.endpoint)
        .await
        .unwrap();

    // WHEN it is invoked
    let result = connect
        .invoke(&connect_with_token(&idp, "pk-x", "x", "arena"))
        .await;

    // THEN the invocation fails, and the process said which variable to set
    let err = format!(
        "{:#}",
        result.expect_err("a function without its table must not serve")
    );
    assert!(err.contains(deploy::ENV_TABLE), "{err}");
}

#[tokio::test]
async fn ripple_bench_cold_start_times_each_packaged_binary() {
    // GIVEN the three packaged bootstraps, named as `ripple bench cold-start` looks for them
    let build = PackagedBuild::build().unwrap();
    let bins = build.dir.join("cold-start-bins");
    for spec in deploy::FUNCTIONS {
        let bootstrap = build
            .extract(spec.package, &build.dir.join(spec.package))
            .unwrap();
        std::fs::create_dir_all(&bins).unwrap();
        std::fs::copy(&bootstrap, bins.join(spec.package)).unwrap();
    }
    let table = TestTable::new().await.unwrap();
    // WHEN the bench runs one cold start of each on DynamoDB Local
    let args = ripple::bench::cold_start::ColdStartArgs {
        bin_dir: Some(bins),
        dynamodb_endpoint: Some(table.endpoint.clone()),
        runs: 1,
        json: true,
    };
    let results = ripple::bench::cold_start::measure(&args).await.unwrap();
    // THEN every function started with the environment the bench gives it and answered both
    // invocations without an error (what broke unseen once), each with its times
    let functions: Vec<&str> = results.iter().map(|r| r.function).collect();
    assert_eq!(functions, ["connect", "ingest", "fanout"]);
    for r in &results {
        assert!(
            r.init_ms > 0.0 && r.first_invocation_ms > 0.0 && r.second_invocation_ms > 0.0,
            "{r:?}"
        );
    }
}
