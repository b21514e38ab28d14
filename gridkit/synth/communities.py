"""Synthetic communities and their buildings (footprints, parts, households)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit import codes
from gridkit.crs import WGS84
from gridkit.synth._shared import _names, _points_in, _polygonal, _project, _transformer

__all__ = ["building_footprints"]


def building_footprints(
    x: np.ndarray,
    y: np.ndarray,
    *,
    width_m: np.ndarray,
    depth_m: np.ndarray,
    angle_rad: np.ndarray,
) -> np.ndarray:
    """Rotated rectangles centred on ``x, y`` (metric coordinates), vectorised.

    Parameters
    ----------
    x, y
        Centres, metres.
    width_m, depth_m
        Side lengths, metres.
    angle_rad
        Rotation of the width axis from east, counter-clockwise.

    Returns
    -------
    numpy.ndarray of shapely Polygons (counter-clockwise exteriors).

    Examples
    --------
    >>> import numpy as np
    >>> p = building_footprints(np.zeros(1), np.zeros(1), width_m=np.array([20.0]),
    ...                         depth_m=np.array([10.0]), angle_rad=np.zeros(1))
    >>> float(p[0].area)
    200.0
    """
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    dx = corners[None, :, 0] * np.asarray(width_m)[:, None]
    dy = corners[None, :, 1] * np.asarray(depth_m)[:, None]
    c, s = np.cos(angle_rad)[:, None], np.sin(angle_rad)[:, None]
    ring = np.stack([x[:, None] + dx * c - dy * s, y[:, None] + dx * s + dy * c], axis=-1)
    return shapely.polygons(ring)


def _communities(
    villages: gpd.GeoDataFrame,
    rng: np.random.Generator,
    *,
    n: int,
    urban_codes: tuple[str, ...],
    metric: pyproj.CRS,
    radius_m: tuple[float, float] = (350.0, 750.0),
) -> gpd.GeoDataFrame:
    """Compact communities: a village intersected with a disc round its seed point."""
    village_codes = villages["admin_code"].to_numpy(dtype=object)
    urban = codes.district(pd.Series(village_codes, dtype=object)).isin(urban_codes).to_numpy()
    w = np.where(urban, 1.0, 0.06)
    n = min(n, len(villages))
    pick = np.sort(rng.choice(len(villages), size=n, replace=False, p=w / w.sum()))
    to_m, to_w = _transformer(metric, to_metric=True), _transformer(metric, to_metric=False)
    seeds = _project(villages.attrs["seed_points"][pick], to_m)
    disc = shapely.buffer(seeds, rng.uniform(*radius_m, n), quad_segs=12)
    # make the discs a little irregular so communities are not circles
    disc = shapely.intersection(
        disc,
        shapely.buffer(
            shapely.points(
                shapely.get_x(seeds) + rng.uniform(-300, 300, n),
                shapely.get_y(seeds) + rng.uniform(-300, 300, n),
            ),
            radius_m[1] * 1.2,
            quad_segs=6,
        ),
    )
    vil_m = _project(np.asarray(villages.geometry.array)[pick], to_m)
    geoms = _polygonal(shapely.intersection(vil_m, disc))
    geoms = _largest_part(geoms)
    return gpd.GeoDataFrame(
        {
            "community_id": pd.array([f"{c}-C01" for c in village_codes[pick]], dtype="str"),
            "name": pd.array(_names(rng, n, "社区"), dtype="str"),
            "admin_code": pd.array(village_codes[pick], dtype="str"),
            "synthetic": True,
        },
        geometry=_project(geoms, to_w),
        crs=WGS84,
    )


def _largest_part(geoms: np.ndarray) -> np.ndarray:
    parts, idx = shapely.get_parts(geoms, return_index=True)
    area = shapely.area(parts)
    order = np.lexsort((-area, idx))
    first = np.unique(idx[order], return_index=True)[1]
    out = np.empty(len(geoms), dtype=object)
    out[idx[order][first]] = parts[order][first]
    return out


def _buildings(
    communities: gpd.GeoDataFrame,
    n_buildings: int,
    rng: np.random.Generator,
    *,
    metric: pyproj.CRS,
    straddle_share: float = 0.004,
    part_share: float = 0.01,
    missing_share: float = 0.05,
) -> gpd.GeoDataFrame:
    """Buildings on jittered rows inside communities (vectorised over buildings).

    A share of buildings is placed on community boundaries (they straddle), a share
    gets an overlapping extra part (like OSM building parts), and ``households`` is
    missing for a share.
    """
    to_m, to_w = _transformer(metric, to_metric=True), _transformer(metric, to_metric=False)
    comm_m = _project(np.asarray(communities.geometry.array), to_m)
    area = shapely.area(comm_m)
    nc = len(comm_m)
    # buildings per community proportional to area (at least one each)
    share = area / area.sum()
    counts = np.maximum(1, np.floor(share * n_buildings)).astype(np.int64)
    rest = n_buildings - counts.sum()
    if rest > 0:
        counts[rng.choice(nc, size=rest, p=share)] += 1
    elif rest < 0:
        while counts.sum() > n_buildings:
            big = counts > 1
            counts[np.flatnonzero(big)[: counts.sum() - n_buildings]] -= 1
    n_edge = np.minimum(rng.binomial(counts, straddle_share), counts - 1)
    n_in = counts - n_edge
    inner = shapely.buffer(comm_m, -25.0)
    inner = np.where(shapely.is_empty(inner) | (shapely.area(inner) < 2000), comm_m, inner)
    x, y, owner = _points_in(inner, n_in, rng)
    # boundary buildings: points on the outline
    e_owner = np.repeat(np.arange(nc), n_edge)
    pos = shapely.line_interpolate_point(
        shapely.boundary(comm_m[e_owner]), rng.random(len(e_owner)), normalized=True
    )
    x = np.concatenate([x, shapely.get_x(pos)])
    y = np.concatenate([y, shapely.get_y(pos)])
    owner = np.concatenate([owner, e_owner])
    n = len(x)
    grid_angle = rng.uniform(0, np.pi / 2, nc)
    levels = np.where(rng.random(n) < 0.3, rng.integers(1, 4, n), rng.integers(4, 34, n))
    big = levels >= 4
    width = np.where(big, rng.uniform(18, 45, n), rng.uniform(8, 16, n))
    depth = np.where(big, rng.uniform(11, 18, n), rng.uniform(7, 12, n))
    angle = grid_angle[owner] + rng.normal(0, 0.05, n)
    polys = building_footprints(x, y, width_m=width, depth_m=depth, angle_rad=angle)
    # overlapping parts: an extra rectangle shifted along the width axis
    n_part = round(part_share * n)
    base = np.sort(rng.choice(n, size=n_part, replace=False)) if n_part else np.array([], int)
    shift = width[base] * 0.45
    part_polys = building_footprints(
        x[base] + shift * np.cos(angle[base]),
        y[base] + shift * np.sin(angle[base]),
        width_m=width[base] * 0.5,
        depth_m=depth[base] * 0.7,
        angle_rad=angle[base],
    )
    polys = np.concatenate([polys, part_polys])
    owner = np.concatenate([owner, owner[base]])
    levels = np.concatenate([levels, np.minimum(levels[base], 3)])
    is_part = np.concatenate([np.zeros(n, bool), np.ones(n_part, bool)])
    per_floor = rng.integers(2, 7, len(polys))
    households = np.where(levels >= 4, levels * per_floor, rng.integers(0, 3, len(polys)))
    households = pd.array(households, dtype="Int64")
    households[is_part] = 0
    households[rng.random(len(polys)) < missing_share] = pd.NA
    polys_w = _project(polys, to_w)
    comm_w = np.asarray(communities.geometry.array)
    straddles = ~shapely.within(polys_w, comm_w[owner])
    cid = communities["community_id"].to_numpy(dtype=object)[owner]
    order = np.argsort(owner, kind="stable")
    serial = np.empty(len(polys), dtype=np.int64)
    serial[order] = np.arange(len(polys)) - np.searchsorted(owner[order], owner[order])
    out = gpd.GeoDataFrame(
        {
            "building_id": pd.array(
                cid + np.char.mod("-B%05d", serial).astype(object), dtype="str"
            ),
            "community_id": pd.array(cid, dtype="str"),
            "households": households,
            "levels": levels.astype(np.int64),
            "is_part": is_part,
            "straddles": straddles,
            "synthetic": True,
        },
        geometry=polys_w,
        crs=WGS84,
    )
    return out.iloc[order].reset_index(drop=True)
