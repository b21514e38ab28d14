"""River chiefs' duty (河长制): patrols by chief and section, compliance by rule and
calendar period, joint and night patrols.

A chief's appointment (a row of ``river_chiefs``) holds a *section*: a river inside an
admin area (or explicit reaches); a general chief (总河长) holds every river of his area.
:func:`section_hits` finds which patrols count for which appointment: the chief's own
patrols, valid (:func:`gridkit.ops.patrols.flag_patrols`, per declared mode), started
while the appointment held, whose track covers the section's share set per level
within the declared mode's tolerance; paper records (``source = "ledger"``) count for
the appointment they name, as *unverified*. :func:`count_by_rule` then counts them per
rule of the chief's level over the calendar windows of a period; :func:`chief_compliance`
chains the two.

Periods are written ``2026``, ``2026-H1``, ``2026-Q1``, ``2026-03`` or ``2026-W10``
(Asia/Shanghai by default). A rule is reported for a period when the rule's own
calendar period fits in it: in ``2026-Q1`` a ``1/quarter`` rule requires 1, ``1/month``
requires 3 and ``1/week`` the ISO weeks starting in the quarter; yearly and half-yearly
rules are reported for ``2026`` and ``2026-H1``.

Examples
--------
>>> [w.label for w in rule_windows("1/month", "2026-Q1")]
['2026-01', '2026-02', '2026-03']
>>> len(rule_windows("1/week", "2026-Q1")), rule_windows("1/year", "2026-Q1")
(13, [])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import local_metric_crs
from gridkit.layers import CHIEF_LEVELS, check_layer
from gridkit.ops.patrols import (
    PatrolRules,
    RulesError,
    flag_patrols,
    load_patrol_rules,
    period_bounds,
)
from gridkit.ops.times import utc_series

__all__ = [
    "Window",
    "chief_compliance",
    "count_by_rule",
    "duty_chiefs",
    "joint_pairs",
    "night_compliance",
    "period_kind",
    "rule_windows",
    "section_hits",
    "section_units",
]

_RANK = {"week": 0, "month": 1, "quarter": 2, "half": 3, "year": 4}
_MONTHS = {"month": 1, "quarter": 3, "half": 6, "year": 12}
_NS_DAY = 24 * 3600 * 10**9


def _rules(rules: PatrolRules | str | Path | None) -> PatrolRules:
    return rules if isinstance(rules, PatrolRules) else load_patrol_rules(rules)


# --------------------------------------------------------------------------- periods


def period_kind(period: str) -> str:
    """The calendar kind of a period: ``year``, ``half``, ``quarter``, ``month`` or
    ``week``.

    Examples
    --------
    >>> [period_kind(p) for p in ("2026", "2026-H1", "2026-Q1", "2026-03", "2026-W10")]
    ['year', 'half', 'quarter', 'month', 'week']
    >>> period_kind("2026-13")
    Traceback (most recent call last):
    ...
    gridkit.ops.patrols.RulesError: period '2026-13' is not understood.
    Hint: Write 2026, 2026-H1, 2026-Q1, 2026-03 or 2026-W10.
    """
    s = str(period).strip().upper()
    for kind, pattern in (
        ("year", r"\d{4}"),
        ("half", r"\d{4}-H[12]"),
        ("quarter", r"\d{4}-Q[1-4]"),
        ("month", r"\d{4}-(0?[1-9]|1[0-2])"),
        ("week", r"\d{4}-W(0?[1-9]|[1-4]\d|5[0-3])"),
    ):
        if re.fullmatch(pattern, s):
            if kind == "week":  # a year has 52 or 53 ISO weeks
                year, week = int(s[:4]), int(s[6:])
                if week > pd.Timestamp(year, 12, 28).isocalendar()[1]:
                    break
            return kind
    raise RulesError(
        f"period {period!r} is not understood.",
        hint="Write 2026, 2026-H1, 2026-Q1, 2026-03 or 2026-W10.",
    )


def _parse_rule(rule: str | dict) -> tuple[int, str]:
    if isinstance(rule, dict):
        return int(rule["count"]), str(rule["per"])
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(week|month|quarter|half|year)\s*", str(rule))
    if not m or int(m[1]) < 1:
        raise RulesError(f"rule {rule!r} is not understood.", hint="Write e.g. 1/quarter.")
    return int(m[1]), m[2]


@dataclass(frozen=True)
class Window:
    """One calendar window of a rule: its label and bounds (UTC nanoseconds, end
    excluded).

    Examples
    --------
    >>> w = rule_windows("1/quarter", "2026")[0]
    >>> w.label, str(pd.Timestamp(w.start, tz="UTC"))
    ('2026-Q1', '2025-12-31 16:00:00+00:00')
    """

    label: str
    start: int
    end: int


def _local_ns(naive: list[pd.Timestamp], tz: str) -> list[int]:
    return [int(t.tz_localize(tz).tz_convert("UTC").as_unit("ns").value) for t in naive]


def rule_windows(rule: str | dict, period: str, *, tz: str = "Asia/Shanghai") -> list[Window]:
    """The calendar windows over which ``rule`` (``"1/month"`` or ``{"count": 1,
    "per": "month"}``) is judged in ``period``; empty when the rule's own period does
    not fit in it. At most 53 windows (the weeks of a year).

    Examples
    --------
    ISO weeks starting in a month (1 March 2026 is a Sunday: its week started in
    February):

    >>> [w.label for w in rule_windows("1/week", "2026-03")]
    ['2026-W10', '2026-W11', '2026-W12', '2026-W13', '2026-W14']
    >>> [w.label for w in rule_windows("3/year", "2026")], rule_windows("1/half", "2026-Q3")
    (['2026'], [])
    """
    _, per = _parse_rule(rule)
    kind = period_kind(period)
    if _RANK[per] > _RANK[kind]:
        return []
    start, end = (t.tz_localize(None) for t in period_bounds(period, tz=tz))
    if per == "week":
        first = start + pd.Timedelta(days=(7 - start.weekday()) % 7)
        mondays = list(pd.date_range(first, end - pd.Timedelta(days=1), freq="7D"))
        if kind == "week":
            mondays = [start]
        starts, ends = mondays, [m + pd.Timedelta(days=7) for m in mondays]
        labels = [f"{m.isocalendar()[0]}-W{m.isocalendar()[1]:02d}" for m in mondays]
    else:
        step = _MONTHS[per]
        starts = list(pd.date_range(start, end, freq=f"{step}MS", inclusive="left"))
        ends = [s + pd.DateOffset(months=step) for s in starts]
        labels = [_label(s, per) for s in starts]
    return [
        Window(lb, a, b)
        for lb, a, b in zip(labels, _local_ns(starts, tz), _local_ns(ends, tz), strict=True)
    ]


def _label(s: pd.Timestamp, per: str) -> str:
    return {
        "month": f"{s.year}-{s.month:02d}",
        "quarter": f"{s.year}-Q{(s.month - 1) // 3 + 1}",
        "half": f"{s.year}-H{(s.month - 1) // 6 + 1}",
        "year": f"{s.year}",
    }[per]


# --------------------------------------------------------------------------- counting


def _ns_series(values: object, n: int) -> np.ndarray:
    """UTC times as int64 nanoseconds; missing as the int64 minimum."""
    if values is None:
        return np.full(n, np.iinfo(np.int64).min)
    t = utc_series(pd.Series(values)).dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    return t.astype(np.int64)  # NaT is the int64 minimum


def _tally(
    row: np.ndarray,
    t: np.ndarray,
    verified: np.ndarray,
    valid_from: np.ndarray,
    valid_to: np.ndarray,
    count: int,
    windows: list[Window],
) -> dict[str, np.ndarray]:
    """Per row (``valid_from``/``valid_to`` give each row's appointment, int64 ns,
    missing = open): windows due (the appointment holds at the window's midpoint),
    windows met, verified and unverified hits in the due windows, and patrols missing.
    Hits are ``(row, t, verified)``; a row's hits outside its appointment never count."""
    n, k = len(valid_from), len(windows)
    lo = np.array([w.start for w in windows], dtype=np.int64)
    hi = np.array([w.end for w in windows], dtype=np.int64)
    mid = lo + (hi - lo) // 2
    nat = np.iinfo(np.int64).min
    vf = np.where(valid_from == nat, np.iinfo(np.int64).min, valid_from)
    vt = np.where(valid_to == nat, np.iinfo(np.int64).max, valid_to)
    due = (vf[:, None] <= mid[None, :]) & (mid[None, :] < vt[:, None])  # n x k, k <= 53
    w = np.searchsorted(lo, t, side="right") - 1
    inside = (w >= 0) & (t < hi[np.clip(w, 0, max(k - 1, 0))]) if k else np.zeros(len(t), bool)
    inside &= (t >= vf[row]) & (t < vt[row])
    w = np.where(inside, w, 0)
    inside &= due[row, w] if k else inside
    ver = np.zeros((n, k), dtype=np.int64)
    unv = np.zeros((n, k), dtype=np.int64)
    np.add.at(ver, (row[inside & verified], w[inside & verified]), 1)
    np.add.at(unv, (row[inside & ~verified], w[inside & ~verified]), 1)
    short = np.where(due, np.maximum(count - ver, 0), 0)
    return {
        "windows": due.sum(axis=1),
        "windows_met": (due & (ver >= count)).sum(axis=1),
        "required": count * due.sum(axis=1),
        "done": ver.sum(axis=1),
        "unverified": unv.sum(axis=1),
        "missing": short.sum(axis=1),
    }


def count_by_rule(
    hits: pd.DataFrame,
    chiefs: pd.DataFrame,
    period: str,
    *,
    rules: PatrolRules | str | Path | None = None,
) -> pd.DataFrame:
    """Compliance of each appointment with each frequency rule of its level.

    Parameters
    ----------
    hits
        ``chief_id``, ``started_at`` (UTC), ``verified`` (bool): the patrols that count
        for each appointment (:func:`section_hits`).
    chiefs
        ``chief_id``, ``level`` (``valid_from``, ``valid_to``): the appointments judged.
    period
        ``2026``, ``2026-H1``, ``2026-Q1``, ``2026-03`` or ``2026-W10`` in
        ``rules.timezone``.
    rules
        Frequency per level (``[frequency]`` of ``patrol_rules.toml``).

    Returns
    -------
    pandas.DataFrame
        The chiefs' columns plus ``rule`` (``1/quarter``), ``windows`` (due: the
        appointment holds at the window's midpoint), ``windows_met``, ``required``
        (count x windows due), ``done`` (verified patrols in the due windows),
        ``unverified`` (paper records there), ``missing`` (patrols short, window by
        window) and ``compliant`` (no window short of verified patrols). Rules whose
        calendar period does not fit in ``period`` are not reported.

    Examples
    --------
    A township chief (1 a month) in 2026-Q1, two patrols in January and a paper record
    in March:

    >>> chiefs = pd.DataFrame({"chief_id": ["C1"], "level": ["township"]})
    >>> hits = pd.DataFrame({"chief_id": ["C1"] * 3, "verified": [True, True, False],
    ...     "started_at": pd.to_datetime(["2026-01-05T02:00Z", "2026-01-20T02:00Z",
    ...                                   "2026-03-03T02:00Z"])})
    >>> c = count_by_rule(hits, chiefs, "2026-Q1")
    >>> c[["rule", "required", "done", "unverified", "missing", "compliant"]].values.tolist()
    [['1/month', 3, 2, 1, 2, False]]
    """
    rules = _rules(rules)
    chiefs = chiefs.reset_index(drop=True)
    pos = pd.Series(np.arange(len(chiefs)), index=chiefs["chief_id"].astype(str).to_numpy())
    pos = pos[~pos.index.duplicated()]
    hit_row = hits["chief_id"].astype(str).map(pos)
    keep = hit_row.notna().to_numpy()
    row = hit_row.to_numpy()[keep].astype(np.int64)
    t = _ns_series(hits["started_at"], len(hits))[keep]
    ver = hits["verified"].fillna(False).to_numpy(dtype=bool)[keep]
    vf = _ns_series(chiefs.get("valid_from"), len(chiefs))
    vt = _ns_series(chiefs.get("valid_to"), len(chiefs))
    levels = chiefs["level"].astype(str).to_numpy()
    parts = []
    for lv in pd.unique(levels):  # a handful of levels, each vectorised over chiefs
        if lv not in rules.frequency:
            raise RulesError(
                f"no patrol frequency rule for level {lv!r}.",
                hint=f"Add it to [frequency] in {rules.source}.",
            )
        sel = np.flatnonzero(levels == lv)
        local = np.full(len(chiefs), -1)
        local[sel] = np.arange(len(sel))
        mine = local[row] >= 0
        for rule in rules.frequency[lv]:
            count, per = _parse_rule(dict(rule))
            windows = rule_windows(f"{count}/{per}", period, tz=rules.timezone)
            if not windows:
                continue
            got = _tally(local[row[mine]], t[mine], ver[mine], vf[sel], vt[sel], count, windows)
            part = chiefs.iloc[sel].assign(rule=f"{count}/{per}", **got)
            parts.append(part)
    cols = ["rule", "windows", "windows_met", "required", "done", "unverified", "missing"]
    if not parts:
        empty = {c: pd.Series(dtype=object) for c in cols}
        return chiefs.iloc[:0].assign(**empty, compliant=pd.Series(dtype=bool))
    out = pd.concat(parts).sort_index(kind="stable").reset_index(drop=True)
    out["compliant"] = out["missing"] == 0
    return out


# --------------------------------------------------------------------------- sections


def duty_chiefs(river_chiefs: pd.DataFrame, *, level: str | None = None) -> pd.DataFrame:
    """The appointments with a patrol duty (role ``chief`` or no role), checked, with
    text ids; supporting roles (river police chief, civilian chief, cleaner) left out.

    Examples
    --------
    >>> rc = pd.DataFrame({"chief_id": ["C1", "C2"], "worker_id": ["W1", "W2"],
    ...                    "level": ["village", "village"], "river_id": ["R1", "R1"],
    ...                    "admin_code": ["430202001001"] * 2, "role": ["chief", "cleaner"]})
    >>> duty_chiefs(rc)["chief_id"].tolist()
    ['C1']
    """
    rc = check_layer(pd.DataFrame(river_chiefs), "river_chiefs", source="river_chiefs")
    if level is not None and level not in CHIEF_LEVELS:
        raise RulesError(
            f"level {level!r} is not a chief level.", hint=f"Use {', '.join(CHIEF_LEVELS)}."
        )
    keep = rc["role"].fillna("chief").eq("chief") if "role" in rc else True
    if level is not None:
        keep = keep & rc["level"].eq(level)
    out = rc[keep] if keep is not True else rc
    return out.astype({"chief_id": str, "worker_id": str, "admin_code": str}).reset_index(drop=True)


def _river_units(units: pd.DataFrame) -> pd.DataFrame:
    """River units with ``unit_pos``, ``river_id``, ``u_admin``, ``reach_id``, length."""
    kind = units["kind"].astype(str) if "kind" in units else pd.Series("river_reach", units.index)
    u = units[(kind == "river_reach").to_numpy()]
    length = pd.to_numeric(u.get("length_m"), errors="coerce") if "length_m" in u else None
    return pd.DataFrame(
        {
            "unit_pos": np.flatnonzero((kind == "river_reach").to_numpy()),
            "unit_id": u["unit_id"].astype(str).to_numpy(),
            "river_id": u["parent_id"].astype(str).to_numpy(),
            "u_admin": u["admin_code"].astype(str).to_numpy(),
            "reach_id": (u["reach_id"] if "reach_id" in u else u["unit_id"]).astype(str).to_numpy(),
            "length_m": length.to_numpy(dtype=float) if length is not None else np.nan,
        }
    )


def section_units(chiefs: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """The river units of each appointment's section: ``chief_id``, ``unit_id``,
    ``river_id``, ``length_m``. A section is the river inside the appointment's admin
    area, or its ``reach_ids`` when given; a general chief's is every river there.

    Examples
    --------
    >>> units = pd.DataFrame({"unit_id": ["u1", "u2", "u3"], "kind": "river_reach",
    ...     "parent_id": ["R1", "R1", "R2"], "length_m": 1000.0,
    ...     "admin_code": ["430202001001", "430202001002", "430202001001"]})
    >>> chiefs = pd.DataFrame({"chief_id": ["V", "T", "G"], "level": ["village",
    ...     "township", "general"], "river_id": ["R1", "R1", None],
    ...     "admin_code": ["430202001001", "430202001", "430202001001"]})
    >>> section_units(chiefs, units).groupby("chief_id")["unit_id"].agg(list).to_dict()
    {'G': ['u1', 'u3'], 'T': ['u1', 'u2'], 'V': ['u1']}
    """
    ru = _river_units(units)
    ch = chiefs.reset_index(drop=True).assign(
        chief_pos=lambda c: np.arange(len(c)),
        admin_code=lambda c: c["admin_code"].astype(str),
    )
    lv = codes.level(ch["admin_code"])
    parts = []
    explicit = (
        ch["reach_ids"].notna() & ch["reach_ids"].astype(str).str.strip().ne("")
        if "reach_ids" in ch
        else pd.Series(False, index=ch.index)
    )
    if explicit.any():
        ex = (
            ch[explicit]
            .assign(reach_id=ch["reach_ids"].astype(str).str.split(","))
            .explode("reach_id")
        )
        ex["reach_id"] = ex["reach_id"].str.strip()
        parts.append(ex[["chief_id", "reach_id"]].merge(ru, on="reach_id"))
    for at in pd.unique(lv.dropna()):  # a handful of admin levels, each one merge
        sel = ch[(lv == at).to_numpy() & ~explicit.to_numpy()]
        if not len(sel):
            continue
        up = ru.assign(area=codes.ancestor(ru["u_admin"], at).to_numpy())
        general = sel["level"].eq("general") | sel["river_id"].isna()
        a = sel[~general][["chief_id", "river_id", "admin_code"]].astype({"river_id": str})
        parts.append(a.merge(up, left_on=["river_id", "admin_code"], right_on=["river_id", "area"]))
        g = sel[general][["chief_id", "admin_code"]]
        parts.append(g.merge(up, left_on="admin_code", right_on="area"))
    cols = ["chief_id", "unit_id", "unit_pos", "river_id", "length_m"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat([p[cols] for p in parts], ignore_index=True)
    return out.drop_duplicates(["chief_id", "unit_id"]).sort_values(["chief_id", "unit_id"])


def _is_paper(patrols: pd.DataFrame, *, trackless: bool = True) -> np.ndarray:
    """Paper records (``source = "ledger"``), and, with ``trackless``, patrols
    without a track (no geometry)."""
    paper = np.zeros(len(patrols), dtype=bool)
    if "source" in patrols:
        paper |= patrols["source"].astype(object).eq("ledger").to_numpy()
    if isinstance(patrols, gpd.GeoDataFrame) and patrols.geometry.name in patrols:
        g = np.asarray(patrols.geometry.array)
        paper |= shapely.is_missing(g) | shapely.is_empty(g)
    elif trackless:
        paper[:] = True
    return paper


def _overlapping_in_time(tracks: pd.DataFrame, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``a < b`` of patrols overlapping in time for ``share`` of the shorter one:
    a sweep over the starts (each patrol meets only those starting before it ends)."""
    s = _ns_series(tracks["started_at"], len(tracks))
    e = np.maximum(_ns_series(tracks["ended_at"], len(tracks)), s)
    order = np.argsort(s, kind="stable")
    ss = s[order]
    hi = np.searchsorted(ss, e[order], side="left")  # starts before my end
    cnt = np.maximum(hi - np.arange(len(ss)) - 1, 0)
    i = np.repeat(np.arange(len(ss)), cnt)
    j = i + 1 + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    a, b = order[i], order[j]
    overlap = np.minimum(e[a], e[b]) - np.maximum(s[a], s[b])
    shorter = np.maximum(np.minimum(e[a] - s[a], e[b] - s[b]), 1)
    keep = overlap >= share * shorter
    a, b = a[keep], b[keep]
    return np.minimum(a, b), np.maximum(a, b)


def joint_pairs(
    tracks: gpd.GeoDataFrame, *, rules: PatrolRules | str | Path | None = None
) -> pd.DataFrame:
    """Joint patrols (联合巡河): pairs of tracks of two people that stay within
    ``rules.joint_tolerance_m`` of each other (Hausdorff) and overlap in time for at
    least ``rules.joint_time_share`` of the shorter patrol.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> t = pd.to_datetime(["2026-05-01T01:00Z", "2026-05-01T01:05Z", "2026-05-02T01:00Z"])
    >>> tracks = gpd.GeoDataFrame({"patrol_id": ["A", "B", "C"], "worker_id": ["W1", "W2", "W3"],
    ...     "started_at": t, "ended_at": t + pd.Timedelta(hours=1)},
    ...     geometry=[LineString([(113.10, 27.80), (113.12, 27.80)]),
    ...               LineString([(113.10, 27.8005), (113.12, 27.8005)]),
    ...               LineString([(113.10, 27.80), (113.12, 27.80)])], crs=4326)
    >>> joint_pairs(tracks).values.tolist()
    [['A', 'B']]
    """
    rules = _rules(rules)
    cols = ["patrol_a", "patrol_b"]
    if len(tracks) < 2:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in cols})
    mg = np.asarray(tracks.to_crs(local_metric_crs(tracks)).geometry.array)
    tol = rules.joint_tolerance_m
    a, b = _overlapping_in_time(tracks, rules.joint_time_share)
    who = tracks["worker_id"].astype(str).to_numpy()
    a, b = a[who[a] != who[b]], b[who[a] != who[b]]
    near = shapely.dwithin(mg[a], mg[b], tol)
    a, b = a[near], b[near]
    close = shapely.hausdorff_distance(mg[a], mg[b]) <= tol if len(a) else np.zeros(0, bool)
    pid = tracks["patrol_id"].astype(str).to_numpy()
    return pd.DataFrame({"patrol_a": pid[a[close]], "patrol_b": pid[b[close]]})


def _bank_units(units: pd.DataFrame) -> pd.DataFrame:
    """``unit_id``, ``reach_id`` of the units of one bank of a boundary reach."""
    if "bank" not in units or "reach_id" not in units:
        return pd.DataFrame({"unit_id": pd.Series(dtype=str), "reach_id": pd.Series(dtype=str)})
    u = pd.DataFrame(
        {
            "unit_id": units["unit_id"].astype(str).to_numpy(),
            "reach_id": units["reach_id"].astype(str).to_numpy(),
            "bank": units["bank"].astype(str).to_numpy(),
        }
    )
    return u[u["bank"].isin(["left", "right"])].drop(columns="bank")


def _with_twins(pairs: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """(worker, unit) pairs plus each unit's other bank: a joint patrol covering the
    other bank covers the worker's own."""
    u = _bank_units(units)
    if not len(u):
        return pairs
    m = pairs.merge(u, on="unit_id").merge(u, on="reach_id", suffixes=("_own", ""))
    more = m.loc[m["unit_id"] != m["unit_id_own"], ["worker_id", "unit_id"]]
    return pd.concat([pairs, more], ignore_index=True).drop_duplicates()


def _twins(cov: pd.DataFrame, units: pd.DataFrame, joint: set[str]) -> pd.DataFrame:
    """Coverage rows plus, for patrols in a joint pair, the other bank's unit of each
    boundary reach they covered (same ``reach_id``, the other ``bank``)."""
    u = _bank_units(units)
    if not joint or not len(u):
        return cov
    mine = cov[cov["patrol_id"].astype(str).isin(joint)].merge(u, on="unit_id")
    twin = mine.merge(u, on="reach_id", suffixes=("_own", ""))
    twin = twin[twin["unit_id"] != twin["unit_id_own"]]
    both = pd.concat([cov, twin[cov.columns]], ignore_index=True)
    both = both.sort_values("share", ascending=False, kind="stable")
    return both.drop_duplicates(["patrol_id", "unit_id"]).sort_index()


def _ledger_hits(paper: pd.DataFrame, chiefs: pd.DataFrame) -> pd.DataFrame:
    """Paper records count, unverified, for the appointment they name (by its chief)."""
    if "chief_id" not in paper or not len(paper):
        return pd.DataFrame(columns=["chief_id", "patrol_id", "started_at", "verified"])
    p = paper[paper["chief_id"].notna()].astype({"chief_id": str})
    m = p[["patrol_id", "worker_id", "chief_id", "started_at"]].merge(
        chiefs[["chief_id", "worker_id"]].astype(str), on=["chief_id"], suffixes=("", "_c")
    )
    m = m[m["worker_id"].astype(str) == m["worker_id_c"]]
    return m[["chief_id", "patrol_id", "started_at"]].assign(verified=False)


def _valid_tracks(
    tracks: gpd.GeoDataFrame, rules: PatrolRules, workers: pd.DataFrame | None
) -> gpd.GeoDataFrame:
    """Tracks that count: flagged per declared mode when not flagged yet, valid only."""
    if not len(tracks):
        return tracks
    if "valid" not in tracks:
        tracks = flag_patrols(tracks, rules=rules, workers=workers)
    return tracks[tracks["valid"].fillna(False).to_numpy(dtype=bool)]


def _polygon_edges(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges of polygons (every ring), polygon by polygon, as ``(count, xyxy)``."""
    rings, of = shapely.get_rings(polys, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    xyxy = np.c_[coords[:-1][same], coords[1:][same]]
    return np.bincount(of[ring[:-1][same]], minlength=len(polys)), xyxy


def _clipped_lengths(a: np.ndarray, b: np.ndarray, polys: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Exact length of segments ``a[k]``-``b[k]`` inside polygon ``polys[pi[k]]``,
    without an overlay: a tree over the polygons' edges finds the edges near each
    segment, numpy cuts the segment where it crosses them, and each piece counts when
    its middle lies in the (prepared) polygon."""
    used, inv = np.unique(pi, return_inverse=True)
    count, xyxy = _polygon_edges(polys[used])
    edge_of = np.repeat(np.arange(len(used)), count)
    edges = shapely.linestrings(xyxy.reshape(-1, 2, 2))
    k, e = shapely.STRtree(edges).query(shapely.linestrings(np.stack([a, b], axis=1)))
    keep = edge_of[e] == inv[k]
    k, e = k[keep], e[keep]
    d = b[k] - a[k]
    q, f = xyxy[e, :2], xyxy[e, 2:] - xyxy[e, :2]
    w = q - a[k]
    den = d[:, 0] * f[:, 1] - d[:, 1] * f[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (w[:, 0] * f[:, 1] - w[:, 1] * f[:, 0]) / den
        u = (w[:, 0] * d[:, 1] - w[:, 1] * d[:, 0]) / den
    cross = (den != 0) & (t > 0) & (t < 1) & (u >= 0) & (u <= 1)
    n = np.arange(len(a))
    ends = np.r_[k[cross], n, n]
    ts = np.r_[t[cross], np.zeros(len(a)), np.ones(len(a))]
    order = np.lexsort((ts, ends))
    ends, ts = ends[order], ts[order]
    piece = (ends[1:] == ends[:-1]) & (ts[1:] > ts[:-1])
    owner, t0, t1 = ends[:-1][piece], ts[:-1][piece], ts[1:][piece]
    mid = a[owner] + (b[owner] - a[owner]) * ((t0 + t1) / 2)[:, None]
    inside = shapely.intersects_xy(polys[pi[owner]], mid[:, 0], mid[:, 1])
    seg = np.hypot(*(b[owner] - a[owner]).T) * (t1 - t0)
    return np.bincount(owner[inside], weights=seg[inside], minlength=len(a))


def _inside_lengths(
    tracks: np.ndarray,
    corridors: np.ndarray,
    group: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Length of each track inside each corridor it enters, exactly: ``(track, corridor,
    metres)``. Tracks are cut at their fixes; one tree query pairs each fix-to-fix
    segment with the corridors whose boxes it meets; with ``group`` (a code per track)
    and ``allowed`` (codes ``group * len(corridors) + corridor``) only allowed pairs
    go on; a segment a prepared corridor covers counts whole, the others are cut at
    the corridor's edges (:func:`_clipped_lengths`). The cost follows the fixes, not
    the length walked (no densifying)."""
    coords, idx = shapely.get_coordinates(tracks, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b, owner = coords[:-1][same], coords[1:][same], idx[:-1][same]
    if not len(a) or not len(corridors):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    segs = shapely.linestrings(np.stack([a, b], axis=1))
    si, ci = shapely.STRtree(corridors).query(segs)
    if group is not None and allowed is not None:
        ok = np.isin(group[owner[si]].astype(np.int64) * len(corridors) + ci, allowed)
        si, ci = si[ok], ci[ok]
    shapely.prepare(corridors)
    whole = shapely.covers(corridors[ci], segs[si])  # most fixes of a real walk
    metres = np.hypot(*(b - a).T)[si]
    edge = np.flatnonzero(~whole)
    metres[edge] = _clipped_lengths(a[si[edge]], b[si[edge]], corridors, ci[edge])
    si, ci, metres = si[metres > 0], ci[metres > 0], metres[metres > 0]
    key = owner[si].astype(np.int64) * len(corridors) + ci
    uniq, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=metres, minlength=len(uniq))
    return uniq // len(corridors), uniq % len(corridors), total


def _mode_coverage(
    tracks: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    pairs: pd.DataFrame,
    rules: PatrolRules,
) -> pd.DataFrame:
    """``patrol_id``, ``unit_id``, ``share`` of each (patrol, section unit) pair: the
    track's length within the declared mode's ``tolerance_m`` of the unit over the
    unit's length (at most 1), as :func:`patrol_coverage` measures river units; one
    pass per declared mode (a handful)."""
    metric = local_metric_crs(units)
    used = units[units["unit_id"].astype(str).isin(pd.unique(pairs["unit_id"].to_numpy()))]
    um = np.asarray(used.to_crs(metric).geometry.array)
    length = (
        pd.to_numeric(used["length_m"], errors="coerce").to_numpy(dtype=float)
        if "length_m" in used
        else np.full(len(used), np.nan)
    )
    length = np.where(np.isfinite(length) & (length > 0), length, shapely.length(um) / 2)
    uid = used["unit_id"].astype(str).to_numpy()
    tm = np.asarray(tracks.to_crs(metric).geometry.array)
    mode = tracks["mode"] if "mode" in tracks else pd.Series(None, index=tracks.index)
    mode = mode.astype(object).where(mode.notna(), "").to_numpy()
    pid = tracks["patrol_id"].astype(str).to_numpy()
    who = tracks["worker_id"].astype(str).to_numpy()
    # only a worker's own sections' units count for his patrols: pairs as integer codes
    wcode, _ = pd.factorize(pd.Index(who).append(pd.Index(pairs["worker_id"])))
    upos = pd.Series(np.arange(len(uid)), index=uid)
    upos = upos[~upos.index.duplicated()]
    pw = wcode[len(who) :]
    pu = upos.reindex(pairs["unit_id"].to_numpy()).to_numpy()
    allowed = np.unique(pw[~np.isnan(pu)] * len(uid) + pu[~np.isnan(pu)].astype(np.int64))
    parts = []
    for m in pd.unique(mode):
        tol = float(rules.modes.get(m, {}).get("tolerance_m", rules.tolerance_m))
        sel = np.flatnonzero(mode == m)
        # quarter circles of 4 segments: corners within 2 % of the tolerance
        ti, ci, inside = _inside_lengths(
            tm[sel], shapely.buffer(um, tol, quad_segs=4), wcode[: len(who)][sel], allowed
        )
        parts.append(
            pd.DataFrame(
                {
                    "patrol_id": pid[sel][ti],
                    "worker_id": who[sel][ti],
                    "unit_id": uid[ci],
                    "share": np.minimum(inside / length[ci], 1.0),
                }
            )
        )
    cov = pd.concat(parts, ignore_index=True) if parts else None
    if cov is None or not len(cov):
        return pd.DataFrame({"patrol_id": [], "unit_id": [], "share": []}, dtype=object)
    return cov[["patrol_id", "unit_id", "share"]]


def section_hits(
    patrols: pd.DataFrame,
    river_chiefs: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    rules: PatrolRules | str | Path | None = None,
    workers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Which patrols count for which appointment (chief and section).

    A track counts for an appointment of its own worker when it is valid (per its
    declared mode), started while the appointment held, and covers, within its mode's
    ``tolerance_m``, the level's share (``[sections.share]``) of the section's length
    of one river (a general chief: of any river of his area). A patrol in a joint
    pair (:func:`joint_pairs`) also covers the other bank of the boundary reaches it
    covered. A paper record (``source = "ledger"``, no track) counts for the
    appointment it names (``chief_id``), unverified.

    Parameters
    ----------
    patrols
        ``patrols`` layer (tracks; ``mode``, ``source``, ``chief_id`` optional).
    river_chiefs
        ``river_chiefs`` layer (only role ``chief`` is judged).
    units
        ``units`` layer: river units (``parent_id`` = river, ``admin_code``,
        ``length_m``; ``reach_id`` and ``bank`` for joint patrols).
    rules
        Patrol rules.
    workers
        ``workers`` layer: the level of each patrol's worker for the minimums.

    Returns
    -------
    pandas.DataFrame
        ``chief_id``, ``patrol_id``, ``started_at``, ``verified``, ``share`` (of the
        section covered; NaN for paper records).

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, patrols = chief_demo()
    >>> section_hits(patrols, chiefs, units)[["chief_id", "patrol_id", "verified"]].values.tolist()
    [['RC-CAR', 'P-CAR', True], ['RC-V', 'P-LEDGER', False]]
    """
    rules = _rules(rules)
    chiefs = duty_chiefs(river_chiefs)
    pats = patrols.reset_index(drop=True).astype({"patrol_id": str, "worker_id": str})
    paper = _is_paper(pats)
    out = [_ledger_hits(pats[paper], chiefs)]
    tracks = _valid_tracks(pats[~paper], rules, workers)
    cand = tracks[["patrol_id", "worker_id", "started_at"]].merge(
        chiefs[["chief_id", "worker_id", "level"]], on="worker_id"
    )
    t = _ns_series(cand["started_at"], len(cand))
    ch = chiefs.set_index("chief_id")
    vf = _ns_series(ch.get("valid_from", pd.Series(pd.NaT, ch.index)), len(ch))
    vt = _ns_series(ch.get("valid_to", pd.Series(pd.NaT, ch.index)), len(ch))
    at = ch.index.get_indexer(cand["chief_id"])
    nat = np.iinfo(np.int64).min
    held = ((vf[at] == nat) | (vf[at] <= t)) & ((vt[at] == nat) | (t < vt[at]))
    cand = cand[held]
    sec = section_units(
        chiefs[chiefs["chief_id"].isin(pd.unique(cand["chief_id"].to_numpy()))], units
    )
    sec = sec.merge(chiefs[["chief_id", "worker_id"]], on="chief_id")
    pairs = _with_twins(sec[["worker_id", "unit_id"]], units)
    cov = _mode_coverage(tracks, units, pairs, rules)
    joint = joint_pairs(tracks, rules=rules) if len(tracks) else pd.DataFrame()
    together = set(joint.to_numpy().ravel()) if len(joint) else set()
    cov = _twins(cov, units, together)
    out.append(_section_share(cand, sec, cov, rules))
    hits = pd.concat([o for o in out if len(o)], ignore_index=True) if any(map(len, out)) else None
    if hits is None:
        return pd.DataFrame(
            {"chief_id": [], "patrol_id": [], "started_at": [], "verified": [], "share": []}
        )
    hits["started_at"] = utc_series(hits["started_at"])
    return hits.sort_values(["started_at", "chief_id"], kind="stable").reset_index(drop=True)


def _section_share(
    cand: pd.DataFrame, sec: pd.DataFrame, cov: pd.DataFrame, rules: PatrolRules
) -> pd.DataFrame:
    """Hits of tracks on sections: the share of each (patrol, appointment, river)
    covered, the best river of a section against the level's share."""
    if not len(cand) or not len(cov) or not len(sec):
        return pd.DataFrame(columns=["chief_id", "patrol_id", "started_at", "share", "verified"])
    length = sec["length_m"].fillna(0.0)
    total = sec.assign(length_m=length).groupby(["chief_id", "river_id"])["length_m"].sum()
    m = cand[["patrol_id", "chief_id", "level", "started_at"]].merge(
        sec[["chief_id", "unit_id", "river_id", "length_m"]], on="chief_id"
    )
    m = m.merge(cov, on=["patrol_id", "unit_id"])
    m["covered_m"] = np.minimum(np.nan_to_num(m["share"]), 1.0) * m["length_m"].fillna(0.0)
    per = m.groupby(["patrol_id", "chief_id", "river_id"], as_index=False).agg(
        covered_m=("covered_m", "sum"), level=("level", "first"), started_at=("started_at", "first")
    )
    per["share"] = per["covered_m"] / np.maximum(
        total.reindex(pd.MultiIndex.from_frame(per[["chief_id", "river_id"]])).to_numpy(), 1e-9
    )
    need = per["level"].map(rules.section_share).astype(float).fillna(rules.share)
    per = per[per["share"] >= need - 1e-9]
    best = per.sort_values("share", ascending=False).drop_duplicates(["patrol_id", "chief_id"])
    return best[["chief_id", "patrol_id", "started_at", "share"]].assign(verified=True)


def chief_compliance(
    patrols: pd.DataFrame,
    river_chiefs: pd.DataFrame,
    units: gpd.GeoDataFrame,
    period: str,
    *,
    workers: pd.DataFrame | None = None,
    level: str | None = None,
    rules: PatrolRules | str | Path | None = None,
    hits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Compliance by chief: one row per appointment (chief and section) with a patrol
    duty and rule of its level reported for ``period``.

    Parameters
    ----------
    patrols, river_chiefs, units, workers, rules
        As for :func:`section_hits`.
    period
        ``2026``, ``2026-H1``, ``2026-Q1``, ``2026-03`` or ``2026-W10``.
    level
        Only the chiefs of this level (``province`` ... ``village``, ``general``).
    hits
        Precomputed :func:`section_hits` (then ``patrols`` and ``units`` are unused).

    Returns
    -------
    pandas.DataFrame
        ``chief_id, worker_id, name, level, admin_code, river_id, rule, required, done,
        unverified, compliant`` then ``missing``, ``windows``, ``windows_met`` (see
        :func:`count_by_rule`).

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, patrols = chief_demo()
    >>> c = chief_compliance(patrols, chiefs, units, "2026-Q2")
    >>> c[["chief_id", "rule", "required", "done", "unverified", "compliant"]].values.tolist()
    [['RC-CAR', '1/quarter', 1, 1, 0, True], ['RC-V', '1/week', 13, 0, 1, False]]

    The same drive declared on foot is flagged (30 km/h is no walk) and counts for
    nobody:

    >>> units, chiefs, patrols = chief_demo("foot")
    >>> chief_compliance(patrols, chiefs, units, "2026-Q2")["done"].tolist()
    [0, 0]
    """
    rules = _rules(rules)
    period_kind(period)
    chiefs = duty_chiefs(river_chiefs, level=level)
    if hits is None:
        hits = section_hits(patrols, chiefs, units, rules=rules, workers=workers)
    out = count_by_rule(hits, chiefs, period, rules=rules)
    names = (
        workers.drop_duplicates("worker_id").set_index(workers["worker_id"].astype(str))["name"]
        if workers is not None and "name" in workers
        else pd.Series(dtype=object)
    )
    out["name"] = out["worker_id"].map(names)
    if "river_id" not in out:
        out["river_id"] = None
    first = ["chief_id", "worker_id", "name", "level", "admin_code", "river_id", "rule"]
    first += ["required", "done", "unverified", "compliant", "missing", "windows", "windows_met"]
    return out[first].reset_index(drop=True)


def _night_minutes(started_at: pd.Series, tz: str) -> np.ndarray:
    """Local minutes after midnight of each start."""
    local = utc_series(started_at).dt.tz_convert(tz)
    return (local.dt.hour * 60 + local.dt.minute).to_numpy(dtype=np.int64)


def _at_night(minutes: np.ndarray, start: int, end: int) -> np.ndarray:
    """Whether local minutes fall in ``[start, end)``, wrapping midnight."""
    if start <= end:
        return (minutes >= start) & (minutes < end)
    return (minutes >= start) | (minutes < end)


def night_compliance(
    patrols: pd.DataFrame,
    workers: pd.DataFrame,
    period: str,
    *,
    river_chiefs: pd.DataFrame | None = None,
    rules: PatrolRules | str | Path | None = None,
) -> pd.DataFrame:
    """Night patrols (夜查、夜巡) against the ``[[night]]`` rules: per rule, a row per
    person of the rule's role (``workers.role``, or a river-chief ``role``) in its area.

    A patrol counts when it is valid (:func:`flag_patrols` per declared mode; paper
    records count as unverified) and starts at night in local time (``from`` to
    ``to``, wrapping midnight).

    Returns
    -------
    pandas.DataFrame
        ``worker_id``, ``name``, ``role``, ``admin_code``, ``rule`` (``2/month
        20:00-06:00``), ``required``, ``done``, ``unverified``, ``compliant``,
        ``missing``, ``windows``, ``windows_met``.

    Examples
    --------
    Two grid workers in May 2026; one patrolled at 21:00 and 23:30 Beijing time, the
    other at 15:00 and 21:00:

    >>> workers = pd.DataFrame({"worker_id": ["W1", "W2"], "name": ["甲", "乙"],
    ...     "role": "grid_worker", "admin_code": "430202001001"})
    >>> patrols = pd.DataFrame({"patrol_id": ["a", "b", "c", "d"],
    ...     "worker_id": ["W1", "W1", "W2", "W2"], "valid": True,
    ...     "started_at": pd.to_datetime(["2026-05-04T13:00Z", "2026-05-20T15:30Z",
    ...                                   "2026-05-04T07:00Z", "2026-05-05T13:00Z"])})
    >>> night_compliance(patrols, workers, "2026-05")[["worker_id", "rule", "done",
    ...     "compliant"]].values.tolist()
    [['W1', '2/month 20:00-06:00', 2, True], ['W2', '2/month 20:00-06:00', 1, False]]
    """
    rules = _rules(rules)
    period_kind(period)
    pats = patrols.reset_index(drop=True)
    paper = _is_paper(pats, trackless=False)
    if "valid" not in pats:
        pats = pd.concat([pats[paper], _valid_tracks(pats[~paper], rules, workers)])
    else:
        pats = pats[pats["valid"].fillna(False).to_numpy(dtype=bool) | paper]
    people = _people_by_role(workers, river_chiefs)
    minutes = _night_minutes(pats["started_at"], rules.timezone)
    verified = ~_is_paper(pats, trackless=False)
    parts = []
    for r in rules.night:
        sel = people[people["role"].eq(r["role"]).to_numpy()]
        sel = sel[codes.in_scope(sel["admin_code"], str(r["admin_code"])).to_numpy()]
        sel = sel.reset_index(drop=True)
        windows = rule_windows(f"{r['count']}/{r['per']}", period, tz=rules.timezone)
        if not windows or not len(sel):
            continue
        night = _at_night(minutes, int(r["from_min"]), int(r["to_min"]))
        pos = pd.Series(np.arange(len(sel)), index=sel["worker_id"].to_numpy())
        row = pats["worker_id"].astype(str).map(pos)
        ok = night & row.notna().to_numpy()
        t = _ns_series(pats["started_at"][ok], int(ok.sum()))
        never = np.full(len(sel), np.iinfo(np.int64).min)
        got = _tally(
            row[ok].to_numpy(dtype=np.int64),
            t,
            verified[ok],
            never,
            never,
            int(r["count"]),
            windows,
        )
        hm = f"{r['from_min'] // 60:02d}:{r['from_min'] % 60:02d}"
        hm += f"-{r['to_min'] // 60:02d}:{r['to_min'] % 60:02d}"
        parts.append(sel.assign(rule=f"{r['count']}/{r['per']} {hm}", **got))
    cols = ["worker_id", "name", "role", "admin_code", "rule", "required", "done", "unverified"]
    cols += ["compliant", "missing", "windows", "windows_met"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = pd.concat(parts, ignore_index=True)
    out["compliant"] = out["missing"] == 0
    return out[cols]


def _people_by_role(workers: pd.DataFrame, river_chiefs: pd.DataFrame | None) -> pd.DataFrame:
    """``worker_id``, ``name``, ``role``, ``admin_code``: workers by their role, and
    river chiefs (of every role) by theirs."""
    w = pd.DataFrame(
        {
            "worker_id": workers["worker_id"].astype(str).to_numpy(),
            "name": workers["name"].to_numpy() if "name" in workers else None,
            "role": workers["role"].astype(str).to_numpy(),
            "admin_code": workers["admin_code"].astype(str).to_numpy(),
        }
    )
    if river_chiefs is None or not len(river_chiefs):
        return w
    rc = river_chiefs.drop_duplicates(["worker_id"])
    c = pd.DataFrame(
        {
            "worker_id": rc["worker_id"].astype(str).to_numpy(),
            "role": (rc["role"].fillna("chief") if "role" in rc else "chief"),
            "admin_code": rc["admin_code"].astype(str).to_numpy(),
        }
    )
    c["name"] = c["worker_id"].map(w.drop_duplicates("worker_id").set_index("worker_id")["name"])
    return pd.concat([w, c[w.columns]], ignore_index=True)
