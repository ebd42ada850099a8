//! TLS to MariaDB: `verify-full` streams from a server whose certificate names 127.0.0.1 and
//! is signed by the configured CA; a CA that did not sign it is refused, naming TLS; an
//! account that requires a client certificate (`REQUIRE X509`) streams with `sslcert` /
//! `sslkey` and is refused without them.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::common::*;
use crate::harness::*;

use crate::certs::make_certs;

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_streams_and_a_foreign_ca_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let p = |f: &str| certs.path().join(f).display().to_string();
    let server = PrivateMariaDb::start_with(&format!(
        "ssl_ca = {}\nssl_cert = {}\nssl_key = {}\nrequire_secure_transport = ON",
        p("ca.pem"),
        p("server.pem"),
        p("server.key")
    ));
    let t = unique("my_tls");
    let mut c = server.connect_tls(&p("ca.pem")).await;
    c.query_drop(format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(10))"
    ))
    .await
    .unwrap();

    let cfg = mysql_config(&[&format!("tidemark_test.{t}")], "");
    server.use_in(&cfg);
    let connector = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let password = format!("  password: {}\n", cdc_url().password);
    let text = std::fs::read_to_string(&connector).unwrap().replace(
        &password,
        &format!(
            "{password}  sslmode: verify-full\n  sslrootcert: {}\n",
            p("ca.pem")
        ),
    );
    assert!(text.contains("sslmode"), "{text}");
    std::fs::write(&connector, &text).unwrap();
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    c.query_drop(format!("INSERT INTO {t} VALUES (1, 'secret')"))
        .await
        .unwrap();
    let m = consume_n(
        &cfg.topic(&format!("tidemark_test.{t}")),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(m.len(), 1, "log:\n{}", daemon.log_text());
    assert_eq!(m[0].value.as_ref().unwrap()["after"]["v"], "secret");
    daemon.stop_cleanly();

    // The same connector trusting a CA that did not sign the server's certificate.
    std::fs::write(&connector, text.replace(&p("ca.pem"), &p("other-ca.pem"))).unwrap();
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.to_lowercase().contains("certificate") || out.to_lowercase().contains("tls"),
        "{out}"
    );

    // An account that authenticates with a client certificate as well.
    server.root_sql(
        "CREATE USER 'tidemark_x509'@'127.0.0.1' IDENTIFIED BY 'x509pw' REQUIRE X509; \
         GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'tidemark_x509'@'127.0.0.1'; \
         GRANT CREATE, INSERT, UPDATE ON tidemark_test.* TO 'tidemark_x509'@'127.0.0.1';",
    );
    let x509 = text
        .replace(
            &format!("  user: {}\n", cdc_url().user),
            "  user: tidemark_x509\n",
        )
        .replace(&password, "  password: x509pw\n");
    assert!(
        x509.contains("tidemark_x509") && x509.contains("x509pw"),
        "{x509}"
    );
    std::fs::write(&connector, &x509).unwrap();
    let (status, out) = cfg.run_to_end(
        &["check", "--config", cfg.config_file().to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(
        status.code(),
        Some(1),
        "no client certificate: refused\n{out}"
    );
    assert!(out.contains("Access denied"), "{out}");
    std::fs::write(
        &connector,
        x509.replace(
            "  sslmode: verify-full\n",
            &format!(
                "  sslmode: verify-full\n  sslcert: {}\n  sslkey: {}\n",
                p("client.pem"),
                p("client.key")
            ),
        ),
    )
    .unwrap();
    let mut daemon = cfg.start();
    wait_binlog_streaming(&mut daemon).await;
    c.query_drop(format!("INSERT INTO {t} VALUES (2, 'by cert')"))
        .await
        .unwrap();
    let m = consume_n(
        &cfg.topic(&format!("tidemark_test.{t}")),
        2,
        Duration::from_secs(60),
    );
    assert_eq!(m.len(), 2, "log:\n{}", daemon.log_text());
    assert_eq!(m[1].value.as_ref().unwrap()["after"]["v"], "by cert");
    daemon.stop_cleanly();
}
