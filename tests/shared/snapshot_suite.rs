//! The snapshot suite, written once and run against both sources (as Debezium's
//! `AbstractIncrementalSnapshotTest`): a source's test crate implements [`TestDb`] for its
//! database and instantiates the tests with [`snapshot_suite!`].
//!
//! Every test works on a table `t (id bigint primary key, v bigint not null, s text)` holding
//! rows `1..=rows` with `v = id`, `s = 'initial'`; writers give each write a version above
//! [`FIRST_VERSION`] from one counter, so a key's versions only grow in commit order.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value as Json;

use crate::common::*;
use crate::snapshot_check::*;

/// Versions written by the writers start here (above every initial `v`).
pub const FIRST_VERSION: i64 = 1_000_000_000;

/// One source's database, as the suite uses it.
pub trait TestDb: Sized + Send + 'static {
    /// The database's name in messages.
    const NAME: &'static str;

    /// A new session.
    fn connect() -> impl Future<Output = Self> + Send;
    /// The table's name as a connector lists it (`schema.table`).
    fn qualified(t: &str) -> String;
    /// A configuration with one connector of this source capturing `tables`; `extra` is
    /// appended to the connector file.
    fn config(tables: &[&str], extra: &str) -> TestConfig;
    /// Runs `sql` (one statement, or a batch where the database allows).
    fn execute(&mut self, sql: &str) -> impl Future<Output = ()> + Send;
    /// Creates the suite's table with `rows` initial rows.
    fn create_table(&mut self, t: &str, rows: i64) -> impl Future<Output = ()> + Send;
    /// The table's rows as the topic carries them, by id.
    fn table_state(&mut self, t: &str) -> impl Future<Output = BTreeMap<i64, Json>> + Send;
    /// An insert of `id` with version `v` that updates the row when it exists.
    fn upsert_sql(t: &str, id: i64, v: i64) -> String;
    /// Waits until the daemon streams the log.
    fn wait_streaming(
        &mut self,
        cfg: &TestConfig,
        daemon: &mut Daemon,
    ) -> impl Future<Output = ()> + Send;
    /// What a stopped connector leaves on the server (a replication slot, ...), removed.
    fn cleanup(&mut self, cfg: &TestConfig) -> impl Future<Output = ()> + Send;
    /// Refreshes the table's statistics (its row estimate, which the parallel split reads).
    fn analyze(&mut self, t: &str) -> impl Future<Output = ()> + Send;
    /// Writes that a snapshot must never block, run while a throttled snapshot is under way;
    /// each asserts that it got through at once (the database's locks differ: DDL, exclusive
    /// table locks, long write transactions).
    fn interfere(
        &mut self,
        t: &str,
        cfg: &TestConfig,
        daemon: &mut Daemon,
    ) -> impl Future<Output = ()> + Send;
}

/// Inserts, updates and deletes random keys of `t` (ids 1..=1.2*rows) until `stop`.
/// The concurrent writer's pace (writes per second).
const WRITER_RATE: u32 = 1_000;

async fn write_randomly<D: TestDb>(
    t: String,
    rows: i64,
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
) {
    let mut db = D::connect().await;
    let version = AtomicI64::new(FIRST_VERSION);
    let started = tokio::time::Instant::now();
    let mut done = 0u32;
    while !stop.load(Ordering::Relaxed) {
        // At most WRITER_RATE writes a second: the tests are about changes interleaving with
        // the chunks, not about whether a debug build keeps up with the fastest writer a
        // server allows (on a slow machine it did not, and the snapshot's watermarks fell
        // ever further behind the writes).
        done += 1;
        tokio::time::sleep_until(started + Duration::from_secs(1) * done / WRITER_RATE).await;
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
            _ => D::upsert_sql(&t, id, v),
        };
        db.execute(&sql).await;
        writes.fetch_add(1, Ordering::Relaxed);
    }
}

/// A writer running until the returned flag is set.
struct Writer {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start<D: TestDb>(t: &str, rows: i64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_randomly::<D>(
            t.to_string(),
            rows,
            stop.clone(),
            writes.clone(),
        ));
        Self { stop, writes, task }
    }

    /// Stops the writer; returns how many writes it made.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.writes.load(Ordering::Relaxed)
    }
}

/// Reads the topic of `t` until it equals the table; returns the table's state and the
/// topic's.
async fn topic_and_table<D: TestDb>(
    db: &mut D,
    cfg: &TestConfig,
    t: &str,
    check_order: bool,
) -> (BTreeMap<i64, Json>, TopicState) {
    let want = db.table_state(t).await;
    let state = topic_equal_to(cfg.topic(&D::qualified(t)), want.clone(), check_order).await;
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

/// Stops the daemon and removes the test's table and server-side leftovers.
async fn finish<D: TestDb>(db: &mut D, mut daemon: Daemon, cfg: &TestConfig, t: &str) {
    daemon.stop_cleanly();
    db.cleanup(cfg).await;
    db.execute(&format!("DROP TABLE {t}")).await;
}

/// A table snapshotted while a writer keeps changing random keys ends, in a compacted topic's
/// terms, equal to the table; no key's state goes back in time.
/// A row count from the environment variable `name`, else `default` (the CI's size: the
/// larger runs are for a person looking for a rare race).
pub fn rows_from_env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub async fn snapshot_while_writing<D: TestDb>(rows: i64, chunk_size: usize) {
    let mut db = D::connect().await;
    let t = unique("snap");
    db.create_table(&t, rows).await;
    let cfg = D::config(
        &[&D::qualified(&t)],
        &format!("snapshot:\n  chunk_size: {chunk_size}\n"),
    );
    let writer = Writer::start::<D>(&t, rows);
    let started = Instant::now();
    let mut daemon = cfg.start();
    // Generous for one-row chunks on a loaded machine (200,000 of them took 173 s here).
    let limit = Duration::from_secs(600) + Duration::from_millis(10 * rows as u64);
    wait_snapshot_complete(&mut daemon, started, limit).await;
    let snapshot_secs = started.elapsed().as_secs_f64();
    let writes = writer.stop().await;
    let (want, state) = topic_and_table(&mut db, &cfg, &t, true).await;
    assert_equal(&want, &state, &format!("chunk size {chunk_size}"), &daemon);
    assert!(
        state.reads > 0,
        "no op=r event; log tail:\n{}",
        tail(&daemon.log_text())
    );
    eprintln!(
        "{}, chunk size {chunk_size}: {rows} rows snapshotted in {snapshot_secs:.1} s with {writes} \
         concurrent writes; {} messages, {} reads",
        D::NAME,
        state.messages,
        state.reads
    );
    finish(&mut db, daemon, &cfg, &t).await;
}

/// kill -9 in the middle of a snapshot under writes: the restart resumes at the chunk after
/// the last committed one (not from the start), and the topic ends equal to the table.
pub async fn kill_9_mid_snapshot_resumes_at_the_next_chunk<D: TestDb>() {
    let mut db = D::connect().await;
    let t = unique("snapk");
    let rows = 100_000i64;
    db.create_table(&t, rows).await;
    let cfg = D::config(&[&D::qualified(&t)], KILL_TEST_SNAPSHOT);
    let writer = Writer::start::<D>(&t, rows);
    let daemon = kill_9_mid_snapshot_and_restart(&cfg, rows).await;
    writer.stop().await;
    let (want, state) = topic_and_table(&mut db, &cfg, &t, false).await;
    assert_equal(&want, &state, "after the restart", &daemon);
    assert_not_started_over(&state, rows);
    finish(&mut db, daemon, &cfg, &t).await;
}

/// `snapshot.parallelism: 4` on a large table (split into key ranges) and a small one, while
/// a writer changes the large one: both topics end equal to their tables, no key goes back in
/// time, and the large table was read as several ranges at once.
pub async fn parallel_snapshot_of_key_ranges_and_tables_under_writes<D: TestDb>() {
    let mut db = D::connect().await;
    let (large, small) = (unique("snapp"), unique("snaps"));
    let rows = 60_000i64;
    db.create_table(&large, rows).await;
    db.create_table(&small, 3_000).await;
    // Fresh statistics, as a table that has been in use has them (the split reads them).
    db.analyze(&large).await;
    let cfg = D::config(
        &[&D::qualified(&large), &D::qualified(&small)],
        "snapshot:\n  chunk_size: 500\n  parallelism: 4\n",
    );
    let writer = Writer::start::<D>(&large, rows);
    let started = Instant::now();
    let mut daemon = cfg.start();
    wait_snapshot_complete(&mut daemon, started, Duration::from_secs(600)).await;
    let writes = writer.stop().await;
    let log = daemon.log_text();
    assert!(
        log.contains("split into key ranges")
            && log.contains(&format!("table={}", D::qualified(&large))),
        "the large table was not split; log tail:\n{}",
        tail(&log)
    );
    for t in [&large, &small] {
        let (want, state) = topic_and_table(&mut db, &cfg, t, true).await;
        assert_equal(&want, &state, &format!("parallel snapshot of {t}"), &daemon);
        assert!(state.reads > 0, "no op=r event for {t}");
    }
    eprintln!(
        "{}, parallelism 4: {rows} + 3000 rows in {:.1} s with {writes} concurrent writes",
        D::NAME,
        started.elapsed().as_secs_f64()
    );
    finish(&mut db, daemon, &cfg, &small).await;
    db.execute(&format!("DROP TABLE {large}")).await;
}

/// kill -9 in the middle of a parallel snapshot (four key ranges at once): every range
/// resumes after its own stored key, and the topic ends equal to the table.
pub async fn kill_9_mid_parallel_snapshot_resumes_every_range<D: TestDb>() {
    let mut db = D::connect().await;
    let t = unique("snapkp");
    let rows = 100_000i64;
    db.create_table(&t, rows).await;
    db.analyze(&t).await;
    let cfg = D::config(
        &[&D::qualified(&t)],
        &format!("{KILL_TEST_SNAPSHOT}  parallelism: 4\n"),
    );
    let writer = Writer::start::<D>(&t, rows);
    let daemon = kill_9_mid_snapshot_and_restart(&cfg, rows).await;
    writer.stop().await;
    // The second life resumed the ranges the first one split the table into.
    let log = daemon.log_text();
    let starting = log
        .lines()
        .find(|l| l.contains("snapshot starting"))
        .unwrap_or_default();
    assert!(
        starting.matches(" ..= ").count() >= 2,
        "the restart did not resume key ranges: {starting}"
    );
    let (want, state) = topic_and_table(&mut db, &cfg, &t, false).await;
    assert_equal(&want, &state, "after the restart", &daemon);
    assert_not_started_over(&state, rows);
    finish(&mut db, daemon, &cfg, &t).await;
}

/// While a throttled snapshot runs, the database's own writes, DDL and locks get through at
/// once ([`TestDb::interfere`]) and the snapshot still ends equal to the table: tidemark holds
/// no lock beyond one chunk's statement.
pub async fn snapshot_blocks_no_writer_and_no_ddl<D: TestDb>() {
    let mut db = D::connect().await;
    let t = unique("snapl");
    let rows = 50_000i64;
    db.create_table(&t, rows).await;
    let cfg = D::config(
        &[&D::qualified(&t)],
        "snapshot:\n  chunk_size: 200\n  max_rows_per_second: 2500\n",
    );
    let mut daemon = cfg.start();
    let started = Instant::now();
    wait_snapshot_started(&mut daemon, &cfg, started).await;
    let mut other = D::connect().await;
    other.interfere(&t, &cfg, &mut daemon).await;
    assert!(
        !daemon.log_text().contains("snapshot complete"),
        "the snapshot ended before the interference: the test proves nothing"
    );
    wait_snapshot_complete(&mut daemon, started, Duration::from_secs(120)).await;
    let (want, state) = topic_and_table(&mut db, &cfg, &t, true).await;
    assert_equal(&want, &state, "after the interference", &daemon);
    finish(&mut db, daemon, &cfg, &t).await;
}

/// The ids of the `op=r` events among `msgs`, in topic order.
fn read_ids(msgs: &[Msg]) -> Vec<i64> {
    msgs.iter()
        .filter_map(|m| m.value.as_ref())
        .filter(|v| v["op"] == "r")
        .filter_map(|v| v["after"]["id"].as_i64())
        .collect()
}

/// Reads `topic` until it holds at least `n` `op=r` events; returns their ids.
fn reads_until(topic: &str, n: usize) -> Vec<i64> {
    read_ids(&consume_until(
        topic,
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| read_ids(m).len() >= n,
    ))
}

/// A connector capturing `table` that takes no initial snapshot, reads 30-row chunks, and has a
/// signing key (so `--where` conditions are accepted when signed).
pub fn signed_on_demand_config<D: TestDb>(table: &str) -> TestConfig {
    let cfg = D::config(
        &[table],
        "snapshot:\n  mode: never\n  chunk_size: 30\n  signing_key_file: signing.key\n",
    );
    write(
        cfg.dir.path(),
        "connectors/signing.key",
        "0123456789abcdef0123456789abcdef\n",
    );
    cfg
}

/// `tidemark snapshot` on a running connector that took no initial snapshot: a key range
/// re-sends exactly the rows in it, in key order; a table the connector does not capture is
/// refused; then the whole table; then the rows matching a condition (signed by the command
/// with the connector's key).
pub async fn on_demand_snapshot_of_a_key_range_a_table_and_a_condition<D: TestDb>() {
    let mut db = D::connect().await;
    let t = unique("snapr");
    db.create_table(&t, 1000).await;
    let table = D::qualified(&t);
    let cfg = signed_on_demand_config::<D>(&table);
    let mut daemon = cfg.start();
    db.wait_streaming(&cfg, &mut daemon).await;
    let topic = cfg.topic(&table);

    request(&cfg, &[&table, "--from", "100", "--to", "199"]);
    assert_eq!(
        reads_until(&topic, 100),
        (100..=199).collect::<Vec<i64>>(),
        "log:\n{}",
        tail(&daemon.log_text())
    );

    let config = cfg.config_file();
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
    let ids = reads_until(&topic, 1100);
    assert_eq!(ids.len(), 1100, "log:\n{}", tail(&daemon.log_text()));
    assert_eq!(ids[100..], (1..=1000).collect::<Vec<i64>>()[..]);

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
    let ids = reads_until(&topic, 1110);
    assert_eq!(
        ids[1100..],
        (1..=10).map(|i| i * 100).collect::<Vec<i64>>()[..],
        "log:\n{}",
        tail(&daemon.log_text())
    );
    finish(&mut db, daemon, &cfg, &t).await;
}

/// `--pause` holds a running snapshot (only the chunks already read complete), `--resume`
/// continues it, `--stop` ends it for good and clears the stored progress.
pub async fn pause_resume_and_stop_signals<D: TestDb>() {
    let mut db = D::connect().await;
    let t = unique("snapp");
    let rows = 20_000i64;
    db.create_table(&t, rows).await;
    let cfg = D::config(
        &[&D::qualified(&t)],
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
    request(&cfg, &["--resume"]);
    wait_for_log(
        &mut daemon,
        "snapshot resumed",
        started,
        Duration::from_secs(60),
    )
    .await;
    let mut resumed = still;
    for _ in 0..100 {
        resumed = stored_rows(&cfg);
        if resumed > still {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        resumed > still,
        "resume did not continue ({still} rows stored)"
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
        db.execute(&format!("UPDATE {t} SET v = v + 1 WHERE id = 1"))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stored,
        Some(Json::Null),
        "the stopped snapshot left progress in the position"
    );
    finish(&mut db, daemon, &cfg, &t).await;
}

/// Instantiates the suite as `#[tokio::test]`s for the [`TestDb`] `$db` (invoke it as
/// `crate::snapshot_suite!(Db);`).
#[macro_export]
macro_rules! snapshot_suite {
    ($db:ty) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn snapshot_of_200k_rows_under_writes_chunk_1000() {
            $crate::snapshot_suite::snapshot_while_writing::<$db>(200_000, 1000).await;
        }

        /// Seven-row chunks: 50,000 rows (7,143 chunks, each interleaved with the writer)
        /// by default; `TIDEMARK_TEST_CHUNK7_ROWS=200000` runs the full size.
        #[tokio::test(flavor = "multi_thread")]
        async fn snapshot_under_writes_chunk_7() {
            let rows = $crate::snapshot_suite::rows_from_env("TIDEMARK_TEST_CHUNK7_ROWS", 50_000);
            $crate::snapshot_suite::snapshot_while_writing::<$db>(rows, 7).await;
        }

        /// One-row chunks: 10,000 rows by default; `TIDEMARK_TEST_CHUNK1_ROWS=200000` runs
        /// the full size.
        #[tokio::test(flavor = "multi_thread")]
        async fn snapshot_under_writes_chunk_1() {
            let rows = $crate::snapshot_suite::rows_from_env("TIDEMARK_TEST_CHUNK1_ROWS", 10_000);
            $crate::snapshot_suite::snapshot_while_writing::<$db>(rows, 1).await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn kill_9_mid_snapshot_resumes_at_the_next_chunk() {
            $crate::snapshot_suite::kill_9_mid_snapshot_resumes_at_the_next_chunk::<$db>().await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn parallel_snapshot_of_key_ranges_and_tables_under_writes() {
            $crate::snapshot_suite::parallel_snapshot_of_key_ranges_and_tables_under_writes::<$db>()
                .await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn kill_9_mid_parallel_snapshot_resumes_every_range() {
            $crate::snapshot_suite::kill_9_mid_parallel_snapshot_resumes_every_range::<$db>().await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn snapshot_blocks_no_writer_and_no_ddl() {
            $crate::snapshot_suite::snapshot_blocks_no_writer_and_no_ddl::<$db>().await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn on_demand_snapshot_of_a_key_range_a_table_and_a_condition() {
            $crate::snapshot_suite::on_demand_snapshot_of_a_key_range_a_table_and_a_condition::<$db>()
                .await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn pause_resume_and_stop_signals() {
            $crate::snapshot_suite::pause_resume_and_stop_signals::<$db>().await;
        }
    };
}
