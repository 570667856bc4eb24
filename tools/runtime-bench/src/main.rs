//! `runtime-bench --plan PLAN.json`: measures function binaries the way Lambda
//! runs them, under `lambda-harness` (our Runtime API), next to a floor.
//!
//! For every function of the plan, and for the floor (a bare lambda_runtime
//! binary that echoes its event, built in the same profile with the same
//! logging set-up):
//! * cold init: spawn → first `GET /invocation/next`; cold start: init + the
//!   first invocation; the median of `--cold` fresh processes each, taken in
//!   interleaved rounds, each in a shuffled order of its own, so that machine
//!   drift and the order of neighbours hit every function alike;
//! * warm latency: event out → response in, `--warm` invocations per
//!   function, again in interleaved rounds, p50 and p99;
//! * peak RSS (VmHWM) after the warm run; binary size and deployment-zip size
//!   (the binary deflated as `bootstrap`);
//! * an entry may `vary` a string of its event per invocation (a function
//!   that de-duplicates events then does its whole work every time) and be
//!   `cold_only` (no warm run; its peak RSS is then the largest after a
//!   first invocation);
//! * for functions that call AWS, the TCP connections a warm process opens
//!   over `--connections` invocations, by service: a fresh process behind a
//!   keep-alive proxy of ours in front of the plan's endpoint (moto closes
//!   every connection itself, so counting there would show one per request),
//!   one invocation to open them, then the count.
//!
//! Results are printed as a Markdown table (ratios to the floor) and written
//! as JSON with `--out`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use harness::runtime_api::RuntimeApi;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Parser)]
struct Args {
    /// The plan: a JSON array of {name, binary, env, event, kind, vary?} where
    /// kind is "floor", "pure" or "aws"; exactly one floor.
    #[arg(long)]
    plan: PathBuf,
    /// Warm invocations per function.
    #[arg(long, default_value_t = 1000)]
    warm: usize,
    /// Cold starts per function.
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// Whole runs (cold and warm phases); the table gives the median of each
    /// number and every run's table follows it.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Warm invocations over which new connections are counted (0 = skip).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
struct Entry {
    name: String,
    binary: PathBuf,
    #[serde(default)]
    env: Vec<(String, String)>,
    event: Value,
    kind: Kind,
    /// A JSON pointer to a string of the event made unique for every
    /// invocation (a suffix of this process's id and a counter): a function
    /// that de-duplicates events (the custom senders with their limits table)
    /// then does its whole work every time, in every process.
    #[serde(default)]
    vary: Option<String>,
    /// Cold starts only (and the connection count): no warm run. For the
    /// custom senders with their limits table, whose warm latency on moto
    /// would measure moto (it deep-copies the table for every item of a
    /// DynamoDB transaction and keeps every copy, so each new send makes the
    /// next slower), not the function.
    #[serde(default)]
    cold_only: bool,
}

impl Entry {
    /// The event for the next invocation (made before the clock starts).
    fn next_event(&self) -> std::borrow::Cow<'_, Value> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let Some(pointer) = &self.vary else {
            return std::borrow::Cow::Borrowed(&self.event);
        };
        let mut event = self.event.clone();
        if let Some(v) = event.pointer_mut(pointer) {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let base = v.as_str().unwrap_or_default();
            *v = Value::String(format!("{base}-{}-{n}", std::process::id()));
        }
        std::borrow::Cow::Owned(event)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Floor,
    Pure,
    Aws,
}

#[derive(Debug, Clone, Serialize)]
struct Result1 {
    name: String,
    kind: Kind,
    init_ms: f64,
    cold_start_ms: f64,
    warm_p50_us: f64,
    warm_p99_us: f64,
    warm_invocations: usize,
    /// Invocations off the main path, of `checked` (the warm ones; the cold
    /// starts' first invocations for a cold-only entry).
    errors: usize,
    checked: usize,
    peak_rss_mib: f64,
    binary_mib: f64,
    zip_mib: f64,
    /// New connections per 100 warm invocations, by service (AWS functions).
    connections_per_100: std::collections::BTreeMap<String, f64>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn zip_size(binary: &PathBuf) -> Result<u64> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        z.start_file("bootstrap", options)?;
        z.write_all(&bytes)?;
        z.finish()?;
    }
    Ok(buf.into_inner().len() as u64)
}

const MIB: f64 = 1024.0 * 1024.0;

/// An answer off the function's main path: an error, or a custom sender's
/// settled refusal or duplicate (`{"response": {"outcome": "refused"}}`),
/// which would measure a shorter path than the one the row is for.
fn off_path(answer: &harness::runtime_api::Answer) -> bool {
    answer.is_error()
        || matches!(
            answer
                .value()
                .pointer("/response/outcome")
                .and_then(Value::as_str),
            Some("refused" | "duplicate")
        )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let plan: Vec<Entry> = serde_json::from_str(
        &std::fs::read_to_string(&args.plan)
            .with_context(|| format!("reading {}", args.plan.display()))?,
    )
    .context("the plan is not valid")?;
    if plan.iter().filter(|e| e.kind == Kind::Floor).count() != 1 {
        bail!("the plan needs exactly one entry of kind \"floor\"");
    }
    for e in &plan {
        if !e.binary.is_file() {
            bail!(
                "{}: {} does not exist (build it first)",
                e.name,
                e.binary.display()
            );
        }
    }
    let api = RuntimeApi::start().await?;
    let mut runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        eprintln!("run {run}/{}", args.runs.max(1));
        runs.push(measure(&api, &plan, &args).await?);
    }
    let mut results = median_of_runs(&runs);
    if args.connections > 0 {
        for (e, r) in plan.iter().zip(results.iter_mut()) {
            if e.kind == Kind::Aws {
                r.connections_per_100 = count_connections(&api, e, args.connections).await?;
            }
        }
    }
    let mut out = String::new();
    if runs.len() > 1 {
        out.push_str(&format!(
            "Median of {} runs (each run's table follows):\n\n",
            runs.len()
        ));
    }
    out.push_str(&table(&results));
    out.push_str(&format!(
        "\nStart-up against the limits (medians above):\n\n{}",
        limits_table(&results)
    ));
    if runs.len() > 1 {
        for (i, run) in runs.iter().enumerate() {
            out.push_str(&format!("\nRun {}:\n\n{}", i + 1, table(run)));
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    if let Some(path) = &args.out {
        let json = serde_json::json!({"median": results, "runs": runs});
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

/// The median of each timing over the runs (errors summed, memory the
/// largest); the runs measure the same plan in the same order.
fn median_of_runs(runs: &[Vec<Result1>]) -> Vec<Result1> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let med = |f: &dyn Fn(&Result1) -> f64, i: usize| {
        let mut v: Vec<f64> = runs.iter().map(|r| f(&r[i])).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    first
        .iter()
        .enumerate()
        .map(|(i, r)| Result1 {
            init_ms: med(&|x| x.init_ms, i),
            cold_start_ms: med(&|x| x.cold_start_ms, i),
            warm_p50_us: med(&|x| x.warm_p50_us, i),
            warm_p99_us: med(&|x| x.warm_p99_us, i),
            warm_invocations: runs.iter().map(|x| x[i].warm_invocations).sum(),
            errors: runs.iter().map(|x| x[i].errors).sum(),
            checked: runs.iter().map(|x| x[i].checked).sum(),
            peak_rss_mib: runs.iter().map(|x| x[i].peak_rss_mib).fold(0.0, f64::max),
            ..r.clone()
        })
        .collect()
}

/// One interleaved run of the plan: cold starts, then warm invocations.
async fn measure(api: &RuntimeApi, plan: &[Entry], args: &Args) -> Result<Vec<Result1>> {
    // Cold: interleaved rounds of fresh processes.
    let mut inits: Vec<Vec<Duration>> = vec![Vec::new(); plan.len()];
    let mut colds: Vec<Vec<Duration>> = vec![Vec::new(); plan.len()];
    let mut cold_errors = vec![0usize; plan.len()];
    let mut cold_rss_kib = vec![0u64; plan.len()];
    for round in 0..args.cold {
        // Each round takes the plan in an order of its own (shuffled with the
        // round as seed, so a run can be repeated), so that no function always
        // runs first or always follows the same neighbour.
        let mut order: Vec<usize> = (0..plan.len()).collect();
        fastrand::Rng::with_seed(round as u64).shuffle(&mut order);
        for i in order {
            let e = &plan[i];
            let mut f = api.spawn(&e.binary, &e.env).await?;
            let init = f
                .ready(Duration::from_secs(10))
                .await
                .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
            let (answer, first) = f
                .invoke(&e.next_event())
                .await
                .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
            if e.kind != Kind::Floor && off_path(&answer) {
                cold_errors[i] += 1;
                eprintln!(
                    "\n{}: the first invocation did not take the main path: {}",
                    e.name,
                    answer.value()
                );
            }
            let finished = f.finish().await;
            cold_rss_kib[i] = cold_rss_kib[i].max(finished.peak_rss_kib.unwrap_or_default());
            inits[i].push(init);
            colds[i].push(init + first);
        }
        eprint!("\rcold round {}/{}", round + 1, args.cold);
    }
    eprintln!();

    // Warm: one process per function, invoked in interleaved chunks.
    let apis = {
        let mut v = Vec::new();
        for _ in plan {
            v.push(RuntimeApi::start().await?);
        }
        v
    };
    let mut procs = Vec::new();
    for (e, api) in plan.iter().zip(&apis) {
        if e.cold_only {
            procs.push(None);
            continue;
        }
        let mut f = api.spawn(&e.binary, &e.env).await?;
        f.ready(Duration::from_secs(10))
            .await
            .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
        for _ in 0..20 {
            f.invoke(&e.next_event())
                .await
                .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
        }
        procs.push(Some(f));
    }
    let chunk = 50.max(args.warm / 20);
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); plan.len()];
    let mut errors = vec![0usize; plan.len()];
    let warm_total = args.warm * procs.iter().filter(|f| f.is_some()).count();
    while lat.iter().map(Vec::len).sum::<usize>() < warm_total {
        for (i, (e, f)) in plan.iter().zip(procs.iter_mut()).enumerate() {
            let Some(f) = f else { continue };
            let n = chunk.min(args.warm - lat[i].len());
            for _ in 0..n {
                let (answer, d) = f
                    .invoke(&e.next_event())
                    .await
                    .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
                if e.kind != Kind::Floor && off_path(&answer) {
                    errors[i] += 1;
                }
                lat[i].push(d);
            }
        }
        let done: usize = lat.iter().map(Vec::len).sum();
        eprint!("\rwarm {done}/{warm_total}");
    }
    eprintln!();
    let mut results = Vec::new();
    for (i, (e, f)) in plan.iter().zip(procs).enumerate() {
        let (peak_rss_kib, errors, checked) = match f {
            Some(f) => (
                f.finish().await.peak_rss_kib.unwrap_or_default(),
                errors[i],
                lat[i].len(),
            ),
            None => (cold_rss_kib[i], cold_errors[i], colds[i].len()),
        };
        let mut sorted = lat[i].clone();
        sorted.sort();
        results.push(Result1 {
            name: e.name.clone(),
            kind: e.kind,
            init_ms: median(inits[i].clone()).as_secs_f64() * 1e3,
            cold_start_ms: median(colds[i].clone()).as_secs_f64() * 1e3,
            warm_p50_us: percentile(&sorted, 50.0).as_secs_f64() * 1e6,
            warm_p99_us: percentile(&sorted, 99.0).as_secs_f64() * 1e6,
            warm_invocations: sorted.len(),
            errors,
            checked,
            peak_rss_mib: peak_rss_kib as f64 / 1024.0,
            binary_mib: std::fs::metadata(&e.binary)?.len() as f64 / MIB,
            zip_mib: zip_size(&e.binary)? as f64 / MIB,
            connections_per_100: Default::default(),
        });
    }
    Ok(results)
}

/// The services a function may call, by the suffix of their
/// `AWS_ENDPOINT_URL_<SERVICE>` variable.
const SERVICES: [(&str, &str); 6] = [
    ("cognito-idp", "COGNITO_IDENTITY_PROVIDER"),
    ("dynamodb", "DYNAMODB"),
    ("kms", "KMS"),
    ("secretsmanager", "SECRETS_MANAGER"),
    ("sesv2", "SESV2"),
    ("sns", "SNS"),
];

/// New connections per 100 warm invocations of `e`, by service: each
/// service at a keep-alive proxy of its own in front of the plan's
/// `AWS_ENDPOINT_URL` (a host per service, as on AWS).
async fn count_connections(
    api: &RuntimeApi,
    e: &Entry,
    invocations: usize,
) -> Result<std::collections::BTreeMap<String, f64>> {
    let Some(upstream) = e
        .env
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone())
    else {
        bail!(
            "{}: an AWS function needs AWS_ENDPOINT_URL in the plan",
            e.name
        );
    };
    let mut env = e.env.clone();
    let mut proxies = Vec::new();
    for (service, suffix) in SERVICES {
        let proxy = harness::fault_proxy::FaultProxy::passthrough(&upstream).await?;
        env.push((format!("AWS_ENDPOINT_URL_{suffix}"), proxy.url()));
        proxies.push((service, proxy));
    }
    let mut f = api.spawn(&e.binary, &env).await?;
    f.ready(Duration::from_secs(10))
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
    // The first invocation opens what the process keeps.
    f.invoke(&e.next_event())
        .await
        .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
    let before: Vec<u64> = proxies.iter().map(|(_, p)| p.connections()).collect();
    for _ in 0..invocations {
        f.invoke(&e.next_event())
            .await
            .map_err(|err| anyhow::anyhow!("{}: {err}", e.name))?;
    }
    f.finish().await;
    let mut out = std::collections::BTreeMap::new();
    for ((service, p), before) in proxies.iter().zip(before) {
        if p.requests() > 0 {
            let new = p.connections() - before;
            eprintln!(
                "{}: {service}: {} requests, {before} connection(s) after the first invocation, {new} new over {invocations} more",
                e.name,
                p.requests()
            );
            out.insert(
                (*service).to_owned(),
                new as f64 * 100.0 / invocations as f64,
            );
        }
    }
    Ok(out)
}

/// "kms 0, sns 0" (new connections per 100 warm invocations), or "—".
fn connections_cell(r: &Result1) -> String {
    if r.connections_per_100.is_empty() {
        return "—".to_owned();
    }
    r.connections_per_100
        .iter()
        .map(|(service, n)| format!("{service} {n:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The start-up limit of a row, as issue 23 restated them: triggers that
/// link no AWS SDK, cold start ≤ 1.2× the floor; functions that link it,
/// init ≤ 2.0×, the two custom senders (the Encryption SDK and two clients)
/// ≤ 2.4×. `None` for the floor.
fn start_up_limit(r: &Result1) -> Option<(&'static str, f64)> {
    // scripts/check-deps keeps these two free of any AWS SDK.
    let no_sdk = ["pre-sign-up", "define-auth-challenge"].contains(&r.name.as_str());
    match r.kind {
        Kind::Floor => None,
        Kind::Pure if no_sdk => Some(("cold start", 1.2)),
        Kind::Pure => Some(("init", 2.0)),
        Kind::Aws
            if r.name.starts_with("custom-sms-sender")
                || r.name.starts_with("custom-email-sender") =>
        {
            Some(("init", 2.4))
        }
        Kind::Aws => Some(("init", 2.0)),
    }
}

/// Each row's start-up ratio against its limit.
fn limits_table(results: &[Result1]) -> String {
    let Some(floor) = results.iter().find(|r| r.kind == Kind::Floor) else {
        return String::new();
    };
    let mut out =
        String::from("| function | measure | ×floor | limit | within |\n|---|---|---|---|---|\n");
    for r in results {
        let Some((measure, limit)) = start_up_limit(r) else {
            continue;
        };
        let (value, base) = if measure == "init" {
            (r.init_ms, floor.init_ms)
        } else {
            (r.cold_start_ms, floor.cold_start_ms)
        };
        let ratio = if base > 0.0 { value / base } else { 0.0 };
        out.push_str(&format!(
            "| {} | {measure} | {ratio:.2}× | ≤ {limit:.1}× | {} |\n",
            r.name,
            if ratio <= limit { "yes" } else { "**no**" }
        ));
    }
    out
}

fn table(results: &[Result1]) -> String {
    let Some(floor) = results.iter().find(|r| r.kind == Kind::Floor) else {
        return String::new();
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let mut out = String::new();
    out.push_str("| function | kind | init ms (×floor) | cold start ms (×floor) | warm p50 µs (×floor) | warm p99 µs (×floor) | new connections per 100 warm | errors | peak RSS MiB | binary MiB | zip MiB |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        // A cold-only entry has no warm numbers.
        let warm = |us: f64, floor_us: f64| {
            if r.warm_invocations == 0 {
                "—".to_owned()
            } else {
                format!("{us:.0} ({:.2}×)", ratio(us, floor_us))
            }
        };
        let errors = if r.warm_invocations == 0 {
            format!("{}/{} cold", r.errors, r.checked)
        } else {
            format!("{}/{}", r.errors, r.checked)
        };
        out.push_str(&format!(
            "| {} | {:?} | {:.2} ({:.2}×) | {:.2} ({:.2}×) | {} | {} | {} | {} | {:.1} | {:.2} | {:.2} |\n",
            r.name,
            r.kind,
            r.init_ms,
            ratio(r.init_ms, floor.init_ms),
            r.cold_start_ms,
            ratio(r.cold_start_ms, floor.cold_start_ms),
            warm(r.warm_p50_us, floor.warm_p50_us),
            warm(r.warm_p99_us, floor.warm_p99_us),
            connections_cell(r),
            errors,
            r.peak_rss_mib,
            r.binary_mib,
            r.zip_mib,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&v[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn the_median_is_the_middle_value() {
        let v = vec![
            Duration::from_millis(3),
            Duration::from_millis(1),
            Duration::from_millis(2),
        ];
        assert_eq!(median(v), Duration::from_millis(2));
    }
}
