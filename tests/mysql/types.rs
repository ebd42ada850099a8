//! Every MariaDB column type round-trips exactly: extremes, NULLs, emoji, charsets, zero
//! dates, negative TIME, microseconds, unsigned 64-bit.

use std::time::Duration;

use base64::Engine as _;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value as Json};

use crate::common::*;
use crate::harness::*;
use crate::snapshot_check::assert_snapshot_equals_stream;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips() {
    let mut c = my().await;
    let t = unique("my_types");
    c.query_drop(format!(
        "CREATE TABLE {t} (
            id INT PRIMARY KEY,
            ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
            mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
            bi BIGINT, biu BIGINT UNSIGNED,
            d DECIMAL(65,30), d2 DECIMAL(10,2), f FLOAT, db DOUBLE,
            b1 BIT(1), b12 BIT(12), y YEAR,
            dt DATE, tm TIME, tm6 TIME(6), dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL,
            ch CHAR(5), vc VARCHAR(50), l1 VARCHAR(20) CHARACTER SET latin1,
            bn BINARY(4), vb VARBINARY(10), bl BLOB, tx MEDIUMTEXT,
            e ENUM('a','b','c'), s SET('x','y','z'), j JSON, g GEOMETRY
        ) DEFAULT CHARSET utf8mb4"
    ))
    .await
    .unwrap();
    let d = db();
    // Streamed values only here (no snapshot); the snapshot of the same rows is compared below.
    let cfg = mysql_config(&[&format!("{d}.{t}")], "");
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;

    c.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    let big_text = "ü".repeat(50_000);
    c.query_drop(format!(
        "INSERT INTO {t} VALUES (1,
            -128, 255, -32768, 65535,
            -8388608, 16777215, -2147483648, 4294967295,
            -9223372036854775808, 18446744073709551615,
            -99999999999999999999999999999999999.999999999999999999999999999999, -12.34, 1.5, -2.25e300,
            b'1', b'101010101010', 2155,
            '1000-01-01', '-838:59:59', '12:34:56.789012', '9999-12-31 23:59:59.999999', '2024-02-29 01:02:03',
            '2038-01-19 03:14:07.499',
            'ab', 'x😀é', 'café€',
            x'0102', x'00ff', x'deadbeef', '{big_text}',
            'b', 'x,z', '{{\"a\": [1, 2]}}', ST_GeomFromText('POINT(1 2)')
         ), (2,
            127, 0, 32767, 0,
            8388607, 0, 2147483647, 0,
            9223372036854775807, 0,
            0, 0, -0.5, 0,
            b'0', b'0', 1901,
            '0000-00-00', '00:00:00', '-00:00:00.000001', '0000-00-00 00:00:00', '1970-01-01 00:00:00', NULL,
            '', '', '',
            x'', x'', x'', '',
            'a', '', 'null', NULL
         ), (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL)"
    ))
    .await
    .unwrap();

    let topic = cfg.topic(&format!("{d}.{t}"));
    let m = consume_n(&topic, 3, Duration::from_secs(60));
    assert_eq!(m.len(), 3, "{m:#?}\nlog:\n{}", daemon.log_text());
    let after = |i: usize| m[i].value.as_ref().unwrap()["after"].clone();

    let mut point = vec![1u8, 1, 0, 0, 0];
    point.extend(1.0f64.to_le_bytes());
    point.extend(2.0f64.to_le_bytes());
    let expect1 = json!({
        "id": 1,
        "ti": -128, "tiu": 255, "si": -32768, "siu": 65535,
        "mi": -8388608, "miu": 16777215, "i": -2147483648i64, "iu": 4294967295u64,
        "bi": i64::MIN, "biu": u64::MAX,
        "d": "-99999999999999999999999999999999999.999999999999999999999999999999",
        "d2": "-12.34", "f": 1.5, "db": -2.25e300,
        "b1": true, "b12": b64(&[0x0a, 0xaa]), "y": 2155,
        "dt": "1000-01-01", "tm": "-838:59:59", "tm6": "12:34:56.789012",
        "dtm": "9999-12-31T23:59:59.999999", "dtm0": "2024-02-29T01:02:03",
        "ts": "2038-01-19T03:14:07.499000Z",
        "ch": "ab", "vc": "x😀é", "l1": "café€",
        "bn": b64(&[1, 2, 0, 0]), "vb": b64(&[0, 0xff]), "bl": b64(&[0xde, 0xad, 0xbe, 0xef]),
        "tx": big_text,
        "e": "b", "s": "x,z", "j": "{\"a\": [1, 2]}",
        "g": {"wkb": b64(&point), "srid": 0},
    });
    let got1 = after(0);
    for (k, v) in expect1.as_object().unwrap() {
        assert_eq!(&got1[k], v, "column {k}: {got1}");
    }
    let got2 = after(1);
    let expect2 = json!({
        "ti": 127, "tiu": 0, "mi": 8388607, "bi": i64::MAX, "biu": 0,
        "d": "0.000000000000000000000000000000", "d2": "0.00", "f": -0.5,
        "b1": false, "b12": b64(&[0, 0]), "y": 1901,
        "dt": null, "tm": "00:00:00", "tm6": "-00:00:00.000001", "dtm": null, "dtm0": "1970-01-01T00:00:00",
        "ts": null, "ch": "", "vc": "", "l1": "", "bn": b64(&[0, 0, 0, 0]), "vb": "", "bl": "", "tx": "",
        "e": "a", "s": "", "j": "null", "g": null,
    });
    for (k, v) in expect2.as_object().unwrap() {
        assert_eq!(&got2[k], v, "column {k}: {got2}");
    }
    let got3 = after(2);
    for (k, v) in got3.as_object().unwrap() {
        if k != "id" {
            assert_eq!(v, &Json::Null, "column {k}: {got3}");
        }
    }
    // The zero dates were announced once per column.
    let log = daemon.log_text();
    assert!(
        log.contains("zero or partial date emitted as null"),
        "{log}"
    );
    daemon.stop_cleanly();

    // A snapshot reads the same rows with SELECT: every value, and the table's shape, must
    // equal the streamed ones.
    let snap = mysql_config(&[&format!("{d}.{t}")], "snapshot:\n  mode: initial\n");
    let mut snap_daemon = snap.start();
    let read = consume_n(&snap.topic(&format!("{d}.{t}")), 3, Duration::from_secs(60));
    assert_eq!(read.len(), 3, "{read:#?}\nlog:\n{}", snap_daemon.log_text());
    assert_snapshot_equals_stream(&read, after);
    snap_daemon.stop_cleanly();

    // format: json-schema: every key and value conforms to the Connect schema beside it, and
    // carries the same values (MariaDB's JSON is already its text in both formats).
    let wrapped = mysql_config(&[&format!("{d}.{t}")], "snapshot:\n  mode: initial\n");
    wrapped.append_to_daemon_file("format: json-schema\n");
    let mut wrapped_daemon = wrapped.start();
    let read = consume_n(
        &wrapped.topic(&format!("{d}.{t}")),
        3,
        Duration::from_secs(60),
    );
    assert_eq!(
        read.len(),
        3,
        "{read:#?}\nlog:\n{}",
        wrapped_daemon.log_text()
    );
    crate::connect_check::assert_rows_conform(&read, after, &[]);
    wrapped_daemon.stop_cleanly();

    // format: avro: each record decodes, with the schema the registry holds under its id, to
    // the exact values: the JSON format's, but dates, times and timestamps as their Avro
    // numbers (days, microseconds) and BIGINT UNSIGNED as a decimal(20, 0). An independent
    // decoder (fastavro) agrees.
    let avro = mysql_config(&[&format!("{d}.{t}")], "snapshot:\n  mode: initial\n");
    avro.append_to_daemon_file(&crate::avro_check::avro_daemon_yaml(""));
    let mut avro_daemon = avro.start();
    let read = crate::avro_check::consume_avro(
        &avro.topic(&format!("{d}.{t}")),
        3,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(read.len(), 3, "{read:#?}\nlog:\n{}", avro_daemon.log_text());
    let numbers = [
        json!({
            "biu": "18446744073709551615", "dt": -354_285, "tm": -3_020_399_000_000i64,
            "tm6": 45_296_789_012i64, "dtm": 253_402_300_799_999_999i64,
            "dtm0": 1_709_168_523_000_000i64, "ts": 2_147_483_647_499_000i64
        }),
        json!({"biu": "0", "tm": 0, "tm6": -1, "dtm0": 0}),
        json!({}),
    ];
    crate::avro_check::assert_rows_match(&read, after, &numbers);
    avro_daemon.stop_cleanly();
}
