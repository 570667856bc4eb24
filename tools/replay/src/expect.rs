//! The expected outcome stored beside a sample event (`NAME.expected.json`
//! next to `NAME.json`), and the comparison with what a handler did.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// What the sample is about, for people reading the folder.
    #[serde(default)]
    pub description: Option<String>,
    /// Configuration for this event (over the built-in defaults).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `accepted` (the handler returned the event) or `refused` (an error).
    pub outcome: Outcome,
    /// The error's `errorType`, for refusals.
    #[serde(default)]
    pub error_type: Option<String>,
    /// The exact error message, for refusals.
    #[serde(default)]
    pub message: Option<String>,
    /// A part of the error message, for refusals.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// Fields the returned event's `response` must have (a subset).
    #[serde(default)]
    pub response: Option<Value>,
    /// What the handler must have left behind in the fakes (a subset):
    /// MFA settings in the in-memory pool, messages in the SMS outbox.
    #[serde(default)]
    pub effects: Option<Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Accepted,
    Refused,
}

/// One handler run.
#[derive(Debug, Clone)]
pub struct Run {
    pub result: Result<Value, Failure>,
    /// What the run left in the fakes, `Null` when the trigger has none.
    pub effects: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub message: String,
}

impl From<lambda_runtime::Diagnostic> for Failure {
    fn from(d: lambda_runtime::Diagnostic) -> Self {
        Self {
            error_type: d.error_type,
            message: d.error_message,
        }
    }
}

impl Run {
    pub fn outcome(&self) -> Outcome {
        if self.result.is_ok() {
            Outcome::Accepted
        } else {
            Outcome::Refused
        }
    }
}

/// The differences between what was expected and what happened; empty when
/// they agree.
pub fn compare(expected: &Expected, run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    if expected.outcome != run.outcome() {
        out.push(format!(
            "expected {:?}, got {:?}",
            expected.outcome,
            run.outcome()
        ));
    }
    match &run.result {
        Err(f) => {
            if let Some(t) = &expected.error_type
                && t != &f.error_type
            {
                out.push(format!("expected errorType {t:?}, got {:?}", f.error_type));
            }
            if let Some(m) = &expected.message
                && m != &f.message
            {
                out.push(format!("expected message {m:?}, got {:?}", f.message));
            }
            if let Some(m) = &expected.message_contains
                && !f.message.contains(m.as_str())
            {
                out.push(format!(
                    "expected message containing {m:?}, got {:?}",
                    f.message
                ));
            }
        }
        Ok(event) => {
            if let Some(want) = &expected.response {
                let got = event.get("response").cloned().unwrap_or(Value::Null);
                subset("response", want, &got, &mut out);
            }
        }
    }
    if let Some(want) = &expected.effects {
        subset("effects", want, &run.effects, &mut out);
    }
    out
}

/// Whether `want` is contained in `got`: objects by key (recursively), other
/// values (arrays included) by equality.
fn subset(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => subset(&p, wv, gv, out),
                    None => out.push(format!("{p}: expected {wv}, missing")),
                }
            }
        }
        _ if want == got => {}
        _ => out.push(format!("{path}: expected {want}, got {got}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> Run {
        Run {
            result: Ok(v),
            effects: Value::Null,
        }
    }

    #[test]
    fn subset_matching_reports_each_difference() {
        let e = Expected {
            outcome: Outcome::Accepted,
            response: Some(json!({"a": true, "b": {"c": 1}})),
            ..Default::default()
        };
        assert!(
            compare(
                &e,
                &ok(json!({"response": {"a": true, "b": {"c": 1, "d": 2}}}))
            )
            .is_empty()
        );
        let diffs = compare(&e, &ok(json!({"response": {"a": false}})));
        assert_eq!(diffs.len(), 2, "{diffs:?}");
    }

    #[test]
    fn refusals_check_type_and_message() {
        let e = Expected {
            outcome: Outcome::Refused,
            error_type: Some("SignUpRejected".into()),
            message_contains: Some("phone".into()),
            ..Default::default()
        };
        let run = Run {
            result: Err(Failure {
                error_type: lambda_host::error_type::INVALID_EVENT.into(),
                message: "bad".into(),
            }),
            effects: Value::Null,
        };
        assert_eq!(compare(&e, &run).len(), 2);
        assert_eq!(compare(&e, &ok(json!({}))).len(), 1);
    }
}
