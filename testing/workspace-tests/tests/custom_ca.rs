//! A custom HTTPS endpoint with its own CA still works: moto behind a TLS
//! front whose certificate is issued by a CA made for this test, the
//! function binaries pointed at it with `AWS_ENDPOINT_URL=https://…`.
//!
//! The functions trust the compiled-in Amazon Trust Services roots only for
//! AWS's own endpoints; an HTTPS endpoint keeps the system's bundle, and
//! `AWS_CA_BUNDLE` or `SSL_CERT_FILE` name the file to trust instead
//! (`docs/configuration.md`). Without either, the test CA is unknown and the
//! handshake must fail, which shows the CA is what made the others work.
//!
//! Needs `MOTO_ENDPOINT` and the function binaries (`scripts/test` provides
//! both; `LAMBDA_BIN_DIR` picks the build, `target/debug` by default).

use std::sync::atomic::Ordering;
use std::time::Duration;

use harness::runtime_api::{Answer, RuntimeApi};
use harness::tls_front::TlsFront;
use serde_json::Value;

/// moto behind TLS, with a certificate for `localhost` from a test CA.
async fn tls_front(tag: &str) -> TlsFront {
    TlsFront::start(&harness::moto::endpoint(), tag, Duration::ZERO)
        .await
        .unwrap()
}

/// One invocation of `binary` with its AWS endpoint at the front.
async fn invoke(
    binary: &str,
    front: &TlsFront,
    extra: &[(&str, String)],
    event: &Value,
) -> (Answer, String) {
    let mut env = harness::moto::child_env_at(&front.url);
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary(binary), &env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let (answer, _) = f.invoke(event).await.unwrap();
    let logs = f.finish().await;
    (answer, logs.stdout + &logs.stderr)
}

async fn confirmed_user(
    tag: &str,
) -> (
    Value,
    aws_sdk_cognitoidentityprovider::Client,
    String,
    String,
) {
    let sdk = harness::moto::sdk_config().await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool = harness::moto::new_pool(&client, &format!("custom-ca-{tag}")).await;
    let user = format!("ca-{tag}");
    let phone = "+14155550147";
    harness::moto::new_user(&client, &pool, &user, &[("phone_number", phone)]).await;
    let event = workspace_tests::events::post_confirmation(&pool, &user, phone);
    (event, client, pool, user)
}

/// Whether moto shows SMS as the user's preferred factor.
async fn sms_preferred(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    user: &str,
) -> bool {
    harness::moto::mfa_of(client, pool, user).await.1 == "SMS_MFA"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_confirmation_reaches_an_https_endpoint_through_the_ca_it_is_given() {
    for var in ["AWS_CA_BUNDLE", "SSL_CERT_FILE"] {
        let front = tls_front(var).await;
        let (event, client, pool, user) = confirmed_user(var).await;
        let ca = front.ca_file.to_string_lossy().into_owned();
        let (answer, logs) = invoke("post-confirmation", &front, &[(var, ca)], &event).await;
        assert!(!answer.is_error(), "{var}: {:?}\n{logs}", answer.value());
        assert!(
            sms_preferred(&client, &pool, &user).await,
            "{var}: the write did not land"
        );
        assert!(front.handshakes.load(Ordering::SeqCst) >= 1);
        assert_eq!(front.refused.load(Ordering::SeqCst), 0, "{var}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_handshake_fails_and_an_unreadable_bundle_does_not_crash() {
    let front = tls_front("none").await;
    let (event, client, pool, user) = confirmed_user("none").await;
    let (answer, logs) = invoke("post-confirmation", &front, &[], &event).await;
    assert!(
        answer.is_error(),
        "the test CA was trusted without being given: {logs}"
    );
    assert!(
        front.refused.load(Ordering::SeqCst) >= 1,
        "no handshake was refused"
    );
    assert!(!sms_preferred(&client, &pool, &user).await);

    // A bundle that holds no certificate: a warning, the system's roots, the
    // same refusal, and no panic at init.
    let bad = std::env::temp_dir().join(format!("custom-ca-bad-{}.pem", std::process::id()));
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let (answer, logs) = invoke(
        "post-confirmation",
        &front,
        &[("AWS_CA_BUNDLE", bad.to_string_lossy().into_owned())],
        &event,
    )
    .await;
    assert!(answer.is_error());
    assert!(logs.contains("holds no readable certificate"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_sms_sender_decrypts_and_sends_through_an_https_endpoint() {
    // KMS goes through the Encryption SDK's own client (on the I/O thread),
    // SNS through the function's: both must trust the given CA.
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms, &key_arn).await.unwrap();
    let pool = "us-east-1_CustomCa";
    let code = code_decrypt::encode_code(
        &code_decrypt::encrypt_like_cognito(&keyring, "517389", pool, false)
            .await
            .unwrap(),
    );
    // moto keeps every SMS it was asked to send: a number of this run's own.
    let mut b = [0u8; 4];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    let phone = &format!("+1206{:07}", u32::from_le_bytes(b) % 10_000_000);
    let event = workspace_tests::events::custom_sms_sender(
        pool,
        "CustomSMSSender_Authentication",
        "ca-sender",
        phone,
        &code,
    );
    let front = tls_front("sender").await;
    let ca = front.ca_file.to_string_lossy().into_owned();
    let (answer, logs) = invoke(
        "custom-sms-sender",
        &front,
        &[("KEY_ARN", key_arn), ("AWS_CA_BUNDLE", ca)],
        &event,
    )
    .await;
    assert!(!answer.is_error(), "{:?}\n{logs}", answer.value());
    let sent: Vec<_> = harness::moto::sent_sms()
        .await
        .into_iter()
        .filter(|(to, text)| to == phone && text.contains("517389"))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
}
