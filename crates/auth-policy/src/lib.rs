//! The one place where the user pool's MFA rules live.
//!
//! Every Lambda function and tool of this workspace asks this crate what to do
//! and then does it. Keeping the rules here, free of I/O, clocks and randomness,
//! means that each rule is a plain function whose tests need no mocks, and that
//! the pre-sign-up check, the post-confirmation settings and the operator's
//! `mfa-admin apply-policy` can never disagree.
//!
//! Decisions are values ([`SignUpDecision`], [`MfaDecision`]); the callers
//! perform them.

pub mod account;
pub mod admin;
pub mod challenge;
mod config;
mod email;
mod error;
mod mfa;
mod phone;
mod preference;
pub mod redact;
mod signup;

pub use challenge::{
    ChallengeConfig, ChallengeName, ChallengeUser, FailReason, NextStep, SecondFactor, SessionStep,
    TokenReason, decide_next,
};
pub use config::{ConfigSource, DomainRules, MfaConfig, MfaMethods, MfaMode, SignUpConfig};
pub use email::{DomainPattern, email_domain};
pub use error::ConfigError;
pub use mfa::{
    EXTERNAL_PROVIDER, MethodSetting, MfaDecision, MfaSettings, MfaSkipReason,
    USER_STATUS_ATTRIBUTE, decide_mfa, decide_mfa_with, decide_user_mfa,
};
pub use phone::{PhoneError, is_e164};
pub use preference::{MfaPreference, PREFERENCE_ATTRIBUTE, PreferenceError};
pub use signup::{Rejection, SignUpDecision, SignUpKind, SignUpRequest, decide_sign_up};
