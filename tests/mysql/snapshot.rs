//! The DBLog snapshot against the real MariaDB: a table snapshotted while a writer keeps
//! inserting, updating and deleting random keys must end, in a compacted topic's terms, equal
//! to the table, and no key's state may go back in time; a crash resumes at the next chunk;
//! a long write transaction is not blocked; key ranges and signal rows work.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rand::Rng;
use serde_json::{json, Value as Json};

use crate::common::*;
use crate::harness::*;
use crate::snapshot_check::*;

/// Versions written by the writer start here (above every initial `v`).
const FIRST_VERSION: i64 = 1_000_000_000;

async fn create_table(t: &str, rows: i64) {
    let mut c = my().await;
    c.query_drop(format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(20))"
    ))
    .await
    .unwrap();
    // The Sequence engine's seq_1_to_N table.
    c.query_drop(format!(
        "INSERT INTO {t} SELECT seq, seq, 'initial' FROM seq_1_to_{rows}"
    ))
    .await
    .unwrap();
}

async fn drop_table(t: &str) {
    my().await
        .query_drop(format!("DROP TABLE {t}"))
        .await
        .unwrap();
}

async fn table_state(t: &str) -> BTreeMap<i64, Json> {
    let rows: Vec<(i64, i64, Option<String>)> = my()
        .await
        .query(format!("SELECT id, v, s FROM {t}"))
        .await
        .unwrap();
    rows.into_iter()
        .map(|(id, v, s)| (id, json!({"id": id, "v": v, "s": s})))
        .collect()
}

/// Inserts, updates and deletes random keys of `t` (ids 1..=1.2*rows) until `stop`; every
/// write takes the next version from one counter, so versions only grow.
async fn write_randomly(t: String, rows: i64, stop: Arc<AtomicBool>, writes: Arc<AtomicU64>) {
    let mut c = my().await;
    let version = AtomicI64::new(FIRST_VERSION);
    while !stop.load(Ordering::Relaxed) {
        let (op, id) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..10u8),
                rng.random_range(1..=rows + rows / 5),
            )
        };
        let v = version.fetch_add(1, Ordering::Relaxed);
        let sql = match op {
            0..=5 => format!("UPDATE {t} SET v = {v}, s = 'u' WHERE id = {id}"),
            6..=7 => format!("DELETE FROM {t} WHERE id = {id}"),
            _ => format!(
                "INSERT INTO {t} VALUES ({id}, {v}, 'i') ON DUPLICATE KEY UPDATE v = {v}, s = 'i'"
            ),
        };
        c.query_drop(sql).await.unwrap();
        writes.fetch_add(1, Ordering::Relaxed);
    }
}

async fn topic_and_table(
    cfg: &TestConfig,
    t: &str,
    check_order: bool,
) -> (BTreeMap<i64, Json>, TopicState) {
    let want = table_state(t).await;
    let state = topic_equal_to(
        cfg.topic(&format!("{}.{t}", db())),
        want.clone(),
        check_order,
    )
    .await;
    (want, state)
}

fn assert_equal(want: &BTreeMap<i64, Json>, state: &TopicState, what: &str, daemon: &Daemon) {
    let missing = want.keys().filter(|k| !state.rows.contains_key(k)).count();
    let extra = state.rows.keys().filter(|k| !want.contains_key(k)).count();
    let differ = want
        .iter()
        .filter(|(k, v)| state.rows.get(k).is_some_and(|s| s != *v))
        .count();
    assert!(
        missing == 0 && extra == 0 && differ == 0,
        "{what}: topic state differs from the table: {missing} missing, {extra} extra, {differ} different; \
         log tail:\n{}",
        tail(&daemon.log_text())
    );
}

async fn snapshot_while_writing(rows: i64, chunk_size: usize) {
    let t = unique("my_snap");
    create_table(&t, rows).await;
    let cfg = mysql_config(
        &[&format!("{}.{t}", db())],
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
    // Generous for one-row chunks on a loaded machine (200,000 of them took 173 s here).
    let limit = Duration::from_secs(600) + Duration::from_millis(10 * rows as u64);
    wait_snapshot_complete(&mut daemon, started, limit).await;
    let snapshot_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let (want, state) = topic_and_table(&cfg, &t, true).await;
    assert_equal(&want, &state, &format!("chunk size {chunk_size}"), &daemon);
    assert!(
        state.reads > 0,
        "no op=r event; log tail:\n{}",
        tail(&daemon.log_text())
    );
    eprintln!(
        "MariaDB, chunk size {chunk_size}: {rows} rows snapshotted in {snapshot_secs:.1} s with {} concurrent \
         writes; {} messages, {} reads",
        writes.load(Ordering::Relaxed),
        state.messages,
        state.reads
    );
    daemon.stop_cleanly();
    drop_table(&t).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_of_200k_rows_under_writes_chunk_1000() {
    snapshot_while_writing(200_000, 1000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_of_200k_rows_under_writes_chunk_7() {
    snapshot_while_writing(200_000, 7).await;
}

/// One-row chunks: 20,000 rows by default; `TIDEMARK_TEST_CHUNK1_ROWS=200000` runs the full
/// size.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_under_writes_chunk_1() {
    let rows = std::env::var("TIDEMARK_TEST_CHUNK1_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    snapshot_while_writing(rows, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_kill_9_mid_snapshot_resumes_at_the_next_chunk() {
    let t = unique("my_snapk");
    let rows = 100_000i64;
    create_table(&t, rows).await;
    let cfg = mysql_config(&[&format!("{}.{t}", db())], KILL_TEST_SNAPSHOT);
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
    let (want, state) = topic_and_table(&cfg, &t, false).await;
    assert_equal(&want, &state, "after the restart", &daemon);
    assert_not_started_over(&state, rows);
    daemon.stop_cleanly();
    drop_table(&t).await;
}

/// While a (throttled) snapshot runs, a long write transaction holding row locks in the rows
/// being read and an ALTER TABLE get through at once, and the snapshot goes on meanwhile:
/// tidemark takes no lock beyond one chunk's statement.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_snapshot_blocks_neither_a_long_write_transaction_nor_ddl() {
    let t = unique("my_snapl");
    let rows = 50_000i64;
    create_table(&t, rows).await;
    let cfg = mysql_config(
        &[&format!("{}.{t}", db())],
        "snapshot:\n  chunk_size: 200\n  max_rows_per_second: 5000\n",
    );
    let mut daemon = cfg.start();
    let started = Instant::now();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    let mut other = my().await;
    other
        .query_drop("SET SESSION innodb_lock_wait_timeout = 3, SESSION lock_wait_timeout = 3")
        .await
        .unwrap();
    // A transaction that locks rows across the whole key space, including the chunks still to
    // be read, and stays open while the snapshot goes on.
    other.query_drop("START TRANSACTION").await.unwrap();
    let t0 = Instant::now();
    other
        .query_drop(format!(
            "UPDATE {t} SET v = v + {FIRST_VERSION}, s = 'long' WHERE id % 97 = 0"
        ))
        .await
        .expect("the long transaction's UPDATE was blocked by the snapshot");
    let update_took = t0.elapsed();
    let before = stored_rows(&cfg);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = stored_rows(&cfg);
    let t1 = Instant::now();
    other.query_drop("COMMIT").await.unwrap();
    assert!(
        update_took < Duration::from_secs(3) && t1.elapsed() < Duration::from_secs(3),
        "the long transaction waited: UPDATE {update_took:?}, COMMIT {:?}",
        t1.elapsed()
    );
    assert!(
        during > before,
        "the snapshot stalled behind the open write transaction ({before} -> {during} rows)"
    );
    let t2 = Instant::now();
    other
        .query_drop(format!("ALTER TABLE {t} ADD COLUMN extra INT"))
        .await
        .expect("ALTER TABLE blocked by the snapshot");
    assert!(
        t2.elapsed() < Duration::from_secs(4),
        "ALTER TABLE took {:?}",
        t2.elapsed()
    );
    assert!(
        !daemon.log_text().contains("snapshot complete"),
        "the snapshot ended before the transaction: the test proves nothing"
    );
    wait_snapshot_complete(&mut daemon, started, Duration::from_secs(120)).await;
    let (want, state) = topic_and_table(&cfg, &t, true).await;
    assert_equal(&want, &state, "after the long transaction", &daemon);
    daemon.stop_cleanly();
    drop_table(&t).await;
}

/// `tidemark snapshot` on a running connector (no initial snapshot): a key range re-sends
/// exactly the rows in it; then a row inserted into the signal table by hand asks for the
/// whole table; a `--where` condition is applied when signed, refused when not.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_on_demand_snapshot_of_a_key_range_and_by_a_signal_row() {
    let t = unique("my_snapr");
    create_table(&t, 1000).await;
    let table = format!("{}.{t}", db());
    let cfg = mysql_config(
        &[&table],
        "snapshot:\n  mode: never\n  chunk_size: 30\n  signing_key_file: signing.key\n",
    );
    write(
        cfg.dir.path(),
        "connectors/signing.key",
        "0123456789abcdef0123456789abcdef\n",
    );
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
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
    assert_eq!(
        reads(&msgs),
        (100..=199).collect::<Vec<i64>>(),
        "log:\n{}",
        tail(&daemon.log_text())
    );
    my().await
        .exec_drop(
            "INSERT INTO tidemark_signal (id, type, data) VALUES (?, 'snapshot', ?)",
            (
                unique("sig"),
                json!({"connector": cfg.name, "tables": [table]}).to_string(),
            ),
        )
        .await
        .unwrap();
    let msgs = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| reads(m).len() >= 1100,
    );
    let ids = reads(&msgs);
    assert_eq!(ids.len(), 1100, "log:\n{}", tail(&daemon.log_text()));
    assert_eq!(ids[100..], (1..=1000).collect::<Vec<i64>>()[..]);
    let first = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .find(|v| v["op"] == "r")
        .unwrap();
    assert_eq!(first["source"]["snapshot"], "true", "{first}");

    // A condition: only in a signal signed with the connector's key. Unsigned (a row written
    // by hand) it is refused; through the command it is signed and applied.
    my().await
        .exec_drop(
            "INSERT INTO tidemark_signal (id, type, data) VALUES (?, 'snapshot', ?)",
            (
                unique("sig"),
                json!({"connector": cfg.name, "tables": [table], "where": "1=1"}).to_string(),
            ),
        )
        .await
        .unwrap();
    wait_for_log(
        &mut daemon,
        "not signed with the connector's signing key",
        Instant::now(),
        Duration::from_secs(30),
    )
    .await;
    request(
        &cfg,
        &[
            &table,
            "--from",
            "100",
            "--where",
            "id % 100 = 0 AND s = 'initial'",
        ],
    );
    let msgs = consume_until(
        &topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| reads(m).len() >= 1110,
    );
    let ids = reads(&msgs);
    assert_eq!(
        ids[1100..],
        (1..=10).map(|i| i * 100).collect::<Vec<i64>>()[..],
        "log:\n{}",
        tail(&daemon.log_text())
    );
    daemon.stop_cleanly();
    drop_table(&t).await;
}

/// Keys of every kind the chunk bounds bind differently (integer, text in latin1, DECIMAL,
/// binary, DATETIME), composite: three-row chunks read every row exactly once, in key order.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_composite_keys_of_every_bound_kind_chunk_exactly() {
    let t = unique("my_snapc");
    let mut c = my().await;
    c.query_drop(format!(
        "CREATE TABLE {t} (a INT, b VARCHAR(10) CHARACTER SET latin1, c DECIMAL(10,2), d VARBINARY(4), \
         e DATETIME(6), v INT, PRIMARY KEY (a, b, c, d, e))"
    ))
    .await
    .unwrap();
    let mut rows = Vec::new();
    for a in [-1, 0, 7] {
        for b in ["", "é", "z'q"] {
            for c in ["-0.50", "2.00"] {
                for d in ["00", "ff01"] {
                    rows.push(format!(
                        "({a}, '{}', {c}, x'{d}', '2024-01-0{} 00:00:00.00000{}', 1)",
                        b.replace('\'', "''"),
                        rows.len() % 9 + 1,
                        rows.len() % 7
                    ));
                }
            }
        }
    }
    c.query_drop(format!("INSERT INTO {t} VALUES {}", rows.join(", ")))
        .await
        .unwrap();
    let table = format!("{}.{t}", db());
    let cfg = mysql_config(&[&table], "snapshot:\n  chunk_size: 3\n");
    let mut daemon = cfg.start();
    wait_snapshot_complete(&mut daemon, Instant::now(), Duration::from_secs(60)).await;
    let msgs = consume_n(&cfg.topic(&table), rows.len(), Duration::from_secs(30));
    let keys: Vec<Json> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| {
            let a = &v["after"];
            json!([a["a"], a["b"], a["c"], a["d"], a["e"]])
        })
        .collect();
    let want: Vec<(i64, String, String, String, String)> = c
        .query(format!(
            "SELECT a, CONVERT(b USING utf8mb4), CAST(c AS CHAR), TO_BASE64(d), \
             TRIM(TRAILING '.000000' FROM DATE_FORMAT(e, '%Y-%m-%dT%H:%i:%s.%f')) FROM {t} ORDER BY a, b, c, d, e"
        ))
        .await
        .unwrap();
    let want: Vec<Json> = want
        .into_iter()
        .map(|(a, b, c, d, e)| json!([a, b, c, d, e]))
        .collect();
    assert_eq!(keys, want, "log:\n{}", tail(&daemon.log_text()));
    daemon.stop_cleanly();
    drop_table(&t).await;
}

/// `tidemark snapshot --pause` holds a running snapshot (only chunks already read complete),
/// `--stop` ends it and clears the stored progress: the signals travel as signal-table rows.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_pause_and_stop_signals() {
    let t = unique("my_snapp");
    let rows = 20_000i64;
    create_table(&t, rows).await;
    let table = format!("{}.{t}", db());
    let cfg = mysql_config(
        &[&table],
        "snapshot:\n  chunk_size: 100\n  max_rows_per_second: 2000\n",
    );
    let mut daemon = cfg.start();
    let started = Instant::now();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    request(&cfg, &["--pause"]);
    wait_for_log(
        &mut daemon,
        "snapshot paused",
        started,
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paused_at = stored_rows(&cfg);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = stored_rows(&cfg);
    assert!(
        paused_at > 0 && still == paused_at && still < rows as u64,
        "paused at {paused_at}, then {still} of {rows} rows: the snapshot did not hold"
    );
    request(&cfg, &["--stop"]);
    wait_for_log(
        &mut daemon,
        "snapshot stopped by a signal",
        started,
        Duration::from_secs(60),
    )
    .await;
    // Progress leaves the position with the next commit.
    let mut stored = None;
    for _ in 0..50 {
        stored = tokio::task::block_in_place(|| stored_progress(&cfg));
        if stored == Some(Json::Null) {
            break;
        }
        my().await
            .query_drop(format!("UPDATE {t} SET v = v + 1 WHERE id = 1"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stored,
        Some(Json::Null),
        "the stopped snapshot left progress in the position"
    );
    daemon.stop_cleanly();
    drop_table(&t).await;
}
