//! `first-invocation --plan PLAN.json`: what opening connections during init
//! saves the first invocation of a fresh process.
//!
//! Every service of an AWS-calling function of the plan (`bench-plan`) sits
//! behind a proxy that holds each answer for `--delay-ms` (25 by default),
//! and in front of that an HTTPS front with a CA of its own that holds each
//! new connection for two delays before its handshake (a TCP and a TLS 1.3
//! round trip). A fresh process is started with `CONNECT_DURING_INIT` off,
//! then on (in turns, `--runs` times each); once its init is over, its first
//! event is timed. The table gives the medians, and the init phase's too (the
//! warm-up moves its handshakes there).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use harness::fault_proxy::{Fault, FaultProxy, Plan};
use harness::runtime_api::RuntimeApi;
use harness::tls_front::TlsFront;

#[path = "../plan_entry.rs"]
mod plan_entry;
use plan_entry::Entry;

#[derive(Debug, Parser)]
struct Args {
    /// The plan `bench-plan` wrote.
    #[arg(long)]
    plan: PathBuf,
    /// The network's round trip: each answer is held this long, and each
    /// new connection twice as long.
    #[arg(long, default_value_t = 25)]
    delay_ms: u64,
    /// Fresh processes per setting.
    #[arg(long, default_value_t = 7)]
    runs: usize,
}

/// One fresh process: (init, first invocation).
async fn once(
    entry: &Entry,
    delay: Duration,
    warm_up: bool,
    n: usize,
) -> Result<(Duration, Duration)> {
    let mut fronts: BTreeMap<String, (FaultProxy, TlsFront)> = BTreeMap::new();
    let mut env = entry.env.clone();
    let mut ca = None;
    for (key, value) in &mut env {
        if !key.starts_with("AWS_ENDPOINT_URL") {
            continue;
        }
        if !fronts.contains_key(value.as_str()) {
            let proxy = FaultProxy::start(value, Plan::always(Fault::Slow(delay)))
                .await
                .context("starting a proxy")?;
            let front = TlsFront::start(&proxy.url(), "first-invocation", delay * 2)
                .await
                .context("starting a TLS front")?;
            ca = Some(front.ca_file.to_string_lossy().into_owned());
            fronts.insert(value.clone(), (proxy, front));
        }
        *value = fronts[value.as_str()].1.url.clone();
    }
    let Some(ca) = ca else {
        bail!("{}: no AWS_ENDPOINT_URL in its environment", entry.name);
    };
    env.retain(|(k, _)| k != "CONNECT_DURING_INIT");
    env.push(("AWS_CA_BUNDLE".to_owned(), ca));
    env.push((
        "CONNECT_DURING_INIT".to_owned(),
        if warm_up { "true" } else { "false" }.to_owned(),
    ));
    let api = RuntimeApi::start().await?;
    let mut f = api.spawn(&entry.binary, &env).await?;
    let init = f.ready(Duration::from_secs(10)).await?;
    let (answer, first) = f.invoke(&entry.event(n)).await?;
    if answer.is_error() {
        bail!("{}: {:?}", entry.name, answer.value());
    }
    f.finish().await;
    Ok((init, first))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plan: Vec<Entry> = serde_json::from_str(
        &std::fs::read_to_string(&args.plan).with_context(|| format!("{}", args.plan.display()))?,
    )?;
    let delay = Duration::from_millis(args.delay_ms);
    let mut out = String::from(
        "| function | first invocation, no warm-up | first invocation, warm-up | saved | init, no warm-up | init, warm-up |\n|---|---|---|---|---|---|\n",
    );
    for (i, entry) in plan.iter().filter(|e| e.kind == "aws").enumerate() {
        let (mut init_off, mut init_on, mut first_off, mut first_on) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.runs {
            let n = i * 1000 + run * 2;
            let (init, first) = once(entry, delay, false, n).await?;
            init_off.push(init);
            first_off.push(first);
            let (init, first) = once(entry, delay, true, n + 1).await?;
            init_on.push(init);
            first_on.push(first);
        }
        let (off, on) = (median(first_off), median(first_on));
        let _ = writeln!(
            out,
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            entry.name,
            ms(off),
            ms(on),
            ms(off.saturating_sub(on)),
            ms(median(init_off)),
            ms(median(init_on)),
        );
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
