//! `ripple bench isolation`: does one connection's trouble stay its own? `ripple dev` in this
//! process, every `$disconnect` lost (`--fault disconnect-loss=1`), one stream shard, so every
//! connection shares the healthy users' shard. Healthy users chat in one channel through two
//! phases of the same length: calm, then a storm of sick connections in the same channel:
//!
//! - **aborted**: connections opened with `channel=` and dropped right after the upgrade (a page
//!   reload, a bot), never read, their `$disconnect` lost;
//! - **flapping**: a connection sending `join`/`leave` as fast as `--flap-rate` lets it;
//! - **not reading**: members whose socket stops taking frames (`POST /_local/stall/{id}`, a full
//!   TCP window), so posts to them back up and answer 429.
//!
//! Every healthy user's line must reach every other healthy user exactly once in both phases,
//! and the storm's p99 (send → receive, one clock) must stay within max(2×, +750 ms) of the calm
//! p99. The run prints its results as JSON and fails (exit 1) when either does not hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::{SinkExt, StreamExt};
use ripple_common::config::Settings;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;

use super::histogram::Latencies;
use super::{note, unique_table_name};
use crate::dev::{DevOptions, DevServer};
use crate::wsclient::WsClient;

/// The channel everyone is in.
const CHANNEL: &str = "arena";
/// After a phase: wait until every line arrived, or nothing new for `QUIET`, or `MAX_DRAIN`.
const QUIET: Duration = Duration::from_secs(3);
const MAX_DRAIN: Duration = Duration::from_secs(20);

/// `ripple bench isolation`.
#[derive(Debug, Clone, Args)]
pub struct IsolationArgs {
    /// Healthy users chatting in the channel.
    #[arg(long, default_value_t = 8)]
    pub healthy: usize,
    /// Chat lines per second each healthy user sends.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds of each phase (calm, then storm).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Connections opened and dropped right after the upgrade, per second of the storm.
    #[arg(long, default_value_t = 10.0)]
    pub aborts: f64,
    /// Connections joining and leaving the channel as fast as --flap-rate lets them.
    #[arg(long, default_value_t = 1)]
    pub flappers: usize,
    /// Frames per second each flapper sends (alternately `join` and `leave`).
    #[arg(long, default_value_t = 50.0)]
    pub flap_rate: f64,
    /// Members of the channel that stop reading their socket when the storm starts.
    #[arg(long, default_value_t = 1)]
    pub non_readers: usize,
    /// Frames `ripple dev` holds for a connection that does not read before posts to it answer
    /// 429 (`ripple dev --outbound-frames`; small, so a phase sees the slow consumer closed).
    #[arg(long, default_value_t = 16)]
    pub outbound_frames: usize,
    /// Stream shards of the local stack: 1 puts every connection on the healthy users' shard.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Use this DynamoDB (e.g. http://127.0.0.1:8000) instead of starting DynamoDB Local.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Print one JSON line instead of indented JSON.
    #[arg(long)]
    pub json: bool,
}

impl IsolationArgs {
    fn validate(&self) -> anyhow::Result<()> {
        let ok = (2..=200).contains(&self.healthy) && self.rate > 0.0 && self.rate <= 5.0;
        let ok = ok && self.seconds > 0.0 && self.seconds <= 300.0;
        let ok = ok && (0.0..=100.0).contains(&self.aborts) && self.flap_rate <= 1_000.0;
        anyhow::ensure!(
            ok && self.flappers <= 10 && self.non_readers <= 10 && self.outbound_frames >= 1,
            "the run needs --healthy 2-200, --rate in (0, 5] (the chat limit is 5/s), --seconds in (0, 300], --aborts 0-100, --flap-rate at most 1000, at most 10 --flappers and --non-readers, --outbound-frames ≥ 1"
        );
        Ok(())
    }
}

/// Runs the bench, prints the results, and fails when isolation did not hold.
pub async fn run(args: IsolationArgs) -> anyhow::Result<()> {
    args.validate()?;
    let results = measure(&args).await?;
    super::print(args.json, &results);
    anyhow::ensure!(
        results["isolated"] == true,
        "isolation did not hold: {}",
        results["verdict"].as_str().unwrap_or("see the results")
    );
    Ok(())
}

/// `ripple dev` as the bench runs it: every `$disconnect` lost, `shards` shards, a client that
/// does not read closed after `outbound_frames`.
pub fn dev_options(args: &IsolationArgs) -> anyhow::Result<DevOptions> {
    Ok(DevOptions {
        port: 0,
        dynamodb_endpoint: args.dynamodb_endpoint.clone(),
        settings: Settings::for_table(unique_table_name("ripple-bench-isolation")),
        faults: "disconnect-loss=1".parse().map_err(anyhow::Error::msg)?,
        outbound_frames: args.outbound_frames,
        mapping: crate::dev::mapping::MappingConfig {
            shards: args.shards.max(1),
            ..crate::dev::mapping::MappingConfig::default()
        },
        ..DevOptions::default()
    })
}

/// Starts `ripple dev`, plays both phases and says what happened (the JSON `run` prints).
pub async fn measure(args: &IsolationArgs) -> anyhow::Result<Value> {
    note("bench isolation: starting ripple dev (every $disconnect lost)");
    let server = DevServer::start(dev_options(args)?)
        .await
        .context("starting ripple dev")?;
    let results = play(args, &server).await;
    server.shutdown().await;
    results
}

/// Every line a healthy user received from another healthy user: (phase, text) → copies, and
/// the send → receive latencies per phase.
#[derive(Default)]
struct Heard {
    copies: HashMap<(usize, String), u64>,
    latencies: [Latencies; 2],
}

type Shared = Arc<Mutex<Heard>>;

/// A healthy user: the sending half, the answers (`ack` or `error`) its reader passes back, and
/// the reader.
struct Healthy {
    user: String,
    writer: crate::wsclient::WsSink,
    answers: mpsc::UnboundedReceiver<Value>,
    reader: JoinHandle<()>,
}

/// A line's text: phase, sender, number and send time (ms), so a receiver can time it.
fn line(phase: usize, user: &str, n: usize) -> String {
    format!("{phase} {user} {n} {}", ripple_common::now_ms())
}

async fn healthy(url: &str, user: String, heard: Shared) -> anyhow::Result<Healthy> {
    let mut client = WsClient::connect(&format!("{url}/?user={user}&channel={CHANNEL}")).await?;
    client.wait_for_snapshot(CHANNEL).await?;
    let (writer, mut stream) = client.split();
    let (tx, answers) = mpsc::unbounded_channel();
    let me = user.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if matches!(frame["type"].as_str(), Some("ack" | "error")) {
                let _ = tx.send(frame);
                continue;
            }
            let now = ripple_common::now_ms();
            let events = frame["events"].as_array().cloned().unwrap_or_default();
            let mut heard = heard.lock().unwrap_or_else(PoisonError::into_inner);
            for e in events.iter().filter(|e| e["type"] == "message") {
                let text = e["text"].as_str().unwrap_or_default();
                let mut parts = text.split(' ');
                let (Some(phase), Some(from), Some(_), Some(sent)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let (Ok(phase), Ok(sent)) = (phase.parse::<usize>(), sent.parse::<u64>()) else {
                    continue;
                };
                if from == me || phase > 1 {
                    continue;
                }
                *heard.copies.entry((phase, text.to_owned())).or_default() += 1;
                heard.latencies[phase].record(now.saturating_sub(sent));
            }
        }
    });
    Ok(Healthy {
        user,
        writer,
        answers,
        reader,
    })
}

impl Healthy {
    /// Sends `n` lines of `phase`, one every `period`, each after the last one's answer; the
    /// lines acknowledged.
    async fn chat(&mut self, phase: usize, n: usize, period: Duration) -> Vec<String> {
        let mut acked = Vec::new();
        let mut ticks = tokio::time::interval(period);
        for i in 0..n {
            ticks.tick().await;
            let text = line(phase, &self.user, i);
            let frame = json!({"action": "message", "channel": CHANNEL, "text": text});
            if self
                .writer
                .send(Message::text(frame.to_string()))
                .await
                .is_err()
            {
                break;
            }
            match tokio::time::timeout(Duration::from_secs(30), self.answers.recv()).await {
                Ok(Some(answer)) if answer["type"] == "ack" => acked.push(text),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        acked
    }
}

/// What the sick connections did in the storm.
#[derive(Default)]
struct Sickness {
    aborted: u64,
    flapper_frames: u64,
    flapper_refused: u64,
    /// ms from stalling each non-reader until `@connections` no longer knew it.
    closed_after_ms: Vec<u64>,
}

/// Opens `per_second` connections a second until `until`, each dropped right after the upgrade.
async fn abort_storm(url: String, per_second: f64, until: Instant) -> u64 {
    if per_second <= 0.0 {
        return 0;
    }
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    let mut opened = 0;
    let mut k = 0u64;
    while Instant::now() < until {
        ticks.tick().await;
        k += 1;
        let url = format!("{url}/?user=aborted-{k}&channel={CHANNEL}");
        // Dropped at once: no close frame, nothing read (not even the welcome).
        if let Ok(Ok((ws, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await
        {
            opened += 1;
            drop(ws);
        }
    }
    opened
}

/// One flapper: `join`, `leave`, `join`, … at `rate` frames a second until `until`; (frames
/// sent, frames refused).
async fn flap(url: String, k: usize, rate: f64, until: Instant) -> anyhow::Result<(u64, u64)> {
    let client = WsClient::connect(&format!("{url}/?user=flapper-{k}")).await?;
    let (mut writer, mut stream) = client.split();
    let refused = tokio::spawn(async move {
        let mut refused = 0;
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Text(t) = msg
                && t.contains(r#""type":"error""#)
            {
                refused += 1;
            }
        }
        refused
    });
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    let mut sent = 0u64;
    while Instant::now() < until {
        ticks.tick().await;
        let action = ["join", "leave"][(sent % 2) as usize];
        let frame = json!({"action": action, "channel": CHANNEL}).to_string();
        writer.send(Message::text(frame)).await?;
        sent += 1;
    }
    // Let the last answers come, then close (its $disconnect is lost too).
    sleep(Duration::from_secs(1)).await;
    let _ = writer.close().await;
    let refused = tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    Ok((sent, refused))
}

/// Connects a member that will stop reading; its connection id.
async fn non_reader(url: &str, k: usize) -> anyhow::Result<WsClient> {
    let mut client = WsClient::connect(&format!("{url}/?user=stuck-{k}&channel={CHANNEL}")).await?;
    client.wait_for_snapshot(CHANNEL).await?;
    Ok(client)
}

/// Stalls the non-reader `id` and waits (until `until`, then the drain) for `@connections` to
/// forget it: ms after the stall, or `None` if it never was.
async fn stall_until_closed(http: String, id: String, until: Instant) -> Option<u64> {
    use crate::loopback_http::request;
    let stalled = Instant::now();
    let stall = format!("{http}/_local/stall/{id}");
    if !matches!(request("POST", &stall, None).await, Ok((204, _))) {
        return None;
    }
    let status = format!("{http}/@connections/{id}");
    while Instant::now() < until + MAX_DRAIN {
        if matches!(request("GET", &status, None).await, Ok((410, _))) {
            return Some(stalled.elapsed().as_millis() as u64);
        }
        sleep(Duration::from_millis(100)).await;
    }
    None
}

/// One phase: every healthy user sends its lines; the lines acknowledged.
async fn phase(users: &mut [Healthy], phase: usize, args: &IsolationArgs) -> Vec<Vec<String>> {
    let n = (args.seconds * args.rate).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let count = users.len().max(1) as u32;
    let chats = users.iter_mut().enumerate().map(|(i, u)| async move {
        // Spread the senders over the period.
        sleep(period * i as u32 / count).await;
        u.chat(phase, n, period).await
    });
    futures::future::join_all(chats).await
}

/// How a phase went: lines expected (each acknowledged line to every other healthy user),
/// delivered, missing, copies, and latencies.
fn tally(heard: &Heard, phase: usize, sent: &[Vec<String>]) -> Value {
    let receivers = sent.len().saturating_sub(1) as u64;
    let lines: Vec<&String> = sent.iter().flatten().collect();
    let expected = lines.len() as u64 * receivers;
    let of = |text: &String| {
        heard
            .copies
            .get(&(phase, text.clone()))
            .copied()
            .unwrap_or(0)
    };
    let delivered: u64 = lines.iter().map(|t| of(t).min(receivers)).sum();
    let copies: u64 = lines.iter().map(|t| of(t).saturating_sub(receivers)).sum();
    json!({
        "lines": lines.len(), "expected": expected, "delivered": delivered,
        "missing": expected - delivered, "copies": copies,
        "latency_ms": heard.latencies[phase].summary(),
    })
}

/// Waits until every expected line of `phase` arrived, nothing new came for `QUIET`, or
/// `MAX_DRAIN` passed.
async fn drain(heard: &Shared, phase: usize, sent: &[Vec<String>]) {
    let started = Instant::now();
    let (mut last, mut quiet_since) = (u64::MAX, Instant::now());
    while started.elapsed() < MAX_DRAIN {
        let t = tally(
            &heard.lock().unwrap_or_else(PoisonError::into_inner),
            phase,
            sent,
        );
        let delivered = t["delivered"].as_u64().unwrap_or(0);
        if t["missing"] == 0 || (delivered == last && quiet_since.elapsed() >= QUIET) {
            return;
        }
        if delivered != last {
            (last, quiet_since) = (delivered, Instant::now());
        }
        sleep(Duration::from_millis(100)).await;
    }
}

async fn play(args: &IsolationArgs, server: &DevServer) -> anyhow::Result<Value> {
    let (url, http) = (server.ws_url(), server.http_url());
    let heard = Shared::default();
    note(&format!(
        "bench isolation: {} healthy users in {CHANNEL}",
        args.healthy
    ));
    let mut users = Vec::new();
    for i in 0..args.healthy {
        users.push(healthy(&url, format!("h{i:02}"), heard.clone()).await?);
    }
    let mut stuck = Vec::new();
    for k in 0..args.non_readers {
        stuck.push(non_reader(&url, k).await?);
    }

    note(&format!("bench isolation: calm phase, {} s", args.seconds));
    let calm = phase(&mut users, 0, args).await;
    drain(&heard, 0, &calm).await;

    note(&format!(
        "bench isolation: storm phase, {} s: {}/s aborted connections, {} flapping at {}/s, {} not reading",
        args.seconds, args.aborts, args.flappers, args.flap_rate, args.non_readers
    ));
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let aborts = tokio::spawn(abort_storm(url.clone(), args.aborts, until));
    let flappers: Vec<_> = (0..args.flappers)
        .map(|k| tokio::spawn(flap(url.clone(), k, args.flap_rate, until)))
        .collect();
    let stalls: Vec<_> = stuck
        .iter()
        .map(|c| tokio::spawn(stall_until_closed(http.clone(), c.id.clone(), until)))
        .collect();
    let storm = phase(&mut users, 1, args).await;
    drain(&heard, 1, &storm).await;

    let mut sick = Sickness {
        aborted: aborts.await.unwrap_or(0),
        ..Sickness::default()
    };
    for f in flappers {
        if let Ok(Ok((sent, refused))) = f.await {
            sick.flapper_frames += sent;
            sick.flapper_refused += refused;
        }
    }
    let mut never_closed = 0;
    for s in stalls {
        match s.await.ok().flatten() {
            Some(ms) => sick.closed_after_ms.push(ms),
            None => never_closed += 1,
        }
    }
    for user in users {
        user.reader.abort();
    }
    drop(stuck);

    let heard = heard.lock().unwrap_or_else(PoisonError::into_inner);
    let (calm, storm) = (tally(&heard, 0, &calm), tally(&heard, 1, &storm));
    let p99 = |t: &Value| t["latency_ms"]["p99"].as_u64();
    let bound = p99(&calm).map(|p| (2 * p).max(p + 750));
    let mut broken = Vec::new();
    for (name, t) in [("calm", &calm), ("storm", &storm)] {
        if t["missing"] != 0 || t["copies"] != 0 || t["lines"] == 0 {
            broken.push(format!(
                "{name}: {} lines, {} missing, {} copies",
                t["lines"], t["missing"], t["copies"]
            ));
        }
    }
    match (p99(&storm), bound) {
        (Some(p), Some(b)) if p <= b => {}
        (p, b) => broken.push(format!("storm p99 {p:?} ms over the bound {b:?} ms")),
    }
    if never_closed > 0 {
        broken.push(format!("{never_closed} non-readers never closed"));
    }
    let verdict = if broken.is_empty() {
        "every line reached every healthy user once, and the storm's p99 stayed within the bound"
            .to_owned()
    } else {
        broken.join("; ")
    };
    Ok(json!({
        "healthy": args.healthy, "rate": args.rate, "seconds": args.seconds,
        "shards": args.shards.max(1), "outbound_frames": args.outbound_frames,
        "calm": calm, "storm": storm,
        // max(2 × calm p99, calm p99 + 750 ms)
        "p99_bound_ms": bound,
        "sick": {
            "aborted": sick.aborted, "flappers": args.flappers,
            "flapper_frames": sick.flapper_frames, "flapper_refused": sick.flapper_refused,
            "non_readers": args.non_readers, "non_readers_closed_after_ms": sick.closed_after_ms,
        },
        "server": server.metrics.snapshot().into_iter().map(|(n, _, v)| (n.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "isolated": broken.is_empty(),
        "verdict": verdict,
    }))
}
