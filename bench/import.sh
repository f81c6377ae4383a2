#!/usr/bin/env bash
# The import at national scale, every figure next to the calamine floor measured in the same
# run: reading the corpus with calamine alone, a dry run, and imports into SQLite (and
# PostgreSQL when PG_URL names an empty database), with wall time and peak RSS (the process
# and its parse workers).
#
#   bench/import.sh [CORPUS_DIR]      # default /tmp/kpi-corpus, generated when missing
#   PG_URL=postgres://postgres@127.0.0.1:5432/import_bench bench/import.sh
#   PANDAS=1 bench/import.sh          # also bench/pandas_import.py against kpi-import --jobs 1 on the
#   PANDAS_FILES=200 bench/import.sh  # first 1000 (or PANDAS_FILES) .xlsx files (pip install pandas openpyxl)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-/tmp/kpi-corpus}
pandas_files=${PANDAS_FILES:-}
if [ -z "$pandas_files" ] && [ "${PANDAS:-}" = 1 ]; then
    pandas_files=1000
fi
if [ -n "$pandas_files" ]; then
    case $pandas_files in
        *[!0-9]* | 0) echo "PANDAS_FILES must be a positive number of files" >&2; exit 2 ;;
    esac
    python3 -c 'import pandas, openpyxl' || { echo "PANDAS needs: pip install pandas openpyxl" >&2; exit 2; }
fi
cargo build --release -q -p kpi-import -p kpi-loadgen
bin=target/release
if [ ! -d "$corpus/reports" ]; then
    "$bin/kpi-loadgen" dataset --out "$corpus" --years 1 >/dev/null
fi
files=$(find "$corpus/reports" -name '*.xlsx' | wc -l)
measure() {  # label, command...
    local label=$1; shift
    /usr/bin/time -f '%e %M' -o /tmp/kpi-bench-time "$@" >/dev/null 2>&1 || true
    # A command that exits non-zero (a rejected file) makes time write a line before its figures.
    read -r seconds kib < <(tail -n 1 /tmp/kpi-bench-time)
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
if [ -n "$pandas_files" ]; then
    # The same first N files (sorted, relative paths kept) for both importers, in a folder of their own.
    subset=$(mktemp -d)
    find "$corpus/reports" -name '*.xlsx' | LC_ALL=C sort | awk -v n="$pandas_files" 'NR <= n' |
        while IFS= read -r file; do
            relative=${file#"$corpus/reports/"}
            mkdir -p "$subset/$(dirname "$relative")"
            cp "$file" "$subset/$relative"
        done
    subset_files=$(find "$subset" -name '*.xlsx' | wc -l)
    timed() {  # command...: sets seconds and kib; the command's output goes to /tmp/kpi-bench-out
        /usr/bin/time -f '%e %M' -o /tmp/kpi-bench-time "$@" >/tmp/kpi-bench-out 2>&1 || true
        read -r seconds kib < <(tail -n 1 /tmp/kpi-bench-time)
    }
    fresh_sqlite
    timed "$bin/kpi-import" --catalog "$corpus/catalog.toml" import "$subset" \
        --jobs 1 --database-url "sqlite://$corpus/bench.db?mode=rwc"
    kpi_seconds=$seconds
    printf '%-34s %8.2f s  %6.1f× kpi-import  %7.1f MiB peak\n' "kpi-import, $subset_files files, --jobs 1" \
        "$kpi_seconds" 1 "$(echo "$kib / 1024" | bc -l)"
    rm -f "$corpus"/pandas.db*
    timed python3 bench/pandas_import.py --quiet "$corpus/catalog.toml" "$subset" "$corpus/pandas.db"
    if [ "$(echo "$kpi_seconds > 0" | bc)" = 1 ]; then
        ratio=$(echo "$seconds / $kpi_seconds" | bc -l)
    else
        ratio=0
    fi
    printf '%-34s %8.2f s  %6.1f× kpi-import  %7.1f MiB peak\n' "pandas + openpyxl, $subset_files files" \
        "$seconds" "$ratio" "$(echo "$kib / 1024" | bc -l)"
    printf '    pandas: %s\n' "$(tail -n 1 /tmp/kpi-bench-out)"
    rm -rf "$subset"
fi
rmdir "$empty"
