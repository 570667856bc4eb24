//! `mfa-admin`: the operator's side of the guide's per-user MFA.
//!
//! The commands run against [`cognito_admin::UserPoolAdmin`], so the tests
//! drive them with the in-memory pool and moto, and the binary with the real
//! SDK. The policy is read from the same environment variables as the
//! functions, and every change is decided by `auth-policy` before a call:
//! what the policy forbids (NOMFA in an ON pool, SMS without a phone, a phone
//! that is not E.164) is refused with a message saying what to do, instead of
//! reaching Cognito (whose refusals moto does not always reproduce).
//!
//! Output goes to stdout (text or one JSON document); logs and the one-line
//! error go to stderr.

// A CLI's error travels once, to main: its size costs nothing worth boxing
// every report for.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::path::PathBuf;

pub mod app_config;
pub mod scale;

use auth_policy::admin::{AdminRefusal, decide_recover_lost_totp, decide_set_preference};
use auth_policy::redact::mask_username;
use auth_policy::{
    MfaConfig, MfaDecision, MfaPreference, MfaSkipReason, PREFERENCE_ATTRIBUTE, decide_mfa_with,
};
use cognito_admin::{AdminError, Device, EXTERNAL_PROVIDER, MfaFactor, User, UserPoolAdmin};
use phone_country::{CountryPolicy, CountryRefusal};
use serde::Serialize;
use serde_json::{Value, json};
use thiserror::Error;

/// The preference named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum PreferenceArg {
    Sms,
    Totp,
    Email,
    Nomfa,
}

impl From<PreferenceArg> for MfaPreference {
    fn from(p: PreferenceArg) -> Self {
        match p {
            PreferenceArg::Sms => MfaPreference::Sms,
            PreferenceArg::Totp => MfaPreference::Totp,
            PreferenceArg::Email => MfaPreference::Email,
            PreferenceArg::Nomfa => MfaPreference::NoMfa,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Print what an app needs to sign users in: Amplify v6's
    /// Amplify.configure() object and Amplify Gen 2's amplify_outputs.json
    /// (auth), from a deployed stack's outputs (--stack-name) or from
    /// --user-pool-id and --client-id, and the pool itself.
    AppConfig {
        /// The CloudFormation stack `sam deploy` made.
        #[arg(long, value_name = "NAME")]
        stack_name: Option<String>,
        /// The app client (default: the stack's UserPoolClientId output).
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// The account-change API (default: the stack's AccountChangeApiUrl output).
        #[arg(long, value_name = "URL")]
        account_change_url: Option<String>,
        /// both (default), amplify-v6 or amplify-outputs (redirect it to
        /// amplify_outputs.json).
        #[arg(long, value_enum, default_value_t = app_config::Format::Both)]
        format: app_config::Format,
    },
    /// MFA methods enabled, the preferred one, the phone and its verification.
    Status { user: String },
    /// Make SMS or TOTP the user's preferred MFA, or turn MFA off (NOMFA).
    SetPreference {
        user: String,
        #[arg(value_enum, ignore_case = true)]
        preference: PreferenceArg,
    },
    /// The user lost their authenticator: sign the user out everywhere
    /// first (a thief keeps no refresh token), then set a new phone_number
    /// (marked verified: the operator vouches for it), SMS enabled and
    /// preferred, TOTP disabled, custom:mfa_preference set to SMS, and
    /// forget their remembered devices (none skips the new factor). A phone
    /// the SMS country policy (SMS_ALLOWED_COUNTRIES, SMS_BLOCKED_COUNTRIES)
    /// refuses is refused before any change. The output lists the steps
    /// done, also when one fails.
    RecoverLostTotp {
        user: String,
        /// The new phone number in E.164, e.g. +14155550123.
        #[arg(long, value_name = "E164")]
        phone: String,
    },
    /// The user's remembered/tracked devices.
    Devices { user: String },
    /// Forget one of the user's devices (its next sign-in asks for MFA again).
    ForgetDevice { user: String, device_key: String },
    /// Re-run the post-confirmation decision for one user, or for every user
    /// (post-confirmation never fires for admin-created users). Users who
    /// already have an MFA factor enabled are left as they are.
    ApplyPolicy {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        user: Option<String>,
        /// Every user of the pool (paginated, concurrent under --rate).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        walk: WalkArgs,
        /// With --all: start after this user (the last one an interrupted
        /// run printed).
        #[arg(long, value_name = "USER", requires = "all")]
        resume_from: Option<String>,
    },
    /// Every user's MFA: counts by status and factor, and who the policy
    /// wants a factor for (one AdminGetUser per user, under --rate).
    Audit {
        #[command(flatten)]
        walk: WalkArgs,
        /// Also write one CSV line per user (phone masked) to FILE.
        #[arg(long, value_name = "FILE")]
        users: Option<PathBuf>,
    },
    /// The safe switch from OPTIONAL to ON: audit, list who would be blocked
    /// and who can be repaired; with --apply, repair, re-read the blocked and
    /// repairable users, then set the pool to ON (SetUserPoolMfaConfig, SMS
    /// and TOTP settings kept) unless users would be locked out. Refused
    /// while any user could not be read.
    Enforce {
        /// Only report (the default).
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Repair, then switch the pool to ON.
        #[arg(long)]
        apply: bool,
        /// How many confirmed, enabled users may be locked out.
        #[arg(long, value_name = "N", default_value_t = 0)]
        allow_lockout: u64,
        #[command(flatten)]
        walk: WalkArgs,
    },
}

/// The pace of a pool-scale command.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WalkArgs {
    /// Cognito requests per second, pages included (never exceeded over any
    /// one-second window; halved for the rest of the run when throttled).
    #[arg(long, value_name = "N", default_value_t = scale::DEFAULT_RATE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rate: u32,
    /// Users handled at once.
    #[arg(long, value_name = "N", default_value_t = scale::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

impl WalkArgs {
    fn options(&self, resume_from: Option<String>) -> scale::WalkOptions {
        scale::WalkOptions {
            rate: self.rate,
            concurrency: usize::from(self.concurrency),
            resume_from,
        }
    }
}

impl Command {
    /// Whether the command decides by the MFA policy (`MFA_*` variables):
    /// the others never read it, so a bad policy variable does not stop them.
    pub fn uses_policy(&self) -> bool {
        matches!(
            self,
            Self::SetPreference { .. }
                | Self::RecoverLostTotp { .. }
                | Self::ApplyPolicy { .. }
                | Self::Audit { .. }
                | Self::Enforce { .. }
        )
    }

    /// Whether the command sets a phone for SMS, and so must obey the SMS
    /// country policy (`SMS_ALLOWED_COUNTRIES`, `SMS_BLOCKED_COUNTRIES`).
    pub fn uses_country_policy(&self) -> bool {
        matches!(self, Self::RecoverLostTotp { .. })
    }
}

/// The steps of `recover-lost-totp`, in order, as its output names them.
/// The sign-out comes first: whoever holds the lost device keeps no session
/// while the factor changes.
pub const RECOVERY_STEPS: [&str; 5] = [
    "signed out everywhere (every refresh token revoked)",
    "new phone_number set (verified)",
    "SMS MFA enabled and preferred, TOTP disabled",
    "custom:mfa_preference set to SMS",
    "remembered devices forgotten",
];

/// What a command printed: JSON for `--output json`, text otherwise (CSV
/// for `audit --output csv`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub json: Value,
    pub text: String,
    pub csv: Option<String>,
}

/// Why a command failed; one line that says what to do.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Refused(#[from] AdminRefusal),
    #[error("{error}{hint}")]
    Admin { error: AdminError, hint: String },
    /// A multi-step operation stopped part-way: what was done, what failed,
    /// what is left, so the operator can finish it.
    #[error(
        "stopped at \"{failed}\": {error}. Done: {}. Still to do: {}",
        list_or_none(done),
        list_or_none(remaining)
    )]
    Incomplete {
        done: Vec<String>,
        failed: String,
        remaining: Vec<String>,
        error: Box<CliError>,
    },
    #[error("{0}")]
    Output(String),
    #[error("--resume-from {0:?}: that user is not in the pool's listing")]
    ResumeNotFound(String),
    /// Ctrl-C: the report holds what was done so far.
    #[error("interrupted: the output covers the users done so far")]
    Interrupted(Report),
    /// The SMS country policy refuses the phone (masked); nothing changed.
    #[error(
        "phone number {masked} is refused by the SMS country policy: {reason}; nothing was changed. Give a number in a country the pool sends SMS to, or change {allowed} / {blocked}",
        allowed = phone_country::ALLOWED_VAR,
        blocked = phone_country::BLOCKED_VAR
    )]
    CountryRefused { masked: String, reason: String },
    /// `enforce --apply` did not switch the pool.
    #[error("{reason}")]
    EnforceRefused { reason: String, report: Box<Report> },
    #[error(
        "{failed} of {total} users could not be given their MFA (see above); run apply-policy again for them once the cause is fixed"
    )]
    Partial {
        failed: usize,
        total: usize,
        /// Every user's result, to print before the error line.
        report: Report,
    },
}

fn list_or_none(steps: &[String]) -> String {
    if steps.is_empty() {
        "nothing".to_owned()
    } else {
        steps.join("; ")
    }
}

impl CliError {
    pub(crate) fn admin(error: AdminError) -> Self {
        let hint = match &error {
            AdminError::UserNotFound { .. } => ": check the username (or the user's sub)",
            AdminError::Unreachable { .. } => {
                ": check --endpoint-url / AWS_ENDPOINT_URL, --region and the network"
            }
            AdminError::Request { .. } => {
                ": check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID…) and the region"
            }
            AdminError::NotImplemented { .. } => {
                ": the command works against Amazon Cognito itself"
            }
            AdminError::Service { code, .. } => match code.as_str() {
                "AccessDeniedException"
                | "NotAuthorizedException"
                | "UnrecognizedClientException" => {
                    ": the credentials may not call this on the pool: check the IAM policy (cognito-idp:Admin* on the user pool) and the account"
                }
                "TooManyRequestsException" | "ThrottlingException" | "LimitExceededException" => {
                    ": Cognito is throttling the calls: wait a moment and run it again"
                }
                "ExpiredTokenException" => ": the session credentials expired: renew them",
                _ => "",
            },
            _ => "",
        };
        Self::Admin {
            error,
            hint: hint.to_owned(),
        }
    }

    /// Cognito's `InvalidParameterException`, in the words of what was asked.
    fn invalid(error: AdminError, asked: MfaPreference) -> Self {
        if !matches!(error, AdminError::InvalidParameter { .. }) {
            return Self::admin(error);
        }
        let hint = match asked {
            MfaPreference::Totp => {
                ": TOTP was never associated for this user; the user must first set up an authenticator in the app (AssociateSoftwareToken + VerifySoftwareToken), or use `set-preference USER SMS`"
            }
            MfaPreference::Sms => {
                ": Cognito cannot use this user's phone for SMS MFA; set a valid one with `recover-lost-totp USER --phone +E164`"
            }
            MfaPreference::Email => {
                ": Cognito cannot use email MFA for this user: the user needs an email address, and the pool email MFA (EMAIL_OTP in EnabledMfas, Essentials tier, SES sending)"
            }
            MfaPreference::NoMfa => ": the pool may require MFA (MFA ON); check MFA_CONFIGURATION",
        };
        Self::Admin {
            error,
            hint: hint.to_owned(),
        }
    }

    /// The process exit code: 1 for every failure (2 is clap's usage error).
    pub fn exit_code(&self) -> u8 {
        1
    }
}

fn factors(list: &[MfaFactor]) -> Value {
    json!(list.iter().map(|f| f.as_str()).collect::<Vec<_>>())
}

fn status_json(user: &User) -> Value {
    json!({
        "username": user.username,
        "status": user.status,
        "enabled": factors(&user.mfa.enabled),
        "preferred": user.mfa.preferred.map(MfaFactor::as_str),
        "phone_number": user.phone_number(),
        "phone_number_verified": user.phone_number_verified(),
        "mfa_preference": user.attribute(PREFERENCE_ATTRIBUTE),
    })
}

fn status_text(user: &User) -> String {
    let none = "none".to_owned();
    let enabled = if user.mfa.enabled.is_empty() {
        none.clone()
    } else {
        user.mfa
            .enabled
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let rows = [
        ("username", user.username.clone()),
        (
            "status",
            user.status.clone().unwrap_or_else(|| none.clone()),
        ),
        ("enabled", enabled),
        (
            "preferred",
            user.mfa
                .preferred
                .map(|f| f.as_str().to_owned())
                .unwrap_or_else(|| none.clone()),
        ),
        (
            "phone_number",
            user.phone_number()
                .map(str::to_owned)
                .unwrap_or_else(|| none.clone()),
        ),
        (
            "phone_number_verified",
            user.phone_number_verified().to_string(),
        ),
        (
            "mfa_preference",
            user.attribute(PREFERENCE_ATTRIBUTE)
                .map(str::to_owned)
                .unwrap_or_else(|| "not set".to_owned()),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<22}{v}");
    }
    out
}

fn status_report(user: &User) -> Report {
    Report {
        json: status_json(user),
        text: status_text(user),
        csv: None,
    }
}

/// Runs one command against `pool_id`, with no SMS country rules, no
/// progress output and no way to stop it early (tests).
pub async fn execute<A: UserPoolAdmin>(
    admin: &A,
    config: &MfaConfig,
    pool_id: &str,
    command: &Command,
) -> Result<Report, CliError> {
    execute_with(
        admin,
        config,
        &CountryPolicy::default(),
        pool_id,
        command,
        &scale::Quiet,
        std::future::pending(),
    )
    .await
}

/// Runs one command; `countries` is the pool's SMS country policy (what
/// `recover-lost-totp` may set as the phone); the pool-scale commands report
/// to `progress` and stop when `stop` resolves (Ctrl-C).
pub async fn execute_with<A: UserPoolAdmin, P: scale::Progress>(
    admin: &A,
    config: &MfaConfig,
    countries: &CountryPolicy,
    pool_id: &str,
    command: &Command,
    progress: &P,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Report, CliError> {
    match command {
        // It reads the stack and the pool with clients of its own (main).
        Command::AppConfig { .. } => Err(CliError::Output(
            "app-config is run by the mfa-admin binary, not through execute_with".to_owned(),
        )),
        Command::Audit { walk, users } => {
            let audited =
                scale::audit(admin, config, pool_id, &walk.options(None), progress, stop).await?;
            if let Some(path) = users {
                std::fs::write(path, scale::users_csv(&audited.users))
                    .map_err(|e| CliError::Output(format!("writing {}: {e}", path.display())))?;
            }
            let mut report = scale::audit_report(&audited);
            report.csv = Some(audited.counts.csv());
            tracing::info!(
                users = audited.counts.total,
                requests = audited.requests,
                seconds = format!("{:.1}", audited.took.as_secs_f64()),
                "audit done"
            );
            if audited.interrupted {
                return Err(CliError::Interrupted(report));
            }
            Ok(report)
        }
        Command::Enforce {
            apply,
            allow_lockout,
            walk,
            ..
        } => {
            let options = scale::EnforceOptions {
                apply: *apply,
                allow_lockout: *allow_lockout,
            };
            scale::enforce(
                admin,
                config,
                pool_id,
                &walk.options(None),
                &options,
                progress,
                stop,
            )
            .await
        }
        Command::Status { user } => {
            let u = admin
                .get_user(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            Ok(status_report(&u))
        }
        Command::SetPreference { user, preference } => {
            let preference = MfaPreference::from(*preference);
            let u = admin
                .get_user(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            let settings = decide_set_preference(config, preference, u.phone_number().is_some())?;
            admin
                .set_mfa_preference(pool_id, user, settings)
                .await
                .map_err(|e| CliError::invalid(e, preference))?;
            tracing::info!(user = %mask_username(user), preference = preference.as_str(), settings = %settings, "MFA preference set");
            let after = admin
                .get_user(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            Ok(status_report(&after))
        }
        Command::RecoverLostTotp { user, phone } => {
            let recovery = decide_recover_lost_totp(config, phone)?;
            // Before any call: a phone the pool may not text is refused.
            check_sms_country(countries, phone.trim())?;
            // The user must exist before anything changes.
            admin
                .get_user(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            let mut done: Vec<String> = Vec::new();
            let stop = |done: &[String], step: &str, error: CliError| CliError::Incomplete {
                done: done.to_vec(),
                failed: step.to_owned(),
                remaining: RECOVERY_STEPS
                    .iter()
                    .skip_while(|s| **s != step)
                    .map(|s| (*s).to_owned())
                    .collect(),
                error: Box::new(error),
            };
            // First, whoever holds the lost device (or a copied secret)
            // keeps no session: every refresh token is revoked before the
            // factor changes, so no stolen session sees or races the change.
            if let Err(e) = admin.global_sign_out(pool_id, user).await {
                return Err(stop(&done, RECOVERY_STEPS[0], CliError::admin(e)));
            }
            done.push(RECOVERY_STEPS[0].to_owned());
            if let Err(e) = admin
                .update_attributes(pool_id, user, &recovery.attributes)
                .await
            {
                return Err(stop(&done, RECOVERY_STEPS[1], CliError::admin(e)));
            }
            done.push(RECOVERY_STEPS[1].to_owned());
            if let Err(e) = admin
                .set_mfa_preference(pool_id, user, recovery.settings)
                .await
            {
                return Err(stop(
                    &done,
                    RECOVERY_STEPS[2],
                    CliError::invalid(e, MfaPreference::Sms),
                ));
            }
            done.push(RECOVERY_STEPS[2].to_owned());
            tracing::info!(user = %mask_username(user), phone = %auth_policy::redact::mask_phone(phone), "signed out everywhere and switched to SMS MFA after a lost authenticator");
            // The stated preference follows the factor, so a later
            // apply-policy (or the app) does not steer the user back to TOTP.
            let preference = [(
                PREFERENCE_ATTRIBUTE.to_owned(),
                MfaPreference::Sms.as_str().to_owned(),
            )];
            if let Err(e) = admin.update_attributes(pool_id, user, &preference).await {
                return Err(stop(&done, RECOVERY_STEPS[3], CliError::admin(e)));
            }
            done.push(RECOVERY_STEPS[3].to_owned());
            // No remembered device skips the new factor.
            let devices = match admin.list_devices(pool_id, user).await {
                Ok(d) => d,
                Err(e) => return Err(stop(&done, RECOVERY_STEPS[4], CliError::admin(e))),
            };
            for device in &devices {
                match admin.forget_device(pool_id, user, &device.key).await {
                    // Already gone: what the step wants.
                    Ok(()) | Err(AdminError::DeviceNotFound { .. }) => {}
                    Err(e) => return Err(stop(&done, RECOVERY_STEPS[4], CliError::admin(e))),
                }
            }
            done.push(format!(
                "{} ({} forgotten)",
                RECOVERY_STEPS[4],
                devices.len()
            ));
            tracing::info!(user = %mask_username(user), devices = devices.len(), "remembered devices forgotten");
            let after = admin
                .get_user(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            let mut report = status_report(&after);
            report.json["recovery_steps_done"] = json!(done);
            report.text.push_str("\nrecovery steps done:\n");
            for step in &done {
                let _ = writeln!(report.text, "  done  {step}");
            }
            Ok(report)
        }
        Command::Devices { user } => {
            let devices = admin
                .list_devices(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            Ok(devices_report(user, &devices))
        }
        Command::ForgetDevice { user, device_key } => {
            admin
                .forget_device(pool_id, user, device_key)
                .await
                .map_err(CliError::admin)?;
            Ok(Report {
                json: json!({"username": user, "forgotten": device_key}),
                text: format!("forgot device {device_key} of {user}\n"),
                csv: None,
            })
        }
        Command::ApplyPolicy {
            user: Some(user), ..
        } => {
            let u = admin
                .get_user(pool_id, user)
                .await
                .map_err(CliError::admin)?;
            let outcome = apply_policy(admin, config, pool_id, &u).await;
            let report = results_report(std::slice::from_ref(&outcome));
            let asked = outcome.preference_or_sms();
            match outcome.error {
                Some(error) => Err(CliError::invalid(error, asked)),
                None => Ok(report),
            }
        }
        Command::ApplyPolicy {
            user: None,
            walk,
            resume_from,
            ..
        } => {
            apply_policy_all(
                admin,
                config,
                pool_id,
                &walk.options(resume_from.clone()),
                progress,
                stop,
            )
            .await
        }
    }
}

/// Refuses a phone the SMS country policy does not let the pool text.
fn check_sms_country(countries: &CountryPolicy, phone: &str) -> Result<(), CliError> {
    let verdict = countries.check(phone);
    let Some(refusal) = verdict.refusal else {
        return Ok(());
    };
    let country = verdict
        .country
        .map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    let reason = match refusal {
        CountryRefusal::Blocked => {
            format!(
                "its country, {country}, is in {}",
                phone_country::BLOCKED_VAR
            )
        }
        CountryRefusal::NotAllowed => format!(
            "its country, {country}, is not in {}",
            phone_country::ALLOWED_VAR
        ),
        CountryRefusal::NoCountry => format!(
            "the numbering plan gives it no country and {} is set",
            phone_country::ALLOWED_VAR
        ),
    };
    tracing::info!(phone = %auth_policy::redact::mask_phone(phone), reason = refusal.as_str(), country = %country, "recovery refused by the SMS country policy");
    Err(CliError::CountryRefused {
        masked: auth_policy::redact::mask_phone(phone),
        reason,
    })
}

fn devices_report(user: &str, devices: &[Device]) -> Report {
    let mut text = String::new();
    if devices.is_empty() {
        let _ = writeln!(text, "{user} has no tracked devices");
    } else {
        let _ = writeln!(
            text,
            "{:<46} {:<14} {:<22} NAME",
            "DEVICE_KEY", "REMEMBERED", "LAST_USED"
        );
        for d in devices {
            let remembered = match d.remembered {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            };
            let _ = writeln!(
                text,
                "{:<46} {:<14} {:<22} {}",
                d.key,
                remembered,
                d.last_authenticated.as_deref().unwrap_or("never"),
                d.name.as_deref().unwrap_or("")
            );
        }
    }
    Report {
        json: json!({"username": user, "devices": devices}),
        text,
        csv: None,
    }
}

/// What apply-policy did for one user.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyOutcome {
    pub username: String,
    /// `applied`, `skipped`, `kept` (already has MFA) or `failed`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<MfaPreference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip)]
    pub error: Option<AdminError>,
    #[serde(rename = "error", skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl PolicyOutcome {
    fn preference_or_sms(&self) -> MfaPreference {
        self.preference.unwrap_or(MfaPreference::Sms)
    }
}

/// The post-confirmation decision for an existing user. Federated users
/// are skipped as in the trigger; users who already have a factor enabled
/// are kept (a later choice by the user or an operator is not undone).
pub fn decide_for_user(config: &MfaConfig, user: &User) -> MfaDecision {
    if user.status.as_deref() == Some(EXTERNAL_PROVIDER) {
        return MfaDecision::Skip {
            reason: MfaSkipReason::ExternalProvider,
        };
    }
    decide_mfa_with(
        config,
        user.attribute(PREFERENCE_ATTRIBUTE),
        user.phone_number().is_some(),
        user.attribute("email")
            .is_some_and(|e| !e.trim().is_empty()),
    )
}

async fn apply_policy<A: UserPoolAdmin>(
    admin: &A,
    config: &MfaConfig,
    pool_id: &str,
    user: &User,
) -> PolicyOutcome {
    let mut outcome = PolicyOutcome {
        username: user.username.clone(),
        action: "skipped",
        preference: None,
        settings: None,
        reason: None,
        error: None,
        error_message: None,
    };
    match decide_for_user(config, user) {
        MfaDecision::Skip { reason } => {
            outcome.reason = Some(reason.as_str());
            if reason.is_warning() {
                tracing::warn!(user = %mask_username(&user.username), reason = reason.as_str(), "policy not applied");
            }
        }
        MfaDecision::Apply { preference, .. } if !user.mfa.enabled.is_empty() => {
            outcome.action = "kept";
            outcome.preference = Some(preference);
            outcome.reason = Some("already_has_mfa");
        }
        MfaDecision::Apply {
            preference,
            settings,
        } => {
            outcome.preference = Some(preference);
            outcome.settings = Some(settings.to_string());
            match admin
                .set_mfa_preference(pool_id, &user.username, settings)
                .await
            {
                Ok(()) => {
                    outcome.action = "applied";
                    tracing::info!(user = %mask_username(&user.username), preference = preference.as_str(), "policy applied");
                }
                Err(error) => {
                    outcome.action = "failed";
                    outcome.error_message =
                        Some(CliError::invalid(error.clone(), preference).to_string());
                    outcome.error = Some(error);
                }
            }
        }
    }
    outcome
}

fn results_report(results: &[PolicyOutcome]) -> Report {
    let mut text = String::new();
    for r in results {
        let _ = write!(text, "{}: {}", r.username, r.action);
        if let Some(p) = r.preference {
            let _ = write!(text, " {p}");
        }
        if let Some(s) = &r.settings {
            let _ = write!(text, " ({s})");
        }
        if let Some(reason) = r.reason {
            let _ = write!(text, " [{reason}]");
        }
        if let Some(e) = &r.error_message {
            let _ = write!(text, ": {e}");
        }
        text.push('\n');
    }
    Report {
        json: json!({ "results": results }),
        text,
        csv: None,
    }
}

async fn apply_policy_all<A: UserPoolAdmin, P: scale::Progress>(
    admin: &A,
    config: &MfaConfig,
    pool_id: &str,
    options: &scale::WalkOptions,
    progress: &P,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Report, CliError> {
    let limiter = scale::RateLimiter::new(options.rate);
    let walked = scale::walk(admin, pool_id, options, &limiter, progress, stop, |user| {
        let limiter = &limiter;
        async move {
            match scale::call(limiter, || admin.get_user(pool_id, &user)).await {
                Ok(u) => {
                    let paced = Paced { admin, limiter };
                    apply_policy(&paced, config, pool_id, &u).await
                }
                Err(error) => PolicyOutcome {
                    username: user.clone(),
                    action: "failed",
                    preference: None,
                    settings: None,
                    reason: None,
                    error_message: Some(CliError::admin(error.clone()).to_string()),
                    error: Some(error),
                },
            }
        }
    })
    .await?;
    let results: Vec<PolicyOutcome> = walked.results.into_iter().map(|(_, r)| r).collect();
    let failed = results.iter().filter(|r| r.action == "failed").count();
    let mut report = results_report(&results);
    let count = |a: &str| results.iter().filter(|r| r.action == a).count();
    let _ = writeln!(
        report.text,
        "{} users: {} applied, {} kept, {} skipped, {} failed ({:.1} s, {} requests)",
        results.len(),
        count("applied"),
        count("kept"),
        count("skipped"),
        failed,
        walked.took.as_secs_f64(),
        walked.requests
    );
    if walked.interrupted {
        if let Some(last) = &walked.resume_after {
            let _ = writeln!(
                report.text,
                "interrupted: continue with `apply-policy --all --resume-from {last}`"
            );
            report.json["resume_from"] = json!(last);
        }
        return Err(CliError::Interrupted(report));
    }
    if failed > 0 {
        // The per-user results are still printed, before the error line.
        return Err(CliError::Partial {
            failed,
            total: results.len(),
            report,
        });
    }
    Ok(report)
}

/// The admin calls of one user's policy, each waiting its slot of the walk's
/// rate limit.
struct Paced<'a, A> {
    admin: &'a A,
    limiter: &'a scale::RateLimiter,
}

impl<A: UserPoolAdmin> UserPoolAdmin for Paced<'_, A> {
    async fn get_user(&self, pool_id: &str, username: &str) -> Result<User, AdminError> {
        scale::call(self.limiter, || self.admin.get_user(pool_id, username)).await
    }
    async fn set_mfa_preference(
        &self,
        pool_id: &str,
        username: &str,
        settings: auth_policy::MfaSettings,
    ) -> Result<(), AdminError> {
        scale::call(self.limiter, || {
            self.admin.set_mfa_preference(pool_id, username, settings)
        })
        .await
    }
    async fn update_attributes(
        &self,
        pool_id: &str,
        username: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AdminError> {
        scale::call(self.limiter, || {
            self.admin.update_attributes(pool_id, username, attributes)
        })
        .await
    }
    async fn list_users(
        &self,
        pool_id: &str,
        token: Option<&str>,
    ) -> Result<cognito_admin::UserPage, AdminError> {
        scale::call(self.limiter, || self.admin.list_users(pool_id, token)).await
    }
    async fn list_devices(&self, pool_id: &str, username: &str) -> Result<Vec<Device>, AdminError> {
        scale::call(self.limiter, || self.admin.list_devices(pool_id, username)).await
    }
    async fn pool_mfa(&self, pool_id: &str) -> Result<cognito_admin::PoolMfa, AdminError> {
        scale::call(self.limiter, || self.admin.pool_mfa(pool_id)).await
    }
    async fn set_pool_mfa_on(
        &self,
        pool_id: &str,
        current: &cognito_admin::PoolMfa,
    ) -> Result<(), AdminError> {
        scale::call(self.limiter, || {
            self.admin.set_pool_mfa_on(pool_id, current)
        })
        .await
    }
    async fn global_sign_out(&self, pool_id: &str, username: &str) -> Result<(), AdminError> {
        scale::call(self.limiter, || {
            self.admin.global_sign_out(pool_id, username)
        })
        .await
    }
    async fn forget_device(
        &self,
        pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<(), AdminError> {
        scale::call(self.limiter, || {
            self.admin.forget_device(pool_id, username, device_key)
        })
        .await
    }
}
