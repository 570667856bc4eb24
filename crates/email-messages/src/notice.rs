//! Security notices about the account itself (no code in them): a change of
//! the email address, phone number or MFA preference was made, or was
//! attempted and refused. They go to the address in force, so that the
//! owner learns of a change made with a stolen session. They never carry
//! the new value in full: the caller passes it masked.

use crate::{Email, html_escape, language_of};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Email,
    PhoneNumber,
    MfaPreference,
}

/// One notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice<'a> {
    pub changed: Changed,
    /// `true`: the change was attempted and refused (a verification code
    /// for a new address that no recent sign-in allowed).
    pub refused: bool,
    /// The new value, masked (`n***@example.com`, `+1******0123`), or the
    /// new preference (`TOTP`).
    pub new_value: &'a str,
    /// When, in UTC (`2026-12-07 04:30 UTC`).
    pub when: &'a str,
}

fn what(changed: Changed, ja: bool) -> &'static str {
    match (changed, ja) {
        (Changed::Email, false) => "email address",
        (Changed::PhoneNumber, false) => "phone number",
        (Changed::MfaPreference, false) => "sign-in verification method",
        (Changed::Email, true) => "メールアドレス",
        (Changed::PhoneNumber, true) => "電話番号",
        (Changed::MfaPreference, true) => "サインイン時の確認方法",
    }
}

/// The notice's plain text in the user's language (`ja`, else English);
/// the SMS and the email body say the same.
pub fn notice_text(notice: &Notice<'_>, locale: Option<&str>) -> String {
    let ja = language_of(locale) == "ja";
    let w = what(notice.changed, ja);
    let (value, when) = (notice.new_value, notice.when);
    match (notice.refused, notice.changed, ja) {
        (true, _, false) => format!(
            "Someone tried to change the {w} of your account to {value} at {when}. The change was refused and nothing was changed. If this was not you, change your password now."
        ),
        (true, _, true) => format!(
            "{when} に、お客様のアカウントの{w}を {value} に変更する操作がありましたが、拒否されました。変更はされていません。心当たりがない場合は、すぐにパスワードを変更してください。"
        ),
        (false, Changed::MfaPreference, false) => format!(
            "The {w} of your account was changed to {value} at {when}. If this was not you, change your password now and contact support."
        ),
        (false, Changed::MfaPreference, true) => format!(
            "{when} に、お客様のアカウントの{w}が {value} に変更されました。心当たりがない場合は、すぐにパスワードを変更し、サポートにご連絡ください。"
        ),
        (false, _, false) => format!(
            "A change of the {w} of your account to {value} was requested at {when}. It takes effect once the code sent to the new {w} is entered; until then this one stays in use. If this was not you, change your password now and contact support."
        ),
        (false, _, true) => format!(
            "{when} に、お客様のアカウントの{w}を {value} に変更する手続きが行われました。新しい{w}に送られたコードが入力されると変更されます。それまでは現在の{w}が使われます。心当たりがない場合は、すぐにパスワードを変更し、サポートにご連絡ください。"
        ),
    }
}

/// The notice as an email.
pub fn notice_email(notice: &Notice<'_>, locale: Option<&str>) -> Email {
    let ja = language_of(locale) == "ja";
    let w = what(notice.changed, ja);
    let done = notice.changed == Changed::MfaPreference;
    let subject = match (notice.refused, done, ja) {
        (true, _, false) => format!("A change of your {w} was refused"),
        (true, _, true) => format!("{w}の変更が拒否されました"),
        (false, true, false) => format!("Your {w} was changed"),
        (false, false, false) => format!("Your {w} is being changed"),
        (false, _, true) => format!("{w}の変更"),
    };
    let text = notice_text(notice, locale);
    let html = format!("<p>{}</p>", html_escape(&text));
    Email {
        subject,
        text,
        html,
    }
}

/// `2026-12-07 04:30 UTC`, without a date library: the civil date of a
/// day count (Howard Hinnant's algorithm).
pub fn utc_minute(now: u64) -> String {
    let days = i64::try_from(now / 86_400).unwrap_or(0);
    let secs = now % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_utc_dates() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn notices_name_the_change_in_the_users_language_and_escape_the_html() {
        let n = Notice {
            changed: Changed::Email,
            refused: false,
            new_value: "n***@example.com",
            when: "2026-12-07 04:30 UTC",
        };
        let en = notice_email(&n, Some("en-US"));
        assert!(en.subject.contains("email address"), "{en:?}");
        assert!(en.text.contains("n***@example.com") && en.text.contains("04:30"));
        let ja = notice_email(&n, Some("ja_JP"));
        assert!(ja.subject.contains("メールアドレス"), "{ja:?}");
        assert!(ja.text.contains("n***@example.com"));
        let refused = Notice {
            changed: Changed::PhoneNumber,
            refused: true,
            new_value: "<+1******0123>",
            ..n
        };
        let r = notice_email(&refused, None);
        assert!(r.subject.contains("refused") && r.text.contains("phone number"));
        assert!(r.html.contains("&lt;+1******0123&gt;") && !r.html.contains("<+1"));
        assert_ne!(notice_text(&refused, None), notice_text(&n, None));
        let mfa = Notice {
            changed: Changed::MfaPreference,
            new_value: "TOTP",
            ..n
        };
        assert!(notice_text(&mfa, None).contains("changed to TOTP"));
    }
}
