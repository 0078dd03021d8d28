//! What `connect` tells CloudWatch: an Embedded Metric Format line per `$connect` /
//! `$disconnect`, summed per instance ([`ripple_common::emf`]): `Connects`, `RejectedConnects`
//! (also per HTTP `Status`: 400 bad parameters, 401 token), `Disconnects` and `Failed` (store
//! errors, 500).

use ripple_common::emf::{MetricLine, STATUS_DIMENSION, connect as names};

/// The metrics line of one event, by its route (`$connect` / `CONNECT`, `$disconnect` /
/// `DISCONNECT`) and the status answered; None for events `connect` does not handle.
pub fn event_line(
    function: &str,
    timestamp_ms: u64,
    event_type: &str,
    status: i64,
) -> Option<MetricLine> {
    let failed = u64::from(status >= 500);
    let line = MetricLine::new(function, timestamp_ms);
    match event_type {
        "CONNECT" | "$connect" => {
            let rejected = matches!(status, 400..=499);
            let line = line
                .count(names::CONNECTS, u64::from((200..300).contains(&status)))
                .count(names::REJECTED_CONNECTS, u64::from(rejected))
                .count(names::FAILED, failed);
            Some(if rejected {
                line.breakdown(
                    STATUS_DIMENSION,
                    &status.to_string(),
                    &[names::REJECTED_CONNECTS],
                )
            } else {
                line
            })
        }
        "DISCONNECT" | "$disconnect" => Some(
            line.count(names::DISCONNECTS, 1)
                .count(names::FAILED, failed),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn connects_are_counted_by_outcome_and_rejections_by_status() {
        let ok = event_line("c", 1, "CONNECT", 200).unwrap().to_json();
        assert_eq!(
            (ok["Connects"].as_u64(), ok["RejectedConnects"].as_u64()),
            (Some(1), Some(0))
        );
        assert!(ok.get("Status").is_none());
        let denied = event_line("c", 1, "$connect", 401).unwrap().to_json();
        assert_eq!(denied["RejectedConnects"], 1);
        assert_eq!(denied["Status"], "401");
        let broken = event_line("c", 1, "CONNECT", 500).unwrap().to_json();
        assert_eq!(
            (broken["Connects"].as_u64(), broken["Failed"].as_u64()),
            (Some(0), Some(1))
        );
        let gone = event_line("c", 1, "DISCONNECT", 200).unwrap().to_json();
        assert_eq!(gone["Disconnects"], 1);
        assert!(gone.get("Connects").is_none());
        assert!(event_line("c", 1, "MESSAGE", 400).is_none());
    }
}
