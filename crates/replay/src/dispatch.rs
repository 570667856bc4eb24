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
        result: Err(failure("InvalidConfiguration", e.to_string())),
        effects: Value::Null,
    }
}

/// Runs `event` through the handler its `triggerSource` names.
pub async fn run(event: Value, env: &BTreeMap<String, String>) -> Run {
    let trigger = cognito_events::trigger_source(&event)
        .unwrap_or_default()
        .to_owned();
    let prefix = trigger.split('_').next().unwrap_or_default();
    match prefix {
        "PreSignUp" => pre_sign_up(event, env),
        "CustomSMSSender" => custom_sms_sender(event, env).await,
        "PostConfirmation" => post_confirmation(event, env).await,
        _ => Run {
            result: Err(failure(
                "UnknownTrigger",
                format!(
                    "triggerSource {trigger:?} is not one this project handles (PreSignUp_*, PostConfirmation_*, CustomSMSSender_*, DefineAuthChallenge_*, CreateAuthChallenge_*, VerifyAuthChallengeResponse_*)"
                ),
            )),
            effects: Value::Null,
        },
    }
}

fn pre_sign_up(event: Value, env: &BTreeMap<String, String>) -> Run {
    let config = match auth_policy::SignUpConfig::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
    Run {
        result: pre_sign_up::handle(&config, event)
            .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e))),
        effects: Value::Null,
    }
}

/// The PostConfirmation handler against an in-memory user pool holding the
/// event's user (with the event's attributes); the effects are the MFA
/// settings the run left on that user, and the admin calls it made.
async fn post_confirmation(event: Value, env: &BTreeMap<String, String>) -> Run {
    let config = match auth_policy::MfaConfig::from_source(env) {
        Ok(c) => c,
        Err(e) => return config_failure(e),
    };
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
    let outbox = sms_delivery::Outbox::new();
    let deps = custom_sms_sender::Deps {
        decryptor,
        sender: outbox.clone(),
        messages,
    };
    let result = custom_sms_sender::handle(&deps, event)
        .await
        .map_err(|e| Failure::from(lambda_runtime::Diagnostic::from(e)));
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
