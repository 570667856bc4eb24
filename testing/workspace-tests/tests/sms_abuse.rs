//! SMS abuse protection end to end: the function binaries under our Runtime
//! API, with moto as DynamoDB, SNS and KMS (`MOTO_ENDPOINT`, `scripts/test`
//! starts it; `LAMBDA_BIN_DIR` picks the build, `target/debug` by default).
//! What counts is what moto's SNS recorded as sent.

use std::time::{Duration, Instant};

use harness::runtime_api::{self, Answer, Function, RuntimeApi};
use serde_json::{Value, json};
use workspace_tests::events;

fn sender_event(source: &str, user: &str, phone: &str, code: &str) -> Value {
    events::custom_sms_sender(POOL, source, user, phone, code)
}

fn create_event(user: &str, phone: &str) -> Value {
    events::create_auth_challenge(POOL, user, phone)
}

const POOL: &str = "us-east-1_SmsAbuse";

/// A phone number no other test of this run uses (moto keeps every SMS).
fn unique_phone(prefix: &str) -> String {
    let n = getrandom_u32() % 10_000_000;
    format!("{prefix}{n:07}")
}

fn getrandom_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .expect("/dev/urandom");
    u32::from_le_bytes(b)
}

async fn sms_to(phone: &str) -> usize {
    harness::moto::sent_sms()
        .await
        .into_iter()
        .filter(|(to, _)| to == phone)
        .count()
}

/// A KMS key in moto and a function that encrypts codes for it as Cognito
/// does.
struct Codes {
    key_arn: String,
    keyring: code_decrypt::KeyringRef,
}

impl Codes {
    async fn new() -> Self {
        let sdk = harness::moto::sdk_config().await;
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key_arn = harness::moto::new_kms_key(&kms).await;
        let keyring = code_decrypt::kms_keyring(kms, &key_arn).await.unwrap();
        Self { key_arn, keyring }
    }

    async fn code(&self, plain: &str) -> String {
        code_decrypt::encode_code(
            &code_decrypt::encrypt_like_cognito(&self.keyring, plain, POOL, false)
                .await
                .unwrap(),
        )
    }
}

/// DynamoDB through a proxy that hands moto one request at a time (see
/// `FaultProxy::serializing`: moto's conditional writes are not atomic
/// under concurrency, DynamoDB's are). The functions stay concurrent.
async fn atomic_dynamodb() -> (harness::fault_proxy::FaultProxy, String) {
    let proxy = harness::fault_proxy::FaultProxy::serializing(&harness::moto::endpoint())
        .await
        .unwrap();
    let url = proxy.url();
    (proxy, url)
}

async fn limits_table() -> String {
    let sdk = harness::moto::sdk_config().await;
    harness::moto::new_limits_table(&aws_sdk_dynamodb::Client::new(&sdk), "sms-abuse").await
}

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = harness::moto::child_env();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// `n` instances of a function binary on one Runtime API.
async fn instances(
    api: &'static RuntimeApi,
    binary: &str,
    env: &[(String, String)],
    n: usize,
) -> Vec<Function<'static>> {
    runtime_api::spawn_instances(api, &workspace_tests::function_binary(binary), env, n)
        .await
        .unwrap()
}

/// Every event through the instances at once; every one must be answered.
async fn invoke_all(functions: Vec<Function<'static>>, events: Vec<Value>) -> Vec<Answer> {
    runtime_api::invoke_concurrently(functions, events)
        .await
        .into_iter()
        .map(|a| a.expect("an answer"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_sends_to_one_phone_with_a_limit_of_five_send_exactly_five() {
    let codes = Codes::new().await;
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1206");
    let mut events = Vec::new();
    for i in 0..50 {
        let code = codes.code(&format!("{:06}", 100_000 + i)).await;
        events.push(sender_event(
            "CustomSMSSender_Authentication",
            &format!("user-{i}"),
            &phone,
            &code,
        ));
    }
    let env = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("SMS_LIMIT_TABLE", &table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("SMS_LIMIT_PER_PHONE", "5/1h"),
    ]);
    let api = runtime_api::start_static().await.unwrap();
    let functions = instances(api, "custom-sms-sender", &env, 10).await;
    let answers = invoke_all(functions, events).await;
    let limited = answers
        .iter()
        .filter(|a| a.error_type() == Some("RateLimited"))
        .count();
    let ok = answers.iter().filter(|a| !a.is_error()).count();
    assert_eq!((ok, limited), (5, 45), "{answers:?}");
    assert_eq!(sms_to(&phone).await, 5, "moto's SNS record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_and_per_pool_limits_hold_across_instances() {
    let codes = Codes::new().await;
    // Per user: one user, ten phones, a limit of three.
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phones: Vec<String> = (0..10).map(|_| unique_phone("+1425")).collect();
    let mut events = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        let code = codes.code(&format!("{:06}", 200_000 + i)).await;
        events.push(sender_event(
            "CustomSMSSender_ResendCode",
            "one-user",
            phone,
            &code,
        ));
    }
    let env_user = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("SMS_LIMIT_TABLE", &table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("SMS_LIMIT_PER_USER", "3/1h"),
    ]);
    let api = runtime_api::start_static().await.unwrap();
    let answers = invoke_all(
        instances(api, "custom-sms-sender", &env_user, 4).await,
        events,
    )
    .await;
    let mut sent = 0;
    for phone in &phones {
        sent += sms_to(phone).await;
    }
    assert_eq!(sent, 3, "{answers:?}");

    // Per pool: ten users on ten phones, a limit of four.
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phones: Vec<String> = (0..10).map(|_| unique_phone("+1503")).collect();
    let mut events = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        let code = codes.code(&format!("{:06}", 300_000 + i)).await;
        events.push(sender_event(
            "CustomSMSSender_SignUp",
            &format!("pool-user-{i}"),
            phone,
            &code,
        ));
    }
    let env_pool = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("SMS_LIMIT_TABLE", &table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("SMS_LIMIT_PER_POOL", "4/1m"),
    ]);
    let api = runtime_api::start_static().await.unwrap();
    let answers = invoke_all(
        instances(api, "custom-sms-sender", &env_pool, 4).await,
        events,
    )
    .await;
    let mut sent = 0;
    for phone in &phones {
        sent += sms_to(phone).await;
    }
    // A window boundary inside the run would split the count; four is the
    // most one window admits.
    assert!((1..=4).contains(&sent), "{sent}: {answers:?}");
    assert_eq!(
        answers.iter().filter(|a| !a.is_error()).count(),
        sent,
        "every admitted send was sent"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_event_delivered_twice_sends_one_sms() {
    let codes = Codes::new().await;
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1312");
    let code = codes.code("654321").await;
    let event = sender_event("CustomSMSSender_SignUp", "twice", &phone, &code);
    let env = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("SMS_LIMIT_TABLE", &table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
    ]);
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary("custom-sms-sender"), &env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    for _ in 0..2 {
        let (a, _) = f.invoke(&event).await.unwrap();
        assert!(!a.is_error(), "{a:?}");
    }
    assert_eq!(sms_to(&phone).await, 1);
    // Another code for the same user and phone is another send.
    let other = sender_event(
        "CustomSMSSender_SignUp",
        "twice",
        &phone,
        &codes.code("111222").await,
    );
    let (a, _) = f.invoke(&other).await.unwrap();
    assert!(!a.is_error(), "{a:?}");
    assert_eq!(sms_to(&phone).await, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocked_country_is_refused_at_sign_up_and_at_send_time() {
    let api = RuntimeApi::start().await.unwrap();
    // Jamaica is +1 876: the numbering plan, not the +1 prefix, decides.
    let jamaica = format!("+1876253{:04}", getrandom_u32() % 10_000);
    let blocked = env(&[("SMS_BLOCKED_COUNTRIES", "JM")]);
    let mut f = api
        .spawn(&workspace_tests::function_binary("pre-sign-up"), &blocked)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let sign_up = json!({
        "version": "1", "region": "us-east-1", "userPoolId": POOL, "userName": "jm",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "triggerSource": "PreSignUp_SignUp",
        "request": {"userAttributes": {"email": "jm@example.com", "phone_number": jamaica}, "validationData": {}},
        "response": {}
    });
    let (a, _) = f.invoke(&sign_up).await.unwrap();
    assert_eq!(a.error_type(), Some("SignUpRejected"), "{a:?}");
    assert!(!a.error_message().unwrap_or_default().contains("JM"));
    f.finish().await;

    let codes = Codes::new().await;
    let mut env = blocked.clone();
    env.push(("KEY_ARN".into(), codes.key_arn.clone()));
    let mut g = api
        .spawn(&workspace_tests::function_binary("custom-sms-sender"), &env)
        .await
        .unwrap();
    g.ready(Duration::from_secs(10)).await.unwrap();
    let event = sender_event(
        "CustomSMSSender_Authentication",
        "jm",
        &jamaica,
        &codes.code("123456").await,
    );
    let (a, _) = g.invoke(&event).await.unwrap();
    assert_eq!(a.error_type(), Some("CountryNotAllowed"), "{a:?}");
    assert_eq!(sms_to(&jamaica).await, 0);
}

const SECRET: &str = "sms-abuse-test-hashing-secret-0123456789";

fn verify_event(user: &str, private: &Value, answer: &str) -> Value {
    json!({
        "version": "1", "region": "us-east-1", "userPoolId": POOL, "userName": user,
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "triggerSource": "VerifyAuthChallengeResponse_Authentication",
        "request": {"userAttributes": {}, "privateChallengeParameters": private,
                    "challengeAnswer": answer, "userNotFound": false},
        "response": {}
    })
}

/// Three sign-ins, each with a wrong code: the lockout (3 per hour) then
/// refuses a fourth code, and refuses even an answer. (The sign-ins follow
/// each other within create-auth-challenge's 20-second retry window, so the
/// second and third get the code already sent, still valid: one SMS.)
#[tokio::test(flavor = "current_thread")]
async fn wrong_codes_across_three_sign_ins_lock_the_user_out() {
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1617");
    let env = env(&[
        ("CHALLENGE_SECRET", SECRET),
        ("SMS_LIMIT_TABLE", &table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("CODE_FAILURES_PER_USER", "3/1h"),
    ]);
    let api = RuntimeApi::start().await.unwrap();
    let mut create = api
        .spawn(
            &workspace_tests::function_binary("create-auth-challenge"),
            &env,
        )
        .await
        .unwrap();
    create.ready(Duration::from_secs(10)).await.unwrap();
    let api2 = RuntimeApi::start().await.unwrap();
    let mut verify = api2
        .spawn(
            &workspace_tests::function_binary("verify-auth-challenge"),
            &env,
        )
        .await
        .unwrap();
    verify.ready(Duration::from_secs(10)).await.unwrap();
    let mut private = Value::Null;
    for sign_in in 0..3 {
        let (a, _) = create
            .invoke(&create_event("guesser", &phone))
            .await
            .unwrap();
        let Answer::Response(v) = a else {
            panic!("sign-in {sign_in}: {a:?}")
        };
        private = v["response"]["privateChallengeParameters"].clone();
        let (a, _) = verify
            .invoke(&verify_event("guesser", &private, "000000"))
            .await
            .unwrap();
        let Answer::Response(v) = a else {
            panic!("sign-in {sign_in}: {a:?}")
        };
        assert_eq!(v["response"]["answerCorrect"], false);
    }
    assert_eq!(sms_to(&phone).await, 1);
    let (a, _) = create
        .invoke(&create_event("guesser", &phone))
        .await
        .unwrap();
    assert_eq!(a.error_type(), Some("CodeLockout"), "{a:?}");
    assert_eq!(
        a.error_message(),
        Some("Too many wrong codes. Please wait before you try to sign in again.")
    );
    assert_eq!(sms_to(&phone).await, 1, "no new code");
    let (a, _) = verify
        .invoke(&verify_event("guesser", &private, "123456"))
        .await
        .unwrap();
    assert_eq!(a.error_type(), Some("CodeLockout"), "{a:?}");
    // Another user is not affected.
    let (a, _) = create
        .invoke(&create_event("someone-else", &phone))
        .await
        .unwrap();
    assert!(!a.is_error(), "{a:?}");
}

/// DynamoDB unreachable (its endpoint alone points at a closed port): a
/// sign-up code fails closed, a sign-in code fails open; both within the
/// sync-trigger budget.
#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_limits_table_fails_closed_for_sign_up_and_open_for_sign_in() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let codes = Codes::new().await;
    let dead = format!("http://127.0.0.1:{closed}");
    let env = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("SMS_LIMIT_TABLE", "unreachable"),
        ("SMS_LIMIT_PER_PHONE", "5/15m"),
        ("AWS_ENDPOINT_URL_DYNAMODB", &dead),
    ]);
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary("custom-sms-sender"), &env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let phone = unique_phone("+1718");
    let started = Instant::now();
    let (a, _) = f
        .invoke(&sender_event(
            "CustomSMSSender_SignUp",
            "u",
            &phone,
            &codes.code("222333").await,
        ))
        .await
        .unwrap();
    assert_eq!(a.error_type(), Some("LimitsUnavailable"), "{a:?}");
    assert!(started.elapsed() < Duration::from_millis(4500));
    assert_eq!(sms_to(&phone).await, 0);
    let started = Instant::now();
    let (a, _) = f
        .invoke(&sender_event(
            "CustomSMSSender_Authentication",
            "u",
            &phone,
            &codes.code("444555").await,
        ))
        .await
        .unwrap();
    assert!(!a.is_error(), "{a:?}");
    assert!(started.elapsed() < Duration::from_millis(4500));
    assert_eq!(sms_to(&phone).await, 1);
    let logs = f.finish().await;
    assert!(
        logs.stdout.contains("\"SmsFailOpen\":1"),
        "the fail-open is counted (EMF)"
    );
    assert!(!logs.stdout.contains(&phone), "{}", logs.stdout);
}
