//! The DBLog snapshot against the real PostgreSQL: the shared suite (`tests/shared/
//! snapshot_suite.rs`) on this database, and what only PostgreSQL has.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::common::*;
use crate::snapshot_check::*;
use crate::snapshot_suite::{TestDb, FIRST_VERSION};

/// The shared PostgreSQL (`TIDEMARK_TEST_PG_URL`), for the snapshot suite.
pub struct Pg(tokio_postgres::Client);

impl TestDb for Pg {
    const NAME: &'static str = "PostgreSQL";

    async fn connect() -> Self {
        Pg(pg().await)
    }

    fn qualified(t: &str) -> String {
        format!("public.{t}")
    }

    fn config(tables: &[&str], extra: &str) -> TestConfig {
        TestConfig::new(tables, extra)
    }

    async fn execute(&mut self, sql: &str) {
        self.0.batch_execute(sql).await.unwrap();
    }

    async fn create_table(&mut self, t: &str, rows: i64) {
        self.execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint NOT NULL, s text);
             INSERT INTO {t} SELECT g, g, 'initial' FROM generate_series(1, {rows}) g;"
        ))
        .await;
    }

    async fn table_state(&mut self, t: &str) -> BTreeMap<i64, Json> {
        id_v_s_rows(&self.0, t).await
    }

    fn upsert_sql(t: &str, id: i64, v: i64) -> String {
        format!(
            "INSERT INTO {t} VALUES ({id}, {v}, 'i') ON CONFLICT (id) DO UPDATE SET v = excluded.v, s = 'i'"
        )
    }

    async fn wait_streaming(&mut self, cfg: &TestConfig, daemon: &mut Daemon) {
        wait_streaming(&self.0, &cfg.slot, daemon).await;
    }

    async fn cleanup(&mut self, cfg: &TestConfig) {
        cfg.cleanup(&self.0).await;
    }

    async fn analyze(&mut self, t: &str) {
        self.execute(&format!("ANALYZE {t}")).await;
    }

    /// DDL and an ACCESS EXCLUSIVE lock (with an update under it).
    async fn interfere(&mut self, t: &str, _cfg: &TestConfig, _daemon: &mut Daemon) {
        self.execute("SET lock_timeout = '3s'").await;
        let t0 = Instant::now();
        self.0
            .batch_execute(&format!("ALTER TABLE {t} ADD COLUMN extra int"))
            .await
            .expect("ALTER TABLE blocked by the snapshot");
        self.0
            .batch_execute(&format!(
                "BEGIN; LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1); \
                 UPDATE {t} SET v = {}, extra = 1 WHERE id = 10; COMMIT;",
                2 * FIRST_VERSION
            ))
            .await
            .expect("LOCK TABLE ... ACCESS EXCLUSIVE blocked by the snapshot");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "DDL and lock took {:?}",
            t0.elapsed()
        );
    }
}

crate::snapshot_suite!(Pg);

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
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}; DROP SEQUENCE {t}_v;"))
        .await;
}
