//! What the admin calls return, independent of the SDK's types (so the fake
//! and the adapter answer alike, and callers need no SDK imports).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use auth_policy::{EXTERNAL_PROVIDER, USER_STATUS_ATTRIBUTE};

/// A second factor, with Cognito's names (`UserMFASettingList`,
/// `PreferredMfaSetting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum MfaFactor {
    #[serde(rename = "SMS_MFA")]
    Sms,
    #[serde(rename = "SOFTWARE_TOKEN_MFA")]
    SoftwareToken,
    /// Email one-time codes (Essentials tier or higher).
    #[serde(rename = "EMAIL_OTP")]
    Email,
}

impl MfaFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "SMS_MFA",
            Self::SoftwareToken => "SOFTWARE_TOKEN_MFA",
            Self::Email => "EMAIL_OTP",
        }
    }

    /// Cognito's name; `None` for anything else (e.g. an empty string).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "SMS_MFA" => Some(Self::Sms),
            "SOFTWARE_TOKEN_MFA" => Some(Self::SoftwareToken),
            "EMAIL_OTP" => Some(Self::Email),
            _ => None,
        }
    }
}

impl fmt::Display for MfaFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's MFA settings as `AdminGetUser` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MfaState {
    /// Sorted, without duplicates.
    pub enabled: Vec<MfaFactor>,
    pub preferred: Option<MfaFactor>,
}

impl MfaState {
    pub fn new(mut enabled: Vec<MfaFactor>, preferred: Option<MfaFactor>) -> Self {
        enabled.sort();
        enabled.dedup();
        Self { enabled, preferred }
    }

    pub fn is_enabled(&self, factor: MfaFactor) -> bool {
        self.enabled.contains(&factor)
    }
}

/// One user, as `AdminGetUser` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// `UserStatus`: `CONFIRMED`, `EXTERNAL_PROVIDER`, …
    pub status: Option<String>,
    pub enabled: bool,
    pub attributes: BTreeMap<String, String>,
    pub mfa: MfaState,
}

impl User {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    /// `phone_number`, when set and not blank.
    pub fn phone_number(&self) -> Option<&str> {
        self.attribute("phone_number")
            .filter(|p| !p.trim().is_empty())
    }

    pub fn phone_number_verified(&self) -> bool {
        self.attribute("phone_number_verified") == Some("true")
    }
}

/// One user from `ListUsers` (which does not report MFA settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub username: String,
    pub status: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

impl UserSummary {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn phone_number(&self) -> Option<&str> {
        self.attribute("phone_number")
            .filter(|p| !p.trim().is_empty())
    }
}

/// A page of `ListUsers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    /// The token for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// The pool's MFA configuration (`GetUserPoolMfaConfig`), as far as a
/// switch to `ON` must keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolMfa {
    /// `OFF`, `ON` or `OPTIONAL`.
    pub mode: String,
    /// The SMS MFA configuration, when SMS MFA is set up.
    pub sms: Option<PoolSms>,
    /// Whether TOTP (software token) MFA is enabled.
    pub totp: bool,
}

/// The pool's SMS MFA settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolSms {
    pub message: Option<String>,
    pub sns_caller_arn: Option<String>,
    pub external_id: Option<String>,
    pub sns_region: Option<String>,
}

/// A tracked (and maybe remembered) device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub key: String,
    /// `device_name` (the SDK or browser that registered it).
    pub name: Option<String>,
    /// `dev:device_remembered_status` = `remembered`; `None` when not reported.
    pub remembered: Option<bool>,
    /// RFC 3339, UTC.
    pub last_authenticated: Option<String>,
    pub created: Option<String>,
    pub last_modified: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_use_cognitos_names() {
        for f in [MfaFactor::Sms, MfaFactor::SoftwareToken, MfaFactor::Email] {
            assert_eq!(MfaFactor::parse(f.as_str()), Some(f));
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str()),
                "serde and as_str agree"
            );
        }
        assert_eq!(MfaFactor::parse(""), None);
        let s = MfaState::new(
            vec![MfaFactor::SoftwareToken, MfaFactor::Sms, MfaFactor::Sms],
            None,
        );
        assert_eq!(s.enabled, vec![MfaFactor::Sms, MfaFactor::SoftwareToken]);
    }
}
