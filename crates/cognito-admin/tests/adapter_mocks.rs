//! The SDK adapter against aws-smithy-mocks: the requests it builds, how it
//! reads the answers, and how it classifies errors — including the paths
//! moto cannot show (device APIs, SMS MFA refused for a user without phone).

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ErrorMetadata;
use aws_sdk_cognitoidentityprovider::operation::admin_forget_device::AdminForgetDeviceError;
use aws_sdk_cognitoidentityprovider::operation::admin_get_user::{
    AdminGetUserError, AdminGetUserOutput,
};
use aws_sdk_cognitoidentityprovider::operation::admin_list_devices::AdminListDevicesOutput;
use aws_sdk_cognitoidentityprovider::operation::admin_set_user_mfa_preference::{
    AdminSetUserMFAPreferenceError, AdminSetUserMfaPreferenceOutput,
};
use aws_sdk_cognitoidentityprovider::operation::list_users::ListUsersOutput;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, DeviceType, UserStatusType, UserType};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use cognito_admin::{AdminError, CognitoAdmin, MfaFactor, UserPoolAdmin};

const POOL: &str = "us-east-1_Mock";

fn attr(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap()
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

#[tokio::test]
async fn sms_preferred_sends_only_the_sms_setting() {
    let rule = mock!(Client::admin_set_user_mfa_preference)
        .match_requests(|r| {
            let sms = r.sms_mfa_settings();
            r.user_pool_id() == Some(POOL)
                && r.username() == Some("alice")
                && sms.map(|s| s.enabled()) == Some(true)
                && sms.map(|s| s.preferred_mfa()) == Some(true)
                && r.software_token_mfa_settings().is_none()
        })
        .then_output(|| AdminSetUserMfaPreferenceOutput::builder().build());
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    admin
        .set_mfa_preference(POOL, "alice", auth_policy::MfaSettings::SMS_PREFERRED)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn recovery_settings_send_both_methods() {
    let rule = mock!(Client::admin_set_user_mfa_preference)
        .match_requests(|r| {
            let sms = r.sms_mfa_settings();
            let totp = r.software_token_mfa_settings();
            sms.map(|s| s.enabled()) == Some(true)
                && sms.map(|s| s.preferred_mfa()) == Some(true)
                && totp.map(|s| s.enabled()) == Some(false)
                && totp.map(|s| s.preferred_mfa()) == Some(false)
        })
        .then_output(|| AdminSetUserMfaPreferenceOutput::builder().build());
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    admin
        .set_mfa_preference(POOL, "alice", auth_policy::admin::SMS_ONLY)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn sms_for_a_user_without_phone_is_invalid_parameter_whatever_the_text() {
    // Cognito's text; moto would accept the call instead.
    let rule = mock!(Client::admin_set_user_mfa_preference).then_error(|| {
        AdminSetUserMFAPreferenceError::generic(meta(
            "InvalidParameterException",
            "User does not have delivery config set to turn on SMS_MFA",
        ))
    });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let e = admin
        .set_mfa_preference(POOL, "alice", auth_policy::MfaSettings::SMS_PREFERRED)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        AdminError::InvalidParameter {
            operation: "AdminSetUserMFAPreference"
        }
    );
    assert!(
        !e.to_string().contains("delivery config"),
        "no message text: {e}"
    );
}

#[tokio::test]
async fn get_user_reads_attributes_and_mfa_settings() {
    let rule = mock!(Client::admin_get_user)
        .match_requests(|r| r.username() == Some("alice"))
        .then_output(|| {
            AdminGetUserOutput::builder()
                .username("alice")
                .user_status(UserStatusType::Confirmed)
                .enabled(true)
                .user_attributes(attr("phone_number", "+14155550123"))
                .user_attributes(attr("phone_number_verified", "true"))
                .user_attributes(attr("custom:mfa_preference", "TOTP"))
                .user_mfa_setting_list("SOFTWARE_TOKEN_MFA")
                .user_mfa_setting_list("SMS_MFA")
                .preferred_mfa_setting("SOFTWARE_TOKEN_MFA")
                .build()
                .unwrap()
        });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let u = admin.get_user(POOL, "alice").await.unwrap();
    assert_eq!(u.status.as_deref(), Some("CONFIRMED"));
    assert_eq!(u.phone_number(), Some("+14155550123"));
    assert!(u.phone_number_verified());
    assert_eq!(u.attribute("custom:mfa_preference"), Some("TOTP"));
    assert_eq!(
        u.mfa.enabled,
        vec![MfaFactor::Sms, MfaFactor::SoftwareToken]
    );
    assert_eq!(u.mfa.preferred, Some(MfaFactor::SoftwareToken));
}

#[tokio::test]
async fn an_empty_preferred_setting_means_none() {
    // moto answers "PreferredMfaSetting": "" for a user with no preference.
    let rule = mock!(Client::admin_get_user).then_output(|| {
        AdminGetUserOutput::builder()
            .username("bob")
            .preferred_mfa_setting("")
            .build()
            .unwrap()
    });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let u = admin.get_user(POOL, "bob").await.unwrap();
    assert_eq!(u.mfa.preferred, None);
    assert!(u.mfa.enabled.is_empty());
    assert!(!u.phone_number_verified());
}

#[tokio::test]
async fn unknown_users_are_user_not_found_with_a_masked_name() {
    let rule = mock!(Client::admin_get_user).then_error(|| {
        AdminGetUserError::generic(meta("UserNotFoundException", "User does not exist."))
    });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let e = admin.get_user(POOL, "carol@example.com").await.unwrap_err();
    assert!(matches!(e, AdminError::UserNotFound { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("c***@example.com") && text.contains(POOL),
        "{text}"
    );
    assert!(!text.contains("carol@example.com"), "{text}");
}

#[tokio::test]
async fn devices_are_read_across_pages() {
    let first = mock!(Client::admin_list_devices)
        .match_requests(|r| r.pagination_token().is_none() && r.username() == Some("alice"))
        .then_output(|| {
            AdminListDevicesOutput::builder()
                .devices(
                    DeviceType::builder()
                        .device_key("us-east-1_aaaa-1111")
                        .device_attributes(attr("device_name", "Chrome on macOS"))
                        .device_attributes(attr("dev:device_remembered_status", "remembered"))
                        .device_last_authenticated_date(DateTime::from_secs(1_764_000_000))
                        .build(),
                )
                .pagination_token("page-2")
                .build()
        });
    let second = mock!(Client::admin_list_devices)
        .match_requests(|r| r.pagination_token() == Some("page-2"))
        .then_output(|| {
            AdminListDevicesOutput::builder()
                .devices(
                    DeviceType::builder()
                        .device_key("us-east-1_bbbb-2222")
                        .device_attributes(attr("dev:device_remembered_status", "not_remembered"))
                        .build(),
                )
                .build()
        });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&first, &second]
    ));
    let devices = admin.list_devices(POOL, "alice").await.unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].key, "us-east-1_aaaa-1111");
    assert_eq!(devices[0].name.as_deref(), Some("Chrome on macOS"));
    assert_eq!(devices[0].remembered, Some(true));
    assert_eq!(
        devices[0].last_authenticated.as_deref(),
        Some("2025-11-24T16:00:00Z")
    );
    assert_eq!(devices[1].remembered, Some(false));
    assert_eq!(devices[1].name, None);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_repeated_page_token_ends_the_listing() {
    let rule = mock!(Client::admin_list_devices).then_output(|| {
        AdminListDevicesOutput::builder()
            .devices(DeviceType::builder().device_key("k").build())
            .pagination_token("same")
            .build()
    });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::MatchAny,
        [&rule]
    ));
    let devices = admin.list_devices(POOL, "alice").await.unwrap();
    assert_eq!(devices.len(), 2, "the first page and the repeat, then stop");
}

#[tokio::test]
async fn forgetting_an_unknown_device_says_so() {
    let rule = mock!(Client::admin_forget_device)
        .match_requests(|r| r.device_key() == Some("us-east-1_gone"))
        .then_error(|| {
            AdminForgetDeviceError::generic(meta("ResourceNotFoundException", "Device not found"))
        });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let e = admin
        .forget_device(POOL, "alice", "us-east-1_gone")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdminError::DeviceNotFound { key, .. } if key == "us-east-1_gone"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_500_without_an_error_code_reads_as_not_implemented() {
    // What moto 5.2 answers for AdminListDevices.
    let rule = mock!(Client::admin_list_devices)
        .sequence()
        .http_status(
            500,
            Some("<!doctype html><title>500 Internal Server Error</title>".to_owned()),
        )
        .repeatedly()
        .build();
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let e = admin.list_devices(POOL, "alice").await.unwrap_err();
    assert!(
        matches!(
            e,
            AdminError::NotImplemented {
                operation: "AdminListDevices",
                status: 500
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not seem to implement"), "{e}");
}

#[tokio::test]
async fn a_coded_500_is_a_service_error_not_a_missing_api() {
    let rule = mock!(Client::admin_set_user_mfa_preference).then_error(|| {
        AdminSetUserMFAPreferenceError::generic(meta("InternalErrorException", "oops"))
    });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::MatchAny,
        [&rule]
    ));
    let e = admin
        .set_mfa_preference(POOL, "alice", auth_policy::MfaSettings::SMS_PREFERRED)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InternalErrorException"));
    assert_eq!(e.kind(), "CognitoError");
}

#[tokio::test]
async fn list_users_reads_one_page_and_its_token() {
    let rule = mock!(Client::list_users)
        .match_requests(|r| r.limit() == Some(60) && r.pagination_token() == Some("t1"))
        .then_output(|| {
            ListUsersOutput::builder()
                .users(
                    UserType::builder()
                        .username("dave")
                        .user_status(UserStatusType::ExternalProvider)
                        .attributes(attr("email", "dave@example.com"))
                        .build(),
                )
                .pagination_token("t2")
                .build()
        });
    let admin = CognitoAdmin::new(mock_client!(
        aws_sdk_cognitoidentityprovider,
        RuleMode::Sequential,
        [&rule]
    ));
    let page = admin.list_users(POOL, Some("t1")).await.unwrap();
    assert_eq!(page.next.as_deref(), Some("t2"));
    assert_eq!(page.users[0].username, "dave");
    assert_eq!(page.users[0].status.as_deref(), Some("EXTERNAL_PROVIDER"));
    assert_eq!(page.users[0].attribute("email"), Some("dave@example.com"));
}

#[tokio::test]
async fn missing_credentials_are_not_called_a_network_failure() {
    // No credentials provider at all: the SDK fails before sending
    // anything. The operator must read "credentials", not "network".
    let conf = aws_sdk_cognitoidentityprovider::Config::builder()
        .behavior_version(aws_sdk_cognitoidentityprovider::config::BehaviorVersion::latest())
        .region(aws_sdk_cognitoidentityprovider::config::Region::new(
            "us-east-1",
        ))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let admin = CognitoAdmin::new(Client::from_conf(conf));
    let e = admin.get_user(POOL, "alice").await.unwrap_err();
    assert_eq!(e.kind(), "RequestError", "{e}");
    assert!(e.to_string().contains("credentials"), "{e}");
}
