//! The PreAuthentication trigger: the factor guard.
//!
//! Why it exists: an app client that allows `USER_SRP_AUTH` (Amplify's
//! default, and the flow remembered devices need) lets a user with no MFA
//! factor enabled sign in on the password alone in an `OPTIONAL` pool, even
//! when the policy gives that user a factor: admin-created users
//! (PostConfirmation never fires for them), users whose post-confirmation
//! failed, TOTP choosers before their set-up. PreAuthentication runs before
//! the password is checked, in every flow (SRP, custom auth with SRP, the
//! admin flows), so the guard gives such a user the native factor right then
//! and Cognito enforces MFA itself, in the same sign-in.
//!
//! The decision table (see [`plan`] and [`handle`]):
//!
//! | the event shows | read | then |
//! |---|---|---|
//! | pool `OFF`, federated user, effective `NOMFA`, no way to receive a factor | none | pass (a warning when the policy wanted a factor) |
//! | the policy gives a factor | `AdminGetUser` | a factor enabled: pass; none: `AdminSetUserMFAPreference` as post-confirmation would, then pass |
//! | `userNotFound: true` | the same read, for the name given | pass: Cognito refuses the sign-in itself |
//! | the read or the write fails (after `Budget::SYNC_TRIGGER`'s retries) | | deny, with a message safe for the user |
//!
//! The read is skipped only when the event alone proves it unneeded, and the
//! event's facts come from Cognito (`cognito:user_status`, the pool's policy)
//! or only ever lower what the user gets by the user's own choice
//! (`custom:mfa_preference = NOMFA` in an `OPTIONAL` pool, which the policy
//! allows anyway). An attribute can never make the guard trust that a factor
//! exists: that is always read.
//!
//! An unknown user (`userNotFound`, sent when the app client has
//! `PreventUserExistenceErrors`) walks the path of a real user with a phone
//! and the pool's default choice — the same as define-auth-challenge does —
//! so the answer and the time (one read) match a real user's.

use std::collections::HashMap;

use auth_policy::redact::{mask_phone, mask_username};
use auth_policy::{MfaConfig, MfaDecision, MfaSkipReason};
use cognito_admin::{AdminError, UserPoolAdmin};
use lambda_host::events::EventError;
use lambda_host::events::cognito::CognitoEventUserPoolsPreAuthentication;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "PreAuthentication";

/// What the user reads (`PreAuthentication failed with error <this>.`) when
/// the guard cannot make sure of their second factor: nothing internal.
pub const UNAVAILABLE_MESSAGE: &str =
    "Sign-in is temporarily unavailable. Please try again in a minute.";

#[derive(Debug, Error)]
pub enum GuardError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The user needs a factor and the guard could not find out whether they
    /// have one, or could not give it: the sign-in is denied (fail closed).
    /// The cause is logged, never shown.
    #[error("{UNAVAILABLE_MESSAGE}")]
    Unavailable { cause: AdminError },
    /// Cognito refused the factor the policy gives this user
    /// (`InvalidParameterException`): the pool's MFA settings and the
    /// functions' `MFA_METHODS` disagree, or the user's phone cannot be
    /// used. Passing would be a sign-in on the password alone: denied, and
    /// the mismatch logged for the operator.
    #[error("{UNAVAILABLE_MESSAGE}")]
    FactorRefused { cause: AdminError },
}

impl From<GuardError> for Diagnostic {
    fn from(e: GuardError) -> Self {
        let error_type = match &e {
            GuardError::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
            GuardError::Unavailable { .. } => "SignInUnavailable",
            GuardError::FactorRefused { .. } => "FactorRefused",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What the guard plans for one sign-in, from the event alone: `Apply` means
/// "read the user's factors; when none is enabled, apply these settings";
/// `Skip` means pass without a read.
pub fn plan<S: std::hash::BuildHasher>(
    config: &MfaConfig,
    attributes: &HashMap<String, String, S>,
    user_not_found: bool,
) -> MfaDecision {
    if user_not_found {
        // A real user with a phone and the pool's default choice.
        auth_policy::decide_mfa(config, None, true)
    } else {
        auth_policy::decide_user_mfa(config, attributes)
    }
}

/// Whether the policy wanted a factor this user cannot get now (an operator
/// should hear about it: the user signs in on the password alone).
pub fn wanted_a_factor(reason: MfaSkipReason) -> bool {
    reason.is_warning() || reason == MfaSkipReason::TotpSetUpInApp
}

/// The EMF metric counted for every sign-in the guard lets through without
/// the factor the policy wanted (dimension `Reason`); the template alarms
/// on it.
pub const WITHOUT_FACTOR_METRIC: &str = "SignInWithoutFactor";

/// `request.userNotFound`, as Cognito sends it (a boolean; a string from a
/// hand-written event is accepted too).
fn user_not_found(event: &Value) -> bool {
    match event.pointer("/request/userNotFound") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Handles one PreAuthentication event given as JSON; returns the event
/// (Cognito ignores the response) or an error that denies the sign-in.
pub async fn handle<A: UserPoolAdmin>(
    config: &MfaConfig,
    admin: &A,
    event: Value,
) -> Result<Value, GuardError> {
    let not_found = user_not_found(&event);
    let event: CognitoEventUserPoolsPreAuthentication =
        lambda_host::events::parse_event(TRIGGER, event)?;
    let header = &event.cognito_event_user_pools_header;
    let user = header.user_name.as_deref().unwrap_or_default();
    let pool = header.user_pool_id.as_deref().unwrap_or_default();
    for (field, value) in [("userName", user), ("userPoolId", pool)] {
        if value.trim().is_empty() {
            return Err(EventError::Invalid {
                kind: TRIGGER,
                path: field.to_owned(),
                message: "missing: the user cannot be looked up without it".to_owned(),
            }
            .into());
        }
    }
    let attrs = &event.request.user_attributes;
    let masked_user = mask_username(user);
    let phone = attrs
        .get("phone_number")
        .map(|p| mask_phone(p))
        .unwrap_or_default();

    let (preference, settings) = match plan(config, attrs, not_found) {
        MfaDecision::Skip { reason } => {
            if wanted_a_factor(reason) {
                tracing::warn!(user = %masked_user, phone = %phone, reason = reason.as_str(), "sign-in without a second factor: the policy's factor cannot be given to this user");
                lambda_host::metrics::count(WITHOUT_FACTOR_METRIC, &[("Reason", reason.as_str())]);
            } else {
                tracing::info!(user = %masked_user, reason = reason.as_str(), "no factor to check");
            }
            return Ok(lambda_host::events::to_value(&event)?);
        }
        MfaDecision::Apply {
            preference,
            settings,
        } => (preference, settings),
    };

    let found = match admin.get_user(pool, user).await {
        Ok(found) => found,
        // Unknown (or just deleted): Cognito refuses the sign-in itself, with
        // the same answer as a wrong password.
        Err(AdminError::UserNotFound { .. }) => {
            tracing::info!(user = %masked_user, "no factor to check");
            return Ok(lambda_host::events::to_value(&event)?);
        }
        Err(cause) => return Err(deny(&masked_user, cause)),
    };
    if !found.mfa.enabled.is_empty() {
        tracing::info!(user = %masked_user, "a second factor is enabled");
        return Ok(lambda_host::events::to_value(&event)?);
    }
    match admin.set_mfa_preference(pool, user, settings).await {
        Ok(()) => tracing::info!(
            user = %masked_user,
            phone = %phone,
            preference = preference.as_str(),
            settings = %settings,
            "second factor enabled before sign-in"
        ),
        // Cognito refused the factor itself: the pool's MFA settings and
        // MFA_METHODS disagree (a console edit), or the phone cannot be used.
        // Passing would open a password-only door: deny, and tell the
        // operator what disagrees.
        Err(cause @ AdminError::InvalidParameter { .. }) => {
            tracing::error!(
                user = %masked_user,
                phone = %phone,
                code = "InvalidParameterException",
                settings = %settings,
                mfa_methods = %config.methods,
                "sign-in denied: Cognito refused the second factor the policy gives this user; check that the user pool's MFA configuration (EnabledMfas, SMS configuration) enables what MFA_METHODS names, and the user's phone_number"
            );
            return Err(GuardError::FactorRefused { cause });
        }
        Err(cause) => return Err(deny(&masked_user, cause)),
    }
    Ok(lambda_host::events::to_value(&event)?)
}

fn deny(masked_user: &str, cause: AdminError) -> GuardError {
    tracing::error!(
        user = %masked_user,
        error_type = cause.kind(),
        "sign-in denied: the second factor could not be checked or given: {cause}"
    );
    GuardError::Unavailable { cause }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_policy::{MfaMode, MfaPreference, MfaSettings};
    use cognito_admin::{FakeUserPool, MfaFactor};
    use serde_json::json;

    const POOL: &str = "us-east-1_Guard";

    fn event(user: &str, attrs: Value, not_found: bool) -> Value {
        json!({
            "version": "1", "region": "us-east-1", "userPoolId": POOL, "userName": user,
            "callerContext": {"awsSdkVersion": "aws-sdk-js", "clientId": "c"},
            "triggerSource": "PreAuthentication_Authentication",
            "request": {"userAttributes": attrs, "validationData": null, "userNotFound": not_found},
            "response": {}
        })
    }

    fn pool_with(user: &str, attrs: &[(&str, &str)]) -> FakeUserPool {
        let pool = FakeUserPool::new();
        pool.add_user(POOL, user, attrs.iter().copied());
        pool
    }

    #[tokio::test]
    async fn a_user_with_a_phone_and_no_factor_gets_sms() {
        let pool = pool_with("ann", &[("phone_number", "+14155550123")]);
        let attrs = json!({"phone_number": "+14155550123", "cognito:user_status": "CONFIRMED"});
        handle(&MfaConfig::default(), &pool, event("ann", attrs, false))
            .await
            .expect("passes");
        let mfa = pool.user(POOL, "ann").unwrap().mfa;
        assert_eq!(mfa.enabled, vec![MfaFactor::Sms]);
        assert_eq!(mfa.preferred, Some(MfaFactor::Sms));
        assert_eq!(
            pool.calls(),
            vec!["AdminGetUser", "AdminSetUserMFAPreference"]
        );
    }

    #[tokio::test]
    async fn a_user_with_a_factor_is_read_once_and_left_alone() {
        let pool = pool_with("bo", &[("phone_number", "+14155550123")]);
        pool.associate_totp(POOL, "bo");
        pool.set_mfa_preference(POOL, "bo", MfaSettings::TOTP_PREFERRED)
            .await
            .unwrap();
        let before = pool.calls().len();
        let attrs = json!({"phone_number": "+14155550123"});
        handle(&MfaConfig::default(), &pool, event("bo", attrs, false))
            .await
            .expect("passes");
        assert_eq!(pool.calls()[before..], ["AdminGetUser"]);
        let mfa = pool.user(POOL, "bo").unwrap().mfa;
        assert_eq!(mfa.enabled, vec![MfaFactor::SoftwareToken]);
    }

    #[tokio::test]
    async fn passes_without_a_read_where_the_event_proves_it_unneeded() {
        let off = MfaConfig {
            mode: MfaMode::Off,
            ..MfaConfig::default()
        };
        let cases = [
            (off, json!({"phone_number": "+14155550123"})),
            (
                MfaConfig::default(),
                json!({"phone_number": "+14155550123", "cognito:user_status": "EXTERNAL_PROVIDER"}),
            ),
            (
                MfaConfig::default(),
                json!({"phone_number": "+14155550123", "custom:mfa_preference": "NOMFA"}),
            ),
            (MfaConfig::default(), json!({"email": "a@example.com"})),
            (
                MfaConfig::default(),
                json!({"custom:mfa_preference": "TOTP"}),
            ),
        ];
        for (config, attrs) in cases {
            let pool = pool_with("cy", &[]);
            handle(&config, &pool, event("cy", attrs.clone(), false))
                .await
                .expect("passes");
            assert!(pool.calls().is_empty(), "{attrs}: {:?}", pool.calls());
        }
    }

    #[tokio::test]
    async fn an_unknown_user_gets_the_same_answer_after_the_same_read() {
        let known = pool_with("dee", &[("phone_number", "+14155550123")]);
        known.associate_totp(POOL, "dee");
        known
            .set_mfa_preference(POOL, "dee", MfaSettings::TOTP_PREFERRED)
            .await
            .unwrap();
        let real = handle(
            &MfaConfig::default(),
            &known,
            event("dee", json!({"phone_number": "+14155550123"}), false),
        )
        .await
        .expect("passes");

        let empty = FakeUserPool::new();
        empty.add_pool(POOL);
        let unknown = handle(
            &MfaConfig::default(),
            &empty,
            event("nobody", json!({}), true),
        )
        .await
        .expect("passes, as for a real user");
        assert_eq!(empty.calls(), vec!["AdminGetUser"]);
        // The same shape of answer: the event back, nothing added.
        assert_eq!(
            real.as_object().unwrap().keys().collect::<Vec<_>>(),
            unknown.as_object().unwrap().keys().collect::<Vec<_>>()
        );
        assert_eq!(real["response"], unknown["response"]);
    }

    #[tokio::test]
    async fn fails_closed_when_the_read_or_the_write_fails() {
        for fail_at in 0..2 {
            let pool = pool_with("eve", &[("phone_number", "+14155550123")]);
            if fail_at == 1 {
                // The read answers, the write fails.
                pool.fail_operation(
                    "AdminSetUserMFAPreference",
                    AdminError::Unreachable {
                        operation: "AdminSetUserMFAPreference",
                        reason: "timeout".into(),
                    },
                );
            } else {
                pool.fail_next(AdminError::Unreachable {
                    operation: "AdminGetUser",
                    reason: "connection refused".into(),
                });
            }
            let err = handle(
                &MfaConfig::default(),
                &pool,
                event("eve", json!({"phone_number": "+14155550123"}), false),
            )
            .await
            .expect_err("denied");
            let d = Diagnostic::from(err);
            assert_eq!(d.error_type, "SignInUnavailable");
            assert_eq!(d.error_message, UNAVAILABLE_MESSAGE);
            assert_eq!(pool.calls().len(), fail_at + 1);
        }
    }

    #[tokio::test]
    async fn throttling_on_the_read_denies_and_a_factor_cognito_refuses_denies() {
        let pool = pool_with("fay", &[("phone_number", "+14155550123")]);
        pool.fail_next(AdminError::Service {
            operation: "AdminGetUser",
            code: "ThrottlingException".into(),
        });
        assert!(
            handle(
                &MfaConfig::default(),
                &pool,
                event("fay", json!({"phone_number": "+14155550123"}), false),
            )
            .await
            .is_err(),
            "throttling on the read denies"
        );
        // The fake refuses SMS for a user without a phone, as Cognito does
        // (InvalidParameterException), and as it does when the pool's MFA
        // settings and MFA_METHODS disagree: never a password-only pass.
        let pool = pool_with("gil", &[]);
        let err = handle(
            &MfaConfig::default(),
            &pool,
            event("gil", json!({"phone_number": "+14155550123"}), false),
        )
        .await
        .expect_err("a refused factor denies the sign-in");
        let d = Diagnostic::from(err);
        assert_eq!(d.error_type, "FactorRefused");
        assert_eq!(d.error_message, UNAVAILABLE_MESSAGE);
        assert!(pool.user(POOL, "gil").unwrap().mfa.enabled.is_empty());
    }

    #[tokio::test]
    async fn an_unknown_preference_means_the_pool_default_as_in_define() {
        let pool = pool_with("hal", &[("phone_number", "+14155550123")]);
        let attrs =
            json!({"phone_number": "+14155550123", "custom:mfa_preference": "carrier-pigeon"});
        handle(&MfaConfig::default(), &pool, event("hal", attrs, false))
            .await
            .expect("passes");
        // The default (SMS) was given, as define-auth-challenge would demand.
        let mfa = pool.user(POOL, "hal").unwrap().mfa;
        assert_eq!(mfa.enabled, vec![MfaFactor::Sms]);
        assert_eq!(
            pool.calls(),
            vec!["AdminGetUser", "AdminSetUserMFAPreference"]
        );
    }

    #[test]
    fn unknown_users_plan_like_a_real_user_with_a_phone_and_the_default() {
        let none = HashMap::<String, String>::new();
        assert_eq!(
            plan(&MfaConfig::default(), &none, true),
            MfaDecision::Apply {
                preference: MfaPreference::Sms,
                settings: MfaSettings::SMS_PREFERRED
            }
        );
        assert_eq!(
            plan(&MfaConfig::default(), &none, false),
            MfaDecision::Skip {
                reason: MfaSkipReason::SmsNeedsPhone
            }
        );
    }

    #[tokio::test]
    async fn malformed_events_are_refused_with_what_is_wrong() {
        let pool = FakeUserPool::new();
        for (bad, says) in [
            (json!([1, 2]), "object"),
            (
                json!({"triggerSource": "PreAuthentication_Authentication", "userPoolId": POOL, "request": {"userAttributes": {}}}),
                "userName",
            ),
            (
                json!({"triggerSource": "PostConfirmation_ConfirmSignUp", "userPoolId": POOL, "userName": "x", "request": {"userAttributes": {}}}),
                "expected `PreAuthentication_Authentication`",
            ),
        ] {
            let e = handle(&MfaConfig::default(), &pool, bad.clone())
                .await
                .expect_err("refused");
            let d = Diagnostic::from(e);
            assert_eq!(d.error_type, "InvalidEvent", "{bad}");
            assert!(d.error_message.contains(says), "{bad}: {}", d.error_message);
        }
        assert!(pool.calls().is_empty());
    }
}
