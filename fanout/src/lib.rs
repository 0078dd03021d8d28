//! The `fanout` function: turns a DynamoDB Streams batch into posts to connections.
//!
//! | module | what it holds |
//! |---|---|
//! | [`cache`] | the optional short-lived member cache of a warm instance |
//! | [`changes`] | stream record → change (welcome, roster activation, or an event for a channel), position coalescing |
//! | [`invocation`] | what an invocation carries: a stream batch or the scheduled sweep |
//! | [`plan`] | who gets what: per-connection frames, sender excluded, split at 32 KB |
//! | [`deliver`] | posting: bounded concurrency, GCRA pacing, retries, 410 collection |
//! | [`sweep`] | the scheduled stale-connection sweep |
//! | [`snapshot`] | the `snapshot` a joiner receives: members, positions, history since a cursor |
//! | [`lambda`] | the Lambda entry: payload → stream batch (measured) or sweep → response |
//! | [`metrics`] | the batch's CloudWatch EMF line and write→post lag |
//! | [`slow`] | slow consumers: told why, then disconnected (`DELETE @connections`) |
//! | [`welcome`] | new connections: `welcome` (410 before `$connect` completes: tried again through the stream), then the rosters |
//!
//! One invocation ([`process_until`]) is a pipeline of named steps:
//!
//! 1. **decode** the records into changes (malformed ones are skipped, never retried);
//! 2. **greet** new connections with `welcome`, then put memberships in their channels' rosters,
//!    side by side with steps 3–6 (a `welcome` that cannot be delivered holds back no one's
//!    events; a greeting that fails for a store error or the deadline hands its record back, and
//!    the resend may repeat events already delivered, as any resend may);
//! 3. **read members**: one strongly consistent Query of each channel's roster;
//! 4. **snapshots** for joiners (members, positions, chat since the join, ≤ 128 KB);
//! 5. **plan** (pure, [`plan`]): one `events` frame per recipient, sender excluded, ≤ 32 KB;
//! 6. **deliver**: snapshots, then events, concurrently and paced, each connection's frames in
//!    order; 410s collected and deleted with their memberships; a connection whose frame still
//!    fails after its retries is a slow consumer, disconnected ([`slow`]): its trouble is its own;
//! 7. **settle**: the first record not handled for a reason that concerns everyone (a channel
//!    whose members could not be read, a snapshot that could not be built, a frame left for the
//!    deadline, posts failing for most connections at once) goes back to Lambda in
//!    `batchItemFailures`; records after it are not posted in this invocation, so the resend
//!    delivers them once. A resend can repeat what some members already got: the copies carry the
//!    same `seq` / message `id`.

pub mod cache;
pub mod changes;
pub mod deliver;
pub mod invocation;
pub mod lambda;
pub mod metrics;
pub mod plan;
pub mod slow;
pub mod snapshot;
pub mod sweep;
pub mod welcome;

pub use lambda::handle_with_metrics;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt;
use ripple_common::config::Settings;
use ripple_common::connections::Connections;
use ripple_common::error::StoreError;
use ripple_common::items::{ConnectionItem, MemberItem};
use ripple_common::store::Store;

use changes::{Change, ChannelChange, Skip};
use deliver::{Delivery, DeliveryReport, Lagging, Pacer, PostPolicy, min_index};
use ripple_common::items::ChannelEvent;

/// Channels whose members are read at once.
const MEMBER_QUERIES_IN_FLIGHT: usize = 16;

/// What the handler needs, built once per Lambda instance and shared by invocations.
#[derive(Debug, Clone)]
pub struct FanoutState {
    pub store: Store,
    pub connections: Connections,
    pub pacer: Arc<Pacer>,
    pub member_cache: Option<Arc<cache::MemberCache>>,
    pub policy: PostPolicy,
}

impl FanoutState {
    pub fn new(store: Store, connections: Connections, settings: &Settings) -> Self {
        let policy = PostPolicy {
            max_in_flight: settings.max_in_flight,
            ..PostPolicy::default()
        };
        Self {
            store,
            connections,
            pacer: Arc::new(Pacer::new(
                settings.posts_per_second,
                settings.max_in_flight,
            )),
            member_cache: cache::MemberCache::new(std::time::Duration::from_millis(
                settings.member_cache_ms,
            ))
            .map(Arc::new),
            policy,
        }
    }
}

/// What one invocation did (logged, and read by tests and benchmarks).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: usize,
    pub skipped: usize,
    pub malformed: usize,
    /// Events after coalescing.
    pub events: usize,
    /// Connections that were sent something.
    pub recipients: usize,
    /// Events delivered, summed over recipients.
    pub updates_delivered: u64,
    pub welcomes: u64,
    /// Snapshots built for joiners.
    pub snapshots: u64,
    pub delivery: DeliveryReport,
    /// Connections deleted after a 410.
    pub gone_removed: usize,
    /// Index of the first record reported in `batchItemFailures`.
    pub first_failed: Option<usize>,
    /// New connections whose `welcome` was not delivered now and gets another try through the
    /// stream (410 before the connection is established, or a failing post).
    pub welcome_retries: usize,
    /// Slow consumers disconnected (a frame, or their `welcome`, still failing after retries).
    pub slow_disconnected: usize,
    /// (record index, ingest's write time in ms) of each position and message decoded, for the
    /// write→post lag ([`metrics::lag`]).
    pub write_times: Vec<(usize, u64)>,
}

/// The Lambda handler, without metrics (see [`handle_with_metrics`]).
pub async fn handle(state: &FanoutState, event: Event) -> DynamoDbEventResponse {
    process(state, event).await.0
}

/// The handler with no deadline, with the report of what it did.
pub async fn process(state: &FanoutState, event: Event) -> (DynamoDbEventResponse, Report) {
    process_until(state, event, None).await
}

/// Time kept back before the function's deadline for the clean-up and the response.
fn stop_time(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - (left / 4).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

/// The handler: one invocation as a pipeline of named steps. `deadline` is Lambda's
/// (`context.deadline`); posting stops before it and the rest is handed back to Lambda.
pub async fn process_until(
    state: &FanoutState,
    event: Event,
    deadline: Option<Instant>,
) -> (DynamoDbEventResponse, Report) {
    let stop_at = deadline.map(stop_time);
    let mut report = Report {
        records: event.records.len(),
        ..Report::default()
    };
    let Decoded {
        welcomes,
        activations,
        by_channel,
    } = decode(&event, &mut report);
    // Greeting new connections and delivering the channels' events run side by side: a
    // connection that cannot take its `welcome` (one opened and dropped at once, say) holds
    // nobody's events back. Neither needs the other: events go to roster entries only, and a
    // roster entry is put only after its connection's `welcome` was delivered; the events of
    // this batch were written before any roster entry put now.
    let (greeted, (delivery, failed)) = futures::join!(
        greet_new_connections(state, &welcomes, &activations, stop_at),
        deliver_channels(state, by_channel, stop_at, &mut report),
    );
    report.welcomes = greeted.welcomes;
    report.welcome_retries = greeted.retries;
    // Posts failing for most connections at once are API Gateway's trouble, not theirs: the
    // batch goes back to Lambda rather than everyone being disconnected.
    let systemic = delivery.systemic_from();
    let failed = min_index(failed, greeted.failed);
    report.first_failed = min_index(min_index(failed, delivery.undelivered_from), systemic);
    report.updates_delivered = delivery.updates;
    let mut slow = greeted.slow;
    if systemic.is_none() {
        slow.extend(delivery.lagging.iter().cloned());
    }
    let closed = slow::disconnect_all(&state.connections, &slow).await;
    report.slow_disconnected = closed.closed;
    let mut gone = delivery.gone.clone();
    gone.extend(closed.gone);
    report.gone_removed = remove_gone(&state.store, &gone).await;
    report.delivery = delivery;
    (settle(&event, &report), report)
}

/// Steps 3 to 5 for the batch's channels: their rosters, the joiners' snapshots, the plan and
/// the posts. Returns what was delivered and the first record that must be retried before
/// posting (a roster or snapshot that could not be read).
async fn deliver_channels(
    state: &FanoutState,
    by_channel: BTreeMap<String, Vec<ChannelChange>>,
    stop_at: Option<Instant>,
    report: &mut Report,
) -> (DeliveryReport, Option<usize>) {
    let (members, unread) = read_members(state, &by_channel).await;
    let (snapshots, failed) = build_snapshots(state, &by_channel, &members, unread, stop_at).await;
    // Records from the first failed one on are not posted: Lambda resends them.
    let cutoff = failed.unwrap_or(usize::MAX);
    let now_secs = ripple_common::now_ms() / 1000;
    let planned = plan::plan(by_channel, &members, cutoff, now_secs, |m| {
        state.connections.url_for(&m.endpoint())
    });
    report.events = planned.events;
    report.recipients = planned.deliveries.len();
    let delivery = deliver_in_order(
        state,
        snapshots,
        planned.deliveries,
        cutoff,
        stop_at,
        report,
    )
    .await;
    (delivery, failed)
}

/// Step 1: the batch's records as changes. Malformed and irrelevant records are skipped (never
/// retried: they would block the shard).
struct Decoded {
    welcomes: Vec<(usize, ConnectionItem)>,
    activations: Vec<(usize, MemberItem)>,
    by_channel: BTreeMap<String, Vec<ChannelChange>>,
}

fn decode(event: &Event, report: &mut Report) -> Decoded {
    let mut decoded = Decoded {
        welcomes: Vec::new(),
        activations: Vec::new(),
        by_channel: BTreeMap::new(),
    };
    for (index, record) in event.records.iter().enumerate() {
        match changes::change_of(index, record) {
            Ok(Change::Welcome(c)) => decoded.welcomes.push((index, c)),
            Ok(Change::Activate(m)) => decoded.activations.push((index, m)),
            Ok(Change::Channel(c)) => {
                if let ChannelEvent::Position(_) | ChannelEvent::Message(_) = c.kind {
                    report.write_times.push((index, c.kind.written_at()));
                }
                decoded
                    .by_channel
                    .entry(c.channel.clone())
                    .or_default()
                    .push(c)
            }
            Err(Skip::Ignored) => report.skipped += 1,
            Err(Skip::Malformed(why)) => {
                report.malformed += 1;
                tracing::error!(event_id = %record.event_id, error = %why, "malformed record skipped");
            }
        }
    }
    decoded
}

/// What greeting the batch's new connections and memberships came to.
#[derive(Default)]
struct Greeted {
    welcomes: u64,
    retries: usize,
    /// The first record that must be retried (a store error, or the deadline before a post).
    failed: Option<usize>,
    /// Connections that could not take their `welcome` (slow consumers).
    slow: Vec<Lagging>,
}

/// Step 2: `welcome` to new connections, then their memberships (and new ones) into the
/// rosters ([`welcome`]), at most [`MEMBER_QUERIES_IN_FLIGHT`] at once.
async fn greet_new_connections(
    state: &FanoutState,
    welcomes: &[(usize, ConnectionItem)],
    activations: &[(usize, MemberItem)],
    stop_at: Option<Instant>,
) -> Greeted {
    let greetings: Vec<_> = welcomes
        .iter()
        .map(|(index, c)| async move { (*index, welcome::greet(state, c, stop_at).await) })
        .collect();
    let greeted: Vec<(usize, Result<welcome::Greeting, StoreError>)> =
        futures::stream::iter(greetings)
            .buffer_unordered(MEMBER_QUERIES_IN_FLIGHT)
            .collect()
            .await;
    let mut out = Greeted::default();
    for (index, result) in greeted {
        match result {
            Ok(welcome::Greeting::Welcomed) => out.welcomes += 1,
            Ok(welcome::Greeting::TryAgain) => out.retries += 1,
            Ok(welcome::Greeting::Slow) => {
                if let Some((_, c)) = welcomes.iter().find(|(i, _)| *i == index) {
                    out.slow.push(Lagging {
                        connection_id: c.connection_id.clone(),
                        url: state.connections.url_for(&c.endpoint()),
                        first_missed: index,
                    });
                }
            }
            Ok(g) if g.settled() => {}
            Ok(_) => out.failed = min_index(out.failed, Some(index)),
            Err(err) => {
                tracing::error!(error = %err, "could not greet a new connection");
                out.failed = min_index(out.failed, Some(index));
            }
        }
    }
    let puts: Vec<_> =
        activations
            .iter()
            .map(|(index, member)| async move {
                (*index, member, welcome::activate(state, member).await)
            })
            .collect();
    let activated: Vec<_> = futures::stream::iter(puts)
        .buffer_unordered(MEMBER_QUERIES_IN_FLIGHT)
        .collect()
        .await;
    for (index, member, result) in activated {
        if let Err(err) = result {
            tracing::error!(channel = %member.channel, error = %err, "could not put a membership in its roster");
            out.failed = min_index(out.failed, Some(index));
        }
    }
    out
}

/// Step 3: each channel's roster, one strongly consistent Query per channel. A channel whose
/// members cannot be read fails from its first record.
async fn read_members(
    state: &FanoutState,
    by_channel: &BTreeMap<String, Vec<ChannelChange>>,
) -> (BTreeMap<String, Vec<MemberItem>>, Option<usize>) {
    // Futures are collected before they are streamed: a closure inside the stream type would make
    // the handler's future not provably `Send` for every lifetime (rust-lang/rust#102211).
    let queries: Vec<_> = by_channel
        .iter()
        .map(|(channel, changes)| {
            // Joins and leaves change the list: never serve those channels from the cache.
            let fresh = changes
                .iter()
                .any(|c| matches!(c.kind, ChannelEvent::Join(_) | ChannelEvent::Leave(_)));
            members_of(state, channel.clone(), fresh)
        })
        .collect();
    let lookups: Vec<(String, Result<Vec<MemberItem>, StoreError>)> =
        futures::stream::iter(queries)
            .buffer_unordered(MEMBER_QUERIES_IN_FLIGHT)
            .collect()
            .await;
    let mut members = BTreeMap::new();
    let mut failed = None;
    for (channel, result) in lookups {
        match result {
            Ok(list) => {
                members.insert(channel, list);
            }
            Err(err) => {
                tracing::error!(%channel, error = %err, "could not read the channel's members");
                let first = by_channel
                    .get(&channel)
                    .and_then(|c| c.first())
                    .map(|c| c.index);
                failed = min_index(failed, first);
            }
        }
    }
    (members, failed)
}

/// Snapshots built at once in one invocation (each is a BatchGetItem and a Query).
pub const SNAPSHOT_CONCURRENCY: usize = 16;

/// Step 4: a joiner's snapshot (members, positions, chat since its join), built concurrently
/// (at most [`SNAPSHOT_CONCURRENCY`] at once) so a join storm in one batch costs the others
/// one round of reads, not one per joiner. One that cannot be read, or is not built by
/// `stop_at`, fails from its join record (Lambda resends it, and the joiner gets it then).
async fn build_snapshots(
    state: &FanoutState,
    by_channel: &BTreeMap<String, Vec<ChannelChange>>,
    members: &BTreeMap<String, Vec<MemberItem>>,
    failed: Option<usize>,
    stop_at: Option<Instant>,
) -> (Vec<(usize, Delivery)>, Option<usize>) {
    let now_secs = ripple_common::now_ms() / 1000;
    let joins: Vec<(usize, &MemberItem, &[MemberItem])> = by_channel
        .iter()
        .filter_map(|(channel, changes)| members.get(channel).map(|list| (changes, list)))
        .flat_map(|(changes, list)| {
            changes.iter().filter_map(move |change| match &change.kind {
                ChannelEvent::Join(joiner) => Some((change.index, joiner, list.as_slice())),
                _ => None,
            })
        })
        .filter(|(index, _, _)| failed.is_none_or(|f| *index < f))
        .collect();
    let builds: Vec<_> = joins
        .into_iter()
        .map(|(index, joiner, list)| build_snapshot(state, index, joiner, list, now_secs, stop_at))
        .collect();
    let built: Vec<_> = futures::stream::iter(builds)
        .buffer_unordered(SNAPSHOT_CONCURRENCY)
        .collect()
        .await;
    let mut failed = failed;
    let mut snapshots = Vec::new();
    for (index, joiner, built) in built {
        match built {
            Some(Ok(frame)) => snapshots.push((
                index,
                Delivery {
                    connection_id: joiner.connection_id.clone(),
                    url: state.connections.url_for(&joiner.endpoint()),
                    frames: vec![frame],
                    records: vec![index],
                },
            )),
            Some(Err(err)) => {
                tracing::error!(channel = %joiner.channel, error = %err, "could not build a snapshot");
                failed = min_index(failed, Some(index));
            }
            None => {
                tracing::warn!(channel = %joiner.channel, "snapshot not built before the deadline: handed back");
                failed = min_index(failed, Some(index));
            }
        }
    }
    // A snapshot of a record Lambda will resend is built again then.
    snapshots.retain(|(index, _)| failed.is_none_or(|f| *index < f));
    snapshots.sort_by_key(|(index, _)| *index);
    (snapshots, failed)
}

/// One joiner's snapshot; `None` when `stop_at` came first.
async fn build_snapshot<'a>(
    state: &FanoutState,
    index: usize,
    joiner: &'a MemberItem,
    list: &[MemberItem],
    now_secs: u64,
    stop_at: Option<Instant>,
) -> (
    usize,
    &'a MemberItem,
    Option<Result<ripple_common::protocol::PackedFrame, StoreError>>,
) {
    let build = snapshot::build(&state.store, joiner, list, now_secs);
    let built = match stop_at {
        Some(at) => tokio::time::timeout_at(at.into(), build).await.ok(),
        None => Some(build.await),
    };
    (index, joiner, built)
}

/// Step 5: snapshots first (a joiner gets the state before the events that follow it), then
/// the events.
async fn deliver_in_order(
    state: &FanoutState,
    snapshots: Vec<(usize, Delivery)>,
    events: Vec<Delivery>,
    cutoff: usize,
    stop_at: Option<Instant>,
    report: &mut Report,
) -> DeliveryReport {
    let snapshot_deliveries: Vec<Delivery> = snapshots
        .into_iter()
        .filter(|(index, _)| *index < cutoff)
        .map(|(_, d)| d)
        .collect();
    report.snapshots = snapshot_deliveries.len() as u64;
    let mut delivery = deliver::deliver_all(
        &state.connections,
        &state.pacer,
        &state.policy,
        snapshot_deliveries,
        stop_at,
    )
    .await;
    let events = deliver::deliver_all(
        &state.connections,
        &state.pacer,
        &state.policy,
        events,
        stop_at,
    )
    .await;
    delivery.absorb(events);
    delivery.gone.sort();
    delivery.gone.dedup();
    delivery
}

/// Step 6: the batch's outcome for Lambda: the first record not fully handled, if any.
fn settle(event: &Event, report: &Report) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    if let Some(index) = report.first_failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = event
            .records
            .get(index)
            .and_then(|r| r.change.sequence_number.clone());
        response.batch_item_failures.push(failure);
    }
    tracing::info!(
        records = report.records,
        events = report.events,
        recipients = report.recipients,
        posts = report.delivery.attempts,
        delivered = report.delivery.delivered,
        gone = report.gone_removed,
        failed_from = ?report.first_failed,
        "batch fanned out"
    );
    response
}

async fn members_of(
    state: &FanoutState,
    channel: String,
    fresh: bool,
) -> (String, Result<Vec<MemberItem>, StoreError>) {
    let cache = state.member_cache.as_deref();
    if let Some(members) = cache.filter(|_| !fresh).and_then(|c| c.get(&channel)) {
        return (channel, Ok(members));
    }
    let members = state.store.channel_members(&channel).await;
    if let (Some(cache), Ok(list)) = (cache, &members) {
        cache.put(&channel, list);
    }
    (channel, members)
}

/// Deletes each gone connection with its memberships (their REMOVE records announce `leave`).
async fn remove_gone(store: &Store, gone: &[String]) -> usize {
    let deletions: Vec<_> = gone.iter().map(|id| delete_gone(store, id)).collect();
    let results: Vec<bool> = futures::stream::iter(deletions)
        .buffer_unordered(MEMBER_QUERIES_IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().filter(|ok| *ok).count()
}

async fn delete_gone(store: &Store, id: &str) -> bool {
    match store.delete_connection(id).await {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(connection_id = %id, error = %err, "could not delete a gone connection; TTL will");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ripple_common::items::{ConnectionItem, Endpoint, MessageItem, PositionItem};
    use ripple_common::protocol::PositionUpdate;
    use ripple_common::stream_record::StreamRecord;
    use serde_json::{Value, json};

    use super::*;

    fn image(item: &impl serde::Serialize) -> Value {
        let item: serde_dynamo::Item = serde_dynamo::to_item(item).unwrap();
        serde_json::to_value(item).unwrap()
    }

    #[test]
    fn only_decoded_positions_and_messages_are_timed_with_their_record_index() {
        // GIVEN a batch: a position written at 1000, a connection, a message written at 1200, a
        // removed membership, and a position whose stamp does not decode
        let endpoint = Endpoint {
            domain: "abc.execute-api.us-east-1.amazonaws.com".into(),
            stage: "prod".into(),
        };
        let connection = ConnectionItem::new("c1", "alice", &endpoint, 1_100, 9_999);
        let update = PositionUpdate {
            channel: "arena".into(),
            x: 1.0,
            y: 2.0,
            z: 0.0,
            seq: 1,
            data: None,
        };
        let position = PositionItem::new("alice", "c1", update, 1_000, 60);
        let message = MessageItem::new("arena".into(), "alice", "c1", "hi".into(), 1_200, 60);
        let member = MemberItem::new(&connection, "arena", 1_300);
        let mut bad_stamp = image(&position);
        bad_stamp["ts"] = json!({"N": "soon"});
        let records = [
            StreamRecord::write("INSERT", "0", image(&position)),
            StreamRecord::write("INSERT", "1", image(&connection)),
            StreamRecord::write("INSERT", "2", image(&message)),
            StreamRecord::new("REMOVE", "3")
                .keys(json!({"pk": {"S": "x"}, "sk": {"S": "y"}}))
                .old_image(image(&member)),
            StreamRecord::write("MODIFY", "4", bad_stamp),
        ];
        let event: Event = serde_json::from_value(json!({
            "Records": records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    r.clone()
                        .created_secs(1_795_000_000)
                        .sequence_number(i.to_string())
                        .size_bytes(100)
                        .to_json()
                })
                .collect::<Vec<_>>()
        }))
        .unwrap();
        // WHEN the batch is decoded (once: the lag reads what the pipeline decoded)
        let mut report = Report::default();
        decode(&event, &mut report);
        // THEN the position and the message are timed, with their record index
        assert_eq!(report.write_times, [(0, 1_000), (2, 1_200)]);
        assert_eq!(report.malformed, 1);
    }
}
