//! `ripple bench e2e --url` against a running `ripple dev`: the players, latency and report of
//! `bench e2e`, pointed at a stack it did not start; bounded, and nothing sent unconfirmed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use clap::Parser;
use ripple::bench::e2e::E2eArgs;
use ripple::bench::remote::measure;
use ripple::dev::{DevOptions, DevServer};
use ripple_tests::start_dev;

/// `ripple bench e2e ARGS`, parsed as the command line parses it.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: E2eArgs,
}

fn bench_args(url: &str, extra: &[&str]) -> E2eArgs {
    let mut argv = vec![
        "bench-e2e",
        "--url",
        url,
        "--players",
        "4",
        "--channels",
        "2",
    ];
    argv.extend_from_slice(&["--hz", "5", "--seconds", "1", "--warmup", "0", "--json"]);
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().args
}

fn counter(server: &DevServer, name: &str) -> u64 {
    server
        .metrics
        .snapshot()
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(0, |(_, _, v)| *v)
}

#[tokio::test]
async fn bench_e2e_with_url_and_yes_plays_against_a_running_stack_and_reports_what_it_saw() {
    // GIVEN a running ripple dev
    let server = start_dev(DevOptions::default()).await.unwrap();
    let url = server.ws_url();

    // WHEN `ripple bench e2e --url ws://127.0.0.1:PORT --yes` runs 4 players for 1 s
    let args = bench_args(&url, &["--yes"]);
    let results = measure(&args, false, || panic!("--yes must not ask"))
        .await
        .unwrap();
    let json = serde_json::to_value(&results).unwrap();

    // THEN updates were delivered and every receiver ended with every peer's last position
    assert!(json["delivered"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["final_positions_missed"], 0, "{json}");
    assert!(json["latency_ms"]["p50"].is_u64(), "{json}");
    // AND the report says where the numbers came from
    assert_eq!(json["source"]["kind"], "remote");
    assert_eq!(json["source"]["url"], url.as_str());
    // AND what a client cannot see is absent, not invented
    for absent in ["server", "dynamodb", "lambda"] {
        assert!(json[absent].is_null(), "{absent}: {json}");
    }
    // AND the API Gateway bill comes from the client's counts
    assert_eq!(
        json["api_gateway"][0]["quantity"].as_f64().unwrap(),
        json["client"]["sent"].as_f64().unwrap()
    );
    // AND the stack really served the 4 players
    assert_eq!(counter(&server, "connects_total"), 4);

    // AND a second run on the same stack delivers too: its positions are not taken for stale
    // repeats of the first run's (whose seqs were higher)
    let again = measure(&args, false, || panic!("--yes must not ask"))
        .await
        .unwrap();
    assert!(again["delivered"].as_u64().unwrap() > 0, "{again}");
    assert_eq!(again["final_positions_missed"], 0, "{again}");
    server.shutdown().await;
}

#[tokio::test]
async fn bench_e2e_with_url_refuses_without_yes_and_without_a_terminal_and_sends_nothing() {
    // GIVEN a running ripple dev
    let server = start_dev(DevOptions::default()).await.unwrap();

    // WHEN bench e2e --url runs without --yes and with no terminal to ask on
    let args = bench_args(&server.ws_url(), &[]);
    let err = measure(&args, false, || panic!("no terminal: nothing to read"))
        .await
        .expect_err("an unconfirmed remote run must not start");

    // THEN it says how to confirm
    assert!(format!("{err}").contains("--yes"), "{err}");
    // AND nothing reached the stack: no connection, no frame
    assert_eq!(counter(&server, "connects_total"), 0);
    assert_eq!(counter(&server, "frames_accepted_total"), 0);

    // AND an answer other than y on a terminal refuses too
    let err = measure(&args, true, || Ok("n\n".to_owned()))
        .await
        .expect_err("a refused run must not start");
    assert!(format!("{err}").contains("nothing was sent"), "{err}");
    assert_eq!(counter(&server, "connects_total"), 0);
    server.shutdown().await;
}
