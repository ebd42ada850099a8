//! SIGTERM under load: the connector, kept in backpressure while a writer runs, is stopped
//! ten times; every stop exits 0 within 30 s, and nothing is lost or reordered (see
//! `shared/shutdown_check.rs`).

use std::time::Duration;

use crate::common::*;
use crate::shutdown_check::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_backpressure_exits_and_loses_nothing() {
    let client = pg().await;
    let t = unique("sigterm");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL);
             INSERT INTO {t} SELECT g, 0 FROM generate_series(0, {}) g;",
            KEYS - 1
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    append_daemon_config(&cfg, BACKPRESSURE);
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let writer = {
        let t = t.clone();
        tokio::spawn(async move {
            let client = pg().await;
            for _ in 0..TRANSACTIONS {
                client
                    .batch_execute(&format!("UPDATE {t} SET v = v + 1"))
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
            wait_streaming(&client, &cfg.slot, &mut daemon).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        slowest = slowest.max(tokio::task::block_in_place(|| {
            terminate_within(&mut daemon, Duration::from_secs(30), round)
        }));
    }
    writer.await.unwrap();
    let mut daemon = cfg.start();
    let topic = cfg.topic(&format!("public.{t}"));
    tokio::task::block_in_place(|| assert_every_version_in_order(&topic));
    eprintln!("slowest stop: {slowest:?}");
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// The hard deadline: a daemon whose broker never answers (a socket that accepts and stays
/// silent) cannot drain; after SIGTERM it exits at `shutdown_timeout_ms` with status 1 and says
/// why, instead of waiting for the broker.
#[tokio::test(flavor = "multi_thread")]
async fn the_shutdown_deadline_exits_when_the_drain_cannot_finish() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let client = pg().await;
    let t = unique("deadline");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id bigint PRIMARY KEY)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    write(
        cfg.dir.path(),
        "configs/tidemark.yaml",
        &format!(
            "connectors_dir: ../connectors\nkafka:\n  brokers: 127.0.0.1:{port}\noffsets:\n  store: file\n  \
             path: ../positions\nshutdown_timeout_ms: 2000\nlogging:\n  level: info,tidemark=debug\n"
        ),
    );
    let mut daemon = cfg.start();
    let since = std::time::Instant::now();
    while !daemon.log_text().contains("starting connector") {
        daemon.assert_running();
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| daemon.terminate(Duration::from_secs(30)));
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(1), "log:\n{}", daemon.log_text());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
        "exited after {took:?}"
    );
    assert!(
        daemon.log_text().contains("shutdown_timeout_ms passed"),
        "{}",
        daemon.log_text()
    );
    drop(silent);
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
