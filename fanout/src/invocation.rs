//! What the fanout Lambda was invoked with: a DynamoDB Streams batch (the event source mapping)
//! or the scheduled sweep (EventBridge, with input `{"ripple":"sweep"}`, or a plain scheduled
//! event). Anything else is refused with a message instead of being guessed at.

use aws_lambda_events::dynamodb::Event;
use serde_json::Value;

/// One invocation's payload.
#[derive(Debug)]
pub enum Invocation {
    Stream(Event),
    Sweep,
}

/// Why a payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("a `Records` payload that is not a DynamoDB Streams event: {0}")]
    BadStreamEvent(serde_json::Error),
    #[error(
        "unrecognised payload: expected DynamoDB Streams `Records` or {{\"ripple\":\"sweep\"}}"
    )]
    Unknown,
}

/// Classifies a raw payload.
pub fn classify(payload: Value) -> Result<Invocation, InvocationError> {
    if payload.get("Records").is_some() {
        return serde_json::from_value(payload)
            .map(Invocation::Stream)
            .map_err(InvocationError::BadStreamEvent);
    }
    let sweep_input = payload.get("ripple").and_then(Value::as_str) == Some("sweep");
    let scheduled = payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if sweep_input || scheduled {
        Ok(Invocation::Sweep)
    } else {
        Err(InvocationError::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_batches_and_sweeps_are_told_apart() {
        assert!(matches!(
            classify(json!({"Records": []})),
            Ok(Invocation::Stream(_))
        ));
        assert!(matches!(
            classify(json!({"ripple": "sweep"})),
            Ok(Invocation::Sweep)
        ));
        let scheduled = json!({"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}});
        assert!(matches!(classify(scheduled), Ok(Invocation::Sweep)));
        assert!(matches!(
            classify(json!({"hello": 1})),
            Err(InvocationError::Unknown)
        ));
        assert!(matches!(
            classify(json!({"Records": 7})),
            Err(InvocationError::BadStreamEvent(_))
        ));
    }
}
