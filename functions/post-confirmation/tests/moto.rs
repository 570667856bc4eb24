//! The handler with the real SDK adapter against moto's server over HTTP
//! (`MOTO_ENDPOINT`, started by `scripts/test`): users created in moto, the
//! result read back with AdminGetUser; and the worst case when the endpoint
//! is unreachable, which must end inside the sync-trigger budget.

use std::time::{Duration, Instant};

use auth_policy::MfaConfig;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::AttributeType;
use cognito_admin::CognitoAdmin;
use serde_json::{Value, json};

async fn client() -> Client {
    Client::new(&harness::moto::sdk_config().await)
}

use harness::moto::new_pool;

async fn new_user(client: &Client, pool: &str, username: &str, attrs: &Value) {
    let mut req = client
        .admin_create_user()
        .user_pool_id(pool)
        .username(username);
    for (k, v) in attrs.as_object().unwrap() {
        req = req.user_attributes(
            AttributeType::builder()
                .name(k)
                .value(v.as_str().unwrap())
                .build()
                .unwrap(),
        );
    }
    req.send().await.expect("AdminCreateUser in moto");
}

fn event(pool: &str, user: &str, source: &str, attrs: &Value) -> Value {
    json!({
        "version": "1", "region": harness::moto::REGION, "userPoolId": pool, "userName": user,
        "callerContext": {"clientId": "c"}, "triggerSource": source,
        "request": {"userAttributes": attrs}, "response": {}
    })
}

async fn mfa_of(client: &Client, pool: &str, user: &str) -> (Vec<String>, String) {
    let out = client
        .admin_get_user()
        .user_pool_id(pool)
        .username(user)
        .send()
        .await
        .expect("AdminGetUser");
    let mut enabled = out.user_mfa_setting_list().to_vec();
    enabled.sort();
    (
        enabled,
        out.preferred_mfa_setting().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn every_preference_leaves_the_settings_the_policy_says() {
    let client = client().await;
    let pool = new_pool(&client, "post-confirmation").await;
    let admin = CognitoAdmin::new(client.clone());
    let config = MfaConfig::default();
    let sms = vec!["SMS_MFA".to_owned()];
    let cases: [(&str, Value, &str, Vec<String>, &str); 6] = [
        (
            "sms",
            json!({"phone_number": "+14155550123", "custom:mfa_preference": "SMS"}),
            "PostConfirmation_ConfirmSignUp",
            sms.clone(),
            "SMS_MFA",
        ),
        (
            "default",
            json!({"phone_number": "+14155550124"}),
            "PostConfirmation_ConfirmSignUp",
            sms.clone(),
            "SMS_MFA",
        ),
        (
            "totp-phone",
            json!({"phone_number": "+14155550125", "custom:mfa_preference": "TOTP"}),
            "PostConfirmation_ConfirmSignUp",
            sms.clone(),
            "",
        ),
        (
            "totp-nophone",
            json!({"email": "t@example.com", "custom:mfa_preference": "TOTP"}),
            "PostConfirmation_ConfirmSignUp",
            vec![],
            "",
        ),
        (
            "nomfa",
            json!({"phone_number": "+14155550126", "custom:mfa_preference": "NOMFA"}),
            "PostConfirmation_ConfirmSignUp",
            vec![],
            "",
        ),
        (
            "reset",
            json!({"phone_number": "+14155550127", "custom:mfa_preference": "SMS"}),
            "PostConfirmation_ConfirmForgotPassword",
            vec![],
            "",
        ),
    ];
    for (user, attrs, source, enabled, preferred) in cases {
        new_user(&client, &pool, user, &attrs).await;
        let e = event(&pool, user, source, &attrs);
        let out = post_confirmation::handle(&config, &admin, e.clone())
            .await
            .unwrap_or_else(|err| panic!("{user}: {err}"));
        assert_eq!(out["userName"], user);
        assert_eq!(
            mfa_of(&client, &pool, user).await,
            (enabled.clone(), preferred.to_owned()),
            "{user}"
        );
        // Cognito retries a slow trigger: a second run changes nothing.
        post_confirmation::handle(&config, &admin, e).await.unwrap();
        assert_eq!(
            mfa_of(&client, &pool, user).await,
            (enabled, preferred.to_owned()),
            "{user} (again)"
        );
    }
}

#[tokio::test]
async fn a_user_missing_from_the_pool_is_the_lambda_error() {
    let client = client().await;
    let pool = new_pool(&client, "post-confirmation-missing").await;
    let admin = CognitoAdmin::new(client);
    let attrs = json!({"phone_number": "+14155550123"});
    let e = post_confirmation::handle(
        &MfaConfig::default(),
        &admin,
        event(&pool, "ghost", "PostConfirmation_ConfirmSignUp", &attrs),
    )
    .await
    .unwrap_err();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "UserNotFound");
    assert!(
        d.error_message.contains("apply-policy ghost"),
        "{}",
        d.error_message
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_within_the_sync_trigger_budget() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sdk = harness::moto::sdk_config_at(
        &format!("http://127.0.0.1:{port}"),
        sdk_config::Budget::SYNC_TRIGGER,
    )
    .await;
    let admin = CognitoAdmin::new(Client::new(&sdk));
    let attrs = json!({"phone_number": "+14155550123"});
    let started = Instant::now();
    let e = post_confirmation::handle(
        &MfaConfig::default(),
        &admin,
        event("us-east-1_x", "u", "PostConfirmation_ConfirmSignUp", &attrs),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "CognitoUnreachable", "{}", d.error_message);
    assert!(
        took < sdk_config::Budget::SYNC_TRIGGER.operation + Duration::from_millis(300),
        "took {took:?}"
    );
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_cut_off_by_the_operation_timeout() {
    // Accepts connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let sdk = harness::moto::sdk_config_at(
        &format!("http://127.0.0.1:{port}"),
        sdk_config::Budget::SYNC_TRIGGER,
    )
    .await;
    let admin = CognitoAdmin::new(Client::new(&sdk));
    let attrs = json!({"phone_number": "+14155550123"});
    let started = Instant::now();
    let e = post_confirmation::handle(
        &MfaConfig::default(),
        &admin,
        event("us-east-1_x", "u", "PostConfirmation_ConfirmSignUp", &attrs),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    let d = lambda_runtime::Diagnostic::from(e);
    assert_eq!(d.error_type, "CognitoUnreachable", "{}", d.error_message);
    let budget = sdk_config::Budget::SYNC_TRIGGER.operation;
    assert!(
        took >= sdk_config::Budget::SYNC_TRIGGER.attempt
            && took < budget + Duration::from_millis(300),
        "took {took:?}, budget {budget:?}"
    );
    drop(silent);
}
