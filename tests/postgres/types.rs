//! Every supported type round-trips to its exact value: NULLs, extremes, emoji, old and far
//! future timestamps, large bytea, arrays, enums, domains.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::common::*;
use crate::snapshot_check::assert_snapshot_equals_stream;

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_exactly() {
    let client = pg().await;
    let t = unique("types");
    let mood = format!("{t}_mood");
    let dom = format!("{t}_posint");
    client
        .batch_execute(&format!(
            "CREATE TYPE {mood} AS ENUM ('sad', 'ok', 'happy');
             CREATE DOMAIN {dom} AS int8 CHECK (VALUE > 0);
             CREATE TABLE {t} (
               id int PRIMARY KEY,
               i2 int2, i4 int4, i8 int8, num numeric, num_s numeric(12,2),
               f4 float4, f8 float8, b bool, tx text, vc varchar(20), ch char(3),
               by bytea, d date, tm time, ttz timetz, ts timestamp, tstz timestamptz,
               iv interval, u uuid, j json, jb jsonb, ai int4[], at text[], an numeric[],
               e {mood}, dm {dom}, pt point
             );
             ALTER TABLE {t} REPLICA IDENTITY FULL;"
        ))
        .await
        .unwrap();
    // Streamed values only here; the snapshot of the same rows is compared below.
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;

    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    client
        .execute(
            &format!(
                "INSERT INTO {t} VALUES (1,
                  -32768, -2147483648, -9223372036854775808,
                  '-123456789012345678901234567890.123456789', 12345678.9,
                  3.4028235e38, 'NaN', true, 'héllo 🦀 ''q''', 'vc', 'ab',
                  $1, '1969-07-20', '23:59:59.999999', '01:02:03.5+05:30',
                  '1900-01-01 00:00:00.000001', '2150-06-15 12:34:56.789012+02',
                  '1 year 2 mons 3 days 04:05:06.000007', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
                  '{{\"a\": [1, 2.50, null]}}', '{{\"z\": 1, \"a\": \"x\"}}',
                  '{{1,NULL,3}}', '{{\"a b\",\"c,d\",NULL}}', '{{1.5,NaN}}',
                  'happy', 42, '(1.5,2)'),
                 (2, 32767, 2147483647, 9223372036854775807, 'NaN', NULL,
                  '-Infinity', 1e-300, false, '', NULL, NULL, '\\x', 'infinity', '00:00:00', NULL,
                  '-infinity', '0044-03-15 12:00:00+00 BC', '-1 days -00:00:01', NULL, 'null', '[]',
                  '{{}}', NULL, NULL, 'sad', NULL, NULL),
                 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            ),
            &[&big],
        )
        .await
        .unwrap();

    let topic = cfg.topic(&format!("public.{t}"));
    let msgs = consume_n(&topic, 3, Duration::from_secs(60));
    assert_eq!(msgs.len(), 3, "{msgs:#?}\nlog:\n{}", daemon.log_text());
    let after = |i: usize| msgs[i].value.as_ref().unwrap()["after"].clone();
    let r1 = after(0);
    let expected1 = json!({
        "id": 1, "i2": -32768, "i4": -2147483648i64, "i8": i64::MIN,
        "num": "-123456789012345678901234567890.123456789", "num_s": "12345678.90",
        "f4": 3.4028235e38, "f8": "NaN", "b": true, "tx": "héllo 🦀 'q'", "vc": "vc", "ch": "ab ",
        "by": base64::engine::general_purpose::STANDARD.encode(&big),
        "d": "1969-07-20", "tm": "23:59:59.999999", "ttz": "01:02:03.500000+05:30",
        "ts": "1900-01-01T00:00:00.000001", "tstz": "2150-06-15T10:34:56.789012Z",
        "iv": "P1Y2M3DT4H5M6.000007S", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": {"a": [1, 2.50, null]}, "jb": {"a": "x", "z": 1},
        "ai": [1, null, 3], "at": ["a b", "c,d", null], "an": ["1.5", "NaN"],
        "e": "happy", "dm": 42, "pt": "(1.5,2)"
    });
    for (k, v) in expected1.as_object().unwrap() {
        assert_eq!(&r1[k], v, "column {k}: got {} want {v}", r1[k]);
    }
    let r2 = after(1);
    let expected2 = json!({
        "i2": 32767, "i4": 2147483647, "i8": i64::MAX, "num": "NaN", "num_s": null,
        "f4": "-Infinity", "f8": 1e-300, "b": false, "tx": "", "by": "", "d": "infinity",
        "tm": "00:00:00", "ts": "-infinity", "tstz": "-000043-03-15T12:00:00Z",
        "iv": "P-1DT-1S", "j": null, "jb": [], "ai": [], "e": "sad", "dm": null
    });
    for (k, v) in expected2.as_object().unwrap() {
        assert_eq!(&r2[k], v, "row 2 column {k}: got {} want {v}", r2[k]);
    }
    let r3 = after(2);
    for (k, v) in r3.as_object().unwrap() {
        if k != "id" {
            assert_eq!(v, &json!(null), "row 3 column {k}");
        }
    }
    assert!(
        daemon.log_text().contains("column type is not modelled"),
        "no warning for point:\n{}",
        daemon.log_text()
    );

    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup(&client).await;

    // A snapshot reads the same rows with SELECT: every value must equal the streamed one.
    let snap = TestConfig::new(&[&format!("public.{t}")], "");
    let mut snap_daemon = snap.start();
    let read = consume_n(
        &snap.topic(&format!("public.{t}")),
        3,
        Duration::from_secs(60),
    );
    assert_eq!(read.len(), 3, "{read:#?}\nlog:\n{}", snap_daemon.log_text());
    assert_snapshot_equals_stream(&read, after);
    snap_daemon.terminate(Duration::from_secs(60));
    snap.cleanup(&client).await;

    // format: json-schema: every key and value conforms to the Connect schema beside it, and
    // carries the same values (JSON columns as their text).
    let wrapped = TestConfig::new(&[&format!("public.{t}")], "");
    wrapped.append_to_daemon_file("format: json-schema\n");
    let mut wrapped_daemon = wrapped.start();
    let read = consume_n(
        &wrapped.topic(&format!("public.{t}")),
        3,
        Duration::from_secs(60),
    );
    assert_eq!(
        read.len(),
        3,
        "{read:#?}\nlog:\n{}",
        wrapped_daemon.log_text()
    );
    crate::connect_check::assert_rows_conform(&read, after, &["j", "jb"]);
    wrapped_daemon.terminate(Duration::from_secs(60));
    wrapped.cleanup(&client).await;

    // format: avro: each record decodes, with the schema the registry holds under its id, to
    // the exact values: the JSON format's, but dates, times and timestamps as their Avro
    // numbers (days, microseconds; the infinities as the extremes), JSON columns as their
    // text and a float4 as the float it is. An independent decoder (fastavro) agrees.
    let avro = TestConfig::new(&[&format!("public.{t}")], "");
    avro.append_to_daemon_file(&crate::avro_check::avro_daemon_yaml(""));
    let mut avro_daemon = avro.start();
    let read = crate::avro_check::consume_avro(
        &avro.topic(&format!("public.{t}")),
        3,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(read.len(), 3, "{read:#?}\nlog:\n{}", avro_daemon.log_text());
    let numbers = [
        json!({
            "d": -165, "tm": 86_399_999_999i64, "ts": -2_208_988_799_999_999i64,
            "tstz": 5_694_575_696_789_012i64, "f4": f64::from(3.4028235e38f32),
            "j": "{\"a\": [1, 2.50, null]}", "jb": "{\"a\": \"x\", \"z\": 1}"
        }),
        json!({
            "d": i32::MAX, "tm": 0, "ts": i64::MIN, "tstz": -63_517_780_800_000_000i64,
            "j": "null", "jb": "[]"
        }),
        json!({}),
    ];
    crate::avro_check::assert_rows_match(&read, after, &numbers);
    avro_daemon.terminate(Duration::from_secs(60));
    avro.cleanup(&client).await;
    client
        .batch_execute(&format!(
            "DROP TABLE {t}; DROP DOMAIN {dom}; DROP TYPE {mood};"
        ))
        .await
        .unwrap();
}

/// An unchanged TOASTed value: taken from the old tuple with REPLICA IDENTITY FULL, else the
/// documented marker, never a silent null.
#[tokio::test(flavor = "multi_thread")]
async fn unchanged_toast_values_are_never_silent_nulls() {
    let client = pg().await;
    let full = unique("toast_full");
    let dflt = unique("toast_default");
    client
        .batch_execute(&format!(
            "CREATE TABLE {full} (id int PRIMARY KEY, big text, n int);
             ALTER TABLE {full} REPLICA IDENTITY FULL;
             ALTER TABLE {full} ALTER COLUMN big SET STORAGE EXTERNAL;
             CREATE TABLE {dflt} (id int PRIMARY KEY, big text, n int);
             ALTER TABLE {dflt} ALTER COLUMN big SET STORAGE EXTERNAL;"
        ))
        .await
        .unwrap();
    // No snapshot: the test counts the changes it makes.
    let cfg = TestConfig::new(
        &[&format!("public.{full}"), &format!("public.{dflt}")],
        "snapshot:\n  mode: never\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let big: String = "x".repeat(10_000);
    for t in [&full, &dflt] {
        client
            .execute(&format!("INSERT INTO {t} VALUES (1, $1, 0)"), &[&big])
            .await
            .unwrap();
        client
            .batch_execute(&format!("UPDATE {t} SET n = 1 WHERE id = 1"))
            .await
            .unwrap();
    }
    let mf = consume_n(
        &cfg.topic(&format!("public.{full}")),
        2,
        Duration::from_secs(60),
    );
    let md = consume_n(
        &cfg.topic(&format!("public.{dflt}")),
        2,
        Duration::from_secs(60),
    );
    assert_eq!(mf.len(), 2, "{}", daemon.log_text());
    assert_eq!(md.len(), 2, "{}", daemon.log_text());
    let uf = mf[1].value.as_ref().unwrap();
    assert_eq!(
        uf["after"]["big"],
        json!(big),
        "FULL: the value comes from the old tuple"
    );
    assert_eq!(uf["after"]["n"], json!(1));
    let ud = md[1].value.as_ref().unwrap();
    assert_eq!(
        ud["after"]["big"],
        json!("__tidemark_unavailable_value"),
        "DEFAULT: the marker, not null"
    );
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {full}; DROP TABLE {dflt};"))
        .await;
}
