#!/usr/bin/env bash
# Quickstart: PostgreSQL row changes -> tidemark -> Kafka, all on this machine.
#
#   scripts/quickstart.sh
#
# 1. starts the local servers (scripts/dev-env.sh up: PostgreSQL, MariaDB, a Kafka-protocol broker)
# 2. creates the demo tables customers and orders in database tidemark_demo
#    (docker/postgres-init/01-demo.sql, the same file docker-compose.yml uses)
# 3. builds tidemark and runs it with configs/tidemark.yaml (connector connectors/demo.yaml)
# 4. writes to the tables for ~10 s: inserts, updates, one delete
# 5. prints the events read back from the topics tidemark.public.customers and tidemark.public.orders
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

step "creating the demo tables in tidemark_demo (docker/postgres-init/01-demo.sql)"
"${PSQL[@]}" -f docker/postgres-init/01-demo.sql >/dev/null
printf 'customers: %s rows, orders: %s rows\n' "$(sql 'SELECT count(*) FROM public.customers')" \
    "$(sql 'SELECT count(*) FROM public.orders')"

step "building tidemark (cargo build --release; the first build takes a few minutes)"
cargo build --release --quiet --bin tidemark
TIDEMARK=target/release/tidemark

# The same overrides as docker-compose.yml, pointed at the dev-env servers.
export TIDEMARK_PG_PASSWORD=tidemark
export TIDEMARK__KAFKA__BROKERS=$TIDEMARK_TEST_KAFKA_BROKERS
export TIDEMARK__CONNECTORS__DEMO__CONNECTION__HOST=127.0.0.1
export TIDEMARK__CONNECTORS__DEMO__CONNECTION__PORT=$PG_PORT
export TIDEMARK__CONNECTORS__DEMO__CONNECTION__DATABASE=tidemark_demo

step "starting tidemark (log: $QS/tidemark.log)"
mkdir -p "$QS"
: >"$QS/tidemark.log"
"$TIDEMARK" run --config configs/tidemark.yaml >>"$QS/tidemark.log" 2>&1 &
TM_PID=$!

# Ready when its replication slot on tidemark_demo is streaming.
for ((i = 0; ; i++)); do
    kill -0 "$TM_PID" 2>/dev/null || die "tidemark exited during startup"
    [[ $(sql "SELECT count(*) FROM pg_replication_slots WHERE database = 'tidemark_demo' AND active") -gt 0 ]] && break
    ((i < 120)) || die "tidemark did not start streaming from tidemark_demo within 60s"
    sleep 0.5
done
echo "tidemark is streaming (pid $TM_PID)"

step "writing to customers and orders for ${WRITE_SECONDS}s"
end=$((SECONDS + WRITE_SECONDS))
n=0 updated=0 deleted=0 first_order='' prev_order=''
while ((SECONDS < end)); do
    n=$((n + 1))
    order=$(sql "WITH c AS (INSERT INTO public.customers (name, email)
                            VALUES ('Customer $n', 'customer$n@example.com') RETURNING id),
                     o AS (INSERT INTO public.orders (customer_id, amount, status)
                            SELECT id, round((10 + random() * 490)::numeric, 2), 'new' FROM c RETURNING id)
                 SELECT id FROM o")
    first_order=${first_order:-$order}
    if [[ -n $prev_order ]]; then
        sql "UPDATE public.orders SET status = 'paid' WHERE id = $prev_order" >/dev/null
        updated=$((updated + 1))
    fi
    if ((deleted == 0 && n >= 5)); then
        sql "DELETE FROM public.orders WHERE id = $first_order" >/dev/null
        deleted=1
    fi
    prev_order=$order
    sleep 1
done
printf 'inserted %d customers and %d orders, updated %d orders, deleted %d order (id %s)\n' \
    "$n" "$n" "$updated" "$deleted" "${first_order:-none}"
kill -0 "$TM_PID" 2>/dev/null || die "tidemark exited while the writer ran"
sleep 3 # let the last changes reach the broker

for table in customers orders; do
    topic=tidemark.public.$table
    step "events on $topic"
    "$TIDEMARK" tail "$topic" --from-beginning --idle-timeout-ms 3000 | tee "$QS/$table.jsonl"
    printf -- '--- %s events on %s (saved in %s)\n' "$(wc -l <"$QS/$table.jsonl" | tr -d ' ')" "$topic" \
        "$QS/$table.jsonl"
done

step "stopping tidemark (SIGTERM)"
rc=0
stop_tidemark || rc=$?
((rc == 0)) || die "tidemark exited with status $rc on SIGTERM"
echo "tidemark stopped cleanly"

cat <<EOF

Done. The local servers are still running (scripts/dev-env.sh status);
stop them with: scripts/dev-env.sh down
EOF
