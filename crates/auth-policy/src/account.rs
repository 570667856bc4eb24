//! The account-change API's rules: who may change their email, phone number
//! or MFA preference (a recent sign-in), and which new values the sign-up
//! rules accept.
//!
//! A Cognito access token lives an hour and lets its holder change the
//! user's email and phone; the address a code is sent to is where an account
//! is recovered. So a change needs proof that the user signed in, with every
//! factor, a few minutes ago: the token's `auth_time`, which Cognito keeps
//! from the original sign-in across refreshes. Tokens reach the API already
//! checked by API Gateway's JWT authorizer (signature, issuer, expiry,
//! client); what is left is the kind of token, its client and its age.

use std::fmt;

use crate::config::{ConfigSource, DomainRules, MfaConfig, MfaMode, non_blank};
use crate::error::ConfigError;
use crate::mfa::{MfaDecision, MfaSettings, decide_mfa_with};
use crate::phone::is_e164;
use crate::preference::MfaPreference;
use crate::signup::{Rejection, check_email};

/// The oldest sign-in, in seconds, that may still change the account.
pub const RECENT_SIGN_IN_VAR: &str = "RECENT_SIGN_IN_SECONDS";
pub const DEFAULT_RECENT_SIGN_IN_SECS: u64 = 300;
/// The app clients whose access tokens the API accepts (comma list).
pub const CLIENT_IDS_VAR: &str = "APP_CLIENT_IDS";
/// The longest email address Cognito and SES accept.
pub const MAX_EMAIL_CHARS: usize = 254;

/// Everything the account-change API decides with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChangeConfig {
    pub mfa: MfaConfig,
    pub domains: DomainRules,
    pub recent_sign_in_secs: u64,
    /// Empty: the authorizer's audience list alone decides (every client
    /// it accepts is accepted here).
    pub client_ids: Vec<String>,
}

impl AccountChangeConfig {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, ConfigError> {
        let recent_sign_in_secs = match non_blank(source, RECENT_SIGN_IN_VAR) {
            None => DEFAULT_RECENT_SIGN_IN_SECS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or(ConfigError::Invalid {
                    variable: RECENT_SIGN_IN_VAR,
                    value: v.chars().take(32).collect(),
                    expected: "a number of seconds from 1 to 86400 (default 300)",
                })?,
        };
        let client_ids = non_blank(source, CLIENT_IDS_VAR)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(ToOwned::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            mfa: MfaConfig::from_source(source)?,
            domains: DomainRules::from_source(source)?,
            recent_sign_in_secs,
            client_ids,
        })
    }
}

/// The claims the rule reads, as the JWT authorizer passes them (strings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claims<'a> {
    pub token_use: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub auth_time: Option<&'a str>,
}

/// Why the caller must sign in again: the answer is `403
/// RecentSignInRequired` in every case, the message tells which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// An ID token (or anything but an access token).
    NotAnAccessToken,
    /// An access token of another app client.
    OtherClient,
    /// No readable `auth_time`.
    NoAuthTime,
    /// The sign-in is older than the limit.
    TooOld { age_secs: u64, limit_secs: u64 },
}

impl SignInRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotAnAccessToken => "not_an_access_token",
            Self::OtherClient => "other_client",
            Self::NoAuthTime => "no_auth_time",
            Self::TooOld { .. } => "sign_in_too_old",
        }
    }
}

impl fmt::Display for SignInRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnAccessToken => f.write_str(
                "Send the access token of a sign-in (not the ID token), then try again.",
            ),
            Self::OtherClient => {
                f.write_str("This app cannot change the account. Sign in again, then try again.")
            }
            Self::NoAuthTime => f.write_str(
                "The sign-in time cannot be read from the token. Sign in again, then try again.",
            ),
            Self::TooOld { limit_secs, .. } => write!(
                f,
                "For your security, sign in again to make this change (a sign-in of the last {} minutes is needed).",
                limit_secs.div_ceil(60)
            ),
        }
    }
}

/// The recent-sign-in rule: an access token of an accepted client whose
/// sign-in is at most `recent_sign_in_secs` old at `now` (unix seconds). A
/// sign-in time a little in the future (clocks differ) counts as now.
pub fn check_recent_sign_in(
    config: &AccountChangeConfig,
    claims: &Claims<'_>,
    now: u64,
) -> Result<(), SignInRefusal> {
    if claims.token_use.map(str::trim) != Some("access") {
        return Err(SignInRefusal::NotAnAccessToken);
    }
    let client = claims.client_id.map(str::trim).unwrap_or_default();
    if client.is_empty()
        || (!config.client_ids.is_empty() && !config.client_ids.iter().any(|c| c == client))
    {
        return Err(SignInRefusal::OtherClient);
    }
    let auth_time = claims
        .auth_time
        .and_then(parse_epoch)
        .ok_or(SignInRefusal::NoAuthTime)?;
    let age_secs = now.saturating_sub(auth_time);
    if age_secs > config.recent_sign_in_secs {
        return Err(SignInRefusal::TooOld {
            age_secs,
            limit_secs: config.recent_sign_in_secs,
        });
    }
    Ok(())
}

/// Unix seconds as the authorizer writes them: `1700000000`, or a number
/// in exponent or decimal form.
fn parse_epoch(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<u64>() {
        return Some(v);
    }
    let f: f64 = t.parse().ok()?;
    // Whole seconds between 1970 and the year 2286.
    (f.is_finite() && (0.0..1e10).contains(&f)).then_some(f as u64)
}

/// A new email address: trimmed, a valid address of at most 254
/// characters, and allowed by the domain lists (the sign-up rule).
pub fn check_new_email(rules: &DomainRules, email: &str) -> Result<String, Rejection> {
    let email = email.trim();
    if email.is_empty() {
        return Err(Rejection::EmailRequired);
    }
    if email.chars().count() > MAX_EMAIL_CHARS
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
        || crate::email_domain(email).is_none()
    {
        return Err(Rejection::EmailInvalid);
    }
    check_email(rules, Some(email))?;
    Ok(email.to_owned())
}

/// A new phone number: trimmed and E.164 (the country policy is the
/// caller's: it needs the numbering plan).
pub fn check_new_phone(phone: &str) -> Result<String, Rejection> {
    let phone = phone.trim();
    if !is_e164(phone) {
        return Err(Rejection::PhoneNotE164);
    }
    Ok(phone.to_owned())
}

/// What the user has, as `AdminGetUser` tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFactors {
    pub has_phone: bool,
    pub has_email: bool,
    /// TOTP is enabled (an authenticator was associated and verified).
    pub totp_enabled: bool,
}

/// A change of MFA preference: the value for `custom:mfa_preference` and
/// the native settings, decided as post-confirmation decides them, with
/// the checks of the sign-up rule. `settings` is `None` when nothing
/// native changes (TOTP chosen before the authenticator is set up, with no
/// interim factor to give).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreferenceChange {
    pub preference: MfaPreference,
    pub settings: Option<MfaSettings>,
}

pub fn decide_preference_change(
    config: &MfaConfig,
    requested: &str,
    user: UserFactors,
) -> Result<PreferenceChange, Rejection> {
    let preference = MfaPreference::parse(requested).map_err(|_| Rejection::UnknownPreference)?;
    let change = |settings| {
        Ok(PreferenceChange {
            preference,
            settings,
        })
    };
    if config.mode == MfaMode::Off {
        return Err(Rejection::MfaOff);
    }
    match preference {
        MfaPreference::NoMfa if config.mode == MfaMode::On => Err(Rejection::MfaRequired),
        MfaPreference::NoMfa => change(Some(MfaSettings {
            email: config.methods.email.then_some(crate::MethodSetting {
                enabled: false,
                preferred: false,
            }),
            ..MfaSettings::NONE
        })),
        MfaPreference::Sms if !config.methods.sms => Err(Rejection::SmsNotEnabled),
        MfaPreference::Totp if !config.methods.totp => Err(Rejection::TotpNotEnabled),
        MfaPreference::Email if !config.methods.email => Err(Rejection::EmailMfaNotEnabled),
        MfaPreference::Sms if !user.has_phone => Err(Rejection::PhoneRequiredForSms),
        MfaPreference::Email if !user.has_email => Err(Rejection::EmailRequiredForEmailMfa),
        MfaPreference::Sms => change(Some(MfaSettings::SMS_PREFERRED)),
        MfaPreference::Email => change(Some(MfaSettings::EMAIL_PREFERRED)),
        MfaPreference::Totp if user.totp_enabled => change(Some(MfaSettings::TOTP_PREFERRED)),
        MfaPreference::Totp => match decide_mfa_with(
            config,
            Some(preference.as_str()),
            user.has_phone,
            user.has_email,
        ) {
            MfaDecision::Apply { settings, .. } => change(Some(settings)),
            MfaDecision::Skip { .. } => change(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MfaMethods;

    fn config(pairs: &[(&str, &str)]) -> AccountChangeConfig {
        AccountChangeConfig::from_source(pairs).unwrap()
    }

    fn access<'a>(client: &'a str, auth_time: &'a str) -> Claims<'a> {
        Claims {
            token_use: Some("access"),
            client_id: Some(client),
            auth_time: Some(auth_time),
        }
    }

    #[test]
    fn only_a_recent_access_token_of_the_client_passes() {
        let c = config(&[(CLIENT_IDS_VAR, "app1, app2")]);
        let now = 1_700_000_000;
        assert_eq!(c.recent_sign_in_secs, 300);
        assert_eq!(
            check_recent_sign_in(&c, &access("app2", "1699999700"), now),
            Ok(())
        );
        assert_eq!(
            check_recent_sign_in(&c, &access("app1", "1699999699"), now),
            Err(SignInRefusal::TooOld {
                age_secs: 301,
                limit_secs: 300
            })
        );
        // A clock a little ahead is now, not an error.
        assert_eq!(
            check_recent_sign_in(&c, &access("app1", "1700000030"), now),
            Ok(())
        );
        assert_eq!(
            check_recent_sign_in(&c, &access("app1", "1.6999998E9"), now),
            Ok(())
        );
        let id = Claims {
            token_use: Some("id"),
            ..access("app1", "1700000000")
        };
        assert_eq!(
            check_recent_sign_in(&c, &id, now),
            Err(SignInRefusal::NotAnAccessToken)
        );
        assert_eq!(
            check_recent_sign_in(&c, &access("other", "1700000000"), now),
            Err(SignInRefusal::OtherClient)
        );
        for bad in ["", "yesterday", "-5", "NaN", "1e300"] {
            assert_eq!(
                check_recent_sign_in(&c, &access("app1", bad), now),
                Err(SignInRefusal::NoAuthTime),
                "{bad:?}"
            );
        }
        let none = Claims {
            auth_time: None,
            ..access("app1", "")
        };
        assert_eq!(
            check_recent_sign_in(&c, &none, now),
            Err(SignInRefusal::NoAuthTime)
        );
        let longer = config(&[(RECENT_SIGN_IN_VAR, "900")]);
        assert_eq!(
            check_recent_sign_in(&longer, &access("any", "1699999200"), now),
            Ok(())
        );
        assert!(
            SignInRefusal::TooOld {
                age_secs: 1000,
                limit_secs: 300
            }
            .to_string()
            .contains("5 minutes")
        );
    }

    #[test]
    fn a_bad_setting_names_its_variable() {
        for bad in ["0", "abc", "86401"] {
            let e = AccountChangeConfig::from_source(&[(RECENT_SIGN_IN_VAR, bad)][..])
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(RECENT_SIGN_IN_VAR), "{e}");
        }
    }

    #[test]
    fn new_addresses_follow_the_sign_up_rules() {
        let rules = config(&[("BLOCKED_EMAIL_DOMAINS", "mailinator.com")]).domains;
        assert_eq!(
            check_new_email(&rules, " new@example.com "),
            Ok("new@example.com".to_owned())
        );
        assert_eq!(
            check_new_email(&rules, "x@mailinator.com"),
            Err(Rejection::EmailDomainBlocked)
        );
        for bad in ["", "no-at", "a b@example.com", "@example.com"] {
            assert!(check_new_email(&rules, bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(check_new_email(&rules, &long), Err(Rejection::EmailInvalid));
        assert_eq!(
            check_new_phone(" +14155550123"),
            Ok("+14155550123".to_owned())
        );
        for bad in ["14155550123", "+1 415 555 0123", "+0123456789", ""] {
            assert_eq!(
                check_new_phone(bad),
                Err(Rejection::PhoneNotE164),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn preference_changes_are_post_confirmations_with_the_sign_up_checks() {
        let all = MfaConfig {
            methods: MfaMethods {
                sms: true,
                totp: true,
                email: true,
            },
            ..MfaConfig::default()
        };
        let phone = UserFactors {
            has_phone: true,
            has_email: true,
            totp_enabled: false,
        };
        let d = |c: &MfaConfig, p: &str, u| decide_preference_change(c, p, u);
        assert_eq!(
            d(&all, "sms", phone).unwrap().settings,
            Some(MfaSettings::SMS_PREFERRED)
        );
        assert_eq!(
            d(
                &all,
                "SMS",
                UserFactors {
                    has_phone: false,
                    ..phone
                }
            ),
            Err(Rejection::PhoneRequiredForSms)
        );
        assert_eq!(
            d(&all, "EMAIL", phone).unwrap().settings,
            Some(MfaSettings::EMAIL_PREFERRED)
        );
        // TOTP before set-up: SMS as the interim factor, as at confirmation;
        // after it, TOTP preferred.
        assert_eq!(
            d(&all, "TOTP", phone).unwrap().settings,
            Some(MfaSettings::SMS_FALLBACK)
        );
        assert_eq!(
            d(
                &all,
                "TOTP",
                UserFactors {
                    totp_enabled: true,
                    ..phone
                }
            )
            .unwrap()
            .settings,
            Some(MfaSettings::TOTP_PREFERRED)
        );
        let nomfa = d(&all, "NOMFA", phone).unwrap().settings.unwrap();
        assert!(
            [nomfa.sms, nomfa.totp, nomfa.email]
                .iter()
                .all(|s| s.is_some_and(|s| !s.enabled))
        );
        let on = MfaConfig {
            mode: MfaMode::On,
            ..all
        };
        assert_eq!(d(&on, "NOMFA", phone), Err(Rejection::MfaRequired));
        let sms_only = MfaConfig {
            methods: MfaMethods {
                sms: true,
                totp: false,
                email: false,
            },
            ..MfaConfig::default()
        };
        assert_eq!(d(&sms_only, "TOTP", phone), Err(Rejection::TotpNotEnabled));
        assert_eq!(
            d(&sms_only, "EMAIL", phone),
            Err(Rejection::EmailMfaNotEnabled)
        );
        assert_eq!(
            d(&sms_only, "SMSS", phone),
            Err(Rejection::UnknownPreference)
        );
        let off = MfaConfig {
            mode: MfaMode::Off,
            ..all
        };
        assert_eq!(d(&off, "SMS", phone), Err(Rejection::MfaOff));
    }
}
