//! A fault-injecting HTTP proxy for tests: it sits between an AWS client and
//! moto and, for the first N requests, answers with a fault instead of
//! forwarding — a 500, a throttling error in the service's own protocol, a
//! slow answer, or no answer at all — then forwards everything else
//! unchanged. It lets a test show that the bounded retries of `sdk-config`
//! ride out a brief fault and give up, clearly and in time, on a lasting one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

/// What the proxy does to a faulted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `500 Internal Server Error` with the protocol's error body.
    ServerError,
    /// A throttling error (`ThrottlingException` in JSON protocols,
    /// `Throttling` in the query/XML protocol), status 400.
    Throttling,
    /// Wait this long, then forward (a slow service).
    Slow(Duration),
    /// Never answer (a black hole: only the client's timeout ends it).
    Hang,
}

/// Which requests are faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub fault: Fault,
    /// The first `count` requests get the fault; `u64::MAX` means all.
    pub count: u64,
}

impl Plan {
    pub fn first(count: u64, fault: Fault) -> Self {
        Self { fault, count }
    }
    pub fn always(fault: Fault) -> Self {
        Self {
            fault,
            count: u64::MAX,
        }
    }
}

struct State {
    upstream: String,
    plan: Plan,
    seen: AtomicU64,
    faulted: AtomicU64,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Held while a request is at the upstream: one at a time.
    serial: Option<tokio::sync::Mutex<()>>,
}

/// A running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. moto's `http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, plan: Plan) -> std::io::Result<Self> {
        Self::start_with(upstream, plan, false).await
    }

    /// A proxy that faults nothing and hands moto one request at a time.
    /// moto's server is threaded and applies a conditional write as a read
    /// then a write, with no lock: two concurrent `UpdateItem`s can both pass
    /// a condition that only one may pass in DynamoDB, which applies each
    /// write to an item atomically. Serializing the requests restores that
    /// guarantee; the clients stay as concurrent as before.
    pub async fn serializing(upstream: &str) -> std::io::Result<Self> {
        Self::start_with(upstream, Plan::first(0, Fault::ServerError), true).await
    }

    async fn start_with(upstream: &str, plan: Plan, serial: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            plan,
            seen: AtomicU64::new(0),
            faulted: AtomicU64::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
            serial: serial.then(|| tokio::sync::Mutex::new(())),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, state })
    }

    /// The proxy's URL, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.seen.load(Ordering::SeqCst)
    }

    /// Requests that got the fault.
    pub fn faulted(&self) -> u64 {
        self.state.faulted.load(Ordering::SeqCst)
    }
}

fn response(status: StatusCode, headers: &[(&str, String)], body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// An error answer in the protocol the request used: JSON for
/// `application/x-amz-json-*` (Cognito, KMS, Secrets Manager), XML for the
/// query protocol (SNS).
fn error_answer(
    json_protocol: bool,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response<Full<Bytes>> {
    if json_protocol {
        response(
            status,
            &[
                ("content-type", "application/x-amz-json-1.1".to_owned()),
                ("x-amzn-errortype", code.to_owned()),
                ("x-amzn-requestid", "fault-proxy".to_owned()),
            ],
            format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        )
    } else {
        let kind = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        response(
            status,
            &[("content-type", "text/xml".to_owned())],
            format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        )
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = state.seen.fetch_add(1, Ordering::SeqCst);
    let json_protocol = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    // moto's own admin API is never faulted.
    let is_admin = req.uri().path().starts_with("/moto-api");
    if !is_admin && n < state.plan.count {
        state.faulted.fetch_add(1, Ordering::SeqCst);
        match state.plan.fault {
            Fault::ServerError => {
                return Ok(error_answer(
                    json_protocol,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalFailure",
                    "injected server error",
                ));
            }
            Fault::Throttling => {
                let code = if json_protocol {
                    "ThrottlingException"
                } else {
                    "Throttling"
                };
                return Ok(error_answer(
                    json_protocol,
                    StatusCode::BAD_REQUEST,
                    code,
                    "Rate exceeded",
                ));
            }
            Fault::Slow(d) => tokio::time::sleep(d).await,
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
    }
    Ok(forward(&state, req).await)
}

async fn forward(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{}{}", state.upstream, path).parse::<hyper::Uri>() else {
        return response(StatusCode::BAD_GATEWAY, &[], "bad upstream uri".to_owned());
    };
    let _one_at_a_time = match &state.serial {
        Some(lock) => Some(lock.lock().await),
        None => None,
    };
    let mut out = Request::new(Full::new(body));
    *out.method_mut() = parts.method;
    *out.uri_mut() = uri;
    *out.headers_mut() = parts.headers;
    match state.client.request(out).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::from_parts(parts, Full::new(body))
        }
        Err(e) => response(
            StatusCode::BAD_GATEWAY,
            &[],
            format!("upstream failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn raw_post(url: &str, content_type: &str) -> String {
        let host = url.trim_start_matches("http://");
        let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// An upstream that answers 200 "upstream" to everything.
    async fn upstream() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = l.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("upstream"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn faults_the_first_n_then_forwards() {
        let up = upstream().await;
        let p = FaultProxy::start(&up, Plan::first(2, Fault::Throttling))
            .await
            .unwrap();
        let a = raw_post(&p.url(), "application/x-amz-json-1.1").await;
        assert!(
            a.starts_with("HTTP/1.1 400") && a.contains("ThrottlingException"),
            "{a}"
        );
        let b = raw_post(&p.url(), "application/x-www-form-urlencoded").await;
        assert!(b.contains("<Code>Throttling</Code>"), "{b}");
        let c = raw_post(&p.url(), "application/x-amz-json-1.1").await;
        assert!(
            c.starts_with("HTTP/1.1 200") && c.ends_with("upstream"),
            "{c}"
        );
        assert_eq!((p.requests(), p.faulted()), (3, 2));
    }

    #[tokio::test]
    async fn server_errors_use_status_500() {
        let up = upstream().await;
        let p = FaultProxy::start(&up, Plan::always(Fault::ServerError))
            .await
            .unwrap();
        let a = raw_post(&p.url(), "application/x-amz-json-1.1").await;
        assert!(a.starts_with("HTTP/1.1 500"), "{a}");
    }

    #[tokio::test]
    async fn slow_faults_delay_then_forward() {
        let up = upstream().await;
        let p = FaultProxy::start(&up, Plan::first(1, Fault::Slow(Duration::from_millis(300))))
            .await
            .unwrap();
        let t = std::time::Instant::now();
        let a = raw_post(&p.url(), "application/json").await;
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(a.ends_with("upstream"), "{a}");
    }
}
