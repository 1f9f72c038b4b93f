"""Read Mapbox Vector Tiles (MVT 2.1) back into Python: for tests, benchmarks and debugging.

A small, dependency-free protobuf reader of exactly the messages ST_AsMVT writes.

    >>> decode(b"")
    {}
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["decode", "GEOM_TYPES"]

GEOM_TYPES = {0: "unknown", 1: "point", 2: "line", 3: "polygon"}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) for each field of one message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i:i + length], i + length
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {i}")
        yield number, wire, value


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _zigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def _value(buf: bytes) -> Any:
    for number, _, v in _fields(buf):
        if number == 1:
            return v.decode("utf-8")
        if number == 2:
            return struct.unpack("<f", v)[0]
        if number == 3:
            return struct.unpack("<d", v)[0]
        if number == 4:
            return v - (1 << 64) if v >= 1 << 63 else v
        if number == 5:
            return v
        if number == 6:
            return _zigzag(v)
        if number == 7:
            return bool(v)
    return None


def _geometry(commands: list[int]) -> list[list[tuple[int, int]]]:
    """Parts (points, line strings or rings) in tile coordinates."""
    parts: list[list[tuple[int, int]]] = []
    x = y = 0
    i = 0
    while i < len(commands):
        cmd, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if cmd == 7:  # ClosePath
            if parts and parts[-1]:
                parts[-1].append(parts[-1][0])
            continue
        for _ in range(count):
            x += _zigzag(commands[i])
            y += _zigzag(commands[i + 1])
            i += 2
            if cmd == 1:  # MoveTo starts a part
                parts.append([(x, y)])
            else:
                parts[-1].append((x, y))
    return parts


def decode(tile: bytes) -> dict[str, dict[str, Any]]:
    """{layer name: {"extent": int, "features": [{"id", "type", "properties", "parts"}]}}."""
    layers: dict[str, dict[str, Any]] = {}
    for number, _, layer_buf in _fields(tile):
        if number != 3:
            continue
        name, extent, keys, values, raw_features = "", 4096, [], [], []
        for n, _, v in _fields(layer_buf):
            if n == 1:
                name = v.decode("utf-8")
            elif n == 2:
                raw_features.append(v)
            elif n == 3:
                keys.append(v.decode("utf-8"))
            elif n == 4:
                values.append(_value(v))
            elif n == 5:
                extent = v
        features = []
        for raw in raw_features:
            feature: dict[str, Any] = {"id": None, "type": "unknown", "properties": {}, "parts": []}
            for n, _, v in _fields(raw):
                if n == 1:
                    feature["id"] = v
                elif n == 2:
                    tags = _packed(v)
                    feature["properties"] = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
                elif n == 3:
                    feature["type"] = GEOM_TYPES.get(v, "unknown")
                elif n == 4:
                    feature["parts"] = _geometry(_packed(v))
            features.append(feature)
        layers[name] = {"extent": extent, "features": features}
    return layers
