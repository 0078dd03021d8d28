//! Posting frames: bounded concurrency, a GCRA limiter pacing every attempt, bounded retries
//! with exponential backoff and jitter for 429 / 5xx / timeouts, 410 collected for clean-up.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use rand::Rng;
use ripple_common::connections::{Connections, PostOutcome};
use ripple_common::protocol::PackedFrame;

/// How posts are paced and retried.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    /// Posts in flight at once.
    pub max_in_flight: usize,
    /// Attempts per frame (the first included) for retryable outcomes.
    pub max_attempts: u32,
    /// First backoff; doubles each retry, with full jitter.
    pub base_backoff: Duration,
}

impl Default for PostPolicy {
    fn default() -> Self {
        Self {
            max_in_flight: ripple_common::config::DEFAULT_MAX_IN_FLIGHT,
            max_attempts: 4,
            base_backoff: Duration::from_millis(25),
        }
    }
}

/// Builds the per-instance limiter: `per_second` posts a second, bursts of up to `burst`.
pub fn limiter(per_second: u32, burst: usize) -> Arc<DefaultDirectRateLimiter> {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = u32::try_from(burst.max(1))
        .unwrap_or(u32::MAX)
        .min(rate.get());
    let quota =
        Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
    Arc::new(RateLimiter::direct(quota))
}

/// All frames for one connection, posted in order.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub connection_id: String,
    pub url: String,
    pub frames: Vec<PackedFrame>,
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
    /// Connections that answered 410.
    pub gone: Vec<String>,
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
        self.gone.extend(other.gone);
    }
}

/// Posts every delivery, `policy.max_in_flight` connections at a time; each connection's frames
/// go one after another so they arrive in order.
pub async fn deliver_all(
    connections: &Connections,
    limiter: &DefaultDirectRateLimiter,
    policy: &PostPolicy,
    deliveries: Vec<Delivery>,
) -> DeliveryReport {
    let posts: Vec<_> = deliveries
        .into_iter()
        .map(|d| deliver_one(connections, limiter, policy, d))
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

async fn deliver_one(
    connections: &Connections,
    limiter: &DefaultDirectRateLimiter,
    policy: &PostPolicy,
    delivery: Delivery,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    for frame in delivery.frames {
        let len = frame.bytes.len() as u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            limiter
                .until_ready_with_jitter(Jitter::up_to(Duration::from_millis(2)))
                .await;
            report.attempts += 1;
            let outcome = connections
                .post(&delivery.url, &delivery.connection_id, frame.bytes.clone())
                .await;
            match outcome {
                PostOutcome::Delivered => {
                    report.delivered += 1;
                    report.bytes += len;
                    report.updates += frame.events as u64;
                    break;
                }
                PostOutcome::Gone => {
                    report.gone.push(delivery.connection_id.clone());
                    return report;
                }
                retryable if retryable.is_retryable() && attempt < policy.max_attempts => {
                    if retryable == PostOutcome::Throttled {
                        report.throttled += 1;
                    } else {
                        report.retried += 1;
                    }
                    tokio::time::sleep(backoff(policy.base_backoff, attempt)).await;
                }
                other => {
                    tracing::warn!(connection_id = %delivery.connection_id, outcome = ?other, "post given up");
                    report.failed += 1;
                    break;
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
