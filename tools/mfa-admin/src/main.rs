//! `mfa-admin`: see the library docs. This file reads the command line, the
//! policy and the AWS configuration, and prints.

use std::io::Write;
use std::process::ExitCode;

use auth_policy::MfaConfig;
use clap::{Parser, ValueEnum};
use cognito_admin::CognitoAdmin;
use mfa_admin::{CliError, Command, Report};
use sdk_config::Budget;
use sdk_config::aws_config::Region;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Per-user MFA for a Cognito user pool: status, preferred method, lost
/// authenticator recovery, remembered devices, and re-applying the policy.
///
/// The policy comes from MFA_CONFIGURATION, MFA_METHODS and
/// MFA_DEFAULT_PREFERENCE, as for the Lambda functions; AWS credentials,
/// region and AWS_ENDPOINT_URL from the usual AWS configuration.
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
    /// text (default) or json (one JSON document on stdout).
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
    match output {
        Output::Json => writeln!(out, "{}", report.json)?,
        Output::Text => write!(out, "{}", report.text)?,
    }
    out.flush()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();

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

    let mut loader = sdk_config::loader(Budget::INTERACTIVE);
    if let Some(region) = &cli.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &cli.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return fail("no AWS region: pass --region or set AWS_REGION");
    }
    let admin = CognitoAdmin::new(aws_sdk_cognitoidentityprovider::Client::new(&sdk));

    match mfa_admin::execute(&admin, &config, pool_id, &cli.command).await {
        Ok(report) => match print(&report, cli.output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("writing the output: {e}")),
        },
        Err(error) => {
            if let CliError::Partial { report, .. } = &error {
                let _ = print(report, cli.output);
            }
            fail(&error)
        }
    }
}
