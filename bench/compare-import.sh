#!/usr/bin/env bash
# Two builds of kpi-import on the same corpus, alternating, each round after a calamine floor:
# on a machine whose timings wander from run to run, the medians of a few rounds, each next
# to the median floor, compare two versions where one run of each would not.
#
#   bench/compare-import.sh BEFORE_BIN AFTER_BIN [ROUNDS] [MODE] [CORPUS_DIR]
#     MODE: dry (default; --dry-run --jobs 1), j1 or j2 (import to SQLite with --jobs 1 or 2,
#     each run into a fresh copy of a database that already holds the catalog)
#
# A build of an earlier commit, for BEFORE_BIN:
#   git worktree add /tmp/before COMMIT && (cd /tmp/before && cargo build --release -p kpi-import)
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 rounds=${3:-4} mode=${4:-dry} corpus=${5:-/tmp/kpi-corpus}
case $mode in
    dry) args=(--jobs 1 --dry-run) ;;
    j1) args=(--jobs 1) ;;
    j2) args=(--jobs 2) ;;
    *) echo "MODE must be dry, j1 or j2" >&2; exit 2 ;;
esac
cargo build --release -q -p kpi-loadgen
loadgen=target/release/kpi-loadgen
if [ ! -d "$corpus/reports" ]; then
    "$loadgen" dataset --out "$corpus" --years 1 >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The database every run starts from: the catalog loaded, checkpointed into one file.
mkdir "$work/empty"
"$after" --catalog "$corpus/catalog.toml" import "$work/empty" \
    --database-url "sqlite://$work/template.db?mode=rwc" >/dev/null 2>&1
python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')" \
    "$work/template.db"
floors=() befores=() afters=()
run() {  # binary → "seconds KiB"
    rm -f "$work"/run.db*
    cp "$work/template.db" "$work/run.db"
    /usr/bin/time -f '%e %M' -o "$work/time" "$1" --catalog "$corpus/catalog.toml" import "$corpus/reports" \
        --database-url "sqlite://$work/run.db?mode=rwc" "${args[@]}" >/dev/null 2>&1 || true
    tail -n 1 "$work/time"
}
for round in $(seq 1 "$rounds"); do
    floors+=("$("$loadgen" floor "$corpus/reports" | sed -E 's/.* in ([0-9.]+) s$/\1/')")
    befores+=("$(run "$before")")
    afters+=("$(run "$after")")
    echo "round $round: floor ${floors[-1]} s, before ${befores[-1]% *} s, after ${afters[-1]% *} s" >&2
done
python3 - "$mode" "${floors[*]}" "$(printf '%s,' "${befores[@]}")" "$(printf '%s,' "${afters[@]}")" <<'PY'
import statistics, sys
mode, floors = sys.argv[1], [float(x) for x in sys.argv[2].split()]
floor = statistics.median(floors)
print(f"{mode}: floor median {floor:.2f} s ({min(floors):.2f}–{max(floors):.2f})")
for name, runs in (("before", sys.argv[3]), ("after", sys.argv[4])):
    pairs = [run.split() for run in runs.strip(",").split(",")]
    seconds = [float(s) for s, _ in pairs]
    mib = [int(k) / 1024 for _, k in pairs]
    median = statistics.median(seconds)
    print(f"{name:>6}: median {median:.2f} s = {median / floor:.2f}× floor "
          f"(runs {' '.join(f'{s:.2f}' for s in seconds)}), peak RSS {min(mib):.0f}–{max(mib):.0f} MiB")
PY
