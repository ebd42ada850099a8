//! Insert, update, delete and key changes of two MariaDB tables reach their topics in commit
//! order, with keys, envelopes, before images, tombstones and positions; a binlog rotation
//! and ALTER TABLE in the middle of the stream change nothing but the columns.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::common::*;
use crate::harness::*;

fn ops(m: &[Msg]) -> Vec<String> {
    m.iter()
        .map(|x| match &x.value {
            Some(v) => v["op"].as_str().unwrap_or("?").to_string(),
            None => "tombstone".into(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_reach_kafka_in_order_with_tombstones_across_rotation_and_ddl() {
    let mut c = my().await;
    let a = unique("my_e2e_a");
    let b = unique("my_e2e_b");
    c.query_drop(format!(
        "CREATE TABLE {a} (id INT PRIMARY KEY, v VARCHAR(20), n DECIMAL(10,2))"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "CREATE TABLE {b} (k1 INT, k2 VARCHAR(10), v TEXT, PRIMARY KEY (k1, k2))"
    ))
    .await
    .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{a}"), &format!("{d}.{b}")], "");
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;

    for stmt in [
        "START TRANSACTION".to_string(),
        format!("INSERT INTO {a} VALUES (1, 'one', 1.10), (2, 'two', -2.20)"),
        format!("INSERT INTO {b} VALUES (10, 'x', 'ten')"),
        "COMMIT".to_string(),
        format!("UPDATE {a} SET v = 'uno' WHERE id = 1"),
        "FLUSH BINARY LOGS".to_string(),
        format!("DELETE FROM {a} WHERE id = 2"),
        format!("UPDATE {a} SET id = 3 WHERE id = 1"),
        format!("ALTER TABLE {a} ADD COLUMN extra INT DEFAULT 7"),
        format!("INSERT INTO {a} (id, v, n) VALUES (4, 'four', 4)"),
        format!("ALTER TABLE {a} DROP COLUMN v"),
        format!("INSERT INTO {a} (id, n, extra) VALUES (5, 5, 5)"),
        format!("DELETE FROM {b} WHERE k1 = 10"),
    ] {
        c.query_drop(stmt).await.unwrap();
    }

    let ta = cfg.topic(&format!("{d}.{a}"));
    let tb = cfg.topic(&format!("{d}.{b}"));
    let ma = consume_n(&ta, 10, Duration::from_secs(60));
    let mb = consume_n(&tb, 3, Duration::from_secs(60));
    let show = |m: &[Msg]| format!("{m:#?}\nlog:\n{}", daemon.log_text());
    assert_eq!(
        ops(&ma),
        [
            "c",
            "c",
            "u",
            "d",
            "tombstone",
            "d",
            "tombstone",
            "c",
            "c",
            "c"
        ],
        "{}",
        show(&ma)
    );
    assert_eq!(ops(&mb), ["c", "d", "tombstone"], "{}", show(&mb));

    // Keys and values.
    assert_eq!(ma[0].key, Some(json!({"id": 1})));
    let v0 = ma[0].value.as_ref().unwrap();
    assert_eq!(v0["after"], json!({"id": 1, "v": "one", "n": "1.10"}));
    assert_eq!(v0["before"], json!(null));
    assert_eq!(ma[1].value.as_ref().unwrap()["after"]["n"], "-2.20");
    let u = ma[2].value.as_ref().unwrap();
    assert_eq!(u["before"]["v"], "one");
    assert_eq!(u["after"]["v"], "uno");
    // Both rows of the first transaction share its GTID and are ordered in it.
    let s0 = &v0["source"];
    assert_eq!(s0["connector"], "mysql");
    assert_eq!(s0["db"], d.as_str());
    assert_eq!(s0["table"], a.as_str());
    assert!(s0["gtid"].as_str().unwrap().starts_with("0-1-"), "{s0}");
    assert!(
        s0["file"].as_str().unwrap().starts_with("mysql-bin."),
        "{s0}"
    );
    assert_eq!(ma[1].value.as_ref().unwrap()["source"]["row"], 1);
    assert_eq!(v0["transaction"]["id"], s0["gtid"]);
    assert_eq!(
        mb[0].value.as_ref().unwrap()["transaction"]["id"],
        s0["gtid"]
    );
    assert_eq!(
        mb[0].value.as_ref().unwrap()["transaction"]["total_order"],
        3
    );
    // After FLUSH BINARY LOGS the delete is in the next file.
    let f_before = s0["file"].as_str().unwrap().to_string();
    let f_after = ma[3].value.as_ref().unwrap()["source"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(f_after > f_before, "{f_before} -> {f_after}");
    // Delete: before image, tombstone with the same key.
    assert_eq!(ma[3].key, Some(json!({"id": 2})));
    assert_eq!(ma[4].key, Some(json!({"id": 2})));
    assert!(ma[4].value.is_none());
    // Key change 1 -> 3: delete of 1, tombstone, create of 3.
    assert_eq!(ma[5].key, Some(json!({"id": 1})));
    assert_eq!(ma[7].key, Some(json!({"id": 3})));
    assert_eq!(ma[7].value.as_ref().unwrap()["after"]["v"], "uno");
    // ALTER TABLE: the next rows carry the new shape.
    assert_eq!(
        ma[8].value.as_ref().unwrap()["after"],
        json!({"id": 4, "v": "four", "n": "4.00", "extra": 7})
    );
    assert_eq!(
        ma[9].value.as_ref().unwrap()["after"],
        json!({"id": 5, "n": "5.00", "extra": 5})
    );
    // Composite key.
    assert_eq!(mb[0].key, Some(json!({"k1": 10, "k2": "x"})));
    assert_eq!(mb[1].value.as_ref().unwrap()["before"]["v"], "ten");
    assert!(
        daemon.log_text().contains("table changed shape"),
        "{}",
        daemon.log_text()
    );

    daemon.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_ready_server_and_a_missing_table() {
    let mut c = my().await;
    let a = unique("my_check");
    c.query_drop(format!("CREATE TABLE {a} (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{a}"), &format!("{d}.no_such_table")], "");
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(
        status.code(),
        Some(0),
        "a missing table is a warning: {out}"
    );
    assert!(
        out.contains("ok    binlog_format = ROW") || out.contains("ok    binlog_format = ROW"),
        "{out}"
    );
    assert!(out.contains("binlog_row_metadata = FULL"), "{out}");
    assert!(
        out.contains(&format!("WARN  table {d}.no_such_table does not exist")),
        "{out}"
    );
    assert!(out.contains(&format!("ok    table {d}.{a}")), "{out}");
    assert!(out.contains("may read the binlog"), "{out}");

    // A user without the replication grants is told the GRANT for its own account (host
    // included), not for '%'.
    let user = unique("tm_nogrant");
    c.query_drop(format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO '{user}'@'127.0.0.1'"
    ))
    .await
    .unwrap();
    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let u = cdc_url();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&format!("user: {}\n", u.user), &format!("user: {user}\n"))
        .replace(&format!("password: {}\n", u.password), "password: pw\n");
    std::fs::write(&path, text).unwrap();
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("TO '{user}'@'127.0.0.1';")),
        "the fix must name the account's real host:\n{out}"
    );
    c.query_drop(format!("DROP USER '{user}'@'127.0.0.1'"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_binlog_events_are_decoded() {
    let server = PrivateMariaDb::start_with("log_bin_compress = ON\nlog_bin_compress_min_len = 10");
    let mut c = server.connect().await;
    let t = unique("my_compressed");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT)"))
        .await
        .unwrap();
    let on: Option<String> = c.query_first("SELECT @@log_bin_compress").await.unwrap();
    assert_eq!(on.as_deref(), Some("1"));
    let cfg = mysql_config(&[&format!("tidemark_test.{t}")], "");
    server.use_in(&cfg);
    let topic = cfg.topic(&format!("tidemark_test.{t}"));
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    let long = "compressible ".repeat(100);
    c.query_drop(format!(
        "START TRANSACTION; INSERT INTO {t} VALUES (1, '{long}'), (2, 'short but over ten bytes'); \
         UPDATE {t} SET v = 'changed, also long enough' WHERE id = 1; COMMIT; \
         ALTER TABLE {t} ADD COLUMN extra_column_with_a_long_name INT DEFAULT 5; \
         DELETE FROM {t} WHERE id = 2;"
    ))
    .await
    .unwrap();
    let m = consume_n(&topic, 5, Duration::from_secs(60));
    assert_eq!(
        ops(&m),
        ["c", "c", "u", "d", "tombstone"],
        "{m:#?}\nlog:\n{}",
        daemon.log_text()
    );
    assert_eq!(m[0].value.as_ref().unwrap()["after"]["v"], long.as_str());
    assert_eq!(
        m[2].value.as_ref().unwrap()["after"]["v"],
        "changed, also long enough"
    );
    assert_eq!(
        m[3].value.as_ref().unwrap()["before"],
        json!({"id": 2, "v": "short but over ten bytes", "extra_column_with_a_long_name": 5})
    );
    daemon.stop_cleanly();
}

/// TRUNCATE of a captured table is an `op=t` event, as on PostgreSQL (it was dropped with an
/// info line before); a TRUNCATE of another table is not.
#[tokio::test(flavor = "multi_thread")]
async fn truncate_is_an_event() {
    let mut c = my().await;
    let a = unique("my_trunc");
    let other = unique("my_trunc_other");
    for t in [&a, &other] {
        c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"))
            .await
            .unwrap();
    }
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{a}")], "");
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    for stmt in [
        format!("INSERT INTO {a} VALUES (1, 1), (2, 2)"),
        format!("TRUNCATE TABLE {other}"),
        format!("TRUNCATE TABLE `{d}`.`{a}`"),
        format!("INSERT INTO {a} VALUES (3, 3)"),
    ] {
        c.query_drop(stmt).await.unwrap();
    }
    let topic = cfg.topic(&format!("{d}.{a}"));
    let m = consume_n(&topic, 4, Duration::from_secs(60));
    assert_eq!(ops(&m), vec!["c", "c", "t", "c"], "{m:?}");
    let t = m[2].value.as_ref().unwrap();
    assert_eq!(t["source"]["table"], json!(a));
    assert_eq!(t["before"], json!(null));
    assert_eq!(t["after"], json!(null));
    assert_eq!(
        m[2].key,
        Some(json!({})),
        "a truncate's key is the empty object, as on PostgreSQL"
    );
    daemon.stop_cleanly();
}

/// The source watcher on MariaDB: the server's binlog position and the bytes behind it, read
/// with the documented grants (`SHOW BINARY LOGS` needs BINLOG MONITOR); no slot, so no
/// retained bytes.
#[tokio::test(flavor = "multi_thread")]
async fn the_lag_in_binlog_bytes_is_read_with_the_documented_grants() {
    let mut c = my().await;
    let a = unique("my_backlog");
    c.query_drop(format!("CREATE TABLE {a} (id INT PRIMARY KEY, v INT)"))
        .await
        .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{a}")], "");
    let mut daemon = cfg.start_with_env(&[("TIDEMARK__ADMIN__SOURCE_POLL_MS", "1000")]);
    wait_binlog_streaming(&mut daemon).await;
    c.query_drop(format!("INSERT INTO {a} VALUES (1, 1)"))
        .await
        .unwrap();
    assert_eq!(
        consume_n(&cfg.topic(&format!("{d}.{a}")), 1, Duration::from_secs(60)).len(),
        1
    );
    let api = daemon.admin_address();
    let path = format!("/connectors/{}", cfg.name);
    let start = std::time::Instant::now();
    let backlog = loop {
        let (_, body) = get_json(&api, &path);
        let b = &body["backlog"];
        if b["behind_bytes"].is_u64() && !body["position"].is_null() {
            break b.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no backlog reading after 60 s: {body}\nlog:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let server = backlog["server_position"].as_str().unwrap();
    assert!(
        server.contains("-bin.") && server.contains(':'),
        "{backlog}"
    );
    assert!(backlog["retained_bytes"].is_null(), "{backlog}");
    let (_, metrics) = http(&api, "GET", "/metrics", None, "");
    assert!(
        metrics.contains(&format!(
            "tidemark_source_lag_bytes{{connector=\"{}\"}} ",
            cfg.name
        )),
        "{metrics}"
    );
    assert!(
        !metrics.contains("tidemark_replication_slot_retained_bytes{"),
        "{metrics}"
    );
    daemon.stop_cleanly();
}

/// A burst of transactions faster than the source's coalescing threshold (20,000 binlog events
/// a second): the reads wait up to `mysql.read_coalesce_ms` and take what arrived meanwhile
/// (`tidemark_read_wait_seconds` counts the waits), and every change still arrives once, in
/// commit order.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_read_in_coalesced_batches_arrives_whole_and_in_order() {
    const TRANSACTIONS: usize = 80;
    const ROWS: usize = 250;
    let mut c = my().await;
    let t = unique("my_burst");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, v INT)"))
        .await
        .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{t}")], "  read_coalesce_ms: 5");
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    let api = daemon.admin_address();

    // Single-row INSERT statements (a table map and a rows event each), 250 to a transaction,
    // 80 transactions back to back: about 100,000 events a second while it lasts.
    c.query_drop(format!(
        "BEGIN NOT ATOMIC
           FOR j IN 0..{last} DO
             START TRANSACTION;
             FOR i IN 1..{ROWS} DO INSERT INTO {t} VALUES (j * {ROWS} + i, j); END FOR;
             COMMIT;
           END FOR;
         END",
        last = TRANSACTIONS - 1
    ))
    .await
    .unwrap();

    let n = TRANSACTIONS * ROWS;
    let msgs = consume_n(&cfg.topic(&format!("{d}.{t}")), n, Duration::from_secs(120));
    let ids: Vec<i64> = msgs
        .iter()
        .map(|m| {
            m.value.as_ref().expect("no deletes here")["after"]["id"]
                .as_i64()
                .expect("an integer id")
        })
        .collect();
    let expected: Vec<i64> = (1..=n as i64).collect();
    assert!(
        ids == expected,
        "{} messages; the first out of order at {:?}\nlog:\n{}",
        ids.len(),
        ids.iter().zip(&expected).position(|(a, b)| a != b),
        daemon.log_text()
    );

    let (status, metrics) = http(&api, "GET", "/metrics", None, "");
    assert_eq!(status, 200);
    let waits = metric_sample(&metrics, "tidemark_read_wait_seconds_count", &cfg.name);
    assert!(waits >= 1, "no read waited to coalesce:\n{metrics}");
}
