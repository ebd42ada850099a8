//! Insert, update, delete and truncate on two tables reach their topics in commit order,
//! with keys, envelopes, before images and tombstones.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn changes_of_two_tables_reach_kafka_in_order_with_tombstones() {
    let client = pg().await;
    let a = unique("e2e_full");
    let b = unique("e2e_default");
    client
        .batch_execute(&format!(
            "CREATE TABLE {a} (id int PRIMARY KEY, v text, n numeric(10,2));
             ALTER TABLE {a} REPLICA IDENTITY FULL;
             CREATE TABLE {b} (id bigint PRIMARY KEY, v text);"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{a}"), &format!("public.{b}")], "");
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;

    client
        .batch_execute(&format!(
            "BEGIN;
             INSERT INTO {a} VALUES (1, 'one', 1.10), (2, 'two', 2.20);
             INSERT INTO {b} VALUES (10, 'ten');
             COMMIT;
             UPDATE {a} SET v = 'uno' WHERE id = 1;
             UPDATE {b} SET v = 'diez' WHERE id = 10;
             DELETE FROM {a} WHERE id = 2;
             DELETE FROM {b} WHERE id = 10;
             UPDATE {a} SET id = 3 WHERE id = 1;
             TRUNCATE {a};"
        ))
        .await
        .unwrap();

    let topic_a = cfg.topic(&format!("public.{a}"));
    let topic_b = cfg.topic(&format!("public.{b}"));
    let ma = consume_n(&topic_a, 9, Duration::from_secs(60));
    let mb = consume_n(&topic_b, 4, Duration::from_secs(60));
    let show = |m: &[Msg]| format!("{m:#?}\nlog:\n{}", daemon.log_text());

    let ops = |m: &[Msg]| -> Vec<Option<String>> {
        m.iter()
            .map(|x| {
                x.value
                    .as_ref()
                    .map(|v| v["op"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let some = |s: &str| Some(s.to_string());
    // Table a (REPLICA IDENTITY FULL): c1 c2 u1 d2 tomb2, key change 1->3 = d1 tomb1 c3, t.
    assert_eq!(
        ops(&ma),
        vec![
            some("c"),
            some("c"),
            some("u"),
            some("d"),
            None,
            some("d"),
            None,
            some("c"),
            some("t")
        ],
        "{}",
        show(&ma)
    );
    assert_eq!(ma.len(), 9, "{}", show(&ma));
    let keys: Vec<_> = ma.iter().map(|m| m.key.clone().unwrap()).collect();
    assert_eq!(
        keys,
        vec![
            json!({"id": 1}),
            json!({"id": 2}),
            json!({"id": 1}),
            json!({"id": 2}),
            json!({"id": 2}),
            json!({"id": 1}),
            json!({"id": 1}),
            json!({"id": 3}),
            json!({})
        ]
    );
    let v = |i: usize| ma[i].value.clone().unwrap();
    assert_eq!(v(0)["before"], json!(null));
    assert_eq!(v(0)["after"], json!({"id": 1, "v": "one", "n": "1.10"}));
    assert_eq!(v(2)["before"], json!({"id": 1, "v": "one", "n": "1.10"}));
    assert_eq!(v(2)["after"], json!({"id": 1, "v": "uno", "n": "1.10"}));
    assert_eq!(v(3)["before"], json!({"id": 2, "v": "two", "n": "2.20"}));
    assert_eq!(v(3)["after"], json!(null));
    assert_eq!(v(5)["before"]["id"], json!(1));
    assert_eq!(v(7)["after"], json!({"id": 3, "v": "uno", "n": "1.10"}));
    assert_eq!(v(8)["before"], json!(null));
    assert_eq!(v(8)["after"], json!(null));
    // The envelope's source block and transaction block.
    let src = &v(0)["source"];
    assert_eq!(src["connector"], "postgresql");
    assert_eq!(src["name"], cfg.name.as_str());
    assert_eq!(src["table"], a.as_str());
    assert_eq!(src["schema"], "public");
    assert_eq!(src["snapshot"], "false");
    assert!(src["lsn"].as_u64().unwrap() > 0);
    assert_eq!(v(0)["transaction"]["total_order"], 1);
    assert_eq!(v(1)["transaction"]["total_order"], 2);
    assert_eq!(v(0)["transaction"]["id"], v(1)["transaction"]["id"]);
    // Commit order: LSNs never go down within the topic.
    let lsns: Vec<u64> = ma
        .iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| v["source"]["commit_lsn"].as_u64().unwrap())
        .collect();
    assert!(lsns.windows(2).all(|w| w[0] <= w[1]), "{lsns:?}");
    assert!(ma[0]
        .headers
        .iter()
        .any(|(k, v)| k == "tidemark.event_time_ms" && v.parse::<i64>().is_ok()));

    // Table b (REPLICA IDENTITY DEFAULT): no before image on update, key-only on delete.
    assert_eq!(
        ops(&mb),
        vec![some("c"), some("u"), some("d"), None],
        "{}",
        show(&mb)
    );
    let w = |i: usize| mb[i].value.clone().unwrap();
    assert_eq!(w(1)["before"], json!(null));
    assert_eq!(w(1)["after"], json!({"id": 10, "v": "diez"}));
    assert_eq!(w(2)["before"], json!({"id": 10, "v": null}));
    assert_eq!(mb[3].key, Some(json!({"id": 10})));

    // Graceful stop: exit 0, and the slot's position reached the end of the last transaction.
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        daemon.log_text()
    );
    assert!(
        daemon.log_text().contains("final position committed"),
        "{}",
        daemon.log_text()
    );
    cfg.cleanup_and(&client, &format!("DROP TABLE {a}; DROP TABLE {b};"))
        .await;
}

/// Without a broker: `sink: stdout` prints JSON lines, positions go to the file store, and
/// `tidemark check` passes on a correct setup.
#[tokio::test(flavor = "multi_thread")]
async fn stdout_sink_file_store_and_a_passing_check() {
    let client = pg().await;
    let t = unique("stdout");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY, v text)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    write(
        cfg.dir.path(),
        "configs/tidemark.yaml",
        "connectors_dir: ../connectors\nsink: stdout\noffsets:\n  store: file\n  path: ../positions\n  commit_interval_ms: 100\n",
    );
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(status.success(), "check failed:\n{out}");
    assert!(out.contains("ok    wal_level = logical"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");

    let stdout_path = cfg.path("stdout.jsonl");
    let started = std::time::Instant::now();
    let mut daemon = cfg.start_with_stdout(std::fs::File::create(&stdout_path).unwrap());
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    // The initial snapshot of the empty table ends first: a chunk read after the insert would
    // add an op=r line for row 2 (correct, but not what this test counts).
    crate::snapshot_check::wait_for_log(
        &mut daemon,
        "snapshot complete",
        started,
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute(&format!(
            "INSERT INTO {t} VALUES (1, 'a'), (2, 'b'); DELETE FROM {t} WHERE id = 1;"
        ))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        if lines.len() >= 4 || start.elapsed() > Duration::from_secs(30) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(lines.len(), 4, "{lines:#?}\nlog:\n{}", daemon.log_text());
    let topic = format!("tidemark.public.{t}"); // the default prefix
    assert!(
        lines.iter().all(|l| l["topic"] == topic.as_str()),
        "{lines:#?}"
    );
    assert_eq!(lines[0]["value"]["op"], "c");
    assert_eq!(lines[2]["value"]["op"], "d");
    assert_eq!(lines[3]["key"], json!({"id": 1}));
    assert_eq!(lines[3]["value"], json!(null));

    let status = daemon.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        daemon.log_text()
    );
    let stored = std::fs::read_to_string(cfg.path(&format!("positions/{}.json", cfg.name)))
        .expect("position file written");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert!(
        stored["position"]["lsn"].as_str().unwrap().contains('/'),
        "{stored}"
    );
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// tidemark run as a role with exactly the grants README documents (LOGIN REPLICATION, USAGE on
/// the schema, SELECT on the table; the publication created by the table owner): `check`
/// passes, the initial snapshot reads the rows and the stream delivers a change.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_with_exactly_the_documented_grants_checks_snapshots_and_streams() {
    let client = pg().await;
    let t = unique("grants");
    let role = unique("tm_role");
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let password = pg_url().password;
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text);
             INSERT INTO {t} VALUES (1, 'a'), (2, 'b');
             ALTER TABLE public.{t} REPLICA IDENTITY FULL;
             CREATE ROLE {role} WITH LOGIN REPLICATION PASSWORD '{password}';
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON public.{t} TO {role};
             CREATE PUBLICATION {} FOR TABLE public.{t};",
            cfg.slot
        ))
        .await
        .unwrap();
    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            &format!("user: {}\n", pg_url().user),
            &format!("user: {role}\n"),
        )
        .replace(
            &format!("  publication: {}\n", cfg.slot),
            &format!("  publication: {}\n  create_publication: false\n", cfg.slot),
        );
    assert!(text.contains(&role) && text.contains("create_publication: false"));
    std::fs::write(&path, text).unwrap();
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(status.success() && !out.contains("FAIL"), "{out}");
    let since = std::time::Instant::now();
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    crate::snapshot_check::wait_snapshot_complete(&mut daemon, since, Duration::from_secs(60))
        .await;
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (3, 'c')"))
        .await
        .unwrap();
    let m = consume_n(
        &cfg.topic(&format!("public.{t}")),
        3,
        Duration::from_secs(60),
    );
    let ops: Vec<&str> = m
        .iter()
        .filter_map(|x| x.value.as_ref()?["op"].as_str())
        .collect();
    assert_eq!(ops, vec!["r", "r", "c"], "log:\n{}", daemon.log_text());
    daemon.stop_cleanly();
    cfg.cleanup_and(
        &client,
        &format!("DROP TABLE {t}; DROP OWNED BY {role}; DROP ROLE {role};"),
    )
    .await;
}

/// A table added to `tables:` after the connector's initial snapshot is snapshotted at the next
/// start (`snapshot.mode: initial`), and its changes stream from then on.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_added_later_is_snapshotted_at_the_next_start() {
    let client = pg().await;
    let a = unique("added_a");
    let b = unique("added_b");
    client
        .batch_execute(&format!(
            "CREATE TABLE {a} (id int PRIMARY KEY, v text);
             CREATE TABLE {b} (id int PRIMARY KEY, v text);
             INSERT INTO {a} VALUES (1, 'a1'), (2, 'a2');
             INSERT INTO {b} VALUES (1, 'b1'), (2, 'b2'), (3, 'b3');"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{a}")], "");
    let since = std::time::Instant::now();
    let mut daemon = cfg.start();
    crate::snapshot_check::wait_snapshot_complete(&mut daemon, since, Duration::from_secs(60))
        .await;
    daemon.stop_cleanly();

    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("  - public.{a}\n"),
        &format!("  - public.{a}\n  - public.{b}\n"),
    );
    std::fs::write(&path, text).unwrap();
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let m = consume_n(
        &cfg.topic(&format!("public.{b}")),
        3,
        Duration::from_secs(60),
    );
    let reads: Vec<i64> = m
        .iter()
        .filter(|x| x.value.as_ref().is_some_and(|v| v["op"] == "r"))
        .map(|x| x.key.as_ref().unwrap()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(reads, vec![1, 2, 3], "log:\n{}", daemon.log_text());
    assert!(daemon
        .log_text()
        .contains("a table added to the connector?"));
    // Table a was not read again.
    let ma = consume_n(
        &cfg.topic(&format!("public.{a}")),
        2,
        Duration::from_secs(30),
    );
    assert_eq!(ma.len(), 2, "table a's rows were read again: {ma:?}");
    daemon.stop_cleanly();
    cfg.cleanup_and(&client, &format!("DROP TABLE {a}; DROP TABLE {b};"))
        .await;
}

/// The periodic stream line (`logging.progress_interval_ms`): events, rate, lag, position
/// and whether the connector has caught up.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_line_reports_rate_lag_position_and_caught_up() {
    let client = pg().await;
    let t = unique("streamline");
    client
        .batch_execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY)"))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "snapshot:\n  mode: never\n");
    let daemon_file = cfg.config_file();
    let text = std::fs::read_to_string(&daemon_file)
        .unwrap()
        .replace("logging:\n", "logging:\n  progress_interval_ms: 500\n");
    std::fs::write(&daemon_file, text).unwrap();
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    for i in 0..20 {
        client
            .execute(&format!("INSERT INTO {t} VALUES ({i})"), &[])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = std::time::Instant::now();
    let line = loop {
        let log = daemon.log_text();
        // A line with events and a checkpointed position (a line due before the first
        // checkpoint says `position=none yet`, as it should).
        if let Some(l) = log.lines().find(|l| {
            l.contains(" stream ")
                && l.contains("events=")
                && !l.contains("events=0 ")
                && l.contains("position={")
        }) {
            break l.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no stream line:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for field in [
        "events_per_second=",
        "lag_seconds=",
        "position={",
        "caught_up=true",
    ] {
        assert!(line.contains(field), "{field} in: {line}");
    }
    daemon.terminate(Duration::from_secs(60));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
