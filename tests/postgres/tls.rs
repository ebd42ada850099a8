//! TLS to PostgreSQL: a private server that takes TCP connections over TLS only
//! (`hostssl` pg_hba lines, certificates made with openssl). `verify-full` with the right CA
//! snapshots and streams, both the SQL connections and the replication stream encrypted; a
//! foreign CA, a host name the certificate does not hold, and a plain connection are refused,
//! each saying why.

use std::time::Duration;

use crate::common::*;

/// The connector file of `cfg` with these `connection:` lines added.
fn set_connection(cfg: &TestConfig, server: &PrivatePostgres, lines: &str, host: &str) {
    server.use_in(cfg);
    let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("host:") {
            out.push_str(&format!("  host: {host}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line == "connection:" {
            out.push_str(lines);
        }
    }
    std::fs::write(&path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_streams_over_tls_and_wrong_certificates_are_refused() {
    let certs = tempfile::tempdir().unwrap();
    crate::certs::make_certs(certs.path());
    let Some(server) = PrivatePostgres::start_tls(certs.path()) else {
        panic!("TIDEMARK_DEV_PG_BIN is not set (run `. target/dev-env/env`)");
    };
    let client = server.socket_client().await;
    let t = unique("tls");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text); INSERT INTO {t} VALUES (1, 'before')"
        ))
        .await
        .unwrap();
    let table = format!("public.{t}");
    let ca = |f: &str| certs.path().join(f).display().to_string();
    let run_check = |cfg: &TestConfig| {
        let daemon_file = cfg.config_file();
        cfg.run_to_end(
            &["check", "--config", daemon_file.to_str().unwrap()],
            Duration::from_secs(60),
        )
    };

    // A CA that did not sign the server's certificate.
    let foreign = TestConfig::new(&[&table], "");
    set_connection(
        &foreign,
        &server,
        &format!(
            "  sslmode: verify-full\n  sslrootcert: {}\n",
            ca("other-ca.pem")
        ),
        "127.0.0.1",
    );
    let (status, out) = run_check(&foreign);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("sslmode verify-full") && out.to_lowercase().contains("certificate"),
        "a TLS error that says so: {out}"
    );

    // A host name the certificate does not hold (it names 127.0.0.1): verify-full refuses,
    // verify-ca (the chain only) connects.
    let by_name = TestConfig::new(&[&table], "");
    set_connection(
        &by_name,
        &server,
        &format!("  sslmode: verify-full\n  sslrootcert: {}\n", ca("ca.pem")),
        "localhost",
    );
    let (status, out) = run_check(&by_name);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.to_lowercase().contains("not valid for name")
            || out.to_lowercase().contains("notvalidforname"),
        "the host name is named as the cause: {out}"
    );
    let chain_only = TestConfig::new(&[&table], "");
    set_connection(
        &chain_only,
        &server,
        &format!("  sslmode: verify-ca\n  sslrootcert: {}\n", ca("ca.pem")),
        "localhost",
    );
    let (_, out) = run_check(&chain_only);
    assert!(
        !out.contains("cannot connect") && out.contains("wal_level"),
        "verify-ca connects to a host its certificate does not name: {out}"
    );

    // Without TLS the server refuses (hostssl only).
    let plain = TestConfig::new(&[&table], "");
    set_connection(&plain, &server, "", "127.0.0.1");
    let (status, out) = run_check(&plain);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("pg_hba.conf"), "{out}");

    // verify-full with the server's CA: the snapshot (SQL) and the stream (replication) both
    // run, encrypted.
    let cfg = TestConfig::new(&[&table], "");
    set_connection(
        &cfg,
        &server,
        &format!("  sslmode: verify-full\n  sslrootcert: {}\n", ca("ca.pem")),
        "127.0.0.1",
    );
    let mut daemon = cfg.start();
    let first = consume_n(&cfg.topic(&table), 1, Duration::from_secs(60));
    assert_eq!(
        first.len(),
        1,
        "the snapshot row; log:\n{}",
        daemon.log_text()
    );
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (2, 'streamed')"))
        .await
        .unwrap();
    let both = consume_n(&cfg.topic(&table), 2, Duration::from_secs(60));
    assert_eq!(both.len(), 2, "log:\n{}", daemon.log_text());
    assert_eq!(both[1].value.as_ref().unwrap()["after"]["v"], "streamed");
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl AND a.application_name LIKE 'tidemark%' AND a.backend_type = 'walsender'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(encrypted, 1, "the replication stream is encrypted");
    let plain_sessions: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE NOT s.ssl AND a.application_name LIKE 'tidemark%' AND a.client_addr IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plain_sessions, 0, "no tidemark session in the clear");
    daemon.terminate(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_authenticates_the_sql_connections_and_the_stream() {
    let certs = tempfile::tempdir().unwrap();
    crate::certs::make_certs(certs.path());
    let Some(server) = PrivatePostgres::start_tls_with(certs.path(), "cert") else {
        panic!("TIDEMARK_DEV_PG_BIN is not set (run `. target/dev-env/env`)");
    };
    let client = server.socket_client().await;
    let t = unique("tls_cert");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY); INSERT INTO {t} VALUES (1)"
        ))
        .await
        .unwrap();
    let table = format!("public.{t}");
    let p = |f: &str| certs.path().join(f).display().to_string();
    let verify = format!("  sslmode: verify-full\n  sslrootcert: {}\n", p("ca.pem"));

    // Without the client certificate the server refuses, saying why.
    let without = TestConfig::new(&[&table], "");
    set_connection(&without, &server, &verify, "127.0.0.1");
    let daemon_file = without.config_file();
    let (status, out) = without.run_to_end(
        &["check", "--config", daemon_file.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("certificate"), "{out}");

    let cfg = TestConfig::new(&[&table], "");
    set_connection(
        &cfg,
        &server,
        &format!(
            "{verify}  sslcert: {}\n  sslkey: {}\n",
            p("client.pem"),
            p("client.key")
        ),
        "127.0.0.1",
    );
    let mut daemon = cfg.start();
    let first = consume_n(&cfg.topic(&table), 1, Duration::from_secs(60));
    assert_eq!(first.len(), 1, "log:\n{}", daemon.log_text());
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (2)"))
        .await
        .unwrap();
    let both = consume_n(&cfg.topic(&table), 2, Duration::from_secs(60));
    assert_eq!(
        both.len(),
        2,
        "the stream, authenticated by certificate; log:\n{}",
        daemon.log_text()
    );
    daemon.terminate(Duration::from_secs(60));
}
