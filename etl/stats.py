"""Load monthly statistics (criminal cases, public-security cases, homicides, petitions) from CSV.

  gridwatch etl stats                      the demo file etl/data/gansu-stats.csv
  gridwatch etl stats my-figures.csv       your own figures

The CSV has one row per region, indicator and month:

  region_code,region_name,indicator,period,value,population
  62,甘肃省,criminal_cases,2024-01,3651,25019831

region_code must be loaded already (gridwatch etl gansu); region_name is optional and, when given,
must match the region table (it catches a mistyped code); indicator is one of criminal_cases,
public_security_cases, homicides, petitions; period is YYYY-MM; value a whole number ≥ 0;
population optional (residents, for rates per 10,000). Where a region and all of its children
have a figure for the same indicator and month, the children must add up to the region.

The load is all-or-nothing (one transaction) and safe to re-run: a row for the same region,
indicator and month replaces the earlier one.

The DEMO file is constructed, not official: its monthly figures are invented so that the
province's annual totals reproduce the reported year-on-year changes (刑事案件 −30%, 治安案件
−46.1%, 命案 −50%, 信访 −3.1%). Prefecture populations are the 2020 census figures (they add up
to the province's 25,019,831). Rebuild it with ``python -m etl.stats --write-demo``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
from psycopg.rows import dict_row

from gridwatch import db
from gridwatch.db import transaction

__all__ = ["StatsError", "DEMO_CSV", "INDICATORS", "PROVINCE_TOTALS", "POPULATION_2020", "parse_csv", "load_stats",
           "build_demo", "demo_csv_text", "add_arguments", "run"]

HERE = Path(__file__).resolve().parent
DEMO_CSV = HERE / "data" / "gansu-stats.csv"
INDICATORS = ("criminal_cases", "public_security_cases", "homicides", "petitions")
COLUMNS = ("region_code", "region_name", "indicator", "period", "value", "population")
REQUIRED = ("region_code", "indicator", "period", "value")
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")

# Demo: the province's annual totals, previous year → latest year (constructed, see the docstring).
DEMO_YEARS = (2023, 2024)
PROVINCE_TOTALS: dict[str, tuple[int, int]] = {
    "criminal_cases": (60_000, 42_000),          # −30%
    "public_security_cases": (100_000, 53_900),  # −46.1%
    "homicides": (200, 100),                     # −50%
    "petitions": (50_000, 48_450),               # −3.1%
}
# 2020 (seventh) census, resident population; the prefectures add up to the province.
POPULATION_2020: dict[str, tuple[str, int]] = {
    "62": ("甘肃省", 25_019_831),
    "6201": ("兰州市", 4_359_446), "6202": ("嘉峪关市", 312_663), "6203": ("金昌市", 438_026),
    "6204": ("白银市", 1_512_110), "6205": ("天水市", 2_984_659), "6206": ("武威市", 1_464_955),
    "6207": ("张掖市", 1_131_016), "6208": ("平凉市", 1_848_607), "6209": ("酒泉市", 1_055_706),
    "6210": ("庆阳市", 2_179_716), "6211": ("定西市", 2_524_097), "6212": ("陇南市", 2_407_272),
    "6229": ("临夏回族自治州", 2_109_750), "6230": ("甘南藏族自治州", 691_808),
}
DEMO_SEED = 20240601
LOCK_KEY = 620_000_052


class StatsError(ValueError):
    """A statistics file was refused; nothing of it was loaded. The message names line, field, value and fix."""


def _split(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder split of ``total`` into integers proportional to ``weights`` (exact sum)."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))[: total - sum(out)]:
        out[i] += 1
    return out


def build_demo() -> list[dict]:
    """The constructed demo rows (deterministic): province and 14 prefectures, 24 months each."""
    rng = np.random.default_rng(DEMO_SEED)
    prefectures = [c for c in POPULATION_2020 if c != "62"]
    season = {   # relative monthly weights: crime peaks in summer, petitions before the Spring Festival
        "criminal_cases": [math.cos(2 * math.pi * (m - 7) / 12) * 0.15 + 1 for m in range(1, 13)],
        "public_security_cases": [math.cos(2 * math.pi * (m - 8) / 12) * 0.2 + 1 for m in range(1, 13)],
        "homicides": [1.0] * 12,
        "petitions": [math.cos(2 * math.pi * (m - 1) / 12) * 0.25 + 1 for m in range(1, 13)],
    }
    rows = []
    for ind in INDICATORS:
        for yi, year in enumerate(DEMO_YEARS):
            months = _split(PROVINCE_TOTALS[ind][yi], season[ind])
            # each prefecture's share: its population × a demo factor that differs by year
            factors = rng.uniform(0.8, 1.2, size=len(prefectures))
            weights = [POPULATION_2020[p][1] * f for p, f in zip(prefectures, factors)]
            for m, total in enumerate(months, start=1):
                period = f"{year}-{m:02d}"
                rows.append({"region_code": "62", "region_name": POPULATION_2020["62"][0], "indicator": ind,
                             "period": period, "value": total, "population": POPULATION_2020["62"][1]})
                for p, v in zip(prefectures, _split(total, weights)):
                    rows.append({"region_code": p, "region_name": POPULATION_2020[p][0], "indicator": ind,
                                 "period": period, "value": v, "population": POPULATION_2020[p][1]})
    return rows


def demo_csv_text() -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(build_demo())
    return buf.getvalue()


def parse_csv(text: str, name: str = "file") -> list[dict]:
    """Parse and check a statistics CSV; raises :class:`StatsError` naming the line, field and fix."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise StatsError(f"{name}: column {missing[0]!r} is missing (header: {', '.join(header) or 'empty'}); "
                         f"the header must name {', '.join(REQUIRED)} (optional: region_name, population)")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise StatsError(f"{name}: column {unknown[0]!r} is not known; columns are {', '.join(COLUMNS)}")
    rows, seen = [], {}
    for line, raw in enumerate(reader, start=2):
        r = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{name} line {line}"
        code = r["region_code"]
        if not code.isdigit():
            raise StatsError(f"{where}: region_code {code!r} is not a region code; use digits such as 62 or 6201")
        ind = r["indicator"]
        if ind not in INDICATORS:
            raise StatsError(f"{where}: indicator {ind!r} is not known; use one of {', '.join(INDICATORS)}")
        m = _PERIOD.match(r["period"])
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise StatsError(f"{where}: period {r['period']!r} is not a month; write it as YYYY-MM, e.g. 2024-01")
        period = date(int(m.group(1)), int(m.group(2)), 1)
        try:
            value = int(r["value"])
        except ValueError:
            value = None
        if value is None or value < 0:
            raise StatsError(f"{where}: value {r['value']!r} is not a whole number ≥ 0; write a count such as 42")
        population = None
        if r.get("population"):
            try:
                population = int(r["population"])
            except ValueError:
                population = 0
            if population <= 0:
                raise StatsError(f"{where}: population {r['population']!r} is not a whole number > 0; "
                                 "write the residents (e.g. 25019831) or leave it empty")
        key = (code, ind, period)
        if key in seen:
            raise StatsError(f"{where}: {code} {ind} {r['period']} repeats line {seen[key]}; keep one row per region, indicator and month")
        seen[key] = line
        rows.append({"region_code": code, "region_name": r.get("region_name") or None, "indicator": ind,
                     "period": period, "value": value, "population": population, "line": line})
    if not rows:
        raise StatsError(f"{name}: no rows after the header; nothing to load")
    return rows


def load_stats(conn: psycopg.Connection, path: Path | str | None = None, *, text: str | None = None,
               source: str | None = None) -> dict:
    """Load a statistics CSV (default the demo file) in one transaction; returns {rows, regions, indicators, months}."""
    path = Path(path) if path is not None else DEMO_CSV
    name = path.name if text is None else (source or "text")
    if text is None:
        if not path.exists():
            raise StatsError(f"{path}: no such file; give the path of a statistics CSV (see `gridwatch etl stats --help`)")
        text = path.read_text(encoding="utf-8")
    rows = parse_csv(text, name)
    source = source or name
    cur = conn.cursor(row_factory=dict_row)
    with transaction(conn):
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        codes = sorted({r["region_code"] for r in rows})
        known = {r["code"]: r["name"] for r in cur.execute("SELECT code, name FROM region WHERE code = ANY(%s)", (codes,))}
        for r in rows:
            if r["region_code"] not in known:
                raise StatsError(f"{name} line {r['line']}: region_code {r['region_code']!r} is not in the region table; "
                                 "load the hierarchy first (gridwatch etl gansu) or correct the code")
            if r["region_name"] and r["region_name"] != known[r["region_code"]]:
                raise StatsError(f"{name} line {r['line']}: region_name {r['region_name']!r} does not match region "
                                 f"{r['region_code']} ({known[r['region_code']]}); correct the code or the name")
        cur.execute("CREATE TEMP TABLE stat_in (region_code text, indicator text, period date, value int, population int) ON COMMIT DROP")
        with cur.copy("COPY stat_in FROM STDIN") as cp:
            for r in rows:
                cp.write_row((r["region_code"], r["indicator"], r["period"], r["value"], r["population"]))
        cur.execute("""
            INSERT INTO stat_figure (region_code, indicator, period, value, population, source, loaded_at)
            SELECT region_code, indicator, period, value, population, %s, now() FROM stat_in
            ON CONFLICT (region_code, indicator, period) DO UPDATE SET
                value = EXCLUDED.value, population = EXCLUDED.population, source = EXCLUDED.source, loaded_at = now()
        """, (source,))
        # Children must add up to their parent wherever the parent and every child have a figure.
        bad = cur.execute("""
            WITH touched AS (SELECT DISTINCT indicator, period FROM stat_in),
            kids AS (
                SELECT r.parent_code, s.indicator, s.period, sum(s.value) AS total, count(*) AS n
                FROM stat_figure s JOIN region r ON r.code = s.region_code JOIN touched USING (indicator, period)
                WHERE r.parent_code IS NOT NULL GROUP BY 1, 2, 3
            ),
            nkids AS (SELECT parent_code, count(*) AS n FROM region WHERE parent_code IN (SELECT parent_code FROM kids) GROUP BY 1)
            SELECT k.parent_code, k.indicator, to_char(k.period, 'YYYY-MM') AS period, k.total, p.value
            FROM kids k JOIN nkids USING (parent_code)
            JOIN stat_figure p ON p.region_code = k.parent_code AND p.indicator = k.indicator AND p.period = k.period
            WHERE k.n = nkids.n AND p.value <> k.total
            ORDER BY 1, 2, 3 LIMIT 1
        """).fetchone()
        if bad:
            raise StatsError(f"{name}: the children of region {bad['parent_code']} add up to {bad['total']} "
                             f"{bad['indicator']} in {bad['period']} but the region itself has {bad['value']}; "
                             "correct the figures so the parts add up to the whole")
    return {"rows": len(rows), "regions": len(codes), "indicators": sorted({r["indicator"] for r in rows}),
            "months": len({r["period"] for r in rows}), "source": source}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default=None, help=f"statistics CSV (default: the demo file {DEMO_CSV.name})")
    p.add_argument("--write-demo", action="store_true", help="rewrite the demo CSV from build_demo() and exit")


def run(args: argparse.Namespace) -> int:
    if args.write_demo:
        DEMO_CSV.parent.mkdir(parents=True, exist_ok=True)
        DEMO_CSV.write_text(demo_csv_text(), encoding="utf-8")
        print(f"wrote {DEMO_CSV}")
        return 0
    with psycopg.connect(db.database_url()) as conn:
        try:
            done = load_stats(conn, args.file)
        except StatsError as exc:
            print(f"gridwatch etl stats: {exc}", file=sys.stderr)
            return 1
    print(f"loaded {done['rows']} monthly figures for {done['regions']} regions, {done['months']} months "
          f"({', '.join(done['indicators'])}) from {done['source']}")
    return 0


if __name__ == "__main__":  # python -m etl.stats --write-demo
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
