"""River splitting, one province per task, with a halo of neighbouring areas.

A province's task reads its own villages and, as a halo, the villages of other
provinces within ``halo_m`` of their box (the far bank of a boundary river, the areas a
corridor spills towards); and every river basin (main stem and all its tributaries)
meeting that box, whole, so a river crossing the province line keeps its confluences,
its rank and its drawn direction. :func:`gridkit.split_rivers` measures each river
along its whole line whatever the tiling's extent and works only where the tiling is,
so the task splits only its own pieces and the halo's (``split_m`` in the partitions
table), not the basin. It keeps the reaches and units whose ``admin_code`` is its own.
Reach ids are ``{admin_code}-{river_id}-{n:03d}``, numbered per river and area, so they
do not depend on the partition; ``seq`` (position along the whole river) does, and is
renumbered on the gathered reaches from each reach's position along its river.
"""

from __future__ import annotations

import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import like_input, local_metric_crs, result_crs
from gridkit.errors import GridkitError
from gridkit.rivers import split_rivers
from gridkit.rivers.admin import GAP_CELL_M, finest_level, gap_cells, gap_reach
from gridkit.scale.engine import Engine
from gridkit.scale.partition import area_keys, concat_parts
from gridkit.scale.source import Frames

__all__ = [
    "basin_roots",
    "global_seq",
    "split_river_layers_partitioned",
    "split_rivers_partitioned",
]


def basin_roots(rivers: pd.DataFrame) -> pd.Series:
    """The main stem each river drains to (itself for a main stem), by following
    ``parent_river_id`` (rivers without the column are their own basin).

    Examples
    --------
    >>> basin_roots(pd.DataFrame({"river_id": ["A", "A-1", "A-1-2"],
    ...                           "parent_river_id": [None, "A", "A-1"]})).tolist()
    ['A', 'A', 'A']
    """
    ids = rivers["river_id"].astype(str)
    if "parent_river_id" not in rivers.columns:
        return ids.rename("basin")
    parent = dict(
        zip(ids, rivers["parent_river_id"].where(rivers["parent_river_id"].notna()), strict=True)
    )
    root = ids.copy()
    for _ in range(len(ids) + 1):  # at most the depth of the deepest tree
        up = root.map(parent)
        has = up.notna() & up.isin(parent.keys())
        if not has.any():
            break
        root = root.where(~has, up)
    return root.rename("basin")


def _inputs(
    source: Any,
    key: str,
    halo_m: float,
    snap_m: float = 10.0,
    level: str = "village",
    every_river: bool = False,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    admin = source.read("admin_areas", cities=[key])
    own = admin[admin["level"] == level]
    x0, y0, x1, y1 = own.total_bounds
    box = (x0 - halo_m, y0 - halo_m, x1 + halo_m, y1 + halo_m)
    every = source.read("rivers")
    every = every.drop(columns=[c for c in ("bbox",) if c in every.columns])
    meet = every.sindex.query(shapely.box(*box), predicate="intersects")
    # whole basins: a confluence upstream in another province cuts this river too
    roots = basin_roots(every)
    rivers = every if every_river else every[roots.isin(set(roots.iloc[meet])).to_numpy()]
    # the halo: villages within halo_m of the province's own (not its whole box), and
    # every village that decides the thin gaps of the cells those lie in (split_rivers
    # finds gaps cell by cell of an absolute grid, from the areas near each cell)
    reach = gap_reach(snap_m)
    wide = GAP_CELL_M + reach
    near = source.read(
        "admin_areas",
        bbox=(x0 - wide - halo_m, y0 - wide - halo_m, x1 + wide + halo_m, y1 + wide + halo_m),
    )
    near = near[(near["level"] == level).to_numpy()]
    og = np.asarray(own.geometry.array)
    cells = gap_cells(shapely.bounds(og) + np.r_[-1, -1, 1, 1] * halo_m) * GAP_CELL_M
    grown = shapely.box(
        cells[:, 0] - reach,
        cells[:, 1] - reach,
        cells[:, 0] + GAP_CELL_M + reach,
        cells[:, 1] + GAP_CELL_M + reach,
    )
    tree = shapely.STRtree(np.asarray(near.geometry.array))
    hit = np.union1d(
        tree.query(og, predicate="dwithin", distance=halo_m)[1],
        tree.query(grown, predicate="intersects")[1],
    )
    near = near.iloc[hit]
    near = near.drop(columns=[c for c in ("bbox",) if c in near.columns])
    return near.reset_index(drop=True), rivers.reset_index(drop=True)


def _task(args: tuple) -> dict[str, Any]:
    source, key, halo_m, options, *more = args  # more: the finest level, every_river
    admin, rivers = _inputs(source, key, halo_m, options.get("snap_m", 10.0), *more)
    if not len(rivers) or not len(admin):
        return {"key": key, "reaches": None, "units": None, "rivers": 0, "areas": len(admin)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reaches, units = split_rivers(rivers, admin, **options)
    split = len(reaches), float(reaches["length_m"].sum())
    mine = reaches["admin_code"].astype(str).str.startswith(key).to_numpy()
    reaches = reaches[mine]
    if len(units):
        units = units[units["admin_code"].astype(str).str.startswith(key).to_numpy()]
    return {
        "key": key,
        "reaches": reaches,
        "units": units,
        "rivers": len(rivers),
        "river_m": float(shapely.length(np.asarray(rivers.geometry.array)).sum()),
        "areas": len(admin),
        "split": split[0],
        "split_m": split[1],
    }


def global_seq(reaches: gpd.GeoDataFrame, rivers: gpd.GeoDataFrame) -> np.ndarray:
    """``seq`` of each reach along its whole river, in flow order: the rank of its
    start's position on the river line, against the drawing for a river that
    ``split_rivers`` turned (its reaches run from a higher position to a lower one:
    drawn from its mouth, or turned towards ``outlet``).

    Examples
    --------
    >>> r = gpd.GeoDataFrame({"river_id": ["A"]},
    ...                      geometry=[shapely.LineString([(0, 0), (10, 0)])])
    >>> x = gpd.GeoDataFrame({"river_id": ["A", "A"]},
    ...     geometry=[shapely.LineString([(5, 0), (10, 0)]), shapely.LineString([(0, 0), (5, 0)])])
    >>> global_seq(x, r).tolist()
    [2, 1]
    >>> global_seq(x.assign(geometry=x.geometry.reverse()), r).tolist()  # flows 10 -> 0
    [1, 2]
    """
    line = rivers.set_index("river_id").geometry.reindex(reaches["river_id"]).to_numpy()
    g = np.asarray(reaches.geometry.array)
    m = shapely.line_locate_point(line, shapely.get_point(g, 0))
    rid = reaches["river_id"].astype(str).to_numpy()
    code, _ = pd.factorize(rid)
    ahead = shapely.line_locate_point(line, shapely.get_point(g, -1)) - m
    turned = np.bincount(code, weights=ahead, minlength=code.max() + 1 if len(code) else 0) < 0
    order = np.lexsort((np.where(turned[code], -m, m), rid))
    rid = rid[order]
    idx = np.arange(len(order))
    new = np.r_[True, rid[1:] != rid[:-1]] if len(rid) else np.zeros(0, bool)
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = idx - np.maximum.accumulate(np.where(new, idx, 0)) + 1
    return seq


def split_rivers_partitioned(
    source: Any,
    *,
    engine: Engine | None = None,
    halo_m: float = 5_000.0,
    **options: Any,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """:func:`gridkit.split_rivers` per province; same reaches and units, same ids.

    Parameters
    ----------
    source
        A national dataset or :class:`gridkit.scale.Frames` with ``admin_areas``
        (villages are cut on) and ``rivers``.
    engine
        Where the tasks run (default: this process).
    halo_m
        Width of the halo of neighbouring villages; keep it above the corridor width,
        the boundary tolerance and the boundary minimum length.
    **options
        Passed to :func:`gridkit.split_rivers` (``max_length_m`` ...).

    Returns
    -------
    (reaches, units)
        Sorted by ``reach_id`` / ``unit_id``; ``reaches.attrs["partitions"]`` has a
        row per province: rivers read (``rivers``, ``river_m``: whole basins), villages
        (``areas``, the halo's included) and what its task split (``split`` reaches,
        ``split_m`` metres, the halo's included, before keeping its own).

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.national import build_national
    >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name)
    >>> reaches, units = split_rivers_partitioned(ds, max_length_m=2000, corridor_m=None)
    >>> bool(reaches["reach_id"].is_unique), sorted(reaches.attrs["partitions"]["key"])
    (True, ['11', '12'])
    """
    engine = engine or Engine.serial()
    keys = source.partitions("province")
    done = engine.map(_task, [(source, k, halo_m, options) for k in keys], label="rivers")
    reaches, units = _gather(done, source.read("rivers"))
    reaches = reaches.sort_values("reach_id", kind="stable").reset_index(drop=True)
    if len(units):
        units = units.sort_values("unit_id", kind="stable").reset_index(drop=True)
    return reaches, units


def _gather(done: list[dict], rivers: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, ...]:
    """The tasks' reaches (``seq`` along the whole river) and units, in task order."""
    parts = [d["reaches"] for d in done if d["reaches"] is not None]
    if not parts:
        raise GridkitError("no river meets the admin areas: nothing to split.")
    reaches = concat_parts(parts)
    reaches["seq"] = global_seq(reaches, rivers)
    uparts = [d["units"] for d in done if d["units"] is not None and len(d["units"])]
    units = concat_parts(uparts) if uparts else gpd.GeoDataFrame()
    reaches.attrs["partitions"] = pd.DataFrame(
        [{k: v for k, v in d.items() if k not in ("reaches", "units")} for d in done]
    )
    return reaches, units


def _metric_layers(rivers, admin_areas, by: str, outlet: Any) -> tuple:
    """The layers in the metric CRS :func:`gridkit.split_rivers` measures in (the UTM
    zone of the rivers, projected as it projects them), the finest admin level and the
    outlet in that CRS."""
    metric = local_metric_crs(rivers)
    riv = rivers if rivers.crs.is_exact_same(metric) else rivers.to_crs(metric)
    adm = admin_areas if admin_areas.crs.is_exact_same(metric) else admin_areas.to_crs(metric)
    level = finest_level(adm)
    fine = adm[(adm["level"] == level).to_numpy()].reset_index(drop=True)
    area_keys(fine, by, what=f"the admin areas ({level})")
    if outlet is not None:
        outlet = gpd.GeoSeries([shapely.Point(outlet)], crs=result_crs(rivers)).to_crs(metric)
        outlet = outlet.iloc[0]
    return riv.reset_index(drop=True), fine, level, outlet


def _reprojected_units(units: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """Units in ``crs`` as :func:`gridkit.split_rivers` gives them back: a unit that
    comes out invalid is repaired with ``make_valid``, keeping its largest polygon
    (the corridor snaps units to a 1 cm grid, so this is rare)."""
    out = like_input(units, crs)
    g = np.asarray(out.geometry.array)
    bad = ~shapely.is_valid(g) if len(g) else np.zeros(0, bool)
    if not bad.any():
        return out
    g = g.copy()
    for i in np.flatnonzero(bad):  # the few invalid units, one by one
        parts = shapely.get_parts(shapely.make_valid(g[i]))
        parts = parts[shapely.get_type_id(parts) == 3]
        if len(parts) > 1:
            parts = shapely.get_parts(shapely.union_all(parts))
        g[i] = parts[int(np.argmax(shapely.area(parts)))] if len(parts) else g[i]
    return out.set_geometry(gpd.GeoSeries(g, index=out.index, crs=out.crs))


def split_river_layers_partitioned(
    rivers: gpd.GeoDataFrame,
    admin_areas: gpd.GeoDataFrame,
    *,
    engine: Engine | None = None,
    by: str = "county",
    halo_m: float = 5_000.0,
    outlet: Any = None,
    **options: Any,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``split_rivers(rivers, admin_areas, **options)`` of a user's layers, one admin
    partition per task: the same reaches and units, ids, order and CRS included.

    The layers are projected to the metric CRS ``split_rivers`` measures in (the UTM
    zone of the rivers, for lon/lat input) and partitioned by the prefix of level
    ``by`` of the finest admin level's codes; each task cuts on its own areas and a
    halo (:func:`split_rivers_partitioned`). Each task is given every river, in the
    order given: ``split_rivers`` measures along a table of all the lines it is
    given, whose running sums (rounding at 1e-10 m) depend on the lines before each
    one, so a task given only its basins would place cuts 1e-10 m apart from the
    one-process run. The heavy work (sampling, cuts, corridors) stays bounded by the
    task's areas; the network step is O(rivers) per task.

    Parameters
    ----------
    outlet
        Outlet point in the CRS of ``rivers`` (as for :func:`gridkit.split_rivers`).
    **options
        Passed to :func:`gridkit.split_rivers` (``max_length_m`` ...; not
        ``water_bodies``).

    Raises
    ------
    GridkitError
        When the finest admin areas have no code of level ``by`` to partition on, or
        water bodies are given.

    Examples
    --------
    >>> from gridkit.synth.layers import synthetic_layers
    >>> layers = synthetic_layers(seed=3, n_buildings=500, river_km=40, n_areas=20)
    >>> reaches, units = split_river_layers_partitioned(
    ...     layers["rivers"], layers["admin_areas"], max_length_m=2000)
    >>> one = split_rivers(layers["rivers"], layers["admin_areas"], max_length_m=2000)
    >>> reaches["reach_id"].tolist() == one.reaches["reach_id"].tolist()
    True
    """
    if options.get("water_bodies") is not None:
        raise GridkitError(
            "water bodies are not split per partition yet.",
            hint="Leave out --engine (one process) for runs with --water-bodies.",
        )
    options.pop("water_bodies", None)
    engine = engine or Engine.serial()
    riv, fine, level, pt = _metric_layers(rivers, admin_areas, by, outlet)
    source = Frames({"admin_areas": fine, "rivers": riv})
    keys = sorted(set(area_keys(fine, by, what="the admin areas")))
    opts = {**options, "outlet": pt}
    items = [(source, k, halo_m, opts, level, True) for k in keys]
    done = engine.map(_task, items, label="rivers")
    reaches, units = _gather(done, riv)
    # split_rivers's order: reaches by river (as given) and seq, units by area
    where = pd.Series(np.arange(len(riv)), index=riv["river_id"].astype(str).to_numpy())
    where = where[~where.index.duplicated()]
    first = where.reindex(reaches["river_id"].astype(str).to_numpy()).to_numpy()
    order = np.lexsort((reaches["seq"].to_numpy(), first))
    parts = reaches.attrs.pop("partitions")
    reaches = reaches.iloc[order].reset_index(drop=True)
    if len(units):
        units = units.sort_values("admin_code", kind="stable").reset_index(drop=True)
    out_crs = result_crs(rivers)
    reaches = like_input(reaches, out_crs)
    units = _reprojected_units(units, out_crs) if len(units) else units
    reaches.attrs["partitions"] = parts
    return reaches, units
