use thiserror::Error;

/// An event that cannot be handled. The message says what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("invalid {kind} event: expected a JSON object, found {found}")]
    NotAnObject {
        kind: &'static str,
        found: &'static str,
    },
    #[error("invalid {kind} event: {path}: {message}")]
    Invalid {
        kind: &'static str,
        path: String,
        message: String,
    },
    #[error("invalid {kind} event: {message}")]
    Unsupported { kind: &'static str, message: String },
    #[error("internal error while handling the event: {0}")]
    Internal(String),
}
