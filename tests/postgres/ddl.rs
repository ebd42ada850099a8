//! DDL while a snapshot is in progress: the stream decodes its tuples only with the shapes of
//! its own Relation messages (never with the snapshot's newer plan), and a chunk query that
//! names a dropped column plans the table anew instead of stopping the connector.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::common::*;
use crate::snapshot_check::*;

/// Every message of `topic`, read until the topic is idle for 3 s.
fn all_messages(topic: &str) -> Vec<Msg> {
    consume_until(
        topic,
        Duration::from_secs(120),
        Duration::from_secs(3),
        |_| true,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ddl_while_stopped_mid_snapshot_keeps_each_event_in_its_own_shape() {
    let client = pg().await;
    let t = unique("ddlsnap");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, a int NOT NULL, b text);
             INSERT INTO {t} SELECT g, 0, 'b' || g FROM generate_series(1, 50000) g;"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], KILL_TEST_SNAPSHOT);
    let mut daemon = cfg.start();
    let started = Instant::now();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    daemon.stop_cleanly();

    // While stopped: updates in the old shape, the DDL, updates in the new shape.
    for id in 1..=50 {
        client
            .batch_execute(&format!("UPDATE {t} SET a = 1 WHERE id = {id}"))
            .await
            .unwrap();
    }
    client
        .batch_execute(&format!("ALTER TABLE {t} DROP COLUMN b, ADD COLUMN c text"))
        .await
        .unwrap();
    for id in 51..=100 {
        client
            .batch_execute(&format!(
                "UPDATE {t} SET a = 2, c = 'c' || id WHERE id = {id}"
            ))
            .await
            .unwrap();
    }
    let since = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_complete(&mut daemon, since, Duration::from_secs(300)).await;
    daemon.assert_running();

    let topic = cfg.topic(&format!("public.{t}"));
    let messages = tokio::task::spawn_blocking(move || all_messages(&topic))
        .await
        .unwrap();
    let state = ddl_topic_state(&messages);
    let want: BTreeMap<i64, Json> = client
        .query(&format!("SELECT id, a, c FROM {t}"), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let a: i32 = r.get(1);
            let c: Option<String> = r.get(2);
            (id, json!({"a": a, "c": c}))
        })
        .collect();
    let differ = want.iter().filter(|(k, v)| state.get(k) != Some(v)).count();
    assert_eq!(differ, 0, "{differ} keys differ from the table");
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_dropped_during_a_snapshot_without_dml_after_it_lets_the_snapshot_complete() {
    let client = pg().await;
    let t = unique("ddldrop");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, a int NOT NULL, b text);
             INSERT INTO {t} SELECT g, 0, 'b' || g FROM generate_series(1, 50000) g;"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], KILL_TEST_SNAPSHOT);
    let started = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    client
        .batch_execute(&format!("ALTER TABLE {t} DROP COLUMN b"))
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
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// A captured table dropped and created again while tidemark was stopped: the changes of the
/// old table, replayed from the WAL, keep their key (the catalog no longer knows it), and the
/// new table's changes follow; no misleading "has no primary key" stop.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_dropped_and_created_again_while_stopped_streams_on() {
    let client = pg().await;
    let t = unique("recreated");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY, v text)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    daemon.stop_cleanly();
    client
        .batch_execute(&format!(
            "INSERT INTO {t} VALUES (1, 'old'), (2, 'old');
             DROP TABLE {t};
             CREATE TABLE {t} (id int PRIMARY KEY, v text);"
        ))
        .await
        .unwrap();
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    // (The new table joins the publication when tidemark starts; PostgreSQL publishes its
    // changes from then on.)
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (3, 'new')"))
        .await
        .unwrap();
    let m = consume_n(
        &cfg.topic(&format!("public.{t}")),
        3,
        Duration::from_secs(60),
    );
    let keys: Vec<Json> = m.iter().filter_map(|x| x.key.clone()).collect();
    assert_eq!(
        keys,
        vec![json!({"id": 1}), json!({"id": 2}), json!({"id": 3})],
        "log:\n{}",
        tail(&daemon.log_text())
    );
    daemon.assert_running();
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
