//! Sending one SMS, behind the narrow [`SmsSender`] trait: [`SnsSender`]
//! publishes through Amazon SNS (what runs in Lambda), [`Outbox`] keeps the
//! messages in memory (replay and tests).
//!
//! The phone number is checked (E.164) before any call, and no error or log
//! line carries the number, the text, or SNS's own error message (which may
//! quote the number): only the error code and a masked number.

use std::sync::{Arc, Mutex};

use auth_policy::ConfigSource;
use auth_policy::redact::mask_phone;
use aws_sdk_sns::types::MessageAttributeValue;
use thiserror::Error;

pub const SENDER_ID_VAR: &str = "SMS_SENDER_ID";
pub const ORIGINATION_NUMBER_VAR: &str = "SMS_ORIGINATION_NUMBER";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmsError {
    #[error("the user has no phone_number: nothing was sent")]
    NoPhone,
    #[error("phone_number {masked} is not E.164: nothing was sent")]
    InvalidPhone { masked: String },
    #[error("SNS did not accept the SMS to {masked}: {code}")]
    Rejected { masked: String, code: String },
    #[error("SNS could not be reached to send the SMS to {masked}: {reason}")]
    Unreachable { masked: String, reason: String },
}

impl SmsError {
    /// Whether trying again later may succeed (throttling, outages).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Rejected { code, .. } => matches!(
                code.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "ThrottledException"
                    | "InternalError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "KMSThrottlingException"
            ),
            _ => false,
        }
    }
}

/// Sends one text message to one phone number.
pub trait SmsSender {
    /// Sends `text` to `phone` (E.164); returns the provider's message id.
    fn send(
        &self,
        phone: &str,
        text: &str,
    ) -> impl Future<Output = Result<String, SmsError>> + Send;
}

fn check_phone(phone: &str) -> Result<(), SmsError> {
    if phone.trim().is_empty() {
        return Err(SmsError::NoPhone);
    }
    if !auth_policy::is_e164(phone) {
        return Err(SmsError::InvalidPhone {
            masked: mask_phone(phone),
        });
    }
    Ok(())
}

/// Optional sender identity: `SMS_SENDER_ID` (alphanumeric sender id, where
/// the destination country supports it) and `SMS_ORIGINATION_NUMBER` (a
/// number or short code provisioned in the account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderIdentity {
    pub sender_id: Option<String>,
    pub origination_number: Option<String>,
}

impl SenderIdentity {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Self {
        let get = |k| {
            source
                .value(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            sender_id: get(SENDER_ID_VAR),
            origination_number: get(ORIGINATION_NUMBER_VAR),
        }
    }
}

/// SMS through SNS `Publish` to a phone number, as a transactional message.
#[derive(Debug, Clone)]
pub struct SnsSender {
    client: aws_sdk_sns::Client,
    identity: SenderIdentity,
}

impl SnsSender {
    pub fn new(client: aws_sdk_sns::Client, identity: SenderIdentity) -> Self {
        Self { client, identity }
    }
}

fn string_attribute(value: &str, masked: &str) -> Result<MessageAttributeValue, SmsError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| SmsError::Unreachable {
            masked: masked.to_owned(),
            reason: format!("request could not be built: {e}"),
        })
}

impl SmsSender for SnsSender {
    async fn send(&self, phone: &str, text: &str) -> Result<String, SmsError> {
        check_phone(phone)?;
        let masked = mask_phone(phone);
        let mut request = self
            .client
            .publish()
            .phone_number(phone)
            .message(text)
            .message_attributes(
                "AWS.SNS.SMS.SMSType",
                string_attribute("Transactional", &masked)?,
            );
        if let Some(id) = &self.identity.sender_id {
            request =
                request.message_attributes("AWS.SNS.SMS.SenderID", string_attribute(id, &masked)?);
        }
        if let Some(number) = &self.identity.origination_number {
            request = request.message_attributes(
                "AWS.MM.SMS.OriginationNumber",
                string_attribute(number, &masked)?,
            );
        }
        match request.send().await {
            Ok(out) => {
                let id = out.message_id().unwrap_or_default().to_owned();
                tracing::info!(to = %masked, message_id = %id, "SMS handed to SNS");
                Ok(id)
            }
            Err(e) => Err(classify(e, masked)),
        }
    }
}

fn classify<E, R>(e: aws_sdk_sns::error::SdkError<E, R>, masked: String) -> SmsError
where
    E: aws_sdk_sns::error::ProvideErrorMetadata,
{
    use aws_sdk_sns::error::SdkError;
    match &e {
        SdkError::ServiceError(service) => SmsError::Rejected {
            masked,
            code: service.err().code().unwrap_or("Unknown").to_owned(),
        },
        SdkError::TimeoutError(_) => SmsError::Unreachable {
            masked,
            reason: "timed out".to_owned(),
        },
        SdkError::DispatchFailure(_) => SmsError::Unreachable {
            masked,
            reason: "connection failed".to_owned(),
        },
        SdkError::ResponseError(_) => SmsError::Unreachable {
            masked,
            reason: "unreadable response".to_owned(),
        },
        _ => SmsError::Unreachable {
            masked,
            reason: "request could not be built".to_owned(),
        },
    }
}

/// One message in the [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub phone: String,
    pub text: String,
}

/// An in-memory [`SmsSender`]: keeps every message for inspection.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<SentSms>>>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message sent so far, oldest first.
    pub fn messages(&self) -> Vec<SentSms> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl SmsSender for Outbox {
    async fn send(&self, phone: &str, text: &str) -> Result<String, SmsError> {
        check_phone(phone)?;
        let mut sent = self.sent.lock().map_err(|_| SmsError::Unreachable {
            masked: mask_phone(phone),
            reason: "outbox poisoned".to_owned(),
        })?;
        sent.push(SentSms {
            phone: phone.to_owned(),
            text: text.to_owned(),
        });
        Ok(format!("outbox-{}", sent.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    #[tokio::test]
    async fn outbox_keeps_messages_and_refuses_bad_numbers() {
        let outbox = Outbox::new();
        outbox.send("+14155550123", "hello").await.unwrap();
        assert_eq!(outbox.send("", "x").await, Err(SmsError::NoPhone));
        let e = outbox.send("+1 415 555 0123", "x").await.unwrap_err();
        assert!(matches!(e, SmsError::InvalidPhone { .. }));
        assert!(!e.to_string().contains("415 555 0123"));
        assert_eq!(
            outbox.messages(),
            vec![SentSms {
                phone: "+14155550123".into(),
                text: "hello".into()
            }]
        );
    }

    #[tokio::test]
    async fn sns_publishes_a_transactional_sms_with_the_sender_identity() {
        let rule = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                let attrs = r.message_attributes().cloned().unwrap_or_default();
                r.phone_number() == Some("+14155550123")
                    && r.message() == Some("Your code is 123456")
                    && attrs
                        .get("AWS.SNS.SMS.SMSType")
                        .and_then(|a| a.string_value())
                        == Some("Transactional")
                    && attrs
                        .get("AWS.SNS.SMS.SenderID")
                        .and_then(|a| a.string_value())
                        == Some("MyApp")
                    && !attrs.contains_key("AWS.MM.SMS.OriginationNumber")
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let client = mock_client!(aws_sdk_sns, RuleMode::Sequential, [&rule]);
        let sender = SnsSender::new(
            client,
            SenderIdentity {
                sender_id: Some("MyApp".into()),
                origination_number: None,
            },
        );
        assert_eq!(
            sender
                .send("+14155550123", "Your code is 123456")
                .await
                .unwrap(),
            "m-1"
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn sns_errors_carry_the_code_but_never_the_number() {
        let rule = mock!(aws_sdk_sns::Client::publish).then_error(|| {
            PublishError::generic(
                aws_sdk_sns::error::ErrorMetadata::builder()
                    .code("InvalidParameter")
                    .message("Invalid parameter: PhoneNumber Reason: +14155550123 is not valid")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sns, RuleMode::Sequential, [&rule]);
        let sender = SnsSender::new(client, SenderIdentity::default());
        let e = sender.send("+14155550123", "x").await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("InvalidParameter"), "{text}");
        assert!(!text.contains("+14155550123"), "{text}");
        assert!(!e.is_transient());
    }

    #[tokio::test]
    async fn nothing_is_sent_without_a_valid_number() {
        let rule =
            mock!(aws_sdk_sns::Client::publish).then_output(|| PublishOutput::builder().build());
        let client = mock_client!(aws_sdk_sns, RuleMode::Sequential, [&rule]);
        let sender = SnsSender::new(client, SenderIdentity::default());
        assert_eq!(sender.send("", "x").await, Err(SmsError::NoPhone));
        assert!(sender.send("0412345678", "x").await.is_err());
        assert_eq!(rule.num_calls(), 0);
    }

    #[test]
    fn identity_reads_its_two_variables() {
        let id = SenderIdentity::from_source(
            &[("SMS_SENDER_ID", "MyApp"), ("SMS_ORIGINATION_NUMBER", " ")][..],
        );
        assert_eq!(id.sender_id.as_deref(), Some("MyApp"));
        assert_eq!(id.origination_number, None);
    }
}
