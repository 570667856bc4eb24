use std::fmt;

use serde::Serialize;

use crate::config::{MfaConfig, MfaMode};
use crate::preference::MfaPreference;

/// One method's part of an `AdminSetUserMFAPreference` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MethodSetting {
    pub enabled: bool,
    pub preferred: bool,
}

/// What to send with `AdminSetUserMFAPreference`; `None` leaves that method
/// as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct MfaSettings {
    pub sms: Option<MethodSetting>,
    pub totp: Option<MethodSetting>,
    /// `EmailMfaSettings` (sent only when set: a pool without email MFA
    /// never sees it).
    pub email: Option<MethodSetting>,
}

impl MfaSettings {
    pub const SMS_PREFERRED: Self = Self {
        sms: Some(MethodSetting {
            enabled: true,
            preferred: true,
        }),
        totp: None,
        email: None,
    };
    /// SMS on as a fallback factor until the user sets up an authenticator.
    pub const SMS_FALLBACK: Self = Self {
        sms: Some(MethodSetting {
            enabled: true,
            preferred: false,
        }),
        totp: None,
        email: None,
    };
    pub const TOTP_PREFERRED: Self = Self {
        sms: None,
        totp: Some(MethodSetting {
            enabled: true,
            preferred: true,
        }),
        email: None,
    };
    /// Email codes on and preferred (`EMAIL` chosen).
    pub const EMAIL_PREFERRED: Self = Self {
        sms: None,
        totp: None,
        email: Some(MethodSetting {
            enabled: true,
            preferred: true,
        }),
    };
    /// Email codes on, not preferred: the interim factor of a user who cannot
    /// receive the chosen one yet (TOTP before set-up, SMS without a phone).
    pub const EMAIL_FALLBACK: Self = Self {
        sms: None,
        totp: None,
        email: Some(MethodSetting {
            enabled: true,
            preferred: false,
        }),
    };
    pub const NONE: Self = Self {
        sms: Some(MethodSetting {
            enabled: false,
            preferred: false,
        }),
        totp: Some(MethodSetting {
            enabled: false,
            preferred: false,
        }),
        email: None,
    };
}

/// `sms=preferred totp=unchanged`: for log lines and the operator's output.
impl fmt::Display for MfaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |s: Option<MethodSetting>| match s {
            None => "unchanged",
            Some(s) if s.preferred => "preferred",
            Some(s) if s.enabled => "enabled",
            Some(_) => "disabled",
        };
        write!(f, "sms={} totp={}", part(self.sms), part(self.totp))?;
        // Pools without email MFA never see it: their lines stay as before.
        if self.email.is_some() {
            write!(f, " email={}", part(self.email))?;
        }
        Ok(())
    }
}

/// Why nothing is applied after a confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaSkipReason {
    /// `MFA_CONFIGURATION=OFF`.
    MfaOff,
    /// The effective preference is `NOMFA`.
    NoMfaChosen,
    /// TOTP cannot be enabled before the user associates an authenticator,
    /// and there is no SMS fallback (no phone, or the pool has no SMS MFA).
    TotpSetUpInApp,
    /// SMS is wanted but the user has no phone number (a warning).
    SmsNeedsPhone,
    /// Email codes are wanted but the user has no email address (a warning).
    EmailNeedsAddress,
    /// The wanted method is no longer enabled in the pool (a warning).
    MethodNotEnabled,
    /// `custom:mfa_preference` holds something unknown (a warning).
    UnknownPreference,
    /// Not a `PostConfirmation_ConfirmSignUp` (password reset confirmations).
    NotSignUp,
    /// Federated users get no MFA from Cognito.
    ExternalProvider,
}

impl MfaSkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MfaOff => "mfa_off",
            Self::NoMfaChosen => "nomfa_chosen",
            Self::TotpSetUpInApp => "totp_set_up_in_app",
            Self::SmsNeedsPhone => "sms_needs_phone",
            Self::EmailNeedsAddress => "email_needs_address",
            Self::MethodNotEnabled => "method_not_enabled",
            Self::UnknownPreference => "unknown_preference",
            Self::NotSignUp => "not_sign_up",
            Self::ExternalProvider => "external_provider",
        }
    }

    /// Whether an operator should hear about it (the user ends up with less
    /// MFA than the policy wants).
    pub fn is_warning(self) -> bool {
        matches!(
            self,
            Self::SmsNeedsPhone
                | Self::EmailNeedsAddress
                | Self::MethodNotEnabled
                | Self::UnknownPreference
        )
    }
}

impl fmt::Display for MfaSkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the post-confirmation trigger (and `mfa-admin apply-policy`) does for
/// one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MfaDecision {
    Apply {
        preference: MfaPreference,
        settings: MfaSettings,
    },
    Skip {
        reason: MfaSkipReason,
    },
}

/// The MFA settings for a confirmed user of the pool.
///
/// * `MFA_CONFIGURATION=OFF`, or an effective `NOMFA`: nothing.
/// * `SMS`: SMS enabled and preferred; without a phone number nothing can be
///   applied (a warning, not a failure: the confirmation stands).
/// * `TOTP`: an authenticator must be associated before TOTP can be enabled,
///   so in a pool that enables SMS and for a user with a phone, SMS is enabled
///   but not preferred: a second factor from the first sign-in, and the
///   operator's fallback after a lost device. Otherwise nothing: the app runs
///   the TOTP set-up (in an `ON` pool Cognito itself asks for it).
///
/// `preference` is the raw `custom:mfa_preference` (absent or unknown: the
/// pool's default).
pub fn decide_mfa(config: &MfaConfig, preference: Option<&str>, has_phone: bool) -> MfaDecision {
    decide_mfa_with(config, preference, has_phone, true)
}

/// [`decide_mfa`] knowing whether the user has an email address: with
/// `EMAIL` among the methods, a user the policy gives a factor they cannot
/// receive yet (TOTP before set-up with no SMS fallback, SMS without a
/// phone) gets email enabled, not preferred, as the interim factor, so no
/// confirmed user whose policy assigns a factor signs in on the password
/// alone. `EMAIL` chosen: email enabled and preferred.
pub fn decide_mfa_with(
    config: &MfaConfig,
    preference: Option<&str>,
    has_phone: bool,
    has_email: bool,
) -> MfaDecision {
    let skip = |reason| MfaDecision::Skip { reason };
    if config.mode == MfaMode::Off {
        return skip(MfaSkipReason::MfaOff);
    }
    // An unknown value (users can write the attribute) means the pool's
    // default, in every function: a typo must never switch MFA off.
    let effective = MfaPreference::effective(preference, config.default_preference)
        .unwrap_or(config.default_preference);
    let apply = |settings| MfaDecision::Apply {
        preference: effective,
        settings,
    };
    let email_interim = config.methods.email && has_email;
    match effective {
        MfaPreference::NoMfa => skip(MfaSkipReason::NoMfaChosen),
        MfaPreference::Sms if !config.methods.sms => skip(MfaSkipReason::MethodNotEnabled),
        MfaPreference::Sms if !has_phone && email_interim => apply(MfaSettings::EMAIL_FALLBACK),
        MfaPreference::Sms if !has_phone => skip(MfaSkipReason::SmsNeedsPhone),
        MfaPreference::Sms => apply(MfaSettings::SMS_PREFERRED),
        MfaPreference::Totp if !config.methods.totp => skip(MfaSkipReason::MethodNotEnabled),
        MfaPreference::Totp if config.methods.sms && has_phone => apply(MfaSettings::SMS_FALLBACK),
        MfaPreference::Totp if email_interim => apply(MfaSettings::EMAIL_FALLBACK),
        MfaPreference::Totp => skip(MfaSkipReason::TotpSetUpInApp),
        MfaPreference::Email if !config.methods.email => skip(MfaSkipReason::MethodNotEnabled),
        MfaPreference::Email if !has_email => skip(MfaSkipReason::EmailNeedsAddress),
        MfaPreference::Email => apply(MfaSettings::EMAIL_PREFERRED),
    }
}

/// The attribute Cognito puts in trigger events with the user's status
/// (set by Cognito, never writable by the user).
pub const USER_STATUS_ATTRIBUTE: &str = "cognito:user_status";
/// The status of users who signed in through a federated identity provider.
pub const EXTERNAL_PROVIDER: &str = "EXTERNAL_PROVIDER";

/// [`decide_mfa`] for a user as a trigger event shows them (`userAttributes`):
/// federated users get no MFA from Cognito; otherwise the user's
/// `custom:mfa_preference` and whether a non-blank `phone_number` is set.
/// Post-confirmation and the pre-authentication guard both decide with it,
/// so the guard applies exactly what post-confirmation would have.
pub fn decide_user_mfa<S: std::hash::BuildHasher>(
    config: &MfaConfig,
    attributes: &std::collections::HashMap<String, String, S>,
) -> MfaDecision {
    if attributes.get(USER_STATUS_ATTRIBUTE).map(String::as_str) == Some(EXTERNAL_PROVIDER) {
        return MfaDecision::Skip {
            reason: MfaSkipReason::ExternalProvider,
        };
    }
    let present = |name: &str| attributes.get(name).is_some_and(|v| !v.trim().is_empty());
    decide_mfa_with(
        config,
        attributes
            .get(crate::PREFERENCE_ATTRIBUTE)
            .map(String::as_str),
        present("phone_number"),
        present("email"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MfaMethods;

    #[test]
    fn user_decisions_leave_federated_users_and_blank_phones_alone() {
        let attrs = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let c = MfaConfig::default();
        assert_eq!(
            decide_user_mfa(
                &c,
                &attrs(&[
                    ("phone_number", "+14155550123"),
                    (USER_STATUS_ATTRIBUTE, EXTERNAL_PROVIDER)
                ])
            ),
            MfaDecision::Skip {
                reason: MfaSkipReason::ExternalProvider
            }
        );
        assert_eq!(
            decide_user_mfa(&c, &attrs(&[("phone_number", " ")])),
            MfaDecision::Skip {
                reason: MfaSkipReason::SmsNeedsPhone
            }
        );
        assert_eq!(
            decide_user_mfa(
                &c,
                &attrs(&[
                    ("phone_number", "+14155550123"),
                    (USER_STATUS_ATTRIBUTE, "CONFIRMED")
                ])
            ),
            MfaDecision::Apply {
                preference: MfaPreference::Sms,
                settings: MfaSettings::SMS_PREFERRED
            }
        );
    }

    fn cfg(mode: MfaMode, sms: bool, totp: bool, default: MfaPreference) -> MfaConfig {
        MfaConfig {
            mode,
            methods: MfaMethods {
                sms,
                totp,
                email: false,
            },
            default_preference: default,
        }
    }

    fn settings(d: MfaDecision) -> MfaSettings {
        match d {
            MfaDecision::Apply { settings, .. } => settings,
            other => panic!("expected settings, got {other:?}"),
        }
    }

    fn reason(d: MfaDecision) -> MfaSkipReason {
        match d {
            MfaDecision::Skip { reason } => reason,
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn sms_is_enabled_and_preferred_when_there_is_a_phone() {
        let c = cfg(MfaMode::Optional, true, true, MfaPreference::Totp);
        let s = settings(decide_mfa(&c, Some("SMS"), true));
        assert_eq!(
            s.sms,
            Some(MethodSetting {
                enabled: true,
                preferred: true
            })
        );
        assert_eq!(s.totp, None, "TOTP is never touched");
        let r = reason(decide_mfa(&c, Some("SMS"), false));
        assert_eq!(r, MfaSkipReason::SmsNeedsPhone);
        assert!(r.is_warning());
    }

    #[test]
    fn totp_gets_a_non_preferred_sms_fallback_only_with_phone_and_sms_pool() {
        let both = cfg(MfaMode::Optional, true, true, MfaPreference::Sms);
        let s = settings(decide_mfa(&both, Some("TOTP"), true));
        assert_eq!(
            s.sms,
            Some(MethodSetting {
                enabled: true,
                preferred: false
            })
        );
        assert_eq!(s.totp, None);
        assert_eq!(
            reason(decide_mfa(&both, Some("TOTP"), false)),
            MfaSkipReason::TotpSetUpInApp
        );
        let totp_only = cfg(MfaMode::On, false, true, MfaPreference::Totp);
        let r = reason(decide_mfa(&totp_only, None, true));
        assert_eq!(r, MfaSkipReason::TotpSetUpInApp);
        assert!(!r.is_warning());
    }

    #[test]
    fn nomfa_and_off_do_nothing() {
        let c = cfg(MfaMode::Optional, true, true, MfaPreference::NoMfa);
        assert_eq!(
            reason(decide_mfa(&c, None, true)),
            MfaSkipReason::NoMfaChosen
        );
        let off = cfg(MfaMode::Off, true, true, MfaPreference::Sms);
        assert_eq!(
            reason(decide_mfa(&off, Some("SMS"), true)),
            MfaSkipReason::MfaOff
        );
    }

    #[test]
    fn the_default_applies_when_nothing_was_stated() {
        let c = cfg(MfaMode::On, true, true, MfaPreference::Sms);
        assert_eq!(
            settings(decide_mfa(&c, None, true)),
            MfaSettings::SMS_PREFERRED
        );
        assert_eq!(
            settings(decide_mfa(&c, Some(""), true)),
            MfaSettings::SMS_PREFERRED
        );
    }

    #[test]
    fn stale_or_unknown_choices_warn_instead_of_failing() {
        let sms_only = cfg(MfaMode::Optional, true, false, MfaPreference::Sms);
        assert_eq!(
            reason(decide_mfa(&sms_only, Some("TOTP"), true)),
            MfaSkipReason::MethodNotEnabled
        );
        let totp_only = cfg(MfaMode::Optional, false, true, MfaPreference::Totp);
        assert_eq!(
            reason(decide_mfa(&totp_only, Some("SMS"), true)),
            MfaSkipReason::MethodNotEnabled
        );
        // An unknown choice is the pool's default, not a skip.
        assert_eq!(
            decide_mfa(&sms_only, Some("carrier-pigeon"), true),
            decide_mfa(&sms_only, None, true)
        );
        assert_eq!(
            settings(decide_mfa(&sms_only, Some("carrier-pigeon"), true)),
            MfaSettings::SMS_PREFERRED
        );
        let totp_default = cfg(MfaMode::Optional, true, true, MfaPreference::Totp);
        assert_eq!(
            decide_mfa(&totp_default, Some("EMAIL?"), true),
            decide_mfa(&totp_default, None, true)
        );
    }

    #[test]
    fn with_email_on_every_user_the_policy_gives_a_factor_gets_one() {
        let mut c = cfg(MfaMode::Optional, true, true, MfaPreference::Sms);
        c.methods.email = true;
        // TOTP before set-up, no phone: email, not preferred.
        assert_eq!(
            settings(decide_mfa_with(&c, Some("TOTP"), false, true)),
            MfaSettings::EMAIL_FALLBACK
        );
        // SMS without a phone: email, not preferred.
        assert_eq!(
            settings(decide_mfa_with(&c, Some("SMS"), false, true)),
            MfaSettings::EMAIL_FALLBACK
        );
        // TOTP with a phone keeps the SMS fallback.
        assert_eq!(
            settings(decide_mfa_with(&c, Some("TOTP"), true, true)),
            MfaSettings::SMS_FALLBACK
        );
        // EMAIL chosen: preferred.
        assert_eq!(
            settings(decide_mfa_with(&c, Some("EMAIL"), false, true)),
            MfaSettings::EMAIL_PREFERRED
        );
        // No address: nothing to enable.
        assert_eq!(
            reason(decide_mfa_with(&c, Some("EMAIL"), true, false)),
            MfaSkipReason::EmailNeedsAddress
        );
        assert_eq!(
            reason(decide_mfa_with(&c, Some("TOTP"), false, false)),
            MfaSkipReason::TotpSetUpInApp
        );
        // Without EMAIL among the methods, nothing changes.
        let plain = cfg(MfaMode::Optional, true, true, MfaPreference::Sms);
        assert_eq!(
            reason(decide_mfa_with(&plain, Some("TOTP"), false, true)),
            MfaSkipReason::TotpSetUpInApp
        );
        assert_eq!(
            reason(decide_mfa_with(&plain, Some("EMAIL"), true, true)),
            MfaSkipReason::MethodNotEnabled
        );
        assert_eq!(
            MfaSettings::EMAIL_FALLBACK.to_string(),
            "sms=unchanged totp=unchanged email=enabled"
        );
    }

    #[test]
    fn settings_read_as_one_word_per_method() {
        assert_eq!(
            MfaSettings::SMS_PREFERRED.to_string(),
            "sms=preferred totp=unchanged"
        );
        assert_eq!(
            MfaSettings::SMS_FALLBACK.to_string(),
            "sms=enabled totp=unchanged"
        );
        assert_eq!(MfaSettings::NONE.to_string(), "sms=disabled totp=disabled");
    }

    #[test]
    fn the_decision_is_the_same_on_a_second_run() {
        let c = MfaConfig::default();
        for pref in [None, Some("SMS"), Some("TOTP"), Some("NOMFA"), Some("x")] {
            for phone in [true, false] {
                assert_eq!(decide_mfa(&c, pref, phone), decide_mfa(&c, pref, phone));
            }
        }
    }
}
