//! The PostConfirmation trigger: performs `auth_policy::decide_mfa` for the
//! user who just confirmed their sign-up, with one `AdminSetUserMFAPreference`.
//!
//! Why it is shaped like this:
//! * Only `PostConfirmation_ConfirmSignUp` acts. The trigger also fires after
//!   a forgotten-password reset, and federated users (`cognito:user_status`
//!   `EXTERNAL_PROVIDER`) get no MFA from Cognito: both pass through.
//! * The decision uses the attributes in the event (what Cognito holds at
//!   confirmation), so the trigger makes one call, whose worst case is the
//!   `sdk-config` budget (2 s), well inside Cognito's 5 s.
//! * The call is idempotent, so Cognito's retries and a second run are
//!   harmless.
//! * The user is already confirmed whatever happens here. An SMS preference
//!   that cannot be applied (no phone, or Cognito refuses the phone) is a
//!   warning, not a failure. A missing user or an AWS error after the bounded
//!   retries is the Lambda error (Cognito shows it to the client), and the
//!   message says how to repair: `mfa-admin apply-policy`.

use std::collections::HashMap;

use auth_policy::redact::{mask_email, mask_phone, mask_username};
use auth_policy::{MfaConfig, MfaDecision, MfaSettings, MfaSkipReason};
use cognito_admin::{AdminError, UserPoolAdmin};
use lambda_host::events::EventError;
use lambda_host::events::cognito::CognitoEventUserPoolsPostConfirmation;
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "PostConfirmation";
/// The one trigger source that acts.
pub const CONFIRM_SIGN_UP: &str = "PostConfirmation_ConfirmSignUp";

#[derive(Debug, Error)]
pub enum PostConfirmationError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The MFA settings could not be applied; the user stays confirmed.
    #[error(
        "the MFA policy could not be applied: {error}. The user is confirmed; repair with `mfa-admin --user-pool-id {pool} apply-policy {user}`"
    )]
    Admin {
        error: AdminError,
        pool: String,
        /// Masked when it looks like an email or phone.
        user: String,
    },
}

impl From<PostConfirmationError> for Diagnostic {
    fn from(e: PostConfirmationError) -> Self {
        let error_type = match &e {
            PostConfirmationError::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
            PostConfirmationError::Admin { error, .. } => error.kind(),
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What to do for one event: the policy's decision, after the two
/// pass-through cases that are the trigger's own (not a sign-up, federated).
pub fn decide(
    config: &MfaConfig,
    trigger_source: &str,
    attributes: &HashMap<String, String>,
) -> MfaDecision {
    if trigger_source != CONFIRM_SIGN_UP {
        return MfaDecision::Skip {
            reason: MfaSkipReason::NotSignUp,
        };
    }
    auth_policy::decide_user_mfa(config, attributes)
}

fn enables_sms(settings: &MfaSettings) -> bool {
    settings.sms.is_some_and(|s| s.enabled)
}

/// Handles one PostConfirmation event given as JSON; returns the event.
pub async fn handle<A: UserPoolAdmin>(
    config: &MfaConfig,
    admin: &A,
    event: Value,
) -> Result<Value, PostConfirmationError> {
    let event: CognitoEventUserPoolsPostConfirmation =
        lambda_host::events::parse_event(TRIGGER, event)?;
    let header = &event.cognito_event_user_pools_header;
    // The wire name, so a trigger source this crate does not know never
    // passes for a sign-up.
    let source = lambda_host::events::source_name(&header.trigger_source)
        .ok_or_else(|| EventError::Unsupported {
            kind: TRIGGER,
            message: "triggerSource is missing: expected PostConfirmation_ConfirmSignUp or PostConfirmation_ConfirmForgotPassword".to_owned(),
        })?;
    let source = source.as_str();
    let attrs = &event.request.user_attributes;
    let user = header.user_name.as_deref().unwrap_or_default();
    let masked_user = mask_username(user);
    let pool = header.user_pool_id.as_deref().unwrap_or_default();
    let phone = attrs
        .get("phone_number")
        .map(|p| mask_phone(p))
        .unwrap_or_default();
    let email = attrs
        .get("email")
        .map(|e| mask_email(e))
        .unwrap_or_default();

    match decide(config, source, attrs) {
        MfaDecision::Skip { reason } => {
            if reason.is_warning() {
                tracing::warn!(trigger = source, user = %masked_user, phone = %phone, email = %email, reason = reason.as_str(), "MFA not enabled: the policy's choice cannot be applied to this user");
            } else {
                tracing::info!(trigger = source, user = %masked_user, reason = reason.as_str(), "nothing to do");
            }
        }
        MfaDecision::Apply {
            preference,
            settings,
        } => {
            for (field, value) in [("userName", user), ("userPoolId", pool)] {
                if value.trim().is_empty() {
                    return Err(EventError::Invalid {
                        kind: TRIGGER,
                        path: field.to_owned(),
                        message: "missing: the user cannot be found without it".to_owned(),
                    }
                    .into());
                }
            }
            match admin.set_mfa_preference(pool, user, settings).await {
                Ok(()) => tracing::info!(
                    trigger = source,
                    user = %masked_user,
                    phone = %phone,
                    preference = preference.as_str(),
                    settings = %settings,
                    "MFA enabled"
                ),
                // Cognito refuses SMS MFA for a phone it cannot use; the
                // confirmation stands (the user keeps password sign-in and
                // the app or an operator can add a factor).
                Err(AdminError::InvalidParameter { .. }) if enables_sms(&settings) => {
                    tracing::warn!(
                        trigger = source,
                        user = %masked_user,
                        phone = %phone,
                        preference = preference.as_str(),
                        code = "InvalidParameterException",
                        "MFA not enabled: Cognito refused SMS MFA for this user's phone"
                    );
                }
                Err(error) => {
                    tracing::error!(
                        trigger = source,
                        user = %masked_user,
                        error_type = error.kind(),
                        "MFA could not be applied: {error}"
                    );
                    return Err(PostConfirmationError::Admin {
                        error,
                        pool: pool.to_owned(),
                        user: masked_user,
                    });
                }
            }
        }
    }
    Ok(lambda_host::events::to_value(&event)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_policy::{MfaPreference, PREFERENCE_ATTRIBUTE};

    fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_confirm_sign_up_acts() {
        let c = MfaConfig::default();
        let a = attrs(&[("phone_number", "+14155550123")]);
        assert_eq!(
            decide(&c, "PostConfirmation_ConfirmForgotPassword", &a),
            MfaDecision::Skip {
                reason: MfaSkipReason::NotSignUp
            }
        );
        assert_eq!(
            decide(&c, CONFIRM_SIGN_UP, &a),
            MfaDecision::Apply {
                preference: MfaPreference::Sms,
                settings: MfaSettings::SMS_PREFERRED
            }
        );
    }

    #[test]
    fn federated_users_are_left_alone() {
        let a = attrs(&[
            ("phone_number", "+14155550123"),
            ("cognito:user_status", "EXTERNAL_PROVIDER"),
        ]);
        assert_eq!(
            decide(&MfaConfig::default(), CONFIRM_SIGN_UP, &a),
            MfaDecision::Skip {
                reason: MfaSkipReason::ExternalProvider
            }
        );
    }

    #[test]
    fn a_blank_phone_is_no_phone() {
        let a = attrs(&[("phone_number", " "), (PREFERENCE_ATTRIBUTE, "SMS")]);
        assert_eq!(
            decide(&MfaConfig::default(), CONFIRM_SIGN_UP, &a),
            MfaDecision::Skip {
                reason: MfaSkipReason::SmsNeedsPhone
            }
        );
    }
}
