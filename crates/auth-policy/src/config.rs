use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::email::DomainPattern;
use crate::error::ConfigError;
use crate::preference::MfaPreference;

/// Where configuration values come from: the process environment in the
/// functions, a map in tests. Blank values count as unset.
pub trait ConfigSource {
    fn value(&self, key: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> ConfigSource for F {
    fn value(&self, key: &str) -> Option<String> {
        self(key)
    }
}

impl ConfigSource for HashMap<String, String> {
    fn value(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl ConfigSource for BTreeMap<String, String> {
    fn value(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl ConfigSource for [(&str, &str)] {
    fn value(&self, key: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    }
}

pub(crate) fn non_blank(source: &(impl ConfigSource + ?Sized), key: &str) -> Option<String> {
    source
        .value(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The pool's `MfaConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MfaMode {
    Off,
    Optional,
    On,
}

impl MfaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Optional => "OPTIONAL",
            Self::On => "ON",
        }
    }
}

/// The pool's `EnabledMfas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MfaMethods {
    pub sms: bool,
    pub totp: bool,
    /// `EMAIL_OTP` in the pool's `EnabledMfas`.
    pub email: bool,
}

/// As `MFA_METHODS` is written: `SMS,TOTP`.
impl std::fmt::Display for MfaMethods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.sms, "SMS"),
            (self.totp, "TOTP"),
            (self.email, "EMAIL"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&names.join(","))
    }
}

impl MfaMethods {
    /// `SMS,TOTP`, the default.
    pub const BOTH: Self = Self {
        sms: true,
        totp: true,
        email: false,
    };

    /// Whether the pool lets a user pick `preference` (`NOMFA` is not a method
    /// and is always "enabled" here; the mode decides about it).
    pub fn allows(self, preference: MfaPreference) -> bool {
        match preference {
            MfaPreference::Sms => self.sms,
            MfaPreference::Totp => self.totp,
            MfaPreference::Email => self.email,
            MfaPreference::NoMfa => true,
        }
    }
}

/// The MFA part of the policy: `MFA_CONFIGURATION`, `MFA_METHODS`,
/// `MFA_DEFAULT_PREFERENCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MfaConfig {
    pub mode: MfaMode,
    pub methods: MfaMethods,
    pub default_preference: MfaPreference,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            mode: MfaMode::Optional,
            methods: MfaMethods::BOTH,
            default_preference: MfaPreference::Sms,
        }
    }
}

impl MfaConfig {
    pub const MODE_VAR: &'static str = "MFA_CONFIGURATION";
    pub const METHODS_VAR: &'static str = "MFA_METHODS";
    pub const DEFAULT_VAR: &'static str = "MFA_DEFAULT_PREFERENCE";

    /// Reads and cross-checks the three MFA variables; unset ones take their
    /// defaults (`OPTIONAL`, `SMS,TOTP`, `SMS`).
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, ConfigError> {
        let d = Self::default();
        let mode = match non_blank(source, Self::MODE_VAR) {
            None => d.mode,
            Some(v) => match v.to_ascii_uppercase().as_str() {
                "OFF" => MfaMode::Off,
                "OPTIONAL" => MfaMode::Optional,
                "ON" => MfaMode::On,
                _ => {
                    return Err(ConfigError::Invalid {
                        variable: Self::MODE_VAR,
                        value: v,
                        expected: "one of OFF, OPTIONAL, ON",
                    });
                }
            },
        };
        let methods = match non_blank(source, Self::METHODS_VAR) {
            None => d.methods,
            Some(v) => parse_methods(&v)?,
        };
        let default_preference = match non_blank(source, Self::DEFAULT_VAR) {
            None => d.default_preference,
            Some(v) => MfaPreference::parse(&v).map_err(|_| ConfigError::Invalid {
                variable: Self::DEFAULT_VAR,
                value: v,
                expected: "one of SMS, TOTP, EMAIL, NOMFA",
            })?,
        };
        let config = Self {
            mode,
            methods,
            default_preference,
        };
        config.check()?;
        Ok(config)
    }

    /// The cross-checks between the three values.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.methods.allows(self.default_preference) {
            return Err(ConfigError::Conflict(format!(
                "{}={} names a method that {} does not enable",
                Self::DEFAULT_VAR,
                self.default_preference,
                Self::METHODS_VAR
            )));
        }
        if self.mode == MfaMode::On && self.default_preference == MfaPreference::NoMfa {
            return Err(ConfigError::Conflict(format!(
                "{}=NOMFA cannot be the default when {}=ON",
                Self::DEFAULT_VAR,
                Self::MODE_VAR
            )));
        }
        Ok(())
    }

    /// Whether a user may choose `preference` in this pool.
    pub fn permits(&self, preference: MfaPreference) -> bool {
        match preference {
            MfaPreference::NoMfa => self.mode != MfaMode::On,
            method => self.methods.allows(method),
        }
    }
}

fn parse_methods(value: &str) -> Result<MfaMethods, ConfigError> {
    let invalid = || ConfigError::Invalid {
        variable: MfaConfig::METHODS_VAR,
        value: value.to_owned(),
        expected: "a comma-separated list of SMS, TOTP and EMAIL, e.g. SMS,TOTP or SMS,TOTP,EMAIL",
    };
    let mut methods = MfaMethods {
        sms: false,
        totp: false,
        email: false,
    };
    for item in value.split(',') {
        match item.trim().to_ascii_uppercase().as_str() {
            "SMS" => methods.sms = true,
            "TOTP" => methods.totp = true,
            "EMAIL" => methods.email = true,
            _ => return Err(invalid()),
        }
    }
    Ok(methods)
}

/// `ALLOWED_EMAIL_DOMAINS` and `BLOCKED_EMAIL_DOMAINS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainRules {
    pub allowed: Vec<DomainPattern>,
    pub blocked: Vec<DomainPattern>,
}

impl DomainRules {
    pub const ALLOWED_VAR: &'static str = "ALLOWED_EMAIL_DOMAINS";
    pub const BLOCKED_VAR: &'static str = "BLOCKED_EMAIL_DOMAINS";

    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, ConfigError> {
        Ok(Self {
            allowed: parse_domains(source, Self::ALLOWED_VAR)?,
            blocked: parse_domains(source, Self::BLOCKED_VAR)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty() && self.blocked.is_empty()
    }
}

fn parse_domains(
    source: &(impl ConfigSource + ?Sized),
    variable: &'static str,
) -> Result<Vec<DomainPattern>, ConfigError> {
    let Some(value) = non_blank(source, variable) else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            DomainPattern::parse(entry).map_err(|hint| ConfigError::BadDomain {
                variable,
                entry: entry.to_owned(),
                hint,
            })
        })
        .collect()
}

/// Everything `pre-sign-up` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpConfig {
    pub mfa: MfaConfig,
    pub domains: DomainRules,
}

impl SignUpConfig {
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, ConfigError> {
        Ok(Self {
            mfa: MfaConfig::from_source(source)?,
            domains: DomainRules::from_source(source)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mfa(pairs: &[(&str, &str)]) -> Result<MfaConfig, ConfigError> {
        MfaConfig::from_source(pairs)
    }

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        assert_eq!(mfa(&[]), Ok(MfaConfig::default()));
        assert_eq!(
            mfa(&[("MFA_CONFIGURATION", " "), ("MFA_METHODS", "")]),
            Ok(MfaConfig::default())
        );
    }

    #[test]
    fn reads_every_value() {
        let c = mfa(&[
            ("MFA_CONFIGURATION", "on"),
            ("MFA_METHODS", "TOTP"),
            ("MFA_DEFAULT_PREFERENCE", "TOTP"),
        ])
        .unwrap();
        assert_eq!(c.mode, MfaMode::On);
        assert_eq!(
            c.methods,
            MfaMethods {
                sms: false,
                totp: true,
                email: false
            }
        );
        assert_eq!(c.default_preference, MfaPreference::Totp);
        let e = mfa(&[
            ("MFA_METHODS", "sms, totp ,EMAIL"),
            ("MFA_DEFAULT_PREFERENCE", "EMAIL"),
        ])
        .unwrap();
        assert_eq!(
            e.methods,
            MfaMethods {
                sms: true,
                totp: true,
                email: true
            }
        );
        assert_eq!(e.methods.to_string(), "SMS,TOTP,EMAIL");
        assert!(e.permits(MfaPreference::Email));
        assert!(!MfaConfig::default().permits(MfaPreference::Email));
    }

    #[test]
    fn errors_name_the_variable_and_the_allowed_values() {
        let e = mfa(&[("MFA_CONFIGURATION", "MAYBE")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MFA_CONFIGURATION") && e.contains("OFF, OPTIONAL, ON"),
            "{e}"
        );
        let e = mfa(&[("MFA_METHODS", "SMS,VOICE")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MFA_METHODS") && e.contains("SMS, TOTP and EMAIL"),
            "{e}"
        );
        let e = mfa(&[("MFA_METHODS", "SMS,,TOTP")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("MFA_METHODS"), "{e}");
        // An unknown value names the allowed ones.
        let e = mfa(&[("MFA_DEFAULT_PREFERENCE", "PIGEON")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("MFA_DEFAULT_PREFERENCE") && e.contains("NOMFA"),
            "{e}"
        );
    }

    #[test]
    fn default_must_be_an_enabled_method_or_nomfa() {
        let e = mfa(&[("MFA_METHODS", "TOTP")]).unwrap_err().to_string();
        assert!(
            e.contains("MFA_DEFAULT_PREFERENCE=SMS") && e.contains("MFA_METHODS"),
            "{e}"
        );
        assert!(mfa(&[("MFA_METHODS", "TOTP"), ("MFA_DEFAULT_PREFERENCE", "NOMFA")]).is_ok());
    }

    #[test]
    fn nomfa_cannot_be_the_default_of_an_on_pool() {
        let e = mfa(&[
            ("MFA_CONFIGURATION", "ON"),
            ("MFA_DEFAULT_PREFERENCE", "NOMFA"),
        ])
        .unwrap_err();
        assert!(matches!(e, ConfigError::Conflict(_)));
        assert!(
            mfa(&[
                ("MFA_CONFIGURATION", "OPTIONAL"),
                ("MFA_DEFAULT_PREFERENCE", "NOMFA")
            ])
            .is_ok()
        );
    }

    #[test]
    fn permits_follows_methods_and_mode() {
        let on_totp = MfaConfig {
            mode: MfaMode::On,
            methods: MfaMethods {
                email: false,
                sms: false,
                totp: true,
            },
            default_preference: MfaPreference::Totp,
        };
        assert!(on_totp.permits(MfaPreference::Totp));
        assert!(!on_totp.permits(MfaPreference::Sms));
        assert!(!on_totp.permits(MfaPreference::NoMfa));
        assert!(MfaConfig::default().permits(MfaPreference::NoMfa));
    }

    #[test]
    fn domain_lists_parse_and_name_the_variable_on_error() {
        let r = DomainRules::from_source(
            &[
                ("ALLOWED_EMAIL_DOMAINS", "example.com, .corp.example.com ,"),
                ("BLOCKED_EMAIL_DOMAINS", ""),
            ][..],
        )
        .unwrap();
        assert_eq!(r.allowed.len(), 2);
        assert!(r.blocked.is_empty());
        let e = DomainRules::from_source(&[("BLOCKED_EMAIL_DOMAINS", "*.spam.test")][..])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BLOCKED_EMAIL_DOMAINS") && e.contains(".example.com"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_domain_list_does_not_stop_the_mfa_config() {
        let source = [("ALLOWED_EMAIL_DOMAINS", "not a domain")];
        assert!(MfaConfig::from_source(&source[..]).is_ok());
        assert!(SignUpConfig::from_source(&source[..]).is_err());
    }
}
