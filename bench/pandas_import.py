"""A pandas + openpyxl importer: the baseline kpi-import is timed against (issue #8, bench/import.sh).
Not part of the product.

    python3 bench/pandas_import.py CATALOG.toml REPORTS_DIR DB_FILE [--limit N] [--quiet]

Per .xlsx under REPORTS_DIR (recursive, sorted; .xls/.ods/... are counted and skipped), simply the
work docs/report-format.md asks of kpi-import: pandas.read_excel (openpyxl) of every sheet; the
first `Mã chỉ tiêu` header, the metadata above it (`Mã đơn vị`, `Kỳ báo cáo`), the `Tử số`/`Mẫu
số`/`Giá trị` columns (also one row down); every row checked against the catalog TOML (known unit
and codes, no duplicates, whole counts >= 0, percents 0-100, 0 <= numerator <= denominator > 0
agreeing with the value cell, Vietnamese text numbers, `-`/`x`) and its rules on the file's own
figures. A file with an error stores nothing; an accepted one is one SQLite transaction (a
`revisions` row and its `vals`); the same bytes again are "unchanged". Not done: children() rules,
outliers (they need stored data), the batch's "ambiguous" check; pandas reads error cells
(#DIV/0!) and formulas without a saved result as empty cells, so those are not rejected.
"""
import argparse, hashlib, math, re, sqlite3, sys, time, tomllib, unicodedata
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

VALUE_LABELS = {"gia tri", "so lieu", "ket qua", "so luong"}
FIELDS = {"ma don vi": "unit", "ky bao cao": "period", "don vi": "name", "ten don vi": "name",
          "nguoi lap": "by", "nguoi lap bieu": "by", "ngay lap": "on", "ngay lap bieu": "on"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
NOT_APPLICABLE = {"-", "–", "—", "x", "X"}
TOLERANCE = 0.05 + 1e-9  # percentage points between a ratio's value cell and its parts
SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (id INTEGER PRIMARY KEY, file TEXT NOT NULL, sha256 TEXT NOT NULL,
    unit TEXT NOT NULL, period TEXT NOT NULL, revision INTEGER NOT NULL, prepared_by TEXT,
    warnings INTEGER NOT NULL, imported_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS revisions_key ON revisions (unit, period);
CREATE TABLE IF NOT EXISTS vals (revision_id INTEGER NOT NULL REFERENCES revisions (id),
    indicator TEXT NOT NULL, component TEXT NOT NULL, value REAL NOT NULL);
"""


def blank(v):
    if isinstance(v, str):
        return not v.strip()
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def label(text):
    """Lower case, no Vietnamese diacritics, spaces collapsed, no trailing ':' or '(...)'."""
    folded = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    s = " ".join("".join(c for c in folded if not unicodedata.combining(c)).split()).removesuffix(":").rstrip()
    m = re.fullmatch(r"(.+?)\s*\([^()]*\)", s)
    return m.group(1).removesuffix(":").rstrip() if m else s


def display(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return "" if blank(v) else str(v).strip()


def text_number(text):
    """Vietnamese convention: '.' groups thousands, ',' is the decimal mark; -> (value, percent)."""
    s = re.sub(r"[\s\u00a0\u202f]", "", text)
    percent, s = s.endswith("%"), s.removesuffix("%")
    if not re.fullmatch(r"[+-]?[0-9.,]+", s):
        return None
    negative, body = s.startswith("-"), s[1:] if s[:1] in "+-" else s
    ungroup = lambda t: None if not t.split(".")[0] or ("." in t and len(t.split(".")[0]) > 3) or any(
        len(g) != 3 for g in t.split(".")[1:]) else t.replace(".", "")
    if "," in body:
        whole, fraction = body.split(",", 1)
        whole = ungroup(whole)
        if whole is None or not fraction.isdigit():
            return None
    elif (whole := ungroup(body)) is not None:
        fraction = None
    else:  # a single dot that does not group three digits is a decimal point
        whole, _, fraction = body.partition(".")
        if not whole or not fraction or "." in fraction:
            return None
    value = float(whole + ("." + fraction if fraction else ""))
    return (-value if negative else value), percent


def classify(v):
    """('empty'|'na'|'num'|'bad'|'error', value, percent) for a numerator, denominator or value cell."""
    if blank(v):
        return ("empty", None, False)
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return ("bad", str(v).upper(), False)
    if isinstance(v, datetime):  # a date-formatted number: its serial
        return ("num", (pd.Timestamp(v) - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1), False)
    if isinstance(v, (int, float)) or hasattr(v, "dtype"):
        return ("num", float(v), False) if math.isfinite(float(v)) else ("bad", str(v), False)
    t = str(v).strip().removeprefix("'").strip()
    if t in NOT_APPLICABLE:
        return ("na", None, False)
    n = text_number(t)
    return ("num", *n) if n else ("error" if t.startswith("#") else "bad", t, False)


def period_of(v):
    """The canonical period code (2022, 2023S1, 2023Q2, 2023-03) of a `Kỳ báo cáo` value, or None."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and 1990 <= v <= 2100:
        return str(int(v))
    if m := re.fullmatch(r"(\d{4})([Ss][12]|[Qq][1-4]|-(?:0[1-9]|1[0-2]))?", display(v)):
        return m.group(1) + (m.group(2) or "").upper()
    s, y = label(display(v)).replace(" / ", "/").replace("- ", "-"), r"(199\d|20\d\d|2100)"
    q = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "1": "1", "2": "2", "3": "3", "4": "4"}
    for pattern, code in ((r"nam " + y, lambda m: m[1]), (r"6 thang (?:dau nam |nam )?" + y, lambda m: m[1] + "S1"),
                          (r"6 thang cuoi nam " + y, lambda m: m[1] + "S2"),
                          (r"(?:quy |q)(i|ii|iii|iv|0?[1-4])/" + y, lambda m: f"{m[2]}Q{q[m[1].lstrip('0')]}"),
                          (r"(?:thang )?(0?[1-9]|1[0-2])/" + y, lambda m: f"{m[2]}-{int(m[1]):02}")):
        if m := re.fullmatch(pattern, s):
            return code(m)
    return None


def is_numbering_row(row):
    ok = lambda v: (isinstance(v, (int, float)) and float(v).is_integer() and 0 <= v <= 100) or (
        isinstance(v, str) and re.search(r"\d", v) and re.fullmatch(r"[0-9()\[\]=/+\-*x×:. ]+", v.strip()))
    cells = [v for v in row if not blank(v)]
    return bool(cells) and all(ok(v) for v in cells)


def parse(sheets, catalog):
    """-> (unit, period, prepared_by, values [(indicator, component, number)], warnings, errors)."""
    found = next(((rows, r, c) for rows in sheets for r, row in enumerate(rows) for c, v in enumerate(row)
                  if isinstance(v, str) and label(v) == "ma chi tieu"), None)
    if found is None:
        return None, None, None, [], 0, ["no sheet has a 'Mã chỉ tiêu' header"]
    rows, header, code_col = found
    errors, warnings, meta, cols = [], 0, {}, {}
    for row in rows[:header]:  # label, value pairs: `Mã đơn vị: | X` or `Mã đơn vị: X`
        cells = [v for v in row if not blank(v)]
        for i, v in enumerate(cells):
            if isinstance(v, str) and (field := FIELDS.get(label(v))):
                meta.setdefault(field, cells[i + 1] if i + 1 < len(cells) else "")
                break
            if isinstance(v, str) and ":" in v and (field := FIELDS.get(label(v.split(":", 1)[0]))):
                meta.setdefault(field, v.split(":", 1)[1].strip())
                break
    unit, period = display(meta.get("unit")).upper(), period_of(meta.get("period"))
    if unit not in catalog["units"]:
        errors.append(f"unit code {unit!r} is missing or not in the catalog")
    if period is None:
        errors.append(f"period {display(meta.get('period'))!r} is missing or unreadable")
    for r in (header, header + 1):  # two-row headers: value columns one row down
        before = dict(cols)
        for c, v in enumerate(rows[r] if r < len(rows) else []):
            name = label(v) if isinstance(v, str) else ""
            role = {"tu so": "num", "mau so": "den"}.get(name, "val" if name in VALUE_LABELS else None)
            if role and role not in cols:
                cols[role] = c
    if "val" not in cols and not ("num" in cols and "den" in cols):
        return unit, period, None, [], warnings, errors + ["no 'Giá trị' or 'Tử số'/'Mẫu số' column"]
    first = header + (1 if cols == before else 2)
    first += first < len(rows) and is_numbering_row(rows[first])
    values, seen = [], {}
    for r, row in enumerate(rows[first:], start=first):
        at = lambda role: classify(row[cols[role]]) if cols.get(role, len(row)) < len(row) else ("empty", None, False)
        num, den, val = at("num"), at("den"), at("val")
        code = display(row[code_col]).upper() if code_col < len(row) else ""
        kind, where = catalog["indicators"].get(code), f"row {r + 1} ({code or 'no code'})"
        if kind is None or code in seen:
            if kind or "num" in (num[0], den[0], val[0]):
                errors.append(f"{where}: " + (f"again (row {seen[code]})" if kind else "a figure with an unknown code"))
            continue
        seen[code] = r + 1
        if kind in ("count", "percent"):
            warnings += num[0] == "num" or den[0] == "num"  # figures in columns it does not use
            if val[0] in ("empty", "na"):
                continue
            if val[0] != "num" or (kind == "count" and val[2]):
                errors.append(f"{where}: {val[1]!r} is not a number")
            elif kind == "count" and (val[1] < 0 or not val[1].is_integer()):
                errors.append(f"{where}: {val[1]:g} is not a whole number >= 0")
            elif kind == "percent" and not 0 <= val[1] <= 100:
                errors.append(f"{where}: {val[1]:g} is not a percentage from 0 to 100")
            else:
                values.append((code, "value", val[1]))
            continue
        if all(s[0] in ("empty", "na") for s in (num, den, val)) or "na" in (num[0], den[0]):
            continue  # not reported, or not applicable
        if "num" not in cols or "den" not in cols or "empty" in (num[0], den[0]) or {"bad", "error"} & {
                num[0], den[0], val[0]}:
            errors.append(f"{where}: numerator, denominator or value missing or not a number")
            continue
        n, d, expected = num[1], den[1], 100 * num[1] / den[1] if den[1] else math.nan
        if num[2] or den[2] or min(n, d) < 0 or not (n.is_integer() and d.is_integer()):
            errors.append(f"{where}: numerator and denominator must be whole numbers >= 0")
        elif d == 0 or n > d:
            errors.append(f"{where}: needs 0 <= numerator ({n:g}) <= denominator ({d:g}), denominator > 0")
        elif val[0] == "num" and abs(val[1] - expected) > TOLERANCE and (  # as points, or as a fraction
                val[2] or abs(100 * val[1] - expected) > TOLERANCE):
            errors.append(f"{where}: value {val[1]:g} does not agree with {n:g}/{d:g}")
        else:
            values += [(code, "numerator", n), (code, "denominator", d)]
    if unit in catalog["units"]:  # indicators the unit is not assigned: a warning
        warnings += len({v[0] for v in values} - catalog["units"][unit])
    return unit, period, display(meta.get("by")) or None, values, warnings, errors


def broken_rules(catalog, unit, values):
    """The catalog's error rules on the file's own figures (`B05.numerator <= B04.numerator`)."""
    own, broken = {}, []
    for code, component, number in values:
        own.setdefault(code, {})[component] = number
    figure = lambda code, part=None: None if code not in own else own[code].get(part) if part else own[code].get(
        "value", 100 * own[code].get("numerator", 0) / own[code].get("denominator", 1))
    for rule in catalog["rules"]:
        sides = [re.findall(r"([+-]?)\s*([A-Za-z0-9_.]+)", rule[k]) for k in ("left", "right")]
        refs = [t for side in sides for _, t in side if not re.fullmatch(r"[0-9.]+", t)]
        reported = catalog["units"][unit]
        if "children" in rule["left"] + rule["right"] or not any(r.split(".")[0] in reported for r in refs):
            continue
        got = {t: figure(*t.split(".")[:2]) for t in refs}
        missing, policy = sum(v is None for v in got.values()), rule.get("missing", "skip-if-any-missing")
        if missing and (policy == "skip-if-any-missing" or (policy == "skip-if-all-missing" and missing == len(refs))):
            continue
        left, right = (sum((-1 if sign == "-" else 1) * (got[t] or 0.0 if t in got else float(t)) for sign, t in side)
                       for side in sides)
        eq = abs(left - right) <= 1e-9 * max(abs(left), abs(right))
        holds = {"==": eq, "!=": not eq, "<": left < right and not eq, "<=": left < right or eq,
                 ">": left > right and not eq, ">=": left > right or eq}[rule["operator"]]
        if not holds and rule.get("importance", "error") == "error":
            broken.append(f"rule {rule['code']}: {rule['left']} {rule['operator']} {rule['right']} "
                          f"({left:g} vs {right:g})")
    return broken


def load_catalog(path):
    toml = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    by_kind = toml.get("reports_by_kind", {})
    units = {u["code"].upper(): set(u.get("reports", by_kind.get(u.get("kind"), []))) for u in toml.get("units", [])}
    indicators = {i["code"].upper(): i["kind"] for i in toml.get("indicators", [])}
    return {"units": units, "indicators": indicators, "rules": toml.get("rules", [])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("catalog"), ap.add_argument("reports"), ap.add_argument("db")
    ap.add_argument("--limit", type=int, help="only the first N .xlsx files, in sorted order")
    ap.add_argument("--quiet", action="store_true", help="no line per rejected file")
    args = ap.parse_args()
    started, catalog, root = time.perf_counter(), load_catalog(args.catalog), Path(args.reports)
    workbooks = sorted(p for p in root.rglob("*") if p.suffix.lower() in WORKBOOK_SUFFIXES and p.is_file()
                       and not any(part.startswith((".", "~$")) for part in p.relative_to(root).parts))
    files = [p for p in workbooks if p.suffix.lower() == ".xlsx"][: args.limit]
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode = WAL"), db.execute("PRAGMA synchronous = NORMAL")  # as kpi-store's SQLite
    db.executescript(SCHEMA)
    counts = dict(accepted=0, unchanged=0, rejected=0, values=0)
    for path in files:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            frames = pd.read_excel(path, sheet_name=None, header=None, engine="openpyxl")
            unit, period, by, values, warnings, errors = parse([df.to_numpy(dtype=object).tolist()
                                                                for df in frames.values()], catalog)
            errors += [] if errors else broken_rules(catalog, unit, values)
        except Exception as e:  # a corrupt or non-xlsx file rejects the file, never the batch
            errors = [f"cannot read the workbook: {type(e).__name__}: {e}"]
        if errors:
            counts["rejected"] += 1
            if not args.quiet:
                print(f"rejected {path}: " + "; ".join(errors), file=sys.stderr)
            continue
        with db:  # one transaction per file: its revision and all its values, or nothing
            last = db.execute("SELECT sha256, revision FROM revisions WHERE unit = ? AND period = ? "
                              "ORDER BY revision DESC LIMIT 1", (unit, period)).fetchone()
            if last and last[0] == sha:
                counts["unchanged"] += 1
                continue
            revision_id = db.execute(
                "INSERT INTO revisions (file, sha256, unit, period, revision, prepared_by, warnings, imported_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (str(path), sha, unit, period, last[1] + 1 if last else 1, by,
                                                    warnings, datetime.now(timezone.utc).isoformat())).lastrowid
            db.executemany("INSERT INTO vals (revision_id, indicator, component, value) VALUES (?, ?, ?, ?)",
                           [(revision_id, *v) for v in values])
        counts["accepted"], counts["values"] = counts["accepted"] + 1, counts["values"] + len(values)
    db.close()
    skipped = sum(p.suffix.lower() != ".xlsx" for p in workbooks)
    print(f"{len(files)} files read ({skipped} .xls/.xlsm/.xlsb/.ods skipped); {counts['accepted']} accepted, "
          f"{counts['unchanged']} unchanged, {counts['rejected']} rejected; {counts['values']} values stored; "
          f"{time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
