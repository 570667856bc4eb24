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
