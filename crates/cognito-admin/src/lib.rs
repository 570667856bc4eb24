//! The few Cognito admin calls this project makes, behind one narrow trait.
//!
//! `post-confirmation` needs only `AdminSetUserMFAPreference`; `mfa-admin`
//! also reads users, updates attributes, lists users and devices and forgets
//! devices. Both talk to [`UserPoolAdmin`], so that:
//!
//! * [`CognitoAdmin`] is the real thing (aws-sdk-cognitoidentityprovider,
//!   built once from the shared `SdkConfig`, so `AWS_ENDPOINT_URL` and the
//!   time budget of `sdk-config` apply);
//! * [`FakeUserPool`] is a small in-memory pool that behaves like Cognito
//!   where moto does not (SMS MFA needs a phone; the device APIs exist), used
//!   by unit tests and by `replay`.
//!
//! Errors ([`AdminError`]) are classified on the AWS error *code*, never on
//! the message text (Cognito's and moto's messages differ, and may quote
//! personal data), and never carry a full phone number or email.

mod client;
mod error;
mod fake;
mod model;

pub use client::CognitoAdmin;
pub use error::AdminError;
pub use fake::FakeUserPool;
pub use model::{
    Device, EXTERNAL_PROVIDER, MfaFactor, MfaState, PoolMfa, PoolSms, USER_STATUS_ATTRIBUTE, User,
    UserPage, UserSummary,
};

use auth_policy::MfaSettings;

/// The admin side of a user pool, as far as MFA goes.
///
/// Every method names the pool, because a trigger learns it from the event
/// and `mfa-admin` from its `--user-pool-id`.
pub trait UserPoolAdmin: Sync {
    /// `AdminGetUser`: attributes, status and MFA settings.
    fn get_user(
        &self,
        pool_id: &str,
        username: &str,
    ) -> impl Future<Output = Result<User, AdminError>> + Send;

    /// `AdminSetUserMFAPreference`; a `None` method is left as it is.
    fn set_mfa_preference(
        &self,
        pool_id: &str,
        username: &str,
        settings: MfaSettings,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// `AdminUpdateUserAttributes` with `(name, value)` pairs.
    fn update_attributes(
        &self,
        pool_id: &str,
        username: &str,
        attributes: &[(String, String)],
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// `ListUsers`, one page (`token` from the previous page).
    fn list_users(
        &self,
        pool_id: &str,
        token: Option<&str>,
    ) -> impl Future<Output = Result<UserPage, AdminError>> + Send;

    /// `AdminListDevices`, every page.
    fn list_devices(
        &self,
        pool_id: &str,
        username: &str,
    ) -> impl Future<Output = Result<Vec<Device>, AdminError>> + Send;

    /// `GetUserPoolMfaConfig`.
    fn pool_mfa(&self, pool_id: &str) -> impl Future<Output = Result<PoolMfa, AdminError>> + Send;

    /// `SetUserPoolMfaConfig` with `MfaConfiguration=ON`, keeping `current`'s
    /// SMS settings (message, role) and TOTP setting.
    fn set_pool_mfa_on(
        &self,
        pool_id: &str,
        current: &PoolMfa,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// `AdminUserGlobalSignOut`: every refresh token of the user is revoked
    /// (access and ID tokens stay valid until they expire).
    fn global_sign_out(
        &self,
        pool_id: &str,
        username: &str,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// `AdminForgetDevice`.
    fn forget_device(
        &self,
        pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
}

/// The boxed future of [`AddressBook`].
pub type AddressFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Option<String>, AdminError>> + Send + 'a>>;

/// Where a user can be told about their account: the address in force on
/// one channel. The custom senders hold it as a trait object (one
/// `AdminGetUser`, only when they refuse a change), so their dependencies
/// keep one type whether the look-up is real or a fake.
pub trait AddressBook: Send + Sync {
    /// The user's verified `email` (`phone = false`) or verified
    /// `phone_number` (`phone = true`); `None` when there is none.
    fn verified_address<'a>(
        &'a self,
        pool_id: &'a str,
        username: &'a str,
        phone: bool,
    ) -> AddressFuture<'a>;
}

impl<T: UserPoolAdmin + Send + Sync> AddressBook for T {
    fn verified_address<'a>(
        &'a self,
        pool_id: &'a str,
        username: &'a str,
        phone: bool,
    ) -> AddressFuture<'a> {
        Box::pin(async move {
            let user = self.get_user(pool_id, username).await?;
            let (name, flag) = if phone {
                ("phone_number", "phone_number_verified")
            } else {
                ("email", "email_verified")
            };
            Ok(user
                .attribute(name)
                .map(str::trim)
                .filter(|v| !v.is_empty() && user.attribute(flag) == Some("true"))
                .map(ToOwned::to_owned))
        })
    }
}
