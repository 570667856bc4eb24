//! The text of every SMS: one per kind of message, built in for English and
//! Japanese, chosen by the user's `locale` attribute, each replaceable by
//! configuration.
//!
//! Templates use Cognito's own placeholder `{####}` for the code (as in the
//! pool's `SmsAuthenticationMessage`), and `{username}` in the invitation that
//! carries a temporary password. An operator replaces a text with
//! `SMS_MESSAGE_<KIND>` (every language without its own override) or
//! `SMS_MESSAGE_<KIND>_<LANG>` (one language, e.g. `SMS_MESSAGE_AUTHENTICATION_JA`).
//! A template whose kind carries a code must contain `{####}`; the check runs
//! once, at init.

use std::collections::HashMap;

use auth_policy::ConfigSource;
use thiserror::Error;

pub const CODE_PLACEHOLDER: &str = "{####}";
pub const USERNAME_PLACEHOLDER: &str = "{username}";

/// What an SMS is for: one per CustomSMSSender trigger source, plus the
/// custom-auth challenge code (which reads as `Authentication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    SignUp,
    ResendCode,
    ForgotPassword,
    UpdateUserAttribute,
    VerifyUserAttribute,
    AdminCreateUser,
    Authentication,
    AccountTakeOverNotification,
}

impl MessageKind {
    pub const ALL: [Self; 8] = [
        Self::SignUp,
        Self::ResendCode,
        Self::ForgotPassword,
        Self::UpdateUserAttribute,
        Self::VerifyUserAttribute,
        Self::AdminCreateUser,
        Self::Authentication,
        Self::AccountTakeOverNotification,
    ];

    /// `CustomSMSSender_SignUp` → `SignUp`.
    pub fn from_trigger_source(source: &str) -> Option<Self> {
        let name = source.strip_prefix("CustomSMSSender_")?;
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The trigger source's suffix, e.g. `ForgotPassword`.
    pub fn name(self) -> &'static str {
        match self {
            Self::SignUp => "SignUp",
            Self::ResendCode => "ResendCode",
            Self::ForgotPassword => "ForgotPassword",
            Self::UpdateUserAttribute => "UpdateUserAttribute",
            Self::VerifyUserAttribute => "VerifyUserAttribute",
            Self::AdminCreateUser => "AdminCreateUser",
            Self::Authentication => "Authentication",
            Self::AccountTakeOverNotification => "AccountTakeOverNotification",
        }
    }

    /// The override variable, e.g. `SMS_MESSAGE_FORGOT_PASSWORD`.
    pub fn variable(self) -> String {
        let mut out = String::from("SMS_MESSAGE_");
        for (i, c) in self.name().chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    /// Whether the message carries a code (every kind but the account
    /// takeover notice; for `AdminCreateUser` the "code" is the temporary
    /// password).
    pub fn has_code(self) -> bool {
        self != Self::AccountTakeOverNotification
    }
}

/// A language with built-in texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    En,
    Ja,
}

impl Language {
    pub const ALL: [Self; 2] = [Self::En, Self::Ja];

    /// From a `locale` attribute (`ja`, `ja-JP`, `ja_JP`, `EN-us`…); anything
    /// unknown or absent is English.
    pub fn from_locale(locale: Option<&str>) -> Self {
        let primary = locale
            .unwrap_or_default()
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "ja" => Self::Ja,
            _ => Self::En,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::En => "EN",
            Self::Ja => "JA",
        }
    }
}

fn built_in(kind: MessageKind, lang: Language) -> &'static str {
    use Language::*;
    use MessageKind::*;
    match (kind, lang) {
        (SignUp | ResendCode, En) => "Your verification code is {####}",
        (SignUp | ResendCode, Ja) => "確認コードは {####} です",
        (ForgotPassword, En) => "Your password reset code is {####}",
        (ForgotPassword, Ja) => "パスワード再設定用のコードは {####} です",
        (UpdateUserAttribute, En) => "Your code to confirm your new phone number is {####}",
        (UpdateUserAttribute, Ja) => "新しい電話番号の確認コードは {####} です",
        (VerifyUserAttribute, En) => "Your code to verify your phone number is {####}",
        (VerifyUserAttribute, Ja) => "電話番号の確認コードは {####} です",
        (AdminCreateUser, En) => {
            "Your username is {username} and your temporary password is {####}"
        }
        (AdminCreateUser, Ja) => "ユーザー名は {username}、仮パスワードは {####} です",
        (Authentication, En) => "Your authentication code is {####}",
        (Authentication, Ja) => "認証コードは {####} です",
        (AccountTakeOverNotification, En) => {
            "We blocked a suspicious sign-in to your account. If it was not you, change your password now."
        }
        (AccountTakeOverNotification, Ja) => {
            "お客様のアカウントへの不審なサインインをブロックしました。心当たりがない場合は、すぐにパスワードを変更してください。"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageConfigError {
    #[error("{variable} must contain {CODE_PLACEHOLDER}, where the code goes")]
    MissingCode { variable: String },
    #[error(
        "{variable} must contain {USERNAME_PLACEHOLDER}: the invitation names the username its temporary password is for"
    )]
    MissingUsername { variable: String },
    #[error("{variable} is too long ({len} characters; at most 1600)")]
    TooLong { variable: String, len: usize },
}

/// The templates in use: built-ins with the operator's overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    templates: HashMap<(MessageKind, Language), String>,
}

impl Default for Messages {
    fn default() -> Self {
        let templates = MessageKind::ALL
            .into_iter()
            .flat_map(|k| {
                Language::ALL
                    .into_iter()
                    .map(move |l| ((k, l), built_in(k, l).to_owned()))
            })
            .collect();
        Self { templates }
    }
}

impl Messages {
    /// Built-ins overlaid with `SMS_MESSAGE_<KIND>` and
    /// `SMS_MESSAGE_<KIND>_<LANG>` from `source`.
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, MessageConfigError> {
        let mut messages = Self::default();
        for kind in MessageKind::ALL {
            let base = kind.variable();
            let general = source.value(&base).filter(|v| !v.trim().is_empty());
            for lang in Language::ALL {
                let specific_var = format!("{base}_{}", lang.suffix());
                let (variable, text) =
                    match source.value(&specific_var).filter(|v| !v.trim().is_empty()) {
                        Some(t) => (specific_var, t),
                        None => match &general {
                            Some(t) => (base.clone(), t.clone()),
                            None => continue,
                        },
                    };
                if kind.has_code() && !text.contains(CODE_PLACEHOLDER) {
                    return Err(MessageConfigError::MissingCode { variable });
                }
                // An invitation must say which username its password is for.
                if kind == MessageKind::AdminCreateUser && !text.contains(USERNAME_PLACEHOLDER) {
                    return Err(MessageConfigError::MissingUsername { variable });
                }
                let len = text.chars().count();
                if len > 1600 {
                    return Err(MessageConfigError::TooLong { variable, len });
                }
                messages.templates.insert((kind, lang), text);
            }
        }
        Ok(messages)
    }

    pub fn template(&self, kind: MessageKind, lang: Language) -> &str {
        self.templates
            .get(&(kind, lang))
            .map(String::as_str)
            .unwrap_or_else(|| built_in(kind, lang))
    }

    /// The text for `kind` in the user's `locale`, with `code` and
    /// `username` in place of their placeholders. Placeholders are filled in
    /// one pass, so a code or username that contains `{####}` is not
    /// expanded again.
    pub fn render(
        &self,
        kind: MessageKind,
        locale: Option<&str>,
        code: &str,
        username: &str,
    ) -> String {
        fill(
            self.template(kind, Language::from_locale(locale)),
            code,
            username,
        )
    }
}

fn fill(template: &str, code: &str, username: &str) -> String {
    let mut out = String::with_capacity(template.len() + code.len() + username.len());
    let mut rest = template;
    loop {
        let next = [(CODE_PLACEHOLDER, code), (USERNAME_PLACEHOLDER, username)]
            .into_iter()
            .filter_map(|(p, v)| rest.find(p).map(|i| (i, p, v)))
            .min_by_key(|(i, _, _)| *i);
        match next {
            Some((i, p, v)) => {
                out.push_str(&rest[..i]);
                out.push_str(v);
                rest = &rest[i + p.len()..];
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_sources_map_to_kinds_and_variables() {
        assert_eq!(
            MessageKind::from_trigger_source("CustomSMSSender_AccountTakeOverNotification"),
            Some(MessageKind::AccountTakeOverNotification)
        );
        assert_eq!(
            MessageKind::from_trigger_source("CustomSMSSender_Bogus"),
            None
        );
        assert_eq!(MessageKind::from_trigger_source("SignUp"), None);
        assert_eq!(
            MessageKind::ForgotPassword.variable(),
            "SMS_MESSAGE_FORGOT_PASSWORD"
        );
        assert_eq!(
            MessageKind::AccountTakeOverNotification.variable(),
            "SMS_MESSAGE_ACCOUNT_TAKE_OVER_NOTIFICATION"
        );
        for k in MessageKind::ALL {
            assert_eq!(
                MessageKind::from_trigger_source(&format!("CustomSMSSender_{}", k.name())),
                Some(k)
            );
        }
    }

    #[test]
    fn locales_pick_the_language_and_fall_back_to_english() {
        assert_eq!(Language::from_locale(Some("ja")), Language::Ja);
        assert_eq!(Language::from_locale(Some("ja-JP")), Language::Ja);
        assert_eq!(Language::from_locale(Some("JA_jp")), Language::Ja);
        assert_eq!(Language::from_locale(Some("en-GB")), Language::En);
        assert_eq!(Language::from_locale(Some("fr")), Language::En);
        assert_eq!(Language::from_locale(Some("")), Language::En);
        assert_eq!(Language::from_locale(None), Language::En);
    }

    #[test]
    fn every_built_in_with_a_code_has_the_placeholder() {
        for k in MessageKind::ALL {
            for l in Language::ALL {
                let t = built_in(k, l);
                assert_eq!(t.contains(CODE_PLACEHOLDER), k.has_code(), "{k:?} {l:?}");
            }
        }
        let m = Messages::default();
        let text = m.render(
            MessageKind::AdminCreateUser,
            Some("en"),
            "Tmp<Pass>1",
            "alice",
        );
        assert!(
            text.contains("alice") && text.contains("Tmp<Pass>1"),
            "{text}"
        );
    }

    #[test]
    fn rendering_fills_each_placeholder_once() {
        assert_eq!(fill("a {####} b {####}", "12", "u"), "a 12 b 12");
        assert_eq!(
            fill("{username}:{####}", "{username}", "{####}"),
            "{####}:{username}"
        );
        assert_eq!(fill("no placeholders", "1", "u"), "no placeholders");
    }

    #[test]
    fn overrides_apply_per_language_or_to_all() {
        let source = [
            ("SMS_MESSAGE_AUTHENTICATION", "Code: {####}"),
            ("SMS_MESSAGE_FORGOT_PASSWORD_JA", "リセット {####}"),
        ];
        let m = Messages::from_source(&source[..]).unwrap();
        assert_eq!(
            m.render(MessageKind::Authentication, Some("en"), "123456", ""),
            "Code: 123456"
        );
        assert_eq!(
            m.render(MessageKind::Authentication, Some("ja"), "123456", ""),
            "Code: 123456"
        );
        assert_eq!(
            m.render(MessageKind::ForgotPassword, Some("ja-JP"), "9", ""),
            "リセット 9"
        );
        assert_eq!(
            m.render(MessageKind::ForgotPassword, None, "9", ""),
            "Your password reset code is 9"
        );
    }

    #[test]
    fn an_override_without_the_code_placeholder_is_refused_with_its_name() {
        let source = [("SMS_MESSAGE_SIGN_UP_JA", "コードはありません")];
        let e = Messages::from_source(&source[..]).unwrap_err().to_string();
        assert!(
            e.contains("SMS_MESSAGE_SIGN_UP_JA") && e.contains("{####}"),
            "{e}"
        );
        let ok = [(
            "SMS_MESSAGE_ACCOUNT_TAKE_OVER_NOTIFICATION",
            "Someone tried to sign in.",
        )];
        assert!(Messages::from_source(&ok[..]).is_ok());
    }

    #[test]
    fn an_invitation_override_must_name_the_username() {
        let source = [("SMS_MESSAGE_ADMIN_CREATE_USER", "Your password is {####}")];
        let e = Messages::from_source(&source[..]).unwrap_err().to_string();
        assert!(
            e.contains("SMS_MESSAGE_ADMIN_CREATE_USER") && e.contains("{username}"),
            "{e}"
        );
        let ok = [(
            "SMS_MESSAGE_ADMIN_CREATE_USER_EN",
            "Sign in as {username} with {####}",
        )];
        let m = Messages::from_source(&ok[..]).unwrap();
        assert_eq!(
            m.render(MessageKind::AdminCreateUser, Some("en"), "Tmp1!", "carol"),
            "Sign in as carol with Tmp1!"
        );
    }
}
