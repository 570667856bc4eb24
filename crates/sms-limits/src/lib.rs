//! SMS abuse limits that hold across every Lambda instance.
//!
//! SMS costs money per message, and "SMS pumping" makes a pool send codes to
//! premium-rate numbers by scripted sign-ups, resends and sign-ins. Limits
//! kept in one instance's memory do nothing against that (Lambda runs many
//! instances), so the counters live in one DynamoDB table and every change is
//! a conditional, atomic write ([`DynamoLimiter`]); [`MemoryLimiter`] has the
//! same semantics in memory for replay and tests.
//!
//! Before a send, [`Limiter::admit`]:
//! 1. records the send under a key derived from the event (no duplicate
//!    sends when Lambda or Cognito retries it); an unexpired record means
//!    the send was made already: [`Admission::Duplicate`];
//! 2. counts it against the per-phone, per-user and per-pool limits, in that
//!    order, each a conditional `ADD` that fails once the window's count is
//!    reached: [`Admission::Limited`]. A refused send may still have counted
//!    against the limits checked before the one that refused it (never
//!    against later ones): the error is on the safe side.
//!
//! Windows are fixed and aligned to the epoch (see [`LimitSpec`]); a burst at
//! a window's edge can therefore reach twice a limit over any sliding span of
//! one window. The table holds no phone number or username in the clear:
//! keys use their SHA-256.

mod dynamo;
pub mod gate;
mod memory;
pub mod spec;

use std::future::Future;

use sha2::{Digest, Sha256};
use thiserror::Error;

pub use dynamo::DynamoLimiter;
pub use gate::{FailMode, Refusal, SendGate, Verdict};
pub use memory::MemoryLimiter;
pub use phone_country::CountryPolicy;
pub use spec::{LimitConfigError, LimitKind, LimitSpec, Limits};

/// How long a custom-sender send is remembered for de-duplication: longer
/// than Lambda's retries of an asynchronous event under the template's
/// 3-minute event age.
pub const DEDUP_TTL_SECS: u64 = 15 * 60;
/// Grace after a counter's window ends before DynamoDB's TTL may delete it.
pub const EXPIRY_GRACE_SECS: u64 = 60;

/// One SMS about to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub pool: &'a str,
    pub user: &'a str,
    pub phone: &'a str,
    /// The same for every retry of one event, different for every other
    /// ([`dedup_key`]); `None` sends without de-duplication.
    pub dedup: Option<String>,
    /// How long the de-duplication record holds, in seconds.
    pub dedup_ttl: u64,
    /// Kept with the de-duplication record and handed back to a duplicate
    /// (create-auth-challenge keeps the code's stamp there, so a retry
    /// answers with the code already sent).
    pub memo: Option<String>,
    /// Unix seconds.
    pub now: u64,
}

/// What [`Limiter::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted: send it.
    Send,
    /// This limit's window is full: send nothing.
    Limited(LimitKind, LimitSpec),
    /// The same event was sent already: send nothing.
    Duplicate { memo: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimiterError {
    /// DynamoDB could not be reached or answered with an error after the
    /// bounded retries; the caller decides to fail open or closed.
    #[error("the SMS limits table could not be used: {0}")]
    Unavailable(String),
}

/// The limits' store.
pub trait Limiter: Sync {
    /// The configured limits.
    fn limits(&self) -> &Limits;

    /// Records and counts one send (see the crate docs).
    fn admit(
        &self,
        out: &Outgoing<'_>,
    ) -> impl Future<Output = Result<Admission, LimiterError>> + Send;

    /// Drops the de-duplication record of a send that was refused or failed,
    /// so that a retry of the event is judged again.
    fn forget(&self, out: &Outgoing<'_>) -> impl Future<Output = Result<(), LimiterError>> + Send;

    /// Wrong one-time codes of the user in the current window of
    /// `CODE_FAILURES_PER_USER` (0 without that limit).
    fn code_failures(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> impl Future<Output = Result<u32, LimiterError>> + Send;

    /// Counts one wrong code; returns the window's count after it.
    fn record_code_failure(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> impl Future<Output = Result<u32, LimiterError>> + Send;
}

/// Whether `failures` wrong codes lock the user out under `limits`.
pub fn is_locked_out(limits: &Limits, failures: u32) -> bool {
    limits
        .code_failures_per_user
        .is_some_and(|spec| failures >= spec.count)
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The de-duplication key of one event's send: a digest of the pool, the
/// user, the trigger source and what makes the event unique (the encrypted
/// code a custom sender receives; the session a custom challenge is made
/// for).
pub fn dedup_key(pool: &str, user: &str, trigger_source: &str, unique: &str) -> String {
    sha256_hex(&[pool, user, trigger_source, unique])
}

/// The table keys (attribute `pk`).
pub(crate) fn counter_key(kind: LimitKind, out: &Outgoing<'_>, spec: LimitSpec) -> String {
    let subject = match kind {
        LimitKind::Phone => sha256_hex(&["phone", out.phone]),
        LimitKind::User => sha256_hex(&["user", out.pool, out.user]),
        LimitKind::Pool => out.pool.to_owned(),
    };
    format!(
        "{}#{}#{}#{}",
        kind.as_str(),
        subject,
        spec.window_secs,
        spec.window_start(out.now)
    )
}

pub(crate) fn dedup_pk(key: &str) -> String {
    format!("sent#{key}")
}

pub(crate) fn code_failure_key(pool: &str, user: &str, spec: LimitSpec, now: u64) -> String {
    format!(
        "codefail#{}#{}#{}",
        sha256_hex(&["user", pool, user]),
        spec.window_secs,
        spec.window_start(now)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(phone: &'static str, now: u64) -> Outgoing<'static> {
        Outgoing {
            pool: "us-east-1_P",
            user: "alice",
            phone,
            dedup: None,
            memo: None,
            dedup_ttl: DEDUP_TTL_SECS,
            now,
        }
    }

    #[test]
    fn keys_hold_no_phone_or_username_and_change_with_the_window() {
        let spec = LimitSpec::parse("5/15m").unwrap();
        let a = counter_key(LimitKind::Phone, &out("+14155550123", 1_700_000_000), spec);
        assert!(
            !a.contains("4155550123") && a.starts_with("per_phone#"),
            "{a}"
        );
        let u = counter_key(LimitKind::User, &out("+14155550123", 1_700_000_000), spec);
        assert!(!u.contains("alice"), "{u}");
        let later = counter_key(
            LimitKind::Phone,
            &out("+14155550123", 1_700_000_000 + 900),
            spec,
        );
        assert_ne!(a, later);
        let same = counter_key(LimitKind::Phone, &out("+14155550123", 1_700_000_001), spec);
        assert_eq!(a, same);
    }

    #[test]
    fn dedup_keys_separate_their_parts() {
        assert_ne!(
            dedup_key("p", "ab", "c", "d"),
            dedup_key("p", "a", "bc", "d")
        );
        assert_eq!(dedup_key("p", "a", "b", "c"), dedup_key("p", "a", "b", "c"));
    }
}
