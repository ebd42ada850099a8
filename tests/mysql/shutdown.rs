//! SIGTERM under load: the connector, kept in backpressure while a writer runs, is stopped
//! ten times; every stop exits 0 within 30 s, and nothing is lost or reordered (see
//! `shared/shutdown_check.rs`). Then, on an idle server, a stop takes under 10 s.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::common::*;
use crate::harness::*;
use crate::shutdown_check::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_backpressure_exits_and_loses_nothing_and_an_idle_stop_is_quick() {
    let mut c = my().await;
    let t = unique("my_sigterm");
    c.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, v INT NOT NULL)"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO {t} SELECT seq, 0 FROM seq_0_to_{}",
        KEYS - 1
    ))
    .await
    .unwrap();
    let d = db();
    let cfg = mysql_config(&[&format!("{d}.{t}")], "");
    append_daemon_config(&cfg, BACKPRESSURE);
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    let writer = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut c = my().await;
            for _ in 0..TRANSACTIONS {
                c.query_drop(format!("UPDATE {t} SET v = v + 1"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    let mut slowest = Duration::ZERO;
    for round in 1..=10 {
        if round > 1 {
            daemon = cfg.start();
            wait_binlog_streaming(&mut daemon).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        slowest = slowest.max(tokio::task::block_in_place(|| {
            terminate_within(&mut daemon, Duration::from_secs(30), round)
        }));
    }
    writer.await.unwrap();
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    let topic = cfg.topic(&format!("{d}.{t}"));
    tokio::task::block_in_place(|| assert_every_version_in_order(&topic));
    eprintln!("slowest stop under load: {slowest:?}");
    // Caught up; the server now sends only heartbeats.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle =
        tokio::task::block_in_place(|| terminate_within(&mut daemon, Duration::from_secs(10), 11));
    eprintln!("stop on an idle server: {idle:?}");
}
