//! `format: avro` against the test registry: schema evolution checked before the first event
//! under a new shape (a compatible change registers a new version; an incompatible one goes by
//! the table's `on_error`, and nothing is lost), and the record subject strategies of a topic
//! that several tables share. (Every type's values: `types::every_type_round_trips_exactly`.)

use std::time::Duration;

use serde_json::json;

use crate::avro_check::{avro_daemon_yaml, consume_avro, registry};
use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_are_checked_before_the_first_event_under_them() {
    let client = pg().await;
    let t = unique("avro_evolve");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, qty int NOT NULL)"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    cfg.append_to_daemon_file(&avro_daemon_yaml("  compatibility: BACKWARD\n"));
    let topic = cfg.topic(&format!("public.{t}"));
    let subject = format!("{topic}-value");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (1, 10), (2, 20)"))
        .await
        .unwrap();
    let read = consume_avro(&topic, 2, Duration::from_secs(60)).await;
    assert_eq!(read.len(), 2, "{}", daemon.log_text());
    assert_eq!(registry().versions(&subject).await.unwrap(), vec![1]);

    // A nullable column: compatible under BACKWARD, a second version, its events carry it.
    client
        .batch_execute(&format!(
            "ALTER TABLE {t} ADD COLUMN note text; INSERT INTO {t} VALUES (3, 30, 'n')"
        ))
        .await
        .unwrap();
    let read = consume_avro(&topic, 3, Duration::from_secs(60)).await;
    assert_eq!(read.len(), 3, "{}", daemon.log_text());
    let after = &read[2].value.as_ref().unwrap()["after"];
    assert_eq!(after, &json!({"id": 3, "qty": 30, "note": "n"}));
    assert_ne!(read[2].value_id, read[0].value_id);
    assert_eq!(registry().versions(&subject).await.unwrap(), vec![1, 2]);

    // A type change: int to text cannot be read by a reader of the new schema from the old
    // data. Under on_error: halt (the default) the connector stops before the event, naming
    // the table, the column and the WAL position.
    client
        .batch_execute(&format!(
            "ALTER TABLE {t} ALTER COLUMN qty TYPE text; INSERT INTO {t} VALUES (4, 'forty', NULL)"
        ))
        .await
        .unwrap();
    let status = daemon.wait_exit(Duration::from_secs(60));
    let log = daemon.log_text();
    assert!(!status.success(), "{log}");
    for needle in [
        &format!("table public.{t}") as &str,
        "column `qty` changed type",
        &subject,
        "incompatible_schema",
        "on_error: dead_letter",
    ] {
        assert!(log.contains(needle), "no `{needle}` in the log:\n{log}");
    }
    let first = wal_position(&log);
    assert_eq!(registry().versions(&subject).await.unwrap(), vec![1, 2]);
    // Its position was not committed past the event: a restart meets it again.
    let mut again = cfg.start();
    again.wait_exit(Duration::from_secs(60));
    assert_eq!(
        wal_position(&again.log_text()),
        first,
        "{}",
        again.log_text()
    );

    // Under on_error: dead_letter, the events of the refused shape go to the dead-letter
    // topic (JSON, with the reason in headers) and the connector goes on.
    write(
        cfg.dir.path(),
        &format!("configs/tables/{}/public.{t}.yaml", cfg.name),
        "on_error: dead_letter\n",
    );
    let mut daemon = cfg.start();
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (5, 'fifty', NULL)"))
        .await
        .unwrap();
    let dlq = consume_n(&format!("{}.dlq", cfg.prefix), 2, Duration::from_secs(60));
    assert_eq!(dlq.len(), 2, "{}", daemon.log_text());
    for (m, id) in dlq.iter().zip([4, 5]) {
        assert_eq!(m.value.as_ref().unwrap()["after"]["id"], json!(id));
        assert_eq!(
            m.header("tidemark.dlq.error_kind"),
            Some("incompatible_schema")
        );
        assert_eq!(m.header("tidemark.dlq.topic"), Some(topic.as_str()));
        assert!(m.header("tidemark.dlq.error").unwrap().contains("qty"));
    }
    // Nothing lost: three events on the topic, two in the dead-letter topic.
    let read = consume_avro(&topic, 4, Duration::from_secs(5)).await;
    assert_eq!(read.len(), 3);
    daemon.assert_running();
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_topic_takes_a_record_subject_strategy() {
    let client = pg().await;
    let a = unique("avro_shared_a");
    let b = unique("avro_shared_b");
    client
        .batch_execute(&format!(
            "CREATE TABLE {a} (id int PRIMARY KEY, x text);
             CREATE TABLE {b} (code text PRIMARY KEY, y float8);
             INSERT INTO {a} VALUES (1, 'one');
             INSERT INTO {b} VALUES ('k', 1.5);"
        ))
        .await
        .unwrap();
    let tables = [format!("public.{a}"), format!("public.{b}")];
    let cfg = TestConfig::new(&[&tables[0], &tables[1]], "");
    let shared = format!("{}.both", cfg.prefix);
    for table in &tables {
        write(
            cfg.dir.path(),
            &format!("configs/tables/{}/{table}.yaml", cfg.name),
            &format!("topic: {shared}\n"),
        );
    }
    // Subjects named after the topic alone cannot hold two tables' schemas: refused.
    cfg.append_to_daemon_file(&avro_daemon_yaml(""));
    let mut refused = cfg.start();
    refused.wait_exit(Duration::from_secs(60));
    let log = refused.log_text();
    assert!(log.contains("subject_strategy"), "{log}");

    let cfg2 = TestConfig::new(&[&tables[0], &tables[1]], "");
    for table in &tables {
        write(
            cfg2.dir.path(),
            &format!("configs/tables/{}/{table}.yaml", cfg2.name),
            &format!("topic: {shared}2\n"),
        );
    }
    cfg2.append_to_daemon_file(&avro_daemon_yaml("  subject_strategy: topic_record\n"));
    let mut daemon = cfg2.start();
    let read = consume_avro(&format!("{shared}2"), 2, Duration::from_secs(60)).await;
    assert_eq!(read.len(), 2, "{}", daemon.log_text());
    let mut keys: Vec<_> = read.iter().map(|m| m.key.clone().unwrap()).collect();
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(
        keys,
        vec![
            json!({"__table": format!("public.{a}"), "id": 1}),
            json!({"__table": format!("public.{b}"), "code": "k"}),
        ]
    );
    for t in [&a, &b] {
        let subject = format!("{shared}2-{shared}2.public.{t}.Envelope");
        assert_eq!(
            registry().versions(&subject).await.unwrap(),
            vec![1],
            "subject {subject}"
        );
    }
    daemon.terminate(Duration::from_secs(60));
    cfg2.cleanup(&client).await;
    cfg.cleanup_and(&client, &format!("DROP TABLE {a}; DROP TABLE {b}"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contract_is_what_consumers_read_and_violations_never_reach_the_topic() {
    let client = pg().await;
    let t = unique("avro_contract");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, status text, note text)"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    cfg.append_to_daemon_file(&avro_daemon_yaml(""));
    let tables = format!("configs/tables/{}", cfg.name);
    write(
        cfg.dir.path(),
        &format!("{tables}/contracts/orders.avsc"),
        r#"{"type": "record", "name": "Order", "namespace": "shop",
            "fields": [
              {"name": "id", "type": "long"},
              {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["new", "paid"]}},
              {"name": "note", "type": ["null", "string"], "default": null},
              {"name": "channel", "type": "string", "default": "web"}
            ]}"#,
    );
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{t}.yaml"),
        "contract: contracts/orders.avsc\non_error: dead_letter\n",
    );
    let topic = cfg.topic(&format!("public.{t}"));
    let dlq_topic = format!("{}.dlq", cfg.prefix);
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!(
            "INSERT INTO {t} VALUES (1, 'new', NULL); INSERT INTO {t} VALUES (2, 'lost', NULL);
             INSERT INTO {t} VALUES (3, 'paid', 'x');"
        ))
        .await
        .unwrap();
    let read = consume_avro(&topic, 2, Duration::from_secs(60)).await;
    assert_eq!(read.len(), 2, "{}", daemon.log_text());
    assert_eq!(
        read[0].value.as_ref().unwrap()["after"],
        json!({"id": 1, "status": "new", "note": null, "channel": "web"})
    );
    assert_eq!(
        read[1].value.as_ref().unwrap()["after"],
        json!({"id": 3, "status": "paid", "note": "x", "channel": "web"})
    );
    let registered = registry().schema(read[0].value_id.unwrap()).await.unwrap();
    assert!(registered.contains("shop.Order"), "{registered}");
    // A value outside the contract (a label its enum lacks) went to the dead-letter topic.
    let dlq = consume_n(&dlq_topic, 1, Duration::from_secs(60));
    assert_eq!(dlq.len(), 1, "{}", daemon.log_text());
    assert_eq!(dlq[0].value.as_ref().unwrap()["after"]["id"], json!(2));
    assert_eq!(dlq[0].header("tidemark.dlq.error_kind"), Some("validation"));
    assert!(
        dlq[0]
            .header("tidemark.dlq.error")
            .unwrap()
            .contains("column `status`"),
        "{:?}",
        dlq[0].headers
    );

    // A column the contract lacks: every event of the new shape is a violation.
    client
        .batch_execute(&format!(
            "ALTER TABLE {t} ADD COLUMN secret text; INSERT INTO {t} VALUES (4, 'new', NULL, 's')"
        ))
        .await
        .unwrap();
    let dlq = consume_n(&dlq_topic, 2, Duration::from_secs(60));
    assert_eq!(dlq.len(), 2, "{}", daemon.log_text());
    assert!(
        dlq[1]
            .header("tidemark.dlq.error")
            .unwrap()
            .contains("column `secret` is not in the contract"),
        "{:?}",
        dlq[1].headers
    );
    // Never on the table's topic: still the two conforming rows.
    assert_eq!(
        consume_avro(&topic, 3, Duration::from_secs(5)).await.len(),
        2
    );
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_avro_outbox_writes_payloads_by_their_contract() {
    let client = pg().await;
    let o = unique("avro_outbox");
    client
        .batch_execute(&format!(
            "CREATE TABLE {o} (id int PRIMARY KEY, kind text, agg text, payload jsonb)"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{o}")], "snapshot:\n  mode: never\n");
    // The daemon writes JSON; this table alone is in Avro.
    cfg.append_to_daemon_file(&format!(
        "schema_registry:\n  url: {}\n",
        crate::avro_check::registry_url()
    ));
    let tables = format!("configs/tables/{}", cfg.name);
    write(
        cfg.dir.path(),
        &format!("{tables}/event.avsc"),
        r#"{"type": "record", "name": "Event", "namespace": "shop",
            "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"},
                       {"name": "gift", "type": "boolean", "default": false}]}"#,
    );
    write(
        cfg.dir.path(),
        &format!("{tables}/public.{o}.yaml"),
        "format: avro\ncontract: event.avsc\noutbox: {topic: \"{prefix}.ev.{kind}\", key: agg, payload: payload}\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!(
            "INSERT INTO {o} VALUES (1, 'sale', 'a1', '{{\"sku\": \"x\", \"qty\": 2}}'),
                                  (2, 'refund', 'a2', '{{\"sku\": \"y\", \"qty\": 1, \"gift\": true}}'),
                                  (3, 'sale', 'a1', '{{\"sku\": \"z\", \"qty\": 5}}')"
        ))
        .await
        .unwrap();
    let sales = consume_avro(
        &format!("{}.ev.sale", cfg.prefix),
        2,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(sales.len(), 2, "{}", daemon.log_text());
    assert_eq!(sales[0].key, Some(json!("a1")));
    assert_eq!(
        sales[0].value,
        Some(json!({"sku": "x", "qty": 2, "gift": false}))
    );
    assert_eq!(
        sales[1].value,
        Some(json!({"sku": "z", "qty": 5, "gift": false}))
    );
    assert_eq!(sales[0].value_id, sales[1].value_id);
    let refunds = consume_avro(
        &format!("{}.ev.refund", cfg.prefix),
        1,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        refunds[0].value,
        Some(json!({"sku": "y", "qty": 1, "gift": true}))
    );
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {o}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncate_is_not_produced_to_a_compacted_avro_topic() {
    let client = pg().await;
    let t = unique("avro_truncate");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    cfg.append_to_daemon_file(&avro_daemon_yaml(""));
    let topic = cfg.topic(&format!("public.{t}"));
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!(
            "INSERT INTO {t} VALUES (1); TRUNCATE {t}; INSERT INTO {t} VALUES (2);"
        ))
        .await
        .unwrap();
    // The inserts arrive; the truncate (whose key would be null, which a compacted topic
    // refuses) is logged, not produced.
    let read = consume_avro(&topic, 3, Duration::from_secs(20)).await;
    assert_eq!(read.len(), 2, "{}", daemon.log_text());
    assert!(read.iter().all(|m| m.key.is_some()));
    assert_eq!(read[1].key, Some(json!({"id": 2})));
    let log = daemon.log_text();
    assert!(log.contains("TRUNCATE not produced"), "{log}");
    daemon.assert_running();
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reaches_the_schema_registry() {
    let client = pg().await;
    let t = unique("avro_check");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let daemon_file = cfg.config_file();
    let plain = std::fs::read_to_string(&daemon_file).unwrap();
    let check = || {
        cfg.run_to_end(
            &["check", "--config", daemon_file.to_str().unwrap()],
            Duration::from_secs(60),
        )
    };
    cfg.append_to_daemon_file(&avro_daemon_yaml(""));
    let (status, out) = check();
    assert!(status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "ok    schema registry at {}: default compatibility BACKWARD",
            crate::avro_check::registry_url()
        )),
        "{out}"
    );
    // A registry that does not answer fails the check, naming it.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        &daemon_file,
        format!("{plain}format: avro\nschema_registry:\n  url: {nobody}\n  timeout_ms: 2000\n"),
    )
    .unwrap();
    let (status, out) = check();
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("FAIL  schema registry at {nobody}")),
        "{out}"
    );
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// The test registry again, serving https with `certs`' server certificate, on a free port.
struct TlsRegistry {
    child: std::process::Child,
    url: String,
}

impl TlsRegistry {
    fn start(certs: &std::path::Path) -> Self {
        let bin = std::env::var("TIDEMARK_TEST_REGISTRY_BIN").expect(
            "TIDEMARK_TEST_REGISTRY_BIN (run `. target/dev-env/env` after scripts/dev-env.sh up)",
        );
        let port = free_port();
        let child = std::process::Command::new(bin)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(certs.join("server.pem"))
            .arg("--tls-key")
            .arg(certs.join("server.key"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the test registry");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the TLS test registry did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("https://127.0.0.1:{port}"),
        }
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_is_reached_over_tls_with_its_ca_and_a_foreign_ca_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    crate::certs::make_certs(certs.path());
    let registry = TlsRegistry::start(certs.path());
    let client = pg().await;
    let t = unique("avro_tls");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY, v text)"))
        .await
        .unwrap();
    let table = format!("public.{t}");
    let cfg = TestConfig::new(&[&table], "snapshot:\n  mode: never\n");
    let daemon_file = cfg.config_file();
    let plain = std::fs::read_to_string(&daemon_file).unwrap();
    let with_ca = |ca: &str| {
        std::fs::write(
            &daemon_file,
            format!(
                "{plain}format: avro\nschema_registry:\n  url: {}\n  ca_file: {}\n  timeout_ms: 5000\n",
                registry.url,
                certs.path().join(ca).display()
            ),
        )
        .unwrap();
    };
    let check = || {
        cfg.run_to_end(
            &["check", "--config", daemon_file.to_str().unwrap()],
            Duration::from_secs(60),
        )
    };

    // A CA that did not sign the registry's certificate: refused, naming the registry and TLS.
    with_ca("other-ca.pem");
    let (status, out) = check();
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("FAIL  schema registry at {}", registry.url)),
        "{out}"
    );
    assert!(
        out.to_lowercase().contains("certificate"),
        "the failure says it is the certificate: {out}"
    );

    // The registry's CA: check passes, and the connector registers and produces over https.
    with_ca("ca.pem");
    let (status, out) = check();
    assert!(status.success(), "{out}");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!(
            "INSERT INTO {t} VALUES (1, 'over tls'), (2, NULL)"
        ))
        .await
        .unwrap();
    let consumer = consumer_from_start(&kafka_brokers(), &cfg.topic(&table));
    let start = std::time::Instant::now();
    let mut ids = Vec::new();
    while ids.len() < 2 && start.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            use rdkafka::Message as _;
            let v = m.payload().expect("a value");
            assert_eq!(v[0], 0, "Confluent's magic byte");
            ids.push(u32::from_be_bytes(v[1..5].try_into().unwrap()));
        }
    }
    assert_eq!(ids.len(), 2, "log:\n{}", daemon.log_text());
    // The ids are the TLS registry's: it holds the value subject with that schema.
    let body = schema_over_tls(&registry.url, &certs.path().join("ca.pem"), ids[0]).await;
    assert!(body.contains("Envelope"), "{body}");
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// Schema `id` from the https registry at `url`, trusting `ca` (through tidemark's own client).
async fn schema_over_tls(url: &str, ca: &std::path::Path, id: u32) -> String {
    let client =
        tidemark::schema::registry::RegistryClient::new(&tidemark::config::RegistrySettings {
            url: url.to_string(),
            compatibility: None,
            subject_strategy: Default::default(),
            auth: tidemark::config::RegistryAuth::None,
            ca_file: Some(ca.to_path_buf()),
            timeout: Duration::from_secs(10),
        })
        .unwrap();
    client.schema(id).await.unwrap()
}
