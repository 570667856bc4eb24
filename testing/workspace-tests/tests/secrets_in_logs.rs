//! No secret and no personal data in any log line, at the most verbose level.
//!
//! Every sample event under `events/` goes through its function's binary
//! under our Runtime API with `AWS_LAMBDA_LOG_LEVEL=TRACE`, with AWS on moto,
//! and the whole output of each process (stdout and stderr) is searched for:
//! every phone number and email of the event, a verify event's answer, the
//! code or temporary password a custom SMS sender event carries (decrypted,
//! and HTML-escaped as Cognito sends it), and every code that reached moto's
//! SNS during the run. At TRACE `lambda_runtime` itself would log the raw
//! event; the functions' log filter must keep that off.
//!
//! To go down the success paths too, the custom SMS sender samples are
//! re-encrypted for a moto KMS key (the samples carry a development-key
//! ciphertext), and the post-confirmation samples' users are created in a
//! moto pool first.
//!
//! Needs `MOTO_ENDPOINT` and the function binaries (`scripts/test`;
//! `LAMBDA_BIN_DIR=target/release` for the release build).

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use code_decrypt::CodeDecryptor;
use harness::runtime_api::RuntimeApi;
use replay::Sample;
use serde_json::Value;

const SECRET: &str = "secrets-in-logs-hashing-secret-0123456789abcdef";

fn samples() -> Vec<(String, Sample)> {
    let events = workspace_tests::workspace_root().join("events");
    replay::collect(&[events])
        .expect("events/")
        .into_iter()
        .map(|f| {
            let function = f
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            (function, Sample::load(&f).expect("sample"))
        })
        .collect()
}

/// Strings that must never appear in a log line for this event.
fn secrets_of(event: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let request = &event["request"];
    for key in ["phone_number", "email"] {
        if let Some(v) = request["userAttributes"][key].as_str()
            && v.trim().len() >= 7
        {
            out.insert(v.trim().to_owned());
        }
    }
    // The account-change API's new address or number, in its JSON body.
    if let Some(body) = event["body"].as_str()
        && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body)
    {
        for key in ["email", "phone_number"] {
            if let Some(v) = fields.get(key).and_then(Value::as_str)
                && v.trim().len() >= 7
            {
                out.insert(v.trim().to_owned());
            }
        }
    }
    if let Some(a) = request["challengeAnswer"].as_str()
        && a.trim().len() >= 4
    {
        out.insert(a.trim().to_owned());
    }
    out
}

/// How old a sample's sign-in is (its `auth_time` against its `iat`), so
/// that a refused sample stays refused when run now.
fn sample_age(claims: &Value) -> u64 {
    let n = |k: &str| {
        claims[k]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n("iat").saturating_sub(n("auth_time"))
}

/// Six or more digits in a row (codes in SMS texts).
fn digit_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            cur.push(c);
        } else {
            if cur.len() >= 6 {
                out.push(cur.clone());
            }
            cur.clear();
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[tokio::test(flavor = "current_thread")]
async fn no_sample_leaves_a_secret_in_the_logs_at_trace() {
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms.clone(), &key_arn)
        .await
        .unwrap();
    let dev = dev_keyring::dev_decryptor().await.unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool_id = harness::moto::new_pool(&cognito, "secrets-in-logs").await;

    // The custom email sender sends from an address SES (moto) has verified.
    let email_from = "no-reply@secrets-in-logs.example.com";
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(email_from)
        .send()
        .await
        .expect("CreateEmailIdentity in moto");

    // The account-change API's user (in the moto pool, with an email and a
    // phone that must not reach a log line either) and its limits table.
    let account_user = "alice";
    let account_attributes = [
        ("email", "alice.secret@example.com"),
        ("email_verified", "true"),
        // Not +14155550123: that is the example number of the E.164 hint
        // users are shown.
        ("phone_number", "+14155550142"),
        ("phone_number_verified", "true"),
    ];
    harness::moto::new_user(&cognito, &pool_id, account_user, &account_attributes).await;
    let table =
        harness::moto::new_limits_table(&harness::moto::dynamodb_client().await, "secrets-in-logs")
            .await;

    let api = RuntimeApi::start().await.unwrap();
    let mut scanned = 0;
    let mut sms_seen: Option<usize> = None;
    let mut leaks = Vec::new();
    for (function, sample) in samples() {
        let mut event = sample.event.clone();
        let mut secrets = secrets_of(&event);
        let mut env: Vec<(String, String)> = harness::moto::child_env();
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
        env.push(("CHALLENGE_SECRET".into(), SECRET.into()));
        env.push(("KEY_ARN".into(), key_arn.clone()));
        env.push(("EMAIL_FROM".into(), email_from.into()));
        if let Some(expected) = &sample.expected {
            env.extend(expected.env.clone());
        }
        match function.as_str() {
            "custom-sms-sender" | "custom-email-sender" => {
                let pool = event["userPoolId"].as_str().unwrap_or_default().to_owned();
                if let Some(code) = event["request"]["code"].as_str()
                    && let Ok(plain) = dev.decrypt(code, &pool).await
                {
                    let plain = plain.expose().to_owned();
                    secrets.insert(plain.clone());
                    let unescaped = plain
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&#39;", "'")
                        .replace("&amp;", "&");
                    secrets.insert(unescaped.clone());
                    secrets.insert(html_escape(&unescaped));
                    let again = code_decrypt::encrypt_like_cognito(&keyring, &plain, &pool, false)
                        .await
                        .unwrap();
                    event["request"]["code"] = Value::String(code_decrypt::encode_code(&again));
                }
            }
            // The guard and post-confirmation call the admin API: their
            // users live in a moto pool.
            "post-confirmation" | "pre-authentication" => {
                if let Some(user) = event["userName"].as_str() {
                    let mut create = cognito
                        .admin_create_user()
                        .user_pool_id(&pool_id)
                        .username(user);
                    if let Some(phone) = event["request"]["userAttributes"]["phone_number"].as_str()
                    {
                        create = create.user_attributes(
                            AttributeType::builder()
                                .name("phone_number")
                                .value(phone)
                                .build()
                                .unwrap(),
                        );
                    }
                    // A sample may reuse a user name: the second create fails, the user is there.
                    let _ = create.send().await;
                    event["userPoolId"] = Value::String(pool_id.clone());
                }
            }
            "account-change" => {
                for (k, v) in [
                    ("USER_POOL_ID", pool_id.clone()),
                    ("LIMIT_TABLE", table.clone()),
                    ("LIMIT_KEY_SECRET", SECRET.to_owned()),
                    (
                        "AWS_ENDPOINT_URL_DYNAMODB",
                        harness::moto::dynamodb_endpoint(),
                    ),
                ] {
                    env.push((k.to_owned(), v));
                }
                for (name, value) in account_attributes {
                    if name == "email" || name == "phone_number" {
                        secrets.insert(value.to_owned());
                    }
                }
                if let Some(claims) = event.pointer_mut("/requestContext/authorizer/jwt/claims") {
                    // The user in the moto pool, signed in just now.
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    if claims.get("username").is_some() {
                        claims["username"] = Value::String(account_user.to_owned());
                    }
                    let age = sample_age(claims);
                    claims["auth_time"] = Value::String((now - age).to_string());
                }
            }
            _ => {}
        }
        // moto's record is read once per sample: what the last read saw is
        // where this sample's SMS begin (every read costs moto a dump of
        // all it holds).
        let sms_before = match sms_seen {
            Some(n) => n,
            None => harness::moto::sent_sms().await.len(),
        };
        let binary = workspace_tests::function_binary(&function);
        let mut f = api.spawn(&binary, &env).await.unwrap();
        let name = sample.path.display().to_string();
        if let Err(e) = f.ready(Duration::from_secs(10)).await {
            // A sample whose configuration is deliberately bad fails init;
            // its output is scanned all the same.
            let out = f.finish().await;
            let logs = out.stdout + &out.stderr;
            for s in &secrets {
                if logs.contains(s.as_str()) {
                    leaks.push(format!("{name}: init output holds {s:?} ({e})"));
                }
            }
            continue;
        }
        let _ = f
            .invoke_with(&event, Duration::from_secs(5), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = f.finish().await;
        let sent = harness::moto::sent_sms().await;
        sms_seen = Some(sent.len());
        for (_, text) in sent.into_iter().skip(sms_before) {
            secrets.extend(digit_runs(&text));
        }
        let logs = out.stdout + &out.stderr;
        assert!(
            !logs.trim().is_empty(),
            "{name}: no log output at all at TRACE"
        );
        for s in &secrets {
            if logs.contains(s.as_str()) {
                leaks.push(format!("{name}: the logs hold {s:?}"));
            }
        }
        scanned += 1;
    }
    assert!(scanned >= 50, "only {scanned} samples were run");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[test]
fn digit_runs_find_codes() {
    assert_eq!(digit_runs("Your code is 012345."), vec!["012345"]);
    assert_eq!(digit_runs("+14155550123 and 12345"), vec!["14155550123"]);
    assert!(digit_runs("no digits").is_empty());
}
