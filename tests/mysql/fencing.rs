//! Two tidemark processes on one MySQL connector (each with its own server id, so MariaDB
//! lets both read): the one started last owns the connector, the other stops with a clear
//! error; the events keep arriving.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::common::*;
use crate::harness::*;

/// A second configuration of the same connector (same name, topics and positions topic), as
/// another machine would have it, with another replica server id.
fn second_process(cfg: &TestConfig) -> TestConfig {
    let other = TestConfig {
        dir: tempfile::tempdir().unwrap(),
        name: cfg.name.clone(),
        slot: cfg.slot.clone(),
        prefix: cfg.prefix.clone(),
    };
    let daemon = std::fs::read_to_string(cfg.config_file()).unwrap();
    write(other.dir.path(), "configs/tidemark.yaml", &daemon);
    let connector = format!("connectors/{}.yaml", cfg.name);
    let text = std::fs::read_to_string(cfg.path(&connector)).unwrap();
    let ours = format!("server_id: {}", server_id_in(&text));
    let text = text.replace(&ours, &format!("server_id: {}", server_id()));
    write(other.dir.path(), &connector, &text);
    other
}

fn server_id_in(connector: &str) -> u32 {
    connector
        .lines()
        .find_map(|l| l.trim().strip_prefix("server_id: "))
        .and_then(|v| v.parse().ok())
        .expect("server_id in the connector file")
}

async fn insert_arrives(c: &mut mysql_async::Conn, topic: &str, t: &str, id: i64) {
    c.query_drop(format!("INSERT INTO {t} VALUES ({id}, 'x')"))
        .await
        .unwrap();
    let topic = topic.to_string();
    let m = tokio::task::spawn_blocking(move || {
        consume_until(&topic, Duration::from_secs(60), Duration::ZERO, |m| {
            m.iter()
                .any(|x| x.value.as_ref().is_some_and(|v| v["after"]["id"] == id))
        })
    })
    .await
    .unwrap();
    assert!(
        m.iter()
            .any(|x| x.value.as_ref().is_some_and(|v| v["after"]["id"] == id)),
        "row {id} did not arrive"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_process_started_last_owns_the_connector_and_the_other_stops() {
    let mut c = my().await;
    let t = unique("my_fence");
    c.query_drop(format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v VARCHAR(10))"
    ))
    .await
    .unwrap();
    let d = db();
    let first = mysql_config(&[&format!("{d}.{t}")], "");
    let topic = first.topic(&format!("{d}.{t}"));
    let mut a = first.start();
    wait_binlog_streaming(&mut a).await;
    insert_arrives(&mut c, &topic, &t, 1).await;

    let second = second_process(&first);
    let mut b = second.start();
    wait_binlog_streaming(&mut b).await;
    // The first process stops on its own, with the reason.
    let since = Instant::now();
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the first process still runs; its log:\n{}",
            a.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success());
    assert!(
        a.log_text().contains("a newer tidemark process"),
        "{}",
        a.log_text()
    );
    insert_arrives(&mut c, &topic, &t, 2).await;
    b.assert_running();

    // Restarted, the first process is the newest again: it takes over, the second stops.
    let mut a = first.start();
    wait_binlog_streaming(&mut a).await;
    let since = Instant::now();
    while b.child.try_wait().unwrap().is_none() {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{}",
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    insert_arrives(&mut c, &topic, &t, 3).await;
    a.stop_cleanly();
}
