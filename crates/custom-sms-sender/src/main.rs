//! The Lambda binary: KMS keyring for `KEY_ARN`, SNS client and message
//! catalogue built once at init; a missing or bad setting fails the init
//! phase with a message naming the variable.

use code_decrypt::EsdkDecryptor;
use custom_sms_sender::Deps;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use sms_delivery::{SenderIdentity, SnsSender};
use sms_messages::Messages;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let key_arn = match code_decrypt::key_arn_from(&lambda_host::env_var) {
        Ok(arn) => arn,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let messages = match Messages::from_source(&lambda_host::env_var) {
        Ok(m) => m,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    // KMS then SNS, one after the other: each is bounded by the budget's
    // 2 s operation timeout, so both fit the function's 5 s timeout.
    let sdk = sdk_config::load(sdk_config::Budget::SYNC_TRIGGER).await;
    let decryptor = match EsdkDecryptor::with_kms(aws_sdk_kms::Client::new(&sdk), &key_arn).await {
        Ok(d) => d,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let sender = SnsSender::new(
        aws_sdk_sns::Client::new(&sdk),
        SenderIdentity::from_source(&lambda_host::env_var),
    );
    let deps = Deps {
        decryptor,
        sender,
        messages,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        custom_sms_sender::handle(deps, event.payload).await
    }))
    .await
}
