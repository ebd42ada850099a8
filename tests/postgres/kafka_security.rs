//! Kafka with TLS and with SASL, through `kafka.client`, for every client tidemark makes (the
//! producer, the admin client, the position store's clients, `check`, `tail`).
//!
//! Each test runs a private tansu (the dev-env's binary, `TIDEMARK_DEV_TANSU`). tansu 0.6
//! authenticates SASL SCRAM (with its sqlite storage, where its credentials live) but speaks no
//! TLS itself: the TLS broker is tansu behind socat, which terminates TLS with the test's
//! certificate, and tansu advertises socat's port, so every connection goes through TLS.
//! SASL_SSL is the two together; its parts are tested here one at a time.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const PASSWORD: &str = "kafka-scram-secret-7";

/// A private broker (and its TLS terminator), stopped on drop.
struct Broker {
    children: Vec<Child>,
    brokers: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tansu() -> String {
    std::env::var("TIDEMARK_DEV_TANSU").expect("TIDEMARK_DEV_TANSU (source target/dev-env/env)")
}

fn wait_port(port: u16, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "port {port} not open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts tansu in `dir` on `port`, advertising `advertised`.
fn start_tansu(
    dir: &Path,
    cluster: &str,
    port: u16,
    advertised: u16,
    engine: &str,
    auth: bool,
) -> Child {
    // tansu reads .env from its working directory upwards: an empty one of its own.
    std::fs::write(dir.join(".env"), "").unwrap();
    let log = dir.join(format!("tansu-{port}-{auth}.log"));
    let mut c = Command::new(tansu());
    c.args([
        "broker",
        "--cluster-id",
        cluster,
        "--listener-url",
        &format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url",
        &format!("tcp://127.0.0.1:{advertised}"),
        "--storage-engine",
        engine,
    ]);
    if auth {
        c.arg("--authentication");
    }
    let mut child = c
        .current_dir(dir)
        .env_remove("SCHEMA_REGISTRY")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("DATA_LAKE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn tansu");
    wait_port(port, &mut child, &log);
    child
}

/// tansu with SASL SCRAM-SHA-256: user `tidemark` / [`PASSWORD`] (created before
/// authentication is turned on: tansu's own client speaks no SASL).
fn sasl_broker() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut setup = start_tansu(
        dir.path(),
        "tidemark-sasl",
        port,
        port,
        "sqlite://tansu.db",
        false,
    );
    let out = Command::new(tansu())
        .args([
            "user",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{port}"),
            "--mechanism",
            "scram256",
            "tidemark",
            PASSWORD,
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "tansu user create: {out:?}");
    let _ = Command::new("kill").arg(setup.id().to_string()).status();
    let _ = setup.wait();
    let broker = start_tansu(
        dir.path(),
        "tidemark-sasl",
        port,
        port,
        "sqlite://tansu.db",
        true,
    );
    Broker {
        children: vec![broker],
        brokers: format!("127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// tansu behind socat's TLS with `certs`' server certificate (for 127.0.0.1, signed by
/// `ca.pem`).
fn tls_broker(certs: &Path) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let (plain, tls) = (free_port(), free_port());
    let broker = start_tansu(
        dir.path(),
        "tidemark-tls",
        plain,
        tls,
        "memory://tansu/",
        false,
    );
    let log = dir.path().join("socat.log");
    let mut socat = Command::new("socat")
        .arg(format!(
            "OPENSSL-LISTEN:{tls},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
            certs.join("server.pem").display(),
            certs.join("server.key").display()
        ))
        .arg(format!("TCP:127.0.0.1:{plain}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("socat (scripts/dev-env.sh installs it)");
    wait_port(tls, &mut socat, &log);
    Broker {
        children: vec![socat, broker],
        brokers: format!("127.0.0.1:{tls}"),
        _dir: dir,
    }
}

/// Points `cfg`'s daemon file at `broker` with `client` (YAML lines under `kafka:`).
fn use_broker(cfg: &TestConfig, broker: &Broker, client: &str) {
    let file = cfg.config_file();
    let text = std::fs::read_to_string(&file).unwrap().replace(
        &format!("  brokers: {}\n", kafka_brokers()),
        &format!("  brokers: {}\n{client}", broker.brokers),
    );
    assert!(text.contains(&broker.brokers));
    std::fs::write(&file, text).unwrap();
}

/// `tidemark <args> --config <cfg>` with `vars`: (success, stdout + stderr).
fn tidemark(cfg: &TestConfig, args: &[&str], vars: &[(&str, &str)]) -> (bool, String) {
    let config = cfg.config_file();
    let out = cfg
        .tidemark(args)
        .args(["--config", config.to_str().unwrap()])
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The ids of the first `n` messages of `topic`, read with `tidemark tail` (which takes the
/// daemon file's `kafka.client`).
fn tail_ids(cfg: &TestConfig, topic: &str, n: usize, vars: &[(&str, &str)]) -> Vec<i64> {
    let start = Instant::now();
    loop {
        let (ok, out) = tidemark(
            cfg,
            &[
                "tail",
                topic,
                "--from-beginning",
                "--max-messages",
                &n.to_string(),
                "--idle-timeout-ms",
                "3000",
            ],
            vars,
        );
        let ids: Vec<i64> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|m| m["value"]["after"]["id"].as_i64())
            .collect();
        if ok && ids.len() >= n {
            return ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "tail read {ids:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_scram_authenticates_every_client_and_a_wrong_password_is_named() {
    let broker = sasl_broker();
    let client = pg().await;
    let t = unique("ksasl");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint, s text); INSERT INTO {t} VALUES (1, 10, 'a'), (2, 20, 'b');"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    use_broker(
        &cfg,
        &broker,
        "  client:\n    security.protocol: sasl_plaintext\n    sasl.mechanism: SCRAM-SHA-256\n    sasl.username: tidemark\n  sasl_password_env: TM_TEST_KAFKA_PASSWORD\n",
    );
    let right = [("TM_TEST_KAFKA_PASSWORD", PASSWORD)];
    let (_, out) = tidemark(&cfg, &["check"], &right);
    assert!(
        out.contains(&format!("ok    Kafka at {}", broker.brokers)),
        "{out}"
    );

    // The producer, the admin client and the position store all authenticate: the rows
    // arrive and the position is stored (in the same broker).
    let mut daemon = cfg.start_with_env(&right);
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (3, 30, 'c')"))
        .await
        .unwrap();
    let topic = cfg.topic(&format!("public.{t}"));
    assert_eq!(tail_ids(&cfg, &topic, 3, &right), [1, 2, 3]);
    let status = daemon.terminate(Duration::from_secs(30));
    let log = daemon.log_text();
    assert!(
        status.success() && log.contains("final position committed"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "the password in the log");

    // A wrong password: said within seconds, with the broker's address; a signal still stops
    // the daemon at once.
    let wrong = [("TM_TEST_KAFKA_PASSWORD", "not-the-password")];
    let mut daemon = cfg.start_with_env(&wrong);
    let log = daemon.wait_log("authentication");
    assert!(log.contains(&broker.brokers), "{log}");
    assert!(!log.contains("not-the-password"), "the password in the log");
    let stopping = Instant::now();
    daemon.terminate(Duration::from_secs(30));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{}",
        daemon.log_text()
    );
    let (ok, out) = tidemark(&cfg, &["check"], &wrong);
    assert!(!ok && out.contains("FAIL  Kafka"), "{out}");
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_the_right_ca_streams_and_a_wrong_ca_is_refused_saying_why() {
    let certs = tempfile::tempdir().unwrap();
    crate::certs::make_certs(certs.path());
    let broker = tls_broker(certs.path());
    let client = pg().await;
    let t = unique("ktls");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint, s text); INSERT INTO {t} VALUES (1, 10, 'a');"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    let ca = |file: &str| {
        format!(
            "  client:\n    security.protocol: ssl\n    ssl.ca.location: {}\n",
            certs.path().join(file).display()
        )
    };
    use_broker(&cfg, &broker, &ca("ca.pem"));
    let mut daemon = cfg.start();
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (2, 20, 'b')"))
        .await
        .unwrap();
    let topic = cfg.topic(&format!("public.{t}"));
    assert_eq!(tail_ids(&cfg, &topic, 2, &[]), [1, 2]);
    let status = daemon.terminate(Duration::from_secs(30));
    let log = daemon.log_text();
    assert!(
        status.success() && log.contains("final position committed"),
        "{log}"
    );

    // Another CA: the broker's certificate is refused, and the log says so.
    let file = cfg.config_file();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(&ca("ca.pem"), &ca("other-ca.pem"));
    std::fs::write(&file, text).unwrap();
    let mut daemon = cfg.start();
    let log = daemon.wait_log("certificate verify failed");
    assert!(log.contains(&broker.brokers), "{log}");
    daemon.terminate(Duration::from_secs(30));
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}

/// Polls `/health/ready` until its status ("200 ") or body holds one of `want`; the answer.
fn wait_ready(api: &str, daemon: &Daemon, want: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let (status, body) = http(api, "GET", "/health/ready", None, "");
        let answer = format!("{status} {body}");
        if want
            .iter()
            .any(|w| answer.starts_with(w) || body.contains(w))
        {
            return answer;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "none of {want:?} in /health/ready after 60 s: {answer}\nlog:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The broker gone while the daemon runs: the log says so with the cause within seconds, the
/// daemon is not ready (the reason names Kafka) and does not spin (its CPU over 10 s of
/// outage), and when the broker is back the rows written meanwhile arrive and it is ready
/// again.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_outage_while_running_is_logged_and_unready_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Restarted on the same port below: one no other test can take meanwhile.
    let port = restartable_port();
    let engine = "sqlite://tansu.db";
    let mut tansu = start_tansu(dir.path(), "tidemark-outage", port, port, engine, false);
    let broker = Broker {
        children: Vec::new(),
        brokers: format!("127.0.0.1:{port}"),
        _dir: tempfile::tempdir().unwrap(),
    };
    let client = pg().await;
    let t = unique("kout");
    client
        .batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, v bigint, s text); INSERT INTO {t} VALUES (1, 10, 'a');"
        ))
        .await
        .unwrap();
    let cfg = TestConfig::new(&[&format!("public.{t}")], "");
    use_broker(&cfg, &broker, "");
    let mut daemon = cfg.start_with_env(&[("TIDEMARK__ON_CONNECTOR_FAILURE", "keep_running")]);
    let topic = cfg.topic(&format!("public.{t}"));
    assert_eq!(tail_ids(&cfg, &topic, 1, &[]), [1]);
    let api = daemon.admin_address();
    wait_ready(&api, &daemon, &["200 "]);

    // The broker stops; rows are written meanwhile.
    let _ = Command::new("kill").arg(tansu.id().to_string()).status();
    let _ = tansu.wait();
    client
        .batch_execute(&format!("INSERT INTO {t} VALUES (2, 20, 'b')"))
        .await
        .unwrap();
    // Not ready, saying why: the producer's brokers down, or the connector restarting
    // after a Kafka error (the position store's reads fail too).
    let answer = wait_ready(&api, &daemon, &["Kafka unreachable", "AllBrokersDown"]);
    assert!(answer.starts_with("503 "), "{answer}");
    let log = daemon.wait_log("Connection refused");
    assert!(log.contains(&broker.brokers), "{log}");
    daemon.assert_running();
    // No busy loop while the broker is away (librdkafka's reconnect backoff, tidemark's
    // retry backoff): the daemon's CPU over 10 s of outage. A spinning client thread uses a
    // whole core; the bound is a fifth of one.
    let (cpu, wall) = (daemon.cpu_seconds(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let share = (daemon.cpu_seconds() - cpu) / wall.elapsed().as_secs_f64();
    eprintln!("CPU during the outage: {:.1}% of a core", share * 100.0);
    assert!(
        share < 0.2,
        "tidemark used {:.0}% of a core while the broker was down",
        share * 100.0
    );

    // Back: ready again, and the row written during the outage arrives.
    let tansu = start_tansu(dir.path(), "tidemark-outage", port, port, engine, false);
    let _back = Broker {
        children: vec![tansu],
        brokers: broker.brokers.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    wait_ready(&api, &daemon, &["200 "]);
    assert_eq!(tail_ids(&cfg, &topic, 2, &[]), [1, 2]);
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", daemon.log_text());
    cfg.cleanup_and(&client, &format!("DROP TABLE {t}")).await;
}
