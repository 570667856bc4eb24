//! The workspace-wide tests live in `tests/` beside this file: they cross
//! every function (samples, faults, secrets in logs), so no one function owns
//! them. This library only finds the repository and the built binaries.

/// The repository root, for tests that read `events/` and the binaries.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A function binary built by cargo: `LAMBDA_BIN_DIR` (e.g. `target/release`)
/// or the default debug build. Panics with what to do when it is missing:
/// a test that needs it is never skipped.
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("LAMBDA_BIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"))
                .join("debug")
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} does not exist: build the functions first (`cargo build --workspace --bins`; scripts/test does)",
        path.display()
    );
    path
}

/// Trigger events the workspace tests build in many places.
pub mod events {
    use serde_json::{Value, json};

    /// A custom-sms-sender event (`source` e.g. `CustomSMSSender_SignUp`)
    /// carrying `code`, encrypted as Cognito does.
    pub fn custom_sms_sender(
        pool: &str,
        source: &str,
        user: &str,
        phone: &str,
        code: &str,
    ) -> Value {
        json!({
            "version": "1", "triggerSource": source, "region": "us-east-1",
            "userPoolId": pool, "userName": user,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "c"},
            "request": {"type": "customSMSSenderRequestV1", "code": code,
                        "userAttributes": {"phone_number": phone}}
        })
    }

    /// A confirmed sign-up of `user` (with `phone`) who chose SMS.
    pub fn post_confirmation(pool: &str, user: &str, phone: &str) -> Value {
        json!({
            "version": "1", "region": "us-east-1", "userPoolId": pool, "userName": user,
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3.529.0", "clientId": "c"},
            "triggerSource": "PostConfirmation_ConfirmSignUp",
            "request": {"userAttributes": {
                "sub": "0b7f5a2e-0000-4000-8000-000000000003",
                "cognito:user_status": "CONFIRMED",
                "phone_number": phone, "phone_number_verified": "false",
                "custom:mfa_preference": "SMS"
            }},
            "response": {}
        })
    }

    /// The first custom challenge of a sign-in (after SRP), for `user`
    /// whose phone is `phone`.
    pub fn create_auth_challenge(pool: &str, user: &str, phone: &str) -> Value {
        json!({
            "version": "1", "region": "us-east-1", "userPoolId": pool, "userName": user,
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3.529.0", "clientId": "c"},
            "triggerSource": "CreateAuthChallenge_Authentication",
            "request": {
                "userAttributes": {"phone_number": phone, "locale": "en"},
                "challengeName": "CUSTOM_CHALLENGE",
                "session": [
                    {"challengeName": "SRP_A", "challengeResult": true, "challengeMetadata": null},
                    {"challengeName": "PASSWORD_VERIFIER", "challengeResult": true, "challengeMetadata": null}
                ],
                "userNotFound": false
            },
            "response": {"publicChallengeParameters": null, "privateChallengeParameters": null, "challengeMetadata": null}
        })
    }
}
