//! Posting frames: bounded concurrency; a GCRA limiter with jitter pacing every attempt, which
//! also slows down when API Gateway answers 429 and recovers as posts succeed; bounded retries
//! with full-jitter exponential backoff for 429 / 5xx / timeouts inside a per-invocation retry
//! budget; 410 collected for clean-up; 413 and 403 reported, never retried.
//!
//! Outcomes are per connection where the trouble is the connection's. A frame answered 429 on
//! every attempt (API Gateway's `LimitExceededException`, which is also what a client that does
//! not read its socket gets once its buffer is full) is that connection's trouble: its later
//! frames are not posted (they would overtake it), and it is reported in
//! [`DeliveryReport::lagging`], for fanout to disconnect it as a slow consumer; it catches up
//! from the table when it reconnects. The batch is not handed back for it, so nobody else gets
//! copies. What concerns everyone goes back to Lambda: a frame still failing with 5xx or a
//! timeout after its retries (API Gateway's own trouble), frames the invocation's deadline cut
//! off, and 429s so wide that they are the account's rate rather than the connections'
//! ([`DeliveryReport::systemic_from`]).
//!
//! One connection cannot slow the others' posts: the shared pacer backs off on the first 429 of
//! each connection only; that connection's own retries wait in its own backoff.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use rand::Rng;
use ripple_common::connections::{Connections, PostOutcome};
use ripple_common::protocol::{PackedFrame, billed_messages};

/// How posts are retried.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    /// Posts in flight at once.
    pub max_in_flight: usize,
    /// Attempts per frame (the first included) for retryable outcomes.
    pub max_attempts: u32,
    /// First backoff; doubles each retry, with full jitter.
    pub base_backoff: Duration,
    /// Retries one invocation may spend: `retry_budget_base` plus this fraction of its frames.
    pub retry_budget_ratio: f64,
    pub retry_budget_base: u64,
}

impl Default for PostPolicy {
    fn default() -> Self {
        Self {
            max_in_flight: ripple_common::config::DEFAULT_MAX_IN_FLIGHT,
            max_attempts: 4,
            base_backoff: Duration::from_millis(25),
            retry_budget_ratio: 0.5,
            retry_budget_base: 20,
        }
    }
}

/// Most extra delay the pacer adds per post after 429s.
const MAX_SLOWDOWN: Duration = Duration::from_millis(250);

/// Paces posts for one fanout instance: the GCRA limiter (`posts_per_second`, bursts up to
/// `burst`) plus an extra delay that doubles on every 429 and decays on every success.
#[derive(Debug)]
pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
    slowdown_micros: AtomicU64,
}

impl Pacer {
    pub fn new(per_second: u32, burst: usize) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = u32::try_from(burst.max(1))
            .unwrap_or(u32::MAX)
            .min(rate.get());
        let quota =
            Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::direct(quota),
            slowdown_micros: AtomicU64::new(0),
        }
    }

    /// Waits until a post may go.
    pub async fn ready(&self) {
        let slowdown = self.slowdown();
        if !slowdown.is_zero() {
            let jittered = slowdown.mul_f64(rand::rng().random_range(0.5..=1.0));
            tokio::time::sleep(jittered).await;
        }
        self.limiter
            .until_ready_with_jitter(Jitter::up_to(Duration::from_millis(2)))
            .await;
    }

    /// The extra delay now added to each post.
    pub fn slowdown(&self) -> Duration {
        Duration::from_micros(self.slowdown_micros.load(Ordering::Relaxed))
    }

    /// API Gateway said 429: back off (double the extra delay, at least 1 ms).
    pub fn throttled(&self) {
        let max = MAX_SLOWDOWN.as_micros() as u64;
        let _ = self
            .slowdown_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some((d.saturating_mul(2)).clamp(1_000, max))
            });
    }

    /// A post went through: recover (shrink the extra delay by an eighth).
    pub fn succeeded(&self) {
        let _ = self
            .slowdown_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                (d > 0).then(|| if d < 50 { 0 } else { d - d / 8 })
            });
    }
}

/// All frames for one connection, posted in order.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub connection_id: String,
    pub url: String,
    pub frames: Vec<PackedFrame>,
    /// For each frame, the index in the batch of the earliest record it carries.
    pub records: Vec<usize>,
}

/// What the deliveries came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Post attempts made (including retries).
    pub attempts: u64,
    /// Frames delivered (200).
    pub delivered: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Events inside the delivered frames.
    pub updates: u64,
    /// Retries after a 429.
    pub throttled: u64,
    /// Retries after a 5xx or timeout.
    pub retried: u64,
    /// Frames given up on (not Gone).
    pub failed: u64,
    /// Frames refused as too large (413).
    pub too_large: u64,
    /// Connections that answered 410.
    pub gone: Vec<String>,
    /// API Gateway messages billed for the delivered frames (each frame in 32 KB units).
    pub billed_messages: u64,
    /// Attempts answered 429, whether retried or given up.
    pub throttled_answers: u64,
    /// The earliest record (batch index) the deadline kept from some live connection: Lambda
    /// must resend from there.
    pub undelivered_from: Option<usize>,
    /// Connections whose frame still failed after its retries, with their endpoint URL and the
    /// earliest record they did not get: slow consumers, to be disconnected.
    pub lagging: Vec<Lagging>,
    /// Connections posted to (whatever the outcome).
    pub recipients: u64,
    /// Frames not posted because the deadline was near.
    pub deadline_skipped: u64,
}

impl DeliveryReport {
    pub fn absorb(&mut self, other: DeliveryReport) {
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        self.bytes += other.bytes;
        self.updates += other.updates;
        self.throttled += other.throttled;
        self.retried += other.retried;
        self.failed += other.failed;
        self.too_large += other.too_large;
        self.gone.extend(other.gone);
        self.billed_messages += other.billed_messages;
        self.throttled_answers += other.throttled_answers;
        self.undelivered_from = min_index(self.undelivered_from, other.undelivered_from);
        self.lagging.extend(other.lagging);
        self.recipients += other.recipients;
        self.deadline_skipped += other.deadline_skipped;
    }

    /// When failures are too wide to be the connections' own (at least
    /// [`SYSTEMIC_MIN_LAGGING`] connections and more than half of those posted to), API Gateway
    /// itself is in trouble: the earliest record they missed, for Lambda to resend, instead of
    /// disconnecting everyone.
    pub fn systemic_from(&self) -> Option<usize> {
        let lagging = self.lagging.len() as u64;
        (lagging >= SYSTEMIC_MIN_LAGGING && lagging * 2 > self.recipients)
            .then(|| self.lagging.iter().map(|l| l.first_missed).min())
            .flatten()
    }

    fn undelivered(&mut self, index: usize) {
        self.undelivered_from = min_index(self.undelivered_from, Some(index));
    }
}

/// A connection that could not take a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lagging {
    pub connection_id: String,
    pub url: String,
    /// Batch index of the earliest record in the frame that failed.
    pub first_missed: usize,
}

/// Fewest lagging connections that can make a failure systemic ([`DeliveryReport::systemic_from`]).
pub const SYSTEMIC_MIN_LAGGING: u64 = 3;

/// The smaller of two optional batch indexes.
pub fn min_index(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Posts every delivery, `policy.max_in_flight` connections at a time; each connection's frames
/// go one after another so they arrive in order.
pub async fn deliver_all(
    connections: &Connections,
    pacer: &Pacer,
    policy: &PostPolicy,
    deliveries: Vec<Delivery>,
    stop_at: Option<Instant>,
) -> DeliveryReport {
    let frames: usize = deliveries.iter().map(|d| d.frames.len()).sum();
    let budget = AtomicU64::new(
        policy.retry_budget_base + (frames as f64 * policy.retry_budget_ratio) as u64,
    );
    let posts: Vec<_> = deliveries
        .into_iter()
        .map(|d| deliver_one(connections, pacer, policy, &budget, d, stop_at))
        .collect();
    let reports: Vec<DeliveryReport> = futures::stream::iter(posts)
        .buffer_unordered(policy.max_in_flight.max(1))
        .collect()
        .await;
    let mut total = DeliveryReport::default();
    for r in reports {
        total.absorb(r);
    }
    total
}

fn take_retry(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
        .is_ok()
}

async fn deliver_one(
    connections: &Connections,
    pacer: &Pacer,
    policy: &PostPolicy,
    budget: &AtomicU64,
    delivery: Delivery,
    stop_at: Option<Instant>,
) -> DeliveryReport {
    let mut report = DeliveryReport {
        recipients: 1,
        ..DeliveryReport::default()
    };
    // The shared pacer hears about this connection's 429s once: a client that does not read
    // must not slow everyone's posts.
    let mut told_pacer = false;
    let mut throttled = |pacer: &Pacer| {
        if !std::mem::replace(&mut told_pacer, true) {
            pacer.throttled();
        }
    };
    for (n, frame) in delivery.frames.into_iter().enumerate() {
        let first_record = delivery.records.get(n).copied().unwrap_or(0);
        let mut attempt = 0;
        // Whether every attempt at this frame so far answered 429.
        let mut only_429s = true;
        loop {
            attempt += 1;
            if stop_at.is_some_and(|t| Instant::now() >= t) {
                // Too close to the function's timeout: hand this frame and the rest back.
                report.deadline_skipped += 1;
                report.undelivered(first_record);
                return report;
            }
            pacer.ready().await;
            report.attempts += 1;
            let outcome = connections
                .post(&delivery.url, &delivery.connection_id, frame.bytes.clone())
                .await;
            only_429s &= outcome == PostOutcome::Throttled;
            match outcome {
                PostOutcome::Delivered => {
                    pacer.succeeded();
                    report.delivered += 1;
                    report.bytes += frame.bytes.len() as u64;
                    report.billed_messages += billed_messages(frame.bytes.len());
                    report.updates += frame.events as u64;
                    break;
                }
                PostOutcome::Gone => {
                    report.gone.push(delivery.connection_id.clone());
                    return report;
                }
                retryable
                    if retryable.is_retryable()
                        && attempt < policy.max_attempts
                        && take_retry(budget) =>
                {
                    if retryable == PostOutcome::Throttled {
                        throttled(pacer);
                        report.throttled += 1;
                        report.throttled_answers += 1;
                    } else {
                        report.retried += 1;
                    }
                    tokio::time::sleep(backoff(policy.base_backoff, attempt)).await;
                }
                PostOutcome::TooLarge => {
                    // Frames are packed to 32 KB, so this means a single oversized event.
                    tracing::error!(connection_id = %delivery.connection_id, bytes = frame.bytes.len(), "frame refused as too large (413)");
                    report.too_large += 1;
                    report.failed += 1;
                    break;
                }
                other if !only_429s => {
                    // A 5xx, a timeout, or a mix: API Gateway's trouble, not the connection's.
                    if other == PostOutcome::Throttled {
                        throttled(pacer);
                        report.throttled_answers += 1;
                    }
                    tracing::warn!(connection_id = %delivery.connection_id, outcome = ?other, attempt, "post failed after its retries; Lambda will resend from its record");
                    report.failed += 1;
                    // The later frames would overtake this one: they wait for the resend too.
                    report.undelivered(first_record);
                    return report;
                }
                _ => {
                    throttled(pacer);
                    report.throttled_answers += 1;
                    tracing::warn!(connection_id = %delivery.connection_id, attempt, "429 on every attempt: a slow consumer");
                    report.failed += 1;
                    // The later frames would overtake this one: the connection catches up from
                    // the table instead.
                    report.lagging.push(Lagging {
                        connection_id: delivery.connection_id.clone(),
                        url: delivery.url.clone(),
                        first_missed: first_record,
                    });
                    return report;
                }
            }
        }
    }
    report
}

/// Full-jitter exponential backoff: a random wait in `[0, base · 2^(attempt-1)]`.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let cap = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_backs_off_on_429_and_recovers_on_success() {
        // GIVEN a pacer at full speed
        let pacer = Pacer::new(1000, 10);
        assert!(pacer.slowdown().is_zero());
        // WHEN API Gateway throttles three times
        for _ in 0..3 {
            pacer.throttled();
        }
        // THEN posts are slowed (1 ms doubled twice), never beyond the cap
        assert_eq!(pacer.slowdown(), Duration::from_millis(4));
        for _ in 0..20 {
            pacer.throttled();
        }
        assert_eq!(pacer.slowdown(), MAX_SLOWDOWN);
        // AND successes bring it back to full speed
        for _ in 0..200 {
            pacer.succeeded();
        }
        assert!(pacer.slowdown().is_zero());
    }

    #[test]
    fn the_retry_budget_runs_out() {
        let budget = AtomicU64::new(2);
        assert!(take_retry(&budget));
        assert!(take_retry(&budget));
        assert!(!take_retry(&budget));
    }
}
