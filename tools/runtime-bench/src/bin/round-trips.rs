//! `round-trips --plan PLAN.json`: how many AWS round trips each warm
//! invocation waits for, one after the other.
//!
//! On AWS every SDK call is a network round trip of 5–50 ms, against well
//! under a millisecond of the function's own work, so what a user waits for
//! on the sign-in path is the number of calls made one after the other.
//! Every service of an AWS-calling function of the plan (`bench-plan`) is put
//! behind a proxy that holds each answer for `--delay-ms` (25 by default);
//! the median warm invocation is measured with the delay and with a proxy
//! that holds nothing, and the difference divided by the delay is the count
//! of sequential round trips. Requests made at the same time overlap and
//! count once. The proxies also count the requests per invocation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use harness::fault_proxy::{Fault, FaultProxy, Plan};
use harness::runtime_api::RuntimeApi;

#[path = "../plan_entry.rs"]
mod plan_entry;
use plan_entry::Entry;

#[derive(Debug, Parser)]
struct Args {
    /// The plan `bench-plan` wrote.
    #[arg(long)]
    plan: PathBuf,
    /// How long each proxy holds every answer, in milliseconds.
    #[arg(long, default_value_t = 25)]
    delay_ms: u64,
    /// Warm invocations measured per setting (after 5 unmeasured ones).
    #[arg(long, default_value_t = 40)]
    warm: usize,
}

/// One measurement of an entry: the median warm latency and the requests
/// per invocation, with every endpoint behind a proxy that holds `delay`.
async fn measure(
    entry: &Entry,
    delay: Duration,
    warm: usize,
    offset: usize,
) -> Result<(Duration, f64)> {
    // A proxy per distinct endpoint the entry's environment names.
    let mut proxies: BTreeMap<String, FaultProxy> = BTreeMap::new();
    let mut env = entry.env.clone();
    for (key, value) in &mut env {
        if !key.starts_with("AWS_ENDPOINT_URL") {
            continue;
        }
        if !proxies.contains_key(value.as_str()) {
            let proxy = FaultProxy::start(value, Plan::always(Fault::Slow(delay)))
                .await
                .context("starting a proxy")?;
            proxies.insert(value.clone(), proxy);
        }
        *value = proxies[value.as_str()].url();
    }
    if proxies.is_empty() {
        bail!("{}: no AWS_ENDPOINT_URL in its environment", entry.name);
    }
    let api = RuntimeApi::start().await?;
    let mut f = api.spawn(&entry.binary, &env).await?;
    f.ready(Duration::from_secs(10)).await?;
    for i in 0..5 {
        f.invoke(&entry.event(offset + i)).await?;
    }
    let before: u64 = proxies.values().map(FaultProxy::requests).sum();
    let mut took = Vec::with_capacity(warm);
    for i in 0..warm {
        let (answer, t) = f.invoke(&entry.event(offset + 5 + i)).await?;
        if answer.is_error() {
            bail!("{}: {:?}", entry.name, answer.value());
        }
        took.push(t);
    }
    f.finish().await;
    let requests: u64 = proxies.values().map(FaultProxy::requests).sum::<u64>() - before;
    took.sort();
    Ok((took[took.len() / 2], requests as f64 / warm as f64))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plan: Vec<Entry> = serde_json::from_str(
        &std::fs::read_to_string(&args.plan).with_context(|| format!("{}", args.plan.display()))?,
    )?;
    let delay = Duration::from_millis(args.delay_ms);
    // The table goes to stdout as one write: a Markdown table to keep.
    let mut out = format!(
        "| function | warm p50, no delay | warm p50, {} ms per answer | sequential round trips | requests per invocation |\n|---|---|---|---|---|\n",
        args.delay_ms
    );
    for (i, entry) in plan.iter().filter(|e| e.kind == "aws").enumerate() {
        let offset = i * 10 * (args.warm + 5);
        let (plain, requests) = measure(entry, Duration::ZERO, args.warm, offset).await?;
        let (delayed, _) = measure(entry, delay, args.warm, offset + 5 * (args.warm + 5)).await?;
        let trips = delayed.saturating_sub(plain).as_secs_f64() / delay.as_secs_f64();
        let _ = writeln!(
            out,
            "| {} | {:.2} ms | {:.2} ms | {:.2} | {:.2} |",
            entry.name,
            plain.as_secs_f64() * 1000.0,
            delayed.as_secs_f64() * 1000.0,
            trips,
            requests
        );
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
