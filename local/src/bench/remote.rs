//! `ripple bench e2e --url ws(s)://…`: the e2e players against a stack that is already running (a
//! deployed `wss://…/prod`, or a running `ripple dev`) instead of a `ripple dev` started here.
//!
//! A deployed stack bills every message, so the run is bounded ([`MAX_PLAYERS`], [`MAX_HZ`],
//! [`MAX_PLAY_SECONDS`], [`MAX_DELIVERED`]) and, before anything is sent, the worst case of its bill
//! is printed (the bench's own cost model, [`super::cost`], fed the run's shape with no
//! coalescing and one record per fanout batch) and confirmed: on a terminal by answering `y`,
//! otherwise only with `--yes`.
//!
//! Only what a client can see is measured: sends, deliveries, latencies, frames and their billed
//! messages, connection-minutes. The stack's counters (connects, accepted frames, fanout batches)
//! and so its DynamoDB and Lambda usage are not visible from a URL and are reported as `null`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail, ensure};
use indicatif::HumanCount;
use ripple_common::items::Endpoint;
use serde_json::{Value, json};

use super::batch::Member;
use super::cost::{self, ClientCounts, ItemSizes, ServerCounts, Usage};
use super::e2e::E2eArgs;
use super::players::{session, user_of};
use super::{note, round};

/// Bounds of a remote run: players, positions per second per player, seconds of play (warm-up
/// included), and updates delivered at worst (every position to every other member).
pub const MAX_PLAYERS: usize = 200;
pub const MAX_HZ: f64 = 20.0;
pub const MAX_PLAY_SECONDS: f64 = 120.0;
pub const MAX_DELIVERED: u64 = 1_000_000;
/// Connected time beyond the play, at most: connecting, settling, draining, closing.
const OVERHEAD_SECONDS: f64 = 30.0;
/// Ingest and fanout ms per invocation assumed for the plan (a deployed stack's are not
/// measurable from here; these are generous for 128 MB arm64 functions calling DynamoDB).
const ASSUMED_TIMES: (f64, f64) = (20.0, 100.0);

/// Runs against `--url` and prints the results (stdout) or the refusal (the error).
pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    let results = measure(&args, std::io::stdin().is_terminal(), || {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await?;
    super::print(args.json, &results);
    Ok(())
}

/// Checks the bounds, prints the plan (stderr), asks (`answer` reads the reply when `is_tty`),
/// then plays. Nothing is sent before the confirmation. Returns everything `--json` prints:
/// latencies are the receive time here minus the `ts` the stack stamped (they include the
/// clocks' offset).
pub async fn measure(
    args: &E2eArgs,
    is_tty: bool,
    answer: impl FnOnce() -> std::io::Result<String>,
) -> anyhow::Result<Value> {
    let url = args.url.as_deref().unwrap_or_default();
    let url = url.trim_end_matches('/').to_owned();
    ensure!(
        url.starts_with("ws://") || url.starts_with("wss://"),
        "--url must be a ws:// or wss:// URL, got {url}"
    );
    let tokens = tokens(args)?;
    let plan = plan(args, &url)?;
    let shown = serde_json::to_string_pretty(&plan).unwrap_or_default();
    note(&format!(
        "bench e2e --url {url}: at most, and the bill at worst:\n{shown}"
    ));
    confirm(args.yes, is_tty, answer)?;
    // Fresh channels: the positions an earlier run left (with higher `seq`s) would refuse this
    // run's as stale, and nobody else's clients hear the load.
    let mut args = args.clone();
    args.channel_tag = format!("-{:x}", ripple_common::now_ms());
    let run = session(&args, &url, &tokens).await?;
    let client = run.client;
    let usage = Usage {
        inbound_messages: client.sent,
        outbound_messages: client.messages_out,
        connection_minutes: client.connection_minutes,
        ..Usage::default()
    };
    // The bill's first three lines: API Gateway's messages in and out, connection-minutes.
    let api_gateway = cost::bill(&usage)[..3].to_vec();
    let api_gateway_usd = cost::total(&api_gateway);
    let results = json!({
        // where the numbers came from: players against `url`, not a `ripple dev` of this process
        "source": {"kind": "remote", "url": url},
        // what the players counted over the whole run, and the API Gateway part of its bill
        "client": client,
        "api_gateway": api_gateway,
        "api_gateway_usd": api_gateway_usd,
        "api_gateway_per_million_delivered_usd": cost::per_million(api_gateway_usd, client.delivered),
        // the stack's counters, its DynamoDB and Lambda usage: not visible from a URL
        "server": null, "dynamodb": null, "lambda": null,
        // the worst case confirmed before the run
        "plan": plan,
    });
    Ok(super::merged(run.measured, results))
}

/// The players' tokens: none, or exactly one per player.
fn tokens(args: &E2eArgs) -> anyhow::Result<Vec<String>> {
    let tokens: Vec<String> = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --token-file {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => args.tokens.clone(),
    };
    let (players, n) = (args.players, tokens.len());
    ensure!(
        n == 0 || n == players,
        "give one token per player ({players} players, {n} tokens), or none when the stack needs no JWT"
    );
    Ok(tokens)
}

/// The run's worst case (the bench's own cost model fed the run's shape, with no coalescing and
/// one record per fanout batch), refused when beyond the bounds.
pub fn plan(args: &E2eArgs, url: &str) -> anyhow::Result<Value> {
    let play_seconds = args.warmup + args.seconds;
    ensure!(
        args.players <= MAX_PLAYERS,
        "--players must be at most {MAX_PLAYERS} with --url"
    );
    ensure!(
        args.hz <= MAX_HZ,
        "--hz must be at most {MAX_HZ} with --url"
    );
    ensure!(
        play_seconds <= MAX_PLAY_SECONDS,
        "--warmup + --seconds must be at most {MAX_PLAY_SECONDS} with --url"
    );
    // One more than the ticks in the play, for the tick at its start.
    let sends_per_player = (args.hz * play_seconds).ceil() as u64 + 1;
    // Players per channel (player i joins channel i mod M), and the (receiver, sender) pairs.
    let channels = args.channels.max(1);
    let pairs: u64 = (0..channels)
        .map(|c| (args.players / channels + usize::from(c < args.players % channels)) as u64)
        .map(|s| s * s.saturating_sub(1))
        .sum();
    let players = args.players as u64;
    let (positions, delivered_at_most) = (players * sends_per_player, pairs * sends_per_player);
    if delivered_at_most > MAX_DELIVERED {
        bail!(
            "this run could deliver up to {} updates; the bound with --url is {}: fewer players, channels with fewer members, a lower --hz or fewer seconds",
            HumanCount(delivered_at_most),
            HumanCount(MAX_DELIVERED)
        );
    }
    let connected_seconds = play_seconds + OVERHEAD_SECONDS;
    let server = ServerCounts {
        connects: players,
        disconnects: players,
        frames_accepted: positions,
        membership_reads: positions,
        fanout_batches: positions,
        fanout_records: positions,
        ..ServerCounts::default()
    };
    let client = ClientCounts {
        sent: positions,
        delivered: delivered_at_most,
        // welcome and snapshot each, a join and a leave per pair, every update in its own frame
        messages_out: 2 * players + 2 * pairs + delivered_at_most,
        connection_minutes: round(players as f64 * connected_seconds / 60.0, 3),
        seconds: connected_seconds,
    };
    let endpoint = endpoint_of(url);
    let sender = Member::new("AbCdEfGhIjK=", &user_of(0));
    let sizes = ItemSizes::sample(&args.channel_of(0), &sender, &endpoint);
    let members = args.players as f64 / channels as f64;
    let e = cost::estimate(&server, &client, channels, members, sizes, ASSUMED_TIMES);
    let (usage, lines, total_usd) = (&e["usage"], &e["lines"], &e["total_usd"]);
    let (ingest_ms, fanout_ms) = ASSUMED_TIMES;
    let assumed = format!(
        "no coalescing, one record per fanout batch, {ingest_ms} ms per ingest and {fanout_ms} ms per fanout invocation"
    );
    // positions the players send (warm-up included), updates delivered without coalescing
    Ok(json!({
        "positions": positions, "delivered_at_most": delivered_at_most, "assumed": assumed,
        "usage": usage, "lines": lines, "total_usd": total_usd,
    }))
}

/// The `@connections` endpoint a URL's connections would carry (for the items' sizes).
fn endpoint_of(url: &str) -> Endpoint {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (domain, stage) = rest.split_once('/').unwrap_or((rest, "prod"));
    let stage = stage.split(['/', '?']).next().unwrap_or("prod");
    Endpoint {
        domain: domain.to_owned(),
        stage: stage.to_owned(),
    }
}

/// Go ahead only with `--yes`, or a `y` typed on a terminal.
pub fn confirm(
    yes: bool,
    is_tty: bool,
    answer: impl FnOnce() -> std::io::Result<String>,
) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    ensure!(
        is_tty,
        "bench e2e --url: refusing to send anything: stdin is not a terminal, so nobody can confirm the estimated cost above; run again with --yes to accept it"
    );
    eprint!("Send this load to the stack? [y/N] ");
    let _ = std::io::stderr().flush();
    let reply = answer().context("reading the answer")?;
    match reply.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("bench e2e --url: not confirmed; nothing was sent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: E2eArgs,
    }

    fn plan_of(extra: &str) -> anyhow::Result<Value> {
        let url = "wss://abc.execute-api.eu-west-1.amazonaws.com/prod";
        let argv = ["bench", "--url", url]
            .into_iter()
            .chain(extra.split_whitespace());
        plan(&Cli::parse_from(argv).args, url)
    }

    #[test]
    fn the_plan_counts_every_send_and_every_delivery_without_coalescing() {
        // GIVEN 4 players in 2 channels at 2 Hz for 1 s, no warm-up WHEN planned
        let p = plan_of("--players 4 --hz 2 --seconds 1 --warmup 0").unwrap();
        // THEN 3 sends each (2 ticks + the first), each heard by the one other member
        assert_eq!(
            (p["positions"].as_u64(), p["delivered_at_most"].as_u64()),
            (Some(12), Some(12))
        );
        assert_eq!(p["usage"]["inbound_messages"], 12);
        // AND out: welcome + snapshot each, a join and a leave per pair, every update
        assert_eq!(p["usage"]["outbound_messages"], 8 + 8 + 12);
        assert!(p["total_usd"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn runs_beyond_the_bounds_are_refused_before_anything_is_sent() {
        for extra in [
            "--players 201",
            "--hz 21",
            "--seconds 100 --warmup 30",
            "--players 200 --channels 1 --hz 20 --seconds 60",
        ] {
            assert!(plan_of(extra).is_err(), "{extra}");
        }
    }

    #[test]
    fn only_yes_or_a_typed_y_confirms_and_the_endpoint_is_the_urls_host_and_stage() {
        let never = || -> std::io::Result<String> { panic!("must not read without a terminal") };
        assert!(confirm(true, false, never).is_ok());
        let err = confirm(false, false, never).unwrap_err();
        assert!(format!("{err}").contains("--yes"), "{err}");
        assert!(confirm(false, true, || Ok("y\n".into())).is_ok());
        assert!(confirm(false, true, || Ok("\n".into())).is_err());
        let e = endpoint_of("wss://abc.example.com/prod");
        assert_eq!(
            (e.domain.as_str(), e.stage.as_str()),
            ("abc.example.com", "prod")
        );
    }
}
