//! The `custom-sms-sender` Lambda binary: the KMS keyring for `KEY_ARN`, the
//! SNS client, the message catalogue, the SMS country policy and the limits
//! table's client are built once at init; a missing or
//! bad setting fails the init phase with a message naming the variable. The
//! handler is in `lib.rs`.

use code_decrypt::EsdkDecryptor;
use custom_sms_sender::Deps;
use lambda_runtime::{LambdaEvent, service_fn};

use send_limits::{CountryPolicy, DynamoLimiter, Limits, SendGate};
use serde_json::Value;
use sms_delivery::{SenderIdentity, SnsSender};
use sms_messages::Messages;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let key_arn = lambda_host::init(code_decrypt::key_arn_from(&lambda_host::env_var)).await?;
    let messages = lambda_host::init(Messages::from_source(&lambda_host::env_var)).await?;
    let countries = lambda_host::init(CountryPolicy::from_source(&lambda_host::env_var)).await?;
    let limits = lambda_host::init(Limits::from_source(&lambda_host::env_var)).await?;
    let guarded = lambda_host::init(contact_guard::sender_mode(
        &lambda_host::env_var,
        limits.table.is_some(),
    ))
    .await?;
    // KMS then SNS, one after the other: each is bounded by the budget's
    // 2 s operation timeout, so both fit the function's 5 s timeout. Every
    // client runs its requests on sdk-config's I/O thread: the Encryption SDK
    // calls KMS from a runtime that lives for one call, and a connection must
    // outlive it to be reused.
    let sdk = sdk_config::for_function_on_io_thread(sdk_config::Budget::SYNC_TRIGGER).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let mut services = vec![
        sdk_config::Service::new("kms", "kms", "KMS", &sdk),
        sdk_config::Service::new("sns", "sns", "SNS", &sdk),
    ];
    let decryptor = lambda_host::init(EsdkDecryptor::with_kms(kms, &key_arn).await).await?;
    let sender = SnsSender::new(sns, SenderIdentity::from_source(&lambda_host::env_var));
    let limiter =
        lambda_host::init(DynamoLimiter::load(&sdk, limits, &lambda_host::env_var).await).await?;
    // The warm path's connections (KMS, SNS, the table), opened before the
    // first event.
    services.extend(limiter.as_ref().map(|l| l.service(&sdk)));
    sdk_config::connect_during_init(&sdk, &services).await;
    let deps = &Deps {
        decryptor,
        sender,
        messages,
        gate: SendGate::new(countries, limiter),
        contact_guard: guarded.then(|| {
            contact_guard::ContactGuard::new(cognito_admin::CognitoAdmin::new(
                aws_sdk_cognitoidentityprovider::Client::new(&sdk),
            ))
        }),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        custom_sms_sender::handle(deps, event.payload).await
    }))
    .await
}
