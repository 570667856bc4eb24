//! `replay [PATH...]`: see the crate docs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use replay::{Report, Sample};

/// Replays sample Cognito events through the real handlers, in-process, with
/// in-memory fakes for AWS; exits non-zero when an outcome differs from the
/// one stored beside the event (NAME.expected.json).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Event files or folders (searched recursively for *.json).
    #[arg(default_value = "events")]
    paths: Vec<PathBuf>,
    /// Print one JSON array of results instead of text.
    #[arg(long)]
    json: bool,
    /// Configuration that applies over every sample's own, e.g.
    /// --env MFA_CONFIGURATION=ON (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    lambda_host::init_logging_to_stderr();
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("replay: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let overrides: BTreeMap<String, String> = args.env.into_iter().collect();
    let files = replay::collect(&args.paths)?;
    let mut reports = Vec::with_capacity(files.len());
    for file in &files {
        let sample = Sample::load(file)?;
        reports.push(replay::replay(&sample, &overrides).await);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
    } else {
        for r in &reports {
            print_text(&mut out, r)?;
        }
        let failed = reports.iter().filter(|r| !r.passed()).count();
        let checked = reports.iter().filter(|r| r.expected.is_some()).count();
        writeln!(
            out,
            "\n{} events, {} with an expected outcome, {} differ",
            reports.len(),
            checked,
            failed
        )?;
    }
    out.flush().context("writing the results")?;
    Ok(reports.iter().all(Report::passed))
}

fn print_text(out: &mut impl Write, r: &Report) -> Result<()> {
    let mark = match (&r.expected, r.passed()) {
        (None, _) => "  ",
        (Some(_), true) => "ok",
        (Some(_), false) => "!!",
    };
    let outcome = match r.outcome {
        replay::expect::Outcome::Accepted => "accepted",
        replay::expect::Outcome::Refused => "refused",
    };
    writeln!(out, "{mark} {}  [{}]  {outcome}", r.file, r.trigger)?;
    if let Some(resp) = &r.response {
        writeln!(out, "     response: {}", serde_json::to_string(resp)?)?;
    }
    if let Some(err) = &r.error {
        writeln!(out, "     error: {}: {}", err.error_type, err.message)?;
    }
    if !r.effects.is_null() {
        writeln!(out, "     effects: {}", serde_json::to_string(&r.effects)?)?;
    }
    for d in &r.differences {
        writeln!(out, "     DIFFERS: {d}")?;
    }
    Ok(())
}
