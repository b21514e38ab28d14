"""Staffing: put grid workers on units, within capacity and jurisdiction, travelling least.

:func:`assign_workers` solves a capacitated assignment (a generalised assignment
problem). Every unit has a workload in *points* on one scale for all kinds of units
(:class:`Workload`: households for community grids, kilometres for river reaches, a
fixed load for water bodies); every worker has a ``capacity`` in points and a base
(the worker's Point). A worker takes units inside their own admin area (the unit's
``admin_code`` is in the worker's scope, :func:`gridkit.codes.in_scope`: a city worker
``430200`` serves every code ``4302...``) or, with ``neighbour_levels``, of the area
some levels up (:func:`gridkit.codes.parent`). The objective is the total distance
from base to unit (representative point, in the local metric CRS) plus
``churn_penalty`` for every previous (unit, worker) pair that is not kept.

The instance is cut into independent components of the unit-worker candidate graph
(jurisdictions) with only the ``candidates`` nearest eligible workers per unit. A
heuristic (LP relaxation, rounding, repair, local search, a Lagrangian heuristic and
large-neighbourhood MIPs) solves everything and proves a Lagrangian lower bound with
one knapsack per worker, stronger than the LP bound when units are large against
capacities; the exact MIP (``scipy.optimize.milp``, HiGHS) then runs on the components
with a gap left while the time limit allows.
``.bound`` and ``.gap`` say honestly how far from optimal the result can be (on the
candidate graph). Units that cannot be served are not an error: they are listed in
``.unassigned`` with the reason.

:func:`reassign` moves only the units of departing workers (and more only when
capacity forces it, which it reports).

Examples
--------
>>> import geopandas as gpd
>>> from shapely import Point, box
>>> units = gpd.GeoDataFrame({
...     "unit_id": ["U1", "U2", "U3"], "kind": "community_grid", "parent_id": "C1",
...     "admin_code": "430202001001", "households": [120, 80, 150]},
...     geometry=[box(113.0, 27.8, 113.001, 27.801), box(113.007, 27.8, 113.008, 27.801),
...               box(113.02, 27.8, 113.021, 27.801)], crs=4326)
>>> workers = gpd.GeoDataFrame({
...     "worker_id": ["W1", "W2"], "name": ["Li", "Wang"], "role": "grid_worker",
...     "level": "village", "admin_code": "430202001001", "capacity": [300, 300],
...     "phone": None},
...     geometry=[Point(113.0, 27.8), Point(113.02, 27.8)], crs=4326)
>>> result = assign_workers(units, workers)
>>> result.assignments[["unit_id", "worker_id"]].values.tolist()
[['U1', 'W1'], ['U2', 'W1'], ['U3', 'W2']]
>>> result.gap
0.0
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.spatial import cKDTree

from gridkit import codes
from gridkit.crs import local_metric_crs
from gridkit.errors import CRSError, GridkitWarning, InvalidLayerError, format_rows
from gridkit.layers import check_layer
from gridkit.staffing.solvers import Budget, Model, quick_primal, solve

__all__ = [
    "AssignmentResult",
    "Budget",
    "Workload",
    "assign_workers",
    "jurisdictions",
    "merge_results",
    "reassign",
]

Method = Literal["auto", "mip", "heuristic"]
REASONS = ("no worker in jurisdiction", "too far", "capacity exhausted")


@dataclass(frozen=True)
class Workload:
    """Points of workload per unit kind, on one scale shared with worker capacities.

    Parameters
    ----------
    per_household
        Points per household of a ``community_grid`` unit.
    per_km
        Points per kilometre (``length_m``) of a ``river_reach`` unit.
    water_body
        Points of one ``water_body`` unit.

    Examples
    --------
    >>> Workload(per_km=50).per_household
    1.0
    """

    per_household: float = 1.0
    per_km: float = 100.0
    water_body: float = 100.0

    @classmethod
    def coerce(cls, value: Workload | Mapping[str, float] | None) -> Workload:
        """A :class:`Workload` from itself, a dict of fields, or ``None`` (defaults).

        Examples
        --------
        >>> Workload.coerce({"per_km": 50}).per_km, Workload.coerce(None) == Workload()
        (50, True)
        """
        if value is None:
            return cls()
        if isinstance(value, Workload):
            return value
        unknown = set(value) - set(asdict(cls()))
        if unknown:
            raise InvalidLayerError(
                f"Unknown workload setting(s) {', '.join(sorted(unknown))}.",
                hint="Use per_household, per_km and water_body.",
            )
        return cls(**value)

    def points(self, units: pd.DataFrame) -> pd.Series:
        """Workload points per unit (a Series aligned to ``units``).

        Examples
        --------
        Two river reaches of about 490 m and two grids of 243 and 166 households:

        >>> from gridkit.synth.ops import grid_units
        >>> Workload(per_km=50).points(grid_units(2, 2, river_rows=1)).round(1).tolist()
        [24.6, 24.6, 243.0, 166.0]
        """
        kind = units["kind"]
        hh = (
            pd.to_numeric(units.get("households"), errors="coerce")
            if "households" in units
            else pd.Series(np.nan, index=units.index)
        )
        ln = (
            pd.to_numeric(units.get("length_m"), errors="coerce")
            if "length_m" in units
            else pd.Series(np.nan, index=units.index)
        )
        pts = pd.Series(np.nan, index=units.index, dtype=float)
        pts[kind == "community_grid"] = hh[kind == "community_grid"] * self.per_household
        pts[kind == "river_reach"] = ln[kind == "river_reach"] / 1000.0 * self.per_km
        pts[kind == "water_body"] = self.water_body
        bad = pts.isna() | (pts < 0)
        if bad.any():
            rows = units.loc[bad, "unit_id"].tolist()
            raise InvalidLayerError(
                f"units: no workload for rows {format_rows(rows)} (community grids need "
                "households, river reaches length_m, both non-negative).",
                hint="Fill households / length_m for those units.",
                rows=rows,
            )
        return pts


@dataclass(repr=False)
class AssignmentResult:
    """What :func:`assign_workers` and :func:`reassign` found, and how good it is.

    Attributes
    ----------
    assignments
        The ``assignments`` layer: ``unit_id``, ``worker_id``, ``role``, ``valid_from``,
        ``valid_to``, plus ``distance_m`` and ``load`` (points).
    loads
        One row per worker, indexed like the workers: ``worker_id``, ``load``,
        ``capacity``, ``units``, ``utilisation``, ``distance_m``.
    unassigned
        Units (indexed like the units) with unfilled worker slots: ``unit_id``,
        ``reason`` (``no worker in jurisdiction``, ``too far``, ``capacity exhausted``),
        ``missing`` (slots left unfilled).
    changes
        Previous (unit, worker) pairs not kept: ``unit_id``, ``previous_worker_id``,
        ``worker_id``, ``reason``.
    objective
        ``travel_m + churn_penalty * churned + penalty * unfilled`` (``unfilled`` counts
        slots of units that had a candidate worker).
    bound
        A proven lower bound of ``objective`` on the candidate graph.
    gap
        ``(objective - bound) / |objective|``; 0 means proven optimal.

    Examples
    --------
    Three grid units of 352, 283 and 243 households, two workers of capacity 500:

    >>> import geopandas as gpd
    >>> import shapely
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(3, 1)
    >>> workers = gpd.GeoDataFrame(
    ...     {"worker_id": ["W1", "W2"], "name": ["Li", "Wang"], "role": "grid_worker",
    ...      "level": "township", "admin_code": "430202001", "capacity": [500, 500],
    ...      "phone": None},
    ...     geometry=shapely.centroid(units.geometry.array[[0, 2]]), crs=units.crs,
    ... )
    >>> result = assign_workers(units, workers)
    >>> result.assignments.worker_id.tolist(), result.loads.load.tolist()
    (['W1', 'W2'], [352.0, 243.0])
    >>> result.unassigned[["unit_id", "reason"]].values.tolist()
    [['430202001000001', 'capacity exhausted']]
    >>> result.status, result.report().splitlines()[0]
    ('optimal', '2 assignments, 1 units not fully staffed: capacity exhausted 1')
    """

    assignments: pd.DataFrame
    loads: pd.DataFrame
    unassigned: pd.DataFrame
    changes: pd.DataFrame
    objective: float
    bound: float
    gap: float
    travel_m: float
    churned: int
    unfilled: int
    penalty: float
    stats: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``"optimal"`` when the gap is closed, else ``"feasible"``."""
        return "optimal" if self.gap <= 1e-6 else "feasible"

    def report(self) -> str:
        """A short human-readable summary."""
        reasons = self.unassigned["reason"].value_counts()
        lines = [
            f"{len(self.assignments):,} assignments, {len(self.unassigned):,} units not fully "
            f"staffed"
            + (": " + ", ".join(f"{k} {v}" for k, v in reasons.items()) if len(reasons) else ""),
            f"travel {self.travel_m / 1000:,.1f} km, {self.churned} previous pairs changed",
            f"objective {self.objective:,.1f}, bound {self.bound:,.1f}, gap {self.gap:.3%} "
            f"({self.status})",
            f"{self.stats.get('components', 0)} components, "
            f"{self.stats.get('arcs', 0):,} candidate arcs, "
            f"{self.stats.get('mip_optimal', 0)} solved exactly by MIP, "
            f"{self.stats.get('solve_s', 0.0):.2f} s",
        ]
        if self.stats.get("time_capped"):
            lines.append(
                "stopped on the time limit before the budget was spent: the answer may "
                "depend on the machine's load"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        """One line; :meth:`report` has the rest."""
        return (
            f"<AssignmentResult {self.status}: {len(self.assignments):,} assignments, "
            f"{len(self.unassigned):,} units not fully staffed, travel "
            f"{self.travel_m / 1000:,.1f} km, gap {self.gap:.3%}>"
        )


# ----------------------------------------------------------------------------- input


def _per_code(fn: Callable[[pd.Series], pd.Series], values: pd.Series) -> np.ndarray:
    """``fn`` (a vectorised :mod:`gridkit.codes` function) over the distinct codes only,
    mapped back: codes repeat (many units per village), so large layers stay fast."""
    inverse, uniques = pd.factorize(values.astype(str))
    return fn(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)[inverse]


def _reach(worker_codes: pd.Series, levels: int) -> pd.Series:
    """The prefix of the admin area (``levels`` up from the worker's own, at most the
    province) every unit code a worker may take starts with (:func:`gridkit.codes.prefix`)."""
    area = codes.normalise(worker_codes)
    for _ in range(levels):
        up = codes.parent(area)
        area = up.where(up.notna(), area)  # above a province: stays there
    return codes.prefix(area)


def _scope_key(unit_codes: pd.Series, length: int) -> pd.Series:
    """The first ``length`` characters of normalised unit codes (missing where shorter).

    :func:`gridkit.codes.in_scope` for many scopes at once: a unit lies in a worker's
    reach (a :func:`gridkit.codes.prefix`) iff this key of the unit, at the prefix's
    length, equals it; grouping the reaches by length makes one vectorised cut per
    length. (``gridkit.codes`` checks one scope per call.)
    """
    return unit_codes.str[:length].where(unit_codes.str.len() >= length)


def _in_reach(unit_codes: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Pairwise :func:`gridkit.codes.in_scope`: unit code ``i`` in reach ``i``."""
    if not len(unit_codes):
        return np.zeros(0, dtype=bool)
    return np.char.startswith(unit_codes.astype(str), reach.astype(str))


def _holding_grids(workers: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The workers who may hold grids: people with a capacity of exactly 0 (a river
    chief's supporting role, a general chief) hold none and are left out, told once;
    a negative or missing capacity stays an error (:func:`_check_inputs`)."""
    if "role" not in workers.columns or workers["role"].isna().any():
        # a file of grid workers alone (no role column, or an empty one)
        role = workers["role"] if "role" in workers.columns else None
        workers = workers.assign(
            role="grid_worker" if role is None else role.astype(object).fillna("grid_worker")
        )
    if "capacity" not in workers.columns:
        return workers
    none = (pd.to_numeric(workers["capacity"], errors="coerce") == 0).to_numpy()
    if none.any():
        warnings.warn(
            f"{int(none.sum())} worker(s) with capacity 0 hold no grid and were left out "
            f"(e.g. {', '.join(workers.loc[none, 'worker_id'].astype(str).head(3))}).",
            GridkitWarning,
            stacklevel=4,
        )
        workers = workers[~none]
    return workers


def _check_inputs(
    units: gpd.GeoDataFrame, workers: gpd.GeoDataFrame, max_units: int | str | None
) -> None:
    check_layer(units, "units")
    # the columns staffing uses: a workers file without names or phones still staffs
    check_layer(workers, "workers", require=("worker_id", "admin_code", "capacity"))
    if units.crs is None or workers.crs is None:
        raise CRSError(
            f"{'units' if units.crs is None else 'workers'} has no CRS.",
            hint="Set one (e.g. gdf.set_crs(4326)) or read the layer with crs= declared.",
        )
    geoms = np.asarray(workers.geometry.array)
    nobase = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if nobase.any():
        rows = workers.loc[nobase, "worker_id"].tolist()
        raise InvalidLayerError(
            f"workers {format_rows(rows)} have no base point.",
            hint="Give every worker a base (Point geometry) or leave them out.",
            rows=rows,
        )
    cap = pd.to_numeric(workers["capacity"], errors="coerce")
    bad = ~(cap > 0)
    if bad.any():
        rows = workers.loc[bad, "worker_id"].tolist()
        raise InvalidLayerError(
            f"workers {format_rows(rows)} have capacity <= 0.",
            hint="Capacities are workload points (see Workload); set positive values "
            "or leave those workers out.",
            rows=rows,
        )
    if isinstance(max_units, str) and max_units not in workers.columns:
        raise InvalidLayerError(f"workers has no column {max_units!r} (max_units).")


def _per_unit(
    value: int | str | pd.Series | None, units: pd.DataFrame, name: str, default: int
) -> np.ndarray:
    if value is None:
        value = units[name] if name in units.columns else default
    elif isinstance(value, str):
        if value not in units.columns:
            raise InvalidLayerError(f"units has no column {value!r} ({name}).")
        value = units[value]
    if isinstance(value, pd.Series):
        value = value.reindex(units.index)
    arr = np.broadcast_to(np.asarray(value, dtype=float), (len(units),)).copy()
    if np.isnan(arr).any() or (arr < 0).any() or not np.allclose(arr, np.rint(arr)):
        raise InvalidLayerError(f"{name} must be a non-negative whole number for every unit.")
    return arr.astype(np.int64)


def _candidates(
    ucode: np.ndarray, uxy: np.ndarray, wreach: np.ndarray, wxy: np.ndarray, k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eligible (unit, worker) pairs, at most ``k`` nearest per worker group and unit.

    A worker group is the set of workers sharing a reach (:func:`_reach`); a unit
    belongs to the group when it lies in that reach (:func:`_scope_key`).
    """
    ucodes = pd.Series(ucode, dtype=object)
    wlen = np.fromiter((len(c) for c in wreach), dtype=int, count=len(wreach))
    pu, pw = [], []
    # a few distinct code lengths (admin levels): the loop is over levels, not rows
    for length in np.unique(wlen):
        ws = np.flatnonzero(wlen == length)
        keys, gid_w = np.unique(wreach[ws], return_inverse=True)
        order = np.argsort(gid_w, kind="stable")
        ws_sorted, g_sorted = ws[order], gid_w[order]
        gstart = np.searchsorted(g_sorted, np.arange(len(keys) + 1))
        size = np.diff(gstart)
        pre = _scope_key(ucodes, int(length))
        gid_u = pd.Index(keys).get_indexer(pre.to_numpy(dtype=object))
        us = np.flatnonzero(gid_u >= 0)
        g = gid_u[us]
        small = size[g] <= (k if k else np.inf)
        # small groups: every worker of the group is a candidate
        su, sg = us[small], g[small]
        rep = size[sg]
        off = np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep)
        pu.append(np.repeat(su, rep))
        pw.append(ws_sorted[np.repeat(gstart[sg], rep) + off])
        # large groups: k nearest by a KD-tree per group (few groups: high admin levels)
        for gg in np.unique(g[~small]):
            members = ws_sorted[gstart[gg] : gstart[gg + 1]]
            uu = us[g == gg]
            _, nn = cKDTree(wxy[members]).query(uxy[uu], k=k)
            nn = np.atleast_2d(nn).reshape(len(uu), -1)
            pu.append(np.repeat(uu, nn.shape[1]))
            pw.append(members[nn.ravel()])
    au = np.concatenate(pu) if pu else np.zeros(0, dtype=np.int64)
    aw = np.concatenate(pw) if pw else np.zeros(0, dtype=np.int64)
    dist = np.hypot(*(uxy[au] - wxy[aw]).T) if len(au) else np.zeros(0)
    return au.astype(np.int64), aw.astype(np.int64), dist


def _previous_pairs(
    previous: pd.DataFrame | None, uid: pd.Index, wid: pd.Index
) -> pd.DataFrame | None:
    """Current previous pairs as (unit index, worker index or -1, worker id, valid_from)."""
    if previous is None:
        return None
    prev = check_layer(previous, "assignments", source="previous")
    if "valid_to" in prev.columns:
        prev = prev[prev["valid_to"].isna()]
    pu = uid.get_indexer(prev["unit_id"].astype(str))
    keep = pu >= 0
    prev = prev[keep]
    pu = pu[keep]
    pw = wid.get_indexer(prev["worker_id"].astype(str))
    vf = (
        pd.to_datetime(prev["valid_from"], utc=True, format="mixed")
        if "valid_from" in prev.columns
        else pd.Series(pd.NaT, index=prev.index)
    )
    out = pd.DataFrame(
        {
            "u": pu,
            "w": pw,
            "worker_id": prev["worker_id"].astype(str).to_numpy(),
            "valid_from": vf.to_numpy(),
        }
    )
    return out.drop_duplicates(["u", "worker_id"]).reset_index(drop=True)


@dataclass(frozen=True)
class _Options:
    """The solver options of :func:`assign_workers`."""

    max_distance_m: float | None
    candidates: int | None
    method: Method
    time_limit_s: float
    gap_target: float
    mip_max_arcs: int
    budget: Budget | None = None


@dataclass
class _Job:
    """One assignment problem as arrays (units and workers by position), with options."""

    units: gpd.GeoDataFrame
    workers: gpd.GeoDataFrame
    load: np.ndarray  # workload points per unit
    req: np.ndarray  # worker slots per unit
    cap: np.ndarray  # capacity per worker
    maxu: np.ndarray  # most units per worker (inf: no limit)
    uxy: np.ndarray  # unit representative points, metric
    wxy: np.ndarray  # worker bases, metric
    uid: pd.Index
    wid: pd.Index
    ucode: np.ndarray  # normalised unit admin codes
    wreach: np.ndarray  # prefix of each worker's reach (see _reach)
    metric: pyproj.CRS
    prev: pd.DataFrame | None  # see _previous_pairs
    opt: _Options
    t_start: float

    @property
    def n_u(self) -> int:
        return len(self.units)

    @property
    def n_w(self) -> int:
        return len(self.workers)

    @property
    def has_prev(self) -> bool:
        return self.prev is not None and len(self.prev) > 0

    def fits(self, u: np.ndarray, w: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """Arcs whose unit fits the worker's capacity and distance limit."""
        ok = self.load[u] <= self.cap[w] * (1 + 1e-12)
        if self.opt.max_distance_m is not None:
            ok &= dist <= self.opt.max_distance_m
        return ok

    def time_left(self) -> float:
        # the solvers share what is left of three quarters of the time limit: the outputs
        # take a little, and a busy machine should not push the call past the limit
        spent = time.perf_counter() - self.t_start
        return max(0.75 * self.opt.time_limit_s - spent, 0.05 * self.opt.time_limit_s)


@dataclass
class _Arcs:
    """Candidate (unit, worker) arcs with their distances."""

    u: np.ndarray
    w: np.ndarray
    dist: np.ndarray

    def take(self, sel: np.ndarray) -> _Arcs:
        return _Arcs(self.u[sel], self.w[sel], self.dist[sel])

    def plus(self, other: _Arcs) -> _Arcs:
        return _Arcs(np.r_[self.u, other.u], np.r_[self.w, other.w], np.r_[self.dist, other.dist])


@dataclass
class _Built:
    """The solver model on a set of arcs and the penalties it was built with."""

    model: Model
    arcs: _Arcs  # previous pairs added, one per (unit, worker), sorted by unit
    modelled: np.ndarray  # units with an arc, in model order
    churn: float
    penalty: float


@dataclass
class _Solved:
    """What the solvers chose, and the figures of the first candidate pass."""

    built: _Built
    x: np.ndarray  # chosen arcs of built.arcs
    objective_m: float
    bound_m: float
    eligible: np.ndarray  # per unit: a worker in jurisdiction
    near: np.ndarray  # per unit: one within max_distance_m too
    stats: dict


def _solve_one(
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    *,
    previous: pd.DataFrame | None,
    required: int | str | pd.Series | None,
    workload: Workload | Mapping[str, float] | None,
    max_units: int | str | None,
    max_distance_m: float | None,
    neighbour_levels: int,
    candidates: int | None,
    churn_penalty: float | None,
    unassigned_penalty: float | None,
    method: Method,
    time_limit_s: float,
    valid_from: pd.Timestamp | str | None,
    gap_target: float = 0.005,
    mip_max_arcs: int = 60_000,
    budget: Budget | None = None,
) -> tuple[AssignmentResult, pd.DataFrame | None]:
    """:func:`assign_workers` and :func:`reassign` in stages: the job (arrays), the
    candidate arcs and the solvers (:func:`_optimise`), the result (:func:`_result`).
    ``churn_penalty=None``: keeping a unit beats any travel saving."""
    t_start = time.perf_counter()
    workers = _holding_grids(workers)
    _check_inputs(units, workers, max_units)
    if method not in ("auto", "mip", "heuristic"):
        raise ValueError(f"method must be 'auto', 'mip' or 'heuristic', not {method!r}")
    if candidates is not None and candidates < 1:
        raise ValueError("candidates must be a positive number of workers per unit, or None")
    load = Workload.coerce(workload).points(units).to_numpy(dtype=float)
    req = _per_unit(required, units, "required", 1)
    metric = local_metric_crs(units)
    rep = units.geometry.to_crs(metric).representative_point()
    uid = pd.Index(units["unit_id"].astype(str))
    wid = pd.Index(workers["worker_id"].astype(str))
    job = _Job(
        units=units,
        workers=workers,
        load=load,
        req=req,
        cap=pd.to_numeric(workers["capacity"]).to_numpy(dtype=float),
        maxu=_max_units(workers, max_units),
        uxy=shapely.get_coordinates(np.asarray(rep.array)),
        wxy=shapely.get_coordinates(np.asarray(workers.geometry.to_crs(metric).array)),
        uid=uid,
        wid=wid,
        ucode=_per_code(codes.normalise, units["admin_code"]),
        wreach=_per_code(lambda c: _reach(c, neighbour_levels), workers["admin_code"]),
        metric=metric,
        prev=_previous_pairs(previous, uid, wid),
        opt=_Options(
            max_distance_m, candidates, method, time_limit_s, gap_target, mip_max_arcs, budget
        ),
        t_start=t_start,
    )
    solved = _optimise(job, churn_penalty, unassigned_penalty)
    return _result(job, solved, valid_from), job.prev


def jurisdictions(
    unit_codes: pd.Series, worker_codes: pd.Series, neighbour_levels: int = 0
) -> tuple[pd.Series, pd.Series]:
    """The independent staffing problems: the widest areas workers may serve.

    A worker serves the area of their reach (own area, ``neighbour_levels`` up); reaches
    nest (a village inside its township), so the widest reaches not inside another one
    split units and workers into problems that share no candidate pair. Returns the key
    (the area's code prefix) per unit (``""`` when no worker may serve it) and per
    worker, aligned to the inputs.

    Examples
    --------
    >>> u, w = jurisdictions(
    ...     pd.Series(["430202001001", "430203001001", "430301001001"]),
    ...     pd.Series(["430202001", "430202", "430203001001"]),
    ... )
    >>> u.tolist(), w.tolist()
    (['430202', '430203001001', ''], ['430202', '430202', '430203001001'])
    """
    reach = pd.Series(
        _per_code(lambda c: _reach(c, neighbour_levels), worker_codes), index=worker_codes.index
    ).fillna("")
    keys = pd.Index(pd.unique(reach[reach != ""]))
    lengths = keys.str.len()
    top = pd.Series(None, index=keys, dtype=object)
    # the shortest reach that is a prefix of a reach is its top: one pass per length
    for n in np.unique(lengths):
        pre = pd.Series(keys.str[:n], index=keys)
        hit = top.isna() & pre.isin(keys[lengths == n])
        top[hit] = pre[hit]
    ucode = pd.Series(_per_code(codes.normalise, unit_codes), index=unit_codes.index)
    ukey = pd.Series("", index=unit_codes.index, dtype=object)
    tops = pd.Index(pd.unique(top))
    for n in np.unique(tops.str.len()):
        pre = _scope_key(ucode, int(n))
        hit = (ukey == "") & pre.isin(tops[tops.str.len() == n])
        ukey[hit] = pre[hit]
    wkey = reach.map(top).fillna("").astype(object)
    return ukey, wkey


def _solve(
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    *,
    budget: Budget | int | dict | None = None,
    **options,
) -> tuple[AssignmentResult, pd.DataFrame | None]:
    """Without a budget, :func:`_solve_one` on everything (one time limit); with a
    budget, :func:`_solve_one` per jurisdiction (:func:`jurisdictions`), each with the
    whole budget, merged: an area's answer does not depend on the rest of the call."""
    budget = Budget.coerce(budget)
    if budget is None:
        return _solve_one(units, workers, **options)
    workers = _holding_grids(workers)
    _check_inputs(units, workers, options.get("max_units"))
    ukey, wkey = jurisdictions(
        units["admin_code"], workers["admin_code"], options["neighbour_levels"]
    )
    parts = []
    # one solver run per jurisdiction: the decomposition is the point of this loop
    for key in sorted(set(ukey) - {""}):
        inside_u, inside_w = (ukey == key).to_numpy(), (wkey == key).to_numpy()
        parts.append(_solve_one(units[inside_u], workers[inside_w], budget=budget, **options)[0])
    solved = (ukey != "").to_numpy()
    merged = merge_results(parts, units, workers, solved=solved, required=options.get("required"))
    return merged, None


def merge_results(
    parts: list[AssignmentResult],
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    *,
    solved: np.ndarray | None = None,
    required: int | str | pd.Series | None = None,
) -> AssignmentResult:
    """One result of results on disjoint parts of ``units`` and ``workers`` (jurisdictions,
    partitions), its rows in the order one call gives them: units outside every part
    (``solved`` false) are unassigned with reason ``no worker in jurisdiction``, workers
    in no part have no load; objectives and bounds add up.

    Examples
    --------
    >>> import geopandas as gpd
    >>> import shapely
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(3, 1)
    >>> workers = gpd.GeoDataFrame(
    ...     {"worker_id": ["W1", "W2"], "name": ["Li", "Wang"], "role": "grid_worker",
    ...      "level": "township", "admin_code": "430202001", "capacity": [500, 500],
    ...      "phone": None},
    ...     geometry=shapely.centroid(units.geometry.array[[0, 2]]), crs=units.crs,
    ... )
    >>> a = assign_workers(units.iloc[:1], workers.iloc[:1], valid_from="2026-01-01")
    >>> b = assign_workers(units.iloc[2:], workers.iloc[1:], valid_from="2026-01-01")
    >>> m = merge_results([a, b], units, workers, solved=np.array([True, False, True]))
    >>> m.assignments.worker_id.tolist(), m.unassigned.reason.tolist()
    (['W1', 'W2'], ['no worker in jurisdiction'])
    >>> m.objective == a.objective + b.objective
    True
    """
    solved = np.ones(len(units), dtype=bool) if solved is None else np.asarray(solved)
    orphans = units[~solved]
    orphan_req = _per_unit(required, orphans, "required", 1)
    uid = pd.Index(units["unit_id"].astype(str))
    frames = [p.assignments for p in parts]
    assignments = pd.concat(frames, ignore_index=True) if frames else _empty_assignments()
    pos = uid.get_indexer(assignments["unit_id"].astype(str))
    assignments = assignments.iloc[np.lexsort((assignments["distance_m"], pos))]
    idle = workers.index.difference(pd.Index([]).append([p.loads.index for p in parts]))
    cap = pd.to_numeric(workers.loc[idle, "capacity"]).to_numpy(dtype=float)
    idle_loads = pd.DataFrame(
        {
            "worker_id": workers.loc[idle, "worker_id"].astype(str).to_numpy(dtype=object),
            "load": 0.0,
            "capacity": cap,
            "units": 0,
            "utilisation": 0.0,
            "distance_m": 0.0,
        },
        index=idle,
    )
    loads = pd.concat([*(p.loads for p in parts), idle_loads]).reindex(workers.index)
    none = pd.DataFrame(
        {
            "unit_id": orphans["unit_id"].astype(str).to_numpy(dtype=object),
            "reason": REASONS[0],
            "missing": orphan_req,
        },
        index=orphans.index,
    )
    unassigned = pd.concat([*(p.unassigned for p in parts if len(p.unassigned)), none])
    unassigned = unassigned[unassigned["missing"] > 0]
    unassigned = unassigned.iloc[np.argsort(uid.get_indexer(unassigned["unit_id"]), kind="stable")]
    changes = [p.changes for p in parts if len(p.changes)]
    objective = float(sum(p.objective for p in parts))
    bound = float(sum(p.bound for p in parts))
    gap = objective - bound
    gap = 0.0 if gap <= 1e-9 * max(1.0, abs(objective)) else gap / max(abs(objective), 1e-9)
    return AssignmentResult(
        assignments=assignments.reset_index(drop=True),
        loads=loads,
        unassigned=unassigned,
        changes=pd.concat(changes, ignore_index=True) if changes else _empty_changes(),
        objective=objective,
        bound=bound,
        gap=float(gap),
        travel_m=float(sum(p.travel_m for p in parts)),
        churned=int(sum(p.churned for p in parts)),
        unfilled=int(sum(p.unfilled for p in parts)),
        penalty=float(max((p.penalty for p in parts), default=0.0)),
        stats=_merged_stats([p.stats for p in parts]),
    )


def _empty_assignments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit_id": pd.Series(dtype=object),
            "worker_id": pd.Series(dtype=object),
            "role": pd.Series(dtype=object),
            "valid_from": pd.Series(dtype="datetime64[ns, UTC]"),
            "valid_to": pd.Series(dtype="datetime64[ns, UTC]"),
            "distance_m": pd.Series(dtype=float),
            "load": pd.Series(dtype=float),
        }
    )


def _empty_changes() -> pd.DataFrame:
    return pd.DataFrame(columns=["unit_id", "previous_worker_id", "worker_id", "reason"])


def _merged_stats(stats: list[dict]) -> dict:
    """The jurisdictions' solver figures: counts and seconds added up, any time cap."""
    out: dict = {"jurisdictions": int(sum(s.get("jurisdictions", 1) for s in stats))}
    for key in ("components", "arcs", "mip_components", "mip_optimal", "extended_units"):
        out[key] = int(sum(s.get(key, 0) or 0 for s in stats))
    for key in ("solve_s", "lagrange_s", "heuristic_s"):
        out[key] = float(sum(s.get(key, 0.0) or 0.0 for s in stats))
    out["lagrange_iterations"] = int(sum(s.get("lagrange_iterations", 0) for s in stats))
    out["time_capped"] = any(s.get("time_capped", False) for s in stats)
    methods: dict = {}
    for s in stats:
        for k, v in s.get("methods", {}).items():
            methods[k] = methods.get(k, 0) + v
    out["methods"] = methods
    crs: set[str] = set()
    for s in stats:
        value = s.get("metric_crs")
        crs.update(value if isinstance(value, list) else [value] if value else [])
    out["metric_crs"] = sorted(crs)
    return out


def _max_units(workers: gpd.GeoDataFrame, max_units: int | str | None) -> np.ndarray:
    """Most units per worker (inf: no limit) from a number or a column of ``workers``."""
    if max_units is None:
        return np.full(len(workers), np.inf)
    if isinstance(max_units, str):
        return pd.to_numeric(workers[max_units], errors="coerce").fillna(np.inf).to_numpy(float)
    return np.full(len(workers), float(max_units))


def _first_arcs(job: _Job) -> tuple[_Arcs, np.ndarray, np.ndarray]:
    """The candidate arcs that fit, at most ``candidates`` nearest per unit; and per unit
    whether a worker is in jurisdiction (``eligible``) and within the distance (``near``)."""
    arcs = _Arcs(*_candidates(job.ucode, job.uxy, job.wreach, job.wxy, job.opt.candidates))
    eligible = np.bincount(arcs.u, minlength=job.n_u) > 0
    ok = (
        np.ones(len(arcs.u), dtype=bool)
        if job.opt.max_distance_m is None
        else arcs.dist <= job.opt.max_distance_m
    )
    near = np.bincount(arcs.u[ok], minlength=job.n_u) > 0
    ok &= job.load[arcs.u] <= job.cap[arcs.w] * (1 + 1e-12)
    arcs = arcs.take(ok)
    if job.opt.candidates is not None and len(arcs.u):
        arcs = arcs.take(np.lexsort((arcs.w, arcs.dist, arcs.u)))
        first = np.searchsorted(arcs.u, arcs.u)
        arcs = arcs.take(np.arange(len(arcs.u)) - first < job.opt.candidates)
    return arcs, eligible, near


def _build(
    job: _Job, arcs: _Arcs, churn_given: float | None, penalty_given: float | None
) -> _Built:
    """The model on ``arcs`` with the previous pairs that are still allowed added."""
    is_prev = np.zeros(len(arcs.u), dtype=bool)
    n_w = job.n_w
    if job.has_prev:
        # previous pairs stay candidates when still allowed (they may be beyond k nearest)
        p = job.prev[job.prev["w"] >= 0]
        pu, pw = p["u"].to_numpy(), p["w"].to_numpy()
        pdist = np.hypot(*(job.uxy[pu] - job.wxy[pw]).T)
        allowed = _in_reach(job.ucode[pu], job.wreach[pw]) & job.fits(pu, pw, pdist)
        arcs = arcs.plus(_Arcs(pu[allowed], pw[allowed], pdist[allowed]))
        is_prev = np.isin(arcs.u * n_w + arcs.w, pu[allowed] * n_w + pw[allowed])
    _, first = np.unique(arcs.u * n_w + arcs.w, return_index=True)  # sorted by unit
    arcs, is_prev = arcs.take(first), is_prev[first]
    max_d = float(arcs.dist.max()) if len(arcs.dist) else 0.0
    churn = 10.0 * (max_d + 1.0) if churn_given is None else churn_given
    penalty = penalty_given
    if penalty is None:
        churn_part = churn if job.has_prev else 0.0
        penalty = 10.0 * (max_d + churn_part + 1.0)
    modelled = np.flatnonzero(np.bincount(arcs.u, minlength=job.n_u) > 0)
    umap = np.full(job.n_u, -1)
    umap[modelled] = np.arange(len(modelled))
    model = Model(
        arc_u=umap[arcs.u],
        arc_w=arcs.w,
        cost=arcs.dist - churn * is_prev,
        load=job.load[modelled],
        req=job.req[modelled],
        cap=job.cap,
        maxu=job.maxu,
        penalty=float(penalty),
    )
    return _Built(model, arcs, modelled, float(churn), float(penalty))


def _run(job: _Job, built: _Built, limit: float) -> tuple[np.ndarray, dict, float, float]:
    """The solvers on the built model: chosen arcs, stats, objective and bound."""
    model = built.model
    if not (len(built.modelled) and len(model.arc_u)):
        return np.zeros(0, dtype=bool), {"components": 0}, 0.0, 0.0
    sol = solve(
        model,
        method=job.opt.method,
        time_limit_s=limit,
        mip_max_arcs=job.opt.mip_max_arcs,
        gap_target=job.opt.gap_target,
        budget=job.opt.budget,
    )
    stats = dict(sol.info)
    stats["methods"] = pd.Series(sol.method_c[np.unique(sol.comp_u)]).value_counts().to_dict()
    return sol.x, stats, float(sol.obj_c.sum()), float(sol.bound_c.sum())


def _extend(job: _Job, built: _Built) -> tuple[_Arcs, int]:
    """More candidate workers (farther ones, still in jurisdiction) for the units a quick
    rounded solution leaves open within the k nearest, so that a slot stays open only
    when no candidate worker has room, not because the k nearest are full."""
    # on a budget the 5 s of the quick solution would make it depend on the machine
    cap = time.perf_counter() + job.time_left() if job.opt.budget else None
    x = quick_primal(built.model, cap)
    arcs, modelled = built.arcs, built.modelled
    served = np.bincount(arcs.u[x], minlength=job.n_u)
    open_u = modelled[served[modelled] < job.req[modelled]]
    if len(open_u):
        k_more = max(8 * job.opt.candidates, 50)
        eu, ew, ed = _candidates(job.ucode[open_u], job.uxy[open_u], job.wreach, job.wxy, k_more)
        eu = open_u[eu]
        fit = job.fits(eu, ew, ed)
        arcs = arcs.plus(_Arcs(eu[fit], ew[fit], ed[fit]))
    return arcs, len(open_u)


def _optimise(job: _Job, churn_penalty: float | None, penalty: float | None) -> _Solved:
    """Candidate arcs, the model, and the solvers within the time limit."""
    arcs, eligible, near = _first_arcs(job)
    built = _build(job, arcs, churn_penalty, penalty)
    extended = None
    if job.opt.candidates is not None and len(built.modelled) and len(built.model.arc_u):
        more, extended = _extend(job, built)
        if extended:
            built = _build(job, more, churn_penalty, penalty)
    x, stats, objective_m, bound_m = _run(job, built, job.time_left())
    if extended is not None:
        stats["extended_units"] = extended
    stats["arcs"] = len(built.arcs.u)
    stats["metric_crs"] = job.metric.to_string()
    return _Solved(built, x, objective_m, bound_m, eligible, near, stats)


# ----------------------------------------------------------------------------- output


def _start(valid_from: pd.Timestamp | str | None) -> pd.Timestamp:
    when = (
        pd.Timestamp.now(tz="UTC").normalize() if valid_from is None else pd.Timestamp(valid_from)
    )
    return when.tz_localize("UTC") if when.tzinfo is None else when


def _assignments(
    job: _Job, chosen: _Arcs, valid_from: pd.Timestamp | str | None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``assignments`` layer; kept previous pairs keep their ``valid_from``. Also
    returns which rows were previous pairs."""
    su, sw, sd = chosen.u, chosen.w, chosen.dist
    vfrom = pd.Series([_start(valid_from)] * len(su), dtype="datetime64[ns, UTC]")
    kept = np.zeros(len(su), dtype=bool)
    if job.has_prev:
        prev = job.prev
        pk = pd.MultiIndex.from_arrays([prev["u"], prev["w"]])
        loc = pk.get_indexer(pd.MultiIndex.from_arrays([su, sw]))
        kept = loc >= 0
        old_vf = pd.Series(
            prev["valid_from"].to_numpy()[np.maximum(loc, 0)], dtype="datetime64[ns, UTC]"
        )
        vfrom = vfrom.where(~(kept & old_vf.notna().to_numpy()), old_vf)
    assignments = pd.DataFrame(
        {
            "unit_id": job.uid[su].to_numpy(dtype=object),
            "worker_id": job.wid[sw].to_numpy(dtype=object),
            "role": job.workers["role"].to_numpy(dtype=object)[sw],
            "valid_from": vfrom.to_numpy(),
            "valid_to": pd.Series(pd.NaT, index=range(len(su)), dtype="datetime64[ns, UTC]"),
            "distance_m": sd,
            "load": job.load[su],
        }
    )
    assignments["valid_from"] = assignments["valid_from"].astype("datetime64[ns, UTC]")
    return assignments, kept


def _loads(job: _Job, chosen: _Arcs) -> pd.DataFrame:
    """One row per worker, indexed like the workers."""
    sw, n_w = chosen.w, job.n_w
    wload = np.bincount(sw, job.load[chosen.u], minlength=n_w)
    return pd.DataFrame(
        {
            "worker_id": job.wid.to_numpy(dtype=object),
            "load": wload,
            "capacity": job.cap,
            "units": np.bincount(sw, minlength=n_w),
            "utilisation": wload / job.cap,
            "distance_m": np.bincount(sw, chosen.dist, minlength=n_w),
        },
        index=job.workers.index,
    )


def _unassigned(job: _Job, solved: _Solved, missing: np.ndarray) -> pd.DataFrame:
    """Units with open slots and why (indexed like the units)."""
    reason = np.where(~solved.eligible, REASONS[0], np.where(~solved.near, REASONS[1], REASONS[2]))
    short = missing > 0
    return pd.DataFrame(
        {
            "unit_id": job.uid.to_numpy(dtype=object)[short],
            "reason": reason[short],
            "missing": missing[short],
        },
        index=job.units.index[short],
    )


def _changes(job: _Job, chosen: _Arcs, kept: np.ndarray) -> pd.DataFrame:
    """Previous pairs not kept, with the unit's new worker (first by distance)."""
    if not job.has_prev:
        return pd.DataFrame(columns=["unit_id", "previous_worker_id", "worker_id", "reason"])
    prev, su, sw = job.prev, chosen.u, chosen.w
    new_keys = pd.MultiIndex.from_arrays([su, sw])
    lost = prev[~pd.MultiIndex.from_arrays([prev["u"], prev["w"]]).isin(new_keys)]
    fresh = pd.DataFrame({"u": su[~kept], "worker_id": job.wid[sw[~kept]]}).drop_duplicates("u")
    lost = lost.merge(fresh, on="u", how="left", suffixes=("", "_new"))
    return pd.DataFrame(
        {
            "unit_id": job.uid[lost["u"]].to_numpy(dtype=object),
            "previous_worker_id": lost["worker_id"].to_numpy(dtype=object),
            "worker_id": lost["worker_id_new"].to_numpy(dtype=object),
            "reason": np.where(lost["w"].to_numpy() < 0, "worker gone", "reassigned"),
        }
    )


def _result(job: _Job, solved: _Solved, valid_from: pd.Timestamp | str | None) -> AssignmentResult:
    """The result layers and figures of the chosen arcs."""
    built = solved.built
    chosen = built.arcs.take(solved.x)
    chosen = chosen.take(np.lexsort((chosen.dist, chosen.u)))
    assignments, kept = _assignments(job, chosen, valid_from)
    missing = job.req - np.bincount(chosen.u, minlength=job.n_u)
    changes = _changes(job, chosen, kept)
    # previous pairs all cost the churn penalty in the figures; kept ones earn it back
    const = built.churn * (len(job.prev) if job.prev is not None else 0)
    objective = solved.objective_m + const
    bound = solved.bound_m + const
    gap = (
        0.0
        if objective - bound <= 1e-9 * max(1.0, abs(objective))
        else (objective - bound) / max(abs(objective), 1e-9)
    )
    return AssignmentResult(
        assignments=assignments,
        loads=_loads(job, chosen),
        unassigned=_unassigned(job, solved, missing),
        changes=changes,
        objective=objective,
        bound=bound,
        gap=float(gap),
        travel_m=float(chosen.dist.sum()),
        churned=len(changes),
        unfilled=int(missing[built.modelled].sum()),
        penalty=built.penalty,
        stats=solved.stats,
    )


def assign_workers(
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    *,
    previous: pd.DataFrame | None = None,
    required: int | str | pd.Series | None = None,
    workload: Workload | Mapping[str, float] | None = None,
    max_units: int | str | None = None,
    max_distance_m: float | None = None,
    neighbour_levels: int = 0,
    candidates: int | None = 10,
    churn_penalty: float = 1000.0,
    unassigned_penalty: float | None = None,
    method: Method = "auto",
    time_limit_s: float = 30.0,
    valid_from: pd.Timestamp | str | None = None,
    gap_target: float = 0.005,
    budget: Budget | int | Mapping[str, int] | None = None,
) -> AssignmentResult:
    """Assign grid workers to units: capacity and jurisdiction kept, least travel.

    Parameters
    ----------
    units
        The ``units`` layer (``unit_id``, ``kind``, ``admin_code``, ``households`` for
        community grids, ``length_m`` for river reaches).
    workers
        The ``workers`` layer with a base Point and ``capacity`` in workload points.
    previous
        Current ``assignments`` (rows with ``valid_to`` set are history and ignored);
        every previous (unit, worker) pair not kept costs ``churn_penalty``.
    required
        Workers each unit needs: a number, a column of ``units`` or a Series aligned to
        it. Default: the ``required`` column when present, else 1.
    workload
        Points per unit kind (:class:`Workload` or a dict of its fields).
    max_units
        Most units per worker: a number or a column of ``workers``.
    max_distance_m
        Longest allowed distance from a worker's base to a unit.
    neighbour_levels
        Admin levels above their own area a worker may also serve (1: a village worker
        may take units anywhere in the township; a province is as far as it goes).
    candidates
        Nearest eligible workers kept per unit (and worker group); ``None`` keeps all,
        which makes the MIP exact on the full problem.
    churn_penalty
        Cost, in metres of travel, of changing a previous (unit, worker) pair.
    unassigned_penalty
        Cost of a worker slot left unfilled; default ``10 * (longest candidate
        distance + churn_penalty (with previous) + 1)``: a slot stays open only when
        capacity leaves no cheaper way, and the bound and gap stay meaningful. Raise
        it to serve as many slots as possible at any travel cost.
    method
        ``"auto"`` (heuristic, then exact MIP where a gap is left), ``"mip"`` or
        ``"heuristic"``.
    time_limit_s
        Time limit of the whole call (the solvers stop at 75 % of it, leaving time to
        build the outputs and a margin on a busy machine). With a ``budget`` it is a
        safety cap per jurisdiction instead: when it is hit, ``stats["time_capped"]`` is
        true, the report says so, and the answer may depend on the machine's load.
    valid_from
        Start of new assignments (default: today, UTC); kept pairs keep theirs.
    gap_target
        The heuristic stops improving once its proven gap (objective against the
        lower bound) is at most this fraction; ``0`` uses the whole time limit. The exact
        MIP (``method="auto"`` or ``"mip"``) still aims at the optimum.
    budget
        Work per jurisdiction in steps, not seconds (:class:`Budget`, or a number of
        Lagrangian iterations, neighbourhood MIPs five times as many): every widest area
        of the workers' reach (:func:`jurisdictions`) is solved on its own with this
        budget, so the answer depends on the data alone, not on the machine, its load,
        or which other areas share the call (a run per county on a Dask cluster gives
        the answer of one call). ``None``: the solvers stop on ``time_limit_s``.

    Returns
    -------
    AssignmentResult
        ``.assignments``, ``.loads``, ``.unassigned``, ``.changes``, ``.objective``,
        ``.bound``, ``.gap`` and ``.report()``.

    Raises
    ------
    InvalidLayerError
        Invalid layers, workers without a base point, capacities <= 0, units without
        workload.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> units = gpd.GeoDataFrame({"unit_id": ["U1"], "kind": "water_body",
    ...     "parent_id": "WB1", "admin_code": "430202"},
    ...     geometry=[box(113.0, 27.8, 113.01, 27.81)], crs=4326)
    >>> workers = gpd.GeoDataFrame({"worker_id": ["W1"], "name": ["Li"],
    ...     "role": "grid_worker", "level": "village", "admin_code": "430203",
    ...     "capacity": [500], "phone": None}, geometry=[Point(113.0, 27.8)], crs=4326)
    >>> assign_workers(units, workers).unassigned.reason.tolist()
    ['no worker in jurisdiction']
    """
    result, _ = _solve(
        units,
        workers,
        previous=previous,
        required=required,
        workload=workload,
        max_units=max_units,
        max_distance_m=max_distance_m,
        neighbour_levels=neighbour_levels,
        candidates=candidates,
        churn_penalty=churn_penalty,
        unassigned_penalty=unassigned_penalty,
        method=method,
        time_limit_s=time_limit_s,
        valid_from=valid_from,
        gap_target=gap_target,
        budget=budget,
    )
    return result


def reassign(
    assignments: pd.DataFrame,
    *,
    units: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    departures: Iterable[str] = (),
    arrivals: gpd.GeoDataFrame | Iterable[str] = (),
    **options,
) -> AssignmentResult:
    """Move the units of departing workers; everything else stays unless capacity forces it.

    Parameters
    ----------
    assignments
        Current ``assignments``.
    units, workers
        The ``units`` and ``workers`` layers (``workers`` may still list the departing).
    departures
        ``worker_id`` of the workers who leave.
    arrivals
        New workers: a ``workers`` GeoDataFrame to add, or ids of rows of ``workers``
        (which are then simply available).
    **options
        Passed on as in :func:`assign_workers` (``required``, ``workload``,
        ``max_units``, ``max_distance_m``, ``neighbour_levels``, ``candidates``,
        ``method``, ``time_limit_s``, ``valid_from``, ``gap_target``, ``budget``).
        ``churn_penalty`` defaults to
        more than any travel saving, so a unit of a staying worker moves only when
        that lets an otherwise unserved unit be served.

    Returns
    -------
    AssignmentResult
        As :func:`assign_workers`; ``.changes`` lists every moved unit with reason
        ``departure`` or ``capacity`` (forced by capacity).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> units = gpd.GeoDataFrame({"unit_id": ["U1", "U2"], "kind": "water_body",
    ...     "parent_id": "WB1", "admin_code": "430202"},
    ...     geometry=[box(113.0, 27.8, 113.01, 27.81), box(113.1, 27.8, 113.11, 27.81)],
    ...     crs=4326)
    >>> workers = gpd.GeoDataFrame({"worker_id": ["W1", "W2"], "name": ["Li", "Wang"],
    ...     "role": "grid_worker", "level": "county", "admin_code": "430202",
    ...     "capacity": [500, 500], "phone": None},
    ...     geometry=[Point(113.0, 27.8), Point(113.1, 27.8)], crs=4326)
    >>> first = assign_workers(units, workers)
    >>> after = reassign(first.assignments, units=units, workers=workers, departures=["W1"])
    >>> after.assignments.worker_id.tolist()
    ['W2', 'W2']
    """
    departures = {str(d) for d in departures}
    unknown = departures - set(workers["worker_id"].astype(str))
    if unknown:
        raise InvalidLayerError(
            f"departing worker(s) {format_rows(sorted(unknown))} are not in workers.",
            hint="Pass worker_id values of the workers layer.",
        )
    staying = workers[~workers["worker_id"].astype(str).isin(departures)]
    if isinstance(arrivals, gpd.GeoDataFrame):
        check_layer(arrivals, "workers", source="arrivals")
        arrivals = arrivals.to_crs(staying.crs) if staying.crs is not None else arrivals
        staying = pd.concat([staying, arrivals], ignore_index=True)
        staying = gpd.GeoDataFrame(staying, geometry=workers.geometry.name, crs=workers.crs)
    else:
        missing = {str(a) for a in arrivals} - set(staying["worker_id"].astype(str))
        if missing:
            raise InvalidLayerError(
                f"arriving worker(s) {format_rows(sorted(missing))} are not in workers.",
                hint="Add their rows to workers or pass them as a GeoDataFrame.",
            )
    if len(staying) == 0:
        raise InvalidLayerError(
            "No workers left after the departures.", hint="Add arrivals or keep some workers."
        )
    options.setdefault("churn_penalty", None)
    options.setdefault("candidates", 10)
    for name, default in (
        ("required", None),
        ("workload", None),
        ("max_units", None),
        ("max_distance_m", None),
        ("neighbour_levels", 0),
        ("unassigned_penalty", None),
        ("method", "auto"),
        ("time_limit_s", 30.0),
        ("valid_from", None),
    ):
        options.setdefault(name, default)
    result, _ = _solve(units, staying, previous=assignments, **options)
    ch = result.changes
    if len(ch):
        gone = ch["previous_worker_id"].isin(departures).to_numpy()
        ch["reason"] = np.where(
            gone, "departure", np.where(ch["reason"] == "worker gone", "worker gone", "capacity")
        )
    forced = int((ch["reason"] == "capacity").sum()) if len(ch) else 0
    result.stats["forced_moves"] = forced
    return result
