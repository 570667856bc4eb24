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

/// The tests that start many instances at once take turns: together they
/// load moto (one Python process) past the functions' 2 s budget, and a
/// KMS timeout is not what they test.
static CONCURRENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// A custom sender's settled refusal: success, `{"response": {"outcome":
/// "refused", "errorType": …}}` (no Lambda error, so no retry and nothing
/// for the dead-letter queue).
fn refused_as(a: &Answer) -> Option<&str> {
    match a {
        Answer::Response(v) if v["response"]["outcome"] == "refused" => {
            v["response"]["errorType"].as_str()
        }
        _ => None,
    }
}

fn sent(a: &Answer) -> bool {
    matches!(a, Answer::Response(v) if v["response"]["outcome"] == "sent")
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
    let proxy = harness::fault_proxy::FaultProxy::serializing(&harness::moto::dynamodb_endpoint())
        .await
        .unwrap();
    let url = proxy.url();
    (proxy, url)
}

async fn limits_table() -> String {
    harness::moto::new_limits_table(&harness::moto::dynamodb_client().await, "sms-abuse").await
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
    let _turn = CONCURRENT.lock().await;
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
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        ),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("SMS_LIMIT_PER_PHONE", "5/1h"),
    ]);
    let api = runtime_api::start_static().await.unwrap();
    let functions = instances(api, "custom-sms-sender", &env, 10).await;
    let answers = invoke_all(functions, events).await;
    let limited = answers
        .iter()
        .filter(|a| refused_as(a) == Some("RateLimited"))
        .count();
    let ok = answers.iter().filter(|a| sent(a)).count();
    assert_eq!((ok, limited), (5, 45), "{answers:?}");
    assert_eq!(sms_to(&phone).await, 5, "moto's SNS record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_and_per_pool_limits_hold_across_instances() {
    let _turn = CONCURRENT.lock().await;
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
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        ),
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
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        ),
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
        answers.iter().filter(|a| self::sent(a)).count(),
        sent,
        "every admitted send was sent"
    );
    assert!(
        answers.iter().all(|a| !a.is_error()),
        "refusals are settled: {answers:?}"
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
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        ),
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
    assert_eq!(refused_as(&a), Some("CountryNotAllowed"), "{a:?}");
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
/// each other within create-auth-challenge's 6-second retry window, to the
/// same number, so the second and third get the code already sent, still
/// valid and never accepted: one SMS.)
#[tokio::test(flavor = "current_thread")]
async fn wrong_codes_across_three_sign_ins_lock_the_user_out() {
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1617");
    let env = env(&[
        ("CHALLENGE_SECRET", SECRET),
        ("SMS_LIMIT_TABLE", &table),
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        ),
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
        (
            "LIMIT_KEY_SECRET",
            "test-only-limit-key-test-only-limit-key",
        ),
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

/// One instance of `binary` on a Runtime API of its own, past its init.
async fn ready(binary: &str, env: &[(String, String)]) -> Function<'static> {
    let api = runtime_api::start_static().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary(binary), env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    f
}

const LIMIT_KEY: &str = "test-only-limit-key-test-only-limit-key";

fn create_event_verified(user: &str, phone: &str, verified: bool) -> Value {
    let mut e = create_event(user, phone);
    e["request"]["userAttributes"]["phone_number_verified"] = json!(verified.to_string());
    e
}

fn sender_event_verified(user: &str, phone: &str, code: &str, verified: bool) -> Value {
    let mut e = sender_event("CustomSMSSender_Authentication", user, phone, code);
    e["request"]["userAttributes"]["phone_number_verified"] = json!(verified.to_string());
    e
}

/// The red team's attack, end to end: an account carrying the victim's
/// number (unverified) signs in until the number's common budget is gone;
/// the verified victim's next sign-in codes (SMS MFA through the custom
/// sender, and the custom-auth code) still go out.
#[tokio::test(flavor = "current_thread")]
async fn an_impostor_cannot_silence_the_verified_victim() {
    let codes = Codes::new().await;
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1360");
    let env = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("CHALLENGE_SECRET", SECRET),
        ("SMS_LIMIT_TABLE", &table),
        ("LIMIT_KEY_SECRET", LIMIT_KEY),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("SMS_LIMIT_PER_PHONE", "5/15m"),
    ]);
    let mut sender = ready("custom-sms-sender", &env).await;
    for i in 0..6 {
        let code = codes.code(&format!("{:06}", 500_000 + i)).await;
        let (a, _) = sender
            .invoke(&sender_event_verified("mallory", &phone, &code, false))
            .await
            .unwrap();
        if i < 5 {
            assert!(sent(&a), "attacker's send {i}: {a:?}");
        } else {
            assert_eq!(refused_as(&a), Some("RateLimited"), "{a:?}");
        }
    }
    assert_eq!(sms_to(&phone).await, 5, "the common budget is gone");
    // The victim, verified: their SMS MFA code goes out.
    let code = codes.code("777888").await;
    let (a, _) = sender
        .invoke(&sender_event_verified("victim", &phone, &code, true))
        .await
        .unwrap();
    assert!(sent(&a), "{a:?}");
    assert_eq!(sms_to(&phone).await, 6);
    // And the custom-auth code of their next sign-in.
    let mut create = ready("create-auth-challenge", &env).await;
    let (a, _) = create
        .invoke(&create_event_verified("victim", &phone, true))
        .await
        .unwrap();
    assert!(!a.is_error(), "{a:?}");
    assert_eq!(sms_to(&phone).await, 7);
    // Another unverified account is refused: the common budget stays bounded.
    let (a, _) = create
        .invoke(&create_event_verified("trudy", &phone, false))
        .await
        .unwrap();
    assert_eq!(a.error_type(), Some("RateLimited"), "{a:?}");
    assert_eq!(sms_to(&phone).await, 7);
}

/// The code sent to `phone`, read from moto's SNS record (the last one).
async fn last_code_to(phone: &str) -> String {
    let texts: Vec<String> = harness::moto::sent_sms()
        .await
        .into_iter()
        .filter(|(to, _)| to == phone)
        .map(|(_, text)| text)
        .collect();
    texts
        .last()
        .expect("an SMS")
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// A code verify accepted is never handed out again: a new sign-in right
/// after (well inside the 6 s retry window) gets a new code by SMS. A
/// sign-in to a changed number gets a new code too.
#[tokio::test(flavor = "current_thread")]
async fn an_accepted_code_is_never_handed_out_again() {
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1971");
    let env = env(&[
        ("CHALLENGE_SECRET", SECRET),
        ("SMS_LIMIT_TABLE", &table),
        ("LIMIT_KEY_SECRET", LIMIT_KEY),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("CODE_FAILURES_PER_USER", "10/1h"),
    ]);
    let mut create = ready("create-auth-challenge", &env).await;
    let mut verify = ready("verify-auth-challenge", &env).await;

    let (a, _) = create.invoke(&create_event("una", &phone)).await.unwrap();
    let Answer::Response(first) = a else {
        panic!("{a:?}")
    };
    let private = first["response"]["privateChallengeParameters"].clone();
    assert!(
        private["codeRecord"]
            .as_str()
            .is_some_and(|r| r.starts_with("challenge#")),
        "{private}"
    );
    let code = last_code_to(&phone).await;
    assert_eq!(code.len(), 6);
    // Cognito's retry of the same invocation: the same code, no SMS.
    let (a, _) = create.invoke(&create_event("una", &phone)).await.unwrap();
    let Answer::Response(retry) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        retry["response"]["challengeMetadata"],
        first["response"]["challengeMetadata"]
    );
    assert_eq!(sms_to(&phone).await, 1);
    // Accepted.
    let (a, _) = verify
        .invoke(&verify_event("una", &private, &code))
        .await
        .unwrap();
    let Answer::Response(v) = a else {
        panic!("{a:?}")
    };
    assert_eq!(v["response"]["answerCorrect"], true);
    // A new sign-in at once: a new code, by a second SMS.
    let (a, _) = create.invoke(&create_event("una", &phone)).await.unwrap();
    let Answer::Response(next) = a else {
        panic!("{a:?}")
    };
    assert_ne!(
        next["response"]["challengeMetadata"],
        first["response"]["challengeMetadata"]
    );
    assert_eq!(sms_to(&phone).await, 2);
    // The accepted code does not answer the new challenge.
    let (a, _) = verify
        .invoke(&verify_event(
            "una",
            &next["response"]["privateChallengeParameters"],
            &code,
        ))
        .await
        .unwrap();
    let Answer::Response(v) = a else {
        panic!("{a:?}")
    };
    let new_code = last_code_to(&phone).await;
    assert_eq!(
        v["response"]["answerCorrect"],
        new_code == code,
        "a fresh draw may repeat 1 in 10^6"
    );
    // A changed number, at once: a new code to the new number.
    let moved = unique_phone("+1972");
    let (a, _) = create.invoke(&create_event("una", &moved)).await.unwrap();
    assert!(!a.is_error(), "{a:?}");
    assert_eq!(sms_to(&moved).await, 1);
}

/// Ten wrong answers at once, in ten instances, with a lockout of 3: at most
/// three are checked (the others answer CodeLockout unchecked), and a right
/// answer after that is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_wrong_answers_check_at_most_three() {
    let _turn = CONCURRENT.lock().await;
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1541");
    let env = env(&[
        ("CHALLENGE_SECRET", SECRET),
        ("SMS_LIMIT_TABLE", &table),
        ("LIMIT_KEY_SECRET", LIMIT_KEY),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("CODE_FAILURES_PER_USER", "3/1h"),
    ]);
    let mut create = ready("create-auth-challenge", &env).await;
    let (a, _) = create.invoke(&create_event("vic", &phone)).await.unwrap();
    let Answer::Response(c) = a else {
        panic!("{a:?}")
    };
    create.finish().await;
    let private = c["response"]["privateChallengeParameters"].clone();
    let code = last_code_to(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let events: Vec<Value> = (0..10)
        .map(|_| verify_event("vic", &private, wrong))
        .collect();
    let answers = invoke_all(
        instances(
            runtime_api::start_static().await.unwrap(),
            "verify-auth-challenge",
            &env,
            10,
        )
        .await,
        events,
    )
    .await;
    let checked = answers
        .iter()
        .filter(|a| matches!(a, Answer::Response(_)))
        .count();
    let locked = answers
        .iter()
        .filter(|a| a.error_type() == Some("CodeLockout"))
        .count();
    assert_eq!((checked, locked), (3, 7), "{answers:?}");
    let mut verify = ready("verify-auth-challenge", &env).await;
    let (a, _) = verify
        .invoke(&verify_event("vic", &private, &code))
        .await
        .unwrap();
    assert_eq!(
        a.error_type(),
        Some("CodeLockout"),
        "the right answer is refused too: {a:?}"
    );
}

/// A refusal by policy is an answer: success, counted, logged; never a
/// Lambda error (which Lambda would retry and park in the dead-letter
/// queue with the phone and the encrypted code).
#[tokio::test(flavor = "current_thread")]
async fn refused_sends_are_settled_not_retried() {
    let codes = Codes::new().await;
    let table = limits_table().await;
    let (_ddb, ddb) = atomic_dynamodb().await;
    let phone = unique_phone("+1802");
    let env = env(&[
        ("KEY_ARN", &codes.key_arn),
        ("SMS_LIMIT_TABLE", &table),
        ("LIMIT_KEY_SECRET", LIMIT_KEY),
        ("AWS_ENDPOINT_URL_DYNAMODB", &ddb),
        ("SMS_LIMIT_PER_PHONE", "1/1h"),
    ]);
    let mut f = ready("custom-sms-sender", &env).await;
    for (i, plain) in ["135790", "246801"].iter().enumerate() {
        let (a, _) = f
            .invoke(&sender_event(
                "CustomSMSSender_ResendCode",
                "wes",
                &phone,
                &codes.code(plain).await,
            ))
            .await
            .unwrap();
        assert!(!a.is_error(), "send {i}: {a:?}");
        if i == 1 {
            assert_eq!(refused_as(&a), Some("RateLimited"), "{a:?}");
        }
    }
    assert_eq!(sms_to(&phone).await, 1);
    let logs = f.finish().await;
    assert!(logs.stdout.contains("\"SmsRefused\":1"), "counted (EMF)");
    assert!(
        !logs.stdout.contains(&phone) && !logs.stderr.contains(&phone),
        "masked"
    );
}

/// A sign-in the guard lets through without the factor the policy wanted
/// (TOTP chosen, no phone, set-up not done) is counted as
/// `SignInWithoutFactor` with its reason, for the template's alarm.
#[tokio::test(flavor = "current_thread")]
async fn a_sign_in_without_the_factor_is_counted() {
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(
            &workspace_tests::function_binary("pre-authentication"),
            &env(&[]),
        )
        .await
        .unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let event = json!({
        "version": "1", "region": "us-east-1", "userPoolId": POOL, "userName": "tina",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "triggerSource": "PreAuthentication_Authentication",
        "request": {"userAttributes": {"email": "tina@example.com", "custom:mfa_preference": "TOTP",
                    "cognito:user_status": "CONFIRMED"}, "validationData": null, "userNotFound": false},
        "response": {}
    });
    let (a, _) = f.invoke(&event).await.unwrap();
    assert!(!a.is_error(), "{a:?}");
    let logs = f.finish().await;
    let line = logs
        .stdout
        .lines()
        .find(|l| l.contains("\"SignInWithoutFactor\":1"))
        .unwrap_or_else(|| panic!("no SignInWithoutFactor metric: {}", logs.stdout));
    let doc: Value = serde_json::from_str(line).expect("EMF JSON");
    assert_eq!(doc["Reason"], "totp_set_up_in_app");
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "CognitoMfaTriggers"
    );
}
