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

/// Email as a factor: counted, with the users whose only factor it is; in a
/// pool with email MFA, a user with an address and no factor is repairable,
/// not blocked.
#[tokio::test]
async fn audit_counts_email_and_enforce_counts_it_as_a_factor() {
    let p = FakeUserPool::new();
    let mail = |u: &str| ("email", format!("{u}@example.com"));
    for u in ["emailer", "both", "bare-mail"] {
        let (k, v) = mail(u);
        p.add_user(POOL, u, [(k, v.as_str()), ("phone_number", "+14155550100")]);
    }
    p.add_user(POOL, "nothing", []);
    p.add_user(POOL, "mail-only", [("email", "mail-only@example.com")]);
    p.set_mfa_preference(POOL, "emailer", MfaSettings::EMAIL_PREFERRED)
        .await
        .unwrap();
    p.set_mfa_preference(POOL, "both", MfaSettings::EMAIL_FALLBACK)
        .await
        .unwrap();
    p.set_mfa_preference(POOL, "both", MfaSettings::SMS_PREFERRED)
        .await
        .unwrap();
    let config = MfaConfig::from_source(&[("MFA_METHODS", "SMS,TOTP,EMAIL")][..]).unwrap();
    let audit = |config: MfaConfig| {
        let p = p.clone();
        async move {
            execute(
                &p,
                &config,
                POOL,
                &Command::Audit {
                    walk: fast(),
                    users: None,
                },
            )
            .await
            .unwrap()
        }
    };
    let r = audit(config).await;
    assert_eq!(r.json["email_enabled"], 2, "{}", r.json);
    assert_eq!(r.json["email_preferred"], 1, "{}", r.json);
    assert_eq!(r.json["email_only"], 1, "{}", r.json);
    assert_eq!(r.json["sms_enabled"], 1, "{}", r.json);
    // bare-mail (phone) and mail-only (address) can be given a factor;
    // "nothing" cannot.
    assert_eq!(r.json["repairable"], 2, "{}", r.json);
    assert_eq!(r.json["blocked_if_on"], 1, "{}", r.json);
    // Without email MFA in the pool, mail-only is blocked, not repairable.
    let r = audit(MfaConfig::default()).await;
    assert_eq!(r.json["repairable"], 1, "{}", r.json);
    assert_eq!(r.json["blocked_if_on"], 2, "{}", r.json);
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
    let e = execute_with(
        &p,
        &MfaConfig::default(),
        &phone_country::CountryPolicy::default(),
        POOL,
        &cmd,
        &Quiet,
        stop,
    )
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

fn apply(allow_lockout: u64) -> Command {
    Command::Enforce {
        dry_run: false,
        apply: true,
        allow_lockout,
        walk: fast(),
    }
}

fn access_denied() -> AdminError {
    AdminError::Service {
        operation: "AdminGetUser",
        code: "AccessDeniedException".into(),
    }
}

#[tokio::test]
async fn enforce_apply_refuses_a_pool_it_could_not_fully_read_and_changes_nothing() {
    let p = prepared().await;
    p.fail_user(POOL, "sms", access_denied());
    let config = MfaConfig::default();
    // The dry run says it.
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
    assert_eq!(dry.json["audit"]["errors"], 1);
    assert!(
        dry.text
            .contains("1 user could not be read: --apply refuses"),
        "{}",
        dry.text
    );
    // --allow-lockout 3 would switch this pool if it had been fully read.
    let calls = p.calls().len();
    let e = execute(&p, &config, POOL, &apply(3)).await.unwrap_err();
    let CliError::EnforceRefused { report, .. } = &e else {
        panic!("expected a refusal, got {e}");
    };
    let line = e.to_string();
    assert!(
        line.starts_with("1 user could not be read")
            && line.contains("mfa-admin audit")
            && line.contains("enforce --apply` again")
            && !line.contains('\n'),
        "{line}"
    );
    assert_eq!(e.exit_code(), 1);
    assert_eq!(report.json["applied"], false);
    assert_eq!(report.json["audit"]["errors"], 1);
    // Nothing changed: no repair, no switch.
    assert_eq!(p.pool_mfa_config(POOL).mode, "OPTIONAL");
    assert!(p.user(POOL, "bare-phone").unwrap().mfa.enabled.is_empty());
    let after: Vec<_> = p.calls()[calls..].to_vec();
    assert!(
        after
            .iter()
            .all(|c| *c == "ListUsers" || *c == "AdminGetUser"),
        "{after:?}"
    );
    // Once every user can be read, the same command switches the pool.
    let p2 = prepared().await;
    execute(&p2, &config, POOL, &apply(3)).await.unwrap();
    assert_eq!(p2.pool_mfa_config(POOL).mode, "ON");
}

/// The fake pool, changed by `change` just after the audit has read each of
/// the 10 users once: what users do while an hour-long audit runs.
struct ChangesAfterAudit {
    inner: FakeUserPool,
    reads: std::sync::atomic::AtomicUsize,
    change: Box<dyn Fn(&FakeUserPool) + Send + Sync>,
}

const AUDIT_READS: usize = 10;

impl ChangesAfterAudit {
    fn new(inner: FakeUserPool, change: impl Fn(&FakeUserPool) + Send + Sync + 'static) -> Self {
        Self {
            inner,
            reads: std::sync::atomic::AtomicUsize::new(0),
            change: Box::new(change),
        }
    }
}

impl UserPoolAdmin for ChangesAfterAudit {
    async fn get_user(&self, pool_id: &str, username: &str) -> Result<User, AdminError> {
        let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == AUDIT_READS {
            (self.change)(&self.inner);
        }
        self.inner.get_user(pool_id, username).await
    }
    async fn set_mfa_preference(
        &self,
        pool_id: &str,
        username: &str,
        settings: MfaSettings,
    ) -> Result<(), AdminError> {
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
        self.inner
            .update_attributes(pool_id, username, attributes)
            .await
    }
    async fn list_users(&self, pool_id: &str, token: Option<&str>) -> Result<UserPage, AdminError> {
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

/// The operations called after the audit's reads, in order.
fn after_audit(p: &FakeUserPool) -> Vec<&'static str> {
    let calls = p.calls();
    let mut reads = 0;
    let start = calls
        .iter()
        .position(|c| {
            reads += usize::from(*c == "AdminGetUser");
            reads == AUDIT_READS
        })
        .expect("the audit read every user");
    calls[start + 1..]
        .iter()
        .copied()
        .filter(|c| *c != "ListUsers")
        .collect()
}

#[tokio::test]
async fn enforce_apply_re_reads_and_refuses_users_who_became_blocked_since_the_audit() {
    let p = prepared().await;
    let changing = ChangesAfterAudit::new(p.clone(), |p| {
        // After the audit (and the repairs): bare-phone drops the phone and
        // the factor, and the disabled user is enabled again, still with none.
        p.add_user(POOL, "bare-phone", []);
        p.add_user(POOL, "disabled", []);
    });
    // 3 accepted lockouts would switch the pool as the audit saw it.
    let e = execute(&changing, &MfaConfig::default(), POOL, &apply(3))
        .await
        .unwrap_err();
    let CliError::EnforceRefused { reason, report } = &e else {
        panic!("expected a refusal, got {e}");
    };
    assert!(
        reason.starts_with("2 users became blocked since the audit") && !reason.contains('\n'),
        "{reason}"
    );
    assert_eq!(
        report.json["recheck"]["became_blocked"],
        serde_json::json!(["bare-phone", "disabled"])
    );
    assert!(
        report.text.contains("  now blocked bare-phone"),
        "{}",
        report.text
    );
    assert_eq!(report.json["applied"], false);
    assert_eq!(p.pool_mfa_config(POOL).mode, "OPTIONAL");
    assert!(!p.calls().contains(&"SetUserPoolMfaConfig"));
}

#[tokio::test]
async fn enforce_apply_re_reads_after_repairing_and_decides_on_the_fresh_state() {
    let p = prepared().await;
    let phone = "+14155550100";
    let changing = ChangesAfterAudit::new(p.clone(), move |p| {
        // bare gave a phone since the audit: no longer locked out.
        p.add_user(POOL, "bare", [("phone_number", phone)]);
    });
    // The audit saw 3 users locked out: --allow-lockout 2 passes only
    // because the re-read sees 2.
    let r = execute(&changing, &MfaConfig::default(), POOL, &apply(2))
        .await
        .unwrap();
    assert_eq!(r.json["applied"], true);
    assert_eq!(p.pool_mfa_config(POOL).mode, "ON");
    assert_eq!(
        r.json["recheck"],
        serde_json::json!({
            "users": 6,
            "still_blocked": 2,
            "fixed": 1,
            "became_blocked": [],
            "errors": 0,
        })
    );
    // The repairs, then one read of each of the 4 blocked and 2 repairable
    // users, then the switch.
    assert_eq!(
        after_audit(&p),
        [
            "AdminSetUserMFAPreference",
            "AdminSetUserMFAPreference",
            "AdminGetUser",
            "AdminGetUser",
            "AdminGetUser",
            "AdminGetUser",
            "AdminGetUser",
            "AdminGetUser",
            "GetUserPoolMfaConfig",
            "SetUserPoolMfaConfig",
            "GetUserPoolMfaConfig",
        ]
    );
}

#[tokio::test]
async fn enforce_apply_refuses_when_a_user_cannot_be_re_read() {
    let p = prepared().await;
    let changing = ChangesAfterAudit::new(p.clone(), |p| {
        p.fail_user(POOL, "nomfa", access_denied());
    });
    let e = execute(&changing, &MfaConfig::default(), POOL, &apply(3))
        .await
        .unwrap_err();
    let line = e.to_string();
    assert!(
        matches!(e, CliError::EnforceRefused { .. })
            && line.starts_with("1 user of the blocked and repairable users could not be re-read")
            && line.contains("enforce --apply` again"),
        "{line}"
    );
    assert_eq!(p.pool_mfa_config(POOL).mode, "OPTIONAL");
}
