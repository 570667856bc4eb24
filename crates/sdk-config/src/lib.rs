//! One way to load the AWS SDK configuration for every client of the
//! workspace: [`for_function`] for the Lambda functions, [`for_tool`] for the
//! command-line tools.
//!
//! Cognito waits 5 seconds for a synchronous trigger and then retries it (up
//! to three attempts in all). A function that calls AWS must therefore end
//! well inside 5 s even when AWS is slow or unreachable, so every client gets
//! explicit timeouts and a bounded retry budget instead of the SDK defaults
//! (which have no operation timeout at all). `AWS_ENDPOINT_URL` (and
//! `AWS_ENDPOINT_URL_<SERVICE>`) work as everywhere else.
//!
//! A function's init is what every cold start pays, so [`for_function`]
//! resolves only what Lambda always sets: credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` and the
//! region from `AWS_REGION` (the SDK's full chains build an STS client, SSO
//! and IMDS providers that a function never uses). Where those variables are
//! missing (a binary run by hand), the full chains are used as before. Its
//! HTTPS client trusts the compiled-in Amazon Trust Services roots unless the
//! configuration points elsewhere ([`trust`] says when). The tools keep the
//! full chains and the system's bundle.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub use aws_config;
pub use io_thread::{IoThreadSleep, on_io_thread};
pub use trust::{BUNDLE_CANDIDATES, Purpose, Trust};

pub mod io_thread;
pub mod trust;
pub mod warm;

pub use warm::{Service, WARM_UP_LIMIT, connect_during_init, warm_up};

/// How long one AWS operation may take, retries included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// One attempt, from sending the request to the last byte of the answer.
    pub attempt: Duration,
    /// The whole operation, every attempt and backoff included.
    pub operation: Duration,
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// First backoff; doubled (with jitter) up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Budget {
    /// For synchronous triggers (Cognito waits 5 s): one call ends within
    /// 2 s whatever happens — up to 3 attempts of at most 1 s each, with
    /// 50–400 ms backoffs between them, cut off at 2 s.
    pub const SYNC_TRIGGER: Self = Self {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(1000),
        operation: Duration::from_millis(2000),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
    };

    /// For command-line tools run by a person: more patience.
    pub const INTERACTIVE: Self = Self {
        connect: Duration::from_secs(3),
        attempt: Duration::from_secs(10),
        operation: Duration::from_secs(30),
        max_attempts: 4,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
    };

    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }

    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.attempt)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// A loader with `budget`'s timeouts and retries and nothing else set.
fn base(budget: Budget) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(budget.retry_config())
        .timeout_config(budget.timeout_config())
}

/// The Lambda function's configuration. Call it once, in the init phase,
/// and build every client from the result.
pub async fn for_function(budget: Budget) -> SdkConfig {
    function_loader(budget, &trust::env_vars()).load().await
}

/// [`for_function`], with every request and every timeout run on the
/// long-lived I/O thread ([`io_thread`]): for a function whose clients are
/// called from runtimes that live for one call (the Encryption SDK's). All
/// its clients share one connection pool, on one runtime, which the
/// function's runtime never has to drive.
pub async fn for_function_on_io_thread(budget: Budget) -> SdkConfig {
    loader_for(budget, &trust::env_vars(), true).load().await
}

/// The loader [`for_function`] uses, for the environment `vars`.
pub fn function_loader(budget: Budget, vars: &[(String, String)]) -> aws_config::ConfigLoader {
    loader_for(budget, vars, false)
}

fn loader_for(
    budget: Budget,
    vars: &[(String, String)],
    io_thread: bool,
) -> aws_config::ConfigLoader {
    let trust = trust::choose(vars, Purpose::Function, &BUNDLE_CANDIDATES, &|p| {
        std::path::Path::new(p).is_file()
    });
    tracing::debug!("HTTPS trust: {trust}");
    let http = trust::https_client(&trust);
    let mut loader = if io_thread {
        base(budget)
            .http_client(on_io_thread(http))
            .sleep_impl(IoThreadSleep)
    } else {
        base(budget).http_client(http)
    };
    let set = |name: &str| vars.iter().any(|(k, v)| k == name && !v.trim().is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| {
            vars.iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        });
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader
}

/// The loader for a command-line tool: the SDK's full credential and region
/// chains (profiles, SSO, IMDS…), `budget`'s timeouts, the system's roots.
/// Callers may set more (a region or endpoint from flags) before `load`.
pub fn for_tool(budget: Budget) -> aws_config::ConfigLoader {
    let trust = trust::choose(
        &trust::env_vars(),
        Purpose::Tool,
        &BUNDLE_CANDIDATES,
        &|p| std::path::Path::new(p).is_file(),
    );
    base(budget).http_client(trust::https_client(&trust))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_budget_ends_well_inside_cognitos_five_seconds() {
        let b = Budget::SYNC_TRIGGER;
        // Worst case: the operation timeout cuts everything off.
        assert!(b.operation <= Duration::from_millis(2000));
        // Two calls in a row (a read then a write) still fit in 5 s.
        assert!(b.operation * 2 < Duration::from_secs(5));
        // And the retries fit in the operation: attempts × attempt timeout
        // plus backoffs may exceed it, but then the operation timeout wins.
        assert!(b.attempt < b.operation);
        assert!(b.max_attempts >= 2, "a brief fault must be retried");
    }

    #[test]
    fn a_function_reads_credentials_and_region_from_the_environment_only() {
        let vars: Vec<(String, String)> = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "ap-northeast-1"),
            // The full chain would read this profile; the function must not.
            ("AWS_PROFILE", "does-not-exist"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = rt.block_on(function_loader(Budget::SYNC_TRIGGER, &vars).load());
        assert_eq!(config.region().map(|r| r.as_ref()), Some("ap-northeast-1"));
        let provider = config.credentials_provider().expect("a provider");
        assert!(
            format!("{provider:?}").contains("Environment"),
            "{provider:?}"
        );
        assert!(config.http_client().is_some());
    }

    #[test]
    fn configs_carry_the_budget() {
        let b = Budget::SYNC_TRIGGER;
        let t = b.timeout_config();
        assert_eq!(t.operation_timeout(), Some(b.operation));
        assert_eq!(t.operation_attempt_timeout(), Some(b.attempt));
        assert_eq!(t.connect_timeout(), Some(b.connect));
        assert_eq!(b.retry_config().max_attempts(), 3);
    }
}
