//! The handler against the in-memory user pool: what each trigger source
//! and preference leaves behind, idempotence, and the failure policy.

use auth_policy::MfaConfig;
use cognito_admin::{AdminError, FakeUserPool, MfaFactor, MfaState};
use post_confirmation::{PostConfirmationError, handle};
use serde_json::{Value, json};

const POOL: &str = "eu-west-1_Ab12Cd34E";
const USER: &str = "2e554b8d-6a8f-5424-a705-5381eddff554";

fn event(source: &str, attrs: Value) -> Value {
    json!({
        "version": "1",
        "region": "eu-west-1",
        "userPoolId": POOL,
        "userName": USER,
        "callerContext": {"awsSdkVersion": "aws-sdk-js-3.529.0", "clientId": "4tq7mcb5a1example0n1h2p3q4r"},
        "triggerSource": source,
        "request": {"userAttributes": attrs},
        "response": {}
    })
}

fn pool_for(attrs: &Value) -> FakeUserPool {
    let pool = FakeUserPool::new();
    let pairs: Vec<(String, String)> = attrs
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    pool.add_user(
        POOL,
        USER,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    pool
}

async fn run(
    config: &MfaConfig,
    source: &str,
    attrs: Value,
) -> (FakeUserPool, Result<Value, PostConfirmationError>) {
    let pool = pool_for(&attrs);
    let out = handle(config, &pool, event(source, attrs)).await;
    (pool, out)
}

fn mfa(pool: &FakeUserPool) -> MfaState {
    pool.user(POOL, USER).unwrap().mfa
}

fn cfg(pairs: &[(&str, &str)]) -> MfaConfig {
    MfaConfig::from_source(pairs).unwrap()
}

#[tokio::test]
async fn sms_is_enabled_and_preferred() {
    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmSignUp",
        json!({"sub": USER, "phone_number": "+14155550123", "custom:mfa_preference": "SMS"}),
    )
    .await;
    let returned = out.unwrap();
    assert_eq!(returned["userName"], USER, "the event comes back");
    assert_eq!(
        mfa(&pool),
        MfaState::new(vec![MfaFactor::Sms], Some(MfaFactor::Sms))
    );
    assert_eq!(pool.calls(), vec!["AdminSetUserMFAPreference"]);
}

#[tokio::test]
async fn totp_with_a_phone_gets_sms_as_a_non_preferred_factor() {
    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmSignUp",
        json!({"phone_number": "+819012345678", "custom:mfa_preference": "TOTP"}),
    )
    .await;
    out.unwrap();
    assert_eq!(mfa(&pool), MfaState::new(vec![MfaFactor::Sms], None));
}

#[tokio::test]
async fn totp_without_phone_or_in_a_totp_only_pool_does_nothing() {
    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmSignUp",
        json!({"email": "a@example.com", "custom:mfa_preference": "TOTP"}),
    )
    .await;
    out.unwrap();
    assert!(pool.calls().is_empty());
    let totp_only = cfg(&[("MFA_METHODS", "TOTP"), ("MFA_DEFAULT_PREFERENCE", "TOTP")]);
    let (pool, out) = run(
        &totp_only,
        "PostConfirmation_ConfirmSignUp",
        json!({"phone_number": "+14155550123"}),
    )
    .await;
    out.unwrap();
    assert!(pool.calls().is_empty());
    assert_eq!(mfa(&pool), MfaState::default());
}

#[tokio::test]
async fn nomfa_off_forgot_password_and_federated_users_do_nothing() {
    let phone = json!({"phone_number": "+14155550123", "custom:mfa_preference": "NOMFA"});
    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmSignUp",
        phone,
    )
    .await;
    out.unwrap();
    assert!(pool.calls().is_empty());

    let off = cfg(&[("MFA_CONFIGURATION", "OFF")]);
    let sms = json!({"phone_number": "+14155550123", "custom:mfa_preference": "SMS"});
    let (pool, out) = run(&off, "PostConfirmation_ConfirmSignUp", sms.clone()).await;
    out.unwrap();
    assert!(pool.calls().is_empty());

    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmForgotPassword",
        sms,
    )
    .await;
    let returned = out.unwrap();
    assert_eq!(
        returned["triggerSource"],
        "PostConfirmation_ConfirmForgotPassword"
    );
    assert!(pool.calls().is_empty());

    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmSignUp",
        json!({"phone_number": "+14155550123", "cognito:user_status": "EXTERNAL_PROVIDER"}),
    )
    .await;
    out.unwrap();
    assert!(pool.calls().is_empty());
}

#[tokio::test]
async fn sms_without_phone_is_a_warning_not_a_failure() {
    let (pool, out) = run(
        &MfaConfig::default(),
        "PostConfirmation_ConfirmSignUp",
        json!({"email": "a@example.com", "custom:mfa_preference": "SMS"}),
    )
    .await;
    out.unwrap();
    assert!(pool.calls().is_empty(), "checked before any call");
}

#[tokio::test]
async fn cognito_refusing_the_phone_is_a_warning_too() {
    // The event has a phone, but the pool's user has none (Cognito's
    // InvalidParameterException): the confirmation is not failed.
    let pool = FakeUserPool::new();
    pool.add_user(POOL, USER, []);
    let out = handle(
        &MfaConfig::default(),
        &pool,
        event(
            "PostConfirmation_ConfirmSignUp",
            json!({"phone_number": "+14155550123"}),
        ),
    )
    .await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(pool.calls(), vec!["AdminSetUserMFAPreference"]);
}

#[tokio::test]
async fn running_twice_is_harmless() {
    let attrs = json!({"phone_number": "+14155550123", "custom:mfa_preference": "SMS"});
    let pool = pool_for(&attrs);
    let e = event("PostConfirmation_ConfirmSignUp", attrs);
    let first = handle(&MfaConfig::default(), &pool, e.clone())
        .await
        .unwrap();
    let after_first = mfa(&pool);
    let second = handle(&MfaConfig::default(), &pool, e).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(mfa(&pool), after_first);
}

#[tokio::test]
async fn a_missing_user_is_the_lambda_error_with_the_repair_command() {
    let pool = FakeUserPool::new();
    pool.add_pool(POOL);
    let e = handle(
        &MfaConfig::default(),
        &pool,
        event(
            "PostConfirmation_ConfirmSignUp",
            json!({"phone_number": "+14155550123"}),
        ),
    )
    .await
    .unwrap_err();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "UserNotFound");
    assert!(
        d.error_message.contains(&format!(
            "mfa-admin --user-pool-id {POOL} apply-policy {USER}"
        )),
        "{}",
        d.error_message
    );
}

#[tokio::test]
async fn an_aws_error_after_retries_is_the_lambda_error() {
    let attrs = json!({"phone_number": "+14155550123"});
    let pool = pool_for(&attrs);
    pool.fail_next(AdminError::Unreachable {
        operation: "AdminSetUserMFAPreference",
        reason: "timed out".into(),
    });
    let e = handle(
        &MfaConfig::default(),
        &pool,
        event("PostConfirmation_ConfirmSignUp", attrs),
    )
    .await
    .unwrap_err();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "CognitoUnreachable");
    assert!(
        d.error_message.contains("timed out") && d.error_message.contains("The user is confirmed"),
        "{}",
        d.error_message
    );
    assert_eq!(mfa(&pool), MfaState::default());
}

#[tokio::test]
async fn bad_events_are_invalid_events() {
    let pool = FakeUserPool::new();
    for bad in [
        json!([]),
        json!({"triggerSource": "PostConfirmation_Something", "request": {"userAttributes": {}}}),
        json!({"triggerSource": "PostConfirmation_ConfirmSignUp", "request": {"userAttributes": {"phone_number": ["x"]}}}),
    ] {
        let e = handle(&MfaConfig::default(), &pool, bad).await.unwrap_err();
        assert_eq!(
            lambda_runtime::Diagnostic::from(e).error_type,
            "InvalidEvent"
        );
    }
    // An acting event without userName cannot name the user.
    let mut e = event(
        "PostConfirmation_ConfirmSignUp",
        json!({"phone_number": "+14155550123"}),
    );
    e.as_object_mut().unwrap().remove("userName");
    let err = handle(&MfaConfig::default(), &pool, e).await.unwrap_err();
    assert!(err.to_string().contains("userName"), "{err}");
    assert!(pool.calls().is_empty());
}
