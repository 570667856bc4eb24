use challenge_code::HashingSecret;
use create_auth_challenge::{Deps, Settings};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use sms_delivery::{SenderIdentity, SnsSender};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let settings = match Settings::from_source(&lambda_host::env_var) {
        Ok(s) => s,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let config = sdk_config::load(sdk_config::Budget::SYNC_TRIGGER).await;
    let secret = match HashingSecret::load_with(&lambda_host::env_var, &config).await {
        Ok(s) => s,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let sender = SnsSender::new(
        aws_sdk_sns::Client::new(&config),
        SenderIdentity::from_source(&lambda_host::env_var),
    );
    let deps = Deps::new(settings, secret, sender);
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        create_auth_challenge::handle(deps, event.payload, challenge_code::unix_now()).await
    }))
    .await
}
