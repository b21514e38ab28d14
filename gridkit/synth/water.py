"""Synthetic water bodies: reservoirs, lakes and ponds clear of the rivers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.crs import WGS84
from gridkit.synth._shared import _names, _points_in, _project


def _blobs(
    x: np.ndarray, y: np.ndarray, r: np.ndarray, rng: np.random.Generator, *, n_vertices: int
) -> np.ndarray:
    """Irregular star-shaped polygons (radius with smooth random harmonics)."""
    n = len(x)
    t = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    rad = np.ones((n, n_vertices))
    for harmonic in (2, 3, 5):
        rad += rng.uniform(0, 0.35 / harmonic * 2, (n, 1)) * np.sin(
            harmonic * t + rng.uniform(0, 2 * np.pi, (n, 1))
        )
    rad *= r[:, None]
    ring = np.stack([x[:, None] + rad * np.cos(t), y[:, None] + rad * np.sin(t)], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return shapely.polygons(ring)


def _water_bodies(
    outline_m: shapely.Geometry,
    rivers_m: np.ndarray,
    rng: np.random.Generator,
    *,
    n: int,
    to_w: pyproj.Transformer,
) -> gpd.GeoDataFrame:
    kind = rng.choice(
        np.array(["reservoir", "lake", "pond"], dtype=object), size=n, p=[0.35, 0.15, 0.5]
    )
    r = np.select(
        [kind == "reservoir", kind == "lake"],
        [rng.uniform(250, 1500, n), rng.uniform(200, 700, n)],
        rng.uniform(25, 90, n),
    )
    x, y, _ = _points_in(np.array([outline_m]), np.array([n]), rng)
    polys = _blobs(x, y, r, rng, n_vertices=24)
    keep = shapely.within(polys, outline_m)
    # no centreline through a water body: drop any blob meeting a river or another blob
    hit, _ = shapely.STRtree(rivers_m).query(polys, predicate="intersects")
    keep[hit] = False
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    keep[b[(a < b) & keep[a]]] = False
    polys, kind = polys[keep], kind[keep]
    label = np.select([kind == "reservoir", kind == "lake"], ["水库", "湖"], "塘")
    return gpd.GeoDataFrame(
        {
            "water_body_id": pd.array([f"WB{i + 1:04d}" for i in range(len(polys))], dtype="str"),
            "name": pd.array(_names(rng, len(polys), label.astype(object)), dtype="str"),
            "kind": pd.array(kind, dtype="str"),
            "synthetic": True,
        },
        geometry=_project(polys, to_w),
        crs=WGS84,
    )
