//! The one-time code of the custom-auth challenge, and the secret that keys it.
//!
//! The plain code must exist in exactly one place: the SMS. Everything Cognito
//! carries between triggers (`challengeMetadata` in the session,
//! `privateChallengeParameters` for verify) and every log line may be read
//! later by people who must not learn codes, so what travels is a [`CodeStamp`]:
//! an HMAC-SHA256 of the code under a secret only create and verify hold,
//! bound to the user name and the expiry. Six digits have only a million
//! values, so an unkeyed hash would be reversed in a blink; with the key it
//! cannot be.
//!
//! * [`OneTimeCode::generate`]: six digits from the operating system's CSPRNG,
//!   uniform (rejection sampling, no modulo bias).
//! * [`CodeStamp::check`]: constant-time comparison (`subtle`) of the keyed
//!   hash of an answer, with expiry; never panics, whatever the input.
//! * [`HashingSecret::load`]: read once at init, from Secrets Manager
//!   (`CHALLENGE_SECRET_ARN`, deployed) or the environment
//!   (`CHALLENGE_SECRET`, tests and replay); at least 32 bytes.

use std::collections::HashMap;
use std::fmt;

use auth_policy::ConfigSource;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

mod rotation;
mod secret;

pub use rotation::{CACHE_VAR, DEFAULT_CACHE, KeySet, RotatingSecret, SecretKeys};

pub use secret::{
    CHALLENGE_VARS, HashingSecret, LIMIT_KEY_ARN_VAR, LIMIT_KEY_LABEL, LIMIT_KEY_VAR,
    LIMIT_KEY_VARS, MIN_SECRET_BYTES, SECRET_ARN_VAR, SECRET_VAR, SecretError, SecretVars,
};

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
const CODE_SPACE: u32 = 1_000_000;
/// The largest multiple of 10⁶ that fits a u32: draws at or above it are
/// rejected so every code is equally likely.
const UNBIASED_LIMIT: u32 = (u32::MAX / CODE_SPACE) * CODE_SPACE;

/// Prefix of our `challengeMetadata`; also names the format version.
pub const METADATA_PREFIX: &str = "SMS_CODE.v1";
/// Keys of `privateChallengeParameters`.
pub const HASH_PARAM: &str = "codeHash";
pub const EXPIRY_PARAM: &str = "expiresAt";

/// The operating system's random source failed (it does not, on Lambda).
#[derive(Debug, Error)]
#[error("the system random number generator failed: {0}")]
pub struct RandomError(String);

/// A freshly drawn code. Its `Debug` shows no digits, and the memory is wiped
/// on drop.
pub struct OneTimeCode(Zeroizing<String>);

impl OneTimeCode {
    /// Six uniformly random digits from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        loop {
            let draw = getrandom::u32().map_err(|e| RandomError(e.to_string()))?;
            if draw < UNBIASED_LIMIT {
                return Ok(Self(Zeroizing::new(format!("{:06}", draw % CODE_SPACE))));
            }
        }
    }

    /// The digits: for the SMS text and nothing else.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(******)")
    }
}

/// The keyed hash of a code with its expiry: what may be stored and logged.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeStamp {
    hash: [u8; 32],
    /// Unix seconds after which the code is no longer accepted.
    pub expires_at: u64,
}

impl fmt::Debug for CodeStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeStamp")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The outcome of checking an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    Wrong,
    /// The code's time is over (the answer is not even looked at).
    Expired,
    /// No answer, or not six digits.
    Malformed,
}

fn keyed_hash(secret: &HashingSecret, user: &str, expires_at: u64, code: &str) -> [u8; 32] {
    // `new_from_slice` accepts any key length for HMAC; the secret is ≥ 32 bytes.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.bytes()) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    // Length-prefixed fields: no two inputs share an encoding.
    mac.update(METADATA_PREFIX.as_bytes());
    for field in [
        user.as_bytes(),
        expires_at.to_string().as_bytes(),
        code.as_bytes(),
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(mac.finalize().into_bytes().as_slice());
    out
}

fn normalize(answer: &str) -> Option<&str> {
    let a = answer.trim();
    (a.len() == CODE_DIGITS && a.bytes().all(|b| b.is_ascii_digit())).then_some(a)
}

impl CodeStamp {
    /// Stamps `code` for `user` (the event's `userName`), valid for `ttl`
    /// seconds from `now`.
    pub fn issue(
        secret: &HashingSecret,
        user: &str,
        code: &OneTimeCode,
        now: u64,
        ttl: u32,
    ) -> Self {
        let expires_at = now.saturating_add(u64::from(ttl));
        Self {
            hash: keyed_hash(secret, user, expires_at, code.reveal()),
            expires_at,
        }
    }

    /// A stamp no answer matches (expired, zero hash): checked in place of a
    /// missing one so that every refusal costs the same work.
    pub fn placeholder() -> Self {
        Self {
            hash: [0; 32],
            expires_at: 0,
        }
    }

    /// Whether the code is still accepted at `now`.
    pub fn is_valid_at(&self, now: u64) -> bool {
        now < self.expires_at
    }

    /// Checks `answer` in constant time. The hash is computed whatever the
    /// verdict, so the three refusals take as long as a wrong answer.
    pub fn check(
        &self,
        secret: &HashingSecret,
        user: &str,
        answer: Option<&str>,
        now: u64,
    ) -> Verdict {
        let normalized = answer.and_then(normalize);
        let candidate = keyed_hash(
            secret,
            user,
            self.expires_at,
            normalized.unwrap_or("------"),
        );
        let equal: bool = candidate.ct_eq(&self.hash).into();
        if !self.is_valid_at(now) {
            Verdict::Expired
        } else if normalized.is_none() {
            Verdict::Malformed
        } else if equal {
            Verdict::Correct
        } else {
            Verdict::Wrong
        }
    }

    /// `SMS_CODE.v1.<expires_at>.<hex hash>`: the `challengeMetadata`, which
    /// Cognito hands back in the session so a retry can reuse the code.
    pub fn to_metadata(&self) -> String {
        format!(
            "{METADATA_PREFIX}.{}.{}",
            self.expires_at,
            hex::encode(self.hash)
        )
    }

    /// Reads [`to_metadata`](Self::to_metadata)'s format; `None` for
    /// anything else.
    pub fn from_metadata(metadata: &str) -> Option<Self> {
        let rest = metadata.strip_prefix(METADATA_PREFIX)?.strip_prefix('.')?;
        let (expiry, hash) = rest.split_once('.')?;
        Self::from_parts(expiry, hash)
    }

    /// The `privateChallengeParameters` verify reads (never empty).
    pub fn private_parameters(&self) -> HashMap<String, String> {
        HashMap::from([
            (HASH_PARAM.to_owned(), hex::encode(self.hash)),
            (EXPIRY_PARAM.to_owned(), self.expires_at.to_string()),
        ])
    }

    /// Reads [`private_parameters`](Self::private_parameters); `None` when a
    /// key is missing or malformed.
    pub fn from_private_parameters(params: &HashMap<String, String>) -> Option<Self> {
        Self::from_parts(params.get(EXPIRY_PARAM)?, params.get(HASH_PARAM)?)
    }

    fn from_parts(expiry: &str, hash: &str) -> Option<Self> {
        if !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let expires_at = expiry.parse().ok()?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hash, &mut out).ok()?;
        Some(Self {
            hash: out,
            expires_at,
        })
    }
}

/// What create does for this challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodePlan {
    /// A retry after a wrong answer while the code is still valid: the same
    /// stamp, no SMS.
    Reuse(CodeStamp),
    /// A new code (and an SMS): first challenge of the session, an expired
    /// code, or no readable stamp in the previous entry.
    Fresh,
}

/// Decides between reusing and renewing, from the session's last entry: its
/// `challengeName`, `challengeResult` and `challengeMetadata`.
pub fn plan(last: Option<(Option<&str>, bool, Option<&str>)>, now: u64) -> CodePlan {
    match last {
        Some((Some("CUSTOM_CHALLENGE"), false, Some(metadata))) => {
            match CodeStamp::from_metadata(metadata) {
                Some(stamp) if stamp.is_valid_at(now) => CodePlan::Reuse(stamp),
                _ => CodePlan::Fresh,
            }
        }
        _ => CodePlan::Fresh,
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads `CHALLENGE_SECRET` only (no AWS): for replay and tests.
pub fn secret_from_env_only(
    source: &(impl ConfigSource + ?Sized),
) -> Result<HashingSecret, SecretError> {
    HashingSecret::from_value_source(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> HashingSecret {
        HashingSecret::new(b"0123456789abcdef0123456789abcdef".to_vec(), SECRET_VAR).unwrap()
    }

    fn code(digits: &str) -> OneTimeCode {
        OneTimeCode(Zeroizing::new(digits.to_owned()))
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let c = OneTimeCode::generate().unwrap();
            assert_eq!(c.reveal().len(), 6);
            assert!(c.reveal().bytes().all(|b| b.is_ascii_digit()));
            seen.insert(c.reveal().to_owned());
        }
        // 200 draws from 10⁶ values: a collision-free run is overwhelmingly
        // likely; a constant or low-entropy generator would fail this.
        assert!(seen.len() >= 195, "{}", seen.len());
        // Every digit position takes many values.
        for pos in 0..6 {
            let digits: std::collections::HashSet<u8> =
                seen.iter().map(|c| c.as_bytes()[pos]).collect();
            assert!(digits.len() >= 8, "position {pos}: {digits:?}");
        }
    }

    #[test]
    fn debug_never_shows_a_code_or_hash() {
        let c = code("424242");
        assert!(!format!("{c:?}").contains("424242"));
        let s = CodeStamp::issue(&secret(), "u", &c, 1000, 180);
        let d = format!("{s:?}");
        assert!(
            !d.contains("424242") && !d.contains(&hex::encode(s.hash)),
            "{d}"
        );
        assert!(!format!("{:?}", secret()).contains("0123456789abcdef"));
    }

    #[test]
    fn check_verdicts() {
        let sec = secret();
        let s = CodeStamp::issue(&sec, "alice", &code("012345"), 1000, 180);
        assert_eq!(s.expires_at, 1180);
        assert_eq!(
            s.check(&sec, "alice", Some("012345"), 1000),
            Verdict::Correct
        );
        assert_eq!(
            s.check(&sec, "alice", Some(" 012345\n"), 1179),
            Verdict::Correct
        );
        assert_eq!(s.check(&sec, "alice", Some("012346"), 1000), Verdict::Wrong);
        assert_eq!(
            s.check(&sec, "alice", Some("012345"), 1180),
            Verdict::Expired
        );
        assert_eq!(
            s.check(&sec, "alice", Some("012345"), u64::MAX),
            Verdict::Expired
        );
        for bad in [
            None,
            Some(""),
            Some("12345"),
            Some("0123456"),
            Some("01234a"),
            Some("０１２３４５"),
        ] {
            assert_eq!(
                s.check(&sec, "alice", bad, 1000),
                Verdict::Malformed,
                "{bad:?}"
            );
        }
        // Bound to the user and to the secret.
        assert_eq!(s.check(&sec, "bob", Some("012345"), 1000), Verdict::Wrong);
        let other = HashingSecret::new(vec![7u8; 32], SECRET_VAR).unwrap();
        assert_eq!(
            s.check(&other, "alice", Some("012345"), 1000),
            Verdict::Wrong
        );
        // A stamp whose expiry was altered no longer matches its hash.
        let mut moved = s.clone();
        moved.expires_at += 600;
        assert_eq!(
            moved.check(&sec, "alice", Some("012345"), 1000),
            Verdict::Wrong
        );
    }

    #[test]
    fn metadata_and_parameters_round_trip_and_hold_no_code() {
        let sec = secret();
        let s = CodeStamp::issue(&sec, "alice", &code("987654"), 1_700_000_000, 180);
        let m = s.to_metadata();
        assert!(m.starts_with("SMS_CODE.v1.1700000180."), "{m}");
        assert!(!m.contains("987654"));
        assert_eq!(CodeStamp::from_metadata(&m), Some(s.clone()));
        let p = s.private_parameters();
        assert!(!p.is_empty());
        assert!(p.values().all(|v| !v.contains("987654")));
        assert_eq!(CodeStamp::from_private_parameters(&p), Some(s));
    }

    #[test]
    fn malformed_stamps_are_none() {
        let h = "ab".repeat(32);
        for bad in [
            String::new(),
            "CODE".into(),
            format!("SMS_CODE.v1.12.{}", "ab".repeat(31)),
            format!("SMS_CODE.v1.-12.{h}"),
            format!("SMS_CODE.v1.+12.{h}"),
            format!("SMS_CODE.v1..{h}"),
            format!("SMS_CODE.v2.12.{h}"),
            format!("SMS_CODE.v1.12.{h}zz"),
            format!("SMS_CODE.v1.99999999999999999999999.{h}"),
        ] {
            assert_eq!(CodeStamp::from_metadata(&bad), None, "{bad}");
        }
        let mut p = HashMap::new();
        assert_eq!(CodeStamp::from_private_parameters(&p), None);
        p.insert(HASH_PARAM.to_owned(), h);
        assert_eq!(CodeStamp::from_private_parameters(&p), None);
        p.insert(EXPIRY_PARAM.to_owned(), "soon".into());
        assert_eq!(CodeStamp::from_private_parameters(&p), None);
    }

    #[test]
    fn the_placeholder_accepts_nothing() {
        let p = CodeStamp::placeholder();
        for now in [0, 1, 1000] {
            assert_ne!(
                p.check(&secret(), "u", Some("000000"), now),
                Verdict::Correct
            );
        }
    }

    #[test]
    fn plan_reuses_only_a_valid_stamp_after_a_wrong_code() {
        let s = CodeStamp::issue(&secret(), "u", &code("111111"), 1000, 180);
        let m = s.to_metadata();
        let cc = Some("CUSTOM_CHALLENGE");
        assert_eq!(plan(Some((cc, false, Some(&m))), 1179), CodePlan::Reuse(s));
        assert_eq!(plan(Some((cc, false, Some(&m))), 1180), CodePlan::Fresh);
        assert_eq!(plan(Some((cc, true, Some(&m))), 1000), CodePlan::Fresh);
        assert_eq!(plan(Some((cc, false, Some("x"))), 1000), CodePlan::Fresh);
        assert_eq!(plan(Some((cc, false, None)), 1000), CodePlan::Fresh);
        assert_eq!(
            plan(Some((Some("PASSWORD_VERIFIER"), true, Some(&m))), 1000),
            CodePlan::Fresh
        );
        assert_eq!(plan(None, 1000), CodePlan::Fresh);
    }

    proptest! {
        #[test]
        fn check_never_panics_and_accepts_only_the_code(
            answer in proptest::option::of(".{0,12}"),
            digits in 0u32..1_000_000,
            now in 0u64..2000,
            user in ".{0,20}",
        ) {
            let sec = secret();
            let c = code(&format!("{digits:06}"));
            let s = CodeStamp::issue(&sec, &user, &c, 1000, 180);
            let v = s.check(&sec, &user, answer.as_deref(), now);
            if v == Verdict::Correct {
                prop_assert_eq!(answer.as_deref().map(str::trim), Some(c.reveal()));
                prop_assert!(now < 1180);
            }
            prop_assert_eq!(s.check(&sec, &user, Some(c.reveal()), now) == Verdict::Correct, now < 1180);
        }

        #[test]
        fn whatever_metadata_parses_round_trips(m in "SMS_CODE\\.v1\\.[0-9]{0,21}\\.[0-9a-fA-F]{63,65}") {
            if let Some(s) = CodeStamp::from_metadata(&m) {
                prop_assert_eq!(CodeStamp::from_metadata(&s.to_metadata()), Some(s));
            }
        }
    }
}
