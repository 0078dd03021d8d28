//! The DynamoDB store: every read and write the Lambdas make, over one table (layout in
//! [`crate::keys`]). Items are written and read as the serde types of [`crate::items`] through
//! `serde_dynamo`. Creating the table (what `terraform/` does in AWS) is [`admin`]'s, for
//! `ripple dev`, the benchmarks and the tests.

pub mod admin;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    TransactWriteItem, WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::items::{
    ConnectionItem, MemberItem, MessageItem, PositionItem, SessionItem, SweepCursorItem,
};
use crate::keys;

type Attrs = HashMap<String, AttributeValue>;

/// What [`Store::delete_connection`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Items deleted (connection and memberships).
    pub items: usize,
    /// The connection's user, if its item was there.
    pub user: Option<String>,
    /// The channels it was a member of.
    pub channels: Vec<String>,
}

/// The position attribute naming the connection allowed to publish it: written with a member's
/// position once its membership was proven, removed at its `leave` ([`Store::revoke_publisher`]).
/// A store-level proof, not part of [`PositionItem`]: fanout never reads it.
pub const PUBLISHER: &str = "publisher";

/// What became of a member's position write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionWrite {
    /// Written: its stream record carries it to the channel.
    Written,
    /// Not written: the stored `seq` is as high (a late or replayed update).
    Stale,
    /// Not written: the stored item does not name this connection as its publisher.
    NotPublisher,
    /// Not written: the connection has no membership that lets it publish here.
    NotMember,
}

/// Most keys one BatchGetItem takes.
const BATCH_GET_MAX: usize = 100;
/// Most items one BatchWriteItem takes.
const BATCH_WRITE_MAX: usize = 25;
/// Rounds of retrying a batch's unprocessed items before giving up.
const UNPROCESSED_RETRIES: u32 = 8;

/// The table, through the DynamoDB SDK client.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

fn encode<T: Serialize>(what: &'static str, item: &T) -> Result<Attrs, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(item)
        .map_err(|source| StoreError::Encode { what, source })
}

fn decode<T: DeserializeOwned>(what: &'static str, attrs: Attrs) -> Result<T, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(attrs)
        .map_err(|source| StoreError::Decode { what, source })
}

/// The outcome of a conditional write: `true` when written, `false` when its condition said no
/// (`refused` tells that service error apart), the error otherwise.
fn written<T, E, R>(
    op: &'static str,
    result: Result<T, SdkError<E, R>>,
    refused: impl Fn(&E) -> bool,
) -> Result<bool, StoreError>
where
    SdkError<E, R>: std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(&refused) => Ok(false),
        Err(e) => Err(StoreError::dynamo(op, e)),
    }
}

/// The connection item's attribute that says its removal has begun.
const CLOSING: &str = "closing";

fn key(pk: String, sk: impl Into<String>) -> Attrs {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(pk)),
        (keys::SK.to_owned(), AttributeValue::S(sk.into())),
    ])
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn put<T: Serialize>(&self, what: &'static str, item: &T) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(what, item)?))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", e))?;
        Ok(())
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &'static str,
        key: Attrs,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", e))?;
        out.item.map(|attrs| decode(what, attrs)).transpose()
    }

    pub async fn put_connection(&self, item: &ConnectionItem) -> Result<(), StoreError> {
        self.put("connection", item).await
    }

    pub async fn get_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionItem>, StoreError> {
        self.get(
            "connection",
            key(keys::connection_pk(connection_id), keys::CONNECTION_SK),
        )
        .await
    }

    pub async fn put_member(&self, item: &MemberItem) -> Result<(), StoreError> {
        self.put("member", item).await
    }

    /// Writes a membership (a `join`) in one transaction that checks its connection is there and
    /// not closing. Returns false, writing nothing, when it is gone or being removed: a `join`
    /// that runs after `$disconnect` began (frames and `$disconnect` are separate invocations,
    /// in no order) would otherwise leave a member nothing removes.
    pub async fn put_member_of_open_connection(
        &self,
        item: &MemberItem,
    ) -> Result<bool, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::connection_pk(&item.connection_id),
                keys::CONNECTION_SK,
            )))
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#closing)")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#closing", CLOSING)
            .build()
            .map_err(StoreError::build("TransactWriteItems"))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode("member", item)?))
            .build()
            .map_err(StoreError::build("TransactWriteItems"))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        written("TransactWriteItems", result, |e| {
            matches!(e, TransactWriteItemsError::TransactionCanceledException(c)
                if c.cancellation_reasons().first().and_then(|r| r.code()) == Some("ConditionalCheckFailed"))
        })
    }

    /// Marks a connection closing (see [`Self::put_member_of_open_connection`]); nothing to do
    /// when its item is gone already.
    async fn mark_closing(&self, connection_id: &str) -> Result<(), StoreError> {
        self.set_connection_flag(connection_id, CLOSING)
            .await
            .map(|_| ())
    }

    /// Sets the boolean attribute `flag` on a connection item; false when the item is gone.
    async fn set_connection_flag(
        &self,
        connection_id: &str,
        flag: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::connection_pk(connection_id),
                keys::CONNECTION_SK,
            )))
            .update_expression("SET #flag = :t")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#flag", flag)
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        written(
            "UpdateItem",
            result,
            UpdateItemError::is_conditional_check_failed_exception,
        )
    }

    /// Writes several memberships (a connect with `channel` parameters).
    pub async fn put_members(&self, items: &[MemberItem]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let put = PutRequest::builder()
                .set_item(Some(encode("member", item)?))
                .build()
                .map_err(StoreError::build("BatchWriteItem"))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await
    }

    pub async fn get_member(
        &self,
        connection_id: &str,
        channel: &str,
    ) -> Result<Option<MemberItem>, StoreError> {
        self.get(
            "member",
            key(keys::connection_pk(connection_id), keys::member_sk(channel)),
        )
        .await
    }

    /// Deletes one membership and its roster entry (so the leaver stops receiving at once);
    /// returns the membership if it existed.
    pub async fn delete_member(
        &self,
        connection_id: &str,
        channel: &str,
    ) -> Result<Option<MemberItem>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::connection_pk(connection_id),
                keys::member_sk(channel),
            )))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::channel_members_pk(channel),
                keys::roster_sk(connection_id),
            )))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
        match out.attributes.filter(|a| !a.is_empty()) {
            Some(attrs) => Ok(Some(decode("member", attrs)?)),
            None => Ok(None),
        }
    }

    /// One transaction: a check that `connection_id`'s membership of `channel` exists (and, with
    /// `publishing`, may publish: not read-only), then `put`. Cancellation reasons come back in
    /// that order (the check at 0, the put at 1) for the caller to read.
    async fn put_if_member(
        &self,
        connection_id: &str,
        channel: &str,
        publishing: bool,
        put: Put,
    ) -> Result<Result<(), SdkError<TransactWriteItemsError>>, StoreError> {
        let condition = if publishing {
            "attribute_exists(#pk) AND attribute_not_exists(#read_only)"
        } else {
            "attribute_exists(#pk)"
        };
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::connection_pk(connection_id),
                keys::member_sk(channel),
            )))
            .condition_expression(condition)
            .expression_attribute_names("#pk", keys::PK);
        if publishing {
            check = check.expression_attribute_names("#read_only", "read_only");
        }
        let check = check
            .build()
            .map_err(StoreError::build("TransactWriteItems"))?;
        Ok(self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .map(|_| ()))
    }

    /// Writes a membership's roster entry, in one transaction that checks the membership still
    /// exists (a `leave` or disconnect racing the activation must not leave a ghost entry) and
    /// that the entry is not there yet. Returns whether it was written (its stream record is the
    /// `join`).
    pub async fn put_roster(&self, member: &MemberItem) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode("roster", &member.roster())?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", keys::PK)
            .build()
            .map_err(StoreError::build("TransactWriteItems"))?;
        let result = self
            .put_if_member(&member.connection_id, &member.channel, false, put)
            .await?;
        written("TransactWriteItems", result, |e| {
            matches!(e, TransactWriteItemsError::TransactionCanceledException(c)
                if c.cancellation_reasons().iter().all(|r| matches!(r.code(), Some("None" | "ConditionalCheckFailed") | None)))
        })
    }

    /// Marks a connection as having received its `welcome`; false when the connection is gone.
    pub async fn mark_welcomed(&self, connection_id: &str) -> Result<bool, StoreError> {
        self.set_connection_flag(connection_id, "welcomed").await
    }

    /// Asks for another try at a connection's `welcome` through the stream: counts the try on
    /// the connection item (a MODIFY record fanout reads as a new greeting), while the
    /// connection exists, has no `welcome` yet and has had fewer than `max_tries`. Returns
    /// whether a try was queued (false: gone, welcomed, or out of tries).
    pub async fn queue_welcome_try(
        &self,
        connection_id: &str,
        max_tries: u32,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::connection_pk(connection_id),
                keys::CONNECTION_SK,
            )))
            .update_expression("SET #n = if_not_exists(#n, :zero) + :one")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#w) OR #w = :f) AND (attribute_not_exists(#n) OR #n < :max)",
            )
            .expression_attribute_names("#n", "welcome_tries")
            .expression_attribute_names("#w", "welcomed")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(max_tries.to_string()))
            .send()
            .await;
        written(
            "UpdateItem",
            result,
            UpdateItemError::is_conditional_check_failed_exception,
        )
    }

    /// Overwrites a user's position in a channel unless the stored one has a `seq` at least as
    /// high (a late or replayed update). Returns whether it was written.
    pub async fn put_position(&self, item: &PositionItem) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode("position", item)?))
            .condition_expression("attribute_not_exists(#pk) OR #seq < :seq")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":seq", AttributeValue::N(item.seq.to_string()))
            .send()
            .await;
        written(
            "PutItem",
            result,
            PutItemError::is_conditional_check_failed_exception,
        )
    }

    /// The hot path of a member's position: one PutItem whose condition is the membership proof,
    /// with no read. The item names the connection allowed to publish it ([`PUBLISHER`]); the
    /// write succeeds only if the stored item names the same connection and has a lower `seq`.
    /// On a refusal DynamoDB returns the stored item with the error
    /// (`ReturnValuesOnConditionCheckFailure`, no read charged): it tells a stale update from a
    /// connection that must prove its membership with [`Store::put_position_for_member`].
    pub async fn put_position_as_publisher(
        &self,
        item: &PositionItem,
    ) -> Result<PositionWrite, StoreError> {
        let mut attrs = encode("position", item)?;
        attrs.insert(PUBLISHER.to_owned(), AttributeValue::S(item.sender.clone()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .condition_expression("#publisher = :sender AND #seq < :seq")
            .expression_attribute_names("#publisher", PUBLISHER)
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":sender", AttributeValue::S(item.sender.clone()))
            .expression_attribute_values(":seq", AttributeValue::N(item.seq.to_string()))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(PositionWrite::Written),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                    let stored = refused.item();
                    let named = stored
                        .and_then(|a| a.get(PUBLISHER))
                        .and_then(|p| p.as_s().ok())
                        .is_some_and(|p| *p == item.sender);
                    Ok(if named {
                        PositionWrite::Stale
                    } else {
                        PositionWrite::NotPublisher
                    })
                }
                _ => Err(StoreError::dynamo("PutItem", e)),
            },
        }
    }

    /// The proving path of a member's position (its first in the channel, or after another
    /// connection of the same user published): one transaction that checks the connection's
    /// membership exists and lets it publish, and writes the position naming the connection as
    /// its [`PUBLISHER`], so its next positions take [`Store::put_position_as_publisher`].
    /// `NotMember` when the membership is gone or read-only, `Stale` when the stored `seq` is as
    /// high.
    pub async fn put_position_for_member(
        &self,
        item: &PositionItem,
    ) -> Result<PositionWrite, StoreError> {
        let mut attrs = encode("position", item)?;
        attrs.insert(PUBLISHER.to_owned(), AttributeValue::S(item.sender.clone()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .condition_expression("attribute_not_exists(#pk) OR #seq < :seq")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":seq", AttributeValue::N(item.seq.to_string()))
            .build()
            .map_err(StoreError::build("TransactWriteItems"))?;
        let result = self
            .put_if_member(&item.sender, &item.channel, true, put)
            .await?;
        let refused_at = |reasons: &[aws_sdk_dynamodb::types::CancellationReason], at: usize| {
            reasons
                .get(at)
                .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
        };
        match result {
            Ok(_) => Ok(PositionWrite::Written),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if refused_at(c.cancellation_reasons(), 0) =>
                {
                    Ok(PositionWrite::NotMember)
                }
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if refused_at(c.cancellation_reasons(), 1) =>
                {
                    Ok(PositionWrite::Stale)
                }
                _ => Err(StoreError::dynamo("TransactWriteItems", e)),
            },
        }
    }

    /// Takes back `connection_id`'s right to publish `user`'s position in `channel` (at `leave`,
    /// after the membership is deleted): the position stays, without [`PUBLISHER`], so the
    /// connection's next position must prove a membership it no longer has. Writes nothing when
    /// the item names another connection or is not there.
    pub async fn revoke_publisher(
        &self,
        channel: &str,
        user: &str,
        connection_id: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::position_pk(channel, user),
                keys::position_sk(user),
            )))
            .update_expression("REMOVE #publisher")
            .condition_expression("#publisher = :connection")
            .expression_attribute_names("#publisher", PUBLISHER)
            .expression_attribute_values(":connection", AttributeValue::S(connection_id.to_owned()))
            .send()
            .await;
        written(
            "UpdateItem",
            result,
            UpdateItemError::is_conditional_check_failed_exception,
        )
    }

    pub async fn put_message(&self, item: &MessageItem) -> Result<(), StoreError> {
        self.put("message", item).await
    }

    /// A strongly consistent Query of `channel`'s roster partition.
    fn roster_query(
        &self,
        channel: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::channel_members_pk(channel)),
            )
            .consistent_read(true)
    }

    /// Every member of a channel: one paginated, strongly consistent Query of the channel's
    /// roster partition. Never a Scan, never an index (index reads lag writes).
    pub async fn channel_members(&self, channel: &str) -> Result<Vec<MemberItem>, StoreError> {
        let mut pages = self.roster_query(channel).into_paginator().items().send();
        let mut members = Vec::new();
        while let Some(attrs) = pages.next().await {
            let attrs = attrs.map_err(|e| StoreError::dynamo("Query", e))?;
            members.push(decode("roster", attrs)?);
        }
        Ok(members)
    }

    /// How many entries the channel's roster has, counting no further than `up_to` (a
    /// strongly consistent `Select=COUNT` Query: it reads the entries without returning them).
    pub async fn count_channel_members(
        &self,
        channel: &str,
        up_to: usize,
    ) -> Result<usize, StoreError> {
        let mut counted = 0;
        let mut start = None;
        loop {
            let page = self
                .roster_query(channel)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .limit(
                    i32::try_from(up_to - counted.min(up_to))
                        .unwrap_or(i32::MAX)
                        .max(1),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", e))?;
            counted += usize::try_from(page.count).unwrap_or(0);
            start = page.last_evaluated_key;
            if start.is_none() || counted >= up_to {
                return Ok(counted);
            }
        }
    }

    /// The memberships of a connection (strongly consistent).
    pub async fn connection_members(
        &self,
        connection_id: &str,
    ) -> Result<Vec<MemberItem>, StoreError> {
        let items = self.connection_partition(connection_id).await?;
        items
            .into_iter()
            .filter(|attrs| matches!(attrs.get(keys::SK), Some(AttributeValue::S(sk)) if sk.starts_with(keys::MEMBER_SK_PREFIX)))
            .map(|attrs| decode("member", attrs))
            .collect()
    }

    async fn connection_partition(&self, connection_id: &str) -> Result<Vec<Attrs>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::connection_pk(connection_id)),
            )
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(attrs) = pages.next().await {
            items.push(attrs.map_err(|e| StoreError::dynamo("Query", e))?);
        }
        Ok(items)
    }

    /// Deletes a connection and all its memberships; says what was deleted.
    ///
    /// It marks the connection closing first: from then on no `join` writes a membership for it,
    /// so the (strongly consistent) read of its partition after that sees every one. Then in
    /// steps, so a failure between any two leaves nothing that claims a connection that is
    /// gone (no ghost member), and a repeat finds what is left: the roster entries first (their
    /// REMOVE records are the `leave`s), while the memberships that name them still exist; then
    /// the memberships (after them fanout cannot write a roster entry any more: `put_roster`
    /// checks the membership in a transaction); then the roster entries again (one fanout may
    /// have put back between the first two steps); the connection item last. Until that last
    /// step the connection item is still there, so the sweep (or the next 410, or a repeated
    /// `$disconnect`) finds it and finishes the job.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<Deleted, StoreError> {
        // First, so that every membership a `join` still writes is in the read below.
        self.mark_closing(connection_id).await?;
        let items = self.connection_partition(connection_id).await?;
        let mut deleted = Deleted::default();
        let (mut members, mut rosters, mut connection) = (Vec::new(), Vec::new(), Vec::new());
        for attrs in items {
            let (Some(pk), Some(AttributeValue::S(sk))) =
                (attrs.get(keys::PK), attrs.get(keys::SK))
            else {
                continue;
            };
            let delete = DeleteRequest::builder()
                .key(keys::PK, pk.clone())
                .key(keys::SK, AttributeValue::S(sk.clone()))
                .build()
                .map_err(StoreError::build("BatchWriteItem"))?;
            let request = WriteRequest::builder().delete_request(delete).build();
            if sk == keys::CONNECTION_SK {
                if let Some(AttributeValue::S(user)) = attrs.get("user") {
                    deleted.user = Some(user.clone());
                }
                connection.push(request);
            } else if let Some(channel) = sk.strip_prefix(keys::MEMBER_SK_PREFIX) {
                deleted.channels.push(channel.to_owned());
                let roster = DeleteRequest::builder()
                    .key(
                        keys::PK,
                        AttributeValue::S(keys::channel_members_pk(channel)),
                    )
                    .key(keys::SK, AttributeValue::S(keys::roster_sk(connection_id)))
                    .build()
                    .map_err(StoreError::build("BatchWriteItem"))?;
                rosters.push(WriteRequest::builder().delete_request(roster).build());
                members.push(request);
            } else {
                members.push(request);
            }
        }
        deleted.items = members.len() + rosters.len() + connection.len();
        self.batch_write(rosters.clone()).await?;
        self.batch_write(members).await?;
        self.batch_write(rosters).await?;
        self.batch_write(connection).await?;
        Ok(deleted)
    }

    /// Latest positions of `users` in `channel`: one BatchGetItem per 100
    /// keys (one item per user, on the channel's few position partitions).
    pub async fn positions_of(
        &self,
        channel: &str,
        users: &[String],
    ) -> Result<Vec<PositionItem>, StoreError> {
        let mut found = Vec::new();
        for chunk in users.chunks(BATCH_GET_MAX) {
            let keys_and_attributes = chunk
                .iter()
                .fold(KeysAndAttributes::builder(), |b, user| {
                    b.keys(key(
                        keys::position_pk(channel, user),
                        keys::position_sk(user),
                    ))
                })
                .build()
                .map_err(StoreError::build("BatchGetItem"))?;
            let mut pending = Some(keys_and_attributes);
            let mut round = 0;
            while let Some(request) = pending.take() {
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unprocessed(request.keys.len()));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round.min(6))).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("BatchGetItem", e))?;
                for attrs in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    found.push(decode("position", attrs)?);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
                round += 1;
            }
        }
        Ok(found)
    }

    /// The most recent chat messages of `channel` written after `since_ms`, oldest first, at
    /// most `limit` (one Query, newest first, on the channel's history partition).
    pub async fn messages_since(
        &self,
        channel: &str,
        since_ms: u64,
        limit: i32,
    ) -> Result<Vec<MessageItem>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk > :since")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::message_pk(channel)))
            // Sort keys start with the 13-digit ms timestamp; `~` sorts after every id character.
            .expression_attribute_values(":since", AttributeValue::S(format!("{since_ms:013}#~")))
            // A joiner's snapshot must see every message written before it was read.
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        let mut messages: Vec<MessageItem> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|attrs| decode("message", attrs))
            .collect::<Result<_, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    pub async fn put_session(&self, item: &SessionItem) -> Result<(), StoreError> {
        self.put("session", item).await
    }

    /// Removes and returns a user's saved session (one DeleteItem returning the old item).
    pub async fn take_session(&self, user: &str) -> Result<Option<SessionItem>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::session_pk(user), keys::SESSION_SK)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", e))?;
        out.attributes
            .filter(|a| !a.is_empty())
            .map(|attrs| decode("session", attrs))
            .transpose()
    }

    /// Up to `limit` connections of one sweep shard that connected before `before_ms`, oldest
    /// first, from the one whose index sort key is `after` (excluded) on: one Query page.
    pub async fn connections_page(
        &self,
        shard: u32,
        after: Option<&str>,
        before_ms: u64,
        limit: i32,
    ) -> Result<Vec<ConnectionItem>, StoreError> {
        // BETWEEN is inclusive: ask for one more and drop `after` itself. Sort keys start with a
        // 13-digit timestamp, so "0" is below all of them and "{before_ms:013}" above every
        // connection made before `before_ms`.
        let from = after.unwrap_or("0");
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::MEMBERS_INDEX)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :before")
            .expression_attribute_names("#pk", keys::GSI1_PK)
            .expression_attribute_names("#sk", keys::GSI1_SK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::sweep_shard_pk(shard)))
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .expression_attribute_values(":before", AttributeValue::S(format!("{before_ms:013}")))
            .limit(limit.saturating_add(1))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        let mut found = Vec::new();
        for attrs in out.items.unwrap_or_default() {
            let conn: ConnectionItem = decode("connection", attrs)?;
            if Some(conn.gsi1sk.as_str()) != after {
                found.push(conn);
            }
        }
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    /// The sweep's cursor, if one was saved (a Query: fanout's role reads with Query only).
    pub async fn sweep_cursor(&self) -> Result<Option<SweepCursorItem>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::SWEEP_CURSOR_PK.to_owned()))
            .limit(1)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|attrs| decode("sweep cursor", attrs))
            .transpose()
    }

    /// Saves the sweep's cursor (a one-item BatchWriteItem: fanout's role writes with it only).
    pub async fn put_sweep_cursor(&self, cursor: &SweepCursorItem) -> Result<(), StoreError> {
        let put = PutRequest::builder()
            .set_item(Some(encode("sweep cursor", cursor)?))
            .build()
            .map_err(StoreError::build("BatchWriteItem"))?;
        self.batch_write(vec![WriteRequest::builder().put_request(put).build()])
            .await
    }

    /// BatchWriteItem in chunks of 25, retrying unprocessed items with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unprocessed(pending.len()));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round.min(6))).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                round += 1;
            }
        }
        Ok(())
    }
}
