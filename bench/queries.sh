#!/usr/bin/env bash
# Times the service's queries through a running release server, one call at a time, each
# scenario against the grpc.health Check floor measured the same way (kpi-loadgen).
#
#   bench/queries.sh DATABASE_URL CATALOG [UNIT] [COMMUNE] [YEAR] [FIRST_YEAR]
#
# The national set:  kpi-loadgen dataset --out /tmp/nat --years 10 --database-url URL
#   bench/queries.sh 'sqlite:///tmp/nat/kpi.db?mode=rwc' /tmp/nat/catalog.toml VN P07D03C05 2025 2016
# The samples:       kpi-import import ../shared/samples --database-url URL
#   bench/queries.sh 'sqlite:///tmp/samples.db?mode=rwc' '' PACNAM BOCBO 2022 2021
set -euo pipefail
cd "$(dirname "$0")/.."
url=$1 catalog=${2:-} unit=${3:-VN} commune=${4:-P07D03C05} year=${5:-2025} first=${6:-2016}
calls=${CALLS:-2000}
cargo build --release -q -p kpi-server -p kpi-loadgen
port=$((50100 + RANDOM % 500))
args=(--listen "127.0.0.1:$port" --database-url "$url")
[ -n "$catalog" ] && args+=(--catalog "$catalog")
target/release/kpi-server "${args[@]}" >/tmp/kpi-bench-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do grep -q "kpi-server ready" /tmp/kpi-bench-server.log && break; sleep 0.3; done
run() {
    echo "== $*"
    target/release/kpi-loadgen run --addr "http://127.0.0.1:$port" --calls "$calls" --server-pid "$server" "$@" \
        | grep -v '^note:' || true
}
run --scenario kpi --unit "$unit" --indicator B05 --period "$year"
run --scenario kpi --unit "$commune" --indicator B05 --period "$year"
run --scenario scorecard --unit "$unit" --period "$year"
run --scenario ranking --unit "$unit" --indicator B05 --period "$year"
run --scenario trend --unit "$unit" --indicator B05 --from-period "$first" --period "$year"
run --scenario completeness --unit "$unit" --period "$year"
