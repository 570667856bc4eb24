//! No log line holds a full phone number or email: every path of the
//! handler (acting, skipping, warning, failing) runs with personal data in
//! the event, at TRACE, and the captured output is searched for it.

use auth_policy::MfaConfig;
use cognito_admin::{AdminError, FakeUserPool};
use serde_json::{Value, json};

const POOL: &str = "eu-west-1_Ab12Cd34E";
const PHONE: &str = "+14155550123";
const EMAIL: &str = "jane.doe@example.com";

use harness::moto::LogCapture as Captured;

fn event(user: &str, source: &str, attrs: Value) -> Value {
    json!({
        "version": "1", "region": "eu-west-1", "userPoolId": POOL, "userName": user,
        "callerContext": {"clientId": "c"}, "triggerSource": source,
        "request": {"userAttributes": attrs}, "response": {}
    })
}

#[tokio::test]
async fn no_log_line_holds_a_full_phone_or_email() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let both = json!({"email": EMAIL, "phone_number": PHONE, "custom:mfa_preference": "SMS"});
    let config = MfaConfig::default();
    // Usernames that are the email or the phone (pools that allow it).
    for user in [EMAIL, PHONE, "u-1"] {
        let pool = FakeUserPool::new();
        pool.add_user(POOL, user, [("email", EMAIL), ("phone_number", PHONE)]);
        for source in [
            "PostConfirmation_ConfirmSignUp",
            "PostConfirmation_ConfirmForgotPassword",
        ] {
            let _ =
                post_confirmation::handle(&config, &pool, event(user, source, both.clone())).await;
        }
        // SMS wanted, no phone: the warning names the email.
        let _ = post_confirmation::handle(
            &config,
            &pool,
            event(
                user,
                "PostConfirmation_ConfirmSignUp",
                json!({"email": EMAIL}),
            ),
        )
        .await;
        // Cognito refuses: warning; then an AWS failure: error.
        let empty = FakeUserPool::new();
        empty.add_user(POOL, user, []);
        let _ = post_confirmation::handle(
            &config,
            &empty,
            event(user, "PostConfirmation_ConfirmSignUp", both.clone()),
        )
        .await;
        pool.fail_next(AdminError::Unreachable {
            operation: "AdminSetUserMFAPreference",
            reason: "timed out".into(),
        });
        let r = post_confirmation::handle(
            &config,
            &pool,
            event(user, "PostConfirmation_ConfirmSignUp", both.clone()),
        )
        .await;
        let message = r.unwrap_err().to_string();
        assert!(
            !message.contains(PHONE) && !message.contains(EMAIL),
            "{message}"
        );
        // A missing user.
        let r = post_confirmation::handle(
            &config,
            &FakeUserPool::new(),
            event(user, "PostConfirmation_ConfirmSignUp", both.clone()),
        )
        .await;
        let message = r.unwrap_err().to_string();
        assert!(
            !message.contains(PHONE) && !message.contains(EMAIL),
            "{message}"
        );
    }

    let logs = captured.text();
    let lines = logs.lines().count();
    assert!(
        lines >= 15,
        "every path logged something ({lines} lines):\n{logs}"
    );
    assert!(
        !logs.contains(PHONE),
        "a full phone number in the logs:\n{logs}"
    );
    assert!(
        !logs.contains("4155550123"),
        "the phone's digits in the logs:\n{logs}"
    );
    assert!(!logs.contains(EMAIL), "a full email in the logs:\n{logs}");
    assert!(
        !logs.contains("jane.doe"),
        "the email's local part in the logs:\n{logs}"
    );
    // The masked forms are there: the logs still say which phone and email.
    assert!(logs.contains("+1******0123"), "{logs}");
    assert!(logs.contains("j***@example.com"), "{logs}");
}
