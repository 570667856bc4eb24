//! `pumping-sim`: an SMS pumping wave against moto, through the real
//! function binaries under our Runtime API (several instances each, as
//! Lambda scales out), with the limits and country lists the template
//! deploys by default (read from `template.yaml`, or overridden by flags).
//!
//! Every attempt picks one of `--numbers` phone numbers spread over many
//! countries (premium-rate destinations among them). A sign-up goes through
//! pre-sign-up (the country policy) and, when accepted, the custom SMS
//! sender's sign-up code; a sign-in through create-auth-challenge. The
//! result is what moto's SNS recorded as sent, and each refusal's reason.
//! Exits non-zero when an SMS reached a disallowed country or a count went
//! past its limit.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use harness::runtime_api::{self, Answer, HarnessError, RuntimeApi};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Sign-up attempts.
    #[arg(long, default_value_t = 150)]
    signups: usize,
    /// Sign-in attempts (custom auth: one code each).
    #[arg(long, default_value_t = 150)]
    signins: usize,
    /// Distinct phone numbers the attacker cycles through.
    #[arg(long, default_value_t = 30)]
    numbers: usize,
    /// Instances of each function.
    #[arg(long, default_value_t = 4)]
    instances: usize,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// The template whose parameter defaults are the limits.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Overrides of the template's defaults (NAME=VALUE, e.g.
    /// SMS_ALLOWED_COUNTRIES=US,CA,GB,JP).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

/// The countries of the wave: a valid range of each (prefix, digits after
/// it). Premium-rate and pumping-prone destinations sit beside the pool's
/// own countries.
const COUNTRIES: [(&str, &str, u32); 10] = [
    ("US", "+1650253", 4),
    ("CA", "+1416253", 4),
    ("JM", "+1876253", 4),
    ("BS", "+1242357", 4),
    ("GB", "+447400", 6),
    ("JP", "+8190", 8),
    ("DE", "+491512", 7),
    ("NG", "+234803", 7),
    ("PK", "+92300", 7),
    ("LV", "+37120", 6),
];

/// The `i`-th number of the wave, and the country it is meant to be in.
fn number(i: usize) -> (String, &'static str) {
    let (country, prefix, digits) = COUNTRIES[i % COUNTRIES.len()];
    let n = (12_345_678 + i * 7919) % 10usize.pow(digits);
    (
        format!("{prefix}{n:0width$}", width = digits as usize),
        country,
    )
}

/// The `Default:` of a template parameter (the line after its name).
fn template_default(template: &str, parameter: &str) -> Option<String> {
    let mut lines = template
        .lines()
        .skip_while(|l| l.trim_end() != format!("  {parameter}:"));
    lines.next()?;
    for line in lines {
        if !line.starts_with("    ") {
            return None;
        }
        if let Some(v) = line.trim().strip_prefix("Default:") {
            return Some(v.trim().trim_matches('"').to_owned());
        }
    }
    None
}

/// The configuration the template deploys, as environment variables.
fn deployed_limits(template: &Path, overrides: &[String]) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let mut env = BTreeMap::new();
    for (var, param) in [
        ("SMS_LIMIT_PER_PHONE", "SmsLimitPerPhone"),
        ("SMS_LIMIT_PER_USER", "SmsLimitPerUser"),
        ("SMS_LIMIT_PER_POOL", "SmsLimitPerPool"),
        ("CODE_FAILURES_PER_USER", "CodeFailuresPerUser"),
        ("SMS_ALLOWED_COUNTRIES", "SmsAllowedCountries"),
        ("SMS_BLOCKED_COUNTRIES", "SmsBlockedCountries"),
    ] {
        let v = template_default(&text, param)
            .with_context(|| format!("{param} has no Default in {}", template.display()))?;
        env.insert(var.to_owned(), v);
    }
    for o in overrides {
        let (k, v) = o.split_once('=').context("--set takes NAME=VALUE")?;
        env.insert(k.to_owned(), v.to_owned());
    }
    Ok(env)
}

/// Runs `events` through the instances, all at once; an event the instances
/// did not answer counts as refused with the harness's reason.
async fn run(
    functions: Vec<harness::runtime_api::Function<'static>>,
    events: Vec<Value>,
) -> Vec<Answer> {
    runtime_api::invoke_concurrently(functions, events)
        .await
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|e: HarnessError| {
                Answer::Error(json!({"errorType": "NoAnswer", "errorMessage": e.to_string()}))
            })
        })
        .collect()
}

/// A refusal's reason: the error type, and the limit when the message names it.
fn reason(a: &Answer) -> String {
    let t = a.error_type().unwrap_or("error").to_owned();
    let m = a.error_message().unwrap_or_default();
    for kind in [
        "per_phone",
        "per_user",
        "per_pool",
        "country_blocked",
        "country_not_allowed",
        "country_unknown",
    ] {
        if m.contains(kind) {
            return format!("{t} ({kind})");
        }
    }
    t
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let limits = deployed_limits(&args.template, &args.set)?;
    let sdk = harness::moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = harness::moto::new_limits_table(&ddb, "pumping-sim").await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms, &key_arn).await?;
    let pool = "us-east-1_PumpingSim";

    let mut env: Vec<(String, String)> = harness::moto::child_env();
    env.extend(limits.clone());
    env.push(("SMS_LIMIT_TABLE".into(), table));
    env.push(("KEY_ARN".into(), key_arn));
    env.push((
        "CHALLENGE_SECRET".into(),
        "pumping-sim-hashing-secret-0123456789abcdef".into(),
    ));
    println!(
        "limits (the template's defaults{}):",
        if args.set.is_empty() {
            ""
        } else {
            ", with --set"
        }
    );
    for (k, v) in &limits {
        println!("  {k}={}", if v.is_empty() { "(none)" } else { v });
    }
    let allowed = phone_country::CountryPolicy::from_source(&|k: &str| limits.get(k).cloned())?;
    for i in 0..COUNTRIES.len() {
        let (phone, country) = number(i);
        let found = phone_country::country_of(&phone).map(|c| c.to_string());
        if found.as_deref() != Some(country) {
            bail!(
                "the wave's {country} numbers are not {country}'s by the numbering plan ({found:?})"
            );
        }
    }

    let started = Instant::now();
    let bin = |name: &str| args.bin_dir.join(name);
    let sent_before: usize = harness::moto::sent_sms().await.len();

    // Sign-ups: pre-sign-up, then the sign-up code for those accepted.
    let api: &'static RuntimeApi = runtime_api::start_static().await?;
    let pre = runtime_api::spawn_instances(api, &bin("pre-sign-up"), &env, args.instances).await?;
    let mut signups = Vec::new();
    for i in 0..args.signups {
        let (phone, _) = number(i % args.numbers);
        signups.push(json!({
            "version": "1", "region": "us-east-1", "userPoolId": pool, "userName": format!("pump-{i}"),
            "callerContext": {"awsSdkVersion": "x", "clientId": "c"}, "triggerSource": "PreSignUp_SignUp",
            "request": {"userAttributes": {"email": format!("pump{i}@example.com"), "phone_number": phone}, "validationData": {}},
            "response": {}
        }));
    }
    let answers = run(pre, signups.clone()).await;
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let mut codes = Vec::new();
    for (event, answer) in signups.iter().zip(&answers) {
        if answer.is_error() {
            *refused
                .entry(format!("sign-up: {}", reason(answer)))
                .or_default() += 1;
            continue;
        }
        let code = code_decrypt::encode_code(
            &code_decrypt::encrypt_like_cognito(&keyring, "123456", pool, false).await?,
        );
        let mut e = event.clone();
        e["triggerSource"] = json!("CustomSMSSender_SignUp");
        e["request"] = json!({"type": "customSMSSenderRequestV1", "code": code,
                              "userAttributes": event["request"]["userAttributes"]});
        codes.push(e);
    }
    let api2: &'static RuntimeApi = runtime_api::start_static().await?;
    let sender =
        runtime_api::spawn_instances(api2, &bin("custom-sms-sender"), &env, args.instances).await?;
    for a in run(sender, codes.clone())
        .await
        .iter()
        .filter(|a| a.is_error())
    {
        *refused
            .entry(format!("sign-up code: {}", reason(a)))
            .or_default() += 1;
    }

    // Sign-ins: create-auth-challenge, one code each.
    let api3: &'static RuntimeApi = runtime_api::start_static().await?;
    let create =
        runtime_api::spawn_instances(api3, &bin("create-auth-challenge"), &env, args.instances)
            .await?;
    let mut signins = Vec::new();
    for i in 0..args.signins {
        let (phone, _) = number((i * 3) % args.numbers);
        signins.push(json!({
            "version": "1", "region": "us-east-1", "userPoolId": pool, "userName": format!("victim-{}", i % 10),
            "callerContext": {"awsSdkVersion": "x", "clientId": "c"},
            "triggerSource": "CreateAuthChallenge_Authentication",
            "request": {"userAttributes": {"phone_number": phone}, "challengeName": "CUSTOM_CHALLENGE",
                        "session": [{"challengeName": "SRP_A", "challengeResult": true, "challengeMetadata": null},
                                    {"challengeName": "PASSWORD_VERIFIER", "challengeResult": true, "challengeMetadata": null},
                                    {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": false, "challengeMetadata": format!("attempt-{i}")}],
                        "userNotFound": false},
            "response": {}
        }));
    }
    for a in run(create, signins).await.iter().filter(|a| a.is_error()) {
        *refused
            .entry(format!("sign-in code: {}", reason(a)))
            .or_default() += 1;
    }
    let took = started.elapsed();

    // What moto's SNS recorded.
    let sent: Vec<(String, String)> = harness::moto::sent_sms()
        .await
        .into_iter()
        .skip(sent_before)
        .collect();
    let mut per_country: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_phone: BTreeMap<String, usize> = BTreeMap::new();
    let mut disallowed = 0;
    for (phone, _) in &sent {
        let c =
            phone_country::country_of(phone).map_or_else(|| "none".to_owned(), |c| c.to_string());
        *per_country.entry(c).or_default() += 1;
        *per_phone.entry(phone.clone()).or_default() += 1;
        if !allowed.check(phone).allowed() {
            disallowed += 1;
        }
    }
    let attempted = args.signups + args.signins;
    println!(
        "\nattempted: {attempted} ({} sign-ups, {} sign-ins) over {} numbers in {} countries, in {:.1} s",
        args.signups,
        args.signins,
        args.numbers,
        COUNTRIES.len().min(args.numbers),
        took.as_secs_f64()
    );
    println!("sent: {}", sent.len());
    println!("refused:");
    for (r, n) in &refused {
        println!("  {n:>5}  {r}");
    }
    println!(
        "sent by country: {}",
        per_country
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let most = per_phone.values().copied().max().unwrap_or(0);
    println!("most SMS to one number: {most}");
    println!("SMS to a disallowed country: {disallowed}");

    let cap = |var: &str| {
        limits
            .get(var)
            .and_then(|v| v.split_once('/'))
            .and_then(|(n, _)| n.parse::<usize>().ok())
    };
    if disallowed > 0 {
        bail!("{disallowed} SMS went to a disallowed country");
    }
    if let Some(c) = cap("SMS_LIMIT_PER_PHONE")
        && most > 2 * c
    {
        // Two fixed windows may meet inside one run.
        bail!("{most} SMS to one number, over twice the per-phone limit {c}");
    }
    if let Some(c) = cap("SMS_LIMIT_PER_POOL")
        && took < Duration::from_secs(60)
        && sent.len() > 2 * c
    {
        bail!(
            "{} SMS in under a minute, over twice the per-pool limit {c}",
            sent.len()
        );
    }
    Ok(())
}
