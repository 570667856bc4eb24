//! The CreateAuthChallenge trigger: makes the one-time code and sends it.
//!
//! The plain code lives only in the SMS. What Cognito keeps — the
//! `challengeMetadata` it shows define and create again, and the
//! `privateChallengeParameters` it hands verify — is a
//! [`challenge_code::CodeStamp`]: the code's keyed hash and expiry.
//!
//! One SMS per code: a retry after a wrong answer finds the stamp in the
//! session's last entry and reuses it while it is valid, so a user who
//! mistypes does not get a second, different code (and an attacker cannot
//! make us send SMS in a loop); once it has expired, the retry draws and
//! sends a fresh one. Cognito retries a trigger that takes over 5 s; the SNS
//! client's budget (2 s per call) keeps one invocation well inside that.
//!
//! Unknown users (`userNotFound`) get the same response shape, from a code
//! that is drawn and hashed but never sent; the handler waits about as long
//! as a real SNS call takes (a running average of this instance's own sends,
//! with jitter), so the response time does not tell them apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_policy::challenge::ChallengeConfig;
use auth_policy::redact::mask_phone;
use auth_policy::{ConfigError, ConfigSource};
use challenge_code::{CODE_DIGITS, CodePlan, CodeStamp, OneTimeCode, RandomError, RotatingSecret};
use lambda_host::events::EventError;
use lambda_host::events::cognito::{
    CognitoEventUserPoolsCreateAuthChallenge, CognitoEventUserPoolsCreateAuthChallengeResponse,
};
use lambda_runtime::Diagnostic;
use send_limits::{
    Channel, Dedup, FailMode, Limiter, Outgoing, RecordKind, Refusal, SendGate, Verdict,
};
use serde_json::Value;
use sms_delivery::{SmsError, SmsSender};
use sms_messages::{MessageConfigError, MessageKind, Messages};
use thiserror::Error;

/// The trigger's name in error messages.
pub const TRIGGER: &str = "CreateAuthChallenge";
/// The only challenge this function creates.
pub const CUSTOM_CHALLENGE: &str = "CUSTOM_CHALLENGE";

/// Everything create reads from the environment, apart from the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub challenge: ChallengeConfig,
    pub messages: Messages,
}

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error(transparent)]
    Policy(#[from] ConfigError),
    #[error(transparent)]
    Messages(#[from] MessageConfigError),
}

impl Settings {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, SettingsError> {
        Ok(Self {
            challenge: ChallengeConfig::from_source(source)?,
            messages: Messages::from_source(source)?,
        })
    }
}

/// How long sending an SMS takes here: a running average (7/8 old, 1/8 new)
/// of this instance's own SNS calls, so an unknown user's response, which
/// sends nothing, can wait about as long.
#[derive(Debug)]
pub struct LatencyMask {
    average_micros: AtomicU64,
}

impl LatencyMask {
    /// A typical in-region SNS Publish, until real sends are measured.
    pub const INITIAL: Duration = Duration::from_millis(60);
    /// Longer sends (timeouts, retries) are counted as this much.
    pub const CAP: Duration = Duration::from_millis(1500);

    pub fn new(initial: Duration) -> Self {
        Self {
            average_micros: AtomicU64::new(micros(initial.min(Self::CAP))),
        }
    }

    pub fn record(&self, took: Duration) {
        let new = micros(took.min(Self::CAP));
        let old = self.average_micros.load(Ordering::Relaxed);
        self.average_micros
            .store((old * 7 + new) / 8, Ordering::Relaxed);
    }

    pub fn average(&self) -> Duration {
        Duration::from_micros(self.average_micros.load(Ordering::Relaxed))
    }

    /// The average with ±25 % jitter.
    pub fn imitation(&self) -> Duration {
        let avg = self.average_micros.load(Ordering::Relaxed);
        let jitter = getrandom::u32().unwrap_or(0) % 501; // 0..=500 ‰
        Duration::from_micros(avg * (750 + u64::from(jitter)) / 1000)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What the handler borrows: built once in `main`.
pub struct Deps<S, L> {
    pub settings: Settings,
    /// Codes are issued under its current value.
    pub secret: RotatingSecret,
    pub sender: S,
    pub latency: LatencyMask,
    /// The SMS country policy and limits (and the wrong-code lockout).
    pub gate: SendGate<L>,
}

impl<S, L> Deps<S, L> {
    pub fn new(
        settings: Settings,
        secret: impl Into<RotatingSecret>,
        sender: S,
        gate: SendGate<L>,
    ) -> Self {
        Self {
            settings,
            secret: secret.into(),
            sender,
            latency: LatencyMask::new(LatencyMask::INITIAL),
            gate,
        }
    }
}

/// How long Cognito's retry of this very challenge is recognised (and
/// answered with the code already sent, without a second SMS): Cognito
/// retries a synchronous trigger that has not answered within its 5 s, so
/// a retry comes within 6 s of the first call. Any later sign-in, or one to
/// another number, gets a new code.
pub const RETRY_WINDOW_SECS: u64 = 6;

/// The `privateChallengeParameters` key with the table key of the code's
/// record: verify deletes the record when it accepts the code, so an
/// accepted code is never handed out again.
pub const RECORD_PARAM: &str = "codeRecord";

/// What the user reads when too many wrong codes lock them out
/// (`CreateAuthChallenge failed with error <this>.`).
pub const LOCKED_OUT_MESSAGE: &str =
    "Too many wrong codes. Please wait before you try to sign in again.";
/// What the user reads when the send gate refuses the SMS: it names no
/// list and no limit.
pub const SMS_REFUSED_MESSAGE: &str =
    "A code cannot be sent to this phone number right now. Please try again later.";

#[derive(Debug, Error)]
pub enum CreateError {
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    #[error(
        "challengeName {0:?} is not one this function creates: only CUSTOM_CHALLENGE (check define-auth-challenge)"
    )]
    UnexpectedChallenge(String),
    #[error("the code could not be sent: {0}")]
    SmsNotSent(#[from] SmsError),
    #[error(transparent)]
    Random(#[from] RandomError),
    /// `CODE_FAILURES_PER_USER` reached: no new code until the window passes.
    #[error("{LOCKED_OUT_MESSAGE}")]
    LockedOut,
    /// The send gate refused the SMS (details in the log line).
    #[error("{SMS_REFUSED_MESSAGE}")]
    SmsRefused(Refusal),
}

impl From<CreateError> for Diagnostic {
    fn from(e: CreateError) -> Self {
        let error_type = match &e {
            CreateError::InvalidEvent(_) => lambda_host::error_type::INVALID_EVENT,
            CreateError::UnexpectedChallenge(_) => "UnexpectedChallenge",
            CreateError::SmsNotSent(_) => "SmsNotSent",
            CreateError::Random(_) => "RandomFailure",
            CreateError::LockedOut => "CodeLockout",
            CreateError::SmsRefused(Refusal::Limited(..)) => "RateLimited",
            CreateError::SmsRefused(Refusal::Country(_)) => "CountryNotAllowed",
            CreateError::SmsRefused(Refusal::Unavailable(_)) => "LimitsUnavailable",
            CreateError::SmsRefused(Refusal::LockedOut) => "CodeLockout",
            // Never asked for here (a sign-in code has no account-change check).
            CreateError::SmsRefused(Refusal::ContactChange) => "ContactChangeRefused",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one CreateAuthChallenge event given as JSON, at unix time `now`;
/// returns the whole event with its `response` filled in.
pub async fn handle<S: SmsSender, L: Limiter>(
    deps: &Deps<S, L>,
    event: Value,
    now: u64,
) -> Result<Value, CreateError> {
    let mut event: CognitoEventUserPoolsCreateAuthChallenge =
        lambda_host::events::parse_event(TRIGGER, event)?;
    let request = &event.request;
    let name = request.challenge_name.as_deref().unwrap_or_default();
    if name != CUSTOM_CHALLENGE {
        return Err(CreateError::UnexpectedChallenge(name.to_owned()));
    }
    let user = event
        .cognito_event_user_pools_header
        .user_name
        .clone()
        .unwrap_or_default();
    let pool = event
        .cognito_event_user_pools_header
        .user_pool_id
        .clone()
        .unwrap_or_default();
    let last = request.session.last().map(|entry| match entry {
        Some(e) => (
            e.challenge_name.as_deref(),
            e.challenge_result,
            e.challenge_metadata.as_deref(),
        ),
        None => (None, false, None),
    });
    // Which code challenge of the session this is (1 = the first).
    let attempt = 1 + request
        .session
        .iter()
        .flatten()
        .filter(|e| e.challenge_name.as_deref() == Some(CUSTOM_CHALLENGE))
        .count();

    let stamp = match challenge_code::plan(last, now) {
        CodePlan::Reuse(stamp) => {
            tracing::info!(
                attempt,
                code = "reused",
                expires_at = stamp.expires_at,
                "retry: the code sent earlier is still valid; no SMS"
            );
            stamp
        }
        CodePlan::Fresh => {
            let code = OneTimeCode::generate()?;
            let keys = deps.secret.keys().await;
            let stamp = CodeStamp::issue(
                &keys.current,
                &user,
                &code,
                now,
                deps.settings.challenge.code_ttl_seconds,
            );
            if request.user_not_found {
                // Nothing to send to; take about as long as sending.
                tokio::time::sleep(deps.latency.imitation()).await;
                tracing::info!(
                    attempt,
                    code = "fresh",
                    expires_at = stamp.expires_at,
                    user_not_found = true,
                    "unknown user: plausible challenge, nothing sent"
                );
                stamp
            } else {
                send_code(deps, &event, &pool, &user, &code, stamp, attempt, now).await?
            }
        }
    };

    let mut response = CognitoEventUserPoolsCreateAuthChallengeResponse::default();
    response.public_challenge_parameters = [
        ("deliveryMedium".to_owned(), "SMS".to_owned()),
        ("codeLength".to_owned(), CODE_DIGITS.to_string()),
    ]
    .into_iter()
    .collect();
    response.private_challenge_parameters = stamp.private_parameters();
    // The same shape for an unknown user (a key nobody holds).
    if let Some(record) = deps
        .gate
        .limiter
        .as_ref()
        .and_then(|l| l.record_key(&outgoing(&event, &pool, &user, None, now)))
    {
        response
            .private_challenge_parameters
            .insert(RECORD_PARAM.to_owned(), record);
    }
    response.challenge_metadata = Some(stamp.to_metadata());
    event.response = response;
    Ok(lambda_host::events::to_value(&event)?)
}

/// The send as the gate judges it: the code's record is keyed by the pool,
/// the user and the destination number, and lives [`RETRY_WINDOW_SECS`];
/// a sign-in code also checks the wrong-code lockout in the same request.
fn outgoing<'a>(
    event: &'a CognitoEventUserPoolsCreateAuthChallenge,
    pool: &'a str,
    user: &'a str,
    memo: Option<String>,
    now: u64,
) -> Outgoing<'a> {
    let attrs = &event.request.user_attributes;
    Outgoing {
        channel: Channel::Sms,
        pool,
        user,
        destination: attrs.get("phone_number").map(String::as_str).unwrap_or(""),
        destination_verified: attrs
            .get("phone_number_verified")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        dedup: Some(Dedup {
            kind: RecordKind::Challenge,
            unique: String::new(),
            ttl: RETRY_WINDOW_SECS,
            memo,
        }),
        check_lockout: true,
        contact: send_limits::ContactCheck::None,
        now,
    }
}

/// Asks the send gate, then sends the code. Cognito's retry of this very
/// invocation (within [`RETRY_WINDOW_SECS`], to the same number) finds the
/// send recorded and answers with the stamp of the code already sent, which
/// the gate keeps as the record's memo.
#[allow(clippy::too_many_arguments)]
async fn send_code<S: SmsSender, L: Limiter>(
    deps: &Deps<S, L>,
    event: &CognitoEventUserPoolsCreateAuthChallenge,
    pool: &str,
    user: &str,
    code: &OneTimeCode,
    stamp: CodeStamp,
    attempt: usize,
    now: u64,
) -> Result<CodeStamp, CreateError> {
    let request = &event.request;
    let attrs = &request.user_attributes;
    let phone = attrs.get("phone_number").map(String::as_str).unwrap_or("");
    let outgoing = outgoing(event, pool, user, Some(stamp.to_metadata()), now);
    let country = deps.gate.country_label(phone);
    match deps.gate.check(&outgoing, FailMode::Open).await {
        Verdict::Send { failed_open } => {
            if failed_open {
                tracing::warn!(to = %mask_phone(phone), "the SMS limits could not be checked: sending anyway (fail open for sign-in)");
                lambda_host::metrics::count("SmsFailOpen", &[("Reason", "create_auth_challenge")]);
            }
        }
        Verdict::Duplicate { memo } => {
            if let Some(first) = memo.as_deref().and_then(CodeStamp::from_metadata) {
                tracing::info!(attempt, code = "reused", to = %mask_phone(phone), "Cognito retried this challenge: the code sent for it stands; no SMS");
                lambda_host::metrics::count("SmsDuplicate", &[]);
                return Ok(first);
            }
        }
        Verdict::Refused(Refusal::LockedOut) => {
            tracing::warn!("sign-in refused: too many wrong codes in the window; no code sent");
            lambda_host::metrics::count("SmsRefused", &[("Reason", "code_lockout")]);
            return Err(CreateError::LockedOut);
        }
        Verdict::Refused(refusal) => {
            tracing::warn!(to = %mask_phone(phone), reason = refusal.as_str(), country = %country, "code not sent: the send gate refused it");
            lambda_host::metrics::count(
                "SmsRefused",
                &[("Reason", refusal.as_str()), ("Country", &country)],
            );
            return Err(CreateError::SmsRefused(refusal));
        }
    }
    let locale = attrs
        .get("locale")
        .or_else(|| request.client_metadata.get("locale"))
        .map(String::as_str);
    let text =
        deps.settings
            .messages
            .render(MessageKind::Authentication, locale, code.reveal(), user);
    let started = Instant::now();
    let sent = deps.sender.send(phone, &text).await;
    deps.latency.record(started.elapsed());
    let message_id = match sent {
        Ok(id) => id,
        Err(e) => {
            deps.gate.send_failed(&outgoing).await;
            return Err(e.into());
        }
    };
    lambda_host::metrics::count("SmsSent", &[("Country", &country)]);
    tracing::info!(
        attempt,
        code = "fresh",
        expires_at = stamp.expires_at,
        to = %mask_phone(phone),
        message_id = %message_id,
        "code sent by SMS"
    );
    Ok(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sms_delivery::Outbox;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
    const NOW: u64 = 1_700_000_000;

    fn deps() -> Deps<Outbox, send_limits::MemoryLimiter> {
        Deps::new(
            Settings::from_source(&[("CODE_TTL_SECONDS", "180")][..]).unwrap(),
            challenge_code::HashingSecret::new(SECRET.to_vec(), "test").unwrap(),
            Outbox::new(),
            SendGate::new(Default::default(), None),
        )
    }

    fn event(session: Value, attrs: Value, not_found: bool) -> Value {
        json!({
            "version": "1",
            "region": "us-east-1",
            "userPoolId": "us-east-1_example",
            "userName": "alice",
            "callerContext": {"awsSdkVersion": "aws-sdk-js-3", "clientId": "client"},
            "triggerSource": "CreateAuthChallenge_Authentication",
            "request": {
                "userAttributes": attrs,
                "challengeName": "CUSTOM_CHALLENGE",
                "session": session,
                "userNotFound": not_found
            },
            "response": {"publicChallengeParameters": null, "privateChallengeParameters": null, "challengeMetadata": null}
        })
    }

    fn after_password() -> Value {
        json!([
            {"challengeName": "SRP_A", "challengeResult": true, "challengeMetadata": null},
            {"challengeName": "PASSWORD_VERIFIER", "challengeResult": true, "challengeMetadata": null}
        ])
    }

    fn with_wrong(metadata: &str) -> Value {
        let mut s = after_password();
        s.as_array_mut().unwrap().push(json!({
            "challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": metadata
        }));
        s
    }

    fn attrs() -> Value {
        json!({"sub": "s", "phone_number": "+819012345678", "locale": "ja"})
    }

    fn code_in(text: &str) -> String {
        text.chars().filter(char::is_ascii_digit).collect()
    }

    #[tokio::test]
    async fn sends_one_sms_and_hands_on_only_the_hash() {
        let d = deps();
        let out = handle(&d, event(after_password(), attrs(), false), NOW)
            .await
            .unwrap();
        let sent = d.sender.messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].phone, "+819012345678");
        assert!(sent[0].text.starts_with("認証コード"), "{}", sent[0].text);
        let code = code_in(&sent[0].text);
        assert_eq!(code.len(), 6);
        let r = &out["response"];
        let whole = r.to_string();
        assert!(!whole.contains(&code), "{whole}");
        assert_eq!(r["publicChallengeParameters"]["codeLength"], "6");
        let private: std::collections::HashMap<String, String> =
            serde_json::from_value(r["privateChallengeParameters"].clone()).unwrap();
        let stamp = CodeStamp::from_private_parameters(&private).unwrap();
        assert_eq!(stamp.expires_at, NOW + 180);
        assert_eq!(
            CodeStamp::from_metadata(r["challengeMetadata"].as_str().unwrap()),
            Some(stamp.clone())
        );
        assert_eq!(
            stamp.check(
                &d.secret.keys().await.current,
                "alice",
                Some(&code),
                NOW + 10
            ),
            challenge_code::Verdict::Correct
        );
    }

    #[tokio::test]
    async fn a_retry_reuses_the_code_while_valid_then_renews() {
        let d = deps();
        let first = handle(&d, event(after_password(), attrs(), false), NOW)
            .await
            .unwrap();
        let metadata = first["response"]["challengeMetadata"]
            .as_str()
            .unwrap()
            .to_owned();
        let retry = handle(&d, event(with_wrong(&metadata), attrs(), false), NOW + 179)
            .await
            .unwrap();
        assert_eq!(d.sender.messages().len(), 1, "no second SMS");
        assert_eq!(retry["response"]["challengeMetadata"], metadata.as_str());
        assert_eq!(
            retry["response"]["privateChallengeParameters"],
            first["response"]["privateChallengeParameters"]
        );
        let late = handle(&d, event(with_wrong(&metadata), attrs(), false), NOW + 180)
            .await
            .unwrap();
        assert_eq!(d.sender.messages().len(), 2, "expired: a fresh code");
        assert_ne!(late["response"]["challengeMetadata"], metadata.as_str());
        assert_eq!(
            late["response"]["privateChallengeParameters"]["expiresAt"],
            (NOW + 360).to_string()
        );
    }

    #[tokio::test]
    async fn codes_differ_across_sessions() {
        let d = deps();
        for _ in 0..20 {
            handle(&d, event(after_password(), attrs(), false), NOW)
                .await
                .unwrap();
        }
        let codes: std::collections::HashSet<String> = d
            .sender
            .messages()
            .iter()
            .map(|m| code_in(&m.text))
            .collect();
        assert!(codes.len() >= 19, "{}", codes.len());
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_users_get_the_same_shape_and_no_sms() {
        let d = deps();
        let real = handle(&d, event(after_password(), attrs(), false), NOW)
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let ghost = handle(&d, event(after_password(), json!({}), true), NOW)
            .await
            .unwrap();
        assert_eq!(
            d.sender.messages().len(),
            1,
            "nothing sent to an unknown user"
        );
        // It waited about as long as a send takes (±25 % of the average).
        let waited = started.elapsed();
        let avg = d.latency.average();
        assert!(
            waited + Duration::from_micros(1) >= avg * 3 / 4
                && waited <= avg * 5 / 4 + Duration::from_micros(1),
            "{waited:?} vs {avg:?}"
        );
        let keys = |v: &Value| {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::len)))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        for field in ["publicChallengeParameters", "privateChallengeParameters"] {
            assert_eq!(
                keys(&real["response"][field]),
                keys(&ghost["response"][field]),
                "{field}"
            );
        }
        assert_eq!(
            real["response"]["challengeMetadata"]
                .as_str()
                .unwrap()
                .len(),
            ghost["response"]["challengeMetadata"]
                .as_str()
                .unwrap()
                .len()
        );
    }

    #[tokio::test]
    async fn errors_not_panics() {
        let d = deps();
        let mut e = event(after_password(), attrs(), false);
        e["request"]["challengeName"] = json!("PASSWORD_VERIFIER");
        let err = handle(&d, e, NOW).await.unwrap_err();
        assert_eq!(Diagnostic::from(err).error_type, "UnexpectedChallenge");
        let err = handle(&d, event(after_password(), json!({}), false), NOW)
            .await
            .unwrap_err();
        let diag = Diagnostic::from(err);
        assert_eq!(diag.error_type, "SmsNotSent");
        let err = handle(&d, json!("nope"), NOW).await.unwrap_err();
        assert_eq!(Diagnostic::from(err).error_type, "InvalidEvent");
        assert!(d.sender.messages().is_empty());
    }

    #[test]
    fn latency_average_moves_towards_observations_and_is_capped() {
        let m = LatencyMask::new(Duration::from_millis(80));
        for _ in 0..64 {
            m.record(Duration::from_millis(20));
        }
        let avg = m.average();
        assert!(avg < Duration::from_millis(21), "{avg:?}");
        for _ in 0..64 {
            m.record(Duration::from_secs(30));
        }
        assert!(m.average() <= LatencyMask::CAP);
        for _ in 0..100 {
            let i = m.imitation();
            // ±25 %, give or take the microsecond rounding.
            let us = Duration::from_micros(1);
            assert!(i + us >= m.average() * 3 / 4 && i <= m.average() * 5 / 4 + us);
        }
    }
}
