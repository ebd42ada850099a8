#!/usr/bin/env bash
# tidemark's resident memory when the broker stalls (issue 15, item 6): the worst case of the
# README's memory formula, with the producer's queue at its bounds.
#   (1) a MariaDB backlog of BENCH_ROWS rows in 1,000-row transactions
#   (2) tidemark streams it from the backlog's start; 1.5 s in, the broker is stopped (SIGSTOP)
#       for BENCH_STALL_SECONDS, then resumed (SIGCONT; also on any exit of this script)
#   (3) at the end of the stop: VmRSS, and every mapping holding more than 1 MiB (from
#       /proc/PID/smaps: mimalloc's arena, glibc's heap and arenas, the binary)
#   (4) after the resume: until the position reaches the backlog's end; peak RSS (VmHWM) and
#       tidemark's own CPU per change
# Usage: scripts/bench-memory.sh   (BENCH_ROWS=300000 BENCH_STALL_SECONDS=8)
# Run it with MALLOC_ARENA_MAX=N (or MIMALLOC_PURGE_DELAY=ms) in the environment to compare the
# allocators' settings (src/allocator.rs): tidemark inherits them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROWS=${BENCH_ROWS:-300000}
STALL=${BENCH_STALL_SECONDS:-8}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_prepare
bench_run_dir r
PORT=${TIDEMARK_DEV_MYSQL_PORT:-53306}
MY=(mariadb --no-defaults -h 127.0.0.1 -P "$PORT" -u tidemark --password=tidemark -D tidemark_test -N -B)
T="memory_$RUN"
"${MY[@]}" -e "CREATE TABLE $T (id BIGINT PRIMARY KEY, c1 INT, c2 BIGINT, c3 VARCHAR(64), c4 DECIMAL(12,2),
  c5 TIMESTAMP(6), c6 BOOLEAN, c7 DOUBLE, c8 CHAR(32), c9 DATE)"
read -r START_FILE START_POS < <("${MY[@]}" -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
for i in $(seq 0 $((ROWS / 1000 - 1))); do
  echo "INSERT INTO $T SELECT $i * 1000 + seq, seq, seq, 'memory', 1.5, NOW(6), 1, 0.5, MD5(seq), CURDATE() FROM seq_1_to_1000;"
done | "${MY[@]}"
read -r END_FILE END_POS < <("${MY[@]}" -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
echo "backlog: $ROWS rows in 1000-row transactions, $START_FILE:$START_POS .. $END_FILE:$END_POS" >&2

write_daemon_config warn
mysql_stream_connector "$T" "$START_FILE" "$START_POS"
committed() { mysql_position_reached "$END_FILE" "$END_POS"; }
BROKER=$(head -n1 target/dev-env/kafka.pid)
tidemark_start "$OUT/configs/tidemark.yaml"
trap 'kill -CONT "$BROKER" 2>/dev/null || true; kill "$TM" 2>/dev/null || true' EXIT
sleep 1.5
kill -STOP "$BROKER"
sleep "$STALL"
STALLED=$(awk '/^VmRSS/ {print $2}' "/proc/$TM/status")
# Mappings with more than 1 MiB resident: range, permissions, name (anonymous: none), size, RSS.
awk '/^[0-9a-f]+-[0-9a-f]+ / { range = $1; perm = $2; name = ($6 == "" ? "(anonymous)" : $6) }
  /^Rss:/ { if ($2 > 1024) { split(range, a, "-");
    printf "  %-34s %s %-40s size %5d MiB, resident %6.1f MiB\n", range, perm, name,
      (strtonum("0x" a[2]) - strtonum("0x" a[1])) / 1048576, $2 / 1024 } }' "/proc/$TM/smaps" > "$OUT/mappings.txt"
kill -CONT "$BROKER"
tidemark_wait "$ROWS" committed
kill -TERM "$TM"; wait "$TM" || true
trap - EXIT
{
  echo "backlog: $ROWS changes; the broker stopped for $STALL s, 1.5 s after tidemark started"
  echo "environment: MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-unset (tidemark: 1)}, MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-unset (tidemark: 100)}"
  echo "resident at the end of the stop: $((STALLED / 1024)) MiB; mappings over 1 MiB:"
  cat "$OUT/mappings.txt"
  echo "peak RSS: $((PEAK_RSS_KB / 1024)) MiB ($(rss_detail)); tidemark's own CPU $TM_CPU_US us per change, the stop included"
} | tee "$OUT/results.txt"
"${MY[@]}" -e "DROP TABLE $T" >/dev/null
