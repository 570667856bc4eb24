//! `mfa-admin`: see the library docs. This file reads the command line, the
//! policy and the AWS configuration, and prints.

use std::io::Write;
use std::process::ExitCode;

use auth_policy::MfaConfig;
use clap::{Parser, ValueEnum};
use cognito_admin::CognitoAdmin;
use mfa_admin::{CliError, Command, Report};
use phone_country::CountryPolicy;
use sdk_config::Budget;
use sdk_config::aws_config::Region;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    /// `audit` only: key,value lines.
    Csv,
}

/// Per-user MFA for a Cognito user pool: status, preferred method, lost
/// authenticator recovery, remembered devices, and re-applying the policy.
///
/// The policy comes from MFA_CONFIGURATION, MFA_METHODS and
/// MFA_DEFAULT_PREFERENCE, and the SMS country policy from
/// SMS_ALLOWED_COUNTRIES and SMS_BLOCKED_COUNTRIES, as for the Lambda
/// functions; AWS credentials, region and AWS_ENDPOINT_URL from the usual
/// AWS configuration.
#[derive(Debug, Parser)]
#[command(name = "mfa-admin", version)]
struct Cli {
    /// The user pool, e.g. eu-west-1_Ab12Cd34E (required).
    #[arg(long, global = true, value_name = "ID")]
    user_pool_id: Option<String>,
    /// The AWS region (default: from the AWS configuration).
    #[arg(long, global = true, value_name = "R")]
    region: Option<String>,
    /// Another endpoint for Cognito, e.g. a local moto server.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// text (default), json (one JSON document on stdout) or csv (audit).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

/// Logs to stderr with the functions' filter (capped SDK targets), and
/// aws-config quieter still: its region-chain warnings (IMDS unreachable)
/// are multi-line dumps, and a missing region gets its own error line.
fn init_logging() {
    let mut filter = lambda_host::filter_for(lambda_host::requested_level());
    if let Ok(directive) = "aws_config=error".parse() {
        filter = filter.add_directive(directive);
    }
    let _ = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mfa-admin: error: {message}");
    ExitCode::from(1)
}

fn print(report: &Report, output: Output) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match (output, &report.csv) {
        (Output::Json, _) => writeln!(out, "{}", report.json)?,
        (Output::Csv, Some(csv)) => write!(out, "{csv}")?,
        (Output::Text | Output::Csv, _) => write!(out, "{}", report.text)?,
    }
    out.flush()
}

/// Progress of a pool-scale command on stderr: a bar on a terminal, a plain
/// line every few seconds otherwise.
enum StderrProgress {
    Bar(indicatif::ProgressBar),
    Lines(std::sync::Mutex<std::time::Instant>),
}

impl StderrProgress {
    fn new() -> Self {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos}/{len} users [{bar:30}] {per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Self::Bar(bar)
        } else {
            Self::Lines(std::sync::Mutex::new(std::time::Instant::now()))
        }
    }
}

impl mfa_admin::scale::Progress for StderrProgress {
    fn update(&self, done: u64, total: Option<u64>, rate: f64) {
        match self {
            Self::Bar(bar) => {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
                bar.set_message(format!("(limit {rate:.0} req/s)"));
            }
            Self::Lines(last) => {
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= std::time::Duration::from_secs(5) {
                    *last = std::time::Instant::now();
                    let total = total.map_or_else(|| "?".to_owned(), |t| t.to_string());
                    eprintln!("mfa-admin: {done}/{total} users done (limit {rate:.0} requests/s)");
                }
            }
        }
    }

    fn finish(&self, done: u64) {
        match self {
            Self::Bar(bar) => bar.finish_and_clear(),
            Self::Lines(_) => eprintln!("mfa-admin: {done} users done"),
        }
    }
}

/// The SDK configuration of `--region` and `--endpoint-url` over the usual
/// AWS configuration; a missing region is the error.
async fn sdk_of(cli: &Cli) -> Result<sdk_config::aws_config::SdkConfig, ExitCode> {
    let mut loader = sdk_config::for_tool(Budget::INTERACTIVE);
    if let Some(region) = &cli.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &cli.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(fail("no AWS region: pass --region or set AWS_REGION"));
    }
    Ok(sdk)
}

/// `app-config`: needs no policy and, with --stack-name, no pool id.
async fn app_config(
    cli: &Cli,
    stack_name: &Option<String>,
    client_id: &Option<String>,
    account_change_url: &Option<String>,
    format: mfa_admin::app_config::Format,
) -> ExitCode {
    let sdk = match sdk_of(cli).await {
        Ok(sdk) => sdk,
        Err(code) => return code,
    };
    let source = mfa_admin::app_config::Source {
        stack_name: stack_name.clone(),
        user_pool_id: cli.user_pool_id.clone(),
        client_id: client_id.clone(),
        account_change_url: account_change_url.clone(),
    };
    match mfa_admin::app_config::gather(&sdk, &source).await {
        Ok(facts) => {
            let json = mfa_admin::app_config::render(&facts, format);
            match serde_json::to_string_pretty(&json) {
                Ok(text) => match writeln!(std::io::stdout().lock(), "{text}") {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(format!("writing the output: {e}")),
                },
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();

    if let mfa_admin::Command::AppConfig {
        stack_name,
        client_id,
        account_change_url,
        format,
    } = &cli.command
    {
        return app_config(&cli, stack_name, client_id, account_change_url, *format).await;
    }
    let Some(pool_id) = cli
        .user_pool_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        return fail("--user-pool-id is required (e.g. --user-pool-id eu-west-1_Ab12Cd34E)");
    };
    if let Some(url) = &cli.endpoint_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return fail(format!(
            "--endpoint-url {url:?} is not a URL: write it like http://127.0.0.1:5000"
        ));
    }
    let config = if cli.command.uses_policy() {
        match MfaConfig::from_source(&lambda_host::env_var) {
            Ok(c) => c,
            Err(e) => return fail(format!("{e} (the policy is read from the environment)")),
        }
    } else {
        MfaConfig::default()
    };
    let countries = if cli.command.uses_country_policy() {
        match CountryPolicy::from_source(&lambda_host::env_var) {
            Ok(c) => c,
            Err(e) => {
                return fail(format!(
                    "{e} (the SMS country policy is read from the environment)"
                ));
            }
        }
    } else {
        CountryPolicy::default()
    };

    let sdk = match sdk_of(&cli).await {
        Ok(sdk) => sdk,
        Err(code) => return code,
    };
    let admin = CognitoAdmin::new(aws_sdk_cognitoidentityprovider::Client::new(&sdk));

    if cli.output == Output::Csv && !matches!(cli.command, mfa_admin::Command::Audit { .. }) {
        return fail("--output csv is for audit; use text or json");
    }
    let progress = StderrProgress::new();
    let stop = async {
        // Ctrl-C ends the walk; what was counted so far is printed.
        let _ = tokio::signal::ctrl_c().await;
    };
    match mfa_admin::execute_with(
        &admin,
        &config,
        &countries,
        pool_id,
        &cli.command,
        &progress,
        stop,
    )
    .await
    {
        Ok(report) => match print(&report, cli.output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("writing the output: {e}")),
        },
        Err(error) => {
            match &error {
                CliError::Partial { report, .. } | CliError::Interrupted(report) => {
                    let _ = print(report, cli.output);
                }
                CliError::EnforceRefused { report, .. } => {
                    let _ = print(report, cli.output);
                }
                _ => {}
            }
            fail(&error)
        }
    }
}
