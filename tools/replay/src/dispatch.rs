//! Picks the handler for an event by its `triggerSource`, and runs it with
//! the sample's configuration and fresh in-memory fakes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::expect::{Failure, Run};

fn failure(error_type: &str, message: impl Into<String>) -> Failure {
    Failure {
        error_type: error_type.to_owned(),
        message: message.into(),
    }
}

fn config_failure(e: impl std::fmt::Display) -> Run {
    Run {
        result: Err(failure(
            lambda_host::error_type::INVALID_CONFIGURATION,
            e.to_string(),
        )),
        effects: Value::Null,
    }
}

/// Runs `event` through one function's handler (by package name = binary =
/// `functions/` and `events/` folder), whatever its
/// `triggerSource` says, as that function's Lambda binary would: what the
/// fuzzer and the bad-input census use. `None` for an unknown function name.
pub async fn run_function(
    function: &str,
    event: Value,
    env: &BTreeMap<String, String>,
) -> Option<Run> {
    Some(match function {
        "pre-sign-up" => pre_sign_up(event, env),
        "define-auth-challenge" => define_auth_challenge(event, env),
        "create-auth-challenge" => create_auth_challenge(event, env).await,
        "verify-auth-challenge" => verify_auth_challenge(event, env).await,
        "custom-sms-sender" => custom_sms_sender(event, env).await,
        "custom-email-sender" => custom_email_sender(event, env).await,
        "post-confirmation" => post_confirmation(event, env).await,
        "pre-authentication" => pre_authentication(event, env).await,
        "account-change" => account_change(event, env).await,
        _ => return None,
    })
}

/// Runs `event` through the handler its `triggerSource` names.
pub async fn run(event: Value, env: &BTreeMap<String, String>) -> Run {
    // An API Gateway HTTP API request (the account-change API) has no
    // triggerSource.
    if event.pointer("/requestContext/http").is_some() {
        return account_change(event, env).await;
    }
    let trigger = lambda_host::events::trigger_source(&event)
        .unwrap_or_default()
        .to_owned();
    let prefix = trigger.split('_').next().unwrap_or_default();
    match prefix {
        "PreSignUp" => pre_sign_up(event, env),
        "DefineAuthChallenge" => define_auth_challenge(event, env),
        "CreateAuthChallenge" => create_auth_challenge(event, env).await,
        "VerifyAuthChallengeResponse" => verify_auth_challenge(event, env).await,
        "CustomSMSSender" => custom_sms_sender(event, env).await,
        "CustomEmailSender" => custom_email_sender(event, env).await,
        "PostConfirmation" => post_confirmation(event, env).await,
        "PreAuthentication" => pre_authentication(event, env).await,
        _ => Run {
            result: Err(failure(
                "UnknownTrigger",
                format!(
                    "triggerSource {trigger:?} is not one this project handles (PreSignUp_*, PreAuthentication_*, PostConfirmation_*, CustomSMSSender_*, CustomEmailSender_*, DefineAuthChallenge_*, CreateAuthChallenge_*, VerifyAuthChallengeResponse_*)"
                ),
            )),
            effects: Value::Null,
        },
    }
}

fn pre_sign_up(event: Value, env: &BTreeMap<String, String>) -> Run {
    let config = match pre_sign_up::Config::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    Run {
        result: pre_sign_up::handle(&config, event)
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e))),
        effects: Value::Null,
    }
}

/// An in-memory user pool holding the event's user with the event's
/// attributes, and the pool and user ids.
fn pool_with_event_user(event: &Value) -> (cognito_admin::FakeUserPool, String, String) {
    let pool = cognito_admin::FakeUserPool::new();
    let pool_id = event
        .get("userPoolId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let user = event
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let attributes: Vec<(String, String)> = event
        .pointer("/request/userAttributes")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    pool.add_user(
        &pool_id,
        &user,
        attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    (pool, pool_id, user)
}

/// The MFA settings left on the user and the admin calls made: the effects
/// of the two triggers that talk to the user pool.
fn pool_effects(pool: &cognito_admin::FakeUserPool, pool_id: &str, user: &str) -> Value {
    let mfa = pool
        .user(pool_id, user)
        .map(|u| serde_json::to_value(u.mfa).unwrap_or_default())
        .unwrap_or_default();
    serde_json::json!({ "mfa": mfa, "calls": pool.calls() })
}

/// Replay-only settings of a PreAuthentication sample (in its
/// `.expected.json`'s `env`): what the in-memory pool holds before the run.
/// `REPLAY_USER_MFA`: factors already enabled (`SMS_MFA`, `SOFTWARE_TOKEN_MFA`,
/// `EMAIL_OTP`);
/// `REPLAY_USER_ABSENT=true`: the user is not in the pool;
/// `REPLAY_COGNITO_FAILS`: an operation (`AdminGetUser`,
/// `AdminSetUserMFAPreference`) that finds Cognito unreachable.
pub const REPLAY_USER_MFA: &str = "REPLAY_USER_MFA";
pub const REPLAY_USER_ABSENT: &str = "REPLAY_USER_ABSENT";
pub const REPLAY_COGNITO_FAILS: &str = "REPLAY_COGNITO_FAILS";
/// `REPLAY_COGNITO_REFUSES`: an operation Cognito answers with
/// `InvalidParameterException` (the pool's MFA settings disagree with
/// `MFA_METHODS`).
pub const REPLAY_COGNITO_REFUSES: &str = "REPLAY_COGNITO_REFUSES";

/// The PreAuthentication guard against an in-memory pool holding the
/// event's user (unless `REPLAY_USER_ABSENT`), with the factors of
/// `REPLAY_USER_MFA`; the effects are the user's MFA settings afterwards and
/// the admin calls made.
async fn pre_authentication(event: Value, env: &BTreeMap<String, String>) -> Run {
    use cognito_admin::UserPoolAdmin;
    let config = match auth_policy::MfaConfig::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    let (pool, pool_id, user) = pool_with_event_user(&event);
    if env.get(REPLAY_USER_ABSENT).is_some_and(|v| v == "true") {
        pool.remove_user(&pool_id, &user);
    }
    for factor in env
        .get(REPLAY_USER_MFA)
        .map(|v| v.split(',').map(str::trim).filter(|f| !f.is_empty()))
        .into_iter()
        .flatten()
    {
        let on = Some(auth_policy::MethodSetting {
            enabled: true,
            preferred: false,
        });
        let settings = match factor {
            "SMS_MFA" => auth_policy::MfaSettings {
                sms: on,
                ..Default::default()
            },
            "SOFTWARE_TOKEN_MFA" => {
                pool.associate_totp(&pool_id, &user);
                auth_policy::MfaSettings {
                    totp: on,
                    ..Default::default()
                }
            }
            "EMAIL_OTP" => auth_policy::MfaSettings {
                email: on,
                ..Default::default()
            },
            other => return config_failure(format!("{REPLAY_USER_MFA}: unknown factor {other:?}")),
        };
        if let Err(e) = pool.set_mfa_preference(&pool_id, &user, settings).await {
            return config_failure(format!("{REPLAY_USER_MFA}: {e}"));
        }
    }
    let calls_before = pool.calls().len();
    if let Some(operation) = env.get(REPLAY_COGNITO_FAILS) {
        let operation: &'static str = match operation.as_str() {
            "AdminGetUser" => "AdminGetUser",
            "AdminSetUserMFAPreference" => "AdminSetUserMFAPreference",
            other => {
                return config_failure(format!(
                    "{REPLAY_COGNITO_FAILS}: unknown operation {other:?}"
                ));
            }
        };
        pool.fail_operation(
            operation,
            cognito_admin::AdminError::Unreachable {
                operation,
                reason: "replay: the endpoint does not answer".to_owned(),
            },
        );
    }
    if let Some(operation) = env.get(REPLAY_COGNITO_REFUSES) {
        let operation: &'static str = match operation.as_str() {
            "AdminSetUserMFAPreference" => "AdminSetUserMFAPreference",
            other => {
                return config_failure(format!(
                    "{REPLAY_COGNITO_REFUSES}: unknown operation {other:?}"
                ));
            }
        };
        pool.fail_operation(
            operation,
            cognito_admin::AdminError::InvalidParameter { operation },
        );
    }
    let result = pre_authentication::handle(&config, &pool, event)
        .await
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    let mut effects = pool_effects(&pool, &pool_id, &user);
    effects["calls"] = serde_json::json!(pool.calls()[calls_before..]);
    Run { result, effects }
}

/// The PostConfirmation handler against an in-memory user pool holding the
/// event's user (with the event's attributes); the effects are the MFA
/// settings the run left on that user, and the admin calls it made.
async fn post_confirmation(event: Value, env: &BTreeMap<String, String>) -> Run {
    let config = match auth_policy::MfaConfig::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    let (pool, pool_id, user) = pool_with_event_user(&event);
    let result = post_confirmation::handle(&config, &pool, event)
        .await
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    let mfa = pool
        .user(&pool_id, &user)
        .map(|u| serde_json::to_value(u.mfa).unwrap_or_default())
        .unwrap_or_default();
    Run {
        result,
        effects: serde_json::json!({ "mfa": mfa, "calls": pool.calls() }),
    }
}

/// The CustomSMSSender handler with the DEVELOPMENT keyring (the samples'
/// codes are encrypted with the repository's raw AES key, not KMS) and the
/// in-memory outbox; the effects list each SMS with its phone masked.
async fn custom_sms_sender(event: Value, env: &BTreeMap<String, String>) -> Run {
    let messages = match sms_messages::Messages::from_source(env) {
        Ok(m) => m,
        Err(e) => return config_failure(e),
    };
    let decryptor = match dev_keyring::dev_decryptor().await {
        Ok(d) => d,
        Err(e) => return config_failure(e),
    };
    let gate = match replay_gate(env, &event).await {
        Ok(g) => g,
        Err(e) => return config_failure(e),
    };
    let outbox = sms_delivery::Outbox::new();
    let deps = custom_sms_sender::Deps {
        decryptor,
        sender: outbox.clone(),
        messages,
        gate,
        contact_guard: None,
    };
    let mut result = custom_sms_sender::handle(&deps, event.clone())
        .await
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    if env.get(REPLAY_DELIVER_TWICE).is_some_and(|v| v == "true") && result.is_ok() {
        // Lambda's retry of the same event.
        result = custom_sms_sender::handle(&deps, event)
            .await
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    }
    let sms: Vec<Value> = outbox
        .messages()
        .into_iter()
        .map(|m| serde_json::json!({"to": auth_policy::redact::mask_phone(&m.phone), "text": m.text}))
        .collect();
    Run {
        result,
        effects: serde_json::json!({ "sms": sms }),
    }
}

/// Replay-only setting of the email sender's samples (in the
/// `.expected.json` `env`): `REPLAY_EMAIL_SENT_BEFORE=N`: N emails to the
/// event's address, user and pool were counted before the run. The email
/// sender also reads `REPLAY_LIMITS_UNAVAILABLE` and `REPLAY_DELIVER_TWICE`.
pub const REPLAY_EMAIL_SENT_BEFORE: &str = "REPLAY_EMAIL_SENT_BEFORE";

/// The CustomEmailSender handler with the DEVELOPMENT keyring (the samples'
/// codes are encrypted with the repository's raw AES key, not KMS), the
/// in-memory outbox and limiter; the effects list each email as it would be
/// sent, its address masked and the code (or temporary password) hidden.
async fn custom_email_sender(event: Value, env: &BTreeMap<String, String>) -> Run {
    let templates = match custom_email_sender::templates_from_source(env) {
        Ok(t) => t,
        Err(e) => return config_failure(e),
    };
    let decryptor = match dev_keyring::dev_decryptor().await {
        Ok(d) => d,
        Err(e) => return config_failure(e),
    };
    let gate = match replay_email_gate(env, &event).await {
        Ok(g) => g,
        Err(e) => return config_failure(e),
    };
    // The secret, to hide it in what replay prints (the handler never
    // hands it out).
    let secret = replay_secret(&decryptor, &event).await;
    let outbox = email_delivery::Outbox::new();
    let deps = custom_email_sender::Deps {
        decryptor,
        sender: outbox.clone(),
        templates,
        gate,
        contact_guard: None,
    };
    let mut result = custom_email_sender::handle(&deps, event.clone())
        .await
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    if env.get(REPLAY_DELIVER_TWICE).is_some_and(|v| v == "true") && result.is_ok() {
        // Lambda's retry of the same event.
        result = custom_email_sender::handle(&deps, event)
            .await
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    }
    let email: Vec<Value> = outbox
        .emails()
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "to": auth_policy::redact::mask_email(&m.to),
                "subject": hide_secret(&m.subject, secret.as_deref()),
                "text": hide_secret(&m.text, secret.as_deref()),
            })
        })
        .collect();
    Run {
        result,
        effects: serde_json::json!({ "email": email }),
    }
}

/// The event's secret as the handler would show it (a temporary password
/// unescaped), or `None` when it cannot be decrypted here.
async fn replay_secret(decryptor: &code_decrypt::EsdkDecryptor, event: &Value) -> Option<String> {
    use code_decrypt::CodeDecryptor;
    let code = event.pointer("/request/code").and_then(Value::as_str)?;
    let pool = event.get("userPoolId").and_then(Value::as_str)?;
    let secret = decryptor.decrypt(code, pool).await.ok()?;
    Some(code_decrypt::html_unescape(secret.expose()))
}

/// `text` with the secret (and any six-digit code) replaced by `******`.
fn hide_secret(text: &str, secret: Option<&str>) -> String {
    let text = match secret.filter(|s| !s.is_empty()) {
        Some(s) => text.replace(s, "******"),
        None => text.to_owned(),
    };
    hide_codes(&text)
}

/// The send gate of the replayed email sender: no country policy, the
/// in-memory limiter with the sample's limits, primed with
/// `REPLAY_EMAIL_SENT_BEFORE` sends to the event's address.
async fn replay_email_gate(
    env: &BTreeMap<String, String>,
    event: &Value,
) -> Result<send_limits::SendGate<send_limits::MemoryLimiter>, String> {
    use send_limits::Limiter;
    let mut env = env.clone();
    env.entry(send_limits::spec::TABLE_VAR.to_owned())
        .or_insert_with(|| REPLAY_TABLE.to_owned());
    let limits = send_limits::Limits::from_source(&env).map_err(|e| e.to_string())?;
    let limiter = send_limits::MemoryLimiter::new(limits);
    let text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let address = custom_email_sender::limit_key_address(text("/request/userAttributes/email"));
    let verified = match event.pointer("/request/userAttributes/email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(v)) => v.trim().eq_ignore_ascii_case("true"),
        _ => false,
    };
    let before = send_limits::Outgoing {
        channel: send_limits::Channel::Email,
        pool: text("/userPoolId"),
        user: text("/userName"),
        destination: &address,
        destination_verified: verified,
        dedup: None,
        check_lockout: false,
        contact: send_limits::ContactCheck::None,
        now: challenge_code::unix_now(),
    };
    let sent_before: u32 = env
        .get(REPLAY_EMAIL_SENT_BEFORE)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{REPLAY_EMAIL_SENT_BEFORE}: expected a number"))
        })
        .transpose()?
        .unwrap_or_default();
    for _ in 0..sent_before {
        limiter.admit(&before).await.map_err(|e| e.to_string())?;
    }
    if env
        .get(REPLAY_LIMITS_UNAVAILABLE)
        .is_some_and(|v| v == "true")
    {
        limiter.set_unavailable(true);
    }
    Ok(send_limits::SendGate::new(
        phone_country::CountryPolicy::default(),
        Some(limiter),
    ))
}

/// Replay-only settings of the SMS senders' samples (in the `.expected.json`
/// `env`), for the limits replay keeps in memory:
/// `REPLAY_SMS_SENT_BEFORE=N`: N sends to the event's phone, user and pool
/// were counted before the run; `REPLAY_LIMITS_UNAVAILABLE=true`: the limits
/// table cannot be reached; `REPLAY_DELIVER_TWICE=true`: the event is
/// delivered a second time (Lambda's retry); `REPLAY_CODE_FAILURES=N`: the
/// user's wrong codes so far in the window.
pub const REPLAY_SMS_SENT_BEFORE: &str = "REPLAY_SMS_SENT_BEFORE";
/// Sends to the event's number made before by another account that holds
/// it unverified.
pub const REPLAY_SMS_SENT_BEFORE_BY_OTHERS: &str = "REPLAY_SMS_SENT_BEFORE_BY_OTHERS";
pub const REPLAY_LIMITS_UNAVAILABLE: &str = "REPLAY_LIMITS_UNAVAILABLE";
pub const REPLAY_DELIVER_TWICE: &str = "REPLAY_DELIVER_TWICE";
pub const REPLAY_CODE_FAILURES: &str = "REPLAY_CODE_FAILURES";
/// CreateAuthChallenge: the same sign-in starts again this many seconds
/// later (a user who did not get the SMS and tries again).
pub const REPLAY_SIGN_IN_AGAIN_AFTER: &str = "REPLAY_SIGN_IN_AGAIN_AFTER";

/// The table name replay gives the in-memory limiter when the sample names
/// none (the limits need a table name to be valid configuration).
const REPLAY_TABLE: &str = "replay-in-memory";

/// The in-memory limiter with the sample's limits, primed as its
/// `REPLAY_*` settings say.
async fn replay_limiter(
    env: &BTreeMap<String, String>,
    event: &Value,
) -> Result<send_limits::MemoryLimiter, String> {
    use send_limits::Limiter;
    let mut env = env.clone();
    env.entry(send_limits::spec::TABLE_VAR.to_owned())
        .or_insert_with(|| REPLAY_TABLE.to_owned());
    let limits = send_limits::Limits::from_source(&env).map_err(|e| e.to_string())?;
    let limiter = send_limits::MemoryLimiter::new(limits);
    let text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (pool, user) = (text("/userPoolId"), text("/userName"));
    let now = challenge_code::unix_now();
    let number = |key: &str| -> Result<u32, String> {
        env.get(key)
            .map(|v| v.parse().map_err(|_| format!("{key}: expected a number")))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let verified = match event.pointer("/request/userAttributes/phone_number_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(v)) => v.trim().eq_ignore_ascii_case("true"),
        _ => false,
    };
    let before = |user, destination_verified| send_limits::Outgoing {
        channel: send_limits::Channel::Sms,
        pool,
        user,
        destination: text("/request/userAttributes/phone_number"),
        destination_verified,
        dedup: None,
        check_lockout: false,
        contact: send_limits::ContactCheck::None,
        now,
    };
    for _ in 0..number(REPLAY_SMS_SENT_BEFORE)? {
        limiter
            .admit(&before(user, verified))
            .await
            .map_err(|e| e.to_string())?;
    }
    // Another account carrying the same number, unverified (phone numbers
    // are not unique): it spends the number's common budget.
    for _ in 0..number(REPLAY_SMS_SENT_BEFORE_BY_OTHERS)? {
        limiter
            .admit(&before("another-account-with-this-number", false))
            .await
            .map_err(|e| e.to_string())?;
    }
    for _ in 0..number(REPLAY_CODE_FAILURES)? {
        limiter
            .record_code_failure(pool, user, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    if env
        .get(REPLAY_LIMITS_UNAVAILABLE)
        .is_some_and(|v| v == "true")
    {
        limiter.set_unavailable(true);
    }
    Ok(limiter)
}

/// The send gate of a replayed sender: the sample's country policy and the
/// in-memory limiter.
async fn replay_gate(
    env: &BTreeMap<String, String>,
    event: &Value,
) -> Result<send_limits::SendGate<send_limits::MemoryLimiter>, String> {
    let countries = phone_country::CountryPolicy::from_source(env).map_err(|e| e.to_string())?;
    Ok(send_limits::SendGate::new(
        countries,
        Some(replay_limiter(env, event).await?),
    ))
}

/// The secret replay hashes codes with when the sample sets no
/// `CHALLENGE_SECRET`: for local runs only, never deployed. The samples under
/// events/verify-auth-challenge/ carry code hashes made with it.
pub const REPLAY_CHALLENGE_SECRET: &str = "replay-only-challenge-secret-never-deploy-this";

fn challenge_secret(
    env: &BTreeMap<String, String>,
) -> Result<challenge_code::HashingSecret, challenge_code::SecretError> {
    if env.contains_key(challenge_code::SECRET_VAR)
        || env.contains_key(challenge_code::SECRET_ARN_VAR)
    {
        challenge_code::secret_from_env_only(env)
    } else {
        challenge_code::HashingSecret::new(
            REPLAY_CHALLENGE_SECRET.as_bytes().to_vec(),
            "replay's built-in secret",
        )
    }
}

/// Six digits in a row: the code in an SMS text, hidden in the effects.
fn hide_codes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if run == 0 {
            out.push(chars[i]);
            i += 1;
        } else {
            if run == challenge_code::CODE_DIGITS {
                out.push_str("******");
            } else {
                out.extend(&chars[i..i + run]);
            }
            i += run;
        }
    }
    out
}

/// DefineAuthChallenge: pure, nothing but the policy.
fn define_auth_challenge(event: Value, env: &BTreeMap<String, String>) -> Run {
    let config = match define_auth_challenge::Config::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    Run {
        result: define_auth_challenge::handle(&config, event)
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e))),
        effects: Value::Null,
    }
}

/// CreateAuthChallenge with the in-memory outbox; the effects list each SMS
/// with its phone masked and the code hidden (the code is only ever in the
/// SMS itself).
async fn create_auth_challenge(event: Value, env: &BTreeMap<String, String>) -> Run {
    let settings = match create_auth_challenge::Settings::from_source(env) {
        Ok(s) => s,
        Err(e) => return config_failure(e),
    };
    let secret = match challenge_secret(env) {
        Ok(s) => s,
        Err(e) => return config_failure(e),
    };
    let gate = match replay_gate(env, &event).await {
        Ok(g) => g,
        Err(e) => return config_failure(e),
    };
    let outbox = sms_delivery::Outbox::new();
    let event_again = event.clone();
    let deps = create_auth_challenge::Deps::new(settings, secret, outbox.clone(), gate);
    let mut result =
        create_auth_challenge::handle(&deps, event.clone(), challenge_code::unix_now())
            .await
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    if env.get(REPLAY_DELIVER_TWICE).is_some_and(|v| v == "true")
        && let Ok(first) = &result
    {
        // Cognito's retry of the same challenge: the same stamp, no SMS.
        let again = create_auth_challenge::handle(&deps, event, challenge_code::unix_now())
            .await
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
        if let Ok(second) = &again
            && second["response"] != first["response"]
        {
            return Run {
                result: Err(failure(
                    "ReplayMismatch",
                    "the retry answered with another code",
                )),
                effects: Value::Null,
            };
        }
        result = again;
    }
    // A new sign-in of the same user N seconds later (the same event again).
    if let Some(later) = env.get(REPLAY_SIGN_IN_AGAIN_AFTER)
        && result.is_ok()
    {
        let Ok(later) = later.parse::<u64>() else {
            return config_failure(format!("{REPLAY_SIGN_IN_AGAIN_AFTER}: expected seconds"));
        };
        result =
            create_auth_challenge::handle(&deps, event_again, challenge_code::unix_now() + later)
                .await
                .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    }
    let sms: Vec<Value> = outbox
        .messages()
        .into_iter()
        .map(|m| serde_json::json!({"to": auth_policy::redact::mask_phone(&m.phone), "text": hide_codes(&m.text)}))
        .collect();
    Run {
        result,
        effects: serde_json::json!({ "sms": sms }),
    }
}

/// VerifyAuthChallengeResponse: the secret and the clock, nothing else.
/// The effects are the user's wrong codes counted in the window afterwards
/// (with `CODE_FAILURES_PER_USER`).
async fn verify_auth_challenge(event: Value, env: &BTreeMap<String, String>) -> Run {
    use send_limits::Limiter;
    let secret = match challenge_secret(env) {
        Ok(s) => s,
        Err(e) => return config_failure(e),
    };
    let limiter = match replay_limiter(env, &event).await {
        Ok(l) => l,
        Err(e) => return config_failure(e),
    };
    let text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (pool, user) = (text("/userPoolId"), text("/userName"));
    let now = challenge_code::unix_now();
    let result = verify_auth_challenge::handle_with_lockout(&secret, Some(&limiter), event, now)
        .await
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    let effects = match limiter.limits().code_failures_per_user {
        Some(_) => serde_json::json!({
            "code_failures": limiter.code_failures(&pool, &user, now).await.ok()
        }),
        None => Value::Null,
    };
    Run { result, effects }
}

/// Replay-only settings of an account-change sample (in its
/// `.expected.json`'s `env`): `REPLAY_USER_ATTRIBUTES`, a JSON object of the
/// signed-in user's attributes in the in-memory pool (default: a verified
/// email and phone, locale `en`); `REPLAY_CHANGES_BEFORE=N`: N changes
/// counted against `ACCOUNT_CHANGES_PER_USER` before the run.
pub const REPLAY_USER_ATTRIBUTES: &str = "REPLAY_USER_ATTRIBUTES";
pub const REPLAY_CHANGES_BEFORE: &str = "REPLAY_CHANGES_BEFORE";

/// The account-change API at the request's own time (`timeEpoch`), with an
/// in-memory pool, limiter and outboxes. The result's `response` is the
/// HTTP answer (`statusCode`, the body parsed); the effects are the user's
/// attributes and MFA afterwards, the notices sent (addresses masked) and
/// whether the senders would now deliver a code to the new address.
async fn account_change(event: Value, env: &BTreeMap<String, String>) -> Run {
    use auth_policy::redact::{mask_email, mask_phone};
    use send_limits::Limiter;
    let config = match auth_policy::account::AccountChangeConfig::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    let countries = match phone_country::CountryPolicy::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    let mut limits = match send_limits::Limits::from_source(env) {
        Ok(l) => l,
        Err(e) => return config_failure(e),
    };
    if !env.contains_key(send_limits::spec::ACCOUNT_CHANGES_VAR) {
        limits.account_changes_per_user =
            send_limits::LimitSpec::parse(send_limits::spec::DEFAULT_ACCOUNT_CHANGES);
    }
    limits.table = Some("replay".to_owned());
    let limiter = send_limits::MemoryLimiter::new(limits);
    let pool_id = env
        .get(account_change::POOL_VAR)
        .cloned()
        .unwrap_or_else(|| "us-east-1_Replay".to_owned());
    let user = event
        .pointer("/requestContext/authorizer/jwt/claims/username")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let attributes: BTreeMap<String, String> = match env.get(REPLAY_USER_ATTRIBUTES) {
        Some(json) => match serde_json::from_str(json) {
            Ok(a) => a,
            Err(e) => return config_failure(format!("{REPLAY_USER_ATTRIBUTES}: {e}")),
        },
        None => [
            ("email", "alice@example.com"),
            ("email_verified", "true"),
            ("phone_number", "+14155550123"),
            ("phone_number_verified", "true"),
            ("locale", "en"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    };
    let pool = cognito_admin::FakeUserPool::new();
    pool.add_pool(&pool_id);
    if !user.is_empty() {
        pool.add_user(
            &pool_id,
            &user,
            attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    let now = event
        .pointer("/requestContext/timeEpoch")
        .and_then(Value::as_u64)
        .map_or(0, |ms| ms / 1000);
    let before: u32 = env
        .get(REPLAY_CHANGES_BEFORE)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for _ in 0..before {
        let change = send_limits::AccountChange {
            pool: &pool_id,
            user: &user,
            allowance: None,
            now,
        };
        if let Err(e) = limiter.change_account(&change).await {
            return config_failure(e);
        }
    }
    let email = email_delivery::Outbox::new();
    let sms = sms_delivery::Outbox::new();
    let deps = account_change::Deps {
        config,
        countries,
        pool_id: pool_id.clone(),
        admin: pool.clone(),
        limiter: limiter.clone(),
        email: Some(email.clone()),
        sms: Some(sms.clone()),
    };
    let result = account_change::handle_at(&deps, event, now)
        .await
        .map(|answer| {
            let body = answer
                .get("body")
                .and_then(Value::as_str)
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            serde_json::json!({"response": {"statusCode": answer["statusCode"], "body": body}})
        })
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
    let after = pool.user(&pool_id, &user);
    let attribute = |name: &str| {
        after
            .as_ref()
            .and_then(|u| u.attribute(name).map(ToOwned::to_owned))
    };
    // Would the senders now deliver a code to the new address?
    let (pool_ref, user_ref, limiter_ref) = (&pool_id, &user, &limiter);
    let allowed = |channel, address: Option<String>| async move {
        let Some(address) = address else {
            return false;
        };
        let out = send_limits::Outgoing {
            channel,
            pool: pool_ref,
            user: user_ref,
            destination: &address,
            destination_verified: false,
            dedup: None,
            check_lockout: false,
            contact: send_limits::ContactCheck::Allowance,
            now,
        };
        matches!(
            limiter_ref.admit(&out).await,
            Ok(send_limits::Admission::Send)
        )
    };
    let new_email = attribute("email").map(|e| e.to_lowercase());
    let new_phone = attribute("phone_number");
    let effects = serde_json::json!({
        "attributes": {
            "email": attribute("email").map(|e| mask_email(&e)),
            "phone_number": attribute("phone_number").map(|p| mask_phone(&p)),
            "custom:mfa_preference": attribute(auth_policy::PREFERENCE_ATTRIBUTE),
        },
        "mfa": after.as_ref().map(|u| serde_json::to_value(&u.mfa).unwrap_or_default()),
        "allowance": {
            "email": allowed(send_limits::Channel::Email, new_email).await,
            "phone_number": allowed(send_limits::Channel::Sms, new_phone).await,
        },
        "notices": {
            "email": email.emails().into_iter().map(|m| serde_json::json!({"to": mask_email(&m.to), "subject": m.subject})).collect::<Vec<_>>(),
            "sms": sms.messages().into_iter().map(|m| serde_json::json!({"to": mask_phone(&m.phone), "text": m.text})).collect::<Vec<_>>(),
        },
        "calls": pool.calls(),
    });
    Run { result, effects }
}
