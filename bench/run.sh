#!/usr/bin/env bash
# Measures the static release binary against the standalone fake Infisical on 127.0.0.1 and
# prints a table: binary size, idle sidecar memory, memory after ~1000 refreshes, CPU per
# refresh, `init` wall time and peak memory, requests per refresh. Exits 1 when a budget is
# broken, 2 when it cannot measure. See bench/README.md.
#
# Knobs (environment): BIN (the binary; default: the static release build), FAKE_INFISICAL
# (a built fake-infisical binary; default: build it in release), IDLE_SECONDS (30),
# CONFIG_IDLE_SECONDS (15), REFRESHES (1000), INIT_RUNS (20).
#
# `bench/run.sh --report [--quick] [--output FILE]` instead regenerates BENCHMARKS.md (or FILE)
# with bench/report.py: comparisons with a curl floor and the official Python SDK, memory up to
# 10,000 secrets, CPU per refresh, load on Infisical, capacity, a fleet, exec overhead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--report" ]; then
  shift
  exec python3 bench/report.py "$@"
fi

BIN=${BIN:-target/x86_64-unknown-linux-gnu/release/infisical-materializer}
IDLE_SECONDS=${IDLE_SECONDS:-30}
REFRESHES=${REFRESHES:-1000}
INIT_RUNS=${INIT_RUNS:-20}
CONFIG_IDLE_SECONDS=${CONFIG_IDLE_SECONDS:-15}

SIZE_BUDGET=5242880          # bytes (5 MiB)
RSS_BUDGET_KIB=5120          # 5 MiB
GROWTH_BUDGET_KIB=256        # RSS growth allowed over the refresh run ("flat")

die() { echo "bench: $*" >&2; exit 2; }
log() { echo "bench: $*" >&2; }

[ -x "$BIN" ] || die "no binary at $BIN: build it with 'make static'"
for tool in curl python3 awk; do
  command -v "$tool" >/dev/null || die "needs $tool"
done

if [ -z "${FAKE_INFISICAL:-}" ]; then
  log "building the fake Infisical (cargo build --release -p fake-infisical --bin fake-infisical)"
  cargo build --quiet --release -p fake-infisical --bin fake-infisical
  FAKE_INFISICAL=target/release/fake-infisical
fi
[ -x "$FAKE_INFISICAL" ] || die "no fake-infisical binary at $FAKE_INFISICAL"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- the fake server: prints KEY=value lines (URL and sample credentials), then serves.
fake_port=$(free_port)
"$FAKE_INFISICAL" --listen "127.0.0.1:$fake_port" >"$work/fake.out" 2>"$work/fake.err" &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q '^CLIENT_SECRET=' "$work/fake.out" 2>/dev/null && break
  sleep 0.1
done
value_of() { sed -n "s/^$1=//p" "$work/fake.out" | head -n1; }
api_url=$(value_of URL)
client_id=$(value_of CLIENT_ID)
client_secret=$(value_of CLIENT_SECRET)
project_id=$(value_of PROJECT_ID)
[ -n "$api_url" ] && [ -n "$client_id" ] && [ -n "$client_secret" ] && [ -n "$project_id" ] \
  || die "the fake did not print URL, CLIENT_ID, CLIENT_SECRET and PROJECT_ID:
$(cat "$work/fake.out" "$work/fake.err")"
printf '%s\n' "$client_secret" >"$work/client-secret"
chmod 0400 "$work/client-secret"

source_args=(--api-url "$api_url" --client-id "$client_id" --client-secret-file "$work/client-secret"
  --project-id "$project_id" --env dev)

# --- reading /proc and /metrics
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }   # time on CPU, nanoseconds
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# One /metrics snapshot → "REFRESHES LIST_REQUESTS LOGINS" (the client's own counters).
counters() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk '
    /^#/ { next }
    /^infisical_materializer_refreshes_total/ { r += $NF }
    /^infisical_materializer_requests_total[{]endpoint="list_secrets"/ { l += $NF }
    /^infisical_materializer_requests_total[{]endpoint="(universal_auth|kubernetes)_login"/ { g += $NF }
    END { print r + 0, l + 0, g + 0 }'
}
refreshes() { counters "$1" | awk '{ print $1 }'; }
# A snapshot taken between refreshes: two identical snapshots 30 ms apart (a refresh in flight
# has counted its request but not itself yet).
settled_counters() {
  local a b
  for _ in $(seq 1 100); do
    a=$(counters "$1"); sleep 0.03; b=$(counters "$1")
    [ "$a" = "$b" ] && break
  done
  echo "$b"
}
rss_median_of_5() { # 5 samples one second apart
  for _ in 1 2 3 4 5; do status_kib "$1" VmRSS; sleep 1; done | median
}

start_sidecar() { # start_sidecar NAME INTERVAL [ARGS…] → sets sidecar_pid, sidecar_port
  local name=$1 interval=$2
  shift 2
  local args=("$@")
  [ "${#args[@]}" -gt 0 ] || args=("${source_args[@]}" --out-dir "$work/$name")
  sidecar_port=$(free_port)
  "$BIN" sidecar "${args[@]}" --interval "$interval" --jitter 0 \
    --listen "127.0.0.1:$sidecar_port" --log-level warn 2>"$work/$name.log" &
  sidecar_pid=$!
  pids+=("$sidecar_pid")
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$sidecar_port/readyz" 2>/dev/null && return 0
    kill -0 "$sidecar_pid" 2>/dev/null || die "the sidecar exited: $(cat "$work/$name.log")"
    sleep 0.05
  done
  die "the sidecar never became ready: $(cat "$work/$name.log")"
}


# --- 1. size
size=$(stat -c %s "$BIN")

# --- 2. idle sidecar, --interval 1s
log "idle sidecar for ${IDLE_SECONDS}s (--interval 1s)"
start_sidecar idle 1s
idle_pid=$sidecar_pid idle_port=$sidecar_port
# The first fetch (login, list) is done; from here on only refreshes.
read -r idle_r0 idle_l0 idle_g0 < <(settled_counters "$idle_port")
idle_cpu0=$(cpu_ns "$idle_pid") idle_t0=$(date +%s%N)
sleep "$IDLE_SECONDS"
idle_rss=$(rss_median_of_5 "$idle_pid")
idle_hwm=$(status_kib "$idle_pid" VmHWM)
idle_cpu1=$(cpu_ns "$idle_pid") idle_t1=$(date +%s%N)
# CPU time / wall time, in millicores.
idle_millicores=$(awk -v c=$((idle_cpu1 - idle_cpu0)) -v t=$((idle_t1 - idle_t0)) 'BEGIN { printf "%.2f", 1000 * c / t }')
read -r idle_r1 idle_l1 idle_g1 < <(settled_counters "$idle_port")
kill "$idle_pid"; wait "$idle_pid" 2>/dev/null || true

# --- 2b. idle sidecar with a configuration file: two sources, two templates
log "idle sidecar with --config (two sources, two templates) for ${CONFIG_IDLE_SECONDS}s"
cat >"$work/config.yaml" <<YAML
api-url: $api_url
client-id: $client_id
client-secret-file: $work/client-secret
allow-empty: true
sources:
  - {project-id: $project_id, environment: dev, path: /}
  - {project-id: $project_id, environment: staging, path: /, prefix: STAGING_}
templates:
  - content: "{% for key, value in secrets|items %}{{ key }}={{ value|tojson }}\\n{% endfor %}"
    destination: $work/config-out/all.env
  - content: "{% for key in secrets %}{{ key }}\\n{% endfor %}"
    destination: $work/config-out/count.yaml
YAML
start_sidecar config 1s --config "$work/config.yaml"
config_pid=$sidecar_pid config_port=$sidecar_port
[ -s "$work/config-out/all.env" ] && [ -s "$work/config-out/count.yaml" ] \
  || die "the templates were not rendered: $(cat "$work/config.log")"
read -r config_r0 config_l0 _ < <(settled_counters "$config_port")
sleep "$CONFIG_IDLE_SECONDS"
config_rss=$(rss_median_of_5 "$config_pid")
read -r config_r1 config_l1 _ < <(settled_counters "$config_port")
kill "$config_pid"; wait "$config_pid" 2>/dev/null || true

# --- 3. ~REFRESHES refreshes at --interval 100ms: memory must stay flat
log "sidecar at --interval 100ms until $REFRESHES refreshes (~$((REFRESHES / 10))s)"
start_sidecar busy 100ms
busy_pid=$sidecar_pid busy_port=$sidecar_port
warm=$((REFRESHES / 10))
until [ "$(refreshes "$busy_port")" -ge "$warm" ]; do sleep 0.5; done
busy_rss_warm=$(rss_median_of_5 "$busy_pid")
read -r busy_r0 busy_l0 busy_g0 < <(settled_counters "$busy_port")
busy_cpu0=$(cpu_ns "$busy_pid")
deadline=$((SECONDS + REFRESHES / 5 + 60))
until [ "$(refreshes "$busy_port")" -ge "$REFRESHES" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "only $(refreshes "$busy_port") refreshes before the deadline"
  kill -0 "$busy_pid" 2>/dev/null || die "the sidecar exited: $(cat "$work/busy.log")"
  sleep 1
done
read -r busy_r1 busy_l1 busy_g1 < <(settled_counters "$busy_port")
busy_cpu1=$(cpu_ns "$busy_pid")
busy_rss=$(rss_median_of_5 "$busy_pid")
busy_hwm=$(status_kib "$busy_pid" VmHWM)
cpu_ms_per_refresh=$(awk -v c=$((busy_cpu1 - busy_cpu0)) -v n=$((busy_r1 - busy_r0)) \
  'BEGIN { printf "%.3f", n ? c / 1e6 / n : 0 }')
kill "$busy_pid"; wait "$busy_pid" 2>/dev/null || true
growth=$((busy_rss - busy_rss_warm))
busy_refreshes=$busy_r1

# --- 4. init: wall time (median of INIT_RUNS) and peak memory
log "init x $INIT_RUNS"
init_cmd=("$BIN" init "${source_args[@]}" --out-dir "$work/init" --log-level warn)
"${init_cmd[@]}" 2>"$work/init.log" || die "init failed: $(cat "$work/init.log")"
if command -v hyperfine >/dev/null; then
  timer="hyperfine"
  hyperfine --style none --shell=none --warmup 2 --runs "$INIT_RUNS" --export-json "$work/init.json" \
    "$(printf '%q ' "${init_cmd[@]}")" >/dev/null
  init_ms=$(python3 -c 'import json,sys; print("%.1f" % (1000 * json.load(open(sys.argv[1]))["results"][0]["median"]))' "$work/init.json")
else
  timer="date +%s%N loop"
  init_ms=$(for _ in $(seq 1 "$INIT_RUNS"); do
    start=$(date +%s%N); "${init_cmd[@]}" 2>/dev/null; end=$(date +%s%N)
    echo $(((end - start) / 1000))
  done | median | awk '{ printf "%.1f", $1 / 1000 }')
fi
# Peak RSS of one init run: GNU time's %M (a python wrapper would count its own pre-exec memory).
if [ -x /usr/bin/time ]; then
  init_peak=$(/usr/bin/time -f %M "${init_cmd[@]}" 2>&1 >/dev/null | tail -n1)
else
  init_peak=""
fi

# --- the table
failures=0
verdict=""
judge() { # judge CONDITION (awk syntax) → sets $verdict, counts failures
  if awk "BEGIN { exit !($1) }"; then verdict=ok; else verdict="OVER BUDGET"; failures=$((failures + 1)); fi
}
row() { printf '%-56s %26s %12s  %s\n' "$1" "$2" "$3" "$4"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f MiB", k / 1024 }'; }

echo
echo "infisical-materializer $("$BIN" --version | awk '{ print $2 }'), $(uname -m), $(nproc) cores; init timed with $timer"
row "figure" "value" "budget" ""
judge "$size <= $SIZE_BUDGET"
row "static binary size" "$size B = $(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB" "5 MiB" "$verdict"
judge "$idle_rss <= $RSS_BUDGET_KIB"
row "idle sidecar RSS, ${IDLE_SECONDS}s at --interval 1s (median of 5)" "$(mib "$idle_rss")" "5 MiB" "$verdict"
row "idle sidecar peak RSS (VmHWM)" "$(mib "$idle_hwm")" "" ""
row "idle sidecar CPU at --interval 1s" "$idle_millicores millicores" "" ""
judge "$config_rss <= $RSS_BUDGET_KIB"
row "idle sidecar RSS, --config: 2 sources, 2 templates" "$(mib "$config_rss")" "5 MiB" "$verdict"
judge "$((config_l1 - config_l0)) == 2 * $((config_r1 - config_r0)) && $((config_r1 - config_r0)) > 0"
row "list requests / refreshes (--config, 2 sources)" "$((config_l1 - config_l0)) / $((config_r1 - config_r0))" "2 per refresh" "$verdict"
row "RSS after $warm refreshes at --interval 100ms" "$(mib "$busy_rss_warm")" "" ""
judge "$busy_rss <= $RSS_BUDGET_KIB"
row "RSS after $busy_refreshes refreshes (median of 5)" "$(mib "$busy_rss")" "5 MiB" "$verdict"
judge "$growth <= $GROWTH_BUDGET_KIB"
row "RSS growth from refresh $warm to $busy_refreshes" "$growth KiB" "$GROWTH_BUDGET_KIB KiB" "$verdict"
row "peak RSS of the refresh run (VmHWM)" "$(mib "$busy_hwm")" "" ""
row "CPU time per refresh" "$cpu_ms_per_refresh ms" "" ""
row "first fetch: logins, list requests (idle run)" "$idle_g0, $idle_l0" "" ""
judge "$((idle_l1 - idle_l0)) == $((idle_r1 - idle_r0)) && $((idle_r1 - idle_r0)) > 0"
row "list requests / refreshes after it (idle run)" "$((idle_l1 - idle_l0)) / $((idle_r1 - idle_r0))" "exactly 1" "$verdict"
judge "$((busy_l1 - busy_l0)) == $((busy_r1 - busy_r0)) && $((busy_r1 - busy_r0)) > 0"
row "list requests / refreshes (refresh run)" "$((busy_l1 - busy_l0)) / $((busy_r1 - busy_r0))" "exactly 1" "$verdict"
judge "$idle_g1 == $idle_g0 && $busy_g1 == $busy_g0"
row "logins during refreshes (idle run, refresh run)" "$((idle_g1 - idle_g0)), $((busy_g1 - busy_g0))" "0" "$verdict"
row "init wall time (median of $INIT_RUNS)" "$init_ms ms" "" ""
if [ -n "$init_peak" ]; then
  row "init peak RSS (GNU time %M)" "$(mib "$init_peak")" "" ""
else
  row "init peak RSS" "n/a (no /usr/bin/time)" "" ""
fi
echo

if [ "$failures" -gt 0 ]; then
  echo "bench: $failures budget(s) broken" >&2
  exit 1
fi
echo "bench: every budget met"
