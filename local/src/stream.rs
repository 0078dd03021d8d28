//! Reading a table's DynamoDB Stream the way Lambda's event source mapping does, and presenting
//! each record in the exact JSON shape Lambda delivers (`aws_lambda_events::dynamodb::EventRecord`).
//!
//! Every shard is read, a child shard only after its parent is exhausted (shard lineage), so the
//! per-item order DynamoDB guarantees is kept. DynamoDB Local's TTL deletions (which carry
//! `eventName` `UNKNOWN_TO_SDK_VERSION` and no `userIdentity`) are presented as AWS sends them:
//! `REMOVE` with `userIdentity` `{"type":"Service","principalId":"dynamodb.amazonaws.com"}`.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, ShardIteratorType};
use ripple_common::stream_record::StreamRecord;
use serde_json::Value;

/// Where a new reader starts in the shards that exist when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    TrimHorizon,
    Latest,
}

#[derive(Debug)]
struct Shard {
    parent: Option<String>,
    iterator: Option<String>,
    /// The shard is closed and read to its end.
    finished: bool,
    /// The sequence number of the last record handed out (to resume after a failure).
    last_sequence: Option<String>,
}

/// A stream record in Lambda's shape, with the shard it came from.
#[derive(Debug, Clone)]
pub struct ShardRecord {
    pub shard_id: String,
    pub record: EventRecord,
}

/// A reader over every shard of one stream.
#[derive(Debug)]
pub struct StreamReader {
    client: Client,
    stream_arn: String,
    region: String,
    start: StartAt,
    shards: BTreeMap<String, Shard>,
    discovered_once: bool,
    last_discovery: Option<std::time::Instant>,
}

/// How often the shard list is refreshed (new shards appear when DynamoDB rolls them over).
const DISCOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl StreamReader {
    pub fn new(client: Client, stream_arn: impl Into<String>, start: StartAt) -> Self {
        Self {
            client,
            stream_arn: stream_arn.into(),
            region: "us-east-1".to_owned(),
            start,
            shards: BTreeMap::new(),
            discovered_once: false,
            last_discovery: None,
        }
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Finds shards not seen before (DescribeStream, paginated).
    async fn discover(&mut self) -> anyhow::Result<()> {
        let mut exclusive_start: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(exclusive_start.clone())
                .send()
                .await
                .context("DescribeStream")?;
            let Some(description) = out.stream_description else {
                break;
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                self.shards.entry(id).or_insert_with(|| Shard {
                    parent: shard.parent_shard_id,
                    iterator: None,
                    finished: false,
                    last_sequence: None,
                });
            }
            exclusive_start = description.last_evaluated_shard_id;
            if exclusive_start.is_none() {
                break;
            }
        }
        self.discovered_once = true;
        self.last_discovery = Some(std::time::Instant::now());
        Ok(())
    }

    fn parent_done(&self, shard: &Shard) -> bool {
        shard
            .parent
            .as_ref()
            .and_then(|p| self.shards.get(p))
            .is_none_or(|p| p.finished)
    }

    /// Reads what is available now from every readable shard, up to `limit` records per shard.
    pub async fn poll(&mut self, limit: i32) -> anyhow::Result<Vec<EventRecord>> {
        Ok(self
            .poll_shards(limit)
            .await?
            .into_iter()
            .map(|r| r.record)
            .collect())
    }

    /// As [`Self::poll`], each record with the shard it was read from.
    ///
    /// A shard whose read fails does not cost the others their records: what they gave is handed
    /// out, and the failing shard is read again on the next poll with a fresh iterator, after the
    /// last record it handed out (from its start when it handed out none: a replay, never a
    /// loss). The error is returned only when no shard gave anything.
    /// A fresh iterator is also how a reader recovers on AWS from `TrimmedDataAccessException`
    /// and `ExpiredIteratorException` ("Working with DynamoDB Streams: reading and processing a
    /// stream", GetRecords API reference). DynamoDB Local answers `TrimmedDataAccessException`
    /// to a live iterator now and then, once its shard's first record arrives
    /// (aws/aws-sdk-java#2923): kept, that iterator failed on every poll and the records behind
    /// it were never read.
    pub async fn poll_shards(&mut self, limit: i32) -> anyhow::Result<Vec<ShardRecord>> {
        let first = !self.discovered_once;
        let stale = self
            .last_discovery
            .is_none_or(|t| t.elapsed() >= DISCOVERY_INTERVAL);
        if stale || self.shards.values().all(|s| s.finished) {
            self.discover().await?;
        }
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        let (mut records, mut failed) = (Vec::new(), None);
        for id in ids {
            let ready = self
                .shards
                .get(&id)
                .is_some_and(|s| !s.finished && self.parent_done(s));
            if !ready {
                continue;
            }
            let start = if first {
                self.start
            } else {
                StartAt::TrimHorizon
            };
            match self.read_shard(&id, start, limit).await {
                Ok(got) => records.extend(got),
                Err(err) => {
                    if let Some(shard) = self.shards.get_mut(&id) {
                        shard.iterator = None;
                    }
                    let error = format!("{err:#}");
                    tracing::warn!(shard = %id, error, "shard read failed; a fresh iterator next poll");
                    failed = failed.or(Some(err));
                }
            }
        }
        match failed {
            Some(err) if records.is_empty() => Err(err),
            _ => Ok(records),
        }
    }

    /// Reads up to `limit` records from shard `id` (its iterator, or a new one at `start` when it
    /// has none), moving its iterator on.
    async fn read_shard(
        &mut self,
        id: &str,
        start: StartAt,
        limit: i32,
    ) -> anyhow::Result<Vec<ShardRecord>> {
        let iterator = match self.shards.get(id).and_then(|s| s.iterator.clone()) {
            Some(it) => it,
            None => self.iterator(id, start).await?,
        };
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .context("GetRecords")?;
        let got = out.records.unwrap_or_default();
        let records = got
            .iter()
            .map(|record| to_lambda_record(record, &self.stream_arn, &self.region))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let shard = self.shards.get_mut(id).context("shard vanished")?;
        shard.iterator = out.next_shard_iterator;
        if shard.iterator.is_none() {
            shard.finished = true;
        }
        if let Some(last) = got
            .last()
            .and_then(|r| r.dynamodb.as_ref())
            .and_then(|d| d.sequence_number.clone())
        {
            shard.last_sequence = Some(last);
        }
        let shard_id = |record| ShardRecord {
            shard_id: id.to_owned(),
            record,
        };
        Ok(records.into_iter().map(shard_id).collect())
    }

    async fn iterator(&self, shard_id: &str, start: StartAt) -> anyhow::Result<String> {
        let shard = self.shards.get(shard_id);
        let mut req = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id);
        req = match (shard.and_then(|s| s.last_sequence.clone()), start) {
            (Some(seq), _) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            (None, StartAt::TrimHorizon) => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            (None, StartAt::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
        };
        req.send()
            .await
            .context("GetShardIterator")?
            .shard_iterator
            .context("GetShardIterator returned no iterator")
    }
}

fn image(map: Option<&HashMap<String, AttributeValue>>) -> anyhow::Result<Option<Value>> {
    map.map(|m| {
        let item = serde_dynamo::Item::from(m.clone());
        serde_json::to_value(&item).context("encoding an image as DynamoDB JSON")
    })
    .transpose()
}

/// One stream record as Lambda's event source mapping delivers it.
pub fn to_lambda_record(
    record: &Record,
    stream_arn: &str,
    region: &str,
) -> anyhow::Result<EventRecord> {
    let db = record
        .dynamodb
        .as_ref()
        .context("stream record without `dynamodb`")?;
    let (event_name, ttl_removal) = match &record.event_name {
        Some(OperationType::Insert) => ("INSERT", false),
        Some(OperationType::Modify) => ("MODIFY", false),
        Some(OperationType::Remove) => ("REMOVE", false),
        // DynamoDB Local's TTL deletions: AWS sends these as REMOVE by the TTL service.
        _ => ("REMOVE", true),
    };
    let mut out = StreamRecord::new(event_name, record.event_id.clone().unwrap_or_default())
        .stream(stream_arn, record.aws_region.as_deref().unwrap_or(region))
        .event_version(record.event_version.as_deref().unwrap_or("1.1"));
    if let Some(t) = db.approximate_creation_date_time {
        out = out.created_secs(t.secs());
    }
    if let Some(v) = image(db.keys.as_ref())? {
        out = out.keys(v);
    }
    if let Some(v) = image(db.new_image.as_ref())? {
        out = out.new_image(v);
    }
    if let Some(v) = image(db.old_image.as_ref())? {
        out = out.old_image(v);
    }
    if let Some(seq) = &db.sequence_number {
        out = out.sequence_number(seq.clone());
    }
    if let Some(size) = db.size_bytes {
        out = out.size_bytes(size);
    }
    if let Some(view) = &db.stream_view_type {
        out = out.view_type(view.as_str());
    }
    match (&record.user_identity, ttl_removal) {
        (Some(id), _) => {
            out = out.user_identity(
                id.r#type().unwrap_or_default(),
                id.principal_id().unwrap_or_default(),
            );
        }
        (None, true) => out = out.user_identity("Service", "dynamodb.amazonaws.com"),
        (None, false) => {}
    }
    let out = out.to_json();
    serde_json::from_value(out).context("decoding a stream record as Lambda's EventRecord")
}

/// A stream client for the same endpoint as DynamoDB Local.
pub fn streams_client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}
