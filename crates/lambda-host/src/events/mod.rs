//! Turns the JSON that Cognito (or a person with the AWS console) sends into
//! `aws_lambda_events` types, and back.
//!
//! `aws_lambda_events` is strict where Cognito's own documentation is not:
//! the console's test events carry `"response": {}` and boolean attribute
//! values such as `"email_verified": true`, and both fail its types. Users
//! paste those events, so [`parse_event`] first mends them — fills the
//! response with its defaults, turns scalar attribute values into the strings
//! Cognito really sends — and then deserializes, reporting the JSON path of
//! whatever is still wrong.

pub mod custom_email_sender;
pub mod custom_sms_sender;
mod error;

pub use error::EventError;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use aws_lambda_events::event::cognito;

/// The string maps of a Cognito event whose values are strings on the wire
/// but may be booleans or numbers in hand-written events.
const STRING_MAPS: [&str; 5] = [
    "userAttributes",
    "clientMetadata",
    "validationData",
    "privateChallengeParameters",
    "publicChallengeParameters",
];

/// The `triggerSource` of an event, if it has one that is a string.
pub fn trigger_source(event: &Value) -> Option<&str> {
    event.get("triggerSource").and_then(Value::as_str)
}

/// The wire name of a parsed event's trigger-source enum (e.g.
/// `PostConfirmation_ConfirmSignUp`): `aws_lambda_events` gives no `as_str`.
pub fn source_name<S: Serialize>(source: &S) -> Option<String> {
    match serde_json::to_value(source) {
        Ok(Value::String(name)) => Some(name),
        _ => None,
    }
}

/// Parses a Cognito trigger event into `T`, forgiving what the AWS console's
/// test events do differently from Cognito (see the crate docs). `kind` names
/// the trigger in error messages.
pub fn parse_event<T>(kind: &'static str, mut event: Value) -> Result<T, EventError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let found = json_type(&event);
    let obj = event
        .as_object_mut()
        .ok_or(EventError::NotAnObject { kind, found })?;
    let defaults =
        serde_json::to_value(T::default()).map_err(|e| EventError::Internal(e.to_string()))?;
    mend(kind, obj, &defaults)?;
    serde_path_to_error::deserialize(event).map_err(|e| {
        // Fields behind `#[serde(flatten)]` (the header) lose their path.
        let path = match e.path().to_string() {
            p if p == "." => "event".to_owned(),
            p => p,
        };
        EventError::Invalid {
            kind,
            path,
            message: without_values(&e.inner().to_string()),
        }
    })
}

/// serde's messages quote the value they found (`invalid type: string
/// "bob@example.com", expected a map`). An error message reaches the client
/// and the logs, so the values go: a quoted string is dropped, and a
/// backticked one is kept only when it reads as an identifier (a variant or
/// field name such as `PreSignUp_SignUp`), never a number, an email or a
/// phone.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // Debug-quoted: `\"` does not end it.
                let mut escaped = false;
                for q in chars.by_ref() {
                    match q {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
                trim_trailing_space(&mut out);
            }
            '`' => {
                let quoted: String = chars.by_ref().take_while(|&q| q != '`').collect();
                let identifier = quoted.len() <= 64
                    && quoted.chars().any(|q| q.is_ascii_alphabetic())
                    && quoted
                        .chars()
                        .all(|q| q.is_ascii_alphanumeric() || q == '_' || q == ':');
                if identifier {
                    out.push('`');
                    out.push_str(&quoted);
                    out.push('`');
                } else {
                    trim_trailing_space(&mut out);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn trim_trailing_space(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// Serializes a handled event back to JSON for the response.
pub fn to_value<T: Serialize>(event: &T) -> Result<Value, EventError> {
    serde_json::to_value(event).map_err(|e| EventError::Internal(e.to_string()))
}

fn mend(
    kind: &'static str,
    obj: &mut Map<String, Value>,
    defaults: &Value,
) -> Result<(), EventError> {
    // callerContext and response: missing, null or partial → the defaults,
    // overlaid with whatever was given.
    for key in ["callerContext", "response"] {
        let Some(default) = defaults.get(key) else {
            continue;
        };
        let merged = match obj.remove(key) {
            None | Some(Value::Null) => default.clone(),
            Some(Value::Object(given)) => {
                let mut base = default.as_object().cloned().unwrap_or_default();
                for (k, v) in given {
                    if !v.is_null() {
                        base.insert(k, v);
                    }
                }
                Value::Object(base)
            }
            Some(other) => {
                return Err(EventError::Invalid {
                    kind,
                    path: key.to_owned(),
                    message: format!("expected an object, found {}", json_type(&other)),
                });
            }
        };
        obj.insert(key.to_owned(), merged);
    }
    if let Some(Value::Object(request)) = obj.get_mut("request") {
        for map in STRING_MAPS {
            if let Some(Value::Object(values)) = request.get_mut(map) {
                stringify_scalars(kind, map, values)?;
            }
        }
    }
    Ok(())
}

fn stringify_scalars(
    kind: &'static str,
    map: &str,
    values: &mut Map<String, Value>,
) -> Result<(), EventError> {
    values.retain(|_, v| !v.is_null());
    for (key, value) in values.iter_mut() {
        match value {
            Value::String(_) => {}
            Value::Bool(b) => *value = Value::String(b.to_string()),
            Value::Number(n) => *value = Value::String(n.to_string()),
            other => {
                return Err(EventError::Invalid {
                    kind,
                    path: format!("request.{map}.{key}"),
                    message: format!("expected a string, found {}", json_type(other)),
                });
            }
        }
    }
    Ok(())
}

/// The JSON type of a value, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognito::{CognitoEventUserPoolsDefineAuthChallenge, CognitoEventUserPoolsPreSignup};
    use serde_json::json;

    fn console_pre_sign_up() -> Value {
        json!({
            "version": "1",
            "region": "us-east-1",
            "userPoolId": "us-east-1_EXAMPLE",
            "userName": "alice",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "abc"},
            "triggerSource": "PreSignUp_SignUp",
            "request": {
                "userAttributes": {"email": "alice@example.com", "email_verified": true, "custom:n": 3}
            },
            "response": {}
        })
    }

    #[test]
    fn accepts_console_events_with_empty_response_and_boolean_attributes() {
        let e: CognitoEventUserPoolsPreSignup =
            parse_event("PreSignUp", console_pre_sign_up()).unwrap();
        assert_eq!(e.request.user_attributes["email_verified"], "true");
        assert_eq!(e.request.user_attributes["custom:n"], "3");
        assert!(!e.response.auto_confirm_user);
    }

    #[test]
    fn aws_lambda_events_alone_rejects_them() {
        // The reason this crate exists: if this starts passing, the mending
        // can go.
        let strict =
            serde_json::from_value::<CognitoEventUserPoolsPreSignup>(console_pre_sign_up());
        assert!(strict.is_err());
    }

    #[test]
    fn missing_response_and_caller_context_are_filled_in() {
        let mut v = console_pre_sign_up();
        v.as_object_mut().unwrap().remove("response");
        v.as_object_mut().unwrap().remove("callerContext");
        let e: CognitoEventUserPoolsPreSignup = parse_event("PreSignUp", v).unwrap();
        assert!(!e.response.auto_verify_phone);
    }

    #[test]
    fn errors_name_the_path_of_the_bad_field() {
        let mut v = console_pre_sign_up();
        v["request"]["userAttributes"]["email"] = json!({"nested": 1});
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("request.userAttributes.email"), "{e}");

        let mut v = console_pre_sign_up();
        v["triggerSource"] = json!("PostConfirmation_ConfirmSignUp");
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", v)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PostConfirmation_ConfirmSignUp") && e.contains("PreSignUp_SignUp"),
            "{e}"
        );

        let mut v = console_pre_sign_up();
        v["response"] = json!("yes");
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("response") && e.contains("a string"), "{e}");
    }

    #[test]
    fn errors_never_repeat_the_values_they_found() {
        let mut v = console_pre_sign_up();
        v["request"]["userAttributes"] = json!("bob.smith@example.com");
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", v)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("bob.smith"), "{e}");
        assert!(e.contains("userAttributes") && e.contains("a map"), "{e}");

        let mut v = console_pre_sign_up();
        v["userName"] = json!(14155550123_u64);
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", v)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("14155550123"), "{e}");
        // (The header is flattened: serde loses the field's path there.)
        assert!(
            e.contains("integer") && e.contains("expected a string"),
            "{e}"
        );

        let mut v = console_pre_sign_up();
        v["userName"] = json!("quote \"inside\" and +14155550123");
        v["triggerSource"] = json!("+14155550123");
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", v)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("4155550123"), "{e}");
        assert!(e.contains("PreSignUp_SignUp"), "{e}");
    }

    #[test]
    fn without_values_keeps_the_shape_of_the_message() {
        assert_eq!(
            without_values(r#"invalid type: string "a\"b@c.d", expected a map"#),
            "invalid type: string, expected a map"
        );
        assert_eq!(
            without_values("invalid type: floating point `1.5`, expected a string"),
            "invalid type: floating point, expected a string"
        );
        assert_eq!(
            without_values("unknown variant `X_Y`, expected `A` or `B`"),
            "unknown variant `X_Y`, expected `A` or `B`"
        );
        assert_eq!(
            without_values("missing field `session`"),
            "missing field `session`"
        );
        assert_eq!(without_values(r#"unterminated "rest"#), "unterminated");
    }

    #[test]
    fn non_objects_are_refused_with_their_type() {
        let e = parse_event::<CognitoEventUserPoolsPreSignup>("PreSignUp", json!([1, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("an array"), "{e}");
    }

    #[test]
    fn define_auth_challenge_keeps_a_missing_session_an_error() {
        let v = json!({
            "triggerSource": "DefineAuthChallenge_Authentication",
            "userName": "u", "callerContext": {},
            "request": {"userAttributes": {}},
            "response": {"challengeName": null, "issueTokens": null, "failAuthentication": null}
        });
        let e = parse_event::<CognitoEventUserPoolsDefineAuthChallenge>("DefineAuthChallenge", v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("session"), "{e}");
    }

    #[test]
    fn round_trip_keeps_the_fields() {
        let e: CognitoEventUserPoolsPreSignup =
            parse_event("PreSignUp", console_pre_sign_up()).unwrap();
        let back = to_value(&e).unwrap();
        let again: CognitoEventUserPoolsPreSignup = parse_event("PreSignUp", back).unwrap();
        assert_eq!(e, again);
    }
}
