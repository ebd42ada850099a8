#!/usr/bin/env bash
# Where tidemark's CPU goes per change, in instructions: tidemark (release build, with its line
# tables) under valgrind's callgrind streams a fixed PostgreSQL or MariaDB workload to the dev
# broker. Instruction counts are repeatable for the same binary and inputs whatever else the
# machine does, so two builds compare exactly where timings would not.
# Prints the instructions per change in total and the top functions, inclusive and self; the
# full profile stays in target/bench/<run>/callgrind.out (callgrind_annotate reads it).
# Usage: scripts/profile.sh [postgres|mysql]   (PROFILE_CHANGES=40000 PROFILE_TOP=30)
# The workload is bench.sh's (bench-mysql.sh's): half single-row INSERT transactions, half
# UPDATEs in 1000-row transactions; JSON values. The counts include start-up and shutdown
# (about a tenth at 40,000 changes: compare the per-function figures, not only the total).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
KIND=${1:-postgres}
N=${PROFILE_CHANGES:-40000}
TOP=${PROFILE_TOP:-30}
HALF=$((N / 2))
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
bench_run_dir p
CFG="$OUT/configs"
write_daemon_config warn
T="prof_$RUN"
COLUMNS_SQL="id bigint PRIMARY KEY, c1 int, c2 bigint, c3 text, c4 numeric(12,2), c5 timestamptz, c6 boolean, c7 double precision, c8 text, c9 date"

if [ "$KIND" = postgres ]; then
  export PGPASSWORD=tidemark
  PSQL=(psql "$TIDEMARK_TEST_PG_URL" -v ON_ERROR_STOP=1 -qAt)
  "${PSQL[@]}" <<SQL
CREATE TABLE $T ($COLUMNS_SQL);
CREATE PUBLICATION pub_$RUN FOR TABLE $T;
SELECT 1 FROM pg_create_logical_replication_slot('tm_$RUN', 'pgoutput');
SQL
  pg_stream_workload "$T" "$HALF"
  END_LSN=$("${PSQL[@]}" -c "SELECT pg_current_wal_insert_lsn()")
  write_connector postgres "public.$T" "postgres: {slot: tm_$RUN, publication: pub_$RUN, status_interval_ms: 100}
snapshot: {mode: never}"
  done_yet() { "${PSQL[@]}" -c "SELECT confirmed_flush_lsn >= '$END_LSN'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tm_$RUN'"; }
  cleanup() {
    "${PSQL[@]}" -c "SELECT pg_drop_replication_slot('tm_$RUN')" -c "DROP PUBLICATION pub_$RUN" -c "DROP TABLE $T" >/dev/null || true
  }
else
  MY=(mariadb --no-defaults -h 127.0.0.1 -P "${TIDEMARK_DEV_MYSQL_PORT:-53306}" -u tidemark --password=tidemark -D tidemark_test -N -B)
  "${MY[@]}" -e "CREATE TABLE $T (id BIGINT PRIMARY KEY, c1 INT, c2 BIGINT, c3 VARCHAR(64), c4 DECIMAL(12,2),
    c5 TIMESTAMP(6), c6 BOOLEAN, c7 DOUBLE, c8 CHAR(32), c9 DATE)"
  read -r START_FILE START_POS < <("${MY[@]}" -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
  mysql_stream_workload "$T" "$HALF"
  read -r END_FILE END_POS < <("${MY[@]}" -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
  mysql_stream_connector "$T" "$START_FILE" "$START_POS"
  done_yet() { mysql_position_reached "$END_FILE" "$END_POS"; }
  cleanup() { "${MY[@]}" -e "DROP TABLE $T" || true; }
fi
trap cleanup EXIT

echo "profiling tidemark on $N $KIND changes under callgrind (about 50x slower than native)..." >&2
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" --dump-instr=no \
  target/release/tidemark run --config "$CFG/tidemark.yaml" 2>"$OUT/tidemark.log" &
TM=$!
until [ "$(done_yet)" = t ]; do
  kill -0 "$TM" 2>/dev/null || { echo "tidemark died:" >&2; tail -20 "$OUT/tidemark.log" >&2; exit 1; }
  sleep 1
done
kill -TERM "$TM"
wait "$TM" || true

callgrind_annotate "$OUT/callgrind.out" > "$OUT/self.txt" 2>/dev/null
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" > "$OUT/inclusive.txt" 2>/dev/null
TOTAL=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' "$OUT/self.txt")
# top FILE: the first $TOP function lines of a callgrind_annotate listing, per change.
top() {
  awk -v n="$N" -v top="$TOP" 'f && /^ *[0-9,]+ / && k < top {c=$1; gsub(",", "", c); $1=""; $2="";
    printf "  %8.0f %s\n", c / n, substr($0, 3, 170); k++} /file:function/ {f=1}' "$1"
}
{
  echo "$KIND, $N changes: $TOTAL instructions in all, $((TOTAL / N)) per change (start-up and shutdown included)"
  echo "top $TOP functions, inclusive (instructions per change):"
  top "$OUT/inclusive.txt"
  echo "top $TOP functions, self (instructions per change):"
  top "$OUT/self.txt"
} | tee "$OUT/profile.txt"
