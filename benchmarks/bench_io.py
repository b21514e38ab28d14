"""Layer I/O: gridkit.io read/write of a 10^5-feature units layer in each format.

Peer: the straightforward geopandas calls (``GeoDataFrame.to_file`` / ``read_file``
with default options, ``to_parquet`` / ``read_parquet``). gridkit adds the contract
check, datum handling and RFC 7946 output on top, so a ratio near 1 means that the
checks cost little; the arrow read path is where gridkit gains.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from benchmarks._runner import Case
from gridkit.io import read_layer, write_layer


def make_units(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = 113.0 + rng.uniform(0, 0.5, n)
    y = 27.5 + rng.uniform(0, 0.5, n)
    cells = shapely.box(x, y, x + 0.001, y + 0.001)
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"430202001{i:07d}" for i in range(n)],
            "kind": "community_grid",
            "parent_id": [f"C{i // 10}" for i in range(n)],
            "admin_code": "430202001001",
            "households": rng.integers(0, 400, n),
            "area_m2": rng.uniform(5e3, 2e4, n),
            "version": 1,
            "name": [f"网格{i}" for i in range(n)],
        },
        geometry=cells,
        crs=4326,
    )


def cases(quick: bool) -> list[Case]:
    n = 10_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="gridkit-bench-io-"))
    out = []
    for ext, driver in ((".gpkg", "GPKG"), (".geojson", "GeoJSON"), (".parquet", None)):

        def setup(ext=ext):
            return make_units(n)

        def ours_write(df, ext=ext):
            return write_layer(df, tmp / f"ours{ext}", "units")

        def peer_write(df, ext=ext, driver=driver):
            path = tmp / f"peer{ext}"
            if driver is None:
                df.to_parquet(path)
            else:
                df.to_file(path, layer="units", driver=driver)
            return path

        out.append(
            Case(
                f"write {ext} n={n}",
                setup,
                ours_write,
                peer_write,
                peer_name="geopandas to_file/to_parquet",
                size={"features": n},
            )
        )

        def setup_read(ext=ext, driver=driver):
            df = make_units(n)
            write_layer(df, tmp / f"read{ext}", "units")
            return tmp / f"read{ext}"

        def ours_read(path):
            return read_layer(path, "units")

        def peer_read(path, ext=ext):
            return gpd.read_parquet(path) if ext == ".parquet" else gpd.read_file(path)

        def same(a, b):
            if len(a) != len(b) or list(a["unit_id"]) != list(b["unit_id"]):
                return {"mismatch": "rows differ"}
            return None

        out.append(
            Case(
                f"read {ext} n={n}",
                setup_read,
                ours_read,
                peer_read,
                peer_name="geopandas read_file/read_parquet",
                size={"features": n},
                check=same,
            )
        )
    return out
