//! What `ingest` tells CloudWatch: an Embedded Metric Format line per client frame, summed per
//! instance ([`ripple_common::emf`]): `Accepted`, `Refused` (also per error `Code`) and `Failed`.

use ripple_common::emf::{CODE_DIMENSION, MetricLine, ingest as names};

use crate::Outcome;

/// The metrics line of one frame's outcome.
pub fn frame_line(function: &str, timestamp_ms: u64, outcome: &Outcome) -> MetricLine {
    let (accepted, refused, failed) = match outcome {
        Outcome::Accepted | Outcome::Answered(_) => (1, 0, 0),
        Outcome::Refused(_) => (0, 1, 0),
        Outcome::Failed(_) => (0, 0, 1),
    };
    let line = MetricLine::new(function, timestamp_ms)
        .count(names::ACCEPTED, accepted)
        .count(names::REFUSED, refused)
        .count(names::FAILED, failed);
    match outcome {
        Outcome::Refused(refusal) => {
            line.breakdown(CODE_DIMENSION, refusal.code.as_str(), &[names::REFUSED])
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use ripple_common::protocol::{ErrorCode, Refusal};

    use super::*;

    #[test]
    fn a_refusal_is_counted_in_total_and_under_its_code() {
        let refused = Outcome::Refused(Refusal::new(ErrorCode::RateLimited, "slow down"));
        let line = frame_line("ripple-ingest", 1, &refused).to_json();
        assert_eq!(
            (&line["Accepted"], &line["Refused"], &line["Failed"]),
            (&0.into(), &1.into(), &0.into())
        );
        assert_eq!(line["Code"], "rate_limited");
        let directives = &line["_aws"]["CloudWatchMetrics"];
        assert_eq!(directives[1]["Dimensions"][0][1], "Code");
        assert_eq!(directives[1]["Metrics"][0]["Name"], "Refused");
    }

    #[test]
    fn an_accepted_frame_has_no_code() {
        let line = frame_line("ripple-ingest", 1, &Outcome::Accepted).to_json();
        assert_eq!(line["Accepted"], 1);
        assert!(line.get("Code").is_none());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"].as_array().map(Vec::len),
            Some(1)
        );
    }
}
