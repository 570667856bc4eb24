//! The hashing secret: loaded once, in the init phase.
//!
//! Deployed, `CHALLENGE_SECRET_ARN` names a Secrets Manager secret, so the
//! value never sits in the function's configuration (where anyone with
//! `lambda:GetFunctionConfiguration` reads it). `CHALLENGE_SECRET` gives the
//! value directly, for tests and replay. Exactly one of the two must be set,
//! and the value must have at least 32 bytes (the HMAC-SHA256 output size:
//! a shorter key weakens the hash that stands between a log reader and the
//! code).

use std::fmt;

use auth_policy::ConfigSource;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use thiserror::Error;
use zeroize::Zeroizing;

pub const SECRET_VAR: &str = "CHALLENGE_SECRET";
pub const SECRET_ARN_VAR: &str = "CHALLENGE_SECRET_ARN";
pub const MIN_SECRET_BYTES: usize = 32;

/// Why there is no usable secret. Messages name the variable and say what
/// to do; they never contain the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error(
        "no hashing secret: set {SECRET_ARN_VAR} to the ARN of a Secrets Manager secret (deployed) or {SECRET_VAR} to the value (tests, replay)"
    )]
    Missing,
    #[error("set only one of {SECRET_ARN_VAR} and {SECRET_VAR}, not both")]
    Both,
    #[error(
        "{source_name}: the hashing secret has {len} bytes; it needs at least {MIN_SECRET_BYTES} (e.g. 64 random characters)"
    )]
    TooShort { source_name: String, len: usize },
    #[error(
        "{SECRET_ARN_VAR}={arn}: Secrets Manager refused GetSecretValue: {code} (check the ARN and the function's secretsmanager:GetSecretValue permission)"
    )]
    Refused { arn: String, code: String },
    #[error("{SECRET_ARN_VAR}={arn}: Secrets Manager could not be reached: {reason}")]
    Unreachable { arn: String, reason: String },
    #[error("{SECRET_ARN_VAR}={arn}: the secret has neither SecretString nor SecretBinary")]
    Empty { arn: String },
}

/// The HMAC key. Its `Debug` hides the value; the memory is wiped on drop.
pub struct HashingSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for HashingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashingSecret({} bytes)", self.0.len())
    }
}

impl HashingSecret {
    /// Wraps `bytes`, refusing fewer than 32. `source_name` says where they
    /// came from, for the error.
    pub fn new(bytes: Vec<u8>, source_name: &str) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort {
                source_name: source_name.to_owned(),
                len: bytes.len(),
            });
        }
        Ok(Self(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn read(source: &(impl ConfigSource + ?Sized), key: &str) -> Option<Zeroizing<String>> {
        source
            .value(key)
            .map(Zeroizing::new)
            .filter(|v| !v.trim().is_empty())
    }

    /// `CHALLENGE_SECRET` only; an ARN is an error here (no AWS access).
    pub(crate) fn from_value_source(
        source: &(impl ConfigSource + ?Sized),
    ) -> Result<Self, SecretError> {
        let arn = Self::read(source, SECRET_ARN_VAR);
        match (arn, Self::read(source, SECRET_VAR)) {
            (Some(_), Some(_)) => Err(SecretError::Both),
            (_, Some(value)) => Self::new(value.trim().as_bytes().to_vec(), SECRET_VAR),
            _ => Err(SecretError::Missing),
        }
    }

    /// Loads the secret from wherever the environment says; with
    /// `CHALLENGE_SECRET_ARN`, builds a Secrets Manager client with the
    /// synchronous-trigger time budget and reads the secret once.
    pub async fn load(source: &(impl ConfigSource + ?Sized)) -> Result<Self, SecretError> {
        Self::load_inner(source, None).await
    }

    /// Like [`load`](Self::load), with the function's shared SDK
    /// configuration (create builds one anyway, for SNS).
    pub async fn load_with(
        source: &(impl ConfigSource + ?Sized),
        config: &sdk_config::aws_config::SdkConfig,
    ) -> Result<Self, SecretError> {
        Self::load_inner(source, Some(config)).await
    }

    async fn load_inner(
        source: &(impl ConfigSource + ?Sized),
        config: Option<&sdk_config::aws_config::SdkConfig>,
    ) -> Result<Self, SecretError> {
        let arn = Self::read(source, SECRET_ARN_VAR);
        match (arn, Self::read(source, SECRET_VAR)) {
            (Some(_), Some(_)) => Err(SecretError::Both),
            (Some(arn), None) => {
                let client = match config {
                    Some(c) => aws_sdk_secretsmanager::Client::new(c),
                    None => aws_sdk_secretsmanager::Client::new(
                        &sdk_config::for_function(sdk_config::Budget::SYNC_TRIGGER).await,
                    ),
                };
                Self::fetch(&client, arn.trim()).await
            }
            (None, _) => Self::from_value_source(source),
        }
    }

    /// GetSecretValue on `arn`: SecretString as UTF-8 bytes, else SecretBinary.
    pub async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        arn: &str,
    ) -> Result<Self, SecretError> {
        use aws_sdk_secretsmanager::error::SdkError;
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(s) => SecretError::Refused {
                    arn: arn.to_owned(),
                    code: s.err().code().unwrap_or("Unknown").to_owned(),
                },
                SdkError::TimeoutError(_) => SecretError::Unreachable {
                    arn: arn.to_owned(),
                    reason: "timed out".to_owned(),
                },
                SdkError::DispatchFailure(_) => SecretError::Unreachable {
                    arn: arn.to_owned(),
                    reason: "connection failed".to_owned(),
                },
                _ => SecretError::Unreachable {
                    arn: arn.to_owned(),
                    reason: "unreadable response".to_owned(),
                },
            })?;
        let source_name = format!("{SECRET_ARN_VAR}={arn}");
        if let Some(s) = out.secret_string() {
            return Self::new(s.as_bytes().to_vec(), &source_name);
        }
        if let Some(b) = out.secret_binary() {
            return Self::new(b.as_ref().to_vec(), &source_name);
        }
        Err(SecretError::Empty {
            arn: arn.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::get_secret_value::{
        GetSecretValueError, GetSecretValueOutput,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:challenge-AbCdEf";
    const LONG: &str = "a-very-long-hashing-secret-of-more-than-32-bytes";

    #[tokio::test]
    async fn env_value_needs_32_bytes_and_exactly_one_source() {
        assert!(HashingSecret::load(&[(SECRET_VAR, LONG)][..]).await.is_ok());
        let e = HashingSecret::load(&[(SECRET_VAR, "short")][..])
            .await
            .unwrap_err();
        assert_eq!(
            e,
            SecretError::TooShort {
                source_name: SECRET_VAR.into(),
                len: 5
            }
        );
        assert!(e.to_string().contains("CHALLENGE_SECRET") && !e.to_string().contains("short"));
        let none: [(&str, &str); 0] = [];
        let e = HashingSecret::load(&none[..]).await.unwrap_err();
        assert_eq!(e, SecretError::Missing);
        assert!(e.to_string().contains(SECRET_ARN_VAR) && e.to_string().contains(SECRET_VAR));
        assert_eq!(
            HashingSecret::load(&[(SECRET_VAR, "  ")][..])
                .await
                .unwrap_err(),
            SecretError::Missing
        );
        assert_eq!(
            HashingSecret::load(&[(SECRET_VAR, LONG), (SECRET_ARN_VAR, ARN)][..])
                .await
                .unwrap_err(),
            SecretError::Both
        );
        // Replay's path never reaches AWS.
        assert_eq!(
            HashingSecret::from_value_source(&[(SECRET_ARN_VAR, ARN)][..]).unwrap_err(),
            SecretError::Missing
        );
    }

    #[tokio::test]
    async fn fetch_reads_the_secret_string_once() {
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(|r| r.secret_id() == Some(ARN))
            .then_output(|| GetSecretValueOutput::builder().secret_string(LONG).build());
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&rule]);
        let s = HashingSecret::fetch(&client, ARN).await.unwrap();
        assert_eq!(s.bytes(), LONG.as_bytes());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn fetch_reads_binary_and_refuses_short_or_empty() {
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| {
            GetSecretValueOutput::builder()
                .secret_binary(aws_smithy_types::Blob::new(vec![9u8; 40]))
                .build()
        });
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&rule]);
        assert_eq!(
            HashingSecret::fetch(&client, ARN).await.unwrap().bytes(),
            &[9u8; 40][..]
        );

        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| {
            GetSecretValueOutput::builder()
                .secret_string("tiny")
                .build()
        });
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&rule]);
        let e = HashingSecret::fetch(&client, ARN).await.unwrap_err();
        assert!(matches!(e, SecretError::TooShort { len: 4, .. }), "{e}");
        assert!(e.to_string().contains(ARN));

        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_output(|| GetSecretValueOutput::builder().build());
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&rule]);
        assert!(matches!(
            HashingSecret::fetch(&client, ARN).await.unwrap_err(),
            SecretError::Empty { .. }
        ));
    }

    #[tokio::test]
    async fn fetch_errors_carry_the_code() {
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(|| {
            GetSecretValueError::generic(
                aws_sdk_secretsmanager::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("User is not authorized")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&rule]);
        let e = HashingSecret::fetch(&client, ARN).await.unwrap_err();
        assert_eq!(
            e,
            SecretError::Refused {
                arn: ARN.into(),
                code: "AccessDeniedException".into()
            }
        );
        assert!(e.to_string().contains("GetSecretValue"));
    }
}
