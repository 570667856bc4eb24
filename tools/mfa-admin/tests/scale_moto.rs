//! `audit` and `enforce` as the real binary against moto over HTTP, on a
//! generated pool of 5,000 users in known states (`harness::pool_gen`;
//! `MFA_ADMIN_SCALE_USERS` sets another size), and through the fault proxy.

use std::process::Output;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::Client;
use harness::fault_proxy::{Fault, FaultProxy, Plan};
use harness::pool_gen;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mfa-admin");

fn users() -> usize {
    std::env::var("MFA_ADMIN_SCALE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

async fn mfa_admin(endpoint: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args);
    for (k, v) in harness::moto::child_env() {
        cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint);
    for var in [
        "MFA_CONFIGURATION",
        "MFA_METHODS",
        "MFA_DEFAULT_PREFERENCE",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().await.expect("running mfa-admin")
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.success() || o.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// One test for the whole story, so the pool is generated once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_and_enforce_on_a_generated_pool() {
    let n = users();
    let client = Client::new(&harness::moto::sdk_config().await);
    let started = Instant::now();
    let pool = pool_gen::generate_pool(&client, n, 16).await;
    eprintln!(
        "generated {n} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let moto = harness::moto::endpoint();
    let fast = ["--rate", "5000", "--concurrency", "16"];

    // audit, JSON: exactly the generated counts.
    let started = Instant::now();
    let mut args = vec!["--user-pool-id", &pool, "--output", "json", "audit"];
    args.extend(fast);
    let audit = json(&mfa_admin(&moto, &args).await);
    eprintln!(
        "audit of {n} users: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (key, count) in pool_gen::expected_counts(n) {
        assert_eq!(audit[key], count, "{key} in {audit}");
    }
    // The text form says the same.
    let mut args = vec!["--user-pool-id", &pool, "audit"];
    args.extend(fast);
    let text = String::from_utf8(mfa_admin(&moto, &args).await.stdout).unwrap();
    let expected_total = format!("{:<26}{n}", "users");
    assert!(text.lines().any(|l| l == expected_total), "{text}");

    // Throttling answers in front of moto slow it down; the counts stay exact.
    let proxy = FaultProxy::start(&moto, Plan::first(20, Fault::Throttling))
        .await
        .unwrap();
    let mut args = vec!["--user-pool-id", &pool, "--output", "json", "audit"];
    args.extend(fast);
    let throttled = json(&mfa_admin(&proxy.url(), &args).await);
    assert_eq!(throttled["total"], audit["total"]);
    assert_eq!(throttled["sms_enabled"], audit["sms_enabled"]);
    assert_eq!(throttled["errors"], 0);
    assert_eq!(proxy.faulted(), 20);

    // enforce --dry-run lists exactly the users who would be blocked.
    let mut args = vec![
        "--user-pool-id",
        &pool,
        "--output",
        "json",
        "enforce",
        "--dry-run",
    ];
    args.extend(fast);
    let dry = json(&mfa_admin(&moto, &args).await);
    let mut blocked: Vec<String> = dry["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    blocked.sort();
    assert_eq!(blocked, pool_gen::expected_blocked(n));

    // --apply repairs the repairable and refuses while users would be
    // locked out; the pool stays OPTIONAL.
    let mut args = vec![
        "--user-pool-id",
        &pool,
        "--output",
        "json",
        "enforce",
        "--apply",
    ];
    args.extend(fast);
    let o = mfa_admin(&moto, &args).await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("would be locked out"), "{err}");
    let mode = |c: &Client| {
        let (c, pool) = (c.clone(), pool.clone());
        async move {
            c.get_user_pool_mfa_config()
                .user_pool_id(pool)
                .send()
                .await
                .unwrap()
        }
    };
    let before = mode(&client).await;
    assert_eq!(
        before.mfa_configuration().map(|m| m.as_str()),
        Some("OPTIONAL")
    );
    let refused = json(&o);
    let repairable = pool_gen::expected_counts(n)
        .into_iter()
        .find(|(k, _)| *k == "repairable")
        .map(|(_, c)| c)
        .unwrap_or_default();
    assert_eq!(
        refused["repaired"], repairable,
        "every repairable user was repaired: {refused}"
    );

    // With --allow-lockout the pool goes ON, SMS and TOTP intact.
    let allow = blocked.len().to_string();
    let mut args = vec![
        "--user-pool-id",
        &pool,
        "--output",
        "json",
        "enforce",
        "--apply",
        "--allow-lockout",
        &allow,
    ];
    args.extend(fast);
    let applied = json(&mfa_admin(&moto, &args).await);
    assert_eq!(applied["applied"], true, "{applied}");
    let after = mode(&client).await;
    assert_eq!(after.mfa_configuration().map(|m| m.as_str()), Some("ON"));
    assert_eq!(
        after
            .sms_mfa_configuration()
            .and_then(|s| s.sms_authentication_message()),
        before
            .sms_mfa_configuration()
            .and_then(|s| s.sms_authentication_message())
    );
    assert!(
        after
            .software_token_mfa_configuration()
            .is_some_and(|t| t.enabled())
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_with_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let o = mfa_admin(
        &format!("http://127.0.0.1:{port}"),
        &["--user-pool-id", "us-east-1_Nowhere", "audit"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("mfa-admin: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("could not be reached"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
