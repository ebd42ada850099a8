//! The admin API of a running daemon, as an operator uses it: health and readiness, the
//! Prometheus metrics, the connectors' state, pause/resume/restart and snapshot requests, the
//! token, a definite error that leaves the process up (not ready, the error visible) instead
//! of a crash loop, and the OpenAPI document walked against the server.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::common::*;

/// A deployment's defaults: a definite error keeps the process running.
const DEPLOYED: &[(&str, &str)] = &[("TIDEMARK__ON_CONNECTOR_FAILURE", "keep_running")];

/// Polls `GET path` until `done(status, body)` holds (60 s at most).
fn wait_until(address: &str, path: &str, what: &str, done: impl Fn(u16, &Json) -> bool) -> Json {
    let start = Instant::now();
    loop {
        let (status, body) = get_json(address, path);
        if done(status, &body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: still {status} {body} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `tidemark <args>` against the daemon whose admin API is at `api` (the tests' daemons
/// listen on a port of their own: the command is told which); (exit status, stdout + stderr).
fn cli(
    cfg: &TestConfig,
    api: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (std::process::ExitStatus, String) {
    let config = cfg.config_file();
    let mut c = cfg.tidemark(args);
    c.args(["--config", config.to_str().unwrap()])
        .env("TIDEMARK__ADMIN__LISTEN", api)
        .envs(vars.iter().copied());
    let out = c.output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn table_with_rows(
    client: &tokio_postgres::Client,
    t: &str,
    ids: std::ops::RangeInclusive<i64>,
) {
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint, s text);
             INSERT INTO {t} SELECT i, i * 10, 'row ' || i FROM generate_series({}, {}) i;",
            ids.start(),
            ids.end()
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_connectors_pause_resume_restart_and_snapshot_requests() {
    let client = pg().await;
    let t = unique("adm");
    table_with_rows(&client, &t, 1..=3).await;
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let topic = cfg.topic(&format!("public.{t}"));
    let mut daemon = cfg.start_with_env(DEPLOYED);
    let api = daemon.admin_address();

    let (status, live) = get_json(&api, "/health/live");
    assert_eq!((status, live), (200, json!({"live": true})));
    let ready = wait_until(&api, "/health/ready", "ready", |s, _| s == 200);
    assert_eq!(ready["connectors"][0]["name"], json!(cfg.name));
    assert!(consume_n(&topic, 3, Duration::from_secs(60)).len() >= 3);
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (4, 40, 'four')"))
        .await
        .unwrap();
    assert_eq!(consume_n(&topic, 4, Duration::from_secs(60)).len(), 4);

    // The connector's state: streaming, its counts, a committed position and its lag.
    let path = format!("/connectors/{}", cfg.name);
    let c = wait_until(&api, &path, "a committed position", |_, c| {
        c["tables"][format!("public.{t}")]["create"] == json!(1) && !c["position"].is_null()
    });
    assert_eq!(c["phase"], json!("streaming"), "{c}");
    assert_eq!(c["source"], json!("postgres"));
    assert_eq!(c["tables"][format!("public.{t}")]["read"], json!(3), "{c}");
    assert!(c["lag_ms"].as_i64().is_some(), "{c}");
    assert!(c.get("not_ready").is_none(), "{c}");
    let (_, all) = get_json(&api, "/connectors");
    assert_eq!(all.as_array().map(Vec::len), Some(1));

    // Prometheus text: counters per table and op, the state, the lag.
    let (status, metrics) = http(&api, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    let labels = format!("connector=\"{}\",table=\"public.{t}\"", cfg.name);
    for line in [
        format!("tidemark_events_total{{{labels},op=\"read\"}} 3"),
        format!("tidemark_events_total{{{labels},op=\"create\"}} 1"),
        format!(
            "tidemark_connector_state{{connector=\"{}\",source=\"postgres\",state=\"streaming\"}} 1",
            cfg.name
        ),
        format!("tidemark_connector_ready{{connector=\"{}\"}} 1", cfg.name),
    ] {
        assert!(metrics.lines().any(|l| l == line), "no `{line}` in:\n{metrics}");
    }
    // The stage histograms counted the four events (3 snapshot rows, 1 insert), each in one
    // bucket up to +Inf.
    for stage in [
        "tidemark_source_seconds",
        "tidemark_pipeline_seconds",
        "tidemark_produce_ack_seconds",
    ] {
        let count = format!("{stage}_count{{connector=\"{}\"}} 4", cfg.name);
        let inf = format!("{stage}_bucket{{connector=\"{}\",le=\"+Inf\"}} 4", cfg.name);
        assert!(
            metrics.lines().any(|l| l == count) && metrics.lines().any(|l| l == inf),
            "no `{count}` and `{inf}` in:\n{metrics}"
        );
    }
    // The server's share: at least the insert's transaction, read after its commit.
    let transactions = metric_sample(&metrics, "tidemark_commit_to_read_seconds_count", &cfg.name);
    assert!(transactions >= 1, "{transactions} transactions observed");
    for family in [
        "tidemark_source_lag_seconds",
        "tidemark_last_commit_age_seconds",
        "tidemark_produced_bytes_total",
        "tidemark_in_flight_messages",
        "tidemark_producer_queue_messages",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "no {family} in:\n{metrics}"
        );
    }

    // Pause: the connector commits, disconnects, is not ready; nothing flows.
    let (status, _) = http(&api, "POST", &format!("{path}/pause"), None, "");
    assert_eq!(status, 202);
    wait_until(&api, &path, "paused", |_, c| c["phase"] == json!("paused"));
    let (status, ready) = get_json(&api, "/health/ready");
    assert_eq!(status, 503, "{ready}");
    assert!(ready["connectors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("paused"));
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (5, 50, 'five')"))
        .await
        .unwrap();
    assert_eq!(
        consume_n(&topic, 5, Duration::from_secs(3)).len(),
        4,
        "a paused connector produced"
    );
    // Resume: the change made while paused arrives.
    let (status, _) = http(&api, "POST", &format!("{path}/resume"), None, "");
    assert_eq!(status, 202);
    wait_until(&api, "/health/ready", "ready after resume", |s, _| s == 200);
    assert_eq!(consume_n(&topic, 5, Duration::from_secs(60)).len(), 5);

    // A snapshot of a key range, as `tidemark snapshot` asks for it.
    let (status, body) = http(
        &api,
        "POST",
        &format!("{path}/snapshot"),
        None,
        &json!({"tables": [format!("public.{t}")], "from": 1, "to": 2}).to_string(),
    );
    assert_eq!(status, 202, "{body}");
    let read = consume_n(&topic, 7, Duration::from_secs(60));
    let again: Vec<&Json> = read[5..]
        .iter()
        .map(|m| &m.value.as_ref().unwrap()["after"]["id"])
        .collect();
    assert_eq!(again, [&json!(1), &json!(2)], "{}", daemon.log_text());

    // Restart: a new life from the committed position, counted (the resume above began one
    // too).
    let before = get_json(&api, &path).1["restarts"].as_u64().unwrap();
    assert!(before >= 1);
    let (status, _) = http(&api, "POST", &format!("{path}/restart"), None, "");
    assert_eq!(status, 202);
    wait_until(&api, &path, "restarted and streaming", |_, c| {
        c["restarts"].as_u64() > Some(before) && c["phase"] == json!("streaming")
    });

    // Wrong requests say what is wrong.
    let (status, body) = get_json(&api, "/connectors/nobody");
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains(&cfg.name),
        "{body}"
    );
    assert_eq!(http(&api, "GET", "/nothing", None, "").0, 404);
    assert_eq!(http(&api, "POST", "/metrics", None, "").0, 405);
    let (status, body) = http(
        &api,
        "POST",
        &format!("{path}/snapshot"),
        None,
        "{\"tabels\": []}",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("tabels"), "{body}");
    let (status, body) = http(
        &api,
        "POST",
        &format!("{path}/snapshot"),
        None,
        &json!({"tables": ["public.not_mine"]}).to_string(),
    );
    assert_eq!(status, 400, "{body}");

    // A person at a terminal, and a container's healthcheck.
    let (exit, out) = cli(&cfg, &api, &["status"], &[]);
    assert!(exit.success(), "{out}");
    assert!(
        out.contains(&format!("{} (postgres): streaming", cfg.name)),
        "{out}"
    );
    assert!(out.contains("events 7"), "{out}");
    let (exit, out) = cli(&cfg, &api, &["health"], &[]);
    assert!(exit.success(), "{out}");

    daemon.assert_running();
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// The value of the sample `name{connector="c"}` in a metrics text.
fn gauge(metrics: &str, name: &str, connector: &str) -> Option<f64> {
    let prefix = format!("{name}{{connector=\"{connector}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// The source watcher: while the connector is paused the slot keeps the WAL written
/// meanwhile, and both byte gauges (and `/connectors/{name}`) show it; after the resume the
/// connector catches up and the lag in bytes falls.
#[tokio::test(flavor = "multi_thread")]
async fn the_slots_retained_wal_and_the_lag_in_bytes_grow_while_paused() {
    let client = pg().await;
    let t = unique("admb");
    table_with_rows(&client, &t, 1..=1).await;
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let mut env = DEPLOYED.to_vec();
    env.push(("TIDEMARK__ADMIN__SOURCE_POLL_MS", "1000"));
    let mut daemon = cfg.start_with_env(&env);
    let api = daemon.admin_address();
    let path = format!("/connectors/{}", cfg.name);
    let c = wait_until(&api, &path, "a backlog reading", |_, c| {
        c["backlog"]["retained_bytes"].is_u64() && c["phase"] == json!("streaming")
    });
    assert!(
        c["backlog"]["server_position"]
            .as_str()
            .unwrap()
            .contains('/'),
        "an LSN: {c}"
    );
    assert_eq!(
        http(&api, "POST", &format!("{path}/pause"), None, "").0,
        202
    );
    wait_until(&api, &path, "paused", |_, c| c["phase"] == json!("paused"));
    let (_, before) = http(&api, "GET", "/metrics", None, "");
    let retained_before = gauge(
        &before,
        "tidemark_replication_slot_retained_bytes",
        &cfg.name,
    )
    .unwrap_or_else(|| panic!("no retained bytes: {before}"));
    // About 4 MB of WAL for this connector's table while it is paused.
    client
        .batch_execute(&format!(
            "INSERT INTO {t} SELECT i, i, repeat(md5(i::text), 32) FROM generate_series(2, 4001) i"
        ))
        .await
        .unwrap();
    const GREW: f64 = 3_000_000.0;
    let grown = wait_until(&api, &path, "the backlog grows while paused", |_, c| {
        c["backlog"]["retained_bytes"]
            .as_f64()
            .is_some_and(|r| r >= retained_before + GREW)
            && c["backlog"]["behind_bytes"]
                .as_f64()
                .is_some_and(|b| b >= GREW)
    });
    let (_, metrics) = http(&api, "GET", "/metrics", None, "");
    let lag = gauge(&metrics, "tidemark_source_lag_bytes", &cfg.name)
        .unwrap_or_else(|| panic!("no lag bytes: {metrics}"));
    assert!(lag >= GREW, "{lag} in {metrics}");
    assert!(
        gauge(
            &metrics,
            "tidemark_replication_slot_retained_bytes",
            &cfg.name
        )
        .is_some_and(|r| r >= retained_before + GREW),
        "{metrics}"
    );
    let paused_lag = grown["backlog"]["behind_bytes"].as_f64().unwrap();

    assert_eq!(
        http(&api, "POST", &format!("{path}/resume"), None, "").0,
        202
    );
    assert_eq!(
        consume_n(
            &cfg.topic(&format!("public.{t}")),
            4001,
            Duration::from_secs(120)
        )
        .len(),
        4001
    );
    wait_until(
        &api,
        &path,
        "the lag in bytes falls after the resume",
        |_, c| {
            c["backlog"]["behind_bytes"]
                .as_f64()
                .is_some_and(|b| b < paused_lag - GREW / 2.0)
        },
    );
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_definite_error_keeps_the_process_up_not_ready_with_the_error_until_restarted() {
    let client = pg().await;
    let t = unique("admf");
    table_with_rows(&client, &t, 1..=2).await;
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    write(
        cfg.dir.path(),
        &format!("configs/tables/{}/public.{t}.yaml", cfg.name),
        "columns:\n  exclude: [ssn]\n",
    );
    let mut daemon = cfg.start_with_env(DEPLOYED);
    let api = daemon.admin_address();
    let path = format!("/connectors/{}", cfg.name);
    let c = wait_until(&api, &path, "failed", |_, c| c["phase"] == json!("failed"));
    assert_eq!(c["last_error"]["kind"], json!("definite"), "{c}");
    assert!(
        c["last_error"]["message"].as_str().unwrap().contains("ssn"),
        "{c}"
    );
    assert!(c["not_ready"].as_str().unwrap().contains("ssn"), "{c}");
    let (status, ready) = get_json(&api, "/health/ready");
    assert_eq!(status, 503);
    assert!(ready["connectors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("restart"));
    // No crash loop: the process stays up; the healthcheck fails with the reason.
    std::thread::sleep(Duration::from_secs(2));
    daemon.assert_running();
    let (exit, out) = cli(&cfg, &api, &["health"], &[]);
    assert!(!exit.success() && out.contains("ssn"), "{out}");
    let (_, metrics) = http(&api, "GET", "/metrics", None, "");
    assert!(
        metrics.contains(&format!(
            "tidemark_errors_total{{connector=\"{}\",kind=\"definite\"}} 1",
            cfg.name
        )),
        "{metrics}"
    );

    // The cause fixed in the database, a restart request brings it back.
    client
        .batch_execute(&format!("ALTER TABLE {t} ADD COLUMN ssn text"))
        .await
        .unwrap();
    assert_eq!(
        http(&api, "POST", &format!("{path}/restart"), None, "").0,
        202
    );
    wait_until(&api, "/health/ready", "ready after the restart", |s, _| {
        s == 200
    });
    assert_eq!(
        consume_n(
            &cfg.topic(&format!("public.{t}")),
            2,
            Duration::from_secs(60)
        )
        .len(),
        2
    );
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_endpoint_and_a_public_address_needs_one() {
    let client = pg().await;
    let t = unique("admt");
    table_with_rows(&client, &t, 1..=1).await;
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let config = cfg.config_file();
    let config = config.to_str().unwrap();

    // Every address but loopback needs a token: refused when the files are read.
    let (exit, out) = {
        let mut c = cfg.tidemark(&["check", "--offline", "--config", config]);
        c.env("TIDEMARK__ADMIN__LISTEN", "0.0.0.0:0");
        let out = c.output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(exit.code(), Some(2), "{out}");
    assert!(
        out.contains("admin.listen") && out.contains("token"),
        "{out}"
    );

    let token = "s3cret-admin-token";
    let with_token = [
        ("TIDEMARK__ADMIN__TOKEN_ENV", "TM_TEST_ADMIN_TOKEN"),
        ("TM_TEST_ADMIN_TOKEN", token),
    ];
    let mut daemon = cfg.start_with_env(&with_token);
    let api = daemon.admin_address();
    for path in [
        "/health/live",
        "/health/ready",
        "/metrics",
        "/connectors",
        "/openapi.yaml",
    ] {
        let (status, body) = http(&api, "GET", path, None, "");
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(http(&api, "GET", path, Some("wrong"), "").0, 401, "{path}");
    }
    assert_eq!(
        http(
            &api,
            "POST",
            &format!("/connectors/{}/pause", cfg.name),
            None,
            ""
        )
        .0,
        401
    );
    assert_eq!(http(&api, "GET", "/health/live", Some(token), "").0, 200);
    // `tidemark status` takes the token from the same settings.
    let (exit, out) = cli(&cfg, &api, &["status"], &with_token);
    assert!(exit.success() && out.contains(&cfg.name), "{out}");
    daemon.terminate(Duration::from_secs(60));
    assert!(!daemon.log_text().contains(token), "the token in the log");
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// The schema `s`, with a `$ref` followed into `doc`.
fn resolve<'a>(doc: &'a Json, s: &'a Json) -> &'a Json {
    match s.get("$ref").and_then(Json::as_str) {
        Some(r) => {
            let mut at = doc;
            for part in r.trim_start_matches("#/").split('/') {
                at = &at[part];
            }
            assert!(!at.is_null(), "dangling $ref {r}");
            resolve(doc, at)
        }
        None => s,
    }
}

/// Checks `value` against the OpenAPI 3.0 schema `schema` (the subset the document uses:
/// type, required, properties, additionalProperties, items, enum, nullable).
fn check(doc: &Json, schema: &Json, value: &Json, at: &str) {
    let schema = resolve(doc, schema);
    if value.is_null() {
        let typed = schema.get("type").is_some();
        assert!(
            !typed || schema["nullable"] == json!(true),
            "{at}: null where the document says {schema}"
        );
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Json::as_array) {
        assert!(values.contains(value), "{at}: {value} not in {values:?}");
    }
    match schema.get("type").and_then(Json::as_str) {
        Some("object") => {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object: {value}"));
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                assert!(
                    object.contains_key(key),
                    "{at}: no required `{key}` in {value}"
                );
            }
            for (key, v) in object {
                if let Some(p) = schema["properties"].get(key) {
                    check(doc, p, v, &format!("{at}.{key}"));
                } else if let Some(extra) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    check(doc, extra, v, &format!("{at}.{key}"));
                } else {
                    // A schema that lists its properties lists all the server sends.
                    assert!(
                        schema.get("properties").is_none(),
                        "{at}: `{key}` is not in the document's schema"
                    );
                }
            }
        }
        Some("array") => {
            for (i, item) in value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
                .iter()
                .enumerate()
            {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Some("string") => assert!(value.is_string(), "{at}: not a string: {value}"),
        Some("integer") => assert!(
            value.is_i64() || value.is_u64(),
            "{at}: not an integer: {value}"
        ),
        Some("boolean") => assert!(value.is_boolean(), "{at}: not a boolean: {value}"),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_answer_of_the_server() {
    let doc: Json = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.yaml")).unwrap(),
    )
    .unwrap();
    let client = pg().await;
    let t = unique("admo");
    table_with_rows(&client, &t, 1..=2).await;
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let mut daemon = cfg.start_with_env(DEPLOYED);
    let api = daemon.admin_address();
    wait_until(&api, "/health/ready", "ready", |s, _| s == 200);
    let (_, served) = http(&api, "GET", "/openapi.yaml", None, "");
    assert_eq!(
        serde_yaml::from_str::<Json>(&served).unwrap(),
        doc,
        "the server serves the document of the repository"
    );

    // Every operation of the document, with the running connector and with one that is not;
    // GETs first, then the requests (restart last).
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post"] {
            if let Some(op) = item.get(method) {
                operations.push((path.clone(), method, op.clone()));
            }
        }
    }
    let order = |p: &str, m: &str| (m == "post", p.ends_with("/restart"), p.ends_with("/pause"));
    operations.sort_by_key(|(p, m, _)| order(p, m));
    assert!(operations.len() >= 10, "{operations:?}");
    for (path, method, op) in &operations {
        for name in [cfg.name.as_str(), "nobody"] {
            if name == "nobody" && !path.contains("{name}") {
                continue;
            }
            let concrete = path.replace("{name}", name);
            let body = if path.ends_with("/snapshot") {
                json!({"tables": [format!("public.{t}")]}).to_string()
            } else {
                String::new()
            };
            let (status, text) = http(&api, &method.to_uppercase(), &concrete, None, &body);
            let at = format!("{} {concrete} -> {status}", method.to_uppercase());
            let response = op["responses"]
                .get(status.to_string())
                .unwrap_or_else(|| panic!("{at}: status not in the document: {text}"));
            let response = resolve(&doc, response);
            if let Some(schema) = response["content"]["application/json"].get("schema") {
                let value: Json =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{at}: {e}: {text}"));
                check(&doc, schema, &value, &at);
            }
            if name == "nobody" {
                assert_eq!(status, 404, "{at}");
            }
            // A pause is undone before the next request.
            if path.ends_with("/pause") && name != "nobody" {
                http(
                    &api,
                    "POST",
                    &path.replace("{name}", name).replace("/pause", "/resume"),
                    None,
                    "",
                );
                wait_until(&api, "/health/ready", "ready after resume", |s, _| s == 200);
            }
        }
    }
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
