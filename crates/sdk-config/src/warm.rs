//! Connections opened during init.
//!
//! On AWS every new connection costs a TCP and a TLS handshake (one to
//! three round trips) before the first request goes out. A function's init
//! phase runs before its first event and, with provisioned concurrency or
//! proactive initialisation, before any user waits. So each function opens
//! its connection to every service its warm path calls there.
//!
//! The connection must be the one the SDK clients will use. The SDK's HTTP
//! client keeps one connection pool per connector, and one connector per
//! pair of connect and read timeouts. [`warm_up`] therefore asks the shared
//! HTTP client of the configuration for the connector with the exact
//! settings its operations use. It then sends one unsigned `GET /` to each
//! endpoint and reads the answer to its end, so the connection goes back to
//! the pool. An unsigned request is no API call: it needs no IAM right and
//! leaves no CloudTrail record. AWS answers it at once (DynamoDB with
//! `healthy: …`, the others with a 4xx), keeping the connection open.
//!
//! It is bounded (`within`) and never fails init: a warm-up that fails or
//! runs out of time is logged, and the first invocation connects as before.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_smithy_runtime::client::auth::no_auth::{NO_AUTH_SCHEME_ID, NoAuthScheme};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::identity::no_auth::NoAuthIdentityResolver;
use aws_smithy_runtime::client::orchestrator::endpoints::StaticUriEndpointResolver;
use aws_smithy_runtime::client::retries::strategy::NeverRetryStrategy;
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_runtime_api::http::Request;
use aws_smithy_types::body::SdkBody;

/// The longest a function's warm-up may add to its init.
pub const WARM_UP_LIMIT: Duration = Duration::from_millis(300);

/// One service a function's warm path calls and the URL its client sends
/// to: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else the
/// service's regional endpoint `https://<prefix>.<region>.amazonaws.com`,
/// as the SDK chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub url: String,
}

impl Service {
    /// `env_suffix` is the service's part of `AWS_ENDPOINT_URL_<SERVICE>`
    /// (`DYNAMODB`, `COGNITO_IDENTITY_PROVIDER`, …).
    pub fn new(name: &'static str, prefix: &str, env_suffix: &str, config: &SdkConfig) -> Self {
        let configured = |k: String| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let url = configured(format!("AWS_ENDPOINT_URL_{env_suffix}"))
            .or_else(|| config.endpoint_url().map(ToOwned::to_owned))
            .unwrap_or_else(|| {
                format!(
                    "https://{prefix}.{}.amazonaws.com",
                    config.region().map_or("us-east-1", |r| r.as_ref())
                )
            });
        Self {
            name,
            url: url.trim_end_matches('/').to_owned(),
        }
    }
}

/// What one warm-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warmed {
    pub service: &'static str,
    /// The HTTP status of the answer, or why there was none.
    pub outcome: Result<u16, String>,
    pub elapsed: Duration,
}

/// Opens a pooled connection to every service at once through `config`'s
/// HTTP client; returns within `within` whatever happens (a connection
/// still being opened then is left to finish in the pool's own time).
pub async fn warm_up(config: &SdkConfig, services: &[Service], within: Duration) -> Vec<Warmed> {
    let started = Instant::now();
    let Some(http) = config.http_client() else {
        return Vec::new();
    };
    let components = match RuntimeComponentsBuilder::new("warm-up")
        .with_auth_scheme_option_resolver(Some(StaticAuthSchemeOptionResolver::new(vec![
            NO_AUTH_SCHEME_ID,
        ])))
        .with_auth_scheme(NoAuthScheme::new())
        .with_identity_cache(Some(IdentityCache::no_cache()))
        .with_identity_resolver(NO_AUTH_SCHEME_ID, NoAuthIdentityResolver::new())
        .with_endpoint_resolver(Some(StaticUriEndpointResolver::http_localhost(0)))
        .with_retry_strategy(Some(NeverRetryStrategy::new()))
        .with_sleep_impl(config.sleep_impl())
        .with_time_source(config.time_source())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("warm-up skipped: {e}");
            return Vec::new();
        }
    };
    // The settings the SDK's operations use (the orchestrator builds them
    // from the same two timeouts), so the connector and its pool are theirs.
    let timeouts = config.timeout_config();
    let mut settings = HttpConnectorSettings::builder();
    settings
        .set_connect_timeout(timeouts.and_then(|t| t.connect_timeout()))
        .set_read_timeout(timeouts.and_then(|t| t.read_timeout()));
    let settings = settings.build();
    let connector = http.http_connector(&settings, &components);
    let one = |service: &Service| {
        let connector = connector.clone();
        let url = format!("{}/", service.url);
        let name = service.name;
        async move {
            let t = Instant::now();
            let outcome = match Request::get(url.as_str()) {
                Ok(request) => {
                    let mut request = request;
                    *request.body_mut() = SdkBody::empty();
                    match tokio::time::timeout(within, connector.call(request)).await {
                        Ok(Ok(response)) => {
                            let status = response.status().as_u16();
                            // Read to the end: the connection then goes back to the pool.
                            let body = response.into_body();
                            drain(body, within.saturating_sub(t.elapsed())).await;
                            Ok(status)
                        }
                        Ok(Err(e)) => Err(format!("{e}")),
                        Err(_) => Err(format!("not connected within {within:?}")),
                    }
                }
                Err(e) => Err(format!("bad endpoint: {e}")),
            };
            Warmed {
                service: name,
                outcome,
                elapsed: t.elapsed(),
            }
        }
    };
    let all = futures_util::future::join_all(services.iter().map(one)).await;
    for w in &all {
        match &w.outcome {
            Ok(status) => tracing::debug!(
                service = w.service,
                status,
                elapsed_ms = w.elapsed.as_millis() as u64,
                "connection opened during init"
            ),
            Err(e) => tracing::warn!(
                service = w.service,
                "connection not opened during init (the first invocation connects): {e}"
            ),
        }
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "warm-up done"
    );
    all
}

async fn drain(mut body: SdkBody, within: Duration) {
    let read = async {
        use http_body_util::BodyExt;
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
}

/// `CONNECT_DURING_INIT=false` turns the warm-up off (measurements,
/// debugging); anything else, or unset, leaves it on.
pub const CONNECT_DURING_INIT_VAR: &str = "CONNECT_DURING_INIT";

/// The init phase's warm-up of a function: [`warm_up`] within
/// [`WARM_UP_LIMIT`], unless `CONNECT_DURING_INIT=false`.
pub async fn connect_during_init(config: &SdkConfig, services: &[Service]) {
    let off = std::env::var(CONNECT_DURING_INIT_VAR).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "off" | "0"
        )
    });
    if off || services.is_empty() {
        return;
    }
    warm_up(config, services, WARM_UP_LIMIT).await;
}
