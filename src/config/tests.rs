//! The loader's tests: whole configuration trees written to a temporary directory.

use std::path::{Path, PathBuf};

use super::*;

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn setup(connector: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = write(
        dir.path(),
        "configs/tidemark.yaml",
        "kafka:\n  brokers: 127.0.0.1:9092\n",
    );
    write(dir.path(), "connectors/demo.yaml", connector);
    (dir, daemon)
}

const CONNECTOR: &str = "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\ntables:\n  - public.a\n  - public.b\n";

#[test]
fn loads_with_defaults_and_table_files() {
    let (dir, daemon) = setup(CONNECTOR);
    write(
        dir.path(),
        "configs/tables/demo/public.a.yaml",
        "topic: custom\nkey: [x]\n",
    );
    let s = load(&daemon, Vec::new()).unwrap();
    assert_eq!(s.position_store, PositionStoreKind::Kafka);
    let c = &s.connectors[0];
    assert_eq!(c.name, "demo");
    assert_eq!(c.connection.port, 5432);
    assert!(matches!(&c.source, SourceSettings::Postgres(p) if p.slot == "tidemark_demo"));
    assert_eq!(c.tables[0].config.topic.as_deref(), Some("custom"));
    assert_eq!(c.tables[1].config, TableConfig::default());
}

#[test]
fn connector_env_override() {
    let (_dir, daemon) = setup(CONNECTOR);
    let vars = vec![(
        "TIDEMARK__CONNECTORS__DEMO__CONNECTION__PORT".to_string(),
        "6543".to_string(),
    )];
    let s = load(&daemon, vars).unwrap();
    assert_eq!(s.connectors[0].connection.port, 6543);
}

#[test]
fn an_override_of_no_connector_is_an_error_naming_the_variable() {
    let (_dir, daemon) = setup(CONNECTOR);
    let vars = vec![(
        "TIDEMARK__CONNECTORS__NOSUCH__CONNECTION__PORT".to_string(),
        "6543".to_string(),
    )];
    let err = load(&daemon, vars).unwrap_err().to_string();
    assert!(
        err.contains("TIDEMARK__CONNECTORS__NOSUCH__CONNECTION__PORT") && err.contains("demo"),
        "{err}"
    );
}

#[test]
fn connectors_sharing_a_slot_publication_or_server_id_are_refused_naming_both_files() {
    let (dir, daemon) = setup(CONNECTOR);
    let other = write(
        dir.path(),
        "connectors/other.yaml",
        "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\npostgres:\n  slot: tidemark_demo\n  publication: pub_other\ntables:\n  - public.c\n",
    );
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("other.yaml") && err.contains("demo.yaml") && err.contains("slot"),
        "{err}"
    );
    // Another database on the same server may use the same slot name.
    std::fs::write(&other, "kind: postgres\nconnection:\n  database: d2\n  user: u\n  password: p\npostgres:\n  slot: tidemark_demo\ntables:\n  - public.c\n").unwrap();
    load(&daemon, Vec::new()).unwrap();
    // The same publication on one database.
    std::fs::write(&other, "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\npostgres:\n  slot: s2\n  publication: tidemark_demo\ntables:\n  - public.c\n").unwrap();
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("publication"), "{err}");
    // Two MySQL connectors with one server id on one server.
    let my = "kind: mysql\nconnection:\n  database: d\n  user: u\n  password: p\nmysql:\n  server_id: 77\ntables:\n  - d.t\n";
    std::fs::write(&other, my).unwrap();
    write(dir.path(), "connectors/third.yaml", my);
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("server_id 77") && err.contains("third.yaml"),
        "{err}"
    );
}

#[test]
fn snapshot_settings_per_connector_and_per_table() {
    let (dir, daemon) = setup(&format!(
        "{CONNECTOR}snapshot:\n  mode: on_demand\n  chunk_size: 50\n"
    ));
    write(
        dir.path(),
        "configs/tables/demo/public.a.yaml",
        "snapshot_chunk_size: 7\nsnapshot_max_rows_per_second: 100\n",
    );
    let s = load(&daemon, Vec::new()).unwrap();
    let c = &s.connectors[0];
    assert_eq!(c.snapshot.mode, SnapshotMode::OnDemand);
    assert_eq!(c.snapshot.chunk_size, 50);
    assert_eq!(c.tables[0].config.snapshot_chunk_size, Some(7));
    assert_eq!(c.tables[0].config.snapshot_max_rows_per_second, Some(100));

    write(
        dir.path(),
        "configs/tables/demo/public.a.yaml",
        "snapshot_chunk_size: 0\n",
    );
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("public.a.yaml") && err.contains("snapshot_chunk_size"),
        "{err}"
    );
    let (_dir, daemon) = setup(&format!("{CONNECTOR}snapshot:\n  mode: sometimes\n"));
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("demo.yaml"), "{err}");
}

#[test]
fn the_signing_key_comes_from_a_file_and_must_not_be_short() {
    let (dir, daemon) = setup(&format!(
        "{CONNECTOR}snapshot:\n  signing_key_file: signing.key\n"
    ));
    write(dir.path(), "connectors/signing.key", "0123456789abcdef\n");
    let s = load(&daemon, Vec::new()).unwrap();
    let key = s.connectors[0].snapshot.signing_key.clone().unwrap();
    assert_eq!(key.expose(), "0123456789abcdef");
    write(dir.path(), "connectors/signing.key", "short\n");
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("demo.yaml") && err.contains("at least 16"),
        "{err}"
    );
    let (_dir, daemon) = setup(CONNECTOR);
    assert!(load(&daemon, Vec::new()).unwrap().connectors[0]
        .snapshot
        .signing_key
        .is_none());
}

#[test]
fn table_file_for_unlisted_table_is_an_error() {
    let (dir, daemon) = setup(CONNECTOR);
    write(
        dir.path(),
        "configs/tables/demo/public.zzz.yaml",
        "topic: t\n",
    );
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("public.zzz.yaml"), "{err}");
    assert!(err.contains("not listed"), "{err}");
}

#[test]
fn unknown_key_in_connector_names_file_and_line() {
    let (_dir, daemon) = setup(
        "kind: postgres\nconnection:\n  database: d\n  user: u\n  hots: x\ntables: [public.a]\n",
    );
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("connectors/demo.yaml:5:"), "{err}");
    assert!(err.contains("unknown field `hots`"), "{err}");
}

#[test]
fn bad_table_name() {
    let (_dir, daemon) =
        setup("kind: postgres\nconnection:\n  database: d\n  user: u\ntables: [public.a, nodot]\n");
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("tables[1]"), "{err}");
}

#[test]
fn kafka_sink_needs_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = write(dir.path(), "configs/tidemark.yaml", "sink: kafka\n");
    write(dir.path(), "connectors/demo.yaml", CONNECTOR);
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("kafka.brokers"), "{err}");
}

#[test]
fn table_file_routing_rules_load_and_contradictions_are_refused() {
    let (dir, daemon) = setup(CONNECTOR);
    let file = write(
        dir.path(),
        "configs/tables/demo/public.a.yaml",
        "topic: \"{prefix}.{db}.{table}\"\ncolumns:\n  exclude: [ssn]\n  mask:\n    email: hash\n    name: redact\n    \
         gone: {redact: null}\n    label: {redact: \"n/a\"}\n    note: {truncate: 4}\n\
         filter: \"status != 'draft'\"\nevent_time: updated_at\n",
    );
    // `hash` needs the salt.
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("public.a.yaml") && err.contains("hash_salt_env"),
        "{err}"
    );
    let mut text = std::fs::read_to_string(&daemon).unwrap();
    text.push_str("router:\n  hash_salt_env: SALT\n");
    std::fs::write(&daemon, text).unwrap();
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("router.hash_salt_env") && err.contains("SALT"),
        "{err}"
    );
    let s = load(&daemon, vec![("SALT".to_string(), "pepper".to_string())]).unwrap();
    assert_eq!(s.hash_salt.as_ref().map(Secret::expose), Some("pepper"));
    let t = &s.connectors[0].tables[0].config;
    use super::table::Mask;
    assert_eq!(t.columns.mask["email"], Mask::Hash);
    assert_eq!(t.columns.mask["name"], Mask::Redact(Some("***".into())));
    assert_eq!(t.columns.mask["gone"], Mask::Redact(None));
    assert_eq!(t.columns.mask["label"], Mask::Redact(Some("n/a".into())));
    assert_eq!(t.columns.mask["note"], Mask::Truncate(4));
    assert!(t.hashes());

    let refused = |yaml: &str, want: &[&str]| {
        std::fs::write(&file, yaml).unwrap();
        let err = load(&daemon, vec![("SALT".to_string(), "pepper".to_string())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("public.a.yaml"), "{err}");
        for w in want {
            assert!(err.contains(w), "{yaml}: {err} lacks {w}");
        }
    };
    refused(
        "columns: {include: [a], exclude: [b]}\n",
        &["columns", "not both"],
    );
    refused(
        "key: [id]\ncolumns: {exclude: [id]}\n",
        &["key[0]", "left out"],
    );
    refused(
        "key: [id]\ncolumns: {mask: {id: redact}}\n",
        &["columns.mask.id", "only `hash`"],
    );
    refused(
        "columns: {exclude: [x], mask: {x: hash}}\n",
        &["columns.mask.x", "left out"],
    );
    refused(
        "columns: {mask: {x: scramble}}\n",
        &["columns.mask.x", "unknown mask `scramble`"],
    );
    refused("columns: {mask: {x: {truncate: 0}}}\n", &["truncate"]);
    refused("filter: \"status = \"\n", &["filter", "literal"]);
    refused("topic: \"{prefix}.{nope}\"\n", &["topic", "{nope}"]);
    refused("topic: \"a b\"\n", &["topic"]);
    refused(
        "key: [id]\noutbox: {topic: \"{prefix}.{t}\", key: k, payload: p}\n",
        &["outbox", "remove `key`"],
    );
    refused(
        "outbox: {topic: \"{prefix}.{t}\"}\n",
        &["outbox", "missing field `key`"],
    );
    std::fs::write(
        &daemon,
        "kafka:\n  brokers: b:1\nrouter:\n  topic: \"{prefix}.{x}\"\n",
    )
    .unwrap();
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("router.topic") && err.contains("{x}"), "{err}");
}

#[test]
fn value_profiles_load_and_misplaced_settings_are_refused() {
    let (dir, daemon) = setup(CONNECTOR);
    let table = write(
        dir.path(),
        "configs/tables/demo/public.a.yaml",
        "values: debezium\ndecimal_handling: string\n",
    );
    let s = load(&daemon, Vec::new()).unwrap();
    assert_eq!(s.daemon.values, ValueProfile::Tidemark);
    let t = &s.connectors[0].tables[0].config;
    assert_eq!(t.values, Some(ValueProfile::Debezium));
    assert_eq!(t.decimal_handling, Some(DecimalHandling::String));

    // decimal_handling belongs to the debezium profile.
    std::fs::write(&table, "decimal_handling: double\n").unwrap();
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("public.a.yaml") && err.contains("values: debezium"),
        "{err}"
    );
    std::fs::write(&table, "values: tidemark\n").unwrap();
    let mut text = std::fs::read_to_string(&daemon).unwrap();
    text.push_str("decimal_handling: precise\n");
    std::fs::write(&daemon, &text).unwrap();
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        err.contains("tidemark.yaml") && err.contains("decimal_handling"),
        "{err}"
    );
    text.push_str("values: debezium\n");
    std::fs::write(&daemon, &text).unwrap();
    let s = load(&daemon, Vec::new()).unwrap();
    assert_eq!(s.daemon.values, ValueProfile::Debezium);
    assert_eq!(s.daemon.decimal_handling, Some(DecimalHandling::Precise));
    std::fs::write(&daemon, text.replace("values: debezium", "values: avro")).unwrap();
    let err = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(err.contains("values") && err.contains("avro"), "{err}");
}

#[test]
fn tls_settings_that_cannot_work_are_refused_when_loaded() {
    let refused = |connection_lines: &str, kind: &str, want: &str| {
        let connector = format!(
            "kind: {kind}\nconnection:\n  database: d\n  user: u\n  password: p\n{connection_lines}tables:\n  - public.a\n"
        );
        let (_dir, daemon) = setup(&connector);
        let err = load(&daemon, Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("demo.yaml") && err.contains(want),
            "{connection_lines}: {err}"
        );
    };
    refused("  sslmode: verify-full\n", "postgres", "sslrootcert");
    refused("  sslmode: verify-ca\n", "postgres", "sslrootcert");
    refused("  sslmode: prefer\n", "mysql", "`prefer` is PostgreSQL's");
    refused(
        "  sslmode: require\n  sslcert: c.pem\n",
        "postgres",
        "sslcert and sslkey go together",
    );
    refused(
        "  sslrootcert: ca.pem\n",
        "postgres",
        "sslmode is `disable`",
    );
    let (dir, daemon) = setup(
        "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: p\n  sslmode: verify-full\n  sslrootcert: ca.pem\n  sslcert: c.pem\n  sslkey: k.pem\ntables:\n  - public.a\n",
    );
    let s = load(&daemon, Vec::new()).unwrap();
    let c = &s.connectors[0].connection;
    assert_eq!(c.sslmode, SslMode::VerifyFull);
    let under = |p: &Option<std::path::PathBuf>, name: &str| {
        p.as_ref().is_some_and(|p| {
            p.starts_with(dir.path()) && p.ends_with(std::path::Path::new("connectors").join(name))
        })
    };
    assert!(under(&c.sslrootcert, "ca.pem"), "{:?}", c.sslrootcert);
    assert!(under(&c.sslkey, "k.pem"), "{:?}", c.sslkey);
}

#[test]
fn no_configuration_struct_prints_a_password() {
    let (dir, daemon) = setup(
        "kind: postgres\nconnection:\n  database: d\n  user: u\n  password: Inline-S3cret\ntables:\n  - public.a\n",
    );
    write(dir.path(), "configs/registry.pw", "File-S3cret");
    let mut text = std::fs::read_to_string(&daemon).unwrap();
    text.push_str(
        "schema_registry:\n  url: http://r:8081\n  username: u\n  password_file: registry.pw\n",
    );
    std::fs::write(&daemon, text).unwrap();
    let settings = load(&daemon, Vec::new()).unwrap();
    let printed = format!("{settings:?}");
    assert!(printed.contains("***"), "{printed}");
    for secret in ["Inline-S3cret", "File-S3cret"] {
        assert!(!printed.contains(secret), "{printed}");
    }
    let raw: connector::ConnectorFile = serde_yaml::from_str(
        "kind: postgres\nconnection: {database: d, user: u, password: Inline-S3cret}\ntables: []\n",
    )
    .unwrap();
    assert!(!format!("{raw:?}").contains("Inline-S3cret"));
}

#[test]
fn a_broker_list_that_is_not_host_port_is_refused_naming_the_entry() {
    use super::validate::broker_list_error;
    assert_eq!(
        broker_list_error("127.0.0.1:9092,kafka-2.internal:9093"),
        None
    );
    assert_eq!(broker_list_error("SASL_SSL://b1:9094, [::1]:9092"), None);
    for (list, want) in [
        ("localhost", "no port"),
        ("host:port", "not a port"),
        ("a b:9092", "not a host"),
        ("h:0", "not a port"),
        ("h:9092,", "no port"),
    ] {
        let e = broker_list_error(list).unwrap_or_default();
        assert!(e.contains(want), "{list}: {e}");
    }
    let (_dir, daemon) = setup(CONNECTOR);
    std::fs::write(&daemon, "kafka:\n  brokers: localhost\n").unwrap();
    let e = load(&daemon, Vec::new()).unwrap_err().to_string();
    assert!(
        e.contains("kafka.brokers") && e.contains("`localhost` has no port"),
        "{e}"
    );
}

#[test]
fn kafka_client_settings_reach_every_client_and_secrets_stay_out_of_the_files() {
    let (dir, daemon) = setup(CONNECTOR);
    write(
        dir.path(),
        "configs/kafka-ca.pem",
        "-----BEGIN CERTIFICATE-----\n",
    );
    let with = |kafka: &str| {
        write(
            dir.path(),
            "configs/tidemark.yaml",
            &format!("kafka:\n  brokers: 127.0.0.1:9092\n{kafka}"),
        );
    };
    let err = |vars: Vec<(String, String)>| load(&daemon, vars).unwrap_err().to_string();
    with("  client:\n    security.protocol: sasl_ssl\n    sasl.mechanism: SCRAM-SHA-512\n    sasl.username: tm\n    ssl.ca.location: kafka-ca.pem\n  sasl_password_env: KP\n");
    let s = load(&daemon, vec![("KP".to_string(), "pw-1".to_string())]).unwrap();
    let c = s.daemon.kafka.client_config();
    assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(c.get("sasl.password"), Some("pw-1"));
    assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    // Relative to the daemon file.
    assert_eq!(
        c.get("ssl.ca.location").map(PathBuf::from),
        Some(dir.path().join("configs/kafka-ca.pem"))
    );
    assert!(!format!("{:?}", s.daemon).contains("pw-1"));
    // The daemon file alone (tail, status) resolves the same.
    let d = load_daemon(&daemon, vec![("KP".to_string(), "pw-1".to_string())]).unwrap();
    assert_eq!(d.kafka.client_config().get("sasl.password"), Some("pw-1"));
    assert!(err(Vec::new()).contains("kafka.sasl_password_env"));

    with("  client:\n    security.protocol: sasl_plaintext\n    sasl.mechanism: PLAIN\n    sasl.username: tm\n    sasl.password: inline\n");
    let e = err(Vec::new());
    assert!(
        e.contains("kafka.client.sasl.password") && e.contains("sasl_password_env"),
        "{e}"
    );
    with("  producer:\n    security.protocol: ssl\n");
    assert!(err(Vec::new()).contains("kafka.producer.security.protocol"));
    with("  client:\n    security.protocol: tls\n");
    assert!(err(Vec::new()).contains("`tls` is not one of"));
    with("  client:\n    security.protocol: sasl_plaintext\n    sasl.username: tm\n  sasl_password_env: KP\n");
    assert!(err(vec![("KP".into(), "x".into())]).contains("needs sasl.mechanism"));
    with("  client:\n    security.protocol: sasl_plaintext\n    sasl.mechanism: GSSAPI\n");
    assert!(err(Vec::new()).contains("not supported by this build"));
    with("  client:\n    security.protocol: ssl\n    ssl.ca.location: missing.pem\n");
    let e = err(Vec::new());
    assert!(
        e.contains("kafka.client.ssl.ca.location") && e.contains("missing.pem"),
        "{e}"
    );
    with("  client:\n    ssl.ca.location: kafka-ca.pem\n");
    assert!(err(Vec::new()).contains("security.protocol is plaintext"));
}

#[test]
fn the_admin_api_needs_a_token_beyond_loopback() {
    let (dir, daemon) = setup(CONNECTOR);
    let s = load(&daemon, Vec::new()).unwrap();
    let admin = s.admin.as_ref().unwrap();
    assert_eq!(admin.listen.to_string(), "127.0.0.1:8083");
    assert!(admin.token.is_none());
    assert!(s.keep_running_on_failure);
    let var = |k: &str, v: &str| (k.to_string(), v.to_string());
    let e = load(
        &daemon,
        vec![var("TIDEMARK__ADMIN__LISTEN", "0.0.0.0:8083")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("admin.listen") && e.contains("token_env"), "{e}");
    let s = load(
        &daemon,
        vec![
            var("TIDEMARK__ADMIN__LISTEN", "0.0.0.0:8083"),
            var("TIDEMARK__ADMIN__TOKEN_ENV", "T"),
            var("T", "tok"),
        ],
    )
    .unwrap();
    assert_eq!(s.admin.unwrap().token.unwrap().expose(), "tok");
    let s = load(&daemon, vec![var("TIDEMARK__ADMIN__LISTEN", "off")]).unwrap();
    assert!(s.admin.is_none() && !s.keep_running_on_failure);
    let s = load(&daemon, vec![var("TIDEMARK__ON_CONNECTOR_FAILURE", "exit")]).unwrap();
    assert!(!s.keep_running_on_failure);
    let e = load(&daemon, vec![var("TIDEMARK__ADMIN__LISTEN", "localhost")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an address"), "{e}");
    drop(dir);
}
