use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The user attribute in which a user states an MFA choice at sign-up.
pub const PREFERENCE_ATTRIBUTE: &str = "custom:mfa_preference";

/// The second factor a user wants: the values of `custom:mfa_preference` and
/// of `MFA_DEFAULT_PREFERENCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MfaPreference {
    Sms,
    Totp,
    /// Email one-time codes (`EMAIL_OTP`; Essentials tier or higher, email
    /// sent through SES).
    Email,
    #[serde(rename = "NOMFA")]
    NoMfa,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("expected one of SMS, TOTP, EMAIL, NOMFA")]
pub struct PreferenceError;

impl MfaPreference {
    pub const ALL: [MfaPreference; 4] = [Self::Sms, Self::Totp, Self::Email, Self::NoMfa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "SMS",
            Self::Totp => "TOTP",
            Self::Email => "EMAIL",
            Self::NoMfa => "NOMFA",
        }
    }

    /// Parses one value. Surrounding blanks and letter case are forgiven
    /// (`sms` is `SMS`); anything else is an error.
    pub fn parse(value: &str) -> Result<Self, PreferenceError> {
        let v = value.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(v))
            .ok_or(PreferenceError)
    }

    /// The user's stated choice: `None` when the attribute is absent or blank.
    pub fn stated(attribute: Option<&str>) -> Result<Option<Self>, PreferenceError> {
        match attribute.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => Self::parse(v).map(Some),
        }
    }

    /// The preference that applies: the user's choice, or the pool's default.
    pub fn effective(attribute: Option<&str>, default: Self) -> Result<Self, PreferenceError> {
        Ok(Self::stated(attribute)?.unwrap_or(default))
    }
}

impl fmt::Display for MfaPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_values_forgiving_case_and_blanks() {
        assert_eq!(MfaPreference::parse("SMS"), Ok(MfaPreference::Sms));
        assert_eq!(MfaPreference::parse(" totp "), Ok(MfaPreference::Totp));
        assert_eq!(MfaPreference::parse("NoMfa"), Ok(MfaPreference::NoMfa));
        assert_eq!(MfaPreference::parse("EMAIL"), Ok(MfaPreference::Email));
        assert_eq!(MfaPreference::parse("email_otp"), Err(PreferenceError));
        assert_eq!(MfaPreference::parse("SMS_MFA"), Err(PreferenceError));
        assert_eq!(MfaPreference::parse(""), Err(PreferenceError));
    }

    #[test]
    fn effective_falls_back_to_the_default_only_when_nothing_is_stated() {
        let d = MfaPreference::Totp;
        assert_eq!(MfaPreference::effective(None, d), Ok(d));
        assert_eq!(MfaPreference::effective(Some("  "), d), Ok(d));
        assert_eq!(
            MfaPreference::effective(Some("sms"), d),
            Ok(MfaPreference::Sms)
        );
        assert_eq!(
            MfaPreference::effective(Some("voice"), d),
            Err(PreferenceError)
        );
    }

    #[test]
    fn display_round_trips_through_parse() {
        for p in MfaPreference::ALL {
            assert_eq!(MfaPreference::parse(&p.to_string()), Ok(p));
        }
    }
}
