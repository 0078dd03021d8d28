//! Simulated players for `ripple bench e2e`: real WebSocket clients (tokio-tungstenite). Each
//! sends positions at a fixed rate with a rising `seq`, and times every update it receives:
//! receive time minus the `ts` Ripple stamped at ingest (same machine, same clock).
//!
//! Warm-up positions use `seq` 1, 2, …; measured ones start at [`MEASURE_SEQ_BASE`], so a
//! receiver knows which updates to time without any coordination.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use ripple_common::protocol::{Event, ServerFrame};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::latency::Latencies;
use ripple_common::protocol::billed_messages;

/// First `seq` of the measured phase.
pub const MEASURE_SEQ_BASE: u64 = 1 << 32;
/// How long a player waits for its `welcome`.
const WELCOME_WAIT: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Counters shared by every player.
#[derive(Debug, Default)]
pub struct Tallies {
    pub sent_total: AtomicU64,
    pub sent_measured: AtomicU64,
    /// Position and message events received, summed over receivers.
    pub delivered_total: AtomicU64,
    pub delivered_measured: AtomicU64,
    /// Frames received (welcome, join, events, …).
    pub frames_total: AtomicU64,
    /// Frames carrying at least one measured update.
    pub frames_measured: AtomicU64,
    /// Billed 32 KB messages over every frame received.
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// `error` frames received (refused publishes).
    pub refused: AtomicU64,
    pub latencies: Mutex<Latencies>,
    /// Highest measured `seq` each receiver (player index) got from each sender (user).
    pub latest: Mutex<HashMap<(usize, String), u64>>,
}

impl Tallies {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// The latencies so far.
    pub fn latencies(&self) -> Latencies {
        self.latencies.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The median so far, cheaply enough for a progress line.
    pub fn p50(&self) -> Option<u64> {
        self.latencies.lock().ok().and_then(|l| l.percentile(50.0))
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The highest measured `seq` `receiver` got from `user`.
    pub fn latest_seen(&self, receiver: usize, user: &str) -> Option<u64> {
        self.latest
            .lock()
            .ok()
            .and_then(|m| m.get(&(receiver, user.to_owned())).copied())
    }

    /// Accounts for one frame received by player `receiver` at `received_ms`.
    fn frame(&self, receiver: usize, text: &str, received_ms: u64) {
        Self::add(&self.frames_total, 1);
        Self::add(&self.bytes_out, text.len() as u64);
        Self::add(&self.messages_out, billed_messages(text.len()));
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(ServerFrame::Events { events }) => {
                let mut measured = Vec::new();
                let mut delivered = 0;
                for event in events {
                    match event {
                        Event::Position { seq, ts, user, .. } => {
                            delivered += 1;
                            if seq >= MEASURE_SEQ_BASE {
                                measured.push(received_ms.saturating_sub(ts));
                                if let Ok(mut latest) = self.latest.lock() {
                                    let slot = latest.entry((receiver, user)).or_insert(seq);
                                    *slot = (*slot).max(seq);
                                }
                            }
                        }
                        Event::Message { .. } => delivered += 1,
                        Event::Join { .. } | Event::Leave { .. } => {}
                    }
                }
                Self::add(&self.delivered_total, delivered);
                if !measured.is_empty() {
                    Self::add(&self.frames_measured, 1);
                    Self::add(&self.delivered_measured, measured.len() as u64);
                    if let Ok(mut l) = self.latencies.lock() {
                        for ms in measured {
                            l.record(ms);
                        }
                    }
                }
            }
            Ok(ServerFrame::Error { .. }) => Self::add(&self.refused, 1),
            Ok(ServerFrame::Welcome { .. } | ServerFrame::Snapshot { .. }) | Err(_) => {}
        }
    }
}

/// The user id of player `index`.
pub fn user_of(index: usize) -> String {
    format!("p{index:04}")
}

/// When a player sends.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// First send (staggered per player).
    pub first: Instant,
    /// Sends from here on are measured.
    pub measure_from: Instant,
    /// No sends from here on.
    pub end: Instant,
    pub period: Duration,
}

/// One connected player.
pub struct Player {
    pub index: usize,
    /// The user the stack named in `welcome` (`p{index}`, or a token's subject).
    pub user: String,
    pub channel: String,
    pub connection_id: String,
    writer: SplitSink<Ws, Message>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("index", &self.index)
            .field("user", &self.user)
            .field("channel", &self.channel)
            .field("connection_id", &self.connection_id)
            .finish()
    }
}

impl Player {
    /// Connects as user `p{index}` to `channel` and waits for `welcome`.
    pub async fn connect(
        ws_url: &str,
        index: usize,
        channel: &str,
        tallies: Arc<Tallies>,
    ) -> anyhow::Result<Self> {
        Self::connect_with(ws_url, index, channel, None, tallies).await
    }

    /// Connects to `channel` as user `p{index}`, or with `token` (`?token=`) when the stack
    /// requires one, and waits for `welcome`.
    pub async fn connect_with(
        ws_url: &str,
        index: usize,
        channel: &str,
        token: Option<&str>,
        tallies: Arc<Tallies>,
    ) -> anyhow::Result<Self> {
        let identity = match token {
            Some(t) => format!("token={t}"),
            None => format!("user={}", user_of(index)),
        };
        let url = crate::smoke::with_query(ws_url, &format!("{identity}&channel={channel}"));
        // The URL may carry a token: errors name the player, not the URL.
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("player {index}: connecting to {ws_url}"))?;
        let (writer, mut stream) = ws.split();
        let welcome = tokio::time::timeout(WELCOME_WAIT, async {
            while let Some(msg) = stream.next().await {
                if let Message::Text(text) = msg? {
                    tallies.frame(index, &text, ripple_common::now_ms());
                    return anyhow::Ok(serde_json::from_str::<ServerFrame>(&text)?);
                }
            }
            anyhow::bail!("closed before welcome")
        })
        .await
        .with_context(|| format!("player {index} got no welcome within {WELCOME_WAIT:?}"))??;
        let ServerFrame::Welcome {
            connection_id,
            user,
        } = welcome
        else {
            anyhow::bail!("player {index}: the first frame was not welcome");
        };
        let reader = tokio::spawn(read(stream, index, tallies));
        Ok(Self {
            index,
            user,
            channel: channel.to_owned(),
            connection_id,
            writer,
            reader,
        })
    }

    /// The player's user id.
    pub fn user(&self) -> String {
        self.user.clone()
    }

    /// Sends positions on `schedule`; returns how many measured positions were sent and the last
    /// measured `seq` (`None` if none).
    pub async fn play(&mut self, schedule: Schedule, tallies: &Tallies) -> (u64, Option<u64>) {
        let mut ticks = tokio::time::interval_at(schedule.first, schedule.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut warm_seq, mut seq) = (0u64, MEASURE_SEQ_BASE);
        let mut measured_sent = 0;
        loop {
            let now = ticks.tick().await;
            if now >= schedule.end {
                break;
            }
            let measured = now >= schedule.measure_from;
            let s = if measured {
                seq += 1;
                seq
            } else {
                warm_seq += 1;
                warm_seq
            };
            let angle = s as f64 * 0.05 + self.index as f64;
            let frame = format!(
                r#"{{"action":"position","channel":"{}","x":{:.2},"y":{:.2},"seq":{s}}}"#,
                self.channel,
                angle.cos() * 50.0,
                angle.sin() * 50.0
            );
            if self.writer.send(Message::text(frame)).await.is_err() {
                tracing::warn!(player = self.index, "send failed; this player stops");
                break;
            }
            Tallies::add(&tallies.sent_total, 1);
            if measured {
                Tallies::add(&tallies.sent_measured, 1);
                measured_sent += 1;
            }
        }
        (measured_sent, (measured_sent > 0).then_some(seq))
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

async fn read(mut stream: SplitStream<Ws>, index: usize, tallies: Arc<Tallies>) {
    while let Some(msg) = stream.next().await {
        let received_ms = ripple_common::now_ms();
        match msg {
            Ok(Message::Text(text)) => tallies.frame(index, &text, received_ms),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
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
        assert_eq!(Tallies::get(&tallies.delivered_total), 2);
        assert_eq!(Tallies::get(&tallies.delivered_measured), 1);
        assert_eq!(Tallies::get(&tallies.frames_measured), 1);
        assert_eq!(Tallies::get(&tallies.messages_out), 1);
        assert_eq!(tallies.latencies().percentile(50.0), Some(25));
        // AND receiver 7 has seen b's measured seq, and none of a's
        assert_eq!(tallies.latest_seen(7, "b"), Some(MEASURE_SEQ_BASE + 1));
        assert_eq!(tallies.latest_seen(7, "a"), None);
        // AND an error frame counts as refused, not delivered
        tallies.frame(
            7,
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#,
            1030,
        );
        assert_eq!(Tallies::get(&tallies.refused), 1);
        assert_eq!(Tallies::get(&tallies.frames_total), 2);
    }
}
