"""Shared pieces of the synthetic data: name pools and vectorised geometry helpers."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import shapely

from gridkit.crs import WGS84

_A = list("东南西北金银石竹松柏桃李杨柳龙凤马白青红黄新长永安太平清泉")
_B = list("山塘湾桥坪冲田湖岭洲坝港铺源溪林岗口园")
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗谭彭曾邓易")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红")


def _names(rng: np.random.Generator, n: int, suffix: np.ndarray | str) -> np.ndarray:
    """``n`` two-character names, unique while the pool lasts, plus a suffix."""
    pool = np.array([a + b for a in _A for b in _B], dtype=object)
    if n <= len(pool):
        picked = rng.choice(pool, size=n, replace=False)
    else:
        picked = pool[rng.integers(0, len(pool), n)] + np.char.mod("%d", np.arange(n)).astype(
            object
        )
    return picked + np.asarray(suffix, dtype=object)


def _person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    s = np.array(_SURNAMES, dtype=object)[rng.integers(0, len(_SURNAMES), n)]
    g = np.array(_GIVEN, dtype=object)
    one = g[rng.integers(0, len(g), n)]
    two = np.where(rng.random(n) < 0.6, g[rng.integers(0, len(g), n)], "")
    return s + one + two


def _transformer(crs: pyproj.CRS, *, to_metric: bool) -> pyproj.Transformer:
    a, b = (WGS84, crs) if to_metric else (crs, WGS84)
    return pyproj.Transformer.from_crs(a, b, always_xy=True)


def _project(geoms: np.ndarray, tr: pyproj.Transformer) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def _points_in(
    geoms: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform random points: ``counts[i]`` inside ``geoms[i]`` (vectorised rejection)."""
    counts = np.asarray(counts, dtype=np.int64)
    bounds = shapely.bounds(geoms)
    fill = np.clip(
        shapely.area(geoms)
        / np.maximum((bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1]), 1e-300),
        0.02,
        1.0,
    )
    xs, ys, owners = [], [], []
    need = counts.copy()
    while need.sum() > 0:
        draw = np.ceil(need / fill * 1.3 + 4).astype(np.int64) * (need > 0)
        owner = np.repeat(np.arange(len(geoms)), draw)
        x = rng.uniform(bounds[owner, 0], bounds[owner, 2])
        y = rng.uniform(bounds[owner, 1], bounds[owner, 3])
        ok = shapely.contains_xy(geoms[owner], x, y)
        owner, x, y = owner[ok], x[ok], y[ok]
        rank = np.arange(len(owner)) - np.searchsorted(owner, owner)  # owner is sorted
        keep = rank < need[owner]
        xs.append(x[keep])
        ys.append(y[keep])
        owners.append(owner[keep])
        need = need - np.bincount(owner[keep], minlength=len(geoms))
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")
    return np.concatenate(xs)[order], np.concatenate(ys)[order], owner[order]


def _tile(
    parents: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each parent into ``counts[i]`` Voronoi cells of random seeds, clipped.

    The cells of one parent tile it: neighbouring cells share their Voronoi edges
    and every cell is the parent intersected with a cell of a partition of the
    plane. Returns (cells, parent index, seed points).
    """
    x, y, owner = _points_in(parents, counts, rng)
    seeds = shapely.points(x, y)
    cells = np.empty(len(seeds), dtype=object)
    # one Voronoi diagram per parent: a loop over areas, not over features
    for i in range(len(parents)):
        idx = np.flatnonzero(owner == i)
        if len(idx) == 1:
            cells[idx] = parents[i]
            continue
        vor = shapely.voronoi_polygons(
            shapely.multipoints(seeds[idx]),
            extend_to=shapely.buffer(shapely.envelope(parents[i]), 1.0),
            ordered=True,
        )
        cells[idx] = shapely.intersection(shapely.get_parts(vor), parents[i])
    return _polygonal(cells), owner, seeds


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygon parts (overlays can add stray points or lines)."""
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, (3, 6)))
    out = geoms.copy()
    for i in bad:  # rare: only cells that touch the parent's outline in a point/line
        parts = shapely.get_parts(geoms[i])
        parts = parts[shapely.get_type_id(parts) == 3]
        out[i] = shapely.multipolygons(parts) if len(parts) > 1 else parts[0]
    return out


def _group_union(geoms: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Union of ``geoms`` per group (coverage union: the members tile without overlap)."""
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups + 1))
    return np.array(
        [
            shapely.coverage_union_all(geoms[order[starts[k] : starts[k + 1]]])
            for k in range(n_groups)
        ],
        dtype=object,
    )


def _default_bbox(side_km: float) -> tuple[float, float, float, float]:
    """A lon/lat square of ``side_km`` centred near Zhuzhou."""
    lon0, lat0 = 113.1, 27.5
    dlat = side_km / 111.0
    dlon = side_km / (111.0 * math.cos(math.radians(lat0)))
    return (lon0 - dlon / 2, lat0 - dlat / 2, lon0 + dlon / 2, lat0 + dlat / 2)
