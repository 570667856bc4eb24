//! One way to load the AWS SDK configuration for every client of the
//! workspace.
//!
//! Cognito waits 5 seconds for a synchronous trigger and then retries it (up
//! to three attempts in all). A function that calls AWS must therefore end
//! well inside 5 s even when AWS is slow or unreachable, so every client gets
//! explicit timeouts and a bounded retry budget instead of the SDK defaults
//! (which have no operation timeout at all). The configuration comes from
//! `aws_config`, so `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`),
//! `AWS_REGION` and the usual credential sources work as everywhere else.
//!
//! The HTTPS client trusts the system's CA bundle file, read once: the SDK's
//! default reads the bundle *and* every certificate file of the system's
//! certificate folder, which measured as most of what building AWS clients
//! adds to a function's init (about 5 of 6.5 ms on the benchmark machine; see
//! BENCHMARKS.md). Where no bundle file is found, the default stays.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

pub use aws_config;

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

/// Loads the shared SDK configuration with `budget`'s timeouts and retries.
/// Call it once, in the init phase, and build every client from the result.
pub async fn load(budget: Budget) -> SdkConfig {
    loader(budget).load().await
}

/// The loader, for callers that set more (a region or endpoint from flags).
pub fn loader(budget: Budget) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(budget.retry_config())
        .timeout_config(budget.timeout_config());
    with_bundle_trust(loader)
}

/// Where CA bundles live: Amazon Linux 2023 (Lambda's `provided.al2023`) and
/// RHEL first, then Debian/Ubuntu, Alpine/macOS, and the extracted Fedora one.
pub const BUNDLE_CANDIDATES: [&str; 4] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
];

/// The CA bundle to trust: `SSL_CERT_FILE` when it names a file (as OpenSSL
/// and rustls-native-certs honour it), else the first candidate that exists.
pub fn find_bundle(ssl_cert_file: Option<&str>, candidates: &[&str]) -> Option<std::path::PathBuf> {
    ssl_cert_file
        .filter(|f| !f.trim().is_empty())
        .into_iter()
        .chain(candidates.iter().copied())
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

/// Whether `pem` holds at least one certificate and nothing unreadable.
pub fn is_usable_bundle(pem: &[u8]) -> bool {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        if cert.is_err() {
            return false;
        }
        count += 1;
    }
    count > 0
}

/// Gives `loader` an HTTPS client (rustls with aws-lc, as the SDK's default)
/// that trusts only the bundle file's certificates; leaves it as it is when
/// there is no readable bundle with at least one certificate.
fn with_bundle_trust(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    let env = std::env::var("SSL_CERT_FILE").ok();
    let Some(path) = find_bundle(env.as_deref(), &BUNDLE_CANDIDATES) else {
        return loader;
    };
    let Ok(pem) = std::fs::read(&path) else {
        return loader;
    };
    // The SDK's TLS builder panics on a PEM it cannot read: check first,
    // with the same parser, and keep the default when in doubt.
    if !is_usable_bundle(&pem) {
        tracing::warn!(
            "the CA bundle {} holds no readable certificate; using the system's roots",
            path.display()
        );
        return loader;
    }
    let store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    match TlsContext::builder().with_trust_store(store).build() {
        Ok(context) => loader.http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context)
                .build_https(),
        ),
        Err(e) => {
            tracing::warn!(
                "the CA bundle {} is not usable ({e}); using the system's roots",
                path.display()
            );
            loader
        }
    }
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
    fn the_bundle_is_ssl_cert_file_else_the_first_existing_candidate() {
        let dir = std::env::temp_dir().join(format!("sdk-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.pem");
        let b = dir.join("b.pem");
        std::fs::write(&b, "x").unwrap();
        let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
        // a does not exist: the first existing candidate wins.
        assert_eq!(find_bundle(None, &[a_s, b_s]), Some(b.clone()));
        std::fs::write(&a, "x").unwrap();
        assert_eq!(find_bundle(None, &[a_s, b_s]), Some(a.clone()));
        // SSL_CERT_FILE comes first; blank or missing counts as unset.
        assert_eq!(find_bundle(Some(b_s), &[a_s]), Some(b.clone()));
        assert_eq!(find_bundle(Some(" "), &[a_s]), Some(a.clone()));
        assert_eq!(find_bundle(Some("/nonexistent/x.pem"), &[]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_whole_pem_bundles_are_used() {
        let good = include_bytes!("../tests/isrg-root-x1.pem");
        assert!(is_usable_bundle(good));
        let two = [&good[..], &good[..]].concat();
        assert!(is_usable_bundle(&two));
        // Truncated in the middle of a certificate (the SDK would panic).
        assert!(!is_usable_bundle(&good[..good.len() / 2]));
        assert!(!is_usable_bundle(b"not a certificate"));
        assert!(!is_usable_bundle(b""));
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
