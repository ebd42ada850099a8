//! A PostgreSQL connector whose slot is gone, invalidated or moved past its stored position
//! never streams on silently from the slot: it stops with an error that says so
//! (`snapshot.on_lost_position: fail`, the default), or re-creates the slot and snapshots
//! every table again (`resnapshot`), after which the topic equals the table.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::snapshot_check::*;

/// Appends `snapshot: {on_lost_position: resnapshot}` to the connector file.
fn choose_resnapshot(cfg: &TestConfig) {
    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\nsnapshot:\n  on_lost_position: resnapshot\n");
    std::fs::write(&path, text).unwrap();
}

/// `tidemark run` must stop on its own with a non-zero status and say `needles`.
fn assert_refused(cfg: &TestConfig, needles: &[&str]) {
    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(90),
    );
    assert!(!status.success(), "expected a refusal:\n{out}");
    for n in needles {
        assert!(out.contains(n), "output lacks {n:?}:\n{out}");
    }
}

/// Streams the table's first rows (an initial snapshot), then stops.
async fn stream_then_stop(cfg: &TestConfig, client: &tokio_postgres::Client, t: &str) {
    let since = Instant::now();
    let mut daemon = cfg.start();
    wait_streaming(client, &cfg.slot, &mut daemon).await;
    wait_snapshot_complete(&mut daemon, since, Duration::from_secs(60)).await;
    client
        .batch_execute(&format!(
            "UPDATE {t} SET v = v + 1000, s = 'streamed' WHERE id <= 10"
        ))
        .await
        .unwrap();
    let want = id_v_s_rows(client, t).await;
    topic_equal_to(cfg.topic(&format!("public.{t}")), want, false).await;
    daemon.stop_cleanly();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_slot_is_refused_and_resnapshot_converges() {
    let client = pg().await;
    let t = unique("lostslot");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL, s text);
             INSERT INTO {t} SELECT g, g, 'initial' FROM generate_series(1, 50) g;"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    stream_then_stop(&cfg, &client, &t).await;

    // While tidemark is down: the slot goes, 100 rows come.
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&cfg.slot])
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {t} SELECT g, g, 'while down' FROM generate_series(51, 150) g;"
        ))
        .await
        .unwrap();
    assert_refused(
        &cfg,
        &[
            "does not exist, but a position is stored",
            "on_lost_position",
        ],
    );
    let slot_exists = client
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&cfg.slot],
        )
        .await
        .unwrap()
        .is_some();
    assert!(!slot_exists, "a refused start must not create the slot");

    choose_resnapshot(&cfg);
    let mut daemon = cfg.start();
    let want = id_v_s_rows(&client, &t).await;
    let state = topic_equal_to(cfg.topic(&format!("public.{t}")), want.clone(), false).await;
    assert_eq!(state.rows, want, "log:\n{}", tail(&daemon.log_text()));
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalidated_slot_is_refused_and_resnapshot_converges() {
    let Some(server) = PrivatePostgres::start_with(
        "logical",
        "-c max_slot_wal_keep_size=1 -c wal_keep_size=0 -c min_wal_size=32MB -c max_wal_size=64MB",
    ) else {
        panic!("TIDEMARK_DEV_PG_BIN is not set: run through scripts/test.sh");
    };
    let client = pg_connect(&server.url()).await;
    let t = "invalidated";
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL, s text);
             INSERT INTO {t} SELECT g, g, 'initial' FROM generate_series(1, 50) g;"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    server.use_in(&cfg);
    stream_then_stop(&cfg, &client, t).await;

    // While tidemark is down: more WAL than the slot may keep, and checkpoints remove it.
    client
        .batch_execute(&format!(
            "INSERT INTO {t} SELECT g, g, 'while down' FROM generate_series(51, 150) g;"
        ))
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS filler (x text);
                 INSERT INTO filler SELECT repeat(md5(g::text), 30) FROM generate_series(1, 20000) g;
                 SELECT pg_switch_wal(); CHECKPOINT;",
            )
            .await
            .unwrap();
        let status: Option<String> = client
            .query_one(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
                &[&cfg.slot],
            )
            .await
            .unwrap()
            .get(0);
        if status.as_deref() == Some("lost") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the slot was not invalidated (wal_status {status:?})"
        );
    }
    assert_refused(
        &cfg,
        &["is invalidated (wal_status lost)", "on_lost_position"],
    );

    choose_resnapshot(&cfg);
    let mut daemon = cfg.start();
    let want = id_v_s_rows(&client, t).await;
    let state = topic_equal_to(cfg.topic(&format!("public.{t}")), want.clone(), false).await;
    assert_eq!(state.rows, want, "log:\n{}", tail(&daemon.log_text()));
    daemon.stop_cleanly();
}
