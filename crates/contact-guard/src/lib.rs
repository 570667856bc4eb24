//! The senders' side of the account-change API.
//!
//! With `ACCOUNT_CHANGE=RecentSignIn`, a code that would verify an address
//! the user does not have yet goes out only where the account-change API
//! left an allowance for that user and address (after a recent sign-in):
//! * `_UpdateUserAttribute` (a new email or phone was written): only with
//!   the allowance ([`ContactCheck::Allowance`]);
//! * `_VerifyUserAttribute` (the code asked again): refused while a change
//!   to that address is held ([`ContactCheck::NotHeld`]); the first
//!   verification of the address the user signed up with has no record and
//!   goes out;
//! * every other code (sign-up, sign-in, forgotten password, invitation) is
//!   never held.
//!
//! The check is one more item in the send's transaction (no extra round
//! trip). A refused code is dropped; the change is recorded as held for 30
//! days ([`send_limits::Limiter::hold_contact`]) and, on the first refusal
//! of that address, the user's address in force on the same channel (read
//! with `AdminGetUser`: Cognito keeps the old, verified value until the new
//! one is proven) is told that a change was attempted and refused. The new
//! address never verifies, so the old one stays in force.

use auth_policy::ConfigSource;
use cognito_admin::AddressBook;
use email_messages::notice::{Changed, Notice};
use send_limits::{Channel, ContactCheck, Limiter};
use thiserror::Error;

/// `ACCOUNT_CHANGE`: `RecentSignIn` or `AccessToken` (the default when
/// unset: Cognito's behaviour).
pub const MODE_VAR: &str = "ACCOUNT_CHANGE";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{MODE_VAR}: {0:?} is not valid: expected RecentSignIn (with LIMIT_TABLE) or AccessToken")]
pub struct ModeError(String);

/// [`recent_sign_in_required`] at a sender's init: `RecentSignIn` without
/// the limits table is refused (the allowances live there).
pub fn sender_mode(
    source: &(impl ConfigSource + ?Sized),
    has_table: bool,
) -> Result<bool, ModeError> {
    let guarded = recent_sign_in_required(source)?;
    if guarded && !has_table {
        return Err(ModeError(
            "RecentSignIn without LIMIT_TABLE (the account-change allowances live in that table)"
                .to_owned(),
        ));
    }
    Ok(guarded)
}

/// Whether the senders hold unallowed address changes.
pub fn recent_sign_in_required(source: &(impl ConfigSource + ?Sized)) -> Result<bool, ModeError> {
    match source.value(MODE_VAR).map(|v| v.trim().to_owned()) {
        None => Ok(false),
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("AccessToken") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("RecentSignIn") => Ok(true),
        Some(v) => Err(ModeError(v.chars().take(32).collect())),
    }
}

/// The trigger source's part of a custom sender's event name
/// (`UpdateUserAttribute` of `CustomEmailSender_UpdateUserAttribute`).
pub fn check_for(source_suffix: &str) -> ContactCheck {
    match source_suffix {
        "UpdateUserAttribute" => ContactCheck::Allowance,
        "VerifyUserAttribute" => ContactCheck::NotHeld,
        _ => ContactCheck::None,
    }
}

/// The look-up of the address in force; present when `ACCOUNT_CHANGE=
/// RecentSignIn`.
pub struct ContactGuard {
    pub directory: Box<dyn AddressBook>,
}

impl std::fmt::Debug for ContactGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactGuard")
    }
}

impl ContactGuard {
    pub fn new(directory: impl AddressBook + 'static) -> Self {
        Self {
            directory: Box::new(directory),
        }
    }

    /// After a refused code: records the held change and returns the
    /// address in force to tell, on the first refusal of `address` within
    /// the day (`None` otherwise, or when the user has no verified address
    /// on the channel, or it is the attempted one). Failures are logged:
    /// the code stays refused whatever happens here.
    pub async fn held<L: Limiter>(
        &self,
        limiter: Option<&L>,
        channel: Channel,
        pool: &str,
        user: &str,
        address: &str,
        now: u64,
    ) -> Option<String> {
        let first = match limiter {
            Some(l) => match l.hold_contact(channel, pool, user, address, now).await {
                Ok(first) => first,
                Err(e) => {
                    tracing::warn!("the held change could not be recorded: {e}");
                    true
                }
            },
            None => true,
        };
        if !first {
            return None;
        }
        match self
            .directory
            .verified_address(pool, user, channel == Channel::Sms)
            .await
        {
            Ok(Some(current)) if !current.eq_ignore_ascii_case(address) => Some(current),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    error_type = e.kind(),
                    "the address in force could not be read: {e}"
                );
                None
            }
        }
    }
}

/// The notice of a refused change to `masked_new` at `when`.
pub fn refused_notice<'a>(channel: Channel, masked_new: &'a str, when: &'a str) -> Notice<'a> {
    Notice {
        changed: match channel {
            Channel::Email => Changed::Email,
            Channel::Sms => Changed::PhoneNumber,
        },
        refused: true,
        new_value: masked_new,
        when,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cognito_admin::FakeUserPool;
    use send_limits::{LimitSpec, Limits, MemoryLimiter};

    #[test]
    fn the_mode_is_read_strictly() {
        assert_eq!(recent_sign_in_required(&[][..]), Ok(false));
        assert_eq!(
            recent_sign_in_required(&[(MODE_VAR, "RecentSignIn")][..]),
            Ok(true)
        );
        assert_eq!(
            recent_sign_in_required(&[(MODE_VAR, "accesstoken")][..]),
            Ok(false)
        );
        let e = recent_sign_in_required(&[(MODE_VAR, "Recent")][..]).unwrap_err();
        assert!(e.to_string().starts_with(MODE_VAR), "{e}");
        let e = sender_mode(&[(MODE_VAR, "RecentSignIn")][..], false).unwrap_err();
        assert!(e.to_string().contains("LIMIT_TABLE"), "{e}");
        assert_eq!(
            sender_mode(&[(MODE_VAR, "RecentSignIn")][..], true),
            Ok(true)
        );
        assert_eq!(check_for("UpdateUserAttribute"), ContactCheck::Allowance);
        assert_eq!(check_for("VerifyUserAttribute"), ContactCheck::NotHeld);
        for other in [
            "SignUp",
            "ResendCode",
            "ForgotPassword",
            "Authentication",
            "AdminCreateUser",
        ] {
            assert_eq!(check_for(other), ContactCheck::None, "{other}");
        }
    }

    #[tokio::test]
    async fn the_first_refusal_tells_the_verified_address_in_force_once() {
        let pool = FakeUserPool::new();
        pool.add_pool("p");
        pool.add_user(
            "p",
            "alice",
            [("email", "alice@example.com"), ("email_verified", "true")],
        );
        let guard = ContactGuard::new(pool);
        let limiter = MemoryLimiter::new(Limits {
            account_changes_per_user: LimitSpec::parse("5/1d"),
            table: Some("t".into()),
            ..Limits::default()
        });
        let held = |t| {
            guard.held(
                Some(&limiter),
                Channel::Email,
                "p",
                "alice",
                "evil@example.com",
                t,
            )
        };
        assert_eq!(held(1_000).await, Some("alice@example.com".to_owned()));
        assert_eq!(held(1_010).await, None);
        // No verified phone: nobody to tell by SMS.
        assert_eq!(
            guard
                .held(
                    Some(&limiter),
                    Channel::Sms,
                    "p",
                    "alice",
                    "+14155550123",
                    1_000
                )
                .await,
            None
        );
    }
}
