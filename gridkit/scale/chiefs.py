"""River chiefs' patrol compliance, one admin partition of the chiefs per task.

A task judges the appointments (``river_chiefs`` rows) whose ``admin_code`` starts
with its key: a province or city chief whose sections span the partitions below is
judged whole in the partition of his own code. It is given

- the patrols of its chiefs' workers (tracks and paper records);
- as a halo, every other track within ``joint_tolerance_m + duplicate_tolerance_m``
  of those tracks: the partners of joint patrols (a patrol in a joint pair also covers
  the other bank of a boundary reach) and the earlier tracks a track may repeat (a
  replay does not count), from any partition, in the layer's order (ties of time go
  by position, as in one process);
- the units of its chiefs' sections and their other banks (same ``reach_id``).

Tracks and units are measured in the UTM zone of the layer given
(:func:`gridkit.crs.local_metric_crs`); when the tracks and units do not all lie in
one zone, a slice could measure in another zone than the whole layer, so the run is
one partition (the one-process answer). Each row equals
:func:`gridkit.ops.chiefs.chief_compliance` on the whole layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84
from gridkit.ops.chiefs import chief_compliance, duty_chiefs, period_kind, section_units
from gridkit.ops.patrols import PatrolRules, load_patrol_rules
from gridkit.scale.engine import Engine
from gridkit.scale.partition import area_keys, concat_parts

__all__ = ["chief_compliance_partitioned", "one_utm_zone"]


def one_utm_zone(*layers: gpd.GeoDataFrame | None) -> bool:
    """Whether every geometry of the layers lies in one UTM zone (or the layers are in
    a projected CRS already): then any slice measures where the whole layer does.

    Examples
    --------
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([113.1, 113.9], [27.8, 27.9]),
    ...                        crs=4326)
    >>> one_utm_zone(pts), one_utm_zone(pts.assign(geometry=pts.geometry.translate(0.3)))
    (True, False)
    """
    boxes = []
    for df in layers:
        if df is None or not isinstance(df, gpd.GeoDataFrame) or not len(df) or df.crs is None:
            continue
        if df.crs.is_projected and df.crs.axis_info[0].unit_name in ("metre", "meter"):
            continue
        b = df.geometry.to_crs(WGS84).total_bounds if not df.crs.is_geographic else None
        boxes.append(b if b is not None else df.total_bounds)
    boxes = [b for b in boxes if np.all(np.isfinite(b))]
    if not boxes:
        return True
    lo, hi = np.min([b[:2] for b in boxes], axis=0), np.max([b[2:] for b in boxes], axis=0)
    zone = np.floor((np.array([lo[0], hi[0]]) + 180) / 6)
    return bool(zone[0] == zone[1] and (lo[1] >= 0) == (hi[1] >= 0))


def _margin(crs: Any, lat: float, metres: float) -> tuple[float, float]:
    """``metres`` as (x, y) margins in ``crs`` (degrees for lon/lat, generously)."""
    if crs is None or not crs.is_geographic:
        return metres, metres
    my = metres * 1.01 / 110_000.0
    return my / np.cos(np.radians(min(abs(lat) + my, 89.0))), my


def _halo(tracks: np.ndarray, own: np.ndarray, crs: Any, metres: float) -> np.ndarray:
    """Rows of ``tracks`` whose box meets the box of an ``own`` track grown by
    ``metres`` (a superset of the tracks within that distance)."""
    ok = ~(shapely.is_missing(tracks) | shapely.is_empty(tracks))
    mine = own & ok
    if not mine.any():
        return np.zeros(0, dtype=np.int64)
    b = shapely.bounds(tracks[mine])
    mx, my = _margin(crs, float(np.nanmax(np.abs(b[:, [1, 3]]))), metres)
    grown = shapely.box(b[:, 0] - mx, b[:, 1] - my, b[:, 2] + mx, b[:, 3] + my)
    present = np.flatnonzero(ok)
    hit = shapely.STRtree(tracks[present]).query(grown, predicate="intersects")[1]
    return present[np.unique(hit)]


def _task(args: tuple) -> pd.DataFrame:
    patrols, chiefs, units, period, workers, rules = args
    return chief_compliance(patrols, chiefs, units, period, workers=workers, rules=rules)


def _units_of(chiefs: pd.DataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The units of the chiefs' sections and their other banks, in the layer's order
    (at least one unit: the functions measure in the units' zone)."""
    ids = set(section_units(chiefs, units)["unit_id"].astype(str))
    uid = units["unit_id"].astype(str)
    take = np.array(uid.isin(ids).to_numpy(), dtype=bool)
    if "reach_id" in units:
        reach = units["reach_id"].astype(str)
        take |= reach.isin(set(reach[take])).to_numpy() & units["reach_id"].notna().to_numpy()
    if not take.any():
        take[0] = True
    return units[take]


def chief_compliance_partitioned(
    patrols: pd.DataFrame,
    river_chiefs: pd.DataFrame,
    units: gpd.GeoDataFrame,
    period: str,
    *,
    workers: pd.DataFrame | None = None,
    level: str | None = None,
    rules: PatrolRules | str | Path | None = None,
    engine: Engine | None = None,
    by: str = "county",
) -> pd.DataFrame:
    """:func:`gridkit.ops.chiefs.chief_compliance` one partition of the chiefs (the
    prefix of level ``by`` of their ``admin_code``) per task: the same rows, in the
    same order.

    Returns
    -------
    pandas.DataFrame
        As :func:`gridkit.ops.chiefs.chief_compliance`; ``attrs["partitions"]`` has
        a row per task (``key``, ``chiefs``, ``patrols`` with the halo, ``units``).

    Raises
    ------
    GridkitError
        When the chiefs have no admin code of level ``by`` to partition on.

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, patrols = chief_demo()
    >>> c = chief_compliance_partitioned(patrols, chiefs, units, "2026-Q2")
    >>> c.equals(chief_compliance(patrols, chiefs, units, "2026-Q2"))
    True
    """
    engine = engine or Engine.serial()
    rules = rules if isinstance(rules, PatrolRules) else load_patrol_rules(rules)
    period_kind(period)
    chiefs = duty_chiefs(river_chiefs, level=level)
    keys = area_keys(chiefs, by, what="river_chiefs").to_numpy()
    pats = patrols.reset_index(drop=True)
    if not one_utm_zone(pats if isinstance(pats, gpd.GeoDataFrame) else None, units):
        keys = np.full(len(chiefs), "all", dtype=object)
    is_geo = isinstance(pats, gpd.GeoDataFrame) and pats.geometry.name in pats
    tracks = np.asarray(pats.geometry.array) if is_geo else np.full(len(pats), None)
    who = pats["worker_id"].astype(str).to_numpy()
    metres = rules.joint_tolerance_m + rules.duplicate_tolerance_m
    items = []
    for key in pd.unique(keys):  # a loop over partitions (each task vectorised)
        ch = chiefs[keys == key]
        own = np.isin(who, ch["worker_id"].astype(str).to_numpy())
        crs = pats.crs if is_geo else None
        take = np.union1d(np.flatnonzero(own), _halo(tracks, own, crs, metres))
        items.append((pats.iloc[take], ch, _units_of(ch, units), period, workers, rules))
    done = engine.map(_task, items, label="compliance")
    if not done:
        return chief_compliance(pats, chiefs, units, period, workers=workers, rules=rules)
    out = concat_parts(done)
    pos = pd.Series(np.arange(len(chiefs)), index=chiefs["chief_id"].astype(str).to_numpy())
    pos = pos[~pos.index.duplicated()]
    order = np.argsort(out["chief_id"].astype(str).map(pos).to_numpy(), kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    out.attrs["partitions"] = pd.DataFrame(
        {
            "key": pd.unique(keys),
            "chiefs": [len(it[1]) for it in items],
            "patrols": [len(it[0]) for it in items],
            "units": [len(it[2]) for it in items],
        }
    )
    return out
