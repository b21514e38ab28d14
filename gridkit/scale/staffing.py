"""Staffing per admin partition: jurisdiction components solved in parallel.

A worker may serve units in their own area and ``neighbour_levels`` levels above it
(:func:`gridkit.assign_workers`); so when every worker's reach lies inside one area of
the partition level (a county, a city, a province), the partitions are independent
problems: their assignments, loads and objectives add up, and so do their proven
lower bounds. :func:`assign_partitioned` checks that first (a reach crossing the
partition level is an error naming the workers, with the level that would do), then
runs :func:`gridkit.assign_workers` once per partition with the partition's own time
limit.

The solver stops on wall time (``time_limit_s``): on a busy machine it does less in the
same seconds, so answers equal the single-process answer only where both prove the
optimum. A budget in solver iterations/nodes is needed for identical answers in
general (see docs/scaling.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.scale.engine import Engine
from gridkit.staffing import assign_workers

__all__ = ["PartitionedAssignment", "assign_partitioned", "reach_level"]

_LEVELS = list(codes.LEVELS)


def reach_level(worker_codes: pd.Series, neighbour_levels: int) -> pd.Series:
    """The level of the area each worker may serve in (their own area's level,
    ``neighbour_levels`` up, a province at most).

    Examples
    --------
    >>> reach_level(pd.Series(["430202001001", "430202"]), 1).tolist()
    ['township', 'city']
    """
    own = codes.level(worker_codes.astype(str))
    # a code gridkit.codes does not read (too long) counts as a village's
    idx = own.map({lv: i for i, lv in enumerate(_LEVELS)}).fillna(len(_LEVELS) - 1)
    up = np.maximum(idx.to_numpy(dtype=float) - neighbour_levels, 0).astype(int)
    return pd.Series(np.array(_LEVELS, dtype=object)[up], index=worker_codes.index)


@dataclass
class PartitionedAssignment:
    """Assignments of every partition, with the summed objective and bound.

    Examples
    --------
    >>> r = PartitionedAssignment(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
    ...                           objective=110.0, bound=100.0, partitions=pd.DataFrame())
    >>> round(r.gap, 4)
    0.0909
    """

    assignments: pd.DataFrame
    loads: pd.DataFrame
    unassigned: pd.DataFrame
    objective: float
    bound: float
    partitions: pd.DataFrame

    @property
    def gap(self) -> float:
        """``(objective - bound) / objective`` over all partitions."""
        return (self.objective - self.bound) / max(abs(self.objective), 1e-12)


def _task(args: tuple) -> dict[str, Any]:
    key, units, workers, options = args
    r = assign_workers(units, workers, **options)
    return {
        "key": key,
        "assignments": r.assignments,
        "loads": r.loads,
        "unassigned": r.unassigned,
        "objective": r.objective,
        "bound": r.bound,
        "units": len(units),
        "workers": len(workers),
        "gap": r.gap,
        "solve_s": r.stats.get("solve_s"),
    }


def assign_partitioned(
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    *,
    by: str = "county",
    engine: Engine | None = None,
    neighbour_levels: int = 0,
    **options: Any,
) -> PartitionedAssignment:
    """:func:`gridkit.assign_workers` per area of level ``by``, in parallel.

    Parameters
    ----------
    units, workers
        As for :func:`gridkit.assign_workers`.
    by
        ``"county"``, ``"city"`` or ``"province"``: every worker's reach must lie
        inside one such area.
    neighbour_levels, **options
        Passed to :func:`gridkit.assign_workers` (``time_limit_s`` is per partition).

    Raises
    ------
    GridkitError
        When a worker's reach is wider than a partition, naming a few.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(3, 1)
    >>> workers = gpd.GeoDataFrame(
    ...     {"worker_id": ["W1"], "name": ["Li"], "role": "grid_worker", "level": "township",
    ...      "admin_code": "430202001", "capacity": [2000], "phone": None},
    ...     geometry=[shapely.centroid(units.geometry.iloc[0])], crs=units.crs)
    >>> r = assign_partitioned(units, workers, valid_from="2026-01-01")
    >>> len(r.assignments), r.partitions["key"].tolist()
    (3, ['430202'])

    A worker reaching beyond one county:

    >>> assign_partitioned(units, workers.assign(admin_code="430200"))
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: 1 worker(s) may serve beyond one county (e.g. W1).
    Hint: Partition by a wider level than county, or lower neighbour_levels.
    """
    engine = engine or Engine.serial()
    reach = reach_level(workers["admin_code"], neighbour_levels)
    depth = {lv: i for i, lv in enumerate(_LEVELS)}
    wide = reach.map(depth) < depth[by]
    if wide.any():
        raise GridkitError(
            f"{int(wide.sum())} worker(s) may serve beyond one {by} "
            f"(e.g. {', '.join(workers['worker_id'].astype(str)[wide].head(3))}).",
            hint=f"Partition by a wider level than {by}, or lower neighbour_levels.",
        )
    width = codes.DIGITS[by]
    ukey = units["admin_code"].astype(str).str[:width]
    wkey = workers["admin_code"].astype(str).str[:width]
    options = {"neighbour_levels": neighbour_levels, **options}
    items = [
        (k, units[(ukey == k).to_numpy()], workers[(wkey == k).to_numpy()], options)
        for k in sorted(set(ukey.dropna().tolist()))
    ]
    done = engine.map(_task, items, label="staffing")

    def cat(name: str) -> pd.DataFrame:
        frames = [d[name] for d in done if len(d[name])]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return PartitionedAssignment(
        assignments=cat("assignments"),
        loads=cat("loads"),
        unassigned=cat("unassigned"),
        objective=float(sum(d["objective"] for d in done)),
        bound=float(sum(d["bound"] for d in done)),
        partitions=pd.DataFrame(
            [{k: d[k] for k in ("key", "units", "workers", "gap", "solve_s")} for d in done]
        ),
    )
