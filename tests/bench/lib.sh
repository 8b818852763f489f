# Shared by the benchmark scripts; sourced from the repository root after `bench_name` is set.

fail() { echo "$bench_name: FAILED: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
now_ns() { date +%s%N; }
# Sleeps $1 seconds without starting a process: polling with `sleep` every 20 ms took 8% of a core
# from the run being measured. The read times out (status > 128) on a pipe this shell holds both
# ends of, opened here, before any timed run; anything else is a failure, not a short nap.
exec {nap_fd}<> <(:)
nap() {
  local status=0
  read -r -t "$1" -u "$nap_fd" || status=$?
  (( status > 128 )) || fail "nap $1: read returned $status"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# PostgreSQL refuses to run as root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Sets json_out from the script's arguments, `[--json FILE]`; --help prints the script's header
# comment.
parse_json_arg() {
  json_out=
  while [ $# -gt 0 ]; do
    case "$1" in
      --json) [ $# -ge 2 ] || { echo "$bench_name: --json needs a FILE" >&2; exit 2; }
              json_out=$2; shift 2 ;;
      --json=*) json_out=${1#--json=}; shift ;;
      -h|--help) sed -n '2,/^set -E/p' "$0" | sed '$d'; exit 0 ;;
      *) echo "$bench_name: unknown argument $1 (usage: $0 [--json FILE])" >&2; exit 2 ;;
    esac
  done
  [ -z "$json_out" ] || case "$json_out" in /*) ;; *) json_out="$PWD/$json_out" ;; esac
}

# Sets agent_bin: $TRIBUTARY_BIN, or the agent built into build/bench.
find_agent() {
  if [ -n "${TRIBUTARY_BIN:-}" ]; then
    agent_bin=$TRIBUTARY_BIN
  else
    log "Building the agent into build/bench"
    cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIBUTARY_TESTS=OFF >/dev/null
    ninja -C build/bench tributary >/dev/null
    agent_bin=$PWD/build/bench/tributary
  fi
  [ -x "$agent_bin" ] || fail "agent binary $agent_bin is missing or not executable"
}

# Sets mock_kafka_bin and bare_producer_bin: $TRIBUTARY_MOCK_KAFKA_BIN and
# $TRIBUTARY_BARE_PRODUCER_BIN, or both built into build/bench-tools (tests/tools).
find_kafka_tools() {
  mock_kafka_bin=${TRIBUTARY_MOCK_KAFKA_BIN:-}
  bare_producer_bin=${TRIBUTARY_BARE_PRODUCER_BIN:-}
  if [ -z "$mock_kafka_bin" ] || [ -z "$bare_producer_bin" ]; then
    log "Building the Kafka tools into build/bench-tools"
    cmake -S . -B build/bench-tools -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    ninja -C build/bench-tools tributary_mock_kafka tributary_bare_producer >/dev/null
    mock_kafka_bin=${mock_kafka_bin:-$PWD/build/bench-tools/tests/tributary_mock_kafka}
    bare_producer_bin=${bare_producer_bin:-$PWD/build/bench-tools/tests/tributary_bare_producer}
  fi
  [ -x "$mock_kafka_bin" ] || fail "mock cluster binary $mock_kafka_bin is missing"
  [ -x "$bare_producer_bin" ] || fail "bare producer binary $bare_producer_bin is missing"
}

# Newlines in a file sink's topic directory so far, counted incrementally: segments only grow,
# and a segment keeps its number when it is renamed from .N.jsonl.inprogress to N.jsonl. Sets
# lines_now; runs in this shell (not in $(...)) so that the counts carry over between polls.
declare -A counted_bytes counted_lines
lines_now=0
count_reset() { counted_bytes=(); counted_lines=(); lines_now=0; }
count_lines() {
  local dir=$1 total=0 f seg size have chunk
  shopt -s nullglob dotglob
  local files=("$dir"/*.jsonl "$dir"/.*.jsonl.inprogress)
  shopt -u nullglob dotglob
  for f in "${files[@]}"; do
    seg=${f##*/}; seg=${seg#.}; seg=${seg%%.*}
    size=$(stat -c %s "$f" 2>/dev/null) || continue   # renamed between glob and stat
    have=${counted_bytes[$seg]:-0}
    if [ "$size" -gt "$have" ]; then
      # The segment may be renamed after the stat: count it again, under its new name, next time.
      chunk=$(dd if="$f" iflag=skip_bytes,count_bytes skip="$have" count=$((size - have)) \
                status=none 2>/dev/null | wc -l || exit 1) || continue
      counted_lines[$seg]=$(( ${counted_lines[$seg]:-0} + chunk ))
      counted_bytes[$seg]=$size
    fi
  done
  for seg in "${!counted_lines[@]}"; do total=$((total + counted_lines[$seg])); done
  lines_now=$total
}

# Sets port: a free TCP port on 127.0.0.1.
find_free_port() {
  port=
  local candidate
  for candidate in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; return; fi
  done
  fail "no free loopback port found"
}

# A throwaway PostgreSQL 15 in $work/pg on a free loopback port, logical decoding on. Sets port
# and dsn; sql runs psql against it. stop_pg (for the EXIT trap) stops it, if it runs.
pgbin=/usr/lib/postgresql/15/bin
start_pg() {
  find_free_port
  log "Starting a throwaway PostgreSQL 15 on 127.0.0.1:$port ($work)"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$work"
  as_pg "$pgbin/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start -o \
    "-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c wal_level=logical -c max_replication_slots=16 -c max_wal_senders=16" \
    >/dev/null || { cat "$work/pg.log" >&2; fail "PostgreSQL did not start"; }
  dsn="host=127.0.0.1 port=$port dbname=postgres user=postgres"
}
sql() { command psql -X -q -v ON_ERROR_STOP=1 -tA -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
stop_pg() { as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true; }
# CPU seconds (user + system) of the server's backends and walsenders that have exited: the
# postmaster's reaped children. Waits for those of the client that just disconnected first.
server_cpu() {
  local pm i
  pm=$(head -n 1 "$work/pg/postmaster.pid")
  for i in $(seq 1 200); do
    pgrep -P "$pm" -f '^postgres: (walsender )?postgres ' >/dev/null || break
    nap 0.01
  done
  nap 0.05  # the postmaster reaps them on SIGCHLD
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($16 + $17) / hz}' "/proc/$pm/stat"
}

# For the EXIT trap: ends the contender /usr/bin/time runs as $child_pid (SIGTERM to its child,
# the measured process, then to time itself), if one runs.
stop_child() {
  [ -n "${child_pid:-}" ] || return 0
  local p
  for p in $(pgrep -P "$child_pid"); do kill -TERM "$p" 2>/dev/null || true; done
  kill "$child_pid" 2>/dev/null || true
  wait "$child_pid" 2>/dev/null || true
}
