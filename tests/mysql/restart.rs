//! kill -9 in the middle of a stream, writes while tidemark is down, restart: nothing is
//! missing and every key's changes stay in order, resuming by GTID and by file and offset.

use std::collections::HashMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::common::*;
use crate::harness::*;

/// The last `n` per `id` of a topic's messages (the table's state they imply).
fn last_values(m: &[Msg]) -> HashMap<i64, i64> {
    let mut last = HashMap::new();
    for x in m {
        if let Some(v) = &x.value {
            last.insert(
                v["after"]["id"].as_i64().unwrap(),
                v["after"]["n"].as_i64().unwrap(),
            );
        }
    }
    last
}

async fn kill_and_resume(extra: &str) {
    let mut c = my().await;
    let t = unique("my_restart");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, n INT)"))
        .await
        .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{t}")], extra);
    let topic = cfg.topic(&format!("{d}.{t}"));
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;

    // 60 transactions of 50 rows: insert each key, then update it twice.
    let writer = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut c = my().await;
            for round in 0..3 {
                for tx in 0..20 {
                    let mut sql = String::from("START TRANSACTION;");
                    for k in 0..50 {
                        let id = tx * 50 + k;
                        if round == 0 {
                            sql.push_str(&format!("INSERT INTO {t} VALUES ({id}, 0);"));
                        } else {
                            sql.push_str(&format!("UPDATE {t} SET n = {round} WHERE id = {id};"));
                        }
                    }
                    sql.push_str("COMMIT;");
                    c.query_drop(sql).await.unwrap();
                }
            }
        })
    };
    // Kill once part of the stream reached Kafka.
    let seen = consume_until(&topic, Duration::from_secs(60), Duration::ZERO, |m| {
        m.len() >= 500
    });
    assert!(
        seen.len() >= 500,
        "only {} messages; log:\n{}",
        seen.len(),
        daemon.log_text()
    );
    daemon.kill9();
    writer.await.unwrap();
    // Written while tidemark is down.
    c.query_drop(format!("UPDATE {t} SET n = 9 WHERE id < 100"))
        .await
        .unwrap();

    let mut daemon = cfg.start();
    let expected = 3000 + 100;
    let m = consume_until(
        &topic,
        Duration::from_secs(120),
        Duration::from_secs(2),
        |m| {
            let last = last_values(m);
            last.len() == 1000
                && (0..1000).all(|k| last.get(&k) == Some(&if k < 100 { 9 } else { 2 }))
        },
    );
    let mut per_key: HashMap<i64, Vec<i64>> = HashMap::new();
    for x in &m {
        let v = x.value.as_ref().expect("no deletes here");
        per_key
            .entry(v["after"]["id"].as_i64().unwrap())
            .or_default()
            .push(v["after"]["n"].as_i64().unwrap());
    }
    assert_eq!(
        per_key.len(),
        1000,
        "keys missing; log:\n{}",
        daemon.log_text()
    );
    for (k, ns) in &per_key {
        // Each life sends a key's versions in order; the second life replays from the last
        // committed position, which may repeat what the first life sent after it (at least
        // once): at most one step back, at the restart.
        let back_steps = ns.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(
            back_steps <= 1,
            "key {k} out of order within a life: {ns:?}"
        );
        let want_last = if *k < 100 { 9 } else { 2 };
        assert_eq!(ns.last(), Some(&want_last), "key {k}: {ns:?}");
        for n in [0, 1, 2] {
            assert!(ns.contains(&n), "key {k} lacks version {n}: {ns:?}");
        }
    }
    assert!(m.len() >= expected, "{} < {expected}", m.len());
    daemon.assert_running();
    daemon.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_and_resume_by_gtid() {
    kill_and_resume("").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_and_resume_by_file_and_offset() {
    kill_and_resume("  gtid: off").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_restart_while_streaming_loses_nothing() {
    let mut server = PrivateMariaDb::start();
    let mut c = server.connect().await;
    let t = unique("my_srv_restart");
    c.query_drop(format!("CREATE TABLE {t} (id INT PRIMARY KEY, n INT)"))
        .await
        .unwrap();
    let cfg = mysql_config(&[&format!("tidemark_test.{t}")], "");
    server.use_in(&cfg);
    let topic = cfg.topic(&format!("tidemark_test.{t}"));
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;

    for tx in 0..10 {
        let mut sql = String::from("START TRANSACTION;");
        for k in 0..50 {
            sql.push_str(&format!("INSERT INTO {t} VALUES ({}, 1);", tx * 50 + k));
        }
        sql.push_str("COMMIT;");
        c.query_drop(sql).await.unwrap();
    }
    let seen = consume_until(&topic, Duration::from_secs(60), Duration::ZERO, |m| {
        m.len() >= 100
    });
    assert!(seen.len() >= 100, "log:\n{}", daemon.log_text());
    drop(c);
    server.restart();
    let mut c = server.connect().await;
    for tx in 0..10 {
        let mut sql = String::from("START TRANSACTION;");
        for k in 0..50 {
            sql.push_str(&format!(
                "INSERT INTO {t} VALUES ({}, 2);",
                500 + tx * 50 + k
            ));
        }
        sql.push_str(&format!("UPDATE {t} SET n = 3 WHERE id = {tx};"));
        sql.push_str("COMMIT;");
        c.query_drop(sql).await.unwrap();
    }
    let m = consume_until(
        &topic,
        Duration::from_secs(120),
        Duration::from_secs(2),
        |m| {
            let last = last_values(m);
            last.len() == 1000 && (0..10).all(|k| last.get(&k) == Some(&3))
        },
    );
    let mut last: HashMap<i64, i64> = HashMap::new();
    for x in &m {
        let v = x.value.as_ref().unwrap();
        last.insert(
            v["after"]["id"].as_i64().unwrap(),
            v["after"]["n"].as_i64().unwrap(),
        );
    }
    assert_eq!(last.len(), 1000, "log:\n{}", daemon.log_text());
    assert!(
        (0..10).all(|k| last[&k] == 3),
        "log:\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(
        log.contains("transient error"),
        "the restart was not noticed:\n{log}"
    );
    daemon.assert_running();
    daemon.stop_cleanly();
}
