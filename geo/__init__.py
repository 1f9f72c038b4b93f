"""Pure geometry for gridwatch: shapely in, shapely out — no database, no files, no network.

- ``geo.coords``     GCJ-02 ⇄ WGS84 (AMap's offset datum), vectorised, on points and geometries
- ``geo.codes``      region codes (GB/T 2260, GB/T 10114 ranges), levels and kinds from names
- ``geo.partition``  seeded partitions that cover a parent exactly, reading order, coverage simplification
- ``geo.coverage``   centre coverage: great-circle distances, reach circles, greedy site choice

Import the module you need (``from geo.partition import partition``); nothing is loaded here.
"""

__all__ = ["coords", "codes", "partition", "coverage"]
