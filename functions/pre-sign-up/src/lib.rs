//! The PreSignUp trigger: a thin handler over `auth_policy::decide_sign_up`.
//!
//! It never auto-confirms a user nor auto-verifies an email or phone: the
//! ownership of both is proven by Cognito's own codes. A refusal is a Lambda
//! error whose message the end user sees (`PreSignUp failed with error
//! <message>.`), so it comes from `Rejection::user_message` and nothing else.

use auth_policy::redact::{mask_email, mask_phone};
use auth_policy::{
    PREFERENCE_ATTRIBUTE, Rejection, SignUpConfig, SignUpDecision, SignUpKind, SignUpRequest,
    decide_sign_up,
};
use lambda_host::events::EventError;
use lambda_host::events::cognito::{
    CognitoEventUserPoolsPreSignup, CognitoEventUserPoolsPreSignupResponse,
};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "PreSignUp";

#[derive(Debug, Error)]
pub enum PreSignUpError {
    /// The sign-up breaks the policy; the message is safe to show the user.
    #[error("{0}")]
    Rejected(Rejection),
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
}

impl From<PreSignUpError> for Diagnostic {
    fn from(e: PreSignUpError) -> Self {
        let error_type = match &e {
            PreSignUpError::Rejected(_) => "SignUpRejected",
            PreSignUpError::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one PreSignUp event given as JSON; returns the whole event with
/// its `response` filled in.
pub fn handle(config: &SignUpConfig, event: Value) -> Result<Value, PreSignUpError> {
    let mut event: CognitoEventUserPoolsPreSignup =
        lambda_host::events::parse_event(TRIGGER, event)?;
    let header = &event.cognito_event_user_pools_header;
    let source = lambda_host::events::source_name(&header.trigger_source);
    let kind = source
        .as_deref()
        .and_then(SignUpKind::from_trigger_source)
        .ok_or_else(|| EventError::Unsupported {
            kind: TRIGGER,
            message: "triggerSource is missing: expected PreSignUp_SignUp, PreSignUp_AdminCreateUser or PreSignUp_ExternalProvider".to_owned(),
        })?;
    let attrs = &event.request.user_attributes;
    let email = attrs.get("email").map(String::as_str);
    let phone = attrs.get("phone_number").map(String::as_str);
    let request = SignUpRequest {
        kind,
        email,
        phone_number: phone,
        preference: attrs.get(PREFERENCE_ATTRIBUTE).map(String::as_str),
    };
    let masked_email = email.map(mask_email).unwrap_or_default();
    let masked_phone = phone.map(mask_phone).unwrap_or_default();
    match decide_sign_up(config, &request) {
        SignUpDecision::Reject(rejection) => {
            tracing::info!(
                trigger = source.as_deref().unwrap_or_default(),
                outcome = "refused",
                reason = rejection.code(),
                email = %masked_email,
                phone = %masked_phone,
                "sign-up refused"
            );
            Err(PreSignUpError::Rejected(rejection))
        }
        SignUpDecision::Accept { preference } => {
            tracing::info!(
                trigger = source.as_deref().unwrap_or_default(),
                outcome = "accepted",
                mfa_preference = preference.map(|p| p.as_str()).unwrap_or("none"),
                email = %masked_email,
                phone = %masked_phone,
                "sign-up accepted"
            );
            // Never assume ownership of an email or phone.
            event.response = CognitoEventUserPoolsPreSignupResponse::default();
            event.response.auto_confirm_user = false;
            event.response.auto_verify_email = false;
            event.response.auto_verify_phone = false;
            Ok(lambda_host::events::to_value(&event)?)
        }
    }
}
