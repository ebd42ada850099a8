//! `tidemark status` and `tidemark health`: a running daemon's connectors, read from its
//! admin API (the address and token of the daemon file's `admin:`), for a person at a
//! terminal and for a container's healthcheck.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{self, AdminSettings};

/// The answer of an admin API request: status code and body.
struct Answer {
    status: u16,
    body: String,
}

/// The admin settings of the daemon file at `path` (the file alone: no connector password
/// is needed to ask a running daemon).
fn admin_settings(path: &Path) -> Result<AdminSettings, String> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let daemon = config::load_daemon(path, vars.iter().cloned())
        .map_err(|e| format!("configuration error: {e}"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    config::resolve::admin(path, &dir, &daemon.admin, &vars)
        .map_err(|e| format!("configuration error: {e}"))?
        .ok_or_else(|| {
            format!(
                "the admin API is off in {} (admin.listen: off): nothing to ask",
                path.display()
            )
        })
}

/// `GET path` from the admin API (HTTP/1.1, one request per connection).
async fn get(admin: &AdminSettings, path: &str) -> Result<Answer, String> {
    let mut addr = admin.listen;
    if addr.ip().is_unspecified() {
        // Listening on every address: ask on loopback.
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(token) = &admin.token {
            let _ = write!(request, "Authorization: Bearer {}\r\n", token.expose());
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("the admin API at {addr} did not answer within 10 s"))?
        .map_err(|e| {
            format!("cannot reach the admin API at {addr} (is `tidemark run` running with this configuration?): {e}")
        })?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("the admin API at {addr} answered something that is not HTTP"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "the admin API at {addr}: no status in `{}`",
                head.lines().next().unwrap_or("")
            )
        })?;
    Ok(Answer {
        status,
        body: body.to_string(),
    })
}

/// A duration in seconds as a person reads it (`3s`, `4m12s`, `2h05m`).
fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The connectors of `/connectors` as lines for a terminal.
pub fn render(connectors: &[serde_json::Value], now_ms: i64) -> String {
    let mut out = String::new();
    for c in connectors {
        let str_of = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("?");
        let int_of = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_i64());
        let since = int_of(c.get("since_ms")).map_or_else(String::new, |s| {
            format!(" for {}", human_duration(now_ms - s))
        });
        let _ = writeln!(
            out,
            "{} ({}): {}{since}",
            str_of("name"),
            str_of("source"),
            str_of("phase")
        );
        let events: i64 = c
            .get("tables")
            .and_then(|t| t.as_object())
            .map_or(0, |tables| {
                tables
                    .values()
                    .map(|t| {
                        ["create", "update", "delete", "read", "truncate"]
                            .iter()
                            .filter_map(|op| t.get(*op).and_then(|v| v.as_i64()))
                            .sum::<i64>()
                    })
                    .sum()
            });
        let lag = int_of(c.get("lag_ms")).map_or_else(
            || "unknown".into(),
            |l| format!("{:.1}s", l as f64 / 1000.0),
        );
        let committed = int_of(c.get("committed_at_ms")).map_or_else(
            || "not yet".into(),
            |t| format!("{} ago", human_duration(now_ms - t)),
        );
        let _ = writeln!(
            out,
            "  events {events}, lag {lag}, in flight {}, restarts {}, position committed {committed}",
            int_of(c.get("in_flight")).unwrap_or(0),
            int_of(c.get("restarts")).unwrap_or(0),
        );
        if let Some(p) = c.get("position").filter(|p| !p.is_null()) {
            let _ = writeln!(out, "  position {p}");
        }
        if let Some(s) = c.get("snapshot").filter(|s| !s.is_null()) {
            let rows = int_of(s.get("rows")).unwrap_or(0);
            let total = int_of(s.get("estimated_total")).unwrap_or(0);
            let pct = if total > 0 {
                format!(" ({}%)", (rows * 100 / total).min(100))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  snapshot of {}: {rows} of about {total} rows{pct}, {} rows/s, {} table(s) left{}",
                s.get("table").and_then(|t| t.as_str()).unwrap_or("?"),
                int_of(s.get("rows_per_second")).unwrap_or(0),
                int_of(s.get("tables_left")).unwrap_or(0),
                if s.get("paused").and_then(|p| p.as_bool()) == Some(true) {
                    ", paused"
                } else {
                    ""
                }
            );
            // With `snapshot.parallelism`, the other tables read at once.
            let reading = s.get("reading").and_then(|r| r.as_array());
            for t in reading.into_iter().flatten().skip(1) {
                let _ = writeln!(
                    out,
                    "  also reading {}: {} of about {} rows",
                    t.get("table").and_then(|t| t.as_str()).unwrap_or("?"),
                    int_of(t.get("rows")).unwrap_or(0),
                    int_of(t.get("estimated_total")).unwrap_or(0),
                );
            }
        }
        for (key, label) in [
            ("dead_lettered", "dead-lettered"),
            ("skipped", "skipped"),
            ("filtered", "filtered"),
        ] {
            if let Some(n) = int_of(c.get(key)).filter(|n| *n > 0) {
                let _ = writeln!(out, "  {label} {n}");
            }
        }
        if let Some(why) = c.get("not_ready").and_then(|v| v.as_str()) {
            let _ = writeln!(out, "  not ready: {why}");
        } else if let Some(e) = c.get("last_error").filter(|e| !e.is_null()) {
            let _ = writeln!(
                out,
                "  last error ({}): {}",
                e.get("kind").and_then(|k| k.as_str()).unwrap_or("?"),
                e.get("message").and_then(|m| m.as_str()).unwrap_or("?")
            );
        }
    }
    if connectors.is_empty() {
        out.push_str("no connector is running\n");
    }
    out
}

/// `tidemark status`: prints each connector's state (or the raw JSON with `json`).
pub async fn status(config_path: &Path, json: bool) -> i32 {
    let admin = match admin_settings(config_path) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return 2;
        }
    };
    let answer = match get(&admin, "/connectors").await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return 1;
        }
    };
    if answer.status != 200 {
        eprintln!(
            "tidemark: the admin API answered {}: {}",
            answer.status, answer.body
        );
        return 1;
    }
    if json {
        println!("{}", answer.body);
        return 0;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(&answer.body) {
        Ok(connectors) => {
            print!("{}", render(&connectors, crate::event::now_ms()));
            0
        }
        Err(e) => {
            eprintln!("tidemark: the admin API's answer is not a list of connectors: {e}");
            1
        }
    }
}

/// `tidemark health`: exit status 0 when the daemon is ready, 1 (with each connector's reason)
/// when not or when it does not answer. For a container's healthcheck.
pub async fn health(config_path: &Path) -> i32 {
    let admin = match admin_settings(config_path) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tidemark: {e}");
            return 2;
        }
    };
    match get(&admin, "/health/ready").await {
        Ok(a) if a.status == 200 => {
            println!("ready");
            0
        }
        Ok(a) => {
            println!("not ready ({}): {}", a.status, a.body);
            1
        }
        Err(e) => {
            println!("not ready: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_reads_as_lines() {
        let c = serde_json::json!({
            "name": "shop", "source": "postgres", "phase": "snapshotting", "since_ms": 1_000,
            "tables": {"public.t": {"create": 2, "update": 1, "delete": 0, "read": 40, "truncate": 0, "bytes": 9}},
            "lag_ms": 1500, "in_flight": 3, "restarts": 1, "committed_at_ms": 61_000,
            "position": {"lsn": "0/16B3748"},
            "snapshot": {"table": "public.t", "rows": 40, "estimated_total": 160, "rows_per_second": 20, "tables_left": 2, "paused": false,
                         "reading": [{"table": "public.t", "rows": 40, "estimated_total": 160}, {"table": "public.u", "rows": 7, "estimated_total": 90}]},
            "dead_lettered": 0, "skipped": 2, "filtered": 0, "last_error": null
        });
        let text = render(&[c], 125_000);
        assert!(
            text.starts_with("shop (postgres): snapshotting for 2m04s\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "events 43, lag 1.5s, in flight 3, restarts 1, position committed 1m04s ago"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "snapshot of public.t: 40 of about 160 rows (25%), 20 rows/s, 2 table(s) left\n  also reading public.u: 7 of about 90 rows\n"
            ),
            "{text}"
        );
        assert!(text.contains("  skipped 2\n"), "{text}");
        let failed = serde_json::json!({"name": "c", "source": "mysql", "phase": "failed",
            "not_ready": "stopped by a definite error: boom (fix it, then POST .../restart)"});
        assert!(render(&[failed], 0).contains("  not ready: stopped by a definite error: boom"));
        assert_eq!(render(&[], 0), "no connector is running\n");
    }
}
