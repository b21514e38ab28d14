"""Locate, patrol compliance and hotspots, one admin partition per task.

- **locate**: a partition's points (reports, fixes) are placed among the units within
  ``margin_m`` of their box, in the units' global order (so "the lowest unit holding
  the point" picks the same unit). A point placed farther than ``margin_m`` from its
  unit may have a nearer one outside the slice: those few are placed again against all
  units here, so every answer is the single-process one (and the warning of points
  beyond ``max_distance_m`` is given once, by that pass over all units).
- **compliance**: a partition's workers, their assignments, patrols and chief
  sections; the units are those within ``margin_m`` of the patrols and the assigned
  units (a track crossing the city line covers the neighbour's units too).
- **hotspots**: reports are located per partition; rates and Gi*'s global statistics
  (count, sum, sum of squares and sorted values of all units) once on the unit table;
  then Gi* per partition of the units, with every unit touching them as a halo
  (neighbours across the line) and permutations seeded per unit, so each unit gets
  what the single-process ``hotspots(..., draws="unit")`` gives it.
"""

from __future__ import annotations

import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning
from gridkit.ops import locate, patrol_compliance
from gridkit.ops.hotspots import (
    GiGlobals,
    classify,
    gi_star,
    hotspot_values,
    queen_neighbours,
    unit_rates,
)
from gridkit.ops.locate import NEAREST_WITHIN_M
from gridkit.scale.engine import Engine
from gridkit.scale.partition import POS, area_keys, concat_parts, in_box, keys_of, with_positions

__all__ = [
    "compliance_partitioned",
    "hotspots_partitioned",
    "hotspots_points_partitioned",
    "locate_partitioned",
    "locate_points_partitioned",
    "sort_rows",
]


def _units_near(units: gpd.GeoDataFrame, box: np.ndarray, margin: float) -> gpd.GeoDataFrame:
    if not np.all(np.isfinite(box)):
        return units.iloc[:0]
    if units.crs is None or not units.crs.is_geographic:
        return in_box(units, tuple(box), margin)
    # lon/lat: a box that holds every point within ``margin`` metres (a degree of
    # latitude is >= 110.5 km, of longitude >= 110.5 km x cos(lat); 1 % to spare for
    # the UTM scale the distances are measured in)
    lat = min(max(abs(box[1]), abs(box[3])), 89.0)
    my = margin * 1.01 / 110_000.0
    mx = my / np.cos(np.radians(lat + my))
    hit = units.sindex.query(
        shapely.box(box[0] - mx, box[1] - my, box[2] + mx, box[3] + my), predicate="intersects"
    )
    return units.iloc[np.sort(hit)]


def _same_zone(units: gpd.GeoDataFrame, sl: gpd.GeoDataFrame, whole: object) -> gpd.GeoDataFrame:
    """``sl``, or all ``units`` when the slice's metric CRS (the UTM zone of its
    centre, :func:`gridkit.crs.local_metric_crs`) is not the whole layer's: the
    functions measure in the zone of the units they are given, so a slice in another
    zone would measure differently."""
    if not len(sl) or local_metric_crs(sl).equals(whole):
        return sl
    return units


def _locate_task(args: tuple[pd.DataFrame, gpd.GeoDataFrame, float, dict]) -> pd.DataFrame:
    points, units, margin, options = args
    with warnings.catch_warnings():
        # points beyond max_distance_m of the slice are placed again against all units,
        # which warns of those beyond it there: once, and for the right points
        warnings.filterwarnings("ignore", ".* from every unit", GridkitWarning)
        out = locate(points, units.drop(columns=POS), **options)
    g = np.asarray(out.geometry.array)
    present = ~(shapely.is_missing(g) | shapely.is_empty(g))
    # far from the slice's units (or none within max_distance_m): ask all units again
    out["_far"] = present & ~(out["distance_m"].to_numpy() <= margin)
    return out


def _place_again(out: gpd.GeoDataFrame, units: gpd.GeoDataFrame, options: dict) -> None:
    """Points the slices placed far from every unit, placed again against all units."""
    far = out["_far"].to_numpy()
    if far.any():
        again = locate(
            out.loc[far].drop(columns=["unit_id", "distance_m", "ambiguous", "_far"]),
            units.drop(columns=POS),
            **options,
        )
        for col in ("unit_id", "distance_m", "ambiguous"):
            out.loc[far, col] = again[col].to_numpy()
    out.attrs["relocated"] = int(far.sum())


def _point_keys(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame, keys: np.ndarray) -> np.ndarray:
    """The partition of each point: the first partition whose units' box holds it, else
    the one whose box is nearest (any choice gives the same answers: a slice holds
    every unit near its points, and the far ones are placed again)."""
    ukeys = np.unique(keys)
    boxes = np.array([units[keys == k].total_bounds for k in ukeys])
    g = np.asarray(points.geometry.array)
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    x = np.where(ok, shapely.get_x(shapely.centroid(np.where(ok, g, None))), np.nan)
    y = np.where(ok, shapely.get_y(shapely.centroid(np.where(ok, g, None))), np.nan)
    dx = np.maximum(np.maximum(boxes[:, [0]] - x, x - boxes[:, [2]]), 0)
    dy = np.maximum(np.maximum(boxes[:, [1]] - y, y - boxes[:, [3]]), 0)
    d = np.nan_to_num(np.hypot(dx, dy), nan=0.0)  # (partitions, points)
    return ukeys[np.argmin(d, axis=0)]


def locate_points_partitioned(
    points: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    engine: Engine | None = None,
    by: str = "county",
    margin_m: float = 2_000.0,
    **options: Any,
) -> gpd.GeoDataFrame:
    """:func:`gridkit.locate` of a user's points, one partition of the units per task:
    ``locate(points, units, **options)``, row for row (order and index included).

    The units are partitioned by the prefix of their ``admin_code`` (level ``by``);
    each point goes with the partition whose units' box holds it (or is nearest), and
    each task gets the units within ``margin_m`` of its points, in their global order
    (all units when that slice lies in another UTM zone than the whole layer, where
    :func:`gridkit.locate` measures). Points placed farther than ``margin_m`` from
    their unit (or placed nowhere) are placed again against all units.

    Raises
    ------
    GridkitError
        When the units have no admin code of level ``by`` to partition on.

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(4, 4)
    >>> pts = gpd.GeoDataFrame(geometry=units.representative_point(), crs=units.crs)
    >>> got = locate_points_partitioned(pts, units, by="county")
    >>> got["unit_id"].tolist() == units["unit_id"].tolist()
    True
    """
    engine = engine or Engine.serial()
    keys = area_keys(units, by, what="the units").to_numpy()
    units = with_positions(units)
    whole = local_metric_crs(units)
    pts = points.assign(_row=np.arange(len(points)))
    part = _point_keys(pts, units, keys) if len(pts) else np.zeros(0, dtype=object)
    items = []
    for key in np.unique(part):  # a loop over partitions (each task vectorised)
        mine = pts[part == key]
        g = np.asarray(mine.geometry.array)
        ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
        box = shapely.total_bounds(g[ok]) if ok.any() else np.full(4, np.nan)
        sl = _same_zone(units, _units_near(units, box, margin_m), whole)
        # no unit near these points (or none with a place): all units, as one process
        items.append((mine, sl if len(sl) else units, margin_m, options))
    if not items:
        return locate(points, units.drop(columns=POS), **options)
    done = engine.map(_locate_task, items, label="locate")
    index = pd.concat([d.index.to_series() for d in done]).to_numpy()
    out = concat_parts(done)  # a column all None in one part keeps the others' type
    out.index = index
    _place_again(out, units, options)
    out = out.sort_values("_row", kind="stable").drop(columns=["_row", "_far"])
    out.attrs["partitions"] = pd.DataFrame(
        {
            "key": np.unique(part),
            "points": [len(it[0]) for it in items],
            "units": [len(it[1]) for it in items],
        }
    )
    return out


def locate_partitioned(
    source: Any,
    units: gpd.GeoDataFrame,
    *,
    layer: str = "reports",
    engine: Engine | None = None,
    by: str = "city",
    margin_m: float = 2_000.0,
    **options: Any,
) -> gpd.GeoDataFrame:
    """:func:`gridkit.locate` of a layer's points per partition; the same answers.

    Parameters
    ----------
    source
        A national dataset or :class:`gridkit.scale.Frames` with ``layer``.
    units
        The ``units`` layer (all of it; each task gets the slice it needs).
    layer
        The points: ``reports`` (default) or ``patrols`` fixes.
    margin_m
        Units within this distance of a partition's points go with them.
    **options
        Passed to :func:`gridkit.locate`.

    Returns
    -------
    geopandas.GeoDataFrame
        The points of every partition in partition order (index 0..n-1), with
        ``unit_id``, ``distance_m`` and ``ambiguous``.

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.national import build_national
    >>> from gridkit.scale.rivers import split_rivers_partitioned
    >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name)
    >>> _, units = split_rivers_partitioned(ds, max_length_m=2000)
    >>> located = locate_partitioned(ds, units)
    >>> bool(located["unit_id"].notna().all())
    True
    """
    engine = engine or Engine.serial()
    units = with_positions(units)
    items = []
    for key in source.partitions(by):
        pts = source.read(layer, cities=[key])
        pts = pts.drop(columns=[c for c in ("bbox",) if c in pts.columns])
        if len(pts):
            box = pts.total_bounds
            items.append((pts, _units_near(units, box, margin_m), margin_m, options))
    done = engine.map(_locate_task, items, label="locate")
    out = pd.concat(done, ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry=done[0].geometry.name, crs=done[0].crs)
    _place_again(out, units, options)  # placed far from every unit of the slice
    return out.drop(columns="_far")


def _compliance_task(args: tuple) -> pd.DataFrame:
    patrols, assignments, units, workers, chiefs, options = args
    return patrol_compliance(
        patrols,
        assignments,
        units=units.drop(columns=POS),
        workers=workers,
        river_chiefs=chiefs,
        **options,
    )


def _compliance_items(source, assignments, units, by, margin_m, options) -> list[tuple]:
    items = []
    upos = units.set_index("unit_id")[POS]
    for key in source.partitions(by):
        workers = source.read("workers", cities=[key])
        workers = workers.drop(columns=[c for c in ("bbox",) if c in workers.columns])
        patrols = source.read("patrols", cities=[key])
        patrols = patrols.drop(columns=[c for c in ("bbox",) if c in patrols.columns])
        mine = assignments[assignments["worker_id"].isin(workers["worker_id"]).to_numpy()]
        chiefs = source.read("river_chiefs", cities=[key])
        # units: near the patrols, plus every assigned unit and every unit of a section
        near = _units_near(units, patrols.total_bounds, margin_m)[POS].to_numpy()
        assigned = upos.reindex(mine["unit_id"].unique()).dropna().to_numpy(dtype=np.int64)
        section = units[
            units["admin_code"].isin(chiefs["admin_code"]).to_numpy()
            | units["admin_code"].astype(str).str.startswith(key).to_numpy()
        ][POS].to_numpy()
        take = np.unique(np.concatenate([near, assigned, section]))
        items.append((patrols, mine, units.iloc[take], workers, chiefs, options))
    return items


def compliance_partitioned(
    source: Any,
    assignments: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    engine: Engine | None = None,
    by: str = "city",
    margin_m: float = 2_000.0,
    **options: Any,
) -> pd.DataFrame:
    """:func:`gridkit.patrol_compliance` per partition (of the workers); same rows.

    Parameters
    ----------
    source
        With ``patrols`` (tracks), ``workers`` and ``river_chiefs``.
    assignments
        ``unit_id``, ``worker_id`` (all of them).
    units
        The ``units`` layer (all of it).
    **options
        Passed to :func:`gridkit.patrol_compliance` (``period``, ``now``, ``rules``).

    Returns
    -------
    pandas.DataFrame
        The compliance rows of every partition, sorted by ``worker_id``, ``unit_id``
        and ``chief_id``.

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.national import build_national
    >>> from gridkit.scale.rivers import split_rivers_partitioned
    >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name)
    >>> _, units = split_rivers_partitioned(ds, max_length_m=2000)
    >>> a = pd.DataFrame({"unit_id": units["unit_id"][:1], "worker_id": "W-RC-110000"})
    >>> c = compliance_partitioned(ds, a, units, period="2026-Q2", now="2026-07-01")
    >>> sorted(c.columns)[:3]
    ['admin_code', 'chief_id', 'compliant']
    """
    engine = engine or Engine.serial()
    units = with_positions(units)
    items = _compliance_items(source, assignments, units, by, margin_m, options)
    done = engine.map(_compliance_task, items, label="compliance")
    out = pd.concat([d for d in done if len(d)], ignore_index=True)
    return sort_rows(out)


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Compliance rows in a fixed order (worker, unit, chief), index 0..n-1.

    Examples
    --------
    >>> rows = pd.DataFrame({"worker_id": ["b", "a"], "unit_id": ["u", "u"]})
    >>> sort_rows(rows)["worker_id"].tolist()
    ['a', 'b']
    """
    keys = [c for c in ("worker_id", "unit_id", "chief_id", "river_id", "admin_code") if c in df]
    cols = [df[c].astype(object).where(df[c].notna(), "").astype(str) for c in reversed(keys)]
    order = np.lexsort([c.to_numpy(dtype=object) for c in cols])
    return df.iloc[order].reset_index(drop=True)


def _gi_task(args: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    units, values, own, stats, permutations, seed = args
    keys = units["unit_id"].astype(str).to_numpy()
    rows = np.flatnonzero(own)
    z, p = gi_star(
        values,
        queen_neighbours(units),
        keys,
        stats=stats,
        permutations=permutations,
        seed=seed,
        rows=rows,
    )
    return units[POS].to_numpy()[rows], z, p


def hotspots_partitioned(
    source: Any,
    units: gpd.GeoDataFrame,
    *,
    engine: Engine | None = None,
    by: str = "city",
    **options: Any,
) -> gpd.GeoDataFrame:
    """Hotspots per partition: reports located per partition, rates and the global
    statistics (:class:`gridkit.ops.hotspots.GiGlobals`: count, sum, sum of squares and
    sorted values of every unit) once over the unit table, then Gi* per partition of
    the units with every unit touching them read as a halo (their neighbours across
    the line). Permutations are seeded per unit, so the answer is
    ``hotspots(reports, units, draws="unit", ...)``, every column.

    Parameters
    ----------
    **options
        ``category``, ``start``, ``end``, ``value``, ``permutations``, ``seed``,
        ``max_distance_m`` as for :func:`gridkit.hotspots` (``weights`` is a
        single-process option).

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.national import build_national
    >>> from gridkit.scale.rivers import split_rivers_partitioned
    >>> ds = build_national(0.0002, (_tmp := tempfile.TemporaryDirectory()).name)
    >>> _, units = split_rivers_partitioned(ds, max_length_m=2000)
    >>> hs = hotspots_partitioned(ds, units, permutations=99)  # river units only here:
    >>> n = len(ds.read("reports"))  # reports farther than 500 m from every reach: not counted
    >>> 0 < int(hs["count"].sum()) < n, len(hs.attrs["partitions"])
    (True, 2)
    >>> every = hotspots_partitioned(ds, units, permutations=99, max_distance_m=None)
    >>> int(every["count"].sum()) == n  # each in its nearest reach, however far
    True
    """
    engine = engine or Engine.serial()
    filters = {k: options.pop(k) for k in ("category", "start", "end") if k in options}
    value = options.pop("value", "rate")
    perm, seed = options.pop("permutations", 999), options.pop("seed", 12345)
    near = options.pop("max_distance_m", NEAREST_WITHIN_M)
    if options:
        raise TypeError(
            f"hotspots_partitioned: unexpected options {sorted(options)} (a weights matrix "
            "is for a single-process gridkit.hotspots run)."
        )
    located = locate_partitioned(source, units, engine=engine, by=by, max_distance_m=near)
    # reports beyond max_distance_m of every unit count nowhere (and were warned of)
    table = pd.DataFrame(located.drop(columns=located.geometry.name))
    table = table[table["unit_id"].notna().to_numpy()]
    out = unit_rates(table, units, **filters)
    return _gi_partitioned(out, units, hotspot_values(out, value), engine, by, perm, seed)


def _gi_partitioned(
    out: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    y: np.ndarray,
    engine: Engine,
    by: str,
    perm: int,
    seed: int,
    part: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """Gi* of ``y`` (a value per unit) per partition of the units, a halo of the units
    touching them; ``out`` (the units' rates) with ``gi_z``, ``gi_p``, ``hotspot``."""
    if len(out) < 3 or np.all(y == y[0]):
        out["gi_z"], out["gi_p"], out["hotspot"] = 0.0, 1.0, "not significant"
        return out
    stats = GiGlobals.of(y)
    flat = with_positions(units.reset_index(drop=True))[["unit_id", "admin_code", POS, "geometry"]]
    geoms = np.asarray(flat.geometry.array)
    tree = shapely.STRtree(geoms)
    part = keys_of(flat["admin_code"], by).to_numpy() if part is None else part
    items = []
    for key in np.unique(part):  # a loop over partitions (each task vectorised)
        own = np.flatnonzero(part == key)
        take = np.union1d(own, tree.query(geoms[own], predicate="intersects")[1])
        sl = flat.iloc[take].drop(columns="admin_code")
        items.append((sl, y[take], np.isin(take, own), stats, perm, seed))
    done = engine.map(_gi_task, items, label="hotspots")
    z, p = np.zeros(len(out)), np.ones(len(out))
    for pos, zz, pp in done:
        z[pos], p[pos] = zz, pp
    out["gi_z"], out["gi_p"], out["hotspot"] = z, p, classify(z, p)
    out.attrs["partitions"] = pd.DataFrame(
        {
            "key": np.unique(part),
            "units": [int(it[2].sum()) for it in items],
            "halo": [int((~it[2]).sum()) for it in items],
        }
    )
    return out


def hotspots_points_partitioned(
    reports: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    engine: Engine | None = None,
    by: str = "county",
    **options: Any,
) -> gpd.GeoDataFrame:
    """``hotspots(reports, units, draws="unit", **options)`` of a user's layers, per
    admin partition of the units (``by``: the prefix of their ``admin_code``).

    Reports without a ``unit_id`` are located per partition
    (:func:`locate_points_partitioned`; a ``unit_id`` given wins, as in
    :func:`gridkit.hotspots`); rates and Gi*'s global statistics once on the unit
    table; Gi* per partition with the units touching it as a halo, permutations
    seeded per unit. Every column equals the one-process run with ``draws="unit"``.

    Raises
    ------
    GridkitError
        When the units have no admin code of level ``by`` to partition on.

    Examples
    --------
    >>> from gridkit.ops import hotspots
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(4, 4)
    >>> pts = gpd.GeoDataFrame(geometry=units.representative_point().iloc[[0, 0, 1, 5]],
    ...                        crs=units.crs)
    >>> a = hotspots_points_partitioned(pts, units, value="count", permutations=99)
    >>> b = hotspots(pts, units, value="count", permutations=99, draws="unit")
    >>> a["gi_p"].tolist() == b["gi_p"].tolist()
    True
    """
    engine = engine or Engine.serial()
    filters = {k: options.pop(k) for k in ("category", "start", "end") if k in options}
    value = options.pop("value", "rate")
    perm, seed = options.pop("permutations", 999), options.pop("seed", 12345)
    near = options.pop("max_distance_m", NEAREST_WITHIN_M)
    if options:
        raise TypeError(f"hotspots_points_partitioned: unexpected options {sorted(options)}.")
    part = area_keys(units, by, what="the units").to_numpy()
    table = reports
    given = reports["unit_id"] if "unit_id" in reports else None
    has_points = isinstance(reports, gpd.GeoDataFrame) and not (
        shapely.is_missing(reports.geometry.array).all()  # GeoSeries.notna() warns of empties
    )
    if has_points and (given is None or given.isna().any()):
        located = locate_points_partitioned(
            reports, units, engine=engine, by=by, max_distance_m=near
        )["unit_id"]
        placed = located if given is None else given.astype("string").fillna(located)
        # reports placed nowhere count nowhere (and were warned of): not located again
        table = reports.assign(unit_id=placed.to_numpy())[placed.notna().to_numpy()]
    out = unit_rates(table, units, max_distance_m=near, **filters)
    y = hotspot_values(out, value)
    return _gi_partitioned(out, units, y, engine, by, perm, seed, part)
