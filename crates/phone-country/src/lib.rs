//! Which country a phone number belongs to, and the SMS country policy.
//!
//! SMS pumping sends codes to premium-rate numbers in countries the pool
//! never serves, so an operator names the countries SMS may go to
//! (`SMS_ALLOWED_COUNTRIES`) or may not (`SMS_BLOCKED_COUNTRIES`), as ISO
//! 3166-1 alpha-2 codes. A number's country comes from libphonenumber's
//! numbering plan (the `phonenumber` crate), never from a prefix table:
//! `+1` alone is 25 countries, told apart by area code.
//!
//! The rules:
//! * a country on the block list is refused;
//! * with an allow list, only its countries pass, and a number the plan
//!   gives no country (such as the fictional +1 555 867 5309) is refused;
//! * with no allow list every other number passes, with or without a country.
//!
//! The numbering plan is loaded on first use, and only when a list is set:
//! a pool without country rules pays nothing at init or per call.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use auth_policy::ConfigSource;
use thiserror::Error;

/// Comma list of ISO 3166-1 alpha-2 codes SMS may go to; empty = every country.
pub const ALLOWED_VAR: &str = "SMS_ALLOWED_COUNTRIES";
/// Comma list of ISO 3166-1 alpha-2 codes SMS never goes to.
pub const BLOCKED_VAR: &str = "SMS_BLOCKED_COUNTRIES";

/// A bad country list: the init phase fails with it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CountryConfigError {
    #[error(
        "{variable}: {entry:?} is not an ISO 3166-1 alpha-2 country code the numbering plan knows (e.g. US, JP, GB)"
    )]
    UnknownCountry {
        variable: &'static str,
        entry: String,
    },
}

/// Why a number may not receive SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryRefusal {
    /// Its country is on the block list.
    Blocked,
    /// An allow list is set and its country is not on it.
    NotAllowed,
    /// An allow list is set and the numbering plan gives the number no country.
    NoCountry,
}

impl CountryRefusal {
    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "country_blocked",
            Self::NotAllowed => "country_not_allowed",
            Self::NoCountry => "country_unknown",
        }
    }
}

/// A country of the numbering plan (ISO 3166-1 alpha-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(phonenumber::country::Id);

impl Country {
    /// The ISO code, e.g. `US`.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Country {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What the policy says of one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryVerdict {
    /// The number's country, when the policy had to look it up and the
    /// numbering plan knows one.
    pub country: Option<Country>,
    pub refusal: Option<CountryRefusal>,
}

impl CountryVerdict {
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
}

/// The SMS country policy of the pool.
#[derive(Debug, Clone, Default)]
pub struct CountryPolicy {
    allowed: HashSet<Country>,
    blocked: HashSet<Country>,
}

fn parse_list(
    source: &(impl ConfigSource + ?Sized),
    variable: &'static str,
) -> Result<HashSet<Country>, CountryConfigError> {
    let mut out = HashSet::new();
    for entry in source
        .value(variable)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let upper = entry.to_ascii_uppercase();
        let id = (upper.len() == 2)
            .then(|| phonenumber::country::Id::from_str(&upper).ok())
            .flatten()
            .ok_or_else(|| CountryConfigError::UnknownCountry {
                variable,
                entry: entry.chars().take(16).collect(),
            })?;
        out.insert(Country(id));
    }
    Ok(out)
}

impl CountryPolicy {
    /// Reads `SMS_ALLOWED_COUNTRIES` and `SMS_BLOCKED_COUNTRIES`.
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, CountryConfigError> {
        Ok(Self {
            allowed: parse_list(source, ALLOWED_VAR)?,
            blocked: parse_list(source, BLOCKED_VAR)?,
        })
    }

    /// No rule at all: every number passes without a look-up.
    pub fn is_open(&self) -> bool {
        self.allowed.is_empty() && self.blocked.is_empty()
    }

    /// The verdict for an E.164 number (checked for format elsewhere).
    pub fn check(&self, phone: &str) -> CountryVerdict {
        if self.is_open() {
            return CountryVerdict {
                country: None,
                refusal: None,
            };
        }
        let country = country_of(phone);
        let refusal = match country {
            Some(c) if self.blocked.contains(&c) => Some(CountryRefusal::Blocked),
            Some(c) if !self.allowed.is_empty() && !self.allowed.contains(&c) => {
                Some(CountryRefusal::NotAllowed)
            }
            None if !self.allowed.is_empty() => Some(CountryRefusal::NoCountry),
            _ => None,
        };
        CountryVerdict { country, refusal }
    }
}

/// The country (ISO 3166-1 alpha-2) the numbering plan gives an E.164
/// number: the region whose numbering rules the number matches. `None` for
/// numbers no region claims (unassigned or fictional ranges, garbage).
pub fn country_of(phone: &str) -> Option<Country> {
    let phone = phone.trim();
    // E.164 is at most 15 digits after the plus; anything longer is not a
    // number, and parsing it would only cost time.
    if phone.len() > 16 || !phone.starts_with('+') {
        return None;
    }
    let number = phonenumber::parse(None, phone).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    number.country().id().map(Country)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &str, blocked: &str) -> CountryPolicy {
        CountryPolicy::from_source(&[(ALLOWED_VAR, allowed), (BLOCKED_VAR, blocked)][..]).unwrap()
    }

    #[test]
    fn plus_one_is_told_apart_by_the_numbering_plan() {
        let of = |n: &str| country_of(n).map(|c| c.to_string());
        for (number, country) in [
            ("+16502530000", "US"),
            ("+14162530000", "CA"),
            ("+18762530000", "JM"),
            ("+12423570000", "BS"),
            ("+17872530000", "PR"),
            ("+819012345678", "JP"),
            ("+447400123456", "GB"),
            ("+447911123456", "GG"),
        ] {
            assert_eq!(of(number).as_deref(), Some(country), "{number}");
        }
        assert_eq!(of("+15558675309"), None, "the source guide's example");
        assert_eq!(of("+447700900123"), None, "Ofcom's drama range");
        assert_eq!(of("garbage"), None);
        assert_eq!(of("+1234567890123456789"), None);
    }

    #[test]
    fn the_rules() {
        let open = policy("", "");
        assert!(open.is_open());
        assert!(open.check("+15558675309").allowed());

        let blocked = policy("", "jm, CU");
        assert_eq!(
            blocked.check("+18762530000").refusal,
            Some(CountryRefusal::Blocked)
        );
        assert!(blocked.check("+16502530000").allowed());
        assert!(
            blocked.check("+15558675309").allowed(),
            "no country, no allow list"
        );

        let allowed = policy("US,CA,JP", "");
        assert!(allowed.check("+16502530000").allowed());
        assert!(allowed.check("+819012345678").allowed());
        assert_eq!(
            allowed.check("+18762530000").refusal,
            Some(CountryRefusal::NotAllowed)
        );
        assert_eq!(
            allowed.check("+15558675309").refusal,
            Some(CountryRefusal::NoCountry)
        );
        assert_eq!(allowed.check("+18762530000").country.unwrap(), "JM");

        let both = policy("US,CA", "CA");
        assert_eq!(
            both.check("+14162530000").refusal,
            Some(CountryRefusal::Blocked)
        );
    }

    #[test]
    fn a_bad_list_names_the_variable() {
        for bad in ["USA", "XX", "1", "U$"] {
            let e = CountryPolicy::from_source(&[(BLOCKED_VAR, bad)][..]).unwrap_err();
            assert!(e.to_string().starts_with(BLOCKED_VAR), "{e}");
        }
        assert!(CountryPolicy::from_source(&[(ALLOWED_VAR, " us , jp ,")][..]).is_ok());
    }
}
