//! The handler against moto over HTTP: a KMS key made in moto, codes
//! encrypted the way Cognito encrypts them (AWS Encryption SDK, KMS keyring
//! on that key, format v1, suite 0x0378, encryption context `userpool-id`;
//! for one source by the Python Encryption SDK), decrypted by the same
//! `EsdkDecryptor` the Lambda binary builds, and the email sent through SES
//! v2 to moto and found in moto's record. moto keeps only the HTML part of a
//! two-part email, so the text part (and every part's charset) is read from
//! the request itself, captured on its way out.
//!
//! Needs `MOTO_ENDPOINT` and `MOTO_DYNAMODB_ENDPOINT` (`scripts/test` starts
//! both); the concurrency test runs the function binary cargo built for
//! this package under the local Runtime API.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_sesv2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sesv2::config::{ConfigBag, Intercept, RuntimeComponents};
use code_decrypt::{EsdkDecryptor, encode_code, encrypt_like_cognito, kms_keyring};
use custom_email_sender::{Deps, SenderError};
use email_delivery::{SesSender, SesSettings};
use email_messages::{MessageKind, Templates};
use harness::moto::MotoEmail;
use harness::runtime_api::{self, Answer};
use send_limits::{DynamoLimiter, LimitSpec, Limits, SendGate};
use serde_json::{Value, json};

const POOL: &str = "us-east-1_MotoMail1";
const LIMIT_KEY: &str = "test-only-limit-key-test-only-limit-key";

/// The SES v2 requests a client sent, as JSON.
#[derive(Debug, Clone, Default)]
struct Requests(Arc<Mutex<Vec<Value>>>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sesv2::error::BoxError> {
        if let Some(bytes) = context.request().body().bytes()
            && let Ok(v) = serde_json::from_slice(bytes)
            && let Ok(mut all) = self.0.lock()
        {
            all.push(v);
        }
        Ok(())
    }
}

impl Requests {
    /// The `SendEmail` requests to `to`.
    fn to(&self, to: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["Destination"]["ToAddresses"] == json!([to]))
            .cloned()
            .collect()
    }
}

/// A sender address no other test of this run uses.
fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{what}-{}-{n}@mail.example.org", std::process::id())
}

struct Env<L> {
    deps: Deps<EsdkDecryptor, SesSender, L>,
    requests: Requests,
    kms: aws_sdk_kms::Client,
    key_arn: String,
    from: String,
}

/// A From identity verified in moto (SES v2 `CreateEmailIdentity`, which
/// moto verifies at once); it also loads moto's SES backend before the
/// function's 2 s budget applies.
async fn verified_sender() -> String {
    let sdk =
        harness::moto::sdk_config_at(&harness::moto::endpoint(), sdk_config::Budget::INTERACTIVE)
            .await;
    let from = unique("no-reply");
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("CreateEmailIdentity in moto");
    from
}

async fn env_with<L>(from: String, gate: SendGate<L>) -> Env<L> {
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let decryptor = EsdkDecryptor::with_kms(kms.clone(), &key_arn)
        .await
        .unwrap();
    let requests = Requests::default();
    let ses = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk)
            .interceptor(requests.clone())
            .build(),
    );
    let settings = SesSettings::from_source(&[("EMAIL_FROM", from.as_str())][..]).unwrap();
    Env {
        deps: Deps {
            decryptor,
            sender: SesSender::new(ses, settings),
            templates: Templates::built_in().unwrap(),
            gate,
            contact_guard: None,
        },
        requests,
        kms,
        key_arn,
        from,
    }
}

async fn env() -> Env<send_limits::MemoryLimiter> {
    env_with(
        verified_sender().await,
        SendGate::new(Default::default(), None),
    )
    .await
}

async fn cognito_code<L>(env: &Env<L>, plaintext: &str, pool: &str) -> String {
    let keyring = kms_keyring(env.kms.clone(), &env.key_arn).await.unwrap();
    encode_code(
        &encrypt_like_cognito(&keyring, plaintext, pool, false)
            .await
            .unwrap(),
    )
}

fn event(source: &str, user: &str, email: &str, locale: &str, code: Value) -> Value {
    json!({
        "version": "1",
        "triggerSource": source,
        "region": "us-east-1",
        "userPoolId": POOL,
        "userName": user,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "abc"},
        "request": {
            "type": "customEmailSenderRequestV1",
            "code": code,
            "clientMetadata": null,
            "userAttributes": {
                "sub": "8d4c1a52-0000-4000-8000-00000000abcd",
                "email": email,
                "email_verified": "true",
                "locale": locale
            }
        }
    })
}

async fn emails_to(address: &str) -> Vec<MotoEmail> {
    harness::moto::sent_email()
        .await
        .into_iter()
        .filter(|m| m.to == [address])
        .collect()
}

/// The Python `aws-encryption-sdk` (pinned in .ci/requirements.txt,
/// installed in .venv by scripts/venv) encrypting against moto's KMS, with
/// the custom-sms-sender's script: one key, one way of encrypting, for both
/// senders.
fn python_encrypt(key_arn: &str, pool: &str, plaintext: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/venv (it installs the pinned aws-encryption-sdk)",
        python.display()
    );
    let script = root.join("functions/custom-sms-sender/tests/encrypt_like_cognito.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([key_arn, pool, plaintext])
        .envs(harness::moto::child_env())
        .output()
        .expect("running the Python Encryption SDK");
    assert!(
        out.status.success(),
        "Python ESDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn every_trigger_source_in_english_and_japanese_reaches_ses() {
    let env = env().await;
    // (source, secret as Cognito encrypts it, what the email must show,
    // encrypted by the Python SDK, English subject, Japanese subject)
    let cases = [
        (
            "SignUp",
            Some("402918"),
            "402918",
            false,
            "Your verification code",
            "確認コード",
        ),
        (
            "ResendCode",
            Some("551037"),
            "551037",
            false,
            "Your verification code",
            "確認コード",
        ),
        (
            "ForgotPassword",
            Some("660914"),
            "660914",
            true,
            "Your password reset code",
            "パスワード再設定用のコード",
        ),
        (
            "UpdateUserAttribute",
            Some("118206"),
            "118206",
            false,
            "Confirm your new email address",
            "新しいメールアドレスの確認",
        ),
        (
            "VerifyUserAttribute",
            Some("930475"),
            "930475",
            false,
            "Verify your email address",
            "メールアドレスの確認",
        ),
        (
            "AdminCreateUser",
            Some("P&lt;4w&amp;rd&gt;"),
            "P<4w&rd>",
            false,
            "Your new account",
            "アカウントが作成されました",
        ),
        (
            "Authentication",
            Some("284601"),
            "284601",
            false,
            "Your sign-in code",
            "サインイン用の認証コード",
        ),
        (
            "AccountTakeOverNotification",
            None,
            "",
            false,
            "We blocked a suspicious sign-in",
            "不審なサインインをブロックしました",
        ),
    ];
    let mut sent = 0;
    for (kind, secret, shown, python, en_subject, ja_subject) in cases {
        let source = format!("CustomEmailSender_{kind}");
        let kind = MessageKind::from_name(kind).unwrap();
        for (locale, subject) in [("en", en_subject), ("ja-JP", ja_subject)] {
            let what = format!("{source} {locale}");
            let to = unique("user");
            let code = match secret {
                Some(s) if python => {
                    let c = python_encrypt(&env.key_arn, POOL, s);
                    // Format v1, type 0x80, suite 0x0378: what Cognito sends.
                    assert_eq!(
                        &code_decrypt::decode_code(&c).unwrap()[..4],
                        &[0x01, 0x80, 0x03, 0x78],
                        "{what}"
                    );
                    json!(c)
                }
                Some(s) => json!(cognito_code(&env, s, POOL).await),
                None => Value::Null,
            };
            let out =
                custom_email_sender::handle(&env.deps, event(&source, "erin", &to, locale, code))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(out["response"]["outcome"], "sent", "{what}");
            sent += 1;

            let want = env
                .deps
                .templates
                .render(kind, Some(locale), shown, "erin")
                .unwrap();
            assert_eq!(want.subject, subject, "{what}");
            // What moto's SES recorded: the From identity, the subject and
            // the HTML part, with the code (HTML-escaped where it needs it).
            let recorded = emails_to(&to).await;
            assert_eq!(recorded.len(), 1, "{what}: {recorded:?}");
            assert_eq!(recorded[0].from, env.from, "{what}");
            assert_eq!(recorded[0].subject, subject, "{what}");
            assert_eq!(recorded[0].body, want.html, "{what}");
            // The request: three parts in UTF-8, the code in text and HTML.
            let requests = env.requests.to(&to);
            assert_eq!(requests.len(), 1, "{what}");
            let simple = &requests[0]["Content"]["Simple"];
            assert_eq!(simple["Subject"]["Data"], subject, "{what}");
            assert_eq!(simple["Body"]["Text"]["Data"], want.text.as_str(), "{what}");
            assert_eq!(simple["Body"]["Html"]["Data"], want.html.as_str(), "{what}");
            for part in [
                &simple["Subject"],
                &simple["Body"]["Text"],
                &simple["Body"]["Html"],
            ] {
                assert_eq!(part["Charset"], "UTF-8", "{what}");
            }
            assert_eq!(requests[0]["FromEmailAddress"], env.from.as_str());
            if kind.has_code() {
                assert!(want.text.contains(shown), "{what}: {}", want.text);
                let in_html = email_messages::html_escape(shown);
                assert!(want.html.contains(&in_html), "{what}");
                assert!(!want.subject.contains(shown), "{what}");
            }
            if kind == MessageKind::AdminCreateUser {
                assert!(want.html.contains("P&lt;4w&amp;rd&gt;") && !want.html.contains("P<4w"));
                assert!(want.text.contains("erin"), "{what}");
            }
            if locale == "ja-JP" {
                assert!(
                    want.text
                        .chars()
                        .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
                    "{what}"
                );
            }
        }
    }
    assert_eq!(sent, 16);
}

#[tokio::test]
async fn an_unverified_from_identity_is_a_clear_lambda_error() {
    // A From address nobody verified in moto.
    let env = env_with(
        unique("unverified"),
        SendGate::<send_limits::MemoryLimiter>::new(Default::default(), None),
    )
    .await;
    let to = "kim.lee.unverified@example.org";
    let code = cognito_code(&env, "902211", POOL).await;
    let e = custom_email_sender::handle(
        &env.deps,
        event(
            "CustomEmailSender_Authentication",
            "kim",
            to,
            "en",
            json!(code),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "MessageRejected", "{e}");
    let text = e.to_string();
    assert!(text.contains("k***@example.org"), "{text}");
    assert!(text.contains("EMAIL_FROM"), "{text}");
    assert!(
        !text.contains("kim.lee") && !text.contains("902211"),
        "{text}"
    );
    // moto's message quotes the From address: it is not repeated.
    assert!(!text.contains(&env.from), "{text}");
    assert!(emails_to(to).await.is_empty());
}

#[tokio::test]
async fn a_code_for_another_user_pool_is_refused_and_nothing_is_sent() {
    let env = env().await;
    let to = unique("foreign");
    let code = cognito_code(&env, "284601", "us-east-1_SomeoneElse").await;
    let e = custom_email_sender::handle(
        &env.deps,
        event(
            "CustomEmailSender_Authentication",
            "u",
            &to,
            "en",
            json!(code),
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SenderError::WrongUserPool(_)), "{e:?}");
    assert_eq!(e.error_type(), "WrongUserPool");
    assert!(e.to_string().contains("us-east-1_SomeoneElse") && !e.to_string().contains("284601"));
    // The same from the Python SDK.
    let other = python_encrypt(&env.key_arn, "us-east-1_PyOther", "615284");
    let e = custom_email_sender::handle(
        &env.deps,
        event("CustomEmailSender_SignUp", "u", &to, "en", json!(other)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "WrongUserPool");
    assert!(emails_to(&to).await.is_empty());
    assert!(env.requests.to(&to).is_empty(), "SES was called");
}

async fn dynamo_limiter(limits: Limits) -> DynamoLimiter {
    let sdk = harness::moto::sdk_config_at(
        &harness::moto::dynamodb_endpoint(),
        sdk_config::Budget::SYNC_TRIGGER,
    )
    .await;
    DynamoLimiter::load(&sdk, limits, &[("LIMIT_KEY_SECRET", LIMIT_KEY)][..])
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn the_same_event_twice_sends_one_email_and_a_missing_table_fails_by_kind() {
    let table =
        harness::moto::new_limits_table(&harness::moto::dynamodb_client().await, "email-dedup")
            .await;
    let limiter = dynamo_limiter(Limits {
        email_per_address: LimitSpec::parse("10/1h"),
        table: Some(table),
        ..Limits::default()
    })
    .await;
    let env = env_with(
        verified_sender().await,
        SendGate::new(Default::default(), Some(limiter)),
    )
    .await;
    let to = unique("twice");
    let e = event(
        "CustomEmailSender_SignUp",
        "twice",
        &to,
        "en",
        json!(cognito_code(&env, "654321", POOL).await),
    );
    let first = custom_email_sender::handle(&env.deps, e.clone())
        .await
        .unwrap();
    let second = custom_email_sender::handle(&env.deps, e).await.unwrap();
    assert_eq!(first["response"]["outcome"], "sent");
    assert_eq!(second["response"]["outcome"], "duplicate");
    assert_eq!(emails_to(&to).await.len(), 1);

    // A table that does not exist: sign-up fails closed (a Lambda error),
    // a sign-in code fails open (sent).
    let limiter = dynamo_limiter(Limits {
        email_per_address: LimitSpec::parse("10/1h"),
        table: Some(format!("no-such-table-{}", std::process::id())),
        ..Limits::default()
    })
    .await;
    let env = env_with(
        env.from.clone(),
        SendGate::new(Default::default(), Some(limiter)),
    )
    .await;
    let to = unique("no-table");
    let e = custom_email_sender::handle(
        &env.deps,
        event(
            "CustomEmailSender_SignUp",
            "t",
            &to,
            "en",
            json!(cognito_code(&env, "100200", POOL).await),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "LimitsUnavailable", "{e}");
    let out = custom_email_sender::handle(
        &env.deps,
        event(
            "CustomEmailSender_Authentication",
            "t",
            &to,
            "en",
            json!(cognito_code(&env, "100201", POOL).await),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out["response"]["outcome"], "sent");
    assert_eq!(emails_to(&to).await.len(), 1);
}

fn settled_as(a: &Answer) -> Option<(&str, Option<&str>)> {
    match a {
        Answer::Response(v) => Some((
            v["response"]["outcome"].as_str()?,
            v["response"]["errorType"].as_str(),
        )),
        Answer::Error(_) => None,
    }
}

/// Twenty sends to one address through four instances of the function
/// binary at once, with `EMAIL_LIMIT_PER_ADDRESS=5/1h`: exactly five go out,
/// fifteen are settled as refused (success, `RateLimited`), and moto's SES
/// holds five emails to the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sends_to_one_address_with_a_limit_of_five_send_exactly_five() {
    let from = verified_sender().await;
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = kms_keyring(kms, &key_arn).await.unwrap();
    let table =
        harness::moto::new_limits_table(&harness::moto::dynamodb_client().await, "email-abuse")
            .await;
    // DynamoDB through a proxy that hands moto one request at a time
    // (moto's conditional writes are not atomic under concurrency,
    // DynamoDB's are); the functions stay concurrent.
    let proxy = harness::fault_proxy::FaultProxy::serializing(&harness::moto::dynamodb_endpoint())
        .await
        .unwrap();
    let ddb = proxy.url();
    let to = unique("victim");
    let mut events = Vec::new();
    for i in 0..20 {
        let code = encode_code(
            &encrypt_like_cognito(&keyring, &format!("{:06}", 300_000 + i), POOL, false)
                .await
                .unwrap(),
        );
        let mut e = event(
            "CustomEmailSender_SignUp",
            &format!("bomber-{i}"),
            &to,
            "en",
            json!(code),
        );
        // Unverified holders share the address's common budget.
        e["request"]["userAttributes"]["email_verified"] = json!("false");
        events.push(e);
    }
    let mut env = harness::moto::child_env();
    env.extend(
        [
            ("KEY_ARN", key_arn.as_str()),
            ("EMAIL_FROM", from.as_str()),
            ("LIMIT_TABLE", table.as_str()),
            ("LIMIT_KEY_SECRET", LIMIT_KEY),
            ("AWS_ENDPOINT_URL_DYNAMODB", ddb.as_str()),
            ("EMAIL_LIMIT_PER_ADDRESS", "5/1h"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let api = runtime_api::start_static().await.unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_custom-email-sender"));
    let functions = runtime_api::spawn_instances(api, binary, &env, 4)
        .await
        .unwrap();
    let answers: Vec<Answer> = runtime_api::invoke_concurrently(functions, events)
        .await
        .into_iter()
        .map(|a| a.expect("an answer"))
        .collect();
    let sent = answers
        .iter()
        .filter(|a| settled_as(a) == Some(("sent", None)))
        .count();
    let limited = answers
        .iter()
        .filter(|a| settled_as(a) == Some(("refused", Some("RateLimited"))))
        .count();
    assert_eq!((sent, limited), (5, 15), "{answers:?}");
    assert_eq!(emails_to(&to).await.len(), 5, "moto's SES record");
    // A refusal names the limit, and the address only masked.
    let reason = answers
        .iter()
        .find_map(|a| a.value()["response"]["reason"].as_str())
        .unwrap();
    assert!(
        reason.contains("EMAIL_LIMIT_PER_ADDRESS") && reason.contains("v***@mail.example.org"),
        "{reason}"
    );
    assert!(!reason.contains(&to), "{reason}");
}
