"""The application shell: header, language switch, page container."""

from __future__ import annotations

import dash
from dash import dcc, html


def layout():
    return html.Div(
        [
            dcc.Location(id="shell-url"),
            html.Header([html.H1("综治中心 · 网格化服务管理", id="shell-title")], className="shell-header"),
            dash.page_container,
        ],
        className="shell",
    )
