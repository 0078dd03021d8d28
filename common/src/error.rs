//! Error types of the shared core.

/// A DynamoDB call failed, or an item could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {op} failed: {message}")]
    Dynamo { op: &'static str, message: String },
    #[error("could not encode a {what} item: {source}")]
    Encode {
        what: &'static str,
        source: serde_dynamo::Error,
    },
    #[error("could not decode a {what} item: {source}")]
    Decode {
        what: &'static str,
        source: serde_dynamo::Error,
    },
    #[error("DynamoDB left {0} items unprocessed after retries")]
    Unprocessed(usize),
}

impl StoreError {
    pub(crate) fn dynamo<E>(op: &'static str, err: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        StoreError::Dynamo {
            op,
            message: aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
        }
    }
}

/// Configuration that cannot be used; the message says what to set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name}={value:?} is invalid: {hint}")]
    Invalid {
        name: &'static str,
        value: String,
        hint: &'static str,
    },
    /// The code read a variable `common/src/deploy.rs` does not declare: Terraform never sets
    /// it, so the value would silently be the default (a renamed or misspelt variable).
    #[error(
        "the code reads {name}, which common/src/deploy.rs does not declare (Terraform never sets it): a bug, not a setting"
    )]
    Undeclared { name: &'static str },
}
