//! Per-connection publish limits: GCRA limiters keyed by connection id, one for positions and one
//! for chat messages, kept in the warm Lambda instance. They bound what one connection can make
//! one instance write; API Gateway's stage throttling (`terraform/`) bounds the whole API.
//! Joins and leaves share a third limiter ([`MEMBERSHIP_RATE`] a second, bursts of
//! [`MEMBERSHIP_BURST`]): each costs writes, a snapshot and presence events to every member, so
//! one connection flapping in and out of a channel cannot flood it.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ripple_common::protocol::{ClientFrame, ErrorCode, Refusal};

/// How many checks between sweeps of idle connections' limiter state.
const SWEEP_EVERY: u64 = 4096;

/// Joins and leaves one connection may make per second, together.
pub const MEMBERSHIP_RATE: u32 = 2;
/// ... in a burst (a client joining its lobby, room, team and party at once).
pub const MEMBERSHIP_BURST: u32 = 10;

#[derive(Debug)]
pub struct PublishLimits {
    positions: DefaultKeyedRateLimiter<String>,
    messages: DefaultKeyedRateLimiter<String>,
    memberships: DefaultKeyedRateLimiter<String>,
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
            memberships: RateLimiter::keyed(quota(MEMBERSHIP_RATE, MEMBERSHIP_BURST)),
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
            self.memberships.retain_recent();
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
            ClientFrame::Join { .. } | ClientFrame::Leave { .. } => (
                self.memberships.check_key(&key).is_ok(),
                "joins and leaves",
                MEMBERSHIP_RATE,
            ),
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
    #![allow(clippy::unwrap_used)]

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
        assert!(
            limits.check("c1", &join).is_ok(),
            "joins have their own limit"
        );
    }

    #[test]
    fn joins_and_leaves_together_are_limited_per_connection() {
        // GIVEN the default limits
        let limits = PublishLimits::new(30, 5);
        let join = ClientFrame::Join {
            channel: "a".into(),
            since: None,
        };
        let leave = ClientFrame::Leave {
            channel: "a".into(),
        };
        // WHEN one connection joins and leaves 20 times at once
        let refused = (0..20)
            .filter(|i| {
                let frame = if i % 2 == 0 { &join } else { &leave };
                limits.check("flapper", frame).is_err()
            })
            .count();
        // THEN what is above the burst is refused with rate_limited; another connection is not
        assert_eq!(refused, 20 - MEMBERSHIP_BURST as usize);
        let refusal = limits.check("flapper", &join).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::RateLimited);
        assert!(limits.check("calm", &join).is_ok());
    }
}
