"""Chinese first, English available: UI strings, number and date formats per language.

Core modules and dashboard pages add their own strings with ``register({...})`` at import
(constants only, no data) and look them up with ``t(key, lang)``. Reports (exports, the briefing) use the same strings. The chosen
language of the dashboard lives in the browser (dcc.Store ``shell-lang``).
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["LANGS", "register", "t", "fmt_number", "fmt_percent", "fmt_datetime", "fmt_age"]

LANGS = ("zh", "en")

STRINGS: dict[str, dict[str, str]] = {
    "app.title": {"zh": "综治中心 · 网格化服务管理", "en": "Social-governance centre · grid management"},
    "lang.switch": {"zh": "English", "en": "中文"},
    "state.loading": {"zh": "加载中…", "en": "Loading…"},
    "state.error.db": {"zh": "数据库暂时不可用，正在自动重连…", "en": "The database is unavailable; reconnecting automatically…"},
    "fresh.updated": {"zh": "更新于 {age}", "en": "updated {age}"},
}


def register(strings: dict[str, dict[str, str]]) -> None:
    """Add a page's strings (``{key: {"zh": …, "en": …}}``); a key may be registered once."""
    for key, value in strings.items():
        if key in STRINGS and STRINGS[key] != value:
            raise ValueError(f"i18n key {key!r} registered twice with different text")
        STRINGS[key] = value


def t(key: str, lang: str | None = "zh", **fmt) -> str:
    """The text of ``key`` in ``lang`` (falls back to Chinese, then to the key itself)."""
    entry = STRINGS.get(key)
    if entry is None:
        return key
    text = entry.get(lang or "zh") or entry.get("zh") or key
    return text.format(**fmt) if fmt else text


def fmt_number(value: float | int | None, lang: str | None = "zh", digits: int = 0) -> str:
    """12,345 in both languages; 1.23万 / 12.3K style is left to callers that want it."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_percent(value: float | None, lang: str | None = "zh", digits: int = 1) -> str:
    """A share (0..1) as a percentage: 0.9372 → 93.7%."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


def fmt_datetime(value: datetime | None, lang: str | None = "zh") -> str:
    if value is None:
        return "—"
    if (lang or "zh") == "zh":
        return f"{value.year}年{value.month}月{value.day}日 {value:%H:%M}"
    return value.strftime("%d %b %Y %H:%M")


def fmt_age(seconds: float, lang: str | None = "zh") -> str:
    """How long ago, short: 12 秒前 / 12 s ago; 3 分钟前 / 3 min ago; 2 小时前 / 2 h ago."""
    s = max(0, int(seconds))
    zh = (lang or "zh") == "zh"
    if s < 60:
        return f"{s} 秒前" if zh else f"{s} s ago"
    if s < 3600:
        return f"{s // 60} 分钟前" if zh else f"{s // 60} min ago"
    return f"{s // 3600} 小时前" if zh else f"{s // 3600} h ago"
