#!/usr/bin/env bash
# Benchmark: one large PostgreSQL transaction into files, with the source's `streaming` on
# (pgoutput proto_version 2: the server streams the transaction while it is in progress, the
# agent spools it) and off (proto_version 1: the server decodes it whole, spilling past
# logical_decoding_work_mem, and sends it at commit).
#
#   tests/bench/pg_streaming.sh
#
# Two ways, each BENCH_REPEATS times per mode (default 3), medians:
#   live:  the agent runs, then the transaction executes; seconds from the INSERT's start until
#          the files hold every row. This is what streaming can shorten: the server decodes
#          while the transaction runs.
#   after: the transaction's WAL exists before the agent starts (a copy of a slot created before
#          it); seconds from the agent's start until the files hold every row.
# Peak RSS of the agent from /usr/bin/time. PostgreSQL keeps its defaults
# (logical_decoding_work_mem = 64MB).
#
# Environment:
#   TRIBUTARY_BIN        agent binary to use (default: build it into build/bench)
#   BENCH_INSERT_ROWS    rows inserted by the transaction (default 1000000)
#   BENCH_REPEATS        runs per mode and way (default 3)
#   BENCH_TIMEOUT        seconds a run may take to deliver every row (default 600)
set -Eeuo pipefail
trap 'echo "pg_streaming: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/../.."

bench_name=pg_streaming
# shellcheck source=tests/bench/lib.sh
source tests/bench/lib.sh
[ $# -eq 0 ] || { sed -n '2,/^set -E/p' "$0" | sed '$d'; exit 2; }

rows=${BENCH_INSERT_ROWS:-1000000}
repeats=${BENCH_REPEATS:-3}
timeout_s=${BENCH_TIMEOUT:-600}
find_agent

work=$(mktemp -d /tmp/tributary-bench-XXXXXX)
chmod 755 "$work"
child_pid=
cleanup() {
  local status=$?
  trap - ERR
  stop_child
  stop_pg
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg
sql -c "CREATE TABLE public.bench (id int PRIMARY KEY, qty int, note text)" \
    -c "CREATE PUBLICATION bench_pub FOR TABLE public.bench"
insert_sql="INSERT INTO public.bench SELECT g, g % 1000, md5(g::text) || lpad(g::text, 8, '0')
            FROM generate_series(1, $rows) g"

# Starts the agent on `slot` with streaming on or off; sets child_pid and topic.
start_agent() {  # dir slot streaming
  local dir=$1 slot=$2 streaming=$3
  mkdir -p "$dir"
  cat >"$dir/tributary.yaml" <<YAML
state_dir: $dir/state
log: { level: info }
sources:
  - name: bench
    type: postgres
    dsn: "$dsn"
    tables: [public.bench]
    snapshot: never
    slot: $slot
    publication: bench_pub
    streaming: $streaming
    sinks: [files]
sinks:
  - name: files
    type: file
    path: $dir/out
YAML
  topic=$dir/out/bench.public.bench
  count_reset
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" \
    "$agent_bin" run --config "$dir/tributary.yaml" 2>"$dir/agent.log" &
  child_pid=$!
}

# Waits until the topic holds `rows` lines, stops the agent; sets result_done_ns, result_rss_kb.
finish_agent() {  # dir t0
  local dir=$1 t0=$2 deadline agent_pid status=0
  deadline=$(( t0 + timeout_s * 1000000000 ))
  while :; do
    count_lines "$topic"
    [ "$lines_now" -lt "$rows" ] || break
    kill -0 "$child_pid" 2>/dev/null || { tail -n 30 "$dir/agent.log" >&2; fail "the agent exited"; }
    [ "$(now_ns)" -le "$deadline" ] || fail "only $lines_now of $rows rows in ${timeout_s}s"
    sleep 0.05
  done
  result_done_ns=$(now_ns)
  agent_pid=$(pgrep -P "$child_pid" | head -n 1)
  kill -TERM "$agent_pid"
  wait "$child_pid" || status=$?
  child_pid=
  [ "$status" -eq 0 ] || fail "the agent exited with status $status"
  count_lines "$topic"
  [ "$lines_now" -eq "$rows" ] || fail "$lines_now lines, expected $rows"
  result_rss_kb=$(tail -n 1 "$dir/time" | cut -d' ' -f4)
}

declare -A secs rss
run_live() {  # mode streaming i
  local mode=$1 streaming=$2 i=$3 dir=$work/run/live-$1-$3 t0
  sql -c "TRUNCATE public.bench"
  start_agent "$dir" "live_${mode}_$i" "$streaming"
  # The agent creates its slot; wait until it streams.
  until [ "$(sql -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'live_${mode}_$i' AND active")" = 1 ]; do
    sleep 0.05
  done
  t0=$(now_ns)
  sql -c "$insert_sql"
  finish_agent "$dir" "$t0"
  secs[live-$mode]+="$(awk -v a="$t0" -v b="$result_done_ns" 'BEGIN{printf "%.3f", (b-a)/1e9}') "
  rss[live-$mode]+="$result_rss_kb "
  sql -c "SELECT pg_drop_replication_slot('live_${mode}_$i')" >/dev/null
  rm -rf "$dir"
}

run_after() {  # mode streaming i
  local mode=$1 streaming=$2 i=$3 dir=$work/run/after-$1-$3 t0
  sql -c "SELECT pg_copy_logical_replication_slot('after_src', 'after_${mode}_$i')" >/dev/null
  t0=$(now_ns)
  start_agent "$dir" "after_${mode}_$i" "$streaming"
  finish_agent "$dir" "$t0"
  secs[after-$mode]+="$(awk -v a="$t0" -v b="$result_done_ns" 'BEGIN{printf "%.3f", (b-a)/1e9}') "
  rss[after-$mode]+="$result_rss_kb "
  sql -c "SELECT pg_drop_replication_slot('after_${mode}_$i')" >/dev/null
  rm -rf "$dir"
}

for i in $(seq "$repeats"); do
  run_live on true "$i"; log "live on run $i: ${secs[live-on]}"
  run_live off false "$i"; log "live off run $i: ${secs[live-off]}"
done
sql -c "TRUNCATE public.bench"
sql -c "SELECT pg_create_logical_replication_slot('after_src', 'pgoutput')" >/dev/null
sql -c "$insert_sql"
for i in $(seq "$repeats"); do
  run_after on true "$i"; log "after on run $i: ${secs[after-on]}"
  run_after off false "$i"; log "after off run $i: ${secs[after-off]}"
done

echo
echo "$rows-row transaction into files, medians of $repeats runs ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-6s %-10s %9s %10s %12s  %s\n' way streaming seconds rows/s peak_RSS_MB "all runs (s)"
for key in live-on live-off after-on after-off; do
  # shellcheck disable=SC2086
  s=$(median ${secs[$key]}); r=$(median ${rss[$key]})
  printf '%-6s %-10s %9.2f %10.0f %12.1f  %s\n' "${key%-*}" "${key#*-}" "$s" \
    "$(awk -v n="$rows" -v s="$s" 'BEGIN{print n/s}')" "$(awk -v k="$r" 'BEGIN{print k/1024}')" "${secs[$key]}"
done
