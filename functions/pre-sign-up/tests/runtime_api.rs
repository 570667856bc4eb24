//! The `pre-sign-up` binary under a Lambda Runtime API (our own harness):
//! every sample event gets the outcome stored beside it, a malformed event
//! gets an error that says what is wrong and the process keeps serving, and a
//! bad configuration fails the init phase naming the variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::runtime_api::{Answer, HarnessError, RuntimeApi};
use replay::Sample;
use replay::expect::Outcome;
use serde_json::json;

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pre-sign-up"))
}

fn samples() -> Vec<Sample> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/pre-sign-up");
    let files = replay::collect(&[dir]).expect("events/pre-sign-up exists");
    assert!(
        files.len() >= 20,
        "expected the pre-sign-up samples, found {}",
        files.len()
    );
    files
        .iter()
        .map(|f| Sample::load(f).expect("sample loads"))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn every_sample_gets_its_expected_outcome_from_the_binary() {
    let api = RuntimeApi::start().await.unwrap();
    for sample in samples() {
        let expected = sample
            .expected
            .clone()
            .expect("every sample has an expectation");
        let env: Vec<(String, String)> = expected.env.clone().into_iter().collect();
        let mut f = api.spawn(&binary(), &env).await.unwrap();
        f.ready(Duration::from_secs(10)).await.unwrap();
        let (answer, _) = f.invoke(&sample.event).await.unwrap();
        let name = sample.path.display().to_string();
        match expected.outcome {
            Outcome::Accepted => {
                let Answer::Response(v) = &answer else {
                    panic!("{name}: expected a response, got {answer:?}");
                };
                let r = &v["response"];
                assert_eq!(r["autoConfirmUser"], json!(false), "{name}");
                assert_eq!(r["autoVerifyEmail"], json!(false), "{name}");
                assert_eq!(r["autoVerifyPhone"], json!(false), "{name}");
                // The whole event comes back.
                assert_eq!(v["userName"], sample.event["userName"], "{name}");
                assert_eq!(v["triggerSource"], sample.event["triggerSource"], "{name}");
            }
            Outcome::Refused => {
                assert!(
                    answer.is_error(),
                    "{name}: expected an error, got {answer:?}"
                );
                if let Some(t) = &expected.error_type {
                    assert_eq!(answer.error_type(), Some(t.as_str()), "{name}");
                }
                if let Some(m) = &expected.message_contains {
                    let msg = answer.error_message().unwrap_or_default();
                    assert!(msg.contains(m.as_str()), "{name}: {msg}");
                }
            }
        }
        assert!(f.is_running(), "{name}: the process must keep serving");
        f.finish().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_events_get_clear_errors_and_the_process_keeps_serving() {
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api.spawn(&binary(), &[]).await.unwrap();
    f.ready(Duration::from_secs(10)).await.unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"[1,2,3]".to_vec(), "an array"),
        (b"\"hello\"".to_vec(), "a string"),
        (
            br#"{"triggerSource":"PreSignUp_SignUp","request":{"userAttributes":[]}}"#.to_vec(),
            "userAttributes",
        ),
        (
            br#"{"triggerSource":"PreSignUp_SignUp","request":"x"}"#.to_vec(),
            "request",
        ),
        (
            br#"{"triggerSource":"PreSignUp_SignUp"}"#.to_vec(),
            "request",
        ),
        (
            br#"{"request":{"userAttributes":{}}}"#.to_vec(),
            "triggerSource",
        ),
        (b"{not json".to_vec(), ""),
    ];
    for (body, mention) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (answer, _) = f
            .invoke_raw(body, Duration::from_secs(5), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert!(answer.is_error(), "{shown}: {answer:?}");
        let msg = answer.error_message().unwrap_or_default();
        assert!(!msg.is_empty(), "{shown}: empty message");
        assert!(
            msg.contains(mention),
            "{shown}: {msg:?} should mention {mention:?}"
        );
    }
    // And a good event still works afterwards.
    let good = json!({
        "triggerSource": "PreSignUp_SignUp", "userName": "u", "callerContext": {},
        "request": {"userAttributes": {"phone_number": "+14155550123"}}, "response": {}
    });
    let (answer, _) = f.invoke(&good).await.unwrap();
    assert!(!answer.is_error(), "{answer:?}");
    assert!(f.is_running());
    f.finish().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_setting_fails_init_naming_the_variable() {
    let api = RuntimeApi::start().await.unwrap();
    for (var, value) in [
        ("MFA_CONFIGURATION", "SOMETIMES"),
        ("MFA_METHODS", "SMS,VOICE"),
        ("ALLOWED_EMAIL_DOMAINS", "*.example.com"),
    ] {
        let mut f = api
            .spawn(&binary(), &[(var.to_owned(), value.to_owned())])
            .await
            .unwrap();
        match f.ready(Duration::from_secs(10)).await {
            Err(HarnessError::InitFailed(v)) => {
                let msg = v["errorMessage"].as_str().unwrap_or_default();
                assert!(msg.contains(var), "{var}: {msg}");
                assert_eq!(v["errorType"], "InvalidConfiguration");
            }
            other => panic!("{var}={value}: expected an init failure, got {other:?}"),
        }
        f.finish().await;
    }
}
