//! A MySQL/MariaDB connector whose stored position is gone while its topics hold what it
//! produced never starts "from now" (which would skip every change since): it stops with an
//! error that says so (`snapshot.on_lost_position: fail`, the default), or starts at the
//! current position and snapshots every table again (`resnapshot`), after which the topic
//! equals the table.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::{json, Value as Json};

use crate::common::*;
use crate::harness::*;
use crate::snapshot_check::*;

async fn table_state(c: &mut mysql_async::Conn, t: &str) -> BTreeMap<i64, Json> {
    let rows: Vec<(i64, i64, Option<String>)> =
        c.query(format!("SELECT id, v, s FROM {t}")).await.unwrap();
    rows.into_iter()
        .map(|(id, v, s)| (id, json!({"id": id, "v": v, "s": s})))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_position_is_refused_and_resnapshot_converges() {
    let mut c = my().await;
    let t = unique("my_lostpos");
    c.query_drop(format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(20))"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO {t} SELECT seq, seq, 'initial' FROM seq_1_to_50"
    ))
    .await
    .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{t}")], "snapshot:\n  mode: initial\n");
    let topic = cfg.topic(&format!("{d}.{t}"));
    let since = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_complete(&mut daemon, since, Duration::from_secs(60)).await;
    c.query_drop(format!(
        "UPDATE {t} SET v = v + 1000, s = 'streamed' WHERE id <= 10"
    ))
    .await
    .unwrap();
    let want = table_state(&mut c, &t).await;
    topic_equal_to(topic.clone(), want, false).await;
    daemon.stop_cleanly();

    // While tidemark is down: its positions topic is deleted, rows come and change.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let positions = format!("{}.positions", cfg.prefix);
    let deleted = admin
        .delete_topics(&[positions.as_str()], &AdminOptions::new())
        .await
        .unwrap();
    assert!(deleted.iter().all(|r| r.is_ok()), "{deleted:?}");
    c.query_drop(format!(
        "INSERT INTO {t} SELECT seq, seq, 'while down' FROM seq_51_to_150"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "UPDATE {t} SET v = v + 5000, s = 'down' WHERE id BETWEEN 20 AND 30"
    ))
    .await
    .unwrap();

    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(90),
    );
    assert!(!status.success(), "expected a refusal:\n{out}");
    for needle in ["position was lost", "on_lost_position: resnapshot"] {
        assert!(out.contains(needle), "output lacks {needle:?}:\n{out}");
    }

    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "snapshot:\n  mode: initial\n",
        "snapshot:\n  mode: initial\n  on_lost_position: resnapshot\n",
    );
    assert!(text.contains("resnapshot"));
    std::fs::write(&path, text).unwrap();
    let mut daemon = cfg.start();
    let want = table_state(&mut c, &t).await;
    let state = topic_equal_to(topic, want.clone(), false).await;
    assert_eq!(state.rows, want, "log:\n{}", tail(&daemon.log_text()));
    daemon.stop_cleanly();
}
