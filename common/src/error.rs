//! Error types of the shared core.

/// The error a DynamoDB call returned (the SDK's, kept as the source).
type SdkSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A DynamoDB call failed, or an item could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The message repeats the SDK error's details (code, message, request id): logs print
    /// errors with `%`, which shows no sources.
    #[error("DynamoDB {op} failed: {detail}")]
    Dynamo {
        op: &'static str,
        detail: String,
        #[source]
        source: SdkSource,
    },
    #[error("could not build a DynamoDB {op} request")]
    Build {
        op: &'static str,
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
    #[error("could not encode a {what} item: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_dynamo::Error,
    },
    #[error("could not decode a {what} item: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_dynamo::Error,
    },
    #[error("DynamoDB left {0} items unprocessed after retries")]
    Unprocessed(usize),
}

impl StoreError {
    pub(crate) fn dynamo<E>(op: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Dynamo {
            op,
            detail: aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        }
    }

    /// A request the SDK's builder refused (a required field missing).
    pub(crate) fn build(
        op: &'static str,
    ) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> Self + Copy {
        move |source| StoreError::Build { op, source }
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

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn a_failed_call_keeps_the_sdk_error_as_its_source_and_says_what_it_was() {
        // GIVEN an error from a DynamoDB call
        let sdk = std::io::Error::new(std::io::ErrorKind::TimedOut, "dispatch failure");
        // WHEN the store wraps it
        let err = StoreError::dynamo("GetItem", sdk);
        // THEN the message names the call and the details, and the SDK's error is the source
        assert!(
            err.to_string()
                .starts_with("DynamoDB GetItem failed: dispatch failure"),
            "{err}"
        );
        let source = err.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("dispatch failure"));
    }
}
