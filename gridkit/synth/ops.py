"""Synthetic layers for tests, benchmarks and the simulator (seeded, contract-shaped).

Until the river and community splitters land, operations are exercised on a regular
grid of square units in lon/lat near Zhuzhou (113.1 E, 27.8 N).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["grid_units", "grid_workers"]

X0, Y0 = 113.10, 27.80


def grid_units(
    nx: int = 10,
    ny: int = 10,
    *,
    cell_deg: float = 0.005,
    x0: float = X0,
    y0: float = Y0,
    river_rows: int = 0,
    admin_code: str = "430202001",
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """A ``units`` layer: ``nx`` x ``ny`` square cells (about 500 m at the default size).

    The first ``river_rows`` rows are ``river_reach`` units (``parent_id`` ``"R1"``,
    ``length_m`` of the cell width); the rest are ``community_grid`` units with
    ``households``. ``unit_id`` embeds ``admin_code``; cell ``(i, j)`` is row ``j * nx + i``.

    Examples
    --------
    >>> units = grid_units(3, 2, river_rows=1)
    >>> units["kind"].value_counts().to_dict()
    {'river_reach': 3, 'community_grid': 3}
    >>> units["unit_id"].iloc[-1], units.crs.to_epsg()
    ('430202001000005', 4326)
    """
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny))
    i, j = i.ravel(), j.ravel()
    # Shared edges from one array, so neighbours touch exactly (queen contiguity).
    xs = x0 + np.arange(nx + 1) * cell_deg
    ys = y0 + np.arange(ny + 1) * cell_deg
    geoms = shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1])
    n = nx * ny
    river = j < river_rows
    width_m = cell_deg * 111_320 * np.cos(np.radians(y0))
    height_m = cell_deg * 110_574
    households = rng.integers(80, 400, n).astype("int64")
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"{admin_code}{k:06d}" for k in range(n)],
            "kind": np.where(river, "river_reach", "community_grid"),
            "parent_id": np.where(river, "R1", "C" + pd.Series(j // 2).astype(str).to_numpy()),
            "reach_id": pd.array(np.where(river, "R1-" + pd.Series(i).astype(str), None)),
            "admin_code": admin_code,
            "households": pd.array(np.where(river, 0, households), dtype="Int64"),
            "length_m": np.where(river, width_m, np.nan),
            "area_m2": np.full(n, width_m * height_m),
            "version": 1,
        },
        geometry=geoms,
        crs=4326,
    )


def grid_workers(units: gpd.GeoDataFrame, *, level: str = "village") -> tuple[pd.DataFrame, ...]:
    """One worker per unit and the matching ``assignments`` (valid from 2020).

    Examples
    --------
    >>> workers, assignments = grid_workers(grid_units(2, 2), level="township")
    >>> len(workers), workers["level"].iloc[0], assignments["worker_id"].tolist()[:2]
    (4, 'township', ['W00000', 'W00001'])
    """
    n = len(units)
    ids = [f"W{k:05d}" for k in range(n)]
    workers = gpd.GeoDataFrame(
        {
            "worker_id": ids,
            "name": [f"网格员{k}" for k in range(n)],
            "role": "grid_worker",
            "level": level,
            "admin_code": units["admin_code"].to_numpy(),
            "capacity": 1.0,
            "phone": None,
        },
        geometry=shapely.centroid(np.asarray(units.geometry.array)),
        crs=units.crs,
    )
    assignments = pd.DataFrame(
        {
            "unit_id": units["unit_id"].to_numpy(),
            "worker_id": ids,
            "role": "grid_worker",
            "valid_from": pd.Timestamp("2020-01-01", tz="UTC"),
            "valid_to": pd.NaT,
        }
    )
    assignments["valid_to"] = pd.to_datetime(assignments["valid_to"], utc=True)
    return workers, assignments
