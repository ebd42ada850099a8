//! MariaDB-side helpers: the dev-env server, a connector file for it, and waiting until a
//! daemon streams.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::common::{unique, write, Daemon, TestConfig};

/// The parts of `TIDEMARK_TEST_MYSQL_URL` (mysql://user:pass@host:port/db).
pub struct MyUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

pub fn my_url() -> MyUrl {
    let url = std::env::var("TIDEMARK_TEST_MYSQL_URL")
        .expect("TIDEMARK_TEST_MYSQL_URL is not set: run the tests through scripts/test.sh");
    let rest = url.strip_prefix("mysql://").expect("mysql:// URL");
    let (auth, rest) = rest.split_once('@').expect("user@host");
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, database) = rest.split_once('/').expect("/database");
    let (host, port) = hostport.split_once(':').expect("host:port");
    MyUrl {
        user: user.into(),
        password: password.into(),
        host: host.into(),
        port: port.parse().expect("port"),
        database: database.into(),
    }
}

pub async fn my() -> mysql_async::Conn {
    let u = my_url();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(u.host)
        .tcp_port(u.port)
        .user(Some(u.user))
        .pass(Some(u.password))
        .db_name(Some(u.database))
        .prefer_socket(false);
    let mut c = mysql_async::Conn::new(opts)
        .await
        .expect("connect to MariaDB");
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    c
}

/// A unique replica server id for one test.
pub fn server_id() -> u32 {
    let u = unique("s");
    let h = u
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    10_000 + h % 1_000_000_000
}

/// A tidemark configuration with one MySQL connector for `tables` (`db.table`).
pub fn mysql_config(tables: &[&str], extra: &str) -> TestConfig {
    let cfg = TestConfig::new(&["public.unused"], "");
    let u = my_url();
    let yaml = format!(
        "kind: mysql\nconnection:\n  host: {}\n  port: {}\n  database: {}\n  user: {}\n  password: {}\nmysql:\n  server_id: {}\n  heartbeat_ms: 1000\n{extra}\ntables:\n{}\n",
        u.host,
        u.port,
        u.database,
        u.user,
        u.password,
        server_id(),
        tables.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n")
    );
    write(
        cfg.dir.path(),
        &format!("connectors/{}.yaml", cfg.name),
        &yaml,
    );
    cfg
}

/// Waits until the daemon has asked for the binlog.
pub async fn wait_binlog_streaming(daemon: &mut Daemon) {
    let start = Instant::now();
    loop {
        daemon.assert_running();
        if daemon.log_text().contains("streaming binlog") {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("not streaming after 60 s; log:\n{}", daemon.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn db() -> String {
    my_url().database
}
