//! The `verify-auth-challenge` Lambda binary: loads the hashing secret at
//! init (with `CHALLENGE_SECRET_ARN`, read again every
//! `CHALLENGE_SECRET_CACHE_SECONDS` with its previous version, so a rotation
//! fails no code in flight) and, with `CODE_FAILURES_PER_USER`, the limits
//! table's client (the wrong-code lockout). The check is in `lib.rs`.

use challenge_code::RotatingSecret;
use lambda_runtime::{LambdaEvent, service_fn};
use send_limits::{DynamoLimiter, Limits};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let limits = lambda_host::init(Limits::from_source(&lambda_host::env_var)).await?;
    // The SDK configuration is loaded once, and only when the lockout needs
    // the table (the secret's loader loads it itself for Secrets Manager).
    let (secret, limiter) = match limits.code_failures_per_user {
        Some(_) => {
            let sdk = sdk_config::for_function(sdk_config::Budget::SYNC_TRIGGER).await;
            let (secret, limiter) = tokio::join!(
                RotatingSecret::load_with(&lambda_host::env_var, &sdk),
                DynamoLimiter::load(&sdk, limits, &lambda_host::env_var)
            );
            let limiter = lambda_host::init(limiter).await?;
            if let Some(l) = &limiter {
                sdk_config::connect_during_init(&sdk, &[l.service(&sdk)]).await;
            }
            (lambda_host::init(secret).await?, limiter)
        }
        None => (
            lambda_host::init(RotatingSecret::load(&lambda_host::env_var).await).await?,
            None,
        ),
    };
    let secret = &secret;
    let limiter = &limiter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let keys = secret.keys().await;
        verify_auth_challenge::handle_with_lockout(
            keys.keys(),
            limiter.as_ref(),
            event.payload,
            challenge_code::unix_now(),
        )
        .await
    }))
    .await
}
