//! `ripple replay FILE` and `ripple redrive`: stream batches through fanout again.
//!
//! - **replay** runs one recorded batch (Lambda's DynamoDB Streams event JSON, as
//!   `tests/fixtures/` holds it, or as a function's log shows it) through fanout against a running
//!   stack's table and `@connections`, to reproduce an incident locally.
//! - **redrive** reads the stream mapping's on-failure messages (the invocation records Lambda
//!   sends to the SQS destination when it gives up on a batch: `requestContext`,
//!   `responseContext`, `version`, `timestamp` and `DDBStreamBatchInfo` with the shard and
//!   sequence range), from the SQS queue (`--queue-url`) or from a folder holding one message per
//!   JSON file (`--dir`, what `ripple dev --on-failure-dir` writes). For each it reads the batch's
//!   records back from the stream (GetShardIterator `AT_SEQUENCE_NUMBER` the first, GetRecords
//!   until past the last; the stream keeps records 24 h) and hands them to fanout. A message is
//!   deleted (queue) or moved to `done/` (folder) only once fanout took every record.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use clap::Args;
use fanout::FanoutState;
use ripple_common::config::{Settings, dynamodb_client};
use ripple_common::connections::Connections;
use ripple_common::store::Store;
use serde::{Deserialize, Serialize};

use crate::stream::{streams_client, to_lambda_record};

/// Where fanout reads members and posts: a running `ripple dev` or a deployed stack.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// DynamoDB endpoint (`ripple dev` prints it). Without it: AWS, with the usual credentials
    /// and region (AWS_PROFILE, AWS_REGION, …).
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    /// Table name (`terraform output -raw table_name` on AWS).
    #[arg(long, default_value = "ripple")]
    pub table: String,
    /// `@connections` base URL: `ripple dev`'s http://127.0.0.1:3001, or on AWS
    /// `terraform output -raw connections_endpoint`.
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    pub connections_endpoint: String,
}

impl TargetArgs {
    async fn sdk(&self) -> aws_config::SdkConfig {
        match self.dynamodb_endpoint {
            Some(_) => ripple_common::config::local_sdk_config(),
            None => ripple_common::config::aws_sdk_config().await,
        }
    }

    async fn fanout_state(&self) -> FanoutState {
        let sdk = self.sdk().await;
        let store = Store::new(
            dynamodb_client(&sdk, self.dynamodb_endpoint.as_deref()),
            self.table.clone(),
        );
        let connections = Connections::new(
            sdk,
            Some(self.connections_endpoint.trim_end_matches('/').to_owned()),
        );
        FanoutState::new(store, connections, &Settings::for_table(self.table.clone()))
    }
}

/// `ripple replay FILE`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// A Lambda DynamoDB Streams event (`{"Records":[…]}`), e.g. tests/fixtures/stream-two-channels.json.
    pub file: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `ripple redrive`.
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The fanout's on-failure SQS queue (`terraform output -raw fanout_failure_queue_url`).
    #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
    pub queue_url: Option<String>,
    /// A folder of on-failure messages, one JSON file each (`ripple dev --on-failure-dir`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print what would be redriven; fetch and deliver nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The `DDBStreamBatchInfo` of an on-failure invocation record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    #[serde(default)]
    pub approximate_arrival_of_first_record: Option<String>,
    #[serde(default)]
    pub approximate_arrival_of_last_record: Option<String>,
    pub batch_size: u32,
    pub stream_arn: String,
}

/// An on-failure invocation record of a DynamoDB stream event source mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnFailureRecord {
    #[serde(rename = "requestContext", default)]
    pub request_context: serde_json::Value,
    #[serde(rename = "responseContext", default)]
    pub response_context: serde_json::Value,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: BatchInfo,
}

/// Errors reading an on-failure message.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("not an on-failure record of a DynamoDB stream mapping (no DDBStreamBatchInfo): {0}")]
    NotOnFailure(#[source] serde_json::Error),
    #[error("sequence number {0:?} is not a decimal number")]
    BadSequence(String),
}

impl OnFailureRecord {
    pub fn parse(text: &str) -> Result<Self, RedriveError> {
        let record: Self = serde_json::from_str(text).map_err(RedriveError::NotOnFailure)?;
        for seq in [
            &record.batch.start_sequence_number,
            &record.batch.end_sequence_number,
        ] {
            seq_key(seq)?;
        }
        Ok(record)
    }
}

/// Sequence numbers are decimal strings of up to 40 digits: ordered by length, then text.
fn seq_key(seq: &str) -> Result<(usize, &str), RedriveError> {
    let digits = seq.trim_start_matches('0');
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RedriveError::BadSequence(seq.to_owned()));
    }
    Ok((digits.len(), digits))
}

/// The region in a stream ARN (`arn:aws:dynamodb:REGION:…`), for the records' `awsRegion`.
fn region_of(arn: &str) -> &str {
    arn.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .unwrap_or("us-east-1")
}

/// Empty GetRecords pages [`fetch_batch`] reads before it gives up on reaching the batch's end:
/// an open shard may answer several before the records it holds ("it might take multiple
/// calls"), so a few in a row prove nothing; with [`EMPTY_PAGE_PAUSE`] this is a minute or more.
const MAX_EMPTY_PAGES: u32 = 300;

/// Pause after an empty page, not to spin on GetRecords (it is throttled per shard).
const EMPTY_PAGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// How many of a page's records (by sequence number, in order) belong to a batch that ends at
/// `end` (inclusive), and whether the page reached `end`.
fn within_batch<'a>(
    seqs: impl IntoIterator<Item = &'a str>,
    end: &str,
) -> Result<(usize, bool), RedriveError> {
    let end_key = seq_key(end)?;
    let mut taken = 0;
    for seq in seqs {
        let key = seq_key(seq)?;
        if key > end_key {
            return Ok((taken, true));
        }
        taken += 1;
        if key == end_key {
            return Ok((taken, true));
        }
    }
    Ok((taken, false))
}

/// What [`fetch_batch`] does once a page is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextPage {
    /// The batch is complete: its end was reached, or the shard is closed (nothing follows).
    Stop,
    Read,
    /// Too many empty pages: the end may never come (a wrong sequence number or shard).
    GiveUp,
}

fn next_page(reached_end: bool, shard_open: bool, empty_pages: u32) -> NextPage {
    if reached_end || !shard_open {
        NextPage::Stop
    } else if empty_pages >= MAX_EMPTY_PAGES {
        NextPage::GiveUp
    } else {
        NextPage::Read
    }
}

/// Reads the batch's records back from the stream: from `startSequenceNumber` (inclusive) to
/// `endSequenceNumber` (inclusive), in Lambda's record shape. Reads until past the end whatever
/// the empty pages, or until the shard closes; fails after [`MAX_EMPTY_PAGES`] empty pages.
pub async fn fetch_batch(
    client: &aws_sdk_dynamodbstreams::Client,
    info: &BatchInfo,
) -> anyhow::Result<Vec<EventRecord>> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_arn(&info.stream_arn)
        .shard_id(&info.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&info.start_sequence_number)
        .send()
        .await
        .with_context(|| {
            format!(
                "GetShardIterator AT_SEQUENCE_NUMBER {} in {} (records older than 24 h are gone)",
                info.start_sequence_number, info.shard_id
            )
        })?
        .shard_iterator;
    let mut records = Vec::new();
    let mut empty_pages = 0;
    while let Some(it) = iterator {
        let out = client
            .get_records()
            .shard_iterator(it)
            .limit(1000)
            .send()
            .await
            .with_context(|| format!("GetRecords in {}", info.shard_id))?;
        let page = out.records.unwrap_or_default();
        let seqs = page.iter().map(|r| {
            r.dynamodb
                .as_ref()
                .and_then(|d| d.sequence_number.as_deref())
                .unwrap_or_default()
        });
        let (taken, reached_end) = within_batch(seqs, &info.end_sequence_number)
            .with_context(|| format!("a record of {}", info.shard_id))?;
        for record in page.iter().take(taken) {
            records.push(to_lambda_record(
                record,
                &info.stream_arn,
                region_of(&info.stream_arn),
            )?);
        }
        if page.is_empty() {
            empty_pages += 1;
        }
        iterator = out.next_shard_iterator;
        match next_page(reached_end, iterator.is_some(), empty_pages) {
            NextPage::Stop => break,
            NextPage::Read if page.is_empty() => tokio::time::sleep(EMPTY_PAGE_PAUSE).await,
            NextPage::Read => {}
            NextPage::GiveUp => bail!(
                "{} did not reach sequence number {} after {empty_pages} empty GetRecords pages \
                 ({} record(s) of the batch read)",
                info.shard_id,
                info.end_sequence_number,
                records.len()
            ),
        }
    }
    Ok(records)
}

/// What one redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveOutcome {
    pub records: usize,
    /// Records fanout reported in `batchItemFailures` (and those after them).
    pub failed: usize,
}

/// Runs `records` through fanout in batches of at most `batch_size`, as the mapping would;
/// stops at the first failing batch.
pub async fn deliver(
    state: &FanoutState,
    records: Vec<EventRecord>,
    batch_size: usize,
) -> RedriveOutcome {
    let total = records.len();
    let mut done = 0;
    for chunk in records.chunks(batch_size.max(1)) {
        let mut event = Event::default();
        event.records = chunk.to_vec();
        let (response, _report) = fanout::process(state, event).await;
        if let Some(index) = first_failure(chunk, &response) {
            return RedriveOutcome {
                records: total,
                failed: total - done - index,
            };
        }
        done += chunk.len();
    }
    RedriveOutcome {
        records: total,
        failed: 0,
    }
}

fn first_failure(chunk: &[EventRecord], response: &DynamoDbEventResponse) -> Option<usize> {
    response
        .batch_item_failures
        .iter()
        .filter_map(|f| {
            let id = f.item_identifier.as_deref()?;
            chunk
                .iter()
                .position(|r| r.change.sequence_number.as_deref() == Some(id))
        })
        .min()
        .or((!response.batch_item_failures.is_empty()).then_some(0))
}

/// Reads, fetches and delivers one on-failure message.
pub async fn redrive_one(
    state: &FanoutState,
    streams: &aws_sdk_dynamodbstreams::Client,
    message: &OnFailureRecord,
) -> anyhow::Result<RedriveOutcome> {
    let records = fetch_batch(streams, &message.batch).await?;
    if records.is_empty() {
        bail!(
            "no records in {} from {} to {} (older than the stream's 24 h?)",
            message.batch.shard_id,
            message.batch.start_sequence_number,
            message.batch.end_sequence_number
        );
    }
    Ok(deliver(state, records, message.batch.batch_size as usize).await)
}

/// `ripple replay FILE`.
pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let event: Event = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a Lambda DynamoDB Streams event ({{\"Records\":[…]}})",
            args.file.display()
        )
    })?;
    let state = args.target.fanout_state().await;
    let (response, report) = fanout::process(&state, event).await;
    println!(
        "replayed {} records: {} updates delivered, {} gone connections removed, {} failed records",
        report.records,
        report.updates_delivered,
        report.gone_removed,
        response.batch_item_failures.len()
    );
    if !response.batch_item_failures.is_empty() {
        bail!(
            "fanout reported batchItemFailures: {}",
            serde_json::to_string(&response.batch_item_failures)?
        );
    }
    Ok(())
}

/// `ripple redrive`.
pub async fn redrive(args: RedriveArgs) -> anyhow::Result<()> {
    let sdk = args.target.sdk().await;
    let streams = streams_client(&sdk, args.target.dynamodb_endpoint.as_deref());
    let state = args.target.fanout_state().await;
    let mut failures = 0;
    let mut redriven = 0;
    match (&args.queue_url, &args.dir) {
        (Some(url), _) => {
            let sqs = aws_sdk_sqs::Client::new(&ripple_common::config::aws_sdk_config().await);
            loop {
                let out = sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(2)
                    .send()
                    .await
                    .with_context(|| format!("ReceiveMessage {url}"))?;
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    break;
                }
                for m in messages {
                    let body = m.body.clone().unwrap_or_default();
                    let ok = handle(&args, &state, &streams, "message", &body).await;
                    if ok && !args.dry_run {
                        if let Some(handle) = m.receipt_handle {
                            sqs.delete_message()
                                .queue_url(url)
                                .receipt_handle(handle)
                                .send()
                                .await
                                .context("DeleteMessage")?;
                        }
                        redriven += 1;
                    } else if !ok {
                        failures += 1;
                    }
                }
                if args.dry_run {
                    break; // received messages come back after their visibility timeout
                }
            }
        }
        (None, Some(dir)) => {
            for path in json_files(dir)? {
                let body = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let ok = handle(&args, &state, &streams, &path.display().to_string(), &body).await;
                if ok && !args.dry_run {
                    move_to_done(dir, &path)?;
                    redriven += 1;
                } else if !ok {
                    failures += 1;
                }
            }
        }
        (None, None) => bail!("give --queue-url or --dir"),
    }
    println!("redrive: {redriven} batch(es) delivered, {failures} not");
    if failures > 0 {
        bail!("{failures} batch(es) could not be redriven; they were kept");
    }
    Ok(())
}

/// One message: parsed, fetched and delivered (or only described with `--dry-run`); true when
/// it may be removed.
async fn handle(
    args: &RedriveArgs,
    state: &FanoutState,
    streams: &aws_sdk_dynamodbstreams::Client,
    what: &str,
    body: &str,
) -> bool {
    let message = match OnFailureRecord::parse(body) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("redrive: {what}: {e}");
            return false;
        }
    };
    let b = &message.batch;
    if args.dry_run {
        println!(
            "would redrive {} record(s) of {} from {} to {}",
            b.batch_size, b.shard_id, b.start_sequence_number, b.end_sequence_number
        );
        return true;
    }
    match redrive_one(state, streams, &message).await {
        Ok(outcome) if outcome.failed == 0 => {
            println!(
                "redriven: {} record(s) of {} from {} to {}",
                outcome.records, b.shard_id, b.start_sequence_number, b.end_sequence_number
            );
            true
        }
        Ok(outcome) => {
            eprintln!(
                "redrive: {what}: fanout failed {} of {} record(s); kept for another try",
                outcome.failed, outcome.records
            );
            false
        }
        Err(e) => {
            eprintln!("redrive: {what}: {e:#}");
            false
        }
    }
}

fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

fn move_to_done(dir: &Path, path: &Path) -> anyhow::Result<()> {
    let done = dir.join("done");
    std::fs::create_dir_all(&done).with_context(|| format!("creating {}", done.display()))?;
    let name = path.file_name().context("a file without a name")?;
    std::fs::rename(path, done.join(name))
        .with_context(|| format!("moving {} to {}", path.display(), done.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from AWS's Lambda guide (services-dynamodb-errors), field for field.
    const AWS_EXAMPLE: &str = r#"{
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 1
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "version": "1.0",
        "timestamp": "2019-11-14T00:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001573689847184-864758bb",
            "startSequenceNumber": "800000000003126276362",
            "endSequenceNumber": "800000000003126276362",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
            "batchSize": 1,
            "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
        }
    }"#;

    #[test]
    fn aws_s_on_failure_record_parses() {
        let r = OnFailureRecord::parse(AWS_EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.batch.shard_id, "shardId-00000001573689847184-864758bb");
        assert_eq!(r.batch.batch_size, 1);
        assert_eq!(region_of(&r.batch.stream_arn), "us-east-2");
    }

    #[test]
    fn a_message_without_batch_info_or_with_a_bad_sequence_is_refused() {
        assert!(matches!(
            OnFailureRecord::parse(r#"{"version":"1.0"}"#),
            Err(RedriveError::NotOnFailure(_))
        ));
        let bad = AWS_EXAMPLE.replace(
            r#""startSequenceNumber": "800000000003126276362""#,
            r#""startSequenceNumber": "8e5""#,
        );
        assert!(matches!(
            OnFailureRecord::parse(&bad),
            Err(RedriveError::BadSequence(_))
        ));
    }

    #[test]
    fn sequence_numbers_compare_as_numbers_not_text() {
        // GIVEN a batch ending at 1000 WHEN a page holds 999 then 1000 THEN both are in it
        assert_eq!(within_batch(["999", "1000"], "1000").ok(), Some((2, true)));
        // GIVEN leading zeros THEN they do not count
        assert_eq!(
            within_batch(["000000000000000000000"], "0").ok(),
            Some((1, true))
        );
        assert_eq!(
            within_batch(["800000000003126276363"], "800000000003126276362").ok(),
            Some((0, true))
        );
    }

    #[test]
    fn a_page_is_taken_up_to_the_batch_end_and_a_bad_sequence_is_an_error() {
        // GIVEN a batch ending at 20
        // WHEN a page stops short of it THEN all of it is taken and reading goes on
        assert_eq!(within_batch(["10", "15"], "20").ok(), Some((2, false)));
        // WHEN a page is empty THEN nothing is taken and the end is not reached
        assert_eq!(within_batch([], "20").ok(), Some((0, false)));
        // WHEN a page runs past it THEN only the records up to it are taken
        assert_eq!(within_batch(["18", "20", "21"], "20").ok(), Some((2, true)));
        assert_eq!(within_batch(["19", "22"], "20").ok(), Some((1, true)));
        // WHEN a record has no decimal sequence number THEN the page is refused
        assert!(matches!(
            within_batch(["18", ""], "20"),
            Err(RedriveError::BadSequence(_))
        ));
    }

    #[test]
    fn reading_goes_on_through_empty_pages_until_the_end_the_shard_s_close_or_the_bound() {
        // GIVEN an open shard WHEN pages come back empty THEN reading goes on, up to the bound
        assert_eq!(next_page(false, true, 3), NextPage::Read);
        assert_eq!(next_page(false, true, MAX_EMPTY_PAGES - 1), NextPage::Read);
        assert_eq!(next_page(false, true, MAX_EMPTY_PAGES), NextPage::GiveUp);
        // WHEN the end is reached or the shard closes THEN it stops, whatever the empty pages
        assert_eq!(next_page(true, true, MAX_EMPTY_PAGES), NextPage::Stop);
        assert_eq!(next_page(false, false, 0), NextPage::Stop);
    }
}
