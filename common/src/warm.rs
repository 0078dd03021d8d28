//! Cold starts: each function opens its connections during Lambda's init phase, so the first
//! invocation does not pay the TLS handshake and the credential fetch (reported at ~0.75 s for
//! the Rust SDK on 128 MB). Init is billed like any other time, but it runs before the first
//! event is handed over and is capped at 10 s, with the full CPU burst Lambda gives init.
//!
//! Each warm-up is one cheap call the function's IAM role already grants
//! ([`crate::deploy`]): a `GetItem` (ingest) or a `Query` (connect, fanout) of a key that does
//! not exist, and for fanout one `GET @connections/{id}` of a connection found in the sweep index
//! (on AWS the `@connections` host is the API's, known only from a connection's item). A failed
//! warm-up is logged as a warning and never stops the function: the first invocation then opens
//! the connection itself.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::connections::Connections;
use crate::items::ConnectionItem;
use crate::keys;
use crate::store::Store;

/// The partition key the warm-up reads: no item ever has it.
pub const WARM_UP_PK: &str = "warmup#";

/// Which read the function's role allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    GetItem,
    Query,
}

/// Opens the DynamoDB connection with one read of a missing key; logs a warning on failure.
pub async fn dynamodb(store: &Store, probe: Probe) -> bool {
    let client = store.client();
    let result = match probe {
        Probe::GetItem => client
            .get_item()
            .table_name(store.table())
            .key(keys::PK, AttributeValue::S(WARM_UP_PK.to_owned()))
            .key(keys::SK, AttributeValue::S(WARM_UP_PK.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_dynamodb::Error::from(e).to_string()),
        Probe::Query => client
            .query()
            .table_name(store.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":pk", AttributeValue::S(WARM_UP_PK.to_owned()))
            .limit(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_dynamodb::Error::from(e).to_string()),
    };
    match result {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "could not open the DynamoDB connection during init");
            false
        }
    }
}

/// Opens the `@connections` connection: reads one connection from the sweep index (a `Query`,
/// which also opens DynamoDB's) and asks `@connections` about it. Nothing to warm when nobody is
/// connected. Returns whether `@connections` answered.
pub async fn connections(store: &Store, connections: &Connections) -> bool {
    let mut found = None;
    for shard in 0..keys::SWEEP_SHARDS {
        let page = store
            .client()
            .query()
            .table_name(store.table())
            .index_name(keys::MEMBERS_INDEX)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI1_PK)
            .expression_attribute_values(":pk", AttributeValue::S(keys::sweep_shard_pk(shard)))
            .limit(1)
            .send()
            .await;
        match page {
            Ok(page) => {
                found = page.items().first().and_then(|item| {
                    serde_dynamo::aws_sdk_dynamodb_1::from_item::<ConnectionItem>(item.clone()).ok()
                });
                if found.is_some() {
                    break;
                }
            }
            Err(err) => {
                let error = aws_sdk_dynamodb::Error::from(err).to_string();
                tracing::warn!(%error, "could not open the DynamoDB connection during init");
                return false;
            }
        }
    }
    let Some(conn) = found else {
        return false;
    };
    let url = connections.url_for(&conn.endpoint());
    let answered = connections
        .is_alive(&url, &conn.connection_id)
        .await
        .is_some();
    if !answered {
        tracing::warn!(%url, "could not open the @connections connection during init");
    }
    answered
}
