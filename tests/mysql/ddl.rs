//! DDL while a snapshot is in progress (MariaDB): events keep the shape their TABLE_MAP gives
//! them, and a chunk query that names a dropped column plans the table anew instead of
//! stopping the connector.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::json;

use crate::common::*;
use crate::harness::*;
use crate::snapshot_check::*;

fn snapshot_config(t: &str) -> TestConfig {
    mysql_config(&[&format!("{}.{t}", db())], KILL_TEST_SNAPSHOT)
}

async fn filled_table(c: &mut mysql_async::Conn, prefix: &str) -> String {
    let t = unique(prefix);
    c.query_drop(format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, a INT NOT NULL, b VARCHAR(20))"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO {t} SELECT seq, 0, CONCAT('b', seq) FROM seq_1_to_50000"
    ))
    .await
    .unwrap();
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_ddl_while_stopped_mid_snapshot_keeps_each_event_in_its_own_shape() {
    let mut c = my().await;
    let t = filled_table(&mut c, "my_ddlsnap").await;
    let cfg = snapshot_config(&t);
    let started = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    daemon.stop_cleanly();
    for id in 1..=50 {
        c.query_drop(format!("UPDATE {t} SET a = 1 WHERE id = {id}"))
            .await
            .unwrap();
    }
    c.query_drop(format!(
        "ALTER TABLE {t} DROP COLUMN b, ADD COLUMN c VARCHAR(20)"
    ))
    .await
    .unwrap();
    for id in 51..=100 {
        c.query_drop(format!(
            "UPDATE {t} SET a = 2, c = CONCAT('c', id) WHERE id = {id}"
        ))
        .await
        .unwrap();
    }
    let since = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_complete(&mut daemon, since, Duration::from_secs(300)).await;
    daemon.assert_running();
    let topic = cfg.topic(&format!("{}.{t}", db()));
    let messages = tokio::task::spawn_blocking(move || {
        consume_until(
            &topic,
            Duration::from_secs(120),
            Duration::from_secs(3),
            |_| true,
        )
    })
    .await
    .unwrap();
    let state = ddl_topic_state(&messages);
    let rows: Vec<(i64, i32, Option<String>)> =
        c.query(format!("SELECT id, a, c FROM {t}")).await.unwrap();
    let differ = rows
        .into_iter()
        .filter(|(id, a, cv)| state.get(id) != Some(&json!({"a": a, "c": cv})))
        .count();
    assert_eq!(differ, 0, "{differ} keys differ from the table");
    daemon.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_a_column_dropped_during_a_snapshot_lets_the_snapshot_complete() {
    let mut c = my().await;
    let t = filled_table(&mut c, "my_ddldrop").await;
    let cfg = snapshot_config(&t);
    let started = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    c.query_drop(format!("ALTER TABLE {t} DROP COLUMN b"))
        .await
        .unwrap();
    wait_snapshot_complete(&mut daemon, started, Duration::from_secs(300)).await;
    daemon.assert_running();
    let log = daemon.log_text();
    assert!(!log.contains("restarting the connector"), "{}", tail(&log));
    assert!(
        !log.contains("snapshot of this table skipped"),
        "{}",
        tail(&log)
    );
    daemon.stop_cleanly();
}
