//! The `custom-email-sender` Lambda binary: the KMS keyring for `KEY_ARN`
//! (the pool's one key, shared with the SMS sender), the SES v2 client and
//! its sender settings (`EMAIL_FROM`, `SES_CONFIGURATION_SET`), the email
//! templates (built in, or `EMAIL_TEMPLATES_FILE`) and the limits table's
//! client are built once at init; a missing or bad setting fails the init
//! phase with a message naming the variable. The handler is in `lib.rs`.

use code_decrypt::EsdkDecryptor;
use custom_email_sender::Deps;
use email_delivery::{SesSender, SesSettings};
use lambda_runtime::{LambdaEvent, service_fn};
use send_limits::{CountryPolicy, DynamoLimiter, Limits, SendGate};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let key_arn = lambda_host::init(code_decrypt::key_arn_from(&lambda_host::env_var)).await?;
    let templates = lambda_host::init(custom_email_sender::templates_from_source(
        &lambda_host::env_var,
    ))
    .await?;
    let settings = lambda_host::init(SesSettings::from_source(&lambda_host::env_var)).await?;
    let limits = lambda_host::init(Limits::from_source(&lambda_host::env_var)).await?;
    let guarded = lambda_host::init(contact_guard::sender_mode(
        &lambda_host::env_var,
        limits.table.is_some(),
    ))
    .await?;
    // KMS then SES, one after the other: each is bounded by the budget's
    // 2 s operation timeout (retries of a throttled send included). Every
    // client runs its requests on sdk-config's I/O thread: the Encryption SDK
    // calls KMS from a runtime that lives for one call, and a connection must
    // outlive it to be reused.
    let sdk = sdk_config::for_function_on_io_thread(sdk_config::Budget::SYNC_TRIGGER).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let mut services = vec![
        sdk_config::Service::new("kms", "kms", "KMS", &sdk),
        sdk_config::Service::new("sesv2", "email", "SESV2", &sdk),
    ];
    let decryptor = lambda_host::init(EsdkDecryptor::with_kms(kms, &key_arn).await).await?;
    let sender = SesSender::new(ses, settings);
    let limiter =
        lambda_host::init(DynamoLimiter::load(&sdk, limits, &lambda_host::env_var).await).await?;
    // The warm path's connections (KMS, SES, the table), opened before the
    // first event.
    services.extend(limiter.as_ref().map(|l| l.service(&sdk)));
    sdk_config::connect_during_init(&sdk, &services).await;
    let deps = &Deps {
        decryptor,
        sender,
        templates,
        // Email has no country policy: the gate's is left open.
        gate: SendGate::new(CountryPolicy::default(), limiter),
        contact_guard: guarded.then(|| {
            contact_guard::ContactGuard::new(cognito_admin::CognitoAdmin::new(
                aws_sdk_cognitoidentityprovider::Client::new(&sdk),
            ))
        }),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        custom_email_sender::handle(deps, event.payload).await
    }))
    .await
}
