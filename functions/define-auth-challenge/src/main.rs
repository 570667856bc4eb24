//! The `define-auth-challenge` Lambda binary: the custom-auth policy is read
//! once at init; the state machine is in `lib.rs`. Links no AWS SDK.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let config = &lambda_host::init(define_auth_challenge::Config::from_source(
        &lambda_host::env_var,
    ))
    .await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        define_auth_challenge::handle(config, event.payload)
    }))
    .await
}
