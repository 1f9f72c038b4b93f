"""Year-on-year statistics: the demo reproduces the province's reported changes, small numbers are
flagged, rates use population, and the loader refuses bad files without writing anything."""

from __future__ import annotations

import csv
import io
from datetime import date

import psycopg
import pytest
from psycopg.rows import dict_row

from etl.stats import DEMO_CSV, POPULATION_2020, StatsError, demo_csv_text, load_stats
from gridwatch.stats import mom, region_stats, yoy

HEADER = "region_code,region_name,indicator,period,value,population\n"


def demo_rows(*codes: str) -> str:
    """The demo CSV restricted to some regions."""
    rows = [r for r in csv.DictReader(io.StringIO(DEMO_CSV.read_text(encoding="utf-8"))) if r["region_code"] in codes]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def count(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM stat_figure").fetchone()["n"]


def test_the_demo_reproduces_the_provinces_reported_year_on_year_changes(conn, tiny):
    load_stats(conn, text=demo_rows("62"), source="demo")
    rows = {r["indicator"]: r for r in yoy(conn, "62")}
    assert {k: r["change_pct"] for k, r in rows.items()} == {
        "criminal_cases": -30.0, "public_security_cases": -46.1, "homicides": -50.0, "petitions": -3.1}
    crim = rows["criminal_cases"]
    assert (crim["year"], crim["previous_year"], crim["months"]) == (2024, 2023, list(range(1, 13)))
    # rates per 10,000 residents on the 2020 census population 25,019,831
    assert crim["population"] == 25_019_831
    assert crim["rate_per_10k"] == pytest.approx(crim["value"] / 25_019_831 * 10_000, abs=0.001)
    assert crim["previous_rate_per_10k"] == pytest.approx(crim["previous"] / 25_019_831 * 10_000, abs=0.001)
    assert not any(r["small"] for r in rows.values())


def test_the_demo_file_is_exactly_what_the_documented_builder_makes(conn):
    assert DEMO_CSV.read_text(encoding="utf-8") == demo_csv_text()
    assert sum(p for code, (_, p) in POPULATION_2020.items() if code != "62") == POPULATION_2020["62"][1]


def test_small_numbers_are_flagged_as_unreliable(conn, tiny):
    text = HEADER + "".join(
        f"6207,张掖市,homicides,{y}-{m:02d},{v},1131016\n" for y, v in ((2023, 1), (2024, 0)) for m in range(1, 5)
    ) + "".join(f"6207,张掖市,petitions,{y}-{m:02d},{v},\n" for y, v in ((2023, 40), (2024, 30)) for m in range(1, 5))
    load_stats(conn, text=text)
    rows = {r["indicator"]: r for r in yoy(conn, "6207")}
    assert rows["homicides"]["small"] is True and rows["homicides"]["change_pct"] == -100.0
    assert rows["petitions"]["small"] is False and rows["petitions"]["change_pct"] == -25.0
    assert rows["petitions"]["rate_per_10k"] is None    # no population: counts only
    assert rows["petitions"]["months"] == [1, 2, 3, 4]  # a part year is compared over the same months


def test_month_on_month_compares_the_latest_month_with_the_one_before(conn, tiny):
    load_stats(conn, text=demo_rows("62"))
    rows = {r["indicator"]: r for r in mom(conn, "62")}
    ps = rows["public_security_cases"]
    assert (ps["month"], ps["previous_month"]) == ("2024-12", "2024-11")
    by_month = {(r["region_code"], r["indicator"], r["period"]): int(r["value"])
                for r in csv.DictReader(io.StringIO(DEMO_CSV.read_text(encoding="utf-8")))}
    v, p = by_month[("62", "public_security_cases", "2024-12")], by_month[("62", "public_security_cases", "2024-11")]
    assert (ps["value"], ps["previous"]) == (v, p)
    assert ps["change_pct"] == round((v - p) / p * 100, 1)
    jan = {r["indicator"]: r for r in mom(conn, "62", date(2024, 1, 1))}
    assert jan["petitions"]["previous_month"] == "2023-12"


def test_loading_again_replaces_figures_instead_of_adding_them(conn, tiny):
    text = demo_rows("62")
    load_stats(conn, text=text)
    n = count(conn)
    load_stats(conn, text=text)
    assert count(conn) == n == 4 * 24
    load_stats(conn, text=HEADER + "62,甘肃省,homicides,2024-12,99,25019831\n")
    assert conn.execute("SELECT value FROM stat_figure WHERE region_code = '62' AND indicator = 'homicides' "
                        "AND period = '2024-12-01'").fetchone()["value"] == 99


GOOD = "62,甘肃省,homicides,2024-01,10,25019831\n"


@pytest.mark.parametrize("bad_line, message", [
    ("62,甘肃省,burglaries,2024-02,5,\n", "indicator 'burglaries' is not known"),
    ("62,甘肃省,homicides,2024-13,5,\n", "period '2024-13' is not a month; write it as YYYY-MM"),
    ("62,甘肃省,homicides,2024-02,-4,\n", "value '-4' is not a whole number"),
    ("62,甘肃省,homicides,2024-02,many,\n", "value 'many' is not a whole number"),
    ("62,甘肃省,homicides,2024-02,5,lots\n", "population 'lots' is not a whole number > 0"),
    ("6299,某市,homicides,2024-02,5,\n", "region_code '6299' is not in the region table; load the hierarchy first"),
    ("6201,张掖市,homicides,2024-02,5,\n", "region_name '张掖市' does not match region 6201 (兰州市)"),
    ("62,甘肃省,homicides,2024-01,11,\n", "62 homicides 2024-01 repeats line 2"),
])
def test_a_bad_row_is_refused_naming_line_field_and_value_and_nothing_is_loaded(conn, tiny, bad_line, message):
    with pytest.raises(StatsError, match=r"line 3: " + message.replace("(", r"\(").replace(")", r"\)")):
        load_stats(conn, text=HEADER + GOOD + bad_line)
    assert count(conn) == 0


def test_a_file_without_a_required_column_or_whose_parts_do_not_add_up_is_refused(conn, tiny):
    with pytest.raises(StatsError, match="column 'value' is missing"):
        load_stats(conn, text="region_code,indicator,period\n62,homicides,2024-01\n")
    with pytest.raises(StatsError, match="no such file"):
        load_stats(conn, "/nonexistent/figures.csv")
    # the tiny province has two prefectures; with both present they must add up to it
    with pytest.raises(StatsError, match="children of region 62 add up to 7 homicides in 2024-01 but the region itself has 10"):
        load_stats(conn, text=HEADER + GOOD + "6201,兰州市,homicides,2024-01,3,\n6207,张掖市,homicides,2024-01,4,\n")
    assert count(conn) == 0
    load_stats(conn, text=HEADER + GOOD + "6201,兰州市,homicides,2024-01,3,\n6207,张掖市,homicides,2024-01,7,\n")
    assert count(conn) == 3


@pytest.mark.gansu
def test_the_whole_demo_file_loads_on_the_gansu_hierarchy_and_prefecture_rates_use_the_census(gansu_copy_url):
    with psycopg.connect(gansu_copy_url, autocommit=True, row_factory=dict_row) as conn:
        done = load_stats(conn)
        assert (done["regions"], done["months"]) == (15, 24)
        stats = region_stats(conn, "62")
        assert [r["change_pct"] for r in stats["yoy"]] == [-30.0, -46.1, -50.0, -3.1]
        jyg = {r["indicator"]: r for r in yoy(conn, "6202")}        # 嘉峪关: few homicides → flagged
        assert jyg["homicides"]["small"] is True
        assert jyg["criminal_cases"]["rate_per_10k"] == pytest.approx(jyg["criminal_cases"]["value"] / 312_663 * 10_000, abs=0.001)
        total = conn.execute("SELECT sum(value) AS v FROM stat_figure WHERE region_code <> '62' AND indicator = 'petitions' "
                             "AND period >= '2024-01-01'").fetchone()["v"]
        assert total == 48_450


def test_the_etl_stats_command_loads_a_file_and_refuses_a_bad_one_naming_it(conn, tiny, db_url, tmp_path):
    import os
    import subprocess
    import sys

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(demo_rows("62"), encoding="utf-8")
    bad.write_text(HEADER + "62,甘肃省,homicides,2024-1,3,\n", encoding="utf-8")
    env = {**os.environ, "DATABASE_URL": db_url}
    ok = subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "stats", str(good)],
                        capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "loaded 96 monthly figures for 1 regions, 24 months" in ok.stdout
    refused = subprocess.run([sys.executable, "-m", "gridwatch.cli", "etl", "stats", str(bad)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 1 and "bad.csv line 2: period '2024-1' is not a month" in refused.stderr
    assert count(conn) == 96
