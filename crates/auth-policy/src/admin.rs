//! The operator's decisions (`mfa-admin`): what an explicit change of a
//! user's MFA must send, or why the policy refuses it.
//!
//! The post-confirmation decision ([`crate::decide_mfa`]) is about a user's
//! *stated* preference and never fails a confirmation; an operator's command
//! is explicit, so a change that cannot work is refused before any call, with
//! a message that says what to do instead. Cognito would refuse some of these
//! too (SMS without a phone), but not all (moto accepts SMS without a phone,
//! and Cognito's messages differ from moto's), so the checks live here.

use std::fmt;

use crate::config::{MfaConfig, MfaMode};
use crate::mfa::{MethodSetting, MfaSettings};
use crate::phone::is_e164;
use crate::preference::MfaPreference;
use crate::redact::mask_phone;

/// Why an operator's MFA change is refused before it reaches Cognito.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRefusal {
    /// `MFA_CONFIGURATION=OFF`: the pool has no MFA to set.
    MfaOff,
    /// The method is not among `MFA_METHODS`.
    MethodNotEnabled(MfaPreference),
    /// `NOMFA` while `MFA_CONFIGURATION=ON`.
    NoMfaInOnPool,
    /// SMS MFA for a user without `phone_number`.
    NoPhone,
    /// A phone number that is not E.164 (kept masked).
    BadPhone { masked: String },
}

impl AdminRefusal {
    /// A stable code for scripts and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MfaOff => "mfa_off",
            Self::MethodNotEnabled(_) => "method_not_enabled",
            Self::NoMfaInOnPool => "nomfa_in_on_pool",
            Self::NoPhone => "no_phone",
            Self::BadPhone { .. } => "bad_phone",
        }
    }
}

impl fmt::Display for AdminRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MfaOff => write!(
                f,
                "{}=OFF: this pool has no MFA to set (if the pool's MFA is on, set {} to match it)",
                MfaConfig::MODE_VAR,
                MfaConfig::MODE_VAR
            ),
            Self::MethodNotEnabled(p) => write!(
                f,
                "{p} MFA is not enabled in this pool ({} does not list it): choose another method",
                MfaConfig::METHODS_VAR
            ),
            Self::NoMfaInOnPool => write!(
                f,
                "NOMFA is refused: {}=ON, every user must keep a second factor; choose SMS, TOTP or EMAIL",
                MfaConfig::MODE_VAR
            ),
            Self::NoPhone => f.write_str(
                "the user has no phone_number, which SMS MFA needs: give one with `recover-lost-totp USER --phone +E164`",
            ),
            Self::BadPhone { masked } => write!(
                f,
                "phone number {masked} is not E.164: write +, the country code and the number, digits only (e.g. +14155550123)"
            ),
        }
    }
}

impl std::error::Error for AdminRefusal {}

/// SMS on and preferred, TOTP off: the state after a lost authenticator.
pub const SMS_ONLY: MfaSettings = MfaSettings {
    sms: Some(MethodSetting {
        enabled: true,
        preferred: true,
    }),
    totp: Some(MethodSetting {
        enabled: false,
        preferred: false,
    }),
    email: None,
};

/// `mfa-admin set-preference USER SMS|TOTP|EMAIL|NOMFA`.
///
/// * `SMS`: SMS enabled and preferred (needs a phone); TOTP left as it is.
/// * `TOTP`: TOTP enabled and preferred; SMS left as it is (the fallback).
///   Whether the user has associated an authenticator is only known to
///   Cognito, which refuses otherwise.
/// * `EMAIL`: email enabled and preferred; the others left as they are.
/// * `NOMFA`: every method the pool has disabled; refused when
///   `MFA_CONFIGURATION=ON`.
pub fn decide_set_preference(
    config: &MfaConfig,
    preference: MfaPreference,
    has_phone: bool,
) -> Result<MfaSettings, AdminRefusal> {
    match preference {
        MfaPreference::NoMfa if config.mode == MfaMode::On => Err(AdminRefusal::NoMfaInOnPool),
        MfaPreference::NoMfa => Ok(MfaSettings {
            // Email only where the pool has it: a pool without email MFA
            // refuses EmailMfaSettings.
            email: config.methods.email.then_some(MethodSetting {
                enabled: false,
                preferred: false,
            }),
            ..MfaSettings::NONE
        }),
        _ if config.mode == MfaMode::Off => Err(AdminRefusal::MfaOff),
        method if !config.methods.allows(method) => Err(AdminRefusal::MethodNotEnabled(method)),
        MfaPreference::Sms if !has_phone => Err(AdminRefusal::NoPhone),
        MfaPreference::Sms => Ok(MfaSettings::SMS_PREFERRED),
        MfaPreference::Totp => Ok(MfaSettings::TOTP_PREFERRED),
        MfaPreference::Email => Ok(MfaSettings::EMAIL_PREFERRED),
    }
}

/// What `mfa-admin recover-lost-totp USER --phone E164` does: set the phone
/// (marked verified: the operator vouches for it), then [`SMS_ONLY`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// `(name, value)` pairs for `AdminUpdateUserAttributes`.
    pub attributes: Vec<(String, String)>,
    pub settings: MfaSettings,
}

/// The guide's lost-device recovery: the user lost the authenticator, the
/// operator switches the account to SMS on a phone they have checked.
pub fn decide_recover_lost_totp(config: &MfaConfig, phone: &str) -> Result<Recovery, AdminRefusal> {
    let phone = phone.trim();
    if !is_e164(phone) {
        return Err(AdminRefusal::BadPhone {
            masked: mask_phone(phone),
        });
    }
    if config.mode == MfaMode::Off {
        return Err(AdminRefusal::MfaOff);
    }
    if !config.methods.sms {
        return Err(AdminRefusal::MethodNotEnabled(MfaPreference::Sms));
    }
    Ok(Recovery {
        attributes: vec![
            ("phone_number".to_owned(), phone.to_owned()),
            ("phone_number_verified".to_owned(), "true".to_owned()),
        ],
        settings: SMS_ONLY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MfaMethods;

    fn cfg(mode: MfaMode, sms: bool, totp: bool) -> MfaConfig {
        MfaConfig {
            mode,
            methods: MfaMethods {
                sms,
                totp,
                email: false,
            },
            default_preference: if sms {
                MfaPreference::Sms
            } else {
                MfaPreference::Totp
            },
        }
    }

    #[test]
    fn sms_needs_a_phone_and_an_sms_pool() {
        let c = cfg(MfaMode::Optional, true, true);
        assert_eq!(
            decide_set_preference(&c, MfaPreference::Sms, true),
            Ok(MfaSettings::SMS_PREFERRED)
        );
        let e = decide_set_preference(&c, MfaPreference::Sms, false).unwrap_err();
        assert_eq!(e, AdminRefusal::NoPhone);
        assert!(e.to_string().contains("recover-lost-totp"), "{e}");
        let totp_only = cfg(MfaMode::Optional, false, true);
        assert_eq!(
            decide_set_preference(&totp_only, MfaPreference::Sms, true),
            Err(AdminRefusal::MethodNotEnabled(MfaPreference::Sms))
        );
    }

    #[test]
    fn totp_is_enabled_and_preferred_without_touching_sms() {
        let c = cfg(MfaMode::On, true, true);
        let s = decide_set_preference(&c, MfaPreference::Totp, false).unwrap();
        assert_eq!(
            s.totp,
            Some(MethodSetting {
                enabled: true,
                preferred: true
            })
        );
        assert_eq!(s.sms, None);
        let sms_only = cfg(MfaMode::Optional, true, false);
        assert_eq!(
            decide_set_preference(&sms_only, MfaPreference::Totp, true),
            Err(AdminRefusal::MethodNotEnabled(MfaPreference::Totp))
        );
    }

    #[test]
    fn nomfa_disables_both_except_in_an_on_pool() {
        let optional = cfg(MfaMode::Optional, true, true);
        let s = decide_set_preference(&optional, MfaPreference::NoMfa, true).unwrap();
        assert_eq!(s, MfaSettings::NONE);
        assert!(s.sms.is_some_and(|m| !m.enabled) && s.totp.is_some_and(|m| !m.enabled));
        let on = cfg(MfaMode::On, true, true);
        let e = decide_set_preference(&on, MfaPreference::NoMfa, true).unwrap_err();
        assert_eq!(e, AdminRefusal::NoMfaInOnPool);
        assert!(e.to_string().contains("MFA_CONFIGURATION=ON"), "{e}");
        // In an OFF pool turning everything off is harmless; turning on is not.
        let off = cfg(MfaMode::Off, true, true);
        assert!(decide_set_preference(&off, MfaPreference::NoMfa, true).is_ok());
        assert_eq!(
            decide_set_preference(&off, MfaPreference::Sms, true),
            Err(AdminRefusal::MfaOff)
        );
    }

    #[test]
    fn recovery_sets_a_verified_phone_and_sms_only() {
        let c = cfg(MfaMode::Optional, true, true);
        let r = decide_recover_lost_totp(&c, " +819012345678 ").unwrap();
        assert_eq!(
            r.attributes,
            vec![
                ("phone_number".to_owned(), "+819012345678".to_owned()),
                ("phone_number_verified".to_owned(), "true".to_owned())
            ]
        );
        assert_eq!(
            r.settings.sms.map(|m| (m.enabled, m.preferred)),
            Some((true, true))
        );
        assert_eq!(
            r.settings.totp.map(|m| (m.enabled, m.preferred)),
            Some((false, false))
        );
    }

    #[test]
    fn recovery_refuses_bad_phones_without_echoing_them() {
        let c = cfg(MfaMode::Optional, true, true);
        for bad in ["09012345678", "+81 90 1234 5678", "+0123456789", ""] {
            let e = decide_recover_lost_totp(&c, bad).unwrap_err();
            assert_eq!(e.code(), "bad_phone", "{bad}");
            if bad.len() > 8 {
                assert!(!e.to_string().contains(bad), "{e}");
            }
        }
        let totp_only = cfg(MfaMode::Optional, false, true);
        assert_eq!(
            decide_recover_lost_totp(&totp_only, "+14155550123"),
            Err(AdminRefusal::MethodNotEnabled(MfaPreference::Sms))
        );
    }
}
