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
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

pub const SECRET_VAR: &str = "CHALLENGE_SECRET";
pub const SECRET_ARN_VAR: &str = "CHALLENGE_SECRET_ARN";
/// The SMS limiter's key (HMAC of counter and record keys): its own secret,
/// or, when neither variable is set, the challenge secret under its own
/// derivation label.
pub const LIMIT_KEY_VAR: &str = "LIMIT_KEY_SECRET";
pub const LIMIT_KEY_ARN_VAR: &str = "LIMIT_KEY_SECRET_ARN";
pub const MIN_SECRET_BYTES: usize = 32;

/// Which pair of variables names a secret: the value itself (tests, replay)
/// or a Secrets Manager ARN (deployed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretVars {
    pub value: &'static str,
    pub arn: &'static str,
}

/// The one-time code's hashing secret.
pub const CHALLENGE_VARS: SecretVars = SecretVars {
    value: SECRET_VAR,
    arn: SECRET_ARN_VAR,
};
/// The limiter's own key.
pub const LIMIT_KEY_VARS: SecretVars = SecretVars {
    value: LIMIT_KEY_VAR,
    arn: LIMIT_KEY_ARN_VAR,
};

/// The derivation label of the limiter's key when it comes from the
/// challenge secret: the two uses never share a key.
pub const LIMIT_KEY_LABEL: &str = "cognito-mfa-triggers/limit-keys/v1";

/// Why there is no usable secret. Messages name the variable and say what
/// to do; they never contain the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error(
        "no hashing secret: set {} to the ARN of a Secrets Manager secret (deployed) or {} to the value (tests, replay)",
        .0.arn, .0.value
    )]
    Missing(SecretVars),
    #[error("set only one of {} and {}, not both", .0.arn, .0.value)]
    Both(SecretVars),
    #[error(
        "{source_name}: the hashing secret has {len} bytes; it needs at least {MIN_SECRET_BYTES} (e.g. 64 random characters)"
    )]
    TooShort { source_name: String, len: usize },
    #[error(
        "{var}={arn}: Secrets Manager refused GetSecretValue: {code} (check the ARN and the function's secretsmanager:GetSecretValue permission)"
    )]
    Refused {
        var: &'static str,
        arn: String,
        code: String,
    },
    #[error("{var}={arn}: Secrets Manager could not be reached: {reason}")]
    Unreachable {
        var: &'static str,
        arn: String,
        reason: String,
    },
    #[error("{var}={arn}: the secret has neither SecretString nor SecretBinary")]
    Empty { var: &'static str, arn: String },
    #[error(
        "CHALLENGE_SECRET_CACHE_SECONDS={value:?} is not valid: expected seconds from 0 to 3600 (default 300)"
    )]
    BadCache { value: String },
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

    /// A key of its own for another use: HMAC-SHA256 of `label` under this
    /// secret. Keys derived under different labels are unrelated.
    pub fn derive(&self, label: &str) -> Self {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return Self(Zeroizing::new(vec![0; 32])),
        };
        mac.update(label.as_bytes());
        Self(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
    }

    /// HMAC-SHA256 of `parts` (each length-prefixed, so no two lists share an
    /// encoding), as lower-case hex: a key that cannot be reversed into the
    /// phone number or name it was made from without the secret.
    pub fn keyed_hex(&self, parts: &[&str]) -> String {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
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
        Self::from_value_vars(CHALLENGE_VARS, source)
    }

    fn from_value_vars(
        vars: SecretVars,
        source: &(impl ConfigSource + ?Sized),
    ) -> Result<Self, SecretError> {
        let arn = Self::read(source, vars.arn);
        match (arn, Self::read(source, vars.value)) {
            (Some(_), Some(_)) => Err(SecretError::Both(vars)),
            (_, Some(value)) => Self::new(value.trim().as_bytes().to_vec(), vars.value),
            _ => Err(SecretError::Missing(vars)),
        }
    }

    /// Loads the secret from wherever the environment says; with
    /// `CHALLENGE_SECRET_ARN`, builds a Secrets Manager client with the
    /// synchronous-trigger time budget and reads the secret once.
    pub async fn load(source: &(impl ConfigSource + ?Sized)) -> Result<Self, SecretError> {
        Self::load_inner(CHALLENGE_VARS, source, None).await
    }

    /// Like [`load`](Self::load), with the function's shared SDK
    /// configuration (create builds one anyway, for SNS).
    pub async fn load_with(
        source: &(impl ConfigSource + ?Sized),
        config: &sdk_config::aws_config::SdkConfig,
    ) -> Result<Self, SecretError> {
        Self::load_inner(CHALLENGE_VARS, source, Some(config)).await
    }

    /// The SMS limiter's key: `LIMIT_KEY_SECRET_ARN` / `LIMIT_KEY_SECRET`
    /// when either is set, else the challenge secret
    /// (`CHALLENGE_SECRET_ARN` / `CHALLENGE_SECRET`) under
    /// [`LIMIT_KEY_LABEL`]. Either way the key is derived, never the secret
    /// itself. With no AWS configuration given, an ARN is an error (replay).
    pub async fn load_limit_key(
        source: &(impl ConfigSource + ?Sized),
        config: Option<&sdk_config::aws_config::SdkConfig>,
    ) -> Result<Self, SecretError> {
        let own = Self::read(source, LIMIT_KEY_VAR).is_some()
            || Self::read(source, LIMIT_KEY_ARN_VAR).is_some();
        let vars = if own { LIMIT_KEY_VARS } else { CHALLENGE_VARS };
        let secret = match config {
            Some(_) => Self::load_inner(vars, source, config).await,
            None => Self::from_value_vars(vars, source),
        }
        .map_err(|e| match e {
            // Name the limiter's own variables: they are the ones to set.
            SecretError::Missing(_) => SecretError::Missing(LIMIT_KEY_VARS),
            other => other,
        })?;
        Ok(secret.derive(LIMIT_KEY_LABEL))
    }

    async fn load_inner(
        vars: SecretVars,
        source: &(impl ConfigSource + ?Sized),
        config: Option<&sdk_config::aws_config::SdkConfig>,
    ) -> Result<Self, SecretError> {
        let arn = Self::read(source, vars.arn);
        match (arn, Self::read(source, vars.value)) {
            (Some(_), Some(_)) => Err(SecretError::Both(vars)),
            (Some(arn), None) => {
                let client = match config {
                    Some(c) => aws_sdk_secretsmanager::Client::new(c),
                    None => aws_sdk_secretsmanager::Client::new(
                        &sdk_config::for_function(sdk_config::Budget::SYNC_TRIGGER).await,
                    ),
                };
                Self::fetch_named(&client, vars.arn, arn.trim()).await
            }
            (None, _) => Self::from_value_vars(vars, source),
        }
    }

    /// GetSecretValue on `arn` (named by `CHALLENGE_SECRET_ARN`).
    pub async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        arn: &str,
    ) -> Result<Self, SecretError> {
        Self::fetch_named(client, SECRET_ARN_VAR, arn).await
    }

    /// GetSecretValue on `arn`, which the variable `var` names: SecretString
    /// as UTF-8 bytes, else SecretBinary.
    pub async fn fetch_named(
        client: &aws_sdk_secretsmanager::Client,
        var: &'static str,
        arn: &str,
    ) -> Result<Self, SecretError> {
        Self::fetch_version(client, var, arn, None).await
    }

    /// [`fetch_named`](Self::fetch_named) of the version holding `stage`
    /// (`AWSPREVIOUS`); a missing one is `Refused` with
    /// `ResourceNotFoundException`.
    pub async fn fetch_stage(
        client: &aws_sdk_secretsmanager::Client,
        var: &'static str,
        arn: &str,
        stage: &str,
    ) -> Result<Self, SecretError> {
        Self::fetch_version(client, var, arn, Some(stage)).await
    }

    async fn fetch_version(
        client: &aws_sdk_secretsmanager::Client,
        var: &'static str,
        arn: &str,
        stage: Option<&str>,
    ) -> Result<Self, SecretError> {
        use aws_sdk_secretsmanager::error::SdkError;
        let unreachable = |reason: &str| SecretError::Unreachable {
            var,
            arn: arn.to_owned(),
            reason: reason.to_owned(),
        };
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .set_version_stage(stage.map(ToOwned::to_owned))
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(s) => SecretError::Refused {
                    var,
                    arn: arn.to_owned(),
                    code: s.err().code().unwrap_or("Unknown").to_owned(),
                },
                SdkError::TimeoutError(_) => unreachable("timed out"),
                SdkError::DispatchFailure(_) => unreachable("connection failed"),
                _ => unreachable("unreadable response"),
            })?;
        let source_name = format!("{var}={arn}");
        if let Some(s) = out.secret_string() {
            return Self::new(s.as_bytes().to_vec(), &source_name);
        }
        if let Some(b) = out.secret_binary() {
            return Self::new(b.as_ref().to_vec(), &source_name);
        }
        Err(SecretError::Empty {
            var,
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
        assert_eq!(e, SecretError::Missing(CHALLENGE_VARS));
        assert!(e.to_string().contains(SECRET_ARN_VAR) && e.to_string().contains(SECRET_VAR));
        assert_eq!(
            HashingSecret::load(&[(SECRET_VAR, "  ")][..])
                .await
                .unwrap_err(),
            SecretError::Missing(CHALLENGE_VARS)
        );
        assert_eq!(
            HashingSecret::load(&[(SECRET_VAR, LONG), (SECRET_ARN_VAR, ARN)][..])
                .await
                .unwrap_err(),
            SecretError::Both(CHALLENGE_VARS)
        );
        // Replay's path never reaches AWS.
        assert_eq!(
            HashingSecret::from_value_source(&[(SECRET_ARN_VAR, ARN)][..]).unwrap_err(),
            SecretError::Missing(CHALLENGE_VARS)
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
                var: SECRET_ARN_VAR,
                arn: ARN.into(),
                code: "AccessDeniedException".into()
            }
        );
        assert!(e.to_string().contains("GetSecretValue"));
    }

    #[tokio::test]
    async fn the_limit_key_is_derived_from_its_own_secret_or_the_challenge_secret() {
        const OTHER: &str = "another-long-secret-of-more-than-32-bytes!!";
        let own = HashingSecret::load_limit_key(&[(LIMIT_KEY_VAR, OTHER)][..], None)
            .await
            .unwrap();
        let from_challenge = HashingSecret::load_limit_key(&[(SECRET_VAR, LONG)][..], None)
            .await
            .unwrap();
        let challenge = HashingSecret::load(&[(SECRET_VAR, LONG)][..])
            .await
            .unwrap();
        // Derived: never the challenge secret itself.
        assert_ne!(from_challenge.bytes(), challenge.bytes());
        assert_eq!(
            from_challenge.bytes(),
            challenge.derive(LIMIT_KEY_LABEL).bytes()
        );
        assert_ne!(own.keyed_hex(&["a"]), from_challenge.keyed_hex(&["a"]));
        // Its own variables win over the challenge secret.
        let both =
            HashingSecret::load_limit_key(&[(LIMIT_KEY_VAR, OTHER), (SECRET_VAR, LONG)][..], None)
                .await
                .unwrap();
        assert_eq!(both.bytes(), own.bytes());
        let none: [(&str, &str); 0] = [];
        let e = HashingSecret::load_limit_key(&none[..], None)
            .await
            .unwrap_err();
        assert_eq!(e, SecretError::Missing(LIMIT_KEY_VARS));
        assert!(e.to_string().contains(LIMIT_KEY_ARN_VAR), "{e}");
        let e = HashingSecret::load_limit_key(&[(LIMIT_KEY_VAR, "short")][..], None)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with(LIMIT_KEY_VAR), "{e}");
    }

    #[test]
    fn keyed_hex_separates_parts_and_depends_on_the_key() {
        let a = HashingSecret::new(LONG.as_bytes().to_vec(), "t").unwrap();
        let b = HashingSecret::new(vec![1; 32], "t").unwrap();
        assert_ne!(a.keyed_hex(&["ab", "c"]), a.keyed_hex(&["a", "bc"]));
        assert_eq!(a.keyed_hex(&["x"]), a.keyed_hex(&["x"]));
        assert_ne!(a.keyed_hex(&["x"]), b.keyed_hex(&["x"]));
        assert_eq!(a.keyed_hex(&["x"]).len(), 64);
    }
}
