//! The admin API's endpoints (see `api/openapi.yaml`): each answers JSON (the metrics
//! Prometheus text, the document YAML); errors are `{"error": "..."}` with a 4xx status.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::snapshot::signal::Action;
use crate::status::{self, ConnectorStatus, Desired, Phase};

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, "application/json", body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("encoding the answer: {e}"),
        ),
    }
}

pub fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

/// A connector as `GET /connectors/{name}` shows it.
#[derive(Serialize)]
struct ConnectorView {
    name: String,
    source: &'static str,
    /// Why the connector is not ready (absent when it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    not_ready: Option<String>,
    #[serde(flatten)]
    status: status::Snapshot,
}

fn view(c: &ConnectorStatus) -> ConnectorView {
    let status = c.snapshot();
    ConnectorView {
        name: c.name.clone(),
        source: c.kind,
        not_ready: not_ready(&status, status::registry().kafka_outage().as_ref()),
        status,
    }
}

/// Why a connector in `status` is not ready, if it is not (`kafka`: the sink's brokers are
/// all down: nothing moves).
fn not_ready(status: &status::Snapshot, kafka: Option<&status::KafkaDown>) -> Option<String> {
    if let (Some(down), true) = (kafka, status.phase.is_ready()) {
        return Some(format!(
            "Kafka unreachable for {} s ({}); the connector waits, nothing is lost",
            (crate::event::now_ms() - down.since_ms).max(0) / 1000,
            down.reason
        ));
    }
    let error = || {
        status
            .last_error
            .as_ref()
            .map_or_else(String::new, |e| format!(": {}", e.message))
    };
    match status.phase {
        Phase::Snapshotting | Phase::Streaming => None,
        Phase::Starting => Some("starting (connecting to its source and to Kafka)".into()),
        Phase::Paused => Some("paused through the admin API (POST .../resume)".into()),
        Phase::Retrying => Some(format!("restarting after a transient error{}", error())),
        Phase::Failed => Some(format!(
            "stopped by a definite error{} (fix it, then POST .../restart)",
            error()
        )),
        Phase::Stopped => Some("stopped (the daemon is shutting down)".into()),
    }
}

/// `POST /connectors/{name}/snapshot`'s body: what `tidemark snapshot` takes.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    /// `schema.table`s (default: every table of the connector).
    #[serde(default)]
    tables: Vec<String>,
    /// Inclusive key bounds (one table only): a value, or an array for a composite key.
    #[serde(default)]
    from: Option<serde_json::Value>,
    #[serde(default)]
    to: Option<serde_json::Value>,
    /// Only rows matching this SQL condition (needs the connector's signing key).
    #[serde(default, rename = "where")]
    condition: Option<String>,
}

/// A key bound as the signal carries it: one text per key column.
fn key_bound(value: Option<serde_json::Value>) -> Option<Vec<String>> {
    let text = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    value.map(|v| match v {
        serde_json::Value::Array(items) => items.into_iter().map(text).collect(),
        other => vec![text(other)],
    })
}

pub async fn route(settings: &Settings, method: &Method, path: &str, body: &[u8]) -> Reply {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let registry = status::registry();
    match (method, segments.as_slice()) {
        (&Method::GET, ["health", "live"]) => {
            json(StatusCode::OK, &serde_json::json!({"live": true}))
        }
        (&Method::GET, ["health", "ready"]) => ready(registry),
        (&Method::GET, ["metrics"]) => reply(
            StatusCode::OK,
            status::prometheus::CONTENT_TYPE,
            status::prometheus::render(registry),
        ),
        (&Method::GET, ["openapi.yaml"]) => {
            reply(StatusCode::OK, "application/yaml", super::OPENAPI)
        }
        (&Method::GET, ["connectors"]) => {
            let all: Vec<ConnectorView> = registry.all().iter().map(|c| view(c)).collect();
            json(StatusCode::OK, &all)
        }
        (_, ["connectors", name, rest @ ..]) => {
            let Some(c) = registry.get(name) else {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "no running connector `{name}` (connectors: {})",
                        registry
                            .all()
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            };
            connector(settings, &c, method, rest, body).await
        }
        (_, ["health", "live" | "ready"] | ["metrics"] | ["openapi.yaml"] | ["connectors"]) => {
            error(StatusCode::METHOD_NOT_ALLOWED, &format!("{path} takes GET"))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no endpoint {path} (see GET /openapi.yaml)"),
        ),
    }
}

/// Ready when every running connector streams or snapshots; the body says each one's state.
fn ready(registry: &status::Registry) -> Reply {
    let kafka = registry.kafka_outage();
    let connectors: Vec<serde_json::Value> = registry
        .all()
        .iter()
        .map(|c| {
            let s = c.snapshot();
            let mut v = serde_json::json!({ "name": c.name, "state": s.phase });
            if let Some(why) = not_ready(&s, kafka.as_ref()) {
                v["reason"] = why.into();
            }
            v
        })
        .collect();
    let ready = !connectors.is_empty() && connectors.iter().all(|c| c.get("reason").is_none());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &serde_json::json!({ "ready": ready, "connectors": connectors }),
    )
}

async fn connector(
    settings: &Settings,
    c: &ConnectorStatus,
    method: &Method,
    rest: &[&str],
    body: &[u8],
) -> Reply {
    match (method, rest) {
        (&Method::GET, []) => json(StatusCode::OK, &view(c)),
        (&Method::POST, ["pause"]) => {
            c.request(Desired::Paused);
            tracing::info!(connector = %c.name, "pause requested through the admin API");
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"requested": "pause"}),
            )
        }
        (&Method::POST, ["resume"]) => {
            c.request(Desired::Running);
            tracing::info!(connector = %c.name, "resume requested through the admin API");
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"requested": "resume"}),
            )
        }
        (&Method::POST, ["restart"]) => {
            c.request_restart();
            tracing::info!(connector = %c.name, "restart requested through the admin API");
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"requested": "restart"}),
            )
        }
        (&Method::POST, ["snapshot"]) => snapshot(settings, c, body).await,
        (_, [] | ["pause" | "resume" | "restart" | "snapshot"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET /connectors/{name}; POST /connectors/{name}/snapshot|pause|resume|restart",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint (see GET /openapi.yaml)",
        ),
    }
}

/// Writes a snapshot signal into the connector's source, as `tidemark snapshot` does.
async fn snapshot(settings: &Settings, c: &ConnectorStatus, body: &[u8]) -> Reply {
    let request: SnapshotRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SnapshotRequest::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("snapshot request: {e} (expected {{\"tables\": [...], \"from\": ..., \"to\": ..., \"where\": ...}})"),
                )
            }
        }
    };
    let Some(cfg) = settings.connectors.iter().find(|x| x.name == c.name) else {
        return error(StatusCode::NOT_FOUND, "the connector is not configured");
    };
    let signal = match crate::cli::snapshot::signal_for(
        cfg,
        Action::Snapshot,
        request.tables,
        key_bound(request.from),
        key_bound(request.to),
        request.condition,
    ) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    match crate::source::write_signal(cfg, &signal).await {
        Ok(at) => {
            tracing::info!(connector = %c.name, signal = %signal, at = %at, "snapshot requested through the admin API");
            json(
                StatusCode::ACCEPTED,
                &serde_json::json!({"requested": "snapshot", "signal": signal, "written_at": at}),
            )
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            &format!("writing the signal into the source: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bounds_take_values_and_arrays() {
        assert_eq!(key_bound(None), None);
        assert_eq!(
            key_bound(Some(serde_json::json!(42))),
            Some(vec!["42".to_string()])
        );
        assert_eq!(
            key_bound(Some(serde_json::json!([7, "b"]))),
            Some(vec!["7".to_string(), "b".to_string()])
        );
    }
}
