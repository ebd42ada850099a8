//! The DBLog snapshot against the real MariaDB: the shared suite (`tests/shared/
//! snapshot_suite.rs`) on this database, and what only MySQL has (signal-table rows written
//! by hand, key columns of every bound kind).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::{json, Value as Json};

use crate::common::*;
use crate::harness::*;
use crate::snapshot_check::*;
use crate::snapshot_suite::{signed_on_demand_config, TestDb, FIRST_VERSION};

/// The shared MariaDB (`TIDEMARK_TEST_MYSQL_URL`), for the snapshot suite.
pub struct My(mysql_async::Conn);

impl TestDb for My {
    const NAME: &'static str = "MariaDB";

    async fn connect() -> Self {
        My(my().await)
    }

    fn qualified(t: &str) -> String {
        format!("{}.{t}", db())
    }

    fn config(tables: &[&str], extra: &str) -> TestConfig {
        mysql_config(tables, extra)
    }

    async fn execute(&mut self, sql: &str) {
        self.0.query_drop(sql).await.unwrap();
    }

    async fn create_table(&mut self, t: &str, rows: i64) {
        self.execute(&format!(
            "CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(20))"
        ))
        .await;
        // The Sequence engine's seq_1_to_N table.
        self.execute(&format!(
            "INSERT INTO {t} SELECT seq, seq, 'initial' FROM seq_1_to_{rows}"
        ))
        .await;
    }

    async fn table_state(&mut self, t: &str) -> BTreeMap<i64, Json> {
        let rows: Vec<(i64, i64, Option<String>)> = self
            .0
            .query(format!("SELECT id, v, s FROM {t}"))
            .await
            .unwrap();
        rows.into_iter()
            .map(|(id, v, s)| (id, json!({"id": id, "v": v, "s": s})))
            .collect()
    }

    fn upsert_sql(t: &str, id: i64, v: i64) -> String {
        format!("INSERT INTO {t} VALUES ({id}, {v}, 'i') ON DUPLICATE KEY UPDATE v = {v}, s = 'i'")
    }

    async fn wait_streaming(&mut self, _cfg: &TestConfig, daemon: &mut Daemon) {
        wait_binlog_streaming(daemon).await;
    }

    /// A MySQL connector leaves nothing on the server.
    async fn cleanup(&mut self, _cfg: &TestConfig) {}

    async fn analyze(&mut self, t: &str) {
        self.execute(&format!("ANALYZE TABLE {t}")).await;
    }

    /// A long write transaction locking rows across the whole key space (including the chunks
    /// still to be read) that stays open while the snapshot goes on, then an ALTER TABLE.
    async fn interfere(&mut self, t: &str, cfg: &TestConfig, _daemon: &mut Daemon) {
        self.execute("SET SESSION innodb_lock_wait_timeout = 3, SESSION lock_wait_timeout = 3")
            .await;
        self.execute("START TRANSACTION").await;
        let t0 = Instant::now();
        self.0
            .query_drop(format!(
                "UPDATE {t} SET v = v + {FIRST_VERSION}, s = 'long' WHERE id % 97 = 0"
            ))
            .await
            .expect("the long transaction's UPDATE was blocked by the snapshot");
        let update_took = t0.elapsed();
        let before = stored_rows(cfg);
        tokio::time::sleep(Duration::from_secs(4)).await;
        let during = stored_rows(cfg);
        let t1 = Instant::now();
        self.execute("COMMIT").await;
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
        self.0
            .query_drop(format!("ALTER TABLE {t} ADD COLUMN extra INT"))
            .await
            .expect("ALTER TABLE blocked by the snapshot");
        assert!(
            t2.elapsed() < Duration::from_secs(4),
            "ALTER TABLE took {:?}",
            t2.elapsed()
        );
    }
}

crate::snapshot_suite!(My);

/// A row inserted into the signal table by hand asks a running connector for a snapshot of a
/// table; a `where` condition in such a row (unsigned) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn mysql_a_signal_row_written_by_hand_snapshots_and_an_unsigned_condition_is_refused() {
    let mut c = My::connect().await;
    let t = unique("my_snaps");
    c.create_table(&t, 100).await;
    let table = My::qualified(&t);
    let cfg = signed_on_demand_config::<My>(&table);
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    let signal = |data: Json| async move {
        my().await
            .exec_drop(
                "INSERT INTO tidemark_signal (id, type, data) VALUES (?, 'snapshot', ?)",
                (unique("sig"), data.to_string()),
            )
            .await
            .unwrap();
    };
    signal(json!({"connector": cfg.name, "tables": [table]})).await;
    let msgs = consume_until(
        &cfg.topic(&table),
        Duration::from_secs(60),
        Duration::from_secs(3),
        |m| m.len() >= 100,
    );
    let reads: Vec<&Json> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .filter(|v| v["op"] == "r")
        .collect();
    assert_eq!(reads.len(), 100, "log:\n{}", tail(&daemon.log_text()));
    assert_eq!(reads[0]["source"]["snapshot"], "true", "{}", reads[0]);
    signal(json!({"connector": cfg.name, "tables": [table], "where": "1=1"})).await;
    wait_for_log(
        &mut daemon,
        "not signed with the connector's signing key",
        Instant::now(),
        Duration::from_secs(30),
    )
    .await;
    daemon.stop_cleanly();
    c.execute(&format!("DROP TABLE {t}")).await;
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
    c.query_drop(format!("DROP TABLE {t}")).await.unwrap();
}
