"""Synthetic river-chief patrols: every level patrols its sections as the practice does.

:func:`chief_patrols` plans, for each appointment with a patrol duty, one patrol per
window of its level's rule (village a week, township a month, county a quarter, city
and province and general chiefs a few a year) with some windows missed, each declared
in a mode fitting the level (village chiefs walk, county chiefs drive or take a boat),
along a run of the section's reaches (a car on the riverside road 150 m off the water),
with GPS fixes at the mode's speed, a 看/查/交 checklist (a few problems found), some
recorded only on paper (台账) and a few fakes (a drive declared as a walk).
:func:`night_shift` moves a share of patrols to the evening for night-patrol rules.

Examples
--------
>>> import geopandas as gpd, pandas as pd
>>> from shapely import LineString
>>> from gridkit.synth.people import chief_demo
>>> units, chiefs, _ = chief_demo()
>>> reaches = gpd.GeoDataFrame({"reach_id": ["R1-a", "R1-b"], "river_id": "R1",
...     "admin_code": ["430202001001", "430202001002"], "seq": [0, 1]},
...     geometry=[LineString([(113.10, 27.8), (113.15, 27.8)]),
...               LineString([(113.15, 27.8), (113.20, 27.8)])], crs=4326)
>>> sim = chief_patrols(reaches, chiefs, start="2026-04-01", end="2026-07-01", seed=1)
>>> sim.patrols.groupby("chief_id").size().to_dict()  # a quarter: ~13 weeks, 1 quarter
{'RC-CAR': 1, 'RC-V': 13}
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import WGS84, local_metric_crs

__all__ = ["ChiefSeason", "chief_patrols", "night_shift"]

#: one patrol per window of this length per level (the rules' finest window)
_WINDOW = {
    "village": "week",
    "township": "month",
    "county": "quarter",
    "city": "4M",
    "province": "half",
    "general": "year",
}
#: modes by level, with their weights
_MODES = {
    "village": (("foot", "bike"), (0.85, 0.15)),
    "township": (("foot", "bike", "boat"), (0.6, 0.2, 0.2)),
    "county": (("car", "boat", "foot"), (0.6, 0.2, 0.2)),
    "city": (("car", "boat"), (0.8, 0.2)),
    "province": (("car", "boat"), (0.8, 0.2)),
    "general": (("car", "foot"), (0.7, 0.3)),
}
_SPEED_KMH = {"foot": 4.0, "bike": 12.0, "boat": 15.0, "car": 30.0, "drone": 30.0}
_OFFSET_M = {"foot": 8.0, "bike": 20.0, "boat": 0.0, "car": 150.0, "drone": 50.0}
_FIX_M = {"foot": 200.0, "bike": 400.0, "boat": 500.0, "car": 1000.0, "drone": 500.0}
#: share of its section a patrol runs along, per level (above the rules' share)
_RUN = {"village": 0.6, "township": 0.35, "county": 0.12, "city": 0.05, "province": 0.03}
_ITEMS = (
    "water_colour",
    "smell",
    "floating",
    "banks",
    "outfalls",
    "encroachment",
    "sand_mining",
    "illegal_fishing",
    "aquaculture",
    "waste_dumping",
    "structures",
    "quality_signs",
    "signboards",
    "cleaning",
    "earlier_fixes",
)


@dataclass
class ChiefSeason:
    """Result of :func:`chief_patrols`: ``patrols`` (tracks and paper records),
    ``patrol_points`` (the fixes of the tracks), ``fake_patrol_ids``.

    Examples
    --------
    >>> ChiefSeason(gpd.GeoDataFrame(), gpd.GeoDataFrame(), []).fake_patrol_ids
    []
    """

    patrols: gpd.GeoDataFrame
    patrol_points: gpd.GeoDataFrame
    fake_patrol_ids: list[str]


def _windows(per: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Window starts (local) of ``per`` from ``start`` to ``end``."""
    freq = {"week": "W-MON", "month": "MS", "quarter": "QS", "half": "6MS", "year": "YS"}
    return pd.date_range(start, end, freq=freq.get(per, per + "S"), inclusive="left")


def _plan(
    chiefs: pd.DataFrame, start: str, end: str, rng: np.random.Generator, miss: float
) -> pd.DataFrame:
    """One planned patrol per (appointment, window), some windows missed."""
    tz = "Asia/Shanghai"
    a, b = pd.Timestamp(start).tz_localize(tz), pd.Timestamp(end).tz_localize(tz)
    months = {"month": 1, "quarter": 3, "4M": 4, "half": 6, "year": 12}
    parts = []
    for lv, per in _WINDOW.items():  # a handful of levels, each vectorised
        ch = chiefs[chiefs["level"] == lv]
        w = _windows(per, (a - pd.DateOffset(years=1)).normalize(), b)
        if not len(ch) or not len(w):
            continue
        step = pd.Timedelta(days=7) if per == "week" else pd.DateOffset(months=months[per])
        lo = w.as_unit("ns").asi8
        hi = pd.DatetimeIndex([x + step for x in w]).as_unit("ns").asi8
        k = np.repeat(np.arange(len(ch)), len(w))
        j = np.tile(np.arange(len(w)), len(ch))
        days = ((hi - lo) // 86_400_000_000_000)[j]
        day = (rng.random(len(k)) * days).astype(np.int64)
        at = lo[j] + (day * 86_400 + rng.integers(8, 17, len(k)) * 3600) * 10**9
        parts.append(pd.DataFrame({"pos": ch.index.to_numpy()[k], "t": at}))
    plan = pd.concat(parts, ignore_index=True)
    plan["t"] = pd.to_datetime(plan["t"], utc=True)
    # most chiefs are diligent; a share ``miss`` of them skips a third of their windows
    lax = pd.Series(rng.random(len(chiefs)) < miss, index=chiefs.index)
    p_miss = np.where(lax.reindex(plan["pos"]).to_numpy(), 0.35, 0.01)
    keep = (plan["t"] >= a) & (plan["t"] < b) & (rng.random(len(plan)) >= p_miss)
    for col, inside in (("valid_from", lambda t, v: t >= v), ("valid_to", lambda t, v: t < v)):
        if col in chiefs:  # a chief patrols during his term only
            v = pd.to_datetime(chiefs[col], utc=True).reindex(plan["pos"]).to_numpy()
            keep &= pd.isna(v) | inside(plan["t"].to_numpy(), v)
    return plan[keep.to_numpy()].reset_index(drop=True)


def _sided(reaches: pd.DataFrame) -> pd.DataFrame:
    """Reaches with their position ``rpos``, a boundary reach once per bank's area."""
    r = pd.DataFrame(reaches.drop(columns="geometry")).reset_index(drop=True)
    r["rpos"] = np.arange(len(r))
    r["admin_code"] = r["admin_code"].astype(str)
    if "boundary" not in r or "left_code" not in r:
        return r
    b = r[r["boundary"].fillna(False).astype(bool)]
    sides = [b.assign(admin_code=b[c].astype(str)) for c in ("left_code", "right_code")]
    return pd.concat([r, *sides], ignore_index=True).drop_duplicates(["rpos", "admin_code"])


def _general_rivers(ch: pd.DataFrame, reaches: pd.DataFrame) -> pd.Series:
    """The longest river of each general chief's area (his patrols go there)."""
    gen = ch[ch["river_id"].isna()]
    r = _sided(reaches)
    out = pd.Series(None, index=gen.index, dtype=object)
    for at in pd.unique(codes.level(gen["admin_code"].astype(str)).dropna()):  # <= 4 levels
        g = gen[(codes.level(gen["admin_code"].astype(str)) == at).to_numpy()]
        area = r.assign(area=codes.ancestor(r["admin_code"], at).to_numpy())
        longest = (
            (area.groupby(["area", "river_id"])["length_m"].sum().sort_values().reset_index())
            .drop_duplicates("area", keep="last")
            .set_index("area")["river_id"]
        )
        out[g.index] = g["admin_code"].astype(str).map(longest).to_numpy()
    return out


def _runs(plan: pd.DataFrame, chiefs: pd.DataFrame, reaches: pd.DataFrame, rng) -> np.ndarray:
    """For each planned patrol, its run of reaches: (patrol, reach position) pairs."""
    r = _sided(reaches).sort_values(["river_id", "seq", "rpos"])
    ch = chiefs.loc[plan["pos"].unique()].reset_index(names="pos")
    m = ch[["pos", "river_id", "admin_code", "level"]].merge(
        r[["river_id", "admin_code", "rpos", "length_m"]].rename(columns={"admin_code": "r_admin"}),
        on="river_id",
    )
    m = m[codes.in_scope(m["r_admin"], m["admin_code"]).to_numpy()]
    sec = m.groupby("pos")
    n = sec.size()
    share = m.drop_duplicates("pos").set_index("pos")["level"].map(_RUN).fillna(0.05)
    take = np.maximum(1, np.ceil(n * share)).astype(int).reindex(plan["pos"]).to_numpy()
    size = n.reindex(plan["pos"]).to_numpy()
    ok = ~np.isnan(size)
    size, take = np.nan_to_num(size).astype(int), np.nan_to_num(take).astype(int)
    first = (rng.random(len(plan)) * np.maximum(size - take + 1, 1)).astype(int)
    offsets = m.groupby("pos").cumcount().to_numpy()
    start_of = pd.Series(np.flatnonzero(offsets == 0), index=m["pos"].to_numpy()[offsets == 0])
    base = start_of.reindex(plan["pos"]).to_numpy()
    cnt = np.where(ok, take, 0)
    p = np.repeat(np.arange(len(plan)), cnt)
    within = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rows = np.repeat(np.nan_to_num(base).astype(int) + first, cnt) + within
    return np.c_[p, m["rpos"].to_numpy()[rows]]


def _tracks(
    runs: np.ndarray, n: int, lines_m: np.ndarray, mode: np.ndarray, need: np.ndarray
) -> np.ndarray:
    """Each patrol's track (metric): its reaches joined, offset by its mode, there and
    back as often as it takes to walk ``need`` metres; None for a patrol without
    reaches."""
    coords, idx = shapely.get_coordinates(lines_m[runs[:, 1]], return_index=True)
    owner = runs[idx, 0]
    out = np.full(n, None, dtype=object)
    if not len(coords):
        return out
    has, inv = np.unique(owner, return_inverse=True)
    go = shapely.linestrings(coords, indices=inv)
    off = np.array([_OFFSET_M[m] for m in mode[has]])
    line = shapely.offset_curve(go, off)
    back = shapely.reverse(line)
    c1, i1 = shapely.get_coordinates(line, return_index=True)
    c2, i2 = shapely.get_coordinates(back, return_index=True)
    allc = np.r_[c1, c2]
    alli = np.r_[i1, i2]
    order = np.argsort(alli, kind="stable")
    allc, alli = allc[order], alli[order]
    # laps there and back until the level's and the mode's minimums are met, with a margin
    lap = 2 * shapely.length(line)
    laps = np.clip(np.ceil(1.15 * need[has] / np.maximum(lap, 1.0)), 1, 60).astype(np.int64)
    cnt = np.bincount(alli, minlength=len(has))
    first = np.cumsum(cnt) - cnt
    total = cnt * laps
    owner2 = np.repeat(np.arange(len(has)), total)
    within = np.arange(total.sum()) - np.repeat(np.cumsum(total) - total, total)
    src = first[owner2] + within % cnt[owner2]
    out[has] = shapely.linestrings(allc[src], indices=owner2)
    return out


def chief_patrols(
    reaches: gpd.GeoDataFrame,
    river_chiefs: pd.DataFrame,
    *,
    start: str,
    end: str,
    seed: int = 0,
    miss_share: float = 0.15,
    ledger_share: float = 0.2,
    fake_share: float = 0.05,
    problem_share: float = 0.08,
) -> ChiefSeason:
    """Patrols of the river chiefs over ``[start, end)`` (local dates).

    Parameters
    ----------
    reaches
        ``reaches`` layer (``river_id``, ``admin_code``, ``seq``, centrelines).
    river_chiefs
        Appointments; only role ``chief`` patrols, within its term.
    miss_share, ledger_share, fake_share, problem_share
        Chiefs who skip a third of their windows (the others miss 1 %); chiefs who
        keep a third of their patrols on paper only; chiefs who declare a third of
        their drives as walks; patrols finding a problem.

    Returns
    -------
    ChiefSeason

    Examples
    --------
    >>> from shapely import LineString
    >>> from gridkit.synth.people import chief_demo
    >>> _, chiefs, _ = chief_demo()
    >>> reaches = gpd.GeoDataFrame({"reach_id": ["a"], "river_id": "R1",
    ...     "admin_code": ["430202001001"], "seq": [0]},
    ...     geometry=[LineString([(113.10, 27.8), (113.15, 27.8)])], crs=4326)
    >>> sim = chief_patrols(reaches, chiefs, start="2026-05-01", end="2026-06-01", seed=2)
    >>> sim.patrols["chief_id"].value_counts().to_dict()  # the village chief, weekly
    {'RC-V': 4}
    """
    rng = np.random.default_rng(seed)
    ch = river_chiefs.reset_index(drop=True)
    duty = ch["role"].fillna("chief").eq("chief") if "role" in ch else pd.Series(True, ch.index)
    ch = ch[duty.to_numpy()].copy()
    rivers = reaches.assign(length_m=reaches.get("length_m", 1.0))
    # a general chief patrols the longest river of his area
    gen = ch["river_id"].isna()
    if gen.any():
        ch.loc[gen, "river_id"] = _general_rivers(ch, rivers)
    plan = _plan(ch, start, end, rng, miss_share)
    metric = local_metric_crs(reaches)
    lines_m = np.asarray(reaches.to_crs(metric).geometry.array)
    levels = ch.loc[plan["pos"], "level"].to_numpy()
    mode = np.array(
        [rng.choice(_MODES[lv][0], p=_MODES[lv][1]) for lv in levels], dtype=object
    )  # a draw per patrol: small arrays
    runs = _runs(plan, ch, rivers, rng)
    speed = np.array([_SPEED_KMH[m] for m in mode])
    # the strictest minimum of any level (a general chief is judged at his area's level)
    need = np.maximum.reduce(
        [np.full(len(mode), 2000.0), np.where(mode == "car", 5000.0, 0.0), 0.5 * speed * 1000]
    )
    tracks = _tracks(runs, len(plan), lines_m, mode, need)
    has = ~pd.isna(tracks)
    plan, mode, tracks = plan[has].reset_index(drop=True), mode[has], tracks[has]
    return _season(plan, ch, mode, tracks, metric, rng, ledger_share, fake_share, problem_share)


def _season(plan, ch, mode, tracks, metric, rng, ledger_share, fake_share, problem_share):
    """Fixes, timing, checklists, paper records and fakes of the planned patrols."""
    n = len(plan)
    faker = pd.Series(rng.random(len(ch)) < fake_share, index=ch.index)
    fake = (mode == "foot") & faker.reindex(plan["pos"]).to_numpy() & (rng.random(n) < 0.3)
    speed = np.array([_SPEED_KMH[m] for m in mode]) * np.where(fake, 7.5, 1.0)
    step = np.array([_FIX_M[m] for m in mode])
    dense = shapely.segmentize(tracks, step)
    xy, own = shapely.get_coordinates(dense, return_index=True)
    xy = xy + rng.normal(0.0, 6.0, xy.shape)  # GPS noise: no two walks are the same
    tracks = shapely.linestrings(xy, indices=own)
    d = np.r_[0.0, np.hypot(*(xy[1:] - xy[:-1]).T)]
    d[np.r_[True, own[1:] != own[:-1]]] = 0.0
    cum = pd.Series(d).groupby(own).cumsum().to_numpy()
    t0 = (
        plan["t"]
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[ns]")
        .astype(np.int64)
    )
    t = t0[own] + (cum / (speed[own] / 3.6) * 1e9).astype(np.int64)
    pid = np.char.add("CP", np.char.zfill(np.arange(1, n + 1).astype(str), 6)).astype(object)
    pts84 = gpd.GeoSeries(shapely.points(xy), crs=metric).to_crs(WGS84)
    points = gpd.GeoDataFrame(
        {
            "patrol_id": pid[own],
            "t": pd.to_datetime(t, utc=True),
            "accuracy_m": rng.uniform(3, 15, len(xy)).round(1),
        },
        geometry=pts84.to_numpy(),
        crs=WGS84,
    )
    length = shapely.length(tracks)
    ended = t0 + (length / (speed / 3.6) * 1e9).astype(np.int64)
    paper_chief = pd.Series(rng.random(len(ch)) < ledger_share, index=ch.index)
    ledger = paper_chief.reindex(plan["pos"]).to_numpy() & (rng.random(n) < 0.33)
    lines84 = gpd.GeoSeries(tracks, crs=metric).to_crs(WGS84).to_numpy()
    patrols = gpd.GeoDataFrame(
        {
            "patrol_id": pid,
            "worker_id": ch.loc[plan["pos"], "worker_id"].astype(str).to_numpy(),
            "started_at": pd.to_datetime(t0, utc=True),
            "ended_at": pd.to_datetime(ended, utc=True),
            "mode": np.where(ledger, None, mode),
            "source": np.where(ledger, "ledger", "app"),
            "verified": ~ledger,
            "chief_id": ch.loc[plan["pos"], "chief_id"].astype(str).to_numpy(),
            "checklist": _checklists(rng, n, problem_share, lines84),
        },
        geometry=np.where(ledger, None, lines84),
        crs=WGS84,
    )
    points = points[~ledger[own]].reset_index(drop=True)
    return ChiefSeason(patrols, points, list(pid[fake & ~ledger]))


def _checklists(rng, n: int, share: float, lines84: np.ndarray) -> list[str]:
    """A checklist per patrol: every item ok, one problem on a few (at a track point)."""
    ok = {k: "ok" for k in _ITEMS}
    found = rng.random(n) < share
    item = rng.choice(np.array(_ITEMS[4:]), n)
    where = shapely.line_interpolate_point(lines84, rng.random(n), normalized=True)
    out = []
    for i in range(n):  # JSON text per patrol: there is no array form
        c = dict(ok)
        if found[i]:
            c[item[i]] = {
                "result": "problem",
                "note": "巡河发现",
                "lon": round(float(shapely.get_x(where[i])), 6),
                "lat": round(float(shapely.get_y(where[i])), 6),
            }
        out.append(json.dumps(c, ensure_ascii=False))
    return out


def night_shift(
    patrols: pd.DataFrame,
    patrol_points: pd.DataFrame,
    *,
    share: float = 0.1,
    seed: int = 0,
    tz: str = "Asia/Shanghai",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move a share of patrols (and their fixes) to the evening of the same local day,
    starting between 20:00 and 22:00: night patrols (夜巡) for the night rules.

    Examples
    --------
    >>> p = pd.DataFrame({"patrol_id": ["a", "b"], "worker_id": "W1",
    ...     "started_at": pd.to_datetime(["2026-05-04T01:00Z", "2026-05-05T01:00Z"]),
    ...     "ended_at": pd.to_datetime(["2026-05-04T02:00Z", "2026-05-05T02:00Z"])})
    >>> pts = pd.DataFrame({"patrol_id": ["a", "b"], "t": p["started_at"]})
    >>> p2, pts2 = night_shift(p, pts, share=1.0, seed=1)
    >>> [t.tz_convert("Asia/Shanghai").hour for t in p2["started_at"]]
    [20, 21]
    """
    rng = np.random.default_rng(seed)
    start = pd.to_datetime(patrols["started_at"], utc=True)
    local = start.dt.tz_convert(tz)
    evening = local.dt.normalize() + pd.to_timedelta(
        20 * 60 + rng.integers(0, 120, len(local)), "m"
    )
    move = rng.random(len(patrols)) < share
    delta = (evening.dt.tz_convert("UTC") - start).where(move, pd.Timedelta(0))
    by_id = pd.Series(delta.to_numpy(), index=patrols["patrol_id"].astype(str).to_numpy())
    out = patrols.copy()
    out["started_at"] = start + delta
    out["ended_at"] = pd.to_datetime(patrols["ended_at"], utc=True) + delta
    pts = patrol_points.copy()
    shift = pts["patrol_id"].astype(str).map(by_id).fillna(pd.Timedelta(0))
    pts["t"] = pd.to_datetime(pts["t"], utc=True) + pd.to_timedelta(shift)
    return out, pts
