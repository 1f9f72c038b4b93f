"""Charts and numbers of the headline figures, shared by the dashboard and the reports.

Plain functions from values to plotly figures or text (plotly only, no Dash): big counts, days,
the 30-day sparkline, where cases were closed, hazards by grade, year-on-year and monthly trends.
Nothing here touches the database or the network.
"""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go

from gridwatch.display import GRADE_COLOURS
from gridwatch.i18n import register, t
from gridwatch.stats import INDICATORS

__all__ = [
    "big_number", "fmt_day", "sparkline", "spark_totals", "level_bar", "grade_bar", "change_text", "yoy_figure",
    "series_figure",
]

register({
    "spark.new": {"zh": "新增", "en": "New"},
    "spark.closed": {"zh": "办结", "en": "Closed"},
    "closed.village": {"zh": "村级", "en": "Village"},
    "closed.township": {"zh": "乡镇级", "en": "Township"},
    "closed.county": {"zh": "县级", "en": "County"},
    "closed.beyond": {"zh": "县以上", "en": "Above county"},
    "grade.red": {"zh": "红色", "en": "Red"},
    "grade.orange": {"zh": "橙色", "en": "Orange"},
    "grade.yellow": {"zh": "黄色", "en": "Yellow"},
})


def big_number(value, lang: str | None = "zh") -> str:
    """A count for a wall: 12,345 → 1.23万 (zh) / 12.3K (en); below ten thousand in full.

    >>> big_number(12345, "zh"), big_number(12345, "en"), big_number(987, "zh"), big_number(None)
    ('1.23万', '12.3K', '987', '—')
    """
    if value is None:
        return "—"
    v = float(value)
    if abs(v) < 10_000:
        return f"{int(v):,}" if v == int(v) else f"{v:,.1f}"
    if (lang or "zh") == "zh":
        return f"{v / 1e8:.2f}亿" if abs(v) >= 1e8 else f"{v / 1e4:.2f}万"
    return f"{v / 1e6:.1f}M" if abs(v) >= 1e6 else f"{v / 1e3:.1f}K"


def fmt_day(day: str | date, lang: str | None = "zh") -> str:
    """A day as shown: 11月26日 (zh) / 26 Nov (en)."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{d.month}月{d.day}日" if (lang or "zh") == "zh" else d.strftime("%d %b").lstrip("0")


def sparkline(series: list[dict], lang: str | None = "zh", *, dark: bool = False, height: int | None = 90) -> go.Figure:
    """30 days of new and closed cases as two thin lines (the totals are written beside it)."""
    days = [s["day"] for s in series]
    fig = go.Figure()
    colours = {"new": "#e6550d", "closed": "#31a354"} if not dark else {"new": "#ff9a4d", "closed": "#5ee08a"}
    for key in ("new", "closed"):
        fig.add_trace(go.Scatter(
            x=days, y=[s[key] for s in series], mode="lines", name=t(f"spark.{key}", lang),
            line={"width": 2 if not dark else 3, "color": colours[key]},
            customdata=[fmt_day(d, lang) for d in days],
            hovertemplate="%{customdata}: %{y}<extra>" + t(f"spark.{key}", lang) + "</extra>",
        ))
    fig.update_layout(
        height=height, autosize=height is None, margin={"l": 2, "r": 2, "t": 2, "b": 2}, showlegend=False,
        xaxis={"visible": False}, yaxis={"visible": False, "rangemode": "tozero"},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def spark_totals(series: list[dict], lang: str | None = "zh") -> str:
    """'新增 120 · 办结 98' over the series (the sparkline's numbers, visible without hovering)."""
    new = sum(s["new"] for s in series)
    closed = sum(s["closed"] for s in series)
    return f"{t('spark.new', lang)} {new:,} · {t('spark.closed', lang)} {closed:,}"


def level_bar(closed_by_level: dict, lang: str | None = "zh", *, dark: bool = False) -> go.Figure:
    """Where closed cases were resolved: village / township / county / above, counts written on the bars."""
    keys = ["village", "township", "county", "beyond"]
    vals = [int(closed_by_level.get(k) or 0) for k in keys]
    fig = go.Figure(go.Bar(
        x=vals, y=[t(f"closed.{k}", lang) for k in keys], orientation="h",
        marker={"color": ["#31a354", "#74c476", "#fdae6b", "#e6550d"]},
        text=[f"{v:,}" for v in vals], textposition="auto", hoverinfo="skip",
    ))
    fig.update_layout(
        height=130, margin={"l": 4, "r": 4, "t": 4, "b": 4}, xaxis={"visible": False},
        yaxis={"autorange": "reversed", "tickfont": {"color": "#e8eef7" if dark else "#334"}},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def grade_bar(by_grade: dict, lang: str | None = "zh", *, dark: bool = False) -> go.Figure:
    """Open hazards by grade, counts written on the bars."""
    keys = ["red", "orange", "yellow"]
    vals = [int(by_grade.get(k) or 0) for k in keys]
    fig = go.Figure(go.Bar(
        x=[t(f"grade.{k}", lang) for k in keys], y=vals, marker={"color": [GRADE_COLOURS[k] for k in keys]},
        text=[f"{v:,}" for v in vals], textposition="auto", hoverinfo="skip",
    ))
    fig.update_layout(
        height=120, margin={"l": 4, "r": 4, "t": 4, "b": 4}, yaxis={"visible": False},
        xaxis={"tickfont": {"color": "#e8eef7" if dark else "#334"}},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def change_text(row: dict, lang: str | None) -> str:
    if row.get("change_pct") is None:
        return "—"
    return f"{row['change_pct']:+.1f}%"


def yoy_figure(rows: list[dict], lang: str | None = "zh") -> go.Figure:
    """Bars of the year-on-year change per indicator, the percentage written on each bar."""
    names = [r["name_en"] if lang == "en" else r["name_zh"] for r in rows]
    vals = [r["change_pct"] if r.get("change_pct") is not None else 0 for r in rows]
    fig = go.Figure(go.Bar(
        x=names, y=vals, text=[change_text(r, lang) + ("*" if r.get("small") else "") for r in rows],
        textposition="outside", marker={"color": ["#31a354" if v < 0 else "#e6550d" for v in vals]}, hoverinfo="skip"))
    fig.update_layout(height=260, margin={"l": 30, "r": 10, "t": 20, "b": 40}, yaxis={"ticksuffix": "%", "zeroline": True},
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig


def series_figure(series: list[dict], lang: str | None = "zh") -> go.Figure:
    """Monthly figures per indicator (rate per 10,000 where population is known, else counts)."""
    fig = go.Figure()
    for ind, names in INDICATORS.items():
        rows = [s for s in series if s["indicator"] == ind]
        if not rows:
            continue
        fig.add_trace(go.Scatter(x=[s["month"] for s in rows], y=[s["value"] for s in rows], mode="lines+markers",
                                 name=names["en" if lang == "en" else "zh"]))
    fig.update_layout(height=280, margin={"l": 40, "r": 10, "t": 10, "b": 30}, yaxis={"type": "log"},
                      legend={"orientation": "h", "y": -0.2}, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return fig
