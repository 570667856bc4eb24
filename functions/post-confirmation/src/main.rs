//! The `post-confirmation` Lambda binary: the MFA policy and the Cognito
//! client are built once, at init; the handler is in `lib.rs`.

use auth_policy::MfaConfig;
use cognito_admin::CognitoAdmin;
use lambda_runtime::{LambdaEvent, service_fn};
use sdk_config::Budget;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let config = &lambda_host::init(MfaConfig::from_source(&lambda_host::env_var)).await?;
    let sdk = sdk_config::for_function(Budget::SYNC_TRIGGER).await;
    let admin = &CognitoAdmin::new(aws_sdk_cognitoidentityprovider::Client::new(&sdk));
    // Its one service's connection, opened before the first event.
    sdk_config::connect_during_init(&sdk, &[CognitoAdmin::service(&sdk)]).await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        post_confirmation::handle(config, admin, event.payload).await
    }))
    .await
}
