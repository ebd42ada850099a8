//! The registry binary over real HTTP: started on a free port, spoken to with plain HTTP/1.1
//! requests as Confluent's clients send them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_tidemark-test-registry"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "not listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port }
}

/// One request; (status, content type, body).
fn call(port: u16, method: &str, path: &str, body: &str) -> (u16, String, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Accept: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    (status, content_type, serde_json::from_str(body).unwrap())
}

#[test]
fn registers_checks_and_answers_over_http() {
    let server = start();
    let p = server.port;
    let v1 = r#"{"type":"record","name":"Row","fields":[{"name":"id","type":"long"}]}"#;
    let v2 = r#"{"type":"record","name":"Row","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}]}"#;
    let broken = r#"{"type":"record","name":"Row","fields":[{"name":"id","type":"long"},{"name":"n","type":"int"}]}"#;
    let body = |s: &str| serde_json::json!({ "schema": s }).to_string();

    let (status, ctype, b) = call(p, "POST", "/subjects/t-value/versions", &body(v1));
    assert_eq!((status, b["id"].as_i64()), (200, Some(1)), "{b}");
    assert_eq!(ctype, "application/vnd.schemaregistry.v1+json");
    let (_, _, b) = call(
        p,
        "POST",
        "/compatibility/subjects/t-value/versions/latest",
        &body(v2),
    );
    assert_eq!(b["is_compatible"], true);
    let (status, _, b) = call(p, "POST", "/subjects/t-value/versions", &body(broken));
    assert_eq!((status, b["error_code"].as_i64()), (409, Some(409)), "{b}");
    let (status, _, b) = call(p, "POST", "/subjects/t-value/versions", &body(v2));
    assert_eq!((status, b["id"].as_i64()), (200, Some(2)));
    let (_, _, b) = call(p, "GET", "/subjects/t-value/versions", "");
    assert_eq!(b, serde_json::json!([1, 2]));
    let (_, _, b) = call(p, "GET", "/schemas/ids/2", "");
    assert!(b["schema"].as_str().unwrap().contains("note"));
    let (status, _, b) = call(
        p,
        "PUT",
        "/config/t-value",
        r#"{"compatibility":"FULL_TRANSITIVE"}"#,
    );
    assert_eq!(
        (status, b["compatibility"].as_str()),
        (200, Some("FULL_TRANSITIVE"))
    );
    let (status, _, b) = call(p, "GET", "/subjects/t-value/versions/9", "");
    assert_eq!((status, b["error_code"].as_i64()), (404, Some(40402)));
}
