//! Lambda entry point of `fanout`: wiring only (each invocation runs [`fanout::lambda::invoke`]).

// The handler future nests deep (greet → welcome → SDK calls); its layout needs more than 128.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::Duration;

use fanout::FanoutState;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use ripple_common::config::{Settings, aws_sdk_config, dynamodb_client};
use ripple_common::connections::Connections;
use ripple_common::emf::Aggregator;
use ripple_common::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ripple_common::telemetry::init_lambda();
    let settings = Settings::from_env_for(&ripple_common::deploy::FANOUT)?;
    let sdk = aws_sdk_config().await;
    let store = Store::new(dynamodb_client(&sdk, None), settings.table.clone());
    let connections = Connections::new(sdk.clone(), settings.connections_endpoint.clone());
    // Opens DynamoDB (a Query) and, when anyone is connected, the @connections host.
    ripple_common::warm::connections(&store, &connections).await;
    let state = Arc::new(FanoutState::new(store, connections, &settings));
    let metrics = Arc::new(Aggregator::stdout());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let state = Arc::clone(&state);
        let metrics = Arc::clone(&metrics);
        async move {
            // Lambda's deadline (ms since the epoch) as a local instant: fanout stops before it.
            let left = Duration::from_millis(
                event
                    .context
                    .deadline
                    .saturating_sub(ripple_common::now_ms()),
            );
            let deadline = std::time::Instant::now() + left;
            Ok::<_, Error>(fanout::lambda::invoke(&state, event.payload, deadline, &metrics).await?)
        }
    }))
    .await
}
