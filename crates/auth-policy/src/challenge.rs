//! The custom-authentication state machine that `define-auth-challenge` runs.
//!
//! Cognito hands DefineAuthChallenge the whole session so far (every challenge
//! with its result) and asks what comes next. Because the session is the only
//! state, the decision is a pure function of it, the pool's MFA policy and a
//! few user attributes: [`decide_next`]. It is deliberately strict: it accepts
//! exactly one shape of session,
//!
//! ```text
//! SRP_A ✓, PASSWORD_VERIFIER ✓, [CUSTOM_CHALLENGE ✗]*, [CUSTOM_CHALLENGE ✓]
//! ```
//!
//! and anything else (an empty session, a missing or failed step, an unknown
//! challenge name, a step after the point where tokens were due) fails the
//! authentication, so that no path can ever skip the password or the code.
//!
//! Unknown users (`userNotFound`, with PreventUserExistenceErrors) walk the
//! same steps as a user who needs a code, and always fail at the end.

use std::fmt;

use serde::Serialize;

use crate::config::{ConfigSource, MfaConfig, MfaMode, non_blank};
use crate::error::ConfigError;
use crate::preference::MfaPreference;

/// `MAX_CODE_ATTEMPTS` and `CODE_TTL_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChallengeConfig {
    /// Wrong answers to the one-time code allowed in one session; the last
    /// one fails the authentication.
    pub max_code_attempts: u32,
    /// How long a code stays valid, in seconds.
    pub code_ttl_seconds: u32,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        Self {
            max_code_attempts: 3,
            code_ttl_seconds: 180,
        }
    }
}

impl ChallengeConfig {
    pub const MAX_ATTEMPTS_VAR: &'static str = "MAX_CODE_ATTEMPTS";
    pub const TTL_VAR: &'static str = "CODE_TTL_SECONDS";
    pub const MAX_ATTEMPTS_RANGE: (u32, u32) = (1, 10);
    pub const TTL_RANGE: (u32, u32) = (30, 900);

    /// Reads both variables; unset or blank ones take their defaults (3, 180).
    pub fn from_source(source: &(impl ConfigSource + ?Sized)) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            max_code_attempts: ranged(
                source,
                Self::MAX_ATTEMPTS_VAR,
                d.max_code_attempts,
                Self::MAX_ATTEMPTS_RANGE,
                "a whole number from 1 to 10",
            )?,
            code_ttl_seconds: ranged(
                source,
                Self::TTL_VAR,
                d.code_ttl_seconds,
                Self::TTL_RANGE,
                "a whole number of seconds from 30 to 900",
            )?,
        })
    }
}

fn ranged(
    source: &(impl ConfigSource + ?Sized),
    variable: &'static str,
    default: u32,
    (min, max): (u32, u32),
    expected: &'static str,
) -> Result<u32, ConfigError> {
    let Some(value) = non_blank(source, variable) else {
        return Ok(default);
    };
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            variable,
            value,
            expected,
        }),
    }
}

/// The challenge names this machine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ChallengeName {
    #[serde(rename = "SRP_A")]
    SrpA,
    #[serde(rename = "PASSWORD_VERIFIER")]
    PasswordVerifier,
    #[serde(rename = "CUSTOM_CHALLENGE")]
    CustomChallenge,
}

impl ChallengeName {
    pub const ALL: [Self; 3] = [Self::SrpA, Self::PasswordVerifier, Self::CustomChallenge];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SrpA => "SRP_A",
            Self::PasswordVerifier => "PASSWORD_VERIFIER",
            Self::CustomChallenge => "CUSTOM_CHALLENGE",
        }
    }

    /// Exact match only: Cognito sends these names in upper case, and a name
    /// that differs in any way is not one this machine knows.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for ChallengeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the session as Cognito reports it. `name` is the raw
/// `challengeName` (`None` when absent or null); an entry that was entirely
/// `null` in the event is given as `name: None, result: false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStep<'a> {
    pub name: Option<&'a str>,
    pub result: bool,
}

impl<'a> SessionStep<'a> {
    pub fn new(name: &'a str, result: bool) -> Self {
        Self {
            name: Some(name),
            result,
        }
    }
}

/// What define knows about the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeUser<'a> {
    /// `request.userNotFound`.
    pub not_found: bool,
    /// The raw `custom:mfa_preference` attribute.
    pub preference: Option<&'a str>,
    /// Whether the user has a `phone_number` an SMS can be sent to (E.164).
    pub has_phone: bool,
}

/// Why tokens are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenReason {
    /// The password was verified and the policy needs no second factor.
    SecondFactorNotNeeded,
    /// The password was verified and the one-time code was correct.
    CodeAccepted,
    /// OPTIONAL pool, a second factor is wanted but the user has no phone:
    /// signed in on the password alone; the app must run the TOTP set-up.
    /// The handler logs this as a warning.
    NoDeliverableFactor,
}

/// Why the authentication fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// `session: []`: the flow did not start with SRP (e.g. CUSTOM_WITHOUT_SRP).
    EmptySession,
    /// An entry with a challenge name this machine does not know (or none).
    UnknownChallenge,
    /// The entries are not the expected sequence (a step skipped, repeated,
    /// failed where it must succeed, or present after tokens were due).
    UnexpectedSequence,
    /// PASSWORD_VERIFIER failed.
    WrongPassword,
    /// MAX_CODE_ATTEMPTS wrong codes.
    TooManyAttempts,
    /// ON pool, the user has no phone: no factor can be delivered.
    NoDeliverableFactor,
    /// `userNotFound`: the steps ran their course; never tokens.
    UserNotFound,
}

impl FailReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::EmptySession => "empty_session",
            Self::UnknownChallenge => "unknown_challenge",
            Self::UnexpectedSequence => "unexpected_sequence",
            Self::WrongPassword => "wrong_password",
            Self::TooManyAttempts => "too_many_attempts",
            Self::NoDeliverableFactor => "no_deliverable_factor",
            Self::UserNotFound => "user_not_found",
        }
    }
}

impl TokenReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::SecondFactorNotNeeded => "second_factor_not_needed",
            Self::CodeAccepted => "code_accepted",
            Self::NoDeliverableFactor => "no_deliverable_factor",
        }
    }
}

/// What define answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum NextStep {
    /// Present this challenge next (`PASSWORD_VERIFIER` or `CUSTOM_CHALLENGE`).
    Challenge {
        name: ChallengeName,
    },
    IssueTokens {
        reason: TokenReason,
    },
    Fail {
        reason: FailReason,
    },
}

/// Whether the policy wants a second factor after the password, and whether
/// one can be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    NotNeeded,
    /// Needed, and the user has a phone: the one-time code by SMS.
    Code,
    /// Needed, no phone, OPTIONAL pool: tokens with a warning.
    MissingAllowed,
    /// Needed, no phone, ON pool: fail.
    MissingRefused,
}

/// The second-factor rule: needed when the pool is ON, or OPTIONAL with an
/// effective preference other than NOMFA. A preference attribute that is not
/// one of SMS/TOTP/NOMFA counts as "not NOMFA": a typo must never switch MFA
/// off. An unknown user is treated as the most common real user: a phone and
/// no stated choice (the pool's default), so its path looks like theirs.
pub fn second_factor(mfa: &MfaConfig, user: &ChallengeUser<'_>) -> SecondFactor {
    if user.not_found {
        let lookalike = ChallengeUser {
            not_found: false,
            preference: None,
            has_phone: true,
        };
        return second_factor(mfa, &lookalike);
    }
    let needed = match mfa.mode {
        MfaMode::Off => false,
        MfaMode::On => true,
        MfaMode::Optional => {
            MfaPreference::effective(user.preference, mfa.default_preference)
                != Ok(MfaPreference::NoMfa)
        }
    };
    match (needed, user.has_phone, mfa.mode) {
        (false, _, _) => SecondFactor::NotNeeded,
        (true, true, _) => SecondFactor::Code,
        (true, false, MfaMode::On) => SecondFactor::MissingRefused,
        (true, false, _) => SecondFactor::MissingAllowed,
    }
}

/// The state machine: what comes after `session`.
pub fn decide_next(
    mfa: &MfaConfig,
    challenge: &ChallengeConfig,
    user: &ChallengeUser<'_>,
    session: &[SessionStep<'_>],
) -> NextStep {
    use ChallengeName::{CustomChallenge, PasswordVerifier, SrpA};
    let fail = |reason| NextStep::Fail { reason };

    if session.is_empty() {
        return fail(FailReason::EmptySession);
    }
    let mut steps = Vec::with_capacity(session.len());
    for step in session {
        match step.name.and_then(ChallengeName::parse) {
            Some(name) => steps.push((name, step.result)),
            None => return fail(FailReason::UnknownChallenge),
        }
    }

    // SRP_A ✓
    if steps[0] != (SrpA, true) {
        return fail(FailReason::UnexpectedSequence);
    }
    let Some(&(second, password_ok)) = steps.get(1) else {
        return NextStep::Challenge {
            name: PasswordVerifier,
        };
    };
    // PASSWORD_VERIFIER ✓
    if second != PasswordVerifier {
        return fail(FailReason::UnexpectedSequence);
    }
    if !password_ok {
        return fail(FailReason::WrongPassword);
    }

    let factor = second_factor(mfa, user);
    let codes = &steps[2..];
    if codes.is_empty() {
        return match factor {
            SecondFactor::Code => NextStep::Challenge {
                name: CustomChallenge,
            },
            SecondFactor::NotNeeded if user.not_found => fail(FailReason::UserNotFound),
            SecondFactor::NotNeeded => NextStep::IssueTokens {
                reason: TokenReason::SecondFactorNotNeeded,
            },
            SecondFactor::MissingAllowed => NextStep::IssueTokens {
                reason: TokenReason::NoDeliverableFactor,
            },
            SecondFactor::MissingRefused => fail(FailReason::NoDeliverableFactor),
        };
    }
    // Code answers only follow a code challenge.
    if factor != SecondFactor::Code {
        return fail(FailReason::UnexpectedSequence);
    }
    let max = usize::try_from(challenge.max_code_attempts).unwrap_or(usize::MAX);
    let (last, earlier) = codes
        .split_last()
        .unwrap_or((&(CustomChallenge, false), &[]));
    // Every earlier answer was wrong (a right one would have ended the
    // session), and there were fewer of them than the limit.
    if earlier.iter().any(|&s| s != (CustomChallenge, false))
        || last.0 != CustomChallenge
        || earlier.len() >= max
    {
        return fail(FailReason::UnexpectedSequence);
    }
    if last.1 {
        return if user.not_found {
            fail(FailReason::UserNotFound)
        } else {
            NextStep::IssueTokens {
                reason: TokenReason::CodeAccepted,
            }
        };
    }
    let wrong = codes.len();
    if wrong >= max {
        return fail(if user.not_found {
            FailReason::UserNotFound
        } else {
            FailReason::TooManyAttempts
        });
    }
    NextStep::Challenge {
        name: CustomChallenge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MfaMethods;
    use proptest::prelude::*;

    const SRP: SessionStep<'static> = SessionStep {
        name: Some("SRP_A"),
        result: true,
    };
    const PW: SessionStep<'static> = SessionStep {
        name: Some("PASSWORD_VERIFIER"),
        result: true,
    };
    const PW_BAD: SessionStep<'static> = SessionStep {
        name: Some("PASSWORD_VERIFIER"),
        result: false,
    };
    const CODE_OK: SessionStep<'static> = SessionStep {
        name: Some("CUSTOM_CHALLENGE"),
        result: true,
    };
    const CODE_BAD: SessionStep<'static> = SessionStep {
        name: Some("CUSTOM_CHALLENGE"),
        result: false,
    };

    fn mfa(mode: MfaMode, default_preference: MfaPreference) -> MfaConfig {
        MfaConfig {
            mode,
            methods: MfaMethods::BOTH,
            default_preference,
        }
    }

    fn user(preference: Option<&str>, has_phone: bool) -> ChallengeUser<'_> {
        ChallengeUser {
            not_found: false,
            preference,
            has_phone,
        }
    }

    const UNKNOWN: ChallengeUser<'static> = ChallengeUser {
        not_found: true,
        preference: None,
        has_phone: false,
    };

    fn next(mfa: &MfaConfig, user: &ChallengeUser<'_>, session: &[SessionStep<'_>]) -> NextStep {
        decide_next(mfa, &ChallengeConfig::default(), user, session)
    }

    fn challenge(name: ChallengeName) -> NextStep {
        NextStep::Challenge { name }
    }
    fn tokens(reason: TokenReason) -> NextStep {
        NextStep::IssueTokens { reason }
    }
    fn fail(reason: FailReason) -> NextStep {
        NextStep::Fail { reason }
    }

    #[test]
    fn config_defaults_and_bounds() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            ChallengeConfig::from_source(&none[..]),
            Ok(ChallengeConfig::default())
        );
        assert_eq!(ChallengeConfig::default().max_code_attempts, 3);
        assert_eq!(ChallengeConfig::default().code_ttl_seconds, 180);
        let c = ChallengeConfig::from_source(
            &[("MAX_CODE_ATTEMPTS", " 10 "), ("CODE_TTL_SECONDS", "30")][..],
        )
        .unwrap();
        assert_eq!((c.max_code_attempts, c.code_ttl_seconds), (10, 30));
        let c = ChallengeConfig::from_source(
            &[("MAX_CODE_ATTEMPTS", "1"), ("CODE_TTL_SECONDS", "900")][..],
        )
        .unwrap();
        assert_eq!((c.max_code_attempts, c.code_ttl_seconds), (1, 900));
        assert_eq!(
            ChallengeConfig::from_source(
                &[("MAX_CODE_ATTEMPTS", ""), ("CODE_TTL_SECONDS", " ")][..]
            ),
            Ok(ChallengeConfig::default())
        );
    }

    #[test]
    fn config_errors_name_the_variable_and_the_range() {
        for bad in ["0", "11", "-1", "3.5", "three", "99999999999"] {
            let e = ChallengeConfig::from_source(&[("MAX_CODE_ATTEMPTS", bad)][..])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("MAX_CODE_ATTEMPTS") && e.contains("1 to 10"),
                "{e}"
            );
        }
        for bad in ["29", "901", "0", "3m", ""] {
            let r = ChallengeConfig::from_source(&[("CODE_TTL_SECONDS", bad)][..]);
            if bad.is_empty() {
                assert!(r.is_ok());
                continue;
            }
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains("CODE_TTL_SECONDS") && e.contains("30 to 900"),
                "{e}"
            );
        }
    }

    #[test]
    fn names_parse_exactly() {
        for n in ChallengeName::ALL {
            assert_eq!(ChallengeName::parse(n.as_str()), Some(n));
        }
        for other in [
            "srp_a",
            "SMS_MFA",
            "SOFTWARE_TOKEN_MFA",
            "DEVICE_SRP_AUTH",
            "",
            " SRP_A",
        ] {
            assert_eq!(ChallengeName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn srp_then_password() {
        let m = MfaConfig::default();
        assert_eq!(
            next(&m, &user(None, true), &[SRP]),
            challenge(ChallengeName::PasswordVerifier)
        );
        // The same for an unknown user.
        assert_eq!(
            next(&m, &UNKNOWN, &[SRP]),
            challenge(ChallengeName::PasswordVerifier)
        );
    }

    #[test]
    fn empty_session_fails() {
        for mode in [MfaMode::Off, MfaMode::Optional, MfaMode::On] {
            let m = mfa(mode, MfaPreference::Sms);
            assert_eq!(
                next(&m, &user(None, true), &[]),
                fail(FailReason::EmptySession)
            );
            assert_eq!(next(&m, &UNKNOWN, &[]), fail(FailReason::EmptySession));
        }
    }

    #[test]
    fn a_failed_password_fails() {
        for mode in [MfaMode::Off, MfaMode::Optional, MfaMode::On] {
            let m = mfa(mode, MfaPreference::Sms);
            assert_eq!(
                next(&m, &user(None, true), &[SRP, PW_BAD]),
                fail(FailReason::WrongPassword)
            );
        }
    }

    #[test]
    fn second_factor_table() {
        use MfaMode::*;
        use MfaPreference::*;
        use SecondFactor::*;
        // (mode, default, stated, phone) → factor
        let rows: &[(MfaMode, MfaPreference, Option<&str>, bool, SecondFactor)] = &[
            (Off, Sms, None, true, NotNeeded),
            (Off, Sms, Some("SMS"), false, NotNeeded),
            (Optional, Sms, None, true, Code),
            (Optional, Sms, None, false, MissingAllowed),
            (Optional, Totp, None, true, Code),
            (Optional, NoMfa, None, true, NotNeeded),
            (Optional, NoMfa, Some("SMS"), true, Code),
            (Optional, Sms, Some("NOMFA"), true, NotNeeded),
            (Optional, Sms, Some("nomfa"), false, NotNeeded),
            (Optional, Sms, Some("TOTP"), false, MissingAllowed),
            (Optional, Sms, Some("garbage"), true, Code),
            (Optional, NoMfa, Some("garbage"), false, MissingAllowed),
            (On, Sms, None, true, Code),
            (On, Sms, Some("NOMFA"), true, Code),
            (On, Totp, Some("TOTP"), false, MissingRefused),
            (On, Sms, None, false, MissingRefused),
        ];
        for &(mode, default, stated, phone, expected) in rows {
            assert_eq!(
                second_factor(&mfa(mode, default), &user(stated, phone)),
                expected,
                "{mode:?} {default:?} {stated:?} phone={phone}"
            );
        }
        assert_eq!(second_factor(&mfa(Off, Sms), &UNKNOWN), NotNeeded);
        // An unknown user looks like a real one with a phone and no choice.
        assert_eq!(second_factor(&mfa(Optional, NoMfa), &UNKNOWN), NotNeeded);
        assert_eq!(second_factor(&mfa(Optional, Totp), &UNKNOWN), Code);
        assert_eq!(second_factor(&mfa(On, Sms), &UNKNOWN), Code);
    }

    #[test]
    fn after_the_password() {
        let optional = mfa(MfaMode::Optional, MfaPreference::Sms);
        let on = mfa(MfaMode::On, MfaPreference::Sms);
        let off = mfa(MfaMode::Off, MfaPreference::Sms);
        assert_eq!(
            next(&optional, &user(None, true), &[SRP, PW]),
            challenge(ChallengeName::CustomChallenge)
        );
        assert_eq!(
            next(&optional, &user(Some("NOMFA"), true), &[SRP, PW]),
            tokens(TokenReason::SecondFactorNotNeeded)
        );
        assert_eq!(
            next(&off, &user(None, true), &[SRP, PW]),
            tokens(TokenReason::SecondFactorNotNeeded)
        );
        assert_eq!(
            next(&optional, &user(None, false), &[SRP, PW]),
            tokens(TokenReason::NoDeliverableFactor)
        );
        assert_eq!(
            next(&on, &user(None, false), &[SRP, PW]),
            fail(FailReason::NoDeliverableFactor)
        );
        assert_eq!(
            next(&on, &user(Some("NOMFA"), true), &[SRP, PW]),
            challenge(ChallengeName::CustomChallenge)
        );
    }

    #[test]
    fn code_answers() {
        let m = MfaConfig::default();
        let u = user(None, true);
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_OK]),
            tokens(TokenReason::CodeAccepted)
        );
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_BAD]),
            challenge(ChallengeName::CustomChallenge)
        );
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_BAD, CODE_BAD]),
            challenge(ChallengeName::CustomChallenge)
        );
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_BAD, CODE_OK]),
            tokens(TokenReason::CodeAccepted)
        );
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_BAD, CODE_BAD, CODE_OK]),
            tokens(TokenReason::CodeAccepted)
        );
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_BAD, CODE_BAD, CODE_BAD]),
            fail(FailReason::TooManyAttempts)
        );
        // Past the limit: not a sequence this machine produces.
        assert_eq!(
            next(&m, &u, &[SRP, PW, CODE_BAD, CODE_BAD, CODE_BAD, CODE_OK]),
            fail(FailReason::UnexpectedSequence)
        );
    }

    #[test]
    fn the_attempt_limit_follows_the_configuration() {
        let m = MfaConfig::default();
        let u = user(None, true);
        for max in 1..=10u32 {
            let c = ChallengeConfig {
                max_code_attempts: max,
                code_ttl_seconds: 180,
            };
            let mut session = vec![SRP, PW];
            for wrong in 1..=max {
                session.push(CODE_BAD);
                let expected = if wrong < max {
                    challenge(ChallengeName::CustomChallenge)
                } else {
                    fail(FailReason::TooManyAttempts)
                };
                assert_eq!(decide_next(&m, &c, &u, &session), expected, "{max} {wrong}");
            }
        }
    }

    #[test]
    fn unknown_users_walk_the_same_steps_then_fail() {
        let m = MfaConfig::default();
        let real = user(None, true);
        // Same answers as a real user with a phone, up to the code.
        for session in [&[SRP][..], &[SRP, PW], &[SRP, PW, CODE_BAD], &[SRP, PW_BAD]] {
            assert_eq!(next(&m, &UNKNOWN, session), next(&m, &real, session));
        }
        assert_eq!(
            next(&m, &UNKNOWN, &[SRP, PW, CODE_OK]),
            fail(FailReason::UserNotFound)
        );
        assert_eq!(
            next(&m, &UNKNOWN, &[SRP, PW, CODE_BAD, CODE_BAD, CODE_BAD]),
            fail(FailReason::UserNotFound)
        );
        // OFF pool: no code step, and no tokens either.
        let off = mfa(MfaMode::Off, MfaPreference::Sms);
        assert_eq!(
            next(&off, &UNKNOWN, &[SRP, PW]),
            fail(FailReason::UserNotFound)
        );
    }

    #[test]
    fn deviations_fail() {
        let m = MfaConfig::default();
        let u = user(None, true);
        let srp_bad = SessionStep::new("SRP_A", false);
        let null = SessionStep {
            name: None,
            result: true,
        };
        let sms_mfa = SessionStep::new("SMS_MFA", true);
        let cases: &[(&[SessionStep<'_>], FailReason)] = &[
            (&[PW], FailReason::UnexpectedSequence),
            (&[CODE_OK], FailReason::UnexpectedSequence),
            (&[srp_bad], FailReason::UnexpectedSequence),
            (&[srp_bad, PW], FailReason::UnexpectedSequence),
            (&[SRP, SRP], FailReason::UnexpectedSequence),
            (&[SRP, CODE_OK], FailReason::UnexpectedSequence),
            (&[SRP, PW, PW], FailReason::UnexpectedSequence),
            (&[SRP, PW, SRP], FailReason::UnexpectedSequence),
            (&[SRP, PW, CODE_OK, CODE_OK], FailReason::UnexpectedSequence),
            (
                &[SRP, PW, CODE_OK, CODE_BAD],
                FailReason::UnexpectedSequence,
            ),
            (&[PW, SRP, CODE_OK], FailReason::UnexpectedSequence),
            (&[null], FailReason::UnknownChallenge),
            (&[SRP, null], FailReason::UnknownChallenge),
            (&[SRP, PW, null], FailReason::UnknownChallenge),
            (&[sms_mfa], FailReason::UnknownChallenge),
            (&[SRP, PW, sms_mfa], FailReason::UnknownChallenge),
        ];
        for (session, reason) in cases {
            assert_eq!(next(&m, &u, session), fail(*reason), "{session:?}");
        }
        // A code answer where no code was due.
        let nomfa = user(Some("NOMFA"), true);
        assert_eq!(
            next(&m, &nomfa, &[SRP, PW, CODE_OK]),
            fail(FailReason::UnexpectedSequence)
        );
        let no_phone = user(None, false);
        assert_eq!(
            next(&m, &no_phone, &[SRP, PW, CODE_OK]),
            fail(FailReason::UnexpectedSequence)
        );
    }

    // ---- properties -----------------------------------------------------

    fn any_step() -> impl Strategy<Value = (Option<&'static str>, bool)> {
        (
            prop_oneof![
                4 => Just(Some("SRP_A")),
                4 => Just(Some("PASSWORD_VERIFIER")),
                6 => Just(Some("CUSTOM_CHALLENGE")),
                1 => Just(Some("SMS_MFA")),
                1 => Just(Some("")),
                1 => Just(None),
            ],
            any::<bool>(),
        )
    }

    fn any_mfa() -> impl Strategy<Value = MfaConfig> {
        (
            prop_oneof![
                Just(MfaMode::Off),
                Just(MfaMode::Optional),
                Just(MfaMode::On)
            ],
            prop_oneof![
                Just(MfaPreference::Sms),
                Just(MfaPreference::Totp),
                Just(MfaPreference::NoMfa)
            ],
        )
            .prop_map(|(mode, default_preference)| MfaConfig {
                mode,
                methods: MfaMethods::BOTH,
                default_preference,
            })
    }

    fn any_preference() -> impl Strategy<Value = Option<&'static str>> {
        prop_oneof![
            Just(None),
            Just(Some("SMS")),
            Just(Some("TOTP")),
            Just(Some("NOMFA")),
            Just(Some("bogus")),
        ]
    }

    /// A session that starts right (SRP ✓, PASSWORD ✓), then random steps:
    /// the interesting part of the space is after the password.
    fn mostly_valid_session() -> impl Strategy<Value = Vec<(Option<&'static str>, bool)>> {
        (
            prop::collection::vec(any_step(), 0..12),
            0usize..3,
            prop::collection::vec(any::<bool>(), 0..12),
        )
            .prop_map(|(random, prefix, codes)| {
                let mut s = vec![(Some("SRP_A"), true), (Some("PASSWORD_VERIFIER"), true)];
                s.truncate(prefix);
                if prefix == 2 {
                    s.extend(codes.into_iter().map(|r| (Some("CUSTOM_CHALLENGE"), r)));
                } else {
                    s.extend(random);
                }
                s
            })
    }

    fn any_session() -> impl Strategy<Value = Vec<(Option<&'static str>, bool)>> {
        prop_oneof![
            prop::collection::vec(any_step(), 0..12),
            mostly_valid_session()
        ]
    }

    fn steps(raw: &[(Option<&'static str>, bool)]) -> Vec<SessionStep<'static>> {
        raw.iter()
            .map(|&(name, result)| SessionStep { name, result })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// For ANY session: tokens only after SRP_A ✓, PASSWORD_VERIFIER ✓ and,
        /// when a code is needed, CUSTOM_CHALLENGE ✓ as the last entry after
        /// fewer than MAX_CODE_ATTEMPTS wrong ones.
        #[test]
        fn tokens_only_after_the_required_factors(
            mfa in any_mfa(),
            max in 1u32..=10,
            preference in any_preference(),
            has_phone in any::<bool>(),
            not_found in any::<bool>(),
            raw in any_session(),
        ) {
            let session = steps(&raw);
            let c = ChallengeConfig { max_code_attempts: max, code_ttl_seconds: 180 };
            let u = ChallengeUser { not_found, preference, has_phone };
            let decision = decide_next(&mfa, &c, &u, &session);
            if let NextStep::IssueTokens { reason } = decision {
                prop_assert!(!not_found, "an unknown user got tokens: {raw:?}");
                prop_assert!(session.len() >= 2);
                prop_assert_eq!(session[0], SRP);
                prop_assert_eq!(session[1], PW);
                match second_factor(&mfa, &u) {
                    SecondFactor::Code => {
                        prop_assert_eq!(reason, TokenReason::CodeAccepted);
                        prop_assert!(session.len() >= 3);
                        prop_assert_eq!(session[session.len() - 1], CODE_OK);
                        let wrong = &session[2..session.len() - 1];
                        prop_assert!(wrong.iter().all(|s| *s == CODE_BAD));
                        prop_assert!(wrong.len() < max as usize);
                    }
                    SecondFactor::MissingRefused => prop_assert!(false, "ON pool without phone got tokens"),
                    SecondFactor::NotNeeded | SecondFactor::MissingAllowed => {
                        prop_assert_eq!(session.len(), 2);
                    }
                }
            }
        }

        /// Never more than MAX_CODE_ATTEMPTS code challenges in one session,
        /// and a challenge is only ever PASSWORD_VERIFIER right after SRP_A.
        #[test]
        fn challenges_are_bounded(
            mfa in any_mfa(),
            max in 1u32..=10,
            preference in any_preference(),
            has_phone in any::<bool>(),
            not_found in any::<bool>(),
            raw in any_session(),
        ) {
            let session = steps(&raw);
            let c = ChallengeConfig { max_code_attempts: max, code_ttl_seconds: 180 };
            let u = ChallengeUser { not_found, preference, has_phone };
            match decide_next(&mfa, &c, &u, &session) {
                NextStep::Challenge { name: ChallengeName::PasswordVerifier } => {
                    prop_assert_eq!(&session[..], &[SRP][..]);
                }
                NextStep::Challenge { name: ChallengeName::CustomChallenge } => {
                    prop_assert!(session.len() >= 2 && session[0] == SRP && session[1] == PW);
                    prop_assert!(session[2..].iter().all(|s| *s == CODE_BAD));
                    prop_assert!(session.len() - 2 < max as usize);
                }
                NextStep::Challenge { name: ChallengeName::SrpA } => {
                    prop_assert!(false, "SRP_A is never asked for");
                }
                _ => {}
            }
        }

        /// An unknown user cannot be told apart from a real user with a phone
        /// and no stated choice: the same steps, and where the real user
        /// would get tokens, the unknown one fails.
        #[test]
        fn unknown_users_look_like_code_users(
            mode in prop_oneof![Just(MfaMode::Off), Just(MfaMode::Optional), Just(MfaMode::On)],
            default in prop_oneof![Just(MfaPreference::Sms), Just(MfaPreference::Totp), Just(MfaPreference::NoMfa)],
            wrong in 0usize..10,
            password_ok in any::<bool>(),
            max in 1u32..=10,
        ) {
            let m = mfa(mode, default);
            let c = ChallengeConfig { max_code_attempts: max, code_ttl_seconds: 180 };
            let real = user(None, true);
            let mut session = vec![SRP, if password_ok { PW } else { PW_BAD }];
            session.extend(std::iter::repeat_n(CODE_BAD, wrong));
            let a = decide_next(&m, &c, &UNKNOWN, &session);
            let b = decide_next(&m, &c, &real, &session);
            match (a, b) {
                (NextStep::Fail { .. }, NextStep::Fail { .. } | NextStep::IssueTokens { .. }) => {}
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn unknown_users_follow_the_pool_default() {
        // OPTIONAL pool whose default is NOMFA: a real user without a
        // choice gets tokens after the password; an unknown one fails there
        // (no code step that would set it apart).
        let m = mfa(MfaMode::Optional, MfaPreference::NoMfa);
        assert!(matches!(
            next(&m, &user(None, true), &[SRP, PW]),
            NextStep::IssueTokens { .. }
        ));
        assert_eq!(
            next(&m, &UNKNOWN, &[SRP, PW]),
            fail(FailReason::UserNotFound)
        );
        // The default SMS pool: both get the code challenge.
        let m = MfaConfig::default();
        assert_eq!(
            next(&m, &UNKNOWN, &[SRP, PW]),
            NextStep::Challenge {
                name: ChallengeName::CustomChallenge
            }
        );
    }
}
