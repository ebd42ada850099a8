//! The DBLog snapshot against the real server: a table snapshotted while a writer keeps
//! inserting, updating and deleting random keys must end, in a compacted topic's terms, equal
//! to the table; and no key's state may go back in time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value as Json;

use crate::common::*;
use crate::snapshot_check::*;

/// Inserts, updates and deletes random keys of `t` (ids 1..=2*rows/1) until `stop`; every
/// write takes the next `v` from a sequence, so versions only grow.
async fn write_randomly(t: String, rows: i64, stop: Arc<AtomicBool>, writes: Arc<AtomicU64>) {
    let client = pg().await;
    let seq = format!("{t}_v");
    while !stop.load(Ordering::Relaxed) {
        let (op, id) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..10u8),
                rng.random_range(1..=rows + rows / 5),
            )
        };
        let sql = match op {
            0..=5 => format!("UPDATE {t} SET v = nextval('{seq}'), s = 'u' WHERE id = {id}"),
            6..=7 => format!("DELETE FROM {t} WHERE id = {id}"),
            _ => format!(
                "INSERT INTO {t} VALUES ({id}, nextval('{seq}'), 'i') \
                 ON CONFLICT (id) DO UPDATE SET v = excluded.v, s = 'i'"
            ),
        };
        client.batch_execute(&sql).await.unwrap();
        writes.fetch_add(1, Ordering::Relaxed);
    }
}

async fn snapshot_while_writing(rows: i64, chunk_size: usize) {
    let client = pg().await;
    let t = unique("snap");
    create_table(&client, &t, rows).await;
    let cfg = TestConfig::new(
        &[&format!("public.{t}")],
        &format!("snapshot:\n  chunk_size: {chunk_size}\n"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_randomly(
        t.clone(),
        rows,
        stop.clone(),
        writes.clone(),
    ));
    let started = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_complete(&mut daemon, started, Duration::from_secs(600)).await;
    let snapshot_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let (want, state) = topic_and_table(&cfg, &client, &t, true).await;
    let missing = want.keys().filter(|k| !state.rows.contains_key(k)).count();
    let extra = state.rows.keys().filter(|k| !want.contains_key(k)).count();
    let differ = want
        .iter()
        .filter(|(k, v)| state.rows.get(k).is_some_and(|s| s != *v))
        .count();
    assert!(
        missing == 0 && extra == 0 && differ == 0,
        "chunk size {chunk_size}: topic state differs from the table: {missing} missing, {extra} extra, \
         {differ} different; log tail:\n{}",
        tail(&daemon.log_text())
    );
    assert!(
        state.reads > 0,
        "no op=r event; log tail:\n{}",
        tail(&daemon.log_text())
    );
    eprintln!(
        "chunk size {chunk_size}: {rows} rows snapshotted in {snapshot_secs:.1} s with {} concurrent writes; \
         {} messages, {} reads",
        writes.load(Ordering::Relaxed),
        state.messages,
        state.reads
    );
    daemon.stop_cleanly();
    cfg.cleanup(&client).await;
    drop_table(&client, &t).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_200k_rows_under_writes_chunk_1000() {
    snapshot_while_writing(200_000, 1000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_of_200k_rows_under_writes_chunk_7() {
    snapshot_while_writing(200_000, 7).await;
}

/// One-row chunks: 20,000 rows by default (200,000 one-row chunks take minutes on the
/// development machine); `TIDEMARK_TEST_CHUNK1_ROWS=200000` runs the full size.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_under_writes_chunk_1() {
    let rows = std::env::var("TIDEMARK_TEST_CHUNK1_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    snapshot_while_writing(rows, 1).await;
}

async fn drop_table(client: &tokio_postgres::Client, t: &str) {
    client
        .batch_execute(&format!("DROP TABLE {t}; DROP SEQUENCE {t}_v;"))
        .await
        .unwrap();
}

/// Reads the topic of `t` until it equals the table (see [`read_until_equal`]); returns the
/// table's state and the topic's.
async fn topic_and_table(
    cfg: &TestConfig,
    client: &tokio_postgres::Client,
    t: &str,
    check_order: bool,
) -> (BTreeMap<i64, Json>, TopicState) {
    let want = id_v_s_rows(client, t).await;
    let state = topic_equal_to(cfg.topic(&format!("public.{t}")), want.clone(), check_order).await;
    (want, state)
}

async fn create_table(client: &tokio_postgres::Client, t: &str, rows: i64) {
    client
        .batch_execute(&format!(
            "CREATE SEQUENCE {t}_v START 1000000000;
             CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL, s text);
             INSERT INTO {t} SELECT g, g, 'initial' FROM generate_series(1, {rows}) g;"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_snapshot_resumes_at_the_next_chunk() {
    let client = pg().await;
    let t = unique("snapk");
    let rows = 100_000i64;
    create_table(&client, &t, rows).await;
    let cfg = TestConfig::new(&[&format!("public.{t}")], KILL_TEST_SNAPSHOT);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(write_randomly(
        t.clone(),
        rows,
        stop.clone(),
        writes.clone(),
    ));
    let mut daemon = kill_9_mid_snapshot_and_restart(&cfg, rows).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let (want, state) = topic_and_table(&cfg, &client, &t, false).await;
    assert!(
        state.rows == want,
        "topic state differs from the table after the restart"
    );
    assert_not_started_over(&state, rows);
    daemon.stop_cleanly();
    cfg.cleanup(&client).await;
    drop_table(&client, &t).await;
}

/// While a (throttled) snapshot runs, DDL and an ACCESS EXCLUSIVE lock get through at once:
/// tidemark holds no lock beyond one chunk's SELECT.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_blocks_neither_ddl_nor_an_exclusive_lock() {
    let client = pg().await;
    let t = unique("snapl");
    let rows = 50_000i64;
    create_table(&client, &t, rows).await;
    let cfg = TestConfig::new(
        &[&format!("public.{t}")],
        "snapshot:\n  chunk_size: 200\n  max_rows_per_second: 2500\n",
    );
    let mut daemon = cfg.start();
    let started = Instant::now();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    let other = pg().await;
    other
        .batch_execute("SET lock_timeout = '3s'")
        .await
        .unwrap();
    let t0 = Instant::now();
    other
        .batch_execute(&format!("ALTER TABLE {t} ADD COLUMN extra int"))
        .await
        .expect("ALTER TABLE blocked by the snapshot");
    other
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1); \
             UPDATE {t} SET v = nextval('{t}_v'), extra = 1 WHERE id = 10; COMMIT;"
        ))
        .await
        .expect("LOCK TABLE ... ACCESS EXCLUSIVE blocked by the snapshot");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "DDL and lock took {:?}",
        t0.elapsed()
    );
    assert!(
        !daemon.log_text().contains("snapshot complete"),
        "the snapshot ended before the DDL: the test proves nothing"
    );
    wait_snapshot_complete(&mut daemon, started, Duration::from_secs(120)).await;
    let (want, state) = topic_and_table(&cfg, &client, &t, true).await;
    assert!(state.rows == want, "topic state differs from the table");
    daemon.stop_cleanly();
    cfg.cleanup(&client).await;
    drop_table(&client, &t).await;
}

/// `tidemark snapshot` on a running connector (which took no initial snapshot): a key range
/// re-sends exactly the rows in it; then the whole table; then the rows matching a (signed)
/// condition.
#[tokio::test(flavor = "multi_thread")]
async fn on_demand_snapshot_of_a_key_range_and_of_a_table() {
    let client = pg().await;
    let t = unique("snapr");
    create_table(&client, &t, 1000).await;
    let table = format!("public.{t}");
    let cfg = TestConfig::new(
        &[&table],
        "snapshot:\n  mode: never\n  chunk_size: 30\n  signing_key_file: signing.key\n",
    );
    write(
        cfg.dir.path(),
        "connectors/signing.key",
        "0123456789abcdef0123456789abcdef\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let config = cfg.config_file();
    request(&cfg, &[&table, "--from", "100", "--to", "199"]);
    let topic = cfg.topic(&table);
    let reads = |msgs: &[Msg]| -> Vec<i64> {
        msgs.iter()
            .filter_map(|m| m.value.as_ref())
            .filter(|v| v["op"] == "r")
            .map(|v| v["after"]["id"].as_i64().unwrap())
            .collect()
    };
    let msgs = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| reads(m).len() >= 100,
    );
    let ids = reads(&msgs);
    assert_eq!(
        ids,
        (100..=199).collect::<Vec<i64>>(),
        "log:\n{}",
        tail(&daemon.log_text())
    );

    // A table the connector does not capture is refused by the command.
    let out = cfg
        .tidemark(&[
            "snapshot",
            &cfg.name,
            "public.nope",
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not captured"));

    request(&cfg, &[]);
    let msgs = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| reads(m).len() >= 1100,
    );
    let ids = reads(&msgs);
    assert_eq!(ids.len(), 1100, "log:\n{}", tail(&daemon.log_text()));
    assert_eq!(ids[100..], (1..=1000).collect::<Vec<i64>>()[..]);

    // A condition, signed by the command with the connector's key.
    request(&cfg, &[&table, "--from", "100", "--where", "id % 100 = 0"]);
    let msgs = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| reads(m).len() >= 1110,
    );
    assert_eq!(
        reads(&msgs)[1100..],
        (1..=10).map(|i| i * 100).collect::<Vec<i64>>()[..],
        "log:\n{}",
        tail(&daemon.log_text())
    );
    daemon.stop_cleanly();
    cfg.cleanup(&client).await;
    drop_table(&client, &t).await;
}

/// Pause holds the snapshot (only the chunks already read complete), resume continues it, stop
/// ends it for good and clears the stored progress.
#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_and_stop_signals() {
    let client = pg().await;
    let t = unique("snapp");
    let rows = 20_000i64;
    create_table(&client, &t, rows).await;
    let table = format!("public.{t}");
    let cfg = TestConfig::new(
        &[&table],
        "snapshot:\n  mode: on_demand\n  chunk_size: 100\n  max_rows_per_second: 2000\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let topic = cfg.topic(&table);
    let count_reads = |settle: u64| {
        let msgs = consume_until(
            &topic,
            Duration::from_secs(10),
            Duration::from_secs(settle),
            |_| true,
        );
        msgs.iter()
            .filter_map(|m| m.value.as_ref())
            .filter(|v| v["op"] == "r")
            .count()
    };
    request(&cfg, &[]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    request(&cfg, &["--pause"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paused_at = count_reads(1);
    assert!(
        paused_at > 0 && paused_at < rows as usize,
        "{paused_at} rows before the pause"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = count_reads(1);
    assert!(
        still <= paused_at + 200,
        "{still} rows after a pause at {paused_at}: the snapshot did not pause"
    );
    request(&cfg, &["--resume"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    request(&cfg, &["--stop"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped_at = count_reads(1);
    assert!(
        stopped_at > still,
        "resume did not continue ({still} -> {stopped_at})"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_stop = count_reads(1);
    assert_eq!(after_stop, stopped_at, "rows kept coming after the stop");
    assert!(after_stop < rows as usize);
    let log = daemon.log_text();
    assert!(
        log.contains("snapshot paused") && log.contains("snapshot resumed"),
        "{}",
        tail(&log)
    );
    assert!(
        log.contains("snapshot stopped by a signal"),
        "{}",
        tail(&log)
    );
    assert_eq!(
        tokio::task::block_in_place(|| stored_progress(&cfg)),
        Some(Json::Null),
        "the stopped snapshot left progress in the position"
    );
    daemon.stop_cleanly();
    cfg.cleanup(&client).await;
    drop_table(&client, &t).await;
}

/// A snapshot request for a table without a primary key skips that table with an error in the
/// log; the stream goes on. (`check` and start-up refuse such a table for the initial snapshot.)
#[tokio::test(flavor = "multi_thread")]
async fn a_requested_snapshot_of_a_keyless_table_is_skipped_and_the_stream_goes_on() {
    let client = pg().await;
    let t = unique("snapnk");
    client
        .batch_execute(&format!(
            "CREATE SEQUENCE {t}_v; CREATE TABLE {t} (id bigint NOT NULL, v bigint, s text);
             ALTER TABLE {t} REPLICA IDENTITY FULL;
             INSERT INTO {t} SELECT g, g, 'x' FROM generate_series(1, 10) g;"
        ))
        .await
        .unwrap();
    let table = format!("public.{t}");
    let cfg = TestConfig::new(&[&table], "snapshot:\n  mode: on_demand\n");
    write(
        cfg.dir.path(),
        &format!("configs/tables/{}/{table}.yaml", cfg.name),
        "key: [id]\n",
    );
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    request(&cfg, &[&table]);
    let started = Instant::now();
    wait_for_log(
        &mut daemon,
        "snapshot of this table skipped",
        started,
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (11, 11, 'after')"))
        .await
        .unwrap();
    let msgs = consume_n(&cfg.topic(&table), 1, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1, "log:\n{}", tail(&daemon.log_text()));
    assert_eq!(msgs[0].value.as_ref().unwrap()["after"]["id"], 11);
    daemon.stop_cleanly();
    cfg.cleanup(&client).await;
    drop_table(&client, &t).await;
}
