//! The `pre-authentication` binary under a Lambda Runtime API (our harness),
//! with moto's server as Cognito (`MOTO_ENDPOINT`, started by `scripts/test`)
//! behind a counting proxy, so each test sees how many requests the guard
//! made. `LAMBDA_BIN_DIR=target/release` runs the release binary instead of
//! this package's test build.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::Client;
use harness::fault_proxy::{Fault, FaultProxy, Plan};
use harness::moto;
use harness::runtime_api::{Answer, RuntimeApi};
use serde_json::{Value, json};

fn binary() -> PathBuf {
    match std::env::var_os("LAMBDA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join("pre-authentication"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_pre-authentication")),
    }
}

fn event(pool: &str, user: &str, attrs: Value, not_found: bool) -> Value {
    json!({
        "version": "1", "region": moto::REGION, "userPoolId": pool, "userName": user,
        "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "c"},
        "triggerSource": "PreAuthentication_Authentication",
        "request": {"userAttributes": attrs, "validationData": null, "userNotFound": not_found},
        "response": {}
    })
}

/// A proxy in front of moto that faults nothing and counts requests.
async fn counting_proxy() -> FaultProxy {
    FaultProxy::start(&moto::endpoint(), Plan::first(0, Fault::ServerError))
        .await
        .expect("proxy starts")
}

async fn cognito() -> Client {
    Client::new(&moto::sdk_config().await)
}

/// The path of the finding: an admin-created user (PostConfirmation never
/// fires for them), policy SMS, no native factor. After the guard, the user
/// has SMS MFA enabled and preferred, so Cognito challenges them even in
/// `USER_SRP_AUTH`. A TOTP chooser with a phone gets SMS as a fallback.
#[tokio::test(flavor = "current_thread")]
async fn an_admin_created_user_without_a_factor_gets_the_policys_factor() {
    let client = cognito().await;
    let pool = moto::new_pool(&client, "guard-admin-created").await;
    moto::new_user(
        &client,
        &pool,
        "kenji",
        &[("phone_number", "+819012345678")],
    )
    .await;
    moto::new_user(
        &client,
        &pool,
        "ana",
        &[
            ("phone_number", "+34600123456"),
            ("custom:mfa_preference", "TOTP"),
        ],
    )
    .await;
    assert_eq!(
        moto::mfa_of(&client, &pool, "kenji").await,
        (vec![], String::new())
    );

    let proxy = counting_proxy().await;
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&binary(), &moto::child_env_at(&proxy.url()))
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();

    let attrs =
        json!({"phone_number": "+819012345678", "cognito:user_status": "FORCE_CHANGE_PASSWORD"});
    let (answer, _) = f
        .invoke(&event(&pool, "kenji", attrs, false))
        .await
        .unwrap();
    assert!(!answer.is_error(), "{answer:?}");
    assert_eq!(
        moto::mfa_of(&client, &pool, "kenji").await,
        (vec!["SMS_MFA".to_owned()], "SMS_MFA".to_owned())
    );
    assert_eq!(proxy.requests(), 2, "one read, one write");

    let attrs = json!({"phone_number": "+34600123456", "custom:mfa_preference": "TOTP"});
    let (answer, _) = f.invoke(&event(&pool, "ana", attrs, false)).await.unwrap();
    assert!(!answer.is_error(), "{answer:?}");
    assert_eq!(
        moto::mfa_of(&client, &pool, "ana").await,
        (vec!["SMS_MFA".to_owned()], String::new()),
        "SMS enabled as the fallback, not preferred"
    );

    // Cognito retries a slow trigger: a second run reads, sees the factor,
    // and changes nothing.
    let before = proxy.requests();
    let attrs = json!({"phone_number": "+819012345678"});
    let (answer, _) = f
        .invoke(&event(&pool, "kenji", attrs, false))
        .await
        .unwrap();
    assert!(!answer.is_error(), "{answer:?}");
    assert_eq!(proxy.requests() - before, 1);
    let logs = f.finish().await;
    assert!(
        !logs.stdout.contains("+819012345678") && logs.stdout.contains("second factor enabled"),
        "{}",
        logs.stdout
    );
}

/// A user with TOTP enabled is read once and left alone; an unknown user
/// (`userNotFound`) gets the same answer after the same single read. Both
/// medians are printed (run with `--nocapture` to see them).
#[tokio::test(flavor = "current_thread")]
async fn a_totp_user_is_read_once_and_an_unknown_user_is_answered_alike() {
    let client = cognito().await;
    let pool = moto::new_pool(&client, "guard-totp").await;
    let app = moto::new_admin_client(&client, &pool).await;
    moto::new_user(&client, &pool, "bo", &[("phone_number", "+14155550142")]).await;
    let tokens = moto::sign_in(&client, &pool, &app, "bo", "Correct-Horse-9").await;
    moto::enable_totp(&client, &pool, "bo", &tokens.access).await;
    let totp_only = (
        vec!["SOFTWARE_TOKEN_MFA".to_owned()],
        "SOFTWARE_TOKEN_MFA".to_owned(),
    );
    assert_eq!(moto::mfa_of(&client, &pool, "bo").await, totp_only);

    let proxy = counting_proxy().await;
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&binary(), &moto::child_env_at(&proxy.url()))
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();

    let real = event(&pool, "bo", json!({"phone_number": "+14155550142"}), false);
    let unknown = event(&pool, "nobody-by-this-name", json!({}), true);
    let (mut real_times, mut unknown_times) = (Vec::new(), Vec::new());
    let mut answers = Vec::new();
    for round in 0..40 {
        for (which, e) in [(0, &real), (1, &unknown)] {
            let before = proxy.requests();
            let started = Instant::now();
            let (answer, _) = f.invoke(e).await.unwrap();
            let took = started.elapsed();
            assert_eq!(proxy.requests() - before, 1, "round {round}: one read each");
            let Answer::Response(v) = answer else {
                panic!("round {round}: expected a response, got {answer:?}");
            };
            if which == 0 {
                real_times.push(took);
            } else {
                unknown_times.push(took);
            }
            if round == 0 {
                answers.push(v);
            }
        }
    }
    assert_eq!(
        moto::mfa_of(&client, &pool, "bo").await,
        totp_only,
        "untouched"
    );
    // The same answer: the event back with the same keys and response.
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&answers[0]), keys(&answers[1]));
    assert_eq!(answers[0]["response"], answers[1]["response"]);

    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (r, u) = (median(&mut real_times), median(&mut unknown_times));
    eprintln!(
        "pre-authentication warm medians over 40 each: real user with TOTP {r:?}, unknown user {u:?}"
    );
}

/// Fail closed: with Cognito unreachable, a user who needs a factor is
/// denied within 2.5 s, with a message safe to show (Cognito shows it as
/// `PreAuthentication failed with error <message>.`).
#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_cognito_denies_the_sign_in_quickly_and_safely() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(
            &binary(),
            &moto::child_env_at(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let started = Instant::now();
    let (answer, _) = f
        .invoke(&event(
            "us-east-1_Unreachable",
            "eve",
            json!({"phone_number": "+14155550123"}),
            false,
        ))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(answer.error_type(), Some("SignInUnavailable"), "{answer:?}");
    assert_eq!(
        answer.error_message(),
        Some("Sign-in is temporarily unavailable. Please try again in a minute.")
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    // An endpoint that accepts and never answers: the budget's operation
    // timeout (2 s) still ends it inside 2.5 s.
    let silent = FaultProxy::start(&moto::endpoint(), Plan::always(Fault::Hang))
        .await
        .unwrap();
    let mut g = api
        .spawn(&binary(), &moto::child_env_at(&silent.url()))
        .await
        .unwrap();
    g.ready(Duration::from_secs(10)).await.unwrap();
    let started = Instant::now();
    let (answer, _) = g
        .invoke(&event(
            "us-east-1_Silent",
            "eve",
            json!({"phone_number": "+14155550123"}),
            false,
        ))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(answer.error_type(), Some("SignInUnavailable"), "{answer:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let logs = g.finish().await;
    assert!(!logs.stdout.contains("+14155550123"), "{}", logs.stdout);
}

/// A bad setting fails the init phase naming the variable.
#[tokio::test(flavor = "current_thread")]
async fn a_bad_policy_setting_fails_init_naming_the_variable() {
    let api = RuntimeApi::start().await.unwrap();
    let mut env = moto::child_env();
    env.push(("MFA_CONFIGURATION".into(), "SOMETIMES".into()));
    let mut f = api.spawn(&binary(), &env).await.unwrap();
    let err = f
        .ready(Duration::from_secs(10))
        .await
        .expect_err("init fails");
    assert!(format!("{err}").contains("MFA_CONFIGURATION"), "{err}");
}

/// Email as a factor, seen at the wire (moto accepts `EmailMfaSettings` and
/// ignores it, so the request is what shows it): with `EMAIL` among the
/// methods, a TOTP chooser without a phone gets email enabled, not preferred
/// (the interim factor); an `EMAIL` chooser gets it enabled and preferred;
/// a pool without email MFA never sees the field.
#[tokio::test(flavor = "current_thread")]
async fn email_mfa_settings_go_out_with_the_interim_factor_rule() {
    let client = cognito().await;
    let pool = moto::new_pool(&client, "guard-email").await;
    for (user, pref) in [("tomo", "TOTP"), ("emi", "EMAIL"), ("sam", "SMS")] {
        moto::new_user(
            &client,
            &pool,
            user,
            &[
                ("email", &format!("{user}@example.com")),
                ("custom:mfa_preference", pref),
            ],
        )
        .await;
    }
    let proxy = counting_proxy().await;
    let api = RuntimeApi::start().await.unwrap();
    let mut env = moto::child_env_at(&proxy.url());
    env.push(("MFA_METHODS".into(), "SMS,TOTP,EMAIL".into()));
    let mut f = api.spawn(&binary(), &env).await.unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let mut sent = Vec::new();
    for (user, pref) in [("tomo", "TOTP"), ("emi", "EMAIL"), ("sam", "SMS")] {
        let attrs = json!({"email": format!("{user}@example.com"), "custom:mfa_preference": pref,
                           "cognito:user_status": "CONFIRMED"});
        let (a, _) = f.invoke(&event(&pool, user, attrs, false)).await.unwrap();
        assert!(matches!(a, Answer::Response(_)), "{user}: {a:?}");
        let calls = proxy.requests_to("AdminSetUserMFAPreference");
        sent.push(calls.last().cloned().unwrap_or(Value::Null));
        assert_eq!(
            calls.len(),
            sent.len(),
            "{user}: one AdminSetUserMFAPreference each"
        );
    }
    f.finish().await;
    let email = |v: &Value| v.get("EmailMfaSettings").cloned();
    // TOTP before set-up, no phone: email enabled, not preferred.
    assert_eq!(
        email(&sent[0]),
        Some(json!({"Enabled": true, "PreferredMfa": false})),
        "{}",
        sent[0]
    );
    assert_eq!(sent[0].get("SoftwareTokenMfaSettings"), None);
    // EMAIL chosen: enabled and preferred.
    assert_eq!(
        email(&sent[1]),
        Some(json!({"Enabled": true, "PreferredMfa": true})),
        "{}",
        sent[1]
    );
    // SMS chosen without a phone: email as the interim factor too.
    assert_eq!(
        email(&sent[2]),
        Some(json!({"Enabled": true, "PreferredMfa": false})),
        "{}",
        sent[2]
    );
    assert_eq!(sent[2].get("SMSMfaSettings"), None);

    // Without EMAIL among the methods, no EmailMfaSettings ever goes out.
    let proxy2 = counting_proxy().await;
    let api2 = RuntimeApi::start().await.unwrap();
    let mut g = api2
        .spawn(&binary(), &moto::child_env_at(&proxy2.url()))
        .await
        .unwrap();
    g.ready(Duration::from_secs(10)).await.unwrap();
    moto::new_user(
        &client,
        &pool,
        "phil",
        &[
            ("phone_number", "+14155550177"),
            ("email", "phil@example.com"),
        ],
    )
    .await;
    let attrs = json!({"phone_number": "+14155550177", "email": "phil@example.com", "cognito:user_status": "CONFIRMED"});
    let (a, _) = g.invoke(&event(&pool, "phil", attrs, false)).await.unwrap();
    assert!(matches!(a, Answer::Response(_)), "{a:?}");
    g.finish().await;
    let calls = proxy2.requests_to("AdminSetUserMFAPreference");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].get("EmailMfaSettings"), None, "{}", calls[0]);
    assert_eq!(
        calls[0]["SMSMfaSettings"],
        json!({"Enabled": true, "PreferredMfa": true})
    );
}
