//! The account-change API: a signed-in user changes their email address,
//! phone number or MFA preference, but only within a few minutes of a
//! sign-in made with every factor.
//!
//! Why it exists: a Cognito access token (an hour of life, easy to leak) lets
//! its holder change the user's email and phone through Cognito's own API,
//! and the verified email is where the password is recovered. The app client
//! cannot lose write access to those attributes, but a changed address only
//! takes effect once the code sent to it is entered, and that code goes
//! through this project's custom senders. This API is the one door that
//! leaves the senders an ALLOWANCE to deliver it (with `ACCOUNT_CHANGE=
//! RecentSignIn` they deliver no other), after checking that:
//! * the caller's claims (checked by API Gateway's JWT authorizer) are an
//!   access token of the app client whose `auth_time` is at most
//!   `RECENT_SIGN_IN_SECONDS` old, else `403 RecentSignInRequired`;
//! * the new value passes the sign-up rules (E.164, the SMS country policy,
//!   the email domain lists), else `400`;
//! * the user has changes left (`ACCOUNT_CHANGES_PER_USER`), else `429`.
//!
//! Then the allowance is written (with the change's count, one DynamoDB
//! transaction), the change is made with `AdminUpdateUserAttributes` (the new
//! value unverified: Cognito sends it a code and keeps the old one in force
//! until it is entered), and the old address is told, in the user's
//! language, with the new value masked.
//!
//! Answers are JSON: `{"status": ...}` on success, `{"error": ...,
//! "message": ...}` otherwise, the message safe to show to the user. Only an
//! event that is not an API Gateway HTTP event at all is a Lambda error.

use auth_policy::account::{
    AccountChangeConfig, Claims, UserFactors, check_new_email, check_new_phone,
    check_recent_sign_in, decide_preference_change,
};
use auth_policy::redact::{mask_email, mask_phone, mask_username};
use auth_policy::{PREFERENCE_ATTRIBUTE, Rejection};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use cognito_admin::{AdminError, MfaFactor, User, UserPoolAdmin};
use email_delivery::EmailSender;
use email_messages::notice::{Changed, Notice, notice_email, notice_text};
use lambda_runtime::Diagnostic;
use phone_country::CountryPolicy;
use send_limits::{AccountChange, Admission, Channel, Limiter};
use serde_json::{Value, json};
use sms_delivery::SmsSender;
use thiserror::Error;

/// The largest request body read.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// The variable naming the user pool.
pub const POOL_VAR: &str = "USER_POOL_ID";

/// What the handler needs: built once at init, borrowed by every call.
#[derive(Debug)]
pub struct Deps<A, L, E, S> {
    pub config: AccountChangeConfig,
    pub countries: CountryPolicy,
    pub pool_id: String,
    pub admin: A,
    pub limiter: L,
    /// Notices by email (`None` without `EMAIL_FROM`: Cognito's own email
    /// cannot carry them, so none is sent by email).
    pub email: Option<E>,
    /// Notices by SMS, to the old phone of a phone change.
    pub sms: Option<S>,
}

/// The event is not an API Gateway HTTP API event: a Lambda error.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("AccountChange: not an API Gateway HTTP API (payload 2.0) event: {0}")]
    InvalidEvent(String),
}

impl From<ApiError> for Diagnostic {
    fn from(e: ApiError) -> Self {
        Diagnostic {
            error_type: lambda_host::error_type::INVALID_EVENT.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Email,
    PhoneNumber,
    MfaPreference,
}

impl Route {
    fn from_path(method: &str, path: &str) -> Option<Self> {
        if !method.eq_ignore_ascii_case("POST") {
            return None;
        }
        match path.trim_end_matches('/') {
            "/account/email" => Some(Self::Email),
            "/account/phone-number" => Some(Self::PhoneNumber),
            "/account/mfa-preference" => Some(Self::MfaPreference),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::PhoneNumber => "phone-number",
            Self::MfaPreference => "mfa-preference",
        }
    }
}

/// An answer other than success.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    status: i64,
    error: &'static str,
    message: String,
    reason: Option<&'static str>,
}

impl Refused {
    fn new(status: i64, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            reason: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequest", message)
    }

    fn rejected(rejection: Rejection) -> Self {
        Self {
            reason: Some(rejection.code()),
            ..Self::invalid(rejection.user_message())
        }
    }

    fn unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "The change could not be made right now. Please try again in a moment.",
        )
    }

    fn body(&self) -> Value {
        let mut body = json!({"error": self.error, "message": self.message});
        if let Some(reason) = self.reason {
            body["reason"] = json!(reason);
        }
        body
    }
}

fn response(status: i64, body: &Value) -> Value {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        aws_lambda_events::http::HeaderValue::from_static("application/json"),
    );
    r.headers.insert(
        "cache-control",
        aws_lambda_events::http::HeaderValue::from_static("no-store"),
    );
    r.body = Some(Body::Text(body.to_string()));
    serde_json::to_value(&r).unwrap_or_else(|_| json!({"statusCode": status}))
}

/// The claims as the authorizer passes them are strings; an event written
/// by hand may give numbers or booleans: those are read as their text.
fn normalize_claims(event: &mut Value) {
    if let Some(Value::Object(claims)) = event.pointer_mut("/requestContext/authorizer/jwt/claims")
    {
        for v in claims.values_mut() {
            match v {
                Value::String(_) => {}
                Value::Number(_) | Value::Bool(_) => *v = Value::String(v.to_string()),
                other => *other = Value::String(other.to_string()),
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Handles one request given as JSON, at the current time.
pub async fn handle<A, L, E, S>(deps: &Deps<A, L, E, S>, event: Value) -> Result<Value, ApiError>
where
    A: UserPoolAdmin,
    L: Limiter,
    E: EmailSender + Sync,
    S: SmsSender + Sync,
{
    handle_at(deps, event, unix_now()).await
}

/// [`handle`] at `now` (unix seconds): replay and tests set the clock.
pub async fn handle_at<A, L, E, S>(
    deps: &Deps<A, L, E, S>,
    mut event: Value,
    now: u64,
) -> Result<Value, ApiError>
where
    A: UserPoolAdmin,
    L: Limiter,
    E: EmailSender + Sync,
    S: SmsSender + Sync,
{
    if !event.is_object() {
        return Err(ApiError::InvalidEvent(
            "the event is not a JSON object".to_owned(),
        ));
    }
    normalize_claims(&mut event);
    let request: ApiGatewayV2httpRequest = serde_path_to_error::deserialize(event)
        .map_err(|e| ApiError::InvalidEvent(format!("{}: {}", e.path(), e.inner())))?;
    let method = request.request_context.http.method.as_str().to_owned();
    let path = request_path(&request);
    let Some(route) = Route::from_path(&method, &path) else {
        let body = json!({"error": "NotFound", "message": "No such route: POST /account/email, /account/phone-number or /account/mfa-preference."});
        tracing::info!(method = %method, status = 404, "unknown route");
        return Ok(response(404, &body));
    };
    let claims = request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
        .map(|j| &j.claims);
    let claim = |name: &str| claims.and_then(|c| c.get(name)).map(String::as_str);
    let user = claim("username")
        .or_else(|| claim("cognito:username"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let outcome = match check_recent_sign_in(
        &deps.config,
        &Claims {
            token_use: claim("token_use"),
            client_id: claim("client_id"),
            auth_time: claim("auth_time"),
        },
        now,
    ) {
        Err(refusal) => {
            tracing::info!(route = route.as_str(), user = %mask_username(&user), reason = refusal.code(), "sign in again first");
            Err(Refused::new(
                403,
                "RecentSignInRequired",
                refusal.to_string(),
            ))
        }
        Ok(()) if user.is_empty() => Err(Refused::new(
            403,
            "RecentSignInRequired",
            "The token names no user. Sign in again, then try again.",
        )),
        Ok(()) => change(deps, route, &user, &request, now).await,
    };
    Ok(match outcome {
        Ok(body) => {
            tracing::info!(route = route.as_str(), user = %mask_username(&user), status = 200, "account changed");
            response(200, &body)
        }
        Err(r) => {
            if r.status != 403 {
                tracing::warn!(route = route.as_str(), user = %mask_username(&user), status = r.status, error = r.error, reason = r.reason.unwrap_or_default(), "account not changed: {}", r.message);
            }
            response(r.status, &r.body())
        }
    })
}

/// The path without the stage (`/prod/account/email` on a named stage).
fn request_path(request: &ApiGatewayV2httpRequest) -> String {
    let path = request
        .raw_path
        .clone()
        .or_else(|| request.request_context.http.path.clone())
        .unwrap_or_default();
    match request.request_context.stage.as_deref() {
        Some(stage) if !stage.is_empty() && stage != "$default" => path
            .strip_prefix(&format!("/{stage}"))
            .filter(|p| p.starts_with('/'))
            .map_or(path.clone(), ToOwned::to_owned),
        _ => path,
    }
}

/// The JSON object of the body, and the one string field the route reads.
fn field(request: &ApiGatewayV2httpRequest, name: &str) -> Result<String, Refused> {
    let raw = request.body.as_deref().unwrap_or_default();
    if raw.len() > MAX_BODY_BYTES * 2 {
        return Err(Refused::invalid(format!(
            "The request body is larger than {MAX_BODY_BYTES} bytes."
        )));
    }
    let bytes = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| Refused::invalid("The request body is not valid base64."))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Refused::invalid(format!(
            "The request body is larger than {MAX_BODY_BYTES} bytes."
        )));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
        Refused::invalid(format!("The body must be a JSON object with \"{name}\"."))
    })?;
    match value.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Refused::invalid(format!("\"{name}\" must be a string."))),
        None => Err(Refused::invalid(format!(
            "The body must be a JSON object with \"{name}\"."
        ))),
    }
}

/// Reads the user; a missing or disabled user is a refusal.
async fn current_user<A: UserPoolAdmin>(
    admin: &A,
    pool: &str,
    user: &str,
) -> Result<User, Refused> {
    match admin.get_user(pool, user).await {
        Ok(u) if !u.enabled => Err(Refused::new(
            403,
            "UserDisabled",
            "This account is disabled.",
        )),
        Ok(u) => Ok(u),
        Err(AdminError::UserNotFound { .. }) => Err(Refused::new(
            404,
            "UserNotFound",
            "The signed-in user no longer exists.",
        )),
        Err(e) => {
            tracing::error!(error_type = e.kind(), "AdminGetUser failed: {e}");
            Err(Refused::unavailable())
        }
    }
}

fn verified(user: &User, attribute: &str) -> bool {
    user.attribute(&format!("{attribute}_verified")) == Some("true")
}

/// Counts the change (and records the allowance) in one transaction.
async fn admit<L: Limiter>(limiter: &L, change: &AccountChange<'_>) -> Result<(), Refused> {
    match limiter.change_account(change).await {
        Ok(Admission::Limited(_, spec)) => Err(Refused::new(
            429,
            "TooManyChanges",
            format!("Too many account changes (at most {spec}). Please try again later."),
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!("the limits table could not be used: {e}");
            Err(Refused::unavailable())
        }
    }
}

async fn change<A, L, E, S>(
    deps: &Deps<A, L, E, S>,
    route: Route,
    user: &str,
    request: &ApiGatewayV2httpRequest,
    now: u64,
) -> Result<Value, Refused>
where
    A: UserPoolAdmin,
    L: Limiter,
    E: EmailSender + Sync,
    S: SmsSender + Sync,
{
    let pool = deps.pool_id.as_str();
    match route {
        Route::Email => {
            let new = check_new_email(&deps.config.domains, &field(request, "email")?)
                .map_err(Refused::rejected)?;
            let current = current_user(&deps.admin, pool, user).await?;
            let old = current
                .attribute("email")
                .map(str::trim)
                .unwrap_or_default();
            if old.eq_ignore_ascii_case(&new) && verified(&current, "email") {
                return Ok(json!({"status": "unchanged", "attribute": "email"}));
            }
            // The sender counts and checks addresses in lower case.
            let counted = new.to_lowercase();
            admit(
                &deps.limiter,
                &AccountChange {
                    pool,
                    user,
                    allowance: Some((Channel::Email, &counted)),
                    now,
                },
            )
            .await?;
            update(&deps.admin, pool, user, "email", &new).await?;
            let masked = mask_email(&new);
            notify(deps, &current, Changed::Email, &masked, now, false).await;
            Ok(json!({"status": "verification_sent", "attribute": "email", "destination": masked}))
        }
        Route::PhoneNumber => {
            let new =
                check_new_phone(&field(request, "phone_number")?).map_err(Refused::rejected)?;
            if let Some(refusal) = deps.countries.check(&new).refusal {
                return Err(Refused {
                    reason: Some(refusal.as_str()),
                    ..Refused::invalid(
                        "Text messages cannot be sent to this phone number. Please use another number.",
                    )
                });
            }
            let current = current_user(&deps.admin, pool, user).await?;
            let old = current.phone_number().map(str::trim).unwrap_or_default();
            if old == new && current.phone_number_verified() {
                return Ok(json!({"status": "unchanged", "attribute": "phone_number"}));
            }
            admit(
                &deps.limiter,
                &AccountChange {
                    pool,
                    user,
                    allowance: Some((Channel::Sms, &new)),
                    now,
                },
            )
            .await?;
            update(&deps.admin, pool, user, "phone_number", &new).await?;
            let masked = mask_phone(&new);
            notify(deps, &current, Changed::PhoneNumber, &masked, now, true).await;
            Ok(
                json!({"status": "verification_sent", "attribute": "phone_number", "destination": masked}),
            )
        }
        Route::MfaPreference => {
            let requested = field(request, "preference")?;
            let current = current_user(&deps.admin, pool, user).await?;
            let factors = UserFactors {
                has_phone: current.phone_number().is_some(),
                has_email: current
                    .attribute("email")
                    .is_some_and(|e| !e.trim().is_empty()),
                totp_enabled: current.mfa.is_enabled(MfaFactor::SoftwareToken),
            };
            let decision = decide_preference_change(&deps.config.mfa, &requested, factors)
                .map_err(Refused::rejected)?;
            admit(
                &deps.limiter,
                &AccountChange {
                    pool,
                    user,
                    allowance: None,
                    now,
                },
            )
            .await?;
            // The factor first: when Cognito refuses it, the stated
            // preference stays as it was.
            if let Some(settings) = decision.settings {
                match deps.admin.set_mfa_preference(pool, user, settings).await {
                    Ok(()) => {}
                    Err(AdminError::InvalidParameter { .. }) => {
                        return Err(Refused::new(
                            409,
                            "FactorNotReady",
                            "This verification method cannot be used yet: set it up first, then try again.",
                        ));
                    }
                    Err(e) => {
                        tracing::error!(
                            error_type = e.kind(),
                            "AdminSetUserMFAPreference failed: {e}"
                        );
                        return Err(Refused::unavailable());
                    }
                }
            }
            let preference = decision.preference.as_str();
            update(&deps.admin, pool, user, PREFERENCE_ATTRIBUTE, preference).await?;
            notify(
                deps,
                &current,
                Changed::MfaPreference,
                preference,
                now,
                false,
            )
            .await;
            let totp_set_up_needed =
                decision.preference == auth_policy::MfaPreference::Totp && !factors.totp_enabled;
            Ok(json!({
                "status": "updated",
                "preference": preference,
                "totpSetUpNeeded": totp_set_up_needed,
            }))
        }
    }
}

async fn update<A: UserPoolAdmin>(
    admin: &A,
    pool: &str,
    user: &str,
    name: &str,
    value: &str,
) -> Result<(), Refused> {
    match admin
        .update_attributes(pool, user, &[(name.to_owned(), value.to_owned())])
        .await
    {
        Ok(()) => Ok(()),
        Err(AdminError::UserNotFound { .. }) => Err(Refused::new(
            404,
            "UserNotFound",
            "The signed-in user no longer exists.",
        )),
        Err(AdminError::InvalidParameter { .. }) => Err(Refused::invalid(format!(
            "The user pool refused the new {name}."
        ))),
        Err(e) => {
            tracing::error!(
                error_type = e.kind(),
                "AdminUpdateUserAttributes failed: {e}"
            );
            Err(Refused::unavailable())
        }
    }
}

/// Tells the user's verified email (and, with `old_phone`, their verified
/// phone) what changed. A notice that cannot be sent is logged and counted
/// (`AccountNoticeFailed`): the change stands.
async fn notify<A, L, E, S>(
    deps: &Deps<A, L, E, S>,
    user: &User,
    changed: Changed,
    new_value: &str,
    now: u64,
    old_phone: bool,
) where
    E: EmailSender + Sync,
    S: SmsSender + Sync,
{
    let when = email_messages::notice::utc_minute(now);
    let notice = Notice {
        changed,
        refused: false,
        new_value,
        when: &when,
    };
    let locale = user.attribute("locale");
    let email = user
        .attribute("email")
        .map(str::trim)
        .filter(|e| !e.is_empty() && verified(user, "email"));
    let to_email = async {
        if let (Some(sender), Some(to)) = (&deps.email, email) {
            let m = notice_email(&notice, locale);
            if let Err(e) = sender.send(to, &m.subject, &m.text, &m.html).await {
                tracing::warn!(to = %mask_email(to), error_type = e.kind(), "the notice could not be sent: {e}");
                lambda_host::metrics::count("AccountNoticeFailed", &[("Channel", "email")]);
            }
        }
    };
    let phone = user
        .phone_number()
        .filter(|_| old_phone && user.phone_number_verified());
    let to_phone = async {
        if let (Some(sender), Some(to)) = (&deps.sms, phone)
            && let Err(e) = sender.send(to, &notice_text(&notice, locale)).await
        {
            tracing::warn!(to = %mask_phone(to), "the notice could not be sent: {e}");
            lambda_host::metrics::count("AccountNoticeFailed", &[("Channel", "sms")]);
        }
    };
    tokio::join!(to_email, to_phone);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_stage_prefixes() {
        assert_eq!(
            Route::from_path("POST", "/account/email"),
            Some(Route::Email)
        );
        assert_eq!(
            Route::from_path("post", "/account/phone-number/"),
            Some(Route::PhoneNumber)
        );
        assert_eq!(Route::from_path("GET", "/account/email"), None);
        assert_eq!(Route::from_path("POST", "/account/password"), None);
        let mut r = ApiGatewayV2httpRequest::default();
        r.raw_path = Some("/prod/account/email".into());
        r.request_context.stage = Some("prod".into());
        assert_eq!(request_path(&r), "/account/email");
        r.request_context.stage = Some("$default".into());
        assert_eq!(request_path(&r), "/prod/account/email");
    }

    #[test]
    fn bodies_say_what_is_wrong() {
        let mut r = ApiGatewayV2httpRequest::default();
        r.body = Some(r#"{"email": 5}"#.into());
        assert!(field(&r, "email").unwrap_err().message.contains("string"));
        r.body = Some("not json".into());
        assert_eq!(field(&r, "email").unwrap_err().status, 400);
        r.body = Some(base64::engine::general_purpose::STANDARD.encode(r#"{"email":"a@b.co"}"#));
        r.is_base64_encoded = true;
        assert_eq!(field(&r, "email").unwrap(), "a@b.co");
        r.body = Some("x".repeat(MAX_BODY_BYTES * 3));
        assert!(field(&r, "email").unwrap_err().message.contains("larger"));
    }
}
