//! The account-change API and the senders' hold on new addresses, end to
//! end: the `account-change`, `custom-email-sender` and `custom-sms-sender`
//! binaries under our Runtime API (`LAMBDA_BIN_DIR` picks the build), with
//! moto as Cognito, DynamoDB, KMS, SES and SNS (`MOTO_ENDPOINT`,
//! `MOTO_DYNAMODB_ENDPOINT`; `scripts/test` starts both). What counts is what
//! moto holds afterwards: the user's attributes, the emails and SMS sent.
//!
//! moto neither keeps an old address in force until the new one is verified
//! (`AttributesRequireVerificationBeforeUpdate`) nor calls custom senders, so
//! where Cognito would hand a code to a sender, the test plays Cognito: it
//! sends the sender the event Cognito sends, with a code encrypted as
//! Cognito encrypts it, and leaves the user in moto as Cognito would (the
//! old, verified address still in force).

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::Client;
use harness::runtime_api::{Answer, RuntimeApi};
use serde_json::{Value, json};

const CLIENT_ID: &str = "account-change-app";
const LIMIT_KEY: &str = "account-change-test-limit-key-0123456789";

fn unique(what: &str) -> String {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .expect("/dev/urandom");
    format!("{what}{}", u32::from_le_bytes(b) % 10_000_000)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One pool, one user with a verified email and phone, a limits table, a
/// KMS key, a verified SES sender; the binaries' environments.
struct World {
    cognito: Client,
    pool: String,
    user: String,
    email: String,
    phone: String,
    keyring: code_decrypt::KeyringRef,
    api_env: Vec<(String, String)>,
    sender_env: Vec<(String, String)>,
}

impl World {
    async fn new(changes_per_user: &str) -> Self {
        let sdk = harness::moto::sdk_config_at(
            &harness::moto::endpoint(),
            sdk_config::Budget::INTERACTIVE,
        )
        .await;
        let cognito = Client::new(&sdk);
        let pool = harness::moto::new_pool(&cognito, "account-change").await;
        let user = unique("alice");
        let email = format!("{user}@old.example.org");
        let phone = format!("+1415{:07}", unique("").parse::<u32>().unwrap_or(0));
        harness::moto::new_user(
            &cognito,
            &pool,
            &user,
            &[
                ("email", &email),
                ("email_verified", "true"),
                ("phone_number", &phone),
                ("phone_number_verified", "true"),
                ("locale", "en"),
            ],
        )
        .await;
        let from = format!("{}@mail.example.org", unique("no-reply"));
        aws_sdk_sesv2::Client::new(&sdk)
            .create_email_identity()
            .email_identity(&from)
            .send()
            .await
            .expect("CreateEmailIdentity in moto");
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key_arn = harness::moto::new_kms_key(&kms).await;
        let keyring = code_decrypt::kms_keyring(kms, &key_arn).await.unwrap();
        let table = harness::moto::new_limits_table(
            &harness::moto::dynamodb_client().await,
            "account-change",
        )
        .await;
        let mut common = harness::moto::child_env();
        for (k, v) in [
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                harness::moto::dynamodb_endpoint(),
            ),
            ("LIMIT_TABLE", table),
            ("LIMIT_KEY_SECRET", LIMIT_KEY.to_owned()),
            ("EMAIL_FROM", from),
            ("MFA_METHODS", "SMS,TOTP,EMAIL".to_owned()),
        ] {
            common.push((k.to_owned(), v));
        }
        let mut api_env = common.clone();
        for (k, v) in [
            ("USER_POOL_ID", pool.as_str()),
            ("APP_CLIENT_IDS", CLIENT_ID),
            ("ACCOUNT_CHANGES_PER_USER", changes_per_user),
        ] {
            api_env.push((k.to_owned(), v.to_owned()));
        }
        let mut sender_env = common;
        sender_env.push(("KEY_ARN".to_owned(), key_arn));
        sender_env.push(("ACCOUNT_CHANGE".to_owned(), "RecentSignIn".to_owned()));
        Self {
            cognito,
            pool,
            user,
            email,
            phone,
            keyring,
            api_env,
            sender_env,
        }
    }

    /// An API Gateway HTTP API (payload 2.0) request as the JWT authorizer
    /// passes it: the token's claims as strings.
    fn request(&self, path: &str, body: &Value, token_use: &str, signed_in_ago: u64) -> Value {
        let t = now();
        json!({
            "version": "2.0",
            "routeKey": format!("POST {path}"),
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "authorization": "Bearer eyJ.redacted.sig"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api1", "domainName": "api1.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "api1", "requestId": "req-1", "routeKey": format!("POST {path}"),
                "stage": "$default", "time": "07/Dec/2026:04:00:00 +0000", "timeEpoch": t * 1000,
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
                "authorizer": {"jwt": {"claims": {
                    "sub": "0b7f5a2e-0000-4000-8000-000000000001",
                    "iss": format!("https://cognito-idp.us-east-1.amazonaws.com/{}", self.pool),
                    "client_id": CLIENT_ID,
                    "token_use": token_use,
                    "scope": "aws.cognito.signin.user.admin",
                    "auth_time": (t - signed_in_ago).to_string(),
                    "iat": t.to_string(),
                    "exp": (t + 3000).to_string(),
                    "username": self.user,
                }, "scopes": null}}
            },
            "body": body.to_string(),
            "isBase64Encoded": false
        })
    }

    /// The event Cognito sends a custom sender, with `plain` encrypted as
    /// Cognito encrypts it.
    async fn sender_event(&self, source: &str, attributes: Value, plain: &str) -> Value {
        let code = code_decrypt::encode_code(
            &code_decrypt::encrypt_like_cognito(&self.keyring, plain, &self.pool, false)
                .await
                .unwrap(),
        );
        let kind = if source.starts_with("CustomEmailSender") {
            "customEmailSenderRequestV1"
        } else {
            "customSMSSenderRequestV1"
        };
        json!({
            "version": "1", "triggerSource": source, "region": "us-east-1",
            "userPoolId": self.pool, "userName": self.user,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": CLIENT_ID},
            "request": {"type": kind, "code": code, "userAttributes": attributes}
        })
    }

    async fn attribute(&self, name: &str) -> Option<String> {
        let out = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.pool)
            .username(&self.user)
            .send()
            .await
            .expect("AdminGetUser");
        out.user_attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
            .map(ToOwned::to_owned)
    }
}

/// Runs `binary` under a Runtime API and hands it each event in turn.
async fn run(binary: &str, env: &[(String, String)], events: &[Value]) -> Vec<Value> {
    run_logged(binary, env, events).await.0
}

/// [`run`], with the function's logs (stdout and stderr).
async fn run_logged(
    binary: &str,
    env: &[(String, String)],
    events: &[Value],
) -> (Vec<Value>, String) {
    let api = RuntimeApi::start().await.unwrap();
    let mut f = api
        .spawn(&workspace_tests::function_binary(binary), env)
        .await
        .unwrap();
    f.ready(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{binary} did not start: {e}"));
    let mut out = Vec::new();
    for e in events {
        match f.invoke(e).await.unwrap().0 {
            Answer::Response(v) => out.push(v),
            Answer::Error(v) => panic!("{binary} failed: {v}"),
        }
    }
    let logs = f.finish().await;
    (out, format!("{}{}", logs.stdout, logs.stderr))
}

fn status(answer: &Value) -> (i64, Value) {
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap();
    (answer["statusCode"].as_i64().unwrap_or_default(), body)
}

async fn emails_to(address: &str) -> Vec<harness::moto::MotoEmail> {
    harness::moto::sent_email()
        .await
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .collect()
}

async fn sms_to(phone: &str) -> Vec<String> {
    harness::moto::sent_sms()
        .await
        .into_iter()
        .filter(|(to, _)| to == phone)
        .map(|(_, text)| text)
        .collect()
}

fn outcome(answer: &Value) -> (&str, &str) {
    (
        answer["response"]["outcome"].as_str().unwrap_or_default(),
        answer["response"]["errorType"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn an_old_sign_in_is_refused_and_changes_nothing() {
    let w = World::new("5/1d").await;
    let stale = w.request(
        "/account/email",
        &json!({"email": "new@new.example.org"}),
        "access",
        3_600,
    );
    let id_token = w.request(
        "/account/phone-number",
        &json!({"phone_number": "+14155550199"}),
        "id",
        10,
    );
    let answers = run("account-change", &w.api_env, &[stale, id_token]).await;
    for a in &answers {
        let (code, body) = status(a);
        assert_eq!(code, 403, "{a}");
        assert_eq!(body["error"], "RecentSignInRequired");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("sign")),
            "{body}"
        );
    }
    assert_eq!(
        w.attribute("email").await.as_deref(),
        Some(w.email.as_str())
    );
    assert_eq!(
        w.attribute("phone_number").await.as_deref(),
        Some(w.phone.as_str())
    );
    assert!(
        emails_to(&w.email).await.is_empty(),
        "no notice for a refused call"
    );
}

#[tokio::test]
async fn a_recent_sign_in_changes_the_email_leaves_an_allowance_and_tells_the_old_address() {
    let w = World::new("5/1d").await;
    let new = format!("{}@new.example.org", unique("alice"));
    let (answers, logs) = run_logged(
        "account-change",
        &w.api_env,
        &[w.request("/account/email", &json!({"email": new}), "access", 30)],
    )
    .await;
    assert!(
        !logs.contains(&new) && !logs.contains(&w.email),
        "an address in full in the logs: {logs}"
    );
    let (code, body) = status(&answers[0]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "verification_sent");
    assert_ne!(
        body["destination"],
        json!(new),
        "the answer masks the address"
    );
    // Written unverified (moto applies it at once; Cognito would keep the
    // old one in force until the code is entered).
    assert_eq!(w.attribute("email").await.as_deref(), Some(new.as_str()));
    let notices = emails_to(&w.email).await;
    assert_eq!(notices.len(), 1, "one notice to the old address");
    assert!(!notices[0].body.contains(&new), "the new address is masked");
    assert!(
        notices[0].subject.contains("email address"),
        "{}",
        notices[0].subject
    );
    // The allowance: Cognito's code for the new address goes out.
    let update = w
        .sender_event(
            "CustomEmailSender_UpdateUserAttribute",
            json!({"email": new, "email_verified": "false", "locale": "en"}),
            "482913",
        )
        .await;
    let sent = run("custom-email-sender", &w.sender_env, &[update]).await;
    assert_eq!(outcome(&sent[0]), ("sent", ""), "{}", sent[0]);
    let to_new = emails_to(&new).await;
    assert!(
        to_new.iter().any(|m| m.body.contains("482913")),
        "{to_new:?}"
    );
}

#[tokio::test]
async fn bad_values_routes_and_bodies_are_answered_with_what_is_wrong() {
    let w = World::new("5/1d").await;
    let cases = [
        w.request(
            "/account/phone-number",
            &json!({"phone_number": "+1 415 555 0100"}),
            "access",
            5,
        ),
        w.request(
            "/account/email",
            &json!({"email": "not-an-address"}),
            "access",
            5,
        ),
        w.request(
            "/account/email",
            &json!({"mail": "x@example.org"}),
            "access",
            5,
        ),
        w.request(
            "/account/mfa-preference",
            &json!({"preference": "SMSS"}),
            "access",
            5,
        ),
        w.request("/account/password", &json!({}), "access", 5),
    ];
    let answers = run("account-change", &w.api_env, &cases).await;
    let got: Vec<(i64, Value)> = answers.iter().map(status).collect();
    assert_eq!(got[0].0, 400);
    assert_eq!(got[0].1["reason"], "phone_not_e164");
    assert_eq!(got[1].0, 400);
    assert_eq!(got[1].1["reason"], "email_invalid");
    assert_eq!(got[2].0, 400);
    assert!(got[2].1["message"].as_str().unwrap().contains("\"email\""));
    assert_eq!(got[3].1["reason"], "unknown_mfa_preference");
    assert_eq!(got[4].0, 404);
    assert_eq!(
        w.attribute("email").await.as_deref(),
        Some(w.email.as_str())
    );
}

#[tokio::test]
async fn the_change_limit_holds() {
    let w = World::new("2/1d").await;
    let pref = |p: &str| {
        w.request(
            "/account/mfa-preference",
            &json!({"preference": p}),
            "access",
            5,
        )
    };
    let answers = run(
        "account-change",
        &w.api_env,
        &[pref("EMAIL"), pref("SMS"), pref("EMAIL")],
    )
    .await;
    let codes: Vec<i64> = answers.iter().map(|a| status(a).0).collect();
    assert_eq!(codes, vec![200, 200, 429], "{answers:?}");
    assert_eq!(status(&answers[2]).1["error"], "TooManyChanges");
    // The refused third change changed nothing: SMS, set second, stays.
    assert_eq!(
        w.attribute("custom:mfa_preference").await.as_deref(),
        Some("SMS")
    );
    let (enabled, preferred) = harness::moto::mfa_of(&w.cognito, &w.pool, &w.user).await;
    assert_eq!(preferred, "SMS_MFA", "{enabled:?}");
}

#[tokio::test]
async fn senders_hold_an_unallowed_update_code_and_tell_the_old_address() {
    let w = World::new("5/1d").await;
    let evil_email = format!("{}@attacker.example.net", unique("mallory"));
    let evil_phone = format!("+1650{:07}", unique("").parse::<u32>().unwrap_or(0));
    let email_events = [
        w.sender_event(
            "CustomEmailSender_UpdateUserAttribute",
            json!({"email": evil_email, "email_verified": "false"}),
            "111111",
        )
        .await,
        // The code asked again for the held address.
        w.sender_event(
            "CustomEmailSender_VerifyUserAttribute",
            json!({"email": evil_email, "email_verified": "false"}),
            "222222",
        )
        .await,
        // Sign-up and sign-in codes go out as before.
        w.sender_event(
            "CustomEmailSender_SignUp",
            json!({"email": w.email, "email_verified": "false"}),
            "333333",
        )
        .await,
        w.sender_event(
            "CustomEmailSender_Authentication",
            json!({"email": w.email, "email_verified": "true"}),
            "444444",
        )
        .await,
    ];
    let (answers, logs) = run_logged("custom-email-sender", &w.sender_env, &email_events).await;
    for secret in [
        "111111",
        "222222",
        "333333",
        "444444",
        evil_email.as_str(),
        w.email.as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs: {logs}");
    }
    assert_eq!(outcome(&answers[0]), ("refused", "ContactChangeRefused"));
    assert_eq!(outcome(&answers[1]), ("refused", "ContactChangeRefused"));
    assert_eq!(outcome(&answers[2]), ("sent", ""));
    assert_eq!(outcome(&answers[3]), ("sent", ""));
    assert!(
        emails_to(&evil_email).await.is_empty(),
        "nothing reached the new address"
    );
    let old = emails_to(&w.email).await;
    let notices: Vec<_> = old
        .iter()
        .filter(|m| m.subject.contains("refused"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice, not one per attempt: {old:?}");
    assert!(!notices[0].body.contains(&evil_email));
    assert!(old.iter().any(|m| m.body.contains("333333")));
    assert!(old.iter().any(|m| m.body.contains("444444")));

    let sms_events = [
        w.sender_event(
            "CustomSMSSender_UpdateUserAttribute",
            json!({"phone_number": evil_phone, "phone_number_verified": "false"}),
            "555555",
        )
        .await,
        w.sender_event(
            "CustomSMSSender_Authentication",
            json!({"phone_number": w.phone, "phone_number_verified": "true"}),
            "666666",
        )
        .await,
    ];
    let answers = run("custom-sms-sender", &w.sender_env, &sms_events).await;
    assert_eq!(outcome(&answers[0]), ("refused", "ContactChangeRefused"));
    assert_eq!(outcome(&answers[1]), ("sent", ""));
    assert!(sms_to(&evil_phone).await.is_empty());
    let to_old = sms_to(&w.phone).await;
    assert!(to_old.iter().any(|t| t.contains("refused")), "{to_old:?}");
    assert!(to_old.iter().any(|t| t.contains("666666")), "{to_old:?}");
}

/// The red team's chain: a stolen access token (signed in an hour ago)
/// moves the email, then recovers the password there, then moves the
/// factor. It ends at step 1: the API refuses, Cognito's own
/// UpdateUserAttributes reaches the sender, whose code never leaves, so the
/// new address never verifies and recovery still goes to the owner.
#[tokio::test]
async fn stolen_token_attack_chain_ends_at_step_one() {
    let w = World::new("5/1d").await;
    let evil = format!("{}@attacker.example.net", unique("mallory"));
    // Step 1a: through the API, with the stolen token.
    let api = run(
        "account-change",
        &w.api_env,
        &[
            w.request("/account/email", &json!({"email": evil}), "access", 3_600),
            w.request(
                "/account/phone-number",
                &json!({"phone_number": "+16505550100"}),
                "access",
                3_600,
            ),
        ],
    )
    .await;
    assert!(api.iter().all(|a| status(a).0 == 403), "{api:?}");
    // Step 1b: Cognito's own UpdateUserAttributes with the same token:
    // Cognito keeps the old address in force and hands the new one's code
    // to the sender.
    let update = w
        .sender_event(
            "CustomEmailSender_UpdateUserAttribute",
            json!({"email": evil, "email_verified": "false"}),
            "777777",
        )
        .await;
    let resend = w
        .sender_event(
            "CustomEmailSender_VerifyUserAttribute",
            json!({"email": evil, "email_verified": "false"}),
            "888888",
        )
        .await;
    let answers = run("custom-email-sender", &w.sender_env, &[update, resend]).await;
    assert!(
        answers
            .iter()
            .all(|a| outcome(a) == ("refused", "ContactChangeRefused")),
        "{answers:?}"
    );
    // The attacker has no code: the new address cannot be verified.
    let to_attacker = emails_to(&evil).await;
    assert!(
        !to_attacker
            .iter()
            .any(|m| m.body.contains("777777") || m.body.contains("888888")),
        "{to_attacker:?}"
    );
    // Step 2 would send the recovery code to the verified email in force:
    // still the owner's, who has been told.
    assert_eq!(
        w.attribute("email").await.as_deref(),
        Some(w.email.as_str())
    );
    assert_eq!(w.attribute("email_verified").await.as_deref(), Some("true"));
    assert!(
        emails_to(&w.email)
            .await
            .iter()
            .any(|m| m.subject.contains("refused"))
    );
    // Step 3 (moving the factor) needs the same: the phone stays.
    assert_eq!(
        w.attribute("phone_number").await.as_deref(),
        Some(w.phone.as_str())
    );
}
