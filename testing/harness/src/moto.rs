//! Test support for the integration tests that talk to moto over real HTTP.
//!
//! `scripts/test` (the README's test command) starts `moto_server` on a free
//! loopback port and exports `MOTO_ENDPOINT`; the tests share that server and
//! keep out of each other's way by creating their own pools, keys and users.
//! A test that needs moto and finds no `MOTO_ENDPOINT` fails and says how to
//! run it: it is never skipped.

#![allow(clippy::panic)]

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::Value;

pub const ENDPOINT_VAR: &str = "MOTO_ENDPOINT";
pub const REGION: &str = "us-east-1";

/// The moto server's URL, e.g. `http://127.0.0.1:40123`.
pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: these tests need the moto server that `scripts/test` starts \
             (run `scripts/test`, or start `moto_server -H 127.0.0.1 -p PORT` and export {ENDPOINT_VAR}=http://127.0.0.1:PORT)"
        ),
    }
}

/// The variable naming a second moto server that holds only DynamoDB (the
/// limits tables), started by `scripts/test`. moto keeps every model object
/// it ever made for `/moto-api/data.json`, and each DynamoDB transaction
/// copies its table: on the main server, the limiter tests would make every
/// later read of the SMS record slower (minutes, at the end of a run).
pub const DYNAMODB_ENDPOINT_VAR: &str = "MOTO_DYNAMODB_ENDPOINT";

/// The moto server for DynamoDB: `MOTO_DYNAMODB_ENDPOINT`, else the main one.
pub fn dynamodb_endpoint() -> String {
    match std::env::var(DYNAMODB_ENDPOINT_VAR) {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
        _ => endpoint(),
    }
}

/// A DynamoDB client for [`dynamodb_endpoint`], with the functions' time
/// budget.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(
        &sdk_config_at(&dynamodb_endpoint(), sdk_config::Budget::SYNC_TRIGGER).await,
    )
}

/// The environment a child process (a release binary) needs to use moto:
/// endpoint, region and dummy credentials.
pub fn child_env() -> Vec<(String, String)> {
    child_env_at(&endpoint())
}

/// [`child_env`] with the endpoint at `url` (a proxy or a TLS front in front
/// of moto).
pub fn child_env_at(url: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), url.to_owned()),
        ("AWS_REGION".into(), REGION.into()),
        ("AWS_DEFAULT_REGION".into(), REGION.into()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ]
}

/// An SDK configuration pointed at moto, with the functions' time budget.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(&endpoint(), sdk_config::Budget::SYNC_TRIGGER).await
}

/// An SDK configuration pointed at `url` (moto, or a fault proxy in front of it).
pub async fn sdk_config_at(url: &str, budget: sdk_config::Budget) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(budget.retry_config())
        .timeout_config(budget.timeout_config())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// Creates a user pool (MFA `OPTIONAL`) in moto; returns its id.
pub async fn new_pool(client: &aws_sdk_cognitoidentityprovider::Client, name: &str) -> String {
    client
        .create_user_pool()
        .pool_name(name)
        .mfa_configuration(aws_sdk_cognitoidentityprovider::types::UserPoolMfaType::Optional)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateUserPool in moto: {e:?}"))
        .user_pool()
        .and_then(|p| p.id())
        .unwrap_or_else(|| panic!("moto gave the pool no id"))
        .to_owned()
}

/// Creates a user with `attrs` in a moto pool (AdminCreateUser).
pub async fn new_user(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    username: &str,
    attrs: &[(&str, &str)],
) {
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    let mut req = client
        .admin_create_user()
        .user_pool_id(pool)
        .username(username);
    for (k, v) in attrs {
        let attr = AttributeType::builder()
            .name(*k)
            .value(*v)
            .build()
            .unwrap_or_else(|e| panic!("attribute {k}: {e}"));
        req = req.user_attributes(attr);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("AdminCreateUser {username} in moto: {e:?}"));
}

/// Creates a KMS key in moto; returns its ARN.
pub async fn new_kms_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateKey in moto: {e:?}"))
        .key_metadata()
        .and_then(|m| m.arn())
        .unwrap_or_else(|| panic!("moto gave the key no ARN"))
        .to_owned()
}

/// moto's record of what it did (`GET /moto-api/data.json`). moto builds
/// it by walking its state with no lock, so a request changing that state
/// at the same time (another test) can make it answer an error instead:
/// asked again, up to five times.
pub async fn moto_data() -> Value {
    let mut last = String::new();
    for _ in 0..5 {
        let body = http_get(&endpoint(), "/moto-api/data.json").await;
        match serde_json::from_str(&body) {
            Ok(data) => return data,
            Err(e) => last = format!("{e}: {}", body.chars().take(200).collect::<String>()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto data.json is not JSON after 5 tries: {last}")
}

/// Every SMS moto's SNS has "sent": `(phone, message)` pairs, oldest first.
pub async fn sent_sms() -> Vec<(String, String)> {
    let data = moto_data().await;
    let mut out = Vec::new();
    // moto 5.2's data.json: {"sns": {"SMS": [{"phone_number", "message",
    // "message_id"}, ...]}}; older versions nest [phone, message] pairs per
    // account and region. Walk whatever nesting there is.
    if let Some(sms) = data.get("sns").and_then(|s| s.get("SMS")) {
        collect_pairs(sms, &mut out);
    }
    out
}

/// One email moto's SES recorded as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MotoEmail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// The HTML part when the email had one (moto 5.2 keeps only that),
    /// else the text part.
    pub body: String,
}

/// Every email moto's SES (v1 or v2 `SendEmail`) has "sent", oldest first:
/// moto 5.2's data.json holds them as `{"ses": {"Message": [{"source",
/// "destinations": {"ToAddresses": [...]}, "subject", "body"}, ...]}}`.
pub async fn sent_email() -> Vec<MotoEmail> {
    let data = moto_data().await;
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    data.pointer("/ses/Message")
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .map(|m| MotoEmail {
                    from: text(m, "source"),
                    to: m
                        .pointer("/destinations/ToAddresses")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    subject: text(m, "subject"),
                    body: text(m, "body"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn collect_pairs(v: &Value, out: &mut Vec<(String, String)>) {
    if let (Some(phone), Some(message)) = (
        v.get("phone_number").and_then(Value::as_str),
        v.get("message").and_then(Value::as_str),
    ) {
        out.push((phone.to_owned(), message.to_owned()));
        return;
    }
    match v {
        Value::Array(items) if items.len() >= 2 && items.iter().all(Value::is_string) => {
            let s = |i: usize| items[i].as_str().unwrap_or_default().to_owned();
            out.push((s(0), s(1)));
        }
        Value::Array(items) => items.iter().for_each(|i| collect_pairs(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_pairs(i, out)),
        _ => {}
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection (moto answers with
/// `Connection: close` semantics for these admin endpoints).
pub async fn http_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{base}: only http:// endpoints are supported"));
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(host))
            .await
            .unwrap_or_else(|_| panic!("connecting to moto at {host} timed out"))
            .unwrap_or_else(|e| panic!("cannot connect to moto at {host}: {e}"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("writing to moto: {e}"));
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("reading from moto timed out"))
        .unwrap_or_else(|e| panic!("reading from moto: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    body.to_owned()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_pairs_are_found_at_any_depth() {
        let v = serde_json::json!({"123456789012": {"us-east-1": {"m1": ["+14155550123", "hi"], "m2": ["+819012345678", "やあ"]}}});
        let mut out = Vec::new();
        collect_pairs(&v, &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![
                ("+14155550123".to_owned(), "hi".to_owned()),
                ("+819012345678".to_owned(), "やあ".to_owned())
            ]
        );
    }

    #[test]
    fn moto_5_2_records_are_objects() {
        let v = serde_json::json!([{"message": "code 1", "message_id": "m", "phone_number": "+14155550123"}]);
        let mut out = Vec::new();
        collect_pairs(&v, &mut out);
        assert_eq!(out, vec![("+14155550123".to_owned(), "code 1".to_owned())]);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"), "Wikipedia");
    }
}

/// Log output captured in memory, for the tests that scan what a handler
/// logged: give `move || capture.clone()` to a tracing subscriber as its
/// writer, then read [`LogCapture::text`].
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An app client of `pool` that allows the admin password flow and refresh
/// tokens (what the tests sign in with); returns its id.
pub async fn new_admin_client(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
) -> String {
    use aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType as Flow;
    client
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name("tests")
        .explicit_auth_flows(Flow::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(Flow::AllowRefreshTokenAuth)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateUserPoolClient in moto: {e:?}"))
        .user_pool_client()
        .and_then(|c| c.client_id())
        .unwrap_or_else(|| panic!("moto gave the client no id"))
        .to_owned()
}

/// Tokens of one sign-in.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// Gives `user` the permanent `password` and signs them in with
/// `ADMIN_USER_PASSWORD_AUTH` (the user must have no MFA factor yet).
pub async fn sign_in(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    app_client: &str,
    user: &str,
    password: &str,
) -> Tokens {
    use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
    client
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(user)
        .password(password)
        .permanent(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AdminSetUserPassword in moto: {e:?}"));
    let out = client
        .admin_initiate_auth()
        .user_pool_id(pool)
        .client_id(app_client)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", user)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AdminInitiateAuth in moto: {e:?}"));
    let result = out
        .authentication_result()
        .unwrap_or_else(|| panic!("moto asked for a challenge: {:?}", out.challenge_name()));
    Tokens {
        access: result.access_token().unwrap_or_default().to_owned(),
        refresh: result.refresh_token().unwrap_or_default().to_owned(),
    }
}

/// Associates and verifies an authenticator for the signed-in user (moto
/// accepts any code), then enables TOTP MFA, preferred.
pub async fn enable_totp(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    user: &str,
    access_token: &str,
) {
    use aws_sdk_cognitoidentityprovider::types::SoftwareTokenMfaSettingsType;
    client
        .associate_software_token()
        .access_token(access_token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AssociateSoftwareToken in moto: {e:?}"));
    client
        .verify_software_token()
        .access_token(access_token)
        .user_code("123456")
        .send()
        .await
        .unwrap_or_else(|e| panic!("VerifySoftwareToken in moto: {e:?}"));
    client
        .admin_set_user_mfa_preference()
        .user_pool_id(pool)
        .username(user)
        .software_token_mfa_settings(
            SoftwareTokenMfaSettingsType::builder()
                .enabled(true)
                .preferred_mfa(true)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("AdminSetUserMFAPreference (TOTP) in moto: {e:?}"));
}

/// A user's MFA settings as AdminGetUser shows them: the enabled factors
/// (sorted) and the preferred one ("" when none).
pub async fn mfa_of(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    user: &str,
) -> (Vec<String>, String) {
    let out = client
        .admin_get_user()
        .user_pool_id(pool)
        .username(user)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AdminGetUser {user} in moto: {e:?}"));
    let mut enabled = out.user_mfa_setting_list().to_vec();
    enabled.sort();
    (
        enabled,
        out.preferred_mfa_setting().unwrap_or_default().to_owned(),
    )
}

/// Creates the SMS limits table as the template does (on-demand, string key
/// `pk`, TTL on `expires_at`); returns its name.
pub async fn new_limits_table(ddb: &aws_sdk_dynamodb::Client, name: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let table = format!("{name}-{}-{n}", std::process::id());
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable in moto: {e:?}"));
    ddb.update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTimeToLive in moto: {e:?}"));
    table
}
