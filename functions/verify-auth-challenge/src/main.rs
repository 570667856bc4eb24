//! The `verify-auth-challenge` Lambda binary: loads the hashing secret once
//! at init (with `CHALLENGE_SECRET_ARN`, the one Secrets Manager call of the
//! instance's life; verify talks to no other AWS service). The check is in
//! `lib.rs`.

use challenge_code::HashingSecret;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let secret = &lambda_host::init(HashingSecret::load(&lambda_host::env_var).await).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        verify_auth_challenge::handle(secret, event.payload, challenge_code::unix_now())
    }))
    .await
}
