"""Seeded synthetic layers: townships, villages, tributaries, reservoirs, communities,
buildings, workers, river chiefs and departments.

No public data gives these for Zhuzhou, so they are generated *inside the real
districts* (``geodata``) around the real Xiang River. Every generated row carries
``synthetic=True`` (the real city, districts and Xiang have ``synthetic=False``); the
names are plausible Chinese names, not real places or people.

Two entry points:

- :func:`sample_layers` -- the Zhuzhou demo sample (a few hundred villages, a few
  dozen communities, ~10^4 buildings);
- :func:`synthetic_layers` -- the same layers on a synthetic rectangle, sized for
  benchmarks (10^6 buildings, 10^5 km of river, thousands of villages); its rivers
  come from :func:`synthetic_rivers`, a planar dendritic network built basin by basin
  (10^5 km in well under a second).

Both are deterministic: the same seed gives identical layers. Geometry is built
with numpy and shapely 2 array functions; Python loops run over areas or
communities (one Voronoi diagram per parent), never over buildings or vertices.

Examples
--------
>>> layers = sample_layers(seed=1)
>>> sorted(layers["admin_areas"]["level"].unique())
['city', 'county', 'township', 'village']
>>> bool(layers["buildings"]["synthetic"].all())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.crs import WGS84
from gridkit.layers import check_layer

__all__ = [
    "CATEGORIES",
    "DEPARTMENTS",
    "building_footprints",
    "river_sections",
    "sample_layers",
    "synthetic_layers",
    "synthetic_rivers",
]

#: Report categories (key -> Chinese label): river problems, then community ones.
CATEGORIES: dict[str, str] = {
    "encroachment": "侵占河道",
    "reclamation": "围垦",
    "illegal_discharge": "超标排污",
    "illegal_aquaculture": "违法养殖",
    "sand_mining": "非法采砂",
    "waterway_damage": "破坏航道",
    "illegal_fishing": "电毒炸鱼",
    "floating_garbage": "漂浮垃圾",
    "street_light": "路灯损坏",
    "road_damage": "道路破损",
    "cctv": "监控老化",
    "green_belt": "绿化带脏乱",
    "fire_equipment": "消防设施缺失",
    "sewage": "污水管网",
    "illegal_construction": "违章建筑",
    "vegetable_plot": "绿化带种菜",
}

#: Department templates (suffix of the area name -> categories it leads on).
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "水利局": ("encroachment", "reclamation", "sand_mining"),
    "生态环境局": ("illegal_discharge",),
    "农业农村局": ("illegal_aquaculture", "illegal_fishing"),
    "交通运输局": ("waterway_damage",),
    "城市管理局": (
        "floating_garbage",
        "street_light",
        "road_damage",
        "green_belt",
        "illegal_construction",
        "vegetable_plot",
    ),
    "公安局": ("cctv",),
    "消防救援大队": ("fire_equipment",),
    "住房和城乡建设局": ("sewage",),
}

URBAN_DISTRICTS = ("430202", "430203", "430204", "430211")

_A = list("东南西北金银石竹松柏桃李杨柳龙凤马白青红黄新长永安太平清泉")
_B = list("山塘湾桥坪冲田湖岭洲坝港铺源溪林岗口园")
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗谭彭曾邓易")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红")
_RIVER_SUFFIX = ("河", "水", "溪", "港", "江")


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- admin


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


# --------------------------------------------------------------------------- rivers


def _meanders(
    start: np.ndarray,
    heading: np.ndarray,
    length_m: np.ndarray,
    rng: np.random.Generator,
    *,
    n_steps: int,
) -> np.ndarray:
    """Meandering polylines from ``start`` (N, 2) along ``heading`` (radians).

    Heading = base + a sine meander + a damped random walk; all lines are built at
    once as an (N, n_steps + 1, 2) array.
    """
    n = len(start)
    k = np.arange(n_steps)
    wavelength = rng.uniform(6, 14, n)[:, None]
    amplitude = rng.uniform(0.25, 0.7, n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    walk = np.cumsum(rng.normal(0, 0.12, (n, n_steps)), axis=1) * 0.6
    h = heading[:, None] + amplitude * np.sin(2 * np.pi * k / wavelength + phase) + walk
    step = (length_m / n_steps)[:, None]
    xy = np.empty((n, n_steps + 1, 2))
    xy[:, 0] = start
    xy[:, 1:, 0] = start[:, :1] + np.cumsum(step * np.cos(h), axis=1)
    xy[:, 1:, 1] = start[:, 1:] + np.cumsum(step * np.sin(h), axis=1)
    return xy


def _tributaries(
    parents_m: list[np.ndarray],
    parents_w: list[np.ndarray],
    n: int,
    rng: np.random.Generator,
    *,
    length_m: tuple[float, float],
    to_wgs: pyproj.Transformer,
    n_steps: int = 24,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` tributaries joining the parent lines at parent vertices.

    Each line is drawn from its source to the confluence, whose coordinates are
    copied from the parent's WGS84 vertex so the junction is topologically exact.
    Returns (WGS84 coords (n, n_steps+1, 2), metric coords, parent index, vertex).
    """
    sizes = np.array([len(p) for p in parents_m])
    ok = sizes >= 8
    weights = np.where(ok, sizes, 0).astype(float)
    parent = rng.choice(len(parents_m), size=n, p=weights / weights.sum())
    # a vertex away from both ends of the parent
    vertex = (2 + np.floor(rng.random(n) * (sizes[parent] - 6))).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    all_m = np.concatenate(parents_m)
    all_w = np.concatenate(parents_w)
    at = offsets[parent] + vertex
    down = all_m[at + 1] - all_m[at - 1]
    # heading away from the confluence: upstream along the parent, turned to one side
    back = np.arctan2(-down[:, 1], -down[:, 0])
    side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    heading = back + side * rng.uniform(np.radians(50), np.radians(110), n)
    length = rng.uniform(*length_m, n)
    xy_m = _meanders(all_m[at], heading, length, rng, n_steps=n_steps)[:, ::-1]
    flat = xy_m.reshape(-1, 2)
    lon, lat = to_wgs.transform(flat[:, 0], flat[:, 1])
    xy_w = np.column_stack([lon, lat]).reshape(xy_m.shape)
    xy_w[:, -1] = all_w[at]  # exact confluence on a parent vertex
    return xy_w, xy_m, parent, vertex


def _river_network(
    main_w: np.ndarray,
    outline: shapely.Geometry,
    rng: np.random.Generator,
    *,
    tributary_km: float,
    metric: pyproj.CRS,
    main_id: str = "XJ",
    main_name: str = "湘江",
    first_km: tuple[float, float] = (8.0, 30.0),
    second_km: tuple[float, float] = (3.0, 10.0),
    max_order: int = 3,
    max_rounds: int = 8,
) -> tuple[list[np.ndarray], list[str], list[str], list[str | None]]:
    """Dendritic network of about ``tributary_km`` of tributaries joining the main stem.

    In rounds, new tributaries join any accepted line of order < ``max_order`` at one of
    its vertices (first order: ``first_km`` long, higher orders: ``second_km``).
    Candidates leaving ``outline``, crossing an accepted line or meeting another
    candidate are dropped, so the network stays planar; rounds stop once the length
    budget is met.
    """
    to_m = _transformer(metric, to_metric=True)
    to_w = _transformer(metric, to_metric=False)
    main_m = np.column_stack(to_m.transform(main_w[:, 0], main_w[:, 1]))
    lines_w, lines_m = [main_w], [main_m]
    ids, names, parents, orders = [main_id], [main_name], [None], [0]
    accepted = [shapely.linestrings(main_w)]
    shapely.prepare(outline)
    children: dict[str, int] = {}
    done_km = 0.0
    mean_km = {1: sum(first_km) / 2, 2: sum(second_km) / 2}
    for _ in range(max_rounds):
        left = tributary_km - done_km
        if left <= 0:
            break
        open_ = [i for i, o in enumerate(orders) if o < max_order]
        # split the remaining budget between joining the main stem and the tributaries
        first_share = 0.6 if len(open_) > 1 else 1.0
        count = (
            math.ceil(left * first_share / mean_km[1] + left * (1 - first_share) / mean_km[2]) * 2
        )
        count = max(4, min(count, 200_000))
        xy_w, xy_m, pidx, _vertex = _tributaries(
            [lines_m[i] for i in open_],
            [lines_w[i] for i in open_],
            count,
            rng,
            length_m=(1.0, 1.0),
            to_wgs=to_w,
            n_steps=24,
        )
        confluence = xy_w[:, -1].copy()
        porder = np.asarray(orders)[open_][pidx] + 1
        # rescale each candidate to its order's length range (drawn as unit length)
        lo = np.where(porder == 1, first_km[0], second_km[0]) * 1000
        hi = np.where(porder == 1, first_km[1], second_km[1]) * 1000
        length = rng.uniform(lo, hi)
        end = xy_m[:, -1:, :]
        xy_m = end + (xy_m - end) * length[:, None, None]
        flat = xy_m.reshape(-1, 2)
        xy_w = np.column_stack(to_w.transform(flat[:, 0], flat[:, 1])).reshape(xy_m.shape)
        xy_w[:, -1] = confluence  # exact: copied from the parent vertex
        geoms = shapely.linestrings(xy_w)
        keep = shapely.within(geoms, outline)
        hit, _ = shapely.STRtree(np.array(accepted, dtype=object)).query(geoms, predicate="crosses")
        keep[hit] = False
        a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        keep[b[(a < b) & keep[a]]] = False
        kept = np.flatnonzero(keep)
        cum = np.cumsum(length[kept]) / 1000
        kept = kept[cum - length[kept] / 1000 < left]  # stop at the budget
        suffix = np.array(_RIVER_SUFFIX, dtype=object)[rng.integers(0, 5, len(kept))]
        new_names = _names(rng, len(kept), suffix)
        for j, k in enumerate(kept):  # ids: a loop over kept rivers, not vertices
            pid = ids[open_[pidx[k]]]
            children[pid] = children.get(pid, 0) + 1
            n = children[pid]
            ids.append(f"{pid}-T{n:02d}" if pid == main_id else f"{pid}-{n:02d}")
            names.append(new_names[j])
            parents.append(pid)
            orders.append(int(porder[k]))
            lines_w.append(xy_w[k])
            lines_m.append(xy_m[k])
            accepted.append(geoms[k])
        done_km += float(length[kept].sum() / 1000)
    return lines_w, ids, names, parents


def _rivers_frame(
    lines_w: list[np.ndarray],
    ids: list[str],
    names: list[str],
    parents: list[str | None],
    *,
    main_synthetic: bool,
) -> gpd.GeoDataFrame:
    geoms = shapely.linestrings(
        np.concatenate(lines_w),
        indices=np.repeat(np.arange(len(lines_w)), [len(c) for c in lines_w]),
    )
    synthetic = np.ones(len(ids), dtype=bool)
    synthetic[0] = main_synthetic
    df = gpd.GeoDataFrame(
        {
            "river_id": pd.array(ids, dtype="str"),
            "name": pd.array(names, dtype="str"),
            "parent_river_id": pd.array(parents, dtype="str"),
            "synthetic": synthetic,
        },
        geometry=geoms,
        crs=WGS84,
    )
    return df


# --------------------------------------------------------------------------- scale rivers
#
# The scale generator tiles the bbox into equal lon/lat cells, one river basin per
# cell. Every basin is built from the same template in normalised cell coordinates
# (u across, v along the flow, both in [0, 1]), so all basins are regular numpy
# arrays and nothing loops over rivers or vertices:
#
# - a main stem, strictly monotone in v, meandering in u around the cell axis;
# - first-order tributaries in strips along the stem, alternating sides. A strip is a
#   run of stem vertices; its tributary stays inside the strip's v-range and on its
#   side of the stem, and joins at a stem vertex made the strict u-extreme of the
#   strip (so no other stem point in the strip is nearer that side). The tributary is
#   strictly monotone in u away from the stem, hence cannot meet the stem again;
# - second-order tributaries in sub-strips along each first-order one, alternating
#   above/below, with the same rule one level down (monotone in v, confined to the
#   sub-strip's u-range and to the parent's strip).
#
# Same-side strips are disjoint runs of a strictly monotone parent, so the network is
# planar by construction, and every confluence is a vertex of the parent. Basins stay
# separate (each main stem drains to its own outlet on the cell edge, like a coastal
# basin); a margin keeps neighbouring basins apart. The bbox is filled with cells whose
# size follows the requested density, then whole leaf tributaries are dropped (random,
# seeded) until the total length meets ``river_km``.

_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON = 111.320
_S1, _P = 4, 24  # first-order strips per side of the stem; stem vertices per strip
_S2, _Q = 4, 12  # second-order sub-strips per side of a tributary; its vertices per sub-strip
_N2 = 12  # segments of a second-order tributary
_MARGIN = 0.01  # empty border of a cell (fraction of the cell), keeps basins apart
_KM_PER_CELL_KM = 13.0  # river km of one full basin per km of (square) cell side


def _fit(w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Shrink the positive / negative parts of offsets ``w`` (..., n) into [lo, hi]."""
    top = w.max(axis=-1, keepdims=True)
    bottom = w.min(axis=-1, keepdims=True)
    hi, lo = hi[..., None], lo[..., None]
    up = np.where(top > hi, hi / np.where(top > 0, top, 1.0), 1.0)
    down = np.where(bottom < lo, lo / np.where(bottom < 0, bottom, -1.0), 1.0)
    return np.where(w > 0, w * up, w * down)


def _progress(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """Strictly increasing fractions 0 = f_0 < ... < f_n = 1, shape (*shape, n + 1)."""
    steps = np.cumsum(rng.uniform(0.8, 1.2, (*shape, n)), axis=-1)
    return np.concatenate([np.zeros((*shape, 1)), steps / steps[..., -1:]], axis=-1)


def _wiggle(rng: np.random.Generator, f: np.ndarray, *, rough: float = 0.3) -> np.ndarray:
    """Smooth meander offsets along fractions ``f`` (..., n), 0 at f = 0, about +-1."""
    shape = (*f.shape[:-1], 1)
    out = np.zeros(f.shape)
    for cycles, weight in ((rng.uniform(0.7, 2.0, shape), 1.0), (rng.uniform(3, 6, shape), rough)):
        phase = rng.uniform(0, 2 * np.pi, shape)
        out += weight * (np.sin(2 * np.pi * cycles * f + phase) - np.sin(phase))
    return out


def _strips(n_strips: int, period: int) -> tuple[np.ndarray, np.ndarray]:
    """First vertex of each strip, both sides interleaved in flow order, and the side.

    Side 0 strips start at ``k * period``, side 1 strips half a period later; a strip
    spans ``period`` vertices, so strips of one side are disjoint runs.
    """
    k = np.arange(n_strips) * period
    first = np.stack([k, k + period // 2], axis=1).reshape(-1)
    return first, np.tile([0, 1], n_strips)


def _bends(x: np.ndarray, first: np.ndarray, side: np.ndarray, period: int, eps) -> np.ndarray:
    """Confluence vertex of each strip of ``x`` (lines, vertices); edits ``x`` in place.

    The confluence is the min (side 0) / max (side 1) of ``x`` over the central half of
    the strip, pushed by ``eps`` to be the strict extreme of the whole strip. Central
    halves of the two sides do not overlap, so no vertex takes two confluences.
    """
    rows = np.arange(x.shape[0])[:, None]
    centre = first[:, None] + period // 4 + np.arange(period // 2)
    whole = first[:, None] + np.arange(period)
    sign = np.where(side == 0, 1.0, -1.0)
    at = first + period // 4 + np.argmin(sign[:, None] * x[:, centre], axis=-1)
    low, high = side == 0, side == 1
    x[rows, at[:, low]] = x[:, whole[low]].min(axis=-1) - eps
    x[rows, at[:, high]] = x[:, whole[high]].max(axis=-1) + eps
    return at


def _bend_wave(n: int, period: int, *, shift: int = 0) -> np.ndarray:
    """Meander of ``n`` vertices, 0 at vertex 0, troughs in the middle of side-0 strips
    and crests in the middle of side-1 strips (see :func:`_strips`, shifted by ``shift``)."""
    t = np.arange(n) + 0.5 - shift
    return np.cos(2 * np.pi * t / period) - np.cos(2 * np.pi * (0.5 - shift) / period)


def _basins(
    rng: np.random.Generator, n: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """``n`` basins in normalised cell coordinates.

    Returns ([(u, v) of stems (n, ns), tributaries (n, 2S1, n1+1), second order
    (n, 2S1, 2S2, N2+1)], confluence vertex of each tributary on the stem (n, 2S1),
    of each second-order one on its tributary (n, 2S1, 2S2)). Tributaries run from the
    confluence (index 0) upstream; the stem runs from its source to the outlet.
    """
    rows = np.arange(n)[:, None]
    # main stem: strictly monotone in v; bends where the tributaries join
    ns = _S1 * _P + _P // 2 + _P // 4
    jit = rng.uniform(-0.3, 0.3, (n, ns))
    jit[:, [0, -1]] = 0
    v = 0.03 + (1 - _MARGIN - 0.03) * (np.arange(ns) + jit) / (ns - 1)
    swing = rng.uniform(0.02, 0.045, (n, 1)) * (1 + 0.3 * np.sin(rng.uniform(0, 6, (n, 1)) + v * 5))
    drift = rng.uniform(0.02, 0.05, (n, 1)) * np.sin(
        2 * np.pi * rng.uniform(0.5, 1.5, (n, 1)) * v + rng.uniform(0, 2 * np.pi, (n, 1))
    )
    u = 0.5 + rng.uniform(-0.05, 0.05, (n, 1)) + swing * _bend_wave(ns, _P) + drift
    first, side = _strips(_S1, _P)
    at = _bends(u, first, side, _P, 0.002)
    # first-order tributaries: strictly monotone in u away from the stem
    sign = np.where(side == 0, -1.0, 1.0)
    uc, vc = u[rows, at], v[rows, at]
    v_lo, v_hi = v[:, first], v[:, first + _P - 1]
    n1 = _S2 * _Q + _Q // 2 + _Q // 4
    room = np.where(sign < 0, uc - _MARGIN, 1 - _MARGIN - uc)
    f1 = _progress(rng, uc.shape, n1)
    u1 = uc[..., None] + (sign * room * rng.uniform(0.55, 0.97, uc.shape))[..., None] * f1
    h = v_hi - v_lo
    eps = 0.02 * h
    shape = (*h.shape, 1)
    w = h[..., None] * (
        rng.uniform(0.03, 0.07, shape) * _bend_wave(n1 + 1, _Q, shift=1)
        + rng.uniform(0.05, 0.15, shape) * _wiggle(rng, f1, rough=0.15)
        - rng.uniform(0.2, 0.6, shape) * f1  # leaves the stem pointing upstream
    )
    # _fit is monotone, so the bends stay where they are
    v1 = vc[..., None] + _fit(w, v_lo + 2 * eps - vc, v_hi - 2 * eps - vc)
    # second order: the same rule along each tributary (vertex 0, the confluence, excluded)
    first2, side2 = _strips(_S2, _Q)
    first2 = first2 + 1
    flat_v = v1.reshape(-1, n1 + 1)
    at2 = _bends(flat_v, first2, side2, _Q, eps.reshape(-1, 1)).reshape(*h.shape, -1)
    v1 = flat_v.reshape(v1.shape)
    idx = (rows[..., None], np.arange(2 * _S1)[None, :, None], at2)
    u_c2, v_c2 = u1[idx], v1[idx]
    ua, ub = u1[..., first2], u1[..., first2 + _Q - 1]
    u_min, u_max = np.minimum(ua, ub), np.maximum(ua, ub)
    # side 0 below the tributary (v decreasing), side 1 above
    up = np.where(side2 == 0, -1.0, 1.0)
    vroom = np.where(up > 0, v_hi[..., None] - v_c2, v_c2 - v_lo[..., None])
    f2 = _progress(rng, v_c2.shape, _N2)
    v2 = v_c2[..., None] + (up * vroom * rng.uniform(0.45, 0.95, vroom.shape))[..., None] * f2
    width = (u_max - u_min)[..., None]
    w2 = width * (
        rng.uniform(0.15, 0.35, (*width.shape[:-1], 1)) * _wiggle(rng, f2, rough=0.0)
        + (sign[:, None] * rng.uniform(0.1, 0.4, width.shape[:-1]))[..., None] * f2
    )
    u2 = u_c2[..., None] + _fit(w2, u_min - u_c2, u_max - u_c2)
    return [(u, v), (u1, v1), (u2, v2)], at, at2


def _cell_xy(u: np.ndarray, v: np.ndarray, turn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell coordinates of template coordinates, the flow turned north/south/east/west."""
    p = np.select([turn == 0, turn == 1, turn == 2], [u, 1 - u, v], 1 - v)
    q = np.select([turn == 0, turn == 1, turn == 2], [v, 1 - v, 1 - u], u)
    return p, q


def _ragged(parts: list[np.ndarray], order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate lines given as (n_k, m_k, 2) arrays, rows in ``order``.

    Returns (coords (N, 2), line index of each coordinate), ready for
    ``shapely.linestrings(coords, indices=...)``.
    """
    sizes = np.concatenate([np.full(len(a), a.shape[1]) for a in parts])
    flat = np.concatenate([a.reshape(-1, 2) for a in parts])
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])[order]
    count = sizes[order]
    out_start = np.concatenate([[0], np.cumsum(count)[:-1]])
    take = np.repeat(start - out_start, count) + np.arange(count.sum())
    return flat[take], np.repeat(np.arange(len(order)), count)


def _trim(
    length: np.ndarray, order: np.ndarray, excess: float, rng: np.random.Generator
) -> tuple[np.ndarray, int, float]:
    """Lines to drop so the total loses ``excess``: highest order first (a line goes
    only after all its children), random within an order; the first line not dropped
    whole is shrunk instead. Returns (keep mask, shrunk line or -1, its scale)."""
    keep = np.ones(len(length), dtype=bool)
    for level in (2, 1, 0):
        cand = rng.permutation(np.flatnonzero(order == level))
        cum = np.cumsum(length[cand])
        n_drop = int(np.searchsorted(cum, excess, side="right"))
        n_drop = min(n_drop, len(cand) - (level == 0))  # keep one line at least
        keep[cand[:n_drop]] = False
        excess -= float(cum[n_drop - 1]) if n_drop else 0.0
        if n_drop < len(cand):
            line = int(cand[n_drop])
            return keep, line, max(0.05, 1.0 - max(excess, 0.0) / float(length[line]))
    return keep, -1, 1.0


def _scale_rivers(
    bbox: tuple[float, float, float, float], river_km: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of the scale river network (see the comment above ``_fit``).

    Returns (coords (N, 2) lon/lat, line index per coordinate, river ids, parent
    ids (None for main stems), length_km), rows sorted by river id.
    """
    lon0, lat0, lon1, lat1 = bbox
    w_km = (lon1 - lon0) * _KM_PER_DEG_LON * math.cos(math.radians((lat0 + lat1) / 2))
    h_km = (lat1 - lat0) * _KM_PER_DEG_LAT
    # n square-ish basins of side s hold ~_KM_PER_CELL_KM * s km each: aim ~8 % over
    # the target and trim whole leaf tributaries back to it
    n_min = max(1, math.ceil((1.08 * river_km / _KM_PER_CELL_KM) ** 2 / (w_km * h_km)))
    nx = max(1, round(math.sqrt(n_min * w_km / h_km)))
    ny = max(1, math.ceil(n_min / nx))
    n = nx * ny
    levels, at1, at2 = _basins(rng, n)
    turn = rng.integers(0, 4, n)
    cell = np.arange(n)
    dlon, dlat = (lon1 - lon0) / nx, (lat1 - lat0) / ny
    lat_c = lat0 + (cell // nx + 0.5) * dlat
    kx = dlon * _KM_PER_DEG_LON * np.cos(np.radians(lat_c))  # km per unit cell p
    ky = dlat * _KM_PER_DEG_LAT
    lines, lengths = [], []
    for u, v in levels:
        shape = (n,) + (1,) * (u.ndim - 1)
        p, q = _cell_xy(u, v, turn.reshape(shape))
        seg = np.hypot(np.diff(p, axis=-1) * kx.reshape(shape), np.diff(q, axis=-1) * ky)
        lengths.append(seg.sum(axis=-1))
        ix, iy = (cell % nx).reshape(shape), (cell // nx).reshape(shape)
        lines.append(np.stack([lon0 + (ix + p) * dlon, lat0 + (iy + q) * dlat], axis=-1))
    stem, trib, sub = lines
    rows = cell[:, None]
    # exact confluences: the first vertex of a tributary is its parent's vertex
    trib[:, :, 0] = stem[rows, at1]
    sub[:, :, :, 0] = trib[rows[..., None], np.arange(2 * _S1)[None, :, None], at2]
    n1, n2 = trib.shape[1], sub.shape[1] * sub.shape[2]
    length = np.concatenate([a.reshape(-1) for a in lengths])
    order = np.concatenate([np.zeros(n, int), np.ones(n * n1, int), np.full(n * n2, 2)])
    keep, shrunk, scale = _trim(length, order, float(length.sum()) - river_km, rng)
    # ids: children numbered in flow order along their parent, counting kept ones
    k1 = keep[n : n + n * n1].reshape(n, n1)
    k2 = keep[n + n * n1 :].reshape(n, n1, sub.shape[2])
    num1 = np.cumsum(k1, axis=1)
    num2 = np.cumsum(k2[..., ::-1], axis=-1)[..., ::-1]  # along the tributary downstream
    width = max(3, len(str(n)))
    basin = np.char.mod(f"R%0{width}d", cell + 1)
    t_id = np.char.add(np.repeat(basin, n1).reshape(n, n1), np.char.mod("-T%02d", num1))
    s_id = np.char.add(np.repeat(t_id, sub.shape[2]).reshape(k2.shape), np.char.mod("-%02d", num2))
    ids = np.concatenate([basin, t_id.reshape(-1), s_id.reshape(-1)])
    parent = np.concatenate(
        [
            np.full(n, None, dtype=object),
            np.repeat(basin, n1),
            np.repeat(t_id.reshape(-1), sub.shape[2]),
        ]
    )
    kept = np.flatnonzero(keep)
    rank = kept[np.argsort(ids[kept], kind="stable")]
    # tributaries are drawn from their source down to the confluence
    parts = [
        stem,
        trib[..., ::-1, :].reshape(-1, trib.shape[-2], 2),
        sub[..., ::-1, :].reshape(-1, sub.shape[-2], 2),
    ]
    if shrunk >= 0:
        # a line with no children left, scaled towards its last vertex (confluence or
        # outlet): it stays in its (convex) strip, so the network stays planar
        k = int(np.searchsorted(np.cumsum([len(p) for p in parts]), shrunk, side="right"))
        line = parts[k][shrunk - sum(len(p) for p in parts[:k])]
        line[:-1] = line[-1] + scale * (line[:-1] - line[-1])
        length[shrunk] *= scale
    coords, index = _ragged(parts, rank)
    return coords, index, ids[rank].astype(object), parent[rank], length[rank]


# --------------------------------------------------------------------------- water bodies


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


# --------------------------------------------------------------------------- buildings


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
    codes = villages["admin_code"].to_numpy(dtype=object)
    urban = np.isin(pd.Series(codes).str[:6].to_numpy(), urban_codes)
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
            "community_id": pd.array([f"{c}-C01" for c in codes[pick]], dtype="str"),
            "name": pd.array(_names(rng, n, "社区"), dtype="str"),
            "admin_code": pd.array(codes[pick], dtype="str"),
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


# --------------------------------------------------------------------------- people


_KM_PER_DEG = 105.0  # rough km per degree of line length around 27 N (for sizing only)


def river_sections(rivers: gpd.GeoDataFrame, admin: gpd.GeoDataFrame) -> pd.DataFrame:
    """River sections: every (river, admin area) pair where the river runs inside the area.

    Parameters
    ----------
    rivers
        ``rivers`` layer.
    admin
        ``admin_areas`` layer (any levels).

    Returns
    -------
    DataFrame with ``river_id``, ``admin_code``, ``level``, ``length_deg`` (the
    intersection length in degrees, > 0; use it only to rank).
    """
    rg = np.asarray(rivers.geometry.array)
    ag = np.asarray(admin.geometry.array)
    r, a = shapely.STRtree(ag).query(rg, predicate="intersects")
    length = shapely.length(shapely.intersection(rg[r], ag[a]))
    keep = length > 0
    return pd.DataFrame(
        {
            "river_id": rivers["river_id"].to_numpy()[r[keep]],
            "admin_code": admin["admin_code"].to_numpy()[a[keep]],
            "level": admin["level"].to_numpy()[a[keep]],
            "length_deg": length[keep],
        }
    )


def _people(
    admin: gpd.GeoDataFrame,
    rivers: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    rng: np.random.Generator,
    *,
    gap_share: float,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Workers (grid workers, building heads, chiefs), chief appointments, departments."""
    sections = river_sections(rivers, admin)
    # deliberate gaps: a share of township and village sections has no chief
    low = sections["level"].isin(["township", "village"]).to_numpy()
    gap = low & (rng.random(len(sections)) < gap_share)
    if low.any() and not gap.any():
        gap[rng.choice(np.flatnonzero(low))] = True
    appointed = sections[~gap].reset_index(drop=True)
    # one chief person per area holding sections; appointed to each section there
    areas = appointed.drop_duplicates("admin_code")[["admin_code", "level"]]
    areas = areas.reset_index(drop=True)
    area_geom = admin.set_index("admin_code").geometry.reindex(areas["admin_code"])
    chief_pts = shapely.point_on_surface(np.asarray(area_geom.array))
    chief_workers = pd.DataFrame(
        {
            "worker_id": [f"W-RC-{c}" for c in areas["admin_code"]],
            "role": "grid_worker",
            "level": areas["level"].to_numpy(),
            "admin_code": areas["admin_code"].to_numpy(),
            "capacity": appointed.groupby("admin_code")
            .size()
            .reindex(areas["admin_code"])
            .to_numpy(dtype=float),
        }
    )
    by_area = dict(zip(areas["admin_code"], chief_workers["worker_id"], strict=True))
    chiefs = pd.DataFrame(
        {
            "chief_id": [f"RC{i + 1:05d}" for i in range(len(appointed))],
            "worker_id": appointed["admin_code"].map(by_area).to_numpy(),
            "level": appointed["level"].to_numpy(),
            "river_id": appointed["river_id"].to_numpy(),
            "admin_code": appointed["admin_code"].to_numpy(),
            "synthetic": True,
        }
    )
    # community grid workers (~1 per 300 households, each able to hold two grids of
    # ~250 households) and building heads (~1 per 8 buildings)
    hh = (
        buildings.groupby("community_id")["households"]
        .sum()
        .reindex(communities["community_id"])
        .fillna(0)
        .to_numpy(dtype=float)
    )
    nb = (
        buildings.groupby("community_id")
        .size()
        .reindex(communities["community_id"])
        .fillna(0)
        .to_numpy(dtype=np.int64)
    )
    n_grid = np.maximum(1, np.ceil(hh / 300)).astype(np.int64)
    n_head = np.maximum(1, np.ceil(nb / 8)).astype(np.int64)
    comm_geom = np.asarray(communities.geometry.array)
    gx, gy, gown = _points_in(comm_geom, n_grid, rng)
    hx, hy, hown = _points_in(comm_geom, n_head, rng)
    ccodes = communities["admin_code"].to_numpy(dtype=object)
    cids = communities["community_id"].to_numpy(dtype=object)

    def serial(own: np.ndarray) -> np.ndarray:
        return np.arange(len(own)) - np.searchsorted(own, own) + 1

    grid = pd.DataFrame(
        {
            "worker_id": cids[gown] + np.char.mod("-G%03d", serial(gown)).astype(object),
            "role": "grid_worker",
            "level": "village",
            "admin_code": ccodes[gown],
            "capacity": 600.0,
        }
    )
    heads = pd.DataFrame(
        {
            "worker_id": cids[hown] + np.char.mod("-H%03d", serial(hown)).astype(object),
            "role": "building_head",
            "level": "village",
            "admin_code": ccodes[hown],
            "capacity": 8.0,
        }
    )
    # river patrollers: one per ~5 km of river in each village, 600 points = 6 km
    village_km = (
        sections[sections["level"] == "village"].groupby("admin_code")["length_deg"].sum()
        * _KM_PER_DEG
    )
    vgeom = admin.set_index("admin_code").geometry.reindex(village_km.index)
    n_patrol = np.maximum(1, np.ceil(village_km.to_numpy() / 5.0)).astype(np.int64)
    px, py, pown = _points_in(np.asarray(vgeom.array), n_patrol, rng)
    vcodes = village_km.index.to_numpy(dtype=object)
    patrol = pd.DataFrame(
        {
            "worker_id": "W-RP-" + vcodes[pown] + np.char.mod("-%02d", serial(pown)).astype(object),
            "role": "grid_worker",
            "level": "village",
            "admin_code": vcodes[pown],
            "capacity": 600.0,
        }
    )
    people = pd.concat([chief_workers, grid, heads, patrol], ignore_index=True)
    n = len(people)
    people["name"] = _person_names(rng, n)
    people["phone"] = np.char.add("199", np.char.mod("%08d", rng.integers(0, 10**8, n)))
    people["synthetic"] = True
    for col in ("worker_id", "name", "role", "level", "admin_code", "phone"):
        people[col] = people[col].astype("str")
    pts = np.concatenate(
        [chief_pts, shapely.points(gx, gy), shapely.points(hx, hy), shapely.points(px, py)]
    )
    workers = gpd.GeoDataFrame(people, geometry=pts, crs=WGS84)
    workers = workers[
        [
            "worker_id",
            "name",
            "role",
            "level",
            "admin_code",
            "capacity",
            "phone",
            "synthetic",
            "geometry",
        ]
    ]
    for col in ("chief_id", "worker_id", "level", "river_id", "admin_code"):
        chiefs[col] = chiefs[col].astype("str")
    # departments at city and county level, one per template
    top = admin[admin["level"].isin(["city", "county"])]
    rows = []
    for code, name in zip(top["admin_code"], top["name"], strict=True):
        for k, (suffix, cats) in enumerate(DEPARTMENTS.items(), 1):
            rows.append((f"D{code}-{k:02d}", f"{name}{suffix}", code, ",".join(cats)))
    departments = pd.DataFrame(
        rows, columns=["department_id", "name", "admin_code", "categories"]
    ).astype("str")
    departments["synthetic"] = True
    return workers, chiefs, departments


# --------------------------------------------------------------------------- assembly


def _assemble(
    top: gpd.GeoDataFrame,
    make_rivers: Callable[[pyproj.CRS, shapely.Geometry], gpd.GeoDataFrame],
    rng: np.random.Generator,
    *,
    villages_per_km2: float,
    villages_per_township: float,
    n_water: int,
    n_communities: int,
    n_buildings: int,
    urban_codes: tuple[str, ...],
    gap_share: float = 0.04,
) -> dict[str, pd.DataFrame]:
    metric = pyproj.CRS.from_epsg(
        32600 + int(np.floor((np.mean(top.total_bounds[[0, 2]]) + 180) / 6) + 1)
    )
    counties = top[top["level"] == "county"].reset_index(drop=True)
    city = top[top["level"] == "city"]
    townships, villages = _admin_hierarchy(
        counties,
        rng,
        villages_per_km2=villages_per_km2,
        villages_per_township=villages_per_township,
        metric=metric,
    )
    outline = city.geometry.iloc[0]
    rivers = make_rivers(metric, outline)
    to_m, to_w = _transformer(metric, to_metric=True), _transformer(metric, to_metric=False)
    outline_m = _project(np.array([outline]), to_m)[0]
    water = _water_bodies(
        outline_m, _project(np.asarray(rivers.geometry.array), to_m), rng, n=n_water, to_w=to_w
    )
    communities = _communities(
        villages, rng, n=n_communities, urban_codes=urban_codes, metric=metric
    )
    buildings = _buildings(communities, n_buildings, rng, metric=metric)
    villages.attrs.pop("seed_points")
    top = top.assign(synthetic=top.get("synthetic", False))
    admin = gpd.GeoDataFrame(
        pd.concat([top, townships, villages], ignore_index=True),
        geometry="geometry",
        crs=WGS84,
    )
    admin["synthetic"] = admin["synthetic"].astype(bool)
    workers, chiefs, departments = _people(
        admin, rivers, communities, buildings, rng, gap_share=gap_share
    )
    layers = {
        "admin_areas": admin,
        "rivers": rivers,
        "water_bodies": water,
        "communities": communities,
        "buildings": buildings,
        "workers": workers,
        "river_chiefs": chiefs,
        "departments": departments,
    }
    return {name: check_layer(df, name) for name, df in layers.items()}


def sample_layers(
    *,
    seed: int = 20261122,
    admin: gpd.GeoDataFrame | None = None,
    river: gpd.GeoDataFrame | None = None,
    n_buildings: int = 10_000,
    n_communities: int = 40,
    tributary_km: float = 500.0,
) -> dict[str, pd.DataFrame]:
    """Every layer of the Zhuzhou demo: real city, districts and Xiang, synthetic rest.

    Parameters
    ----------
    seed
        Seed of the random generator; the same seed gives identical layers.
    admin
        City and county rows (``admin_areas``); default :func:`geodata.zhuzhou_admin`.
    river
        The main stem (``rivers``, one line drawn upstream -> downstream); default
        :func:`geodata.xiang_river`.
    n_buildings
        Number of buildings (plus about 1 % overlapping building parts).
    n_communities
        Number of communities, mostly in the four urban districts.
    tributary_km
        Length budget of the synthetic tributary network, km.

    Returns
    -------
    dict
        ``admin_areas`` (city, county, township, village), ``rivers`` (main stem and
        tributaries), ``water_bodies``, ``communities``, ``buildings``, ``workers``,
        ``river_chiefs``, ``departments``; each passes :func:`gridkit.check_layer`.
        Generated rows have ``synthetic=True``.

    Examples
    --------
    >>> layers = sample_layers()
    >>> layers["admin_areas"].groupby("level").size()["county"]
    np.int64(9)
    """
    if admin is None or river is None:
        import geodata

        admin = geodata.zhuzhou_admin() if admin is None else admin
        river = geodata.xiang_river() if river is None else river
    top = admin[admin["level"].isin(["city", "county"])].reset_index(drop=True)
    top = top.assign(synthetic=False)
    main = river.geometry.iloc[0]
    if main.geom_type == "MultiLineString":
        main = shapely.line_merge(main)
    rng = np.random.default_rng(seed)

    def make_rivers(metric: pyproj.CRS, outline: shapely.Geometry) -> gpd.GeoDataFrame:
        lines_w, ids, names, parents = _river_network(
            shapely.get_coordinates(main),
            outline,
            rng,
            tributary_km=tributary_km,
            metric=metric,
            first_km=(6.0, 30.0),
            second_km=(2.0, 8.0),
        )
        return _rivers_frame(lines_w, ids, names, parents, main_synthetic=False)

    return _assemble(
        top,
        make_rivers,
        rng,
        villages_per_km2=1 / 40,
        villages_per_township=5.0,
        n_water=80,
        n_communities=n_communities,
        n_buildings=n_buildings,
        urban_codes=URBAN_DISTRICTS,
    )


def _default_bbox(side_km: float) -> tuple[float, float, float, float]:
    """A lon/lat square of ``side_km`` centred near Zhuzhou."""
    lon0, lat0 = 113.1, 27.5
    dlat = side_km / 111.0
    dlon = side_km / (111.0 * math.cos(math.radians(lat0)))
    return (lon0 - dlon / 2, lat0 - dlat / 2, lon0 + dlon / 2, lat0 + dlat / 2)


def _river_rng(seed: int) -> np.random.Generator:
    # its own stream, so synthetic_layers(...)["rivers"] == synthetic_rivers(...)
    return np.random.default_rng([seed, 0x52495645])


def _scale_rivers_frame(
    bbox: tuple[float, float, float, float], river_km: float, rng: np.random.Generator
) -> gpd.GeoDataFrame:
    coords, index, ids, parents, _length = _scale_rivers(bbox, river_km, rng)
    stem = np.array([p is None for p in parents])
    suffix = np.where(
        stem,
        np.where(rng.random(len(ids)) < 0.5, "江", "河"),
        np.array(_RIVER_SUFFIX)[rng.integers(0, len(_RIVER_SUFFIX), len(ids))],
    ).astype(object)
    return gpd.GeoDataFrame(
        {
            "river_id": pd.array(ids, dtype="str"),
            "name": pd.array(_names(rng, len(ids), suffix), dtype="str"),
            "parent_river_id": pd.array(parents, dtype="str"),
            "synthetic": True,
        },
        geometry=shapely.linestrings(coords, indices=index),
        crs=WGS84,
    )


def synthetic_rivers(
    *,
    river_km: float,
    bbox: tuple[float, float, float, float] | None = None,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """A planar dendritic river network of about ``river_km`` km filling ``bbox``.

    The box is tiled into equal lon/lat cells, one river basin per cell, sized so the
    network has the requested length. Each basin has a meandering main stem flowing to
    the cell edge, first-order tributaries joining it from alternate sides and
    second-order tributaries joining those. Tributaries are confined to their own strip
    of the parent, so lines never cross by construction; every tributary is drawn from
    its source to the confluence, which is exactly a vertex of its parent. Basins are
    separate (a margin of 1 % of the cell keeps them apart), so the network is a forest
    of trees, one per basin. Whole leaf tributaries are dropped (seeded) until the total
    length is within one tributary of ``river_km``. Built with numpy and one
    ``shapely.linestrings`` call: 10^5 km take seconds.

    Parameters
    ----------
    river_km
        Total length, km (measured on a local metric plane per cell, within ~1 % of the
        geodesic length).
    bbox
        lon/lat box (min lon, min lat, max lon, max lat); all rivers lie inside it.
        Default: a square near Zhuzhou with ~6 km2 per km of river.
    seed
        Seed; the same arguments give identical rivers.

    Returns
    -------
    GeoDataFrame
        ``rivers`` layer: ``river_id`` (``R001`` main stems, ``R001-T03`` tributaries
        numbered in flow order along the parent, ``R001-T03-02`` second order),
        ``name``, ``parent_river_id`` (missing for main stems), ``synthetic``; rows
        sorted by ``river_id`` (parents before children).

    Examples
    --------
    >>> rivers = synthetic_rivers(river_km=500, seed=1)
    >>> bool(rivers["parent_river_id"].isna().any())  # main stems
    True
    >>> round(float(rivers.to_crs(32649).length.sum()) / 1000, -2)
    500.0
    """
    if bbox is None:
        bbox = _default_bbox(max(30.0, math.sqrt(river_km * 6.0)))
    return _scale_rivers_frame(tuple(bbox), float(river_km), _river_rng(seed))


def synthetic_layers(
    *,
    seed: int = 0,
    n_buildings: int = 100_000,
    river_km: float = 1_000.0,
    n_areas: int = 200,
    bbox: tuple[float, float, float, float] | None = None,
    n_counties: int | None = None,
) -> dict[str, pd.DataFrame]:
    """The same layers on a synthetic rectangle, sized for scale tests and benchmarks.

    Parameters
    ----------
    seed
        Seed; the same arguments give identical layers.
    n_buildings
        Buildings (plus ~1 % parts); communities hold ~400 buildings each.
    river_km
        Total river length, km: the network of :func:`synthetic_rivers` (separate
        basins of main stems with two orders of tributaries), equal to
        ``synthetic_rivers(river_km=river_km, bbox=bbox, seed=seed)``.
    n_areas
        Approximate number of villages (thousands are fine); villages, townships and
        counties each tile the box.
    bbox
        lon/lat box of the synthetic city; default: a square near Zhuzhou large
        enough for the buildings and rivers.
    n_counties
        Number of synthetic counties (at most 99); default ``max(4, n_areas / 600)``
        so a county keeps below 1000 villages (3-digit village serials).

    Returns
    -------
    dict
        As :func:`sample_layers`, all rows synthetic.

    Examples
    --------
    >>> layers = synthetic_layers(seed=3, n_buildings=2_000, river_km=200, n_areas=30)
    >>> len(layers["buildings"]) >= 2_000
    True
    """
    rng = np.random.default_rng(seed)
    n_comm = max(4, math.ceil(n_buildings / 400))
    if n_counties is None:
        n_counties = min(99, max(4, math.ceil(n_areas / 600)))
    if bbox is None:
        # communities of ~1 km2 on at most a third of the area; ~1 km river per 6 km2
        bbox = _default_bbox(max(30.0, math.sqrt(max(n_comm * 3.0, river_km * 6.0, n_areas * 4.0))))
    bbox = tuple(bbox)
    box = shapely.box(*bbox)
    # counties: Voronoi of random points in the box
    cx, cy, _ = _points_in(np.array([box]), np.array([n_counties]), rng)
    vor = shapely.voronoi_polygons(
        shapely.multipoints(shapely.points(cx, cy)),
        extend_to=shapely.buffer(box, 0.1),
        ordered=True,
    )
    cgeoms = _polygonal(shapely.intersection(shapely.get_parts(vor), box))
    ccodes = [f"9902{k + 1:02d}" for k in range(n_counties)]
    top = gpd.GeoDataFrame(
        {
            "admin_code": pd.array(["990200", *ccodes], dtype="str"),
            "name": pd.array(["示例市", *_names(rng, n_counties, "区")], dtype="str"),
            "level": pd.array(["city"] + ["county"] * n_counties, dtype="str"),
            "parent_code": pd.array(["990000"] + ["990200"] * n_counties, dtype="str"),
            "synthetic": True,
        },
        geometry=np.array([shapely.coverage_union_all(cgeoms), *cgeoms], dtype=object),
        crs=WGS84,
    )
    area_km2 = (
        (bbox[2] - bbox[0])
        * 111.0
        * math.cos(math.radians((bbox[1] + bbox[3]) / 2))
        * (bbox[3] - bbox[1])
        * 111.0
    )
    return _assemble(
        top,
        lambda _metric, _outline: _scale_rivers_frame(bbox, float(river_km), _river_rng(seed)),
        rng,
        villages_per_km2=n_areas / area_km2,
        villages_per_township=5.0,
        n_water=max(10, int(area_km2 / 50)),
        n_communities=n_comm,
        n_buildings=n_buildings,
        urban_codes=tuple(ccodes),
    )
