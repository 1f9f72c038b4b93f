"""Province overview (placeholder until the drill-down map lands)."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from dashboard.util import db_callback, pool
from gridwatch.db import transaction

dash.register_page(__name__, path="/", title="甘肃省 · gridwatch")


def layout(**_):
    return html.Div([dcc.Loading(html.Div(id="home-summary")), dcc.Interval(id="home-tick", max_intervals=1, interval=1)])


@dash.callback(Output("home-summary", "children"), Input("home-tick", "n_intervals"))
@db_callback
def summary(_):
    with transaction(pool(), readonly=True) as conn:
        rows = conn.execute("SELECT level, count(*) AS n FROM region GROUP BY level").fetchall()
    counts = {r["level"]: r["n"] for r in rows}
    return html.Ul([html.Li(f"{level}: {counts.get(level, 0)}", id=f"home-count-{level}")
                    for level in ("province", "prefecture", "county", "township", "village", "grid")])
