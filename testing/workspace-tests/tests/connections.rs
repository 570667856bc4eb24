//! Connection reuse, counted: every function binary that calls AWS, under our
//! Runtime API, each AWS service at a keep-alive proxy of its own in front of
//! moto (`harness::fault_proxy`; `AWS_ENDPOINT_URL_<SERVICE>`), so that, as
//! on AWS, every service is a host of its own. moto answers `Connection:
//! close`, so the count is only meaningful at a proxy that keeps its clients'
//! connections open. Each function gets one invocation to open its
//! connections, then 100 more: at most 2 new connections per service may be
//! opened over those 100. Each service must have been called at least once
//! per invocation, so a function that stopped calling AWS cannot pass.
//!
//! Needs `MOTO_ENDPOINT` and the function binaries (`scripts/test` provides
//! both; `LAMBDA_BIN_DIR` picks the build, `target/debug` by default).

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fault_proxy::FaultProxy;
use harness::runtime_api::RuntimeApi;
use serde_json::{Value, json};

const WARM: usize = 100;
const MOST_NEW_PER_SERVICE: u64 = 2;
const POOL: &str = "us-east-1_Connections";
const HIGH_LIMIT: &str = "1000000/1h";

/// The services the functions call, by the suffix of their
/// `AWS_ENDPOINT_URL_<SERVICE>` variable.
const SERVICES: [(&str, &str); 4] = [
    ("cognito-idp", "COGNITO_IDENTITY_PROVIDER"),
    ("dynamodb", "DYNAMODB"),
    ("kms", "KMS"),
    ("sns", "SNS"),
];

/// What one service's proxy saw over the warm invocations.
#[derive(Debug)]
struct Seen {
    new_connections: u64,
    requests: u64,
    /// Connections open when init was over, before the first event.
    at_init: u64,
    /// Connections the first invocation opened.
    first_new: u64,
}

/// Runs `events[0]`, then the rest, through one process of `binary` with
/// each service behind its own counting proxy; checks every answer and
/// returns, by service, what its proxy saw after the first invocation.
async fn warm_connections(
    binary: &str,
    extra_env: &[(&str, String)],
    events: &[Value],
) -> BTreeMap<String, Seen> {
    let mut env = harness::moto::child_env();
    let mut proxies = Vec::new();
    for (service, suffix) in SERVICES {
        // The limits tables live on moto's DynamoDB server of their own.
        let upstream = if service == "dynamodb" {
            harness::moto::dynamodb_endpoint()
        } else {
            harness::moto::endpoint()
        };
        let proxy = FaultProxy::passthrough(&upstream).await.unwrap();
        env.push((format!("AWS_ENDPOINT_URL_{suffix}"), proxy.url()));
        proxies.push((service, proxy));
    }
    env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary(binary), &env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    // Init is over: the warm-up's connections are open (or not).
    let at_init: Vec<u64> = proxies.iter().map(|(_, p)| p.connections()).collect();
    let mut before = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let (answer, _) = f.invoke(event).await.unwrap();
        assert!(
            !answer.is_error(),
            "{binary}, invocation {i}: {:?}",
            answer.value()
        );
        if i == 0 {
            before = proxies
                .iter()
                .map(|(_, p)| (p.connections(), p.requests()))
                .collect();
        }
    }
    f.finish().await;
    let seen: BTreeMap<String, Seen> = proxies
        .iter()
        .zip(before)
        .zip(at_init)
        .filter(|(((_, p), _), _)| p.requests() > 0)
        .map(|(((service, p), (c, r)), init)| {
            let seen = Seen {
                new_connections: p.connections() - c,
                requests: p.requests() - r,
                at_init: init,
                first_new: c - init,
            };
            ((*service).to_owned(), seen)
        })
        .collect();
    eprintln!(
        "{binary}, over {} warm invocations: {seen:?}",
        events.len() - 1
    );
    seen
}

fn check(binary: &str, seen: &BTreeMap<String, Seen>, services: &[&str]) {
    // Connections opened during init (sdk_config::connect_during_init):
    // every service's is accepted before the first event, and the first
    // invocation uses it instead of opening one.
    for s in services {
        let x = seen.get(*s);
        assert!(
            x.is_some_and(|x| x.at_init >= 1),
            "{binary} had no {s} connection open when its init was over: {seen:?}"
        );
        assert_eq!(
            x.map_or(u64::MAX, |x| x.first_new),
            0,
            "{binary}'s first invocation opened a new {s} connection: {seen:?}"
        );
    }
    for s in services {
        let requests = seen.get(*s).map_or(0, |x| x.requests);
        assert!(
            requests >= WARM as u64,
            "{binary} called {s} {requests} times over {WARM} warm invocations: {seen:?}"
        );
    }
    for (s, x) in seen {
        assert!(
            x.new_connections <= MOST_NEW_PER_SERVICE,
            "{binary} opened {} new {s} connections over {WARM} warm invocations",
            x.new_connections
        );
    }
}

/// Exactly `per_invocation` requests to each service per warm invocation
/// (not timed: a count). A change that adds a call to a warm path fails
/// here, whatever it costs in time.
fn requests_per_invocation(
    binary: &str,
    seen: &BTreeMap<String, Seen>,
    per_invocation: &[(&str, u64)],
) {
    for (service, n) in per_invocation {
        let requests = seen.get(*service).map_or(0, |x| x.requests);
        assert_eq!(
            requests,
            n * WARM as u64,
            "{binary}: {requests} {service} requests over {WARM} warm invocations, expected {n} each: {seen:?}"
        );
    }
    assert_eq!(
        seen.len(),
        per_invocation.len(),
        "{binary} called services it should not: {seen:?}"
    );
}

/// A KMS key in moto, and `n` custom-sms-sender events with codes encrypted
/// for it as Cognito does, each for a user of its own (`{prefix}-{i}`).
async fn sender_events(n: usize, prefix: &str, phone: &str) -> (String, Vec<Value>) {
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms, &key_arn).await.unwrap();
    let mut events = Vec::new();
    for i in 0..n {
        let plain = format!("{:06}", 300_000 + i);
        let code = code_decrypt::encode_code(
            &code_decrypt::encrypt_like_cognito(&keyring, &plain, POOL, false)
                .await
                .unwrap(),
        );
        events.push(workspace_tests::events::custom_sms_sender(
            POOL,
            "CustomSMSSender_Authentication",
            &format!("{prefix}-{i}"),
            phone,
            &code,
        ));
    }
    (key_arn, events)
}

async fn limits_table(name: &str) -> String {
    harness::moto::new_limits_table(&harness::moto::dynamodb_client().await, name).await
}

fn limits_env(table: String) -> Vec<(&'static str, String)> {
    vec![
        ("SMS_LIMIT_TABLE", table),
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key".to_owned(),
        ),
        ("SMS_LIMIT_PER_PHONE", HIGH_LIMIT.to_owned()),
        ("SMS_LIMIT_PER_USER", HIGH_LIMIT.to_owned()),
        ("SMS_LIMIT_PER_POOL", HIGH_LIMIT.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_confirmation_reuses_its_cognito_connection() {
    let sdk = harness::moto::sdk_config().await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool_id = harness::moto::new_pool(&client, "connections").await;
    harness::moto::new_user(
        &client,
        &pool_id,
        "conn-user",
        &[("phone_number", "+14155550143")],
    )
    .await;
    let event = workspace_tests::events::post_confirmation(&pool_id, "conn-user", "+14155550143");
    let events = vec![event; WARM + 1];
    let new = warm_connections("post-confirmation", &[], &events).await;
    check("post-confirmation", &new, &["cognito-idp"]);
    // AdminSetUserMFAPreference is idempotent: no read first.
    requests_per_invocation("post-confirmation", &new, &[("cognito-idp", 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_auth_challenge_reuses_its_sns_and_dynamodb_connections() {
    let mut env = limits_env(limits_table("connections-create").await);
    env.push((
        "CHALLENGE_SECRET",
        "connections-test-hashing-secret-0123456789".to_owned(),
    ));
    let events: Vec<Value> = (0..=WARM)
        .map(|i| {
            workspace_tests::events::create_auth_challenge(
                POOL,
                &format!("conn-{i}"),
                "+14155550144",
            )
        })
        .collect();
    let new = warm_connections("create-auth-challenge", &env, &events).await;
    check("create-auth-challenge", &new, &["sns", "dynamodb"]);
    // One transaction (the code's record, the counters, the lockout check),
    // then SNS.
    requests_per_invocation(
        "create-auth-challenge",
        &new,
        &[("dynamodb", 1), ("sns", 1)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_sms_sender_reuses_its_kms_sns_and_dynamodb_connections() {
    let (key_arn, events) = sender_events(WARM + 1, "conn", "+14155550145").await;
    let mut env = limits_env(limits_table("connections-sender").await);
    env.push(("KEY_ARN", key_arn));
    let seen = warm_connections("custom-sms-sender", &env, &events).await;
    check("custom-sms-sender", &seen, &["kms", "sns", "dynamodb"]);
    requests_per_invocation(
        "custom-sms-sender",
        &seen,
        &[("dynamodb", 1), ("kms", 1), ("sns", 1)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_sms_sender_reuses_its_connections_when_every_service_shares_one_endpoint() {
    // LocalStack-style: one AWS_ENDPOINT_URL for KMS, SNS and DynamoDB.
    let (key_arn, events) = sender_events(WARM + 1, "shared", "+14155550146").await;
    let proxy = FaultProxy::passthrough_routed(
        &harness::moto::endpoint(),
        &[("dynamodb", harness::moto::dynamodb_endpoint())],
    )
    .await
    .unwrap();
    let mut env = harness::moto::child_env_at(&proxy.url());
    let limits = limits_env(limits_table("connections-shared").await);
    env.extend(limits.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env.push(("KEY_ARN".to_owned(), key_arn));
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary("custom-sms-sender"), &env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let mut before = (0, 0);
    for (i, event) in events.iter().enumerate() {
        let (answer, _) = f.invoke(event).await.unwrap();
        assert!(!answer.is_error(), "invocation {i}: {:?}", answer.value());
        if i == 0 {
            before = (proxy.connections(), proxy.requests());
        }
    }
    f.finish().await;
    let (new, requests) = (proxy.connections() - before.0, proxy.requests() - before.1);
    eprintln!(
        "custom-sms-sender, one endpoint: {new} new connections, {requests} requests over {WARM} warm invocations"
    );
    // KMS, SNS and one DynamoDB transaction (the record and the three
    // counters together) per invocation: a change that adds a request shows
    // up here.
    assert_eq!(requests, 3 * WARM as u64, "{requests} requests");
    assert!(
        new <= MOST_NEW_PER_SERVICE,
        "{new} new connections over {WARM} warm invocations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_authentication_reuses_its_cognito_connection() {
    let sdk = harness::moto::sdk_config().await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool_id = harness::moto::new_pool(&client, "connections-guard").await;
    let phone = "+14155550149";
    harness::moto::new_user(&client, &pool_id, "guarded", &[("phone_number", phone)]).await;
    // A user whose policy gives a factor: the guard reads the user at every
    // sign-in (and writes the factor the first time).
    let event = json!({
        "version": "1", "region": harness::moto::REGION, "userPoolId": pool_id, "userName": "guarded",
        "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "c"},
        "triggerSource": "PreAuthentication_Authentication",
        "request": {"userAttributes": {"phone_number": phone, "cognito:user_status": "CONFIRMED",
                                       "custom:mfa_preference": "SMS"},
                    "validationData": null, "userNotFound": false},
        "response": {}
    });
    let events = vec![event; WARM + 1];
    let seen = warm_connections("pre-authentication", &[], &events).await;
    check("pre-authentication", &seen, &["cognito-idp"]);
    // The factor is enabled after the first sign-in: one read each.
    requests_per_invocation("pre-authentication", &seen, &[("cognito-idp", 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_auth_challenge_reuses_its_dynamodb_connection() {
    // Wrong answers with the lockout on: every invocation reserves its
    // attempt in the limits table.
    let table = limits_table("connections-verify").await;
    let env = [
        ("SMS_LIMIT_TABLE", table),
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key".to_owned(),
        ),
        ("CODE_FAILURES_PER_USER", HIGH_LIMIT.to_owned()),
        (
            "CHALLENGE_SECRET",
            "connections-test-hashing-secret-0123456789".to_owned(),
        ),
    ];
    let event = json!({
        "version": "1", "region": harness::moto::REGION, "userPoolId": POOL, "userName": "guesser",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
        "triggerSource": "VerifyAuthChallengeResponse_Authentication",
        "request": {
            "userAttributes": {"phone_number": "+14155550150"},
            "privateChallengeParameters": {
                "codeHash": "05a0abd7ced9ba232b82e85a6c87a10b00a5c855e00d763563bb63464178c02a",
                "expiresAt": "4102444800"
            },
            "challengeAnswer": "000000",
            "userNotFound": false
        },
        "response": {"answerCorrect": null}
    });
    let events = vec![event; WARM + 1];
    let seen = warm_connections("verify-auth-challenge", &env, &events).await;
    check("verify-auth-challenge", &seen, &["dynamodb"]);
    // A wrong answer: the atomic reservation is the one request.
    requests_per_invocation("verify-auth-challenge", &seen, &[("dynamodb", 1)]);
}
