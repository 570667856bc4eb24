//! The `account-change` Lambda binary: the policy, the country policy, the
//! limits table (required: the allowances live there), the Cognito client
//! and the notice senders are built once at init; a missing or bad setting
//! fails the init phase with a message naming the variable. The handler is
//! in `lib.rs`.

use account_change::{Deps, POOL_VAR};
use auth_policy::account::AccountChangeConfig;
use cognito_admin::CognitoAdmin;
use email_delivery::{SesSender, SesSettings};
use lambda_runtime::{LambdaEvent, service_fn};
use phone_country::CountryPolicy;
use send_limits::{DynamoLimiter, Limits};
use serde_json::Value;
use sms_delivery::{SenderIdentity, SnsSender};

#[derive(Debug, thiserror::Error)]
#[error("{0} is required: {1}")]
struct Missing(&'static str, &'static str);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let config = lambda_host::init(AccountChangeConfig::from_source(&lambda_host::env_var)).await?;
    let countries = lambda_host::init(CountryPolicy::from_source(&lambda_host::env_var)).await?;
    let pool_id = lambda_host::init(
        lambda_host::env_var(POOL_VAR)
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .ok_or(Missing(
                POOL_VAR,
                "the user pool whose users this API changes",
            )),
    )
    .await?;
    let mut limits = lambda_host::init(Limits::from_source(&lambda_host::env_var)).await?;
    // Unset: the default limit (set it empty for none).
    if lambda_host::env_var(send_limits::spec::ACCOUNT_CHANGES_VAR).is_none() {
        limits.account_changes_per_user =
            send_limits::LimitSpec::parse(send_limits::spec::DEFAULT_ACCOUNT_CHANGES);
    }
    // Without EMAIL_FROM the pool sends its own email, and notices go by
    // SMS only (to the old phone of a phone change).
    let ses = match lambda_host::env_var(email_delivery::FROM_VAR) {
        Some(v) if !v.trim().is_empty() => {
            Some(lambda_host::init(SesSettings::from_source(&lambda_host::env_var)).await?)
        }
        _ => None,
    };
    let sdk = sdk_config::for_function(sdk_config::Budget::SYNC_TRIGGER).await;
    let limiter =
        lambda_host::init(DynamoLimiter::load(&sdk, limits, &lambda_host::env_var).await).await?;
    let limiter = lambda_host::init(limiter.ok_or(Missing(
        send_limits::spec::TABLE_VAR,
        "the allowances for new addresses and ACCOUNT_CHANGES_PER_USER live in that DynamoDB table",
    )))
    .await?;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    // Its warm path's connections (Cognito, the table; SES or SNS only for
    // notices), opened before the first request.
    sdk_config::connect_during_init(&sdk, &[CognitoAdmin::service(&sdk), limiter.service(&sdk)])
        .await;
    let deps = &Deps {
        config,
        countries,
        pool_id,
        admin: CognitoAdmin::new(cognito),
        limiter,
        // Built only with EMAIL_FROM: a client costs the init.
        email: ses.map(|s| SesSender::new(aws_sdk_sesv2::Client::new(&sdk), s)),
        sms: Some(SnsSender::new(
            sns,
            SenderIdentity::from_source(&lambda_host::env_var),
        )),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        account_change::handle(deps, event.payload).await
    }))
    .await
}
