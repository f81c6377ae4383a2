#!/usr/bin/env bash
# The import at national scale, every figure next to the calamine floor measured in the same
# run: reading the corpus with calamine alone, a dry run, and imports into SQLite (and
# PostgreSQL when PG_URL names an empty database), with wall time and peak RSS (the process
# and its parse workers).
#
#   bench/import.sh [CORPUS_DIR]      # default /tmp/kpi-corpus, generated when missing
#   PG_URL=postgres://postgres@127.0.0.1:5432/import_bench bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-/tmp/kpi-corpus}
cargo build --release -q -p kpi-import -p kpi-loadgen
bin=target/release
if [ ! -d "$corpus/reports" ]; then
    "$bin/kpi-loadgen" dataset --out "$corpus" --years 1 >/dev/null
fi
files=$(find "$corpus/reports" -name '*.xlsx' | wc -l)
measure() {  # label, command...
    local label=$1; shift
    /usr/bin/time -f '%e %M' -o /tmp/kpi-bench-time "$@" >/dev/null 2>&1 || true
    read -r seconds kib </tmp/kpi-bench-time
    printf '%-34s %8.2f s  %6.1f× floor  %7.1f MiB peak\n' "$label" "$seconds" \
        "$(echo "$seconds / $floor" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
}
start=$(date +%s.%N)
"$bin/kpi-loadgen" floor "$corpus/reports" >/dev/null
floor=$(echo "$(date +%s.%N) - $start" | bc -l)
printf '%s files; calamine floor %.2f s\n' "$files" "$floor"
empty=$(mktemp -d)
fresh_sqlite() {
    rm -f "$corpus"/bench.db*
    "$bin/kpi-import" --catalog "$corpus/catalog.toml" import "$empty" \
        --database-url "sqlite://$corpus/bench.db?mode=rwc" >/dev/null 2>&1 || true
}
fresh_sqlite
measure "dry run, --jobs 1" "$bin/kpi-import" --catalog "$corpus/catalog.toml" import "$corpus/reports" \
    --dry-run --jobs 1 --database-url "sqlite://$corpus/bench.db?mode=rwc"
measure "import to SQLite, --jobs 1" "$bin/kpi-import" --catalog "$corpus/catalog.toml" import "$corpus/reports" \
    --jobs 1 --database-url "sqlite://$corpus/bench.db?mode=rwc"
fresh_sqlite
measure "import to SQLite, --jobs 2" "$bin/kpi-import" --catalog "$corpus/catalog.toml" import "$corpus/reports" \
    --jobs 2 --database-url "sqlite://$corpus/bench.db?mode=rwc"
if [ -n "${PG_URL:-}" ]; then
    "$bin/kpi-import" --catalog "$corpus/catalog.toml" import "$empty" --database-url "$PG_URL" >/dev/null 2>&1 || true
    measure "import to PostgreSQL, --jobs 1" "$bin/kpi-import" --catalog "$corpus/catalog.toml" import \
        "$corpus/reports" --jobs 1 --database-url "$PG_URL"
fi
rmdir "$empty"
