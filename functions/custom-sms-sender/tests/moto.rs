//! The handler against moto over HTTP: a KMS key made in moto, codes
//! encrypted the way Cognito encrypts them (AWS Encryption SDK, KMS keyring
//! on that key, format v1, suite AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
//! encryption context `userpool-id`), decrypted by the same `EsdkDecryptor`
//! the Lambda binary builds, and the SMS found in moto's SNS record.
//!
//! Needs `MOTO_ENDPOINT` (`scripts/test` starts moto and sets it).

use std::sync::atomic::{AtomicU32, Ordering};

use code_decrypt::{EsdkDecryptor, encode_code, encrypt_like_cognito, kms_keyring};
use custom_sms_sender::{Deps, SenderError};
use serde_json::{Value, json};
use sms_delivery::{SenderIdentity, SnsSender};
use sms_messages::Messages;

const POOL: &str = "us-east-1_MotoPool1";

struct Env {
    deps: Deps<EsdkDecryptor, SnsSender, send_limits::DynamoLimiter>,
    kms: aws_sdk_kms::Client,
    key_arn: String,
}

async fn env() -> Env {
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let decryptor = EsdkDecryptor::with_kms(kms.clone(), &key_arn)
        .await
        .unwrap();
    let sender = SnsSender::new(aws_sdk_sns::Client::new(&sdk), SenderIdentity::default());
    Env {
        deps: Deps {
            decryptor,
            sender,
            messages: Messages::default(),
            gate: send_limits::SendGate::new(Default::default(), None),
            contact_guard: None,
        },
        kms,
        key_arn,
    }
}

/// A phone number no other test uses (moto keeps every SMS of the run).
fn unique_phone() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 10_000;
    format!("+1206{pid:04}{n:03}")
}

async fn cognito_code(env: &Env, plaintext: &str, pool: &str, committing: bool) -> String {
    let keyring = kms_keyring(env.kms.clone(), &env.key_arn).await.unwrap();
    let bytes = encrypt_like_cognito(&keyring, plaintext, pool, committing)
        .await
        .unwrap();
    encode_code(&bytes)
}

fn event(source: &str, user: &str, phone: Option<&str>, locale: &str, code: Value) -> Value {
    let mut attributes = json!({"sub": "8d4c1a52-0000-4000-8000-00000000abcd", "locale": locale});
    if let Some(phone) = phone {
        attributes["phone_number"] = json!(phone);
    }
    json!({
        "version": "1",
        "triggerSource": source,
        "region": "us-east-1",
        "userPoolId": POOL,
        "userName": user,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "abc"},
        "request": {
            "type": "customSMSSenderRequestV1",
            "code": code,
            "clientMetadata": null,
            "userAttributes": attributes
        }
    })
}

/// Every SMS moto's SNS "sent", as `(phone, text)`.
async fn all_sms() -> Vec<(String, String)> {
    harness::moto::sent_sms().await
}

async fn sms_to(phone: &str) -> Vec<String> {
    all_sms()
        .await
        .into_iter()
        .filter(|(to, _)| to == phone)
        .map(|(_, text)| text)
        .collect()
}

#[tokio::test]
async fn every_trigger_source_in_english_and_japanese_reaches_sns() {
    let env = env().await;
    // (trigger source, secret as Cognito encrypts it, English text, Japanese text)
    let cases = [
        (
            "CustomSMSSender_SignUp",
            Some("402918"),
            "Your verification code is 402918",
            "確認コードは 402918 です",
        ),
        (
            "CustomSMSSender_ResendCode",
            Some("551037"),
            "Your verification code is 551037",
            "確認コードは 551037 です",
        ),
        (
            "CustomSMSSender_ForgotPassword",
            Some("660914"),
            "Your password reset code is 660914",
            "パスワード再設定用のコードは 660914 です",
        ),
        (
            "CustomSMSSender_UpdateUserAttribute",
            Some("118206"),
            "Your code to confirm your new phone number is 118206",
            "新しい電話番号の確認コードは 118206 です",
        ),
        (
            "CustomSMSSender_VerifyUserAttribute",
            Some("930475"),
            "Your code to verify your phone number is 930475",
            "電話番号の確認コードは 930475 です",
        ),
        (
            "CustomSMSSender_AdminCreateUser",
            Some("P&lt;4w&amp;rd&gt;"),
            "Your username is erin and your temporary password is P<4w&rd>",
            "ユーザー名は erin、仮パスワードは P<4w&rd> です",
        ),
        (
            "CustomSMSSender_Authentication",
            Some("284601"),
            "Your authentication code is 284601",
            "認証コードは 284601 です",
        ),
        (
            "CustomSMSSender_AccountTakeOverNotification",
            None,
            "We blocked a suspicious sign-in to your account. If it was not you, change your password now.",
            "お客様のアカウントへの不審なサインインをブロックしました。心当たりがない場合は、すぐにパスワードを変更してください。",
        ),
    ];
    for (source, secret, en, ja) in cases {
        for (locale, want) in [("en", en), ("ja-JP", ja)] {
            let phone = unique_phone();
            let code = match secret {
                Some(s) => json!(cognito_code(&env, s, POOL, false).await),
                None => Value::Null,
            };
            let out = custom_sms_sender::handle(
                &env.deps,
                event(source, "erin", Some(&phone), locale, code),
            )
            .await
            .unwrap_or_else(|e| panic!("{source} {locale}: {e}"));
            assert_eq!(out["response"]["outcome"], "sent", "{source} {locale}");
            assert_eq!(
                sms_to(&phone).await,
                vec![want.to_owned()],
                "{source} {locale}"
            );
        }
    }
}

#[tokio::test]
async fn cognito_format_v1_messages_are_what_the_test_encrypts() {
    let env = env().await;
    let code = cognito_code(&env, "402918", POOL, false).await;
    let bytes = code_decrypt::decode_code(&code).unwrap();
    // version 1, type 0x80, suite 0x0378 = AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384
    assert_eq!(&bytes[..4], &[0x01, 0x80, 0x03, 0x78]);
    // ...so its base64 starts like every code Cognito sends.
    assert!(code.starts_with("AYADe"), "{}", &code[..8]);
}

#[tokio::test]
async fn a_key_committing_message_decrypts() {
    let env = env().await;
    let phone = unique_phone();
    let code = cognito_code(&env, "739152", POOL, true).await;
    assert_eq!(
        &code_decrypt::decode_code(&code).unwrap()[..3],
        &[0x02, 0x05, 0x78]
    );
    custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_Authentication",
            "u",
            Some(&phone),
            "en",
            json!(code),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        sms_to(&phone).await,
        vec!["Your authentication code is 739152".to_owned()]
    );
}

#[tokio::test]
async fn a_code_for_another_user_pool_is_refused_and_nothing_is_sent() {
    let env = env().await;
    let phone = unique_phone();
    let code = cognito_code(&env, "284601", "us-east-1_SomeoneElse", false).await;
    let e = custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_Authentication",
            "u",
            Some(&phone),
            "en",
            json!(code),
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SenderError::WrongUserPool(_)), "{e:?}");
    assert_eq!(e.error_type(), "WrongUserPool");
    assert!(e.to_string().contains("us-east-1_SomeoneElse") && !e.to_string().contains("284601"));
    assert!(sms_to(&phone).await.is_empty());
}

#[tokio::test]
async fn a_code_under_another_kms_key_is_refused() {
    let env = env().await;
    let other = harness::moto::new_kms_key(&env.kms).await;
    let keyring = kms_keyring(env.kms.clone(), &other).await.unwrap();
    let code = encode_code(
        &encrypt_like_cognito(&keyring, "284601", POOL, false)
            .await
            .unwrap(),
    );
    let phone = unique_phone();
    let e = custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_Authentication",
            "u",
            Some(&phone),
            "en",
            json!(code),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "DecryptionFailed", "{e}");
    assert!(sms_to(&phone).await.is_empty());
}

#[tokio::test]
async fn garbage_base64_a_null_code_and_a_user_without_phone_are_refused() {
    let env = env().await;
    let phone = unique_phone();
    let e = custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_SignUp",
            "u",
            Some(&phone),
            "en",
            json!("%%%not-base64%%%"),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidCode");

    let e = custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_SignUp",
            "u",
            Some(&phone),
            "en",
            Value::Null,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "MissingCode");
    assert!(sms_to(&phone).await.is_empty());

    let code = cognito_code(&env, "402918", POOL, false).await;
    let before = all_sms().await;
    let e = custom_sms_sender::handle(
        &env.deps,
        event("CustomSMSSender_SignUp", "u", None, "en", json!(code)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "NoPhoneNumber");
    assert_eq!(
        e.to_string(),
        "the user has no phone_number: nothing was sent"
    );
    let after = all_sms().await;
    assert!(
        !after
            .iter()
            .any(|(_, text)| text.contains("402918") && !before.iter().any(|(_, t)| t == text)),
        "an SMS was sent for a user without phone_number"
    );
}

#[tokio::test]
async fn init_fails_clearly_without_key_arn() {
    let e = code_decrypt::key_arn_from(&[("OTHER", "x")][..]).unwrap_err();
    assert!(e.to_string().contains("KEY_ARN is not set"), "{e}");
    let e = code_decrypt::key_arn_from(&[("KEY_ARN", "1234abcd-12ab")][..]).unwrap_err();
    assert!(e.to_string().contains("not a KMS key ARN"), "{e}");
    // A keyring on an alias would start, then fail every decrypt: refused
    // at init instead.
    let e = code_decrypt::key_arn_from(
        &[("KEY_ARN", "arn:aws:kms:us-east-1:123456789012:alias/codes")][..],
    )
    .unwrap_err();
    assert!(e.to_string().contains("alias ARN"), "{e}");
    assert_eq!(
        code_decrypt::key_arn_from(
            &[(
                "KEY_ARN",
                " arn:aws:kms:us-east-1:123456789012:key/1234abcd "
            )][..]
        )
        .unwrap(),
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd"
    );
}

/// The Python `aws-encryption-sdk` (pinned in .ci/requirements.txt,
/// installed in .venv by scripts/venv) encrypting against moto's KMS.
fn python_encrypt(key_arn: &str, pool: &str, plaintext: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/venv (it installs the pinned aws-encryption-sdk)",
        python.display()
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/encrypt_like_cognito.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([key_arn, pool, plaintext])
        .envs(harness::moto::child_env())
        .output()
        .expect("running the Python Encryption SDK");
    assert!(
        out.status.success(),
        "Python ESDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_ciphertext_from_the_python_encryption_sdk_decrypts_and_is_sent() {
    let env = env().await;
    let phone = unique_phone();
    let code = python_encrypt(&env.key_arn, POOL, "615283");
    assert_eq!(
        &code_decrypt::decode_code(&code).unwrap()[..4],
        &[0x01, 0x80, 0x03, 0x78]
    );
    custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_ForgotPassword",
            "u",
            Some(&phone),
            "ja",
            json!(code),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        sms_to(&phone).await,
        vec!["パスワード再設定用のコードは 615283 です".to_owned()]
    );

    // The same SDK, another pool: refused.
    let other = python_encrypt(&env.key_arn, "us-east-1_PyOther", "615284");
    let e = custom_sms_sender::handle(
        &env.deps,
        event(
            "CustomSMSSender_ForgotPassword",
            "u",
            Some(&phone),
            "ja",
            json!(other),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "WrongUserPool");
    assert_eq!(sms_to(&phone).await.len(), 1);
}
