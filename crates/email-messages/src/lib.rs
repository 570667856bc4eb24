//! The subject, plain text and HTML of every email the pool sends: one per
//! CustomEmailSender trigger source and language, chosen by the user's
//! `locale` attribute, English when the user's language has none.
//!
//! Templates are data, in ONE place: `templates.json` beside this crate's
//! `Cargo.toml`, compiled in. An operator changes them without a rebuild by
//! pointing `EMAIL_TEMPLATES_FILE` at a JSON file of the same shape; its
//! entries replace the built-in ones kind by kind and language by language,
//! and may add languages. The file is read and checked ONCE, at init
//! ([`Templates::with_override`]): a template that could send a code-less
//! email, leak the code into a subject, or forget the invitation's username
//! fails the init phase with a message naming the variable and the entry.
//!
//! Placeholders are Cognito's own `{####}` (the code, or the temporary
//! password of an invitation) and `{username}`. They are filled in one pass,
//! so a value that itself contains a placeholder is not expanded again; in
//! the HTML part the values are HTML-escaped first.
//!
//! This crate is pure (serde, serde_json and thiserror only): the function
//! reads the override file and hands its text here.

pub mod notice;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use thiserror::Error;

pub const CODE_PLACEHOLDER: &str = "{####}";
pub const USERNAME_PLACEHOLDER: &str = "{username}";

/// The variable naming the operator's template file.
pub const TEMPLATES_FILE_VAR: &str = "EMAIL_TEMPLATES_FILE";

/// The built-in templates, as shipped.
pub const BUILT_IN_JSON: &str = include_str!("../templates.json");

/// The language every kind must have, and the one used when the user's
/// locale has no template.
pub const FALLBACK_LANGUAGE: &str = "en";

/// The longest subject accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest text or HTML part accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What an email is for: one per CustomEmailSender trigger source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// `CustomEmailSender_SignUp` → `SignUp`.
    pub fn from_trigger_source(source: &str) -> Option<Self> {
        Self::from_name(source.strip_prefix("CustomEmailSender_")?)
    }

    /// `SignUp` → `SignUp` (the key in the template file).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The trigger source's suffix, which is also the kind's key in the
    /// template file, e.g. `ForgotPassword`.
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

    /// Whether the email carries a code (every kind but the account
    /// takeover notice; for `AdminCreateUser` the "code" is the temporary
    /// password).
    pub fn has_code(self) -> bool {
        self != Self::AccountTakeOverNotification
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The language a `locale` attribute asks for: its primary subtag, lower
/// case (`ja-JP`, `ja_JP`, `JA` → `ja`); empty when there is none.
pub fn language_of(locale: Option<&str>) -> String {
    locale
        .unwrap_or_default()
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// One template: what the file holds for one kind and language.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A rendered email.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl fmt::Debug for Email {
    // The parts hold the code: a stray `{:?}` must not log it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("subject", &self.subject)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("html", &format_args!("<{} bytes>", self.html.len()))
            .finish()
    }
}

/// Why a template file cannot be used. `origin` names where it came from:
/// `EMAIL_TEMPLATES_FILE (path)` or the built-in file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error(
        "{origin}: not a template file ({detail}); see docs/custom-email-sender.md for its shape"
    )]
    Invalid { origin: String, detail: String },
    #[error(
        "{origin}: {key:?} is not a kind of email; expected SignUp, ResendCode, ForgotPassword, UpdateUserAttribute, VerifyUserAttribute, AdminCreateUser, Authentication or AccountTakeOverNotification (keys starting with _ are comments)"
    )]
    UnknownKind { origin: String, key: String },
    #[error(
        "{origin}: {kind}.{language:?} is not a language: use the primary language subtag of the users' locale, 2 to 8 lowercase letters (en, ja, fr...)"
    )]
    BadLanguage {
        origin: String,
        kind: MessageKind,
        language: String,
    },
    #[error(
        "{origin}: {kind}.{language}.{part} must contain {CODE_PLACEHOLDER}, where the code goes"
    )]
    MissingCode {
        origin: String,
        kind: MessageKind,
        language: String,
        part: &'static str,
    },
    #[error(
        "{origin}: {kind}.{language}.{part} must contain {USERNAME_PLACEHOLDER}: the invitation names the username its temporary password is for"
    )]
    MissingUsername {
        origin: String,
        kind: MessageKind,
        language: String,
        part: &'static str,
    },
    #[error(
        "{origin}: {kind}.{language}.{part} must not contain {CODE_PLACEHOLDER}: {}",
        if *part == "subject" { "the code goes in the body only, never in a subject that inbox lists and lock screens show" } else { "this email carries no code" }
    )]
    CodeNotAllowed {
        origin: String,
        kind: MessageKind,
        language: String,
        part: &'static str,
    },
    #[error("{origin}: {kind}.{language}.{part} is empty")]
    Empty {
        origin: String,
        kind: MessageKind,
        language: String,
        part: &'static str,
    },
    #[error("{origin}: {kind}.{language}.subject must be one line (no line break)")]
    MultilineSubject {
        origin: String,
        kind: MessageKind,
        language: String,
    },
    #[error("{origin}: {kind}.{language}.{part} is too long ({len}; at most {max})")]
    TooLong {
        origin: String,
        kind: MessageKind,
        language: String,
        part: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{origin}: {kind} has no {FALLBACK_LANGUAGE:?} template: English is what users of every other locale get"
    )]
    NoFallback { origin: String, kind: MessageKind },
}

/// The templates in use: the built-in file with the operator's file over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    by_kind: BTreeMap<MessageKind, BTreeMap<String, Template>>,
}

/// The origin named in the built-in file's errors.
const BUILT_IN_ORIGIN: &str = "the built-in crates/email-messages/templates.json";

impl Templates {
    /// The built-in templates (checked like an override; a unit test keeps
    /// them valid).
    pub fn built_in() -> Result<Self, TemplateError> {
        let by_kind = parse(BUILT_IN_JSON, BUILT_IN_ORIGIN)?;
        for kind in MessageKind::ALL {
            if !by_kind
                .get(&kind)
                .is_some_and(|l| l.contains_key(FALLBACK_LANGUAGE))
            {
                return Err(TemplateError::NoFallback {
                    origin: BUILT_IN_ORIGIN.to_owned(),
                    kind,
                });
            }
        }
        Ok(Self { by_kind })
    }

    /// The built-in templates with `json` (the text of the file named by
    /// `EMAIL_TEMPLATES_FILE`, whose path is `path`) over them: each entry
    /// of the file replaces the built-in template of its kind and language,
    /// or adds a language.
    pub fn with_override(json: &str, path: &str) -> Result<Self, TemplateError> {
        let mut templates = Self::built_in()?;
        let origin = format!("{TEMPLATES_FILE_VAR} ({path})");
        // A byte-order mark, as some editors save UTF-8, is not an error.
        let json = json.strip_prefix('\u{feff}').unwrap_or(json);
        for (kind, languages) in parse(json, &origin)? {
            templates.by_kind.entry(kind).or_default().extend(languages);
        }
        Ok(templates)
    }

    /// The languages that have a template for `kind`.
    pub fn languages(&self, kind: MessageKind) -> impl Iterator<Item = &str> {
        self.by_kind
            .get(&kind)
            .into_iter()
            .flat_map(|l| l.keys().map(String::as_str))
    }

    /// The template for `kind` in the language `locale` asks for, else
    /// English.
    pub fn template(&self, kind: MessageKind, locale: Option<&str>) -> Option<&Template> {
        let languages = self.by_kind.get(&kind)?;
        languages
            .get(&language_of(locale))
            .or_else(|| languages.get(FALLBACK_LANGUAGE))
    }

    /// The email for `kind` in the user's `locale`, with `code` and
    /// `username` in place of their placeholders (HTML-escaped in the HTML
    /// part). `None` only if the kind has no template at all, which
    /// [`Templates::built_in`] rules out.
    pub fn render(
        &self,
        kind: MessageKind,
        locale: Option<&str>,
        code: &str,
        username: &str,
    ) -> Option<Email> {
        let t = self.template(kind, locale)?;
        Some(Email {
            subject: fill(&t.subject, "", username),
            text: fill(&t.text, code, username),
            html: fill(&t.html, &html_escape(code), &html_escape(username)),
        })
    }
}

/// Escapes `& < > " '` for an HTML text node or attribute value.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Parses and checks one template file.
fn parse(
    json: &str,
    origin: &str,
) -> Result<BTreeMap<MessageKind, BTreeMap<String, Template>>, TemplateError> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| TemplateError::Invalid {
            origin: origin.to_owned(),
            detail: e.to_string(),
        })?;
    let mut out = BTreeMap::new();
    for (key, value) in raw {
        if key.starts_with('_') {
            continue;
        }
        let kind = MessageKind::from_name(&key).ok_or_else(|| TemplateError::UnknownKind {
            origin: origin.to_owned(),
            key: key.chars().take(64).collect(),
        })?;
        let languages: BTreeMap<String, Template> =
            serde_json::from_value(value).map_err(|e| TemplateError::Invalid {
                origin: origin.to_owned(),
                detail: format!("{kind}: {e}"),
            })?;
        for (language, template) in &languages {
            check(origin, kind, language, template)?;
        }
        out.insert(kind, languages);
    }
    Ok(out)
}

fn check(
    origin: &str,
    kind: MessageKind,
    language: &str,
    t: &Template,
) -> Result<(), TemplateError> {
    let at = |part| (origin.to_owned(), kind, language.to_owned(), part);
    let valid_language =
        (2..=8).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
    if !valid_language {
        return Err(TemplateError::BadLanguage {
            origin: origin.to_owned(),
            kind,
            language: language.chars().take(16).collect(),
        });
    }
    for (part, value) in [
        ("subject", &t.subject),
        ("text", &t.text),
        ("html", &t.html),
    ] {
        let (origin, kind, language, part) = at(part);
        if value.trim().is_empty() {
            return Err(TemplateError::Empty {
                origin,
                kind,
                language,
                part,
            });
        }
        let (len, max) = if part == "subject" {
            (value.chars().count(), MAX_SUBJECT_CHARS)
        } else {
            (value.len(), MAX_BODY_BYTES)
        };
        if len > max {
            return Err(TemplateError::TooLong {
                origin,
                kind,
                language,
                part,
                len,
                max,
            });
        }
        let has_code = value.contains(CODE_PLACEHOLDER);
        if part == "subject" || !kind.has_code() {
            if has_code {
                return Err(TemplateError::CodeNotAllowed {
                    origin,
                    kind,
                    language,
                    part,
                });
            }
        } else if !has_code {
            return Err(TemplateError::MissingCode {
                origin,
                kind,
                language,
                part,
            });
        }
        if part != "subject"
            && kind == MessageKind::AdminCreateUser
            && !value.contains(USERNAME_PLACEHOLDER)
        {
            return Err(TemplateError::MissingUsername {
                origin,
                kind,
                language,
                part,
            });
        }
        if part == "subject" && value.contains(['\r', '\n']) {
            return Err(TemplateError::MultilineSubject {
                origin,
                kind,
                language,
            });
        }
    }
    Ok(())
}

/// Fills `{####}` with `code` and `{username}` with `username`, in one pass.
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

    fn built_in() -> Templates {
        Templates::built_in().unwrap()
    }

    #[test]
    fn trigger_sources_map_to_kinds() {
        for k in MessageKind::ALL {
            assert_eq!(
                MessageKind::from_trigger_source(&format!("CustomEmailSender_{k}")),
                Some(k)
            );
        }
        assert_eq!(
            MessageKind::from_trigger_source("CustomSMSSender_SignUp"),
            None
        );
        assert_eq!(MessageKind::from_trigger_source("SignUp"), None);
    }

    #[test]
    fn locales_pick_the_language_and_fall_back_to_english() {
        let t = built_in();
        let subject = |locale| {
            t.template(MessageKind::SignUp, locale)
                .unwrap()
                .subject
                .clone()
        };
        assert_eq!(subject(Some("ja")), "確認コード");
        assert_eq!(subject(Some("ja-JP")), "確認コード");
        assert_eq!(subject(Some(" JA_jp ")), "確認コード");
        assert_eq!(subject(Some("en-GB")), "Your verification code");
        assert_eq!(subject(Some("fr")), "Your verification code");
        assert_eq!(subject(Some("")), "Your verification code");
        assert_eq!(subject(None), "Your verification code");
    }

    /// Every kind in both languages: the code is in the text and the HTML
    /// part, once each, and nowhere else (not in the subject); the parts are
    /// what the built-in file says with the code in place.
    #[test]
    fn every_kind_and_language_renders_with_the_code_in_both_parts_only() {
        let t = built_in();
        let code = "730164";
        for kind in MessageKind::ALL {
            let languages: Vec<&str> = t.languages(kind).collect();
            assert_eq!(languages, ["en", "ja"], "{kind}");
            for language in ["en", "ja"] {
                let e = t.render(kind, Some(language), code, "erin").unwrap();
                let what = format!("{kind} {language}");
                assert!(!e.subject.contains(code), "{what}: {}", e.subject);
                assert!(!e.subject.contains('{'), "{what}: {}", e.subject);
                for (part, body) in [("text", &e.text), ("html", &e.html)] {
                    let n = body.matches(code).count();
                    let want = usize::from(kind.has_code());
                    assert_eq!(n, want, "{what} {part}: {body}");
                    assert!(!body.contains(CODE_PLACEHOLDER), "{what} {part}");
                    assert!(!body.contains(USERNAME_PLACEHOLDER), "{what} {part}");
                }
                assert!(
                    e.html.starts_with("<!DOCTYPE html>")
                        && e.html.contains("<meta charset=\"utf-8\">")
                        && e.html.contains(&format!("<html lang=\"{language}\">")),
                    "{what}"
                );
                if language == "ja" {
                    assert!(e.text.chars().any(|c| c > '\u{3000}'), "{what}");
                }
                if kind == MessageKind::AdminCreateUser {
                    assert!(e.text.contains("erin") && e.html.contains("erin"), "{what}");
                }
            }
        }
    }

    #[test]
    fn values_are_html_escaped_in_the_html_part_only() {
        let t = built_in();
        let e = t
            .render(
                MessageKind::AdminCreateUser,
                Some("en"),
                "P<4w&rd>\"'",
                "<b>eve</b>",
            )
            .unwrap();
        assert!(
            e.text.contains("Temporary password: P<4w&rd>\"'"),
            "{}",
            e.text
        );
        assert!(e.text.contains("Username: <b>eve</b>"), "{}", e.text);
        assert!(
            e.html.contains("P&lt;4w&amp;rd&gt;&quot;&#39;"),
            "{}",
            e.html
        );
        assert!(e.html.contains("&lt;b&gt;eve&lt;/b&gt;"), "{}", e.html);
        assert!(!e.html.contains("P<4w") && !e.html.contains("<b>eve"));
    }

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(fill("a {####} b {####}", "12", "u"), "a 12 b 12");
        assert_eq!(
            fill("{username}:{####}", "{username}", "{####}"),
            "{####}:{username}"
        );
        assert_eq!(fill("no placeholders", "1", "u"), "no placeholders");
        assert_eq!(fill("{###", "1", "u"), "{###");
    }

    #[test]
    fn the_debug_form_hides_the_parts() {
        let e = built_in()
            .render(MessageKind::Authentication, None, "555123", "u")
            .unwrap();
        let shown = format!("{e:?}");
        assert!(!shown.contains("555123"), "{shown}");
        assert!(shown.contains("Your sign-in code"), "{shown}");
    }

    fn one(kind: &str, lang: &str, subject: &str, text: &str, html: &str) -> String {
        serde_json::json!({kind: {lang: {"subject": subject, "text": text, "html": html}}})
            .to_string()
    }

    #[test]
    fn an_override_replaces_one_language_and_can_add_one() {
        let json = serde_json::json!({
            "_note": "comments are keys starting with _",
            "Authentication": {
                "ja": {"subject": "認証", "text": "コード {####}", "html": "<p>コード <b>{####}</b></p>"},
                "fr": {"subject": "Votre code", "text": "Code : {####}", "html": "<p>Code : {####}</p>"}
            }
        })
        .to_string();
        let t = Templates::with_override(&json, "/etc/t.json").unwrap();
        let ja = t
            .render(MessageKind::Authentication, Some("ja-JP"), "1<2", "u")
            .unwrap();
        assert_eq!(
            (ja.subject.as_str(), ja.text.as_str(), ja.html.as_str()),
            ("認証", "コード 1<2", "<p>コード <b>1&lt;2</b></p>")
        );
        let fr = t
            .render(MessageKind::Authentication, Some("fr-CA"), "9", "u")
            .unwrap();
        assert_eq!(fr.text, "Code : 9");
        // English and the other kinds stay built in.
        assert_eq!(
            t.template(MessageKind::Authentication, Some("en")),
            built_in().template(MessageKind::Authentication, Some("en"))
        );
        assert_eq!(
            t.template(MessageKind::SignUp, Some("fr")),
            built_in().template(MessageKind::SignUp, Some("en"))
        );
    }

    fn override_error(json: &str) -> String {
        Templates::with_override(json, "/srv/mail.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_bad_override_names_the_variable_the_file_and_the_entry() {
        let e = override_error(&one("SignUp", "ja", "件名", "コードなし", "<p>{####}</p>"));
        assert!(
            e.starts_with(
                "EMAIL_TEMPLATES_FILE (/srv/mail.json): SignUp.ja.text must contain {####}"
            ),
            "{e}"
        );
        let e = override_error(&one("SignUp", "en", "s", "{####}", "<p>no code</p>"));
        assert!(e.contains("SignUp.en.html must contain {####}"), "{e}");
        let e = override_error(&one(
            "ForgotPassword",
            "en",
            "Code {####}",
            "{####}",
            "{####}",
        ));
        assert!(
            e.contains("ForgotPassword.en.subject must not contain {####}"),
            "{e}"
        );
        let e = override_error(&one(
            "AccountTakeOverNotification",
            "en",
            "s",
            "t {####}",
            "h",
        ));
        assert!(e.contains("carries no code"), "{e}");
        let e = override_error(&one("AdminCreateUser", "en", "s", "{####}", "{####}"));
        assert!(
            e.contains("AdminCreateUser.en.text must contain {username}"),
            "{e}"
        );
        let e = override_error(&one(
            "AdminCreateUser",
            "en",
            "s",
            "{username} {####}",
            "{####}",
        ));
        assert!(
            e.contains("AdminCreateUser.en.html must contain {username}"),
            "{e}"
        );
        let e = override_error(&one("SignUp", "en", "two\nlines", "{####}", "{####}"));
        assert!(e.contains("one line"), "{e}");
        let e = override_error(&one("SignUp", "en", " ", "{####}", "{####}"));
        assert!(e.contains("SignUp.en.subject is empty"), "{e}");
        let e = override_error(&one("SignUp", "EN-us", "s", "{####}", "{####}"));
        assert!(e.contains("is not a language"), "{e}");
        let e = override_error(&one("SignIn", "en", "s", "{####}", "{####}"));
        assert!(e.contains("\"SignIn\" is not a kind of email"), "{e}");
        let long = format!("{{####}}{}", "x".repeat(MAX_BODY_BYTES));
        let e = override_error(&one("SignUp", "en", "s", &long, "{####}"));
        assert!(e.contains("SignUp.en.text is too long"), "{e}");
        let e = override_error(
            &serde_json::json!({"SignUp": {"en": {"subject": "s", "text": "{####}"}}}).to_string(),
        );
        assert!(e.contains("missing field `html`"), "{e}");
        let e = override_error(
            &serde_json::json!({"SignUp": {"en": {"subject": "s", "text": "{####}", "html": "{####}", "footer": "x"}}}).to_string(),
        );
        assert!(e.contains("unknown field `footer`"), "{e}");
        for not_json in [
            "",
            "[]",
            "{",
            "{\"SignUp\": 3}",
            "{\"SignUp\": {\"en\": []}}",
        ] {
            let e = override_error(not_json);
            assert!(
                e.starts_with("EMAIL_TEMPLATES_FILE (/srv/mail.json): "),
                "{not_json:?}: {e}"
            );
        }
    }

    #[test]
    fn an_empty_override_is_the_built_in_set() {
        assert_eq!(Templates::with_override("{}", "x").unwrap(), built_in());
        assert_eq!(
            Templates::with_override("\u{feff}{}", "x").unwrap(),
            built_in()
        );
    }
}
