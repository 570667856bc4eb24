//! The SDK adapter against moto's server over real HTTP (`MOTO_ENDPOINT`,
//! started by `scripts/test`): what each call does, read back with
//! AdminGetUser, and moto's missing device APIs read as "not implemented".

use aws_sdk_cognitoidentityprovider::Client;
use cognito_admin::{AdminError, CognitoAdmin, MfaFactor, UserPoolAdmin};

async fn client() -> Client {
    Client::new(&harness::moto::sdk_config().await)
}

use harness::moto::{new_pool, new_user};

#[tokio::test]
async fn mfa_preference_and_attributes_round_trip_through_moto() {
    let client = client().await;
    let pool = new_pool(&client, "adapter-round-trip").await;
    new_user(&client, &pool, "alice", &[("phone_number", "+14155550123")]).await;
    let admin = CognitoAdmin::new(client);

    admin
        .set_mfa_preference(&pool, "alice", auth_policy::MfaSettings::SMS_PREFERRED)
        .await
        .unwrap();
    let u = admin.get_user(&pool, "alice").await.unwrap();
    assert_eq!(u.mfa.enabled, vec![MfaFactor::Sms]);
    assert_eq!(u.mfa.preferred, Some(MfaFactor::Sms));

    admin
        .update_attributes(
            &pool,
            "alice",
            &[("phone_number".into(), "+819012345678".into())],
        )
        .await
        .unwrap();
    let u = admin.get_user(&pool, "alice").await.unwrap();
    assert_eq!(u.phone_number(), Some("+819012345678"));

    admin
        .set_mfa_preference(&pool, "alice", auth_policy::MfaSettings::NONE)
        .await
        .unwrap();
    let u = admin.get_user(&pool, "alice").await.unwrap();
    assert!(
        u.mfa.enabled.is_empty() && u.mfa.preferred.is_none(),
        "{u:?}"
    );
}

#[tokio::test]
async fn errors_are_classified_on_codes_from_moto() {
    let client = client().await;
    let pool = new_pool(&client, "adapter-errors").await;
    new_user(&client, &pool, "bob", &[]).await;
    let admin = CognitoAdmin::new(client);

    let e = admin
        .get_user(&pool, "nobody@example.com")
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::UserNotFound { .. }), "{e:?}");
    assert!(!e.to_string().contains("nobody@example.com"));

    let e = admin
        .set_mfa_preference(&pool, "bob", auth_policy::MfaSettings::TOTP_PREFERRED)
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::InvalidParameter { .. }), "{e:?}");

    let e = admin
        .get_user("us-east-1_doesnotexist", "bob")
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::PoolNotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn list_users_pages_through_moto() {
    let client = client().await;
    let pool = new_pool(&client, "adapter-list").await;
    for i in 0..65 {
        new_user(&client, &pool, &format!("user{i:02}"), &[]).await;
    }
    let admin = CognitoAdmin::new(client);
    let mut names = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = admin.list_users(&pool, token.as_deref()).await.unwrap();
        pages += 1;
        names.extend(page.users.into_iter().map(|u| u.username));
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 65);
    assert!(pages >= 2, "65 users need two pages of 60");
}

#[tokio::test]
async fn moto_without_device_apis_reads_as_not_implemented() {
    let client = client().await;
    let pool = new_pool(&client, "adapter-devices").await;
    new_user(&client, &pool, "carol", &[]).await;
    let admin = CognitoAdmin::new(client);
    let e = admin.list_devices(&pool, "carol").await.unwrap_err();
    assert!(
        matches!(
            e,
            AdminError::NotImplemented {
                operation: "AdminListDevices",
                ..
            }
        ),
        "{e:?}"
    );
}
