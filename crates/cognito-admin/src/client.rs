use std::collections::BTreeMap;

use auth_policy::{MethodSetting, MfaSettings};
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::primitives::DateTime;
use aws_sdk_cognitoidentityprovider::primitives::DateTimeFormat;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, DeviceType, EmailMfaSettingsType, SmsMfaSettingsType,
    SoftwareTokenMfaSettingsType, UserType,
};

use crate::UserPoolAdmin;
use crate::error::{AdminError, classify};
use crate::model::{Device, MfaFactor, MfaState, PoolMfa, PoolSms, User, UserPage, UserSummary};

/// [`UserPoolAdmin`] over the real Cognito API (or moto). Build the
/// `Client` once, from `sdk_config::for_function(..)`, and share this value.
#[derive(Debug, Clone)]
pub struct CognitoAdmin {
    client: Client,
}

impl CognitoAdmin {
    /// The service a function's warm path calls, for the init phase's
    /// warm-up (`sdk_config::connect_during_init`).
    pub fn service(sdk: &sdk_config::aws_config::SdkConfig) -> sdk_config::Service {
        sdk_config::Service::new(
            "cognito-idp",
            "cognito-idp",
            "COGNITO_IDENTITY_PROVIDER",
            sdk,
        )
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The largest page ListUsers and AdminListDevices accept.
const PAGE_LIMIT: i32 = 60;

fn attributes(list: &[AttributeType]) -> BTreeMap<String, String> {
    list.iter()
        .map(|a| {
            (
                a.name().to_owned(),
                a.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn date(d: Option<&DateTime>) -> Option<String> {
    d.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
}

fn device(d: &DeviceType) -> Device {
    let attrs = attributes(d.device_attributes());
    Device {
        key: d.device_key().unwrap_or_default().to_owned(),
        name: attrs.get("device_name").cloned(),
        remembered: attrs
            .get("dev:device_remembered_status")
            .or_else(|| attrs.get("device_remembered_status"))
            .map(|s| s == "remembered"),
        last_authenticated: date(d.device_last_authenticated_date()),
        created: date(d.device_create_date()),
        last_modified: date(d.device_last_modified_date()),
    }
}

fn summary(u: &UserType) -> UserSummary {
    UserSummary {
        username: u.username().unwrap_or_default().to_owned(),
        status: u.user_status().map(|s| s.as_str().to_owned()),
        attributes: attributes(u.attributes()),
    }
}

fn sms(s: MethodSetting) -> SmsMfaSettingsType {
    SmsMfaSettingsType::builder()
        .enabled(s.enabled)
        .preferred_mfa(s.preferred)
        .build()
}

fn email(s: MethodSetting) -> EmailMfaSettingsType {
    EmailMfaSettingsType::builder()
        .enabled(s.enabled)
        .preferred_mfa(s.preferred)
        .build()
}

fn totp(s: MethodSetting) -> SoftwareTokenMfaSettingsType {
    SoftwareTokenMfaSettingsType::builder()
        .enabled(s.enabled)
        .preferred_mfa(s.preferred)
        .build()
}

impl UserPoolAdmin for CognitoAdmin {
    async fn get_user(&self, pool_id: &str, username: &str) -> Result<User, AdminError> {
        const OP: &str = "AdminGetUser";
        let out = self
            .client
            .admin_get_user()
            .user_pool_id(pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| classify(OP, pool_id, Some(username), e))?;
        let enabled = out
            .user_mfa_setting_list()
            .iter()
            .filter_map(|n| MfaFactor::parse(n))
            .collect();
        let preferred = out.preferred_mfa_setting().and_then(MfaFactor::parse);
        Ok(User {
            username: out.username().to_owned(),
            status: out.user_status().map(|s| s.as_str().to_owned()),
            enabled: out.enabled(),
            attributes: attributes(out.user_attributes()),
            mfa: MfaState::new(enabled, preferred),
        })
    }

    async fn set_mfa_preference(
        &self,
        pool_id: &str,
        username: &str,
        settings: MfaSettings,
    ) -> Result<(), AdminError> {
        const OP: &str = "AdminSetUserMFAPreference";
        self.client
            .admin_set_user_mfa_preference()
            .user_pool_id(pool_id)
            .username(username)
            .set_sms_mfa_settings(settings.sms.map(sms))
            .set_software_token_mfa_settings(settings.totp.map(totp))
            // Sent only when set: a pool without email MFA never sees it.
            .set_email_mfa_settings(settings.email.map(email))
            .send()
            .await
            .map_err(|e| classify(OP, pool_id, Some(username), e))?;
        Ok(())
    }

    async fn update_attributes(
        &self,
        pool_id: &str,
        username: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AdminError> {
        const OP: &str = "AdminUpdateUserAttributes";
        let mut request = self
            .client
            .admin_update_user_attributes()
            .user_pool_id(pool_id)
            .username(username);
        for (name, value) in attributes {
            let attribute = AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| AdminError::Request {
                    operation: OP,
                    reason: e.to_string(),
                })?;
            request = request.user_attributes(attribute);
        }
        request
            .send()
            .await
            .map_err(|e| classify(OP, pool_id, Some(username), e))?;
        Ok(())
    }

    async fn list_users(&self, pool_id: &str, token: Option<&str>) -> Result<UserPage, AdminError> {
        const OP: &str = "ListUsers";
        let out = self
            .client
            .list_users()
            .user_pool_id(pool_id)
            .limit(PAGE_LIMIT)
            .set_pagination_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify(OP, pool_id, None, e))?;
        Ok(UserPage {
            users: out.users().iter().map(summary).collect(),
            next: out
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }

    async fn list_devices(&self, pool_id: &str, username: &str) -> Result<Vec<Device>, AdminError> {
        const OP: &str = "AdminListDevices";
        let mut devices = Vec::new();
        let mut token: Option<String> = None;
        let mut previous: Option<String> = None;
        loop {
            let out = self
                .client
                .admin_list_devices()
                .user_pool_id(pool_id)
                .username(username)
                .limit(PAGE_LIMIT)
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(|e| classify(OP, pool_id, Some(username), e))?;
            devices.extend(out.devices().iter().map(device));
            match out.pagination_token().filter(|t| !t.is_empty()) {
                // A server that repeats its token would loop forever.
                Some(next) if Some(next) != previous.as_deref() => {
                    previous = Some(next.to_owned());
                    token = Some(next.to_owned());
                }
                _ => return Ok(devices),
            }
        }
    }

    async fn pool_mfa(&self, pool_id: &str) -> Result<PoolMfa, AdminError> {
        const OP: &str = "GetUserPoolMfaConfig";
        let out = self
            .client
            .get_user_pool_mfa_config()
            .user_pool_id(pool_id)
            .send()
            .await
            .map_err(|e| classify(OP, pool_id, None, e))?;
        let sms = out.sms_mfa_configuration().map(|c| PoolSms {
            message: c.sms_authentication_message().map(str::to_owned),
            sns_caller_arn: c.sms_configuration().map(|s| s.sns_caller_arn().to_owned()),
            external_id: c
                .sms_configuration()
                .and_then(|s| s.external_id())
                .map(str::to_owned),
            sns_region: c
                .sms_configuration()
                .and_then(|s| s.sns_region())
                .map(str::to_owned),
        });
        Ok(PoolMfa {
            mode: out
                .mfa_configuration()
                .map_or_else(|| "OFF".to_owned(), |m| m.as_str().to_owned()),
            sms,
            totp: out
                .software_token_mfa_configuration()
                .is_some_and(|t| t.enabled()),
        })
    }

    async fn set_pool_mfa_on(&self, pool_id: &str, current: &PoolMfa) -> Result<(), AdminError> {
        use aws_sdk_cognitoidentityprovider::types::{
            SmsConfigurationType, SmsMfaConfigType, SoftwareTokenMfaConfigType, UserPoolMfaType,
        };
        const OP: &str = "SetUserPoolMfaConfig";
        let mut req = self
            .client
            .set_user_pool_mfa_config()
            .user_pool_id(pool_id)
            .mfa_configuration(UserPoolMfaType::On)
            .software_token_mfa_configuration(
                SoftwareTokenMfaConfigType::builder()
                    .enabled(current.totp)
                    .build(),
            );
        if let Some(sms) = &current.sms {
            let mut config =
                SmsMfaConfigType::builder().set_sms_authentication_message(sms.message.clone());
            if let Some(arn) = &sms.sns_caller_arn {
                let built = SmsConfigurationType::builder()
                    .sns_caller_arn(arn)
                    .set_external_id(sms.external_id.clone())
                    .set_sns_region(sms.sns_region.clone())
                    .build();
                config = config.sms_configuration(built);
            }
            req = req.sms_mfa_configuration(config.build());
        }
        req.send()
            .await
            .map_err(|e| classify(OP, pool_id, None, e))?;
        Ok(())
    }

    async fn global_sign_out(&self, pool_id: &str, username: &str) -> Result<(), AdminError> {
        const OP: &str = "AdminUserGlobalSignOut";
        self.client
            .admin_user_global_sign_out()
            .user_pool_id(pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| classify(OP, pool_id, Some(username), e))?;
        Ok(())
    }

    async fn forget_device(
        &self,
        pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<(), AdminError> {
        const OP: &str = "AdminForgetDevice";
        self.client
            .admin_forget_device()
            .user_pool_id(pool_id)
            .username(username)
            .device_key(device_key)
            .send()
            .await
            .map_err(|e| match classify(OP, pool_id, Some(username), e) {
                // Here ResourceNotFoundException is about the device key.
                AdminError::PoolNotFound { pool } => AdminError::DeviceNotFound {
                    pool,
                    key: device_key.to_owned(),
                },
                other => other,
            })?;
        Ok(())
    }
}
