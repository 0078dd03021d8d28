//! Simulated players for `ripple bench e2e`: [`WsClient`]s spread over the channels, each sending
//! positions at a fixed rate with a rising `seq` and timing every update it receives: receive time
//! minus the `ts` Ripple stamped at ingest. [`session`] plays a whole run (connect, settle, warm-up,
//! measured play, drain, close) with its progress bar on stderr, for `bench e2e` with or without
//! `--url`; [`Measured`] is what both report of it.
//!
//! Warm-up positions use `seq` 1, 2, …; measured ones start at [`MEASURE_SEQ_BASE`], so a
//! receiver knows which updates to time without any coordination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use ripple_common::protocol::{Event, ServerFrame, billed_messages};
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::e2e::E2eArgs;
use super::estimate::ClientCounts;
use super::histogram::{Latencies, LatencySummary};
use super::{round, thousands};
use crate::wsclient::{WsClient, WsSink};

/// First `seq` of the measured phase.
pub const MEASURE_SEQ_BASE: u64 = 1 << 32;
/// Players connecting at once.
const CONNECTS_IN_FLIGHT: usize = 8;
/// The run ends when nothing new arrived for this long after the last send…
const QUIET: Duration = Duration::from_millis(1500);
/// …or this long after the last send at the latest.
const MAX_DRAIN: Duration = Duration::from_secs(15);
/// How often the progress bar is updated.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What the players counted.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub sent_total: u64,
    pub sent_measured: u64,
    /// Position and message events received, summed over receivers.
    pub delivered_total: u64,
    pub delivered_measured: u64,
    /// Frames received (welcome, join, events, …), and those carrying a measured update.
    pub frames_total: u64,
    pub frames_measured: u64,
    /// Billed 32 KB messages over every frame received.
    pub messages_out: u64,
    /// `error` frames received (refused publishes).
    pub refused: u64,
    pub latencies: Latencies,
    /// Highest measured `seq` each receiver (player index) got from each sender (user).
    pub latest: HashMap<(usize, String), u64>,
}

/// The counts, shared by every player.
#[derive(Debug, Default)]
pub struct Tallies(Mutex<Counts>);

impl Tallies {
    /// Applies `f` to the counts.
    pub fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn p50(&self) -> String {
        let p50 = self.with(|c| c.latencies.percentile(50.0));
        p50.map_or("–".to_owned(), |p| format!("{p} ms"))
    }

    /// Accounts for one frame received by player `receiver` at `received_ms`.
    fn frame(&self, receiver: usize, text: &str, received_ms: u64) {
        let frame = serde_json::from_str::<ServerFrame>(text);
        self.with(|c| {
            c.frames_total += 1;
            c.messages_out += billed_messages(text.len());
            match frame {
                Ok(ServerFrame::Events { events }) => {
                    let mut measured = false;
                    for event in events {
                        match event {
                            Event::Position { seq, ts, user, .. } => {
                                c.delivered_total += 1;
                                if seq >= MEASURE_SEQ_BASE {
                                    (measured, c.delivered_measured) =
                                        (true, c.delivered_measured + 1);
                                    c.latencies.record(received_ms.saturating_sub(ts));
                                    let slot = c.latest.entry((receiver, user)).or_insert(seq);
                                    *slot = (*slot).max(seq);
                                }
                            }
                            Event::Message { .. } => c.delivered_total += 1,
                            Event::Join { .. } | Event::Leave { .. } => {}
                        }
                    }
                    c.frames_measured += u64::from(measured);
                }
                Ok(ServerFrame::Error { .. }) => c.refused += 1,
                Ok(ServerFrame::Welcome { .. } | ServerFrame::Snapshot { .. }) | Err(_) => {}
            }
        });
    }
}

/// The user id of player `index`.
pub fn user_of(index: usize) -> String {
    format!("p{index:04}")
}

/// One connected player: the sending half of its [`WsClient`], a task reading the other.
pub struct Player {
    pub index: usize,
    /// The user the stack named in `welcome` (`p{index}`, or a token's subject).
    pub user: String,
    pub channel: String,
    pub connection_id: String,
    writer: WsSink,
    reader: tokio::task::JoinHandle<()>,
    /// The last measured `seq` this player sent.
    last_seq: Option<u64>,
}

impl Player {
    /// Connects to `channel` as user `p{index}`, or with `token` (`?token=`) when the stack
    /// requires one, and waits for `welcome`.
    pub async fn connect(
        ws_url: &str,
        index: usize,
        channel: &str,
        token: Option<&str>,
        tallies: Arc<Tallies>,
    ) -> anyhow::Result<Self> {
        let identity = token.map_or(format!("user={}", user_of(index)), |t| format!("token={t}"));
        let url = crate::smoke::with_query(ws_url, &format!("{identity}&channel={channel}"));
        // The URL may carry a token: errors name the player, not the URL.
        let client = WsClient::connect(&url).await.map_err(|e| {
            anyhow::anyhow!("player {index}: connecting to {ws_url}: {}", e.root_cause())
        })?;
        // The welcome: one billed message, no update.
        tallies
            .with(|c| (c.frames_total, c.messages_out) = (c.frames_total + 1, c.messages_out + 1));
        let (user, connection_id) = (client.user.clone(), client.id.clone());
        let (writer, mut stream) = client.split();
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Text(text) => tallies.frame(index, &text, ripple_common::now_ms()),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        });
        let channel = channel.to_owned();
        Ok(Self {
            index,
            user,
            channel,
            connection_id,
            writer,
            reader,
            last_seq: None,
        })
    }

    /// Sends positions every `period` from `first` until `end`, measured from `measure_from`;
    /// returns how many measured positions were sent.
    async fn play(
        &mut self,
        first: Instant,
        period: Duration,
        measure_from: Instant,
        end: Instant,
        tallies: &Tallies,
    ) -> u64 {
        let mut ticks = tokio::time::interval_at(first, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut warm_seq, mut seq, mut measured_sent) = (0u64, MEASURE_SEQ_BASE, 0);
        loop {
            let now = ticks.tick().await;
            if now >= end {
                break;
            }
            let measured = now >= measure_from;
            let s = if measured { &mut seq } else { &mut warm_seq };
            *s += 1;
            let angle = *s as f64 * 0.05 + self.index as f64;
            let frame = format!(
                r#"{{"action":"position","channel":"{}","x":{:.2},"y":{:.2},"seq":{}}}"#,
                self.channel,
                angle.cos() * 50.0,
                angle.sin() * 50.0,
                *s
            );
            if self.writer.send(Message::text(frame)).await.is_err() {
                tracing::warn!(player = self.index, "send failed; this player stops");
                break;
            }
            measured_sent += u64::from(measured);
            tallies.with(|c| {
                (c.sent_total, c.sent_measured) =
                    (c.sent_total + 1, c.sent_measured + u64::from(measured))
            });
        }
        self.last_seq = (measured_sent > 0).then_some(seq);
        measured_sent
    }

    /// Closes the socket and stops reading.
    pub async fn close(mut self) {
        let _ = self.writer.send(Message::Close(None)).await;
        let abort = self.reader.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), &mut self.reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// The run's shape, in both `bench e2e` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shape {
    pub players: usize,
    pub channels: usize,
    pub hz: f64,
    pub seconds: f64,
    pub warmup_seconds: f64,
}

impl From<&E2eArgs> for Shape {
    fn from(a: &E2eArgs) -> Self {
        let (players, channels, hz, seconds) = (a.players, a.channels, a.hz, a.seconds);
        Self {
            players,
            channels,
            hz,
            seconds,
            warmup_seconds: a.warmup,
        }
    }
}

/// What the players measured, in both `bench e2e` reports (with and without `--url`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measured {
    /// Measured positions sent.
    pub sent: u64,
    /// Measured updates delivered, summed over receivers.
    pub delivered: u64,
    /// `sent × (channel size − 1)`: every measured position to every other member of its
    /// channel. Positions go out in `seq` order and are coalesced (a user's older position
    /// dropped) only beyond one 32 KB frame, so `delivered` falls short of it only then.
    pub expected: u64,
    /// Frames carrying measured updates.
    pub frames: u64,
    /// (receiver, sender) pairs in a channel where the receiver did not end with the sender's
    /// last position: lost updates (coalescing never causes this). Should be 0.
    pub final_positions_missed: u64,
    /// `frames / delivered` (outbound, measured updates only).
    pub messages_per_update: f64,
    pub latency_ms: LatencySummary,
    /// Publishes refused with an `error` frame.
    pub refused: u64,
}

/// A played run: what was measured, the whole run's client counts, the latencies, and one
/// player's (channel, connection id) for the items' sizes.
#[derive(Debug)]
pub struct Session {
    pub measured: Measured,
    pub client: ClientCounts,
    pub latencies: Latencies,
    pub sample: Option<(String, String)>,
}

/// Plays a run against `ws_url`: connects every player (player `i` uses `tokens[i]` when given),
/// lets the joins settle, plays the warm-up and the measured seconds, drains, closes.
pub async fn session(args: &E2eArgs, ws_url: &str, tokens: &[String]) -> anyhow::Result<Session> {
    let (players, channels) = (args.players, args.channels);
    super::note(&format!(
        "bench e2e: connecting {players} players to {ws_url} in {channels} channels"
    ));
    let (tallies, connected_at) = (Arc::new(Tallies::default()), Instant::now());
    let connects = (0..players).map(|i| {
        let (channel, tallies, token) = (args.channel_of(i), Arc::clone(&tallies), tokens.get(i));
        async move { Player::connect(ws_url, i, &channel, token.map(String::as_str), tallies).await }
    });
    let results = futures::stream::iter(connects).buffer_unordered(CONNECTS_IN_FLIGHT);
    let (ok, failed): (Vec<_>, Vec<_>) = results
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .partition(Result::is_ok);
    let mut players: Vec<Player> = ok.into_iter().flatten().collect();
    if let Some(Err(err)) = failed.into_iter().next() {
        close_all(players).await;
        return Err(err.context("connecting the players"));
    }
    players.sort_by_key(|p| p.index);
    // Let the join announcements settle before anyone moves.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let period = Duration::from_secs_f64(1.0 / args.hz);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let (n, mut sizes) = (players.len().max(1) as u32, vec![0u64; channels]);
    players.iter().for_each(|p| sizes[p.index % channels] += 1);
    let tasks = players.into_iter().enumerate().map(|(i, mut player)| {
        let (tallies, first) = (Arc::clone(&tallies), start + period * (i as u32 % n) / n);
        tokio::spawn(async move {
            let sent = player
                .play(first, period, measure_from, end, &tallies)
                .await;
            (player, sent)
        })
    });
    let tasks: Vec<_> = tasks.collect();
    let total = end - start;
    let bar = ProgressBar::new(total.as_millis() as u64).with_style(
        ProgressStyle::with_template("[bench e2e] {bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let counts = || tallies.with(|c| c.clone());
    let status = |phase: &str, c: &Counts, warm: bool, expected: Option<u64>| {
        let (sent, delivered) = if warm {
            (c.sent_total, c.delivered_total)
        } else {
            (c.sent_measured, c.delivered_measured)
        };
        let of = expected.map_or(String::new(), |e| format!("/{}", thousands(e)));
        let p50 = if warm {
            " (not measured)".to_owned()
        } else {
            format!("  p50 {}", tallies.p50())
        };
        format!(
            "{phase}  sent {}  delivered {}{of}{p50}",
            thousands(sent),
            thousands(delivered)
        )
    };
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(PROGRESS_EVERY).await;
        bar.set_position(start.elapsed().min(total).as_millis() as u64);
        let warm = Instant::now() < measure_from;
        bar.set_message(status(
            if warm { "warm-up" } else { "measuring" },
            &counts(),
            warm,
            None,
        ));
    }
    let (mut played, mut expected) = (Vec::new(), 0);
    for task in tasks {
        let (player, sent) = task.await.context("a player task failed")?;
        expected += sent * sizes[player.index % channels].saturating_sub(1);
        played.push(player);
    }
    // Drain: until nothing new arrives for QUIET, everything expected has, or MAX_DRAIN.
    let (drain_started, mut last, mut quiet_since) =
        (Instant::now(), counts().delivered_measured, Instant::now());
    while drain_started.elapsed() < MAX_DRAIN {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let c = counts();
        if last != c.delivered_measured {
            (last, quiet_since) = (c.delivered_measured, Instant::now());
        } else if quiet_since.elapsed() >= QUIET || c.delivered_measured >= expected {
            break;
        }
        let phase = format!("draining {:4.1} s", drain_started.elapsed().as_secs_f64());
        bar.set_message(status(&phase, &c, false, Some(expected)));
    }
    bar.finish_and_clear();
    let c = counts();
    super::note(&format!("[bench e2e] {}", status("done:", &c, false, None)));

    // Coalescing may skip intermediate positions, never a sender's last one.
    let mut final_missed = 0;
    for r in &played {
        for s in played
            .iter()
            .filter(|s| s.index != r.index && s.index % channels == r.index % channels)
        {
            final_missed += u64::from(
                s.last_seq.is_some()
                    && c.latest.get(&(r.index, s.user.clone())).copied() != s.last_seq,
            );
        }
    }
    let sample = played
        .first()
        .map(|p| (p.channel.clone(), p.connection_id.clone()));
    let connections = played.len() as f64;
    close_all(played).await;
    let connected_seconds = connected_at.elapsed().as_secs_f64();
    let (delivered, frames) = (c.delivered_measured, c.frames_measured);
    Ok(Session {
        measured: Measured {
            sent: c.sent_measured,
            delivered,
            expected,
            frames,
            final_positions_missed: final_missed,
            messages_per_update: round(super::ratio(frames as f64, delivered as f64), 4),
            latency_ms: LatencySummary::from(&c.latencies),
            refused: c.refused,
        },
        client: ClientCounts {
            sent: c.sent_total,
            delivered: c.delivered_total,
            messages_out: c.messages_out,
            connection_minutes: round(connected_seconds / 60.0 * connections, 3),
            seconds: round(connected_seconds, 1),
        },
        latencies: c.latencies,
        sample,
    })
}

async fn close_all(players: Vec<Player>) {
    futures::future::join_all(players.into_iter().map(Player::close)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_measured_positions_are_timed_and_frames_are_billed_by_size() {
        // GIVEN an events frame with a warm-up position, a measured one and a join
        let tallies = Tallies::default();
        let frame = format!(
            r#"{{"type":"events","events":[
                {{"type":"position","channel":"c","user":"a","x":0,"y":0,"z":0,"seq":3,"ts":1000}},
                {{"type":"position","channel":"c","user":"b","x":0,"y":0,"z":0,"seq":{},"ts":1000}},
                {{"type":"join","channel":"c","user":"d"}}]}}"#,
            MEASURE_SEQ_BASE + 1
        );
        // WHEN received 25 ms after the write
        tallies.frame(7, &frame, 1025);
        // THEN two updates were delivered, one measured at 25 ms, in one billed message
        let c = tallies.with(|c| c.clone());
        assert_eq!(c.delivered_total, 2);
        assert_eq!(c.delivered_measured, 1);
        assert_eq!(c.frames_measured, 1);
        assert_eq!(c.messages_out, 1);
        assert_eq!(c.latencies.percentile(50.0), Some(25));
        // AND receiver 7 has seen b's measured seq, and none of a's
        assert_eq!(
            c.latest.get(&(7, "b".to_owned())),
            Some(&(MEASURE_SEQ_BASE + 1))
        );
        assert_eq!(c.latest.get(&(7, "a".to_owned())), None);
        // AND an error frame counts as refused, not delivered
        tallies.frame(
            7,
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#,
            1030,
        );
        let c = tallies.with(|c| c.clone());
        assert_eq!(c.refused, 1);
        assert_eq!(c.frames_total, 2);
    }
}
