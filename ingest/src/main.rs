//! Lambda entry point of `ingest`: wiring only.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use ingest::IngestState;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use ripple_common::config::{Settings, aws_sdk_config, dynamodb_client};
use ripple_common::emf::Aggregator;
use ripple_common::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ripple_common::telemetry::init_lambda();
    let settings = Settings::from_env_for(&ripple_common::deploy::INGEST)?;
    let sdk = aws_sdk_config().await;
    let store = Store::new(dynamodb_client(&sdk, None), settings.table.clone());
    ripple_common::warm::dynamodb(&store, ripple_common::warm::Probe::GetItem).await;
    let state = Arc::new(IngestState::new(store, settings));
    let metrics = Arc::new(Aggregator::stdout());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let state = Arc::clone(&state);
            let metrics = Arc::clone(&metrics);
            async move {
                let response = ingest::handle_with_metrics(&state, event.payload, &metrics).await;
                Ok::<_, Error>(response)
            }
        },
    ))
    .await
}
