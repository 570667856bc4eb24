use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;

use auth_policy::redact::mask_username;

/// A failed admin call. Built from the AWS error *code* (never the message
/// text, which differs between Cognito and moto and may quote personal
/// data); usernames that look like an email or phone are masked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdminError {
    #[error("user {user} does not exist in user pool {pool}")]
    UserNotFound { pool: String, user: String },
    #[error("user pool {pool} does not exist (check --user-pool-id and the region)")]
    PoolNotFound { pool: String },
    #[error(
        "device {key} is not among the user's devices (or user pool {pool} does not exist): list them with `devices USER`"
    )]
    DeviceNotFound { pool: String, key: String },
    /// Cognito's `InvalidParameterException`: for MFA, SMS on a user without
    /// a phone or TOTP never associated; the caller knows which it asked for.
    #[error("{operation} refused the request: InvalidParameterException")]
    InvalidParameter { operation: &'static str },
    /// An HTTP 5xx without an AWS error code: what moto answers for the APIs
    /// it does not implement (moto 5.2 has no device APIs).
    #[error(
        "{operation}: the endpoint answered HTTP {status} without an AWS error code; it does not seem to implement {operation} (moto 5.2 has no device APIs)"
    )]
    NotImplemented {
        operation: &'static str,
        status: u16,
    },
    #[error("{operation} failed: {code}")]
    Service {
        operation: &'static str,
        code: String,
    },
    #[error("{operation}: the Cognito endpoint could not be reached: {reason}")]
    Unreachable {
        operation: &'static str,
        reason: String,
    },
    #[error("{operation}: the request could not be made: {reason}")]
    Request {
        operation: &'static str,
        reason: String,
    },
}

impl AdminError {
    /// The AWS error code, when the service gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::UserNotFound { .. } => Some("UserNotFoundException"),
            Self::PoolNotFound { .. } | Self::DeviceNotFound { .. } => {
                Some("ResourceNotFoundException")
            }
            Self::InvalidParameter { .. } => Some("InvalidParameterException"),
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A stable name for the kind of failure (Lambda `errorType`, logs).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UserNotFound { .. } => "UserNotFound",
            Self::PoolNotFound { .. } => "UserPoolNotFound",
            Self::DeviceNotFound { .. } => "DeviceNotFound",
            Self::InvalidParameter { .. } => "InvalidParameter",
            Self::NotImplemented { .. } => "NotImplemented",
            Self::Service { .. } => "CognitoError",
            Self::Unreachable { .. } => "CognitoUnreachable",
            Self::Request { .. } => "RequestError",
        }
    }
}

/// Turns an SDK error into an [`AdminError`], on codes and HTTP status only.
pub(crate) fn classify<E>(
    operation: &'static str,
    pool: &str,
    username: Option<&str>,
    error: SdkError<E, HttpResponse>,
) -> AdminError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.err().code() {
                Some("UserNotFoundException") => AdminError::UserNotFound {
                    pool: pool.to_owned(),
                    user: username.map(mask_username).unwrap_or_default(),
                },
                Some("ResourceNotFoundException") => AdminError::PoolNotFound {
                    pool: pool.to_owned(),
                },
                Some("InvalidParameterException") => AdminError::InvalidParameter { operation },
                Some(code) if !code.is_empty() => AdminError::Service {
                    operation,
                    code: code.to_owned(),
                },
                _ if status >= 500 => AdminError::NotImplemented { operation, status },
                _ => AdminError::Service {
                    operation,
                    code: format!("HTTP {status} without an error code"),
                },
            }
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            if status >= 500 {
                AdminError::NotImplemented { operation, status }
            } else {
                AdminError::Unreachable {
                    operation,
                    reason: format!("unreadable answer (HTTP {status})"),
                }
            }
        }
        SdkError::TimeoutError(_) => AdminError::Unreachable {
            operation,
            reason: "timed out (the retries and the operation time budget are used up)".to_owned(),
        },
        SdkError::DispatchFailure(failure) if failure.is_timeout() || failure.is_io() => {
            AdminError::Unreachable {
                operation,
                reason: if failure.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "connection failed".to_owned()
                },
            }
        }
        // Not the network: the request could not be made (no credentials
        // could be resolved, say). Its causes say what to fix.
        SdkError::DispatchFailure(_) => AdminError::Request {
            operation,
            reason: source_chain(&error),
        },
        SdkError::ConstructionFailure(_) => AdminError::Request {
            operation,
            reason: source_chain(&error),
        },
        _ => AdminError::Request {
            operation,
            reason: source_chain(&error),
        },
    }
}

/// The error's causes on one line (for failures before any request was
/// sent: missing credentials or region). These never contain request data.
fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = error.source();
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}
