//! The one check every sender makes before it sends: the country policy (SMS
//! only), then the limits (with de-duplication), with the fail-open or fail-closed
//! choice for when the table cannot be used.

use phone_country::{Country, CountryPolicy, CountryRefusal};

use crate::{Admission, LimitKind, LimitSpec, Limiter, LimiterError, Outgoing};

/// What to do when the limits table cannot be used (after the SDK's bounded
/// retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Send anyway (logged and counted as `SmsFailOpen`): sign-in codes,
    /// whose loss would lock every user out during an outage.
    Open,
    /// Send nothing: codes an anonymous caller can trigger at will (sign-up,
    /// resend, forgotten password), where an outage during a pumping wave
    /// would otherwise cost money without limit.
    Closed,
}

/// Why nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Country(CountryRefusal),
    Limited(LimitKind, LimitSpec),
    /// A sign-in code for a user whose wrong codes reached
    /// `CODE_FAILURES_PER_USER`.
    LockedOut,
    /// The table could not be used and the send fails closed.
    Unavailable(LimiterError),
    /// A code for a new address that no recent sign-in allowed.
    ContactChange,
}

impl Refusal {
    /// A stable name for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Country(c) => c.as_str(),
            Self::Limited(kind, _) => kind.as_str(),
            Self::LockedOut => "code_lockout",
            Self::Unavailable(_) => "limits_unavailable",
            Self::ContactChange => "contact_change",
        }
    }
}

/// The gate's verdict on one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it. `failed_open` when the table could not be used.
    Send {
        failed_open: bool,
    },
    /// The same event was sent already.
    Duplicate {
        memo: Option<String>,
    },
    Refused(Refusal),
}

/// The country policy and, when a table is configured, the limiter.
#[derive(Debug, Clone)]
pub struct SendGate<L> {
    pub countries: CountryPolicy,
    pub limiter: Option<L>,
}

impl<L: Limiter> SendGate<L> {
    pub fn new(countries: CountryPolicy, limiter: Option<L>) -> Self {
        Self { countries, limiter }
    }

    /// The number's country for logs and metrics: the ISO code when the
    /// country policy has a list (it looks the number up anyway), `none` when
    /// the numbering plan gives it no country, and `unchecked` without a
    /// list. Loading the numbering plan costs about 55 ms on an instance's
    /// first look-up (docs/benchmarks.md), too much to pay for a metric
    /// dimension alone on a cold start.
    pub fn country_label(&self, phone: &str) -> String {
        if self.countries.is_open() {
            return "unchecked".to_owned();
        }
        self.countries
            .check(phone)
            .country
            .map_or_else(|| "none".to_owned(), |c: Country| c.to_string())
    }

    /// Judges one send; counts it when it may go.
    pub async fn check(&self, out: &Outgoing<'_>, mode: FailMode) -> Verdict {
        // The country policy is about phone numbers: email has none.
        if out.channel == crate::Channel::Sms
            && let Some(refusal) = self.countries.check(out.destination).refusal
        {
            return Verdict::Refused(Refusal::Country(refusal));
        }
        let Some(limiter) = &self.limiter else {
            // No table, no allowances: a code for a new address is held.
            if out.contact != crate::ContactCheck::None {
                return Verdict::Refused(Refusal::Unavailable(LimiterError::Unavailable(
                    "no limits table is configured, and the account-change allowances live there"
                        .to_owned(),
                )));
            }
            return Verdict::Send { failed_open: false };
        };
        match limiter.admit(out).await {
            Ok(Admission::Send) => Verdict::Send { failed_open: false },
            Ok(Admission::Duplicate { memo }) => Verdict::Duplicate { memo },
            Ok(Admission::Limited(kind, spec)) => Verdict::Refused(Refusal::Limited(kind, spec)),
            Ok(Admission::LockedOut) => Verdict::Refused(Refusal::LockedOut),
            Ok(Admission::ContactChangeRefused) => Verdict::Refused(Refusal::ContactChange),
            // Without the table no allowance can be checked: a code for a
            // new address is never sent on trust.
            Err(e) if out.contact != crate::ContactCheck::None => {
                Verdict::Refused(Refusal::Unavailable(e))
            }
            Err(e) => match mode {
                FailMode::Open => Verdict::Send { failed_open: true },
                FailMode::Closed => Verdict::Refused(Refusal::Unavailable(e)),
            },
        }
    }

    /// After a send that failed: drop its de-duplication record so that the
    /// retry of the event sends (best effort: an error is only logged).
    pub async fn send_failed(&self, out: &Outgoing<'_>) {
        if let Some(limiter) = &self.limiter
            && let Err(e) = limiter.forget(out).await
        {
            tracing::warn!("the de-duplication record of a failed send could not be dropped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, MemoryLimiter};

    fn out(phone: &str) -> Outgoing<'_> {
        Outgoing {
            pool: "p",
            user: "u",
            channel: crate::Channel::Sms,
            destination: phone,
            destination_verified: false,
            dedup: Some(crate::Dedup {
                kind: crate::RecordKind::Sent,
                unique: "e".into(),
                ttl: crate::DEDUP_TTL_SECS,
                memo: None,
            }),
            check_lockout: false,
            contact: crate::ContactCheck::None,
            now: 1_700_000_000,
        }
    }

    #[tokio::test]
    async fn country_first_then_limits_then_the_fail_mode() {
        let countries =
            CountryPolicy::from_source(&[(phone_country::BLOCKED_VAR, "JM")][..]).unwrap();
        let limiter = MemoryLimiter::new(Limits {
            per_phone: LimitSpec::parse("1/1h"),
            table: Some("t".into()),
            ..Limits::default()
        });
        let gate = SendGate::new(countries, Some(limiter.clone()));
        assert_eq!(
            gate.check(&out("+18762530000"), FailMode::Open).await,
            Verdict::Refused(Refusal::Country(CountryRefusal::Blocked))
        );
        assert_eq!(
            gate.check(&out("+16502530000"), FailMode::Open).await,
            Verdict::Send { failed_open: false }
        );
        assert_eq!(
            gate.check(&out("+16502530000"), FailMode::Open).await,
            Verdict::Duplicate { memo: None }
        );
        limiter.set_unavailable(true);
        assert_eq!(
            gate.check(&out("+16502530001"), FailMode::Open).await,
            Verdict::Send { failed_open: true }
        );
        assert!(matches!(
            gate.check(&out("+16502530001"), FailMode::Closed).await,
            Verdict::Refused(Refusal::Unavailable(_))
        ));
    }

    #[test]
    fn the_country_label_costs_no_look_up_without_a_list() {
        let open: SendGate<MemoryLimiter> = SendGate::new(CountryPolicy::default(), None);
        assert_eq!(open.country_label("+18762530000"), "unchecked");
        let listed: SendGate<MemoryLimiter> = SendGate::new(
            CountryPolicy::from_source(&[(phone_country::BLOCKED_VAR, "CU")][..]).unwrap(),
            None,
        );
        assert_eq!(listed.country_label("+18762530000"), "JM");
        assert_eq!(listed.country_label("+15558675309"), "none");
    }

    #[tokio::test]
    async fn without_a_table_only_the_country_policy_applies() {
        let gate: SendGate<MemoryLimiter> = SendGate::new(CountryPolicy::default(), None);
        for _ in 0..10 {
            assert_eq!(
                gate.check(&out("+15558675309"), FailMode::Closed).await,
                Verdict::Send { failed_open: false }
            );
        }
    }
}
