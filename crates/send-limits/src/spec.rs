//! The limits' configuration and window arithmetic (pure).

use std::fmt;

use auth_policy::ConfigSource;
use thiserror::Error;

pub const PER_PHONE_VAR: &str = "SMS_LIMIT_PER_PHONE";
pub const PER_USER_VAR: &str = "SMS_LIMIT_PER_USER";
pub const PER_POOL_VAR: &str = "SMS_LIMIT_PER_POOL";
pub const EMAIL_PER_ADDRESS_VAR: &str = "EMAIL_LIMIT_PER_ADDRESS";
pub const EMAIL_PER_USER_VAR: &str = "EMAIL_LIMIT_PER_USER";
pub const EMAIL_PER_POOL_VAR: &str = "EMAIL_LIMIT_PER_POOL";
pub const CODE_FAILURES_VAR: &str = "CODE_FAILURES_PER_USER";
/// Changes through the account-change API per user (email, phone, MFA
/// preference); counted in the same table.
pub const ACCOUNT_CHANGES_VAR: &str = "ACCOUNT_CHANGES_PER_USER";
/// The account-change API's limit when the variable is unset.
pub const DEFAULT_ACCOUNT_CHANGES: &str = "5/1d";
/// The limits table, for both channels.
pub const TABLE_VAR: &str = "LIMIT_TABLE";
/// The table's former name, still read when `LIMIT_TABLE` is not set.
pub const SMS_TABLE_VAR: &str = "SMS_LIMIT_TABLE";

/// At most `count` events per fixed window of `window_secs` seconds
/// (`5/15m`). Windows are aligned to the epoch: the window of time `t` is
/// `[t - t % w, t - t % w + w)`, the same for every Lambda instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSpec {
    pub count: u32,
    pub window_secs: u64,
}

impl LimitSpec {
    /// The start of the window that holds `now`.
    pub fn window_start(&self, now: u64) -> u64 {
        now - now % self.window_secs
    }

    /// When the window that holds `now` ends (the counter's expiry).
    pub fn window_end(&self, now: u64) -> u64 {
        self.window_start(now) + self.window_secs
    }

    /// `N/<number><s|m|h|d>`.
    pub fn parse(text: &str) -> Option<Self> {
        let (count, window) = text.trim().split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
        let window = window.trim();
        let unit = window.chars().last()?;
        let number: u64 = window[..window.len() - unit.len_utf8()].parse().ok()?;
        let seconds = match unit {
            's' => number,
            'm' => number.checked_mul(60)?,
            'h' => number.checked_mul(3600)?,
            'd' => number.checked_mul(86_400)?,
            _ => return None,
        };
        (seconds > 0 && seconds <= 7 * 86_400).then_some(Self {
            count,
            window_secs: seconds,
        })
    }
}

impl fmt::Display for LimitSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.window_secs;
        if w.is_multiple_of(86_400) {
            write!(f, "{}/{}d", self.count, w / 86_400)
        } else if w.is_multiple_of(3600) {
            write!(f, "{}/{}h", self.count, w / 3600)
        } else if w.is_multiple_of(60) {
            write!(f, "{}/{}m", self.count, w / 60)
        } else {
            write!(f, "{}/{}s", self.count, w)
        }
    }
}

/// What a message goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
}

/// Which send limit refused. SMS and email have limits of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKind {
    Phone,
    User,
    Pool,
    Address,
    EmailUser,
    EmailPool,
    /// `ACCOUNT_CHANGES_PER_USER`: not a send limit; the account-change
    /// API's own.
    AccountChanges,
}

impl LimitKind {
    /// The name in logs and metric dimensions (`Reason`); the metric's own
    /// name tells the channel.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phone => "per_phone",
            Self::User | Self::EmailUser => "per_user",
            Self::Pool | Self::EmailPool => "per_pool",
            Self::Address => "per_address",
            Self::AccountChanges => "account_changes",
        }
    }

    /// The counter's key prefix in the table: one per limit.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Self::Phone => "per_phone",
            Self::User => "per_user",
            Self::Pool => "per_pool",
            Self::Address => "email_per_address",
            Self::EmailUser => "email_per_user",
            Self::EmailPool => "email_per_pool",
            Self::AccountChanges => "account_changes",
        }
    }

    pub fn variable(self) -> &'static str {
        match self {
            Self::Phone => PER_PHONE_VAR,
            Self::User => PER_USER_VAR,
            Self::Pool => PER_POOL_VAR,
            Self::Address => EMAIL_PER_ADDRESS_VAR,
            Self::EmailUser => EMAIL_PER_USER_VAR,
            Self::EmailPool => EMAIL_PER_POOL_VAR,
            Self::AccountChanges => ACCOUNT_CHANGES_VAR,
        }
    }

    /// Whether the limit counts per destination (a phone or an address).
    pub fn is_per_destination(self) -> bool {
        matches!(self, Self::Phone | Self::Address)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimitConfigError {
    #[error(
        "{variable}={value:?} is not valid: expected N/<number><s|m|h>, e.g. 5/15m (N ≥ 1, window at most 7 days), or empty for no limit"
    )]
    Invalid {
        variable: &'static str,
        value: String,
    },
    #[error(
        "{TABLE_VAR} (or {SMS_TABLE_VAR}) is required when a limit is set ({variable}): the counters live in that DynamoDB table"
    )]
    NoTable { variable: &'static str },
}

/// Every limit of the pool, read once at init.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_phone: Option<LimitSpec>,
    pub per_user: Option<LimitSpec>,
    pub per_pool: Option<LimitSpec>,
    pub email_per_address: Option<LimitSpec>,
    pub email_per_user: Option<LimitSpec>,
    pub email_per_pool: Option<LimitSpec>,
    pub code_failures_per_user: Option<LimitSpec>,
    /// `ACCOUNT_CHANGES_PER_USER` (read by account-change only).
    pub account_changes_per_user: Option<LimitSpec>,
    /// `LIMIT_TABLE` (or `SMS_LIMIT_TABLE`); `None` with no limit set
    /// (replay, a bare local run).
    pub table: Option<String>,
}

impl Limits {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, LimitConfigError> {
        let read = |variable: &'static str| -> Result<Option<LimitSpec>, LimitConfigError> {
            match source.value(variable) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => LimitSpec::parse(&v)
                    .map(Some)
                    .ok_or(LimitConfigError::Invalid {
                        variable,
                        value: v.chars().take(32).collect(),
                    }),
            }
        };
        let limits = Self {
            per_phone: read(PER_PHONE_VAR)?,
            per_user: read(PER_USER_VAR)?,
            per_pool: read(PER_POOL_VAR)?,
            email_per_address: read(EMAIL_PER_ADDRESS_VAR)?,
            email_per_user: read(EMAIL_PER_USER_VAR)?,
            email_per_pool: read(EMAIL_PER_POOL_VAR)?,
            code_failures_per_user: read(CODE_FAILURES_VAR)?,
            account_changes_per_user: read(ACCOUNT_CHANGES_VAR)?,
            table: [TABLE_VAR, SMS_TABLE_VAR].into_iter().find_map(|var| {
                source
                    .value(var)
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
            }),
        };
        if limits.table.is_none() {
            for (variable, spec) in [
                (PER_PHONE_VAR, limits.per_phone),
                (PER_USER_VAR, limits.per_user),
                (PER_POOL_VAR, limits.per_pool),
                (EMAIL_PER_ADDRESS_VAR, limits.email_per_address),
                (EMAIL_PER_USER_VAR, limits.email_per_user),
                (EMAIL_PER_POOL_VAR, limits.email_per_pool),
                (CODE_FAILURES_VAR, limits.code_failures_per_user),
                (ACCOUNT_CHANGES_VAR, limits.account_changes_per_user),
            ] {
                if spec.is_some() {
                    return Err(LimitConfigError::NoTable { variable });
                }
            }
        }
        Ok(limits)
    }

    /// The send limits of `channel` that are set, narrowest first (the
    /// order a refusal is reported in).
    pub fn send_limits(&self, channel: Channel) -> Vec<(LimitKind, LimitSpec)> {
        match channel {
            Channel::Sms => [
                (LimitKind::Phone, self.per_phone),
                (LimitKind::User, self.per_user),
                (LimitKind::Pool, self.per_pool),
            ],
            Channel::Email => [
                (LimitKind::Address, self.email_per_address),
                (LimitKind::EmailUser, self.email_per_user),
                (LimitKind::EmailPool, self.email_per_pool),
            ],
        }
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print() {
        for (text, count, secs) in [
            ("5/15m", 5, 900),
            ("10/1h", 10, 3600),
            ("300/1m", 300, 60),
            (" 3 / 30s ", 3, 30),
            ("5/1d", 5, 86_400),
            ("1/7d", 1, 604_800),
        ] {
            let s = LimitSpec::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!((s.count, s.window_secs), (count, secs), "{text}");
        }
        assert_eq!(LimitSpec::parse("5/15m").unwrap().to_string(), "5/15m");
        assert_eq!(LimitSpec::parse("5/24h").unwrap().to_string(), "5/1d");
        for bad in [
            "", "5", "0/1m", "5/0m", "5/15", "5/15d", "x/1m", "5/m", "5/8d", "5/200h", "-1/1m",
            "5/1w",
        ] {
            assert_eq!(LimitSpec::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn windows_are_aligned_for_every_instance() {
        let s = LimitSpec::parse("5/15m").unwrap();
        // 1_700_000_100 is a multiple of 900.
        assert_eq!(s.window_start(1_700_000_123), 1_700_000_100);
        assert_eq!(s.window_end(1_700_000_123), 1_700_001_000);
        assert_eq!(s.window_start(1_700_000_100), 1_700_000_100);
        assert_eq!(s.window_start(1_700_000_099), 1_699_999_200);
    }

    #[test]
    fn a_limit_needs_the_table_and_a_bad_value_names_its_variable() {
        let e = Limits::from_source(&[(PER_PHONE_VAR, "5/15m")][..]).unwrap_err();
        assert_eq!(
            e,
            LimitConfigError::NoTable {
                variable: PER_PHONE_VAR
            }
        );
        let e = Limits::from_source(&[(TABLE_VAR, "t"), (PER_POOL_VAR, "lots")][..]).unwrap_err();
        assert!(e.to_string().starts_with(PER_POOL_VAR), "{e}");
        let l = Limits::from_source(&[(TABLE_VAR, "t"), (PER_USER_VAR, "10/1h")][..]).unwrap();
        assert_eq!(
            l.send_limits(Channel::Sms),
            vec![(
                LimitKind::User,
                LimitSpec {
                    count: 10,
                    window_secs: 3600
                }
            )]
        );
        assert_eq!(Limits::from_source(&[][..]).unwrap(), Limits::default());
        assert!(l.send_limits(Channel::Email).is_empty());
    }

    #[test]
    fn email_limits_and_the_shared_table_name() {
        let l = Limits::from_source(
            &[
                (TABLE_VAR, "shared"),
                (SMS_TABLE_VAR, "old"),
                (EMAIL_PER_ADDRESS_VAR, "5/1h"),
                (EMAIL_PER_POOL_VAR, "100/1m"),
            ][..],
        )
        .unwrap();
        assert_eq!(l.table.as_deref(), Some("shared"));
        let kinds: Vec<LimitKind> = l
            .send_limits(Channel::Email)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kinds, vec![LimitKind::Address, LimitKind::EmailPool]);
        assert!(l.send_limits(Channel::Sms).is_empty());
        // The former variable still names the table.
        let old =
            Limits::from_source(&[(SMS_TABLE_VAR, "old"), (PER_PHONE_VAR, "5/15m")][..]).unwrap();
        assert_eq!(old.table.as_deref(), Some("old"));
        let e = Limits::from_source(&[(EMAIL_PER_USER_VAR, "5/1h")][..]).unwrap_err();
        assert_eq!(
            e,
            LimitConfigError::NoTable {
                variable: EMAIL_PER_USER_VAR
            }
        );
        assert_eq!(LimitKind::Address.variable(), EMAIL_PER_ADDRESS_VAR);
        assert_ne!(
            LimitKind::User.key_prefix(),
            LimitKind::EmailUser.key_prefix()
        );
    }
}
