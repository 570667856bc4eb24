use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use auth_policy::{MethodSetting, MfaSettings};

use crate::UserPoolAdmin;
use crate::error::AdminError;
use crate::model::{Device, MfaFactor, MfaState, PoolMfa, PoolSms, User, UserPage, UserSummary};
use auth_policy::redact::mask_username;

/// An in-memory user pool that answers like Cognito for the calls of
/// [`UserPoolAdmin`]: unknown users and pools are `UserNotFoundException` /
/// `ResourceNotFoundException`; SMS MFA on a user without `phone_number` and
/// TOTP on a user who never associated an authenticator are
/// `InvalidParameterException` (moto accepts the first); preferring one
/// factor un-prefers the other. Every call is recorded ([`Self::calls`]).
///
/// Clones share the same pool.
#[derive(Debug, Clone, Default)]
pub struct FakeUserPool {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    pools: BTreeMap<String, BTreeMap<String, FakeUser>>,
    calls: Vec<&'static str>,
    /// Errors to answer instead of running the next calls, oldest first.
    failures: Vec<AdminError>,
    /// Errors for every call that names this (pool, user).
    user_failures: BTreeMap<(String, String), AdminError>,
    /// Each pool's MFA configuration (default: OPTIONAL, SMS and TOTP).
    pool_mfa: BTreeMap<String, PoolMfa>,
    /// Errors for every call of this operation (e.g. `AdminSetUserMFAPreference`).
    operation_failures: BTreeMap<&'static str, AdminError>,
    page_size: Option<usize>,
}

fn default_pool_mfa() -> PoolMfa {
    PoolMfa {
        mode: "OPTIONAL".to_owned(),
        sms: Some(PoolSms {
            message: Some("Your authentication code is {####}".to_owned()),
            sns_caller_arn: Some("arn:aws:iam::123456789012:role/sms".to_owned()),
            external_id: Some("external".to_owned()),
            sns_region: Some("us-east-1".to_owned()),
        }),
        totp: true,
    }
}

#[derive(Debug, Clone, Default)]
struct FakeUser {
    disabled: bool,
    /// Times AdminUserGlobalSignOut ran for the user.
    sign_outs: u32,
    status: String,
    attributes: BTreeMap<String, String>,
    sms: bool,
    totp: bool,
    email: bool,
    preferred: Option<MfaFactor>,
    totp_associated: bool,
    devices: Vec<Device>,
}

impl FakeUser {
    fn has_email(&self) -> bool {
        self.attributes
            .get("email")
            .is_some_and(|p| !p.trim().is_empty())
    }

    fn has_phone(&self) -> bool {
        self.attributes
            .get("phone_number")
            .is_some_and(|p| !p.trim().is_empty())
    }

    fn mfa(&self) -> MfaState {
        let mut enabled = Vec::new();
        if self.sms {
            enabled.push(MfaFactor::Sms);
        }
        if self.totp {
            enabled.push(MfaFactor::SoftwareToken);
        }
        if self.email {
            enabled.push(MfaFactor::Email);
        }
        MfaState::new(enabled, self.preferred)
    }
}

impl FakeUserPool {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not hide this pool's state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates an empty pool (a call on an unknown pool is
    /// `ResourceNotFoundException`).
    pub fn add_pool(&self, pool_id: &str) {
        self.lock().pools.entry(pool_id.to_owned()).or_default();
    }

    /// Adds (or replaces) a confirmed user with these attributes; the
    /// status comes from `cognito:user_status` when given.
    pub fn add_user<'a>(
        &self,
        pool_id: &str,
        username: &str,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut attrs: BTreeMap<String, String> = attributes
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let status = attrs
            .remove(crate::USER_STATUS_ATTRIBUTE)
            .unwrap_or_else(|| "CONFIRMED".to_owned());
        self.lock()
            .pools
            .entry(pool_id.to_owned())
            .or_default()
            .insert(
                username.to_owned(),
                FakeUser {
                    status,
                    attributes: attrs,
                    ..FakeUser::default()
                },
            );
    }

    /// Removes the user (a later call naming them is `UserNotFoundException`).
    pub fn remove_user(&self, pool_id: &str, username: &str) {
        if let Some(pool) = self.lock().pools.get_mut(pool_id) {
            pool.remove(username);
        }
    }

    /// Marks the user's authenticator as associated and verified (what
    /// `AssociateSoftwareToken` + `VerifySoftwareToken` do).
    pub fn associate_totp(&self, pool_id: &str, username: &str) -> bool {
        self.with_user(pool_id, username, |u| u.totp_associated = true)
    }

    /// Adds a tracked device to the user.
    pub fn add_device(&self, pool_id: &str, username: &str, device: Device) -> bool {
        self.with_user(pool_id, username, |u| u.devices.push(device))
    }

    /// The pool's MFA configuration, without recording a call.
    pub fn pool_mfa_config(&self, pool_id: &str) -> PoolMfa {
        self.lock()
            .pool_mfa
            .get(pool_id)
            .cloned()
            .unwrap_or_else(default_pool_mfa)
    }

    /// Marks a user disabled (`AdminDisableUser`).
    pub fn disable_user(&self, pool_id: &str, username: &str) -> bool {
        self.with_user(pool_id, username, |u| u.disabled = true)
    }

    /// The user's devices, without recording a call.
    pub fn devices(&self, pool_id: &str, username: &str) -> Vec<Device> {
        let state = self.lock();
        state
            .pools
            .get(pool_id)
            .and_then(|p| p.get(username))
            .map(|u| u.devices.clone())
            .unwrap_or_default()
    }

    /// How many times the user was signed out everywhere.
    pub fn sign_outs(&self, pool_id: &str, username: &str) -> u32 {
        let state = self.lock();
        state
            .pools
            .get(pool_id)
            .and_then(|p| p.get(username))
            .map_or(0, |u| u.sign_outs)
    }

    /// Answers the next call with `error` instead of running it (queued).
    pub fn fail_next(&self, error: AdminError) {
        self.lock().failures.push(error);
    }

    /// Answers every call naming this user with `error` (a user Cognito
    /// keeps failing on, among others that work).
    pub fn fail_user(&self, pool_id: &str, username: &str, error: AdminError) {
        self.lock()
            .user_failures
            .insert((pool_id.to_owned(), username.to_owned()), error);
    }

    /// Answers every call of `operation` (Cognito's name, e.g.
    /// `AdminSetUserMFAPreference`) with `error`, while the others work.
    pub fn fail_operation(&self, operation: &'static str, error: AdminError) {
        self.lock().operation_failures.insert(operation, error);
    }

    /// Makes ListUsers answer `size` users per page (default: all).
    pub fn set_page_size(&self, size: usize) {
        self.lock().page_size = Some(size.max(1));
    }

    /// The API operations called so far, oldest first.
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    /// The user as `AdminGetUser` would show it, without recording a call.
    pub fn user(&self, pool_id: &str, username: &str) -> Option<User> {
        let state = self.lock();
        let u = state.pools.get(pool_id)?.get(username)?;
        Some(to_user(username, u))
    }

    fn with_user(&self, pool_id: &str, username: &str, f: impl FnOnce(&mut FakeUser)) -> bool {
        let mut state = self.lock();
        match state
            .pools
            .get_mut(pool_id)
            .and_then(|p| p.get_mut(username))
        {
            Some(u) => {
                f(u);
                true
            }
            None => false,
        }
    }

    /// Records the call, answers a queued failure, or runs `f` on the user.
    fn call<T>(
        &self,
        operation: &'static str,
        pool_id: &str,
        username: &str,
        f: impl FnOnce(&mut FakeUser) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut state = self.lock();
        state.calls.push(operation);
        if !state.failures.is_empty() {
            return Err(state.failures.remove(0));
        }
        if let Some(e) = state.operation_failures.get(operation) {
            return Err(e.clone());
        }
        if let Some(e) = state
            .user_failures
            .get(&(pool_id.to_owned(), username.to_owned()))
        {
            return Err(e.clone());
        }
        let pool = state
            .pools
            .get_mut(pool_id)
            .ok_or_else(|| AdminError::PoolNotFound {
                pool: pool_id.to_owned(),
            })?;
        let user = pool
            .get_mut(username)
            .ok_or_else(|| AdminError::UserNotFound {
                pool: pool_id.to_owned(),
                user: mask_username(username),
            })?;
        f(user)
    }
}

fn to_user(username: &str, u: &FakeUser) -> User {
    User {
        username: username.to_owned(),
        status: Some(u.status.clone()),
        enabled: !u.disabled,
        attributes: u.attributes.clone(),
        mfa: u.mfa(),
    }
}

/// Cognito's rule for one method's setting: enable/disable, and prefer it
/// or, if it was the preferred one, drop the preference.
fn apply(
    enabled: &mut bool,
    preferred: &mut Option<MfaFactor>,
    factor: MfaFactor,
    s: MethodSetting,
) {
    *enabled = s.enabled;
    if s.preferred && s.enabled {
        *preferred = Some(factor);
    } else if *preferred == Some(factor) {
        *preferred = None;
    }
}

impl UserPoolAdmin for FakeUserPool {
    async fn get_user(&self, pool_id: &str, username: &str) -> Result<User, AdminError> {
        self.call("AdminGetUser", pool_id, username, |u| {
            Ok(to_user(username, u))
        })
    }

    async fn set_mfa_preference(
        &self,
        pool_id: &str,
        username: &str,
        settings: MfaSettings,
    ) -> Result<(), AdminError> {
        const OP: &str = "AdminSetUserMFAPreference";
        self.call(OP, pool_id, username, |u| {
            let invalid = AdminError::InvalidParameter { operation: OP };
            if settings.sms.is_some_and(|s| s.enabled) && !u.has_phone() {
                return Err(invalid);
            }
            if settings.totp.is_some_and(|s| s.enabled) && !u.totp_associated {
                return Err(invalid);
            }
            if settings.email.is_some_and(|s| s.enabled) && !u.has_email() {
                return Err(invalid);
            }
            if let Some(s) = settings.email {
                apply(&mut u.email, &mut u.preferred, MfaFactor::Email, s);
            }
            if let Some(s) = settings.totp {
                apply(&mut u.totp, &mut u.preferred, MfaFactor::SoftwareToken, s);
            }
            if let Some(s) = settings.sms {
                apply(&mut u.sms, &mut u.preferred, MfaFactor::Sms, s);
            }
            Ok(())
        })
    }

    async fn update_attributes(
        &self,
        pool_id: &str,
        username: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AdminError> {
        self.call("AdminUpdateUserAttributes", pool_id, username, |u| {
            for (name, value) in attributes {
                u.attributes.insert(name.clone(), value.clone());
            }
            Ok(())
        })
    }

    async fn list_users(&self, pool_id: &str, token: Option<&str>) -> Result<UserPage, AdminError> {
        let mut state = self.lock();
        state.calls.push("ListUsers");
        if !state.failures.is_empty() {
            return Err(state.failures.remove(0));
        }
        let size = state.page_size.unwrap_or(usize::MAX);
        let pool = state
            .pools
            .get(pool_id)
            .ok_or_else(|| AdminError::PoolNotFound {
                pool: pool_id.to_owned(),
            })?;
        let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let users: Vec<UserSummary> = pool
            .iter()
            .skip(start)
            .take(size)
            .map(|(name, u)| UserSummary {
                username: name.clone(),
                status: Some(u.status.clone()),
                attributes: u.attributes.clone(),
            })
            .collect();
        let end = start + users.len();
        Ok(UserPage {
            next: (end < pool.len()).then(|| end.to_string()),
            users,
        })
    }

    async fn list_devices(&self, pool_id: &str, username: &str) -> Result<Vec<Device>, AdminError> {
        self.call("AdminListDevices", pool_id, username, |u| {
            Ok(u.devices.clone())
        })
    }

    async fn pool_mfa(&self, pool_id: &str) -> Result<PoolMfa, AdminError> {
        let mut state = self.lock();
        state.calls.push("GetUserPoolMfaConfig");
        if let Some(e) = state.operation_failures.get("GetUserPoolMfaConfig") {
            return Err(e.clone());
        }
        if !state.pools.contains_key(pool_id) {
            return Err(AdminError::PoolNotFound {
                pool: pool_id.to_owned(),
            });
        }
        Ok(state
            .pool_mfa
            .get(pool_id)
            .cloned()
            .unwrap_or_else(default_pool_mfa))
    }

    async fn set_pool_mfa_on(&self, pool_id: &str, current: &PoolMfa) -> Result<(), AdminError> {
        let mut state = self.lock();
        state.calls.push("SetUserPoolMfaConfig");
        if let Some(e) = state.operation_failures.get("SetUserPoolMfaConfig") {
            return Err(e.clone());
        }
        if !state.pools.contains_key(pool_id) {
            return Err(AdminError::PoolNotFound {
                pool: pool_id.to_owned(),
            });
        }
        let mut on = current.clone();
        on.mode = "ON".to_owned();
        state.pool_mfa.insert(pool_id.to_owned(), on);
        Ok(())
    }

    async fn global_sign_out(&self, pool_id: &str, username: &str) -> Result<(), AdminError> {
        self.call("AdminUserGlobalSignOut", pool_id, username, |u| {
            u.sign_outs += 1;
            Ok(())
        })
    }

    async fn forget_device(
        &self,
        pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<(), AdminError> {
        self.call("AdminForgetDevice", pool_id, username, |u| {
            let before = u.devices.len();
            u.devices.retain(|d| d.key != device_key);
            if u.devices.len() == before {
                // Cognito: an unknown device key is ResourceNotFoundException.
                return Err(AdminError::DeviceNotFound {
                    pool: pool_id.to_owned(),
                    key: device_key.to_owned(),
                });
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "us-east-1_fake";

    fn pool_with(attrs: &[(&str, &str)]) -> FakeUserPool {
        let p = FakeUserPool::new();
        p.add_user(POOL, "alice", attrs.iter().copied());
        p
    }

    #[tokio::test]
    async fn sms_needs_a_phone_like_cognito() {
        let p = pool_with(&[("email", "alice@example.com")]);
        let e = p
            .set_mfa_preference(POOL, "alice", MfaSettings::SMS_PREFERRED)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidParameterException"));
        assert_eq!(p.user(POOL, "alice").unwrap().mfa, MfaState::default());
    }

    #[tokio::test]
    async fn preferring_one_factor_unprefers_the_other() {
        let p = pool_with(&[("phone_number", "+14155550123")]);
        p.associate_totp(POOL, "alice");
        p.set_mfa_preference(POOL, "alice", MfaSettings::SMS_PREFERRED)
            .await
            .unwrap();
        p.set_mfa_preference(POOL, "alice", MfaSettings::TOTP_PREFERRED)
            .await
            .unwrap();
        let mfa = p.user(POOL, "alice").unwrap().mfa;
        assert_eq!(mfa.enabled, vec![MfaFactor::Sms, MfaFactor::SoftwareToken]);
        assert_eq!(mfa.preferred, Some(MfaFactor::SoftwareToken));
        p.set_mfa_preference(POOL, "alice", MfaSettings::NONE)
            .await
            .unwrap();
        assert_eq!(p.user(POOL, "alice").unwrap().mfa, MfaState::default());
    }

    #[tokio::test]
    async fn totp_needs_an_associated_authenticator() {
        let p = pool_with(&[]);
        let e = p
            .set_mfa_preference(POOL, "alice", MfaSettings::TOTP_PREFERRED)
            .await
            .unwrap_err();
        assert!(matches!(e, AdminError::InvalidParameter { .. }), "{e}");
    }

    #[tokio::test]
    async fn unknown_users_and_pools_have_cognitos_codes() {
        let p = pool_with(&[]);
        let e = p.get_user(POOL, "bob@example.com").await.unwrap_err();
        assert_eq!(e.code(), Some("UserNotFoundException"));
        assert!(!e.to_string().contains("bob@example.com"), "{e}");
        let e = p.get_user("us-east-1_nope", "alice").await.unwrap_err();
        assert_eq!(e.code(), Some("ResourceNotFoundException"));
        assert_eq!(p.calls(), vec!["AdminGetUser", "AdminGetUser"]);
    }

    #[tokio::test]
    async fn list_users_pages_through_everyone() {
        let p = FakeUserPool::new();
        for name in ["a", "b", "c", "d", "e"] {
            p.add_user(POOL, name, []);
        }
        p.set_page_size(2);
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = p.list_users(POOL, token.as_deref()).await.unwrap();
            seen.extend(page.users.into_iter().map(|u| u.username));
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
        assert_eq!(p.calls().len(), 3);
    }

    #[tokio::test]
    async fn devices_can_be_listed_and_forgotten() {
        let p = pool_with(&[]);
        let dev = |key: &str| Device {
            key: key.to_owned(),
            name: Some("Firefox".into()),
            remembered: Some(true),
            last_authenticated: None,
            created: None,
            last_modified: None,
        };
        p.add_device(POOL, "alice", dev("k1"));
        p.add_device(POOL, "alice", dev("k2"));
        p.forget_device(POOL, "alice", "k1").await.unwrap();
        let left: Vec<_> = p
            .list_devices(POOL, "alice")
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.key)
            .collect();
        assert_eq!(left, vec!["k2"]);
        let e = p.forget_device(POOL, "alice", "k1").await.unwrap_err();
        assert_eq!(e.code(), Some("ResourceNotFoundException"));
    }

    #[tokio::test]
    async fn queued_failures_answer_the_next_calls() {
        let p = pool_with(&[("phone_number", "+14155550123")]);
        p.fail_next(AdminError::Unreachable {
            operation: "AdminSetUserMFAPreference",
            reason: "timed out".into(),
        });
        assert!(
            p.set_mfa_preference(POOL, "alice", MfaSettings::SMS_PREFERRED)
                .await
                .is_err()
        );
        p.set_mfa_preference(POOL, "alice", MfaSettings::SMS_PREFERRED)
            .await
            .unwrap();
        assert_eq!(
            p.user(POOL, "alice").unwrap().mfa.preferred,
            Some(MfaFactor::Sms)
        );
    }
}
