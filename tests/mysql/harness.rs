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
    parse_my_url("TIDEMARK_TEST_MYSQL_URL")
}

/// The account tidemark connects as: exactly the grants README documents (replication,
/// SELECT, and CREATE/INSERT/UPDATE on the test database for the signal table).
pub fn cdc_url() -> MyUrl {
    parse_my_url("TIDEMARK_TEST_MYSQL_CDC_URL")
}

fn parse_my_url(var: &str) -> MyUrl {
    let url = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests through scripts/test.sh"));
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

/// A tidemark configuration with one MySQL connector for `tables` (`db.table`). Without a
/// `snapshot:` block in `extra` the connector takes no snapshot (`mode: never`), so a stream
/// test sees exactly the changes it makes.
pub fn mysql_config(tables: &[&str], extra: &str) -> TestConfig {
    let cfg = TestConfig::new(&["public.unused"], "");
    let u = cdc_url();
    let never = "snapshot:\n  mode: never\n";
    let extra = if extra.contains("snapshot:") {
        extra.to_string()
    } else {
        format!("{extra}\n{never}")
    };
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

/// A MariaDB of the test's own (the dev-env binaries, its own data directory and port), for
/// tests that restart the server without disturbing the shared one. User tidemark/tidemark,
/// database `tidemark_test`.
pub struct PrivateMariaDb {
    dir: String,
    pub port: u16,
    child: Option<std::process::Child>,
}

fn mariadbd() -> String {
    for c in [
        "/usr/sbin/mariadbd",
        "/usr/sbin/mysqld",
        "/usr/bin/mariadbd",
    ] {
        if std::path::Path::new(c).exists() {
            return c.to_string();
        }
    }
    panic!("mariadbd not found (scripts/dev-env.sh installs it)");
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivateMariaDb {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with `extra` appended to its `[mysqld]` section.
    pub fn start_with(extra: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let port = crate::common::free_port();
        let dir = format!("/tmp/tidemark-test-my-{}-{n}", std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(format!("{dir}/data")).unwrap();
        std::fs::create_dir_all(format!("{dir}/binlog")).unwrap();
        let cnf = format!(
            "[mysqld]\nbind-address = 127.0.0.1\nport = {port}\nsocket = {dir}/sock\ndatadir = {dir}/data\n\
             pid-file = {dir}/pid\nlog-error = {dir}/error.log\nserver_id = 1\nlog_bin = {dir}/binlog/mysql-bin\n\
             binlog_format = ROW\nbinlog_row_image = FULL\nbinlog_row_metadata = FULL\ngtid_strict_mode = ON\n\
             innodb_buffer_pool_size = 64M\ninnodb_flush_log_at_trx_commit = 2\nsync_binlog = 0\n\
             character-set-server = utf8mb4\nskip-name-resolve\nperformance_schema = OFF\n{extra}\n"
        );
        std::fs::write(format!("{dir}/my.cnf"), cnf).unwrap();
        let mut install = std::process::Command::new("mariadb-install-db");
        install.args([
            &format!("--defaults-file={dir}/my.cnf"),
            &format!("--datadir={dir}/data"),
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]);
        if is_root() {
            install.arg("--user=root");
        }
        let out = install.output().expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = Self {
            dir,
            port,
            child: None,
        };
        server.spawn();
        let sql = "CREATE DATABASE IF NOT EXISTS tidemark_test CHARACTER SET utf8mb4;\
                   CREATE USER IF NOT EXISTS 'tidemark'@'127.0.0.1' IDENTIFIED BY 'tidemark';\
                   GRANT ALL PRIVILEGES ON *.* TO 'tidemark'@'127.0.0.1';\
                   CREATE USER IF NOT EXISTS 'tidemark_cdc'@'127.0.0.1' IDENTIFIED BY 'tidemark_cdc';\
                   GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'tidemark_cdc'@'127.0.0.1';\
                   GRANT CREATE, INSERT, UPDATE ON tidemark_test.* TO 'tidemark_cdc'@'127.0.0.1';";
        server.root_sql(sql);
        server
    }

    /// Runs `sql` as root over the server's socket.
    pub fn root_sql(&self, sql: &str) {
        let out = std::process::Command::new("mariadb")
            .args([
                "--no-defaults",
                &format!("--socket={}/sock", self.dir),
                "-u",
                "root",
                "-e",
                sql,
            ])
            .output()
            .expect("mariadb client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn(&mut self) {
        let mut c = std::process::Command::new(mariadbd());
        c.arg(format!("--defaults-file={}/my.cnf", self.dir));
        if is_root() {
            c.arg("--user=root");
        }
        let child = c
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ok = std::process::Command::new("mariadb-admin")
                .args([
                    "--no-defaults",
                    &format!("--socket={}/sock", self.dir),
                    "-u",
                    "root",
                    "--connect-timeout=1",
                    "ping",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "private MariaDB did not start: {}",
                std::fs::read_to_string(format!("{}/error.log", self.dir)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.wait();
        }
    }

    /// A clean shutdown and start: every connection is cut.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn opts(&self) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("tidemark"))
            .pass(Some("tidemark"))
            .db_name(Some("tidemark_test"))
            .prefer_socket(false)
    }

    pub async fn connect(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts())
            .await
            .expect("connect to the private MariaDB")
    }

    /// A connection over TLS, trusting the CA in `ca` (PEM).
    pub async fn connect_tls(&self, ca: &str) -> mysql_async::Conn {
        tidemark::tls::install_crypto_provider();
        let ssl = mysql_async::SslOpts::default()
            .with_root_certs(vec![std::path::PathBuf::from(ca).into()]);
        mysql_async::Conn::new(self.opts().ssl_opts(Some(ssl)))
            .await
            .expect("connect over TLS to the private MariaDB")
    }

    /// Points `cfg`'s connector at this server.
    pub fn use_in(&self, cfg: &TestConfig) {
        let path = cfg.path(&format!("connectors/{}.yaml", cfg.name));
        let text = std::fs::read_to_string(&path).unwrap().replace(
            &format!("port: {}", my_url().port),
            &format!("port: {}", self.port),
        );
        std::fs::write(&path, text).unwrap();
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
