//! The `@connections` client: posts frames to connections through `aws-sdk-apigatewaymanagement`
//! and classifies what API Gateway answered. One SDK client per endpoint, all sharing one
//! keep-alive HTTP connection pool; SDK retries are off, the caller owns the retry policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::items::Endpoint;

/// What a post came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// 200: delivered.
    Delivered,
    /// 410: the connection is gone; delete it, never retry.
    Gone,
    /// 429: throttled, or the client's buffer is full; retry later, slower.
    Throttled,
    /// 413: the frame is over the 128 KB limit.
    TooLarge,
    /// 403: not allowed (IAM, or a wrong stage); retrying will not help.
    Forbidden,
    /// 5xx, a timeout or a transport error: worth a bounded retry.
    Transient(String),
    /// Any other answer.
    Failed(String),
}

impl PostOutcome {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PostOutcome::Throttled | PostOutcome::Transient(_))
    }
}

/// Posts to connections at their API Gateway endpoints (or at one override URL).
#[derive(Debug, Clone)]
pub struct Connections {
    sdk: SdkConfig,
    endpoint_override: Option<String>,
    clients: Arc<Mutex<HashMap<String, Client>>>,
}

impl Connections {
    pub fn new(sdk: SdkConfig, endpoint_override: Option<String>) -> Self {
        Self {
            sdk,
            endpoint_override,
            clients: Arc::default(),
        }
    }

    /// The base URL posts for a connection at `endpoint` go to.
    pub fn url_for(&self, endpoint: &Endpoint) -> String {
        self.endpoint_override
            .clone()
            .unwrap_or_else(|| endpoint.url())
    }

    fn client(&self, url: &str) -> Client {
        let mut clients = match self.clients.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        clients
            .entry(url.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
                    .endpoint_url(url)
                    .retry_config(RetryConfig::disabled())
                    .build();
                Client::from_conf(conf)
            })
            .clone()
    }

    /// `POST @connections/{id}` with `data` as the frame.
    pub async fn post(&self, url: &str, connection_id: &str, data: Vec<u8>) -> PostOutcome {
        let result = self
            .client(url)
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => PostOutcome::Delivered,
            Err(err) => classify(err),
        }
    }

    /// `GET @connections/{id}`: whether the connection is still there (`None` when unsure).
    pub async fn is_alive(&self, url: &str, connection_id: &str) -> Option<bool> {
        match self
            .client(url)
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
        {
            Ok(_) => Some(true),
            Err(err) => match classify(err) {
                PostOutcome::Gone => Some(false),
                _ => None,
            },
        }
    }

    /// `DELETE @connections/{id}`: closes the socket. Gone counts as done.
    pub async fn disconnect(&self, url: &str, connection_id: &str) -> PostOutcome {
        match self
            .client(url)
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
        {
            Ok(_) => PostOutcome::Delivered,
            Err(err) => classify(err),
        }
    }
}

fn classify<E>(err: SdkError<E, HttpResponse>) -> PostOutcome
where
    E: std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let text = aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err).to_string();
    match (&err, status) {
        (_, Some(410)) => PostOutcome::Gone,
        (_, Some(429)) => PostOutcome::Throttled,
        (_, Some(413)) => PostOutcome::TooLarge,
        (_, Some(403)) => PostOutcome::Forbidden,
        (_, Some(s)) if s >= 500 => PostOutcome::Transient(text),
        (
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_),
            _,
        ) => PostOutcome::Transient(text),
        _ => PostOutcome::Failed(text),
    }
}
