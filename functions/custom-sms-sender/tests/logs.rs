//! No log line carries a one-time code, a temporary password or a full
//! phone number. A full run against moto (every trigger source, success and
//! refusal, KMS and SNS over HTTP) is logged at TRACE through the same
//! filter the Lambda binary installs (`lambda_host::filter_for`, which caps
//! the SDK and runtime crates that would log bodies), captured, and
//! scanned for every secret and number the run used.
//!
//! One test in its own binary: the capturing subscriber is process-global,
//! so the SDK's and the Encryption SDK's threads log into it too.

use code_decrypt::{EsdkDecryptor, encode_code, encrypt_like_cognito, kms_keyring};
use custom_sms_sender::Deps;
use lambda_runtime::tracing::subscriber::filter::LevelFilter;
use serde_json::{Value, json};
use sms_delivery::{SenderIdentity, SnsSender};
use sms_messages::Messages;

const POOL: &str = "us-east-1_LogScan01";

use harness::moto::LogCapture as Capture;

fn event(source: &str, phone: Option<&str>, code: Value) -> Value {
    let mut attributes = json!({"locale": "en", "sub": "c0ffee00-0000-4000-8000-000000000001"});
    if let Some(p) = phone {
        attributes["phone_number"] = json!(p);
    }
    json!({
        "version": "1", "triggerSource": source, "region": "us-east-1",
        "userPoolId": POOL, "userName": "logscan-user",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {"type": "customSMSSenderRequestV1", "code": code,
                    "clientMetadata": {"k": "v"}, "userAttributes": attributes}
    })
}

#[tokio::test]
async fn a_full_run_logs_no_code_password_or_phone_number() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(lambda_host::filter_for(LevelFilter::TRACE))
        .with_writer(move || writer.clone())
        .init();

    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let deps = Deps {
        decryptor: EsdkDecryptor::with_kms(kms.clone(), &key_arn)
            .await
            .unwrap(),
        sender: SnsSender::new(aws_sdk_sns::Client::new(&sdk), SenderIdentity::default()),
        messages: Messages::default(),
        gate: send_limits::SendGate::<send_limits::MemoryLimiter>::new(Default::default(), None),
        contact_guard: None,
    };
    let keyring = kms_keyring(kms.clone(), &key_arn).await.unwrap();
    let encrypt = |plaintext: &'static str, pool: &'static str| {
        let keyring = keyring.clone();
        async move {
            encode_code(
                &encrypt_like_cognito(&keyring, plaintext, pool, false)
                    .await
                    .unwrap(),
            )
        }
    };

    // Secrets and numbers unlikely to appear by chance in a log.
    let phone = "+14255550187";
    let odd_phone = "+44 7700 900461"; // not E.164: refused, must still be masked
    let codes = [
        ("CustomSMSSender_SignUp", "839217"),
        ("CustomSMSSender_ResendCode", "839218"),
        ("CustomSMSSender_ForgotPassword", "839219"),
        ("CustomSMSSender_UpdateUserAttribute", "839220"),
        ("CustomSMSSender_VerifyUserAttribute", "839221"),
        ("CustomSMSSender_Authentication", "839222"),
    ];
    let password_escaped = "Zq&lt;7Vt&gt;Wm&amp;9K";
    let password = "Zq<7Vt>Wm&9K";

    let mut outcomes = Vec::new();
    for (source, code) in codes {
        let c = encrypt(code, POOL).await;
        outcomes.push(
            custom_sms_sender::handle(&deps, event(source, Some(phone), json!(c)))
                .await
                .is_ok(),
        );
    }
    let c = encrypt(password_escaped, POOL).await;
    outcomes.push(
        custom_sms_sender::handle(
            &deps,
            event("CustomSMSSender_AdminCreateUser", Some(phone), json!(c)),
        )
        .await
        .is_ok(),
    );
    outcomes.push(
        custom_sms_sender::handle(
            &deps,
            event(
                "CustomSMSSender_AccountTakeOverNotification",
                Some(phone),
                Value::Null,
            ),
        )
        .await
        .is_ok(),
    );
    // Refusals: each logs its reason.
    let c = encrypt("839223", "us-east-1_NotOurPool").await;
    outcomes.push(
        custom_sms_sender::handle(
            &deps,
            event("CustomSMSSender_Authentication", Some(phone), json!(c)),
        )
        .await
        .is_ok(),
    );
    let c = encrypt("839224", POOL).await;
    outcomes.push(
        custom_sms_sender::handle(
            &deps,
            event("CustomSMSSender_Authentication", Some(odd_phone), json!(c)),
        )
        .await
        .is_ok(),
    );
    outcomes.push(
        custom_sms_sender::handle(
            &deps,
            event("CustomSMSSender_Authentication", None, json!(c)),
        )
        .await
        .is_ok(),
    );
    outcomes.push(
        custom_sms_sender::handle(
            &deps,
            event("CustomSMSSender_SignUp", Some(phone), json!("@@bad@@")),
        )
        .await
        .is_ok(),
    );
    assert_eq!(
        outcomes,
        [
            true, true, true, true, true, true, true, true, false, false, false, false
        ],
        "eight sent, four refused"
    );

    let logs = capture.text();
    // The capture works and saw the run: masked numbers and reasons are there.
    assert!(
        logs.contains("+1******0187"),
        "masked phone missing:\n{logs}"
    );
    assert!(
        logs.contains("WrongUserPool"),
        "refusal reason missing:\n{logs}"
    );
    assert!(logs.contains("InvalidPhoneNumber"), "{logs}");
    assert_eq!(logs.matches("SMS sent").count(), 8, "{logs}");

    let mut forbidden: Vec<String> = codes.iter().map(|(_, c)| (*c).to_owned()).collect();
    forbidden.extend(
        [
            "839223",
            "839224",
            password,
            password_escaped,
            "Zq<7Vt>",
            "Zq&lt;7Vt",
        ]
        .map(String::from),
    );
    forbidden.extend([
        phone.to_owned(),
        phone.trim_start_matches('+').to_owned(),
        "%2B14255550187".to_owned(),
    ]);
    forbidden.extend([
        odd_phone.to_owned(),
        "7700 900461".to_owned(),
        "447700900461".to_owned(),
    ]);
    for needle in &forbidden {
        for line in logs.lines() {
            assert!(
                !line.contains(needle.as_str()),
                "a log line contains {needle:?}:\n{line}"
            );
        }
    }
}
