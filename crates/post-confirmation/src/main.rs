//! The `post-confirmation` Lambda binary: configuration and the Cognito
//! client are built once, in the init phase; see the library for the handler.

use auth_policy::MfaConfig;
use cognito_admin::CognitoAdmin;
use lambda_runtime::{LambdaEvent, service_fn};
use sdk_config::Budget;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let config = match MfaConfig::from_source(&lambda_host::env_var) {
        Ok(config) => config,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let sdk = sdk_config::load(Budget::SYNC_TRIGGER).await;
    let admin = CognitoAdmin::new(aws_sdk_cognitoidentityprovider::Client::new(&sdk));
    let (config, admin) = (&config, &admin);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        post_confirmation::handle(config, admin, event.payload).await
    }))
    .await
}
