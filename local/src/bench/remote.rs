//! `ripple bench e2e --url ws(s)://…`: the e2e players against a stack that is already running (a
//! deployed `wss://…/prod`, or a running `ripple dev`) instead of a `ripple dev` started here.
//!
//! A deployed stack bills every message, so the run is bounded ([`MAX_PLAYERS`], [`MAX_HZ`],
//! [`MAX_PLAY_SECONDS`], [`MAX_DELIVERED`]) and, before anything is sent, the worst case of its bill
//! is printed (the bench's own cost model, [`super::estimate`], fed the run's shape with no
//! coalescing and one record per fanout batch) and confirmed: on a terminal by answering `y`,
//! otherwise only with `--yes`.
//!
//! Only what a client can see is measured: sends, deliveries, latencies, frames and their billed
//! messages, connection-minutes. The stack's counters (connects, accepted frames, fanout batches)
//! and so its DynamoDB and Lambda usage are not visible from a URL and are reported as `null`.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use ripple_common::items::Endpoint;
use serde::Serialize;

use super::calibrate::HandlerTimes;
use super::cost::{CostLine, PRICES, Usage, bill, per_million, total};
use super::e2e::E2eArgs;
use super::estimate::{ClientCounts, DynamoUsage, ItemSizes, LambdaUsage, ServerCounts, estimate};
use super::players::{Measured, Shape, session, user_of};
use super::{note, round, thousands};

/// Most players (WebSocket connections) of a remote run.
pub const MAX_PLAYERS: usize = 200;
/// Most positions per second per player of a remote run.
pub const MAX_HZ: f64 = 20.0;
/// Most seconds of play (warm-up plus measured) of a remote run.
pub const MAX_PLAY_SECONDS: f64 = 120.0;
/// Most updates a remote run may deliver at worst (every position to every other member).
pub const MAX_DELIVERED: u64 = 1_000_000;
/// Connected time beyond the play, at most: connecting, settling, draining, closing.
const OVERHEAD_SECONDS: f64 = 30.0;
/// Handler times assumed for the estimate before the run (a deployed stack's are not measurable
/// from here; these are generous for 128 MB arm64 functions calling DynamoDB).
const ASSUMED_TIMES: HandlerTimes = HandlerTimes {
    ingest_ms: 20.0,
    fanout_ms: 100.0,
    fanout_records: 1,
};

/// Where the numbers came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// Always `"remote"`: players against `url`, not a `ripple dev` of this process.
    pub kind: &'static str,
    pub url: String,
}

/// The worst case of a run, computed before anything is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Positions the players send (warm-up included).
    pub positions: u64,
    /// Updates delivered if nothing were coalesced.
    pub delivered_at_most: u64,
    pub usage: Usage,
    pub lines: Vec<CostLine>,
    pub total_usd: f64,
}

/// Everything `ripple bench e2e --url … --json` prints, on one line. Latencies are the receive
/// time here minus the `ts` the stack stamped: they include the clocks' offset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteResults {
    pub source: Source,
    #[serde(flatten)]
    pub shape: Shape,
    #[serde(flatten)]
    pub measured: Measured,
    /// What the players counted over the whole run.
    pub client: ClientCounts,
    /// The API Gateway part of the bill, from the client's counts: messages in and out,
    /// connection-minutes.
    pub api_gateway: Vec<CostLine>,
    pub api_gateway_usd: f64,
    pub api_gateway_per_million_delivered_usd: Option<f64>,
    /// The stack's counters, its DynamoDB and Lambda usage: not visible from a URL (`null`).
    pub server: Option<ServerCounts>,
    pub dynamodb: Option<DynamoUsage>,
    pub lambda: Option<LambdaUsage>,
    /// The worst case confirmed before the run.
    pub plan: Plan,
}

/// Runs against `--url` and prints the results (stdout) or the refusal (the error).
pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let is_tty = std::io::stdin().is_terminal();
    let results = measure(&args, is_tty, || {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line)
    })
    .await?;
    super::print(args.json, &results, render);
    Ok(())
}

/// Checks the bounds, prints the plan (stderr), asks (`answer` reads the reply when `is_tty`),
/// then plays. Nothing is sent before the confirmation.
pub async fn measure(
    args: &E2eArgs,
    is_tty: bool,
    answer: impl FnOnce() -> std::io::Result<String>,
) -> anyhow::Result<RemoteResults> {
    let url = args
        .url
        .as_deref()
        .context("bench e2e: --url is required for a remote run")?;
    let url = url.trim_end_matches('/').to_owned();
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        bail!("--url must be a ws:// or wss:// URL, got {url}");
    }
    let tokens = tokens(args)?;
    let plan = plan(args, &url)?;
    note(&render_plan(args, &url, &plan));
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
    let api_gateway: Vec<CostLine> = bill(&usage, &PRICES)
        .into_iter()
        .filter(|l| l.item.starts_with("API Gateway"))
        .collect();
    let api_gateway_usd = total(&api_gateway);
    Ok(RemoteResults {
        source: Source {
            kind: "remote",
            url,
        },
        shape: Shape::from(&args),
        measured: run.measured,
        api_gateway_per_million_delivered_usd: per_million(api_gateway_usd, client.delivered),
        client,
        api_gateway,
        api_gateway_usd,
        server: None,
        dynamodb: None,
        lambda: None,
        plan,
    })
}

/// The players' tokens: none, or exactly one per player.
fn tokens(args: &E2eArgs) -> anyhow::Result<Vec<String>> {
    let tokens = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --token-file {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => args.tokens.clone(),
    };
    if !tokens.is_empty() && tokens.len() != args.players {
        bail!(
            "give one token per player ({} players, {} tokens), or none when the stack needs no JWT",
            args.players,
            tokens.len()
        );
    }
    Ok(tokens)
}

/// The run's worst case, refused when beyond the bounds.
pub fn plan(args: &E2eArgs, url: &str) -> anyhow::Result<Plan> {
    let play_seconds = args.warmup + args.seconds;
    if args.players > MAX_PLAYERS {
        bail!("--players must be at most {MAX_PLAYERS} with --url");
    }
    if args.hz > MAX_HZ {
        bail!("--hz must be at most {MAX_HZ} with --url");
    }
    if play_seconds > MAX_PLAY_SECONDS {
        bail!("--warmup + --seconds must be at most {MAX_PLAY_SECONDS} with --url");
    }
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
            thousands(delivered_at_most),
            thousands(MAX_DELIVERED)
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
    let sizes = ItemSizes::sample(
        &args.channel_of(0),
        &user_of(0),
        "AbCdEfGhIjK=",
        &endpoint_of(url),
    );
    let members = args.players as f64 / channels as f64;
    let e = estimate(
        &server,
        &client,
        args.channels,
        members,
        sizes,
        &ASSUMED_TIMES,
        &PRICES,
    );
    Ok(Plan {
        positions,
        delivered_at_most,
        usage: e.usage,
        lines: e.lines,
        total_usd: e.total_usd,
    })
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
    if !is_tty {
        bail!(
            "bench e2e --url: refusing to send anything: stdin is not a terminal, so nobody can confirm the estimated cost above; run again with --yes to accept it"
        );
    }
    eprint!("Send this load to the stack? [y/N] ");
    let _ = std::io::stderr().flush();
    let reply = answer().context("reading the answer")?;
    match reply.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("bench e2e --url: not confirmed; nothing was sent"),
    }
}

fn render_plan(args: &E2eArgs, url: &str, plan: &Plan) -> String {
    let title = format!(
        "bench e2e: {} players in {} channel(s) at {} Hz for {} s (+{} s warm-up) against {url}\nat most, with the estimated bill at worst (no coalescing, one record per fanout batch, {} ms ingest / {} ms fanout assumed):",
        args.players,
        args.channels,
        args.hz,
        args.seconds,
        args.warmup,
        ASSUMED_TIMES.ingest_ms,
        ASSUMED_TIMES.fanout_ms,
    );
    super::report(&title, plan)
}

/// The readable report.
pub fn render(r: &RemoteResults) -> String {
    let title = format!(
        "ripple bench e2e against {} (latencies include this machine's clock offset from the stack's; – : not measurable from a URL)",
        r.source.url
    );
    super::report(&title, r)
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

    fn args(extra: &[&str]) -> E2eArgs {
        let mut argv = vec![
            "bench",
            "--url",
            "wss://abc.execute-api.eu-west-1.amazonaws.com/prod",
        ];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn the_plan_counts_every_send_and_every_delivery_without_coalescing() {
        // GIVEN 4 players in 2 channels at 2 Hz for 1 s, no warm-up
        let a = args(&[
            "--players",
            "4",
            "--hz",
            "2",
            "--seconds",
            "1",
            "--warmup",
            "0",
        ]);
        // WHEN planned
        let p = plan(&a, a.url.as_deref().unwrap()).unwrap();
        // THEN 3 sends each (2 ticks + the first), each heard by the one other member
        assert_eq!(p.positions, 12);
        assert_eq!(p.delivered_at_most, 12);
        assert_eq!(p.usage.inbound_messages, 12);
        // AND out: welcome + snapshot each, a join and a leave per pair, every update
        assert_eq!(p.usage.outbound_messages, 8 + 8 + 12);
        assert!(p.total_usd > 0.0);
    }

    #[test]
    fn runs_beyond_the_bounds_are_refused_before_anything_is_sent() {
        for extra in [
            &["--players", "201"][..],
            &["--hz", "21"],
            &["--seconds", "100", "--warmup", "30"],
            &[
                "--players",
                "200",
                "--channels",
                "1",
                "--hz",
                "20",
                "--seconds",
                "60",
            ],
        ] {
            let a = args(extra);
            assert!(plan(&a, a.url.as_deref().unwrap()).is_err(), "{extra:?}");
        }
    }

    #[test]
    fn only_yes_or_a_typed_y_confirms() {
        let never = || -> std::io::Result<String> { panic!("must not read without a terminal") };
        assert!(confirm(true, false, never).is_ok());
        let err = confirm(false, false, never).unwrap_err();
        assert!(format!("{err}").contains("--yes"), "{err}");
        assert!(confirm(false, true, || Ok("y\n".into())).is_ok());
        assert!(confirm(false, true, || Ok("\n".into())).is_err());
    }

    #[test]
    fn the_endpoint_is_the_urls_host_and_stage() {
        let e = endpoint_of("wss://abc.example.com/prod");
        assert_eq!(
            (e.domain.as_str(), e.stage.as_str()),
            ("abc.example.com", "prod")
        );
    }
}
