//! The challenge secret across a rotation, against moto's Secrets Manager
//! over HTTP (`MOTO_ENDPOINT`, started by `scripts/test`): a code issued
//! under the value before a rotation is accepted after it (as `AWSPREVIOUS`),
//! a code issued under a value the secret never had is not, and neither is
//! one from two rotations back.

use challenge_code::{
    CACHE_VAR, CodeStamp, HashingSecret, OneTimeCode, RotatingSecret, SECRET_ARN_VAR, Verdict,
};

const NOW: u64 = 1_800_000_000;

fn value(n: u32) -> String {
    format!(
        "rotation-test-value-{n}-{}-0123456789abcdef",
        std::process::id()
    )
}

#[tokio::test]
async fn a_code_issued_before_a_rotation_is_accepted_after_it_and_an_unknown_one_is_not() {
    let sdk = harness::moto::sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = sm
        .create_secret()
        .name(format!("challenge-rotation-{}", std::process::id()))
        .secret_string(value(1))
        .send()
        .await
        .expect("CreateSecret in moto")
        .arn()
        .expect("an ARN")
        .to_owned();
    // Read again on every call, to see each rotation at once.
    let env = [(SECRET_ARN_VAR, arn.as_str()), (CACHE_VAR, "0")];
    let secret = RotatingSecret::load_with(&env[..], &sdk).await.unwrap();

    let before = secret.keys().await;
    assert!(
        before.previous.is_none(),
        "a new secret has no previous version"
    );
    let code = OneTimeCode::generate().unwrap();
    let stamp = CodeStamp::issue(&before.current, "alice", &code, NOW, 300);
    assert_eq!(
        before
            .keys()
            .check(&stamp, "alice", Some(code.reveal()), NOW + 1),
        Verdict::Correct
    );

    // The rotation: a new AWSCURRENT, the old value becomes AWSPREVIOUS.
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(value(2))
        .send()
        .await
        .expect("PutSecretValue in moto");
    let after = secret.keys().await;
    assert_ne!(
        after.current.keyed_hex(&["probe"]),
        before.current.keyed_hex(&["probe"]),
        "the new value is in use"
    );
    assert!(after.previous.is_some(), "AWSPREVIOUS is read too");
    // The code in flight still passes, and a wrong answer still fails.
    assert_eq!(
        after
            .keys()
            .check(&stamp, "alice", Some(code.reveal()), NOW + 2),
        Verdict::Correct
    );
    let wrong = if code.reveal() == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        after.keys().check(&stamp, "alice", Some(wrong), NOW + 2),
        Verdict::Wrong
    );
    // A code hashed under a value the secret never had is refused.
    let unknown = HashingSecret::new(value(99).into_bytes(), "unknown").unwrap();
    let forged = CodeStamp::issue(&unknown, "alice", &code, NOW, 300);
    assert_eq!(
        after
            .keys()
            .check(&forged, "alice", Some(code.reveal()), NOW + 2),
        Verdict::Wrong
    );
    // New codes are issued under the new value.
    let fresh = CodeStamp::issue(&after.current, "alice", &code, NOW, 300);
    assert_eq!(
        fresh.check(&after.current, "alice", Some(code.reveal()), NOW + 2),
        Verdict::Correct
    );

    // Two rotations later the first value is gone.
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(value(3))
        .send()
        .await
        .expect("PutSecretValue in moto");
    let later = secret.keys().await;
    assert_eq!(
        later
            .keys()
            .check(&stamp, "alice", Some(code.reveal()), NOW + 3),
        Verdict::Wrong
    );
}

#[tokio::test]
async fn a_fixed_value_never_changes_and_a_bad_cache_time_names_its_variable() {
    let env = [(
        challenge_code::SECRET_VAR,
        "a-fixed-hashing-secret-of-more-than-32-bytes",
    )];
    let secret = RotatingSecret::load(&env[..]).await.unwrap();
    let a = secret.keys().await.current.keyed_hex(&["x"]);
    let b = secret.keys().await.current.keyed_hex(&["x"]);
    assert_eq!(a, b);
    let sdk = harness::moto::sdk_config().await;
    let e = RotatingSecret::load_with(&[(CACHE_VAR, "soon")][..], &sdk)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with(CACHE_VAR), "{e}");
}
