//! The `pre-sign-up` Lambda binary: reads the sign-up policy and the SMS
//! country policy once at init
//! (a bad setting fails the init phase naming the variable) and runs the
//! handler of `lib.rs`. Links no AWS SDK: the decision needs no I/O.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let config =
        &lambda_host::init(pre_sign_up::Config::from_source(&lambda_host::env_var)).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        pre_sign_up::handle(config, event.payload)
    }))
    .await
}
