//! Sending one email, behind the narrow [`EmailSender`] trait: [`SesSender`]
//! sends through Amazon SES v2 `SendEmail` (what runs in Lambda), [`Outbox`]
//! keeps the emails in memory (replay and tests).
//!
//! The recipient is checked before any call, and no error or log line
//! carries the address, the subject or body, or SES's own error message
//! (which may quote addresses): only the error CODE, mapped to a small
//! [`EmailError`] that says what to do, and the address masked
//! (`a***@example.com`). Throttling is retried by the SDK within the
//! client's bounded budget (the function builds the client from
//! `sdk_config::Budget`); what is still throttled after that is an error
//! Lambda retries.

use std::sync::{Arc, Mutex};

use auth_policy::ConfigSource;
use auth_policy::redact::mask_email;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use thiserror::Error;

/// The sender address (required): `name@domain` or `Display Name <name@domain>`.
pub const FROM_VAR: &str = "EMAIL_FROM";
/// An SES configuration set to send with (optional).
pub const CONFIGURATION_SET_VAR: &str = "SES_CONFIGURATION_SET";

/// The charset of every part.
pub const CHARSET: &str = "UTF-8";

/// The longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS_CHARS: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailError {
    #[error("the user has no email address: nothing was sent")]
    NoAddress,
    #[error("the email address {masked} is not one SES can send to: nothing was sent")]
    InvalidAddress { masked: String },
    /// SES refused this message: the sender identity is not verified, or
    /// (in the SES sandbox) the recipient is not.
    #[error(
        "SES rejected the email to {masked} ({code}): check that the {FROM_VAR} identity is verified in SES and, while the account is in the SES sandbox, that the recipient is verified too"
    )]
    Rejected { masked: String, code: String },
    /// The account (or the configuration set) may not send now.
    #[error(
        "SES is not sending for this account or configuration set ({code}): the email to {masked} was not sent; see the SES account dashboard"
    )]
    SendingPaused { masked: String, code: String },
    /// The configuration set named by `SES_CONFIGURATION_SET` does not exist.
    #[error(
        "SES has no configuration set named by {CONFIGURATION_SET_VAR} ({code}): the email to {masked} was not sent"
    )]
    ConfigurationSetNotFound { masked: String, code: String },
    /// Still throttled after the SDK's bounded retries.
    #[error(
        "SES throttled the email to {masked} ({code}) after the SDK's retries: the sending rate or quota is reached"
    )]
    Throttled { masked: String, code: String },
    /// Any other error SES answered with.
    #[error("SES did not accept the email to {masked}: {code}")]
    Failed { masked: String, code: String },
    #[error("SES could not be reached to send the email to {masked}: {reason}")]
    Unreachable { masked: String, reason: String },
}

impl EmailError {
    /// Whether trying again later may succeed (throttling, outages).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Unreachable { .. })
    }

    /// A short, stable name for logs and `errorType`s.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoAddress => "NoEmailAddress",
            Self::InvalidAddress { .. } => "InvalidEmailAddress",
            Self::Rejected { .. } => "MessageRejected",
            Self::SendingPaused { .. } => "SendingPaused",
            Self::ConfigurationSetNotFound { .. } => "ConfigurationSetNotFound",
            Self::Throttled { .. } => "Throttled",
            Self::Failed { .. } => "EmailNotSent",
            Self::Unreachable { .. } => "SesUnreachable",
        }
    }
}

/// Maps an SES error code to an [`EmailError`] (codes, never message text).
pub fn from_code(code: &str, masked: String) -> EmailError {
    let code_owned = code.to_owned();
    match code {
        "MessageRejected" | "MailFromDomainNotVerifiedException" => EmailError::Rejected {
            masked,
            code: code_owned,
        },
        "AccountSuspendedException" | "SendingPausedException" => EmailError::SendingPaused {
            masked,
            code: code_owned,
        },
        "NotFoundException" => EmailError::ConfigurationSetNotFound {
            masked,
            code: code_owned,
        },
        "TooManyRequestsException"
        | "LimitExceededException"
        | "Throttling"
        | "ThrottlingException" => EmailError::Throttled {
            masked,
            code: code_owned,
        },
        _ => EmailError::Failed {
            masked,
            // A code is an identifier; anything else is not repeated.
            code: if !code.is_empty()
                && code.len() <= 64
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
            {
                code_owned
            } else {
                "Unknown".to_owned()
            },
        },
    }
}

/// Sends one email to one address.
pub trait EmailSender {
    /// Sends a two-part (text and HTML) email to `to`; returns the
    /// provider's message id.
    fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> impl Future<Output = Result<String, EmailError>> + Send;
}

/// Whether `address` is one address SES can send to: one `@`, a local part
/// of at most 64 characters, a domain name, no spaces, controls or the
/// characters that would make it a list or a display name.
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    address.chars().count() <= MAX_ADDRESS_CHARS
        && !local.is_empty()
        && local.chars().count() <= 64
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;:\"()[]\\".contains(c))
        && !local.contains('@')
        && auth_policy::email_domain(address).is_some_and(|d| d.contains('.'))
        && !domain.ends_with('.')
}

/// Checks the recipient before anything is sent.
pub fn check_address(to: &str) -> Result<(), EmailError> {
    if to.trim().is_empty() {
        return Err(EmailError::NoAddress);
    }
    if !is_address(to) {
        return Err(EmailError::InvalidAddress {
            masked: mask_email(to),
        });
    }
    Ok(())
}

/// The sender settings were missing or wrong at init.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EmailConfigError {
    #[error(
        "{FROM_VAR} is not set: set it to the sender address, an identity verified in SES (name@example.com or \"Example <name@example.com>\")"
    )]
    MissingFrom,
    #[error(
        "{FROM_VAR} is not an email address ({masked}, {chars} characters): expected name@example.com or \"Display Name <name@example.com>\" (a display name in ASCII; other characters as an RFC 2047 encoded word)"
    )]
    InvalidFrom { masked: String, chars: usize },
    #[error(
        "{CONFIGURATION_SET_VAR}={value:?} is not a configuration set name: 1 to 64 letters, digits, _ or -"
    )]
    InvalidConfigurationSet { value: String },
}

/// What every email is sent with: `EMAIL_FROM` (required) and
/// `SES_CONFIGURATION_SET` (optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesSettings {
    /// `FromEmailAddress`, as configured (a display name kept).
    pub from: String,
    pub configuration_set: Option<String>,
}

impl SesSettings {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, EmailConfigError> {
        let get = |k| {
            source
                .value(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let from = get(FROM_VAR).ok_or(EmailConfigError::MissingFrom)?;
        if !is_from_address(&from) {
            let address = from
                .rsplit_once('<')
                .map_or(from.as_str(), |(_, a)| a.trim_end_matches('>'));
            return Err(EmailConfigError::InvalidFrom {
                masked: mask_email(address),
                chars: from.chars().count(),
            });
        }
        let configuration_set = get(CONFIGURATION_SET_VAR);
        if let Some(set) = &configuration_set {
            let valid = set.len() <= 64
                && set
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(EmailConfigError::InvalidConfigurationSet {
                    value: set.chars().take(80).collect(),
                });
            }
        }
        Ok(Self {
            from,
            configuration_set,
        })
    }
}

/// `name@domain`, or `Display Name <name@domain>` with an ASCII display
/// name (quoted or not) that holds no angle brackets.
fn is_from_address(from: &str) -> bool {
    match from.strip_suffix('>').and_then(|f| f.rsplit_once('<')) {
        Some((name, address)) => {
            let name = name.trim();
            name.chars()
                .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '<' && c != '>')
                && is_address(address)
        }
        None => is_address(from),
    }
}

/// Email through SES v2 `SendEmail`: simple content, subject, text and HTML,
/// each in UTF-8.
#[derive(Debug, Clone)]
pub struct SesSender {
    client: aws_sdk_sesv2::Client,
    settings: SesSettings,
}

impl SesSender {
    pub fn new(client: aws_sdk_sesv2::Client, settings: SesSettings) -> Self {
        Self { client, settings }
    }

    pub fn settings(&self) -> &SesSettings {
        &self.settings
    }
}

fn part(data: &str, masked: &str) -> Result<Content, EmailError> {
    Content::builder()
        .data(data)
        .charset(CHARSET)
        .build()
        .map_err(|e| EmailError::Unreachable {
            masked: masked.to_owned(),
            reason: format!("request could not be built: {e}"),
        })
}

impl EmailSender for SesSender {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<String, EmailError> {
        check_address(to)?;
        let masked = mask_email(to);
        let message = Message::builder()
            .subject(part(subject, &masked)?)
            .body(
                Body::builder()
                    .text(part(text, &masked)?)
                    .html(part(html, &masked)?)
                    .build(),
            )
            .build();
        let request = self
            .client
            .send_email()
            .from_email_address(&self.settings.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.settings.configuration_set.clone());
        match request.send().await {
            Ok(out) => {
                let id = out.message_id().unwrap_or_default().to_owned();
                tracing::info!(to = %masked, message_id = %id, "email handed to SES");
                Ok(id)
            }
            Err(e) => Err(classify(e, masked)),
        }
    }
}

fn classify<E, R>(e: SdkError<E, R>, masked: String) -> EmailError
where
    E: ProvideErrorMetadata,
{
    match &e {
        SdkError::ServiceError(service) => {
            from_code(service.err().code().unwrap_or("Unknown"), masked)
        }
        SdkError::TimeoutError(_) => EmailError::Unreachable {
            masked,
            reason: "timed out".to_owned(),
        },
        SdkError::DispatchFailure(_) => EmailError::Unreachable {
            masked,
            reason: "connection failed".to_owned(),
        },
        SdkError::ResponseError(_) => EmailError::Unreachable {
            masked,
            reason: "unreadable response".to_owned(),
        },
        _ => EmailError::Unreachable {
            masked,
            reason: "request could not be built".to_owned(),
        },
    }
}

/// One email in the [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// An in-memory [`EmailSender`]: keeps every email for inspection, or fails
/// every send with the error given to [`Outbox::fail_with`].
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<SentEmail>>>,
    failure: Arc<Mutex<Option<EmailError>>>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every email sent so far, oldest first.
    pub fn emails(&self) -> Vec<SentEmail> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Every later send fails with `error` (`None`: sends succeed again).
    pub fn fail_with(&self, error: Option<EmailError>) {
        if let Ok(mut f) = self.failure.lock() {
            *f = error;
        }
    }
}

impl EmailSender for Outbox {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        html: &str,
    ) -> Result<String, EmailError> {
        check_address(to)?;
        let poisoned = || EmailError::Unreachable {
            masked: mask_email(to),
            reason: "outbox poisoned".to_owned(),
        };
        if let Some(e) = self.failure.lock().map_err(|_| poisoned())?.clone() {
            return Err(e);
        }
        let mut sent = self.sent.lock().map_err(|_| poisoned())?;
        sent.push(SentEmail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: html.to_owned(),
        });
        Ok(format!("outbox-{}", sent.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::operation::send_email::SendEmailOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn settings(configuration_set: Option<&str>) -> SesSettings {
        SesSettings {
            from: "Example <no-reply@example.com>".into(),
            configuration_set: configuration_set.map(str::to_owned),
        }
    }

    /// An SES v2 error response as the service sends it (restJson1: the
    /// code in `x-amzn-ErrorType`), with a message that quotes the address
    /// the way SES's own messages do.
    fn ses_error(status: u16, code: &'static str) -> impl Fn() -> HttpResponse {
        move || {
            let mut r = HttpResponse::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(format!(
                    r#"{{"message":"Email address is not verified. The following identities failed the check in region US-EAST-1: carol.jones@example.org, {code}"}}"#
                )),
            );
            r.headers_mut().insert("x-amzn-errortype", code);
            r.headers_mut().insert("content-type", "application/json");
            r
        }
    }

    fn fast_retries(b: aws_sdk_sesv2::config::Builder) -> aws_sdk_sesv2::config::Builder {
        b.retry_config(
            aws_sdk_sesv2::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(1))
                .with_max_backoff(std::time::Duration::from_millis(2)),
        )
    }

    #[tokio::test]
    async fn ses_gets_from_configuration_set_and_three_utf8_parts() {
        let rule = mock!(aws_sdk_sesv2::Client::send_email)
            .match_requests(|r| {
                let simple = r.content().and_then(|c| c.simple());
                let body = simple.and_then(|m| m.body());
                let utf8 = |c: Option<&Content>| c.and_then(|c| c.charset()) == Some("UTF-8");
                r.from_email_address() == Some("Example <no-reply@example.com>")
                    && r.configuration_set_name() == Some("tracking")
                    && r.destination().map(|d| d.to_addresses())
                        == Some(&["carol.jones@example.org".to_owned()][..])
                    && simple.and_then(|m| m.subject()).map(|s| s.data()) == Some("確認コード")
                    && body.and_then(|b| b.text()).map(|t| t.data()) == Some("code 402918")
                    && body.and_then(|b| b.html()).map(|h| h.data()) == Some("<p>code 402918</p>")
                    && utf8(simple.and_then(|m| m.subject()))
                    && utf8(body.and_then(|b| b.text()))
                    && utf8(body.and_then(|b| b.html()))
            })
            .then_output(|| SendEmailOutput::builder().message_id("ses-1").build());
        let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&rule]);
        let sender = SesSender::new(client, settings(Some("tracking")));
        let id = sender
            .send(
                "carol.jones@example.org",
                "確認コード",
                "code 402918",
                "<p>code 402918</p>",
            )
            .await
            .unwrap();
        assert_eq!(id, "ses-1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn without_a_configuration_set_none_is_sent() {
        let rule = mock!(aws_sdk_sesv2::Client::send_email)
            .match_requests(|r| r.configuration_set_name().is_none())
            .then_output(|| SendEmailOutput::builder().message_id("ses-2").build());
        let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&rule]);
        let sender = SesSender::new(client, settings(None));
        sender.send("dan@example.org", "s", "t", "h").await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    /// Each code SES answers with, and what it becomes; the error never
    /// repeats the address (SES's own message does).
    #[tokio::test]
    async fn ses_errors_are_mapped_by_code_and_mask_the_address() {
        let cases: [(u16, &'static str, &str); 8] = [
            (400, "MessageRejected", "MessageRejected"),
            (400, "MailFromDomainNotVerifiedException", "MessageRejected"),
            (400, "AccountSuspendedException", "SendingPaused"),
            (400, "SendingPausedException", "SendingPaused"),
            (404, "NotFoundException", "ConfigurationSetNotFound"),
            (400, "BadRequestException", "EmailNotSent"),
            (429, "TooManyRequestsException", "Throttled"),
            (400, "LimitExceededException", "Throttled"),
        ];
        for (status, code, kind) in cases {
            let rule = mock!(aws_sdk_sesv2::Client::send_email)
                .sequence()
                .http_response(ses_error(status, code))
                .times(3)
                .build();
            let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&rule], fast_retries);
            let sender = SesSender::new(client, settings(None));
            let e = sender
                .send("carol.jones@example.org", "s", "t", "h")
                .await
                .unwrap_err();
            assert_eq!(e.kind(), kind, "{code}: {e}");
            let text = e.to_string();
            assert!(text.contains(code), "{text}");
            assert!(text.contains("c***@example.org"), "{text}");
            assert!(!text.contains("carol.jones"), "{text}");
            assert!(!text.contains("not verified. The following"), "{text}");
            // Throttling is retried by the SDK, within its budget; the others
            // are answers.
            let throttled = kind == "Throttled";
            assert_eq!(rule.num_calls(), if throttled { 3 } else { 1 }, "{code}");
            assert_eq!(e.is_transient(), throttled, "{code}");
        }
    }

    #[tokio::test]
    async fn throttling_that_clears_within_the_retries_sends() {
        let rule = mock!(aws_sdk_sesv2::Client::send_email)
            .sequence()
            .http_response(ses_error(429, "TooManyRequestsException"))
            .output(|| SendEmailOutput::builder().message_id("ses-3").build())
            .build();
        let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&rule], fast_retries);
        let sender = SesSender::new(client, settings(None));
        assert_eq!(
            sender.send("dan@example.org", "s", "t", "h").await.unwrap(),
            "ses-3"
        );
        assert_eq!(rule.num_calls(), 2);
    }

    #[test]
    fn unknown_codes_are_kept_only_when_they_read_as_codes() {
        assert_eq!(
            from_code("InternalFailure", "m".into()),
            EmailError::Failed {
                masked: "m".into(),
                code: "InternalFailure".into()
            }
        );
        let e = from_code("bob@example.com is bad", "m".into());
        assert!(!e.to_string().contains("bob@"), "{e}");
    }

    #[tokio::test]
    async fn nothing_is_sent_without_a_valid_address() {
        let rule = mock!(aws_sdk_sesv2::Client::send_email)
            .then_output(|| SendEmailOutput::builder().build());
        let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&rule]);
        let sender = SesSender::new(client, settings(None));
        assert_eq!(
            sender.send(" ", "s", "t", "h").await,
            Err(EmailError::NoAddress)
        );
        for bad in [
            "no-at-sign",
            "two@@example.com",
            "a@b@example.com",
            "eve@example.com, mallory@example.com",
            "Eve <eve@example.com>",
            "eve@localhost",
            "eve @example.com",
            "eve@example.com\r\nBcc: x@example.com",
            "@example.com",
        ] {
            let e = sender.send(bad, "s", "t", "h").await.unwrap_err();
            assert!(
                matches!(e, EmailError::InvalidAddress { .. }),
                "{bad:?}: {e}"
            );
            assert!(!e.to_string().contains("eve@"), "{e}");
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(sender.send(&long, "s", "t", "h").await.is_err());
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn the_outbox_keeps_emails_and_can_fail() {
        let outbox = Outbox::new();
        outbox
            .send("erin@example.com", "s", "t", "<p>h</p>")
            .await
            .unwrap();
        assert_eq!(
            outbox.send("", "s", "t", "h").await,
            Err(EmailError::NoAddress)
        );
        outbox.fail_with(Some(EmailError::Throttled {
            masked: "e***@example.com".into(),
            code: "TooManyRequestsException".into(),
        }));
        assert!(
            outbox
                .send("erin@example.com", "s", "t", "h")
                .await
                .is_err()
        );
        outbox.fail_with(None);
        outbox
            .send("erin@example.com", "s2", "t2", "h2")
            .await
            .unwrap();
        let sent = outbox.emails();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            sent[0],
            SentEmail {
                to: "erin@example.com".into(),
                subject: "s".into(),
                text: "t".into(),
                html: "<p>h</p>".into()
            }
        );
    }

    #[test]
    fn settings_need_a_from_address_and_name_their_variables() {
        let e = SesSettings::from_source(&[("OTHER", "x")][..]).unwrap_err();
        assert_eq!(e, EmailConfigError::MissingFrom);
        assert!(e.to_string().starts_with("EMAIL_FROM is not set"), "{e}");
        for bad in [
            "no-reply",
            "no-reply@localhost",
            "Example <no-reply>",
            "Exämple <no-reply@example.com>",
            "a@example.com, b@example.com",
            "<>",
        ] {
            let e = SesSettings::from_source(&[("EMAIL_FROM", bad)][..]).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with("EMAIL_FROM is not an email address"),
                "{bad:?}: {text}"
            );
        }
        let e = SesSettings::from_source(
            &[("EMAIL_FROM", "Secret Name <secret.sender@example.com>x")][..],
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("secret.sender"), "{e}");

        let ok = SesSettings::from_source(
            &[
                ("EMAIL_FROM", " Example Co <no-reply@mail.example.com> "),
                ("SES_CONFIGURATION_SET", "cognito-mail"),
            ][..],
        )
        .unwrap();
        assert_eq!(ok.from, "Example Co <no-reply@mail.example.com>");
        assert_eq!(ok.configuration_set.as_deref(), Some("cognito-mail"));
        let ok = SesSettings::from_source(
            &[
                ("EMAIL_FROM", "no-reply@example.com"),
                ("SES_CONFIGURATION_SET", " "),
            ][..],
        )
        .unwrap();
        assert_eq!(ok.configuration_set, None);
        let encoded = "=?utf-8?B?5L6L?= <no-reply@example.com>";
        assert!(SesSettings::from_source(&[("EMAIL_FROM", encoded)][..]).is_ok());

        let e = SesSettings::from_source(
            &[
                ("EMAIL_FROM", "no-reply@example.com"),
                ("SES_CONFIGURATION_SET", "has space"),
            ][..],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("SES_CONFIGURATION_SET="), "{e}");
    }
}
