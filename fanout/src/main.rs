//! Lambda entry point of `fanout`: wiring only.

use std::sync::Arc;

use aws_lambda_events::dynamodb::Event;
use fanout::FanoutState;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use ripple_common::config::{Settings, aws_sdk_config, dynamodb_client};
use ripple_common::connections::Connections;
use ripple_common::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ripple_common::telemetry::init_lambda();
    let settings = Settings::from_env()?;
    let sdk = aws_sdk_config().await;
    let store = Store::new(dynamodb_client(&sdk, None), settings.table.clone());
    let connections = Connections::new(sdk.clone(), settings.connections_endpoint.clone());
    let state = Arc::new(FanoutState::new(store, connections, &settings));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let state = Arc::clone(&state);
        async move {
            let response =
                fanout::handle_with_metrics(&state, event.payload, &mut std::io::stdout()).await;
            Ok::<_, Error>(response)
        }
    }))
    .await
}
