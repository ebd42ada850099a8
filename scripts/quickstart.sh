#!/usr/bin/env bash
# Quickstart: PostgreSQL and MariaDB row changes -> tidemark -> Kafka, all on this machine.
#
#   scripts/quickstart.sh
#
# 1. starts the local servers (scripts/dev-env.sh up: PostgreSQL, MariaDB, a Kafka-protocol broker)
# 2. creates the demo tables customers and orders in PostgreSQL database tidemark_demo
#    (docker/postgres-init/01-demo.sql) and inventory in MariaDB database tidemark_demo
#    (docker/mysql-init/01-demo.sql): the same files docker-compose.yml uses
# 3. builds tidemark and runs it with configs/tidemark.yaml (connectors connectors/demo.yaml and
#    connectors/demo_mysql.yaml)
# 4. writes to the tables for ~10 s: inserts, updates, one delete per table
# 5. prints the events read back from the topics tidemark.public.customers, tidemark.public.orders
#    and tidemark.tidemark_demo.inventory
# 6. stops tidemark (SIGTERM); the servers keep running: stop them with scripts/dev-env.sh down
#
# tidemark's log: target/quickstart/tidemark.log
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
QS=target/quickstart
WRITE_SECONDS=${TIDEMARK_QUICKSTART_SECONDS:-10}
STOP_TIMEOUT=30

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'quickstart: error: %s\n' "$1" >&2
    if [[ -s $QS/tidemark.log ]]; then
        printf -- '--- last lines of %s ---\n' "$QS/tidemark.log" >&2
        tail -n 30 "$QS/tidemark.log" >&2
    fi
    exit 1
}

TM_PID=
# Stop tidemark with SIGTERM (graceful: drain the sink, commit positions); SIGKILL after a timeout.
stop_tidemark() {
    [[ -n $TM_PID ]] || return 0
    local pid=$TM_PID i rc=0
    TM_PID=
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            printf 'quickstart: tidemark (pid %s) did not stop within %ss; killing it\n' "$pid" "$STOP_TIMEOUT" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}
trap 'stop_tidemark || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting the local servers"
scripts/dev-env.sh up
# shellcheck source=/dev/null
. target/dev-env/env

PG_PORT=${TIDEMARK_DEV_PG_PORT:-55432}
DEMO_URL=postgres://tidemark:tidemark@127.0.0.1:$PG_PORT/tidemark_demo
PSQL=("$TIDEMARK_DEV_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$DEMO_URL")
export PGOPTIONS='-c client_min_messages=warning'
sql() { "${PSQL[@]}" -c "$1"; }

MY_PORT=${TIDEMARK_DEV_MYSQL_PORT:-53306}
MYSQL=(mariadb --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u tidemark --password=tidemark -N -B tidemark_demo)
my_sql() { "${MYSQL[@]}" -e "$1"; }
# mysql.server_id of connectors/demo_mysql.yaml: tidemark registers with it as a replica.
MY_SERVER_ID=4201

step "creating the demo tables in tidemark_demo (docker/postgres-init/01-demo.sql)"
"${PSQL[@]}" -f docker/postgres-init/01-demo.sql >/dev/null
printf 'customers: %s rows, orders: %s rows\n' "$(sql 'SELECT count(*) FROM public.customers')" \
    "$(sql 'SELECT count(*) FROM public.orders')"

step "creating the demo table inventory in tidemark_demo on MariaDB (docker/mysql-init/01-demo.sql)"
"${MYSQL[@]}" <docker/mysql-init/01-demo.sql
printf 'inventory: %s rows\n' "$(my_sql 'SELECT count(*) FROM inventory')"

step "building tidemark (cargo build --release; the first build takes a few minutes)"
# Cargo's own progress (a bar on a terminal, one line per crate otherwise).
cargo build --release --bin tidemark
TIDEMARK=target/release/tidemark

# The same overrides as docker-compose.yml, pointed at the dev-env servers.
export TIDEMARK_PG_PASSWORD=tidemark
export TIDEMARK__KAFKA__BROKERS=$TIDEMARK_TEST_KAFKA_BROKERS
export TIDEMARK__CONNECTORS__DEMO__CONNECTION__HOST=127.0.0.1
export TIDEMARK__CONNECTORS__DEMO__CONNECTION__PORT=$PG_PORT
export TIDEMARK__CONNECTORS__DEMO__CONNECTION__DATABASE=tidemark_demo
export TIDEMARK_MYSQL_PASSWORD=tidemark
export TIDEMARK__CONNECTORS__DEMO_MYSQL__CONNECTION__HOST=127.0.0.1
export TIDEMARK__CONNECTORS__DEMO_MYSQL__CONNECTION__PORT=$MY_PORT
export TIDEMARK__CONNECTORS__DEMO_MYSQL__CONNECTION__DATABASE=tidemark_demo

step "starting tidemark (log: $QS/tidemark.log)"
mkdir -p "$QS"
: >"$QS/tidemark.log"
"$TIDEMARK" run --config configs/tidemark.yaml >>"$QS/tidemark.log" 2>&1 &
TM_PID=$!

# Ready when its replication slot on tidemark_demo is streaming and it is registered with
# MariaDB as a replica (it registers right before it requests the binlog; its log then says
# "streaming binlog", which only the MySQL connector logs).
pg_streaming() {
    [[ $(sql "SELECT count(*) FROM pg_replication_slots WHERE database = 'tidemark_demo' AND active") -gt 0 ]]
}
my_streaming() {
    my_sql 'SHOW SLAVE HOSTS' 2>/dev/null |
        awk -v id="$MY_SERVER_ID" '$1 == id { found = 1 } END { exit !found }' ||
        grep -q 'streaming binlog' "$QS/tidemark.log"
}
for ((i = 0; ; i++)); do
    kill -0 "$TM_PID" 2>/dev/null || die "tidemark exited during startup"
    pg_streaming && my_streaming && break
    ((i < 120)) || die "tidemark did not start streaming from tidemark_demo (PostgreSQL and MariaDB) within 60s"
    sleep 0.5
done
echo "tidemark is streaming (pid $TM_PID)"

step "writing to customers, orders and inventory for ${WRITE_SECONDS}s"
end=$((SECONDS + WRITE_SECONDS))
n=0 updated=0 deleted=0 first_order='' prev_order='' first_item='' prev_item=''
while ((SECONDS < end)); do
    n=$((n + 1))
    order=$(sql "WITH c AS (INSERT INTO public.customers (name, email)
                            VALUES ('Customer $n', 'customer$n@example.com') RETURNING id),
                     o AS (INSERT INTO public.orders (customer_id, amount, status)
                            SELECT id, round((10 + random() * 490)::numeric, 2), 'new' FROM c RETURNING id)
                 SELECT id FROM o")
    # A new inventory item; ids continue after the highest one (the table has no AUTO_INCREMENT).
    item=$(my_sql "INSERT INTO inventory (id, sku, qty, price)
                       SELECT m + 1, CONCAT('ITEM-', m + 1), 10, ROUND(1 + RAND() * 99, 2)
                       FROM (SELECT COALESCE(MAX(id), 0) AS m FROM inventory) AS last;
                   SELECT MAX(id) FROM inventory")
    first_order=${first_order:-$order}
    first_item=${first_item:-$item}
    if [[ -n $prev_order ]]; then
        sql "UPDATE public.orders SET status = 'paid' WHERE id = $prev_order" >/dev/null
        my_sql "UPDATE inventory SET qty = qty - 1 WHERE id = $prev_item" >/dev/null
        updated=$((updated + 1))
    fi
    if ((deleted == 0 && n >= 5)); then
        sql "DELETE FROM public.orders WHERE id = $first_order" >/dev/null
        my_sql "DELETE FROM inventory WHERE id = $first_item" >/dev/null
        deleted=1
    fi
    prev_order=$order
    prev_item=$item
    sleep 1
done
printf 'inserted %d customers and %d orders, updated %d orders, deleted %d order (id %s)\n' \
    "$n" "$n" "$updated" "$deleted" "${first_order:-none}"
printf 'inserted %d inventory items, updated %d, deleted %d (id %s)\n' \
    "$n" "$updated" "$deleted" "${first_item:-none}"
kill -0 "$TM_PID" 2>/dev/null || die "tidemark exited while the writer ran"
sleep 3 # let the last changes reach the broker

for table in public.customers public.orders tidemark_demo.inventory; do
    topic=tidemark.$table
    out=$QS/${table#*.}.jsonl
    step "events on $topic"
    "$TIDEMARK" tail "$topic" --from-beginning --idle-timeout-ms 3000 | tee "$out"
    printf -- '--- %s events on %s (saved in %s)\n' "$(wc -l <"$out" | tr -d ' ')" "$topic" "$out"
done

step "stopping tidemark (SIGTERM)"
rc=0
stop_tidemark || rc=$?
((rc == 0)) || die "tidemark exited with status $rc on SIGTERM"
echo "tidemark stopped cleanly"

retained=$(sql "SELECT pg_size_pretty(pg_current_wal_lsn() - restart_lsn) FROM pg_replication_slots
                WHERE slot_name = 'tidemark_demo'" || true)
cat <<EOF

Done. The local servers are still running (scripts/dev-env.sh status);
stop them with: scripts/dev-env.sh down

PostgreSQL keeps WAL for tidemark's replication slot tidemark_demo while tidemark is stopped
(${retained:-unknown} now): that is how the next start resumes without losing a change, and it
grows with every write to the server. When you are done with the demo, drop the slot:
  $TIDEMARK_DEV_PG_BIN/psql "$DEMO_URL" -c "SELECT pg_drop_replication_slot('tidemark_demo')"
(a later start creates it again and snapshots the tables again). In production, alert on
tidemark_replication_slot_retained_bytes (README, Admin API, health and metrics).
EOF
