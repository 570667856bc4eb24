use challenge_code::HashingSecret;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    // With CHALLENGE_SECRET_ARN this is the one Secrets Manager call of the
    // instance's life; verify talks to no other AWS service.
    let secret = match HashingSecret::load(&lambda_host::env_var).await {
        Ok(s) => s,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let secret = &secret;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        verify_auth_challenge::handle(secret, event.payload, challenge_code::unix_now())
    }))
    .await
}
