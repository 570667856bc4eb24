//! The handler without AWS: the development keyring stands in for KMS, the
//! in-memory outbox for SES and the in-memory limiter for DynamoDB (the same
//! semantics, see send-limits). What moto can show is in `moto.rs`.

use code_decrypt::{encode_code, encrypt_like_cognito};
use custom_email_sender::{Deps, SenderError};
use email_delivery::{EmailError, Outbox};
use email_messages::Templates;
use send_limits::{LimitSpec, Limits, MemoryLimiter, SendGate};
use serde_json::{Value, json};

const POOL: &str = "us-east-1_MailHandler";

use harness::moto::LogCapture as Capture;

async fn deps(limits: Option<Limits>) -> Deps<code_decrypt::EsdkDecryptor, Outbox, MemoryLimiter> {
    Deps {
        decryptor: dev_keyring::dev_decryptor().await.unwrap(),
        sender: Outbox::new(),
        templates: Templates::built_in().unwrap(),
        gate: SendGate::new(Default::default(), limits.map(MemoryLimiter::new)),
        contact_guard: None,
    }
}

fn per_address(spec: &str) -> Limits {
    Limits {
        email_per_address: LimitSpec::parse(spec),
        table: Some("memory".into()),
        ..Limits::default()
    }
}

async fn code_for(plaintext: &str, pool: &str) -> String {
    let keyring = dev_keyring::dev_keyring().await.unwrap();
    encode_code(
        &encrypt_like_cognito(&keyring, plaintext, pool, false)
            .await
            .unwrap(),
    )
}

async fn code(plaintext: &str) -> String {
    code_for(plaintext, POOL).await
}

fn event(source: &str, user: &str, email: Option<&str>, code: Value) -> Value {
    let mut attributes = json!({"locale": "en", "email_verified": "false"});
    if let Some(e) = email {
        attributes["email"] = json!(e);
    }
    json!({
        "version": "1", "triggerSource": source, "region": "us-east-1",
        "userPoolId": POOL, "userName": user,
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {"type": "customEmailSenderRequestV1", "code": code,
                    "userAttributes": attributes}
    })
}

#[tokio::test(flavor = "current_thread")]
async fn a_malformed_event_is_refused_and_its_reason_logged() {
    let deps = deps(None).await;
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut bad = event("CustomEmailSender_SignUp", "alice", None, json!("AAAA"));
    bad["request"]["userAttributes"] = json!("alice.smith@example.com");
    let e = custom_email_sender::handle(&deps, bad).await.unwrap_err();
    assert_eq!(e.error_type(), "InvalidEvent", "{e}");
    assert!(!e.to_string().contains("alice.smith"), "{e}");

    // The SMS trigger's event is not this one's.
    let sms = event(
        "CustomSMSSender_SignUp",
        "alice",
        Some("alice.smith@example.com"),
        json!("AAAA"),
    );
    let e = custom_email_sender::handle(&deps, sms).await.unwrap_err();
    assert_eq!(e.error_type(), "InvalidEvent", "{e}");

    for not_an_event in [json!(null), json!([1]), json!("x"), json!({})] {
        let e = custom_email_sender::handle(&deps, not_an_event)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "InvalidEvent", "{e}");
    }

    let logged = logs.text();
    assert!(
        logged.contains("email not sent") && logged.contains("InvalidEvent"),
        "the refusal is not logged: {logged}"
    );
    assert!(!logged.contains("alice.smith"), "{logged}");
    assert!(deps.sender.emails().is_empty());
}

#[tokio::test]
async fn no_or_a_bad_email_attribute_is_a_clear_error() {
    let deps = deps(None).await;
    let c = code("402918").await;
    let e = custom_email_sender::handle(
        &deps,
        event("CustomEmailSender_SignUp", "u", None, json!(c)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "NoEmailAddress");
    assert_eq!(
        e.to_string(),
        "the user has no email attribute: nothing was sent"
    );
    let e = custom_email_sender::handle(
        &deps,
        event(
            "CustomEmailSender_SignUp",
            "u",
            Some("mallory@example.com, victim@example.org"),
            json!(c),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidEmailAddress");
    assert!(
        !e.to_string().contains("mallory@") && !e.to_string().contains("victim@"),
        "{e}"
    );
    assert!(deps.sender.emails().is_empty());
}

#[tokio::test]
async fn the_invitation_unescapes_the_password_and_escapes_it_again_in_html() {
    let deps = deps(None).await;
    let e = event(
        "CustomEmailSender_AdminCreateUser",
        " ",
        Some("carol@example.com"),
        json!(code("Tmp&lt;9x&amp;").await),
    );
    let err = custom_email_sender::handle(&deps, e).await.unwrap_err();
    assert!(
        matches!(err, SenderError::MissingField { field: "userName" }),
        "{err}"
    );
    assert!(deps.sender.emails().is_empty());

    let e = event(
        "CustomEmailSender_AdminCreateUser",
        "carol",
        Some("carol@example.com"),
        json!(code("Tmp&lt;9x&amp;").await),
    );
    let out = custom_email_sender::handle(&deps, e).await.unwrap();
    assert_eq!(out, json!({"response": {"outcome": "sent"}}));
    let sent = deps.sender.emails();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "carol@example.com");
    assert_eq!(sent[0].subject, "Your new account");
    assert!(
        sent[0].text.contains("Username: carol")
            && sent[0].text.contains("Temporary password: Tmp<9x&"),
        "{}",
        sent[0].text
    );
    assert!(
        sent[0].html.contains("Tmp&lt;9x&amp;") && !sent[0].html.contains("Tmp<9x"),
        "{}",
        sent[0].html
    );
}

#[tokio::test]
async fn the_account_takeover_notice_needs_no_code() {
    let deps = deps(None).await;
    let mut e = event(
        "CustomEmailSender_AccountTakeOverNotification",
        "u",
        Some("dave@example.com"),
        Value::Null,
    );
    e["request"]["userAttributes"]["locale"] = json!("ja-JP");
    custom_email_sender::handle(&deps, e).await.unwrap();
    let sent = deps.sender.emails();
    assert_eq!(sent[0].subject, "不審なサインインをブロックしました");

    // Every other source needs its code.
    let e = event(
        "CustomEmailSender_Authentication",
        "u",
        Some("dave@example.com"),
        Value::Null,
    );
    let err = custom_email_sender::handle(&deps, e).await.unwrap_err();
    assert_eq!(err.error_type(), "MissingCode");
}

#[tokio::test]
async fn a_rate_limited_send_is_settled_as_refused_and_counted_case_insensitively() {
    let deps = deps(Some(per_address("2/1h"))).await;
    let mut answers = Vec::new();
    for (i, address) in [
        "erin@example.com",
        "Erin@Example.com",
        "ERIN@EXAMPLE.COM",
        "erin@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        let c = code(&format!("{:06}", 500_000 + i)).await;
        answers.push(
            custom_email_sender::handle(
                &deps,
                event(
                    "CustomEmailSender_ResendCode",
                    &format!("user-{i}"),
                    Some(address),
                    json!(c),
                ),
            )
            .await
            .unwrap(),
        );
    }
    let outcomes: Vec<&str> = answers
        .iter()
        .map(|a| a["response"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["sent", "sent", "refused", "refused"]);
    assert_eq!(answers[2]["response"]["errorType"], "RateLimited");
    let reason = answers[2]["response"]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "email to E***@EXAMPLE.COM not sent: the per_address limit 2/1h (EMAIL_LIMIT_PER_ADDRESS) is reached"
    );
    assert_eq!(deps.sender.emails().len(), 2);
}

#[tokio::test]
async fn the_same_event_twice_sends_one_email() {
    let deps = deps(Some(per_address("10/1h"))).await;
    let e = event(
        "CustomEmailSender_SignUp",
        "frank",
        Some("frank@example.com"),
        json!(code("112233").await),
    );
    let first = custom_email_sender::handle(&deps, e.clone()).await.unwrap();
    let second = custom_email_sender::handle(&deps, e).await.unwrap();
    assert_eq!(first["response"]["outcome"], "sent");
    assert_eq!(second, json!({"response": {"outcome": "duplicate"}}));
    assert_eq!(deps.sender.emails().len(), 1);
}

#[tokio::test]
async fn without_the_limits_table_sign_up_fails_closed_and_sign_in_fails_open() {
    let deps = deps(Some(per_address("10/1h"))).await;
    deps.gate.limiter.as_ref().unwrap().set_unavailable(true);
    let e = event(
        "CustomEmailSender_SignUp",
        "gina",
        Some("gina@example.com"),
        json!(code("445566").await),
    );
    let err = custom_email_sender::handle(&deps, e).await.unwrap_err();
    assert_eq!(err.error_type(), "LimitsUnavailable", "{err}");
    assert!(
        err.to_string().contains("not sent without its limits")
            && err.to_string().contains("g***@example.com"),
        "{err}"
    );
    assert!(deps.sender.emails().is_empty());

    let e = event(
        "CustomEmailSender_Authentication",
        "gina",
        Some("gina@example.com"),
        json!(code("445567").await),
    );
    let out = custom_email_sender::handle(&deps, e).await.unwrap();
    assert_eq!(out["response"]["outcome"], "sent");
    assert_eq!(deps.sender.emails().len(), 1);
}

#[tokio::test]
async fn a_failed_send_is_an_error_and_its_retry_sends() {
    let deps = deps(Some(per_address("10/1h"))).await;
    deps.sender.fail_with(Some(EmailError::Throttled {
        masked: "h***@example.com".into(),
        code: "TooManyRequestsException".into(),
    }));
    let e = event(
        "CustomEmailSender_Authentication",
        "hank",
        Some("hank@example.com"),
        json!(code("778899").await),
    );
    let err = custom_email_sender::handle(&deps, e.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Throttled");
    // Lambda's retry of the same event is not taken for a duplicate.
    deps.sender.fail_with(None);
    let out = custom_email_sender::handle(&deps, e).await.unwrap();
    assert_eq!(out["response"]["outcome"], "sent");
    assert_eq!(deps.sender.emails().len(), 1);
}

#[tokio::test]
async fn a_code_for_another_pool_or_without_a_pool_is_refused_before_sending() {
    let deps = deps(None).await;
    let e = event(
        "CustomEmailSender_Authentication",
        "ivy",
        Some("ivy@example.com"),
        json!(code_for("284601", "us-east-1_SomeoneElse").await),
    );
    let err = custom_email_sender::handle(&deps, e).await.unwrap_err();
    assert_eq!(err.error_type(), "WrongUserPool");
    assert!(!err.to_string().contains("284601"), "{err}");

    let mut e = event(
        "CustomEmailSender_Authentication",
        "ivy",
        Some("ivy@example.com"),
        json!(code("284601").await),
    );
    e.as_object_mut().unwrap().remove("userPoolId");
    let err = custom_email_sender::handle(&deps, e).await.unwrap_err();
    assert!(
        matches!(
            err,
            SenderError::MissingField {
                field: "userPoolId"
            }
        ),
        "{err}"
    );
    let e = event(
        "CustomEmailSender_Authentication",
        "ivy",
        Some("ivy@example.com"),
        json!("%%%"),
    );
    let err = custom_email_sender::handle(&deps, e).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidCode");
    assert!(deps.sender.emails().is_empty());
}

/// The console's test event (boolean attribute values, `"response": {}`),
/// for the new address of an attribute change.
#[tokio::test]
async fn a_console_event_for_a_changed_address_goes_to_the_new_address() {
    let deps = deps(None).await;
    let e = json!({
        "version": "1", "triggerSource": "CustomEmailSender_UpdateUserAttribute",
        "region": "us-east-1", "userPoolId": POOL, "userName": "jo",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
        "request": {"type": "customEmailSenderRequestV1", "code": code("135790").await,
                    "clientMetadata": null,
                    "userAttributes": {"email": "jo.new@example.net", "email_verified": false, "locale": "ja"}},
        "response": {}
    });
    custom_email_sender::handle(&deps, e).await.unwrap();
    let sent = deps.sender.emails();
    assert_eq!(sent[0].to, "jo.new@example.net");
    assert_eq!(sent[0].subject, "新しいメールアドレスの確認");
    assert!(sent[0].text.contains("135790") && sent[0].html.contains("135790"));
}

/// Every sample under `events/custom-email-sender/` parses as the typed
/// event and survives a round trip (parse → serialize → parse).
#[test]
fn every_sample_event_round_trips_through_the_typed_event() {
    use lambda_host::events::custom_email_sender::{CustomEmailSenderEvent, TRIGGER};
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/custom-email-sender");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".expected.json") {
            continue;
        }
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let first: CustomEmailSenderEvent = lambda_host::events::parse_event(TRIGGER, value)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = lambda_host::events::to_value(&first).unwrap();
        let second: CustomEmailSenderEvent =
            lambda_host::events::parse_event(TRIGGER, json).unwrap();
        assert_eq!(first, second, "{name}");
        checked += 1;
    }
    assert!(checked >= 16, "{checked} samples");
}
