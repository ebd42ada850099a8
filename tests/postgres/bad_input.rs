//! Bad input gets a clear error and a non-zero exit, never a panic.

use std::time::Duration;

use crate::common::*;

fn assert_clean_failure(status: std::process::ExitStatus, out: &str, needles: &[&str]) {
    assert!(
        !status.success(),
        "expected failure, got {status}; output:\n{out}"
    );
    assert!(!out.contains("panicked"), "panic:\n{out}");
    for n in needles {
        assert!(out.contains(n), "output lacks {n:?}:\n{out}");
    }
}

#[test]
fn unknown_key_in_yaml_names_file_line_and_key() {
    let cfg = TestConfig::new(&["public.whatever"], "snapshot_mode: never\n");
    let (status, out) = cfg.run_to_end(
        &[
            "check",
            "--offline",
            "--config",
            cfg.config_file().to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    let file = format!("connectors/{}.yaml:", cfg.name);
    assert_clean_failure(status, &out, &[&file, "unknown field `snapshot_mode`"]);
    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_clean_failure(status, &out, &[&file, "snapshot_mode"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_table_is_a_clear_error() {
    let client = pg().await;
    let cfg = TestConfig::new(&["public.no_such_table_here"], "");
    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(
        status,
        &out,
        &["none of the connector's tables exists", &cfg.name],
    );
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(status, &out, &["FAIL", "no_such_table_here", "fix:"]);
    cfg.cleanup(&client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slot_of_another_plugin_is_a_clear_error() {
    let client = pg().await;
    let t = unique("slotplugin");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    client
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
            &[&cfg.slot],
        )
        .await
        .unwrap();
    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(status, &out, &[&cfg.slot, "test_decoding", "not pgoutput"]);
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[test]
fn unreachable_server_is_reported_by_check() {
    let cfg = TestConfig::new(&["public.t"], "");
    let text = std::fs::read_to_string(cfg.path(&format!("connectors/{}.yaml", cfg.name))).unwrap();
    let text = text.replace(&format!("port: {}", pg_url().port), "port: 1");
    std::fs::write(cfg.path(&format!("connectors/{}.yaml", cfg.name)), text).unwrap();
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(
        status,
        &out,
        &["cannot connect to PostgreSQL at 127.0.0.1:1"],
    );
}

#[test]
fn wal_level_replica_is_a_clear_error() {
    let server = PrivatePostgres::start("replica")
        .expect("TIDEMARK_DEV_PG_BIN is set by scripts/dev-env.sh");
    let cfg = TestConfig::new(&["public.t"], "");
    server.use_in(&cfg);
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(
        status,
        &out,
        &[
            "wal_level = replica",
            "ALTER SYSTEM SET wal_level = logical",
        ],
    );
    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(status, &out, &["wal_level = replica"]);
}

/// The initial snapshot needs a primary key: `run` refuses a keyless table with a clear
/// message and `check` says how to fix it.
#[tokio::test(flavor = "multi_thread")]
async fn initial_snapshot_of_a_keyless_table_is_refused_with_the_fix() {
    let client = pg().await;
    let t = unique("nokey");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int NOT NULL, v text); ALTER TABLE {t} REPLICA IDENTITY FULL;"
        ))
        .await
        .unwrap();
    let table = format!("public.{t}");
    let cfg = TestConfig::new(&[&table], "");
    write(
        cfg.dir.path(),
        &format!("configs/tables/{}/{table}.yaml", cfg.name),
        "key: [id]\n",
    );
    let (status, out) = cfg.run_to_end(
        &["run", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(status, &out, &["no primary key", "initial snapshot", &t]);
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_failure(status, &out, &["FAIL", "initial snapshot", "mode: never"]);
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// A row whose message is larger than the producer's limit stops the connector with an error
/// that names the table, the key, the size and the settings to raise.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_larger_than_the_message_limit_is_a_clear_error() {
    let client = pg().await;
    let t = unique("toolarge");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY, doc text)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    // About 1.3 MB of text that does not compress away.
    client
        .batch_execute(&format!(
            "INSERT INTO {t} SELECT 42, string_agg(md5(g::text), '') FROM generate_series(1, 40000) g"
        ))
        .await
        .unwrap();
    let status = daemon.wait_exit(Duration::from_secs(60));
    let log = daemon.log_text();
    assert_clean_failure(
        status,
        &log,
        &[
            &format!("table public.{t}"),
            "{\"id\":42}",
            "bytes",
            "message.max.bytes",
            "max.message.bytes",
            "on_error: dead_letter",
        ],
    );
    // Its position was not committed past the row: a restart meets it again, at the same
    // place in the WAL.
    let first = wal_position(&log);
    let mut again = cfg.start();
    again.wait_exit(Duration::from_secs(60));
    assert_eq!(
        wal_position(&again.log_text()),
        first,
        "{}",
        again.log_text()
    );
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
