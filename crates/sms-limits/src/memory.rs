//! The limits in memory: the same semantics as the table, for replay and
//! tests (one process only: never a limit for Lambda).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{
    Admission, Limiter, LimiterError, Limits, Outgoing, code_failure_key, counter_key, dedup_pk,
};

#[derive(Debug, Clone, Default)]
struct Entry {
    count: u32,
    expires_at: u64,
    memo: Option<String>,
}

/// Clones share the same counters.
#[derive(Debug, Clone, Default)]
pub struct MemoryLimiter {
    limits: Limits,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    unavailable: Arc<Mutex<bool>>,
}

impl MemoryLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
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

    async fn admit(&self, out: &Outgoing<'_>) -> Result<Admission, LimiterError> {
        let mut entries = self.lock()?;
        if let Some(key) = &out.dedup {
            let pk = dedup_pk(key);
            match entries.get(&pk) {
                Some(e) if e.expires_at >= out.now => {
                    return Ok(Admission::Duplicate {
                        memo: e.memo.clone(),
                    });
                }
                _ => {
                    entries.insert(
                        pk,
                        Entry {
                            count: 1,
                            expires_at: out.now + out.dedup_ttl,
                            memo: out.memo.clone(),
                        },
                    );
                }
            }
        }
        for (kind, spec) in self.limits.send_limits() {
            let key = counter_key(kind, out, spec);
            let e = entries.entry(key).or_default();
            if e.count >= spec.count {
                if let Some(key) = &out.dedup {
                    entries.remove(&dedup_pk(key));
                }
                return Ok(Admission::Limited(kind, spec));
            }
            e.count += 1;
            e.expires_at = spec.window_end(out.now);
        }
        Ok(Admission::Send)
    }

    async fn forget(&self, out: &Outgoing<'_>) -> Result<(), LimiterError> {
        if let Some(key) = &out.dedup {
            self.lock()?.remove(&dedup_pk(key));
        }
        Ok(())
    }

    async fn code_failures(&self, pool: &str, user: &str, now: u64) -> Result<u32, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(0);
        };
        let entries = self.lock()?;
        Ok(entries
            .get(&code_failure_key(pool, user, spec, now))
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
            .entry(code_failure_key(pool, user, spec, now))
            .or_default();
        e.count += 1;
        e.expires_at = spec.window_end(now);
        Ok(e.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LimitKind, LimitSpec};

    fn limits() -> Limits {
        Limits {
            per_phone: LimitSpec::parse("2/1m"),
            per_user: LimitSpec::parse("3/1h"),
            per_pool: LimitSpec::parse("4/1m"),
            code_failures_per_user: LimitSpec::parse("2/1h"),
            table: Some("t".into()),
        }
    }

    fn send<'a>(phone: &'a str, user: &'a str, now: u64, dedup: Option<&str>) -> Outgoing<'a> {
        Outgoing {
            pool: "p",
            user,
            phone,
            dedup: dedup.map(str::to_owned),
            memo: dedup.map(|d| format!("memo-{d}")),
            dedup_ttl: crate::DEDUP_TTL_SECS,
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
    async fn the_same_event_is_sent_once_and_a_refused_one_is_judged_again() {
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
        // A different event to the same phone is limited, and its record
        // dropped: its retry in the next window is sent.
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
    async fn wrong_codes_lock_out_until_the_window_passes() {
        let l = MemoryLimiter::new(limits());
        let t = 1_700_000_000 - 1_700_000_000 % 3600;
        assert_eq!(l.code_failures("p", "a", t).await, Ok(0));
        assert_eq!(l.record_code_failure("p", "a", t).await, Ok(1));
        assert_eq!(l.record_code_failure("p", "a", t + 10).await, Ok(2));
        assert!(crate::is_locked_out(
            l.limits(),
            l.code_failures("p", "a", t + 20).await.unwrap()
        ));
        assert!(!crate::is_locked_out(
            l.limits(),
            l.code_failures("p", "b", t + 20).await.unwrap()
        ));
        assert_eq!(l.code_failures("p", "a", t + 3600).await, Ok(0));
    }

    #[tokio::test]
    async fn an_unavailable_table_is_an_error_not_a_decision() {
        let l = MemoryLimiter::new(limits());
        l.set_unavailable(true);
        assert!(l.admit(&send("+1", "a", 1, None)).await.is_err());
        assert!(l.code_failures("p", "a", 1).await.is_err());
    }
}
