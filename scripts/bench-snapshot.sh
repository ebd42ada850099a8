#!/usr/bin/env bash
# Snapshot throughput of tidemark against raw reads of the same table, in one run on one
# machine, for PostgreSQL (default) or MariaDB (BENCH_SOURCE=mysql):
#   (1) raw SELECT * of the table through the database's client to /dev/null (psql; mariadb
#       --quick), and for PostgreSQL COPY ... TO STDOUT to /dev/null
#   (2) tidemark: from process start until the committed position says the snapshot is complete
#       (every row produced, acknowledged by the broker, the position stored)
#   (3) meanwhile, a writer commits single-row updates at a fixed rate; the commit-to-consumer
#       latency of those live changes during the snapshot (p50/p99/max), and tidemark's stage
#       histograms over the same time (from its /metrics)
# Usage: scripts/bench-snapshot.sh   (BENCH_SOURCE=postgres|mysql BENCH_ROWS=1000000
#        BENCH_CHUNK=1024 BENCH_RATE=200 BENCH_PARALLELISM=1 BENCH_PG_READ_COALESCE_MS=N)
# BENCH_PARALLELISM sets the connector's snapshot.parallelism (chunks read at once; the table
# is split into that many key ranges).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SOURCE=${BENCH_SOURCE:-postgres}
ROWS=${BENCH_ROWS:-1000000}
CHUNK=${BENCH_CHUNK:-1024}
RATE=${BENCH_RATE:-200}
PARALLELISM=${BENCH_PARALLELISM:-1}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
bench_run_dir s
T="bench_$RUN"
PGURL="$TIDEMARK_TEST_PG_URL"
export PGPASSWORD=tidemark
PSQL=(psql "$PGURL" -v ON_ERROR_STOP=1 -qAt)
MY=(mariadb --no-defaults -h 127.0.0.1 -P "${TIDEMARK_DEV_MYSQL_PORT:-53306}" -u tidemark --password=tidemark
    -D tidemark_test -N -B)
echo "creating $T with $ROWS rows ($SOURCE)" >&2
if [ "$SOURCE" = mysql ]; then
  DB=tidemark_test
  "${MY[@]}" >/dev/null <<SQL
CREATE TABLE $T (id BIGINT PRIMARY KEY, c1 INT, c2 BIGINT, c3 VARCHAR(40), c4 DECIMAL(12,2),
  c5 TIMESTAMP(6) NULL, c6 BOOLEAN, c7 DOUBLE, c8 CHAR(32), c9 DATE);
INSERT INTO $T SELECT seq, seq, seq * 1000, CONCAT('customer-', seq), seq * 1.25, NOW(6), seq % 2 = 0,
  seq / 7.0, MD5(seq), CURRENT_DATE FROM seq_1_to_$ROWS;
ANALYZE TABLE $T;
SQL
else
  DB=public
  "${PSQL[@]}" <<SQL
CREATE TABLE $T (id bigint PRIMARY KEY, c1 int, c2 bigint, c3 text, c4 numeric(12,2),
  c5 timestamptz, c6 boolean, c7 double precision, c8 text, c9 date);
INSERT INTO $T SELECT i, i, i * 1000, 'customer-' || i, i * 1.25, now(), i % 2 = 0, i / 7.0,
  md5(i::text), current_date FROM generate_series(1, $ROWS) i;
VACUUM ANALYZE $T;
SQL
fi

# (1) raw reads, before and after tidemark; the faster counts
# raw_select TAG prints the rate and writes the client's own CPU per row to $OUT/select-TAG.us.
raw_select() {
  local r0 r1
  r0=$(date +%s.%N)
  if [ "$SOURCE" = mysql ]; then
    cpu_run "$OUT/select-$1.s" "${MY[@]}" --quick -e "SELECT * FROM $T" >/dev/null
  else
    cpu_run "$OUT/select-$1.s" "${PSQL[@]}" -c "SELECT * FROM $T" >/dev/null
  fi
  r1=$(date +%s.%N)
  cpu_us "$OUT/select-$1.s" "$ROWS" > "$OUT/select-$1.us"
  calc "$ROWS / ($r1 - $r0)"
}
raw_copy() {
  local r0 r1
  [ "$SOURCE" = mysql ] && { echo 0; return; }
  r0=$(date +%s.%N)
  "${PSQL[@]}" -c "COPY $T TO STDOUT" >/dev/null
  r1=$(date +%s.%N)
  calc "$ROWS / ($r1 - $r0)"
}
SELECT_1=$(raw_select 1)
COPY_1=$(raw_copy)

# (2) tidemark, initial snapshot
write_daemon_config info
if [ "$SOURCE" = mysql ]; then
  write_connector mysql "tidemark_test.$T" "mysql: {server_id: $((20000 + $$ % 10000))}
snapshot: {chunk_size: $CHUNK, parallelism: $PARALLELISM}"
else
  write_connector postgres "public.$T" "postgres: {slot: tm_$RUN, publication: tm_$RUN${BENCH_PG_READ_COALESCE_MS:+, read_coalesce_ms: $BENCH_PG_READ_COALESCE_MS}}
snapshot: {chunk_size: $CHUNK, parallelism: $PARALLELISM}"
fi
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
# MySQL: the binlog's ts_ms has whole seconds, so the commit time is the row's c5 (NOW(6)).
TS_COLUMN=()
[ "$SOURCE" = mysql ] && TS_COLUMN=(--ts-column c5)
"$BASE" latency --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" --topic "$RUN.$DB.$T" --messages "$LN" --op u \
  "${TS_COLUMN[@]}" > "$OUT/latency.txt" 2>"$OUT/latency.err" &
LAT=$!
sleep 1
# tidemark's stage histograms over the snapshot (snapshot rows and live changes together;
# commit_to_read, PostgreSQL only, counts the live transactions and the watermarks).
metrics_snapshot "$OUT/metrics-0.txt"
if [ "$SOURCE" = mysql ]; then
  "${MY[@]}" <<SQL &
DELIMITER //
BEGIN NOT ATOMIC
  FOR i IN 1..$LN DO
    UPDATE $T SET c1 = c1 + 1, c5 = NOW(6) WHERE id = $ROWS - i;
    DO SLEEP(1.0 / $RATE);
  END FOR;
END //
DELIMITER ;
SQL
else
  # synchronous_commit=on, as bench.sh's writer: with the dev server's `off` each update's WAL
  # waits for the WAL writer's cycle (wal_writer_delay, 200 ms) before logical decoding sees it.
  "${PSQL[@]}" <<SQL &
SET synchronous_commit = on;
DO \$\$ BEGIN
  FOR i IN 1..$LN LOOP
    UPDATE $T SET c1 = c1 + 1, c5 = now() WHERE id = $ROWS - i;
    COMMIT;
    PERFORM pg_sleep(1.0 / $RATE);
  END LOOP;
END \$\$;
SQL
fi
WRITER=$!
tidemark_wait "$ROWS" snapshot_committed
RSS=$PEAK_RSS_KB
wait $WRITER || true
wait $LAT || true
metrics_snapshot "$OUT/metrics-1.txt"
kill -TERM $TM; wait $TM || true
trap - EXIT
SELECT_2=$(raw_select 2)
COPY_2=$(raw_copy)
SELECT_RATE=$(python3 -c "print(max($SELECT_1, $SELECT_2))")
COPY_RATE=$(python3 -c "print(max($COPY_1, $COPY_2))")
SELECT_US=$(python3 -c "print(min($(cat "$OUT/select-1.us"), $(cat "$OUT/select-2.us")))")
# The raw producer on the same rows (values sampled from tidemark's messages).
SIZE=$(sample_values "$RUN.$DB.$T" "$OUT/sample.jsonl")
raw_produce "$ROWS" "$OUT/sample.jsonl" "raw_$RUN" > "$OUT/produce.txt"
READS=$(grep -c '"op":"r"' <(target/release/tidemark tail "$RUN.$DB.$T" --brokers "$TIDEMARK_TEST_KAFKA_BROKERS" \
  --from-beginning --idle-timeout-ms 5000) || true)
{
  if [ "$SOURCE" = mysql ]; then VERSION=$("${MY[@]}" -e 'SELECT VERSION()'); else VERSION=$("${PSQL[@]}" -c 'SHOW server_version'); fi
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $SOURCE $VERSION"
  echo "table: $ROWS rows, 10 columns; chunk size $CHUNK; parallelism $PARALLELISM; live updates during the snapshot: $RATE/s"
  printf "raw SELECT *: %.0f rows/s; COPY TO STDOUT: %.0f rows/s (0: MySQL has none)\n" "$SELECT_RATE" "$COPY_RATE"
  printf "tidemark snapshot (to acknowledged Kafka messages, progress committed): %.0f rows/s = %s%% of SELECT; machine CPU %s us/row, of which tidemark %s us\n" \
    "$E2E" "$(python3 -c "print(round($E2E / $SELECT_RATE * 100, 1))")" "$E2E_CPU_US" "$TM_CPU_US"
  [ "$SOURCE" = mysql ] || echo "  = $(python3 -c "print(round($E2E / $COPY_RATE * 100, 1))")% of COPY"
  printf "raw produce of the same rows (mean message %s bytes; tidemark's records: key, value, two headers, timestamp): %.0f msgs/s; producer process %s us/msg (key and value alone: %s us, ratio %s)\n" \
    "$SIZE" "$(cat "$OUT/produce.txt")" "$PRODUCE_CLIENT_US" "$PRODUCE_PLAIN_CLIENT_US" "$(calc "round($TM_CPU_US / $PRODUCE_PLAIN_CLIENT_US, 2)")"
  printf "own CPU per row: tidemark %s us; raw producer %s us (ratio %s, target <= 2.5); SELECT client %s us; producer + SELECT client %s us (ratio %s)\n" \
    "$TM_CPU_US" "$PRODUCE_CLIENT_US" "$(calc "round($TM_CPU_US / $PRODUCE_CLIENT_US, 2)")" "$SELECT_US" \
    "$(calc "round($PRODUCE_CLIENT_US + $SELECT_US, 2)")" "$(calc "round($TM_CPU_US / ($PRODUCE_CLIENT_US + $SELECT_US), 2)")"
  echo "op=r messages in the topic: $READS (table rows: $ROWS)"
  echo "live updates during the snapshot, commit to consumer: $(grep -v latency_ready "$OUT/latency.txt")"
  echo "  inside tidemark meanwhile (bucket bounds, from /metrics): $(stage_quantiles "$OUT/metrics-0.txt" "$OUT/metrics-1.txt")"
  echo "peak RSS: $((RSS / 1024)) MiB ($(rss_detail))"
} | tee "$OUT/results.txt"
if [ "$SOURCE" = mysql ]; then
  "${MY[@]}" -e "DROP TABLE $T"
else
  "${PSQL[@]}" -c "SELECT pg_drop_replication_slot('tm_$RUN')" -c "DROP PUBLICATION IF EXISTS tm_$RUN" -c "DROP TABLE $T" >/dev/null
fi
