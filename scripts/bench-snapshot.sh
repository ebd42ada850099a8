#!/usr/bin/env bash
# Snapshot throughput of tidemark (PostgreSQL) against raw reads of the same table, in one run
# on one machine:
#   (1) raw SELECT * of the table through psql to /dev/null, and COPY ... TO STDOUT to /dev/null
#   (2) tidemark: from process start until the committed position says the snapshot is complete
#       (every row produced, acknowledged by the broker, the position stored)
#   (3) meanwhile, a writer commits single-row updates at a fixed rate; the commit-to-consumer
#       latency of those live changes during the snapshot (p50/p99/max)
# Usage: scripts/bench-snapshot.sh   (BENCH_ROWS=1000000 BENCH_CHUNK=1024 BENCH_RATE=200)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROWS=${BENCH_ROWS:-1000000}
CHUNK=${BENCH_CHUNK:-1024}
RATE=${BENCH_RATE:-200}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
RUN="s$$_$(date +%s)"
OUT="target/bench/$RUN"
mkdir -p "$OUT/configs" "$OUT/connectors" "$OUT/positions"
PGURL="$TIDEMARK_TEST_PG_URL"
export PGPASSWORD=tidemark
PSQL=(psql "$PGURL" -v ON_ERROR_STOP=1 -qAt)
T="bench_$RUN"
echo "creating $T with $ROWS rows" >&2
"${PSQL[@]}" <<SQL
CREATE TABLE $T (id bigint PRIMARY KEY, c1 int, c2 bigint, c3 text, c4 numeric(12,2),
  c5 timestamptz, c6 boolean, c7 double precision, c8 text, c9 date);
INSERT INTO $T SELECT i, i, i * 1000, 'customer-' || i, i * 1.25, now(), i % 2 = 0, i / 7.0,
  md5(i::text), current_date FROM generate_series(1, $ROWS) i;
VACUUM ANALYZE $T;
SQL

# (1) raw reads, before and after tidemark; the faster counts
raw_select() {
  local r0 r1
  r0=$(date +%s.%N)
  "${PSQL[@]}" -c "SELECT * FROM $T" >/dev/null
  r1=$(date +%s.%N)
  calc "$ROWS / ($r1 - $r0)"
}
raw_copy() {
  local r0 r1
  r0=$(date +%s.%N)
  "${PSQL[@]}" -c "COPY $T TO STDOUT" >/dev/null
  r1=$(date +%s.%N)
  calc "$ROWS / ($r1 - $r0)"
}
SELECT_1=$(raw_select)
COPY_1=$(raw_copy)

# (2) tidemark, initial snapshot
cat > "$OUT/configs/tidemark.yaml" <<YAML
connectors_dir: ../connectors
kafka:
  brokers: $TIDEMARK_TEST_KAFKA_BROKERS
  topic_prefix: $RUN
offsets:
  store: file
  path: ../positions
  commit_interval_ms: 100
logging:
  level: info
YAML
cat > "$OUT/connectors/bench.yaml" <<YAML
kind: postgres
connection: {host: 127.0.0.1, port: ${TIDEMARK_DEV_PG_PORT:-55432}, database: tidemark_test, user: tidemark, password: tidemark}
postgres: {slot: tm_$RUN, publication: tm_$RUN}
snapshot: {chunk_size: $CHUNK}
tables: [public.$T]
YAML
# "t" once the committed position exists and has no snapshot in progress.
snapshot_committed() {
  python3 - "$OUT/positions/bench.json" <<'PY'
import json, sys
try:
    p = json.load(open(sys.argv[1]))["position"]
except (OSError, ValueError):
    print("f"); sys.exit()
print("t" if "snapshot" not in p else "f")
PY
}
tidemark_start "$OUT/configs/tidemark.yaml"
trap 'kill $TM 2>/dev/null || true; kill $WRITER 2>/dev/null || true' EXIT
# (3) live changes during the snapshot: the latency tool reads the topic, a writer updates
# rows beyond the snapshot's first chunks at RATE per second.
LN=$((RATE * 15))
sleep 2
"$BASE" latency --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --topic "$RUN.public.$T" --messages "$LN" --op u \
  > "$OUT/latency.txt" 2>"$OUT/latency.err" &
LAT=$!
sleep 1
"${PSQL[@]}" <<SQL &
DO \$\$ BEGIN
  FOR i IN 1..$LN LOOP
    UPDATE $T SET c1 = c1 + 1, c5 = now() WHERE id = $ROWS - i;
    COMMIT;
    PERFORM pg_sleep(1.0 / $RATE);
  END LOOP;
END \$\$;
SQL
WRITER=$!
tidemark_wait "$ROWS" snapshot_committed
RSS=$PEAK_RSS_KB
wait $WRITER || true
wait $LAT || true
kill -TERM $TM; wait $TM || true
trap - EXIT
SELECT_2=$(raw_select)
COPY_2=$(raw_copy)
SELECT_RATE=$(python3 -c "print(max($SELECT_1, $SELECT_2))")
COPY_RATE=$(python3 -c "print(max($COPY_1, $COPY_2))")
READS=$(grep -c '"op":"r"' <(target/release/tidemark tail "$RUN.public.$T" --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" \
  --from-beginning --idle-timeout-ms 5000) || true)
{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $("${PSQL[@]}" -c 'SHOW server_version')"
  echo "table: $ROWS rows, 10 columns; chunk size $CHUNK; live updates during the snapshot: $RATE/s"
  printf "raw SELECT *: %.0f rows/s; COPY TO STDOUT: %.0f rows/s\n" "$SELECT_RATE" "$COPY_RATE"
  printf "tidemark snapshot (to acknowledged Kafka messages, progress committed): %.0f rows/s = %s%% of SELECT, %s%% of COPY; machine CPU %s us/row, of which tidemark %s us\n" \
    "$E2E" "$(python3 -c "print(round($E2E / $SELECT_RATE * 100, 1))")" "$(python3 -c "print(round($E2E / $COPY_RATE * 100, 1))")" "$E2E_CPU_US" "$TM_CPU_US"
  echo "op=r messages in the topic: $READS (table rows: $ROWS)"
  echo "live updates during the snapshot, commit to consumer: $(grep -v latency_ready "$OUT/latency.txt")"
  echo "peak RSS: $((RSS / 1024)) MiB"
} | tee "$OUT/results.txt"
"${PSQL[@]}" -c "SELECT pg_drop_replication_slot('tm_$RUN')" -c "DROP PUBLICATION IF EXISTS tm_$RUN" -c "DROP TABLE $T" >/dev/null
