//! A fault-injecting HTTP proxy for tests: it sits between an AWS client and
//! moto and, for the first N requests, answers with a fault instead of
//! forwarding — a 500, a throttling error in the service's own protocol, a
//! slow answer, or no answer at all — then forwards everything else
//! unchanged. It lets a test show that the bounded retries of `sdk-config`
//! ride out a brief fault and give up, clearly and in time, on a lasting one.
//!
//! It also counts the TCP connections its clients open, by AWS service (the
//! service of a connection's first request, from its signature). moto answers
//! every request with `Connection: close`, which would force a new connection
//! per request whatever the client does; the proxy keeps its clients'
//! connections open (it drops that hop-by-hop header and opens its own to
//! moto), so the count shows whether a client reuses its connections.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// Upstreams by AWS service (the signing name), over `upstream`.
    routes: BTreeMap<String, String>,
    plan: Plan,
    seen: AtomicU64,
    faulted: AtomicU64,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Held while a request is at the upstream: one at a time.
    serial: Option<tokio::sync::Mutex<()>>,
    /// Connections accepted, in all and by the service of their first request.
    connections: AtomicU64,
    by_service: Mutex<BTreeMap<String, u64>>,
    /// Every forwarded request: its `X-Amz-Target` (the JSON protocols'
    /// operation) and its body.
    recorded: Mutex<Vec<(String, Bytes)>>,
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
        Self::start_routed(upstream, plan, serial, BTreeMap::new()).await
    }

    async fn start_routed(
        upstream: &str,
        plan: Plan,
        serial: bool,
        routes: BTreeMap<String, String>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            routes,
            plan,
            seen: AtomicU64::new(0),
            faulted: AtomicU64::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
            serial: serial.then(|| tokio::sync::Mutex::new(())),
            connections: AtomicU64::new(0),
            by_service: Mutex::new(BTreeMap::new()),
            recorded: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                s.connections.fetch_add(1, Ordering::SeqCst);
                let first = Arc::new(OnceLock::<()>::new());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        first.get_or_init(|| {
                            let service = service_of(&req);
                            let mut counts = s.by_service.lock().unwrap_or_else(|p| p.into_inner());
                            *counts.entry(service).or_default() += 1;
                        });
                        handle(s.clone(), req)
                    });
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
    /// The bodies of the forwarded requests whose `X-Amz-Target` ends with
    /// `operation` (e.g. `AdminSetUserMFAPreference`), oldest first, as
    /// JSON: what the client sent at the wire, whatever the upstream made
    /// of it.
    pub fn requests_to(&self, operation: &str) -> Vec<serde_json::Value> {
        self.state
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(target, _)| target.rsplit('.').next() == Some(operation))
            .filter_map(|(_, body)| serde_json::from_slice(body).ok())
            .collect()
    }

    /// AWS calls seen (a function's warm-up `GET /` is not one).
    pub fn requests(&self) -> u64 {
        self.state.seen.load(Ordering::SeqCst)
    }

    /// Requests that got the fault.
    pub fn faulted(&self) -> u64 {
        self.state.faulted.load(Ordering::SeqCst)
    }

    /// A proxy that faults nothing: for counting connections.
    pub async fn passthrough(upstream: &str) -> std::io::Result<Self> {
        Self::start(upstream, Plan::first(0, Fault::ServerError)).await
    }

    /// A pass-through proxy that sends each AWS service named in `routes`
    /// (by its signing name, e.g. `dynamodb`) to an upstream of its own and
    /// every other request to `upstream`: one endpoint for the client, as
    /// LocalStack gives, over more than one moto.
    pub async fn passthrough_routed(
        upstream: &str,
        routes: &[(&str, String)],
    ) -> std::io::Result<Self> {
        let routes = routes
            .iter()
            .map(|(service, url)| ((*service).to_owned(), url.trim_end_matches('/').to_owned()))
            .collect();
        Self::start_routed(upstream, Plan::first(0, Fault::ServerError), false, routes).await
    }

    /// A pass-through proxy served by a thread of its own, for callers that
    /// block their runtime (the Encryption SDK waits for KMS by blocking the
    /// thread of a `current_thread` runtime, which would starve a proxy
    /// spawned on it).
    pub fn passthrough_on_own_thread(upstream: &str) -> std::io::Result<Self> {
        let upstream = upstream.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fault-proxy".to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the proxy");
                rt.block_on(async move {
                    let _ = tx.send(Self::passthrough(&upstream).await);
                    std::future::pending::<()>().await;
                });
            })?;
        rx.recv().map_err(std::io::Error::other)?
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections that carried at least one request, by the AWS service of
    /// their first request (`kms`, `sns`, `cognito-idp`, `dynamodb`…;
    /// `unsigned` for a request without a SigV4 signature).
    pub fn connections_by_service(&self) -> BTreeMap<String, u64> {
        self.state
            .by_service
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The service a SigV4-signed request is for: the fourth part of its
/// credential scope (`Credential=AKID/20261201/us-east-1/kms/aws4_request`).
pub fn service_of<B>(req: &Request<B>) -> String {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|scope| scope.split([',', ' ']).next())
        .and_then(|scope| scope.split('/').nth(3))
        .filter(|s| !s.is_empty())
        .unwrap_or("unsigned")
        .to_owned()
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
    // A function's warm-up (an unsigned `GET /` opening the connection
    // during init, sdk_config::warm) is no AWS call: it is neither counted
    // nor given one of the first `count` faults, so a plan faults the calls
    // it is meant for. Plans for every request (`always`) reach it too.
    let warm_up = service_of(&req) == "unsigned"
        && req.method() == hyper::Method::GET
        && !req.uri().path().starts_with("/moto-api");
    let n = if warm_up {
        0
    } else {
        state.seen.fetch_add(1, Ordering::SeqCst)
    };
    let json_protocol = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    // moto's own admin API is never faulted.
    let is_admin = req.uri().path().starts_with("/moto-api");
    if !is_admin && n < state.plan.count && (!warm_up || state.plan.count == u64::MAX) {
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
    Ok(forward(state, req).await)
}

async fn forward(state: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let upstream = state
        .routes
        .get(&service_of(&req))
        .unwrap_or(&state.upstream)
        .clone();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state
        .recorded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((target, body.clone()));
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{upstream}{path}").parse::<hyper::Uri>() else {
        return response(StatusCode::BAD_GATEWAY, &[], "bad upstream uri".to_owned());
    };
    let mut out = Request::new(Full::new(body));
    *out.method_mut() = parts.method;
    *out.uri_mut() = uri;
    *out.headers_mut() = parts.headers;
    // The upstream exchange runs in a task of its own, which holds the
    // one-at-a-time lock until moto has answered: when the client gives up
    // (its SDK timeout) and drops this request, moto is still working on
    // it, and the next request must not reach moto before it is done.
    let task = tokio::spawn(async move {
        let _one_at_a_time = match &state.serial {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        match state.client.request(out).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                // Hop-by-hop: moto's `Connection: close` is about the proxy's
                // connection to moto, not the client's to the proxy.
                parts.headers.remove(hyper::header::CONNECTION);
                parts.headers.remove("keep-alive");
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
    });
    task.await.unwrap_or_else(|e| {
        response(
            StatusCode::BAD_GATEWAY,
            &[],
            format!("upstream task failed: {e}"),
        )
    })
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

    /// An upstream that answers 200 "upstream" to everything and, like moto,
    /// `Connection: close`.
    async fn upstream() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = l.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                        let mut r = Response::new(Full::new(Bytes::from("upstream")));
                        r.headers_mut().insert(
                            "connection",
                            hyper::header::HeaderValue::from_static("close"),
                        );
                        Ok::<_, Infallible>(r)
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
    async fn counts_connections_by_service_and_keeps_them_open() {
        let p = FaultProxy::passthrough(&upstream().await).await.unwrap();
        let host = p.url().trim_start_matches("http://").to_owned();
        let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00";
        for _ in 0..3 {
            let req = format!(
                "POST / HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Length: 2\r\n\r\n{{}}"
            );
            s.write_all(req.as_bytes()).await.unwrap();
            // Read until the 8-byte body has come (it may follow the head).
            let mut got = Vec::new();
            let mut buf = vec![0u8; 4096];
            while !got.ends_with(b"upstream") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "the proxy closed the connection");
                got.extend_from_slice(&buf[..n]);
            }
            let answer = String::from_utf8_lossy(&got).to_lowercase();
            assert!(
                answer.starts_with("http/1.1 200") && answer.ends_with("upstream"),
                "{answer}"
            );
            assert!(!answer.contains("connection: close"), "{answer}");
        }
        // Three requests on one connection; then one unsigned on another.
        let c = raw_post(&p.url(), "application/json").await;
        assert!(c.ends_with("upstream"), "{c}");
        assert_eq!(p.requests(), 4);
        assert_eq!(p.connections(), 2);
        let by = p.connections_by_service();
        assert_eq!(by.get("kms"), Some(&1));
        assert_eq!(by.get("unsigned"), Some(&1));
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
