#!/usr/bin/env bash
# Local servers for tidemark's integration tests and the quickstart.
#
#   scripts/dev-env.sh up     [pg|mysql|kafka|registry ...]  install what is missing, start, wait, write the env file
#   scripts/dev-env.sh down   [pg|mysql|kafka|registry ...]  stop what `up` started (by pid)
#   scripts/dev-env.sh status                       print each server up/down (exit 3 if any is down)
#
# Each server runs on loopback from its own data directory under target/dev-env/; the machine's
# default PostgreSQL (5432) and MariaDB (3306) are never used, only their binaries:
#   PostgreSQL  127.0.0.1:${TIDEMARK_DEV_PG_PORT:-55432}     wal_level=logical, role/password tidemark
#   MariaDB     127.0.0.1:${TIDEMARK_DEV_MYSQL_PORT:-53306}  row binlog, full image + metadata, GTID
#   tansu       127.0.0.1:${TIDEMARK_DEV_KAFKA_PORT:-59092}  Kafka protocol broker (crates.io `tansu`),
#               storage ${TIDEMARK_DEV_KAFKA_STORAGE:-memory://tansu/}; "sqlite" = sqlite://tansu.db, a file in
#               target/dev-env/kafka that survives a restart (sqlite paths are relative to that directory)
#   registry    127.0.0.1:${TIDEMARK_DEV_REGISTRY_PORT:-58081}  tools/test-registry: an in-memory Confluent-
#               compatible schema registry FOR TESTS (built from this repository with cargo)
# tansu is built once with cargo into ${TIDEMARK_TOOLS_DIR:-~/.cache/tidemark/tools} (about 13 min on 2 cores).
#
# After `up`:  source target/dev-env/env   (TIDEMARK_TEST_PG_URL, TIDEMARK_TEST_MYSQL_URL,
#                                           TIDEMARK_TEST_MYSQL_CDC_URL: the account with README's grants,
#                                           TIDEMARK_TEST_KAFKA_BROKERS, TIDEMARK_TEST_SCHEMA_REGISTRY_URL,
#                                           TIDEMARK_DEV_PG_BIN, TIDEMARK_TEST_PYTHON: a python with
#                                           fastavro, installed with the registry;
#                                           TIDEMARK_TEST_REGISTRY_BIN: the registry binary, which a
#                                           test may start again with --tls-cert/--tls-key)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$SCRIPT_DIR")
DEV=$ROOT/target/dev-env
ENV_FILE=$DEV/env

PG_PORT=${TIDEMARK_DEV_PG_PORT:-55432}
MYSQL_PORT=${TIDEMARK_DEV_MYSQL_PORT:-53306}
KAFKA_PORT=${TIDEMARK_DEV_KAFKA_PORT:-59092}
REGISTRY_PORT=${TIDEMARK_DEV_REGISTRY_PORT:-58081}
KAFKA_STORAGE=${TIDEMARK_DEV_KAFKA_STORAGE:-memory://tansu/}
TOOLS_DIR=${TIDEMARK_TOOLS_DIR:-$HOME/.cache/tidemark/tools}
TANSU_VERSION=${TIDEMARK_TANSU_VERSION:-0.6.0}
TANSU=$TOOLS_DIR/bin/tansu
READY_TIMEOUT=${TIDEMARK_DEV_TIMEOUT:-60}
BUILD_TIMEOUT=1800

PG_DIR=$DEV/pg # may become a directory outside the repo, see pg_dirs
MY_DIR=$DEV/mysql
KAFKA_DIR=$DEV/kafka
REGISTRY_DIR=$DEV/registry
# /proc/PID/comm keeps 15 characters of the binary's name.
REGISTRY_COMM=tidemark-test-r

export DEBIAN_FRONTEND=noninteractive

log() { printf 'dev-env: %s\n' "$*"; }
warn() { printf 'dev-env: warning: %s\n' "$*" >&2; }
die() {
    printf 'dev-env: error: %s\n' "$1" >&2
    if [[ -n ${2:-} && -s ${2:-} ]]; then
        printf -- '--- last lines of %s ---\n' "$2" >&2
        tail -n 25 "$2" >&2
    fi
    exit 1
}

is_root() { [[ $EUID -eq 0 ]]; }

# Short enough for a unix socket path (sun_path is 108 bytes including the NUL)?
fits_socket() { ((${#1} < 107)); }

# pid_alive PIDFILE COMM: the pid in PIDFILE is a live process named COMM.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(head -n1 "$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# spawn PIDFILE LOGFILE CWD CMD...: start CMD detached (own session, no terminal, output to LOGFILE)
# and record its pid (the exec'd process keeps the pid the inner shell wrote).
spawn() {
    local pidfile=$1 logfile=$2 cwd=$3
    shift 3
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    (cd "$cwd" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1) &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    die "could not start $1" "$logfile"
}

# stop_pid PIDFILE COMM NAME SECONDS: SIGTERM, wait, SIGKILL after SECONDS.
stop_pid() {
    local pidfile=$1 comm=$2 name=$3 secs=$4 pid i
    if ! pid_alive "$pidfile" "$comm"; then
        if [[ -e $pidfile ]]; then
            rm -f "$pidfile"
            log "$name: was not running (stale pid file removed)"
        else
            log "$name: not running"
        fi
        return 0
    fi
    pid=$(head -n1 "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        pid_alive "$pidfile" "$comm" || break
        sleep 0.1
    done
    if pid_alive "$pidfile" "$comm"; then
        warn "$name (pid $pid) did not stop within ${secs}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    log "$name: stopped (pid $pid)"
}

# pid_exists PIDFILE: the process is there (whatever its name: right after spawn it may still be bash).
pid_exists() { [[ -s $1 ]] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

APT_UPDATED=
apt_install() {
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install $*"
        sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
    fi
    mkdir -p "$DEV"
    log "installing $* (apt-get; log: target/dev-env/apt.log)"
    if [[ -z $APT_UPDATED ]]; then
        "${sudo[@]}" apt-get update -q >>"$DEV/apt.log" 2>&1 || die "apt-get update failed" "$DEV/apt.log"
        APT_UPDATED=1
    fi
    "${sudo[@]}" apt-get install -y -q "$@" >>"$DEV/apt.log" 2>&1 || die "apt-get install $* failed" "$DEV/apt.log"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

PG_BIN=
find_pg_bin() {
    local d best=
    if [[ -n ${TIDEMARK_DEV_PG_BIN:-} && -x ${TIDEMARK_DEV_PG_BIN}/initdb ]]; then
        PG_BIN=$TIDEMARK_DEV_PG_BIN
        return 0
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/postgres && -x $d/pg_ctl ]] || continue
        if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n1) == "$d" ]]; then
            best=$d
        fi
    done
    PG_BIN=$best
    [[ -n $PG_BIN ]]
}

ensure_pg_installed() {
    if ! find_pg_bin; then
        apt_install postgresql
        find_pg_bin || die "postgresql installed but no initdb/postgres in /usr/lib/postgresql/*/bin"
    fi
    if [[ ! -x $PG_BIN/psql || ! -x $PG_BIN/pg_isready || ! -x $PG_BIN/pg_recvlogical ]]; then
        apt_install postgresql-client
    fi
    if is_root && ! id -u postgres >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
}

# Run a PostgreSQL program: as the postgres user when we are root (initdb/postgres refuse root).
pg_run() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Resolve PG_DIR. Normally target/dev-env/pg; if the postgres user cannot reach the repo (say it
# lives under a mode-700 home), the cluster lives in /var/tmp and target/dev-env/pg links to it.
pg_dirs() {
    if [[ -L $DEV/pg ]]; then
        PG_DIR=$(readlink -f "$DEV/pg")
        mkdir -p "$PG_DIR"
    else
        PG_DIR=$DEV/pg
        mkdir -p "$PG_DIR"
        if is_root; then
            chown postgres:postgres "$PG_DIR"
            if ! runuser -u postgres -- test -w "$PG_DIR"; then
                local alt
                alt=/var/tmp/tidemark-dev-pg-$(printf '%s' "$DEV" | cksum | cut -d' ' -f1)
                rmdir "$PG_DIR" 2>/dev/null || die "user postgres cannot reach $PG_DIR and it is not empty"
                if [[ -s $alt/data/postmaster.pid ]] && kill -0 "$(head -n1 "$alt/data/postmaster.pid")" 2>/dev/null; then
                    die "a dev PostgreSQL from a removed target/dev-env still runs from $alt; stop it first"
                fi
                rm -rf "$alt"
                mkdir -p "$alt"
                ln -s "$alt" "$DEV/pg"
                PG_DIR=$alt
                log "postgres: user postgres cannot reach the repo; cluster lives in $alt"
            fi
        fi
    fi
    is_root && chown postgres:postgres "$PG_DIR"
    PG_DATA=$PG_DIR/data
    PG_LOG=$PG_DIR/postgres.log
    PG_SOCK_DIR=$PG_DIR
    fits_socket "$PG_SOCK_DIR/.s.PGSQL.$PG_PORT" || PG_SOCK_DIR=/tmp/tidemark-pg-$PG_PORT
    return 0
}

pg_running() {
    [[ -s $PG_DATA/postmaster.pid ]] && pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_write_config() {
    cat >"$PG_DATA/tidemark.conf" <<EOF
# Written by scripts/dev-env.sh on every 'up' (takes effect at the next start).
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
wal_level = logical
max_replication_slots = 32
max_wal_senders = 32
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by scripts/dev-env.sh.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
host    all          all   127.0.0.1/32  scram-sha-256
host    replication  all   127.0.0.1/32  scram-sha-256
EOF
    grep -q "^include_if_exists = 'tidemark.conf'" "$PG_DATA/postgresql.conf" ||
        printf "\ninclude_if_exists = 'tidemark.conf'\n" >>"$PG_DATA/postgresql.conf"
    is_root && chown postgres:postgres "$PG_DATA/tidemark.conf" "$PG_DATA/pg_hba.conf" "$PG_DATA/postgresql.conf"
    return 0
}

pg_up() {
    ensure_pg_installed
    pg_dirs
    if [[ ! -f $PG_DIR/.initialized ]]; then
        log "postgres: initdb ${PG_DATA#"$ROOT"/} ($("$PG_BIN/postgres" --version | awk '{print $3}'))"
        rm -rf "$PG_DATA"
        pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --no-locale --encoding=UTF8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
            die "initdb failed" "$PG_DIR/initdb.log"
        touch "$PG_DIR/.initialized"
    fi
    pg_write_config
    if [[ $PG_SOCK_DIR != "$PG_DIR" ]]; then
        mkdir -p "$PG_SOCK_DIR"
        is_root && chown postgres:postgres "$PG_SOCK_DIR"
    fi
    local state=running
    if ! pg_running; then
        state=started
        touch "$PG_LOG"
        is_root && chown postgres:postgres "$PG_LOG"
        pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" start >/dev/null 2>&1 ||
            die "PostgreSQL did not start on 127.0.0.1:$PG_PORT" "$PG_LOG"
    fi
    head -n1 "$PG_DATA/postmaster.pid" >"$DEV/pg.pid"

    local i
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 && break
        sleep 0.5
    done
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1 ||
        die "PostgreSQL is not accepting connections on 127.0.0.1:$PG_PORT after ${READY_TIMEOUT}s" "$PG_LOG"

    # Role and databases (idempotent), over the unix socket as the superuser.
    pg_run "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres \
        >"$PG_DIR/setup.log" 2>&1 <<'SQL' || die "PostgreSQL setup failed" "$PG_DIR/setup.log"
SET password_encryption = 'scram-sha-256';
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tidemark') THEN
    CREATE ROLE tidemark LOGIN SUPERUSER REPLICATION PASSWORD 'tidemark';
  END IF;
END
$$;
SELECT 'CREATE DATABASE tidemark_test OWNER tidemark'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tidemark_test')\gexec
SELECT 'CREATE DATABASE tidemark_demo OWNER tidemark'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tidemark_demo')\gexec
SQL

    # Verify as the tests will connect: TCP, password, logical WAL.
    local wal
    wal=$(PGPASSWORD=tidemark PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PORT" \
        -U tidemark -d tidemark_test -c 'SHOW wal_level' 2>&1) ||
        die "cannot log in as tidemark on 127.0.0.1:$PG_PORT: $wal" "$PG_LOG"
    [[ $wal == logical ]] || die "PostgreSQL on $PG_PORT has wal_level=$wal; restart it: $0 down pg && $0 up pg"
    log "postgres: $state on 127.0.0.1:$PG_PORT (pid $(cat "$DEV/pg.pid"), log ${PG_LOG#"$ROOT"/})"
}

pg_down() {
    find_pg_bin || true
    local pidfile=$DEV/pg.pid
    if [[ ! -e $pidfile ]]; then
        log "postgres: not running (no pid file)"
        return 0
    fi
    pg_dirs
    local pid
    pid=$(head -n1 "$pidfile")
    if [[ -n $PG_BIN ]] && pg_running && [[ $(head -n1 "$PG_DATA/postmaster.pid") == "$pid" ]]; then
        pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w -t "$READY_TIMEOUT" >/dev/null 2>&1 ||
            die "pg_ctl stop failed" "$PG_LOG"
        log "postgres: stopped (pid $pid)"
    elif kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]; then
        warn "postgres: pid $pid is not the postmaster of $PG_DATA; left alone"
    else
        log "postgres: was not running (stale pid file removed)"
    fi
    rm -f "$pidfile"
}

pg_status() {
    if pid_alive "$DEV/pg.pid" postgres &&
        { [[ -z $PG_BIN ]] || "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }; then
        printf '  %-9s up    127.0.0.1:%-6s pid %s\n' postgres "$PG_PORT" "$(cat "$DEV/pg.pid")"
        return 0
    fi
    printf '  %-9s down  127.0.0.1:%s\n' postgres "$PG_PORT"
    return 1
}

# ---------------------------------------------------------------------------------------------
# MariaDB

MARIADBD=
find_mariadb() {
    MARIADBD=$(command -v mariadbd || true)
    [[ -z $MARIADBD && -x /usr/sbin/mariadbd ]] && MARIADBD=/usr/sbin/mariadbd
    [[ -n $MARIADBD ]] && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null &&
        command -v mariadb-admin >/dev/null
}

my_paths() {
    MY_DATA=$MY_DIR/data
    MY_CNF=$MY_DIR/my.cnf
    MY_LOG=$MY_DIR/mariadb.log
    MY_SOCK=$MY_DIR/mysqld.sock
    fits_socket "$MY_SOCK" || MY_SOCK=/tmp/tidemark-mysql-$MYSQL_PORT.sock
}

# mysql_root <SQL: the client as the administrative user, over the unix socket.
mysql_root() { mariadb --no-defaults --socket="$MY_SOCK" -u "$(id -un)"; }
my_admin_ping() {
    mariadb-admin --no-defaults --socket="$MY_SOCK" -u "$(id -un)" --connect-timeout=1 ping >/dev/null 2>&1
}
# Over TCP as the tests connect.
my_tcp_ping() {
    mariadb-admin --no-defaults -h 127.0.0.1 -P "$MYSQL_PORT" -u tidemark --password=tidemark \
        --connect-timeout=2 ping >/dev/null 2>&1
}

my_write_config() {
    mkdir -p "$MY_DIR/binlog"
    cat >"$MY_CNF" <<EOF
# Written by scripts/dev-env.sh on every 'up' (takes effect at the next start).
[mysqld]
bind-address = 127.0.0.1
port = $MYSQL_PORT
socket = $MY_SOCK
datadir = $MY_DATA
pid-file = $MY_DIR/mariadbd.pid
log-error = $MY_LOG
server_id = 1
log_bin = $MY_DIR/binlog/mysql-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
gtid_strict_mode = ON
log_slave_updates = ON
expire_logs_days = 1
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 2
sync_binlog = 0
character-set-server = utf8mb4
skip-name-resolve
max_allowed_packet = 64M
performance_schema = OFF
EOF
}

my_up() {
    find_mariadb || apt_install mariadb-server mariadb-client
    find_mariadb || die "mariadb-server installed but mariadbd/mariadb-install-db/mariadb not found"
    mkdir -p "$MY_DIR"
    my_paths
    my_write_config
    local user_opt=()
    is_root && user_opt=(--user=root)
    if [[ ! -f $MY_DIR/.initialized ]]; then
        log "mysql: mariadb-install-db ${MY_DATA#"$ROOT"/} ($("$MARIADBD" --version | awk '{print $3}'))"
        rm -rf "$MY_DATA" "$MY_DIR/binlog"
        mkdir -p "$MY_DATA" "$MY_DIR/binlog"
        local sock_user=()
        is_root || sock_user=(--auth-root-socket-user="$(id -un)")
        mariadb-install-db --defaults-file="$MY_CNF" "${user_opt[@]}" --datadir="$MY_DATA" \
            --auth-root-authentication-method=socket "${sock_user[@]}" --skip-test-db \
            >"$MY_DIR/install.log" 2>&1 || die "mariadb-install-db failed" "$MY_DIR/install.log"
        touch "$MY_DIR/.initialized"
    fi
    local state=running
    if ! pid_alive "$DEV/mysql.pid" mariadbd; then
        state=started
        spawn "$DEV/mysql.pid" "$MY_DIR/mariadbd.out" "$MY_DIR" "$MARIADBD" --defaults-file="$MY_CNF" "${user_opt[@]}"
    fi
    local i
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        pid_exists "$DEV/mysql.pid" || die "MariaDB exited during startup" "$MY_LOG"
        my_admin_ping && break
        sleep 0.5
    done
    my_admin_ping || die "MariaDB is not accepting connections on 127.0.0.1:$MYSQL_PORT after ${READY_TIMEOUT}s" "$MY_LOG"

    # User and databases (idempotent; kept out of the binlog so it holds only what tests write).
    mysql_root >"$MY_DIR/setup.log" 2>&1 <<'SQL' || die "MariaDB setup failed" "$MY_DIR/setup.log"
SET SESSION sql_log_bin = 0;
CREATE DATABASE IF NOT EXISTS tidemark_test CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS tidemark_demo CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'tidemark'@'127.0.0.1' IDENTIFIED BY 'tidemark';
CREATE USER IF NOT EXISTS 'tidemark'@'localhost' IDENTIFIED BY 'tidemark';
GRANT ALL PRIVILEGES ON *.* TO 'tidemark'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'tidemark'@'localhost' WITH GRANT OPTION;
-- The account tidemark itself uses in the tests: exactly the grants README documents.
CREATE USER IF NOT EXISTS 'tidemark_cdc'@'127.0.0.1' IDENTIFIED BY 'tidemark_cdc';
GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'tidemark_cdc'@'127.0.0.1';
GRANT CREATE, INSERT, UPDATE ON tidemark_test.* TO 'tidemark_cdc'@'127.0.0.1';
SQL

    # Verify as the tests will connect.
    local out
    out=$(mariadb --no-defaults -h 127.0.0.1 -P "$MYSQL_PORT" -u tidemark --password=tidemark -D tidemark_test \
        -N -B -e 'SELECT @@log_bin, @@binlog_format, @@binlog_row_metadata' 2>&1) ||
        die "cannot log in as tidemark on 127.0.0.1:$MYSQL_PORT: $out" "$MY_LOG"
    [[ $out == $'1\tROW\tFULL' ]] ||
        die "MariaDB on $MYSQL_PORT runs with log_bin/binlog_format/binlog_row_metadata = $out; restart it: $0 down mysql && $0 up mysql"
    log "mysql: $state on 127.0.0.1:$MYSQL_PORT (pid $(cat "$DEV/mysql.pid"), log ${MY_LOG#"$ROOT"/})"
}

my_down() { stop_pid "$DEV/mysql.pid" mariadbd mysql 60; }

my_status() {
    if pid_alive "$DEV/mysql.pid" mariadbd && my_tcp_ping; then
        printf '  %-9s up    127.0.0.1:%-6s pid %s\n' mysql "$MYSQL_PORT" "$(cat "$DEV/mysql.pid")"
        return 0
    fi
    printf '  %-9s down  127.0.0.1:%s\n' mysql "$MYSQL_PORT"
    return 1
}

# ---------------------------------------------------------------------------------------------
# Kafka-protocol broker: tansu

ensure_tansu() {
    [[ -x $TANSU ]] && return 0
    mkdir -p "$TOOLS_DIR"
    local buildlog=$TOOLS_DIR/tansu-build.log start elapsed rc
    start=$SECONDS
    exec 9>"$TOOLS_DIR/.tansu-install.lock"
    if ! flock -n 9; then
        log "kafka: another dev-env is building tansu; waiting (log: $buildlog)"
        flock -w "$BUILD_TIMEOUT" 9 || die "timed out waiting for the tansu build" "$buildlog"
    fi
    # A build started by hand (same command, no lock) counts too: wait for it, don't start a second one.
    while [[ ! -x $TANSU ]] && pgrep -f "cargo install tansu .*--root $TOOLS_DIR" >/dev/null 2>&1; do
        elapsed=$((SECONDS - start))
        ((elapsed < BUILD_TIMEOUT)) || die "timed out waiting for a running 'cargo install tansu'"
        ((elapsed % 60 < 10)) && log "kafka: waiting for a running 'cargo install tansu' (${elapsed}s)"
        sleep 10
    done
    if [[ ! -x $TANSU ]]; then
        command -v cargo >/dev/null || die "cargo not found: the Rust toolchain is needed to build tansu"
        log "kafka: building tansu $TANSU_VERSION with cargo install, once (about 13 min on 2 cores; log: $buildlog)"
        cargo install tansu --version "=$TANSU_VERSION" --locked --features dynostore,libsql \
            --root "$TOOLS_DIR" >"$buildlog" 2>&1 &
        local cargo_pid=$!
        while kill -0 "$cargo_pid" 2>/dev/null; do
            elapsed=$((SECONDS - start))
            if ((elapsed >= BUILD_TIMEOUT)); then
                kill -TERM "$cargo_pid" 2>/dev/null || true
                die "tansu build took longer than ${BUILD_TIMEOUT}s" "$buildlog"
            fi
            ((elapsed > 0 && elapsed % 120 < 5)) && log "kafka: still building tansu (${elapsed}s)"
            sleep 5
        done
        rc=0
        wait "$cargo_pid" || rc=$?
        if ((rc != 0)) || [[ ! -x $TANSU ]]; then
            die "cargo install tansu failed (exit $rc)" "$buildlog"
        fi
        log "kafka: tansu built in $((SECONDS - start))s"
    fi
    exec 9>&-
}

# A real Kafka request: ApiVersions v0 must answer with error code 0.
kafka_api_ok() {
    command -v python3 >/dev/null || {
        tcp_open "$KAFKA_PORT"
        return
    }
    python3 - "$KAFKA_PORT" <<'PY' >/dev/null 2>&1
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.settimeout(3)
client = b"tidemark-dev-env"
body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
s.sendall(struct.pack(">i", len(body)) + body)
def recv(n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            sys.exit(1)
        buf += chunk
    return buf
(size,) = struct.unpack(">i", recv(4))
corr, err = struct.unpack(">ih", recv(size)[:6])
sys.exit(0 if corr == 7 and err == 0 else 1)
PY
}

kafka_up() {
    ensure_tansu
    mkdir -p "$KAFKA_DIR"
    # tansu resolves a sqlite:// path against its working directory (target/dev-env/kafka), even
    # one written as sqlite:///abs/path; "sqlite" is short for its file there.
    local engine=$KAFKA_STORAGE
    [[ $engine == sqlite ]] && engine=sqlite://tansu.db
    local state=running
    if ! pid_alive "$DEV/kafka.pid" tansu; then
        state=started
        if tcp_open "$KAFKA_PORT"; then
            die "port $KAFKA_PORT is already in use by another process (set TIDEMARK_DEV_KAFKA_PORT)"
        fi
        # tansu reads .env from its working directory upwards: give it an empty one of its own.
        : >"$KAFKA_DIR/.env"
        printf '%s\n' "$engine" >"$KAFKA_DIR/engine"
        spawn "$DEV/kafka.pid" "$KAFKA_DIR/tansu.log" "$KAFKA_DIR" \
            env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT -u DATA_LAKE RUST_LOG="${RUST_LOG:-warn}" \
            "$TANSU" broker --cluster-id tidemark-dev \
            --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --storage-engine "$engine"
    fi
    local i
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        pid_exists "$DEV/kafka.pid" || die "tansu exited during startup" "$KAFKA_DIR/tansu.log"
        tcp_open "$KAFKA_PORT" && kafka_api_ok && break
        sleep 0.5
    done
    kafka_api_ok || die "tansu does not answer Kafka requests on 127.0.0.1:$KAFKA_PORT after ${READY_TIMEOUT}s" \
        "$KAFKA_DIR/tansu.log"
    log "kafka: $state on 127.0.0.1:$KAFKA_PORT (pid $(cat "$DEV/kafka.pid"), tansu, $(cat "$KAFKA_DIR/engine" 2>/dev/null || echo "$engine"))"
}

kafka_down() { stop_pid "$DEV/kafka.pid" tansu kafka 20; }

kafka_status() {
    if pid_alive "$DEV/kafka.pid" tansu && kafka_api_ok; then
        printf '  %-9s up    127.0.0.1:%-6s pid %s (%s)\n' kafka "$KAFKA_PORT" "$(cat "$DEV/kafka.pid")" \
            "$(cat "$KAFKA_DIR/engine" 2>/dev/null || echo tansu)"
        return 0
    fi
    printf '  %-9s down  127.0.0.1:%s\n' kafka "$KAFKA_PORT"
    return 1
}

# ---------------------------------------------------------------------------------------------

registry_ok() {
    command -v python3 >/dev/null || {
        tcp_open "$REGISTRY_PORT"
        return
    }
    python3 -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$REGISTRY_PORT/subjects', timeout=2).status == 200 else 1)" \
        >/dev/null 2>&1
}

registry_up() {
    mkdir -p "$REGISTRY_DIR"
    local state=running
    if ! pid_alive "$DEV/registry.pid" "$REGISTRY_COMM"; then
        state=started
        if tcp_open "$REGISTRY_PORT"; then
            die "port $REGISTRY_PORT is already in use by another process (set TIDEMARK_DEV_REGISTRY_PORT)"
        fi
        log "registry: building tools/test-registry (cargo build -p tidemark-test-registry)"
        (cd "$ROOT" && cargo build --quiet -p tidemark-test-registry) >"$REGISTRY_DIR/build.log" 2>&1 ||
            die "building the test registry failed" "$REGISTRY_DIR/build.log"
        # Run a copy: a later `cargo build` may replace the file under target/.
        cp "$ROOT/target/debug/tidemark-test-registry" "$REGISTRY_DIR/tidemark-test-registry"
        spawn "$DEV/registry.pid" "$REGISTRY_DIR/registry.log" "$REGISTRY_DIR" \
            "$REGISTRY_DIR/tidemark-test-registry" --listen "127.0.0.1:$REGISTRY_PORT"
    fi
    local i
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        pid_exists "$DEV/registry.pid" || die "the test registry exited during startup" "$REGISTRY_DIR/registry.log"
        registry_ok && break
        sleep 0.5
    done
    registry_ok || die "the test registry does not answer on 127.0.0.1:$REGISTRY_PORT" "$REGISTRY_DIR/registry.log"
    log "registry: $state on http://127.0.0.1:$REGISTRY_PORT (pid $(cat "$DEV/registry.pid"), in memory, for tests only)"
}

# fastavro, the independent Avro decoder of the tests (tests/shared/avro_decode.py), in a venv of
# its own under the tools directory (PyPI wheel, seconds).
PY_DIR=$TOOLS_DIR/py
FASTAVRO_VERSION=${TIDEMARK_FASTAVRO_VERSION:-1.13.1}
ensure_fastavro() {
    if "$PY_DIR/bin/python" -c "import fastavro" 2>/dev/null; then
        return 0
    fi
    command -v python3 >/dev/null || die "python3 not found (the Avro tests decode with fastavro)"
    log "registry: installing fastavro $FASTAVRO_VERSION into $PY_DIR (the tests' independent Avro decoder)"
    mkdir -p "$TOOLS_DIR"
    python3 -m venv "$PY_DIR" >"$TOOLS_DIR/py-install.log" 2>&1 &&
        "$PY_DIR/bin/pip" install --quiet "fastavro==$FASTAVRO_VERSION" >>"$TOOLS_DIR/py-install.log" 2>&1 ||
        die "installing fastavro failed" "$TOOLS_DIR/py-install.log"
}

registry_down() { stop_pid "$DEV/registry.pid" "$REGISTRY_COMM" registry 10; }

registry_status() {
    if pid_alive "$DEV/registry.pid" "$REGISTRY_COMM" && registry_ok; then
        printf '  %-9s up    127.0.0.1:%-6s pid %s (test schema registry)\n' registry "$REGISTRY_PORT" \
            "$(cat "$DEV/registry.pid")"
        return 0
    fi
    printf '  %-9s down  127.0.0.1:%s\n' registry "$REGISTRY_PORT"
    return 1
}

# ---------------------------------------------------------------------------------------------

write_env() {
    [[ -n $PG_BIN ]] || find_pg_bin || true
    local tmp=$ENV_FILE.tmp
    {
        echo "# Written by scripts/dev-env.sh up; source it: . target/dev-env/env"
        printf 'export TIDEMARK_TEST_PG_URL=%q\n' "postgres://tidemark:tidemark@127.0.0.1:$PG_PORT/tidemark_test"
        printf 'export TIDEMARK_TEST_MYSQL_URL=%q\n' "mysql://tidemark:tidemark@127.0.0.1:$MYSQL_PORT/tidemark_test"
        printf 'export TIDEMARK_TEST_MYSQL_CDC_URL=%q\n' "mysql://tidemark_cdc:tidemark_cdc@127.0.0.1:$MYSQL_PORT/tidemark_test"
        printf 'export TIDEMARK_TEST_KAFKA_BROKERS=%q\n' "127.0.0.1:$KAFKA_PORT"
        printf 'export TIDEMARK_TEST_SCHEMA_REGISTRY_URL=%q\n' "http://127.0.0.1:$REGISTRY_PORT"
        printf 'export TIDEMARK_TEST_REGISTRY_BIN=%q\n' "$REGISTRY_DIR/tidemark-test-registry"
        printf 'export TIDEMARK_DEV_PG_BIN=%q\n' "$PG_BIN"
        printf 'export TIDEMARK_DEV_TANSU=%q\n' "$TANSU"
        printf 'export TIDEMARK_TEST_PYTHON=%q\n' "$PY_DIR/bin/python"
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
}

# Sets COMPONENTS from the arguments (default: all three).
COMPONENTS=()
components() {
    local c
    COMPONENTS=()
    (($# == 0)) && set -- pg mysql kafka registry
    for c in "$@"; do
        case $c in
        pg | postgres | postgresql) COMPONENTS+=(pg) ;;
        mysql | mariadb) COMPONENTS+=(mysql) ;;
        kafka | tansu) COMPONENTS+=(kafka) ;;
        registry | schema-registry) COMPONENTS+=(registry) ;;
        *) die "unknown server '$c' (expected pg, mysql, kafka or registry)" ;;
        esac
    done
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

# What building tidemark and its Kafka security tests need from the system: OpenSSL's headers
# (rdkafka's TLS and SASL SCRAM link the system's libssl), pkg-config to find them, and socat
# (the tests' TLS terminator in front of a private tansu, which speaks no TLS itself).
ensure_build_deps() {
    local missing=()
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    { command -v pkg-config >/dev/null && pkg-config --exists openssl; } || missing+=(libssl-dev)
    command -v socat >/dev/null || missing+=(socat)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

main() {
    local cmd=${1:-}
    (($# > 0)) && shift
    case $cmd in
    up)
        mkdir -p "$DEV"
        local c start=$SECONDS
        components "$@"
        ensure_build_deps
        for c in "${COMPONENTS[@]}"; do
            case $c in
            pg) pg_up ;;
            mysql) my_up ;;
            kafka) kafka_up ;;
            registry)
                registry_up
                ensure_fastavro
                ;;
            esac
        done
        write_env
        log "ready in $((SECONDS - start))s; env: ${ENV_FILE#"$ROOT"/} (source it)"
        ;;
    down)
        local c
        components "$@"
        for c in "${COMPONENTS[@]}"; do
            case $c in
            pg) pg_down ;;
            mysql) my_down ;;
            kafka) kafka_down ;;
            registry) registry_down ;;
            esac
        done
        ;;
    status)
        find_pg_bin || true
        local rc=0
        echo "dev-env ($DEV):"
        pg_status || rc=3
        my_status || rc=3
        kafka_status || rc=3
        registry_status || rc=3
        return "$rc"
        ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 >&2 ;;
    esac
}

main "$@"
