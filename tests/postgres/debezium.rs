//! `values: debezium`: each type as Debezium's PostgreSQL connector writes it with its default
//! settings, in the three formats, and Debezium's envelope additions (ts_us/ts_ns, sequence,
//! the key-change headers, the unchanged-TOAST placeholder, the null truncate key).
//!
//! The expected values are Debezium's documented representations, worked out by hand (see
//! the README's table): dates as days, `time(3)` as milliseconds, `time` as microseconds,
//! `timestamp(3)` as epoch milliseconds, `timestamp` as epoch microseconds, `timestamptz` and
//! `timetz` as ISO strings in UTC, intervals as microseconds with 30.4375-day months, decimals
//! as the unscaled value's bytes (base64 in JSON), `numeric` without a scale as
//! `VariableScaleDecimal`, `money` as a decimal of scale 2, JSON and hstore as JSON text,
//! points as `{x, y, wkb, srid}`, bit strings as little-endian bytes (`bit(1)` a boolean).

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::common::*;

/// Row 1 as the `debezium` profile writes it in JSON.
fn row_one() -> Json {
    json!({
        "id": 1, "d": 19783, "t3": 36_672_345, "t6": 36_672_345_678i64,
        "ts3": 1_709_287_872_345i64, "ts6": 1_709_287_872_345_678i64,
        "tstz": "2024-03-01T08:11:12.5Z", "ttz": "08:11:12Z", "iv": 2_813_645_500_000i64,
        "n": "SZYC0g==", "nv": {"scale": 5, "value": "BMsv"}, "m": "BNI=",
        "j": "{\"a\": 1}", "h": "{\"a\":\"1\",\"b\":null}",
        "p": {"x": 1.5, "y": 2.0, "wkb": "AQEAAAAAAAAAAAD4PwAAAAAAAABA", "srid": null},
        "b1": true, "b10": "AQI=", "vb": "BQA=",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ai": [1, null, 3]
    })
}

const COLUMNS: &str = "id int PRIMARY KEY, d date, t3 time(3), t6 time, ts3 timestamp(3), \
     ts6 timestamp, tstz timestamptz, ttz timetz, iv interval, n numeric(10,2), nv numeric, \
     m money, j jsonb, h hstore, p point, b1 bit(1), b10 bit(10), vb varbit(16), u uuid, ai int4[]";

const ROWS: &str = "(1, '2024-03-01', '10:11:12.345', '10:11:12.345678', \
     '2024-03-01 10:11:12.345', '2024-03-01 10:11:12.345678', '2024-03-01 10:11:12.5+02', \
     '10:11:12+02', '1 mon 2 days 03:04:05.5', 12345678.90, 3.14159, 12.34, '{\"a\": 1}', \
     'a=>1, b=>NULL', '(1.5,2)', B'1', B'1000000001', B'101', \
     'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{1,NULL,3}'), \
     (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL, NULL, NULL, NULL)";

/// Row 2: every column but the key NULL.
fn row_two() -> Json {
    let mut r = row_one();
    for (k, v) in r.as_object_mut().unwrap() {
        *v = if k == "id" { json!(2) } else { Json::Null };
    }
    r
}

/// The Connect schema of column `name` in a wrapped message's `after`.
fn field_schema<'a>(wrapped: &'a Json, name: &str) -> &'a Json {
    let after = wrapped["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap();
    after["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_type_is_written_as_debeziums_postgresql_connector_writes_it() {
    let client = pg().await;
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS hstore")
        .await
        .unwrap();
    let t = unique("dbz_types");
    client
        .batch_execute(&format!("CREATE TABLE {t} ({COLUMNS})"))
        .await
        .unwrap();
    let table = format!("public.{t}");

    // json, streamed.
    let cfg = TestConfig::new(&[&table], "snapshot:\n  mode: never\n");
    cfg.append_to_daemon_file("values: debezium\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES {ROWS}"))
        .await
        .unwrap();
    let msgs = consume_n(&cfg.topic(&table), 2, Duration::from_secs(60));
    assert_eq!(msgs.len(), 2, "{msgs:#?}\nlog:\n{}", daemon.log_text());
    let after = |m: &Msg| m.value.as_ref().unwrap()["after"].clone();
    crate::connect_check::assert_row_equals(&after(&msgs[0]), &row_one(), "json row 1");
    crate::connect_check::assert_row_equals(&after(&msgs[1]), &row_two(), "json row 2");
    assert_eq!(msgs[0].key, Some(json!({"id": 1})));
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup(&client).await;

    // json-schema, read by a snapshot (the column types come from the catalog there): the
    // same values, each conforming to its Connect schema, which carries Debezium's names.
    let wrapped = TestConfig::new(&[&table], "");
    wrapped.append_to_daemon_file("values: debezium\nformat: json-schema\n");
    let mut wrapped_daemon = wrapped.start();
    let read = consume_n(&wrapped.topic(&table), 2, Duration::from_secs(60));
    assert_eq!(
        read.len(),
        2,
        "{read:#?}\nlog:\n{}",
        wrapped_daemon.log_text()
    );
    let want = [row_one(), row_two()];
    crate::connect_check::assert_rows_conform(&read, |i| want[i].clone(), &[]);
    let value = read[0].value.as_ref().unwrap();
    for (column, name) in [
        ("d", "io.debezium.time.Date"),
        ("t3", "io.debezium.time.Time"),
        ("t6", "io.debezium.time.MicroTime"),
        ("ts3", "io.debezium.time.Timestamp"),
        ("ts6", "io.debezium.time.MicroTimestamp"),
        ("tstz", "io.debezium.time.ZonedTimestamp"),
        ("ttz", "io.debezium.time.ZonedTime"),
        ("iv", "io.debezium.time.MicroDuration"),
        ("n", "org.apache.kafka.connect.data.Decimal"),
        ("nv", "io.debezium.data.VariableScaleDecimal"),
        ("m", "org.apache.kafka.connect.data.Decimal"),
        ("j", "io.debezium.data.Json"),
        ("h", "io.debezium.data.Json"),
        ("p", "io.debezium.data.geometry.Point"),
        ("b10", "io.debezium.data.Bits"),
        ("u", "io.debezium.data.Uuid"),
    ] {
        assert_eq!(field_schema(value, column)["name"], name, "column {column}");
    }
    // A snapshot of one table: its first row opens the snapshot, its last closes it.
    let marks: Vec<&Json> = read
        .iter()
        .map(|m| &m.value.as_ref().unwrap()["payload"]["source"]["snapshot"])
        .collect();
    assert_eq!(marks, [&json!("first"), &json!("last")]);
    assert_eq!(field_schema(value, "n")["parameters"]["scale"], "2");
    assert_eq!(field_schema(value, "b10")["parameters"]["length"], "10");
    assert_eq!(field_schema(value, "b1")["type"], "boolean");
    wrapped_daemon.terminate(Duration::from_secs(60));
    wrapped.cleanup(&client).await;

    // avro: the same values (decimals decoded to their text at the schema's scale), read with
    // the registry's schema by apache-avro and by fastavro.
    let avro = TestConfig::new(&[&table], "");
    avro.append_to_daemon_file(&crate::avro_check::avro_daemon_yaml("values: debezium\n"));
    let mut avro_daemon = avro.start();
    let read =
        crate::avro_check::consume_avro(&avro.topic(&table), 2, Duration::from_secs(60)).await;
    assert_eq!(read.len(), 2, "{read:#?}\nlog:\n{}", avro_daemon.log_text());
    let avro_forms = [json!({"n": "12345678.90", "m": "12.34"}), json!({})];
    crate::avro_check::assert_rows_match(&read, |i| want[i].clone(), &avro_forms);
    avro_daemon.terminate(Duration::from_secs(60));
    avro.cleanup(&client).await;
    client
        .batch_execute(&format!("DROP TABLE {t}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn debeziums_envelope_fields_headers_and_placeholders() {
    let client = pg().await;
    let t = unique("dbz_envelope");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, big text, n int);
             ALTER TABLE {t} ALTER COLUMN big SET STORAGE EXTERNAL;"
        ))
        .await
        .unwrap();
    let table = format!("public.{t}");
    let cfg = TestConfig::new(&[&table], "snapshot:\n  mode: never\n");
    cfg.append_to_daemon_file("values: debezium\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let big = "x".repeat(10_000);
    client
        .execute(&format!("INSERT INTO {t} VALUES (1, $1, 0)"), &[&big])
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "UPDATE {t} SET n = 1 WHERE id = 1;
             UPDATE {t} SET id = 10 WHERE id = 1;
             TRUNCATE {t};
             INSERT INTO {t} VALUES (2, 'after the truncate', 2);"
        ))
        .await
        .unwrap();
    // insert, update, the key change's delete + tombstone + create, the last insert (the
    // truncate's key is null, which a compacted topic refuses: it is logged and counted).
    let msgs = consume_n(&cfg.topic(&table), 6, Duration::from_secs(60));
    assert_eq!(msgs.len(), 6, "{msgs:#?}\nlog:\n{}", daemon.log_text());
    let value = |i: usize| msgs[i].value.clone().unwrap_or(Json::Null);

    let created = value(0);
    let ts_ms = created["source"]["ts_ms"].as_i64().unwrap();
    assert_eq!(created["source"]["ts_us"], json!(ts_ms * 1_000));
    assert_eq!(created["source"]["ts_ns"], json!(ts_ms * 1_000_000));
    let now = created["ts_ms"].as_i64().unwrap();
    assert_eq!(created["ts_us"], json!(now * 1_000));
    assert_eq!(created["ts_ns"], json!(now * 1_000_000));
    let sequence: Vec<String> =
        serde_json::from_str(created["source"]["sequence"].as_str().unwrap()).unwrap();
    assert_eq!(sequence.len(), 2);
    assert_eq!(
        sequence[1],
        created["source"]["lsn"].as_i64().unwrap().to_string()
    );
    assert_eq!(created["source"]["xmin"], Json::Null);

    let updated = value(1);
    assert_eq!(updated["op"], "u");
    assert_eq!(
        updated["after"]["big"],
        json!("__debezium_unavailable_value"),
        "an unchanged TOAST value: Debezium's placeholder"
    );

    let (deleted, tombstone, moved) = (&msgs[2], &msgs[3], &msgs[4]);
    assert_eq!(value(2)["op"], "d");
    assert_eq!(deleted.key, Some(json!({"id": 1})));
    assert_eq!(deleted.header("__debezium.newkey"), Some("{\"id\":10}"));
    assert!(tombstone.value.is_none());
    assert_eq!(tombstone.key, Some(json!({"id": 1})));
    assert_eq!(value(4)["op"], "c");
    assert_eq!(moved.key, Some(json!({"id": 10})));
    assert_eq!(moved.header("__debezium.oldkey"), Some("{\"id\":1}"));
    assert_eq!(value(5)["after"]["id"], json!(2));
    assert!(
        daemon.log_text().contains("TRUNCATE not produced"),
        "{}",
        daemon.log_text()
    );
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transaction_metadata_records_begin_and_end_each_transaction() {
    let client = pg().await;
    let a = unique("dbz_tx_a");
    let b = unique("dbz_tx_b");
    client
        .batch_execute(&format!(
            "CREATE TABLE {a} (id int PRIMARY KEY); CREATE TABLE {b} (id int PRIMARY KEY);"
        ))
        .await
        .unwrap();
    let (ta, tb) = (format!("public.{a}"), format!("public.{b}"));
    let cfg = TestConfig::new(&[&ta, &tb], "snapshot:\n  mode: never\n");
    cfg.append_to_daemon_file("values: debezium\ntransaction_metadata:\n  enabled: true\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    client
        .batch_execute(&format!(
            "BEGIN; INSERT INTO {a} VALUES (1), (2); INSERT INTO {b} VALUES (1); COMMIT;
             INSERT INTO {b} VALUES (2);"
        ))
        .await
        .unwrap();
    let records = consume_n(
        &format!("{}.transaction", cfg.prefix),
        4,
        Duration::from_secs(60),
    );
    assert_eq!(
        records.len(),
        4,
        "{records:#?}\nlog:\n{}",
        daemon.log_text()
    );
    let changes = consume_n(&cfg.topic(&ta), 2, Duration::from_secs(30));
    let tx_of = |m: &Msg| m.value.as_ref().unwrap()["transaction"]["id"].clone();
    let first_tx = tx_of(&changes[0]);
    let value = |i: usize| records[i].value.clone().unwrap();
    assert_eq!(value(0)["status"], "BEGIN");
    assert_eq!(value(0)["id"], first_tx);
    assert_eq!(records[0].key, Some(json!({"id": first_tx})));
    assert_eq!(value(0)["event_count"], Json::Null);
    assert_eq!(value(1)["status"], "END");
    assert_eq!(value(1)["id"], first_tx);
    assert_eq!(value(1)["event_count"], 3);
    assert_eq!(
        value(1)["data_collections"],
        json!([
            {"data_collection": ta, "event_count": 2},
            {"data_collection": tb, "event_count": 1}
        ])
    );
    assert_eq!(
        value(1)["ts_ms"],
        changes[0].value.as_ref().unwrap()["source"]["ts_ms"]
    );
    assert_eq!(
        (value(2)["status"].clone(), value(3)["status"].clone()),
        (json!("BEGIN"), json!("END"))
    );
    assert_eq!(value(3)["event_count"], 1);
    assert_ne!(value(2)["id"], first_tx);
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {a}; DROP TABLE {b};"))
        .await;
}
