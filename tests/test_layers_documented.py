"""Docs that cannot rot: every map layer has its row in the README's Layers table, and its SQL file."""

from __future__ import annotations

from pathlib import Path

from layers import HERE, LAYERS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _layers_table() -> dict[str, list[str]]:
    section = README.split("## Layers", 1)
    assert len(section) == 2, "README has no '## Layers' section"
    rows = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_layer_is_in_the_readme_layers_table_with_its_zoom_range():
    rows = _layers_table()
    for layer in LAYERS:
        assert layer.name in rows, f"layer {layer.name} is missing from README's Layers table"
        assert f"{layer.minzoom}–{layer.maxzoom}" in rows[layer.name][2], \
            f"README shows another zoom range for {layer.name}: {rows[layer.name][2]}"
        assert layer.title_zh in rows[layer.name][1]


def test_the_readme_lists_no_layer_that_does_not_exist_and_every_layer_has_its_sql_file():
    names = {layer.name for layer in LAYERS}
    assert set(_layers_table()) <= names
    assert {p.stem for p in HERE.glob("*.sql")} == names
