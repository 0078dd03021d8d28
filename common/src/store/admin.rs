//! Table administration, for `ripple dev`, the benchmarks and the tests (in AWS, `terraform/`
//! creates the table): the table as `terraform/` declares it, and its stream.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use super::Store;
use crate::error::StoreError;
use crate::keys;

impl Store {
    /// Creates the table as `terraform/` does (keys, index, stream `NEW_AND_OLD_IMAGES`, TTL)
    /// unless it exists. Returns whether it was created. Used by `ripple dev` and the tests.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(StoreError::dynamo("DescribeTable", e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key_el = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
        };
        let build_err = StoreError::build("CreateTable");
        let index = GlobalSecondaryIndex::builder()
            .index_name(keys::MEMBERS_INDEX)
            .key_schema(key_el(keys::GSI1_PK, KeyType::Hash).map_err(build_err)?)
            .key_schema(key_el(keys::GSI1_SK, KeyType::Range).map_err(build_err)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_err)?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(keys::PK).map_err(build_err)?)
            .attribute_definitions(attr(keys::SK).map_err(build_err)?)
            .attribute_definitions(attr(keys::GSI1_PK).map_err(build_err)?)
            .attribute_definitions(attr(keys::GSI1_SK).map_err(build_err)?)
            .key_schema(key_el(keys::PK, KeyType::Hash).map_err(build_err)?)
            .key_schema(key_el(keys::SK, KeyType::Range).map_err(build_err)?)
            .global_secondary_indexes(index)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(|e| StoreError::dynamo("CreateTable", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(keys::TTL)
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(|e| StoreError::dynamo("UpdateTimeToLive", e))?;
        Ok(true)
    }

    /// The table's stream ARN.
    pub async fn stream_arn(&self) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DescribeTable", e))?;
        Ok(out.table.and_then(|t| t.latest_stream_arn))
    }
}
