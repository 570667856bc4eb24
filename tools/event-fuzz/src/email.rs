//! The custom email sender's entry point, set up once per seed.
//!
//! `replay`'s dispatch builds everything afresh for every event and decrypts
//! each code twice (once more to hide it in what it prints), which is right
//! for a handful of samples and doubled the run time of a fuzz run. Here the
//! handler gets the same dependencies as replay gives it, built where they
//! may be shared: the development keyring once, each seed's templates once;
//! the email outbox (`email_delivery::Outbox`) and the in-memory limiter,
//! which keep state, fresh for every execution. The seed's replay settings
//! (`REPLAY_EMAIL_SENT_BEFORE`, `REPLAY_LIMITS_UNAVAILABLE`,
//! `REPLAY_DELIVER_TWICE`) mean what they mean to replay.
//!
//! Decrypting (the Encryption SDK, unoptimized in the dev profile that
//! `scripts/test` runs) is most of an execution's time, and most executions
//! carry a seed's code unchanged: the decryptor's answers are kept per code
//! and pool ([`Memo`]), so each distinct ciphertext, mutated ones included,
//! still goes through the Encryption SDK once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result};
use code_decrypt::{CodeDecryptor, DecryptError, EsdkDecryptor, Secret};
use custom_email_sender::Deps;
use email_delivery::Outbox;
use replay::dispatch::{REPLAY_DELIVER_TWICE, REPLAY_EMAIL_SENT_BEFORE, REPLAY_LIMITS_UNAVAILABLE};
use replay::expect::{Failure, Run};
use send_limits::{
    Channel, CountryPolicy, Limiter, Limits, MemoryLimiter, Outgoing, SendGate, spec::TABLE_VAR,
};
use serde_json::Value;

/// The function's folder under `events/` (and its package name).
pub(crate) const FUNCTION: &str = "custom-email-sender";

/// The table name the in-memory limiter gets when a seed names none (the
/// limits need one to be valid configuration), as in replay.
const IN_MEMORY_TABLE: &str = "event-fuzz-in-memory";

type EmailDeps = Deps<Memo, Outbox, MemoryLimiter>;

/// The decryptor's answers, by code and user pool.
type Answers = HashMap<(String, String), Result<Secret, DecryptError>>;

/// The development keyring's decryptor with its answers kept per code and
/// pool: at most [`Memo::CAPACITY`] of them, then it starts afresh, and none
/// for a code longer than a Cognito code can be (refused before the
/// Encryption SDK; the fuzzer's 64 KiB strings would otherwise fill memory).
#[derive(Clone)]
pub(crate) struct Memo {
    inner: EsdkDecryptor,
    answers: Arc<Mutex<Answers>>,
}

impl Memo {
    const CAPACITY: usize = 1024;

    fn new(inner: EsdkDecryptor) -> Self {
        Self {
            inner,
            answers: Arc::default(),
        }
    }

    fn answers(&self) -> MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CodeDecryptor for Memo {
    async fn decrypt(&self, code: &str, user_pool_id: &str) -> Result<Secret, DecryptError> {
        let key = (code.to_owned(), user_pool_id.to_owned());
        if let Some(answer) = self.answers().get(&key) {
            return answer.clone();
        }
        let answer = self.inner.decrypt(code, user_pool_id).await;
        if code.len() > code_decrypt::MAX_CODE_CHARS {
            return answer;
        }
        let mut answers = self.answers();
        if answers.len() >= Self::CAPACITY {
            answers.clear();
        }
        answers.insert(key, answer.clone());
        answer
    }
}

/// One seed's handler set-up: its configuration, and the dependencies
/// that do not change between executions.
pub(crate) struct Seed {
    env: BTreeMap<String, String>,
    /// `Err`: the seed's configuration is refused (every execution of it is).
    deps: Result<EmailDeps, String>,
}

impl Seed {
    /// `decryptor` is the development keyring's, built once for the run.
    pub(crate) fn new(decryptor: &Memo, env: &BTreeMap<String, String>) -> Self {
        let deps = custom_email_sender::templates_from_source(env)
            .map_err(|e| e.to_string())
            .and_then(|templates| {
                Ok(Deps {
                    decryptor: decryptor.clone(),
                    sender: Outbox::new(),
                    templates,
                    gate: SendGate::new(CountryPolicy::default(), Some(limiter(env)?)),
                    contact_guard: None,
                })
            });
        Self {
            env: env.clone(),
            deps,
        }
    }

    /// Runs `event` through the handler as the binary would, with a fresh
    /// outbox and limiter.
    pub(crate) async fn run(&mut self, event: Value) -> Run {
        let deps = match &mut self.deps {
            Ok(deps) => deps,
            Err(e) => return config_failure(e.clone()),
        };
        deps.sender = Outbox::new();
        deps.gate = match primed_gate(&self.env, &event).await {
            Ok(gate) => gate,
            Err(e) => return config_failure(e),
        };
        let twice = self
            .env
            .get(REPLAY_DELIVER_TWICE)
            .is_some_and(|v| v == "true");
        let mut result = custom_email_sender::handle(deps, event.clone()).await;
        if twice && result.is_ok() {
            // Lambda's retry of the same event.
            result = custom_email_sender::handle(deps, event).await;
        }
        Run {
            result: result.map_err(|e| Failure {
                error_type: e.error_type().to_owned(),
                message: e.to_string(),
            }),
            effects: Value::Null,
        }
    }
}

/// The development keyring's decryptor (the samples' codes are encrypted
/// with the repository's raw AES key), its answers kept.
pub(crate) async fn dev_decryptor() -> Result<Memo> {
    dev_keyring::dev_decryptor()
        .await
        .map(Memo::new)
        .context("building the development keyring")
}

fn config_failure(message: String) -> Run {
    Run {
        result: Err(Failure {
            error_type: lambda_host::error_type::INVALID_CONFIGURATION.to_owned(),
            message,
        }),
        effects: Value::Null,
    }
}

/// An empty in-memory limiter with the seed's limits.
fn limiter(env: &BTreeMap<String, String>) -> Result<MemoryLimiter, String> {
    let mut env = env.clone();
    env.entry(TABLE_VAR.to_owned())
        .or_insert_with(|| IN_MEMORY_TABLE.to_owned());
    let limits = Limits::from_source(&env).map_err(|e| e.to_string())?;
    Ok(MemoryLimiter::new(limits))
}

/// The send gate for one execution: a fresh limiter, primed with
/// `REPLAY_EMAIL_SENT_BEFORE` sends to the event's address, unavailable with
/// `REPLAY_LIMITS_UNAVAILABLE`.
async fn primed_gate(
    env: &BTreeMap<String, String>,
    event: &Value,
) -> Result<SendGate<MemoryLimiter>, String> {
    let limiter = limiter(env)?;
    let sent_before: u32 = env
        .get(REPLAY_EMAIL_SENT_BEFORE)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{REPLAY_EMAIL_SENT_BEFORE}: expected a number"))
        })
        .transpose()?
        .unwrap_or_default();
    if sent_before > 0 {
        let text = |pointer: &str| {
            event
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let address = custom_email_sender::limit_key_address(text("/request/userAttributes/email"));
        let verified = match event.pointer("/request/userAttributes/email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(v)) => v.trim().eq_ignore_ascii_case("true"),
            _ => false,
        };
        let before = Outgoing {
            channel: Channel::Email,
            pool: text("/userPoolId"),
            user: text("/userName"),
            destination: &address,
            destination_verified: verified,
            dedup: None,
            check_lockout: false,
            contact: send_limits::ContactCheck::None,
            now: unix_now(),
        };
        for _ in 0..sent_before {
            limiter.admit(&before).await.map_err(|e| e.to_string())?;
        }
    }
    if env
        .get(REPLAY_LIMITS_UNAVAILABLE)
        .is_some_and(|v| v == "true")
    {
        limiter.set_unavailable(true);
    }
    Ok(SendGate::new(CountryPolicy::default(), Some(limiter)))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample of the email sender settles here as it does in replay
    /// (the same outcome and error type), each run twice through its seed:
    /// the second time from the kept decryption, with a fresh limiter.
    #[test]
    fn the_seeds_answer_as_replay_does() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/custom-email-sender");
        let files = replay::collect(&[dir]).unwrap();
        assert!(files.len() >= 10, "{files:?}");
        let decryptor = rt.block_on(dev_decryptor()).unwrap();
        let outcome = |run: &Run| match &run.result {
            Ok(v) => Ok(v["response"]["outcome"].clone()),
            Err(f) => Err(f.error_type.clone()),
        };
        for file in files {
            let sample = replay::Sample::load(&file).unwrap();
            let env = sample
                .expected
                .as_ref()
                .map(|e| e.env.clone())
                .unwrap_or_default();
            let want = rt
                .block_on(replay::dispatch::run_function(
                    FUNCTION,
                    sample.event.clone(),
                    &env,
                ))
                .unwrap();
            let mut seed = Seed::new(&decryptor, &env);
            for _ in 0..2 {
                let got = rt.block_on(seed.run(sample.event.clone()));
                assert_eq!(outcome(&got), outcome(&want), "{}", file.display());
            }
        }
    }
}
