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

from gridkit.rivers import split_rivers
from gridkit.rivers.admin import GAP_CELL_M, gap_cells, gap_reach
from gridkit.scale.engine import Engine

__all__ = ["basin_roots", "global_seq", "split_rivers_partitioned"]


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
    source: Any, key: str, halo_m: float, snap_m: float = 10.0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    admin = source.read("admin_areas", cities=[key])
    own = admin[admin["level"] == "village"]
    x0, y0, x1, y1 = own.total_bounds
    box = (x0 - halo_m, y0 - halo_m, x1 + halo_m, y1 + halo_m)
    every = source.read("rivers")
    every = every.drop(columns=[c for c in ("bbox",) if c in every.columns])
    meet = every.sindex.query(shapely.box(*box), predicate="intersects")
    # whole basins: a confluence upstream in another province cuts this river too
    roots = basin_roots(every)
    rivers = every[roots.isin(set(roots.iloc[meet])).to_numpy()]
    # the halo: villages within halo_m of the province's own (not its whole box), and
    # every village that decides the thin gaps of the cells those lie in (split_rivers
    # finds gaps cell by cell of an absolute grid, from the areas near each cell)
    reach = gap_reach(snap_m)
    wide = GAP_CELL_M + reach
    near = source.read(
        "admin_areas",
        bbox=(x0 - wide - halo_m, y0 - wide - halo_m, x1 + wide + halo_m, y1 + wide + halo_m),
    )
    near = near[(near["level"] == "village").to_numpy()]
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


def _task(args: tuple[Any, str, float, dict]) -> dict[str, Any]:
    source, key, halo_m, options = args
    admin, rivers = _inputs(source, key, halo_m, options.get("snap_m", 10.0))
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
    """``seq`` of each reach along its whole river: the rank of its start's position on
    the river line (drawn upstream -> downstream).

    Examples
    --------
    >>> r = gpd.GeoDataFrame({"river_id": ["A"]},
    ...                      geometry=[shapely.LineString([(0, 0), (10, 0)])])
    >>> x = gpd.GeoDataFrame({"river_id": ["A", "A"]},
    ...     geometry=[shapely.LineString([(5, 0), (10, 0)]), shapely.LineString([(0, 0), (5, 0)])])
    >>> global_seq(x, r).tolist()
    [2, 1]
    """
    line = rivers.set_index("river_id").geometry.reindex(reaches["river_id"]).to_numpy()
    start = shapely.get_point(np.asarray(reaches.geometry.array), 0)
    m = shapely.line_locate_point(line, start)
    order = np.lexsort((m, reaches["river_id"].astype(str).to_numpy()))
    rid = reaches["river_id"].astype(str).to_numpy()[order]
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
    parts = [d["reaches"] for d in done if d["reaches"] is not None]
    reaches = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)
    rivers = source.read("rivers")
    reaches["seq"] = global_seq(reaches, rivers)
    reaches = reaches.sort_values("reach_id", kind="stable").reset_index(drop=True)
    uparts = [d["units"] for d in done if d["units"] is not None and len(d["units"])]
    units = (
        gpd.GeoDataFrame(pd.concat(uparts, ignore_index=True), crs=uparts[0].crs)
        .sort_values("unit_id", kind="stable")
        .reset_index(drop=True)
        if uparts
        else gpd.GeoDataFrame()
    )
    reaches.attrs["partitions"] = pd.DataFrame(
        [{k: v for k, v in d.items() if k not in ("reaches", "units")} for d in done]
    )
    return reaches, units
