use std::fmt;

use crate::config::{DomainRules, MfaMode, SignUpConfig};
use crate::email::email_domain;
use crate::phone::is_e164;
use crate::preference::MfaPreference;

/// Which PreSignUp trigger source fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignUpKind {
    /// `PreSignUp_SignUp`: a user signs themselves up.
    SignUp,
    /// `PreSignUp_AdminCreateUser`: an operator creates the user.
    AdminCreateUser,
    /// `PreSignUp_ExternalProvider`: a federated user signs in for the first time.
    ExternalProvider,
}

impl SignUpKind {
    pub fn from_trigger_source(source: &str) -> Option<Self> {
        match source {
            "PreSignUp_SignUp" => Some(Self::SignUp),
            "PreSignUp_AdminCreateUser" => Some(Self::AdminCreateUser),
            "PreSignUp_ExternalProvider" => Some(Self::ExternalProvider),
            _ => None,
        }
    }
}

/// The facts of one sign-up that the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignUpRequest<'a> {
    pub kind: SignUpKind,
    pub email: Option<&'a str>,
    pub phone_number: Option<&'a str>,
    /// The raw `custom:mfa_preference`, if any.
    pub preference: Option<&'a str>,
}

/// Why a sign-up is refused. [`Rejection::user_message`] is what the end user
/// sees (Cognito shows it as `PreSignUp failed with error <message>.`): it
/// never names the configured domains nor echoes what the user typed.
/// [`Rejection::code`] is a stable name for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    EmailRequired,
    EmailInvalid,
    EmailDomainNotAllowed,
    EmailDomainBlocked,
    UnknownPreference,
    SmsNotEnabled,
    TotpNotEnabled,
    EmailMfaNotEnabled,
    MfaRequired,
    PhoneNotE164,
    PhoneRequiredForSms,
    EmailRequiredForEmailMfa,
    /// The pool has no MFA (`MFA_CONFIGURATION=OFF`): no preference to set.
    MfaOff,
}

impl Rejection {
    pub fn code(self) -> &'static str {
        match self {
            Self::EmailRequired => "email_required",
            Self::EmailInvalid => "email_invalid",
            Self::EmailDomainNotAllowed => "email_domain_not_allowed",
            Self::EmailDomainBlocked => "email_domain_blocked",
            Self::UnknownPreference => "unknown_mfa_preference",
            Self::SmsNotEnabled => "sms_mfa_not_enabled",
            Self::TotpNotEnabled => "totp_mfa_not_enabled",
            Self::EmailMfaNotEnabled => "email_mfa_not_enabled",
            Self::EmailRequiredForEmailMfa => "email_required_for_email_mfa",
            Self::MfaRequired => "mfa_required",
            Self::PhoneNotE164 => "phone_not_e164",
            Self::PhoneRequiredForSms => "phone_required_for_sms",
            Self::MfaOff => "mfa_off",
        }
    }

    pub fn user_message(self) -> &'static str {
        match self {
            Self::EmailRequired => "An email address is required to sign up.",
            Self::EmailInvalid => "The email address is not valid.",
            // One message for both lists: the user learns nothing about either.
            Self::EmailDomainNotAllowed | Self::EmailDomainBlocked => {
                "Sign-up with this email address is not allowed. Please use another email address."
            }
            Self::UnknownPreference => {
                "The MFA preference is not valid: choose SMS, TOTP, EMAIL or NOMFA."
            }
            Self::SmsNotEnabled => {
                "Sign-in codes by text message (SMS) are not available: choose another MFA method."
            }
            Self::TotpNotEnabled => {
                "Authenticator apps (TOTP) are not available: choose another MFA method."
            }
            Self::EmailMfaNotEnabled => {
                "Sign-in codes by email are not available: choose another MFA method."
            }
            Self::EmailRequiredForEmailMfa => {
                "An email address is required to receive sign-in codes by email."
            }
            Self::MfaRequired => {
                "Multi-factor authentication is required: choose an MFA method other than NOMFA."
            }
            Self::PhoneNotE164 => {
                "The phone number must be in international format: a plus sign, the country code and the number, digits only (for example +14155550123)."
            }
            Self::PhoneRequiredForSms => {
                "A phone number is required to receive sign-in codes by text message."
            }
            Self::MfaOff => "Multi-factor authentication is not available for this account.",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.user_message())
    }
}

impl std::error::Error for Rejection {}

/// The outcome of the pre-sign-up check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignUpDecision {
    /// Let the sign-up proceed. The user's email and phone are never
    /// auto-verified nor the user auto-confirmed: Cognito's own codes prove
    /// ownership. `preference` is the effective MFA preference (`None` for
    /// federated users, who get no MFA from Cognito).
    Accept {
        preference: Option<MfaPreference>,
    },
    Reject(Rejection),
}

/// Decides a sign-up. The rules, in the order they are checked:
/// 1. email domain (every kind): blocked list, then allow list; with an
///    allow list, an email is required;
/// 2. for `SignUp` and `AdminCreateUser` only (federated users get no MFA and
///    their attributes come from the identity provider):
///    the stated preference must be known, a method the pool enables, and not
///    `NOMFA` in an `ON` pool; a phone number, if given, must be E.164; an
///    effective preference of `SMS` needs a phone number. In an `OFF` pool
///    only the first and the phone format apply: no MFA will be set up.
pub fn decide_sign_up(config: &SignUpConfig, request: &SignUpRequest<'_>) -> SignUpDecision {
    match check(config, request) {
        Ok(preference) => SignUpDecision::Accept { preference },
        Err(rejection) => SignUpDecision::Reject(rejection),
    }
}

fn check(
    config: &SignUpConfig,
    request: &SignUpRequest<'_>,
) -> Result<Option<MfaPreference>, Rejection> {
    check_email(&config.domains, request.email)?;
    if request.kind == SignUpKind::ExternalProvider {
        return Ok(None);
    }
    let mfa = &config.mfa;
    let stated =
        MfaPreference::stated(request.preference).map_err(|_| Rejection::UnknownPreference)?;
    let effective = stated.unwrap_or(mfa.default_preference);
    let phone = request
        .phone_number
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if let Some(phone) = phone
        && !is_e164(phone)
    {
        return Err(Rejection::PhoneNotE164);
    }
    if mfa.mode == MfaMode::Off {
        return Ok(Some(effective));
    }
    if let Some(choice) = stated {
        match choice {
            MfaPreference::Sms if !mfa.methods.sms => return Err(Rejection::SmsNotEnabled),
            MfaPreference::Totp if !mfa.methods.totp => return Err(Rejection::TotpNotEnabled),
            MfaPreference::Email if !mfa.methods.email => {
                return Err(Rejection::EmailMfaNotEnabled);
            }
            MfaPreference::NoMfa if mfa.mode == MfaMode::On => {
                return Err(Rejection::MfaRequired);
            }
            _ => {}
        }
    }
    if effective == MfaPreference::Sms && phone.is_none() {
        return Err(Rejection::PhoneRequiredForSms);
    }
    if effective == MfaPreference::Email && request.email.is_none_or(|e| e.trim().is_empty()) {
        return Err(Rejection::EmailRequiredForEmailMfa);
    }
    Ok(Some(effective))
}

pub(crate) fn check_email(rules: &DomainRules, email: Option<&str>) -> Result<(), Rejection> {
    if rules.is_empty() {
        return Ok(());
    }
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    let Some(email) = email else {
        return if rules.allowed.is_empty() {
            Ok(())
        } else {
            Err(Rejection::EmailRequired)
        };
    };
    let domain = email_domain(email).ok_or(Rejection::EmailInvalid)?;
    if rules.blocked.iter().any(|p| p.matches(&domain)) {
        return Err(Rejection::EmailDomainBlocked);
    }
    if !rules.allowed.is_empty() && !rules.allowed.iter().any(|p| p.matches(&domain)) {
        return Err(Rejection::EmailDomainNotAllowed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MfaConfig, MfaMethods};
    use crate::email::DomainPattern;

    fn config(mode: MfaMode, sms: bool, totp: bool, default: MfaPreference) -> SignUpConfig {
        SignUpConfig {
            mfa: MfaConfig {
                mode,
                methods: MfaMethods {
                    sms,
                    totp,
                    email: false,
                },
                default_preference: default,
            },
            domains: DomainRules::default(),
        }
    }

    fn optional() -> SignUpConfig {
        config(MfaMode::Optional, true, true, MfaPreference::Sms)
    }

    fn req<'a>(
        email: Option<&'a str>,
        phone: Option<&'a str>,
        pref: Option<&'a str>,
    ) -> SignUpRequest<'a> {
        SignUpRequest {
            kind: SignUpKind::SignUp,
            email,
            phone_number: phone,
            preference: pref,
        }
    }

    fn rejected(c: &SignUpConfig, r: &SignUpRequest<'_>) -> Rejection {
        match decide_sign_up(c, r) {
            SignUpDecision::Reject(x) => x,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn accepted(c: &SignUpConfig, r: &SignUpRequest<'_>) -> Option<MfaPreference> {
        match decide_sign_up(c, r) {
            SignUpDecision::Accept { preference } => preference,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    #[test]
    fn default_sms_needs_a_phone() {
        let c = optional();
        assert_eq!(
            accepted(&c, &req(Some("a@x.com"), Some("+14155550123"), None)),
            Some(MfaPreference::Sms)
        );
        assert_eq!(
            rejected(&c, &req(Some("a@x.com"), None, None)),
            Rejection::PhoneRequiredForSms
        );
        assert_eq!(
            rejected(&c, &req(Some("a@x.com"), Some("  "), Some("SMS"))),
            Rejection::PhoneRequiredForSms
        );
    }

    #[test]
    fn stated_choice_overrides_the_default() {
        let c = optional();
        assert_eq!(
            accepted(&c, &req(None, None, Some("TOTP"))),
            Some(MfaPreference::Totp)
        );
        assert_eq!(
            accepted(&c, &req(None, None, Some("NOMFA"))),
            Some(MfaPreference::NoMfa)
        );
        assert_eq!(
            rejected(&c, &req(None, None, Some("EMAIL"))),
            Rejection::EmailMfaNotEnabled
        );
        assert_eq!(
            rejected(&c, &req(None, None, Some("EMAIL_OTP"))),
            Rejection::UnknownPreference
        );
    }

    #[test]
    fn a_phone_must_be_e164_whatever_the_choice() {
        let c = optional();
        assert_eq!(
            rejected(&c, &req(None, Some("415-555-0123"), Some("TOTP"))),
            Rejection::PhoneNotE164
        );
        let off = config(MfaMode::Off, true, true, MfaPreference::Sms);
        assert_eq!(
            rejected(&off, &req(None, Some("+0123"), None)),
            Rejection::PhoneNotE164
        );
    }

    #[test]
    fn choices_must_be_enabled_by_the_pool() {
        let totp_only = config(MfaMode::Optional, false, true, MfaPreference::Totp);
        assert_eq!(
            rejected(&totp_only, &req(None, Some("+14155550123"), Some("SMS"))),
            Rejection::SmsNotEnabled
        );
        let sms_only = config(MfaMode::Optional, true, false, MfaPreference::Sms);
        assert_eq!(
            rejected(&sms_only, &req(None, Some("+14155550123"), Some("TOTP"))),
            Rejection::TotpNotEnabled
        );
        let on = config(MfaMode::On, true, true, MfaPreference::Totp);
        assert_eq!(
            rejected(&on, &req(None, None, Some("NOMFA"))),
            Rejection::MfaRequired
        );
        assert_eq!(
            accepted(&on, &req(None, None, None)),
            Some(MfaPreference::Totp)
        );
    }

    #[test]
    fn email_is_a_choice_where_the_pool_enables_it() {
        let mut with_email = optional();
        with_email.mfa.methods.email = true;
        let mut r = req(Some("kim@example.com"), None, Some("EMAIL"));
        assert_eq!(accepted(&with_email, &r), Some(MfaPreference::Email));
        assert_eq!(rejected(&optional(), &r), Rejection::EmailMfaNotEnabled);
        r.email = None;
        assert_eq!(
            rejected(&with_email, &r),
            Rejection::EmailRequiredForEmailMfa
        );
        assert!(
            Rejection::EmailMfaNotEnabled
                .user_message()
                .contains("not available")
        );
    }

    #[test]
    fn an_off_pool_ignores_mfa_rules_but_not_unknown_values() {
        let off = config(MfaMode::Off, false, false, MfaPreference::NoMfa);
        assert!(matches!(
            decide_sign_up(&off, &req(None, None, Some("SMS"))),
            SignUpDecision::Accept { .. }
        ));
        assert_eq!(
            rejected(&off, &req(None, None, Some("voice"))),
            Rejection::UnknownPreference
        );
    }

    fn with_domains(allowed: &[&str], blocked: &[&str]) -> SignUpConfig {
        let mut c = config(MfaMode::Optional, true, true, MfaPreference::Totp);
        c.domains.allowed = allowed
            .iter()
            .map(|d| DomainPattern::parse(d).unwrap())
            .collect();
        c.domains.blocked = blocked
            .iter()
            .map(|d| DomainPattern::parse(d).unwrap())
            .collect();
        c
    }

    #[test]
    fn email_domain_rules() {
        let c = with_domains(&["example.com", ".corp.example"], &["bad.corp.example"]);
        assert!(accepted(&c, &req(Some("A@EXAMPLE.com"), None, None)).is_some());
        assert!(accepted(&c, &req(Some("a@eu.corp.example"), None, None)).is_some());
        assert_eq!(
            rejected(&c, &req(Some("a@corp.example"), None, None)),
            Rejection::EmailDomainNotAllowed
        );
        assert_eq!(
            rejected(&c, &req(Some("a@bad.corp.example"), None, None)),
            Rejection::EmailDomainBlocked
        );
        assert_eq!(
            rejected(&c, &req(Some("a@sub.example.com"), None, None)),
            Rejection::EmailDomainNotAllowed
        );
        assert_eq!(
            rejected(&c, &req(None, None, None)),
            Rejection::EmailRequired
        );
        assert_eq!(
            rejected(&c, &req(Some("not-an-email"), None, None)),
            Rejection::EmailInvalid
        );
        let block_only = with_domains(&[], &["spam.test"]);
        assert!(accepted(&block_only, &req(None, None, None)).is_some());
        assert_eq!(
            rejected(&block_only, &req(Some("x@Spam.Test"), None, None)),
            Rejection::EmailDomainBlocked
        );
    }

    #[test]
    fn federated_users_get_the_email_rules_only() {
        let c = with_domains(&["example.com"], &[]);
        let mut r = req(Some("a@example.com"), Some("not a phone"), Some("garbage"));
        r.kind = SignUpKind::ExternalProvider;
        assert_eq!(accepted(&c, &r), None);
        r.email = Some("a@other.com");
        assert_eq!(rejected(&c, &r), Rejection::EmailDomainNotAllowed);
        r.email = None;
        assert_eq!(rejected(&c, &r), Rejection::EmailRequired);
    }

    #[test]
    fn admin_created_users_get_every_rule() {
        let c = optional();
        let mut r = req(None, None, None);
        r.kind = SignUpKind::AdminCreateUser;
        assert_eq!(rejected(&c, &r), Rejection::PhoneRequiredForSms);
    }

    #[test]
    fn rejection_messages_never_name_configured_domains() {
        let c = with_domains(&["secret-partner.example"], &["rival.example"]);
        for email in ["a@rival.example", "a@elsewhere.example"] {
            let r = rejected(&c, &req(Some(email), None, None));
            let m = r.user_message();
            assert!(!m.contains("secret-partner") && !m.contains("rival"), "{m}");
            assert!(!m.contains(email), "{m}");
        }
    }

    #[test]
    fn trigger_sources_map_to_kinds() {
        assert_eq!(
            SignUpKind::from_trigger_source("PreSignUp_SignUp"),
            Some(SignUpKind::SignUp)
        );
        assert_eq!(
            SignUpKind::from_trigger_source("PreSignUp_AdminCreateUser"),
            Some(SignUpKind::AdminCreateUser)
        );
        assert_eq!(
            SignUpKind::from_trigger_source("PreSignUp_ExternalProvider"),
            Some(SignUpKind::ExternalProvider)
        );
        assert_eq!(
            SignUpKind::from_trigger_source("PostConfirmation_ConfirmSignUp"),
            None
        );
    }
}
