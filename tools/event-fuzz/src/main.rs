//! `event-fuzz`: feeds mutated events into every trigger's entry point and
//! fails on a panic, a hang or runaway memory.
//!
//! cargo-fuzz needs a nightly toolchain, which this project does not assume;
//! this is a structure-aware mutation loop that runs on stable. Seeds are the
//! sample events under `events/` (each with the configuration stored beside
//! it). Every execution takes one seed, applies one to four mutations —
//! replace a random node with a hostile value (wrong types, huge or deeply
//! nested values, odd Unicode, near-valid phones and codes), delete or add a
//! key, swap in another trigger's `triggerSource`, grow an array — or, one
//! time in ten, mutates the JSON bytes themselves, and then runs what parses
//! through `replay`'s dispatch: the same handler code as the Lambda binaries,
//! with the in-memory fakes for AWS. The run is deterministic for a `--seed`.
//! The custom email sender's folder runs through its handler directly, with
//! the dependencies replay would give it built once per seed (see `email`),
//! except when an execution is routed by `triggerSource`.

// A command-line tool: its table goes to stdout.
#![allow(clippy::print_stdout)]

mod email;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use replay::Sample;
use serde_json::{Map, Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Executions per trigger (per events/ subfolder).
    #[arg(long, default_value_t = 1_000_000)]
    execs: u64,
    /// PRNG seed (a run is reproducible from it).
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// The sample events (one subfolder per function).
    #[arg(long, default_value = "events")]
    events: PathBuf,
    /// Only these subfolders (e.g. pre-sign-up); all when empty.
    #[arg(long)]
    only: Vec<String>,
    /// An execution slower than this counts as a hang.
    #[arg(long, default_value_t = 2000)]
    hang_ms: u64,
    /// Peak memory (VmHWM) above this fails the run.
    #[arg(long, default_value_t = 512)]
    max_rss_mib: u64,
    /// Instead of fuzzing, print the bad-input census: a fixed list of
    /// malformed inputs per trigger and the error each gets (Markdown).
    #[arg(long)]
    census: bool,
}

/// SplitMix64: small, fast, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const TRIGGER_SOURCES: [&str; 26] = [
    "PreSignUp_SignUp",
    "PreSignUp_AdminCreateUser",
    "PreSignUp_ExternalProvider",
    "PreAuthentication_Authentication",
    "PostConfirmation_ConfirmSignUp",
    "PostConfirmation_ConfirmForgotPassword",
    "CustomSMSSender_SignUp",
    "CustomSMSSender_ResendCode",
    "CustomSMSSender_ForgotPassword",
    "CustomSMSSender_UpdateUserAttribute",
    "CustomSMSSender_VerifyUserAttribute",
    "CustomSMSSender_AdminCreateUser",
    "CustomSMSSender_Authentication",
    "CustomSMSSender_AccountTakeOverNotification",
    "CustomEmailSender_SignUp",
    "CustomEmailSender_ResendCode",
    "CustomEmailSender_ForgotPassword",
    "CustomEmailSender_UpdateUserAttribute",
    "CustomEmailSender_VerifyUserAttribute",
    "CustomEmailSender_AdminCreateUser",
    "CustomEmailSender_Authentication",
    "CustomEmailSender_AccountTakeOverNotification",
    "DefineAuthChallenge_Authentication",
    "CreateAuthChallenge_Authentication",
    "VerifyAuthChallengeResponse_Authentication",
    "PreSignUp_Bogus",
];

fn hostile(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(24) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!(0),
        4 => json!(-1),
        5 => json!(u64::MAX),
        6 => json!(1e308),
        7 => json!(""),
        8 => json!("x".repeat(64 * 1024)),
        9 => json!("+14155550123"),
        10 => json!("+０１２３"),
        11 => json!("\u{0}\u{202e}\u{fffd}😀é"),
        12 => json!("123456"),
        13 => json!("&lt;&gt;&amp;&#39;&quot;&#x;&"),
        14 => json!("AYADeJ=="),
        15 => json!("SMS"),
        16 => json!("NOMFA"),
        17 => json!([]),
        18 => json!({}),
        19 => {
            // Deep nesting (serde_json refuses beyond 128 when parsing; a
            // Value built in memory can go deeper).
            let mut v = json!("deep");
            for _ in 0..(40 + rng.below(80)) {
                v = json!([v]);
            }
            v
        }
        // Near-miss email addresses: a display name, a list, no domain, an
        // address literal, full-width letters, a header injection.
        20 => json!(
            [
                "Victim <victim@example.com>",
                "victim@example.com, other@example.net",
                "victim@",
                "@example.com",
                "victim@[127.0.0.1]",
                "ｖｉｃｔｉｍ@example.com",
                "victim@example.com\r\nBcc: all@example.net",
                " Victim@Example.COM ",
                "\"quoted local\"@example.com",
            ][rng.below(9)]
        ),
        // Far beyond any address limit (254 characters), and small enough
        // that grown arrays of it stay well inside the memory limit.
        21 => json!(format!("{}@example.com", "a".repeat(4 * 1024))),
        22 if depth < 3 => {
            let n = rng.below(4);
            Value::Array((0..n).map(|_| hostile(rng, depth + 1)).collect())
        }
        _ if depth < 3 => {
            let mut m = Map::new();
            for k in [
                "challengeName",
                "challengeResult",
                "challengeMetadata",
                "code",
                "email",
                "email_verified",
                "phone_number",
            ] {
                if rng.chance(2) {
                    m.insert(k.to_owned(), hostile(rng, depth + 1));
                }
            }
            Value::Object(m)
        }
        _ => json!("fallback"),
    }
}

/// One step down a JSON value.
enum Step {
    Key(String),
    Index(usize),
}

/// A random node of `v`, as a mutable reference: the path is chosen on a
/// shared borrow, then followed on the mutable one.
fn pick<'a>(rng: &mut Rng, v: &'a mut Value) -> &'a mut Value {
    let mut path = Vec::new();
    let mut node: &Value = v;
    loop {
        if rng.below(4) == 0 {
            break;
        }
        match node {
            Value::Object(m) if !m.is_empty() => {
                let (k, child) = m
                    .iter()
                    .nth(rng.below(m.len()))
                    .unwrap_or_else(|| unreachable_node());
                path.push(Step::Key(k.clone()));
                node = child;
            }
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                path.push(Step::Index(i));
                node = &a[i];
            }
            _ => break,
        }
    }
    let mut target = v;
    for step in path {
        target = match (step, target) {
            (Step::Key(k), Value::Object(m)) => match m.get_mut(&k) {
                Some(child) => child,
                None => return unreachable_node_mut(),
            },
            (Step::Index(i), Value::Array(a)) => &mut a[i],
            (_, other) => other,
        };
    }
    target
}

#[allow(clippy::panic)]
fn unreachable_node() -> (&'static String, &'static Value) {
    panic!("a non-empty map yields its n-th entry for n below its length")
}

#[allow(clippy::panic)]
fn unreachable_node_mut() -> &'static mut Value {
    panic!("the path was taken from the same value")
}

fn mutate(rng: &mut Rng, v: &mut Value) {
    match rng.below(7) {
        0 | 1 => *pick(rng, v) = hostile(rng, 0),
        2 => {
            if let Value::Object(m) = pick(rng, v)
                && !m.is_empty()
            {
                let i = rng.below(m.len());
                let key = m.keys().nth(i).cloned().unwrap_or_default();
                m.remove(&key);
            }
        }
        3 => {
            if let Value::Object(m) = pick(rng, v) {
                let keys = [
                    "custom:mfa_preference",
                    "phone_number",
                    "email",
                    "email_verified",
                    "locale",
                    "userNotFound",
                    "session",
                    "code",
                    "type",
                    "answerCorrect",
                ];
                let key = keys[rng.below(keys.len())];
                m.insert(key.to_owned(), hostile(rng, 0));
            }
        }
        4 => {
            if let Value::Object(m) = v {
                let source = TRIGGER_SOURCES[rng.below(TRIGGER_SOURCES.len())];
                m.insert("triggerSource".to_owned(), json!(source));
            }
        }
        5 => {
            if let Value::Array(a) = pick(rng, v)
                && !a.is_empty()
            {
                let item = a[rng.below(a.len())].clone();
                for _ in 0..rng.below(40) {
                    a.push(item.clone());
                }
            }
        }
        _ => {
            if let Value::String(s) = pick(rng, v) {
                // Near-miss edits of a real value.
                let mut chars: Vec<char> = s.chars().collect();
                if !chars.is_empty() {
                    let i = rng.below(chars.len());
                    match rng.below(3) {
                        0 => {
                            chars.remove(i);
                        }
                        1 => chars.insert(i, ['0', '+', ' ', '-', '@', '.'][rng.below(6)]),
                        _ => chars[i] = char::from(b'0' + (rng.below(10) as u8)),
                    }
                }
                *s = chars.into_iter().collect();
            }
        }
    }
}

fn mutate_bytes(rng: &mut Rng, v: &Value) -> Option<Value> {
    let mut bytes = serde_json::to_vec(v).ok()?;
    for _ in 0..(1 + rng.below(8)) {
        if bytes.is_empty() {
            break;
        }
        let i = rng.below(bytes.len());
        match rng.below(3) {
            0 => bytes[i] = (rng.next() & 0xff) as u8,
            1 => bytes.truncate(i),
            _ => {
                let b = bytes[i];
                bytes.insert(i, b);
            }
        }
    }
    serde_json::from_slice(&bytes).ok()
}

#[derive(Default)]
struct Stats {
    execs: u64,
    accepted: u64,
    refused: u64,
    unparsable: u64,
    error_types: BTreeMap<String, u64>,
    slowest: Duration,
}

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib / 1024)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("event-fuzz: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The census's malformed inputs, built from one well-formed seed.
fn census_inputs(seed: &Value) -> Vec<(&'static str, Value)> {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = seed.clone();
        f(&mut v);
        v
    };
    let source = seed["triggerSource"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let prefix = source.split('_').next().unwrap_or_default().to_owned();
    let remove = |key: &'static str| {
        with(&move |v: &mut Value| {
            if let Some(m) = v.as_object_mut() {
                m.remove(key);
            }
        })
    };
    vec![
        ("not an object (array)", json!([1, 2, 3])),
        ("not an object (string)", json!("event")),
        ("null", Value::Null),
        ("empty object", json!({})),
        ("no triggerSource", remove("triggerSource")),
        (
            "unknown triggerSource of this trigger",
            with(&|v| v["triggerSource"] = json!(format!("{prefix}_Bogus"))),
        ),
        ("no request", remove("request")),
        ("request is a string", with(&|v| v["request"] = json!("x"))),
        (
            "userAttributes is an array",
            with(&|v| v["request"]["userAttributes"] = json!([])),
        ),
        (
            "attribute value is an object",
            with(&|v| v["request"]["userAttributes"]["phone_number"] = json!({"n": 1})),
        ),
        (
            "phone_number not E.164",
            with(&|v| v["request"]["userAttributes"]["phone_number"] = json!("0412 345 678")),
        ),
        (
            "phone_number of 64 KiB",
            with(&|v| v["request"]["userAttributes"]["phone_number"] = json!("9".repeat(65536))),
        ),
        (
            "email not a single address",
            with(&|v| {
                v["request"]["userAttributes"]["email"] =
                    json!("Victim <victim@example.com>, other@example.net")
            }),
        ),
        (
            "email of 64 KiB",
            with(&|v| {
                v["request"]["userAttributes"]["email"] =
                    json!(format!("{}@example.com", "a".repeat(65536)))
            }),
        ),
        (
            "session is null",
            with(&|v| v["request"]["session"] = Value::Null),
        ),
        (
            "session entry is a number",
            with(&|v| v["request"]["session"] = json!([7])),
        ),
        (
            "code is a number",
            with(&|v| v["request"]["code"] = json!(123456)),
        ),
        (
            "code is not base64",
            with(&|v| v["request"]["code"] = json!("%%%not-base64%%%")),
        ),
        (
            "response is a string",
            with(&|v| v["response"] = json!("yes")),
        ),
        ("userPoolId missing", remove("userPoolId")),
    ]
}

/// Prints the census table; false when an input panicked.
fn census(args: &Args, rt: &tokio::runtime::Runtime) -> Result<bool> {
    println!(
        "| trigger | malformed input | outcome | errorType | errorMessage (first 140 characters) |"
    );
    println!("|---|---|---|---|---|");
    let mut panicked = false;
    let mut done = BTreeSet::new();
    for file in replay::collect(std::slice::from_ref(&args.events))? {
        let group = file
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if done.contains(&group) || !(args.only.is_empty() || args.only.contains(&group)) {
            continue;
        }
        let sample = Sample::load(&file)?;
        // One well-formed, accepted seed per folder, on the default settings.
        let seed_ok = sample
            .expected
            .as_ref()
            .is_some_and(|e| e.outcome == replay::expect::Outcome::Accepted && e.env.is_empty());
        if !seed_ok {
            continue;
        }
        done.insert(group.clone());
        for (what, input) in census_inputs(&sample.event) {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(replay::dispatch::run_function(
                    &group,
                    input,
                    &BTreeMap::new(),
                ))
            }));
            let (result, kind, message) = match outcome {
                Ok(Some(run)) => match run.result {
                    Ok(_) => ("accepted", String::new(), String::new()),
                    Err(f) => ("refused", f.error_type, f.message),
                },
                Ok(None) => continue,
                Err(_) => {
                    panicked = true;
                    ("PANIC", String::new(), String::new())
                }
            };
            let message: String = message
                .chars()
                .take(140)
                .collect::<String>()
                .replace('|', "\\|");
            println!("| {group} | {what} | {result} | {kind} | {message} |");
        }
    }
    Ok(!panicked)
}

fn run(args: Args) -> Result<bool> {
    // Paused time: the handlers' deliberate delays (create-auth-challenge
    // imitates an SMS round trip for unknown users) cost nothing here; a
    // real hang still shows as wall time.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .context("starting the runtime")?;
    // Panics are findings: record them quietly, report them at the end.
    std::panic::set_hook(Box::new(|_| {}));
    if args.census {
        return census(&args, &rt);
    }
    let mut groups: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for file in replay::collect(std::slice::from_ref(&args.events))? {
        let group = file
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("events")
            .to_owned();
        if args.only.is_empty() || args.only.contains(&group) {
            groups.entry(group).or_default().push(Sample::load(&file)?);
        }
    }
    anyhow::ensure!(
        !groups.is_empty(),
        "no sample events under {}",
        args.events.display()
    );
    // The email sender's seeds, each set up once (see `email`), over one
    // development keyring.
    let mut email_seeds: BTreeMap<String, Vec<email::Seed>> = BTreeMap::new();
    if let Some(samples) = groups.get(email::FUNCTION) {
        let decryptor = rt.block_on(email::dev_decryptor())?;
        let seeds = samples
            .iter()
            .map(|s| {
                let env = s
                    .expected
                    .as_ref()
                    .map(|e| e.env.clone())
                    .unwrap_or_default();
                email::Seed::new(&decryptor, &env)
            })
            .collect();
        email_seeds.insert(email::FUNCTION.to_owned(), seeds);
    }
    let mut ok = true;
    let mut rng = Rng(args.seed);
    println!(
        "| trigger (events/…) | seeds | executions | accepted | refused | unparsable | error types seen | slowest |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (group, samples) in &groups {
        let mut stats = Stats::default();
        let mut findings: BTreeSet<String> = BTreeSet::new();
        let started = Instant::now();
        let mut direct = email_seeds.get_mut(group);
        for _ in 0..args.execs {
            let index = rng.below(samples.len());
            let sample = &samples[index];
            let env = sample
                .expected
                .as_ref()
                .map(|e| e.env.clone())
                .unwrap_or_default();
            let event = if rng.chance(10) {
                match mutate_bytes(&mut rng, &sample.event) {
                    Some(v) => v,
                    None => {
                        stats.unparsable += 1;
                        stats.execs += 1;
                        continue;
                    }
                }
            } else {
                let mut v = sample.event.clone();
                for _ in 0..(1 + rng.below(4)) {
                    mutate(&mut rng, &mut v);
                }
                v
            };
            let t = Instant::now();
            // The entry point of this folder's function, as its binary
            // would get the event (one time in eight: by triggerSource, as
            // replay routes it).
            let by_source = rng.chance(8);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    if by_source {
                        Some(replay::dispatch::run(event.clone(), &env).await)
                    } else if let Some(seeds) = direct.as_deref_mut() {
                        Some(seeds[index].run(event.clone()).await)
                    } else {
                        replay::dispatch::run_function(group, event.clone(), &env).await
                    }
                })
            }));
            let took = t.elapsed();
            stats.execs += 1;
            stats.slowest = stats.slowest.max(took);
            match outcome {
                Ok(None) => anyhow::bail!("events/{group}: no function of that name"),
                Ok(Some(run)) => match run.result {
                    Ok(_) => stats.accepted += 1,
                    Err(f) => {
                        stats.refused += 1;
                        *stats.error_types.entry(f.error_type).or_default() += 1;
                        if f.message.trim().is_empty() {
                            findings.insert(format!("empty error message for {}", short(&event)));
                        }
                    }
                },
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    findings.insert(format!("PANIC {msg} on {}", short(&event)));
                }
            }
            if took > Duration::from_millis(args.hang_ms) {
                findings.insert(format!("HANG {took:?} on {}", short(&event)));
            }
            if findings.len() >= 5 {
                break;
            }
        }
        let types: Vec<String> = stats.error_types.keys().cloned().collect();
        println!(
            "| {group} | {} | {} | {} | {} | {} | {} | {:.1} ms |",
            samples.len(),
            stats.execs,
            stats.accepted,
            stats.refused,
            stats.unparsable,
            types.join(", "),
            stats.slowest.as_secs_f64() * 1e3
        );
        eprintln!(
            "{group}: {} executions in {:.1} s",
            stats.execs,
            started.elapsed().as_secs_f64()
        );
        for f in &findings {
            eprintln!("  finding: {f}");
            ok = false;
        }
    }
    if let Some(rss) = peak_rss_mib() {
        eprintln!("peak RSS: {rss} MiB");
        if rss > args.max_rss_mib {
            eprintln!(
                "  finding: peak RSS {rss} MiB is above {} MiB",
                args.max_rss_mib
            );
            ok = false;
        }
    }
    Ok(ok)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{}…", &s[..s.floor_char_boundary(600)])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rng_is_deterministic_and_spreads() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        let mut r = Rng(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[r.below(10)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn mutations_change_the_event() {
        let mut rng = Rng(3);
        let base = json!({"triggerSource": "PreSignUp_SignUp", "request": {"userAttributes": {"email": "a@b.c"}}});
        let changed = (0..200)
            .filter(|_| {
                let mut v = base.clone();
                mutate(&mut rng, &mut v);
                v != base
            })
            .count();
        assert!(
            changed > 100,
            "only {changed} of 200 mutations changed the event"
        );
    }
}
