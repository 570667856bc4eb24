//! The challenge secret across a rotation.
//!
//! Both custom-auth functions hash codes with the secret: create when it
//! issues a code, verify when it checks the answer, possibly in another
//! instance minutes later. Read once at init, a warm instance would keep the
//! old value after a rotation, and a code issued under one value would fail
//! under the other. So a secret named by `CHALLENGE_SECRET_ARN` is read again
//! once its cache time is over (`CHALLENGE_SECRET_CACHE_SECONDS`, 300 by
//! default), with the version before it (Secrets Manager's `AWSPREVIOUS`):
//! codes are issued under the current value and accepted under either. A
//! rotation therefore fails no sign-in as long as the next one waits for
//! the code's lifetime and the cache time. A refresh that fails keeps the
//! values held (logged): the sign-in path never waits on a broken secret
//! store for more than one bounded call. A value given in `CHALLENGE_SECRET`
//! (tests, replay) never changes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_policy::ConfigSource;

use crate::{CodeStamp, HashingSecret, SecretError, Verdict};

/// How long a value read from Secrets Manager is used before it is read
/// again (seconds).
pub const CACHE_VAR: &str = "CHALLENGE_SECRET_CACHE_SECONDS";
pub const DEFAULT_CACHE: Duration = Duration::from_secs(300);

/// The values a code may be checked against: the current one (codes are
/// issued under it) and, after a rotation, the one before.
#[derive(Debug, Clone, Copy)]
pub struct SecretKeys<'a> {
    pub current: &'a HashingSecret,
    pub previous: Option<&'a HashingSecret>,
}

impl<'a> SecretKeys<'a> {
    /// One value, no previous one.
    pub fn single(secret: &'a HashingSecret) -> Self {
        Self {
            current: secret,
            previous: None,
        }
    }

    /// [`CodeStamp::check`] under the current value, then, for a wrong
    /// answer, under the previous one.
    pub fn check(&self, stamp: &CodeStamp, user: &str, answer: Option<&str>, now: u64) -> Verdict {
        match (stamp.check(self.current, user, answer, now), self.previous) {
            (Verdict::Wrong, Some(previous)) => stamp.check(previous, user, answer, now),
            (verdict, _) => verdict,
        }
    }
}

impl<'a> From<&'a HashingSecret> for SecretKeys<'a> {
    fn from(secret: &'a HashingSecret) -> Self {
        Self::single(secret)
    }
}

/// The values held now.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub current: Arc<HashingSecret>,
    pub previous: Option<Arc<HashingSecret>>,
}

impl KeySet {
    pub fn keys(&self) -> SecretKeys<'_> {
        SecretKeys {
            current: &self.current,
            previous: self.previous.as_deref(),
        }
    }
}

#[derive(Debug)]
struct Held {
    set: KeySet,
    read_at: Instant,
}

/// The challenge secret of a function, kept fresh (see the module docs).
#[derive(Debug)]
pub struct RotatingSecret {
    held: Mutex<Held>,
    /// The Secrets Manager client and ARN; `None` for a fixed value.
    source: Option<(aws_sdk_secretsmanager::Client, String)>,
    cache: Duration,
}

impl From<HashingSecret> for RotatingSecret {
    fn from(secret: HashingSecret) -> Self {
        Self::fixed(secret)
    }
}

impl RotatingSecret {
    /// A value that never changes (`CHALLENGE_SECRET`, tests, replay).
    pub fn fixed(secret: HashingSecret) -> Self {
        Self {
            held: Mutex::new(Held {
                set: KeySet {
                    current: Arc::new(secret),
                    previous: None,
                },
                read_at: Instant::now(),
            }),
            source: None,
            cache: Duration::MAX,
        }
    }

    /// The secret the environment names: `CHALLENGE_SECRET` (fixed), or
    /// `CHALLENGE_SECRET_ARN` read now with its previous version, then again
    /// after `CHALLENGE_SECRET_CACHE_SECONDS`. Init fails when the current
    /// value cannot be read; a missing previous version is normal.
    pub async fn load_with(
        source: &(impl ConfigSource + ?Sized),
        config: &sdk_config::aws_config::SdkConfig,
    ) -> Result<Self, SecretError> {
        let cache = match source.value(CACHE_VAR).map(|v| v.trim().to_owned()) {
            None => DEFAULT_CACHE,
            Some(v) if v.is_empty() => DEFAULT_CACHE,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 3600)
                .map(Duration::from_secs)
                .ok_or(SecretError::BadCache {
                    value: v.chars().take(32).collect(),
                })?,
        };
        let arn = source
            .value(crate::SECRET_ARN_VAR)
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        let Some(arn) = arn.filter(|_| {
            source
                .value(crate::SECRET_VAR)
                .is_none_or(|v| v.trim().is_empty())
        }) else {
            return Ok(Self::fixed(HashingSecret::load_with(source, config).await?));
        };
        let client = aws_sdk_secretsmanager::Client::new(config);
        let set = read_both(&client, &arn).await?;
        Ok(Self {
            held: Mutex::new(Held {
                set,
                read_at: Instant::now(),
            }),
            source: Some((client, arn)),
            cache,
        })
    }

    /// [`load_with`](Self::load_with), building the SDK configuration only
    /// when a secret ARN needs it (a fixed value costs the init nothing).
    pub async fn load(source: &(impl ConfigSource + ?Sized)) -> Result<Self, SecretError> {
        let arn = source
            .value(crate::SECRET_ARN_VAR)
            .is_some_and(|a| !a.trim().is_empty());
        if !arn {
            return Ok(Self::fixed(HashingSecret::load(source).await?));
        }
        let config = sdk_config::for_function(sdk_config::Budget::SYNC_TRIGGER).await;
        Self::load_with(source, &config).await
    }

    /// The values to use now, read again first when the cache time is over.
    pub async fn keys(&self) -> KeySet {
        let (set, stale) = {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            (held.set.clone(), held.read_at.elapsed() >= self.cache)
        };
        match (&self.source, stale) {
            (Some((client, arn)), true) => match read_both(client, arn).await {
                Ok(fresh) => {
                    let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    *held = Held {
                        set: fresh.clone(),
                        read_at: Instant::now(),
                    };
                    fresh
                }
                Err(e) => {
                    tracing::warn!(
                        "the challenge secret could not be read again (the values held stay in use): {e}"
                    );
                    // Try again after another cache time, not on every call.
                    let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    held.read_at = Instant::now();
                    set
                }
            },
            _ => set,
        }
    }
}

/// `AWSCURRENT` and `AWSPREVIOUS` at once; no previous version is `None`.
async fn read_both(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<KeySet, SecretError> {
    let (current, previous) = tokio::join!(
        HashingSecret::fetch_named(client, crate::SECRET_ARN_VAR, arn),
        HashingSecret::fetch_stage(client, crate::SECRET_ARN_VAR, arn, "AWSPREVIOUS")
    );
    let previous = match previous {
        Ok(p) => Some(Arc::new(p)),
        Err(SecretError::Refused { code, .. }) if code == "ResourceNotFoundException" => None,
        Err(e) => {
            tracing::warn!("the challenge secret's previous version could not be read: {e}");
            None
        }
    };
    Ok(KeySet {
        current: Arc::new(current?),
        previous,
    })
}
