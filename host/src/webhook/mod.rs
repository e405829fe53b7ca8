//! `lkguard serve`: the validating admission webhook.
//!
//! HTTPS only (rustls), HTTP/1.1 and HTTP/2 on one port (tokio + hyper).
//! `POST /validate` answers an `admission.k8s.io/v1` AdmissionReview with the
//! verdict of the same policies `lkguard check` runs; `GET /healthz`,
//! `/readyz` (ready once every policy is compiled) and `/metrics`.
//! Every evaluation gets fresh wasm instances, under the engine's deadline
//! and memory cap, a request deadline below the API server's webhook
//! timeout, and a concurrency limit; a policy that fails denies (fail
//! closed) and the server goes on serving.

pub mod metrics;
pub mod review;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::check::{self, Options};
use crate::engine::Lifetime;
use metrics::Metrics;
use review::{Reviewer, Verdict};

/// The API server sends at most 3 MiB in a request body.
pub const MAX_BODY: usize = 3 << 20;

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// How lkguard.yaml, settings and limits are found: as for `check`.
    pub check: Options,
    /// Answer within this, whatever the policies do: the webhook's
    /// `timeoutSeconds` is 10 in deploy/webhook, so stay well below it.
    pub request_deadline: Duration,
    /// Evaluations at once; more wait (within the request deadline).
    pub concurrency: usize,
    /// A process that fills the compiled-component cache before the server
    /// maps its policies from it (see [`compile_in_child`]).
    pub precompile: Option<std::process::Command>,
}

/// Set on the child that `precompile` starts: compile into the cache, exit.
pub const COMPILE_ONLY_ENV: &str = "LKGUARD_COMPILE_ONLY";

/// Compiling in-process leaves a server holding what Cranelift allocated and
/// freed in fragments glibc cannot return (a cold start measured 78-90 MiB
/// RSS idle against 20 MiB warm). A child compiles into the cache and exits,
/// taking all of it along; the server then starts warm. Best effort: if the
/// child fails, the server compiles itself.
fn compile_in_child(mut command: std::process::Command) {
    let started = Instant::now();
    match command.status() {
        Ok(status) if status.success() => tracing::info!(
            millis = started.elapsed().as_millis() as u64,
            "policies compiled into the cache by a child process"
        ),
        Ok(status) => tracing::warn!(%status, "the compiling child failed; compiling in-process"),
        Err(e) => {
            tracing::warn!(error = %e, "could not start the compiling child; compiling in-process")
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServeError {
    #[error("TLS: {0}")]
    #[diagnostic(code(lkguard::tls))]
    Tls(#[from] tls::TlsError),
    #[error("listening on {addr}: {message}")]
    #[diagnostic(code(lkguard::listen))]
    Listen { addr: SocketAddr, message: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Check(#[from] check::CheckError),
}

struct Shared {
    /// Set once every policy is loaded: the server is ready from then on.
    reviewer: OnceLock<Arc<Reviewer>>,
    metrics: Metrics,
    permits: Semaphore,
    request_deadline: Duration,
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.into())))
        .expect("static response parts are valid")
}

fn json(value: &impl serde::Serialize) -> Response<Body> {
    // Serialising a kube-core AdmissionReview cannot fail: string keys only.
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// Runs until SIGTERM or SIGINT, then drains in-flight requests.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let resolver = Arc::new(tls::ReloadingCert::new(
        opts.tls_cert.clone(),
        opts.tls_key.clone(),
    )?);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(resolver)));
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: opts.listen,
            message: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: opts.listen,
        message: e.to_string(),
    })?;
    let shared = Arc::new(Shared {
        reviewer: OnceLock::new(),
        metrics: Metrics::new(),
        permits: Semaphore::new(opts.concurrency.max(1)),
        request_deadline: opts.request_deadline,
    });
    // Compile (or map from the cache) every policy while connections are
    // already served: /healthz answers, /readyz and /validate say 503 until
    // the policies are loaded.
    let check_options = opts.check;
    let request_deadline = opts.request_deadline;
    let precompile = opts.precompile;
    let mut loading = Some(tokio::task::spawn_blocking(move || {
        if let Some(command) = precompile {
            compile_in_child(command);
        }
        Reviewer::load(&check_options, Lifetime::Serving, Some(request_deadline))
    }));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = Arc::clone(&shared);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(route(shared, req).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            loaded = async { loading.as_mut().expect("guarded by is_some").await }, if loading.is_some() => {
                loading = None;
                let reviewer = loaded.map_err(|e| ServeError::Listen {
                    addr: local,
                    message: format!("loading policies crashed: {e}"),
                })??;
                release_compiler_memory();
                let policies = reviewer.registry.policies.len();
                let _ = shared.reviewer.set(Arc::new(reviewer));
                tracing::info!(%local, policies, "ready");
                // Tests and scripts read the address from here once the
                // server is ready (port 0 picks one).
                println!("lkguard serve: listening on https://{local}");
            }
            _ = &mut shutdown => {
                tracing::info!("shutting down: draining in-flight requests");
                break;
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(25), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; closing remaining connections");
    }
    Ok(())
}

/// When the server had to compile the policies itself (no cache, or the
/// compiling child failed), Cranelift's freed working memory sits in glibc's
/// per-thread arenas; a long-lived process hands back what it can, once.
fn release_compiler_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// SIGTERM (what the kubelet sends) or Ctrl-C; Ctrl-C alone where there
/// are no Unix signals (the Windows build of the wheel).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if shared.reviewer.get().is_some() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "compiling policies\n")
            }
        }
        (&Method::GET, "/metrics") => Response::builder()
            .header(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(Full::new(Bytes::from(shared.metrics.render())))
            .expect("static response parts are valid"),
        (&Method::POST, "/validate") => validate(shared, req).await,
        (_, "/validate") => text(StatusCode::METHOD_NOT_ALLOWED, "POST an AdmissionReview\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn validate(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        shared.metrics.request("invalid");
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over {MAX_BODY} bytes\n"),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            shared.metrics.request("invalid");
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over {MAX_BODY} bytes\n"),
                )
            } else {
                text(StatusCode::BAD_REQUEST, format!("reading the body: {e}\n"))
            };
        }
    };
    let request = match review::parse(&body) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            shared.metrics.request("invalid");
            tracing::info!(error = %e, "rejected a malformed AdmissionReview");
            return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let Some(reviewer) = shared.reviewer.get().cloned() else {
        shared.metrics.request("invalid");
        return text(StatusCode::SERVICE_UNAVAILABLE, "compiling policies\n");
    };
    let deadline = shared.request_deadline;
    let evaluation = {
        let shared = Arc::clone(&shared);
        let request = Arc::clone(&request);
        async move {
            let _permit = shared.permits.acquire().await.ok()?;
            let mut timings = Vec::new();
            let verdict = reviewer.review(&request, &mut timings).await;
            Some((verdict, timings))
        }
    };
    let verdict = match tokio::time::timeout(deadline, evaluation).await {
        Ok(Some((verdict, timings))) => {
            for (policy, took) in timings {
                shared.metrics.evaluation(&policy, took);
            }
            verdict
        }
        Ok(None) => fail_closed("an evaluation thread crashed".into()),
        Err(_) => fail_closed(format!(
            "the evaluation did not finish within the request deadline of {} ms",
            deadline.as_millis()
        )),
    };
    let label = if verdict.allowed { "allowed" } else { "denied" };
    shared.metrics.request(label);
    for rule in &verdict.denied_rules {
        shared.metrics.denial(rule);
    }
    tracing::info!(
        uid = %request.uid,
        operation = %request.operation,
        kind = %request.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        dry_run = request.dry_run,
        verdict = label,
        rules = ?verdict.rules,
        micros = started.elapsed().as_micros() as u64,
        "reviewed"
    );
    json(&request.respond(&verdict))
}

fn fail_closed(reason: String) -> Verdict {
    Verdict {
        allowed: false,
        reasons: vec![format!("lkguard could not evaluate the object: {reason}")],
        ..Verdict::default()
    }
}
