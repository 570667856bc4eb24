//! The sample events of `events/custom-sms-sender/`: what each one holds,
//! and how its `request.code` is made. `make-sms-events` writes them; the
//! `.expected.json` beside each is written by hand (its texts come from the
//! message catalogue and the plaintexts below, not from a run).

use code_decrypt::{encode_code, encrypt_like_cognito};
use serde_json::{Value, json};

use crate::{DEV_AES_KEY, raw_aes_keyring};

/// The pool every sample event comes from.
pub const POOL: &str = "us-east-1_EXAMPLE";

/// How a sample's `request.code` is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Encrypted like Cognito (format v1, non-committing suite) with the
    /// development key, for `POOL`.
    Cognito(&'static str),
    /// A key-committing (format v2) message with the development key.
    Committing(&'static str),
    /// Encrypted with the development key for another pool.
    ForPool(&'static str, &'static str),
    /// Encrypted with a key the development keyring does not have.
    OtherKey(&'static str),
    /// Given as is (not an ESDK message).
    Raw(&'static str),
    /// `null`.
    Null,
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub name: &'static str,
    pub trigger: &'static str,
    pub user_name: &'static str,
    pub phone: Option<&'static str>,
    pub locale: Option<&'static str>,
    pub code: Code,
}

const fn s(
    name: &'static str,
    trigger: &'static str,
    user_name: &'static str,
    phone: Option<&'static str>,
    locale: Option<&'static str>,
    code: Code,
) -> Sample {
    Sample {
        name,
        trigger,
        user_name,
        phone,
        locale,
        code,
    }
}

const US: Option<&str> = Some("+14155550142");
const JP: Option<&str> = Some("+819012345678");

/// Every sample: every trigger source, English and Japanese, and refusals.
pub const SAMPLES: &[Sample] = &[
    s(
        "sign-up-en",
        "CustomSMSSender_SignUp",
        "alice",
        US,
        Some("en-US"),
        Code::Cognito("402918"),
    ),
    s(
        "sign-up-ja",
        "CustomSMSSender_SignUp",
        "hanako",
        JP,
        Some("ja"),
        Code::Cognito("402918"),
    ),
    s(
        "resend-code-en",
        "CustomSMSSender_ResendCode",
        "alice",
        US,
        None,
        Code::Cognito("551037"),
    ),
    s(
        "resend-code-ja",
        "CustomSMSSender_ResendCode",
        "hanako",
        JP,
        Some("ja-JP"),
        Code::Cognito("551037"),
    ),
    s(
        "forgot-password-en",
        "CustomSMSSender_ForgotPassword",
        "alice",
        US,
        Some("en"),
        Code::Cognito("660914"),
    ),
    s(
        "forgot-password-ja",
        "CustomSMSSender_ForgotPassword",
        "hanako",
        JP,
        Some("ja_JP"),
        Code::Cognito("660914"),
    ),
    s(
        "update-user-attribute-en",
        "CustomSMSSender_UpdateUserAttribute",
        "alice",
        US,
        Some("en"),
        Code::Cognito("118206"),
    ),
    s(
        "update-user-attribute-ja",
        "CustomSMSSender_UpdateUserAttribute",
        "hanako",
        JP,
        Some("ja"),
        Code::Cognito("118206"),
    ),
    s(
        "verify-user-attribute-en",
        "CustomSMSSender_VerifyUserAttribute",
        "alice",
        US,
        Some("en"),
        Code::Cognito("930475"),
    ),
    s(
        "verify-user-attribute-ja",
        "CustomSMSSender_VerifyUserAttribute",
        "hanako",
        JP,
        Some("ja"),
        Code::Cognito("930475"),
    ),
    s(
        "admin-create-user-en",
        "CustomSMSSender_AdminCreateUser",
        "carol",
        US,
        Some("en"),
        Code::Cognito("Tmp&lt;9x&gt;Q&amp;z&quot;&#39;"),
    ),
    s(
        "admin-create-user-ja",
        "CustomSMSSender_AdminCreateUser",
        "jiro",
        JP,
        Some("ja"),
        Code::Cognito("Kari&amp;Pass1"),
    ),
    s(
        "authentication-en",
        "CustomSMSSender_Authentication",
        "alice",
        US,
        Some("en"),
        Code::Cognito("284601"),
    ),
    s(
        "authentication-ja",
        "CustomSMSSender_Authentication",
        "hanako",
        JP,
        Some("ja"),
        Code::Cognito("284601"),
    ),
    s(
        "authentication-key-committing",
        "CustomSMSSender_Authentication",
        "alice",
        US,
        Some("en"),
        Code::Committing("739152"),
    ),
    s(
        "authentication-unknown-locale",
        "CustomSMSSender_Authentication",
        "pierre",
        Some("+33612345678"),
        Some("fr-FR"),
        Code::Cognito("284601"),
    ),
    s(
        "authentication-ja-override",
        "CustomSMSSender_Authentication",
        "hanako",
        JP,
        Some("ja"),
        Code::Cognito("284601"),
    ),
    s(
        "account-takeover-en",
        "CustomSMSSender_AccountTakeOverNotification",
        "alice",
        US,
        Some("en"),
        Code::Null,
    ),
    s(
        "account-takeover-ja",
        "CustomSMSSender_AccountTakeOverNotification",
        "hanako",
        JP,
        Some("ja"),
        Code::Null,
    ),
    s(
        "refused-wrong-user-pool",
        "CustomSMSSender_Authentication",
        "alice",
        US,
        Some("en"),
        Code::ForPool("284601", "us-east-1_OTHERPOOL"),
    ),
    s(
        "refused-other-key",
        "CustomSMSSender_Authentication",
        "alice",
        US,
        Some("en"),
        Code::OtherKey("284601"),
    ),
    s(
        "refused-garbage-base64",
        "CustomSMSSender_SignUp",
        "alice",
        US,
        Some("en"),
        Code::Raw("not*base64!!"),
    ),
    s(
        "refused-not-an-esdk-message",
        "CustomSMSSender_SignUp",
        "alice",
        US,
        Some("en"),
        Code::Raw("SGVsbG8sIHdvcmxkIQ=="),
    ),
    s(
        "refused-null-code",
        "CustomSMSSender_ForgotPassword",
        "alice",
        US,
        Some("en"),
        Code::Null,
    ),
    s(
        "refused-no-phone",
        "CustomSMSSender_SignUp",
        "dave",
        None,
        Some("en"),
        Code::Cognito("402918"),
    ),
    s(
        "refused-phone-not-e164",
        "CustomSMSSender_SignUp",
        "dave",
        Some("090-1234-5678"),
        Some("ja"),
        Code::Cognito("402918"),
    ),
];

/// The `request.code` of `code`, made now (ciphertexts differ on every run:
/// fresh data key, IV and signing key).
pub async fn make_code(code: Code) -> anyhow::Result<Value> {
    let dev = || raw_aes_keyring(DEV_AES_KEY);
    let bytes = match code {
        Code::Null => return Ok(Value::Null),
        Code::Raw(text) => return Ok(json!(text)),
        Code::Cognito(p) => encrypt_like_cognito(&dev().await?, p, POOL, false).await?,
        Code::Committing(p) => encrypt_like_cognito(&dev().await?, p, POOL, true).await?,
        Code::ForPool(p, pool) => encrypt_like_cognito(&dev().await?, p, pool, false).await?,
        Code::OtherKey(p) => {
            let other = raw_aes_keyring(*b"not-the-development-key-for-demo").await?;
            encrypt_like_cognito(&other, p, POOL, false).await?
        }
    };
    Ok(json!(encode_code(&bytes)))
}

/// The event of `sample`, shaped as Cognito sends it.
pub async fn event(sample: &Sample) -> anyhow::Result<Value> {
    let mut attributes = serde_json::Map::new();
    attributes.insert("sub".into(), json!("0b6e1d2c-5f4a-4c3b-9a8d-7e6f5a4b3c2d"));
    attributes.insert("cognito:user_status".into(), json!("CONFIRMED"));
    if let Some(phone) = sample.phone {
        attributes.insert("phone_number".into(), json!(phone));
        attributes.insert("phone_number_verified".into(), json!("true"));
    }
    if let Some(locale) = sample.locale {
        attributes.insert("locale".into(), json!(locale));
    }
    Ok(json!({
        "version": "1",
        "triggerSource": sample.trigger,
        "region": "us-east-1",
        "userPoolId": POOL,
        "userName": sample.user_name,
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": "1example23456789"
        },
        "request": {
            "type": "customSMSSenderRequestV1",
            "code": make_code(sample.code).await?,
            "clientMetadata": null,
            "userAttributes": attributes
        }
    }))
}
