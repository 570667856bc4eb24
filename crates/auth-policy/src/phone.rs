use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not an E.164 phone number: a plus sign, then 7 to 15 digits, the first not 0")]
pub struct PhoneError;

/// E.164 as Cognito stores `phone_number`: `+`, then 7 to 15 digits, the first
/// not 0, and nothing else (no spaces, dashes or brackets).
pub fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_well_formed_numbers() {
        for ok in [
            "+14155550123",
            "+819012345678",
            "+1234567",
            "+123456789012345",
        ] {
            assert!(is_e164(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "+",
            "14155550123",
            "+0123456789",
            "+1 415 555 0123",
            "+1-415-555-0123",
            "+123456",
            "+1234567890123456",
            "++14155550123",
            "+1415555012a",
            "+１４１５５５５０１２３",
        ] {
            assert!(!is_e164(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_accepted_value_is_plus_and_digits(s in "\\PC{0,20}") {
            if is_e164(&s) {
                prop_assert!(s.starts_with('+'));
                prop_assert!(s[1..].chars().all(|c| c.is_ascii_digit()));
                prop_assert!((8..=16).contains(&s.len()));
            }
        }

        #[test]
        fn every_plus_digit_string_of_valid_length_is_accepted(first in 1u8..=9, rest in "[0-9]{6,14}") {
            let number = format!("+{first}{rest}");
            prop_assert!(is_e164(&number));
        }
    }
}
