use thiserror::Error;

/// A configuration value that cannot be used. The message names the variable
/// and says what it accepts, because the operator reads it in the init-phase
/// failure of the function.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{variable}={value:?} is not valid: expected {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{variable}: entry {entry:?} is not a domain: {hint}")]
    BadDomain {
        variable: &'static str,
        entry: String,
        hint: &'static str,
    },
    #[error("{variable} is required: {hint}")]
    Missing {
        variable: &'static str,
        hint: &'static str,
    },
    #[error("inconsistent MFA settings: {0}")]
    Conflict(String),
}
