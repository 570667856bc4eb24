//! No log line carries a one-time code, a temporary password or a full
//! email address. A full run against moto (every trigger source, sent,
//! refused and failed, KMS, SES v2 and DynamoDB over HTTP) is logged at TRACE
//! through the same filter the Lambda binary installs
//! (`lambda_host::filter_for`, which caps the SDK and runtime crates that
//! would log bodies), captured, and scanned for every secret and address the
//! run used.
//!
//! One test in its own binary: the capturing subscriber is process-global,
//! so the SDK's and the Encryption SDK's threads log into it too.

use code_decrypt::{EsdkDecryptor, encode_code, encrypt_like_cognito, kms_keyring};
use custom_email_sender::Deps;
use email_delivery::{SesSender, SesSettings};
use email_messages::Templates;
use lambda_runtime::tracing::subscriber::filter::LevelFilter;
use send_limits::{DynamoLimiter, LimitSpec, Limits, SendGate};
use serde_json::{Value, json};

const POOL: &str = "us-east-1_MailLogScan";

use harness::moto::LogCapture as Capture;

fn event(source: &str, email: Option<&str>, user: &str, code: Value) -> Value {
    let mut attributes = json!({"locale": "en", "sub": "c0ffee00-0000-4000-8000-000000000002"});
    if let Some(e) = email {
        attributes["email"] = json!(e);
    }
    json!({
        "version": "1", "triggerSource": source, "region": "us-east-1",
        "userPoolId": POOL, "userName": user,
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {"type": "customEmailSenderRequestV1", "code": code,
                    "clientMetadata": {"k": "v"}, "userAttributes": attributes}
    })
}

#[tokio::test]
async fn a_full_run_logs_no_code_password_or_address() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(lambda_host::filter_for(LevelFilter::TRACE))
        .with_writer(move || writer.clone())
        .init();

    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let from = format!("logscan-sender-{}@mail.example.net", std::process::id());
    aws_sdk_sesv2::Client::new(
        &harness::moto::sdk_config_at(&harness::moto::endpoint(), sdk_config::Budget::INTERACTIVE)
            .await,
    )
    .create_email_identity()
    .email_identity(&from)
    .send()
    .await
    .unwrap();
    let table =
        harness::moto::new_limits_table(&harness::moto::dynamodb_client().await, "email-logscan")
            .await;
    let ddb_sdk = harness::moto::sdk_config_at(
        &harness::moto::dynamodb_endpoint(),
        sdk_config::Budget::SYNC_TRIGGER,
    )
    .await;
    let limiter = DynamoLimiter::load(
        &ddb_sdk,
        Limits {
            email_per_address: LimitSpec::parse("8/1h"),
            table: Some(table),
            ..Limits::default()
        },
        &[(
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        )][..],
    )
    .await
    .unwrap();
    let settings = SesSettings::from_source(&[("EMAIL_FROM", from.as_str())][..]).unwrap();
    let deps = Deps {
        decryptor: EsdkDecryptor::with_kms(kms.clone(), &key_arn)
            .await
            .unwrap(),
        sender: SesSender::new(aws_sdk_sesv2::Client::new(&sdk), settings),
        templates: Templates::built_in().unwrap(),
        gate: SendGate::new(Default::default(), limiter),
        contact_guard: None,
    };
    let unverified = Deps {
        decryptor: EsdkDecryptor::with_kms(kms.clone(), &key_arn)
            .await
            .unwrap(),
        sender: SesSender::new(
            aws_sdk_sesv2::Client::new(&sdk),
            SesSettings::from_source(
                &[("EMAIL_FROM", "nobody.verified.this@mail.example.net")][..],
            )
            .unwrap(),
        ),
        templates: Templates::built_in().unwrap(),
        gate: SendGate::<send_limits::MemoryLimiter>::new(Default::default(), None),
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

    // Secrets and addresses unlikely to appear by chance in a log.
    let email = "quentin.logscan@example.com";
    // The failures go to another address, with a budget of its own.
    let email2 = "quentin.logscan+fails@example.com";
    let username = "quentin.logscan@example.com"; // pools that sign in by email
    let odd = "quentin logscan@example.com"; // not an address: refused, masked
    let codes = [
        ("CustomEmailSender_SignUp", "839317"),
        ("CustomEmailSender_ResendCode", "839318"),
        ("CustomEmailSender_ForgotPassword", "839319"),
        ("CustomEmailSender_UpdateUserAttribute", "839320"),
        ("CustomEmailSender_VerifyUserAttribute", "839321"),
        ("CustomEmailSender_Authentication", "839322"),
    ];
    let password_escaped = "Zq&lt;7Vt&gt;Wm&amp;9K";
    let password = "Zq<7Vt>Wm&9K";

    let mut outcomes = Vec::new();
    for (source, code) in codes {
        let c = encrypt(code, POOL).await;
        outcomes.push(deps_outcome(&deps, event(source, Some(email), username, json!(c))).await);
    }
    let c = encrypt(password_escaped, POOL).await;
    outcomes.push(
        deps_outcome(
            &deps,
            event(
                "CustomEmailSender_AdminCreateUser",
                Some(email),
                username,
                json!(c),
            ),
        )
        .await,
    );
    outcomes.push(
        deps_outcome(
            &deps,
            event(
                "CustomEmailSender_AccountTakeOverNotification",
                Some(email),
                username,
                Value::Null,
            ),
        )
        .await,
    );
    // Over the limit of eight: settled as refused, logged.
    let c = encrypt("839325", POOL).await;
    outcomes.push(
        deps_outcome(
            &deps,
            event(
                "CustomEmailSender_Authentication",
                Some(email),
                username,
                json!(c),
            ),
        )
        .await,
    );
    // Failures: each logs its reason.
    let c = encrypt("839323", "us-east-1_NotOurPool").await;
    outcomes.push(
        deps_outcome(
            &deps,
            event(
                "CustomEmailSender_Authentication",
                Some(email2),
                username,
                json!(c),
            ),
        )
        .await,
    );
    let c = encrypt("839324", POOL).await;
    outcomes.push(
        deps_outcome(
            &deps,
            event(
                "CustomEmailSender_Authentication",
                Some(odd),
                username,
                json!(c),
            ),
        )
        .await,
    );
    outcomes.push(
        deps_outcome(
            &deps,
            event("CustomEmailSender_Authentication", None, username, json!(c)),
        )
        .await,
    );
    outcomes.push(
        deps_outcome(
            &deps,
            event(
                "CustomEmailSender_SignUp",
                Some(email2),
                username,
                json!("@@bad@@"),
            ),
        )
        .await,
    );
    let c = encrypt("839326", POOL).await;
    outcomes.push(
        deps_outcome(
            &unverified,
            event(
                "CustomEmailSender_Authentication",
                Some(email),
                username,
                json!(c),
            ),
        )
        .await,
    );
    assert_eq!(
        outcomes,
        [
            "sent",
            "sent",
            "sent",
            "sent",
            "sent",
            "sent",
            "sent",
            "sent",
            "refused",
            "WrongUserPool",
            "InvalidEmailAddress",
            "NoEmailAddress",
            "InvalidCode",
            "MessageRejected"
        ],
        "eight sent, one refused, five failed"
    );

    let logs = capture.text();
    // The capture works and saw the run: masked addresses and reasons are there.
    assert!(
        logs.contains("q***@example.com"),
        "masked address missing:\n{logs}"
    );
    for reason in [
        "WrongUserPool",
        "InvalidEmailAddress",
        "MessageRejected",
        "RateLimited",
    ] {
        assert!(logs.contains(reason), "{reason} missing:\n{logs}");
    }
    assert_eq!(logs.matches("email sent").count(), 8, "{logs}");

    let mut forbidden: Vec<String> = codes.iter().map(|(_, c)| (*c).to_owned()).collect();
    forbidden.extend(
        [
            "839323",
            "839324",
            "839325",
            "839326",
            password,
            password_escaped,
            "Zq<7Vt>",
            "Zq&lt;7Vt",
            "Zq&amp;lt;",
        ]
        .map(String::from),
    );
    forbidden.extend(
        [
            email,
            email2,
            "quentin.logscan",
            "quentin%2Elogscan",
            "quentin%40",
            odd,
            "quentin logscan",
            "nobody.verified.this",
            &from,
        ]
        .map(String::from),
    );
    for needle in &forbidden {
        for line in logs.lines() {
            assert!(
                !line.contains(needle.as_str()),
                "a log line contains {needle:?}:\n{line}"
            );
        }
    }
}

/// `sent`/`duplicate`/`refused` for a settled event, the error type for a
/// failure.
async fn deps_outcome<D, S, L>(deps: &Deps<D, S, L>, event: Value) -> String
where
    D: code_decrypt::CodeDecryptor,
    S: email_delivery::EmailSender,
    L: send_limits::Limiter,
{
    match custom_email_sender::handle(deps, event).await {
        Ok(v) => v["response"]["outcome"].as_str().unwrap_or("?").to_owned(),
        Err(e) => e.error_type().to_owned(),
    }
}
