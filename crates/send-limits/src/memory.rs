//! The limits in memory: the same semantics as the table, for replay and
//! tests (one process only: never a limit for Lambda). One lock makes each
//! decision all or nothing, as the table's transaction does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use challenge_code::HashingSecret;

use crate::{
    ALLOWANCE_TTL_SECS, ALLOWED, AccountChange, Admission, Channel, ContactCheck, HELD, LimitKind,
    Limiter, LimiterError, Limits, Outgoing, Reservation, account_changes_key, code_failure_key,
    contact_key, counter_key, record_pk,
};

#[derive(Debug, Clone, Default)]
struct Entry {
    count: u32,
    expires_at: u64,
    memo: Option<String>,
    /// A `contact#` item's state (`allowed` or `held`).
    state: Option<&'static str>,
}

/// Clones share the same counters.
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    limits: Limits,
    key: Arc<HashingSecret>,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    unavailable: Arc<Mutex<bool>>,
}

/// The in-memory limiter's key when none is given: its keys never leave
/// the process.
const MEMORY_KEY: &[u8] = b"in-memory limiter key, never written anywhere";

impl MemoryLimiter {
    pub fn new(limits: Limits) -> Self {
        // MEMORY_KEY is longer than the 32-byte minimum.
        let key = HashingSecret::new(MEMORY_KEY.to_vec(), "memory")
            .unwrap_or_else(|_| unreachable!("the built-in key is long enough"));
        Self::with_key(limits, key)
    }

    pub fn with_key(limits: Limits, key: HashingSecret) -> Self {
        Self {
            limits,
            key: Arc::new(key),
            entries: Arc::default(),
            unavailable: Arc::default(),
        }
    }

    /// The keys held now (tests: what a table dump would show).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Makes every call fail as an unreachable table would (tests of the
    /// fail-open and fail-closed paths).
    pub fn set_unavailable(&self, unavailable: bool) {
        *self.unavailable.lock().unwrap_or_else(|p| p.into_inner()) = unavailable;
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Entry>>, LimiterError> {
        if *self.unavailable.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(LimiterError::Unavailable(
                "the in-memory table is set unavailable".to_owned(),
            ));
        }
        Ok(self.entries.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Limiter for MemoryLimiter {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn record_key(&self, out: &Outgoing<'_>) -> Option<String> {
        record_pk(&self.key, out)
    }

    async fn admit(&self, out: &Outgoing<'_>) -> Result<Admission, LimiterError> {
        let mut entries = self.lock()?;
        // Every condition first, in the table's order (the account-change
        // record, the lockout, the record, the limits narrowest first); then
        // every write.
        if out.contact != ContactCheck::None {
            let item = entries
                .get(&contact_key(
                    &self.key,
                    out.channel,
                    out.pool,
                    out.user,
                    out.destination,
                ))
                .filter(|e| e.expires_at >= out.now);
            let passes = match out.contact {
                ContactCheck::None => true,
                ContactCheck::Allowance => item.is_some_and(|e| e.state == Some(ALLOWED)),
                ContactCheck::NotHeld => item.is_none_or(|e| e.state == Some(ALLOWED)),
            };
            if !passes {
                return Ok(Admission::ContactChangeRefused);
            }
        }
        if out.check_lockout
            && let Some(spec) = self.limits.code_failures_per_user
            && entries
                .get(&code_failure_key(
                    &self.key, out.pool, out.user, spec, out.now,
                ))
                .is_some_and(|e| e.count >= spec.count)
        {
            return Ok(Admission::LockedOut);
        }
        let record = record_pk(&self.key, out);
        if let Some(pk) = &record
            && let Some(e) = entries.get(pk)
            && e.expires_at >= out.now
        {
            return Ok(Admission::Duplicate {
                memo: e.memo.clone(),
            });
        }
        let counters: Vec<_> = self
            .limits
            .send_limits(out.channel)
            .into_iter()
            .map(|(kind, spec)| (kind, spec, counter_key(&self.key, kind, out, spec)))
            .collect();
        for (kind, spec, key) in &counters {
            if entries.get(key).is_some_and(|e| e.count >= spec.count) {
                return Ok(Admission::Limited(*kind, *spec));
            }
        }
        if let (Some(pk), Some(dedup)) = (record, &out.dedup) {
            entries.insert(
                pk,
                Entry {
                    count: 1,
                    expires_at: out.now + dedup.ttl,
                    memo: dedup.memo.clone(),
                    state: None,
                },
            );
        }
        for (_, spec, key) in counters {
            let e = entries.entry(key).or_default();
            e.count += 1;
            e.expires_at = spec.window_end(out.now);
        }
        Ok(Admission::Send)
    }

    async fn change_account(&self, change: &AccountChange<'_>) -> Result<Admission, LimiterError> {
        let mut entries = self.lock()?;
        let counter = self.limits.account_changes_per_user.map(|spec| {
            (
                spec,
                account_changes_key(&self.key, change.pool, change.user, spec, change.now),
            )
        });
        if let Some((spec, key)) = &counter
            && entries.get(key).is_some_and(|e| e.count >= spec.count)
        {
            return Ok(Admission::Limited(LimitKind::AccountChanges, *spec));
        }
        if let Some((spec, key)) = counter {
            let e = entries.entry(key).or_default();
            e.count += 1;
            e.expires_at = spec.window_end(change.now);
        }
        if let Some((channel, address)) = change.allowance {
            entries.insert(
                contact_key(&self.key, channel, change.pool, change.user, address),
                Entry {
                    expires_at: change.now + ALLOWANCE_TTL_SECS,
                    state: Some(ALLOWED),
                    ..Entry::default()
                },
            );
        }
        Ok(Admission::Send)
    }

    async fn hold_contact(
        &self,
        channel: Channel,
        pool: &str,
        user: &str,
        address: &str,
        now: u64,
    ) -> Result<bool, LimiterError> {
        let mut entries = self.lock()?;
        let key = contact_key(&self.key, channel, pool, user, address);
        if entries.get(&key).is_some_and(|e| e.expires_at >= now) {
            return Ok(false);
        }
        entries.insert(
            key,
            Entry {
                expires_at: now + crate::HOLD_TTL_SECS,
                state: Some(HELD),
                ..Entry::default()
            },
        );
        Ok(true)
    }

    async fn forget(&self, out: &Outgoing<'_>) -> Result<(), LimiterError> {
        if let Some(pk) = record_pk(&self.key, out) {
            self.lock()?.remove(&pk);
        }
        Ok(())
    }

    async fn code_failures(&self, pool: &str, user: &str, now: u64) -> Result<u32, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(0);
        };
        let entries = self.lock()?;
        Ok(entries
            .get(&code_failure_key(&self.key, pool, user, spec, now))
            .map_or(0, |e| e.count))
    }

    async fn record_code_failure(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> Result<u32, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(0);
        };
        let mut entries = self.lock()?;
        let e = entries
            .entry(code_failure_key(&self.key, pool, user, spec, now))
            .or_default();
        e.count += 1;
        e.expires_at = spec.window_end(now);
        Ok(e.count)
    }

    async fn reserve_code_attempt(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> Result<Reservation, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(Reservation::Unlimited);
        };
        let mut entries = self.lock()?;
        let e = entries
            .entry(code_failure_key(&self.key, pool, user, spec, now))
            .or_default();
        if e.count >= spec.count {
            return Ok(Reservation::LockedOut);
        }
        e.count += 1;
        e.expires_at = spec.window_end(now);
        Ok(Reservation::Reserved)
    }

    async fn return_code_attempt(
        &self,
        pool: &str,
        user: &str,
        now: u64,
        record: Option<&str>,
    ) -> Result<(), LimiterError> {
        let mut entries = self.lock()?;
        if let Some(spec) = self.limits.code_failures_per_user
            && let Some(e) = entries.get_mut(&code_failure_key(&self.key, pool, user, spec, now))
        {
            e.count = e.count.saturating_sub(1);
        }
        if let Some(pk) = record.filter(|r| crate::is_challenge_record(r)) {
            entries.remove(pk);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, Dedup, LimitKind, LimitSpec, RecordKind};

    fn limits() -> Limits {
        Limits {
            per_phone: LimitSpec::parse("2/1m"),
            per_user: LimitSpec::parse("3/1h"),
            per_pool: LimitSpec::parse("4/1m"),
            code_failures_per_user: LimitSpec::parse("2/1h"),
            table: Some("t".into()),
            ..Limits::default()
        }
    }

    fn send<'a>(phone: &'a str, user: &'a str, now: u64, dedup: Option<&str>) -> Outgoing<'a> {
        Outgoing {
            pool: "p",
            user,
            channel: Channel::Sms,
            destination: phone,
            destination_verified: false,
            dedup: dedup.map(|d| Dedup {
                kind: RecordKind::Sent,
                unique: d.to_owned(),
                ttl: crate::DEDUP_TTL_SECS,
                memo: Some(format!("memo-{d}")),
            }),
            check_lockout: false,
            contact: ContactCheck::None,
            now,
        }
    }

    #[tokio::test]
    async fn each_limit_refuses_once_its_window_is_full_and_not_before() {
        let l = MemoryLimiter::new(limits());
        let t = 1_700_000_080; // 20 s before a minute boundary (1_700_000_080 % 60 == 40)
        assert_eq!(
            l.admit(&send("+1", "a", t, None)).await,
            Ok(Admission::Send)
        );
        assert_eq!(
            l.admit(&send("+1", "a", t, None)).await,
            Ok(Admission::Send)
        );
        assert_eq!(
            l.admit(&send("+1", "a", t, None)).await,
            Ok(Admission::Limited(
                LimitKind::Phone,
                LimitSpec::parse("2/1m").unwrap()
            ))
        );
        // Another phone, same user: the user's third, then the user limit.
        assert_eq!(
            l.admit(&send("+2", "a", t, None)).await,
            Ok(Admission::Send)
        );
        assert!(matches!(
            l.admit(&send("+3", "a", t, None)).await,
            Ok(Admission::Limited(LimitKind::User, _))
        ));
        // Another user: the pool's fourth, then the pool limit.
        assert_eq!(
            l.admit(&send("+4", "b", t, None)).await,
            Ok(Admission::Send)
        );
        assert!(matches!(
            l.admit(&send("+5", "c", t, None)).await,
            Ok(Admission::Limited(LimitKind::Pool, _))
        ));
        // The next minute's window is empty again for phone and pool.
        assert_eq!(
            l.admit(&send("+1", "d", t + 20, None)).await,
            Ok(Admission::Send)
        );
    }

    #[tokio::test]
    async fn a_refused_send_takes_no_budget_of_any_other_limit() {
        let l = MemoryLimiter::new(Limits {
            per_phone: LimitSpec::parse("1/1h"),
            per_user: LimitSpec::parse("2/1h"),
            per_pool: LimitSpec::parse("100/1h"),
            ..limits()
        });
        let t = 1_700_000_000;
        assert_eq!(
            l.admit(&send("+1", "a", t, None)).await,
            Ok(Admission::Send)
        );
        // Refused by the phone limit: the user's and the pool's budgets
        // must not move.
        for _ in 0..5 {
            assert!(matches!(
                l.admit(&send("+1", "a", t, None)).await,
                Ok(Admission::Limited(LimitKind::Phone, _))
            ));
        }
        // So the user still has one send left, to another number.
        assert_eq!(
            l.admit(&send("+2", "a", t, None)).await,
            Ok(Admission::Send)
        );
        assert!(matches!(
            l.admit(&send("+3", "a", t, None)).await,
            Ok(Admission::Limited(LimitKind::User, _))
        ));
    }

    #[tokio::test]
    async fn the_same_event_is_sent_once_and_a_refused_one_leaves_no_record() {
        let l = MemoryLimiter::new(Limits {
            per_phone: LimitSpec::parse("1/1m"),
            ..limits()
        });
        let t = 1_700_000_000;
        assert_eq!(
            l.admit(&send("+1", "a", t, Some("e1"))).await,
            Ok(Admission::Send)
        );
        assert_eq!(
            l.admit(&send("+1", "a", t + 5, Some("e1"))).await,
            Ok(Admission::Duplicate {
                memo: Some("memo-e1".into())
            })
        );
        // A different event to the same phone is limited, and leaves no
        // record: its retry in the next window is sent.
        assert!(matches!(
            l.admit(&send("+1", "a", t + 5, Some("e2"))).await,
            Ok(Admission::Limited(..))
        ));
        assert_eq!(
            l.admit(&send("+1", "a", t + 60, Some("e2"))).await,
            Ok(Admission::Send)
        );
        // After a failed send, forget drops the record: the retry is judged
        // again (here the phone's one send of the minute is used up).
        l.forget(&send("+1", "a", t + 60, Some("e2")))
            .await
            .unwrap();
        assert!(matches!(
            l.admit(&send("+1", "a", t + 61, Some("e2"))).await,
            Ok(Admission::Limited(LimitKind::Phone, _))
        ));
    }

    #[tokio::test]
    async fn a_verified_holder_keeps_a_budget_an_impostor_cannot_spend() {
        let l = MemoryLimiter::new(Limits {
            per_phone: LimitSpec::parse("5/15m"),
            ..Limits {
                table: Some("t".into()),
                ..Limits::default()
            }
        });
        let t = 1_700_000_000;
        // The attacker's account carries the victim's number, unverified.
        for _ in 0..5 {
            assert_eq!(
                l.admit(&send("+1", "mallory", t, None)).await,
                Ok(Admission::Send)
            );
        }
        assert!(matches!(
            l.admit(&send("+1", "mallory", t, None)).await,
            Ok(Admission::Limited(LimitKind::Phone, _))
        ));
        // Another unverified holder shares the exhausted common budget.
        assert!(matches!(
            l.admit(&send("+1", "trudy", t, None)).await,
            Ok(Admission::Limited(LimitKind::Phone, _))
        ));
        // The verified victim's code still goes out, five times.
        let mut victim = send("+1", "victim", t, None);
        victim.destination_verified = true;
        for _ in 0..5 {
            assert_eq!(l.admit(&victim).await, Ok(Admission::Send));
        }
        assert!(matches!(
            l.admit(&victim).await,
            Ok(Admission::Limited(LimitKind::Phone, _))
        ));
    }

    #[tokio::test]
    async fn a_sign_in_code_is_refused_during_a_lockout_and_counts_nothing() {
        let l = MemoryLimiter::new(limits());
        let t = 1_700_000_000 - 1_700_000_000 % 3600;
        let mut code = send("+1", "a", t, None);
        code.check_lockout = true;
        l.record_code_failure("p", "a", t).await.unwrap();
        assert_eq!(l.admit(&code).await, Ok(Admission::Send));
        l.record_code_failure("p", "a", t).await.unwrap();
        assert_eq!(l.admit(&code).await, Ok(Admission::LockedOut));
        // Without the lockout check (a sign-up code), the same user is sent.
        code.check_lockout = false;
        assert_eq!(l.admit(&code).await, Ok(Admission::Send));
        // Two sends counted, not three: the refused one took nothing (the
        // phone limit is 2/1m).
        assert!(matches!(
            l.admit(&code).await,
            Ok(Admission::Limited(LimitKind::Phone, _))
        ));
    }

    #[tokio::test]
    async fn reservations_stop_at_the_limit_and_a_right_answer_gives_back() {
        let l = MemoryLimiter::new(limits());
        let t = 1_700_000_000 - 1_700_000_000 % 3600;
        assert_eq!(
            l.reserve_code_attempt("p", "a", t).await,
            Ok(Reservation::Reserved)
        );
        assert_eq!(
            l.reserve_code_attempt("p", "a", t + 1).await,
            Ok(Reservation::Reserved)
        );
        assert_eq!(
            l.reserve_code_attempt("p", "a", t + 2).await,
            Ok(Reservation::LockedOut)
        );
        assert_eq!(l.code_failures("p", "a", t).await, Ok(2));
        l.return_code_attempt("p", "a", t + 1, None).await.unwrap();
        assert_eq!(l.code_failures("p", "a", t).await, Ok(1));
        assert_eq!(
            l.reserve_code_attempt("p", "b", t).await,
            Ok(Reservation::Reserved)
        );
        assert_eq!(l.code_failures("p", "a", t + 3600).await, Ok(0));
        let none = MemoryLimiter::new(Limits::default());
        assert_eq!(
            none.reserve_code_attempt("p", "a", t).await,
            Ok(Reservation::Unlimited)
        );
    }

    #[tokio::test]
    async fn an_accepted_code_s_record_is_deleted() {
        let l = MemoryLimiter::new(limits());
        let t = 1_700_000_000;
        let mut o = send("+1", "a", t, Some("s"));
        o.dedup.as_mut().unwrap().kind = RecordKind::Challenge;
        assert_eq!(l.admit(&o).await, Ok(Admission::Send));
        assert!(matches!(l.admit(&o).await, Ok(Admission::Duplicate { .. })));
        let record = l.record_key(&o).unwrap();
        l.return_code_attempt("p", "a", t, Some(&record))
            .await
            .unwrap();
        // No record: the next sign-in's code is a new one, sent and counted.
        assert!(matches!(l.admit(&o).await, Ok(Admission::Send)));
    }

    #[tokio::test]
    async fn an_unavailable_table_is_an_error_not_a_decision() {
        let l = MemoryLimiter::new(limits());
        l.set_unavailable(true);
        assert!(l.admit(&send("+1", "a", 1, None)).await.is_err());
        assert!(l.code_failures("p", "a", 1).await.is_err());
        assert!(l.reserve_code_attempt("p", "a", 1).await.is_err());
    }
}
