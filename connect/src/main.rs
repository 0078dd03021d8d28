//! Lambda entry point of `connect`: wiring only. At cold start it refuses to run without a way to
//! check tokens (or the explicit anonymous opt-in), and reads the HS256 secret from SSM Parameter
//! Store when `RIPPLE_JWT_SECRET_PARAMETER` names one.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use connect::ConnectState;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use ripple_common::config::{Settings, aws_sdk_config, dynamodb_client};
use ripple_common::emf::Aggregator;
use ripple_common::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    ripple_common::telemetry::init_lambda();
    let mut settings = Settings::from_env_for(&ripple_common::deploy::CONNECT)?;
    settings.require_auth_or_anonymous()?;
    let sdk = aws_sdk_config().await;
    if let Some(name) = settings.jwt_secret_parameter.clone() {
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        settings.jwt_secret = Some(connect::read_secret_parameter(&ssm, &name).await?);
    }
    let store = Store::new(dynamodb_client(&sdk, None), settings.table.clone());
    ripple_common::warm::dynamodb(&store, ripple_common::warm::Probe::Query).await;
    let state = Arc::new(ConnectState::new(store, settings));
    let metrics = Arc::new(Aggregator::stdout());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let state = Arc::clone(&state);
            let metrics = Arc::clone(&metrics);
            async move {
                let response = connect::handle_with_metrics(&state, event.payload, &metrics).await;
                Ok::<_, Error>(response)
            }
        },
    ))
    .await
}
