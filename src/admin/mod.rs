//! The admin HTTP API (`admin.listen`, `127.0.0.1:8083` by default): health, Prometheus
//! metrics, the connectors' state, and requests to them (snapshot, pause, resume, restart).
//! `api/openapi.yaml` describes every endpoint; `GET /openapi.yaml` serves it.
//!
//! Access: on a loopback address anyone on the machine may call it, unless a token is set; a
//! non-loopback address needs a token (refused at load time otherwise). With a token, every
//! request must carry `Authorization: Bearer <token>` (else 401), the health endpoints too:
//! the docker-compose healthcheck (`tidemark health`) reads the token from the same settings.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{AdminSettings, Settings};
use crate::error::{Error, Result};

mod routes;

/// The OpenAPI document of the API (served at `GET /openapi.yaml`).
pub const OPENAPI: &str = include_str!("../../api/openapi.yaml");

/// The largest request body read (a snapshot request is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// What every request handler sees.
struct Shared {
    settings: Arc<Settings>,
    token: Option<crate::config::Secret>,
}

/// Binds the admin address (an error names `admin.listen` when it is taken) and serves until
/// `shutdown`.
pub async fn start(
    admin: &AdminSettings,
    settings: Arc<Settings>,
    shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(admin.listen).await.map_err(|e| {
        Error::definite(format!(
            "admin API: cannot listen on {} (admin.listen in {}; another tidemark, or another \
             program, may hold it; `off` disables the API)",
            admin.listen,
            settings.file.display()
        ))
        .with_source(e)
    })?;
    let addr = listener.local_addr().unwrap_or(admin.listen);
    let shared = Arc::new(Shared {
        token: admin.token.clone(),
        settings,
    });
    tracing::info!(address = %addr, token = shared.token.is_some(), "admin API listening");
    tokio::spawn(serve(listener, shared, shutdown));
    Ok(addr)
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(error = %e, "admin API: accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(peer = %peer, error = %e, "admin API connection");
            }
        });
    }
}

/// Whether `req` carries the token (compared in constant time).
fn authorized(shared: &Shared, req: &Request<Incoming>) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    let Some(given) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if !authorized(shared, &req) {
        let mut r = routes::error(
            hyper::StatusCode::UNAUTHORIZED,
            "this API needs `Authorization: Bearer <token>` (admin.token_env / admin.token_file)",
        );
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return routes::error(
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body: {e}"),
            )
        }
    };
    let response = routes::route(&shared.settings, &method, &path, &body).await;
    tracing::debug!(method = %method, path = %path, status = response.status().as_u16(), "admin API request");
    response
}
