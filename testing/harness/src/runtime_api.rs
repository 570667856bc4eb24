//! A Lambda Runtime API of our own, for tests and benchmarks.
//!
//! [`RuntimeApi::start`] listens on a loopback port and speaks the part of
//! the Runtime API a function uses (`/runtime/invocation/next`, `…/response`,
//! `…/error`, `/runtime/init/error`). [`RuntimeApi::spawn`] starts a function
//! binary with `AWS_LAMBDA_RUNTIME_API` pointing at it, exactly as Lambda
//! would, and [`Function::invoke`] hands it one event and waits for the
//! answer. Timings are taken where Lambda takes them: init is spawn → first
//! `GET /invocation/next`; an invocation is the event leaving this server →
//! the response arriving.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// One event waiting to be fetched by the function.
struct Pending {
    id: String,
    body: Vec<u8>,
    deadline_ms: u128,
}

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST /invocation/{id}/response`.
    Response(Value),
    /// `POST /invocation/{id}/error` (the Diagnostic JSON).
    Error(Value),
}

impl Answer {
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }
    pub fn value(&self) -> &Value {
        match self {
            Self::Response(v) | Self::Error(v) => v,
        }
    }
    /// `errorType` of an error answer.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::Error(v) => v.get("errorType").and_then(Value::as_str),
            Self::Response(_) => None,
        }
    }
    /// `errorMessage` of an error answer.
    pub fn error_message(&self) -> Option<&str> {
        match self {
            Self::Error(v) => v.get("errorMessage").and_then(Value::as_str),
            Self::Response(_) => None,
        }
    }
}

struct Shared {
    queue_rx: Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_next: Mutex<Option<Instant>>,
    first_next_notify: Notify,
    init_error: Mutex<Option<Value>>,
    init_error_notify: Notify,
}

/// A running Runtime API server.
pub struct RuntimeApi {
    addr: SocketAddr,
    queue_tx: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    next_id: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
pub enum HarnessError {
    /// The function did not reach `GET /invocation/next` in time.
    InitTimeout,
    /// The function reported an init error (`/runtime/init/error`).
    InitFailed(Value),
    /// The function exited.
    Exited(Option<i32>),
    /// No answer within the wait.
    InvokeTimeout,
    Io(std::io::Error),
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InitTimeout => write!(f, "the function did not ask for an event in time"),
            Self::InitFailed(v) => write!(f, "the function reported an init error: {v}"),
            Self::Exited(c) => write!(f, "the function exited (status {c:?})"),
            Self::InvokeTimeout => write!(f, "no answer from the function in time"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl RuntimeApi {
    /// Starts the server on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_rx: Mutex::new(queue_rx),
            waiting: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            first_next_notify: Notify::new(),
            init_error: Mutex::new(None),
            init_error_notify: Notify::new(),
        });
        let server_shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = server_shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| route(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            queue_tx,
            shared,
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Starts `binary` as Lambda would: a clean environment with the Runtime
    /// API address, the usual Lambda variables, and `env`. Its stdout and
    /// stderr (the function's logs) are captured for [`Function::finish`].
    pub async fn spawn(
        &self,
        binary: &Path,
        env: &[(String, String)],
    ) -> Result<Function<'_>, HarnessError> {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", self.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name(binary))
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "local")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        *self.shared.first_next.lock().await = None;
        *self.shared.init_error.lock().await = None;
        let started = Instant::now();
        let child = cmd.spawn().map_err(HarnessError::Io)?;
        let logs = capture(child)?;
        Ok(Function {
            api: self,
            started,
            logs,
        })
    }

    fn new_id(&self) -> String {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012}")
    }
}

fn function_name(binary: &Path) -> String {
    binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function")
        .to_owned()
}

/// The child and the tasks that collect its output.
struct Captured {
    child: Child,
    pid: Option<u32>,
    out: tokio::task::JoinHandle<Vec<u8>>,
    err: tokio::task::JoinHandle<Vec<u8>>,
}

fn capture(mut child: Child) -> Result<Captured, HarnessError> {
    use tokio::io::AsyncReadExt;
    let pid = child.id();
    let mut stdout = child.stdout.take().ok_or(HarnessError::Exited(None))?;
    let mut stderr = child.stderr.take().ok_or(HarnessError::Exited(None))?;
    let out = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf
    });
    let err = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    Ok(Captured {
        child,
        pid,
        out,
        err,
    })
}

/// A function process under the harness.
pub struct Function<'a> {
    api: &'a RuntimeApi,
    started: Instant,
    logs: Captured,
}

/// What a function printed, and its peak memory.
#[derive(Debug, Clone)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set size (VmHWM), in KiB, read just before the stop.
    pub peak_rss_kib: Option<u64>,
}

impl Function<'_> {
    /// Waits until the function asks for its first event; returns the init
    /// time (spawn → first `GET /invocation/next`).
    pub async fn ready(&mut self, within: Duration) -> Result<Duration, HarnessError> {
        let shared = &self.api.shared;
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = *shared.first_next.lock().await {
                return Ok(t.duration_since(self.started));
            }
            if let Some(e) = shared.init_error.lock().await.clone() {
                return Err(HarnessError::InitFailed(e));
            }
            if let Ok(Some(status)) = self.logs.child.try_wait() {
                // An init error may have been posted just before the exit.
                if let Some(e) = shared.init_error.lock().await.clone() {
                    return Err(HarnessError::InitFailed(e));
                }
                return Err(HarnessError::Exited(status.code()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::InitTimeout);
            }
            let wait = (deadline - now).min(Duration::from_millis(20));
            tokio::select! {
                _ = shared.first_next_notify.notified() => {}
                _ = shared.init_error_notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Hands the function one event with `deadline` (sent as
    /// `Lambda-Runtime-Deadline-Ms`) and waits up to `wait` for the answer;
    /// returns it with the latency.
    pub async fn invoke_with(
        &mut self,
        event: &Value,
        deadline: Duration,
        wait: Duration,
    ) -> Result<(Answer, Duration), HarnessError> {
        self.invoke_raw(
            serde_json::to_vec(event).unwrap_or_default(),
            deadline,
            wait,
        )
        .await
    }

    /// [`Self::invoke_with`] with a 5-second deadline and a 10-second wait.
    pub async fn invoke(&mut self, event: &Value) -> Result<(Answer, Duration), HarnessError> {
        self.invoke_with(event, Duration::from_secs(5), Duration::from_secs(10))
            .await
    }

    /// Like [`Self::invoke_with`], with any bytes as the event.
    pub async fn invoke_raw(
        &mut self,
        body: Vec<u8>,
        deadline: Duration,
        wait: Duration,
    ) -> Result<(Answer, Duration), HarnessError> {
        let id = self.api.new_id();
        let (tx, rx) = oneshot::channel();
        self.api.shared.waiting.lock().await.insert(id.clone(), tx);
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(deadline)
            .as_millis();
        let sent = Instant::now();
        self.api
            .queue_tx
            .send(Pending {
                id: id.clone(),
                body,
                deadline_ms,
            })
            .map_err(|_| HarnessError::Exited(None))?;
        let mut rx = rx;
        let end = Instant::now() + wait;
        loop {
            tokio::select! {
                answer = &mut rx => {
                    return answer.map(|a| (a, sent.elapsed())).map_err(|_| HarnessError::InvokeTimeout);
                }
                _ = tokio::time::sleep(Duration::from_millis(25)) => {
                    if let Ok(Some(status)) = self.logs.child.try_wait() {
                        self.api.shared.waiting.lock().await.remove(&id);
                        return Err(HarnessError::Exited(status.code()));
                    }
                    if Instant::now() >= end {
                        self.api.shared.waiting.lock().await.remove(&id);
                        return Err(HarnessError::InvokeTimeout);
                    }
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.logs.pid
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.logs.child.try_wait(), Ok(None))
    }

    /// Stops the function (as Lambda does when it freezes it for good) and
    /// returns its output and peak memory.
    pub async fn finish(mut self) -> Finished {
        let peak_rss_kib = self.logs.pid.and_then(peak_rss_kib);
        let _ = self.logs.child.start_kill();
        let _ = self.logs.child.wait().await;
        let stdout = self.logs.out.await.unwrap_or_default();
        let stderr = self.logs.err.await.unwrap_or_default();
        Finished {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            peak_rss_kib,
        }
    }
}

/// VmHWM of a live process, in KiB (Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match (method.as_str(), parts.as_slice()) {
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => next(&shared).await,
        (
            "POST",
            [
                "2018-06-01",
                "runtime",
                "invocation",
                id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            let answer = if *kind == "response" {
                Answer::Response(value)
            } else {
                Answer::Error(value)
            };
            match shared.waiting.lock().await.remove(*id) {
                Some(tx) => {
                    let _ = tx.send(answer);
                    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
                }
                None => reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorMessage":"unknown request id"}"#,
                ),
            }
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            *shared.init_error.lock().await = Some(value);
            shared.init_error_notify.notify_waiters();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, "{}"),
    };
    Ok(response)
}

async fn next(shared: &Shared) -> Response<Body> {
    {
        let mut first = shared.first_next.lock().await;
        if first.is_none() {
            *first = Some(Instant::now());
            shared.first_next_notify.notify_waiters();
        }
    }
    let pending = shared.queue_rx.lock().await.recv().await;
    let Some(p) = pending else {
        return reply(StatusCode::GONE, "{}");
    };
    let mut r = reply(StatusCode::OK, p.body);
    let h = r.headers_mut();
    let put = |h: &mut hyper::HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put(h, "lambda-runtime-aws-request-id", p.id);
    put(h, "lambda-runtime-deadline-ms", p.deadline_ms.to_string());
    put(
        h,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:local".to_owned(),
    );
    put(
        h,
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
    );
    put(h, "content-type", "application/json".to_owned());
    r
}

/// The workspace's target folder (CARGO_TARGET_DIR or `<workspace>/target`),
/// for tests that run the binaries cargo built.
pub fn target_dir(workspace_root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root.join("target"))
}

/// A Runtime API that lives as long as the process, so that the function
/// handles it gives out can move into tasks (tests and tools only).
pub async fn start_static() -> std::io::Result<&'static RuntimeApi> {
    Ok(Box::leak(Box::new(RuntimeApi::start().await?)))
}

/// `n` instances of `binary`, all serving `api`, as Lambda scales out: each
/// event goes to whichever instance asks first.
pub async fn spawn_instances(
    api: &'static RuntimeApi,
    binary: &Path,
    env: &[(String, String)],
    n: usize,
) -> Result<Vec<Function<'static>>, HarnessError> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut f = api.spawn(binary, env).await?;
        f.ready(Duration::from_secs(10)).await?;
        out.push(f);
    }
    Ok(out)
}

/// Sends every event through the instances, all at once (each instance's
/// share one after the other), and answers in the events' order. The
/// instances are stopped only when every event is answered: they serve one
/// queue, so one may be handling another's event.
pub async fn invoke_concurrently(
    functions: Vec<Function<'static>>,
    events: Vec<Value>,
) -> Vec<Result<Answer, HarnessError>> {
    let per = events.len().div_ceil(functions.len().max(1)).max(1);
    let mut chunks = events.chunks(per).map(<[Value]>::to_vec);
    let mut tasks = Vec::new();
    for mut f in functions {
        let Some(chunk) = chunks.next() else { break };
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for e in &chunk {
                answers.push(f.invoke(e).await.map(|(a, _)| a));
            }
            (answers, f)
        }));
    }
    let mut all = Vec::new();
    let mut done = Vec::new();
    for t in tasks {
        match t.await {
            Ok((answers, f)) => {
                all.extend(answers);
                done.push(f);
            }
            Err(_) => all.push(Err(HarnessError::Exited(None))),
        }
    }
    for f in done {
        f.finish().await;
    }
    all
}
