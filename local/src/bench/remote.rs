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
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ripple_common::items::Endpoint;
use serde::Serialize;
use tokio::time::Instant;

use super::calibrate::HandlerTimes;
use super::cost::{CostLine, Prices, Usage, bill, per_million, total};
use super::e2e::{
    E2eArgs, close_all, connect_players, drain, final_positions_missed, play, progress,
};
use super::e2e_report::LatencySummary;
use super::estimate::{ClientCounts, DynamoUsage, ItemSizes, LambdaUsage, ServerCounts, estimate};
use super::note;
use super::players::{Tallies, user_of};
use super::report::{round, text_table, thousands};

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

/// Everything `ripple bench e2e --url … --json` prints, on one line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteResults {
    pub source: Source,
    pub players: usize,
    pub channels: usize,
    pub hz: f64,
    pub seconds: f64,
    pub warmup_seconds: f64,
    /// Measured positions sent.
    pub sent: u64,
    /// Measured updates delivered, summed over receivers.
    pub delivered: u64,
    /// `sent × (channel size − 1)`: what delivery without coalescing would be.
    pub expected: u64,
    /// Frames carrying measured updates.
    pub frames: u64,
    /// (receiver, sender) pairs in a channel where the receiver did not end with the sender's
    /// last position. Should be 0.
    pub final_positions_missed: u64,
    /// `frames / delivered`.
    pub messages_per_update: f64,
    /// Receive time here minus the `ts` the stack stamped: includes the clocks' offset.
    pub latency_ms: LatencySummary,
    /// Publishes refused with an `error` frame.
    pub refused: u64,
    /// What the players counted over the whole run.
    pub client: ClientCounts,
    /// The API Gateway part of the bill, from the client's counts: messages in and out,
    /// connection-minutes.
    pub api_gateway: Vec<CostLine>,
    pub api_gateway_usd: f64,
    pub api_gateway_per_million_delivered_usd: Option<f64>,
    /// The stack's counters: not visible from a URL.
    pub server: Option<ServerCounts>,
    /// DynamoDB usage: not measurable from a URL.
    pub dynamodb: Option<DynamoUsage>,
    /// Lambda usage: not measurable from a URL.
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
    if args.json {
        println!("{}", serde_json::to_string(&results)?);
    } else {
        print!("{}", render(&results));
    }
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
        .context("bench e2e: --url is required for a remote run")?
        .trim_end_matches('/')
        .to_owned();
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
    drive(&args, &url, &tokens, plan).await
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

/// Players per channel (player i joins channel i mod M).
fn channel_sizes(args: &E2eArgs) -> Vec<u64> {
    let mut sizes = vec![0u64; args.channels.max(1)];
    for i in 0..args.players {
        if let Some(s) = sizes.get_mut(i % args.channels.max(1)) {
            *s += 1;
        }
    }
    sizes
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
    let sizes = channel_sizes(args);
    let pairs: u64 = sizes.iter().map(|s| s * s.saturating_sub(1)).sum();
    let positions = args.players as u64 * sends_per_player;
    let delivered_at_most = pairs * sends_per_player;
    if delivered_at_most > MAX_DELIVERED {
        bail!(
            "this run could deliver up to {} updates; the bound with --url is {}: fewer players, channels with fewer members, a lower --hz or fewer seconds",
            thousands(delivered_at_most),
            thousands(MAX_DELIVERED)
        );
    }
    let players = args.players as u64;
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
    let sizes = ItemSizes::sample(&args.channel_of(0), &user_of(0), "AbCdEfGhIjK=", &endpoint);
    let e = estimate(
        &server,
        &client,
        args.channels,
        args.players as f64 / args.channels.max(1) as f64,
        sizes,
        &ASSUMED_TIMES,
        &Prices::default(),
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
    Endpoint {
        domain: domain.to_owned(),
        stage: stage.split(['/', '?']).next().unwrap_or("prod").to_owned(),
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
    {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "Send this load to the stack? [y/N] ");
        let _ = err.flush();
    }
    let reply = answer().context("reading the answer")?;
    match reply.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("bench e2e --url: not confirmed; nothing was sent"),
    }
}

fn render_plan(args: &E2eArgs, url: &str, plan: &Plan) -> String {
    let mut out = format!(
        "bench e2e: {} players in {} channel(s) at {} Hz for {} s (+{} s warm-up) against {url}\n  at most: {} positions sent, {} updates delivered, {} messages in, {} messages out, {:.1} connection-minutes\n  estimated bill at worst (no coalescing, one record per fanout batch, {} ms ingest / {} ms fanout assumed):\n",
        args.players,
        args.channels,
        args.hz,
        args.seconds,
        args.warmup,
        thousands(plan.positions),
        thousands(plan.delivered_at_most),
        thousands(plan.usage.inbound_messages),
        thousands(plan.usage.outbound_messages),
        plan.usage.connection_minutes,
        ASSUMED_TIMES.ingest_ms,
        ASSUMED_TIMES.fanout_ms,
    );
    out.push_str(&bill_table(&plan.lines));
    out.push_str(&format!("    total at worst: ${:.6}", plan.total_usd));
    out
}

fn bill_table(lines: &[CostLine]) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|c| {
            vec![
                c.item.to_owned(),
                format!("{:.3}", c.quantity),
                c.unit.to_owned(),
                format!("${:.6}", c.usd),
            ]
        })
        .collect();
    text_table(&["item", "quantity", "unit", "cost"], &rows)
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect()
}

async fn drive(
    args: &E2eArgs,
    url: &str,
    tokens: &[String],
    plan: Plan,
) -> anyhow::Result<RemoteResults> {
    let tallies = Arc::new(Tallies::default());
    let connected_at = Instant::now();
    let players = connect_players(args, url, tokens, &tallies).await?;
    // Let the join announcements settle before anyone moves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (played, expected) = play(args, players, &tallies).await?;
    drain(&tallies, expected).await;
    let latencies = tallies.latencies();
    let final_missed = final_positions_missed(args, &played, &tallies);
    progress("[bench e2e] done");
    let _ = writeln!(std::io::stderr());
    let connections = played.len() as u64;
    close_all(played.into_iter().map(|p| p.player).collect()).await;
    let connected_seconds = connected_at.elapsed().as_secs_f64();

    let sent = Tallies::get(&tallies.sent_measured);
    let delivered = Tallies::get(&tallies.delivered_measured);
    let frames = Tallies::get(&tallies.frames_measured);
    let client = ClientCounts {
        sent: Tallies::get(&tallies.sent_total),
        delivered: Tallies::get(&tallies.delivered_total),
        messages_out: Tallies::get(&tallies.messages_out),
        connection_minutes: round(connected_seconds / 60.0 * connections as f64, 3),
        seconds: round(connected_seconds, 1),
    };
    let api_gateway: Vec<CostLine> = bill(
        &Usage {
            inbound_messages: client.sent,
            outbound_messages: client.messages_out,
            connection_minutes: client.connection_minutes,
            ..Usage::default()
        },
        &Prices::default(),
    )
    .into_iter()
    .filter(|l| l.item.starts_with("API Gateway"))
    .collect();
    let api_gateway_usd = total(&api_gateway);
    Ok(RemoteResults {
        source: Source {
            kind: "remote",
            url: url.to_owned(),
        },
        players: args.players,
        channels: args.channels,
        hz: args.hz,
        seconds: args.seconds,
        warmup_seconds: args.warmup,
        sent,
        delivered,
        expected,
        frames,
        final_positions_missed: final_missed,
        messages_per_update: round(
            if delivered > 0 {
                frames as f64 / delivered as f64
            } else {
                0.0
            },
            4,
        ),
        latency_ms: LatencySummary::from(&latencies),
        refused: Tallies::get(&tallies.refused),
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

fn ms(v: Option<u64>) -> String {
    v.map_or("–".to_owned(), |v| format!("{v} ms"))
}

/// The readable report.
pub fn render(r: &RemoteResults) -> String {
    let rows = vec![
        vec![
            "sent".to_owned(),
            format!("{} positions", thousands(r.sent)),
        ],
        vec![
            "delivered".to_owned(),
            format!(
                "{} updates (without coalescing: {})",
                thousands(r.delivered),
                thousands(r.expected)
            ),
        ],
        vec![
            "latency write→receive".to_owned(),
            format!(
                "p50 {}  p95 {}  p99 {}  max {} (includes this machine's clock offset from the stack's)",
                ms(r.latency_ms.p50),
                ms(r.latency_ms.p95),
                ms(r.latency_ms.p99),
                ms(r.latency_ms.max)
            ),
        ],
        vec![
            "messages_per_update".to_owned(),
            format!("{:.4}", r.messages_per_update),
        ],
        vec!["refused publishes".to_owned(), thousands(r.refused)],
        vec![
            "final positions missed".to_owned(),
            thousands(r.final_positions_missed),
        ],
        vec![
            "server, DynamoDB, Lambda".to_owned(),
            "not measurable from a URL (null in --json); see the stack's CloudWatch metrics"
                .to_owned(),
        ],
    ];
    let mut out = format!(
        "ripple bench e2e: {} players in {} channel(s) at {} Hz for {} s (after {} s warm-up), remote: {}\n\n",
        r.players, r.channels, r.hz, r.seconds, r.warmup_seconds, r.source.url,
    );
    let key_width = rows
        .iter()
        .map(|r| r.first().map_or(0, |k| k.chars().count()))
        .max()
        .unwrap_or(0);
    for row in &rows {
        if let [key, value] = row.as_slice() {
            out.push_str(&format!("  {key:<key_width$}  {value}\n"));
        }
    }
    out.push_str(&format!(
        "\n  API Gateway for this run (from the client's counts): ${:.6}\n",
        r.api_gateway_usd
    ));
    out.push_str(&bill_table(&r.api_gateway));
    out
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
