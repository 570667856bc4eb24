//! The CustomSMSSender trigger: Cognito hands over an SMS it would have
//! sent itself, with the secret encrypted; this function decrypts it,
//! writes the message for the trigger source in the user's language, and
//! sends it by SNS.
//!
//! Cognito invokes this trigger ASYNCHRONOUSLY and reads no response. A
//! send the policy refuses (a rate limit, the country policy) or one made
//! already is an ANSWER: the handler returns success, logs the reason and
//! counts it (`SmsRefused`, `SmsDuplicate`), so Lambda neither retries it
//! nor parks the event (phone, email, encrypted code or temporary password)
//! in the dead-letter queue, which an attacker could otherwise flood. Only
//! real failures (the event unusable, the code not decryptable, SNS or the
//! limits table failing) are Lambda errors: Lambda retries them and then
//! hands the event to the on-failure destination. The reason is logged,
//! masked: no log line or error message carries the code, the temporary
//! password or the full phone number.
//!
//! The event is parsed and the phone number checked first (no call). Then
//! the send gate (the country policy, then the limits shared in DynamoDB,
//! which also skip an event already sent) and the decryption (one KMS call)
//! go out together, and the SMS is published: two round trips one after the
//! other. A code decrypted for a send the gate refuses is dropped unused.

use auth_policy::redact::mask_phone;
use code_decrypt::{CodeDecryptor, DecryptError};
use contact_guard::ContactGuard;
use lambda_host::events::EventError;
use lambda_host::events::custom_sms_sender::{CustomSmsSenderEvent, TRIGGER};
use lambda_runtime::Diagnostic;
use send_limits::{
    Channel, Dedup, FailMode, Limiter, Outgoing, RecordKind, Refusal, SendGate, Verdict,
};
use serde_json::Value;
use sms_delivery::{SmsError, SmsSender};
use sms_messages::{MessageKind, Messages};
use thiserror::Error;

/// What the handler needs: built once at init, borrowed by every call.
#[derive(Debug)]
pub struct Deps<D, S, L> {
    pub decryptor: D,
    pub sender: S,
    pub messages: Messages,
    pub gate: SendGate<L>,
    /// Present with `ACCOUNT_CHANGE=RecentSignIn`: the code of a new
    /// number goes out only with the account-change API's allowance.
    pub contact_guard: Option<ContactGuard>,
}

#[derive(Debug, Error)]
pub enum SenderError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    #[error("the user has no phone_number: nothing was sent")]
    NoPhoneNumber,
    #[error("phone_number {masked} is not E.164 (+ then 7 to 15 digits): nothing was sent")]
    InvalidPhoneNumber { masked: String },
    #[error("{trigger} carries no code (request.code is null): nothing was sent")]
    MissingCode { trigger: &'static str },
    #[error("the event has no {field}: nothing was sent")]
    MissingField { field: &'static str },
    #[error("refused: {0}")]
    WrongUserPool(DecryptError),
    #[error("the code could not be decrypted: {0}")]
    Decrypt(DecryptError),
    #[error(transparent)]
    Sms(#[from] SmsError),
    /// The send gate said no: nothing was sent (a code decrypted beside the
    /// gate's check is dropped unused).
    #[error("SMS to {masked} not sent: {}", describe(refusal))]
    Refused { masked: String, refusal: Refusal },
}

fn describe(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Country(c) => format!("the SMS country policy refuses it ({})", c.as_str()),
        Refusal::Limited(kind, spec) => format!(
            "the {} limit {spec} ({}) is reached",
            kind.as_str(),
            kind.variable()
        ),
        Refusal::Unavailable(e) => format!("{e}; this kind of SMS is not sent without its limits"),
        Refusal::LockedOut => "the user's wrong codes reached CODE_FAILURES_PER_USER".to_owned(),
        Refusal::ContactChange => "a code for a new number that no recent sign-in allowed (ACCOUNT_CHANGE=RecentSignIn: change it through the account-change API)".to_owned(),
    }
}

impl SenderError {
    /// The `errorType` Lambda records (and the dead-letter record carries).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
            Self::NoPhoneNumber => "NoPhoneNumber",
            Self::InvalidPhoneNumber { .. } => "InvalidPhoneNumber",
            Self::MissingCode { .. } => "MissingCode",
            Self::MissingField { .. } => lambda_host::error_type::INVALID_EVENT,
            Self::WrongUserPool(_) => "WrongUserPool",
            Self::Decrypt(DecryptError::Esdk { .. }) => "DecryptionFailed",
            Self::Decrypt(_) => "InvalidCode",
            Self::Sms(SmsError::NoPhone) => "NoPhoneNumber",
            Self::Sms(SmsError::InvalidPhone { .. }) => "InvalidPhoneNumber",
            Self::Sms(_) => "SmsNotSent",
            Self::Refused {
                refusal: Refusal::Limited(..),
                ..
            } => "RateLimited",
            Self::Refused {
                refusal: Refusal::Country(_),
                ..
            } => "CountryNotAllowed",
            Self::Refused {
                refusal: Refusal::Unavailable(_),
                ..
            } => "LimitsUnavailable",
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

/// Handles one CustomSMSSender event given as JSON. `Ok` means the event is
/// settled: the SMS was handed to the sender (`{"response": {"outcome":
/// "sent"}}`), was sent already (`duplicate`), or the policy refused it
/// (`refused`, with its `errorType` and reason; logged and counted). Cognito
/// reads none of it. `Err` is a failure that Lambda should retry.
pub async fn handle<D, S, L>(deps: &Deps<D, S, L>, event: Value) -> Result<Value, SenderError>
where
    D: CodeDecryptor,
    S: SmsSender,
    L: Limiter,
{
    // The trigger source as sent, for the log line even when the
    // event is refused before it parses.
    let source = lambda_host::events::trigger_source(&event)
        .filter(|s| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_default()
        .to_owned();
    let event: CustomSmsSenderEvent = match lambda_host::events::parse_event(TRIGGER, event) {
        Ok(event) => event,
        Err(e) => {
            let e = SenderError::from(e);
            // Lambda does not log a handler's error; the dead-letter record
            // must have its reason in the logs.
            tracing::error!(
                trigger = %source,
                outcome = "refused",
                error_type = e.error_type(),
                "SMS not sent: {e}"
            );
            return Err(e);
        }
    };
    let result = deliver(deps, &event).await;
    let phone = event
        .attribute("phone_number")
        .map(mask_phone)
        .unwrap_or_default();
    let pool = event.header.user_pool_id.as_deref().unwrap_or_default();
    match &result {
        Ok(Delivered::Sent) => {
            tracing::info!(trigger = %source, user_pool = pool, to = %phone, outcome = "sent", "SMS sent")
        }
        Ok(Delivered::AlreadySent) => {
            tracing::info!(trigger = %source, user_pool = pool, to = %phone, outcome = "duplicate", "SMS already sent for this event: not sent again")
        }
        Err(e) if e.is_refusal() => tracing::warn!(
            trigger = %source,
            user_pool = pool,
            to = %phone,
            outcome = "refused",
            error_type = e.error_type(),
            "SMS not sent, by policy (settled: not retried): {e}"
        ),
        Err(e) => tracing::error!(
            trigger = %source,
            user_pool = pool,
            to = %phone,
            outcome = "failed",
            error_type = e.error_type(),
            "SMS not sent: {e}"
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

/// Codes an anonymous caller can make the pool send at will fail closed
/// when the limits cannot be checked; sign-in codes, invitations an
/// operator sends and security notices fail open.
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// After a refused change: the held record, and (on the first refusal of
/// the number within the day) a notice by SMS to the verified number in
/// force. A notice that cannot be sent is logged; the code stays refused.
async fn tell_the_number_in_force<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomSmsSenderEvent,
    outgoing: &Outgoing<'_>,
) where
    S: SmsSender,
    L: Limiter,
{
    let Some(guard) = &deps.contact_guard else {
        return;
    };
    let Some(current) = guard
        .held(
            deps.gate.limiter.as_ref(),
            Channel::Sms,
            outgoing.pool,
            outgoing.user,
            outgoing.destination,
            outgoing.now,
        )
        .await
    else {
        return;
    };
    let masked = mask_phone(outgoing.destination);
    let when = email_messages::notice::utc_minute(outgoing.now);
    let notice = contact_guard::refused_notice(Channel::Sms, &masked, &when);
    let text = email_messages::notice::notice_text(&notice, event.attribute("locale"));
    match deps.sender.send(&current, &text).await {
        Ok(_) => {
            tracing::info!(to = %mask_phone(&current), "the number in force was told of the refused change")
        }
        Err(e) => {
            tracing::warn!(to = %mask_phone(&current), "the notice of a refused change could not be sent: {e}")
        }
    }
}

async fn deliver<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomSmsSenderEvent,
) -> Result<Delivered, SenderError>
where
    D: CodeDecryptor,
    S: SmsSender,
    L: Limiter,
{
    let source = event.header.trigger_source.ok_or_else(|| EventError::Unsupported {
        kind: TRIGGER,
        message: "triggerSource is missing: expected one of CustomSMSSender_SignUp, _ResendCode, _ForgotPassword, _UpdateUserAttribute, _VerifyUserAttribute, _AdminCreateUser, _Authentication, _AccountTakeOverNotification".to_owned(),
    })?;
    let kind = MessageKind::from_trigger_source(source.as_str())
        .ok_or_else(|| EventError::Internal(format!("no message for {source}")))?;
    let phone = event
        .attribute("phone_number")
        .ok_or(SenderError::NoPhoneNumber)?;
    if !auth_policy::is_e164(phone) {
        return Err(SenderError::InvalidPhoneNumber {
            masked: mask_phone(phone),
        });
    }
    let user_name = event.header.user_name.as_deref().unwrap_or_default();
    if kind == MessageKind::AdminCreateUser && user_name.trim().is_empty() {
        // An invitation must say which username the password belongs to.
        return Err(SenderError::MissingField { field: "userName" });
    }
    // The gate's send. The encrypted code makes the
    // event's de-duplication key: Lambda's retry of this event carries the
    // same one, Cognito's next code another.
    let pool_id = event.header.user_pool_id.as_deref().unwrap_or_default();
    let country = deps.gate.country_label(phone);
    let outgoing = Outgoing {
        channel: Channel::Sms,
        pool: pool_id,
        user: user_name,
        destination: phone,
        destination_verified: event
            .attribute("phone_number_verified")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        dedup: Some(Dedup {
            kind: RecordKind::Sent,
            // The trigger source and the encrypted code (the pool, user and
            // phone are hashed in too).
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
                    .strip_prefix("CustomSMSSender_")
                    .unwrap_or_default(),
            ),
            None => send_limits::ContactCheck::None,
        },
        now: unix_now(),
    };
    // The gate and the decryption go out together: two round trips before
    // the SMS (the table and KMS at once, then SNS) instead of three. A code
    // decrypted for a send the gate then refuses is dropped unused: never
    // logged, never sent.
    let (verdict, secret) = tokio::join!(
        deps.gate.check(&outgoing, fail_mode(kind)),
        reveal(deps, event, kind, source.as_str())
    );
    match verdict {
        Verdict::Send { failed_open } => {
            if failed_open {
                tracing::warn!(trigger = source.as_str(), to = %mask_phone(phone), "the SMS limits could not be checked: sending anyway (fail open for this kind of SMS)");
                lambda_host::metrics::count("SmsFailOpen", &[("Reason", source.as_str())]);
            }
        }
        Verdict::Duplicate { .. } => {
            lambda_host::metrics::count("SmsDuplicate", &[]);
            return Ok(Delivered::AlreadySent);
        }
        Verdict::Refused(Refusal::ContactChange) => {
            lambda_host::metrics::count("ContactChangeRefused", &[("Channel", "sms")]);
            tell_the_number_in_force(deps, event, &outgoing).await;
            return Err(SenderError::Refused {
                masked: mask_phone(phone),
                refusal: Refusal::ContactChange,
            });
        }
        Verdict::Refused(refusal) => {
            lambda_host::metrics::count(
                "SmsRefused",
                &[("Reason", refusal.as_str()), ("Country", &country)],
            );
            return Err(SenderError::Refused {
                masked: mask_phone(phone),
                refusal,
            });
        }
    }
    let result = match secret {
        Ok(secret) => {
            let text = deps
                .messages
                .render(kind, event.attribute("locale"), &secret, user_name);
            deps.sender
                .send(phone, &text)
                .await
                .map(drop)
                .map_err(SenderError::from)
        }
        Err(e) => Err(e),
    };
    match &result {
        Ok(()) => lambda_host::metrics::count("SmsSent", &[("Country", &country)]),
        // The retry of this event must be able to send.
        Err(_) => deps.gate.send_failed(&outgoing).await,
    }
    result.map(|()| Delivered::Sent)
}

/// The secret the message carries: the decrypted code (or temporary
/// password, unescaped), or nothing for a notice. Wiped on drop.
async fn reveal<D, S, L>(
    deps: &Deps<D, S, L>,
    event: &CustomSmsSenderEvent,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_read_well() {
        assert_eq!(SenderError::NoPhoneNumber.error_type(), "NoPhoneNumber");
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
            trigger: "CustomSMSSender_SignUp",
        });
        assert_eq!(d.error_type, "MissingCode");
        assert!(d.error_message.contains("CustomSMSSender_SignUp"));
    }
}
