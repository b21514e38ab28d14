"""Synthetic townships and villages tiling real or synthetic counties."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from gridkit.crs import WGS84
from gridkit.synth._shared import _group_union, _names, _tile

URBAN_DISTRICTS = ("430202", "430203", "430204", "430211")


def _admin_hierarchy(
    counties: gpd.GeoDataFrame,
    rng: np.random.Generator,
    *,
    villages_per_km2: float,
    villages_per_township: float,
    metric: pyproj.CRS,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Townships and villages tiling each county; codes embed the parent code.

    Villages are Voronoi cells clipped to the county; townships are unions of
    villages (grouped by nearest township seed), so villages nest in townships
    exactly and both tile the county.
    """
    geoms = np.asarray(counties.geometry.array)
    area_km2 = np.asarray(counties.to_crs(metric).area) / 1e6
    n_vil = np.clip(np.round(area_km2 * villages_per_km2), 4, 999).astype(int)
    n_town = np.clip(np.round(n_vil / villages_per_township), 2, 99).astype(int)
    vil_geom, vil_owner, vil_seed = _tile(geoms, n_vil, rng)
    codes = counties["admin_code"].to_numpy(dtype=object)
    urban = np.isin(codes, URBAN_DISTRICTS)
    town_rows, _vil_rows = [], []
    vil_town = np.empty(len(vil_geom), dtype=np.int64)
    n_done = 0
    town_geoms = []
    # group villages into townships per county (a loop over counties)
    for i in range(len(geoms)):
        idx = np.flatnonzero(vil_owner == i)
        centres = rng.choice(idx, size=min(n_town[i], len(idx)), replace=False)
        cx, cy = shapely.get_x(vil_seed[centres]), shapely.get_y(vil_seed[centres])
        vx, vy = shapely.get_x(vil_seed[idx]), shapely.get_y(vil_seed[idx])
        near = np.argmin((vx[:, None] - cx) ** 2 + (vy[:, None] - cy) ** 2, axis=1)
        # township numbering follows the seed order; empty groups cannot happen
        # because every centre is its own nearest seed
        vil_town[idx] = n_done + near
        town_geoms.extend(_group_union(vil_geom[idx], near, len(centres)))
        suffix = np.where(
            rng.random(len(centres)) < (0.8 if urban[i] else 0.15),
            "街道",
            np.where(rng.random(len(centres)) < 0.7, "镇", "乡"),
        )
        tcodes = [f"{codes[i]}{k + 1:03d}" for k in range(len(centres))]
        town_rows += list(zip(tcodes, _names(rng, len(centres), suffix), strict=True))
        n_done += len(centres)
    townships = gpd.GeoDataFrame(
        {
            "admin_code": [c for c, _ in town_rows],
            "name": [n for _, n in town_rows],
            "level": "township",
            "parent_code": np.repeat(
                codes, [len(set(vil_town[vil_owner == i])) for i in range(len(geoms))]
            ),
            "synthetic": True,
        },
        geometry=np.array(town_geoms, dtype=object),
        crs=WGS84,
    )
    # village codes: the township code plus a 3-digit serial, in seed order
    order = np.lexsort((np.arange(len(vil_town)), vil_town))
    serial = np.empty(len(order), dtype=np.int64)
    serial[order] = np.arange(len(order)) - np.searchsorted(vil_town[order], vil_town[order])
    tcode = townships["admin_code"].to_numpy(dtype=object)[vil_town]
    is_community = urban[vil_owner] | (rng.random(len(vil_town)) < 0.08)
    villages = (
        gpd.GeoDataFrame(
            {
                "admin_code": tcode + np.char.mod("%03d", serial + 1).astype(object),
                "name": _names(rng, len(vil_town), np.where(is_community, "社区", "村")),
                "level": "village",
                "parent_code": tcode,
                "synthetic": True,
            },
            geometry=vil_geom,
            crs=WGS84,
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    for df in (townships, villages):
        for col in ("admin_code", "name", "level", "parent_code"):
            df[col] = df[col].astype("str")
    villages.attrs["seed_points"] = vil_seed[order]
    return townships, villages
