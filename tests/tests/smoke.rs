//! `ripple smoke` against `ripple dev`: the check passes on a working stack and names the step
//! that failed on one that does not deliver.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use ripple::dev::DevOptions;
use ripple::smoke::{SmokeArgs, check};
use ripple_tests::start_dev;

fn args(url: String, tokens: Vec<String>) -> SmokeArgs {
    SmokeArgs {
        url,
        tokens,
        channel: None,
        timeout_secs: 5,
    }
}

#[tokio::test]
async fn smoke_passes_against_a_working_ripple_dev_and_times_every_step() {
    // GIVEN a running ripple dev
    let server = start_dev(DevOptions::default()).await.unwrap();

    // WHEN ripple smoke checks it
    let report = check(&args(server.ws_url(), Vec::new())).await.unwrap();

    // THEN every step passed, in order, each with its round trip
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "client A: welcome",
            "client A: snapshot",
            "client B: welcome",
            "client B: snapshot",
            "client A: hears B join",
            "position A → B",
            "position B → A",
            "message A → B",
            "message B → A",
            "bad frame → error frame",
        ]
    );
    let printed = report.render();
    assert!(printed.ends_with("PASS: 10 checks\n"), "{printed}");
    assert!(printed.contains(" ms\n"), "{printed}");
    server.shutdown().await;
}

#[tokio::test]
async fn smoke_fails_naming_the_step_when_the_stack_does_not_deliver() {
    // GIVEN a ripple dev whose @connections answers 410 Gone to every post
    let server = start_dev(DevOptions {
        faults: "gone=1".parse().unwrap(),
        ..DevOptions::default()
    })
    .await
    .unwrap();

    // WHEN ripple smoke checks it
    let err = check(&args(server.ws_url(), Vec::new()))
        .await
        .expect_err("a stack that delivers nothing must fail the check");

    // THEN the error names the first step whose frame never came
    let text = format!("{err:#}");
    assert!(text.starts_with("FAIL client A: welcome"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn smoke_uses_one_token_per_client_when_the_stack_requires_them() {
    // GIVEN a ripple dev that requires an HS256 JWT at connect
    let secret = "smoke-test-secret-0123456789abcdef";
    let server = start_dev(ripple_tests::dev_options(|s| {
        s.jwt_secret = Some(secret.into())
    }))
    .await
    .unwrap();
    let token = |user: &str| {
        ripple_common::auth::sign_hs256(
            &serde_json::json!({"sub": user, "exp": ripple_common::now_ms() / 1000 + 600}),
            secret.as_bytes(),
        )
    };

    // WHEN ripple smoke runs with a token for each of two users
    let report = check(&args(server.ws_url(), vec![token("ann"), token("ben")]))
        .await
        .unwrap();
    // THEN it passes
    assert_eq!(report.steps.len(), 10);

    // AND with a single token it refuses to start, saying what to give
    let err = check(&args(server.ws_url(), vec![token("ann")]))
        .await
        .expect_err("one token cannot make two users");
    assert!(format!("{err}").contains("give --token twice"), "{err}");
    server.shutdown().await;
}
