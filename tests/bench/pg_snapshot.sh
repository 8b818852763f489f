#!/usr/bin/env bash
# Benchmark: the initial snapshot of one table against COPY of the same rows.
#
#   tests/bench/pg_snapshot.sh
#
# Starts a throwaway PostgreSQL 15 on a free loopback port, fills one table, then BENCH_REPEATS
# times (default 3) measures
#   (a) the baseline: psql `COPY (SELECT * FROM bench ORDER BY id) TO STDOUT` into /dev/null;
#   (b) the agent: `tributary run` with snapshot: initial (fresh slot and state each time) into a
#       file sink, from start until its checkpoint no longer carries snapshot progress: every
#       row read, durable in the files and checkpointed (the files are counted after the stop,
#       untimed, and must hold every row);
# and reports medians: throughput as a ratio to COPY (target >= 0.8), agent CPU seconds per
# million rows and peak RSS. It also reports the server's CPU (its backends and walsender) for
# COPY and for the agent's run, and the ratio the agent's run would reach if its CPU and the
# server's kept both cores busy from start to end: a bound that no scheduling can beat.
# Exits 0 whether the target is met or not.
#
# Environment:
#   TRIBUTARY_BIN       agent binary to use (default: build it into build/bench)
#   BENCH_ROWS          rows in the table (default 1000000)
#   BENCH_CHUNK_ROWS    snapshot_chunk_rows (default: the agent's default)
#   BENCH_REPEATS       runs per contender (default 3)
set -Eeuo pipefail
trap 'echo "pg_snapshot: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/../.."
rows=${BENCH_ROWS:-1000000}
repeats=${BENCH_REPEATS:-3}
bench_name=pg_snapshot
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh

for tool in /usr/lib/postgresql/15/bin/pg_ctl /usr/bin/psql /usr/bin/time; do
  [ -x "$tool" ] || { bash scripts/install-deps.sh; break; }
done
find_agent

work=$(mktemp -d /tmp/tributary-bench-XXXXXX)
chmod 755 "$work"
agent_pid=
cleanup() {
  local status=$?
  trap - ERR
  [ -z "$agent_pid" ] || { kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; }
  stop_pg
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg

log "Loading $rows rows"
sql -c "CREATE TABLE public.bench (id int PRIMARY KEY, qty int, price numeric(12,2), note text, at timestamptz)" \
    -c "INSERT INTO public.bench SELECT g, g % 100, g / 7.0, md5(g::text), '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, $rows) g" \
    -c "VACUUM ANALYZE public.bench"

# True once the checkpoint at $1 has a position without snapshot progress: while snapshotting
# the agent checkpoints "<lsn> snapshot=<progress>", after the last chunk the LSN alone.
snapshot_done() {
  [ -f "$1" ] || return 1
  local text
  read -r -d '' text <"$1" || true
  [[ $text == *'"position":"'* && $text != *'snapshot='* ]]
}

declare -a bw aw ac ar bs as bound
for i in $(seq 1 "$repeats"); do
  s0=$(server_cpu)
  t0=$(now_ns)
  sql -c "COPY (SELECT * FROM public.bench ORDER BY id) TO STDOUT" >/dev/null
  bw+=("$(( $(now_ns) - t0 ))")
  s1=$(server_cpu)
  bs+=("$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.3f", b - a}')")

  run=$work/run$i
  mkdir -p "$run"
  chunk_line=
  [ -z "${BENCH_CHUNK_ROWS:-}" ] || chunk_line="    snapshot_chunk_rows: $BENCH_CHUNK_ROWS"
  cat >"$run/config.yaml" <<YAML
state_dir: $run/state
sources:
  - name: bench
    type: postgres
    dsn: "$dsn"
    tables: [public.bench]
    snapshot: initial
    slot: bench_slot_$i
    publication: bench_pub
$chunk_line
    sinks: [files]
sinks:
  - name: files
    type: file
    path: $run/out
YAML
  t0=$(now_ns)
  /usr/bin/time -f '%e %U %S %M' -o "$run/time" "$agent_bin" run --config "$run/config.yaml" 2>"$run/agent.log" &
  agent_pid=$!
  # The checkpoint is a small file: polling it costs nothing beside the agent. Counting the
  # files' lines while the agent ran took most of a core and finished up to a second after it.
  until snapshot_done "$run/state/bench/checkpoint.json"; do
    kill -0 "$agent_pid" 2>/dev/null || { cat "$run/agent.log" >&2; fail "the agent exited"; }
    nap 0.02
  done
  aw+=("$(( $(now_ns) - t0 ))")
  pkill -TERM -P "$agent_pid" || true
  wait "$agent_pid" || true
  agent_pid=
  s2=$(server_cpu)
  as+=("$(awk -v a="$s1" -v b="$s2" 'BEGIN{printf "%.3f", b - a}')")
  count_reset
  count_lines "$run/out/bench.public.bench"
  [ "$lines_now" -eq "$rows" ] || fail "the files hold $lines_now rows, expected $rows"
  read -r _ user sys rss < <(tail -n 1 "$run/time")
  ac+=("$(awk -v u="$user" -v s="$sys" -v n="$rows" 'BEGIN{printf "%.3f", (u+s)*1e6/n}')")
  ar+=("$rss")
  # Agent CPU from /usr/bin/time includes its start-up and shutdown, a few ms beyond the clock.
  bound+=("$(awk -v b="${bw[-1]}" -v u="$user" -v s="$sys" -v c="${as[-1]}" \
    'BEGIN{printf "%.3f", (b / 1e9) / ((u + s + c) / 2)}')")
  sql -c "SELECT pg_drop_replication_slot('bench_slot_$i')" >/dev/null
  rm -rf "$run/out"
done

b=$(median "${bw[@]}"); a=$(median "${aw[@]}")
echo "Initial snapshot of $rows rows vs COPY, medians of $repeats runs ($(nproc) cores)"
awk -v b="$b" -v a="$a" -v n="$rows" 'BEGIN{printf "  COPY:  %.2f s (%.0f rows/s)\n  agent: %.2f s (%.0f rows/s)\n  ratio: %.2fx (target >= 0.8)\n", b/1e9, n/(b/1e9), a/1e9, n/(a/1e9), b/a}'
echo "  agent CPU per million rows: $(median "${ac[@]}") s; peak RSS: $(( $(median "${ar[@]}") / 1024 )) MB"
echo "  server CPU: $(median "${bs[@]}") s for COPY, $(median "${as[@]}") s during the agent's run"
echo "  ratio with both cores busy throughout (agent + server CPU over 2 cores): $(median "${bound[@]}")x"
