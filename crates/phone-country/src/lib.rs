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
//! A number the plan calls invalid has no country, but the block list still
//! sees through it: the plan's metadata for its calling code places it in a
//! region (the region whose leading-digits pattern its national number
//! starts with; else the code's only or main region), and it is refused when
//! that region is blocked. Otherwise a block on `JM` would let through
//! `+1 876 000 0000`, or any number of a range Jamaica assigned after the
//! plan was last updated.
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
    /// numbering plan knows one; for a number the plan calls invalid and the
    /// block list refuses, the blocked region it belongs to.
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
        let number = parse(phone);
        let country = number.as_ref().and_then(valid_country);
        if country.is_none()
            && !self.blocked.is_empty()
            && let Some(region) = number
                .as_ref()
                .and_then(|n| blocked_region_of_invalid(n, &self.blocked))
        {
            return CountryVerdict {
                country: Some(region),
                refusal: Some(CountryRefusal::Blocked),
            };
        }
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
    valid_country(&parse(phone)?)
}

/// The number, when it looks like E.164 and the plan can parse it.
fn parse(phone: &str) -> Option<phonenumber::PhoneNumber> {
    let phone = phone.trim();
    // E.164 is at most 15 digits after the plus; anything longer is not a
    // number, and parsing it would only cost time.
    if phone.len() > 16 || !phone.starts_with('+') {
        return None;
    }
    phonenumber::parse(None, phone).ok()
}

/// The country of a number the plan calls valid.
fn valid_country(number: &phonenumber::PhoneNumber) -> Option<Country> {
    if !phonenumber::is_valid(number) {
        return None;
    }
    number.country().id().map(Country)
}

/// For a number the plan calls invalid: the blocked region its calling code
/// and leading digits place it in, if any. The regions are the plan's
/// metadata for the calling code: those whose leading-digits pattern
/// (`leading_digits`, e.g. `658|876` for JM under +1) the national number
/// starts with; when none does, the code's only region (+53: CU) or its
/// main region (+1: US, +44: GB). Non-geographic codes (+800, +882, region
/// `001`) place a number in no region.
fn blocked_region_of_invalid(
    number: &phonenumber::PhoneNumber,
    blocked: &HashSet<Country>,
) -> Option<Country> {
    let regions = phonenumber::metadata::DATABASE.by_code(&number.country().code())?;
    let country = |meta: &phonenumber::Metadata| meta.id().parse().ok().map(Country);
    if let [only] = regions[..] {
        return country(only).filter(|c| blocked.contains(c));
    }
    // With leading zeros (`national().value()` drops them).
    let national = number.national().to_string();
    let starts_with = |meta: &phonenumber::Metadata| {
        meta.leading_digits()
            .and_then(|pattern| pattern.find(&national))
            .is_some_and(|m| m.start() == 0)
    };
    let mut claimed: Vec<&phonenumber::Metadata> =
        regions.iter().copied().filter(|m| starts_with(m)).collect();
    if claimed.is_empty() {
        claimed = regions
            .into_iter()
            .filter(|m| m.is_main_country_for_code())
            .collect();
    }
    claimed
        .into_iter()
        .filter_map(country)
        .find(|c| blocked.contains(c))
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
    fn the_block_list_sees_through_invalid_numbers() {
        let jm = policy("", "JM");
        // +1 876 000 0000: invalid (no NANP exchange starts with 0), but
        // Jamaica's by its leading digits.
        assert_eq!(country_of("+18760000000"), None);
        let verdict = jm.check("+18760000000");
        assert_eq!(verdict.refusal, Some(CountryRefusal::Blocked));
        assert_eq!(verdict.country.unwrap(), "JM");
        // Jamaica's other area code, and a number too short to be valid.
        assert_eq!(
            jm.check("+16580000000").refusal,
            Some(CountryRefusal::Blocked)
        );
        assert_eq!(jm.check("+1876").refusal, Some(CountryRefusal::Blocked));
        // Valid numbers as before.
        assert_eq!(
            jm.check("+18762530000").refusal,
            Some(CountryRefusal::Blocked)
        );
        assert_eq!(jm.check("+18762530000").country.unwrap(), "JM");
        assert!(jm.check("+16502530000").allowed());
        assert_eq!(jm.check("+16502530000").country.unwrap(), "US");
        // Invalid numbers whose leading digits are no blocked region's.
        for number in [
            "+15558675309",
            "+12640000000",
            "+16500000000",
            "+447700900123",
        ] {
            let verdict = jm.check(number);
            assert!(verdict.allowed(), "{number}");
            assert_eq!(verdict.country, None, "{number}");
        }

        let cu = policy("", "CU");
        assert!(cu.check("+18760000000").allowed());
        assert_eq!(cu.check("+18760000000").country, None);
        // +53 is Cuba's alone: an invalid +53 number is Cuba's.
        for number in ["+531234", "+5300000001", "+53999999999999"] {
            assert_eq!(country_of(number), None, "{number}");
            assert_eq!(
                cu.check(number).refusal,
                Some(CountryRefusal::Blocked),
                "{number}"
            );
        }
        assert_eq!(
            cu.check("+5351234567").refusal,
            Some(CountryRefusal::Blocked),
            "a valid Cuban mobile"
        );

        // A shared code: the leading digits pick the region, and the main
        // region takes what no other region's leading digits claim.
        let us = policy("", "US");
        assert_eq!(
            us.check("+15558675309").refusal,
            Some(CountryRefusal::Blocked)
        );
        assert!(us.check("+18760000000").allowed(), "Jamaica's digits");
        assert!(us.check("+18762530000").allowed());
        let kz = policy("", "KZ");
        assert_eq!(country_of("+7712345"), None);
        assert_eq!(kz.check("+7712345").country.unwrap(), "KZ");
        assert_eq!(country_of("+7312345"), None);
        assert!(kz.check("+7312345").allowed(), "Russia's digits");
        // Non-geographic codes belong to no region.
        let many = policy("", "US,JM,CU,GB");
        for number in ["+80012345678", "+8001234"] {
            assert!(phonenumber::parse(None, number).is_ok(), "{number}");
            assert!(many.check(number).allowed(), "{number}");
        }

        // With an allow list an invalid number was refused already; with
        // both lists, the block list names the reason.
        let allowed = policy("US", "");
        assert_eq!(
            allowed.check("+18760000000").refusal,
            Some(CountryRefusal::NoCountry)
        );
        let both = policy("US", "JM");
        assert_eq!(
            both.check("+18760000000").refusal,
            Some(CountryRefusal::Blocked)
        );
        assert_eq!(
            both.check("+15558675309").refusal,
            Some(CountryRefusal::NoCountry)
        );
    }

    /// No input panics, whatever the lists (a deterministic stand-in for a
    /// property test: proptest is not a dependency of this crate).
    #[test]
    fn no_input_panics() {
        let policies = [
            policy("", "JM,CU,US,GB,KZ,IT,NO,FI,MA,RE,GP,CW,SH,AU"),
            policy("US,JP", "CA"),
            policy("JP", ""),
        ];
        let alphabet: Vec<char> = "+0123456789 -()+٣０\u{0}é".chars().collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut inputs: Vec<String> = vec![
            String::new(),
            "+".into(),
            "+0".into(),
            "+00000000000000".into(),
            "+999999999999999".into(),
            "+3900000000".into(),
            "+1".repeat(20),
        ];
        for _ in 0..5_000 {
            let len = (next() % 20) as usize;
            let mut s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if next() % 2 == 0 {
                s.insert(0, '+');
            }
            inputs.push(s);
        }
        // Every calling code, with a few national numbers.
        for code in 1..1000 {
            for national in ["", "0", "00000000", "1234567", "99999999999"] {
                inputs.push(format!("+{code}{national}"));
            }
        }
        for input in &inputs {
            let _ = country_of(input);
            for p in &policies {
                let verdict = p.check(input);
                if verdict.refusal == Some(CountryRefusal::Blocked) {
                    assert!(verdict.country.is_some(), "{input:?}");
                }
            }
        }
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
