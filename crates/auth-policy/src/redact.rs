//! Masks for personal data in log lines: a log may say *which* phone or
//! address without holding it.

/// The longest value masked character by character: an E.164 number has at
/// most 16. Longer values (garbage in a hostile event) become a length, so a
/// log line or error message never grows with the input.
const MAX_MASKED: usize = 24;

/// `+14155555309` → `+1******5309`: the plus, the first digit and the last
/// four stay; the rest is starred. Short or odd values keep less; values
/// longer than any phone number show only their length.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.trim().chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    if n > MAX_MASKED {
        return format!("*** ({n} characters)");
    }
    let (head, tail) = match chars.first() {
        Some('+') if n >= 10 => (2, 4),
        _ if n >= 8 => (0, 4),
        _ if n >= 4 => (0, 2),
        _ => (0, 0),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// `alice@example.com` → `a***@example.com`; a local part of one or two
/// characters is starred whole (its first letter would be most of it); a
/// domain longer than any real one (253) shows only its length.
pub fn mask_email(email: &str) -> String {
    match email.trim().rsplit_once('@') {
        Some((_, domain)) if domain.chars().count() > 253 => {
            format!("***@*** ({} characters)", domain.chars().count())
        }
        Some((local, domain)) => {
            let first: String = if local.chars().count() > 2 {
                local.chars().take(1).collect()
            } else {
                String::new()
            };
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A username fit for a log line: a username may be an email address or a
/// phone number in pools that allow it, and those are masked like any other.
pub fn mask_username(username: &str) -> String {
    if username.contains('@') {
        mask_email(username)
    } else if username.starts_with('+')
        || (username.len() >= 7 && username.chars().all(|c| c.is_ascii_digit()))
    {
        mask_phone(username)
    } else {
        username.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_that_are_emails_or_phones_are_masked() {
        assert_eq!(mask_username("alice@example.com"), "a***@example.com");
        assert_eq!(mask_username("+14155550123"), "+1******0123");
        assert_eq!(mask_username("09012345678"), "*******5678");
        assert_eq!(
            mask_username("2e554b8d-6a8f-5424-a705-5381eddff554"),
            "2e554b8d-6a8f-5424-a705-5381eddff554"
        );
        assert_eq!(mask_username("alice"), "alice");
    }

    #[test]
    fn phones_keep_country_digit_and_last_four() {
        assert_eq!(mask_phone("+14155555309"), "+1******5309");
        assert_eq!(mask_phone("+819012345678"), "+8*******5678");
        assert_eq!(mask_phone("09012345678"), "*******5678");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_phone(""), "");
    }

    #[test]
    fn a_masked_phone_never_holds_the_whole_number() {
        for p in ["+14155555309", "+1234567", "+123456789012345", "5555"] {
            assert!(!mask_phone(p).contains(p), "{p}");
        }
    }

    #[test]
    fn hostile_lengths_become_a_length() {
        let long = "9".repeat(65536);
        assert_eq!(mask_phone(&long), "*** (65536 characters)");
        let email = format!("a@{}", "b".repeat(300));
        assert_eq!(mask_email(&email), "***@*** (300 characters)");
        assert_eq!(mask_phone("+123456789012345"), "+1**********2345");
    }

    #[test]
    fn emails_keep_first_letter_and_domain() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("not-an-email"), "***");
        assert_eq!(mask_email("a@example.com"), "***@example.com");
        assert_eq!(mask_email("jo@example.com"), "***@example.com");
        assert!(!mask_email("bob@example.com").contains("bob@example.com"));
    }
}
