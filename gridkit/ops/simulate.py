"""A seeded season of patrols and reports, for the demo, tests and benchmarks.

:func:`simulate` walks every assigned worker around their units at the frequency of
their level (with GPS noise, bad fixes, missed weeks and a few fake patrols) and
scatters problem reports over the units (background rates plus planted clusters),
then takes them through intake, hand-over and the lifecycle with the real
:mod:`gridkit.reports` functions. The same seed gives the same season.

Examples
--------
>>> from gridkit.synth.ops import grid_units, grid_workers
>>> units = grid_units(4, 4, river_rows=1)
>>> workers, assignments = grid_workers(units)
>>> sim = simulate(units, workers, assignments, start="2026-04-01", end="2026-05-01", seed=1)
>>> sorted(sim.fake_patrol_ids) == sorted(sim.patrols.loc[~sim.patrols["valid"], "patrol_id"]
...                                       .loc[lambda s: s.isin(sim.fake_patrol_ids)])
True
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import local_metric_crs
from gridkit.errors import once_per_call
from gridkit.layers import WATER_KINDS
from gridkit.ops.cases import act, escalate, route
from gridkit.ops.patrols import PatrolRules, flag_patrols, load_patrol_rules, patrols_from_points
from gridkit.ops.reports import ReportRules, intake, load_report_rules

__all__ = ["Simulation", "simulate"]

_TZ = "Asia/Shanghai"
_PER_WEEK = {"village": 1.2, "township": 0.3, "county": 0.1, "city": 0.07, "province": 0.05}


@dataclass
class Simulation:
    """What :func:`simulate` made: layers of the data contract plus the planted truth.

    Examples
    --------
    >>> from gridkit.synth.ops import grid_units, grid_workers
    >>> units = grid_units(3, 3)
    >>> sim = simulate(units, *grid_workers(units), start="2026-04-01", end="2026-04-15", seed=2)
    >>> sorted(set(sim.patrol_points["patrol_id"])) == sorted(sim.patrols["patrol_id"])
    True
    >>> set(sim.planted_units) <= set(units["unit_id"])
    True
    """

    patrols: gpd.GeoDataFrame
    patrol_points: gpd.GeoDataFrame
    reports: gpd.GeoDataFrame
    report_events: pd.DataFrame
    departments: pd.DataFrame
    planted_units: list[str]
    fake_patrol_ids: list[str]
    short_patrol_ids: list[str] = dataclass_field(default_factory=list)

    def __repr__(self) -> str:
        """One line: how much of each layer, and what was planted."""
        return (
            f"<Simulation: {len(self.patrols):,} patrols ({len(self.patrol_points):,} points), "
            f"{len(self.reports):,} reports ({len(self.report_events):,} events), "
            f"{len(self.departments):,} departments; planted: {len(self.planted_units):,} "
            f"hot units, {len(self.fake_patrol_ids):,} fake and "
            f"{len(self.short_patrol_ids):,} short patrols>"
        )


def _loops(units_m: np.ndarray, min_len: float = 160.0) -> np.ndarray:
    """A closed walking loop inside each unit.

    The unit's boundary pulled in by 15 % of its size (at most 10 m), the largest
    part where that splits it; where that loop is shorter than ``min_len`` (tiny
    units, slivers), a circle of that length around a point of the unit.
    """
    size = np.sqrt(shapely.area(units_m))
    inner = shapely.buffer(units_m, -np.minimum(0.15 * size, 10.0))
    inner = np.where(shapely.is_empty(inner), units_m, inner)
    parts, owner = shapely.get_parts(inner, return_index=True)
    best = pd.Series(shapely.area(parts)).groupby(owner).idxmax().to_numpy()
    loops = np.empty(len(units_m), dtype=object)
    loops[owner[best]] = shapely.get_exterior_ring(parts[best])
    short = ~(shapely.length(loops) >= min_len)  # also missing (empty units)
    if short.any():
        circle = shapely.buffer(
            shapely.point_on_surface(units_m[short]), min_len / (2 * np.pi), quad_segs=16
        )
        loops[short] = shapely.get_exterior_ring(circle)
    return loops


def _chord_ratio(loops: np.ndarray, step_m: float) -> np.ndarray:
    """Chord length over walked length of a lap of each loop with a fix every ``step_m``.

    A fix a minute cuts the corners of a loop hugging buildings: the phone measures
    the chords, which is less than what was walked.
    """
    length = shapely.length(loops)
    n = np.maximum(2, np.ceil(length / step_m).astype(np.int64) + 1)
    owner = np.repeat(np.arange(len(loops)), n)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(n) - n, n)
    along = np.minimum(k * step_m, length[owner])
    xy = shapely.get_coordinates(shapely.line_interpolate_point(loops[owner], along))
    same = owner[1:] == owner[:-1]
    chords = np.bincount(
        owner[1:][same], weights=np.hypot(*(xy[1:] - xy[:-1])[same].T), minlength=len(loops)
    )
    return np.clip(chords / np.maximum(length, 1e-9), 0.3, 1.0)


def _minimum(rules: PatrolRules, levels: np.ndarray, key: str, default: float) -> np.ndarray:
    """The rules' minimum ``key`` per level (``default`` where none is set)."""
    by_level = {k: float(v.get(key, 0) or 0) for k, v in rules.minimum.items()}
    got = pd.Series(levels).map(by_level).fillna(0.0).to_numpy(dtype=float)
    return np.where(got > 0, got, default)


@dataclass
class _Season:
    """The job of :func:`simulate`: inputs, options and the shared random stream.

    Every stage draws from ``rng`` in a fixed order, so the same seed gives the same
    season.
    """

    units: gpd.GeoDataFrame
    workers: pd.DataFrame
    assignments: pd.DataFrame
    t0: pd.Timestamp
    t1: pd.Timestamp
    seed: int
    rng: np.random.Generator
    patrol_rules: PatrolRules
    speed_kmh: float
    gps_noise_m: float
    miss_share: float
    fake_share: float
    short_share: float
    reports_per_unit: float
    clusters: int
    cluster_boost: float


@dataclass
class _Schedule:
    """Planned patrols: one row each, with its assignment, level, unit loop and kind."""

    assigned: pd.DataFrame  # assignments of known units, positions 0..n-1
    row: np.ndarray  # assignment position of each patrol
    t_start: pd.DatetimeIndex
    level: np.ndarray
    unit_idx: np.ndarray  # unit position of each patrol
    loop: np.ndarray  # the walking loop of each patrol's unit
    ratio: np.ndarray  # chord over walked length of that loop
    metric: object  # the local metric CRS of the loops
    ids: np.ndarray = dataclass_field(default_factory=lambda: np.array([], dtype=object))
    kind: np.ndarray = dataclass_field(default_factory=lambda: np.array([], dtype=np.int8))


# Kinds of planted patrols.
_GENUINE, _REPLAY, _CAR, _TELEPORT, _SHORT = 0, 1, 2, 3, 4


def _utc(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _schedule(job: _Season) -> _Schedule:
    """Per assignment and local calendar week (Monday first, as compliance counts
    them), Poisson patrols unless missed; daytime starts inside the season."""
    rng, units, workers = job.rng, job.units, job.workers
    metric = local_metric_crs(units)
    loops = _loops(np.asarray(units.to_crs(metric).geometry.array))
    upos = pd.Series(np.arange(len(units)), index=units["unit_id"].astype(str))
    a = job.assignments.reset_index(drop=True)
    a = a[a["unit_id"].astype(str).isin(upos.index)].reset_index(drop=True)
    level = (
        a["worker_id"].map(workers.set_index("worker_id")["level"]).fillna("village").astype(str)
    )
    lam = level.map(_PER_WEEK).fillna(1.0).to_numpy()
    local0 = job.t0.tz_convert(_TZ)
    monday = (local0 - pd.Timedelta(days=local0.weekday())).normalize()
    weeks = max(1, int(np.ceil((job.t1 - monday) / pd.Timedelta(days=7))))
    # Village workers patrol weekly (sometimes twice); higher levels by Poisson rate.
    # Missed weeks concentrate on a minority of slack workers (2 * miss_share of them,
    # who skip half their weeks), as in real assessments.
    base = np.repeat(np.floor(lam), weeks) + rng.poisson(np.repeat(lam - np.floor(lam), weeks))
    slack = np.repeat(rng.random(len(a)) < 2 * job.miss_share, weeks)
    missed = slack & (rng.random(len(a) * weeks) < 0.5)
    n_week = np.where(missed, 0, base).astype(np.int64)
    row = np.repeat(np.repeat(np.arange(len(a)), weeks), n_week)
    week = np.repeat(np.tile(np.arange(weeks), len(a)), n_week)
    # Daytime starts, 08:00-17:00 local time, on any day of the week.
    t_start = (
        monday
        + pd.to_timedelta(week * 7 + rng.integers(0, 7, len(row)), unit="D")
        + pd.to_timedelta(8 * 3600 + rng.uniform(0, 9 * 3600, len(row)), unit="s")
    ).tz_convert("UTC")
    keep = (t_start >= job.t0) & (t_start < job.t1)
    row, t_start = row[keep], t_start[keep]
    unit_idx = upos.loc[a["unit_id"].astype(str).to_numpy()[row]].to_numpy()
    # Fixes every minute cut the corners of a loop: the measured length is the sum of
    # chords. Measure that ratio per unit once (a lap at the nominal step).
    ratio = _chord_ratio(loops, job.speed_kmh * 1000 / 60)[unit_idx]
    ids = np.array([f"P{job.seed:03d}-{k:06d}" for k in range(len(row))], dtype=object)
    return _Schedule(
        a, row, t_start, level.to_numpy()[row], unit_idx, loops[unit_idx], ratio, metric, ids
    )


def _plant_kinds(job: _Season, plan: _Schedule) -> None:
    """Choose each patrol's kind: genuine, or planted fake (replay, car, teleport) or
    short."""
    rng, n_p = job.rng, len(plan.row)
    kind = np.zeros(n_p, dtype=np.int8)
    fake = rng.random(n_p) < job.fake_share
    kind[fake] = rng.integers(_REPLAY, _SHORT, fake.sum())
    kind[:1] = _GENUINE  # a replay needs an earlier patrol
    kind[(kind == _GENUINE) & (rng.random(n_p) < job.short_share)] = _SHORT
    plan.kind = kind


def _walk_lengths(job: _Season, plan: _Schedule) -> tuple[np.ndarray, np.ndarray]:
    """Fixes per patrol and metres between fixes.

    Genuine patrols meet their level's minimum with a margin: the distance the phone
    measures is 1.25-2.5 times the minimum length (2.5-5 km by default), at 0.8-1.1
    times speed_kmh, and never shorter than 1.3 times the minimum duration.
    """
    rng, n_p, kind = job.rng, len(plan.row), plan.kind
    min_len = _minimum(job.patrol_rules, plan.level, "length_m", 2000.0)
    min_dur = _minimum(job.patrol_rules, plan.level, "duration_min", 30.0)
    target_m = min_len * rng.uniform(1.25, 2.5, n_p)
    speed = job.speed_kmh * rng.uniform(0.8, 1.1, n_p)
    short = kind == _SHORT  # planted: cut short at 40-80 % of the minimum length
    target_m[short] = min_len[short] * rng.uniform(0.4, 0.8, short.sum())
    speed[kind == _CAR] *= 10  # driven
    step = speed * 1000 / 60  # metres walked between fixes (one a minute)
    # Walk until the measured length (chords) reaches the target.
    n_fix = np.maximum(2, np.ceil(target_m / (step * plan.ratio)).astype(np.int64) + 1)
    long_enough = (kind != _SHORT) & (kind != _CAR)
    n_fix[long_enough] = np.maximum(
        n_fix[long_enough], np.ceil(1.3 * min_dur[long_enough]).astype(np.int64) + 1
    )
    return n_fix, step


def _replay_sources(job: _Season, plan: _Schedule, n_fix: np.ndarray) -> np.ndarray:
    """Replays copy every fix of an earlier genuine patrol (any worker's): the source
    of each patrol (``-1`` for all but replays). A replay with no earlier genuine
    patrol becomes genuine; a replay takes its source's number of fixes."""
    n_p, kind = len(plan.row), plan.kind
    src = np.full(n_p, -1)
    order = np.argsort(plan.t_start.to_numpy(), kind="stable")
    rank = np.empty(n_p, dtype=np.int64)
    rank[order] = np.arange(n_p)
    genuine_order = order[kind[order] == _GENUINE]
    rp = np.flatnonzero(kind == _REPLAY)
    n_before = np.searchsorted(rank[genuine_order], rank[rp])
    none = n_before == 0
    kind[rp[none]] = _GENUINE
    rp, n_before = rp[~none], n_before[~none]
    src[rp] = genuine_order[np.floor(job.rng.random(len(rp)) * n_before).astype(np.int64)]
    n_fix[rp] = n_fix[src[rp]]
    return src


def _fixes(
    job: _Season, plan: _Schedule, n_fix: np.ndarray, step: np.ndarray, src: np.ndarray
) -> gpd.GeoDataFrame:
    """The GPS fixes of every patrol (a ``patrol_points`` layer in WGS84): a fix a
    minute along the unit's loop with noise, bad fixes, teleport jumps and replays."""
    rng, n_p, kind, loop = job.rng, len(plan.row), plan.kind, plan.loop
    loop_len = shapely.length(loop)
    owner = np.repeat(np.arange(n_p), n_fix)
    first = np.cumsum(n_fix) - n_fix
    k_in = np.arange(len(owner)) - np.repeat(first, n_fix)
    offset = rng.uniform(0, 1, n_p) * loop_len
    dist = np.mod(offset[owner] + k_in * step[owner], loop_len[owner])
    fixes = shapely.line_interpolate_point(loop[owner], dist)
    xy = shapely.get_coordinates(fixes) + rng.normal(0, job.gps_noise_m, (len(owner), 2))
    tele = (kind[owner] == _TELEPORT) & (k_in >= n_fix[owner] // 2)
    xy[tele, 0] += 10_000.0
    acc = rng.uniform(3, 15, len(owner))
    acc[rng.random(len(owner)) < 0.02] = 80.0
    start_ns = plan.t_start.tz_convert("UTC").tz_localize(None).to_numpy()
    times = start_ns.astype("datetime64[ns]")[owner] + (k_in * 60).astype("timedelta64[s]")
    # Replays: the fixes of the earlier patrol at this patrol's times.
    rp = np.flatnonzero(src >= 0)
    within = np.arange(n_fix[rp].sum()) - np.repeat(np.cumsum(n_fix[rp]) - n_fix[rp], n_fix[rp])
    dst_idx = np.repeat(first[rp], n_fix[rp]) + within
    src_idx = np.repeat(first[src[rp]], n_fix[rp]) + within
    xy[dst_idx] = xy[src_idx]
    acc[dst_idx] = acc[src_idx]
    return gpd.GeoDataFrame(
        {
            "patrol_id": plan.ids[owner],
            "worker_id": plan.assigned["worker_id"].astype(str).to_numpy()[plan.row][owner],
            "t": pd.to_datetime(times).tz_localize("UTC"),
            "accuracy_m": acc,
        },
        geometry=shapely.points(xy),
        crs=plan.metric,
    ).to_crs(4326)


def _domain(rules: ReportRules, domain: str) -> list[str]:
    """Report categories of one domain (``river`` or ``community``), in rules order."""
    return [k for k, v in rules.categories.items() if v.get("domain") == domain]


def _default_departments(units: gpd.GeoDataFrame, rules: ReportRules) -> pd.DataFrame:
    first = str(units["admin_code"].iloc[0])
    code = codes.district(first) or codes.normalise(first)  # district departments
    return pd.DataFrame(
        {
            "department_id": ["D-WATER", "D-UM", "D-ENV"],
            "name": ["区水利局", "区城管局", "区生态环境分局"],
            "admin_code": [code] * 3,
            "categories": [
                ";".join(_domain(rules, "river")),
                ";".join(_domain(rules, "community")),
                "illegal_discharge;sewage",
            ],
        }
    )


@once_per_call
def simulate(
    units: gpd.GeoDataFrame,
    workers: pd.DataFrame,
    assignments: pd.DataFrame,
    *,
    start: object,
    end: object,
    seed: int = 0,
    speed_kmh: float = 4.0,
    gps_noise_m: float = 6.0,
    miss_share: float = 0.15,
    fake_share: float = 0.04,
    short_share: float = 0.02,
    reports_per_unit: float = 1.0,
    clusters: int = 2,
    cluster_boost: float = 6.0,
    departments: pd.DataFrame | None = None,
    patrol_rules: PatrolRules | None = None,
    extra_reports: pd.DataFrame | None = None,
) -> Simulation:
    """Simulate a season of patrols and reports.

    Parameters
    ----------
    units, workers, assignments
        Contract layers; each assignment (``unit_id``, ``worker_id``) is patrolled at
        the frequency of the worker's ``level``.
    start, end
        The season (UTC; naive values are UTC).
    seed
        Random seed: the same seed gives the same season.
    speed_kmh
        Mean walking speed of genuine patrols (each walks at 0.8-1.1 times it); a fix
        is taken every minute. Genuine patrols walk until the phone's measured length
        is 1.25-2.5 times their level's minimum (2.5-5 km by default) and last at
        least 1.3 times the minimum duration, so nearly all of them count.
    gps_noise_m
        Standard deviation of the GPS noise; about 2 % of fixes are bad
        (``accuracy_m`` 80 m, dropped by :func:`gridkit.ops.patrols.patrols_from_points`).
    miss_share
        Share of worker-weeks without a patrol.
    fake_share
        Share of patrols that are fake: replays of an earlier track, driven at
        car speed, or with a teleport jump.
    short_share
        Share of honest patrols planted too short (40-80 % of the minimum length).
    reports_per_unit
        Mean reports per unit over the season outside clusters.
    clusters
        Planted clusters: a unit and its neighbours get ``cluster_boost`` times the
        rate.
    departments
        ``departments`` layer for hand-over; default three district departments.
    patrol_rules
        Patrol rules (minimum length and duration per level, flags); default the
        packaged ``patrol_rules.toml``.
    extra_reports
        More new reports of the season, taken through the same workflow (e.g. 12345
        tickets placed by :func:`gridkit.ops.hotline.take_in_tickets`): ``category``,
        ``source``, ``reported_at``, a point or ``admin_code``/``unit_id``; their ids and
        other columns are kept.

    Returns
    -------
    Simulation
        ``patrols`` (flagged, see :func:`gridkit.ops.patrols.flag_patrols`),
        ``patrol_points``, ``reports``, ``report_events``, ``departments``,
        ``planted_units``, ``fake_patrol_ids`` and ``short_patrol_ids``.

    Examples
    --------
    Two weeks of a 3 x 3 grid, one village worker per unit: about one patrol a
    worker a week, each report placed in its unit and handed over.

    >>> from gridkit.synth.ops import grid_units, grid_workers
    >>> units = grid_units(3, 3)
    >>> workers, assignments = grid_workers(units)
    >>> sim = simulate(units, workers, assignments, start="2026-04-01", end="2026-04-15", seed=2)
    >>> 9 <= len(sim.patrols) <= 30, bool(sim.reports["unit_id"].isin(units["unit_id"]).all())
    (True, True)
    >>> again = simulate(units, workers, assignments, start="2026-04-01", end="2026-04-15", seed=2)
    >>> again.reports["report_id"].equals(sim.reports["report_id"])  # same seed, same season
    True
    """
    job = _Season(
        units=units,
        workers=workers,
        assignments=assignments,
        t0=_utc(start),
        t1=_utc(end),
        seed=seed,
        rng=np.random.default_rng(seed),
        patrol_rules=patrol_rules if patrol_rules is not None else load_patrol_rules(),
        speed_kmh=speed_kmh,
        gps_noise_m=gps_noise_m,
        miss_share=miss_share,
        fake_share=fake_share,
        short_share=short_share,
        reports_per_unit=reports_per_unit,
        clusters=clusters,
        cluster_boost=cluster_boost,
    )
    # ---- patrols: schedule, planted kinds, walks, fixes; then tracks and flags.
    plan = _schedule(job)
    _plant_kinds(job, plan)
    n_fix, step = _walk_lengths(job, plan)
    src = _replay_sources(job, plan, n_fix)
    points = _fixes(job, plan, n_fix, step, src)
    workers_lv = workers[["worker_id", "level"]] if "level" in workers else None
    patrols = flag_patrols(patrols_from_points(points), rules=job.patrol_rules, workers=workers_lv)
    planted_kind = (plan.kind > _GENUINE) & (plan.kind < _SHORT)
    fake_ids = sorted(plan.ids[planted_kind].tolist())
    short_ids = sorted(plan.ids[plan.kind == _SHORT].tolist())
    # ---- reports: background plus planted clusters, through their lifecycle.
    rules = load_report_rules()
    new, planted = _new_reports(job, rules)
    if extra_reports is not None and len(extra_reports):
        more = extra_reports
        if not isinstance(more, gpd.GeoDataFrame) or more.crs is None:
            more = gpd.GeoDataFrame(more, geometry=[None] * len(more), crs=4326)
        new = pd.concat([new, more.to_crs(new.crs)], ignore_index=True)
    departments = departments if departments is not None else _default_departments(units, rules)
    reports, report_events = _handle(job, new, rules, departments)
    return Simulation(
        patrols, points, reports, report_events, departments, planted, fake_ids, short_ids
    )


def _planted_rates(job: _Season, kinds: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Mean reports per unit: background, times ``cluster_boost`` on planted clusters (a
    community grid and the units touching it); and the planted unit ids."""
    units = job.units
    rate = np.full(len(units), job.reports_per_unit, dtype=float)
    planted: list[str] = []
    grids = np.flatnonzero(kinds == "community_grid")
    pool = grids if len(grids) else np.arange(len(units))
    if job.clusters and len(pool):
        centres = job.rng.choice(pool, size=min(job.clusters, len(pool)), replace=False)
        polys = np.asarray(units.geometry.array)
        _, n_idx = shapely.STRtree(polys).query(polys[centres], predicate="intersects")
        boosted = np.unique(np.r_[centres, n_idx])
        rate[boosted] *= job.cluster_boost
        planted = units["unit_id"].astype(str).to_numpy()[boosted].tolist()
    return rate, planted


def _points_in_units(rng: np.random.Generator, polys: np.ndarray) -> np.ndarray:
    """A uniform random point in each polygon (rejection sampling in its bounds)."""
    b = shapely.bounds(polys)
    pts = shapely.points(rng.uniform(b[:, 0], b[:, 2]), rng.uniform(b[:, 1], b[:, 3]))
    bad = ~shapely.covers(polys, pts)
    for _ in range(20):  # rejection sampling for non-rectangular units
        if not bad.any():
            break
        pts[bad] = shapely.points(
            rng.uniform(b[bad, 0], b[bad, 2]), rng.uniform(b[bad, 1], b[bad, 3])
        )
        bad = ~shapely.covers(polys, pts)
    pts[bad] = shapely.point_on_surface(polys[bad])
    return pts


def _new_reports(job: _Season, rules: ReportRules) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Problem reports as they come in (before intake), and the planted cluster units."""
    rng, units = job.rng, job.units
    kinds = units["kind"].astype(str).to_numpy() if "kind" in units else np.full(len(units), "")
    rate, planted = _planted_rates(job, kinds)
    rep_unit = np.repeat(np.arange(len(units)), rng.poisson(rate))
    pts = _points_in_units(rng, np.asarray(units.geometry.array)[rep_unit])
    river_cats = _domain(rules, "river")
    comm_cats = _domain(rules, "community")
    cats = np.where(
        np.isin(kinds[rep_unit], WATER_KINDS),
        rng.choice(river_cats, len(rep_unit)),
        rng.choice(comm_cats, len(rep_unit)),
    )
    sources = rng.choice(
        ["patrol", "hotline", "resident", "media", "referral"],
        len(rep_unit),
        p=[0.5, 0.25, 0.15, 0.05, 0.05],
    )
    span_s = (job.t1 - job.t0).total_seconds() * 0.9
    reported = job.t0 + pd.to_timedelta(np.round(rng.uniform(0, span_s, len(rep_unit))), unit="s")
    new = gpd.GeoDataFrame(
        {
            "report_id": [f"R{job.seed:03d}-{k:06d}" for k in range(len(rep_unit))],
            "category": cats,
            "source": sources,
            "description": [rules.label(c) for c in cats],
            "reported_at": reported,
        },
        geometry=pts,
        crs=4326,
    )
    return new, planted


def _handle(
    job: _Season, new: gpd.GeoDataFrame, rules: ReportRules, departments: pd.DataFrame
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Take the reports through intake and the case workflow, as a centre runs it."""
    reports, ev0 = intake(new, units=job.units, rules=rules, at=job.t0)
    flow = _Flow(reports, rules, job.rng, job.t1, departments, [ev0])
    flow.run(job.assignments)
    reports, events = flow.reports, pd.concat(flow.events, ignore_index=True)
    events = pd.concat([events, _past_escalations(events, rules, job.t1)], ignore_index=True)
    reports, late = escalate(reports, at=job.t1, rules=rules)
    events = pd.concat([events, late], ignore_index=True)
    return reports, events.sort_values(["at", "report_id"], kind="stable", ignore_index=True)


class _Flow:
    """The season's cases taken step by step, each step for all the cases that take it
    (batched :func:`gridkit.ops.cases.act`), each case at its own time."""

    def __init__(self, reports, rules, rng, t_end, departments, events) -> None:
        self.reports, self.rules, self.rng, self.t_end = reports, rules, rng, t_end
        self.departments, self.events = departments, events
        self.n = len(reports)
        self.t = reports["reported_at"].reset_index(drop=True)

    def later(self, lo_h: float, hi_h: float, only: np.ndarray | None = None) -> None:
        """Time passes for the cases (``only`` those) between steps."""
        delay = pd.to_timedelta(self.rng.uniform(lo_h, hi_h, self.n), unit="h")
        self.t = self.t + (delay if only is None else delay.where(only, pd.Timedelta(0)))

    def chance(self, p: float) -> np.ndarray:
        return self.rng.random(self.n) < p

    def step(self, mask: np.ndarray, action: str, actor: object, **kw: object) -> np.ndarray:
        ok = mask & (self.t < self.t_end).to_numpy()
        if not ok.any():
            return ok
        ids = self.reports["report_id"].to_numpy(dtype=object)[ok].tolist()
        actors = np.asarray(actor, dtype=object)
        who = actors[ok] if actors.ndim else str(actor)
        self.reports, ev = act(
            self.reports, ids, action, actor_id=who, at=self.t[ok].tolist(), rules=self.rules, **kw
        )
        self.events.append(ev)
        return ok

    def status(self, *names: str) -> np.ndarray:
        return self.reports["status"].isin(names).to_numpy()

    def run(self, assignments: pd.DataFrame) -> None:
        r, original = self.reports, self.reports["duplicate_of"].isna().to_numpy()
        # a case no department handles is opened and waits at the centre
        found = route(r["category"].to_numpy(), r["admin_code"].to_numpy(), self.departments)
        routable = found["department_id"].notna().to_numpy()
        centre = "centre:" + codes.district(r["admin_code"]).fillna("city").astype(str)
        auto = r["category"].map(self.rules.auto_open).to_numpy(dtype=bool)
        self.later(0.05, 0.2)
        # the categories the rules open at once are opened and dispatched by the system
        self.step(original & auto, "open", "system")
        self.step(
            original & auto & routable & self.status("opened"),
            "dispatch",
            "system",
            departments=self.departments,
        )
        self.later(0.2, 8, only=~auto)
        self.step(original & ~auto & self.chance(0.97), "open", centre.to_numpy())
        self.step(
            original & ~auto & self.status("collected"),
            "reject",
            centre.to_numpy(),
            note="不属于受理范围",
        )
        self.later(0.1, 6, only=~auto)
        self.step(
            routable & self.status("opened"),
            "dispatch",
            centre.to_numpy(),
            departments=self.departments,
        )
        self._assignees(assignments)
        staff = ("staff:" + self.reports["lead_department_id"].fillna("?")).to_numpy()
        self.later(0.5, 24)
        back = self.step(
            self.status("dispatched") & self.chance(0.08),
            "return",
            staff,
            note="非本部门职责 / not ours",
        )
        self.later(1, 24, only=back)
        self.step(
            back & self.status("returned"),
            "dispatch",
            centre.to_numpy(),
            departments=self.departments,
        )
        staff = ("staff:" + self.reports["lead_department_id"].fillna("?")).to_numpy()
        self.later(0.5, 12, only=back)
        self.step(self.status("dispatched") & self.chance(0.95), "accept", staff)
        due_h = self.reports["category"].map(self.rules.due_in_h).to_numpy(dtype=float)
        self.step(
            self.status("handling") & self.chance(0.06),
            "extend",
            staff,
            hours=14.0,
            note="需协调施工 / needs works",
        )
        self._handle_and_verify(staff, due_h)
        self.later(1, 24)
        self.step(self.status("verified") & self.chance(0.9), "close", centre.to_numpy())

    def _handle_and_verify(self, staff: np.ndarray, due_h: np.ndarray) -> None:
        # handling takes a share of the category's time (some run late)
        self.t = self.t + pd.to_timedelta(due_h * self.rng.uniform(0.1, 1.1, self.n), unit="h")
        ev = "before:photo-b.jpg;after:photo-a.jpg"
        done = self.step(
            self.status("handling") & self.chance(0.92), "report_back", staff, evidence=ev
        )
        verifier = self.reports["assignee_id"].fillna("supervisor").astype(str).to_numpy()
        self.later(2, 30)
        redo = self.step(done & self.chance(0.1), "rework", verifier, note="照片角度不一致")
        self.later(4, 72, only=redo)
        self.step(redo, "report_back", staff, evidence="after:photo-a2.jpg")
        self.later(2, 30, only=redo)
        self.step(self.status("reported_back") & self.chance(0.9), "verify", verifier)

    def _assignees(self, assignments: pd.DataFrame) -> None:
        """The grid worker of each case's unit verifies it on site."""
        a = assignments.drop_duplicates("unit_id").set_index("unit_id")["worker_id"]
        self.reports["assignee_id"] = self.reports["unit_id"].map(a).astype("string")


def _past_escalations(
    events: pd.DataFrame, rules: ReportRules, t_end: pd.Timestamp
) -> pd.DataFrame:
    """The escalations the service made while the season ran: a stage that ended past
    its deadline was escalated when it lapsed and every ``repeat_h`` after, up to
    ``max_level``, until it ended (what :func:`gridkit.ops.cases.escalate` does on its
    schedule; the cases still open are escalated by it at the season's end)."""
    due = events["due_at"]
    late = (due.notna() & (events["at"] > due)).to_numpy()
    ended = events[late]
    if not len(ended):
        return events.iloc[:0]
    repeat = pd.Timedelta(hours=rules.escalation_repeat_h)
    span = (ended["at"] - ended["due_at"]) / repeat
    levels = np.minimum(rules.escalation_max_level, 1 + np.floor(span.to_numpy())).astype(int)
    rows = ended.loc[ended.index.repeat(levels)].reset_index(drop=True)
    k = np.concatenate([np.arange(1, n + 1) for n in levels])
    at = rows["due_at"] + pd.to_timedelta((k - 1) * rules.escalation_repeat_h, unit="h")
    at = at + pd.Timedelta(minutes=5)  # the next run of the schedule
    keep = (at < rows["at"]).to_numpy() & (at < t_end)
    stage = rows["from_status"].map(rules.stages).fillna(rows["from_status"])
    return pd.DataFrame(
        {
            "report_id": rows["report_id"],
            "at": at,
            "actor_id": "system",
            "action": "escalate",
            "from_status": rows["from_status"],
            "to_status": rows["from_status"],
            "note": "escalated (督办) to level "
            + pd.Series(k).astype(str)
            + ": "
            + stage
            + " overdue (due "
            + rows["due_at"].astype(str)
            + ")",
            "evidence": pd.NA,
            "due_at": rows["due_at"],
        }
    )[keep].astype(events.dtypes.to_dict())
