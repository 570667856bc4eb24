//! A DEVELOPMENT keyring: a raw AES-256 key kept in the repository, so that
//! the sample events in `events/custom-sms-sender/` can carry real AWS
//! Encryption SDK ciphertexts that `replay` decrypts without AWS.
//!
//! The key is public: anything encrypted with it is readable by anyone.
//! That is why this is a crate of its own that only `replay`, tests and the
//! `make-sms-events` command depend on, and not a feature of `code-decrypt`
//! (cargo unifies features across a workspace build, so a feature could end
//! up in the Lambda binary). The `custom-sms-sender` binary decrypts with a
//! KMS keyring only; a message made with this key fails there.

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::AesWrappingAlg;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use code_decrypt::{EsdkDecryptor, InitError};

pub mod samples;

/// The raw keyring's namespace and key name (written into every data key
/// it wraps; a KMS keyring ignores such keys).
pub const KEY_NAMESPACE: &str = "cognito-mfa-triggers-development";
pub const KEY_NAME: &str = "replay-only-not-a-secret";

/// The development AES-256 wrapping key. NOT A SECRET: never use it for
/// anything but local samples and tests.
pub const DEV_AES_KEY: [u8; 32] = *b"cognito-mfa-triggers-dev-key-256";

fn esdk_err(e: impl std::fmt::Debug) -> InitError {
    let text = format!("{e:?}");
    InitError::Esdk {
        kind: "RawAesKeyring".to_owned(),
        detail: text.chars().take(400).collect(),
    }
}

/// A raw AES keyring over `key` (the development key, or another one to
/// make a message the development keyring cannot open).
pub async fn raw_aes_keyring(key: [u8; 32]) -> Result<KeyringRef, InitError> {
    let mpl = mpl_client::Client::from_conf(
        MaterialProvidersConfig::builder()
            .build()
            .map_err(esdk_err)?,
    )
    .map_err(esdk_err)?;
    mpl.create_raw_aes_keyring()
        .key_namespace(KEY_NAMESPACE)
        .key_name(KEY_NAME)
        .wrapping_key(key.to_vec())
        .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
        .send()
        .await
        .map_err(esdk_err)
}

/// The development keyring.
pub async fn dev_keyring() -> Result<KeyringRef, InitError> {
    raw_aes_keyring(DEV_AES_KEY).await
}

/// A decryptor with the development keyring and the same policy as the
/// Lambda function's (commitment, one data key, user pool check).
pub async fn dev_decryptor() -> Result<EsdkDecryptor, InitError> {
    EsdkDecryptor::new(dev_keyring().await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use code_decrypt::{CodeDecryptor, DecryptError, encode_code, encrypt_like_cognito};

    const POOL: &str = "us-east-1_EXAMPLE";

    #[tokio::test]
    async fn a_cognito_style_message_decrypts_and_the_pool_is_checked() {
        let keyring = dev_keyring().await.unwrap();
        let d = dev_decryptor().await.unwrap();
        let bytes = encrypt_like_cognito(&keyring, "402918", POOL, false)
            .await
            .unwrap();
        // Format v1 starts with version 0x01, type 0x80, then the suite id 0x0378
        // (AES-256-GCM, HKDF-SHA384, ECDSA-P384): Cognito's format.
        assert_eq!(&bytes[..4], &[0x01, 0x80, 0x03, 0x78]);
        let code = encode_code(&bytes);
        assert_eq!(d.decrypt(&code, POOL).await.unwrap().expose(), "402918");
        let e = d.decrypt(&code, "us-east-1_OTHER").await.unwrap_err();
        assert_eq!(
            e,
            DecryptError::WrongUserPool {
                expected: "us-east-1_OTHER".into(),
                found: POOL.into()
            }
        );
    }

    #[tokio::test]
    async fn key_committing_messages_decrypt_too() {
        let keyring = dev_keyring().await.unwrap();
        let bytes = encrypt_like_cognito(&keyring, "771203", POOL, true)
            .await
            .unwrap();
        // Format v2 (key-committing suites) starts with 0x02 0x05 0x78.
        assert_eq!(&bytes[..3], &[0x02, 0x05, 0x78]);
        let d = dev_decryptor().await.unwrap();
        assert_eq!(
            d.decrypt(&encode_code(&bytes), POOL)
                .await
                .unwrap()
                .expose(),
            "771203"
        );
    }

    #[tokio::test]
    async fn another_key_garbage_and_empty_codes_are_refused() {
        let d = dev_decryptor().await.unwrap();
        let other = raw_aes_keyring([7; 32]).await.unwrap();
        let bytes = encrypt_like_cognito(&other, "402918", POOL, false)
            .await
            .unwrap();
        let e = d.decrypt(&encode_code(&bytes), POOL).await.unwrap_err();
        assert!(matches!(e, DecryptError::Esdk { .. }), "{e:?}");
        assert!(!e.to_string().contains("402918"));
        assert_eq!(
            d.decrypt("not*base64!", POOL).await,
            Err(DecryptError::NotBase64)
        );
        assert_eq!(d.decrypt("  ", POOL).await, Err(DecryptError::Empty));
        let e = d.decrypt(&"A".repeat(9000), POOL).await.unwrap_err();
        assert!(matches!(e, DecryptError::TooLong { chars: 9000 }));
        // Valid base64 that is not an ESDK message.
        let e = d.decrypt("AYADeD0Example==", POOL).await.unwrap_err();
        assert!(
            matches!(e, DecryptError::Esdk { .. } | DecryptError::NotBase64),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_message_with_two_data_keys_is_refused() {
        // Two keyrings in a multi-keyring write two encrypted data keys;
        // Cognito writes one, and the decryptor allows only one.
        let generator = dev_keyring().await.unwrap();
        let child = raw_aes_keyring([9; 32]).await.unwrap();
        let mpl =
            mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build().unwrap())
                .unwrap();
        let multi = mpl
            .create_multi_keyring()
            .generator(generator)
            .child_keyrings(vec![child])
            .send()
            .await
            .unwrap();
        let bytes = encrypt_like_cognito(&multi, "402918", POOL, false)
            .await
            .unwrap();
        let d = dev_decryptor().await.unwrap();
        let e = d.decrypt(&encode_code(&bytes), POOL).await.unwrap_err();
        assert!(matches!(e, DecryptError::Esdk { .. }), "{e:?}");
        // ...while the same message decrypts when it has one data key.
        let single = encrypt_like_cognito(&dev_keyring().await.unwrap(), "402918", POOL, false)
            .await
            .unwrap();
        assert!(d.decrypt(&encode_code(&single), POOL).await.is_ok());
    }

    #[tokio::test]
    async fn a_message_without_a_user_pool_is_refused() {
        let e = code_decrypt::check_user_pool(Some(&Default::default()), POOL).unwrap_err();
        assert_eq!(
            e,
            DecryptError::NoUserPool {
                expected: POOL.into()
            }
        );
        assert!(code_decrypt::check_user_pool(None, POOL).is_err());
    }
}
