//! The VerifyAuthChallengeResponse trigger: is the answer the code we sent?
//!
//! Verify sees the user's answer and the `privateChallengeParameters` create
//! wrote: the code's keyed hash and expiry ([`challenge_code::CodeStamp`]),
//! never the code. It hashes the answer with the same secret and compares in
//! constant time. Everything that is not a valid, unexpired, matching code —
//! a missing or non-string answer, a missing or malformed stamp, an unknown
//! user — is "not correct"; the hash is computed in every case so the refusals
//! take as long as a wrong answer. Define counts the wrong answers.
//!
//! With `CODE_FAILURES_PER_USER`, wrong answers are also counted per user in
//! the SMS limits table, across sign-ins: once the window's count is reached,
//! no answer is accepted (the sign-in fails with a message safe to show)
//! until the window passes. Without it verify needs no AWS client at run
//! time: only the secret, read once at init.

use challenge_code::{CodeStamp, SecretKeys, Verdict};
use lambda_host::events::EventError;
use lambda_host::events::cognito::{
    CognitoEventUserPoolsVerifyAuthChallenge, CognitoEventUserPoolsVerifyAuthChallengeResponse,
};
use lambda_runtime::Diagnostic;
use send_limits::{Limiter, Reservation};
use serde_json::Value;
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "VerifyAuthChallengeResponse";

/// The `privateChallengeParameters` key create-auth-challenge writes with
/// its record of the code (the same name as create's `RECORD_PARAM`).
pub const RECORD_PARAM: &str = "codeRecord";

/// What the user reads while locked out (the same as create's).
pub const LOCKED_OUT_MESSAGE: &str =
    "Too many wrong codes. Please wait before you try to sign in again.";

#[derive(Debug, Error)]
pub enum VerifyError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// `CODE_FAILURES_PER_USER` reached: no answer is accepted.
    #[error("{LOCKED_OUT_MESSAGE}")]
    LockedOut,
}

impl From<VerifyError> for Diagnostic {
    fn from(e: VerifyError) -> Self {
        let error_type = match &e {
            VerifyError::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
            VerifyError::LockedOut => "CodeLockout",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one VerifyAuthChallengeResponse event given as JSON, at unix
/// time `now`; returns the whole event with `answerCorrect` set.
pub fn handle<'a>(
    secret: impl Into<SecretKeys<'a>>,
    event: Value,
    now: u64,
) -> Result<Value, VerifyError> {
    check(secret.into(), event, now).map(|(event, _)| event)
}

/// [`handle`] with the wrong-code lockout of `limiter` (when it has a
/// `CODE_FAILURES_PER_USER`). Every answer first reserves one attempt, a
/// single conditional `ADD` that succeeds only while the window's count is
/// below the limit: of any number of answers arriving at once, at most the
/// limit's count are checked, the others are refused as `CodeLockout`
/// without being looked at. A right answer gives its attempt back and
/// deletes create's record of the code (one round trip for both), so the
/// code is never handed out again. A table that cannot be used fails open
/// (sign-in must survive an outage): logged and counted.
pub async fn handle_with_lockout<'a, L: Limiter>(
    secret: impl Into<SecretKeys<'a>>,
    limiter: Option<&L>,
    event: Value,
    now: u64,
) -> Result<Value, VerifyError> {
    let secret = secret.into();
    let Some(limiter) = limiter.filter(|l| l.limits().code_failures_per_user.is_some()) else {
        return handle(secret, event, now);
    };
    let text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (pool, user) = (text("/userPoolId"), text("/userName"));
    let record = event
        .pointer(&format!(
            "/request/privateChallengeParameters/{}",
            RECORD_PARAM
        ))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let reserved = match limiter.reserve_code_attempt(&pool, &user, now).await {
        Ok(Reservation::LockedOut) => {
            tracing::warn!("answer refused unchecked: too many wrong codes in the window");
            return Err(VerifyError::LockedOut);
        }
        Ok(Reservation::Reserved) => true,
        Ok(Reservation::Unlimited) => false,
        Err(e) => {
            tracing::warn!(
                "the wrong-code attempt could not be reserved, checking anyway (fail open for sign-in): {e}"
            );
            lambda_host::metrics::count("SmsFailOpen", &[("Reason", "code_lockout")]);
            false
        }
    };
    let (event, _) = check(secret, event, now)?;
    let correct = event.pointer("/response/answerCorrect") == Some(&Value::Bool(true));
    // Only a right answer gives its attempt back; every other answer (an
    // unknown user's included, so its time matches a real wrong answer)
    // stays counted.
    if reserved && correct {
        if let Err(e) = limiter
            .return_code_attempt(&pool, &user, now, record.as_deref())
            .await
        {
            tracing::warn!("the accepted code's attempt could not be given back: {e}");
        }
    } else if reserved {
        tracing::info!("wrong code counted");
    }
    Ok(event)
}

/// The check itself: the event with `answerCorrect`, and whether the answer
/// counts as a wrong code (a real user's answer to a real code).
fn check(secret: SecretKeys<'_>, event: Value, now: u64) -> Result<(Value, bool), VerifyError> {
    let mut event: CognitoEventUserPoolsVerifyAuthChallenge =
        lambda_host::events::parse_event(TRIGGER, event)?;
    let request = &event.request;
    let user = event
        .cognito_event_user_pools_header
        .user_name
        .as_deref()
        .unwrap_or_default();
    let answer = request.challenge_answer.as_ref().and_then(Value::as_str);
    let parsed = CodeStamp::from_private_parameters(&request.private_challenge_parameters);
    let has_stamp = parsed.is_some();
    let stamp = parsed.unwrap_or_else(CodeStamp::placeholder);
    // Under the current value, and a code issued before a rotation under
    // the previous one.
    let verdict = secret.check(&stamp, user, answer, now);
    let correct = verdict == Verdict::Correct && has_stamp && !request.user_not_found;
    let outcome = match (has_stamp, verdict) {
        _ if request.user_not_found => "user_not_found",
        (false, _) => "no_code_stamp",
        (true, Verdict::Correct) => "correct",
        (true, Verdict::Wrong) => "wrong",
        (true, Verdict::Expired) => "expired",
        (true, Verdict::Malformed) => "malformed_answer",
    };
    if has_stamp || request.user_not_found {
        tracing::info!(answer_correct = correct, outcome, "answer checked");
    } else {
        tracing::warn!(
            answer_correct = false,
            outcome,
            "privateChallengeParameters hold no code stamp (not created by create-auth-challenge?)"
        );
    }
    let counts_as_failure = has_stamp && !request.user_not_found && !correct;
    let mut response = CognitoEventUserPoolsVerifyAuthChallengeResponse::default();
    response.answer_correct = correct;
    event.response = response;
    Ok((lambda_host::events::to_value(&event)?, counts_as_failure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use challenge_code::HashingSecret;
    use challenge_code::OneTimeCode;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn secret() -> HashingSecret {
        HashingSecret::new(b"verify-secret-verify-secret-verify!!".to_vec(), "test").unwrap()
    }

    fn event(answer: Value, private: Value, not_found: bool) -> Value {
        json!({
            "version": "1",
            "region": "us-east-1",
            "userPoolId": "us-east-1_example",
            "userName": "alice",
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "client"},
            "triggerSource": "VerifyAuthChallengeResponse_Authentication",
            "request": {
                "userAttributes": {"sub": "s"},
                "privateChallengeParameters": private,
                "challengeAnswer": answer,
                "userNotFound": not_found
            },
            "response": {"answerCorrect": null}
        })
    }

    fn issued(secret: &HashingSecret, expires_in: u32) -> (String, Value) {
        let code = OneTimeCode::generate().unwrap();
        let stamp = CodeStamp::issue(secret, "alice", &code, NOW, expires_in);
        (
            code.reveal().to_owned(),
            serde_json::to_value(stamp.private_parameters()).unwrap(),
        )
    }

    fn correct(out: &Value) -> bool {
        out["response"]["answerCorrect"]
            .as_bool()
            .expect("answerCorrect is a boolean")
    }

    #[test]
    fn the_right_code_is_correct_until_it_expires() {
        let s = secret();
        let (code, private) = issued(&s, 180);
        let ok = |answer: Value, now| {
            correct(&handle(&s, event(answer, private.clone(), false), now).unwrap())
        };
        assert!(ok(json!(code), NOW));
        assert!(ok(json!(format!(" {code} ")), NOW + 179));
        assert!(!ok(json!(code), NOW + 180));
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(!ok(json!(wrong), NOW));
    }

    #[test]
    fn missing_empty_or_odd_answers_are_not_correct() {
        let s = secret();
        let (code, private) = issued(&s, 180);
        for answer in [
            Value::Null,
            json!(""),
            json!("   "),
            json!(code.parse::<u64>().unwrap()),
            json!([code.clone()]),
            json!({"code": code.clone()}),
            json!(format!("{code}0")),
        ] {
            let out = handle(&s, event(answer.clone(), private.clone(), false), NOW).unwrap();
            assert!(!correct(&out), "{answer}");
        }
        // No challengeAnswer key at all.
        let mut e = event(json!(code), private, false);
        e["request"]
            .as_object_mut()
            .unwrap()
            .remove("challengeAnswer");
        assert!(!correct(&handle(&s, e, NOW).unwrap()));
    }

    #[test]
    fn unknown_users_are_never_correct() {
        let s = secret();
        let (code, private) = issued(&s, 180);
        let out = handle(&s, event(json!(code), private, true), NOW).unwrap();
        assert!(!correct(&out));
    }

    #[test]
    fn a_missing_or_tampered_stamp_is_not_correct() {
        let s = secret();
        let (code, private) = issued(&s, 180);
        for bad in [
            json!({}),
            Value::Null,
            json!({"codeHash": private["codeHash"]}),
            json!({"codeHash": private["codeHash"], "expiresAt": (NOW + 900).to_string()}),
            json!({"codeHash": "zz", "expiresAt": private["expiresAt"]}),
        ] {
            let out = handle(&s, event(json!(code), bad.clone(), false), NOW).unwrap();
            assert!(!correct(&out), "{bad}");
        }
        // Another secret (e.g. rotated between create and verify).
        let other = HashingSecret::new(vec![1u8; 32], "other").unwrap();
        let out = handle(&other, event(json!(code), private, false), NOW).unwrap();
        assert!(!correct(&out));
    }

    #[test]
    fn a_prefilled_answer_correct_is_overwritten() {
        let s = secret();
        let (code, private) = issued(&s, 180);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let mut e = event(json!(wrong), private, false);
        e["response"] = json!({"answerCorrect": true});
        assert!(!correct(&handle(&s, e, NOW).unwrap()));
    }

    #[test]
    fn bad_events_are_errors() {
        let s = secret();
        for bad in [
            json!(null),
            json!(1),
            json!({"request": {"privateChallengeParameters": 5}}),
        ] {
            let d = Diagnostic::from(handle(&s, bad, NOW).unwrap_err());
            assert_eq!(d.error_type, "InvalidEvent");
        }
    }
}
