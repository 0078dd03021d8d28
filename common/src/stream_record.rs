//! One DynamoDB stream record in the JSON shape Lambda's event source mapping delivers
//! (`aws_lambda_events::dynamodb::EventRecord`): the one builder used by `ripple dev`'s stream
//! reader, the benchmarks' synthetic batches and the tests.

use serde_json::{Map, Value, json};

/// A stream ARN of the shape AWS gives, for records that did not come from a real stream.
pub const EXAMPLE_STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/ripple/stream/2026-11-21T22:00:00.000";

/// A record under construction; fields left unset are left out of the JSON (as AWS does for
/// the image a view type does not carry).
#[derive(Debug, Clone)]
pub struct StreamRecord {
    event_id: String,
    event_name: String,
    event_version: String,
    region: String,
    stream_arn: String,
    user_identity: Option<(String, String)>,
    dynamodb: Map<String, Value>,
}

impl StreamRecord {
    /// An `INSERT`, `MODIFY` or `REMOVE` record, in `us-east-1` on [`EXAMPLE_STREAM_ARN`] until
    /// told otherwise.
    pub fn new(event_name: &str, event_id: impl Into<String>) -> Self {
        Self {
            event_id: event_id.into(),
            event_name: event_name.to_owned(),
            event_version: "1.1".to_owned(),
            region: "us-east-1".to_owned(),
            stream_arn: EXAMPLE_STREAM_ARN.to_owned(),
            user_identity: None,
            dynamodb: Map::new(),
        }
    }

    /// The record of a write of `image` (DynamoDB JSON) to Ripple's table: its `Keys` are the
    /// image's `pk` and `sk`, the view `NEW_AND_OLD_IMAGES`.
    pub fn write(event_name: &str, event_id: impl Into<String>, image: Value) -> Self {
        Self::new(event_name, event_id)
            .keys(json!({"pk": image["pk"], "sk": image["sk"]}))
            .new_image(image)
            .view_type("NEW_AND_OLD_IMAGES")
    }

    pub fn stream(mut self, stream_arn: &str, region: &str) -> Self {
        stream_arn.clone_into(&mut self.stream_arn);
        region.clone_into(&mut self.region);
        self
    }

    pub fn event_version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.event_version);
        self
    }

    /// `userIdentity` (TTL deletions: `Service`, `dynamodb.amazonaws.com`).
    pub fn user_identity(mut self, kind: &str, principal_id: &str) -> Self {
        self.user_identity = Some((kind.to_owned(), principal_id.to_owned()));
        self
    }

    fn set(mut self, name: &str, value: Value) -> Self {
        self.dynamodb.insert(name.to_owned(), value);
        self
    }

    /// `ApproximateCreationDateTime`, in seconds.
    pub fn created_secs(self, secs: i64) -> Self {
        self.set("ApproximateCreationDateTime", json!(secs))
    }

    /// `Keys`, DynamoDB JSON (`{"pk":{"S":..},"sk":{"S":..}}`).
    pub fn keys(self, keys: Value) -> Self {
        self.set("Keys", keys)
    }

    /// `NewImage`, DynamoDB JSON.
    pub fn new_image(self, image: Value) -> Self {
        self.set("NewImage", image)
    }

    /// `OldImage`, DynamoDB JSON.
    pub fn old_image(self, image: Value) -> Self {
        self.set("OldImage", image)
    }

    pub fn sequence_number(self, sequence: impl Into<String>) -> Self {
        self.set("SequenceNumber", Value::String(sequence.into()))
    }

    pub fn size_bytes(self, bytes: i64) -> Self {
        self.set("SizeBytes", json!(bytes))
    }

    /// `StreamViewType` (`NEW_AND_OLD_IMAGES` for Ripple's table).
    pub fn view_type(self, view: &str) -> Self {
        self.set("StreamViewType", json!(view))
    }

    /// The record as Lambda delivers it.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "eventID": self.event_id,
            "eventName": self.event_name,
            "eventVersion": self.event_version,
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": self.dynamodb,
            "eventSourceARN": self.stream_arn,
        });
        if let (Some((kind, principal)), Some(obj)) = (&self.user_identity, out.as_object_mut()) {
            obj.insert(
                "userIdentity".into(),
                json!({"type": kind, "principalId": principal}),
            );
        }
        out
    }
}
