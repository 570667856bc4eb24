//! create and verify against SNS over HTTP (moto): one SMS per session with
//! the code verify then accepts, none for a retry or an unknown user, and a
//! different code in every session. Each test uses its own phone numbers, so
//! the shared moto server's SMS record can be read per test.

mod support;

use std::collections::HashMap;

use challenge_code::HashingSecret;
use create_auth_challenge::{Deps, Settings};
use serde_json::{Value, json};
use sms_delivery::{SenderIdentity, SnsSender};
use support::sms_to;

const SECRET: &[u8] = b"moto-test-secret-moto-test-secret-0123456789";

fn secret() -> HashingSecret {
    HashingSecret::new(SECRET.to_vec(), "test").unwrap()
}

fn unique_phone() -> String {
    format!("+8170{:08}", getrandom::u32().unwrap() % 100_000_000)
}

async fn deps() -> Deps<SnsSender, send_limits::MemoryLimiter> {
    let sdk = harness::moto::sdk_config().await;
    Deps::new(
        Settings::from_source(&[("CODE_TTL_SECONDS", "180")][..]).unwrap(),
        secret(),
        SnsSender::new(aws_sdk_sns::Client::new(&sdk), SenderIdentity::default()),
        send_limits::SendGate::<send_limits::MemoryLimiter>::new(Default::default(), None),
    )
}

fn entry(name: &str, ok: bool, metadata: Option<&str>) -> Value {
    json!({"challengeName": name, "challengeResult": ok, "challengeMetadata": metadata})
}

fn create_event(phone: &str, wrong_codes: &[&str], not_found: bool) -> Value {
    let mut session = vec![
        entry("SRP_A", true, None),
        entry("PASSWORD_VERIFIER", true, None),
    ];
    session.extend(
        wrong_codes
            .iter()
            .map(|m| entry("CUSTOM_CHALLENGE", false, Some(m))),
    );
    json!({
        "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_MotoAuth1",
        "userName": "moto-user", "triggerSource": "CreateAuthChallenge_Authentication",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {
            "userAttributes": {"sub": "s", "phone_number": phone, "locale": "en"},
            "challengeName": "CUSTOM_CHALLENGE", "session": session, "userNotFound": not_found
        },
        "response": {"publicChallengeParameters": null, "privateChallengeParameters": null, "challengeMetadata": null}
    })
}

fn verify_event(private: &Value, answer: &str) -> Value {
    json!({
        "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_MotoAuth1",
        "userName": "moto-user", "triggerSource": "VerifyAuthChallengeResponse_Authentication",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {"userAttributes": {"sub": "s"}, "privateChallengeParameters": private,
                    "challengeAnswer": answer, "userNotFound": false},
        "response": {"answerCorrect": null}
    })
}

fn code_in(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(digits.len(), 6, "{text}");
    digits
}

fn verify(private: &Value, answer: &str, now: u64) -> bool {
    let out = verify_auth_challenge::handle(&secret(), verify_event(private, answer), now).unwrap();
    out["response"]["answerCorrect"].as_bool().unwrap()
}

#[tokio::test]
async fn one_sms_per_session_with_the_code_verify_accepts_and_none_for_a_retry() {
    let d = deps().await;
    let phone = unique_phone();
    let now = challenge_code::unix_now();
    let first = create_auth_challenge::handle(&d, create_event(&phone, &[], false), now)
        .await
        .unwrap();
    let sent = sms_to(&phone).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("Your authentication code is "),
        "{}",
        sent[0]
    );
    let code = code_in(&sent[0]);
    let private = first["response"]["privateChallengeParameters"].clone();
    assert!(!first["response"].to_string().contains(&code));

    // A wrong answer, then the retry: same stamp, no second SMS.
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert!(!verify(&private, &wrong, now + 1));
    let metadata = first["response"]["challengeMetadata"].as_str().unwrap();
    let retry =
        create_auth_challenge::handle(&d, create_event(&phone, &[metadata], false), now + 5)
            .await
            .unwrap();
    assert_eq!(sms_to(&phone).await.len(), 1, "the retry sent an SMS");
    assert_eq!(retry["response"]["privateChallengeParameters"], private);

    // The code from the SMS is what verify accepts (through the retry's
    // parameters too), until it expires.
    let retry_private = retry["response"]["privateChallengeParameters"].clone();
    assert!(verify(&retry_private, &code, now + 6));
    assert!(verify(&private, &code, now + 179));
    assert!(!verify(&private, &code, now + 180));
}

#[tokio::test]
async fn an_expired_code_is_replaced_by_one_fresh_sms() {
    let d = deps().await;
    let phone = unique_phone();
    let now = challenge_code::unix_now();
    let first = create_auth_challenge::handle(&d, create_event(&phone, &[], false), now)
        .await
        .unwrap();
    let metadata = first["response"]["challengeMetadata"].as_str().unwrap();
    let late =
        create_auth_challenge::handle(&d, create_event(&phone, &[metadata], false), now + 200)
            .await
            .unwrap();
    let sent = sms_to(&phone).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let fresh = code_in(&sent[1]);
    assert!(verify(
        &late["response"]["privateChallengeParameters"],
        &fresh,
        now + 201
    ));
}

#[tokio::test]
async fn codes_differ_across_sessions() {
    let d = deps().await;
    let phone = unique_phone();
    let now = challenge_code::unix_now();
    let mut privates = Vec::new();
    for _ in 0..5 {
        let out = create_auth_challenge::handle(&d, create_event(&phone, &[], false), now)
            .await
            .unwrap();
        privates.push(out["response"]["privateChallengeParameters"].clone());
    }
    let codes: Vec<String> = sms_to(&phone).await.iter().map(|t| code_in(t)).collect();
    assert_eq!(codes.len(), 5);
    let distinct: std::collections::HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), 5, "{codes:?}");
    // Each session's code opens its own session only.
    for (i, code) in codes.iter().enumerate() {
        for (j, private) in privates.iter().enumerate() {
            assert_eq!(
                verify(private, code, now + 1),
                i == j,
                "code {i} vs session {j}"
            );
        }
    }
}

#[tokio::test]
async fn an_unknown_user_gets_a_challenge_and_no_sms() {
    let d = deps().await;
    let phone = unique_phone();
    let out = create_auth_challenge::handle(
        &d,
        create_event(&phone, &[], true),
        challenge_code::unix_now(),
    )
    .await
    .unwrap();
    let private: HashMap<String, String> =
        serde_json::from_value(out["response"]["privateChallengeParameters"].clone()).unwrap();
    assert!(!private.is_empty());
    assert!(sms_to(&phone).await.is_empty());
}
