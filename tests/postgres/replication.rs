//! tidemark's own replication client (`src/source/postgres/replication`) against a private
//! server: md5 authentication (the shared dev server uses SCRAM, which every other test
//! covers), and a session that lives through long idle spells under a short
//! `wal_sender_timeout` because it answers the server's keepalive requests at once (its own
//! status updates are set 60 s apart here, so only the answers keep it alive).

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn md5_and_keepalive_answers_keep_one_session_through_idle_spells() {
    let Some(server) = PrivatePostgres::start_prepared(
        "logical",
        "-c wal_sender_timeout=1s",
        |data| {
            std::fs::write(
                format!("{data}/pg_hba.conf"),
                "local all all trust\nhost all all 127.0.0.1/32 md5\nhost replication all 127.0.0.1/32 md5\n",
            )
            .unwrap();
        },
    ) else {
        panic!("TIDEMARK_DEV_PG_BIN is not set (run `. target/dev-env/env`)");
    };
    let client = server.socket_client().await;
    let password = pg_url().password;
    let t = unique("repl");
    client
        .batch_execute(&format!(
            "SET password_encryption = 'md5';
             ALTER ROLE postgres PASSWORD '{password}';
             CREATE TABLE {t} (id int PRIMARY KEY, v text);"
        ))
        .await
        .unwrap();
    let hashed: String = client
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(hashed.starts_with("md5"), "an md5 password: {hashed}");

    let table = format!("public.{t}");
    let cfg = TestConfig::new(&[&table], "");
    server.use_in(&cfg);
    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("status_interval_ms: 300", "status_interval_ms: 60000");
    std::fs::write(&path, text).unwrap();
    let topic = cfg.topic(&table);
    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    let first = walsender(&client).await;
    assert!(first.is_some(), "a walsender; log:\n{}", daemon.log_text());

    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (1, 'one')"))
        .await
        .unwrap();
    consume_n(&topic, 1, Duration::from_secs(60));
    // Five idle seconds: the server asks for a reply every half second, and ends the session
    // after a second without one.
    tokio::time::sleep(Duration::from_secs(5)).await;
    client
        .batch_execute(&format!(
            "INSERT INTO {t} SELECT g, 'bulk' FROM generate_series(2, 5000) g"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let msgs = consume_n(&topic, 5000, Duration::from_secs(60));
    let mut ids: Vec<i64> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref()?["after"]["id"].as_i64())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (1..=5000).collect::<Vec<_>>(), "every row, once");
    daemon.assert_running();
    assert_eq!(
        walsender(&client).await,
        first,
        "the same session streamed throughout; log:\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(
        !log.contains("restarting the connector"),
        "no restart:\n{log}"
    );
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; log:\n{log}");
}

/// The process id of tidemark's walsender, if one runs.
async fn walsender(client: &tokio_postgres::Client) -> Option<i32> {
    client
        .query_opt(
            "SELECT pid FROM pg_stat_replication WHERE application_name LIKE 'tidemark-%'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}
