//! The pool-scale commands (`audit`, `enforce`, `apply-policy --all`) on the
//! in-memory pool, where time can be paused: exact counts for users in every
//! state (federated ones included, which moto cannot make), the rate limit
//! over every one-second window, throttling, Ctrl-C and `--resume-from`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_policy::{MfaConfig, MfaSettings};
use cognito_admin::{AdminError, Device, FakeUserPool, PoolMfa, User, UserPage, UserPoolAdmin};
use mfa_admin::scale::{self, Quiet, WalkOptions};
use mfa_admin::{CliError, Command, WalkArgs, execute, execute_with};
use tokio::time::Instant;

const POOL: &str = "us-east-1_Scale";

/// A pool with one user in each state the audit counts.
fn pool() -> FakeUserPool {
    let p = FakeUserPool::new();
    let phone = ("phone_number", "+14155550100");
    p.add_user(POOL, "sms", [phone]);
    p.add_user(POOL, "sms-fallback", [phone]);
    p.add_user(POOL, "totp", []);
    p.add_user(POOL, "bare-phone", [phone]);
    p.add_user(POOL, "bare", []);
    p.add_user(POOL, "nomfa", [("custom:mfa_preference", "NOMFA")]);
    p.add_user(
        POOL,
        "federated",
        [phone, ("cognito:user_status", "EXTERNAL_PROVIDER")],
    );
    p.add_user(
        POOL,
        "unconfirmed",
        [phone, ("cognito:user_status", "UNCONFIRMED")],
    );
    p.add_user(
        POOL,
        "temp-password",
        [("cognito:user_status", "FORCE_CHANGE_PASSWORD")],
    );
    p.add_user(POOL, "disabled", []);
    p.disable_user(POOL, "disabled");
    p.associate_totp(POOL, "totp");
    p.set_page_size(3);
    p
}

async fn prepared() -> FakeUserPool {
    let p = pool();
    p.set_mfa_preference(POOL, "sms", MfaSettings::SMS_PREFERRED)
        .await
        .unwrap();
    p.set_mfa_preference(POOL, "sms-fallback", MfaSettings::SMS_FALLBACK)
        .await
        .unwrap();
    p.set_mfa_preference(POOL, "totp", MfaSettings::TOTP_PREFERRED)
        .await
        .unwrap();
    p
}

fn fast() -> WalkArgs {
    WalkArgs {
        rate: 10_000,
        concurrency: 4,
    }
}

#[tokio::test]
async fn audit_counts_every_state_exactly() {
    let p = prepared().await;
    let r = execute(
        &p,
        &MfaConfig::default(),
        POOL,
        &Command::Audit {
            walk: fast(),
            users: None,
        },
    )
    .await
    .unwrap();
    let expect = [
        ("total", 10),
        ("sms_enabled", 2),
        ("sms_preferred", 1),
        ("totp_enabled", 1),
        ("totp_preferred", 1),
        // bare-phone, unconfirmed (federated users are not in the factor counts)
        ("no_factor_with_phone", 2),
        // bare, nomfa, temp-password, disabled
        ("no_factor_without_phone", 4),
        ("federated", 1),
        ("unconfirmed", 1),
        ("reset_required", 1),
        ("disabled", 1),
        // bare-phone, unconfirmed (SMS with a phone), bare, temp-password,
        // disabled (SMS wanted, no phone); not nomfa, not federated
        ("policy_needs_factor", 5),
        // bare, nomfa, temp-password (confirmed or bound to be, enabled)
        ("blocked_if_on", 3),
        ("repairable", 2),
        ("errors", 0),
    ];
    for (key, n) in expect {
        assert_eq!(r.json[key], n, "{key}: {}", r.json);
    }
    assert_eq!(r.json["interrupted"], false);
    let csv = r.csv.expect("audit has a CSV form");
    assert!(
        csv.starts_with("key,value\n") && csv.contains("\ntotal,10\n"),
        "{csv}"
    );
}

#[tokio::test]
async fn the_users_file_has_a_line_per_user_with_the_phone_masked() {
    let p = prepared().await;
    let file = std::env::temp_dir().join(format!("audit-users-{}.csv", std::process::id()));
    execute(
        &p,
        &MfaConfig::default(),
        POOL,
        &Command::Audit {
            walk: fast(),
            users: Some(file.clone()),
        },
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(text.lines().count(), 11, "{text}");
    assert!(
        !text.contains("+14155550100") && text.contains("+1******0100"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("\"bare\",CONFIRMED,true,false,false")),
        "{text}"
    );
}

/// Records when each call starts (tokio time, which the test pauses).
struct Timed {
    inner: FakeUserPool,
    at: Arc<Mutex<Vec<Instant>>>,
}

impl Timed {
    fn mark(&self) {
        self.at.lock().unwrap().push(Instant::now());
    }
}

impl UserPoolAdmin for Timed {
    async fn get_user(&self, pool_id: &str, username: &str) -> Result<User, AdminError> {
        self.mark();
        // A realistic round trip, so requests overlap.
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.inner.get_user(pool_id, username).await
    }
    async fn set_mfa_preference(
        &self,
        pool_id: &str,
        username: &str,
        settings: MfaSettings,
    ) -> Result<(), AdminError> {
        self.mark();
        self.inner
            .set_mfa_preference(pool_id, username, settings)
            .await
    }
    async fn update_attributes(
        &self,
        pool_id: &str,
        username: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AdminError> {
        self.mark();
        self.inner
            .update_attributes(pool_id, username, attributes)
            .await
    }
    async fn list_users(&self, pool_id: &str, token: Option<&str>) -> Result<UserPage, AdminError> {
        self.mark();
        self.inner.list_users(pool_id, token).await
    }
    async fn list_devices(&self, pool_id: &str, username: &str) -> Result<Vec<Device>, AdminError> {
        self.inner.list_devices(pool_id, username).await
    }
    async fn pool_mfa(&self, pool_id: &str) -> Result<PoolMfa, AdminError> {
        self.inner.pool_mfa(pool_id).await
    }
    async fn set_pool_mfa_on(&self, pool_id: &str, current: &PoolMfa) -> Result<(), AdminError> {
        self.inner.set_pool_mfa_on(pool_id, current).await
    }
    async fn global_sign_out(&self, pool_id: &str, username: &str) -> Result<(), AdminError> {
        self.inner.global_sign_out(pool_id, username).await
    }
    async fn forget_device(
        &self,
        pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<(), AdminError> {
        self.inner
            .forget_device(pool_id, username, device_key)
            .await
    }
}

fn max_in_any_second(at: &[Instant]) -> usize {
    at.iter()
        .map(|t| {
            at.iter()
                .filter(|u| **u >= *t && **u < *t + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn no_one_second_window_holds_more_requests_than_the_rate() {
    let inner = FakeUserPool::new();
    for i in 0..120 {
        inner.add_user(
            POOL,
            &format!("u{i:03}"),
            [("phone_number", "+14155550100")],
        );
    }
    inner.set_page_size(10);
    let at = Arc::new(Mutex::new(Vec::new()));
    let timed = Timed {
        inner,
        at: at.clone(),
    };
    let started = Instant::now();
    let audit = scale::audit(
        &timed,
        &MfaConfig::default(),
        POOL,
        &WalkOptions {
            rate: 10,
            concurrency: 16,
            resume_from: None,
        },
        &Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(audit.counts.total, 120);
    let at = at.lock().unwrap().clone();
    assert_eq!(at.len(), 120 + 12, "120 reads and 12 pages");
    assert!(max_in_any_second(&at) <= 10, "{}", max_in_any_second(&at));
    // And not much slower than the rate allows: 132 requests at 10/s.
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_slows_the_walk_down_and_the_counts_stay_exact() {
    let p = prepared().await;
    // Four throttled answers in a row (each call is tried up to eight more times).
    for _ in 0..4 {
        p.fail_next(AdminError::Service {
            operation: "AdminGetUser",
            code: "TooManyRequestsException".into(),
        });
    }
    let audit = scale::audit(
        &p,
        &MfaConfig::default(),
        POOL,
        &WalkOptions {
            rate: 50,
            concurrency: 2,
            resume_from: None,
        },
        &Quiet,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(audit.counts.total, 10);
    assert_eq!(audit.counts.errors, 0);
    assert_eq!(audit.counts.sms_enabled, 2);
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_keeps_what_was_counted_and_says_where_to_resume() {
    let p = FakeUserPool::new();
    for i in 0..40 {
        p.add_user(
            POOL,
            &format!("u{i:03}"),
            [("phone_number", "+14155550100")],
        );
    }
    p.set_page_size(10);
    let cmd = Command::ApplyPolicy {
        user: None,
        all: true,
        walk: WalkArgs {
            rate: 10,
            concurrency: 2,
        },
        resume_from: None,
    };
    // Ctrl-C after about 1.5 s: about 15 requests at 10/s.
    let stop = tokio::time::sleep(Duration::from_millis(1500));
    let e = execute_with(&p, &MfaConfig::default(), POOL, &cmd, &Quiet, stop)
        .await
        .unwrap_err();
    let CliError::Interrupted(report) = e else {
        panic!("{e}")
    };
    let last = report.json["resume_from"]
        .as_str()
        .expect("a place to resume")
        .to_owned();
    let done = report.json["results"].as_array().unwrap().len();
    assert!(done > 0 && done < 40, "{done}");
    assert_eq!(
        last,
        format!("u{:03}", done - 1),
        "the listing order up to the gap"
    );
    // The resumed run does the rest, and only the rest.
    let cmd = Command::ApplyPolicy {
        user: None,
        all: true,
        walk: fast(),
        resume_from: Some(last),
    };
    let r = execute(&p, &MfaConfig::default(), POOL, &cmd)
        .await
        .unwrap();
    assert_eq!(r.json["results"].as_array().unwrap().len(), 40 - done);
    for i in 0..40 {
        let u = p.user(POOL, &format!("u{i:03}")).unwrap();
        assert_eq!(u.mfa.enabled.len(), 1, "u{i:03}");
    }
    // A name the listing does not hold is refused.
    let cmd = Command::ApplyPolicy {
        user: None,
        all: true,
        walk: fast(),
        resume_from: Some("nobody".into()),
    };
    let e = execute(&p, &MfaConfig::default(), POOL, &cmd)
        .await
        .unwrap_err();
    assert!(matches!(e, CliError::ResumeNotFound(_)), "{e}");
}

#[tokio::test]
async fn enforce_lists_repairs_refuses_while_users_would_be_locked_out_then_switches() {
    let p = prepared().await;
    let config = MfaConfig::default();
    let dry = execute(
        &p,
        &config,
        POOL,
        &Command::Enforce {
            dry_run: true,
            apply: false,
            allow_lockout: 0,
            walk: fast(),
        },
    )
    .await
    .unwrap();
    let names = |v: &serde_json::Value| {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&dry.json["blocked"]),
        ["bare", "nomfa", "temp-password"]
    );
    assert_eq!(
        names(&dry.json["repairable"]),
        ["bare-phone", "unconfirmed"]
    );
    assert_eq!(
        p.pool_mfa_config(POOL).mode,
        "OPTIONAL",
        "a dry run changes nothing"
    );
    assert!(p.user(POOL, "bare-phone").unwrap().mfa.enabled.is_empty());

    let apply = |allow| Command::Enforce {
        dry_run: false,
        apply: true,
        allow_lockout: allow,
        walk: fast(),
    };
    let e = execute(&p, &config, POOL, &apply(0)).await.unwrap_err();
    assert!(
        matches!(&e, CliError::EnforceRefused { reason, .. } if reason.contains("3 confirmed, enabled users would be locked out")),
        "{e}"
    );
    assert_eq!(p.pool_mfa_config(POOL).mode, "OPTIONAL");
    // The repairable were repaired all the same.
    assert!(!p.user(POOL, "bare-phone").unwrap().mfa.enabled.is_empty());

    let before = p.pool_mfa_config(POOL);
    let r = execute(&p, &config, POOL, &apply(3)).await.unwrap();
    let after = p.pool_mfa_config(POOL);
    assert_eq!(after.mode, "ON");
    assert_eq!(
        (after.sms, after.totp),
        (before.sms, before.totp),
        "SMS and TOTP kept"
    );
    assert_eq!(r.json["applied"], true);
}
