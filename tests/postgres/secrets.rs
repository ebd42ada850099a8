//! No password reaches a log or an output: tidemark at debug level (every crate), every
//! subcommand (`check`, `run`, `snapshot`, `tail`), with the database password written inline
//! (the riskiest place: the configuration structs) and the schema registry's in a file, and
//! when the connection fails because the password is wrong.

use std::time::Duration;

use crate::common::*;

/// Fails naming the place when `text` holds any of `secrets`.
fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} prints a password ({s}):\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_password_reaches_a_log_or_an_output() {
    let client = pg().await;
    let t = unique("secrets");
    let role = unique("tm_secret");
    let password = format!("Pw{}x9", unique("q"));
    let registry_password = format!("Rg{}x9", unique("q"));
    let wrong = format!("Bad{}x9", unique("q"));
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, v text);
             INSERT INTO {t} VALUES (1, 'a');
             CREATE ROLE {role} WITH LOGIN REPLICATION PASSWORD '{password}';
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON public.{t} TO {role};
             CREATE PUBLICATION {} FOR TABLE public.{t};",
            cfg.slot
        ))
        .await
        .unwrap();
    let connector = cfg.path(&format!("connectors/{}.yaml", cfg.name));
    let original = std::fs::read_to_string(&connector).unwrap();
    let with_password = |pw: &str| {
        let text = original
            .replace(
                &format!("user: {}\n", pg_url().user),
                &format!("user: {role}\n"),
            )
            .replace(
                "  password_env: TIDEMARK_TEST_PG_PASSWORD\n",
                &format!("  password: \"{pw}\"\n"),
            )
            .replace(
                &format!("  publication: {}\n", cfg.slot),
                &format!("  publication: {}\n  create_publication: false\n", cfg.slot),
            );
        assert!(text.contains(pw));
        std::fs::write(&connector, text).unwrap();
    };
    with_password(&password);
    // Debug level for every crate; the avro format against the registry with basic auth.
    let daemon_file = cfg.config_file();
    let text = std::fs::read_to_string(&daemon_file)
        .unwrap()
        .replace("level: info,tidemark=debug", "level: debug");
    std::fs::write(&daemon_file, text).unwrap();
    write(cfg.dir.path(), "configs/registry.pw", &registry_password);
    cfg.append_to_daemon_file(&format!(
        "format: avro\nschema_registry:\n  url: {}\n  username: tidemark\n  password_file: registry.pw\n",
        crate::avro_check::registry_url()
    ));
    let secrets = [
        password.as_str(),
        registry_password.as_str(),
        wrong.as_str(),
    ];
    let config = daemon_file.to_str().unwrap().to_string();

    let (status, out) = cfg.run_to_end(&["check", "--config", &config], Duration::from_secs(60));
    assert!(status.success(), "{out}");
    assert_clean("check", &out, &secrets);

    let mut daemon = cfg.start();
    wait_streaming(&client, &cfg.slot, &mut daemon).await;
    // After the snapshot: a row inserted before its chunk is read would come twice (streamed
    // and read, as DBLog allows), and this test counts messages.
    let start = std::time::Instant::now();
    while !daemon.log_text().contains("snapshot complete") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (2, 'b')"))
        .await
        .unwrap();
    let topic = cfg.topic(&format!("public.{t}"));
    let read = consume_n(&topic, 2, Duration::from_secs(60));
    assert_eq!(read.len(), 2, "log:\n{}", daemon.log_text());
    let out = cfg
        .tidemark(&[
            "snapshot",
            &cfg.name,
            &format!("public.{t}"),
            "--config",
            &config,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean(
        "snapshot",
        &format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        &secrets,
    );
    let (status, out) = cfg.run_to_end(
        &[
            "tail",
            &topic,
            "--config",
            &config,
            "--from-beginning",
            "--max-messages",
            "2",
            "--base64",
        ],
        Duration::from_secs(60),
    );
    assert!(status.success(), "{out}");
    assert_clean("tail", &out, &secrets);
    // The admin API's view of the connector, as `status --json` prints it.
    let api = daemon.admin_address();
    let out = cfg
        .tidemark(&["status", "--json", "--config", &config])
        .env("TIDEMARK__ADMIN__LISTEN", &api)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains(&cfg.name), "{text}");
    assert_clean("status", &text, &secrets);
    daemon.terminate(Duration::from_secs(60));
    assert_clean("run", &daemon.log_text(), &secrets);
    assert!(
        !daemon.log_text().contains('\u{1b}'),
        "no colour codes when standard error is not a terminal"
    );

    // The wrong password: the connection fails, and neither the password tried nor the
    // right one is printed.
    with_password(&wrong);
    let (status, out) = cfg.run_to_end(&["check", "--config", &config], Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("password authentication failed"), "{out}");
    assert_clean("check with a wrong password", &out, &secrets);
    let mut failing = cfg.start();
    let start = std::time::Instant::now();
    while !failing
        .log_text()
        .contains("password authentication failed")
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    failing.terminate(Duration::from_secs(60));
    let log = failing.log_text();
    assert!(log.contains("password authentication failed"), "{log}");
    assert_clean("run with a wrong password", &log, &secrets);
    cfg.cleanup_and(
        &client,
        &format!("DROP TABLE {t}; REVOKE USAGE ON SCHEMA public FROM {role}; DROP ROLE {role};"),
    )
    .await;
}

/// `tail` reads the daemon file alone: it runs without the databases' passwords.
#[test]
fn tail_needs_no_database_password() {
    let cfg = TestConfig::new(&["public.unused"], "");
    let out = cfg
        .tidemark(&[
            "tail",
            &format!("{}.nothing", cfg.prefix),
            "--idle-timeout-ms",
            "500",
        ])
        .env_remove("TIDEMARK_TEST_PG_PASSWORD")
        .env("TIDEMARK_CONFIG", cfg.config_file())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It got past the configuration to the broker (the topic is missing): not the
    // configuration error (status 2) that a connector's unset password_env would be.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}
