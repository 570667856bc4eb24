//! `replay`: runs sample events through the same handler code as the Lambda
//! binaries, in-process, with in-memory fakes in place of AWS, and compares
//! each outcome with the one stored beside the event.
//!
//! A sample is `NAME.json` (the event, exactly as Cognito sends it) with an
//! optional `NAME.expected.json` beside it (see [`expect::Expected`]).

pub mod dispatch;
pub mod expect;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::expect::{Expected, Failure, Outcome, Run};

const EXPECTED_SUFFIX: &str = ".expected.json";

/// The event files under `paths` (files as given, folders searched
/// recursively for `*.json` that are not `*.expected.json`), sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out)?;
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", path.display());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_event_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_event_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".json") && !name.ends_with(EXPECTED_SUFFIX)
}

/// The expectation file of an event file.
pub fn expected_path(event: &Path) -> PathBuf {
    let name = event
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(name);
    event.with_file_name(format!("{stem}{EXPECTED_SUFFIX}"))
}

/// A sample event and what it should do.
#[derive(Debug, Clone)]
pub struct Sample {
    pub path: PathBuf,
    pub event: Value,
    pub expected: Option<Expected>,
}

impl Sample {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let event: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let exp_path = expected_path(path);
        let expected = if exp_path.is_file() {
            let text = std::fs::read_to_string(&exp_path)?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a valid expectation", exp_path.display()))?,
            )
        } else {
            None
        };
        Ok(Self {
            path: path.to_owned(),
            event,
            expected,
        })
    }
}

/// What replaying one sample gave.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: String,
    pub trigger: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub effects: Value,
    /// `None` when no expectation is stored beside the event.
    pub expected: Option<Outcome>,
    /// Differences from the expectation; empty when it holds.
    pub differences: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Replays one sample. `overrides` are configuration values that apply over
/// the sample's own (`--env` on the command line).
pub async fn replay(sample: &Sample, overrides: &BTreeMap<String, String>) -> Report {
    let mut env = sample
        .expected
        .as_ref()
        .map(|e| e.env.clone())
        .unwrap_or_default();
    env.extend(overrides.clone());
    let run: Run = dispatch::run(sample.event.clone(), &env).await;
    let differences = sample
        .expected
        .as_ref()
        .map(|e| expect::compare(e, &run))
        .unwrap_or_default();
    let (response, error) = match &run.result {
        Ok(v) => (v.get("response").cloned(), None),
        Err(f) => (None, Some(f.clone())),
    };
    Report {
        file: sample.path.display().to_string(),
        trigger: lambda_host::events::trigger_source(&sample.event)
            .unwrap_or("(none)")
            .to_owned(),
        outcome: run.outcome(),
        response,
        error,
        effects: run.effects,
        expected: sample.expected.as_ref().map(|e| e.outcome),
        differences,
    }
}
