"""Point-in-unit: ``gridkit.locate`` side by side with ``geopandas.sjoin`` and DuckDB spatial.

10^6 report points into 10^5 square units (quick: 10^4 into 10^3), all points inside
the grid so every tool answers the same question. DuckDB runs with one thread
(``SET threads=1``) so the ratio is per core, on tables already loaded (the load is
not timed). DuckDB's spatial extension is loaded from the PyPI package
``duckdb-extension-spatial`` (no network); when it is missing the DuckDB case is
skipped and sjoin remains the peer.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from benchmarks._runner import Case
from gridkit.ops.locate import locate
from gridkit.synth.ops import grid_units


def _data(n_points: int, n_units: int, seed: int = 11):
    side = round(float(np.sqrt(n_units)))
    cell = 0.5 / side
    units = grid_units(side, side, cell_deg=cell)
    rng = np.random.default_rng(seed)
    # Keep points off the cell edges so boundary conventions cannot differ.
    x = 113.10 + rng.uniform(0, 0.5 - 1e-9, n_points)
    y = 27.80 + rng.uniform(0, 0.5 - 1e-9, n_points)
    points = gpd.GeoDataFrame(
        {"report_id": np.arange(n_points)}, geometry=gpd.points_from_xy(x, y), crs=4326
    )
    return points, units


def _ours(data):
    points, units = data
    return locate(points, units)["unit_id"].to_numpy(dtype=object)


def _sjoin(data):
    points, units = data
    joined = gpd.sjoin(points, units[["unit_id", "geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["unit_id"].reindex(points.index).to_numpy(dtype=object)


def _duckdb_connection():
    try:
        import duckdb
        import duckdb_extension_spatial
    except ImportError:
        return None
    from pathlib import Path

    con = duckdb.connect()
    con.execute("SET threads=1")
    ext = sorted(
        Path(duckdb_extension_spatial.__file__).parent.glob("extensions/*/spatial.duckdb_extension")
    )
    try:
        con.execute(f"LOAD '{ext[-1]}'" if ext else "LOAD spatial")
    except Exception:  # any load failure means: no DuckDB peer here
        return None
    return con


def _duckdb_setup(n_points: int, n_units: int):
    import shapely

    points, units = _data(n_points, n_units)
    con = _duckdb_connection()
    pts = pd.DataFrame(
        {"pid": np.arange(len(points)), "wkb": shapely.to_wkb(np.asarray(points.geometry.array))}
    )
    uts = pd.DataFrame(
        {
            "unit_id": units["unit_id"].to_numpy(),
            "wkb": shapely.to_wkb(np.asarray(units.geometry.array)),
        }
    )
    con.register("pts_df", pts)
    con.register("uts_df", uts)
    con.execute("CREATE TABLE pts AS SELECT pid, ST_GeomFromWKB(wkb) AS geom FROM pts_df")
    con.execute("CREATE TABLE uts AS SELECT unit_id, ST_GeomFromWKB(wkb) AS geom FROM uts_df")
    return con, len(points)


def _duckdb(state):
    con, n = state
    res = con.execute(
        "SELECT p.pid, u.unit_id FROM pts p JOIN uts u ON ST_Contains(u.geom, p.geom)"
    ).fetchnumpy()
    out = np.full(n, None, dtype=object)
    out[res["pid"]] = res["unit_id"]
    return out


def cases(quick: bool) -> list[Case]:
    n_points, n_units = (10_000, 1_000) if quick else (1_000_000, 100_000)
    size = {"points": n_points, "units": n_units}

    def same(a, b):
        a = np.asarray(a, dtype=object)
        b = np.asarray(b, dtype=object)
        diff = int((a != b).sum())
        return {"mismatched_points": diff} if diff else None

    out = [
        Case(
            f"locate {n_points:.0e} points into {n_units:.0e} units",
            lambda: _data(n_points, n_units),
            _ours,
            _sjoin,
            peer_name="geopandas.sjoin(predicate='within')",
            size=size,
            check=same,
        )
    ]
    if _duckdb_connection() is not None:
        reference = {}

        def setup_duck():
            reference["data"] = _data(n_points, n_units)
            return reference["data"], _duckdb_setup(n_points, n_units)

        out.append(
            Case(
                f"locate vs DuckDB spatial (1 thread) {n_points:.0e} into {n_units:.0e}",
                setup_duck,
                lambda s: _ours(s[0]),
                lambda s: _duckdb(s[1]),
                peer_name="duckdb spatial ST_Contains join, threads=1",
                size=size,
                check=same,
            )
        )
    return out
