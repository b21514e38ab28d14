"""Assessment of river chiefs by the level above, and the summons list (约谈).

:func:`assess_chiefs` scores each chief (a person at a level) over a period: patrol
compliance (windows met of every rule of every section held), problems found on his
patrols, problems in his sections closed on time, and coverage of his sections (the
share of their river units his counted patrols covered); chiefs are ranked within
their level and the area assessing them (the area one level up). :func:`summons_list`
names who falls below a rule or in the bottom of the ranking, and why;
:func:`summons_record` makes a record of a summons held (kept in the workspace as the
``summons`` table).

Examples
--------
>>> sorted(SUMMONS_COLUMNS)[:3]
['held_by', 'held_on', 'outcome']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.layers import CHIEF_LEVELS
from gridkit.ops.chiefs import (
    chief_compliance,
    duty_chiefs,
    period_kind,
    section_hits,
    section_units,
)
from gridkit.ops.patrols import PatrolRules, period_bounds
from gridkit.ops.times import utc_series

__all__ = [
    "SUMMONS_COLUMNS",
    "WEIGHTS",
    "ChiefAssessment",
    "assess_chiefs",
    "chief_assessment",
    "summons_list",
    "summons_record",
]

#: the columns of a summons record (the workspace's ``summons`` table)
SUMMONS_COLUMNS = ("worker_id", "period", "held_on", "held_by", "outcome", "recorded_at")
_UP = {"village": "township", "township": "county", "county": "city", "city": "province"}
#: weights of the score: compliance, coverage, problems closed on time
WEIGHTS = {"compliance": 0.5, "coverage": 0.2, "on_time": 0.3}


def _per_chief(compliance: pd.DataFrame) -> pd.DataFrame:
    """Compliance summed per person and level."""
    c = compliance.assign(rule_met=compliance["compliant"].astype(int))
    out = c.groupby(["worker_id", "level"], as_index=False).agg(
        name=("name", "first"),
        admin_code=("admin_code", "first"),
        sections=("chief_id", "nunique"),
        rules=("rule", "size"),
        rules_met=("rule_met", "sum"),
        windows=("windows", "sum"),
        windows_met=("windows_met", "sum"),
        done=("done", "sum"),
        unverified=("unverified", "sum"),
        missing=("missing", "sum"),
    )
    out["compliance"] = np.where(
        out["windows"] > 0, out["windows_met"] / out["windows"].clip(lower=1), 1.0
    )
    broken = c.loc[~c["compliant"].astype(bool)].assign(
        why=lambda d: (
            d["rule"] + " " + d["river_id"].fillna("*").astype(str) + "@" + d["admin_code"]
        )
    )
    out["rules_broken"] = (
        out.set_index(["worker_id", "level"])
        .index.map(broken.groupby(["worker_id", "level"])["why"].agg("; ".join))
        .to_numpy()
    )
    return out


def _reports_measures(
    base: pd.DataFrame,
    reports: pd.DataFrame | None,
    hits: pd.DataFrame | None,
    sections: pd.DataFrame | None,
    chiefs: pd.DataFrame,
    patrols: pd.DataFrame | None,
) -> pd.DataFrame:
    """Problems found on a chief's patrols, and problems of his sections closed on time."""
    base = base.assign(problems_found=0, problems_closed=0, closed_on_time=0)
    if reports is None or not len(reports):
        return base
    key = pd.MultiIndex.from_frame(base[["worker_id", "level"]])
    if "patrol_id" in reports and patrols is not None and len(patrols):
        who = patrols.set_index(patrols["patrol_id"].astype(str))["worker_id"].astype(str)
        found = reports["patrol_id"].dropna().astype(str).map(who).value_counts()
        base["problems_found"] = base["worker_id"].map(found).fillna(0).astype(int)
    if sections is not None and len(sections) and "unit_id" in reports:
        end = reports.get("closed_at", reports.get("resolved_at"))
        closed = reports["status"].astype(str).eq("closed") if "status" in reports else False
        r = pd.DataFrame(
            {
                "unit_id": reports["unit_id"].astype(str),
                "closed": closed,
                "on_time": closed
                & (
                    utc_series(end) <= utc_series(reports["due_at"])
                    if end is not None and "due_at" in reports
                    else False
                ),
            }
        )
        m = sections[["chief_id", "unit_id"]].merge(
            chiefs[["chief_id", "worker_id", "level"]], on="chief_id"
        )
        m = m.drop_duplicates(["worker_id", "level", "unit_id"]).merge(r, on="unit_id")
        g = m.groupby(["worker_id", "level"])[["closed", "on_time"]].sum()
        base["problems_closed"] = g["closed"].reindex(key).fillna(0).astype(int).to_numpy()
        base["closed_on_time"] = g["on_time"].reindex(key).fillna(0).astype(int).to_numpy()
    return base


def _coverage(
    base: pd.DataFrame, hits: pd.DataFrame | None, sections: pd.DataFrame | None, chiefs
) -> np.ndarray:
    """Share of the length of a chief's sections that counted patrols of his covered
    (a section counted once covered by any counted patrol in the period)."""
    if sections is None or not len(sections):
        return np.full(len(base), np.nan)
    s = sections.merge(chiefs[["chief_id", "worker_id", "level"]], on="chief_id")
    s = s.assign(length_m=s["length_m"].fillna(0.0))
    hit = set() if hits is None or not len(hits) else set(hits.loc[hits["verified"], "chief_id"])
    s["covered"] = s["chief_id"].isin(hit) * s["length_m"]
    g = s.groupby(["worker_id", "level"])[["covered", "length_m"]].sum()
    key = pd.MultiIndex.from_frame(base[["worker_id", "level"]])
    g = g.reindex(key)
    return (g["covered"] / g["length_m"].where(g["length_m"] > 0)).to_numpy(dtype=float)


def assess_chiefs(
    compliance: pd.DataFrame,
    *,
    river_chiefs: pd.DataFrame,
    hits: pd.DataFrame | None = None,
    sections: pd.DataFrame | None = None,
    reports: pd.DataFrame | None = None,
    patrols: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score and rank chiefs, each assessed by the area one level up (考核).

    Parameters
    ----------
    compliance
        :func:`gridkit.ops.chiefs.chief_compliance` of the period.
    river_chiefs
        The appointments (``chief_id``, ``worker_id``, ``level``).
    hits, sections
        :func:`gridkit.ops.chiefs.section_hits` and
        :func:`gridkit.ops.chiefs.section_units`, for the coverage of sections.
    reports, patrols
        The period's reports (``patrol_id`` links a problem to the patrol that found
        it; ``unit_id``, ``status``, ``closed_at``/``resolved_at``, ``due_at``) and the
        patrols, for problems found and closed on time.

    Returns
    -------
    pandas.DataFrame
        A row per person and level: ``worker_id``, ``name``, ``level``, ``admin_code``,
        ``assessed_by`` (the area one level up; the general chief of an area is
        assessed by the level above it), ``sections``, ``rules``, ``rules_met``,
        ``compliance`` (share of windows met), ``rules_broken``, ``done``,
        ``unverified``, ``missing``, ``problems_found``, ``problems_closed``,
        ``closed_on_time``, ``coverage``, ``score`` (0-100: weights
        :data:`WEIGHTS`; a measure without data scores full), ``rank`` (1 = best
        within level and ``assessed_by``).

    Examples
    --------
    >>> comp = pd.DataFrame({"chief_id": ["A", "B"], "worker_id": ["W1", "W2"],
    ...     "name": ["甲", "乙"], "level": "village", "river_id": "R1",
    ...     "admin_code": ["430202001001", "430202001002"], "rule": "1/week",
    ...     "windows": 13, "windows_met": [13, 6], "done": [13, 6], "unverified": 0,
    ...     "missing": [0, 7], "compliant": [True, False]})
    >>> a = assess_chiefs(comp, river_chiefs=comp)
    >>> a[["worker_id", "assessed_by", "compliance", "rank"]].values.tolist()
    [['W1', '430202001', 1.0, 1], ['W2', '430202001', 0.46153846153846156, 2]]
    """
    base = _per_chief(compliance)
    chiefs = river_chiefs.astype({"chief_id": str, "worker_id": str})
    base = _reports_measures(base, reports, hits, sections, chiefs, patrols)
    base["coverage"] = _coverage(base, hits, sections, chiefs)
    own = codes.level(base["admin_code"]).fillna("village")
    up = np.where(base["level"].eq("general"), own.map(_UP), base["level"].map(_UP))
    base["assessed_by"] = [
        codes.ancestor(c, u) if isinstance(u, str) else None
        for c, u in zip(base["admin_code"], up, strict=True)
    ]  # a handful per area: one per chief, cheap string work
    on_time = np.where(
        base["problems_closed"] > 0,
        base["closed_on_time"] / base["problems_closed"].clip(lower=1),
        1.0,
    )
    cov = base["coverage"].fillna(1.0).to_numpy()
    base["score"] = 100 * (
        WEIGHTS["compliance"] * base["compliance"]
        + WEIGHTS["coverage"] * cov
        + WEIGHTS["on_time"] * on_time
    )
    base["rank"] = (
        base.groupby(["level", base["assessed_by"].fillna("")])["score"]
        .rank(ascending=False, method="min")
        .astype(int)
    )
    cols = ["worker_id", "name", "level", "admin_code", "assessed_by", "sections", "rules"]
    cols += ["rules_met", "compliance", "rules_broken", "done", "unverified", "missing"]
    cols += ["problems_found", "problems_closed", "closed_on_time", "coverage", "score", "rank"]
    return base[cols].sort_values(["level", "assessed_by", "rank"]).reset_index(drop=True)


def summons_list(
    assessment: pd.DataFrame,
    *,
    bottom_share: float = 0.1,
    held: pd.DataFrame | None = None,
    period: str | None = None,
) -> pd.DataFrame:
    """Who is to be summoned (约谈), and why: every chief who broke a rule, and the
    bottom ``bottom_share`` of each ranking (level and assessing area; at least one
    where a ranking has ten or more chiefs).

    Parameters
    ----------
    assessment
        :func:`assess_chiefs`.
    bottom_share
        Share of each ranking named from the bottom.
    held
        Summons held (the workspace's ``summons`` table): adds ``held_on``,
        ``held_by`` and ``outcome`` of this ``period``'s summons.

    Examples
    --------
    >>> a = pd.DataFrame({"worker_id": ["W1", "W2"], "name": ["甲", "乙"],
    ...     "level": "village", "admin_code": ["430202001001", "430202001002"],
    ...     "assessed_by": "430202001", "rules_broken": [None, "1/week R1@430202001002"],
    ...     "score": [100.0, 72.0], "rank": [1, 2], "compliance": [1.0, 0.46]})
    >>> summons_list(a)[["worker_id", "reason"]].values.tolist()
    [['W2', '未达巡河频次 below the rule: 1/week R1@430202001002']]
    """
    a = assessment.copy()
    size = a.groupby(["level", a["assessed_by"].fillna("")])["rank"].transform("size")
    cut = np.where(size >= 10, np.maximum(1, np.floor(size * bottom_share)), 0)
    bottom = a["rank"] > size - cut
    broke = a["rules_broken"].notna() & a["rules_broken"].astype(str).ne("")
    reason = np.where(broke, "未达巡河频次 below the rule: " + a["rules_broken"].astype(str), "")
    tail = "排名靠后 bottom of the ranking: " + a["rank"].astype(str) + "/" + size.astype(str)
    reason = np.where(bottom & broke, reason + "; " + tail, np.where(bottom, tail, reason))
    out = a.assign(reason=reason)[broke | bottom].reset_index(drop=True)
    out = out[
        ["worker_id", "name", "level", "admin_code", "assessed_by", "score", "rank", "reason"]
    ]
    if held is not None and len(held):
        h = held if period is None else held[held["period"].astype(str) == str(period)]
        h = h.drop_duplicates("worker_id", keep="last").set_index("worker_id")
        for col in ("held_on", "held_by", "outcome"):
            out[col] = out["worker_id"].map(h[col]) if col in h else None
    return out


def summons_record(
    worker_id: str, *, period: str, held_on: object, held_by: str, outcome: str, at: object = None
) -> pd.DataFrame:
    """A record of a summons held (one row of the ``summons`` table).

    Examples
    --------
    >>> r = summons_record("W-RC-430202", period="2026", held_on="2026-12-01",
    ...                    held_by="市河长办", outcome="限期整改", at="2026-12-01T08:00Z")
    >>> r[["worker_id", "held_on", "outcome"]].values.tolist()
    [['W-RC-430202', '2026-12-01', '限期整改']]
    """
    try:
        day = pd.Timestamp(str(held_on)).date().isoformat()
    except ValueError:
        raise GridkitError(
            f"summons: held on {held_on!r} is not a date.", hint="Write 2026-12-01."
        ) from None
    if not str(worker_id).strip() or not str(held_by).strip():
        raise GridkitError("summons: a record needs the chief (worker_id) and who held it.")
    at_ts = pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at)
    return pd.DataFrame(
        [
            {
                "worker_id": str(worker_id),
                "period": str(period),
                "held_on": day,
                "held_by": str(held_by),
                "outcome": str(outcome),
                "recorded_at": at_ts.isoformat(),
            }
        ]
    )


@dataclass
class ChiefAssessment:
    """The river chiefs' season, from a workspace's layers (:func:`chief_assessment`).

    Attributes
    ----------
    compliance
        :func:`gridkit.ops.chiefs.chief_compliance` (a row per appointment and rule).
    assessment
        :func:`assess_chiefs`.
    summons
        :func:`summons_list`.
    hits
        :func:`gridkit.ops.chiefs.section_hits`.

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, patrols = chief_demo()
    >>> season = chief_assessment({"units": units, "river_chiefs": chiefs,
    ...                            "patrols": patrols}, "2026-Q2")
    >>> season.summons[["worker_id", "level"]].values.tolist()
    [['W-V', 'village']]
    """

    compliance: pd.DataFrame
    assessment: pd.DataFrame
    summons: pd.DataFrame
    hits: pd.DataFrame

    def by_level(self) -> pd.DataFrame:
        """Appointments and rules met per level.

        Examples
        --------
        >>> from gridkit.synth.people import chief_demo
        >>> units, chiefs, patrols = chief_demo()
        >>> layers = {"units": units, "river_chiefs": chiefs, "patrols": patrols}
        >>> chief_assessment(layers, "2026-Q2").by_level().to_dict("records")
        ... # doctest: +NORMALIZE_WHITESPACE
        [{'level': 'county', 'chiefs': 1, 'rules': 1, 'compliant': 1, 'unverified': 0},
         {'level': 'village', 'chiefs': 1, 'rules': 1, 'compliant': 0, 'unverified': 1}]
        """
        c = self.compliance
        return (
            c.groupby("level", sort=False)
            .agg(
                chiefs=("chief_id", "nunique"),
                rules=("rule", "size"),
                compliant=("compliant", "sum"),
                unverified=("unverified", "sum"),
            )
            .reindex([lv for lv in CHIEF_LEVELS if lv in set(c["level"])])
            .reset_index()
            .astype({"compliant": int, "unverified": int})
        )


def chief_assessment(
    layers: Mapping[str, pd.DataFrame | None],
    period: str,
    *,
    level: str | None = None,
    rules: PatrolRules | str | Path | None = None,
    bottom_share: float = 0.1,
) -> ChiefAssessment:
    """Compliance, assessment and summons list of the river chiefs over a period, from a
    workspace's layers (``river_chiefs``, ``units``, ``patrols``; ``workers``,
    ``reports``, ``summons`` when present): what ``gridkit compliance``, ``gridkit
    summons``, ``/stats/chiefs`` and ``/stats/summons`` show.

    Examples
    --------
    >>> from gridkit.synth.people import chief_demo
    >>> units, chiefs, patrols = chief_demo()
    >>> s = chief_assessment({"units": units, "river_chiefs": chiefs, "patrols": patrols},
    ...                      "2026-Q2", level="county")
    >>> s.compliance[["chief_id", "compliant"]].values.tolist()
    [['RC-CAR', True]]
    """
    period_kind(period)
    chiefs_all = layers.get("river_chiefs")
    units = layers.get("units")
    if chiefs_all is None or units is None:
        raise GridkitError(
            "river chiefs' compliance needs the layers river_chiefs and units.",
            hint="Run it on a workspace with river units and chiefs (gridkit demo makes one).",
        )
    chiefs = duty_chiefs(chiefs_all, level=level)
    patrols = layers.get("patrols")
    if patrols is None:
        patrols = gpd.GeoDataFrame({"patrol_id": [], "worker_id": []}, geometry=[], crs=4326)
    workers = layers.get("workers")
    hits = section_hits(patrols, chiefs, units, rules=rules, workers=workers)
    comp = chief_compliance(patrols, chiefs, units, period, workers=workers, rules=rules, hits=hits)
    a, b = period_bounds(period)
    hits_in = hits[(hits["started_at"] >= a) & (hits["started_at"] < b)] if len(hits) else hits
    reports = layers.get("reports")
    assessment = assess_chiefs(
        comp,
        river_chiefs=chiefs,
        hits=hits_in,
        sections=section_units(chiefs, units),
        reports=reports,
        patrols=patrols,
    )
    summons = summons_list(
        assessment, bottom_share=bottom_share, held=layers.get("summons"), period=period
    )
    return ChiefAssessment(comp, assessment, summons, hits)
