//! Per-connection publish limits: GCRA limiters keyed by connection id, one for positions and one
//! for chat messages, kept in the warm Lambda instance. They bound what one connection can make
//! one instance write; API Gateway's stage throttling (`terraform/`) bounds the whole API.
//! Joins and leaves are not limited here (they are rare and each costs one write).

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ripple_common::protocol::{ClientFrame, ErrorCode, Refusal};

/// How many checks between sweeps of idle connections' limiter state.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug)]
pub struct PublishLimits {
    positions: DefaultKeyedRateLimiter<String>,
    messages: DefaultKeyedRateLimiter<String>,
    position_rate: u32,
    message_rate: u32,
    checks: std::sync::atomic::AtomicU64,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl PublishLimits {
    pub fn new(position_rate: u32, message_rate: u32) -> Self {
        Self {
            positions: RateLimiter::keyed(quota(position_rate, position_rate)),
            messages: RateLimiter::keyed(quota(message_rate, message_rate.saturating_mul(2))),
            position_rate,
            message_rate,
            checks: 0.into(),
        }
    }

    /// Refuses with `rate_limited` when `connection_id` publishes above its limit.
    pub fn check(&self, connection_id: &str, frame: &ClientFrame) -> Result<(), Refusal> {
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.positions.retain_recent();
            self.messages.retain_recent();
        }
        let key = connection_id.to_owned();
        let (allowed, what, rate) = match frame {
            ClientFrame::Position(_) => (
                self.positions.check_key(&key).is_ok(),
                "positions",
                self.position_rate,
            ),
            ClientFrame::Message { .. } => (
                self.messages.check_key(&key).is_ok(),
                "messages",
                self.message_rate,
            ),
            ClientFrame::Join { .. } | ClientFrame::Leave { .. } => (true, "", 0),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::RateLimited,
                format!("slow down: at most {rate} {what} per second per connection"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ripple_common::protocol::PositionUpdate;

    fn position() -> ClientFrame {
        ClientFrame::Position(PositionUpdate {
            channel: "a".into(),
            x: 0.0,
            y: 0.0,
            z: 0.0,
            seq: 1,
            data: None,
        })
    }

    #[test]
    fn a_burst_above_the_rate_is_refused_per_connection() {
        // GIVEN 30 positions/s
        let limits = PublishLimits::new(30, 5);
        // WHEN one connection sends 40 at once
        let refused = (0..40)
            .filter(|_| limits.check("c1", &position()).is_err())
            .count();
        // THEN the 10 above the burst are refused, and another connection is unaffected
        assert_eq!(refused, 10);
        assert!(limits.check("c2", &position()).is_ok());
        let join = ClientFrame::Join {
            channel: "a".into(),
            since: None,
        };
        assert!(limits.check("c1", &join).is_ok(), "joins are not limited");
    }
}
