//! SMS and email abuse limits that hold across every Lambda instance.
//!
//! SMS costs money per message, and "SMS pumping" makes a pool send codes to
//! premium-rate numbers by scripted sign-ups, resends and sign-ins; "email
//! bombing" floods an inbox with the pool's messages. Each channel has its
//! own limits ([`Channel`]) in the same table. Limits
//! kept in one instance's memory do nothing against that (Lambda runs many
//! instances), so the counters live in one DynamoDB table and every change is
//! conditional and atomic ([`DynamoLimiter`]); [`MemoryLimiter`] has the
//! same semantics in memory for replay and tests.
//!
//! Before a send, [`Limiter::admit`] makes ONE all-or-nothing decision (a
//! DynamoDB transaction, one round trip):
//! - the de-duplication record of the send (no duplicate sends when Lambda
//!   or Cognito retries it); an unexpired record means the send was made
//!   already: [`Admission::Duplicate`], with the record's memo;
//! - the channel's per-destination, per-user and per-pool counters, narrowest first, each a
//!   conditional `ADD` that fails once the window's count is reached:
//!   [`Admission::Limited`] names the narrowest that refused;
//! - for a sign-in code, the user's wrong-code count below the lockout:
//!   [`Admission::LockedOut`].
//!
//! A refused send therefore writes nothing: it takes no budget of any other
//! limit and leaves no record. That is exact under concurrency because
//! DynamoDB transactions are serializable: two instances racing for the last
//! unit of a budget cannot both pass, and a transaction that loses a race is
//! cancelled whole (`TransactionConflict`) and retried, never half applied.
//!
//! The per-destination budget: a number's (or address's) verified holder
//! (`phone_number_verified` / `email_verified` true) has a budget of their own
//! for it, counted per destination and user; every other send to it
//! (unverified holders: phone numbers are not unique) shares its common
//! budget. An account that carries a
//! victim's number can exhaust only the common budget, never the victim's.
//!
//! Windows are fixed and aligned to the epoch (see [`LimitSpec`]); a burst at
//! a window's edge can therefore reach twice a limit over any sliding span of
//! one window. The table holds no phone number, username or pool id in the
//! clear, nor anything that can be reversed into one: every key is an
//! HMAC-SHA256 under the limiter's key ([`challenge_code::HashingSecret`],
//! `LIMIT_KEY_SECRET_ARN`), so a country's numbers cannot be brute-forced
//! from a table dump.

mod dynamo;
pub mod gate;
mod memory;
pub mod spec;

use std::future::Future;

use challenge_code::HashingSecret;
use thiserror::Error;

pub use dynamo::DynamoLimiter;
pub use gate::{FailMode, Refusal, SendGate, Verdict};
pub use memory::MemoryLimiter;
pub use phone_country::CountryPolicy;
pub use spec::{Channel, LimitConfigError, LimitKind, LimitSpec, Limits};

/// How long an allowance (or a held change) lasts: the life of the code
/// Cognito sends to verify a new address (24 hours).
pub const ALLOWANCE_TTL_SECS: u64 = 24 * 3600;
/// How long a held change stays held: as long as a refresh token lives in
/// the template (30 days), so that whoever holds the session cannot ask for
/// the code of a change still pending in Cognito once a day has passed.
pub const HOLD_TTL_SECS: u64 = 30 * 86_400;

/// What a send needs from the account-change records (the `contact#` items:
/// one per pool, user, channel and address, keyed by a keyed hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContactCheck {
    /// Nothing: sign-up and sign-in codes, notices, and every code while
    /// `ACCOUNT_CHANGE` is not `RecentSignIn`.
    #[default]
    None,
    /// A code that verifies a new address (`_UpdateUserAttribute`): only
    /// with an unexpired allowance the account-change API left for this
    /// user and address.
    Allowance,
    /// A verification code asked again (`_VerifyUserAttribute`): refused
    /// while a change to this address is held (a sender refused its
    /// `_UpdateUserAttribute`) and no allowance replaced it. The first
    /// verification of the address a user signed up with has no record and
    /// goes out.
    NotHeld,
}

/// One change through the account-change API: counted against
/// `ACCOUNT_CHANGES_PER_USER` and, for a new address, the allowance that
/// lets the senders deliver its verification code, in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountChange<'a> {
    pub pool: &'a str,
    pub user: &'a str,
    /// The new address and its channel (`None` for an MFA preference).
    pub allowance: Option<(Channel, &'a str)>,
    /// Unix seconds.
    pub now: u64,
}

/// How long a custom-sender send is remembered for de-duplication: longer
/// than Lambda's retries of an asynchronous event under the template's
/// 3-minute event age.
pub const DEDUP_TTL_SECS: u64 = 15 * 60;
/// Grace after a counter's window ends before DynamoDB's TTL may delete it.
pub const EXPIRY_GRACE_SECS: u64 = 60;

/// What a de-duplication record stands for; its key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A custom sender's send of one event (`sent#`).
    Sent,
    /// create-auth-challenge's code for one sign-in (`challenge#`):
    /// verify-auth-challenge deletes it when the code is accepted.
    Challenge,
}

impl RecordKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Challenge => "challenge",
        }
    }
}

/// The de-duplication part of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    pub kind: RecordKind,
    /// The same for every retry of one event, different for every other
    /// (the encrypted code a custom sender receives; the session a custom
    /// challenge is made for). Hashed with the pool, user and phone.
    pub unique: String,
    /// How long the record holds, in seconds.
    pub ttl: u64,
    /// Kept with the record and handed back to a duplicate
    /// (create-auth-challenge keeps the code's stamp there, so Cognito's
    /// retry answers with the code already sent).
    pub memo: Option<String>,
}

/// One message about to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub channel: Channel,
    pub pool: &'a str,
    pub user: &'a str,
    /// The phone number (SMS) or email address.
    pub destination: &'a str,
    /// The user's `phone_number_verified` (SMS) or `email_verified` (email)
    /// is true: the per-destination limit counts this user's own sends to
    /// it, not the common budget.
    pub destination_verified: bool,
    /// `None` sends without de-duplication.
    pub dedup: Option<Dedup>,
    /// What the send needs from the account-change records.
    pub contact: ContactCheck,
    /// Refuse while the user's wrong codes reach `CODE_FAILURES_PER_USER`
    /// (a sign-in code: no new code for a locked-out user).
    pub check_lockout: bool,
    /// Unix seconds.
    pub now: u64,
}

/// What [`Limiter::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted: send it.
    Send,
    /// This limit's window is full (the narrowest that refused): send
    /// nothing. Nothing was counted.
    Limited(LimitKind, LimitSpec),
    /// The same event was sent already: send nothing.
    Duplicate { memo: Option<String> },
    /// The user's wrong codes reached `CODE_FAILURES_PER_USER`: send
    /// nothing. Nothing was counted.
    LockedOut,
    /// A code for a new address that no recent sign-in allowed
    /// ([`ContactCheck`]): send nothing. Nothing was counted.
    ContactChangeRefused,
}

/// A wrong-code attempt reserved before the answer is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Counted as a wrong code until [`Limiter::return_code_attempt`] gives
    /// it back (the answer was right).
    Reserved,
    /// The window's count is reached: the answer must not be checked.
    LockedOut,
    /// No `CODE_FAILURES_PER_USER`: nothing to reserve.
    Unlimited,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimiterError {
    /// DynamoDB could not be reached or answered with an error after the
    /// bounded retries; the caller decides to fail open or closed.
    #[error("the limits table could not be used: {0}")]
    Unavailable(String),
}

/// The limits' store.
pub trait Limiter: Sync {
    /// The configured limits.
    fn limits(&self) -> &Limits;

    /// The table key of `out`'s de-duplication record (`None` without one):
    /// create-auth-challenge hands it to verify, which deletes the record of
    /// an accepted code.
    fn record_key(&self, out: &Outgoing<'_>) -> Option<String>;

    /// Records and counts one send, all or nothing (see the crate docs).
    fn admit(
        &self,
        out: &Outgoing<'_>,
    ) -> impl Future<Output = Result<Admission, LimiterError>> + Send;

    /// Drops the de-duplication record of a send that failed, so that a
    /// retry of the event is judged again.
    fn forget(&self, out: &Outgoing<'_>) -> impl Future<Output = Result<(), LimiterError>> + Send;

    /// Wrong one-time codes of the user in the current window of
    /// `CODE_FAILURES_PER_USER` (0 without that limit).
    fn code_failures(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> impl Future<Output = Result<u32, LimiterError>> + Send;

    /// Counts one wrong code unconditionally; returns the window's count
    /// after it (replay's set-up of earlier failures).
    fn record_code_failure(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> impl Future<Output = Result<u32, LimiterError>> + Send;

    /// Reserves one answer against `CODE_FAILURES_PER_USER` before it is
    /// checked: one conditional `ADD` while the count is below the limit.
    /// Of any number of answers arriving at once, at most the limit's
    /// count are reserved; the others are [`Reservation::LockedOut`].
    fn reserve_code_attempt(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> impl Future<Output = Result<Reservation, LimiterError>> + Send;

    /// The answer reserved at `now` was right: gives the attempt back and,
    /// when `record` names create-auth-challenge's record of the code,
    /// deletes it, so the accepted code is never handed out again. The two
    /// writes go out together.
    fn return_code_attempt(
        &self,
        pool: &str,
        user: &str,
        now: u64,
        record: Option<&str>,
    ) -> impl Future<Output = Result<(), LimiterError>> + Send;

    /// Counts one account change against `ACCOUNT_CHANGES_PER_USER` and
    /// records its allowance, all or nothing: [`Admission::Send`] when
    /// both are written, [`Admission::Limited`] (nothing written) when the
    /// window's count is reached.
    fn change_account(
        &self,
        change: &AccountChange<'_>,
    ) -> impl Future<Output = Result<Admission, LimiterError>> + Send;

    /// Records that a change to `address` was refused (held) for
    /// [`HOLD_TTL_SECS`], unless an unexpired record is there already.
    /// `true` when this call wrote it: the first refusal, whose notice goes
    /// out (later ones while it holds send none).
    fn hold_contact(
        &self,
        channel: Channel,
        pool: &str,
        user: &str,
        address: &str,
        now: u64,
    ) -> impl Future<Output = Result<bool, LimiterError>> + Send;
}

/// The `ACCOUNT_CHANGES_PER_USER` counter of a user, in the window of `now`.
pub(crate) fn account_changes_key(
    key: &HashingSecret,
    pool: &str,
    user: &str,
    spec: LimitSpec,
    now: u64,
) -> String {
    let out = Outgoing {
        channel: Channel::Email,
        pool,
        user,
        destination: "",
        destination_verified: false,
        dedup: None,
        contact: ContactCheck::None,
        check_lockout: false,
        now,
    };
    counter_key(key, LimitKind::AccountChanges, &out, spec)
}

/// The `contact#` item of one user's address.
pub(crate) fn contact_key(
    key: &HashingSecret,
    channel: Channel,
    pool: &str,
    user: &str,
    address: &str,
) -> String {
    format!(
        "contact#{}",
        key.keyed_hex(&["contact", channel.as_str(), pool, user, address])
    )
}

/// The state a `contact#` item holds.
pub(crate) const ALLOWED: &str = "allowed";
pub(crate) const HELD: &str = "held";

/// Whether `failures` wrong codes lock the user out under `limits`.
pub fn is_locked_out(limits: &Limits, failures: u32) -> bool {
    limits
        .code_failures_per_user
        .is_some_and(|spec| failures >= spec.count)
}

/// The table keys (attribute `pk`), all keyed hashes under the limiter's key.
pub(crate) fn counter_key(
    key: &HashingSecret,
    kind: LimitKind,
    out: &Outgoing<'_>,
    spec: LimitSpec,
) -> String {
    let subject = match kind {
        LimitKind::Phone | LimitKind::Address if out.destination_verified => {
            key.keyed_hex(&["destination-holder", out.pool, out.user, out.destination])
        }
        LimitKind::Phone | LimitKind::Address => key.keyed_hex(&["destination", out.destination]),
        LimitKind::User | LimitKind::EmailUser => key.keyed_hex(&["user", out.pool, out.user]),
        LimitKind::Pool | LimitKind::EmailPool => key.keyed_hex(&["pool", out.pool]),
        LimitKind::AccountChanges => key.keyed_hex(&["account-changes", out.pool, out.user]),
    };
    format!(
        "{}#{}#{}#{}",
        kind.key_prefix(),
        subject,
        spec.window_secs,
        spec.window_start(out.now)
    )
}

pub(crate) fn record_pk(key: &HashingSecret, out: &Outgoing<'_>) -> Option<String> {
    let d = out.dedup.as_ref()?;
    Some(format!(
        "{}#{}",
        d.kind.prefix(),
        key.keyed_hex(&[
            d.kind.prefix(),
            out.pool,
            out.user,
            out.destination,
            &d.unique
        ])
    ))
}

/// The prefix of the wrong-code counters (verify-auth-challenge's IAM
/// policy reaches only these and the `challenge#` records).
pub const CODE_FAILURE_PREFIX: &str = "codefail";

pub(crate) fn code_failure_key(
    key: &HashingSecret,
    pool: &str,
    user: &str,
    spec: LimitSpec,
    now: u64,
) -> String {
    format!(
        "{CODE_FAILURE_PREFIX}#{}#{}#{}",
        key.keyed_hex(&["user", pool, user]),
        spec.window_secs,
        spec.window_start(now)
    )
}

/// Whether `pk` is a record key verify may delete (a `challenge#` record).
pub fn is_challenge_record(pk: &str) -> bool {
    pk.strip_prefix("challenge#")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> HashingSecret {
        HashingSecret::new(vec![byte; 32], "test").unwrap()
    }

    fn out(phone: &'static str, verified: bool, now: u64) -> Outgoing<'static> {
        Outgoing {
            channel: Channel::Sms,
            pool: "us-east-1_P",
            user: "alice",
            destination: phone,
            destination_verified: verified,
            dedup: Some(Dedup {
                kind: RecordKind::Challenge,
                unique: "s".into(),
                ttl: 6,
                memo: None,
            }),
            check_lockout: false,
            contact: ContactCheck::None,
            now,
        }
    }

    #[test]
    fn keys_hold_no_phone_username_or_pool_and_change_with_the_window() {
        let k = key(1);
        let spec = LimitSpec::parse("5/15m").unwrap();
        let a = counter_key(
            &k,
            LimitKind::Phone,
            &out("+14155550123", false, 1_700_000_000),
            spec,
        );
        assert!(
            !a.contains("4155550123") && a.starts_with("per_phone#"),
            "{a}"
        );
        let u = counter_key(
            &k,
            LimitKind::User,
            &out("+14155550123", false, 1_700_000_000),
            spec,
        );
        assert!(!u.contains("alice") && !u.contains("us-east-1_P"), "{u}");
        let p = counter_key(
            &k,
            LimitKind::Pool,
            &out("+14155550123", false, 1_700_000_000),
            spec,
        );
        assert!(!p.contains("us-east-1_P"), "{p}");
        let later = counter_key(
            &k,
            LimitKind::Phone,
            &out("+14155550123", false, 1_700_000_000 + 900),
            spec,
        );
        assert_ne!(a, later);
        let same = counter_key(
            &k,
            LimitKind::Phone,
            &out("+14155550123", false, 1_700_000_001),
            spec,
        );
        assert_eq!(a, same);
    }

    #[test]
    fn a_verified_holder_has_a_phone_budget_of_their_own() {
        let k = key(1);
        let spec = LimitSpec::parse("5/15m").unwrap();
        let t = 1_700_000_000;
        let common = counter_key(&k, LimitKind::Phone, &out("+14155550123", false, t), spec);
        let own = counter_key(&k, LimitKind::Phone, &out("+14155550123", true, t), spec);
        assert_ne!(common, own);
        let mut bob = out("+14155550123", true, t);
        bob.user = "bob";
        assert_ne!(own, counter_key(&k, LimitKind::Phone, &bob, spec));
        let mut bob_unverified = out("+14155550123", false, t);
        bob_unverified.user = "bob";
        assert_eq!(
            common,
            counter_key(&k, LimitKind::Phone, &bob_unverified, spec)
        );
    }

    #[test]
    fn email_counters_are_not_sms_counters() {
        let k = key(1);
        let spec = LimitSpec::parse("5/15m").unwrap();
        let sms = out("+14155550123", false, 1);
        let mut email = sms.clone();
        email.channel = Channel::Email;
        assert_ne!(
            counter_key(&k, LimitKind::User, &sms, spec),
            counter_key(&k, LimitKind::EmailUser, &email, spec)
        );
        assert!(
            counter_key(&k, LimitKind::Address, &email, spec).starts_with("email_per_address#")
        );
    }

    #[test]
    fn two_secrets_write_different_keys() {
        let spec = LimitSpec::parse("5/15m").unwrap();
        let o = out("+14155550123", false, 1_700_000_000);
        for kind in [LimitKind::Phone, LimitKind::User, LimitKind::Pool] {
            assert_ne!(
                counter_key(&key(1), kind, &o, spec),
                counter_key(&key(2), kind, &o, spec)
            );
        }
        assert_ne!(record_pk(&key(1), &o), record_pk(&key(2), &o));
        assert_ne!(
            code_failure_key(&key(1), "p", "u", spec, 1),
            code_failure_key(&key(2), "p", "u", spec, 1)
        );
    }

    #[test]
    fn record_keys_name_their_kind_and_the_destination() {
        let k = key(1);
        let o = out("+14155550123", false, 1);
        let r = record_pk(&k, &o).unwrap();
        assert!(is_challenge_record(&r), "{r}");
        let other_phone = out("+14155550124", false, 1);
        assert_ne!(record_pk(&k, &other_phone), Some(r.clone()));
        let mut sent = o.clone();
        sent.dedup.as_mut().unwrap().kind = RecordKind::Sent;
        let s = record_pk(&k, &sent).unwrap();
        assert!(s.starts_with("sent#") && !is_challenge_record(&s));
        assert!(!is_challenge_record("challenge#x"));
        assert!(!is_challenge_record("codefail#00"));
    }
}
