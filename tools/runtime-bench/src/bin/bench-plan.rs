//! `bench-plan --bin-dir target/release --out PLAN.json`: writes the plan
//! `runtime-bench` measures — the floor and every function, each with a
//! representative event that goes down its main path.
//!
//! The AWS-calling functions are set up to do their real round trip against
//! moto (`MOTO_ENDPOINT`): post-confirmation gets a user in a moto pool,
//! custom-sms-sender a code encrypted for a moto KMS key (the sample's
//! development-key ciphertext re-encrypted the way Cognito encrypts),
//! create-auth-challenge sends its SMS through moto's SNS, custom-email-sender
//! sends through moto's SES v2 from an identity verified there first.
//!
//! The custom senders with their limits table (as the template deploys them)
//! de-duplicate by event and count sends: their entries `vary` the user name
//! per invocation, so that every invocation is a new send, and raise the
//! template's limits so that none is refused (the same DynamoDB transaction:
//! the event's record and one conditional count per limit). They are
//! `cold_only`: moto deep-copies the table for every item of a transaction
//! and keeps every copy, so a thousand warm sends would measure moto (and
//! grow it by gigabytes); each sender also has a row without its table, for
//! its warm path.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use code_decrypt::CodeDecryptor;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Where the function binaries are (the release build).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The sample events.
    #[arg(long, default_value = "events")]
    events: PathBuf,
    /// The deployed functions (one folder each): every one must be in the plan.
    #[arg(long, default_value = "functions")]
    functions: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

fn load(events: &Path, rel: &str) -> Result<Value> {
    let path = events.join(rel);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn entry(args: &Args, name: &str, kind: &str, event: Value, env: Vec<(String, String)>) -> Value {
    entry_of(args, name, name, kind, event, env)
}

/// A row named `name` that runs `binary` (a function measured in a second
/// configuration gets a row of its own).
fn entry_of(
    args: &Args,
    name: &str,
    binary: &str,
    kind: &str,
    event: Value,
    mut env: Vec<(String, String)>,
) -> Value {
    // The start-up numbers are the function's own init: the connections
    // opened during init wait on the network, and first-invocation measures
    // them (it turns this back on).
    env.push(("CONNECT_DURING_INIT".to_owned(), "false".to_owned()));
    json!({
        "name": name,
        "binary": args.bin_dir.join(if binary == "floor" { "echo-floor" } else { binary }),
        "kind": kind,
        "event": event,
        "env": env,
    })
}

/// A sender's sample event with its development-key code re-encrypted for
/// `keyring` (a moto KMS key) the way Cognito encrypts it.
async fn with_cognito_code(
    events: &Path,
    rel: &str,
    keyring: &code_decrypt::KeyringRef,
) -> Result<Value> {
    let mut event = load(events, rel)?;
    let pool = event["userPoolId"].as_str().unwrap_or_default().to_owned();
    let dev = dev_keyring::dev_decryptor().await?;
    let plain = dev
        .decrypt(event["request"]["code"].as_str().unwrap_or_default(), &pool)
        .await
        .with_context(|| format!("{rel}: the sample's code decrypts with the development key"))?;
    let code = code_decrypt::encrypt_like_cognito(keyring, plain.expose(), &pool, false).await?;
    event["request"]["code"] = json!(code_decrypt::encode_code(&code));
    Ok(event)
}

/// The senders' limits table, its key and limits: the template's variables,
/// with counts no benchmark reaches (the windows are the template's).
fn sender_limits(table: &str) -> Vec<(String, String)> {
    [
        ("LIMIT_TABLE", table),
        (
            "LIMIT_KEY_SECRET",
            "bench-only-limit-key-bench-only-limit-key",
        ),
        ("SMS_LIMIT_PER_PHONE", "1000000/15m"),
        ("SMS_LIMIT_PER_USER", "1000000/1h"),
        ("SMS_LIMIT_PER_POOL", "1000000/1m"),
        ("EMAIL_LIMIT_PER_ADDRESS", "1000000/15m"),
        ("EMAIL_LIMIT_PER_USER", "1000000/1h"),
        ("EMAIL_LIMIT_PER_POOL", "1000000/1m"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A moto user with a phone and SMS MFA enabled.
async fn new_user_with_sms(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    user: &str,
    phone: &str,
) -> Result<()> {
    harness::moto::new_user(cognito, pool_id, user, &[("phone_number", phone)]).await;
    cognito
        .admin_set_user_mfa_preference()
        .user_pool_id(pool_id)
        .username(user)
        .sms_mfa_settings(
            aws_sdk_cognitoidentityprovider::types::SmsMfaSettingsType::builder()
                .enabled(true)
                .build(),
        )
        .send()
        .await
        .context("AdminSetUserMFAPreference in moto")?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let moto = harness::moto::child_env();
    let sdk = harness::moto::sdk_config().await;
    let mut plan = Vec::new();

    let sign_up = load(&args.events, "pre-sign-up/signup-sms-with-phone.json")?;
    plan.push(entry(&args, "floor", "floor", sign_up.clone(), vec![]));
    plan.push(entry(&args, "pre-sign-up", "pure", sign_up, vec![]));
    plan.push(entry(
        &args,
        "define-auth-challenge",
        "pure",
        load(
            &args.events,
            "define-auth-challenge/password-then-code.json",
        )?,
        vec![],
    ));
    let secret = vec![(
        "CHALLENGE_SECRET".to_owned(),
        replay::dispatch::REPLAY_CHALLENGE_SECRET.to_owned(),
    )];
    let correct_code = load(&args.events, "verify-auth-challenge/correct-code.json")?;
    plan.push(entry(
        &args,
        "verify-auth-challenge",
        "pure",
        correct_code.clone(),
        secret.clone(),
    ));
    // As the template deploys it: the wrong-code lockout on, so the limits
    // table's client is built at init (the secret stays in the environment, as
    // for create-auth-challenge, so that init holds no round trip to moto).
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = harness::moto::new_limits_table(&ddb, "bench-lockout").await;
    plan.push(entry_of(
        &args,
        "verify-auth-challenge, lockout on",
        "verify-auth-challenge",
        "aws",
        correct_code,
        [
            moto.clone(),
            secret.clone(),
            vec![
                ("SMS_LIMIT_TABLE".to_owned(), table),
                ("CODE_FAILURES_PER_USER".to_owned(), "10/1h".to_owned()),
            ],
        ]
        .concat(),
    ));
    // A wrong answer with the lockout on: the reservation is its one request.
    let mut wrong = load(&args.events, "verify-auth-challenge/correct-code.json")?;
    wrong["request"]["challengeAnswer"] = json!("000000");
    plan.push(entry_of(
        &args,
        "verify-auth-challenge, wrong answer, lockout on",
        "verify-auth-challenge",
        "aws",
        wrong,
        [
            moto.clone(),
            secret.clone(),
            vec![
                (
                    "SMS_LIMIT_TABLE".to_owned(),
                    harness::moto::new_limits_table(&ddb, "bench-lockout-wrong").await,
                ),
                // Never reached by a run: every wrong answer is counted.
                (
                    "CODE_FAILURES_PER_USER".to_owned(),
                    "100000000/1h".to_owned(),
                ),
            ],
        ]
        .concat(),
    ));
    let first_code = load(&args.events, "create-auth-challenge/first-code-en.json")?;
    plan.push(entry(
        &args,
        "create-auth-challenge",
        "aws",
        first_code.clone(),
        [moto.clone(), secret.clone()].concat(),
    ));
    // As the template deploys it: the limits table on (a new user's first
    // code each time: the record, the counters and the lockout check in one
    // transaction, then SNS).
    let mut create_limited = entry_of(
        &args,
        "create-auth-challenge, limits on",
        "create-auth-challenge",
        "aws",
        first_code,
        [
            moto.clone(),
            secret,
            sender_limits(&harness::moto::new_limits_table(&ddb, "bench-create-limits").await),
            vec![(
                "CODE_FAILURES_PER_USER".to_owned(),
                "100000000/1h".to_owned(),
            )],
        ]
        .concat(),
    );
    create_limited["vary"] = json!("/userName");
    create_limited["cold_only"] = json!(true);
    plan.push(create_limited);

    // post-confirmation: a user with a phone in a moto pool, SMS preferred.
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool_id = harness::moto::new_pool(&cognito, "bench").await;
    let mut confirm = load(&args.events, "post-confirmation/confirm-sign-up-sms.json")?;
    let user = confirm["userName"]
        .as_str()
        .unwrap_or("bench-user")
        .to_owned();
    let phone = confirm["request"]["userAttributes"]["phone_number"]
        .as_str()
        .unwrap_or("+14155550123")
        .to_owned();
    harness::moto::new_user(&cognito, &pool_id, &user, &[("phone_number", &phone)]).await;
    confirm["userPoolId"] = json!(pool_id);
    plan.push(entry(
        &args,
        "post-confirmation",
        "aws",
        confirm,
        moto.clone(),
    ));

    // pre-authentication: a user in the same moto pool who already has SMS
    // MFA enabled, so every warm invocation takes the common path of a
    // sign-in: one AdminGetUser.
    let mut guard = load(
        &args.events,
        "pre-authentication/user-with-sms-untouched.json",
    )?;
    let guard_user = guard["userName"]
        .as_str()
        .unwrap_or("bench-guard-user")
        .to_owned();
    new_user_with_sms(&cognito, &pool_id, &guard_user, &phone).await?;
    guard["userPoolId"] = json!(pool_id);
    plan.push(entry(
        &args,
        "pre-authentication",
        "aws",
        guard,
        moto.clone(),
    ));

    // account-change: an MFA preference change by a user who signed in just
    // now (RECENT_SIGN_IN_SECONDS at its most, a day, so the plan stays valid
    // through a run): AdminGetUser, the change's transaction,
    // AdminSetUserMFAPreference, AdminUpdateUserAttributes.
    let mut change = load(&args.events, "account-change/mfa-preference-sms.json")?;
    let change_user = "bench-account-user";
    harness::moto::new_user(
        &cognito,
        &pool_id,
        change_user,
        &[
            ("phone_number", &phone),
            ("email", "bench@example.com"),
            ("email_verified", "true"),
        ],
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(claims) = change.pointer_mut("/requestContext/authorizer/jwt/claims") {
        claims["username"] = json!(change_user);
        claims["auth_time"] = json!(now.to_string());
    }
    plan.push(entry(
        &args,
        "account-change",
        "aws",
        change,
        [
            moto.clone(),
            vec![
                ("USER_POOL_ID".to_owned(), pool_id.clone()),
                ("RECENT_SIGN_IN_SECONDS".to_owned(), "86400".to_owned()),
                (
                    "ACCOUNT_CHANGES_PER_USER".to_owned(),
                    "1000000/1d".to_owned(),
                ),
                (
                    "LIMIT_TABLE".to_owned(),
                    harness::moto::new_limits_table(&ddb, "bench-account-change").await,
                ),
                (
                    "LIMIT_KEY_SECRET".to_owned(),
                    "bench-only-limit-key-bench-only-limit-key".to_owned(),
                ),
            ],
        ]
        .concat(),
    ));

    // custom-sms-sender: the sample's code, re-encrypted for a moto key.
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms, &key_arn).await?;
    let sms = with_cognito_code(
        &args.events,
        "custom-sms-sender/authentication-en.json",
        &keyring,
    )
    .await?;
    let key = vec![("KEY_ARN".to_owned(), key_arn)];
    plan.push(entry(
        &args,
        "custom-sms-sender",
        "aws",
        sms.clone(),
        [moto.clone(), key.clone()].concat(),
    ));
    // As the template deploys it: the limits table on (its client built at
    // init, its key from the environment so that init holds no round trip to
    // moto; deployed, LIMIT_KEY_SECRET_ARN names a secret). A table for each
    // sender: moto copies the whole table in every transaction, so a table
    // that grows makes every later send slower.
    let limits = sender_limits(&harness::moto::new_limits_table(&ddb, "bench-sms-limits").await);
    let mut sms_limited = entry_of(
        &args,
        "custom-sms-sender, limits on",
        "custom-sms-sender",
        "aws",
        sms,
        [moto.clone(), key.clone(), limits.clone()].concat(),
    );
    sms_limited["vary"] = json!("/userName");
    sms_limited["cold_only"] = json!(true);
    plan.push(sms_limited);

    // custom-email-sender, as the template deploys it: the pool's key, a From
    // identity verified in SES, the limits table on.
    let from = "no-reply@bench.example.com";
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(from)
        .send()
        .await
        .context("CreateEmailIdentity in moto")?;
    let email = with_cognito_code(
        &args.events,
        "custom-email-sender/authentication-en.json",
        &keyring,
    )
    .await?;
    let sender = [moto, key, vec![("EMAIL_FROM".to_owned(), from.to_owned())]].concat();
    let mut email_entry = entry(
        &args,
        "custom-email-sender",
        "aws",
        email.clone(),
        [
            sender.clone(),
            sender_limits(&harness::moto::new_limits_table(&ddb, "bench-email-limits").await),
        ]
        .concat(),
    );
    email_entry["vary"] = json!("/userName");
    email_entry["cold_only"] = json!(true);
    plan.push(email_entry);
    // Its warm path (KMS Decrypt, SES SendEmail), as custom-sms-sender's row.
    plan.push(entry_of(
        &args,
        "custom-email-sender, no limits table",
        "custom-email-sender",
        "aws",
        email,
        sender,
    ));

    // Every function under functions/ is measured: a new one must get its
    // representative event here before the benchmark runs again.
    let planned: Vec<&str> = plan.iter().filter_map(|e| e["name"].as_str()).collect();
    for entry in std::fs::read_dir(&args.functions)
        .with_context(|| format!("reading {}", args.functions.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        anyhow::ensure!(
            planned.contains(&name.as_str()),
            "functions/{name} has no entry in bench-plan: give it a representative event in tools/runtime-bench/src/bin/bench-plan.rs"
        );
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&plan)?)?;
    Ok(())
}
