//! The `fanout` function: turns a DynamoDB Streams batch into posts to connections.
//!
//! | module | what it holds |
//! |---|---|
//! | [`cache`] | the optional short-lived member cache of a warm instance |
//! | [`changes`] | stream record → change (welcome, or an event for a channel), position coalescing |
//! | [`invocation`] | what an invocation carries: a stream batch or the scheduled sweep |
//! | [`plan`] | who gets what: per-connection frames, sender excluded, split at 32 KB |
//! | [`deliver`] | posting: bounded concurrency, GCRA pacing, retries, 410 collection |
//! | [`sweep`] | the scheduled stale-connection sweep |
//! | [`snapshot`] | the `snapshot` a joiner receives: members, positions, history since a cursor |
//! | [`metrics`] | the batch's CloudWatch EMF line; [`handle_with_metrics`] is what Lambda runs |
//!
//! One invocation: decode records; post `welcome` to new connections; group the rest by channel;
//! Query each channel's members once (paginated, on the `members_by_channel` index); build one
//! `events` frame per recipient (split only to stay ≤ 32 KB); post concurrently; delete the
//! connections that answered 410 with their memberships. If a channel's members cannot be read,
//! the earliest record of that channel is reported in `batchItemFailures` and nothing from it on is
//! posted, so Lambda's resend of the tail posts those events once.

pub mod cache;
pub mod changes;
pub mod deliver;
pub mod invocation;
pub mod metrics;
pub mod plan;
pub mod snapshot;
pub mod sweep;

pub use metrics::handle_with_metrics;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt;
use ripple_common::config::Settings;
use ripple_common::connections::Connections;
use ripple_common::error::StoreError;
use ripple_common::items::MemberItem;
use ripple_common::protocol::{PackedFrame, ServerFrame};
use ripple_common::store::Store;

use changes::{Change, ChannelChange, Skip};
use deliver::{Delivery, DeliveryReport, Pacer, PostPolicy};

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
}

/// The Lambda handler, without metrics (see [`handle_with_metrics`]).
pub async fn handle(state: &FanoutState, event: Event) -> DynamoDbEventResponse {
    process(state, event).await.0
}

/// The handler, with the report of what it did.
pub async fn process(state: &FanoutState, event: Event) -> (DynamoDbEventResponse, Report) {
    let mut report = Report {
        records: event.records.len(),
        ..Report::default()
    };
    let mut welcomes = Vec::new();
    let mut by_channel: BTreeMap<String, Vec<ChannelChange>> = BTreeMap::new();
    for (index, record) in event.records.iter().enumerate() {
        match changes::change_of(index, record) {
            Ok(Change::Welcome(c)) => welcomes.push((index, c)),
            Ok(Change::Channel(c)) => by_channel.entry(c.channel.clone()).or_default().push(c),
            Err(Skip::Ignored) => report.skipped += 1,
            Err(Skip::Malformed(why)) => {
                report.malformed += 1;
                tracing::error!(event_id = %record.event_id, error = %why, "malformed record skipped");
            }
        }
    }

    // One Query per channel; a channel whose members cannot be read fails from its first record.
    // Futures are collected before they are streamed: a closure inside the stream type would make
    // the handler's future not provably `Send` for every lifetime (rust-lang/rust#102211).
    let queries: Vec<_> = by_channel
        .iter()
        .map(|(channel, changes)| {
            // Joins and leaves change the list: never serve those channels from the cache.
            let fresh = changes.iter().any(|c| {
                matches!(
                    c.kind,
                    changes::ChannelEvent::Join(_) | changes::ChannelEvent::Leave(_)
                )
            });
            members_of(state, channel.clone(), fresh)
        })
        .collect();
    let lookups: Vec<(String, Result<Vec<MemberItem>, StoreError>)> =
        futures::stream::iter(queries)
            .buffer_unordered(MEMBER_QUERIES_IN_FLIGHT)
            .collect()
            .await;
    let mut members: BTreeMap<String, Vec<MemberItem>> = BTreeMap::new();
    for (channel, result) in lookups {
        match result {
            Ok(list) => {
                members.insert(channel, list);
            }
            Err(err) => {
                let first = by_channel
                    .get(&channel)
                    .and_then(|c| c.first())
                    .map(|c| c.index);
                tracing::error!(%channel, error = %err, "could not read the channel's members");
                report.first_failed = match (report.first_failed, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
    // A joiner's snapshot; one that cannot be read fails from its join record.
    let now_secs = ripple_common::now_ms() / 1000;
    let mut snapshots: Vec<(usize, Delivery)> = Vec::new();
    for (channel, changes) in &by_channel {
        let Some(list) = members.get(channel) else {
            continue;
        };
        for change in changes {
            let changes::ChannelEvent::Join(joiner) = &change.kind else {
                continue;
            };
            if report.first_failed.is_some_and(|f| change.index >= f) {
                break;
            }
            match snapshot::build(&state.store, joiner, list, now_secs).await {
                Ok(frame) => snapshots.push((
                    change.index,
                    Delivery {
                        connection_id: joiner.connection_id.clone(),
                        url: state.connections.url_for(&joiner.endpoint()),
                        frames: vec![frame],
                    },
                )),
                Err(err) => {
                    tracing::error!(%channel, error = %err, "could not build a snapshot");
                    report.first_failed = Some(
                        report
                            .first_failed
                            .map_or(change.index, |f| f.min(change.index)),
                    );
                }
            }
        }
    }
    let cutoff = report.first_failed.unwrap_or(usize::MAX);

    // Welcomes go first, so a new connection hears `welcome` before any event.
    let welcome_deliveries: Vec<Delivery> = welcomes
        .into_iter()
        .filter(|(index, _)| *index < cutoff)
        .map(|(_, c)| Delivery {
            url: state.connections.url_for(&c.endpoint()),
            frames: vec![PackedFrame {
                bytes: ServerFrame::Welcome {
                    connection_id: c.connection_id.clone(),
                    user: c.user.clone(),
                }
                .to_json()
                .into_bytes(),
                events: 0,
            }],
            connection_id: c.connection_id,
        })
        .collect();
    let welcome_report = deliver::deliver_all(
        &state.connections,
        &state.pacer,
        &state.policy,
        welcome_deliveries,
    )
    .await;
    report.welcomes = welcome_report.delivered;
    // Then snapshots, so a joiner has the state before the events that follow it.
    let snapshot_deliveries: Vec<Delivery> = snapshots
        .into_iter()
        .filter(|(index, _)| *index < cutoff)
        .map(|(_, d)| d)
        .collect();
    report.snapshots = snapshot_deliveries.len() as u64;
    let snapshot_report = deliver::deliver_all(
        &state.connections,
        &state.pacer,
        &state.policy,
        snapshot_deliveries,
    )
    .await;

    let planned = plan::plan(by_channel, &members, cutoff, now_secs, |m| {
        state.connections.url_for(&m.endpoint())
    });
    report.events = planned.events;
    report.recipients = planned.deliveries.len();
    let mut delivery = deliver::deliver_all(
        &state.connections,
        &state.pacer,
        &state.policy,
        planned.deliveries,
    )
    .await;
    delivery.absorb(welcome_report);
    delivery.absorb(snapshot_report);
    report.updates_delivered = delivery.updates;

    let mut gone = delivery.gone.clone();
    gone.sort();
    gone.dedup();
    report.gone_removed = remove_gone(&state.store, &gone).await;
    report.delivery = delivery;

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
    (response, report)
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
