//! `bench-plan --bin-dir target/release --out PLAN.json`: writes the plan
//! `runtime-bench` measures — the floor and every function, each with a
//! representative event that goes down its main path.
//!
//! The AWS-calling functions are set up to do their real round trip against
//! moto (`MOTO_ENDPOINT`): post-confirmation gets a user in a moto pool,
//! custom-sms-sender a code encrypted for a moto KMS key (the sample's
//! development-key ciphertext re-encrypted the way Cognito encrypts),
//! create-auth-challenge sends its SMS through moto's SNS.

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
    env: Vec<(String, String)>,
) -> Value {
    json!({
        "name": name,
        "binary": args.bin_dir.join(if binary == "floor" { "echo-floor" } else { binary }),
        "kind": kind,
        "event": event,
        "env": env,
    })
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
    plan.push(entry(
        &args,
        "create-auth-challenge",
        "aws",
        load(&args.events, "create-auth-challenge/first-code-en.json")?,
        [moto.clone(), secret].concat(),
    ));

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

    // custom-sms-sender: the sample's code, re-encrypted for a moto key.
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let mut sms = load(&args.events, "custom-sms-sender/authentication-en.json")?;
    let pool = sms["userPoolId"].as_str().unwrap_or_default().to_owned();
    let dev = dev_keyring::dev_decryptor().await?;
    let plain = dev
        .decrypt(sms["request"]["code"].as_str().unwrap_or_default(), &pool)
        .await
        .context("the sample's code decrypts with the development key")?;
    let keyring = code_decrypt::kms_keyring(kms, &key_arn).await?;
    let code = code_decrypt::encrypt_like_cognito(&keyring, plain.expose(), &pool, false).await?;
    sms["request"]["code"] = json!(code_decrypt::encode_code(&code));
    let mut env = moto;
    env.push(("KEY_ARN".to_owned(), key_arn));
    plan.push(entry(&args, "custom-sms-sender", "aws", sms, env));

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
