//! The DefineAuthChallenge trigger: a thin handler over
//! `auth_policy::challenge::decide_next`.
//!
//! Define makes every decision of the custom-auth flow (a CreateAuthChallenge
//! error would go straight to the client, and Cognito never calls define for
//! users with a native MFA factor), so it is pure: no AWS client, no clock,
//! no randomness. It reads the session, the pool's MFA policy and three user
//! facts (unknown?, `custom:mfa_preference`, a phone an SMS can reach), and
//! answers with exactly one of: the next challenge, tokens, or failure.
//! The response is always fully written — Cognito's first call carries
//! `null` in all three fields — so no stale value can leak through.

use auth_policy::challenge::{
    ChallengeConfig, ChallengeUser, NextStep, SessionStep, TokenReason, decide_next,
};
use auth_policy::{ConfigError, ConfigSource, MfaConfig, PREFERENCE_ATTRIBUTE, is_e164};
use lambda_host::events::EventError;
use lambda_host::events::cognito::{
    CognitoEventUserPoolsDefineAuthChallenge, CognitoEventUserPoolsDefineAuthChallengeResponse,
};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "DefineAuthChallenge";

/// Everything define reads from the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    pub mfa: MfaConfig,
    pub challenge: ChallengeConfig,
}

impl Config {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, ConfigError> {
        Ok(Self {
            mfa: MfaConfig::from_source(source)?,
            challenge: ChallengeConfig::from_source(source)?,
        })
    }
}

#[derive(Debug, Error)]
pub enum DefineError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
}

impl From<DefineError> for Diagnostic {
    fn from(e: DefineError) -> Self {
        let error_type = match &e {
            DefineError::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one DefineAuthChallenge event given as JSON; returns the whole
/// event with its `response` filled in.
pub fn handle(config: &Config, event: Value) -> Result<Value, DefineError> {
    let mut event: CognitoEventUserPoolsDefineAuthChallenge =
        lambda_host::events::parse_event(TRIGGER, event)?;
    let request = &event.request;
    let session: Vec<SessionStep<'_>> = request
        .session
        .iter()
        .map(|entry| match entry {
            Some(e) => SessionStep {
                name: e.challenge_name.as_deref(),
                result: e.challenge_result,
            },
            None => SessionStep {
                name: None,
                result: false,
            },
        })
        .collect();
    let attrs = &request.user_attributes;
    let user = ChallengeUser {
        not_found: request.user_not_found,
        preference: attrs.get(PREFERENCE_ATTRIBUTE).map(String::as_str),
        has_phone: attrs.get("phone_number").is_some_and(|p| is_e164(p)),
    };
    let next = decide_next(&config.mfa, &config.challenge, &user, &session);

    let mut response = CognitoEventUserPoolsDefineAuthChallengeResponse::default();
    response.challenge_name = None;
    response.issue_tokens = false;
    response.fail_authentication = false;
    let steps = session.len();
    match next {
        NextStep::Challenge { name } => {
            tracing::info!(
                session_steps = steps,
                decision = "challenge",
                challenge = name.as_str(),
                "next challenge"
            );
            response.challenge_name = Some(name.as_str().to_owned());
        }
        NextStep::IssueTokens { reason } => {
            if reason == TokenReason::NoDeliverableFactor {
                tracing::warn!(
                    session_steps = steps,
                    decision = "tokens",
                    reason = reason.code(),
                    "signed in on the password alone: the user has no phone_number for the code; the app must run the TOTP set-up after sign-in"
                );
            } else {
                tracing::info!(
                    session_steps = steps,
                    decision = "tokens",
                    reason = reason.code(),
                    "tokens issued"
                );
            }
            response.issue_tokens = true;
        }
        NextStep::Fail { reason } => {
            tracing::info!(
                session_steps = steps,
                decision = "fail",
                reason = reason.code(),
                "authentication failed"
            );
            response.fail_authentication = true;
        }
    }
    event.response = response;
    Ok(lambda_host::events::to_value(&event)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(session: Value, attrs: Value, not_found: bool) -> Value {
        json!({
            "version": "1",
            "region": "us-east-1",
            "userPoolId": "us-east-1_example",
            "userName": "4f2a-user",
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "client"},
            "triggerSource": "DefineAuthChallenge_Authentication",
            "request": {
                "userAttributes": attrs,
                "session": session,
                "userNotFound": not_found
            },
            "response": {"challengeName": null, "issueTokens": null, "failAuthentication": null}
        })
    }

    fn srp() -> Value {
        json!({"challengeName": "SRP_A", "challengeResult": true, "challengeMetadata": null})
    }
    fn pw(ok: bool) -> Value {
        json!({"challengeName": "PASSWORD_VERIFIER", "challengeResult": ok, "challengeMetadata": null})
    }
    fn code(ok: bool) -> Value {
        json!({"challengeName": "CUSTOM_CHALLENGE", "challengeResult": ok, "challengeMetadata": "CODE"})
    }

    fn phone() -> Value {
        json!({"sub": "4f2a", "phone_number": "+819012345678"})
    }

    fn respond(config: &Config, e: Value) -> (Option<String>, bool, bool) {
        let out = handle(config, e).expect("handled");
        let r = &out["response"];
        (
            r["challengeName"].as_str().map(str::to_owned),
            r["issueTokens"]
                .as_bool()
                .expect("issueTokens is a boolean"),
            r["failAuthentication"]
                .as_bool()
                .expect("failAuthentication is a boolean"),
        )
    }

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_source(pairs).expect("valid config")
    }

    #[test]
    fn the_full_walk() {
        let c = config(&[]);
        let cc = || Some("CUSTOM_CHALLENGE".to_owned());
        assert_eq!(
            respond(&c, event(json!([srp()]), phone(), false)),
            (Some("PASSWORD_VERIFIER".into()), false, false)
        );
        assert_eq!(
            respond(&c, event(json!([srp(), pw(true)]), phone(), false)),
            (cc(), false, false)
        );
        assert_eq!(
            respond(
                &c,
                event(json!([srp(), pw(true), code(false)]), phone(), false)
            ),
            (cc(), false, false)
        );
        assert_eq!(
            respond(
                &c,
                event(
                    json!([srp(), pw(true), code(false), code(true)]),
                    phone(),
                    false
                )
            ),
            (None, true, false)
        );
        assert_eq!(
            respond(
                &c,
                event(
                    json!([srp(), pw(true), code(false), code(false), code(false)]),
                    phone(),
                    false
                )
            ),
            (None, false, true)
        );
    }

    #[test]
    fn empty_session_and_first_call_nulls_fail_closed() {
        let c = config(&[]);
        assert_eq!(
            respond(&c, event(json!([]), phone(), false)),
            (None, false, true)
        );
        // A response that arrives pre-filled with tokens is overwritten.
        let mut e = event(json!([]), phone(), false);
        e["response"] = json!({"issueTokens": true, "challengeName": "X"});
        assert_eq!(respond(&c, e), (None, false, true));
    }

    #[test]
    fn null_session_entries_and_unknown_names_fail() {
        let c = config(&[]);
        assert_eq!(
            respond(&c, event(json!([srp(), null]), phone(), false)),
            (None, false, true)
        );
        let sms = json!({"challengeName": "SMS_MFA", "challengeResult": true});
        assert_eq!(
            respond(&c, event(json!([srp(), pw(true), sms]), phone(), false)),
            (None, false, true)
        );
    }

    #[test]
    fn policy_variants() {
        let optional = config(&[]);
        let on = config(&[("MFA_CONFIGURATION", "ON")]);
        let after_pw = json!([srp(), pw(true)]);
        let nomfa = json!({"phone_number": "+819012345678", "custom:mfa_preference": "NOMFA"});
        assert_eq!(
            respond(&optional, event(after_pw.clone(), nomfa, false)),
            (None, true, false)
        );
        let no_phone = json!({"email": "a@example.com"});
        assert_eq!(
            respond(&optional, event(after_pw.clone(), no_phone.clone(), false)),
            (None, true, false)
        );
        assert_eq!(
            respond(&on, event(after_pw.clone(), no_phone, false)),
            (None, false, true)
        );
        // A phone that is not E.164 cannot receive the code.
        let bad_phone = json!({"phone_number": "090-1234-5678"});
        assert_eq!(
            respond(&on, event(after_pw.clone(), bad_phone, false)),
            (None, false, true)
        );
        assert_eq!(
            respond(&optional, event(json!([srp(), pw(false)]), phone(), false)),
            (None, false, true)
        );
    }

    #[test]
    fn unknown_user_gets_a_code_challenge_then_fails() {
        let c = config(&[]);
        let none = json!({});
        assert_eq!(
            respond(&c, event(json!([srp(), pw(true)]), none.clone(), true)),
            (Some("CUSTOM_CHALLENGE".into()), false, false)
        );
        assert_eq!(
            respond(&c, event(json!([srp(), pw(true), code(true)]), none, true)),
            (None, false, true)
        );
    }

    #[test]
    fn the_attempt_limit_is_configurable() {
        let c = config(&[("MAX_CODE_ATTEMPTS", "1")]);
        assert_eq!(
            respond(
                &c,
                event(json!([srp(), pw(true), code(false)]), phone(), false)
            ),
            (None, false, true)
        );
    }

    #[test]
    fn bad_events_are_errors_not_panics() {
        let c = config(&[]);
        for bad in [
            json!(null),
            json!([]),
            json!({"request": {"session": "x"}}),
            json!({"triggerSource": "DefineAuthChallenge_Authentication", "request": {"userAttributes": {}}}),
        ] {
            let e = handle(&c, bad).unwrap_err();
            let d = Diagnostic::from(e);
            assert_eq!(d.error_type, "InvalidEvent");
        }
    }

    #[test]
    fn config_errors_name_the_variable() {
        let e = Config::from_source(&[("MAX_CODE_ATTEMPTS", "0")][..]).unwrap_err();
        assert!(e.to_string().contains("MAX_CODE_ATTEMPTS"));
        let e = Config::from_source(&[("MFA_CONFIGURATION", "SOMETIMES")][..]).unwrap_err();
        assert!(e.to_string().contains("MFA_CONFIGURATION"));
    }
}
