//! Pool-scale operations: `audit`, `enforce` and `apply-policy --all`.
//!
//! `ListUsers` does not report MFA settings, so each needs one
//! `AdminGetUser` per user: 100,000 calls for a pool of 100,000 users, under
//! Cognito's per-account request-rate quotas. [`walk`] goes through the pool:
//! `ListUsers` pages fetched ahead, then the per-user operations,
//! `--concurrency` in flight at once, every request (pages included) spaced
//! by one [`RateLimiter`], so that no one-second window holds more than
//! `--rate` requests. A throttling answer (after the SDK's own retries)
//! halves the rate for the rest of the run and the call is tried again.
//! Ctrl-C stops the walk; what was counted so far is reported.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use auth_policy::redact::mask_phone;
use auth_policy::{MfaConfig, MfaDecision, MfaSettings, MfaSkipReason};
use cognito_admin::{AdminError, EXTERNAL_PROVIDER, MfaFactor, User, UserPage, UserPoolAdmin};
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::json;

use crate::{CliError, Report, decide_for_user};

/// The default `--rate`: well under Cognito's default request-rate quota for
/// user reads, so a walk leaves room for the pool's own traffic.
pub const DEFAULT_RATE: u32 = 25;
/// The default `--concurrency`.
pub const DEFAULT_CONCURRENCY: u16 = 8;
/// Throttled calls are tried again this many times (each after halving the
/// rate) before the user counts as failed.
const THROTTLE_RETRIES: u32 = 8;

/// Spaces requests evenly: slots `1/rate` apart, so that at most `rate`
/// requests start in any window of one second.
#[derive(Debug)]
pub struct RateLimiter {
    state: std::sync::Mutex<(Instant, Duration)>,
    requests: std::sync::atomic::AtomicU64,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        Self {
            state: std::sync::Mutex::new((Instant::now(), Duration::from_secs(1) / rate.max(1))),
            requests: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Waits for the next free slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let slot = state.0.max(Instant::now());
            state.0 = slot + state.1;
            slot
        };
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep_until(slot).await;
    }

    /// Throttled: half the rate from now on (down to one request a second).
    pub fn slow_down(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1 = (state.1 * 2).min(Duration::from_secs(1));
    }

    /// The current rate, requests per second.
    pub fn rate(&self) -> f64 {
        1.0 / self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .as_secs_f64()
    }

    /// Requests started so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn is_throttling(e: &AdminError) -> bool {
    e.code().is_some_and(|c| {
        matches!(
            c,
            "TooManyRequestsException"
                | "ThrottlingException"
                | "LimitExceededException"
                | "Throttling"
        )
    })
}

/// One call under the limiter, tried again (slower) while it is throttled.
pub async fn call<T, F, Fut>(limiter: &RateLimiter, mut f: F) -> Result<T, AdminError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AdminError>>,
{
    let mut tries = 0;
    loop {
        limiter.acquire().await;
        match f().await {
            Err(e) if is_throttling(&e) && tries < THROTTLE_RETRIES => {
                tries += 1;
                limiter.slow_down();
                tracing::warn!(
                    rate = format!("{:.1}", limiter.rate()),
                    "Cognito is throttling: slowing down"
                );
            }
            other => return other,
        }
    }
}

/// How a walk reports progress.
pub trait Progress: Sync {
    /// `done` users of `total` (`None` while the listing goes on).
    fn update(&self, done: u64, total: Option<u64>, rate: f64);
    fn finish(&self, done: u64);
}

/// No progress output (tests).
pub struct Quiet;

impl Progress for Quiet {
    fn update(&self, _: u64, _: Option<u64>, _: f64) {}
    fn finish(&self, _: u64) {}
}

/// The options every pool-scale command shares.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Requests per second, pages and per-user calls together.
    pub rate: u32,
    /// Per-user operations in flight at once.
    pub concurrency: usize,
    /// Start after this user (the last one an interrupted run printed).
    pub resume_from: Option<String>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            concurrency: usize::from(DEFAULT_CONCURRENCY),
            resume_from: None,
        }
    }
}

/// What a walk did: one `T` per user, in listing order.
#[derive(Debug)]
pub struct Walked<T> {
    pub results: Vec<(String, T)>,
    /// After Ctrl-C: the last user of the listing up to whom every user was
    /// done (what `--resume-from` takes); results past it were dropped.
    pub resume_after: Option<String>,
    /// Ctrl-C stopped it before the end.
    pub interrupted: bool,
    pub took: Duration,
    pub requests: u64,
}

type PageFuture<'a> = Pin<Box<dyn Future<Output = Result<UserPage, AdminError>> + 'a>>;

/// Runs `op` on every user of the pool (after `resume_from`), `concurrency`
/// at a time, under `limiter` (which `op` uses for its own calls too).
pub async fn walk<'a, A, P, T, F, Fut>(
    admin: &'a A,
    pool_id: &'a str,
    options: &WalkOptions,
    limiter: &'a RateLimiter,
    progress: &P,
    stop: impl Future<Output = ()>,
    op: F,
) -> Result<Walked<T>, CliError>
where
    A: UserPoolAdmin,
    P: Progress,
    F: Fn(String) -> Fut,
    Fut: Future<Output = T>,
{
    let started = Instant::now();
    let concurrency = options.concurrency.max(1);
    let mut results = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut queue: VecDeque<(u64, String)> = VecDeque::new();
    let mut token: Option<String> = None;
    let mut listed: u64 = 0;
    let mut listing_done = false;
    let mut skipping = options.resume_from.clone();
    let mut fetch: Option<PageFuture<'a>> = None;
    let mut interrupted = false;
    tokio::pin!(stop);
    loop {
        while in_flight.len() < concurrency
            && let Some((index, user)) = queue.pop_front()
        {
            let fut = op(user.clone());
            in_flight.push(async move { (index, user, fut.await) });
        }
        if fetch.is_none() && !listing_done && queue.len() < concurrency * 2 {
            let t = token.clone();
            fetch = Some(Box::pin(async move {
                call(limiter, || admin.list_users(pool_id, t.as_deref())).await
            }));
        }
        if in_flight.is_empty() && fetch.is_none() {
            break;
        }
        tokio::select! {
            Some((index, user, result)) = in_flight.next(), if !in_flight.is_empty() => {
                results.push((index, user, result));
                progress.update(results.len() as u64, listing_done.then_some(listed), limiter.rate());
            }
            page = async { fetch.as_mut().expect("a page is being fetched").await }, if fetch.is_some() => {
                fetch = None;
                let page = page.map_err(CliError::admin)?;
                for summary in page.users {
                    if let Some(after) = &skipping {
                        if &summary.username == after {
                            skipping = None;
                        }
                        continue;
                    }
                    queue.push_back((listed, summary.username));
                    listed += 1;
                }
                match page.next {
                    Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                    _ => listing_done = true,
                }
            }
            () = &mut stop => {
                interrupted = true;
                break;
            }
        }
    }
    if let Some(user) = skipping {
        return Err(CliError::ResumeNotFound(user));
    }
    progress.finish(results.len() as u64);
    // Listing order; after an interruption only the part with no gap.
    results.sort_by_key(|(index, _, _)| *index);
    let complete = results
        .iter()
        .enumerate()
        .take_while(|(i, (index, _, _))| *i as u64 == *index)
        .count();
    results.truncate(complete);
    let resume_after = interrupted
        .then(|| results.last().map(|(_, user, _)| user.clone()))
        .flatten();
    Ok(Walked {
        results: results.into_iter().map(|(_, u, r)| (u, r)).collect(),
        resume_after,
        interrupted,
        took: started.elapsed(),
        requests: limiter.requests(),
    })
}

/// One user as the audit sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserAudit {
    pub username: String,
    pub status: String,
    pub enabled: bool,
    pub federated: bool,
    pub sms_enabled: bool,
    pub sms_preferred: bool,
    pub totp_enabled: bool,
    pub totp_preferred: bool,
    pub email_enabled: bool,
    pub email_preferred: bool,
    pub has_phone: bool,
    pub has_email: bool,
    /// Masked.
    pub phone: String,
    /// No factor enabled, and the policy gives this user one.
    pub policy_needs_factor: bool,
    /// With MFA `ON`, this user could not sign in: confirmed (or to be), no
    /// factor, no phone for SMS, no address for email MFA, TOTP not set up.
    pub blocked_if_on: bool,
    /// No factor, but a phone (SMS MFA) or, in a pool with email MFA, an
    /// address: a factor can be enabled for them.
    pub repairable: bool,
}

fn reset_required(status: &str) -> bool {
    matches!(status, "RESET_REQUIRED" | "FORCE_CHANGE_PASSWORD")
}

/// What the audit counts of one user.
pub fn classify(config: &MfaConfig, user: &User) -> UserAudit {
    let status = user.status.clone().unwrap_or_default();
    let federated = status == EXTERNAL_PROVIDER;
    let no_factor = user.mfa.enabled.is_empty();
    let has_phone = user.phone_number().is_some();
    let has_email = user
        .attribute("email")
        .is_some_and(|e| !e.trim().is_empty());
    let needs = !federated
        && no_factor
        && match decide_for_user(config, user) {
            MfaDecision::Apply { .. } => true,
            MfaDecision::Skip { reason } => matches!(
                reason,
                MfaSkipReason::SmsNeedsPhone
                    | MfaSkipReason::TotpSetUpInApp
                    | MfaSkipReason::EmailNeedsAddress
            ),
        };
    let reachable = (has_phone && config.methods.sms) || (has_email && config.methods.email);
    UserAudit {
        username: user.username.clone(),
        enabled: user.enabled,
        federated,
        sms_enabled: !federated && user.mfa.is_enabled(MfaFactor::Sms),
        sms_preferred: !federated && user.mfa.preferred == Some(MfaFactor::Sms),
        totp_enabled: !federated && user.mfa.is_enabled(MfaFactor::SoftwareToken),
        totp_preferred: !federated && user.mfa.preferred == Some(MfaFactor::SoftwareToken),
        email_enabled: !federated && user.mfa.is_enabled(MfaFactor::Email),
        email_preferred: !federated && user.mfa.preferred == Some(MfaFactor::Email),
        has_phone,
        has_email,
        phone: user.phone_number().map(mask_phone).unwrap_or_default(),
        policy_needs_factor: needs,
        blocked_if_on: !federated && no_factor && !reachable,
        repairable: !federated && no_factor && reachable,
        status,
    }
}

/// The audit's counts. The keys are a contract (`--output json`); the factor
/// counts cover every user who is not federated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditCounts {
    pub total: u64,
    pub sms_enabled: u64,
    pub sms_preferred: u64,
    pub totp_enabled: u64,
    pub totp_preferred: u64,
    pub email_enabled: u64,
    pub email_preferred: u64,
    /// Users whose only factor is email (no SMS, no TOTP).
    pub email_only: u64,
    pub no_factor_with_phone: u64,
    pub no_factor_without_phone: u64,
    pub federated: u64,
    pub unconfirmed: u64,
    pub reset_required: u64,
    pub disabled: u64,
    pub policy_needs_factor: u64,
    /// Confirmed, enabled users who could not sign in with MFA `ON`.
    pub blocked_if_on: u64,
    /// Users without a factor whom SMS MFA (or email MFA) can be enabled for.
    pub repairable: u64,
    /// Users whose `AdminGetUser` failed (after the retries).
    pub errors: u64,
}

impl AuditCounts {
    pub fn add(&mut self, u: &UserAudit) {
        self.total += 1;
        let flag = |b: bool| u64::from(b);
        if u.federated {
            self.federated += 1;
        } else {
            self.sms_enabled += flag(u.sms_enabled);
            self.sms_preferred += flag(u.sms_preferred);
            self.totp_enabled += flag(u.totp_enabled);
            self.totp_preferred += flag(u.totp_preferred);
            self.email_enabled += flag(u.email_enabled);
            self.email_preferred += flag(u.email_preferred);
            self.email_only += flag(u.email_enabled && !u.sms_enabled && !u.totp_enabled);
            let no_factor = !u.sms_enabled && !u.totp_enabled && !u.email_enabled;
            self.no_factor_with_phone += flag(no_factor && u.has_phone);
            self.no_factor_without_phone += flag(no_factor && !u.has_phone);
        }
        self.unconfirmed += flag(u.status == "UNCONFIRMED");
        self.reset_required += flag(reset_required(&u.status));
        self.disabled += flag(!u.enabled);
        self.policy_needs_factor += flag(u.policy_needs_factor);
        self.blocked_if_on += flag(u.blocked_if_on && locks_out(u));
        self.repairable += flag(u.repairable);
    }

    /// `key,value` lines (`--output csv`).
    pub fn csv(&self) -> String {
        let mut out = String::from("key,value\n");
        if let serde_json::Value::Object(map) = json!(self) {
            for (k, v) in map {
                let _ = writeln!(out, "{k},{v}");
            }
        }
        out
    }

    pub fn text(&self) -> String {
        let rows = [
            ("users", self.total),
            ("SMS enabled", self.sms_enabled),
            ("SMS preferred", self.sms_preferred),
            ("TOTP enabled", self.totp_enabled),
            ("TOTP preferred", self.totp_preferred),
            ("email enabled", self.email_enabled),
            ("email preferred", self.email_preferred),
            ("email the only factor", self.email_only),
            ("no factor, with phone", self.no_factor_with_phone),
            ("no factor, no phone", self.no_factor_without_phone),
            ("federated", self.federated),
            ("unconfirmed", self.unconfirmed),
            ("reset required", self.reset_required),
            ("disabled", self.disabled),
            ("policy needs a factor", self.policy_needs_factor),
            ("blocked if MFA were ON", self.blocked_if_on),
            ("repairable", self.repairable),
            ("errors", self.errors),
        ];
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<26}{v}");
        }
        out
    }
}

/// A user whom MFA `ON` would lock out counts only if they could sign in
/// today: confirmed (or bound to be: reset required) and enabled.
fn locks_out(u: &UserAudit) -> bool {
    u.blocked_if_on && u.enabled && (u.status == "CONFIRMED" || reset_required(&u.status))
}

/// The audit of a whole pool.
#[derive(Debug)]
pub struct Audit {
    pub counts: AuditCounts,
    pub users: Vec<UserAudit>,
    pub interrupted: bool,
    pub took: Duration,
    pub requests: u64,
}

/// Audits every user: one `AdminGetUser` each, under the limiter.
pub async fn audit<A: UserPoolAdmin, P: Progress>(
    admin: &A,
    config: &MfaConfig,
    pool_id: &str,
    options: &WalkOptions,
    progress: &P,
    stop: impl Future<Output = ()>,
) -> Result<Audit, CliError> {
    let limiter = RateLimiter::new(options.rate);
    let walked = walk(admin, pool_id, options, &limiter, progress, stop, |user| {
        let limiter = &limiter;
        async move { call(limiter, || admin.get_user(pool_id, &user)).await }
    })
    .await?;
    let mut counts = AuditCounts::default();
    let mut users = Vec::new();
    for (name, result) in walked.results {
        match result {
            Ok(user) => {
                let a = classify(config, &user);
                counts.add(&a);
                users.push(a);
            }
            // A user deleted during the walk is no longer in the pool.
            Err(AdminError::UserNotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(user = %auth_policy::redact::mask_username(&name), "not audited: {e}");
                counts.errors += 1;
            }
        }
    }
    Ok(Audit {
        counts,
        users,
        interrupted: walked.interrupted,
        took: walked.took,
        requests: walked.requests,
    })
}

/// One CSV line per user (`--users FILE`); the phone is masked.
pub fn users_csv(users: &[UserAudit]) -> String {
    let mut out = String::from(
        "username,status,enabled,federated,sms_enabled,sms_preferred,totp_enabled,totp_preferred,phone,policy_needs_factor,blocked_if_on,repairable,email_enabled,email_preferred\n",
    );
    for u in users {
        let quoted = format!("\"{}\"", u.username.replace('"', "\"\""));
        let _ = writeln!(
            out,
            "{quoted},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            u.status,
            u.enabled,
            u.federated,
            u.sms_enabled,
            u.sms_preferred,
            u.totp_enabled,
            u.totp_preferred,
            u.phone,
            u.policy_needs_factor,
            locks_out(u),
            u.repairable,
            u.email_enabled,
            u.email_preferred
        );
    }
    out
}

/// The audit as a report.
pub fn audit_report(a: &Audit) -> Report {
    let mut json = serde_json::to_value(&a.counts).unwrap_or_default();
    json["interrupted"] = json!(a.interrupted);
    let mut text = a.counts.text();
    if a.interrupted {
        text.push_str("(interrupted: the counts cover the users audited so far)\n");
    }
    Report {
        json,
        text,
        csv: None,
    }
}

/// `enforce`: the safe path from OPTIONAL to ON.
#[derive(Debug, Clone, Default)]
pub struct EnforceOptions {
    pub apply: bool,
    pub allow_lockout: u64,
}

/// Audits, lists who would be blocked and who can be repaired; with
/// `apply`: refuses, changing nothing, while any user could not be read (a
/// pool not fully read is never switched); repairs (SMS MFA for users with a
/// phone); re-reads the blocked and repairable users, since the audit of a
/// large pool takes an hour and users change meanwhile; refuses if one of
/// them could not be re-read, became blocked since, or while more confirmed,
/// enabled users than `allow_lockout` would be locked out; then sets the
/// pool to ON keeping its SMS and TOTP settings.
pub async fn enforce<A: UserPoolAdmin, P: Progress>(
    admin: &A,
    config: &MfaConfig,
    pool_id: &str,
    options: &WalkOptions,
    enforce: &EnforceOptions,
    progress: &P,
    stop: impl Future<Output = ()>,
) -> Result<Report, CliError> {
    let audited = audit(admin, config, pool_id, options, progress, stop).await?;
    if audited.interrupted {
        return Err(CliError::Interrupted(audit_report(&audited)));
    }
    let blocked: Vec<&UserAudit> = audited.users.iter().filter(|u| locks_out(u)).collect();
    let repairable: Vec<&UserAudit> = audited.users.iter().filter(|u| u.repairable).collect();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} users audited; {} would be blocked at their next sign-in with MFA ON (no factor, no phone, TOTP not set up); {} can be repaired (a phone: SMS MFA is enabled for them)",
        audited.counts.total,
        blocked.len(),
        repairable.len()
    );
    for u in &blocked {
        let _ = writeln!(text, "  blocked     {} ({})", u.username, u.status);
    }
    for u in &repairable {
        let _ = writeln!(text, "  repairable  {} ({})", u.username, u.phone);
    }
    let unread = audited.counts.errors;
    if unread > 0 {
        let _ = writeln!(
            text,
            "{} could not be read: --apply refuses until every user is read",
            users(unread)
        );
    }
    let mut json = json!({
        "audit": audited.counts,
        "blocked": blocked.iter().map(|u| &u.username).collect::<Vec<_>>(),
        "repairable": repairable.iter().map(|u| &u.username).collect::<Vec<_>>(),
        "applied": false,
    });
    if !enforce.apply {
        text.push_str(
            "dry run: nothing changed (run with --apply to repair and switch the pool to ON)\n",
        );
        return Ok(Report {
            json,
            text,
            csv: None,
        });
    }
    // A user the audit could not read may be one MFA ON would lock out.
    if unread > 0 {
        return Err(CliError::EnforceRefused {
            reason: format!(
                "{} could not be read (AdminGetUser failed after the retries); nothing was changed and the pool stays as it is. Fix the access (credentials, IAM: cognito-idp:AdminGetUser) or wait for the throttling to pass, then run `mfa-admin audit` until it reports 0 errors and `mfa-admin enforce --apply` again",
                users(unread)
            ),
            report: Box::new(Report {
                json,
                text,
                csv: None,
            }),
        });
    }
    // Repair first, under the same limits.
    let limiter = RateLimiter::new(options.rate);
    let mut repaired = 0u64;
    let mut failed = Vec::new();
    for u in &repairable {
        match call(&limiter, || {
            admin.set_mfa_preference(pool_id, &u.username, MfaSettings::SMS_PREFERRED)
        })
        .await
        {
            Ok(()) => repaired += 1,
            Err(e) => failed.push(format!("{}: {e}", u.username)),
        }
    }
    let _ = writeln!(text, "repaired: {repaired} (SMS MFA enabled and preferred)");
    json["repaired"] = json!(repaired);
    if !failed.is_empty() {
        return Err(CliError::EnforceRefused {
            reason: format!(
                "{} repairs failed ({}); the pool stays as it is: run enforce --apply again",
                failed.len(),
                failed.join("; ")
            ),
            report: Box::new(Report {
                json,
                text,
                csv: None,
            }),
        });
    }
    // The audit may be an hour old: decide on the users' state now.
    let fresh = recheck(
        admin,
        config,
        pool_id,
        &limiter,
        options.concurrency,
        &audited.users,
    )
    .await;
    let _ = writeln!(
        text,
        "re-read {} just before the switch: {} still blocked, {} fixed or gone since, {} became blocked, {} could not be read",
        users(fresh.reread),
        fresh.still_blocked,
        fresh.fixed,
        fresh.became_blocked.len(),
        fresh.unread
    );
    for name in &fresh.became_blocked {
        let _ = writeln!(text, "  now blocked {name}");
    }
    json["recheck"] = json!({
        "users": fresh.reread,
        "still_blocked": fresh.still_blocked,
        "fixed": fresh.fixed,
        "became_blocked": fresh.became_blocked,
        "errors": fresh.unread,
    });
    let refuse = |reason: String, json: serde_json::Value, text: String| {
        Err(CliError::EnforceRefused {
            reason,
            report: Box::new(Report {
                json,
                text,
                csv: None,
            }),
        })
    };
    if fresh.unread > 0 {
        return refuse(
            format!(
                "{} of the blocked and repairable users could not be re-read just before the switch; the pool stays as it is. Fix the access (credentials, IAM: cognito-idp:AdminGetUser) or wait for the throttling to pass, then run `mfa-admin enforce --apply` again",
                users(fresh.unread)
            ),
            json,
            text,
        );
    }
    if !fresh.became_blocked.is_empty() {
        return refuse(
            format!(
                "{} became blocked since the audit (no factor and no phone now; named in the output); the pool stays as it is. Give them a factor, then run `mfa-admin enforce` again to see the current state",
                users(fresh.became_blocked.len() as u64)
            ),
            json,
            text,
        );
    }
    let lockouts = fresh.still_blocked;
    if lockouts > enforce.allow_lockout {
        return Err(CliError::EnforceRefused {
            reason: format!(
                "{lockouts} confirmed, enabled users would be locked out (no factor and no phone); the pool stays as it is. Give them a factor (recover-lost-totp USER --phone, or TOTP set-up in the app), or accept it with --allow-lockout {lockouts}"
            ),
            report: Box::new(Report {
                json,
                text,
                csv: None,
            }),
        });
    }
    let current = admin.pool_mfa(pool_id).await.map_err(CliError::admin)?;
    admin
        .set_pool_mfa_on(pool_id, &current)
        .await
        .map_err(CliError::admin)?;
    let after = admin.pool_mfa(pool_id).await.map_err(CliError::admin)?;
    let _ = writeln!(
        text,
        "the pool's MFA is now {} (SMS {}, TOTP {}); {lockouts} users accepted as locked out",
        after.mode,
        if after.sms.is_some() {
            "kept"
        } else {
            "not configured"
        },
        if after.totp { "enabled" } else { "disabled" }
    );
    text.push_str(
        "Bring the stack in line: deploy with MfaConfiguration=ON (see docs/mfa-admin.md), or a later stack update sets the pool back.\n",
    );
    json["applied"] = json!(true);
    json["pool_mfa"] = json!(after);
    Ok(Report {
        json,
        text,
        csv: None,
    })
}

/// "1 user", "2 users".
fn users(n: u64) -> String {
    if n == 1 {
        "1 user".to_owned()
    } else {
        format!("{n} users")
    }
}

/// The blocked and repairable users as they are now.
#[derive(Debug, Default)]
struct Recheck {
    reread: u64,
    /// Blocked in the audit, and still: they count against `--allow-lockout`.
    still_blocked: u64,
    /// Blocked in the audit, and now not (a factor, a phone, disabled or
    /// deleted since).
    fixed: u64,
    /// Not counted as locked out in the audit (repairable, or disabled or
    /// unconfirmed), locked out now.
    became_blocked: Vec<String>,
    unread: u64,
}

/// Re-reads every user the audit found without a factor (blocked, whether
/// or not they could sign in today, and repairable) and classifies them
/// afresh.
async fn recheck<A: UserPoolAdmin>(
    admin: &A,
    config: &MfaConfig,
    pool_id: &str,
    limiter: &RateLimiter,
    concurrency: usize,
    audited: &[UserAudit],
) -> Recheck {
    let reads: Vec<(&UserAudit, Result<User, AdminError>)> =
        futures_util::stream::iter(audited.iter().filter(|u| u.blocked_if_on || u.repairable))
            .map(|u| async move {
                (
                    u,
                    call(limiter, || admin.get_user(pool_id, &u.username)).await,
                )
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut fresh = Recheck::default();
    for (before, read) in reads {
        fresh.reread += 1;
        let was_locked_out = locks_out(before);
        let locked_out = match read {
            Ok(user) => locks_out(&classify(config, &user)),
            Err(AdminError::UserNotFound { .. }) => false,
            Err(e) => {
                tracing::warn!(user = %auth_policy::redact::mask_username(&before.username), "not re-read: {e}");
                fresh.unread += 1;
                continue;
            }
        };
        match (was_locked_out, locked_out) {
            (true, true) => fresh.still_blocked += 1,
            (true, false) => fresh.fixed += 1,
            (false, true) => fresh.became_blocked.push(before.username.clone()),
            (false, false) => {}
        }
    }
    fresh.became_blocked.sort();
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_one_second_window_holds_more_than_the_rate() {
        let limiter = RateLimiter::new(20);
        let started = Instant::now();
        let mut at = Vec::new();
        for _ in 0..50 {
            limiter.acquire().await;
            at.push(started.elapsed());
        }
        for (i, t) in at.iter().enumerate() {
            let within = at[i..]
                .iter()
                .filter(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(within <= 20, "{within} requests in the second from {t:?}");
        }
        // And no slower than it must be: the 50th starts 49 slots after the first.
        assert_eq!(at[49] - at[0], Duration::from_millis(49 * 50));
    }

    #[tokio::test]
    async fn throttling_halves_the_rate() {
        let limiter = RateLimiter::new(10);
        limiter.slow_down();
        assert!((limiter.rate() - 5.0).abs() < 0.01);
        for _ in 0..10 {
            limiter.slow_down();
        }
        assert!((limiter.rate() - 1.0).abs() < 0.01);
    }
}
