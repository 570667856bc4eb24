//! Decrypting the secret Cognito hands to a custom sender trigger, behind
//! the narrow [`CodeDecryptor`] trait.
//!
//! Cognito encrypts the one-time code (or, for `AdminCreateUser`, the
//! temporary password) with the AWS Encryption SDK under the pool's KMS
//! key: a full ESDK message (format v1, suite
//! AES-256-GCM/HKDF-SHA384/ECDSA-P384), not a bare KMS ciphertext, so a plain
//! KMS `Decrypt` cannot read it. [`EsdkDecryptor`] uses the `aws-esdk` crate
//! (no hand-written crypto) and is strict where it can be:
//!
//! * commitment policy `REQUIRE_ENCRYPT_ALLOW_DECRYPT`: Cognito's suite is
//!   not key-committing, so requiring commitment on decrypt would refuse
//!   every real message; key-committing messages decrypt too;
//! * at most ONE encrypted data key per message: Cognito writes one, and a
//!   hostile message with thousands would make the keyring try (and pay
//!   for) a KMS call per key;
//! * the message's encryption context must name the event's user pool
//!   (`userpool-id`): a code encrypted for another pool under the same key
//!   is refused, and so is a message with no pool at all.
//!
//! The keyring is chosen by the caller: [`EsdkDecryptor::with_kms`] (the
//! Lambda function: a KMS keyring for `KEY_ARN`) or, in the separate
//! `dev-keyring` crate that no Lambda binary links, a raw AES key for local
//! replay. Build either ONCE at init; both hold their clients.
//!
//! Nothing here logs or returns the secret except through [`Secret`], whose
//! `Debug` and `Display` are redacted.

use std::fmt;

use aws_esdk::AwsEncryptionSdkConfig;
use aws_esdk::material_providers::client as mpl_client;
pub use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{EsdkAlgorithmSuiteId, EsdkCommitmentPolicy};
use thiserror::Error;

mod html;

pub use html::html_unescape;

/// The encryption-context key under which Cognito writes the user pool id.
pub const USER_POOL_CONTEXT_KEY: &str = "userpool-id";

/// The variable naming the KMS key of the function (the pool's `KMSKeyID`).
pub const KEY_ARN_VAR: &str = "KEY_ARN";

/// Cognito writes one encrypted data key; more is refused before any KMS call.
pub const MAX_ENCRYPTED_DATA_KEYS: i64 = 1;

/// The largest `request.code` accepted, in base64 characters. Cognito's are
/// under 1 KB (one data key, one short secret, one signature).
pub const MAX_CODE_CHARS: usize = 8 * 1024;

/// The commitment policy every decryptor uses.
pub const COMMITMENT_POLICY: EsdkCommitmentPolicy =
    EsdkCommitmentPolicy::RequireEncryptAllowDecrypt;

/// A decrypted secret: a one-time code or a temporary password. It prints
/// as `<redacted>`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a code could not be decrypted. No variant carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecryptError {
    #[error("request.code is empty")]
    Empty,
    #[error(
        "request.code is {chars} characters long, more than the {MAX_CODE_CHARS} a Cognito code can be"
    )]
    TooLong { chars: usize },
    #[error("request.code is not base64")]
    NotBase64,
    #[error("the code was encrypted for user pool {found}, not for this event's pool {expected}")]
    WrongUserPool { expected: String, found: String },
    #[error(
        "the code's encryption context has no {USER_POOL_CONTEXT_KEY}: it was not encrypted by Cognito for user pool {expected}"
    )]
    NoUserPool { expected: String },
    #[error("the decrypted code is not UTF-8")]
    NotUtf8,
    /// The Encryption SDK refused the message (wrong key, tampered, too
    /// many data keys, a KMS error...). `kind` is the ESDK/KMS error variant.
    #[error("the AWS Encryption SDK could not decrypt the code ({kind}): {detail}")]
    Esdk { kind: String, detail: String },
}

/// The KMS key of the function could not be used at init.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InitError {
    #[error(
        "{KEY_ARN_VAR} is not set: set it to the ARN of the KMS key the user pool encrypts codes with (the pool's KMSKeyID)"
    )]
    MissingKeyArn,
    #[error("{KEY_ARN_VAR} {value:?} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)")]
    InvalidKeyArn { value: String },
    #[error(
        "{KEY_ARN_VAR} {value:?} is an alias ARN: a KMS keyring decrypts only with the key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), which the data key records; use the key's ARN (aws kms describe-key --key-id ALIAS)"
    )]
    AliasKeyArn { value: String },
    #[error("the AWS Encryption SDK could not be set up ({kind}): {detail}")]
    Esdk { kind: String, detail: String },
}

/// Reads `KEY_ARN` from configuration: required, and an ARN (the KMS
/// keyring needs the full key ARN to match the data key on decrypt).
pub fn key_arn_from(
    source: &(impl auth_policy::ConfigSource + ?Sized),
) -> Result<String, InitError> {
    let value = source
        .value(KEY_ARN_VAR)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(InitError::MissingKeyArn)?;
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && !parts[4].is_empty()
        && parts[5].len() > 4;
    if valid && parts[5].starts_with("alias/") {
        return Err(InitError::AliasKeyArn { value });
    }
    if !(valid && parts[5].starts_with("key/")) {
        return Err(InitError::InvalidKeyArn { value });
    }
    Ok(value)
}

/// Decrypts the `request.code` of a custom sender event.
pub trait CodeDecryptor {
    /// Decrypts `code` (base64 of an ESDK message) and checks that it was
    /// encrypted for `user_pool_id`.
    fn decrypt(
        &self,
        code: &str,
        user_pool_id: &str,
    ) -> impl Future<Output = Result<Secret, DecryptError>> + Send;
}

/// A short, log-safe name and text for an ESDK error. The ESDK's messages
/// never contain the plaintext (it failed to produce it); they are cut
/// short because a collection of errors can be very long.
pub fn describe_esdk_error(e: &aws_esdk::types::error::Error) -> (String, String) {
    use aws_esdk::types::error::Error as E;
    let kind = match e {
        E::AwsEncryptionSdkException { .. } => "AwsEncryptionSdkException".to_owned(),
        E::AwsCryptographicPrimitivesError { .. } => "AwsCryptographicPrimitivesError".to_owned(),
        E::AwsCryptographicMaterialProvidersError { error } => {
            let text = format!("{error:?}");
            text.split([' ', '{', '('])
                .next()
                .unwrap_or("MaterialProviders")
                .to_owned()
        }
        E::CollectionOfErrors { .. } => "CollectionOfErrors".to_owned(),
        E::ValidationError(_) => "ValidationError".to_owned(),
        E::Opaque { .. } | E::OpaqueWithText { .. } => "Opaque".to_owned(),
    };
    let mut detail = e.to_string().replace(['\n', '\r'], " ");
    if detail.len() > 400 {
        let mut cut = 400;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    (kind, detail)
}

fn mpl() -> Result<mpl_client::Client, InitError> {
    let config = MaterialProvidersConfig::builder()
        .build()
        .map_err(init_error)?;
    mpl_client::Client::from_conf(config).map_err(init_error)
}

fn init_error(e: impl fmt::Debug) -> InitError {
    let text = format!("{e:?}");
    InitError::Esdk {
        kind: text
            .split([' ', '{', '('])
            .next()
            .unwrap_or("Error")
            .to_owned(),
        detail: text.chars().take(400).collect(),
    }
}

/// [`CodeDecryptor`] with the AWS Encryption SDK and one keyring.
#[derive(Debug, Clone)]
pub struct EsdkDecryptor {
    client: aws_esdk::Client,
    keyring: KeyringRef,
}

impl EsdkDecryptor {
    /// A decryptor over any keyring, with this crate's policy
    /// ([`COMMITMENT_POLICY`], [`MAX_ENCRYPTED_DATA_KEYS`]).
    pub fn new(keyring: KeyringRef) -> Result<Self, InitError> {
        let config = AwsEncryptionSdkConfig::builder()
            .commitment_policy(COMMITMENT_POLICY)
            .max_encrypted_data_keys(MAX_ENCRYPTED_DATA_KEYS)
            .build()
            .map_err(init_error)?;
        let client = aws_esdk::Client::from_conf(config).map_err(init_error)?;
        Ok(Self { client, keyring })
    }

    /// The Lambda function's decryptor: a KMS keyring for `key_arn` using
    /// `kms` (built from the shared SDK configuration, so it has the
    /// function's timeouts and honours `AWS_ENDPOINT_URL`).
    pub async fn with_kms(kms: aws_sdk_kms::Client, key_arn: &str) -> Result<Self, InitError> {
        let keyring = kms_keyring(kms, key_arn).await?;
        Self::new(keyring)
    }

    /// The keyring, to encrypt test messages the way Cognito does.
    pub fn keyring(&self) -> &KeyringRef {
        &self.keyring
    }
}

/// A KMS client for the Encryption SDK from a configuration whose requests
/// run on the caller's runtime: `sdk`'s, with its requests and timeouts moved
/// to `sdk_config`'s long-lived I/O thread.
///
/// The Encryption SDK calls KMS on a runtime of its own that lives for one
/// call (see `sdk_config::io_thread`); a plain client would open a new
/// connection, on AWS a new TLS handshake, for every message. This one keeps
/// its connection pooled across invocations and never needs the caller's
/// runtime to make progress, so it cannot deadlock it. (The Lambda function
/// builds every client from `sdk_config::for_function_on_io_thread`, which
/// does the same for all of them, and uses a plain `Client::new`.)
pub fn kms_client_for_esdk(sdk: &sdk_config::aws_config::SdkConfig) -> aws_sdk_kms::Client {
    let http = sdk.http_client().unwrap_or_else(|| {
        sdk_config::trust::https_client(&sdk_config::Trust::SdkDefault {
            why: "the configuration has no HTTP client".to_owned(),
        })
    });
    let config = aws_sdk_kms::config::Builder::from(sdk)
        .sleep_impl(sdk_config::IoThreadSleep)
        .http_client(sdk_config::on_io_thread(http))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// A KMS keyring for one key (what Cognito's messages are wrapped with).
pub async fn kms_keyring(kms: aws_sdk_kms::Client, key_arn: &str) -> Result<KeyringRef, InitError> {
    mpl()?
        .create_aws_kms_keyring()
        .kms_key_id(key_arn)
        .kms_client(kms)
        .send()
        .await
        .map_err(init_error)
}

/// Decodes `request.code` (standard base64, whitespace tolerated).
pub fn decode_code(code: &str) -> Result<Vec<u8>, DecryptError> {
    let trimmed: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if trimmed.is_empty() {
        return Err(DecryptError::Empty);
    }
    if trimmed.len() > MAX_CODE_CHARS {
        return Err(DecryptError::TooLong {
            chars: trimmed.len(),
        });
    }
    match aws_smithy_types::base64::decode(&trimmed) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(DecryptError::NotBase64),
    }
}

/// Checks the decrypted message's encryption context names `expected`.
pub fn check_user_pool(
    context: Option<&std::collections::HashMap<String, String>>,
    expected: &str,
) -> Result<(), DecryptError> {
    match context.and_then(|c| c.get(USER_POOL_CONTEXT_KEY)) {
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(DecryptError::WrongUserPool {
            expected: expected.to_owned(),
            found: found.clone(),
        }),
        None => Err(DecryptError::NoUserPool {
            expected: expected.to_owned(),
        }),
    }
}

impl CodeDecryptor for EsdkDecryptor {
    async fn decrypt(&self, code: &str, user_pool_id: &str) -> Result<Secret, DecryptError> {
        let bytes = decode_code(code)?;
        let out = self
            .client
            .decrypt()
            .ciphertext(bytes)
            .keyring(self.keyring.clone())
            .send()
            .await
            .map_err(|e| {
                let (kind, detail) = describe_esdk_error(&e);
                DecryptError::Esdk { kind, detail }
            })?;
        // The plaintext is dropped unread when the pool does not match.
        check_user_pool(out.encryption_context.as_ref(), user_pool_id)?;
        let plaintext = out.plaintext.map(|b| b.into_inner()).unwrap_or_default();
        let text = String::from_utf8(plaintext).map_err(|_| DecryptError::NotUtf8)?;
        Ok(Secret(text))
    }
}

/// How a test or the event generator encrypts a secret the way Cognito
/// does: format v1, suite [`COGNITO_SUITE`], commitment policy
/// `FORBID_ENCRYPT_ALLOW_DECRYPT` (the only policy that writes that suite),
/// encryption context `{userpool-id: <pool>}`. `committing = true` makes a
/// key-committing (format v2) message instead, to show those decrypt too.
pub async fn encrypt_like_cognito(
    keyring: &KeyringRef,
    plaintext: &str,
    user_pool_id: &str,
    committing: bool,
) -> Result<Vec<u8>, InitError> {
    let (policy, suite) = if committing {
        (
            EsdkCommitmentPolicy::RequireEncryptRequireDecrypt,
            EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384,
        )
    } else {
        (
            EsdkCommitmentPolicy::ForbidEncryptAllowDecrypt,
            COGNITO_SUITE,
        )
    };
    let config = AwsEncryptionSdkConfig::builder()
        .commitment_policy(policy)
        .build()
        .map_err(init_error)?;
    let client = aws_esdk::Client::from_conf(config).map_err(init_error)?;
    let context = std::collections::HashMap::from([(
        USER_POOL_CONTEXT_KEY.to_owned(),
        user_pool_id.to_owned(),
    )]);
    let out = client
        .encrypt()
        .plaintext(plaintext.as_bytes().to_vec())
        .keyring(keyring.clone())
        .encryption_context(context)
        .algorithm_suite_id(suite)
        .send()
        .await
        .map_err(init_error)?;
    Ok(out.ciphertext.map(|b| b.into_inner()).unwrap_or_default())
}

/// The suite Cognito encrypts with (not key-committing, signed).
pub const COGNITO_SUITE: EsdkAlgorithmSuiteId =
    EsdkAlgorithmSuiteId::AlgAes256GcmIv12Tag16HkdfSha384EcdsaP384;

/// Base64 as Cognito writes `request.code`.
pub fn encode_code(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
}
