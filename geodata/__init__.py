"""Sample data for gridkit: the real districts of Zhuzhou (株洲市) and the Xiang River.

The files are derived from public packages by ``geodata/build_zhuzhou.py``; see
``PROVENANCE.md`` for sources, licences and every transformation. Everything finer
(townships, villages, tributaries, communities, buildings, people) is synthetic and
comes from :mod:`gridkit.synth`.

Examples
--------
>>> import geodata
>>> admin = geodata.zhuzhou_admin()
>>> sorted(admin["level"].unique())
['city', 'county']
>>> geodata.xiang_river().loc[0, "river_id"]
'XJ'
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

__all__ = ["DATA_DIR", "xiang_river", "zhuzhou_admin"]

DATA_DIR = Path(__file__).resolve().parent


def zhuzhou_admin() -> gpd.GeoDataFrame:
    """City 430200 and its 9 county-level districts (WGS84, ``admin_areas`` contract).

    Returns
    -------
    GeoDataFrame
        10 rows: ``admin_code``, ``name``, ``level`` (city/county), ``parent_code``;
        the districts tile the city exactly.
    """
    from gridkit.io import read_layer

    return read_layer(DATA_DIR / "zhuzhou_admin.geojson", "admin_areas")


def xiang_river() -> gpd.GeoDataFrame:
    """The Xiang River (湘江) main stem around Zhuzhou, upstream -> downstream (``rivers``).

    Returns
    -------
    GeoDataFrame
        One row: ``river_id`` "XJ", ``name`` "湘江", a LineString in WGS84 that enters
        the city from the south and leaves it to the north.
    """
    from gridkit.io import read_layer

    return read_layer(DATA_DIR / "xiang_river.geojson", "rivers")
