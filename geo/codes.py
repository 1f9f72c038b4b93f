"""Region codes and kinds: GB/T 2260 (province, prefecture, county) and GB/T 10114 (township, village).

Our codes are prefixes of their children's codes: province ``62`` (2 digits), prefecture ``6207``
(4), county ``620702`` (6), township 9 digits (county + 3), village 12 (township + 3), grid 15
(village + 3). A prefecture-level city without counties (嘉峪关市) numbers its townships under the
pseudo-county ``620201``, their parent being the prefecture ``6202``.

GB/T 10114 ranges for the 3-digit township part: 街道 001–099, 镇 100–199, 乡 (incl. 民族乡)
200–399; for the village part: 居委会/社区 001–199, 村委会 200–399.
"""

from __future__ import annotations

import re

__all__ = [
    "LEVELS", "CODE_LENGTH", "PARENT_LEVEL", "CHILD_LEVEL", "LEVEL_ALIASES", "KIND_RANGES",
    "CodeRangeFull", "normalise_level", "prefecture_kind", "county_kind", "township_kind",
    "village_kind", "assign_codes", "code_problem", "level_of_code", "BadRegionCodeText", "parse_region_code",
]

LEVELS: tuple[str, ...] = ("province", "prefecture", "county", "township", "village", "grid")
CODE_LENGTH: dict[str, int] = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12, "grid": 15}
PARENT_LEVEL: dict[str, str | None] = {lvl: (LEVELS[i - 1] if i else None) for i, lvl in enumerate(LEVELS)}
CHILD_LEVEL: dict[str, str | None] = {lvl: (LEVELS[i + 1] if i + 1 < len(LEVELS) else None) for i, lvl in enumerate(LEVELS)}

# Words a user may type for a level (English or Chinese), mapped to our level names.
LEVEL_ALIASES: dict[str, str] = {
    **{lvl: lvl for lvl in LEVELS},
    "省": "province", "prefecture-level": "prefecture", "市": "prefecture", "地级": "prefecture", "州": "prefecture",
    "县": "county", "区县": "county", "县级": "county", "district": "county",
    "乡镇": "township", "街道": "township", "乡": "township", "镇": "township", "town": "township",
    "村": "village", "社区": "village", "村社区": "village", "community": "village",
    "网格": "grid",
}

# (first, last) of the last 3 digits, per kind.
KIND_RANGES: dict[str, tuple[int, int]] = {
    "街道": (1, 99), "镇": (100, 199), "乡": (200, 399), "民族乡": (200, 399),
    "居委会": (1, 199), "村委会": (200, 399),
    "网格": (1, 999),
}


class CodeRangeFull(ValueError):
    """More units of one kind under one parent than its GB/T 10114 range holds."""


def normalise_level(word: str) -> str:
    """Our level name for ``word`` (English or Chinese); ValueError naming the known ones.

    >>> normalise_level("Township"), normalise_level("网格")
    ('township', 'grid')
    """
    key = (word or "").strip()
    level = LEVEL_ALIASES.get(key) or LEVEL_ALIASES.get(key.lower())
    if level is None:
        raise ValueError(f"level {word!r} is unknown: use one of {', '.join(LEVELS)} (or 省/市/县/乡镇/村/网格)")
    return level


def prefecture_kind(name: str) -> str:
    """市 or 州 (自治州), from the name.

    >>> prefecture_kind("临夏回族自治州"), prefecture_kind("张掖市")
    ('州', '市')
    """
    return "州" if name.endswith("州") else "市"


def county_kind(name: str) -> str:
    """区 / 县 / 自治县 / 县级市 / 旗, from the name.

    >>> [county_kind(n) for n in ("甘州区", "山丹县", "肃南裕固族自治县", "玉门市")]
    ['区', '县', '自治县', '县级市']
    """
    if name.endswith("自治县"):
        return "自治县"
    if name.endswith("市"):
        return "县级市"
    if name.endswith("区"):
        return "区"
    if name.endswith("旗"):
        return "旗"
    return "县"


def township_kind(name: str) -> str:
    """街道 / 镇 / 民族乡 / 乡, from the (normalised) name; ValueError if none fits.

    >>> [township_kind(n) for n in ("东街街道", "新墩镇", "平山湖蒙古族乡", "花寨乡")]
    ['街道', '镇', '民族乡', '乡']
    """
    if re.search(r"(街道|街道办事处|办事处|街道办)$", name):
        return "街道"
    if name.endswith("镇"):
        return "镇"
    if name.endswith("族乡"):
        return "民族乡"
    if name.endswith("乡"):
        return "乡"
    raise ValueError(f"township name {name!r} ends in none of 街道/镇/乡: cannot tell its kind")


def village_kind(name: str) -> str:
    """居委会 (urban community, 社区) or 村委会 (village), from the name.

    >>> village_kind("长城社区"), village_kind("浅河村"), village_kind("南街居委会")
    ('居委会', '村委会', '居委会')
    """
    if re.search(r"(社区|居委会|居民委员会)$", name):
        return "居委会"
    return "村委会"


def assign_codes(parent_code: str, kinds: list[str], width: int = 3) -> list[str]:
    """Codes for children of ``parent_code`` in the given order, each kind counting up its range.

    >>> assign_codes("620702", ["镇", "街道", "镇", "乡"])
    ['620702100', '620702001', '620702101', '620702200']
    """
    counters = {k: r[0] for k, r in KIND_RANGES.items()}
    shared = {"民族乡": "乡"}  # 乡 and 民族乡 share one range
    out = []
    for kind in kinds:
        key = shared.get(kind, kind)
        if key not in counters:
            raise ValueError(f"kind {kind!r} has no code range: use one of {', '.join(KIND_RANGES)}")
        n = counters[key]
        if n > KIND_RANGES[key][1]:
            raise CodeRangeFull(f"more {kind} under {parent_code} than the code range {KIND_RANGES[key]} holds")
        counters[key] = n + 1
        out.append(f"{parent_code}{n:0{width}d}")
    return out


def level_of_code(code: str) -> str | None:
    """The level whose code length ``code`` has, or None.

    >>> level_of_code("620702100"), level_of_code("6207021")
    ('township', None)
    """
    for level, n in CODE_LENGTH.items():
        if len(code) == n:
            return level
    return None


def code_problem(code: str, level: str, parent_code: str | None = None) -> str | None:
    """Why ``code`` cannot be a ``level`` code (under ``parent_code``), with the fix; None if fine.

    >>> code_problem("620702100", "township") is None
    True
    >>> code_problem("6207021", "township")
    "code '6207021' has 7 digits but a township code has 9 (county code + 3 digits, e.g. 620702100)"
    """
    want = CODE_LENGTH[level]
    examples = {"province": "62", "prefecture": "6207", "county": "620702", "township": "620702100",
                "village": "620702100200", "grid": "620702100200001"}
    recipes = {"province": "2 digits (GB/T 2260 without the zeros)", "prefecture": "4 digits (GB/T 2260 without the zeros)",
               "county": "6 digits (GB/T 2260)", "township": "county code + 3 digits",
               "village": "township code + 3 digits", "grid": "village code + 3 digits"}
    if not isinstance(code, str) or not code.isdigit():
        return f"code {code!r} is not all digits: a {level} code is {recipes[level]}, e.g. {examples[level]}"
    if len(code) != want:
        return (f"code {code!r} has {len(code)} digits but a {level} code has {want} "
                f"({recipes[level]}, e.g. {examples[level]})")
    if parent_code is not None and not code.startswith(parent_code):
        return f"code {code!r} does not start with its parent's code {parent_code!r}: a code is its parent's code plus digits"
    return None


class BadRegionCodeText(ValueError):
    """Text that is not a region code of any level (the message says what would be)."""


def parse_region_code(text: str) -> str:
    """The canonical region code of ``text``: ours, or a GB/T 2260 six-digit province/prefecture code.

    Other systems write the province and prefectures as six digits padded with zeros
    (``620000`` 甘肃省, ``620700`` 张掖市); ours drop the zeros. A real county code never ends in
    ``00`` and stays as it is. Spaces around the text are ignored. Raises
    :class:`BadRegionCodeText` for anything that is not a code of some level.

    >>> parse_region_code("620000"), parse_region_code("620700"), parse_region_code("620702")
    ('62', '6207', '620702')
    >>> parse_region_code(" 620702100 ")
    '620702100'
    """
    code = (text or "").strip() if isinstance(text, str) else ""
    if not code.isascii() or not code.isdigit() or level_of_code(code) is None:
        raise BadRegionCodeText(
            f"region code {text!r} is not a region code: use 2 (province), 4 (prefecture), 6 (county), "
            "9 (township), 12 (village) or 15 (grid) digits, e.g. 62 or 620702 (620000 and 620700 work too)")
    if len(code) == 6 and code.endswith("0000"):
        return code[:2]
    if len(code) == 6 and code.endswith("00"):
        return code[:4]
    return code
