//! The CustomEmailSender trigger: Cognito hands over an email it would have
//! sent itself, with the secret encrypted; this function decrypts it with
//! the same KMS key and checks as the SMS sender, writes the subject, text
//! and HTML for the trigger source in the user's language, and sends them by
//! SES v2.
//!
//! Cognito invokes this trigger ASYNCHRONOUSLY and reads no response. A
//! send the policy refuses (a rate limit) or one made already is an ANSWER:
//! the handler returns success, logs the reason and counts it
//! (`EmailRefused`, `EmailDuplicate`), so Lambda neither retries it nor parks
//! the event (address, encrypted code or temporary password) in the
//! dead-letter queue, which an attacker could otherwise flood. Only real
//! failures (the event unusable, the code not decryptable, SES refusing or
//! failing after the SDK's retries, the limits table down for a kind that
//! fails closed) are Lambda errors: Lambda retries them and then hands the
//! event to the on-failure destination. The reason is logged, masked: no log
//! line or error message carries the code, the temporary password or the
//! full address.
//!
//! The event is parsed and the address checked first (no call). Then the
//! send gate (the email limits shared in DynamoDB, which also skip an event
//! already sent; email has no country policy) and the decryption (one KMS
//! call) go out together, and the email is sent: two round trips one after
//! the other. A code decrypted for a send the gate refuses is dropped unused.

use auth_policy::ConfigSource;
use auth_policy::redact::mask_email;
use code_decrypt::{CodeDecryptor, DecryptError};
use contact_guard::ContactGuard;
use email_delivery::{EmailError, EmailSender};
use email_messages::{MessageKind, TEMPLATES_FILE_VAR, TemplateError, Templates};
use lambda_host::events::EventError;
use lambda_host::events::custom_email_sender::{CustomEmailSenderEvent, TRIGGER};
use lambda_runtime::Diagnostic;
use send_limits::{
    Channel, Dedup, FailMode, Limiter, LimiterError, Outgoing, RecordKind, Refusal, SendGate,
    Verdict,
};
use serde_json::Value;
use thiserror::Error;

/// What the handler needs: built once at init, borrowed by every call.
#[derive(Debug)]
pub struct Deps<D, S, L> {
    pub decryptor: D,
    pub sender: S,
    pub templates: Templates,
    pub gate: SendGate<L>,
    /// Present with `ACCOUNT_CHANGE=RecentSignIn`: the code of a new
    /// address goes out only with the account-change API's allowance.
    pub contact_guard: Option<ContactGuard>,
}

#[derive(Debug, Error)]
pub enum SenderError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    #[error("the user has no email attribute: nothing was sent")]
    NoEmailAddress,
    #[error("the email attribute {masked} is not an address SES can send to: nothing was sent")]
    InvalidEmailAddress { masked: String },
    #[error("{trigger} carries no code (request.code is null): nothing was sent")]
    MissingCode { trigger: &'static str },
    #[error("the event has no {field}: nothing was sent")]
    MissingField { field: &'static str },
    #[error("refused: {0}")]
    WrongUserPool(DecryptError),
    #[error("the code could not be decrypted: {0}")]
    Decrypt(DecryptError),
    #[error("no email template for {kind}: nothing was sent")]
    NoTemplate { kind: MessageKind },
    #[error(transparent)]
    Email(#[from] EmailError),
    /// The send gate said no: nothing was sent (a code decrypted beside the
    /// gate's check is dropped unused).
    #[error("email to {masked} not sent: {}", describe(refusal))]
    Refused { masked: String, refusal: Refusal },
}

fn describe(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Limited(kind, spec) => format!(
            "the {} limit {spec} ({}) is reached",
            kind.as_str(),
            kind.variable()
        ),
        Refusal::Unavailable(LimiterError::Unavailable(reason)) => format!(
            "the limits table could not be used: {reason}; this kind of email is not sent without its limits"
        ),
        Refusal::Country(c) => format!("the country policy refuses it ({})", c.as_str()),
        Refusal::LockedOut => "the user's wrong codes reached CODE_FAILURES_PER_USER".to_owned(),
        Refusal::ContactChange => "a code for a new address that no recent sign-in allowed (ACCOUNT_CHANGE=RecentSignIn: change it through the account-change API)".to_owned(),
    }
}

impl SenderError {
    /// The `errorType` Lambda records (and the dead-letter record carries).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidEvent(_) | Self::MissingField { .. } => {
                lambda_host::error_type::INVALID_EVENT
            }
            Self::NoEmailAddress => "NoEmailAddress",
            Self::InvalidEmailAddress { .. } => "InvalidEmailAddress",
            Self::MissingCode { .. } => "MissingCode",
            Self::WrongUserPool(_) => "WrongUserPool",
            Self::Decrypt(DecryptError::Esdk { .. }) => "DecryptionFailed",
            Self::Decrypt(_) => "InvalidCode",
            Self::NoTemplate { .. } => lambda_host::error_type::INVALID_CONFIGURATION,
            Self::Email(e) => e.kind(),
            Self::Refused {
                refusal: Refusal::Limited(..),
                ..
            } => "RateLimited",
            Self::Refused {
                refusal: Refusal::Unavailable(_),
                ..
            } => "LimitsUnavailable",
            Self::Refused {
                refusal: Refusal::Country(_),
                ..
            } => "CountryNotAllowed",
            Self::Refused {
                refusal: Refusal::LockedOut,
                ..
            } => "CodeLockout",
            Self::Refused {
                refusal: Refusal::ContactChange,
                ..
            } => "ContactChangeRefused",
        }
    }

    /// Whether this is the policy's answer rather than a failure: returned
    /// as success (nothing to retry, nothing for the dead-letter queue).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                refusal: Refusal::Limited(..)
                    | Refusal::Country(_)
                    | Refusal::LockedOut
                    | Refusal::ContactChange,
                ..
            }
        )
    }
}

impl From<DecryptError> for SenderError {
    fn from(e: DecryptError) -> Self {
        match e {
            DecryptError::WrongUserPool { .. } | DecryptError::NoUserPool { .. } => {
                Self::WrongUserPool(e)
            }
            other => Self::Decrypt(other),
        }
    }
}

impl From<SenderError> for Diagnostic {
    fn from(e: SenderError) -> Self {
        Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The largest template file read at init.
pub const MAX_TEMPLATES_FILE_BYTES: u64 = 1024 * 1024;

/// The templates could not be loaded at init.
#[derive(Debug, Error)]
pub enum TemplatesError {
    #[error("{TEMPLATES_FILE_VAR} ({path}) cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(transparent)]
    Invalid(#[from] TemplateError),
}

/// The email templates: the built-in ones, with the file named by
/// `EMAIL_TEMPLATES_FILE` over them when it is set (read and checked here,
/// once, at init).
pub fn templates_from_source(
    source: &(impl ConfigSource + ?Sized),
) -> Result<Templates, TemplatesError> {
    let Some(path) = source
        .value(TEMPLATES_FILE_VAR)
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
    else {
        return Ok(Templates::built_in()?);
    };
    let unreadable = |reason: String| TemplatesError::Unreadable {
        path: path.clone(),
        reason,
    };
    let len = std::fs::metadata(&path)
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if len > MAX_TEMPLATES_FILE_BYTES {
        return Err(unreadable(format!(
            "{len} bytes, more than the {MAX_TEMPLATES_FILE_BYTES} a template file may have"
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| unreadable(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8".to_owned()))?;
    Ok(Templates::with_override(&text, &path)?)
}

/// Handles one CustomEmailSender event given as JSON. `Ok` means the event
/// is settled: the email was handed to SES (`{"response": {"outcome":
/// "sent"}}`), was sent already (`duplicate`), or the policy refused it
/// (`refused`, with its `errorType` and reason; logged and counted). Cognito
/// reads none of it. `Err` is a failure that Lambda should retry.
pub async fn handle<D, S, L>(deps: &Deps<D, S, L>, event: Value) -> Result<Value, SenderError>
where
    D: CodeDecryptor,
    S: EmailSender,
    L: Limiter,
{
    // The trigger source as sent, for the log line even when the event is
    // refused before it parses.
    let source = lambda_host::events::trigger_source(&event)
        .filter(|s| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_default()
        .to_owned();
    let event: CustomEmailSenderEvent = match lambda_host::events::parse_event(TRIGGER, event) {
        Ok(event) => event,
        Err(e) => {
            let e = SenderError::from(e);
            // Lambda does not log a handler's error; the dead-letter record
            // must have its reason in the logs.
            tracing::error!(
                trigger = %source,
                outcome = "refused",
                error_type = e.error_type(),
                "email not sent: {e}"
            );
            return Err(e);
        }
    };
    let result = deliver(deps, &event).await;
    let to = event.attribute("email").map(mask_email).unwrap_or_default();
    let pool = event.header.user_pool_id.as_deref().unwrap_or_default();
    match &result {
        Ok(Delivered::Sent) => {
            tracing::info!(trigger = %source, user_pool = pool, to = %to, outcome = "sent", "email sent")
        }
        Ok(Delivered::AlreadySent) => {
            tracing::info!(trigger = %source, user_pool = pool, to = %to, outcome = "duplicate", "email already sent for this event: not sent again")
        }
        Err(e) if e.is_refusal() => tracing::warn!(
            trigger = %source,
            user_pool = pool,
            to = %to,
            outcome = "refused",
            error_type = e.error_type(),
            "email not sent, by policy (settled: not retried): {e}"
        ),
        Err(e) => tracing::error!(
            trigger = %source,
            user_pool = pool,
            to = %to,
            outcome = "failed",
            error_type = e.error_type(),
            "email not sent: {e}"
        ),
    }
    // Cognito reads no response; the outcome is returned for replay, tests
    // and anyone invoking the function by hand.
    let outcome = match result {
        Ok(Delivered::Sent) => serde_json::json!({"outcome": "sent"}),
        Ok(Delivered::AlreadySent) => serde_json::json!({"outcome": "duplicate"}),
        Err(e) if e.is_refusal() => serde_json::json!({
            "outcome": "refused",
            "errorType": e.error_type(),
            "reason": e.to_string(),
        }),
        Err(e) => return Err(e),
    };
    Ok(serde_json::json!({ "response": outcome }))
}

/// What happened to an event that was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Sent,
    AlreadySent,
}

/// The same choice as the SMS sender's: codes an anonymous caller can make
/// the pool send at will fail closed when the limits cannot be checked;
/// sign-in codes, invitations an operator sends and security notices fail
/// open.
pub fn fail_mode(kind: MessageKind) -> FailMode {
    match kind {
        MessageKind::SignUp
        | MessageKind::ResendCode
        | MessageKind::ForgotPassword
        | MessageKind::UpdateUserAttribute
        | MessageKind::VerifyUserAttribute => FailMode::Closed,
        MessageKind::Authentication
        | MessageKind::AdminCreateUser
        | MessageKind::AccountTakeOverNotification => FailMode::Open,
    }
}

/// The address as the limits count it: trimmed and in lower case, so that
/// `Victim@Example.com` and `victim@example.com` share one budget.
pub fn limit_key_address(address: &str) -> String {
    address.trim().to_lowercase()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn deliver<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomEmailSenderEvent,
) -> Result<Delivered, SenderError>
where
    D: CodeDecryptor,
    S: EmailSender,
    L: Limiter,
{
    let source = event.header.trigger_source.ok_or_else(|| EventError::Unsupported {
        kind: TRIGGER,
        message: "triggerSource is missing: expected one of CustomEmailSender_SignUp, _ResendCode, _ForgotPassword, _UpdateUserAttribute, _VerifyUserAttribute, _AdminCreateUser, _Authentication, _AccountTakeOverNotification".to_owned(),
    })?;
    let kind = MessageKind::from_trigger_source(source.as_str())
        .ok_or_else(|| EventError::Internal(format!("no email for {source}")))?;
    // For `_UpdateUserAttribute` this is the NEW address: Cognito sends the
    // code there.
    let email = event
        .attribute("email")
        .ok_or(SenderError::NoEmailAddress)?;
    if !email_delivery::is_address(email.trim()) {
        return Err(SenderError::InvalidEmailAddress {
            masked: mask_email(email),
        });
    }
    let email = email.trim();
    let user_name = event.header.user_name.as_deref().unwrap_or_default();
    if kind == MessageKind::AdminCreateUser && user_name.trim().is_empty() {
        // An invitation must say which username the password belongs to.
        return Err(SenderError::MissingField { field: "userName" });
    }
    // The gate's send. The encrypted code makes the
    // event's de-duplication key: Lambda's retry of this event carries the
    // same one, Cognito's next code another.
    let pool_id = event.header.user_pool_id.as_deref().unwrap_or_default();
    let counted = limit_key_address(email);
    let outgoing = Outgoing {
        channel: Channel::Email,
        pool: pool_id,
        user: user_name,
        destination: &counted,
        destination_verified: event
            .attribute("email_verified")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        dedup: Some(Dedup {
            kind: RecordKind::Sent,
            // The trigger source and the encrypted code (the pool, user and
            // address are hashed in too).
            unique: format!(
                "{}#{}",
                source.as_str(),
                event.request.code.as_deref().unwrap_or_default()
            ),
            ttl: send_limits::DEDUP_TTL_SECS,
            memo: None,
        }),
        check_lockout: false,
        contact: match &deps.contact_guard {
            Some(_) => contact_guard::check_for(
                source
                    .as_str()
                    .strip_prefix("CustomEmailSender_")
                    .unwrap_or_default(),
            ),
            None => send_limits::ContactCheck::None,
        },
        now: unix_now(),
    };
    // The gate and the decryption go out together (the table and KMS at
    // once, then SES): a code decrypted for a send the gate refuses is
    // dropped unused.
    let (verdict, secret) = tokio::join!(
        deps.gate.check(&outgoing, fail_mode(kind)),
        reveal(deps, event, kind, source.as_str())
    );
    match verdict {
        Verdict::Send { failed_open } => {
            if failed_open {
                tracing::warn!(trigger = source.as_str(), to = %mask_email(email), "the email limits could not be checked: sending anyway (fail open for this kind of email)");
                lambda_host::metrics::count("EmailFailOpen", &[("Reason", source.as_str())]);
            }
        }
        Verdict::Duplicate { .. } => {
            lambda_host::metrics::count("EmailDuplicate", &[]);
            return Ok(Delivered::AlreadySent);
        }
        Verdict::Refused(Refusal::ContactChange) => {
            lambda_host::metrics::count("ContactChangeRefused", &[("Channel", "email")]);
            tell_the_address_in_force(deps, event, &outgoing, email).await;
            return Err(SenderError::Refused {
                masked: mask_email(email),
                refusal: Refusal::ContactChange,
            });
        }
        Verdict::Refused(refusal) => {
            lambda_host::metrics::count("EmailRefused", &[("Reason", refusal.as_str())]);
            return Err(SenderError::Refused {
                masked: mask_email(email),
                refusal,
            });
        }
    }
    let result = match secret {
        Ok(secret) => send(deps, event, kind, email, user_name, &secret).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(()) => lambda_host::metrics::count("EmailSent", &[]),
        // The retry of this event must be able to send.
        Err(_) => deps.gate.send_failed(&outgoing).await,
    }
    result.map(|()| Delivered::Sent)
}

/// After a refused change: the held record, and (on the first refusal of
/// the address within the day) a notice to the verified email in force.
/// A notice that cannot be sent is logged; the code stays refused.
async fn tell_the_address_in_force<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomEmailSenderEvent,
    outgoing: &Outgoing<'_>,
    attempted: &str,
) where
    S: EmailSender,
    L: Limiter,
{
    let Some(guard) = &deps.contact_guard else {
        return;
    };
    let Some(current) = guard
        .held(
            deps.gate.limiter.as_ref(),
            Channel::Email,
            outgoing.pool,
            outgoing.user,
            outgoing.destination,
            outgoing.now,
        )
        .await
    else {
        return;
    };
    let masked = mask_email(attempted);
    let when = email_messages::notice::utc_minute(outgoing.now);
    let notice = contact_guard::refused_notice(Channel::Email, &masked, &when);
    let m = email_messages::notice::notice_email(&notice, event.attribute("locale"));
    match deps
        .sender
        .send(&current, &m.subject, &m.text, &m.html)
        .await
    {
        Ok(_) => {
            tracing::info!(to = %mask_email(&current), "the address in force was told of the refused change")
        }
        Err(e) => {
            tracing::warn!(to = %mask_email(&current), error_type = e.kind(), "the notice of a refused change could not be sent: {e}")
        }
    }
}

/// The secret the message carries: the decrypted code (or temporary
/// password, unescaped), or nothing for a notice. Wiped on drop.
async fn reveal<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomEmailSenderEvent,
    kind: MessageKind,
    source: &'static str,
) -> Result<zeroize::Zeroizing<String>, SenderError>
where
    D: CodeDecryptor,
{
    if !kind.has_code() {
        return Ok(zeroize::Zeroizing::new(String::new()));
    }
    let code = event
        .request
        .code
        .as_deref()
        .ok_or(SenderError::MissingCode { trigger: source })?;
    // The code must have been encrypted for this pool: without the
    // event's pool there is nothing to check it against (no KMS call).
    let pool = event
        .header
        .user_pool_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or(SenderError::MissingField {
            field: "userPoolId",
        })?;
    let secret = deps.decryptor.decrypt(code, pool).await?;
    Ok(zeroize::Zeroizing::new(
        if kind == MessageKind::AdminCreateUser {
            code_decrypt::html_unescape(secret.expose())
        } else {
            secret.expose().to_owned()
        },
    ))
}

async fn send<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomEmailSenderEvent,
    kind: MessageKind,
    email: &str,
    user_name: &str,
    secret: &str,
) -> Result<(), SenderError>
where
    S: EmailSender,
{
    let rendered = deps
        .templates
        .render(kind, event.attribute("locale"), secret, user_name)
        .ok_or(SenderError::NoTemplate { kind })?;
    deps.sender
        .send(email, &rendered.subject, &rendered.text, &rendered.html)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_read_well() {
        assert_eq!(SenderError::NoEmailAddress.error_type(), "NoEmailAddress");
        let e = SenderError::from(DecryptError::WrongUserPool {
            expected: "a".into(),
            found: "b".into(),
        });
        assert_eq!(e.error_type(), "WrongUserPool");
        assert_eq!(
            SenderError::from(DecryptError::NotBase64).error_type(),
            "InvalidCode"
        );
        let d = Diagnostic::from(SenderError::MissingCode {
            trigger: "CustomEmailSender_SignUp",
        });
        assert_eq!(d.error_type, "MissingCode");
        assert!(d.error_message.contains("CustomEmailSender_SignUp"));
        let d = Diagnostic::from(SenderError::Email(EmailError::Rejected {
            masked: "c***@example.org".into(),
            code: "MessageRejected".into(),
        }));
        assert_eq!(d.error_type, "MessageRejected");
        assert!(d.error_message.contains("c***@example.org"), "{d:?}");
    }

    #[test]
    fn the_fail_mode_is_the_sms_senders() {
        for kind in MessageKind::ALL {
            let anonymous = !matches!(
                kind,
                MessageKind::Authentication
                    | MessageKind::AdminCreateUser
                    | MessageKind::AccountTakeOverNotification
            );
            assert_eq!(fail_mode(kind) == FailMode::Closed, anonymous, "{kind}");
        }
    }

    #[test]
    fn addresses_are_counted_case_insensitively() {
        assert_eq!(
            limit_key_address(" Victim@Example.COM "),
            "victim@example.com"
        );
    }

    #[test]
    fn the_template_file_is_read_and_named_in_its_errors() {
        let dir = std::env::temp_dir().join(format!("email-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            r#"{"Authentication": {"en": {"subject": "Code", "text": "Code {####}", "html": "<b>{####}</b>"}}}"#,
        )
        .unwrap();
        let path = good.display().to_string();
        let t = templates_from_source(&[("EMAIL_TEMPLATES_FILE", path.as_str())][..]).unwrap();
        assert_eq!(
            t.render(MessageKind::Authentication, None, "1", "u")
                .unwrap()
                .text,
            "Code 1"
        );
        let bad = dir.join("bad.json");
        std::fs::write(
            &bad,
            r#"{"Authentication": {"en": {"subject": "Code", "text": "no code", "html": "<b>{####}</b>"}}}"#,
        )
        .unwrap();
        let path = bad.display().to_string();
        let e = templates_from_source(&[("EMAIL_TEMPLATES_FILE", path.as_str())][..])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "EMAIL_TEMPLATES_FILE ({path}): Authentication.en.text"
            )),
            "{e}"
        );
        let missing = dir.join("missing.json").display().to_string();
        let e = templates_from_source(&[("EMAIL_TEMPLATES_FILE", missing.as_str())][..])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("EMAIL_TEMPLATES_FILE ({missing}) cannot be read")),
            "{e}"
        );
        // Unset or blank: the built-in templates.
        assert_eq!(
            templates_from_source(&[("EMAIL_TEMPLATES_FILE", " ")][..]).unwrap(),
            Templates::built_in().unwrap()
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
