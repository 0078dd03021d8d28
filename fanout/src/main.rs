//! Lambda entry point of `fanout`: wiring only.

use std::sync::Arc;
use std::time::Duration;

use fanout::FanoutState;
use fanout::invocation::{Invocation, classify};
use fanout::sweep::{SweepConfig, sweep_until};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use ripple_common::config::{Settings, aws_sdk_config, dynamodb_client};
use ripple_common::connections::Connections;
use ripple_common::emf::Aggregator;
use ripple_common::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ripple_common::telemetry::init_lambda();
    let settings = Settings::from_env()?;
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
            match classify(event.payload)? {
                Invocation::Stream(batch) => {
                    let response = fanout::handle_with_metrics(&state, batch, &metrics).await;
                    Ok::<_, Error>(serde_json::to_value(response)?)
                }
                Invocation::Sweep => {
                    let now = ripple_common::now_ms();
                    let left = Duration::from_millis(event.context.deadline.saturating_sub(now));
                    let deadline = tokio::time::Instant::now() + left;
                    let report =
                        sweep_until(&state, &SweepConfig::default(), now, Some(deadline)).await;
                    Ok(serde_json::json!({
                        "examined": report.examined,
                        "alive": report.alive,
                        "deleted": report.deleted,
                        "unknown": report.unknown,
                        "cycle_finished": report.cycle_finished,
                    }))
                }
            }
        }
    }))
    .await
}
