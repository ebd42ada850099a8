//! tidemark-test-registry: an in-memory, Confluent-compatible schema registry for tidemark's
//! tests and quickstart. NOT for production (it forgets everything when it stops): there, use
//! Confluent Schema Registry, Karapace or Apicurio's Confluent-compatible API.
//!
//!   tidemark-test-registry [--listen 127.0.0.1:58081]
//!
//! Avro only, with real compatibility checks (apache-avro's reader/writer rules) for NONE,
//! BACKWARD, FORWARD, FULL and their transitive levels. See [`api`] for the endpoints.

mod api;
mod registry;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use registry::Registry;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// The largest request body taken (a schema is far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

async fn serve(
    registry: Arc<Mutex<Registry>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (status, answer) = if body.len() > MAX_BODY {
        (
            413,
            serde_json::json!({"error_code": 413, "message": "request body too large"}),
        )
    } else {
        let mut registry = match registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        api::handle(
            &mut registry,
            &api::Request {
                method: &method,
                path: &path,
                query: &query,
                body: &body,
            },
        )
    };
    eprintln!("{method} {path} -> {status}");
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(response)
}

/// The command line: where to listen, and the certificate and key of `https` (PEM files).
struct Args {
    listen: SocketAddr,
    tls: Option<(String, String)>,
}

fn arguments() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:58081".to_string();
    let (mut cert, mut key) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a PEM file")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a PEM file")?),
            "-h" | "--help" => {
                println!("tidemark-test-registry [--listen 127.0.0.1:58081] [--tls-cert cert.pem --tls-key key.pem]: an in-memory Confluent-compatible schema registry for tests (not for production)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Args {
        listen: listen
            .parse()
            .map_err(|e| format!("--listen {listen}: {e}"))?,
        tls,
    })
}

/// The TLS acceptor of `--tls-cert` / `--tls-key`.
fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {key}: {e}"))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| format!("TLS: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match arguments() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tidemark-test-registry: {e}");
            std::process::exit(2);
        }
    };
    let addr = args.listen;
    let tls = match args
        .tls
        .as_ref()
        .map(|(c, k)| tls_acceptor(c, k))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tidemark-test-registry: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tidemark-test-registry: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("tidemark-test-registry: listening on {scheme}://{addr} (in memory, for tests only)");
    let registry = Arc::new(Mutex::new(Registry::default()));
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tidemark-test-registry: cannot watch SIGTERM: {e}");
                std::process::exit(1);
            }
        };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("tidemark-test-registry: accept: {e}");
                    continue;
                }
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let registry = registry.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(registry.clone(), req));
            let served = match tls {
                None => {
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(e) => {
                        eprintln!("tidemark-test-registry: TLS handshake: {e}");
                        return;
                    }
                },
            };
            if let Err(e) = served {
                eprintln!("tidemark-test-registry: connection: {e}");
            }
        });
    }
    eprintln!("tidemark-test-registry: stopped");
}
