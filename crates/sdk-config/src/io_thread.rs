//! An HTTP client and a sleep that run on one long-lived I/O thread, for
//! clients called from code that makes its own short-lived runtimes.
//!
//! The AWS Encryption SDK calls KMS from synchronous code, through its
//! `escape_to_async`: on a `current_thread` runtime (ours) it spawns a thread
//! with a new runtime for every call and drops it afterwards. The SDK's
//! connection pool outlives that runtime, but the connection's task does not,
//! so every KMS call opened a new connection (on AWS, a new TLS handshake).
//! On a `multi_thread` runtime it uses `block_in_place` + `Handle::block_on`,
//! which can deadlock the whole runtime when the blocked worker is the last
//! active one (aws/aws-encryption-sdk issue 899, pull request 950).
//!
//! [`on_io_thread`] wraps a client so that every request, and the connection
//! task it starts, runs on a runtime of its own thread that lives as long as
//! the process: connections stay pooled across invocations, and a caller's
//! runtime, of either flavour and however busy, has nothing to drive: it only
//! waits for the answer. [`IoThreadSleep`] does the same for the timeouts.
//! The thread starts with the first request, not at init.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use aws_smithy_async::rt::sleep::{AsyncSleep, Sleep};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::runtime::Handle;

/// The I/O thread's runtime, started on first use.
fn io_runtime() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the I/O thread");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("aws-io".to_owned())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("the I/O thread");
        handle
    })
}

/// Aborts the spawned task when the waiting side is dropped (a timeout or a
/// cancelled call), so nothing is left running for nobody.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Runs `future` on the I/O thread and waits for it from any runtime.
fn on_io<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = Result<T, tokio::task::JoinError>> + Send + Sync + 'static {
    AbortOnDrop(io_runtime().spawn(future))
}

/// `inner`, with every request run on the I/O thread.
pub fn on_io_thread(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(IoThreadClient { inner })
}

#[derive(Debug)]
struct IoThreadClient {
    inner: SharedHttpClient,
}

impl HttpClient for IoThreadClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(IoThreadConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct IoThreadConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for IoThreadConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let answer = on_io(async move { inner.call(request).await });
        HttpConnectorFuture::new(async move {
            answer.await.map_err(|e| {
                ConnectorError::other(
                    format!("the I/O thread dropped the request: {e}").into(),
                    None,
                )
            })?
        })
    }
}

/// A sleep (for the SDK's timeouts) timed by the I/O thread's runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoThreadSleep;

impl AsyncSleep for IoThreadSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        let done = on_io(async move { tokio::time::sleep(duration).await });
        Sleep::new(async move {
            let _ = done.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_ends_on_a_runtime_that_has_no_timer() {
        // The caller's runtime has no time driver: only the I/O thread's
        // can end this sleep.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let start = std::time::Instant::now();
        rt.block_on(IoThreadSleep.sleep(Duration::from_millis(50)));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn work_spawned_from_short_lived_runtimes_outlives_them() {
        // A task started through the I/O thread from a runtime that is then
        // dropped keeps running: what keeps a pooled connection alive.
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let _detached = io_runtime().spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                tx.send(()).unwrap();
            });
        });
        drop(rt);
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn a_dropped_wait_aborts_the_task() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let waiting = on_io(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                tx.send(()).unwrap();
            });
            // Give up after 20 ms: the task must not go on to send.
            assert!(
                tokio::time::timeout(Duration::from_millis(20), waiting)
                    .await
                    .is_err()
            );
        });
        // The sender was dropped with the aborted task.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
