# Shared by the benchmark scripts; sourced from the repository root after `bench_name` is set.

fail() { echo "$bench_name: FAILED: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
now_ns() { date +%s%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# PostgreSQL refuses to run as root.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

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

# Sets port: a free TCP port on 127.0.0.1.
find_free_port() {
  port=
  local candidate
  for candidate in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; return; fi
  done
  fail "no free loopback port found"
}
