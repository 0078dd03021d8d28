//! Simulated players for `ripple bench e2e` (with or without `--url`): [`WsClient`]s spread over
//! the channels, each sending positions at a fixed rate with a rising `seq` and timing every
//! update it receives (receive time minus the `ts` Ripple stamped at ingest). [`session`] plays a
//! whole run (connect, settle, warm-up, measured play, drain, close), its progress on stderr.
//! Warm-up positions use `seq` 1, 2, …; measured ones start at [`MEASURE_SEQ_BASE`], so a
//! receiver knows which updates to time without any coordination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use indicatif::{HumanCount, ProgressBar, ProgressStyle};
use ripple_common::protocol::{Event, ServerFrame, billed_messages};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, sleep};
use tokio_tungstenite::tungstenite::Message;

use super::cost::ClientCounts;
use super::e2e::E2eArgs;
use super::histogram::Latencies;
use super::{note, ratio, round};
use crate::wsclient::{WsClient, WsSink};

/// First `seq` of the measured phase.
pub const MEASURE_SEQ_BASE: u64 = 1 << 32;
/// Players connecting at once.
const CONNECTS_IN_FLIGHT: usize = 8;
/// The drain ends when nothing new arrived for `QUIET`, or `MAX_DRAIN` after the last send; the
/// progress bar moves every `TICK`.
const QUIET: Duration = Duration::from_millis(1500);
const MAX_DRAIN: Duration = Duration::from_secs(15);
const TICK: Duration = Duration::from_millis(250);

/// What the players counted, shared by all: `[whole run, measured updates only]` pairs of
/// positions sent, updates (positions and messages) delivered summed over receivers, and frames
/// received (those carrying a measured update); billed 32 KB messages over every frame received,
/// `error` frames (refused publishes), the measured latencies, and the highest measured `seq`
/// each receiver (player index) got from each sender (user).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub sent: [u64; 2],
    pub delivered: [u64; 2],
    pub frames: [u64; 2],
    pub messages_out: u64,
    pub refused: u64,
    pub latencies: Latencies,
    pub latest: HashMap<(usize, String), u64>,
}

type Tallies = Arc<Mutex<Counts>>;

fn lock(tallies: &Tallies) -> MutexGuard<'_, Counts> {
    tallies.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Counts {
    /// Accounts for one frame received by player `receiver` at `received_ms`.
    fn frame(&mut self, receiver: usize, text: &str, received_ms: u64) {
        self.frames[0] += 1;
        self.messages_out += billed_messages(text.len());
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(ServerFrame::Events { events }) => {
                let mut measured = 0;
                for event in events {
                    let update = matches!(event, Event::Position { .. } | Event::Message { .. });
                    self.delivered[0] += u64::from(update);
                    if let Event::Position { seq, ts, user, .. } = event
                        && seq >= MEASURE_SEQ_BASE
                    {
                        (measured, self.delivered[1]) = (1, self.delivered[1] + 1);
                        self.latencies.record(received_ms.saturating_sub(ts));
                        let slot = self.latest.entry((receiver, user)).or_insert(seq);
                        *slot = (*slot).max(seq);
                    }
                }
                self.frames[1] += measured;
            }
            Ok(ServerFrame::Error { .. }) => self.refused += 1,
            Ok(
                ServerFrame::Welcome { .. }
                | ServerFrame::Snapshot { .. }
                | ServerFrame::Joined { .. }
                | ServerFrame::Left { .. }
                | ServerFrame::Ack { .. },
            )
            | Err(_) => {}
        }
    }

    /// The progress line: the whole run's counts during the warm-up, then the measured ones.
    fn status(&self, phase: &str, measured: bool, of: &str) -> String {
        let i = usize::from(measured);
        let p50 = self
            .latencies
            .percentile(50.0)
            .map_or("–".into(), |p| format!("{p} ms"));
        let p50 = [" (not measured)".to_owned(), format!("  p50 {p50}")][i].clone();
        let (sent, delivered) = (HumanCount(self.sent[i]), HumanCount(self.delivered[i]));
        format!("{phase}  sent {sent}  delivered {delivered}{of}{p50}")
    }
}

/// The user id of player `index`.
pub fn user_of(index: usize) -> String {
    format!("p{index:04}")
}

/// One connected player: the user and connection id the stack named in `welcome` (`p{index}` or a
/// token's subject), the sending half of its [`WsClient`], the task counting what the other half
/// receives, and the last measured `seq` it sent.
struct Player {
    index: usize,
    user: String,
    connection_id: String,
    writer: WsSink,
    reader: JoinHandle<()>,
    last_seq: Option<u64>,
}

/// Connects player `index` to `channel` as user `p{index}`, or with `token` (`?token=`) when the
/// stack requires one, and waits for `welcome`.
async fn connect(
    url: &str,
    index: usize,
    channel: String,
    token: Option<&String>,
    tallies: Tallies,
) -> anyhow::Result<Player> {
    let identity = token.map_or(format!("user={}", user_of(index)), |t| format!("token={t}"));
    let url_with = crate::smoke::with_query(url, &format!("{identity}&channel={channel}"));
    // The URL may carry a token: errors name the player, not the URL.
    let client = WsClient::connect(&url_with).await;
    let client = client
        .map_err(|e| anyhow::anyhow!("player {index}: connecting to {url}: {}", e.root_cause()))?;
    let (user, connection_id) = (client.user.clone(), client.id.clone());
    let (writer, mut stream) = client.split();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Text(t) => lock(&tallies).frame(index, &t, ripple_common::now_ms()),
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    let last_seq = None;
    Ok(Player {
        index,
        user,
        connection_id,
        writer,
        reader,
        last_seq,
    })
}

impl Player {
    /// Sends positions in `channel` on `ticks` until `end`, measured from `measure_from`.
    async fn play(
        &mut self,
        channel: &str,
        mut ticks: tokio::time::Interval,
        [measure_from, end]: [Instant; 2],
        tallies: &Tallies,
    ) {
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seqs = [0u64, MEASURE_SEQ_BASE];
        loop {
            let now = ticks.tick().await;
            if now >= end {
                break;
            }
            let measured = usize::from(now >= measure_from);
            let seq = seqs[measured] + 1;
            let angle = seq as f64 * 0.05 + self.index as f64;
            let (x, y) = (angle.cos() * 50.0, angle.sin() * 50.0);
            let frame = format!(
                r#"{{"action":"position","channel":"{channel}","x":{x:.2},"y":{y:.2},"seq":{seq}}}"#
            );
            if self.writer.send(Message::text(frame)).await.is_err() {
                tracing::warn!(player = self.index, "send failed; this player stops");
                break;
            }
            seqs[measured] = seq;
            let mut c = lock(tallies);
            (c.sent[0], c.sent[1]) = (c.sent[0] + 1, c.sent[1] + measured as u64);
        }
        self.last_seq = (seqs[1] > MEASURE_SEQ_BASE).then_some(seqs[1]);
    }

    /// Closes the socket and stops reading.
    async fn close(mut self) {
        let _ = self.writer.send(Message::Close(None)).await;
        let reader = self.reader.abort_handle();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.reader).await;
        reader.abort();
    }
}

/// A played run: what was measured (the fields both `bench e2e` reports share), the whole run's
/// client counts, the latencies, and one player's (channel, connection id) for the items' sizes.
#[derive(Debug)]
pub struct Session {
    pub measured: Value,
    pub client: ClientCounts,
    pub latencies: Latencies,
    pub sample: Option<(String, String)>,
}

/// Plays a run against `ws_url`: connects every player (player `i` uses `tokens[i]` when given),
/// lets the joins settle, plays the warm-up and the measured seconds, drains, closes.
pub async fn session(args: &E2eArgs, ws_url: &str, tokens: &[String]) -> anyhow::Result<Session> {
    let (players, channels) = (args.players, args.channels);
    note(&format!(
        "bench e2e: connecting {players} players to {ws_url} in {channels} channels"
    ));
    let (tallies, connected_at) = (Tallies::default(), Instant::now());
    let connects = (0..players).map(|i| {
        connect(
            ws_url,
            i,
            args.channel_of(i),
            tokens.get(i),
            tallies.clone(),
        )
    });
    let connected = futures::stream::iter(connects).buffer_unordered(CONNECTS_IN_FLIGHT);
    let (mut played, mut failed) = (Vec::new(), None);
    for result in connected.collect::<Vec<_>>().await {
        result.map_or_else(|e| failed = failed.take().or(Some(e)), |p| played.push(p));
    }
    if let Some(err) = failed {
        futures::future::join_all(played.into_iter().map(Player::close)).await;
        return Err(err.context("connecting the players"));
    }
    // Each welcome: one billed frame, no update.
    (lock(&tallies).frames[0], lock(&tallies).messages_out) = (players as u64, players as u64);
    played.sort_by_key(|p| p.index);
    // Let the join announcements settle before anyone moves.
    sleep(Duration::from_millis(500)).await;

    let period = Duration::from_secs_f64(1.0 / args.hz);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = played
        .into_iter()
        .enumerate()
        .map(|(i, mut player)| {
            let (tallies, channel) = (tallies.clone(), args.channel_of(i));
            let ticks =
                tokio::time::interval_at(start + period * i as u32 / players as u32, period);
            tokio::spawn(async move {
                player
                    .play(&channel, ticks, [measure_from, end], &tallies)
                    .await;
                player
            })
        })
        .collect();
    let style = ProgressStyle::with_template("[bench e2e] {bar:30} {msg}");
    let bar = ProgressBar::new((end - start).as_millis() as u64)
        .with_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()));
    while tasks.iter().any(|t| !t.is_finished()) {
        sleep(TICK).await;
        bar.set_position(start.elapsed().min(end - start).as_millis() as u64);
        let measuring = Instant::now() >= measure_from;
        let phase = if measuring { "measuring" } else { "warm-up" };
        bar.set_message(lock(&tallies).status(phase, measuring, ""));
    }
    let mut played = Vec::new();
    for task in tasks {
        played.push(task.await.context("a player task failed")?);
    }
    // Every measured position to every other member of its channel (player i joins channel i
    // mod M).
    let in_channel = |i: usize| players / channels + usize::from(i % channels < players % channels);
    let sent = |p: &Player| p.last_seq.map_or(0, |s| s - MEASURE_SEQ_BASE);
    let expected: u64 = played
        .iter()
        .map(|p| sent(p) * (in_channel(p.index) as u64 - 1))
        .sum();
    // Drain: until nothing new arrives for QUIET, everything expected has, or MAX_DRAIN.
    let (drained, mut last) = (Instant::now(), lock(&tallies).delivered[1]);
    let mut quiet_since = drained;
    while drained.elapsed() < MAX_DRAIN {
        sleep(TICK).await;
        let c = lock(&tallies);
        if last != c.delivered[1] {
            (last, quiet_since) = (c.delivered[1], Instant::now());
        } else if quiet_since.elapsed() >= QUIET || last >= expected {
            break;
        }
        let phase = format!("draining {:4.1} s", drained.elapsed().as_secs_f64());
        bar.set_message(c.status(&phase, true, &format!("/{}", HumanCount(expected))));
    }
    bar.finish_and_clear();
    let c = lock(&tallies).clone();
    note(&format!("[bench e2e] {}", c.status("done:", true, "")));

    // Coalescing may skip intermediate positions, never a sender's last one.
    let pairs = played
        .iter()
        .flat_map(|r| played.iter().map(move |s| (r, s)));
    let missed = pairs.filter(|(r, s)| {
        (s.index != r.index && s.index % channels == r.index % channels && s.last_seq.is_some())
            && c.latest.get(&(r.index, s.user.clone())).copied() != s.last_seq
    });
    let final_positions_missed = missed.count() as u64;
    let sample = played
        .first()
        .map(|p| (args.channel_of(p.index), p.connection_id.clone()));
    let connections = played.len() as f64;
    futures::future::join_all(played.into_iter().map(Player::close)).await;
    let seconds = connected_at.elapsed().as_secs_f64();
    let (sent, delivered, frames) = (c.sent[1], c.delivered[1], c.frames[1]);
    let measured = json!({
        "players": players, "channels": channels, "hz": args.hz, "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        // measured positions sent, and measured updates delivered (summed over receivers)
        "sent": sent, "delivered": delivered,
        // every measured position to every other member of its channel: positions are
        // coalesced (a user's older one dropped) only beyond one 32 KB frame, so `delivered`
        // falls short of it only then
        "expected": expected,
        // frames carrying measured updates, and frames per update
        "frames": frames, "messages_per_update": round(ratio(frames as f64, delivered as f64), 4),
        // (receiver, sender) pairs in a channel where the receiver did not end with the sender's
        // last position: lost updates (coalescing never causes this). Should be 0.
        "final_positions_missed": final_positions_missed,
        "latency_ms": c.latencies.summary(),
        // publishes refused with an `error` frame
        "refused": c.refused,
    });
    let connection_minutes = round(seconds / 60.0 * connections, 3);
    let client = json!({"sent": c.sent[0], "delivered": c.delivered[0], "messages_out": c.messages_out, "connection_minutes": connection_minutes, "seconds": round(seconds, 1)});
    let (client, latencies) = (serde_json::from_value(client)?, c.latencies);
    Ok(Session {
        measured,
        client,
        latencies,
        sample,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_measured_positions_are_timed_and_frames_are_billed_by_size() {
        // GIVEN an events frame with a warm-up position, a measured one and a join
        let mut c = Counts::default();
        let position = |user, seq| json!({"type": "position", "channel": "c", "user": user, "x": 0, "y": 0, "z": 0, "seq": seq, "ts": 1000});
        let join = json!({"type": "join", "channel": "c", "user": "d"});
        let events = [position("a", 3), position("b", MEASURE_SEQ_BASE + 1), join];
        // WHEN received 25 ms after the write
        c.frame(
            7,
            &json!({"type": "events", "events": events}).to_string(),
            1025,
        );
        // THEN two updates were delivered, one measured at 25 ms, in one billed message
        assert_eq!((c.delivered, c.frames[1], c.messages_out), ([2, 1], 1, 1));
        assert_eq!(c.latencies.percentile(50.0), Some(25));
        // AND receiver 7 has seen b's measured seq, and none of a's
        assert_eq!(
            c.latest.get(&(7, "b".to_owned())),
            Some(&(MEASURE_SEQ_BASE + 1))
        );
        assert_eq!(c.latest.get(&(7, "a".to_owned())), None);
        // AND an error frame counts as refused, not delivered
        c.frame(
            7,
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#,
            1030,
        );
        assert_eq!((c.refused, c.frames[0]), (1, 2));
    }
}
