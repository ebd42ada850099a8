//! `values: debezium` on MariaDB: each type as Debezium's MySQL connector writes it with its
//! default settings (`time.precision.mode=adaptive_time_microseconds`), in the three formats.
//!
//! Expected values, by Debezium's documented representations: DATE as days, TIME as signed
//! microseconds, DATETIME(0-3) as epoch milliseconds, DATETIME(4-6) as epoch microseconds,
//! TIMESTAMP as an ISO string in UTC, DECIMAL as the unscaled value's bytes (base64 in JSON),
//! BIGINT UNSIGNED as a decimal(20,0) (Debezium's `precise` mode: its default `long` wraps),
//! BIT(1) as a boolean and BIT(n) as little-endian bytes, JSON as its text, geometry as
//! `{wkb, srid}`.

use std::time::Duration;

use base64::Engine as _;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value as Json};

use crate::common::*;
use crate::harness::*;

fn row_one() -> Json {
    let mut point = vec![1u8, 1, 0, 0, 0];
    point.extend(1.0f64.to_le_bytes());
    point.extend(2.0f64.to_le_bytes());
    json!({
        "id": 1, "dt": 19783, "tm": -3_723_000_000i64, "tm6": 36_672_345_678i64,
        "dtm0": 1_709_287_872_000i64, "dtm3": 1_709_287_872_345i64,
        "dtm6": 1_709_287_872_345_678i64, "ts": "2024-03-01T10:11:12.5Z",
        "d2": "SZYC0g==", "biu": "AP//////////", "b1": true, "b12": "qgo=",
        "j": "{\"a\": [1, 2]}", "e": "b", "s": "x,y", "y": 2024,
        "g": {"wkb": base64::engine::general_purpose::STANDARD.encode(&point), "srid": 0}
    })
}

fn row_two() -> Json {
    let mut r = row_one();
    for (k, v) in r.as_object_mut().unwrap() {
        *v = if k == "id" { json!(2) } else { Json::Null };
    }
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn each_type_is_written_as_debeziums_mysql_connector_writes_it() {
    let mut c = my().await;
    let t = unique("my_dbz");
    c.query_drop(format!(
        "CREATE TABLE {t} (
            id INT PRIMARY KEY, dt DATE, tm TIME, tm6 TIME(6), dtm0 DATETIME, dtm3 DATETIME(3),
            dtm6 DATETIME(6), ts TIMESTAMP(6) NULL, d2 DECIMAL(10,2), biu BIGINT UNSIGNED,
            b1 BIT(1), b12 BIT(12), j JSON, e ENUM('a','b'), s SET('x','y'), y YEAR, g GEOMETRY
        ) DEFAULT CHARSET utf8mb4"
    ))
    .await
    .unwrap();
    let table = format!("{}.{t}", db());

    // json, streamed.
    let cfg = mysql_config(&[&table], "");
    cfg.append_to_daemon_file("values: debezium\n");
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    c.query_drop(format!(
        "INSERT INTO {t} VALUES (1, '2024-03-01', '-01:02:03', '10:11:12.345678',
            '2024-03-01 10:11:12', '2024-03-01 10:11:12.345', '2024-03-01 10:11:12.345678',
            '2024-03-01 10:11:12.5', 12345678.90, 18446744073709551615, b'1', b'101010101010',
            '{{\"a\": [1, 2]}}', 'b', 'x,y', 2024, ST_GeomFromText('POINT(1 2)')),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL)"
    ))
    .await
    .unwrap();
    let msgs = consume_n(&cfg.topic(&table), 2, Duration::from_secs(60));
    assert_eq!(msgs.len(), 2, "{msgs:#?}\nlog:\n{}", daemon.log_text());
    let value = msgs[0].value.as_ref().unwrap();
    crate::connect_check::assert_row_equals(&value["after"], &row_one(), "json row 1");
    crate::connect_check::assert_row_equals(
        &msgs[1].value.as_ref().unwrap()["after"],
        &row_two(),
        "json row 2",
    );
    let source = &value["source"];
    let ts_ms = source["ts_ms"].as_i64().unwrap();
    assert_eq!(source["ts_us"], json!(ts_ms * 1_000));
    assert_eq!(source["sequence"], Json::Null);
    assert_eq!(source["thread"], Json::Null);
    assert_eq!(source["query"], Json::Null);
    daemon.stop_cleanly();

    // json-schema, read by a snapshot (types from information_schema): the same values, each
    // conforming to its Connect schema.
    let want = [row_one(), row_two()];
    let wrapped = mysql_config(&[&table], "snapshot:\n  mode: initial\n");
    wrapped.append_to_daemon_file("values: debezium\nformat: json-schema\n");
    let mut wrapped_daemon = wrapped.start();
    let read = consume_n(&wrapped.topic(&table), 2, Duration::from_secs(60));
    assert_eq!(
        read.len(),
        2,
        "{read:#?}\nlog:\n{}",
        wrapped_daemon.log_text()
    );
    crate::connect_check::assert_rows_conform(&read, |i| want[i].clone(), &[]);
    let schema = &read[0].value.as_ref().unwrap()["schema"];
    let after = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap();
    let name_of = |column: &str| {
        after["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == column)
            .unwrap()["name"]
            .clone()
    };
    assert_eq!(name_of("tm"), "io.debezium.time.MicroTime");
    assert_eq!(name_of("dtm0"), "io.debezium.time.Timestamp");
    assert_eq!(name_of("dtm3"), "io.debezium.time.Timestamp");
    assert_eq!(name_of("dtm6"), "io.debezium.time.MicroTimestamp");
    assert_eq!(name_of("ts"), "io.debezium.time.ZonedTimestamp");
    assert_eq!(name_of("b12"), "io.debezium.data.Bits");
    // MariaDB's JSON is a LONGTEXT with a json_valid check: a plain string, as Debezium
    // reads it from MariaDB's DDL (the value is the JSON text either way).
    assert_eq!(name_of("j"), Json::Null);
    wrapped_daemon.stop_cleanly();

    // avro, read by a snapshot: the same values (decimals as their text at the schema's
    // scale), by apache-avro and by fastavro.
    let avro = mysql_config(&[&table], "snapshot:\n  mode: initial\n");
    avro.append_to_daemon_file(&crate::avro_check::avro_daemon_yaml("values: debezium\n"));
    let mut avro_daemon = avro.start();
    let read =
        crate::avro_check::consume_avro(&avro.topic(&table), 2, Duration::from_secs(60)).await;
    assert_eq!(read.len(), 2, "{read:#?}\nlog:\n{}", avro_daemon.log_text());
    let forms = [
        json!({"d2": "12345678.90", "biu": "18446744073709551615"}),
        json!({}),
    ];
    crate::avro_check::assert_rows_match(&read, |i| want[i].clone(), &forms);
    avro_daemon.stop_cleanly();
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn transaction_metadata_in_avro_frames_each_transaction() {
    let mut c = my().await;
    let t = unique("my_dbz_tx");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let table = format!("{}.{t}", db());
    let cfg = mysql_config(&[&table], "");
    cfg.append_to_daemon_file(&crate::avro_check::avro_daemon_yaml(
        "transaction_metadata:\n  enabled: true\n  topic: \"{prefix}.{connector}.tx\"\n",
    ));
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    c.query_drop(format!(
        "BEGIN; INSERT INTO {t} VALUES (1); INSERT INTO {t} VALUES (2); COMMIT"
    ))
    .await
    .unwrap();
    let topic = format!("{}.{}.tx", cfg.prefix, cfg.name);
    let records = crate::avro_check::consume_avro(&topic, 2, Duration::from_secs(60)).await;
    assert_eq!(
        records.len(),
        2,
        "{records:#?}\nlog:\n{}",
        daemon.log_text()
    );
    let changes =
        crate::avro_check::consume_avro(&cfg.topic(&table), 2, Duration::from_secs(30)).await;
    let id = changes[0].value.as_ref().unwrap()["transaction"]["id"].clone();
    let begin = records[0].value.as_ref().unwrap();
    let end = records[1].value.as_ref().unwrap();
    assert_eq!(records[0].key, Some(json!({"id": id})));
    assert_eq!(
        (begin["status"].clone(), begin["id"].clone()),
        (json!("BEGIN"), id.clone())
    );
    assert_eq!(begin["data_collections"], Json::Null);
    assert_eq!(
        (end["status"].clone(), end["event_count"].clone()),
        (json!("END"), json!(2))
    );
    assert_eq!(
        end["data_collections"],
        json!([{"data_collection": table, "event_count": 2}])
    );
    daemon.stop_cleanly();
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}

/// MariaDB's JSON is a LONGTEXT; declared in `columns.json`, it is written as PostgreSQL's
/// json is in each profile: embedded in `tidemark`, a string named `io.debezium.data.Json` in
/// `debezium`.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_json_declared_in_the_table_file_is_written_as_postgresql_json_is() {
    let mut c = my().await;
    let t = unique("my_json");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, doc JSON)"))
        .await
        .unwrap();
    let d = db();
    let table = format!("{d}.{t}");
    // `check` points at the column and the table-file line that declares it.
    let undeclared = mysql_config(&[&table], "");
    let daemon_file = undeclared.config_file();
    let (_, out) = undeclared.run_to_end(
        &["check", "--config", daemon_file.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(
        out.contains("column `doc` is MariaDB JSON") && out.contains("columns: {json: [doc]}"),
        "{out}"
    );
    for values in ["tidemark", "debezium"] {
        let cfg = mysql_config(&[&table], "snapshot:\n  mode: initial\n");
        let format = if values == "debezium" {
            "json-schema"
        } else {
            "json"
        };
        cfg.append_to_daemon_file(&format!("values: {values}\nformat: {format}\n"));
        write(
            cfg.dir.path(),
            &format!("configs/tables/{}/{table}.yaml", cfg.name),
            "columns:\n  json: [doc]\n",
        );
        if values == "tidemark" {
            c.query_drop(format!(
                "INSERT INTO {t} VALUES (1, '{{\"a\": [1, 2.5, null], \"b\": \"x\"}}'), (2, NULL)"
            ))
            .await
            .unwrap();
        }
        let mut daemon = cfg.start();
        let read = consume_n(&cfg.topic(&table), 2, Duration::from_secs(60));
        assert_eq!(read.len(), 2, "{read:#?}\nlog:\n{}", daemon.log_text());
        let value = read[0].value.as_ref().unwrap();
        if values == "tidemark" {
            assert_eq!(
                value["after"]["doc"],
                json!({"a": [1, 2.5, null], "b": "x"}),
                "embedded, as PostgreSQL's json"
            );
        } else {
            let text = value["payload"]["after"]["doc"].as_str().unwrap();
            let parsed: Json = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, json!({"a": [1, 2.5, null], "b": "x"}));
            let after = value["schema"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == "after")
                .unwrap();
            let doc = after["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == "doc")
                .unwrap();
            assert_eq!(doc["name"], "io.debezium.data.Json");
        }
        daemon.stop_cleanly();
    }
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}
