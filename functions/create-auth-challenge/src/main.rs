//! The `create-auth-challenge` Lambda binary: settings, the hashing secret,
//! the SNS client, the SMS country policy and the limits table's client are
//! built once at init; the handler is in `lib.rs`.

use challenge_code::RotatingSecret;
use create_auth_challenge::{Deps, Settings};
use lambda_runtime::{LambdaEvent, service_fn};

use send_limits::{CountryPolicy, DynamoLimiter, Limits, SendGate};
use serde_json::Value;
use sms_delivery::{SenderIdentity, SnsSender};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let settings = lambda_host::init(Settings::from_source(&lambda_host::env_var)).await?;
    let countries = lambda_host::init(CountryPolicy::from_source(&lambda_host::env_var)).await?;
    let limits = lambda_host::init(Limits::from_source(&lambda_host::env_var)).await?;
    let config = sdk_config::for_function(sdk_config::Budget::SYNC_TRIGGER).await;
    // The two secrets (the code's and the limiter's) are read at once: one
    // round trip of the init phase.
    let (secret, limiter) = tokio::join!(
        RotatingSecret::load_with(&lambda_host::env_var, &config),
        DynamoLimiter::load(&config, limits, &lambda_host::env_var)
    );
    let secret = lambda_host::init(secret).await?;
    let limiter = lambda_host::init(limiter).await?;
    let sns = aws_sdk_sns::Client::new(&config);
    // The warm path's connections (SNS, and the table when limits are on),
    // opened before the first sign-in waits for them.
    let mut services = vec![sdk_config::Service::new("sns", "sns", "SNS", &config)];
    services.extend(limiter.as_ref().map(|l| l.service(&config)));
    sdk_config::connect_during_init(&config, &services).await;
    let sender = SnsSender::new(sns, SenderIdentity::from_source(&lambda_host::env_var));
    let deps = &Deps::new(settings, secret, sender, SendGate::new(countries, limiter));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        create_auth_challenge::handle(deps, event.payload, challenge_code::unix_now()).await
    }))
    .await
}
