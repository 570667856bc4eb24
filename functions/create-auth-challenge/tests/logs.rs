//! No log line holds the one-time code or the full phone number. A run of
//! create (SNS on moto) and verify (right and wrong answers) is logged at
//! TRACE through the filter the binaries install (`lambda_host::filter_for`),
//! captured, and scanned. One test in its own binary: the capturing
//! subscriber is process-global.

mod support;

use challenge_code::HashingSecret;
use create_auth_challenge::{Deps, Settings};
use lambda_runtime::tracing::subscriber::filter::LevelFilter;
use serde_json::json;
use sms_delivery::{SenderIdentity, SnsSender};

use harness::moto::LogCapture as Capture;

#[tokio::test]
async fn logs_never_hold_the_code_or_the_phone_number() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(lambda_host::filter_for(LevelFilter::TRACE))
        .with_writer(move || writer.clone())
        .init();

    let secret =
        || HashingSecret::new(b"log-scan-secret-log-scan-secret-0123".to_vec(), "t").unwrap();
    let sdk = harness::moto::sdk_config().await;
    let d = Deps::new(
        Settings::from_source(&[("CODE_TTL_SECONDS", "180")][..]).unwrap(),
        secret(),
        SnsSender::new(aws_sdk_sns::Client::new(&sdk), SenderIdentity::default()),
        send_limits::SendGate::<send_limits::MemoryLimiter>::new(Default::default(), None),
    );
    let phone = format!("+8180{:08}", getrandom::u32().unwrap() % 100_000_000);
    let event = json!({
        "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_LogScan02",
        "userName": "log-user", "triggerSource": "CreateAuthChallenge_Authentication",
        "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
        "request": {
            "userAttributes": {"sub": "s", "phone_number": phone},
            "challengeName": "CUSTOM_CHALLENGE",
            "session": [
                {"challengeName": "SRP_A", "challengeResult": true},
                {"challengeName": "PASSWORD_VERIFIER", "challengeResult": true}
            ],
            "userNotFound": false
        },
        "response": {}
    });
    let now = challenge_code::unix_now();
    let out = create_auth_challenge::handle(&d, event, now).await.unwrap();
    let sent = support::sms_to(&phone).await;
    assert_eq!(sent.len(), 1);
    let code: String = sent[0].chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6);
    let private = out["response"]["privateChallengeParameters"].clone();
    for answer in [code.as_str(), "000000", ""] {
        let v = json!({
            "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_LogScan02",
            "userName": "log-user", "triggerSource": "VerifyAuthChallengeResponse_Authentication",
            "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
            "request": {"userAttributes": {}, "privateChallengeParameters": private,
                        "challengeAnswer": answer, "userNotFound": false},
            "response": {"answerCorrect": null}
        });
        verify_auth_challenge::handle(&secret(), v, now + 1).unwrap();
    }

    let logs = capture.text();
    // The capture works: the handlers' own lines are there.
    assert!(logs.contains("code sent by SMS"), "{logs}");
    assert!(logs.contains("answer checked"), "{logs}");
    assert!(
        !logs.contains(&code),
        "the code {code} is in the logs:\n{logs}"
    );
    assert!(
        !logs.contains(&phone),
        "the phone number is in the logs:\n{logs}"
    );
    assert!(
        !logs.contains(&phone[1..]),
        "the phone digits are in the logs:\n{logs}"
    );
}
