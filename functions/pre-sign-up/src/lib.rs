//! The PreSignUp trigger: a thin handler over `auth_policy::decide_sign_up`.
//!
//! It never auto-confirms a user nor auto-verifies an email or phone: the
//! ownership of both is proven by Cognito's own codes. A refusal is a Lambda
//! error whose message the end user sees (`PreSignUp failed with error
//! <message>.`), so it comes from `Rejection::user_message` (or the country
//! refusal's fixed text, which names no list) and nothing else.
//!
//! With `SMS_ALLOWED_COUNTRIES` / `SMS_BLOCKED_COUNTRIES`, a phone number the
//! pool may not send SMS to is refused here already (the senders check again
//! at send time, since numbers change). Federated users get no SMS from the
//! pool, so their phone is not judged.

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
use phone_country::{CountryConfigError, CountryPolicy};
use serde_json::Value;
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "PreSignUp";

/// What the user reads when the SMS country policy refuses their phone.
pub const COUNTRY_REFUSED_MESSAGE: &str =
    "Text messages cannot be sent to this phone number. Please use another phone number.";

/// Everything pre-sign-up reads from the environment, once, at init.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub sign_up: SignUpConfig,
    pub countries: CountryPolicy,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Policy(#[from] auth_policy::ConfigError),
    #[error(transparent)]
    Countries(#[from] CountryConfigError),
}

impl Config {
    pub fn from_source(
        source: &(impl auth_policy::ConfigSource + ?Sized),
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            sign_up: SignUpConfig::from_source(source)?,
            countries: CountryPolicy::from_source(source)?,
        })
    }
}

#[derive(Debug, Error)]
pub enum PreSignUpError {
    /// The sign-up breaks the policy; the message is safe to show the user.
    #[error("{0}")]
    Rejected(Rejection),
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The SMS country policy refuses the phone number.
    #[error("{COUNTRY_REFUSED_MESSAGE}")]
    CountryRefused,
}

impl From<PreSignUpError> for Diagnostic {
    fn from(e: PreSignUpError) -> Self {
        let error_type = match &e {
            PreSignUpError::Rejected(_) | PreSignUpError::CountryRefused => "SignUpRejected",
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
pub fn handle(config: &Config, event: Value) -> Result<Value, PreSignUpError> {
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
    if kind != SignUpKind::ExternalProvider
        && let Some(phone) = phone.filter(|p| !p.trim().is_empty())
    {
        let verdict = config.countries.check(phone);
        if let Some(refusal) = verdict.refusal {
            tracing::info!(
                trigger = source.as_deref().unwrap_or_default(),
                outcome = "refused",
                reason = refusal.as_str(),
                country = %verdict.country.map(|c| c.to_string()).unwrap_or_else(|| "none".to_owned()),
                phone = %masked_phone,
                "sign-up refused"
            );
            return Err(PreSignUpError::CountryRefused);
        }
    }
    match decide_sign_up(&config.sign_up, &request) {
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
