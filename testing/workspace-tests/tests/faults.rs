//! Fault injection: the AWS-calling functions, as built binaries under our
//! Runtime API, with `fault-proxy` between them and moto.
//!
//! A brief fault (the first calls answer 500, throttle, or are slow) must be
//! ridden out by the bounded retries of `sdk-config` well inside Cognito's
//! 5 seconds (we ask for 4.5 s); a lasting fault (always 500, or no answer at
//! all) must end in a clear error before the deadline the Runtime API gives
//! (`Lambda-Runtime-Deadline-Ms`, 5 s here), never a hang.
//!
//! Needs `MOTO_ENDPOINT` and the function binaries (`scripts/test` provides
//! both; `LAMBDA_BIN_DIR` picks the build, `target/debug` by default).

use std::time::Duration;

use harness::fault_proxy::{Fault, FaultProxy, Plan};
use harness::runtime_api::{Answer, RuntimeApi};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(5);
const BRIEF_FAULT_LIMIT: Duration = Duration::from_millis(4500);

/// Runs one event through `binary` with its AWS endpoint at `proxy`.
async fn invoke_through(
    binary: &str,
    proxy: &FaultProxy,
    extra_env: &[(&str, String)],
    event: &Value,
) -> (Answer, Duration, String) {
    let api = RuntimeApi::start().await.unwrap();
    let mut env = harness::moto::child_env_at(&proxy.url());
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let mut f = api
        .spawn(&workspace_tests::function_binary(binary), &env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let (answer, took) = f
        .invoke_with(event, DEADLINE, DEADLINE + Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    let logs = f.finish().await;
    // Reported with --nocapture (scripts/faults prints the table).
    eprintln!(
        "fault-timing {binary} faulted={} requests={} took_ms={} error={}",
        proxy.faulted(),
        proxy.requests(),
        took.as_millis(),
        answer.is_error()
    );
    (answer, took, logs.stdout + &logs.stderr)
}

// ---------- post-confirmation ----------

struct PoolUser {
    pool_id: String,
    username: String,
    phone: String,
    client: aws_sdk_cognitoidentityprovider::Client,
}

async fn pool_user(tag: &str) -> PoolUser {
    let sdk = harness::moto::sdk_config().await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool_id = harness::moto::new_pool(&client, &format!("faults-{tag}")).await;
    let username = format!("user-{tag}");
    let phone = "+14155550142".to_owned();
    harness::moto::new_user(&client, &pool_id, &username, &[("phone_number", &phone)]).await;
    PoolUser {
        pool_id,
        username,
        phone,
        client,
    }
}

fn confirm_sign_up_event(u: &PoolUser) -> Value {
    json!({
        "version": "1",
        "region": harness::moto::REGION,
        "userPoolId": u.pool_id,
        "userName": u.username,
        "callerContext": {"awsSdkVersion": "aws-sdk-js-3.529.0", "clientId": "faults"},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": {
            "sub": "0b7f5a2e-0000-4000-8000-000000000001",
            "cognito:user_status": "CONFIRMED",
            "phone_number": u.phone,
            "phone_number_verified": "false",
            "custom:mfa_preference": "SMS"
        }},
        "response": {}
    })
}

async fn sms_preferred(u: &PoolUser) -> bool {
    let out = u
        .client
        .admin_get_user()
        .user_pool_id(&u.pool_id)
        .username(&u.username)
        .send()
        .await
        .expect("moto AdminGetUser");
    out.preferred_mfa_setting() == Some("SMS_MFA")
}

#[tokio::test(flavor = "current_thread")]
async fn post_confirmation_rides_out_brief_faults() {
    // Two failed answers, or one answer slower than the 1 s attempt timeout.
    for (tag, plan) in [
        ("pc-500", Plan::first(2, Fault::ServerError)),
        ("pc-throttle", Plan::first(2, Fault::Throttling)),
        (
            "pc-slow",
            Plan::first(1, Fault::Slow(Duration::from_millis(1500))),
        ),
    ] {
        let user = pool_user(tag).await;
        let proxy = FaultProxy::start(&harness::moto::endpoint(), plan)
            .await
            .unwrap();
        let (answer, took, _) = invoke_through(
            "post-confirmation",
            &proxy,
            &[],
            &confirm_sign_up_event(&user),
        )
        .await;
        assert!(!answer.is_error(), "{tag}: {answer:?}");
        assert!(took < BRIEF_FAULT_LIMIT, "{tag}: took {took:?}");
        assert!(
            proxy.faulted() >= 1 && proxy.requests() > proxy.faulted(),
            "{tag}: the call was retried"
        );
        assert!(
            sms_preferred(&user).await,
            "{tag}: SMS MFA is enabled and preferred in moto"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn post_confirmation_fails_clearly_and_in_time_when_the_fault_lasts() {
    for (tag, fault) in [("pc-down", Fault::ServerError), ("pc-hang", Fault::Hang)] {
        let user = pool_user(tag).await;
        let proxy = FaultProxy::start(&harness::moto::endpoint(), Plan::always(fault))
            .await
            .unwrap();
        let (answer, took, logs) = invoke_through(
            "post-confirmation",
            &proxy,
            &[],
            &confirm_sign_up_event(&user),
        )
        .await;
        assert!(answer.is_error(), "{tag}: {answer:?}");
        let msg = answer.error_message().unwrap_or_default();
        assert!(!msg.is_empty(), "{tag}: the error says something");
        assert!(
            !msg.contains(&user.phone) && !logs.contains(&user.phone),
            "{tag}: no full phone"
        );
        assert!(took < DEADLINE, "{tag}: {took:?} is past the deadline");
        assert!(!sms_preferred(&user).await, "{tag}: nothing was applied");
    }
}

// ---------- create-auth-challenge ----------

const SECRET: &str = "fault-injection-hashing-secret-0123456789abcdef";

#[tokio::test(flavor = "current_thread")]
async fn create_auth_challenge_rides_out_brief_faults_and_fails_in_time_otherwise() {
    let env = [("CHALLENGE_SECRET", SECRET.to_owned())];
    for (i, plan) in [
        Plan::first(2, Fault::ServerError),
        Plan::first(2, Fault::Throttling),
        Plan::first(1, Fault::Slow(Duration::from_millis(1500))),
    ]
    .into_iter()
    .enumerate()
    {
        let fault = plan.fault;
        let phone = format!("+1206555{:04}", 100 + i);
        let proxy = FaultProxy::start(&harness::moto::endpoint(), plan)
            .await
            .unwrap();
        let (answer, took, _) = invoke_through(
            "create-auth-challenge",
            &proxy,
            &env,
            &workspace_tests::events::create_auth_challenge("us-east-1_Faults", "faulty", &phone),
        )
        .await;
        assert!(!answer.is_error(), "{fault:?}: {answer:?}");
        assert!(took < BRIEF_FAULT_LIMIT, "{fault:?}: took {took:?}");
        let sent = harness::moto::sent_sms().await;
        assert!(
            sent.iter().any(|(p, _)| *p == phone),
            "{fault:?}: the SMS reached moto"
        );
    }
    for fault in [Fault::ServerError, Fault::Hang] {
        let phone = "+12065550199".to_owned();
        let proxy = FaultProxy::start(&harness::moto::endpoint(), Plan::always(fault))
            .await
            .unwrap();
        let (answer, took, logs) = invoke_through(
            "create-auth-challenge",
            &proxy,
            &env,
            &workspace_tests::events::create_auth_challenge("us-east-1_Faults", "faulty", &phone),
        )
        .await;
        assert!(answer.is_error(), "{fault:?}: {answer:?}");
        assert!(took < DEADLINE, "{fault:?}: {took:?} is past the deadline");
        assert!(
            !logs.contains(&phone),
            "{fault:?}: no full phone in the logs"
        );
    }
}

// ---------- custom-sms-sender ----------

#[tokio::test(flavor = "current_thread")]
async fn custom_sms_sender_rides_out_brief_faults_and_fails_in_time_otherwise() {
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms.clone(), &key_arn)
        .await
        .unwrap();
    let pool = "us-east-1_FaultSms";
    let env = [("KEY_ARN", key_arn.clone())];
    let event = |phone: &str, code: &str| {
        json!({
            "version": "1", "region": harness::moto::REGION, "userPoolId": pool, "userName": "faulty",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "faults"},
            "triggerSource": "CustomSMSSender_Authentication",
            "request": {"type": "customSMSSenderRequestV1", "code": code,
                        "userAttributes": {"phone_number": phone, "locale": "en"}, "clientMetadata": null}
        })
    };
    for (i, fault) in [Fault::ServerError, Fault::Throttling]
        .into_iter()
        .enumerate()
    {
        let phone = format!("+1206556{:04}", 100 + i);
        let secret = format!("73{:04}", 1000 + i);
        let code = code_decrypt::encode_code(
            &code_decrypt::encrypt_like_cognito(&keyring, &secret, pool, false)
                .await
                .unwrap(),
        );
        let proxy = FaultProxy::start(&harness::moto::endpoint(), Plan::first(2, fault))
            .await
            .unwrap();
        let (answer, took, logs) =
            invoke_through("custom-sms-sender", &proxy, &env, &event(&phone, &code)).await;
        assert!(!answer.is_error(), "{fault:?}: {answer:?}");
        assert!(took < BRIEF_FAULT_LIMIT, "{fault:?}: took {took:?}");
        assert!(
            !logs.contains(&secret),
            "{fault:?}: the code never reaches a log line"
        );
        let sent = harness::moto::sent_sms().await;
        assert!(
            sent.iter().any(|(p, m)| *p == phone && m.contains(&secret)),
            "{fault:?}: the SMS with the code reached moto"
        );
    }
    for fault in [Fault::ServerError, Fault::Hang] {
        let code = code_decrypt::encode_code(
            &code_decrypt::encrypt_like_cognito(&keyring, "990011", pool, false)
                .await
                .unwrap(),
        );
        let proxy = FaultProxy::start(&harness::moto::endpoint(), Plan::always(fault))
            .await
            .unwrap();
        let (answer, took, _) = invoke_through(
            "custom-sms-sender",
            &proxy,
            &env,
            &event("+12065560199", &code),
        )
        .await;
        assert!(answer.is_error(), "{fault:?}: {answer:?}");
        assert!(took < DEADLINE, "{fault:?}: {took:?} is past the deadline");
    }
}
