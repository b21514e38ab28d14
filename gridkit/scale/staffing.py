"""Staffing per admin partition: jurisdiction components solved in parallel.

A worker may serve units in their own area and ``neighbour_levels`` levels above it
(:func:`gridkit.assign_workers`); so when every worker's reach lies inside one area of
the partition level (a county, a city, a province), the partitions are independent
problems: their assignments, loads and objectives add up, and so do their proven
lower bounds. :func:`assign_partitioned` checks that first (a reach crossing the
partition level is an error naming the workers, with the level that would do), then
runs :func:`gridkit.assign_workers` once per partition.

The solvers run on a budget counted in steps (:class:`gridkit.staffing.Budget`:
Lagrangian iterations, neighbourhood MIPs, branch-and-bound nodes), per jurisdiction
(the widest area of the workers' reach, :func:`gridkit.staffing.jurisdictions`), so a
partition's answer does not depend on the engine, the machine's load or which other
partitions run: the partitioned answer equals ``assign_workers(units, workers,
budget=...)`` in one process. ``time_limit_s`` stays as a safety cap per jurisdiction;
a partition that hit it says so (``time_capped`` in ``.partitions``), and only then
may its answer differ from run to run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.scale.engine import Engine
from gridkit.staffing import Budget, assign_workers
from gridkit.staffing.model import merge_results

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
    >>> round(r.gap, 4), r.time_capped
    (0.0909, False)
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

    @property
    def time_capped(self) -> bool:
        """Whether a partition stopped on its time cap before spending its budget (its
        answer may then depend on the machine's load)."""
        col = self.partitions.get("time_capped")
        return bool(col is not None and col.any())


_PARTITION_COLUMNS = ("key", "units", "workers", "gap", "solve_s", "cpu_s", "time_capped")


def _task(args: tuple) -> dict[str, Any]:
    key, units, workers, options = args
    cpu = time.process_time()
    r = assign_workers(units, workers, **options)
    return {
        "key": key,
        "result": r,
        "objective": r.objective,
        "bound": r.bound,
        "units": len(units),
        "workers": len(workers),
        "gap": r.gap,
        "solve_s": r.stats.get("solve_s"),
        # CPU seconds of the task's process: what it costs on a free core, whatever the load
        "cpu_s": time.process_time() - cpu,
        "time_capped": bool(r.stats.get("time_capped", False)),
    }


def assign_partitioned(
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    *,
    by: str = "county",
    engine: Engine | None = None,
    neighbour_levels: int = 0,
    budget: Budget | int | dict | None = None,
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
    budget
        The solvers' work per jurisdiction (:class:`gridkit.staffing.Budget`, or a
        number of Lagrangian iterations); default ``Budget()``. Never wall time: the
        answer is the same on any engine and equals the one-process call with it.
    neighbour_levels, **options
        Passed to :func:`gridkit.assign_workers` (``time_limit_s`` is a safety cap per
        jurisdiction).

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
    budget = Budget.coerce(budget) or Budget()
    options = {"neighbour_levels": neighbour_levels, "budget": budget, **options}
    # partitions with units and workers; units of the others have no worker in reach
    keys = sorted(set(ukey.dropna().tolist()) & set(wkey.dropna().tolist()))
    items = [
        (k, units[(ukey == k).to_numpy()], workers[(wkey == k).to_numpy()], options) for k in keys
    ]
    done = engine.map(_task, items, label="staffing")
    # rows in the order of one call over everything (the answers are those of one call)
    merged = merge_results(
        [d["result"] for d in done],
        units,
        workers,
        solved=ukey.isin(keys).to_numpy(),
        required=options.get("required"),
    )
    return PartitionedAssignment(
        assignments=merged.assignments,
        loads=merged.loads,
        unassigned=merged.unassigned,
        objective=merged.objective,
        bound=merged.bound,
        partitions=pd.DataFrame([{k: d[k] for k in _PARTITION_COLUMNS} for d in done]),
    )
