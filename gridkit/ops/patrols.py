"""Patrols (巡河/巡查): tracks from GPS fixes, plausibility, unit coverage and compliance.

Tracks are built from ``patrol_points`` (one fix per row: ``patrol_id``, ``t`` in
UTC, ``accuracy_m``) after dropping inaccurate fixes. A patrol counts only above a
minimum duration and length for its level; implausible ones are flagged: sustained
speeds no walker or boat keeps, teleport jumps, and replays of an earlier track
(fake patrols are a known abuse). Which units a patrol covered follows the unit
kind: a river reach when the track follows it for a share of its length, a community
grid when the track really enters it. :func:`patrol_compliance` compares what was
done with the frequency rules per level (``rules/patrol_rules.toml``) over calendar
periods in Asia/Shanghai time.

Examples
--------
>>> import pandas as pd
>>> rules = load_patrol_rules()
>>> rules.frequency["city"]
({'count': 3, 'per': 'year'}, {'count': 1, 'per': 'half'})
>>> [str(t) for t in period_bounds("2026-Q2")]
['2026-04-01 00:00:00+08:00', '2026-07-01 00:00:00+08:00']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import like_input, local_metric_crs, result_crs, to_wgs84
from gridkit.errors import GridkitError, InvalidLayerError
from gridkit.layers import PATROL_MODES
from gridkit.ops.rulefiles import read_rules
from gridkit.ops.times import utc_scalar, utc_series

__all__ = [
    "PatrolRules",
    "RulesError",
    "flag_patrols",
    "load_patrol_rules",
    "patrol_compliance",
    "patrol_coverage",
    "patrols_from_points",
    "period_bounds",
]

LEVELS = ("village", "township", "county", "city", "province", "general")
_PERS = ("week", "month", "quarter", "half", "year")


class RulesError(GridkitError, ValueError):
    """A rules table or a period that cannot be understood.

    Examples
    --------
    >>> try:
    ...     period_bounds("2026-Q5")
    ... except RulesError as err:
    ...     print(type(err).__name__, isinstance(err, ValueError))
    RulesError True
    """


@dataclass(frozen=True)
class PatrolRules:
    """Patrol frequency per level, minimum patrol, coverage and plausibility thresholds.

    Examples
    --------
    >>> rules = PatrolRules.from_dict(
    ...     {"frequency": {"village": [{"count": 1, "per": "week"}]},
    ...      "minimum": {"village": {"duration_min": 30, "length_m": 2000}}})
    >>> rules.frequency["village"], rules.minimum["village"]["length_m"], rules.max_speed_kmh
    (({'count': 1, 'per': 'week'},), 2000, 25.0)
    """

    frequency: Mapping[str, tuple[Mapping[str, object], ...]]
    minimum: Mapping[str, Mapping[str, float]]
    timezone: str = "Asia/Shanghai"
    checkin_counts: bool = True
    tolerance_m: float = 30.0
    share: float = 0.5
    grid_min_inside_m: float = 50.0
    max_accuracy_m: float = 50.0
    max_speed_kmh: float = 25.0
    teleport_speed_kmh: float = 150.0
    teleport_min_m: float = 500.0
    duplicate_tolerance_m: float = 3.0
    modes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    section_share: Mapping[str, float] = field(default_factory=dict)
    joint_tolerance_m: float = 200.0
    joint_time_share: float = 0.5
    night: tuple[Mapping[str, object], ...] = ()
    checklist: tuple[Mapping[str, str], ...] = ()
    source: str = field(default="<defaults>", compare=False)

    def mode_value(self, modes: object, key: str, default: float) -> np.ndarray:
        """The rules' ``key`` of each declared patrol mode (``default`` where a patrol
        declares none or the mode does not set it).

        Examples
        --------
        >>> load_patrol_rules().mode_value(["car", "foot", None], "max_speed_kmh", 25.0)
        array([90., 12., 25.])
        """
        by_mode = {k: float(v[key]) for k, v in self.modes.items() if key in v}
        got = pd.Series(np.asarray(modes, dtype=object)).map(by_mode)
        return got.fillna(default).to_numpy(dtype=float)

    @classmethod
    def from_dict(cls, d: Mapping[str, object], *, source: str = "<dict>") -> PatrolRules:
        """Build rules from a parsed ``patrol_rules.toml``.

        Examples
        --------
        >>> PatrolRules.from_dict({"frequency": {"city": [{"count": 3, "per": "year"}]}}).frequency
        {'city': ({'count': 3, 'per': 'year'},)}
        """
        freq = {k: tuple(dict(r) for r in v) for k, v in dict(d["frequency"]).items()}  # type: ignore[arg-type]
        for level, entries in freq.items():
            for e in entries:
                if e.get("per") not in _PERS or int(e.get("count", 0)) < 1:  # type: ignore[call-overload]
                    raise RulesError(
                        f"{source}: frequency rule {e} for {level!r} is not understood.",
                        hint=f"Use {{ count = N, per = X }} with X one of {', '.join(_PERS)}.",
                    )
        minimum = dict(d.get("minimum", {}))  # type: ignore[arg-type]
        checkin = bool(minimum.pop("checkin_counts", True))
        cov = dict(d.get("coverage", {}))  # type: ignore[arg-type]
        gps = dict(d.get("gps", {}))  # type: ignore[arg-type]
        pl = dict(d.get("plausibility", {}))  # type: ignore[arg-type]
        joint = dict(d.get("joint", {}))  # type: ignore[arg-type]
        return cls(
            frequency=freq,
            minimum={k: dict(v) for k, v in minimum.items()},
            timezone=str(d.get("timezone", "Asia/Shanghai")),
            checkin_counts=checkin,
            tolerance_m=float(cov.get("tolerance_m", 30)),
            share=float(cov.get("share", 0.5)),
            grid_min_inside_m=float(cov.get("grid_min_inside_m", 50)),
            max_accuracy_m=float(gps.get("max_accuracy_m", 50)),
            max_speed_kmh=float(pl.get("max_speed_kmh", 25)),
            teleport_speed_kmh=float(pl.get("teleport_speed_kmh", 150)),
            teleport_min_m=float(pl.get("teleport_min_m", 500)),
            duplicate_tolerance_m=float(pl.get("duplicate_tolerance_m", 3)),
            modes=_modes(d.get("modes", {}), source),
            section_share={
                k: float(v)
                for k, v in dict(dict(d.get("sections", {})).get("share", {})).items()  # type: ignore[call-overload]
            },
            joint_tolerance_m=float(joint.get("tolerance_m", 200)),
            joint_time_share=float(joint.get("min_time_share", 0.5)),
            night=_night(d.get("night", []), source),
            checklist=_checklist(d.get("checklist", []), source),
            source=source,
        )


_MODE_KEYS = ("max_speed_kmh", "min_length_m", "min_duration_min", "tolerance_m")


def _modes(table: object, source: str) -> dict[str, dict[str, float]]:
    """``[modes.X]`` tables, checked: known modes and keys, numbers."""
    out = {}
    for mode, values in dict(table).items():  # type: ignore[call-overload]
        if mode not in PATROL_MODES or not set(values) <= set(_MODE_KEYS):
            raise RulesError(
                f"{source}: [modes.{mode}] is not understood ({', '.join(values)}).",
                hint=f"Modes are {', '.join(PATROL_MODES)}; keys {', '.join(_MODE_KEYS)}.",
            )
        out[mode] = {k: float(v) for k, v in values.items()}
    return out


def _clock(text: object, source: str) -> int:
    """Minutes after midnight of ``HH:MM``."""
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(text))
    if not m:
        raise RulesError(f"{source}: night rule time {text!r} is not HH:MM.")
    return int(m[1]) * 60 + int(m[2])


def _night(entries: object, source: str) -> tuple[dict[str, object], ...]:
    """``[[night]]`` rules, checked, with ``from``/``to`` as minutes after midnight."""
    out = []
    for e in list(entries):  # type: ignore[call-overload]
        if e.get("per") not in _PERS or int(e.get("count", 0)) < 1 or not e.get("role"):
            raise RulesError(
                f"{source}: night rule {e} is not understood.",
                hint="Use { role = R, count = N, per = X, from = 'HH:MM', to = 'HH:MM' }.",
            )
        out.append(
            {
                "role": str(e["role"]),
                "admin_code": str(e.get("admin_code", "") or ""),
                "count": int(e["count"]),
                "per": str(e["per"]),
                "from_min": _clock(e.get("from", "20:00"), source),
                "to_min": _clock(e.get("to", "06:00"), source),
            }
        )
    return tuple(out)


def _checklist(entries: object, source: str) -> tuple[dict[str, str], ...]:
    """``[[checklist]]`` items, checked: unique keys, a step of look/check, labels."""
    out = [{k: str(v) for k, v in dict(e).items()} for e in list(entries)]  # type: ignore[call-overload]
    keys = [e.get("key") for e in out]
    bad = [e for e in out if not e.get("key") or e.get("step") not in ("look", "check")]
    if bad or len(set(keys)) != len(keys):
        raise RulesError(
            f"{source}: checklist items {bad or keys} are not understood (or keys repeat).",
            hint="Each [[checklist]] has a unique key, step = look|check, zh, en, category.",
        )
    return tuple(out)


def load_patrol_rules(path: str | Path | None = None, **overrides: object) -> PatrolRules:
    """Read patrol rules (default: the packaged ``rules/patrol_rules.toml``).

    ``overrides`` replace top-level tables, e.g. ``frequency={"village": [...]}``.

    Examples
    --------
    >>> load_patrol_rules().minimum["village"]
    {'duration_min': 30, 'length_m': 2000}
    >>> load_patrol_rules(frequency={"village": [{"count": 2, "per": "week"}]}).frequency["village"]
    ({'count': 2, 'per': 'week'},)
    """
    data, source = read_rules("patrol_rules.toml", path, RulesError)
    data.update(overrides)
    return PatrolRules.from_dict(data, source=source)


def _rules(rules: PatrolRules | str | Path | None) -> PatrolRules:
    return rules if isinstance(rules, PatrolRules) else load_patrol_rules(rules)


# --------------------------------------------------------------------------- tracks


def _naive_ns(s: pd.Series) -> np.ndarray:
    """UTC times as naive ``datetime64[ns]`` (numpy has no time zones)."""
    return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def patrols_from_points(
    patrol_points: gpd.GeoDataFrame,
    *,
    patrols: pd.DataFrame | None = None,
    rules: PatrolRules | str | Path | None = None,
    crs: object = None,
) -> gpd.GeoDataFrame:
    """Build patrol tracks from GPS fixes.

    Parameters
    ----------
    patrol_points
        ``patrol_id``, ``t`` (UTC), ``accuracy_m`` and Point geometry (optional
        ``worker_id``). Fixes less accurate than ``rules.max_accuracy_m`` are dropped.
    patrols
        The ``patrols`` layer, for ``worker_id`` and ``notes`` of each patrol.
    rules
        Patrol rules (GPS and plausibility thresholds).
    crs
        Declared datum of the fixes (``"gcj02"`` from phone map SDKs).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per patrol: ``patrol_id``, ``worker_id``, ``started_at``,
        ``ended_at``, ``n_points``, ``duration_min``, ``length_m``, ``p90_speed_kmh``,
        ``max_speed_kmh``, ``teleport`` and the track as a LineString (a Point for a
        single-fix check-in), in the CRS of the fixes (WGS84 for GCJ-02 or BD-09
        fixes, which no CRS can label).

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> pts = gpd.GeoDataFrame(
    ...     {"patrol_id": ["P1"] * 3, "worker_id": "W1", "accuracy_m": 5.0,
    ...      "t": pd.to_datetime(["2026-05-01T01:00Z", "2026-05-01T01:20Z", "2026-05-01T01:40Z"])},
    ...     geometry=gpd.points_from_xy([113.10, 113.11, 113.12], [27.80] * 3), crs=4326)
    >>> p = patrols_from_points(pts)
    >>> round(p["length_m"].iloc[0]), float(p["duration_min"].iloc[0])
    (1971, 40.0)

    Fixes in a projected CRS give tracks in it (lengths measured the same way):

    >>> q = patrols_from_points(pts.to_crs(32649))
    >>> q.crs.to_epsg(), round(q["length_m"].iloc[0])
    (32649, 1971)
    """
    rules = _rules(rules)
    pts = to_wgs84(patrol_points, crs=crs, source="patrol_points")
    acc = pd.to_numeric(pts.get("accuracy_m"), errors="coerce") if "accuracy_m" in pts else None
    keep = np.ones(len(pts), dtype=bool)
    if acc is not None:
        keep &= ~(acc.to_numpy(dtype=float, na_value=0.0) > rules.max_accuracy_m)
    geoms = np.asarray(pts.geometry.array)
    keep &= ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    pts = pts[keep]
    t = utc_series(pts["t"])
    # Sort by patrol then time on integer codes (object arrays sort slowly).
    codes, pids = pd.factorize(pts["patrol_id"].astype(str), sort=True)
    order = np.lexsort((_naive_ns(t).astype(np.int64), codes))
    pts = pts.iloc[order]
    t = t.iloc[order]
    codes = codes[order]
    metric = local_metric_crs(pts)
    xy = shapely.get_coordinates(np.asarray(pts.to_crs(metric).geometry.array))
    same = np.r_[False, codes[1:] == codes[:-1]]
    d = np.zeros(len(xy))
    d[1:] = np.hypot(*(xy[1:] - xy[:-1]).T)
    d[~same] = 0.0
    ts = _naive_ns(t).astype(np.int64) / 1e9
    dt = np.zeros(len(xy))
    dt[1:] = ts[1:] - ts[:-1]
    dt[~same] = np.nan
    speed = np.where(dt > 0, d / np.where(dt > 0, dt, 1) * 3.6, np.where(d > 0, np.inf, 0.0))
    speed[~same] = np.nan
    n = len(pids)
    length = np.bincount(codes, weights=d, minlength=n)
    n_points = np.bincount(codes, minlength=n)
    seg = pd.DataFrame({"c": codes, "v": speed, "jump": d})
    seg = seg[same]
    p90 = seg.groupby("c")["v"].quantile(0.9).reindex(range(n))
    vmax = seg.groupby("c")["v"].max().reindex(range(n))
    tele = (
        seg.assign(x=(seg["v"] > rules.teleport_speed_kmh) & (seg["jump"] >= rules.teleport_min_m))
        .groupby("c")["x"]
        .any()
        .reindex(range(n), fill_value=False)
    )
    first = np.r_[True, ~same[1:]]
    tn = _naive_ns(t)
    starts = pd.to_datetime(tn[first]).tz_localize("UTC")
    ends = pd.to_datetime(pd.Series(tn).groupby(codes).max().to_numpy()).tz_localize("UTC")
    single = n_points == 1
    fix_geoms = np.asarray(pts.geometry.array)
    geom = np.empty(n, dtype=object)
    multi = ~single[codes]
    if multi.any():
        multi_groups = np.flatnonzero(~single)
        remap = np.full(n, -1)
        remap[multi_groups] = np.arange(len(multi_groups))
        coords = shapely.get_coordinates(fix_geoms[multi])
        geom[multi_groups] = shapely.linestrings(coords, indices=remap[codes[multi]])
    if single.any():
        geom[single] = fix_geoms[first][single]
    out = gpd.GeoDataFrame(
        {
            "patrol_id": pd.array(pids, dtype="string"),
            "started_at": starts,
            "ended_at": ends,
            "n_points": n_points,
            "duration_min": (ends - starts) / pd.Timedelta(minutes=1),
            "length_m": length,
            "p90_speed_kmh": p90.to_numpy(dtype=float),
            "max_speed_kmh": vmax.to_numpy(dtype=float),
            "teleport": tele.to_numpy(dtype=bool),
        },
        geometry=geom,
        crs=4326,
    )
    if "worker_id" in pts:
        out.insert(
            1, "worker_id", pts.groupby(codes)["worker_id"].first().astype("string").to_numpy()
        )
    if patrols is not None:
        extra = patrols.drop(columns=[c for c in ("geometry",) if c in patrols]).set_index(
            "patrol_id"
        )
        for col in ("worker_id", "notes"):
            if col in extra:
                out[col] = out["patrol_id"].map(extra[col]).astype("string")
    # in the fixes' own CRS, as every gridkit result (WGS84 for GCJ-02/BD-09 fixes)
    return like_input(out, result_crs(patrol_points, crs))


def _level_of(patrols: pd.DataFrame, workers: pd.DataFrame | None, level: str) -> pd.Series:
    if "level" in patrols:
        return patrols["level"].fillna(level).astype(str)
    if workers is not None and "worker_id" in patrols:
        lv = patrols["worker_id"].map(workers.set_index("worker_id")["level"])
        return lv.fillna(level).astype(str)
    return pd.Series(level, index=patrols.index)


def _declared_modes(patrols: pd.DataFrame) -> np.ndarray:
    """Each patrol's declared ``mode`` (None where it declares none), checked."""
    if "mode" not in patrols:
        return np.full(len(patrols), None, dtype=object)
    mode = patrols["mode"].astype(object).where(patrols["mode"].notna(), None)
    bad = mode.notna() & ~mode.isin(PATROL_MODES)
    if bad.any():
        ids = patrols.loc[bad, "patrol_id"] if "patrol_id" in patrols else patrols.index[bad]
        raise InvalidLayerError(
            f"patrols: unknown mode {sorted(set(mode[bad]))} in rows {list(ids)[:5]}.",
            hint=f"Declare one of {', '.join(PATROL_MODES)} (or leave mode empty).",
        )
    return mode.to_numpy(dtype=object)


def flag_patrols(
    patrols: gpd.GeoDataFrame,
    *,
    rules: PatrolRules | str | Path | None = None,
    workers: pd.DataFrame | None = None,
    level: str = "village",
) -> gpd.GeoDataFrame:
    """Flag patrols that do not count or look fake.

    Parameters
    ----------
    patrols
        Output of :func:`patrols_from_points` or a ``patrols`` layer (LineString tracks,
        ``started_at``, ``ended_at``).
    rules
        Minimum duration/length per level and plausibility thresholds.
    workers
        ``workers`` layer, for each patrol's level (else ``patrols.level`` or ``level``).
    level
        Level of patrols whose worker is unknown.

    Returns
    -------
    geopandas.GeoDataFrame
        ``patrols`` plus ``too_short`` (below the level's minimum duration or length;
        check-ins exempt when ``rules.checkin_counts``; a declared ``mode`` adds its own
        minimum), ``implausible_speed`` (faster than the declared mode keeps, or than
        ``rules.max_speed_kmh`` when none is declared),
        ``teleport``, ``duplicate_of`` (an earlier patrol whose track this one repeats
        within ``rules.duplicate_tolerance_m``), ``valid`` and ``flags`` (text).

    Examples
    --------
    Two tracks of 1971 m, the second the same walk again a day later: both are
    shorter than the village minimum of 2000 m, and the second is a replay.

    >>> import geopandas as gpd, pandas as pd
    >>> t = ["2026-05-01T01:00Z", "2026-05-01T01:20Z", "2026-05-01T01:40Z",
    ...      "2026-05-02T01:00Z", "2026-05-02T01:20Z", "2026-05-02T01:40Z"]
    >>> pts = gpd.GeoDataFrame(
    ...     {"patrol_id": ["P1"] * 3 + ["P2"] * 3, "worker_id": "W1", "accuracy_m": 5.0,
    ...      "t": pd.to_datetime(t)},
    ...     geometry=gpd.points_from_xy([113.10, 113.11, 113.12] * 2, [27.80] * 6), crs=4326)
    >>> flag_patrols(patrols_from_points(pts))[["patrol_id", "valid", "flags"]].values.tolist()
    [['P1', False, 'too_short'], ['P2', False, 'too_short;duplicate']]
    """
    rules = _rules(rules)
    out = patrols.copy()
    geoms = np.asarray(out.geometry.array)
    metric = local_metric_crs(out)
    mg = np.asarray(out.to_crs(metric).geometry.array)
    start = utc_series(out["started_at"])
    end = utc_series(out["ended_at"])
    if "length_m" not in out:
        out["length_m"] = shapely.length(mg)
    if "duration_min" not in out:
        out["duration_min"] = (end - start) / pd.Timedelta(minutes=1)
    lv = _level_of(out, workers, level)
    mins = pd.DataFrame([{"level": k, **v} for k, v in rules.minimum.items()]).set_index("level")
    mode = _declared_modes(out)
    min_dur = np.maximum(
        lv.map(mins["duration_min"]).fillna(0).to_numpy(dtype=float),
        rules.mode_value(mode, "min_duration_min", 0.0),
    )
    min_len = np.maximum(
        lv.map(mins["length_m"]).fillna(0).to_numpy(dtype=float),
        rules.mode_value(mode, "min_length_m", 0.0),
    )
    checkin = shapely.get_type_id(geoms) == 0
    short = (out["duration_min"].to_numpy(dtype=float) < min_dur) | (
        out["length_m"].to_numpy(dtype=float) < min_len
    )
    if rules.checkin_counts:
        short &= ~checkin
    dur_h = np.maximum(out["duration_min"].to_numpy(dtype=float), 1e-9) / 60
    avg = out["length_m"].to_numpy(dtype=float) / 1000 / dur_h
    p90 = out["p90_speed_kmh"].to_numpy(dtype=float) if "p90_speed_kmh" in out else avg
    # each declared mode keeps its own speeds: a car at 30 km/h is a car, a "walk" is not
    vmax = rules.mode_value(mode, "max_speed_kmh", rules.max_speed_kmh)
    fast = (np.nan_to_num(p90) > vmax) | (avg > vmax)
    fast &= ~checkin
    tele = out["teleport"].to_numpy(dtype=bool) if "teleport" in out else np.zeros(len(out), bool)
    dup = _replays(out, mg, start, rules.duplicate_tolerance_m)
    out["too_short"] = short
    out["implausible_speed"] = fast
    out["teleport"] = tele
    out["duplicate_of"] = dup
    out["valid"] = ~(short | fast | tele | dup.notna().to_numpy())
    names = np.array(["too_short", "implausible_speed", "teleport", "duplicate"], dtype=object)
    mat = np.column_stack([short, fast, tele, dup.notna().to_numpy()])
    out["flags"] = pd.array([";".join(names[row]) for row in mat], dtype="string")
    return out


def _replays(out: pd.DataFrame, mg: np.ndarray, start: pd.Series, tol: float) -> pd.Series:
    """For each track, the earliest earlier patrol whose track it repeats (Hausdorff <= tol)."""
    result = pd.Series(pd.NA, index=out.index, dtype="string")
    is_line = shapely.get_type_id(mg) == 1
    pos = np.flatnonzero(is_line)
    if len(pos) < 2:
        return result
    # Cheap necessary conditions first. Hausdorff <= tol implies bounding boxes whose
    # four sides are each within tol: index the lower-left corners and query each
    # track's corner box of side 2 * tol, then compare the upper-right corners.
    box = shapely.bounds(mg[pos])
    corner = shapely.points(box[:, :2])
    search = shapely.box(box[:, 0] - tol, box[:, 1] - tol, box[:, 0] + tol, box[:, 1] + tol)
    a, b = shapely.STRtree(corner).query(search, predicate="intersects")
    upper = np.all(np.abs(box[a, 2:] - box[b, 2:]) <= tol, axis=1)
    a, b = pos[a[upper]], pos[b[upper]]
    t = _naive_ns(start)
    earlier = (t[b] < t[a]) | ((t[b] == t[a]) & (b < a))
    a, b = a[earlier], b[earlier]
    lengths = shapely.length(mg)
    similar = np.abs(lengths[a] - lengths[b]) <= np.maximum(2 * tol, 0.02 * lengths[a])
    a, b = a[similar], b[similar]
    if len(a) == 0:
        return result
    # Each track's earlier candidates, earliest first, tried in rounds: a track stops
    # at its first match, so a batch of identical uploads costs one test per track.
    order = np.lexsort((b, t[b], a))
    a, b = a[order], b[order]
    points = _densified(mg, tol)
    found = np.full(len(mg), -1)
    rank = np.arange(len(a)) - np.searchsorted(a, a)  # position among a track's candidates
    for k in range(int(rank.max()) + 1):  # rounds: as many as a track has candidates
        sel = (rank == k) & (found[a] < 0)
        if sel.any():
            ok = _within_both(points, mg, a[sel], b[sel], tol)
            found[a[sel][ok]] = b[sel][ok]
    matched = np.flatnonzero(found >= 0)
    pids = out["patrol_id"].astype(str).to_numpy()
    result.iloc[matched] = pids[found[matched]]
    return result


def _densified(lines: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points at which GEOS's discrete Hausdorff distance (``densify=0.25``) looks at
    each line (its vertices and three points inside every segment), as ``(first,
    count, xy)``: line ``i``'s points are ``xy[first[i] : first[i] + count[i]]``."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b, owner = coords[:-1][same], coords[1:][same], idx[:-1][same]
    inner = [a + (b - a) * (f / 4) for f in (1, 2, 3)]
    xy = np.concatenate([coords, *inner])
    of = np.concatenate([idx, owner, owner, owner])
    order = np.argsort(of, kind="stable")
    count = np.bincount(of, minlength=len(lines))
    return np.cumsum(count) - count, count, xy[order]


def _within_both(
    points: tuple[np.ndarray, np.ndarray, np.ndarray],
    lines: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    tol: float,
) -> np.ndarray:
    """Whether tracks ``a[k]`` and ``b[k]`` are within Hausdorff distance ``tol`` (as
    ``shapely.hausdorff_distance(..., densify=0.25) <= tol``): every point of each is
    within ``tol`` of the other line. Prepared lines answer each point in about
    log(vertices), where the distance itself compares every pair of vertices; a
    sparse sample of the points first rules out most pairs that differ."""
    first, count, xy = points
    # a replay fix by fix (each vertex within tol of its twin) is within tol throughout:
    # the common abuse is settled without a distance
    same = shapely.equals_exact(lines[a], lines[b], tolerance=tol)
    if same.all():
        return same
    shapely.prepare(lines)
    src, dst = np.r_[a, b], np.r_[b, a]
    ok = np.r_[~same, ~same]  # pairs still to test
    for step in (16, 1):  # every 16th point, then all of them for the pairs left
        live = np.flatnonzero(ok)
        cnt = (count[src[live]] + step - 1) // step
        pair = np.repeat(live, cnt)
        within = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pt = first[src[pair]] + within * step
        near = shapely.dwithin(lines[dst[pair]], shapely.points(xy[pt]), tol)
        ok &= np.bincount(pair[~near], minlength=len(src)) == 0
    return same | (ok[: len(a)] & ok[len(a) :])


# --------------------------------------------------------------------------- coverage


def _segments(lines: np.ndarray, sample_m: float) -> tuple[np.ndarray, ...]:
    """Segments of ``lines`` cut to at most ``sample_m``: owner, midpoint x, y, length.

    Owners are positions into ``lines``, ascending (a line's segments are contiguous).
    """
    parts, part_of = shapely.get_parts(shapely.segmentize(lines, sample_m), return_index=True)
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    owner = part_of[idx[:-1][same]]
    mid = (a + b) / 2
    return owner, mid[:, 0], mid[:, 1], np.hypot(*(b - a).T)


def _length_inside(
    lines: np.ndarray,
    polys: np.ndarray,
    li: np.ndarray,
    gi: np.ndarray,
    sample_m: float,
    chunk: int = 2_000_000,
) -> np.ndarray:
    """Length of ``lines[li[k]]`` inside (or on) ``polys[gi[k]]`` for each pair ``k``.

    Sampled: each line is cut into segments of at most ``sample_m`` and a segment
    counts in full when its midpoint lies in the polygon, so the error is at most one
    segment per crossing of the polygon's boundary. Pairs are expanded to (pair,
    segment) rows in chunks of about ``chunk`` rows; a bounding-box test in numpy
    spares GEOS the segments far from the polygon, and GEOS tests the rest against
    the prepared polygon.
    """
    out = np.zeros(len(li))
    if len(li) == 0:
        return out
    used, inv = np.unique(li, return_inverse=True)
    owner, mx, my, seg_len = _segments(lines[used], sample_m)
    n_seg = np.bincount(owner, minlength=len(used))
    first = np.cumsum(n_seg) - n_seg
    shapely.prepare(polys)
    bounds = shapely.bounds(polys)
    per_pair = n_seg[inv]
    cum = np.cumsum(per_pair)
    lo = 0
    while lo < len(li):  # a few chunks, each vectorised
        base = cum[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(cum, base + chunk, side="right")))
        k = np.arange(lo, hi)
        cnt = per_pair[k]
        pair = np.repeat(k, cnt)
        seg = np.repeat(first[inv[k]] - (np.cumsum(cnt) - cnt), cnt) + np.arange(cnt.sum())
        bx = bounds[gi[pair]]
        x, y = mx[seg], my[seg]
        near = (x >= bx[:, 0]) & (x <= bx[:, 2]) & (y >= bx[:, 1]) & (y <= bx[:, 3])
        pair, seg = pair[near], seg[near]
        hit = shapely.intersects_xy(polys[gi[pair]], mx[seg], my[seg])
        out += np.bincount(pair[hit], weights=seg_len[seg[hit]], minlength=len(li))
        lo = hi
    return out


def _pairs_from_assignments(
    pats: pd.DataFrame, units84: pd.DataFrame, assignments: pd.DataFrame, ppos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(patrol, unit) positions where the unit is assigned to the patrol's worker."""
    if "worker_id" not in pats:
        raise InvalidLayerError(
            "patrols need 'worker_id' to restrict coverage to assigned units.",
            hint="Pass patrols with worker_id, or leave assignments=None.",
        )
    asg = pd.DataFrame(
        {
            "worker_id": pd.Series(assignments["worker_id"]).astype("string").to_numpy(),
            "unit_id": pd.Series(assignments["unit_id"]).astype("string").to_numpy(),
        }
    ).drop_duplicates()
    upos = pd.Series(np.arange(len(units84)), index=units84["unit_id"].astype("string").to_numpy())
    upos = upos[~upos.index.duplicated()]
    asg["ui"] = asg["unit_id"].map(upos)
    asg = asg.dropna(subset=["ui"])
    pw = pd.DataFrame(
        {"pi": ppos, "worker_id": pats["worker_id"].astype("string").to_numpy()[ppos]}
    )
    m = pw.merge(asg[["worker_id", "ui"]], on="worker_id")
    return m["pi"].to_numpy(dtype=np.int64), m["ui"].to_numpy(dtype=np.int64)


def patrol_coverage(
    patrols: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    rules: PatrolRules | str | Path | None = None,
    reaches: gpd.GeoDataFrame | None = None,
    assignments: pd.DataFrame | None = None,
    sample_m: float = 10.0,
) -> pd.DataFrame:
    """Which units each patrol covered.

    A ``river_reach`` unit counts when the track stays within ``rules.tolerance_m``
    of it along at least ``rules.share`` of its length: of the reach centreline when
    ``reaches`` is given (the length of the reach within the tolerance of the track),
    else of the unit's ``length_m`` (the length of the track within the tolerance of
    the unit). A ``community_grid`` or ``water_body`` counts when at least
    ``rules.grid_min_inside_m`` of the track lies inside it, or a check-in point does:
    one noisy fix across a grid line does not count.

    Parameters
    ----------
    patrols
        Tracks (LineString; a Point is a check-in) with ``patrol_id``, ``started_at``
        (and ``worker_id``, ``valid``).
    units
        The ``units`` layer.
    rules
        Coverage thresholds (``[coverage]`` of ``patrol_rules.toml``).
    reaches
        The ``reaches`` layer, to measure river shares along the reach centrelines.
    assignments
        ``worker_id``, ``unit_id`` rows: when given, only the units assigned to each
        patrol's worker are considered (what compliance needs; much faster).
    sample_m
        Lengths inside a unit are measured by sampling: lines are cut into segments
        of at most ``sample_m`` metres and a segment counts when its midpoint is
        inside (or on the edge of) the polygon. Each crossing of a unit's boundary
        can be off by at most one segment (``inside_m`` within about ``sample_m``
        per crossing of the exact length).

    Returns
    -------
    pandas.DataFrame
        One row per covered (patrol, unit), ordered by patrol then unit:
        ``patrol_id``, ``worker_id``, ``started_at``, ``unit_id``, ``kind``,
        ``share`` (river reaches; NaN otherwise), ``inside_m``, and ``valid`` when
        the patrols carry it.

    Examples
    --------
    A track along the middle of a row of three 500 m grids covers the two it runs
    through (about 470 m inside each), not the third:

    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import LineString
    >>> from gridkit.synth.ops import grid_units
    >>> track = gpd.GeoDataFrame(
    ...     {"patrol_id": ["P1"], "worker_id": ["W1"],
    ...      "started_at": pd.Timestamp("2026-05-04T01:00Z")},
    ...     geometry=[LineString([(113.1002, 27.8025), (113.1098, 27.8025)])], crs=4326)
    >>> cov = patrol_coverage(track, grid_units(3, 1))
    >>> cov["unit_id"].tolist(), bool((cov["inside_m"] > 450).all())
    (['430202001000000', '430202001000001'], True)
    """
    rules = _rules(rules)
    units84 = to_wgs84(units, source="units")
    pats = to_wgs84(patrols, source="patrols")
    metric = local_metric_crs(units84)
    um = np.asarray(units84.to_crs(metric).geometry.array)
    pm = np.asarray(pats.to_crs(metric).geometry.array)
    tol = rules.tolerance_m
    ok = ~(shapely.is_missing(pm) | shapely.is_empty(pm))
    ppos = np.flatnonzero(ok)
    if assignments is not None:
        pi, ui = _pairs_from_assignments(pats, units84, assignments, ppos)
        # bounding boxes first: an assigned unit far from the track is no candidate
        pb, ub = shapely.bounds(pm[pi]), shapely.bounds(um[ui])
        near = (
            (pb[:, 0] <= ub[:, 2] + tol)
            & (ub[:, 0] - tol <= pb[:, 2])
            & (pb[:, 1] <= ub[:, 3] + tol)
            & (ub[:, 1] - tol <= pb[:, 3])
        )
        pi, ui = pi[near], ui[near]
    else:
        pi, ui = shapely.STRtree(um).query(pm[ppos], predicate="dwithin", distance=tol)
        pi = ppos[pi]
    order = np.lexsort((ui, pi))
    pi, ui = pi[order], ui[order]
    kind = (
        units84["kind"].astype(str).to_numpy()
        if "kind" in units84
        else np.full(len(um), "community_grid")
    )
    is_point = shapely.get_type_id(pm[pi]) == 0
    river = kind[ui] == "river_reach"
    inside_m = np.zeros(len(pi))
    share = np.full(len(pi), np.nan)
    counts = np.zeros(len(pi), dtype=bool)
    # Grids and water bodies: track length inside the polygon, or a check-in inside.
    g = ~river
    if g.any():
        gl = g & ~is_point
        inside_m[gl] = _length_inside(pm, um, pi[gl], ui[gl], sample_m)
        gp = g & is_point
        pt_in = np.zeros(len(pi), dtype=bool)
        pt_in[gp] = shapely.covers(um[ui[gp]], pm[pi[gp]])
        counts[g] = (inside_m[g] >= rules.grid_min_inside_m) | (pt_in[g] & rules.checkin_counts)
    if river.any():
        r_pi, r_ui = pi[river], ui[river]
        # Each river unit is buffered once (not once per patrol).
        r_units, r_inv = np.unique(r_ui, return_inverse=True)
        corridor = shapely.buffer(um[r_units], tol)
        line = ~is_point[river]
        r_inside = np.zeros(len(r_pi))
        r_inside[line] = _length_inside(pm, corridor, r_pi[line], r_inv[line], sample_m)
        inside_m[river] = r_inside
        if reaches is not None and "reach_id" in units84:
            rm = (
                reaches.set_index("reach_id")
                .pipe(lambda r: to_wgs84(r, source="reaches"))
                .to_crs(metric)
            )
            lines = rm.geometry.reindex(units84["reach_id"].to_numpy()[r_ui]).to_numpy()
            has = ~pd.isna(lines)
            s = np.full(len(r_ui), np.nan)
            ln = np.asarray(lines[has], dtype=object)
            # Each track is buffered once; the reach is sampled against the buffer.
            tracks, t_inv = np.unique(r_pi[has], return_inverse=True)
            near = _length_inside(
                ln, shapely.buffer(pm[tracks], tol), np.arange(len(ln)), t_inv, sample_m
            )
            s[has] = np.minimum(near / np.maximum(shapely.length(ln), 1e-9), 1.0)
            share[river] = s
        else:
            length = (
                pd.to_numeric(units84["length_m"], errors="coerce").to_numpy(dtype=float)[r_ui]
                if "length_m" in units84
                else np.full(len(r_ui), np.nan)
            )
            length = np.where(
                np.isfinite(length) & (length > 0), length, shapely.length(um[r_ui]) / 2
            )
            share[river] = np.minimum(inside_m[river] / length, 1.0)
        counts[river] = np.nan_to_num(share[river]) >= rules.share
    pi, ui = pi[counts], ui[counts]
    res = pd.DataFrame(
        {
            "patrol_id": pats["patrol_id"].astype("string").to_numpy()[pi],
            "worker_id": (
                pats["worker_id"].astype("string").to_numpy()[pi] if "worker_id" in pats else pd.NA
            ),
            "started_at": utc_series(pats["started_at"]).to_numpy()[pi],
            "unit_id": units84["unit_id"].astype("string").to_numpy()[ui],
            "kind": kind[ui],
            "share": share[counts],
            "inside_m": inside_m[counts],
        }
    )
    res["started_at"] = utc_series(res["started_at"])
    if "valid" in pats:
        res["valid"] = pats["valid"].to_numpy(dtype=bool)[pi]
    return res


# --------------------------------------------------------------------------- compliance


def period_bounds(
    period: object, *, tz: str = "Asia/Shanghai"
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start (inclusive) and end (exclusive) of a calendar period in local time ``tz``.

    ``period`` is ``"2026"``, ``"2026-H1"``, ``"2026-Q2"``, ``"2026-05"``,
    ``"2026-W18"`` (ISO week), or a ``(start, end)`` pair of dates/times (naive
    values are local time).

    Examples
    --------
    >>> [str(t.date()) for t in period_bounds("2026-W01")]
    ['2025-12-29', '2026-01-05']
    """
    if isinstance(period, tuple | list) and len(period) == 2:
        a, b = (pd.Timestamp(x) for x in period)
        a = a.tz_localize(tz) if a.tzinfo is None else a.tz_convert(tz)
        b = b.tz_localize(tz) if b.tzinfo is None else b.tz_convert(tz)
        if b <= a:
            raise RulesError(f"period {period!r} ends before it starts.")
        return a, b
    s = str(period).strip().upper()
    if m := re.fullmatch(r"(\d{4})", s):
        a = pd.Timestamp(int(m[1]), 1, 1)
        b = pd.Timestamp(int(m[1]) + 1, 1, 1)
    elif m := re.fullmatch(r"(\d{4})-H([12])", s):
        a = pd.Timestamp(int(m[1]), 1 + 6 * (int(m[2]) - 1), 1)
        b = a + pd.DateOffset(months=6)
    elif m := re.fullmatch(r"(\d{4})-Q([1-4])", s):
        a = pd.Timestamp(int(m[1]), 1 + 3 * (int(m[2]) - 1), 1)
        b = a + pd.DateOffset(months=3)
    elif m := re.fullmatch(r"(\d{4})-(\d{1,2})", s):
        a = pd.Timestamp(int(m[1]), int(m[2]), 1)
        b = a + pd.DateOffset(months=1)
    elif m := re.fullmatch(r"(\d{4})-W(\d{1,2})", s):
        a = pd.Timestamp.fromisocalendar(int(m[1]), int(m[2]), 1)
        b = a + pd.Timedelta(days=7)
    else:
        raise RulesError(
            f"period {period!r} is not understood.",
            hint="Use '2026', '2026-H1', '2026-Q2', '2026-05', '2026-W18' or (start, end).",
        )
    return a.tz_localize(tz), b.tz_localize(tz)


_WEEK_NS = 7 * 24 * 3600 * 10**9


@dataclass(frozen=True)
class _Windows:
    """The calendar windows of one length (``per``) entirely inside a period and
    ended by its evaluation time, as arithmetic: never listed, so a rule costs what
    the patrols cost, not what the calendar between start and end would (a period to
    the year 9669 is as cheap as a month).

    Window ``j`` (``0 <= j < count``) starts ``origin + j * step``: for weeks in UTC
    nanoseconds (7 days, Monday 00:00 local time first), for the others in month
    numbers (``year * 12 + month - 1``, local time, aligned to the calendar:
    quarters start in January, April, July, October).
    """

    per: str
    tz: str
    origin: int
    step: int
    count: int

    @classmethod
    def of(cls, per: str, start: pd.Timestamp, limit: pd.Timestamp) -> _Windows:
        """The windows of ``per`` inside ``[start, end)`` (local ``start``) ending at or
        before ``limit`` (the evaluation time, at most the period's end)."""
        tz = str(start.tz)
        if per == "week":
            first = (start.normalize() + pd.Timedelta(days=(7 - start.weekday()) % 7)).normalize()
            if first < start:
                first += pd.Timedelta(days=7)
            origin = _ns(first)
            return cls(per, tz, origin, _WEEK_NS, max(0, (_ns(limit) - origin) // _WEEK_NS))
        months = {"month": 1, "quarter": 3, "half": 6, "year": 12}[per]
        m = start.year * 12 + start.month - 1
        if _month_start(np.array([m]), tz)[0] < _ns(start):
            m += 1  # the period starts inside a month: its first window starts later
        origin = -(-m // months) * months
        local = limit.tz_convert(tz)
        last = local.year * 12 + local.month - 1  # the last month begun by ``limit``
        return cls(per, tz, origin, months, max(0, (last - origin) // months))

    def index(self, t: np.ndarray) -> np.ndarray:
        """The window of each time ``t`` (naive UTC ``datetime64[ns]``), -1 outside."""
        if self.per == "week":
            j = (t.astype(np.int64) - self.origin) // self.step
        else:
            local = pd.DatetimeIndex(t).tz_localize("UTC").tz_convert(self.tz)
            m = local.year.to_numpy(np.int64) * 12 + local.month.to_numpy(np.int64) - 1
            j = (m - self.origin) // self.step
        return np.where((j >= 0) & (j < self.count), j, -1)

    def end_of(self, j: np.ndarray) -> np.ndarray:
        """The end of window ``j`` (naive UTC ``datetime64[ns]``)."""
        j = np.asarray(j, dtype=np.int64)
        if self.per == "week":
            return (self.origin + (j + 1) * self.step).astype("datetime64[ns]")
        return _month_start(self.origin + (j + 1) * self.step, self.tz).astype("datetime64[ns]")


def _ns(ts: pd.Timestamp) -> int:
    """A time as integer nanoseconds since the epoch (UTC)."""
    return int(ts.tz_convert("UTC").as_unit("ns").value)


def _month_start(m: np.ndarray, tz: str) -> np.ndarray:
    """00:00 local time of the first day of month numbers ``m`` (``year * 12 +
    month - 1``), as UTC nanoseconds since the epoch."""
    m = np.asarray(m, dtype=np.int64)
    if len(m) == 0:
        return np.zeros(0, dtype=np.int64)
    local = pd.to_datetime(
        pd.DataFrame({"year": m // 12, "month": m % 12 + 1, "day": 1})
    ).dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    return (
        local.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[ns]")
        .astype(np.int64)
    )


def _river_units(units: pd.DataFrame) -> pd.DataFrame:
    """``unit_id``, ``river_id`` (the unit's ``parent_id``) and ``u_admin`` of units."""
    return pd.DataFrame(
        {
            "unit_id": units["unit_id"].astype("string").to_numpy(),
            "river_id": units["parent_id"].astype("string").to_numpy(),
            "u_admin": units["admin_code"].astype(str).to_numpy(),
        }
    )


def _section_pairs(units: pd.DataFrame, river_chiefs: pd.DataFrame | None) -> pd.DataFrame:
    """(worker_id, unit_id) of the river units inside each chief's section."""
    if river_chiefs is None or not len(river_chiefs) or "parent_id" not in units:
        return pd.DataFrame({"worker_id": [], "unit_id": []}, dtype="string")
    ch = pd.DataFrame(
        {
            "worker_id": river_chiefs["worker_id"].astype("string").to_numpy(),
            "river_id": river_chiefs["river_id"].astype("string").to_numpy(),
            "admin_code": river_chiefs["admin_code"].astype(str).to_numpy(),
        }
    )
    m = ch.merge(_river_units(units), on="river_id")
    return m.loc[codes.in_scope(m["u_admin"], m["admin_code"]).to_numpy(), ["worker_id", "unit_id"]]


def _coverage_rows(
    patrols: pd.DataFrame,
    units: gpd.GeoDataFrame | None,
    rules: PatrolRules,
    workers: pd.DataFrame | None,
    assignments: pd.DataFrame | None = None,
    river_chiefs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Coverage rows of valid patrols (computed from tracks when needed)."""
    if "unit_id" in patrols and "patrol_id" in patrols:
        cov = pd.DataFrame(patrols).copy()
    else:
        if units is None:
            raise InvalidLayerError(
                "patrol_compliance needs units= to tell which units the patrols covered.",
                hint="Pass units=, or pass patrol_coverage(...) rows as patrols.",
            )
        if "valid" not in patrols:
            patrols = flag_patrols(patrols, rules=rules, workers=workers)
        # Only valid patrols count, and only for their worker's units and sections.
        patrols = patrols[patrols["valid"].fillna(False).to_numpy(dtype=bool)]
        only = None
        if assignments is not None and "worker_id" in patrols:
            only = pd.concat(
                [
                    assignments[["worker_id", "unit_id"]].astype("string"),
                    _section_pairs(units, river_chiefs),
                ],
                ignore_index=True,
            )
        cov = patrol_coverage(patrols, units, rules=rules, assignments=only)
    cov["started_at"] = utc_series(cov["started_at"])
    if "valid" in cov:
        cov = cov[cov["valid"].fillna(False).to_numpy(dtype=bool)]
    return cov


@dataclass
class _Tally:
    """The job of :func:`patrol_compliance`: the rows to judge and the patrols that
    count for each, over one period evaluated at ``now``.

    ``rows`` holds a row per worker and unit (then per chief and section) with its
    ``level``; ``hits`` a row per (row position ``row``, ``patrol_id``,
    ``started_at``).
    """

    rules: PatrolRules
    start: pd.Timestamp
    end: pd.Timestamp
    now: pd.Timestamp
    rows: pd.DataFrame
    hits: pd.DataFrame


def _evaluation_time(now: object, end: pd.Timestamp) -> pd.Timestamp:
    """``now`` (UTC; default the current time), at most the end of the period."""
    at = utc_scalar(now, name="now") if now is not None else pd.Timestamp.now(tz="UTC")
    return min(at, end.tz_convert("UTC"))


def _active(assignments: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Assignments valid at some time in ``[start, end)``."""
    never = pd.Series(pd.NaT, index=assignments.index, dtype="datetime64[ns, UTC]")
    vf = utc_series(assignments["valid_from"]) if "valid_from" in assignments else never
    vt = utc_series(assignments["valid_to"]) if "valid_to" in assignments else never
    return assignments[(vf.isna() | (vf < end)).to_numpy() & (vt.isna() | (vt > start)).to_numpy()]


def _assigned_rows(
    a: pd.DataFrame, cov: pd.DataFrame, workers: pd.DataFrame | None, level: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A row per (worker, unit) assigned, with its level, and the patrols covering it."""
    rows = a[["worker_id", "unit_id"]].astype("string").drop_duplicates().reset_index(drop=True)
    rows["level"] = _level_of(
        rows.assign(**({"level": a["level"].to_numpy()} if "level" in a else {})), workers, level
    ).to_numpy()
    key = rows[["worker_id", "unit_id"]].reset_index().rename(columns={"index": "row"})
    hits = _links(cov).merge(key, on=["worker_id", "unit_id"])[["row", "patrol_id", "started_at"]]
    return rows, hits


def _links(cov: pd.DataFrame) -> pd.DataFrame:
    return cov[["worker_id", "unit_id", "patrol_id", "started_at"]].astype(
        {"worker_id": "string", "unit_id": "string"}
    )


def _add_sections(
    job: _Tally, cov: pd.DataFrame, units: gpd.GeoDataFrame | None, river_chiefs: pd.DataFrame
) -> None:
    """Append a row per river chief and section, hit by the chief's patrols covering a
    unit of that river inside the section's admin area."""
    if units is None:
        raise InvalidLayerError("river chiefs' sections need units= (parent_id = river_id).")
    # sections with a river and a patrol duty (general chiefs and supporting roles: see
    # gridkit.ops.chiefs.chief_compliance, which judges every level and term)
    duty = river_chiefs["river_id"].notna()
    if "role" in river_chiefs:
        duty &= river_chiefs["role"].fillna("chief").eq("chief")
    ch = river_chiefs[duty.to_numpy()]
    ch = ch.astype({"chief_id": "string", "worker_id": "string"}).reset_index(drop=True)
    base = len(job.rows)
    sec = pd.DataFrame(
        {
            "worker_id": ch["worker_id"],
            "unit_id": pd.array([None] * len(ch), dtype="string"),
            "level": ch["level"].astype(str),
            "chief_id": ch["chief_id"],
            "river_id": ch["river_id"].astype("string"),
            "admin_code": ch["admin_code"].astype("string"),
        }
    )
    job.rows = pd.concat([job.rows, sec], ignore_index=True)
    pairs = (
        _links(cov)
        .merge(_river_units(units), on="unit_id")
        .merge(sec.reset_index().rename(columns={"index": "row"}), on=["worker_id", "river_id"])
    )
    inside = codes.in_scope(pairs["u_admin"], pairs["admin_code"].astype(str)).to_numpy()
    pairs = pairs[inside].drop_duplicates(["row", "patrol_id"])
    more = pd.DataFrame(
        {
            "row": pairs["row"] + base,
            "patrol_id": pairs["patrol_id"],
            "started_at": pairs["started_at"],
        }
    )
    job.hits = pd.concat([job.hits, more])


def _naive(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(ts.tz_convert("UTC").tz_localize(None), "ns")


def _windows_met(
    job: _Tally, r: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: patrols required by the due windows, windows due, windows met, and the
    end of the first window of the trailing run of missed windows (NaT if none).

    ``r`` and ``t`` are the row and (naive UTC) time of each hit. Only the windows
    holding a patrol are ever looked at (:class:`_Windows`): the cost follows the
    patrols and rows, not the length of the period.
    """
    rules, n = job.rules, len(job.rows)
    required = np.zeros(n, dtype=np.int64)
    due_n = np.zeros(n, dtype=np.int64)
    met_n = np.zeros(n, dtype=np.int64)
    overdue_since = np.full(n, np.datetime64("NaT", "ns"))
    levels = job.rows["level"].to_numpy(dtype=object)
    for lv in pd.unique(levels):  # a handful of levels, each vectorised over rows
        sel = np.flatnonzero(levels == lv)
        if lv not in rules.frequency:
            raise RulesError(
                f"no patrol frequency rule for level {lv!r}.",
                hint=f"Add it to [frequency] in {rules.source}.",
            )
        in_rows = np.isin(r, sel)
        for rule in rules.frequency[lv]:
            win = _Windows.of(str(rule["per"]), job.start, job.now)
            k = win.count
            if k == 0:
                continue
            cnt = int(rule["count"])  # type: ignore[call-overload]
            w = win.index(t)
            ok = in_rows & (w >= 0)
            # patrols per (row, window) holding any: windows without one are never met
            pair, per_pair = np.unique(r[ok] * k + w[ok], return_counts=True)
            pair = pair[per_pair >= cnt]
            met_row, met_w = pair // k, pair % k
            required[sel] = np.maximum(required[sel], cnt * k)
            due_n[sel] += k
            met_n += np.bincount(met_row, minlength=n)
            # trailing run of missed windows: those after the last window met
            last_met = np.full(n, -1, dtype=np.int64)
            np.maximum.at(last_met, met_row, met_w)
            first_missed = last_met[sel] + 1
            has = first_missed < k
            since = np.full(len(sel), np.datetime64("NaT", "ns"))
            since[has] = win.end_of(first_missed[has])
            cur = overdue_since[sel]
            overdue_since[sel] = np.where(np.isnat(cur) | (since < cur), since, cur)
    return required, due_n, met_n, overdue_since


def _judge(job: _Tally) -> pd.DataFrame:
    """The compliance table: counts, windows and days overdue per row."""
    rows, hits, n = job.rows, job.hits, len(job.rows)
    r = hits["row"].to_numpy(dtype=np.int64)
    t = _naive_ns(utc_series(hits["started_at"]))
    now64 = _naive(job.now)
    upto = t < now64
    in_period = upto & (t >= _naive(job.start))
    done = np.bincount(r[in_period], minlength=n)
    last = pd.Series(t[upto]).groupby(r[upto]).max().reindex(range(n))
    required, due_n, met_n, overdue_since = _windows_met(job, r, t)
    last_v = last.to_numpy().astype("datetime64[ns]")
    late = ~np.isnat(overdue_since) & ~(~np.isnat(last_v) & (last_v >= overdue_since))
    gap = now64 - np.where(late, overdue_since, now64)
    rows["required"] = required
    rows["done"] = done
    rows["windows_due"] = due_n
    rows["windows_met"] = met_n
    rows["compliant"] = met_n == due_n
    rows["last_patrol"] = pd.to_datetime(last_v).tz_localize("UTC")
    rows["days_overdue"] = (gap // np.timedelta64(1, "D")).astype(np.int64)
    rows["period_start"] = job.start
    rows["period_end"] = job.end
    return rows


def patrol_compliance(
    patrols: pd.DataFrame,
    assignments: pd.DataFrame,
    rules: PatrolRules | str | Path | None = None,
    period: object = None,
    *,
    units: gpd.GeoDataFrame | None = None,
    workers: pd.DataFrame | None = None,
    river_chiefs: pd.DataFrame | None = None,
    now: object = None,
    level: str = "village",
) -> pd.DataFrame:
    """Patrol compliance per worker and unit (and per river chief and section).

    Parameters
    ----------
    patrols
        Either coverage rows (``patrol_id``, ``worker_id``, ``unit_id``, ``started_at``
        and optional ``valid``, as from :func:`patrol_coverage`), or patrols with
        tracks; then ``units`` is needed and invalid patrols are dropped
        (:func:`flag_patrols`).
    assignments
        ``unit_id``, ``worker_id`` (``valid_from``, ``valid_to``, ``level``): rows for
        assignments overlapping the period.
    rules
        Frequency per level (village >=1/week, township >=1/month, county >=1/quarter,
        city >=3/year and >=1/half-year, province >=2/year by default).
    period
        A calendar period in ``rules.timezone`` (Asia/Shanghai): ``"2026-Q2"``,
        ``"2026-05"``, ... (see :func:`period_bounds`); default the current year.
    units
        ``units`` layer (needed for tracks, and for river chiefs' sections).
    workers
        ``workers`` layer: each worker's ``level`` (else ``assignments.level`` or
        ``level``).
    river_chiefs
        ``chief_id``, ``worker_id``, ``level``, ``river_id``, ``admin_code``: a row per
        chief and section; a patrol counts for the section when it covers a unit of
        that river (``parent_id``) inside that admin area.
    now
        Evaluation time (UTC); default the end of the period or now, whichever is
        earlier. Windows not yet ended by ``now`` are not due.
    level
        Level of workers whose level is unknown.

    Returns
    -------
    pandas.DataFrame
        ``worker_id``, ``unit_id`` (``chief_id``, ``river_id``, ``admin_code`` for
        sections), ``level``, ``required`` (patrols needed by the due windows),
        ``done`` (valid patrols in the period up to ``now``), ``windows_due``,
        ``windows_met``, ``compliant`` (every due window met), ``last_patrol`` and
        ``days_overdue`` (whole days since the end of the first window of the
        current run of missed windows, 0 if the last due window was met or a patrol
        happened since).

    Notes
    -----
    Windows are calendar weeks (Monday first), months, quarters, half-years and
    years in local time, counted when entirely inside the period: a patrol at
    2026-04-30T17:00Z is on 1 May in Zhuzhou and counts for May.

    Examples
    --------
    A village worker (a patrol a week) who patrolled in the first two full weeks of
    May 2026 and not in the last two:

    >>> import pandas as pd
    >>> rows = pd.DataFrame(
    ...     {"patrol_id": ["P1", "P2"], "worker_id": "W1", "unit_id": "U1",
    ...      "started_at": pd.to_datetime(["2026-05-05T02:00Z", "2026-05-12T02:00Z"])})
    >>> assignments = pd.DataFrame({"unit_id": ["U1"], "worker_id": ["W1"]})
    >>> c = patrol_compliance(rows, assignments, period="2026-05", now="2026-06-01")
    >>> cols = ["required", "done", "windows_due", "windows_met", "compliant", "days_overdue"]
    >>> c[cols].to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'required': 4, 'done': 2, 'windows_due': 4, 'windows_met': 2, 'compliant': False,
      'days_overdue': 7}]
    """
    rules = _rules(rules)
    tz = rules.timezone
    if period is None:
        period = str(pd.Timestamp.now(tz=tz).year)
    start, end = period_bounds(period, tz=tz)
    now_ts = _evaluation_time(now, end)
    a = _active(assignments.copy(), start, end)
    cov = _coverage_rows(patrols, units, rules, workers, a, river_chiefs)
    rows, hits = _assigned_rows(a, cov, workers, level)
    job = _Tally(rules=rules, start=start, end=end, now=now_ts, rows=rows, hits=hits)
    if river_chiefs is not None and len(river_chiefs):
        _add_sections(job, cov, units, river_chiefs)
    return _judge(job)
