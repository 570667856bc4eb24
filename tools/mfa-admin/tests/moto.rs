//! Every `mfa-admin` command, run as the real binary against moto's server
//! over HTTP (`MOTO_ENDPOINT`, started by `scripts/test`), checked with
//! AdminGetUser. moto 5.2 has no device APIs: those commands must fail with
//! one clear line saying so (the fake and aws-smithy-mocks cover the rest).

use std::process::Output;

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, ExplicitAuthFlowsType};

const BIN: &str = env!("CARGO_BIN_EXE_mfa-admin");

async fn client() -> Client {
    Client::new(&harness::moto::sdk_config().await)
}

use harness::moto::{new_pool, new_user};

/// (enabled factors, preferred, phone, phone verified) as AdminGetUser says.
async fn mfa_of(
    client: &Client,
    pool: &str,
    user: &str,
) -> (Vec<String>, String, Option<String>, Option<String>) {
    let out = client
        .admin_get_user()
        .user_pool_id(pool)
        .username(user)
        .send()
        .await
        .expect("AdminGetUser");
    let attr = |n: &str| {
        out.user_attributes()
            .iter()
            .find(|a| a.name() == n)
            .and_then(|a| a.value().map(str::to_owned))
    };
    let mut enabled = out.user_mfa_setting_list().to_vec();
    enabled.sort();
    (
        enabled,
        out.preferred_mfa_setting().unwrap_or_default().to_owned(),
        attr("phone_number"),
        attr("phone_number_verified"),
    )
}

/// One attribute of the user, as AdminGetUser says.
async fn attribute_of(client: &Client, pool: &str, user: &str, name: &str) -> Option<String> {
    client
        .admin_get_user()
        .user_pool_id(pool)
        .username(user)
        .send()
        .await
        .expect("AdminGetUser")
        .user_attributes()
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.value().map(str::to_owned))
}

/// Runs the binary against moto; `env` adds policy variables.
async fn mfa_admin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args);
    for (k, v) in harness::moto::child_env() {
        cmd.env(k, v);
    }
    for var in [
        "MFA_CONFIGURATION",
        "MFA_METHODS",
        "MFA_DEFAULT_PREFERENCE",
        "SMS_ALLOWED_COUNTRIES",
        "SMS_BLOCKED_COUNTRIES",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("running mfa-admin")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure is exit code 1 and exactly one error line on stderr.
fn assert_one_error_line(o: &Output, contains: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("mfa-admin: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(
        lines[0].contains(contains),
        "{:?} should contain {contains:?}",
        lines[0]
    );
    assert!(
        !err.contains("panicked") && !err.contains("SdkError"),
        "{err}"
    );
}

#[tokio::test]
async fn status_prints_one_json_object_and_flags_go_before_or_after_the_command() {
    let client = client().await;
    let pool = new_pool(&client, "cli-status").await;
    new_user(
        &client,
        &pool,
        "alice",
        &[
            ("phone_number", "+14155550123"),
            ("phone_number_verified", "true"),
        ],
    )
    .await;
    let endpoint = harness::moto::endpoint();
    let before = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "--endpoint-url",
            &endpoint,
            "--output",
            "json",
            "status",
            "alice",
        ],
        &[],
    )
    .await;
    let after = mfa_admin(
        &[
            "status",
            "alice",
            "--output",
            "json",
            "--user-pool-id",
            &pool,
            "--region",
            "us-east-1",
        ],
        &[],
    )
    .await;
    for o in [&before, &after] {
        assert!(o.status.success(), "{}", stderr(o));
        let v: serde_json::Value = serde_json::from_str(stdout(o).trim()).expect("one JSON object");
        assert_eq!(v["username"], "alice");
        assert_eq!(v["enabled"], serde_json::json!([]));
        assert_eq!(v["preferred"], serde_json::Value::Null);
        assert_eq!(v["phone_number"], "+14155550123");
        assert_eq!(v["phone_number_verified"], true);
    }
    let text = mfa_admin(&["--user-pool-id", &pool, "status", "alice"], &[]).await;
    assert!(
        stdout(&text).contains("phone_number          +14155550123"),
        "{}",
        stdout(&text)
    );
}

#[tokio::test]
async fn set_preference_sms_totp_and_nomfa() {
    let client = client().await;
    let pool = new_pool(&client, "cli-set").await;
    new_user(&client, &pool, "alice", &[("phone_number", "+14155550123")]).await;
    new_user(&client, &pool, "bob", &[("email", "bob@example.com")]).await;

    let o = mfa_admin(
        &["--user-pool-id", &pool, "set-preference", "alice", "SMS"],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (enabled, preferred, ..) = mfa_of(&client, &pool, "alice").await;
    assert_eq!(
        (enabled, preferred.as_str()),
        (vec!["SMS_MFA".to_owned()], "SMS_MFA")
    );

    // NOMFA is refused in an ON pool, and changes nothing.
    let o = mfa_admin(
        &["--user-pool-id", &pool, "set-preference", "alice", "NOMFA"],
        &[("MFA_CONFIGURATION", "ON")],
    )
    .await;
    assert_one_error_line(&o, "MFA_CONFIGURATION=ON");
    assert_eq!(mfa_of(&client, &pool, "alice").await.1, "SMS_MFA");

    let o = mfa_admin(
        &["--user-pool-id", &pool, "set-preference", "alice", "nomfa"],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (enabled, preferred, ..) = mfa_of(&client, &pool, "alice").await;
    assert!(
        enabled.is_empty() && preferred.is_empty(),
        "{enabled:?} {preferred:?}"
    );

    // SMS for a user with no phone: our own check (moto would accept it).
    let o = mfa_admin(
        &["--user-pool-id", &pool, "set-preference", "bob", "SMS"],
        &[],
    )
    .await;
    assert_one_error_line(&o, "no phone_number");
    assert!(mfa_of(&client, &pool, "bob").await.0.is_empty());

    // TOTP never associated: Cognito's (and moto's) InvalidParameterException.
    let o = mfa_admin(
        &["--user-pool-id", &pool, "set-preference", "bob", "TOTP"],
        &[],
    )
    .await;
    assert_one_error_line(&o, "TOTP was never associated");
}

#[tokio::test]
async fn set_preference_totp_after_the_user_associates_an_authenticator() {
    let client = client().await;
    let pool = new_pool(&client, "cli-totp").await;
    let app = client
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("cli-test")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .expect("CreateUserPoolClient");
    let client_id = app
        .user_pool_client()
        .and_then(|c| c.client_id())
        .unwrap()
        .to_owned();
    new_user(
        &client,
        &pool,
        "tina",
        &[
            ("phone_number", "+14155550123"),
            ("custom:mfa_preference", "TOTP"),
        ],
    )
    .await;
    client
        .admin_set_user_password()
        .user_pool_id(&pool)
        .username("tina")
        .password("Correct-Horse-9")
        .permanent(true)
        .send()
        .await
        .expect("AdminSetUserPassword");
    let auth = client
        .admin_initiate_auth()
        .user_pool_id(&pool)
        .client_id(&client_id)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", "tina")
        .auth_parameters("PASSWORD", "Correct-Horse-9")
        .send()
        .await
        .expect("AdminInitiateAuth");
    let token = auth
        .authentication_result()
        .and_then(|r| r.access_token())
        .expect("an access token")
        .to_owned();
    let refresh = auth
        .authentication_result()
        .and_then(|r| r.refresh_token())
        .expect("a refresh token")
        .to_owned();
    let refreshes = |refresh: String| {
        let (client, client_id) = (client.clone(), client_id.clone());
        async move {
            client
                .initiate_auth()
                .client_id(client_id)
                .auth_flow(AuthFlowType::RefreshTokenAuth)
                .auth_parameters("REFRESH_TOKEN", refresh)
                .send()
                .await
                .is_ok()
        }
    };
    assert!(
        refreshes(refresh.clone()).await,
        "the refresh token works before"
    );
    client
        .associate_software_token()
        .access_token(&token)
        .send()
        .await
        .expect("AssociateSoftwareToken");
    client
        .verify_software_token()
        .access_token(&token)
        .user_code("123456")
        .send()
        .await
        .expect("VerifySoftwareToken");

    let o = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "--output",
            "json",
            "set-preference",
            "tina",
            "TOTP",
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (enabled, preferred, ..) = mfa_of(&client, &pool, "tina").await;
    assert_eq!(enabled, vec!["SOFTWARE_TOKEN_MFA".to_owned()]);
    assert_eq!(preferred, "SOFTWARE_TOKEN_MFA");
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["preferred"], "SOFTWARE_TOKEN_MFA");

    // She loses the phone app: the operator signs her out everywhere,
    // switches her to SMS, resets her stated preference and forgets her
    // devices. moto has no device APIs, so the last step fails: the one
    // error line says what was done and what is left.
    let o = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "recover-lost-totp",
            "tina",
            "--phone",
            "+819012345678",
        ],
        &[],
    )
    .await;
    assert_one_error_line(&o, "stopped at \"remembered devices forgotten\"");
    let err = stderr(&o);
    for (i, step) in mfa_admin::RECOVERY_STEPS.iter().enumerate() {
        let done = err
            .split_once("Done:")
            .and_then(|(_, rest)| rest.split("Still to do:").next())
            .unwrap_or_default();
        assert_eq!(done.contains(step), i < 4, "step {step:?} in {err}");
    }
    assert!(
        !refreshes(refresh).await,
        "the refresh token no longer works after recover-lost-totp"
    );
    let (enabled, preferred, phone, verified) = mfa_of(&client, &pool, "tina").await;
    assert_eq!(enabled, vec!["SMS_MFA".to_owned()], "TOTP disabled");
    assert_eq!(preferred, "SMS_MFA");
    assert_eq!(phone.as_deref(), Some("+819012345678"));
    assert_eq!(verified.as_deref(), Some("true"));
    assert_eq!(
        attribute_of(&client, &pool, "tina", "custom:mfa_preference")
            .await
            .as_deref(),
        Some("SMS"),
        "the stated preference follows the factor"
    );
    // Logs name the phone masked only (stdout, the operator's output, may show it).
    assert!(!stderr(&o).contains("+819012345678"), "{}", stderr(&o));
}

#[tokio::test]
async fn recover_lost_totp_refuses_a_bad_phone_and_an_unknown_user() {
    let client = client().await;
    let pool = new_pool(&client, "cli-recover").await;
    new_user(&client, &pool, "ursula", &[]).await;
    let o = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "recover-lost-totp",
            "ursula",
            "--phone",
            "+81 90 1234 5678",
        ],
        &[],
    )
    .await;
    assert_one_error_line(&o, "not E.164");
    assert_eq!(mfa_of(&client, &pool, "ursula").await.2, None);
    let o = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "recover-lost-totp",
            "nobody@example.com",
            "--phone",
            "+14155550123",
        ],
        &[],
    )
    .await;
    assert_one_error_line(&o, "does not exist");
    assert!(!stderr(&o).contains("nobody@example.com"), "{}", stderr(&o));
}

#[tokio::test]
async fn recover_lost_totp_obeys_the_sms_country_policy_from_the_environment() {
    let client = client().await;
    let pool = new_pool(&client, "cli-countries").await;
    new_user(
        &client,
        &pool,
        "carl",
        &[
            ("phone_number", "+14155550123"),
            ("custom:mfa_preference", "TOTP"),
        ],
    )
    .await;
    let recover = [
        "--user-pool-id",
        &pool,
        "recover-lost-totp",
        "carl",
        "--phone",
        "+819012345678",
    ];
    let unchanged = || async {
        assert_eq!(
            mfa_of(&client, &pool, "carl").await.2.as_deref(),
            Some("+14155550123")
        );
        assert_eq!(
            attribute_of(&client, &pool, "carl", "custom:mfa_preference")
                .await
                .as_deref(),
            Some("TOTP")
        );
        assert!(mfa_of(&client, &pool, "carl").await.0.is_empty());
    };
    let o = mfa_admin(&recover, &[("SMS_BLOCKED_COUNTRIES", "CU,JP")]).await;
    assert_one_error_line(
        &o,
        "refused by the SMS country policy: its country, JP, is in SMS_BLOCKED_COUNTRIES",
    );
    assert!(!stderr(&o).contains("+819012345678"), "{}", stderr(&o));
    unchanged().await;
    let o = mfa_admin(&recover, &[("SMS_ALLOWED_COUNTRIES", "US")]).await;
    assert_one_error_line(&o, "its country, JP, is not in SMS_ALLOWED_COUNTRIES");
    unchanged().await;
    // A list the numbering plan does not know stops the command, not others.
    let o = mfa_admin(&recover, &[("SMS_BLOCKED_COUNTRIES", "XX")]).await;
    assert_one_error_line(&o, "SMS_BLOCKED_COUNTRIES");
    unchanged().await;
    let o = mfa_admin(
        &["--user-pool-id", &pool, "status", "carl"],
        &[("SMS_BLOCKED_COUNTRIES", "XX")],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn device_commands_say_that_moto_lacks_the_device_apis() {
    let client = client().await;
    let pool = new_pool(&client, "cli-devices").await;
    new_user(&client, &pool, "dora", &[]).await;
    let o = mfa_admin(&["--user-pool-id", &pool, "devices", "dora"], &[]).await;
    assert_one_error_line(&o, "does not seem to implement AdminListDevices");
    let o = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "forget-device",
            "dora",
            "us-east-1_0c1d2e3f",
        ],
        &[],
    )
    .await;
    assert_one_error_line(&o, "does not seem to implement AdminForgetDevice");
}

#[tokio::test]
async fn apply_policy_for_one_user_and_for_every_user_across_pages() {
    let client = client().await;
    let pool = new_pool(&client, "cli-apply").await;
    // Admin-created users: post-confirmation never fires for them.
    for i in 0..62 {
        new_user(
            &client,
            &pool,
            &format!("user{i:02}"),
            &[("phone_number", "+14155550100")],
        )
        .await;
    }
    new_user(
        &client,
        &pool,
        "zz-totp",
        &[
            ("phone_number", "+14155550101"),
            ("custom:mfa_preference", "TOTP"),
        ],
    )
    .await;
    new_user(&client, &pool, "zz-nophone", &[("email", "np@example.com")]).await;

    let o = mfa_admin(&["--user-pool-id", &pool, "apply-policy", "user00"], &[]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mfa_of(&client, &pool, "user00").await.1, "SMS_MFA");

    let o = mfa_admin(
        &[
            "--user-pool-id",
            &pool,
            "--output",
            "json",
            "apply-policy",
            "--all",
        ],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        v["results"].as_array().unwrap().len(),
        64,
        "every user, across two pages"
    );
    for i in 0..62 {
        let (enabled, preferred, ..) = mfa_of(&client, &pool, &format!("user{i:02}")).await;
        assert_eq!(
            (enabled, preferred.as_str()),
            (vec!["SMS_MFA".to_owned()], "SMS_MFA"),
            "user{i:02}"
        );
    }
    let (enabled, preferred, ..) = mfa_of(&client, &pool, "zz-totp").await;
    assert_eq!(
        (enabled, preferred.as_str()),
        (vec!["SMS_MFA".to_owned()], ""),
        "SMS as the non-preferred fallback"
    );
    assert!(mfa_of(&client, &pool, "zz-nophone").await.0.is_empty());
    // Warnings on stderr name no phone or email in full.
    assert!(
        !stderr(&o).contains("np@example.com") && !stderr(&o).contains("+14155550100"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn usage_and_configuration_errors_are_one_line() {
    let o = mfa_admin(&["status", "alice"], &[]).await;
    assert_one_error_line(&o, "--user-pool-id is required");
    // A command that decides by the policy refuses a bad policy variable...
    let o = mfa_admin(
        &["--user-pool-id", "us-east-1_x", "apply-policy", "a"],
        &[("MFA_METHODS", "VOICE")],
    )
    .await;
    assert_one_error_line(&o, "MFA_METHODS");
    // ...one that does not use it is not stopped by it (it goes on to ask
    // Cognito, which knows no such pool).
    let o = mfa_admin(
        &["--user-pool-id", "us-east-1_x", "status", "a"],
        &[("MFA_METHODS", "VOICE")],
    )
    .await;
    assert_one_error_line(&o, "user pool us-east-1_x does not exist");
    let o = mfa_admin(
        &["--user-pool-id", "us-east-1_doesnotexist", "status", "a"],
        &[],
    )
    .await;
    assert_one_error_line(&o, "user pool us-east-1_doesnotexist does not exist");
    // clap's own usage errors exit 2.
    let o = mfa_admin(
        &["--user-pool-id", "p", "set-preference", "a", "VOICE"],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
}

/// `app-config --stack-name`: a stack in moto's CloudFormation whose outputs
/// name a moto pool and client (and an account-change URL); the printed
/// configuration must name them and say what the pool is.
#[tokio::test]
async fn app_config_prints_the_stacks_pool_for_amplify_v6_and_gen_2() {
    use aws_sdk_cognitoidentityprovider::types::{
        SmsConfigurationType, SmsMfaConfigType, SoftwareTokenMfaConfigType, UserPoolMfaType,
    };
    let client = client().await;
    let pool = new_pool(&client, "app-config").await;
    client
        .set_user_pool_mfa_config()
        .user_pool_id(&pool)
        .mfa_configuration(UserPoolMfaType::Optional)
        .sms_mfa_configuration(
            SmsMfaConfigType::builder()
                .sms_configuration(
                    SmsConfigurationType::builder()
                        .sns_caller_arn("arn:aws:iam::123456789012:role/sms")
                        .build(),
                )
                .build(),
        )
        .software_token_mfa_configuration(
            SoftwareTokenMfaConfigType::builder().enabled(true).build(),
        )
        .send()
        .await
        .expect("SetUserPoolMfaConfig in moto");
    let app = client
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("app")
        .send()
        .await
        .expect("CreateUserPoolClient in moto");
    let client_id = app
        .user_pool_client()
        .and_then(|c| c.client_id())
        .unwrap()
        .to_owned();
    let stack = format!("app-config-{}", std::process::id());
    let template = serde_json::json!({
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "UserPoolId": {"Value": pool},
            "UserPoolClientId": {"Value": client_id},
            "Region": {"Value": "us-east-1"},
            "AccountChangeApiUrl": {"Value": "https://api1.execute-api.us-east-1.amazonaws.com"},
        }
    });
    aws_sdk_cloudformation::Client::new(&harness::moto::sdk_config().await)
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .expect("CreateStack in moto");

    let out = mfa_admin(&["app-config", "--stack-name", &stack], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let c = &both["amplify_v6"]["Auth"]["Cognito"];
    assert_eq!(c["userPoolId"], serde_json::json!(pool));
    assert_eq!(c["userPoolClientId"], serde_json::json!(client_id));
    assert_eq!(c["mfa"]["status"], "optional");
    assert_eq!(c["mfa"]["totpEnabled"], true);
    assert_eq!(
        both["amplify_v6"]["API"]["REST"]["accountChange"]["endpoint"],
        "https://api1.execute-api.us-east-1.amazonaws.com"
    );
    let auth = &both["amplify_outputs"]["auth"];
    assert_eq!(auth["user_pool_id"], serde_json::json!(pool));
    assert_eq!(auth["aws_region"], "us-east-1");
    assert_eq!(auth["mfa_configuration"], "OPTIONAL");
    assert_eq!(auth["mfa_methods"], serde_json::json!(["SMS", "TOTP"]));

    // One shape alone, for a file; and a stack that is not there.
    let out = mfa_admin(
        &[
            "app-config",
            "--stack-name",
            &stack,
            "--format",
            "amplify-outputs",
        ],
        &[],
    )
    .await;
    let outputs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outputs["version"], "1.3");
    assert!(outputs.get("amplify_v6").is_none());
    let out = mfa_admin(&["app-config", "--stack-name", "no-such-stack"], &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-stack") && err.lines().count() == 1,
        "{err}"
    );
}
