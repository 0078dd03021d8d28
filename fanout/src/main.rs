//! Lambda entry point of `fanout`: wiring only.

use std::sync::Arc;

use fanout::FanoutState;
use fanout::invocation::{Invocation, classify};
use fanout::sweep::{SweepConfig, sweep};
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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let state = Arc::clone(&state);
        async move {
            match classify(event.payload)? {
                Invocation::Stream(batch) => {
                    let response =
                        fanout::handle_with_metrics(&state, batch, &mut std::io::stdout()).await;
                    Ok::<_, Error>(serde_json::to_value(response)?)
                }
                Invocation::Sweep => {
                    let report =
                        sweep(&state, &SweepConfig::default(), ripple_common::now_ms()).await;
                    Ok(serde_json::json!({
                        "examined": report.examined,
                        "alive": report.alive,
                        "deleted": report.deleted,
                        "unknown": report.unknown,
                    }))
                }
            }
        }
    }))
    .await
}
