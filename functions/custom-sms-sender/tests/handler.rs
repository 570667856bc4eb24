//! The handler's refusals that need no AWS: the development keyring and the
//! in-memory outbox stand in for KMS and SNS.

use code_decrypt::{encode_code, encrypt_like_cognito};
use custom_sms_sender::{Deps, SenderError};
use serde_json::{Value, json};
use sms_delivery::Outbox;
use sms_messages::Messages;

const POOL: &str = "us-east-1_Handler01";

use harness::moto::LogCapture as Capture;

async fn deps() -> Deps<code_decrypt::EsdkDecryptor, Outbox, send_limits::MemoryLimiter> {
    Deps {
        decryptor: dev_keyring::dev_decryptor().await.unwrap(),
        sender: Outbox::new(),
        messages: Messages::default(),
        gate: send_limits::SendGate::new(Default::default(), None),
        contact_guard: None,
    }
}

async fn code(plaintext: &str) -> String {
    let keyring = dev_keyring::dev_keyring().await.unwrap();
    encode_code(
        &encrypt_like_cognito(&keyring, plaintext, POOL, false)
            .await
            .unwrap(),
    )
}

fn event(source: &str, user: &str, code: Value) -> Value {
    json!({
        "version": "1", "triggerSource": source, "region": "us-east-1",
        "userPoolId": POOL, "userName": user,
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {"type": "customSMSSenderRequestV1", "code": code,
                    "userAttributes": {"phone_number": "+14155550177", "locale": "en"}}
    })
}

#[tokio::test(flavor = "current_thread")]
async fn a_malformed_event_is_refused_and_its_reason_logged() {
    let deps = deps().await;
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut bad = event("CustomSMSSender_SignUp", "alice", json!("AAAA"));
    bad["request"]["userAttributes"] = json!("+14155550177");
    let e = custom_sms_sender::handle(&deps, bad).await.unwrap_err();
    assert_eq!(e.error_type(), "InvalidEvent", "{e}");
    assert!(!e.to_string().contains("4155550177"), "{e}");

    let logged = logs.text();
    assert!(
        logged.contains("SMS not sent") && logged.contains("InvalidEvent"),
        "the refusal is not logged: {logged}"
    );
    assert!(!logged.contains("4155550177"), "{logged}");
    assert!(deps.sender.messages().is_empty());
}

#[tokio::test]
async fn an_event_without_user_pool_is_refused_before_decrypting() {
    let deps = deps().await;
    let mut e = event(
        "CustomSMSSender_Authentication",
        "alice",
        json!(code("402918").await),
    );
    e.as_object_mut().unwrap().remove("userPoolId");
    let err = custom_sms_sender::handle(&deps, e).await.unwrap_err();
    assert!(
        matches!(
            err,
            SenderError::MissingField {
                field: "userPoolId"
            }
        ),
        "{err}"
    );
    assert!(deps.sender.messages().is_empty());
}

#[tokio::test]
async fn an_invitation_without_username_is_refused() {
    let deps = deps().await;
    let e = event(
        "CustomSMSSender_AdminCreateUser",
        " ",
        json!(code("Tmp&lt;9x").await),
    );
    let err = custom_sms_sender::handle(&deps, e).await.unwrap_err();
    assert!(
        matches!(err, SenderError::MissingField { field: "userName" }),
        "{err}"
    );
    assert!(deps.sender.messages().is_empty());

    // The same invitation with a username goes out, naming it, with the
    // temporary password unescaped.
    let e = event(
        "CustomSMSSender_AdminCreateUser",
        "carol",
        json!(code("Tmp&lt;9x").await),
    );
    custom_sms_sender::handle(&deps, e).await.unwrap();
    let sent = deps.sender.messages();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].text.contains("carol") && sent[0].text.contains("Tmp<9x"),
        "{}",
        sent[0].text
    );
}
