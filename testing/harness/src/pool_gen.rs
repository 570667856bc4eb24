//! A test pool generator for moto: thousands of users in every state the
//! `mfa-admin` audit counts, and the counts the audit must report.
//!
//! moto cannot make federated users (`EXTERNAL_PROVIDER` comes from a
//! sign-in through an identity provider), so the generated pools hold none;
//! the in-memory pool's tests cover them.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, SmsMfaSettingsType};

/// The state of one generated user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Confirmed, SMS enabled and preferred.
    SmsPreferred,
    /// Confirmed, SMS enabled, not preferred (a TOTP chooser's fallback).
    SmsFallback,
    /// Confirmed, TOTP enabled and preferred (no phone).
    Totp,
    /// Confirmed, no factor, a phone.
    NoFactorPhone,
    /// Confirmed, no factor, no phone.
    NoFactorNoPhone,
    /// Confirmed, no factor, no phone, chose NOMFA.
    NoMfa,
    /// Signed up, never confirmed (phone, no factor).
    Unconfirmed,
    /// Admin-created, temporary password not changed (no factor, phone).
    ForceChangePassword,
    /// Confirmed, disabled, no factor, no phone.
    Disabled,
}

/// The mix of a generated pool: one `Kind` per index (TOTP users are few:
/// each costs a sign-in and an authenticator set-up).
pub fn kind_of(i: usize) -> Kind {
    if i % 50 == 7 {
        return Kind::Totp;
    }
    match i % 8 {
        0 => Kind::SmsPreferred,
        1 => Kind::SmsFallback,
        2 => Kind::NoFactorPhone,
        3 => Kind::NoFactorNoPhone,
        4 => Kind::NoMfa,
        5 => Kind::Unconfirmed,
        6 => Kind::ForceChangePassword,
        _ => Kind::Disabled,
    }
}

/// What `mfa-admin audit` must count for a pool of `n` generated users, with
/// the default policy (OPTIONAL, SMS and TOTP, default SMS), as
/// `(key, count)` pairs of its JSON.
pub fn expected_counts(n: usize) -> Vec<(&'static str, u64)> {
    let mut c = std::collections::BTreeMap::<&'static str, u64>::new();
    for key in [
        "total",
        "sms_enabled",
        "sms_preferred",
        "totp_enabled",
        "totp_preferred",
        "no_factor_with_phone",
        "no_factor_without_phone",
        "federated",
        "unconfirmed",
        "reset_required",
        "disabled",
        "policy_needs_factor",
        "blocked_if_on",
        "repairable",
    ] {
        c.insert(key, 0);
    }
    let mut add = |k: &'static str| *c.entry(k).or_default() += 1;
    for i in 0..n {
        add("total");
        match kind_of(i) {
            Kind::SmsPreferred => {
                add("sms_enabled");
                add("sms_preferred");
            }
            Kind::SmsFallback => add("sms_enabled"),
            Kind::Totp => {
                add("totp_enabled");
                add("totp_preferred");
            }
            Kind::NoFactorPhone => {
                add("no_factor_with_phone");
                add("policy_needs_factor");
                add("repairable");
            }
            Kind::NoFactorNoPhone => {
                // The default preference SMS needs a phone: the policy wants
                // a factor this user cannot get.
                add("no_factor_without_phone");
                add("policy_needs_factor");
                add("blocked_if_on");
            }
            Kind::NoMfa => {
                add("no_factor_without_phone");
                add("blocked_if_on");
            }
            Kind::Unconfirmed => {
                add("unconfirmed");
                add("no_factor_with_phone");
                add("policy_needs_factor");
                add("repairable");
            }
            Kind::ForceChangePassword => {
                add("reset_required");
                add("no_factor_with_phone");
                add("policy_needs_factor");
                add("repairable");
            }
            Kind::Disabled => {
                add("disabled");
                add("no_factor_without_phone");
                add("policy_needs_factor");
            }
        }
    }
    c.into_iter().collect()
}

/// The users `enforce` must list as blocked (confirmed or reset-required,
/// enabled, no factor, no phone).
pub fn expected_blocked(n: usize) -> Vec<String> {
    (0..n)
        .filter(|i| matches!(kind_of(*i), Kind::NoFactorNoPhone | Kind::NoMfa))
        .map(username)
        .collect()
}

/// The generated user's name.
pub fn username(i: usize) -> String {
    format!("gen-{i:06}")
}

fn phone(i: usize) -> String {
    format!("+1650253{:04}", i % 10_000)
}

fn attr(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Creates user `i` in its state.
async fn create(client: &Client, pool: &str, app: &str, i: usize) {
    let name = username(i);
    let kind = kind_of(i);
    let with_phone = matches!(
        kind,
        Kind::SmsPreferred
            | Kind::SmsFallback
            | Kind::NoFactorPhone
            | Kind::Unconfirmed
            | Kind::ForceChangePassword
    );
    if kind == Kind::Unconfirmed {
        client
            .sign_up()
            .client_id(app)
            .username(&name)
            .password("Generated-Pass-9")
            .user_attributes(attr("phone_number", &phone(i)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("SignUp {name}: {e:?}"));
        return;
    }
    let mut req = client
        .admin_create_user()
        .user_pool_id(pool)
        .username(&name)
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress);
    if with_phone {
        req = req.user_attributes(attr("phone_number", &phone(i)));
    }
    if kind == Kind::NoMfa {
        req = req.user_attributes(attr("custom:mfa_preference", "NOMFA"));
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("AdminCreateUser {name}: {e:?}"));
    if kind == Kind::ForceChangePassword {
        return;
    }
    if kind == Kind::Totp {
        let tokens = crate::moto::sign_in(client, pool, app, &name, "Generated-Pass-9").await;
        crate::moto::enable_totp(client, pool, &name, &tokens.access).await;
        return;
    }
    client
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(&name)
        .password("Generated-Pass-9")
        .permanent(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AdminSetUserPassword {name}: {e:?}"));
    match kind {
        Kind::SmsPreferred | Kind::SmsFallback => {
            client
                .admin_set_user_mfa_preference()
                .user_pool_id(pool)
                .username(&name)
                .sms_mfa_settings(
                    SmsMfaSettingsType::builder()
                        .enabled(true)
                        .preferred_mfa(kind == Kind::SmsPreferred)
                        .build(),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("AdminSetUserMFAPreference {name}: {e:?}"));
        }
        Kind::Disabled => {
            client
                .admin_disable_user()
                .user_pool_id(pool)
                .username(&name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("AdminDisableUser {name}: {e:?}"));
        }
        _ => {}
    }
}

/// A moto pool (OPTIONAL, SMS and TOTP configured, the `mfa_preference`
/// attribute) with `n` users in every state of [`kind_of`], created
/// `concurrency` at a time; returns the pool id.
pub async fn generate_pool(client: &Client, n: usize, concurrency: usize) -> String {
    use aws_sdk_cognitoidentityprovider::types::{
        SchemaAttributeType, SmsConfigurationType, SmsMfaConfigType, SoftwareTokenMfaConfigType,
        UserPoolMfaType,
    };
    let pool = client
        .create_user_pool()
        .pool_name("generated")
        .mfa_configuration(UserPoolMfaType::Optional)
        .schema(
            SchemaAttributeType::builder()
                .name("mfa_preference")
                .attribute_data_type(
                    aws_sdk_cognitoidentityprovider::types::AttributeDataType::String,
                )
                .mutable(true)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateUserPool: {e:?}"))
        .user_pool()
        .and_then(|p| p.id())
        .unwrap_or_default()
        .to_owned();
    client
        .set_user_pool_mfa_config()
        .user_pool_id(&pool)
        .mfa_configuration(UserPoolMfaType::Optional)
        .sms_mfa_configuration(
            SmsMfaConfigType::builder()
                .sms_authentication_message("Your code is {####}")
                .sms_configuration(
                    SmsConfigurationType::builder()
                        .sns_caller_arn("arn:aws:iam::123456789012:role/sms")
                        .external_id("generated")
                        .build(),
                )
                .build(),
        )
        .software_token_mfa_configuration(
            SoftwareTokenMfaConfigType::builder().enabled(true).build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("SetUserPoolMfaConfig: {e:?}"));
    let app = crate::moto::new_admin_client(client, &pool).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        if tasks.len() >= concurrency.max(1)
            && let Some(done) = tasks.join_next().await
        {
            done.unwrap_or_else(|e| panic!("a generator task failed: {e}"));
        }
        let (client, pool, app) = (client.clone(), pool.clone(), app.clone());
        tasks.spawn(async move { create(&client, &pool, &app, i).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap_or_else(|e| panic!("a generator task failed: {e}"));
    }
    pool
}
