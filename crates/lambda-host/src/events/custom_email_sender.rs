//! The CustomEmailSender event, which `aws_lambda_events` does not model.
//!
//! The twin of [`super::custom_sms_sender`]: Cognito hands an email it would
//! have sent itself to this trigger, with the secret (a one-time code, or a
//! temporary password for `CustomEmailSender_AdminCreateUser`) encrypted by
//! the AWS Encryption SDK under the pool's KMS key (the same key as the SMS
//! sender's: a pool has one `KMSKeyID`) and base64-encoded in `request.code`.
//! The account-takeover notice carries no secret, so `code` may be null; so
//! may `clientMetadata`. Cognito invokes the trigger asynchronously and reads no
//! response, so the type has none (a `"response": {}` in a console test event
//! is ignored).
//!
//! The header is `aws_lambda_events`' own, with our trigger-source enum, so
//! the event reads like the others and [`crate::events::parse_event`] mends it the
//! same way (missing `callerContext`, boolean attribute values).

use std::collections::HashMap;
use std::fmt;

use aws_lambda_events::event::cognito::CognitoEventUserPoolsHeader;
use serde::{Deserialize, Serialize};

/// The trigger's name in error messages.
pub const TRIGGER: &str = "CustomEmailSender";

/// The one request version Cognito sends today.
pub const REQUEST_TYPE_V1: &str = "customEmailSenderRequestV1";

/// Why Cognito wants an email sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CustomEmailSenderTriggerSource {
    /// A sign-up's confirmation code.
    #[default]
    #[serde(rename = "CustomEmailSender_SignUp")]
    SignUp,
    /// The confirmation code again (`ResendConfirmationCode`).
    #[serde(rename = "CustomEmailSender_ResendCode")]
    ResendCode,
    /// A password-reset code.
    #[serde(rename = "CustomEmailSender_ForgotPassword")]
    ForgotPassword,
    /// A code to confirm a changed email address (sent to the new address).
    #[serde(rename = "CustomEmailSender_UpdateUserAttribute")]
    UpdateUserAttribute,
    /// A code to verify an email address (`GetUserAttributeVerificationCode`).
    #[serde(rename = "CustomEmailSender_VerifyUserAttribute")]
    VerifyUserAttribute,
    /// The invitation of a user an administrator created: the "code" is
    /// the temporary password (HTML-escaped by Cognito).
    #[serde(rename = "CustomEmailSender_AdminCreateUser")]
    AdminCreateUser,
    /// An email MFA code at sign-in (`EMAIL_OTP`).
    #[serde(rename = "CustomEmailSender_Authentication")]
    Authentication,
    /// Threat protection blocked a sign-in: a notice, no code.
    #[serde(rename = "CustomEmailSender_AccountTakeOverNotification")]
    AccountTakeOverNotification,
}

impl CustomEmailSenderTriggerSource {
    pub const ALL: [Self; 8] = [
        Self::SignUp,
        Self::ResendCode,
        Self::ForgotPassword,
        Self::UpdateUserAttribute,
        Self::VerifyUserAttribute,
        Self::AdminCreateUser,
        Self::Authentication,
        Self::AccountTakeOverNotification,
    ];

    /// The wire name, e.g. `CustomEmailSender_ForgotPassword`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignUp => "CustomEmailSender_SignUp",
            Self::ResendCode => "CustomEmailSender_ResendCode",
            Self::ForgotPassword => "CustomEmailSender_ForgotPassword",
            Self::UpdateUserAttribute => "CustomEmailSender_UpdateUserAttribute",
            Self::VerifyUserAttribute => "CustomEmailSender_VerifyUserAttribute",
            Self::AdminCreateUser => "CustomEmailSender_AdminCreateUser",
            Self::Authentication => "CustomEmailSender_Authentication",
            Self::AccountTakeOverNotification => "CustomEmailSender_AccountTakeOverNotification",
        }
    }

    /// Whether Cognito sends an encrypted secret with this source (all but
    /// the account-takeover notice).
    pub fn carries_code(self) -> bool {
        self != Self::AccountTakeOverNotification
    }
}

impl fmt::Display for CustomEmailSenderTriggerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `request.type`: the version of the request's shape. Only V1 exists; a
/// future version is refused by name rather than misread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomEmailSenderRequestType {
    #[default]
    #[serde(rename = "customEmailSenderRequestV1")]
    V1,
}

/// The `request` of a CustomEmailSender event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomEmailSenderRequest {
    #[serde(rename = "type")]
    pub request_type: CustomEmailSenderRequestType,
    /// Base64 of an AWS Encryption SDK message holding the code; `None` for
    /// the account-takeover notice.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub user_attributes: HashMap<String, String>,
    #[serde(default)]
    pub client_metadata: Option<HashMap<String, String>>,
}

fn nullable_map<'de, D>(d: D) -> Result<HashMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<HashMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// A CustomEmailSender event as Cognito sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomEmailSenderEvent {
    #[serde(flatten)]
    pub header: CognitoEventUserPoolsHeader<CustomEmailSenderTriggerSource>,
    pub request: CustomEmailSenderRequest,
}

impl CustomEmailSenderEvent {
    /// The user's attribute `name`, if present and not blank.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.request
            .user_attributes
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{parse_event, to_value};
    use serde_json::{Value, json};

    fn cognito_event(source: &str) -> Value {
        // The shape of Cognito's own event (AWS docs, "Custom email sender
        // Lambda trigger"), with a made-up ciphertext and the console's
        // boolean attribute value.
        json!({
            "version": "1",
            "triggerSource": source,
            "region": "us-east-1",
            "userPoolId": "us-east-1_EXAMPLE",
            "userName": "alice",
            "callerContext": {
                "awsSdkVersion": "aws-sdk-unknown-unknown",
                "clientId": "1example23456789"
            },
            "request": {
                "type": "customEmailSenderRequestV1",
                "code": "AYADeD0Example",
                "clientMetadata": {"app": "demo"},
                "userAttributes": {
                    "sub": "5f1d2c3b-0000-4000-8000-000000000000",
                    "email": "alice@example.com",
                    "email_verified": true,
                    "locale": "ja"
                }
            }
        })
    }

    #[test]
    fn every_trigger_source_parses_and_round_trips() {
        for source in CustomEmailSenderTriggerSource::ALL {
            let event: CustomEmailSenderEvent =
                parse_event(TRIGGER, cognito_event(source.as_str())).unwrap();
            assert_eq!(event.header.trigger_source, Some(source));
            assert_eq!(event.request.code.as_deref(), Some("AYADeD0Example"));
            assert_eq!(event.attribute("email_verified"), Some("true"));
            assert_eq!(event.attribute("email"), Some("alice@example.com"));
            let back = to_value(&event).unwrap();
            assert_eq!(back["triggerSource"], source.as_str());
            assert_eq!(back["request"]["type"], REQUEST_TYPE_V1);
            assert_eq!(back["userPoolId"], "us-east-1_EXAMPLE");
            let again: CustomEmailSenderEvent = parse_event(TRIGGER, back).unwrap();
            assert_eq!(event, again);
        }
    }

    #[test]
    fn as_str_is_the_wire_name() {
        for source in CustomEmailSenderTriggerSource::ALL {
            assert_eq!(
                serde_json::to_value(source).unwrap(),
                Value::String(source.as_str().to_owned())
            );
            assert_eq!(
                source.carries_code(),
                !source.as_str().ends_with("Notification")
            );
        }
    }

    #[test]
    fn null_code_and_null_client_metadata_are_accepted() {
        let mut v = cognito_event("CustomEmailSender_AccountTakeOverNotification");
        v["request"]["code"] = Value::Null;
        v["request"]["clientMetadata"] = Value::Null;
        let e: CustomEmailSenderEvent = parse_event(TRIGGER, v).unwrap();
        assert_eq!(e.request.code, None);
        assert_eq!(e.request.client_metadata, None);

        let mut v = cognito_event("CustomEmailSender_SignUp");
        let request = v["request"].as_object_mut().unwrap();
        request.remove("code");
        request.remove("clientMetadata");
        let e: CustomEmailSenderEvent = parse_event(TRIGGER, v).unwrap();
        assert_eq!(e.request.code, None);
    }

    #[test]
    fn no_response_is_needed_and_a_console_response_is_ignored() {
        let v = cognito_event("CustomEmailSender_SignUp");
        assert!(v.get("response").is_none());
        parse_event::<CustomEmailSenderEvent>(TRIGGER, v).unwrap();
        let mut v = cognito_event("CustomEmailSender_SignUp");
        v["response"] = json!({});
        v.as_object_mut().unwrap().remove("callerContext");
        let e: CustomEmailSenderEvent = parse_event(TRIGGER, v).unwrap();
        assert_eq!(e.header.caller_context.client_id, None);
    }

    #[test]
    fn another_trigger_or_request_type_is_refused_by_name() {
        let e =
            parse_event::<CustomEmailSenderEvent>(TRIGGER, cognito_event("CustomSMSSender_SignUp"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("CustomSMSSender_SignUp"), "{e}");

        // The SMS sender's request type is not this trigger's.
        let mut v = cognito_event("CustomEmailSender_SignUp");
        v["request"]["type"] = json!("customSMSSenderRequestV1");
        let e = parse_event::<CustomEmailSenderEvent>(TRIGGER, v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("request.type"), "{e}");

        let mut v = cognito_event("CustomEmailSender_SignUp");
        v["request"]["type"] = json!("customEmailSenderRequestV2");
        let e = parse_event::<CustomEmailSenderEvent>(TRIGGER, v)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("request.type") && e.contains("customEmailSenderRequestV2"),
            "{e}"
        );

        let mut v = cognito_event("CustomEmailSender_SignUp");
        v["request"]["code"] = json!(12);
        let e = parse_event::<CustomEmailSenderEvent>(TRIGGER, v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("request.code"), "{e}");
    }

    #[test]
    fn blank_attributes_read_as_absent() {
        let mut v = cognito_event("CustomEmailSender_SignUp");
        v["request"]["userAttributes"]["email"] = json!(" ");
        let e: CustomEmailSenderEvent = parse_event(TRIGGER, v).unwrap();
        assert_eq!(e.attribute("email"), None);
        assert_eq!(e.attribute("locale"), Some("ja"));
    }
}
