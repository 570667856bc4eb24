//! The few things every function binary does around its handler, so that
//! each `main.rs` reads like the runtime's own examples.
//!
//! * [`events`] turns what Cognito (or a person pasting a console test
//!   event) sends into `aws_lambda_events` types, and back, and models the
//!   custom SMS sender event that crate lacks.
//! * [`error_type`] holds the `errorType` strings every function shares, so a
//!   log query or an alarm filter can rely on one spelling.
//! * [`init`] wraps one init step: a failure is reported to the Runtime API
//!   and logged, and `main` returns it.
//! * [`init_logging`] honours Lambda's advanced logging controls
//!   (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT`) like
//!   `lambda_runtime::tracing::init_default_subscriber`, but caps the
//!   libraries that log raw payloads: at TRACE, `lambda_runtime` logs every
//!   event it receives (one-time codes, phone numbers, emails) and the AWS SDK
//!   logs request bodies. Those targets never log below DEBUG/INFO here,
//!   whatever level is asked for.
//! * [`report_init_error`] tells the Runtime API why the init phase failed,
//!   so that a bad configuration value shows up in the invoke response and
//!   in the logs, not as a bare `Runtime.ExitError`.

use std::fmt::Display;
use std::str::FromStr;

pub mod events;
pub mod metrics;

/// The `errorType` strings every function shares (each function's own
/// refusals are named by its error enum).
pub mod error_type {
    /// The event is not what this trigger expects (malformed, wrong trigger).
    pub const INVALID_EVENT: &str = "InvalidEvent";
    /// A setting is missing or wrong: the init phase fails with it.
    pub const INVALID_CONFIGURATION: &str = "InvalidConfiguration";
}

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;

/// Targets whose logging is capped, and the most verbose level each may use.
/// `lambda_runtime` at TRACE logs the raw event; the SDK, its HTTP stack and
/// the encryption libraries log request and response bodies at TRACE/DEBUG.
const CAPS: [(&str, LevelFilter); 14] = [
    ("lambda_runtime", LevelFilter::DEBUG),
    ("lambda_runtime_api_client", LevelFilter::DEBUG),
    ("aws_smithy_runtime", LevelFilter::INFO),
    ("aws_smithy_runtime_api", LevelFilter::INFO),
    ("aws_smithy_http_client", LevelFilter::INFO),
    ("aws_smithy_http", LevelFilter::INFO),
    ("aws_config", LevelFilter::INFO),
    ("aws_sdk_cognitoidentityprovider", LevelFilter::INFO),
    ("aws_sdk_sns", LevelFilter::INFO),
    ("aws_sdk_kms", LevelFilter::INFO),
    ("aws_sdk_secretsmanager", LevelFilter::INFO),
    ("aws_esdk", LevelFilter::INFO),
    ("hyper", LevelFilter::INFO),
    ("hyper_util", LevelFilter::INFO),
];

/// The level asked for: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` if it is a
/// plain level, else INFO.
pub fn requested_level() -> LevelFilter {
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|v| LevelFilter::from_str(v.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// The filter for `level`, with the caps applied.
pub fn filter_for(level: LevelFilter) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy("");
    for (target, cap) in CAPS {
        let effective = if level > cap { cap } else { level };
        if let Ok(directive) = format!("{target}={effective}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Logging for a function binary: to stdout (Lambda collects it), JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`.
pub fn init_logging() {
    init_logging_with_writer(std::io::stdout);
}

/// Logging for a command-line tool: to stderr, so stdout stays the output.
pub fn init_logging_to_stderr() {
    init_logging_with_writer(std::io::stderr);
}

fn init_logging_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_env_filter(filter_for(requested_level()))
        .with_writer(writer);
    // A second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// How long reporting an init error may take.
const INIT_ERROR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Reports an init-phase failure to the Runtime API (`/runtime/init/error`),
/// logs it, and returns it so `main` can exit with it. Outside Lambda (no
/// `AWS_LAMBDA_RUNTIME_API`) it only logs.
pub async fn report_init_error<E: Display>(error_type: &str, error: E) -> E {
    let message = error.to_string();
    tracing::error!(error_type, "init failed: {message}");
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        // Bounded: a Runtime API that never answers (some local emulators)
        // must not keep a broken function alive.
        match tokio::time::timeout(INIT_ERROR_TIMEOUT, post_init_error(error_type, &message)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not report the init error to the Runtime API: {e}"),
            Err(_) => tracing::warn!(
                "the Runtime API did not take the init error within {INIT_ERROR_TIMEOUT:?}"
            ),
        }
    }
    error
}

async fn post_init_error(error_type: &str, message: &str) -> Result<(), lambda_runtime::Error> {
    use lambda_runtime_api_client::body::Body;
    let client = lambda_runtime_api_client::Client::builder().build()?;
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .body(Body::from(body))?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("the Runtime API answered {}", response.status()).into());
    }
    Ok(())
}

/// One init step of a function binary: its value, or — after reporting the
/// failure to the Runtime API as `InvalidConfiguration` and logging it — the
/// error for `main` to return, so Lambda shows why the init phase failed.
///
/// ```ignore
/// let config = lambda_host::init(Config::from_source(&lambda_host::env_var)).await?;
/// ```
pub async fn init<T, E>(step: Result<T, E>) -> Result<T, lambda_runtime::Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match step {
        Ok(value) => Ok(value),
        Err(e) => Err(report_init_error(error_type::INVALID_CONFIGURATION, e)
            .await
            .into()),
    }
}

/// Reads one process environment variable: the configuration source of
/// every function (`auth_policy::ConfigSource` is implemented for `Fn`s).
pub fn env_var(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_never_reaches_the_raw_event_log_of_lambda_runtime() {
        let f = filter_for(LevelFilter::TRACE).to_string();
        assert!(f.contains("lambda_runtime=debug"), "{f}");
        assert!(f.contains("aws_smithy_runtime=info"), "{f}");
        assert!(f.contains("trace"), "{f}");
    }

    #[test]
    fn caps_never_raise_a_quieter_level() {
        let f = filter_for(LevelFilter::WARN).to_string();
        assert!(f.contains("lambda_runtime=warn"), "{f}");
        assert!(!f.contains("=debug") && !f.contains("=info"), "{f}");
    }
}
