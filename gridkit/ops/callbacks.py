"""回访 callbacks: after a case closes, the reporter is called back and answers.

Answers (``rules/callbacks.toml``): ``satisfied`` 满意, ``basically_satisfied`` 基本满意,
``dissatisfied`` 不满意 or ``unreachable`` 无法联系. A dissatisfied answer within
``within_days`` of closing reopens the case (``closed -> opened``, action ``reopen``,
as in the case model), at most ``max_reopens`` times per case; the callbacks layer
keeps every call. :func:`satisfaction` gives the figures per area, department and
worker that enter the assessment (回访满意率).

Examples
--------
>>> import pandas as pd
>>> reports = pd.DataFrame({"report_id": ["R1", "R2"], "status": ["closed", "closed"],
...     "closed_at": pd.to_datetime(["2026-05-02", "2026-05-02"], utc=True),
...     "admin_code": ["430202001001", "430202001002"]})
>>> calls = pd.DataFrame({"report_id": ["R1", "R2"],
...                       "result": ["不满意", "satisfied"], "at": ["2026-05-03"] * 2})
>>> change = record_callbacks(calls, reports=reports)
>>> change.reopened, change.reports["status"].tolist()
(['R1'], ['opened', 'closed'])
>>> change.events[["report_id", "action", "from_status", "to_status"]].values.tolist()
[['R1', 'reopen', 'closed', 'opened']]
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitError, format_rows
from gridkit.ops.cases import act
from gridkit.ops.reports import _events
from gridkit.ops.rulefiles import read_rules
from gridkit.ops.times import utc_scalar, utc_series

if TYPE_CHECKING:  # typing only: gridkit.ops.assess calls with_satisfaction
    from gridkit.ops.assess import Assessment

__all__ = [
    "CALLBACK_COLUMNS",
    "CallbackChange",
    "CallbackError",
    "CallbackRules",
    "callback_rules",
    "load_callback_rules",
    "record_callbacks",
    "satisfaction",
    "with_satisfaction",
]

CALLBACK_COLUMNS = ["callback_id", "report_id", "at", "result", "caller_id", "note"]
CLOSED, REOPENED = "closed", "opened"


class CallbackError(GridkitError, ValueError):
    """Callbacks that cannot be recorded (unknown answer, case not closed ...)."""


@dataclass(frozen=True)
class CallbackRules:
    """The callback rules (``rules/callbacks.toml``).

    Examples
    --------
    >>> r = callback_rules()
    >>> r.within_days, r.max_reopens, r.reopen_on, r.label("basically_satisfied")
    (15.0, 1, ('dissatisfied',), '基本满意')
    """

    results: dict[str, dict] = field(default_factory=dict)
    within_days: float = 15.0
    max_reopens: int = 1
    reopen_on: tuple[str, ...] = ("dissatisfied",)
    source: str = field(default="<defaults>", compare=False)

    def label(self, result: str) -> str:
        """The Chinese label of an answer."""
        return str(self.results.get(result, {}).get("label_zh", result))

    @property
    def weights(self) -> dict[str, float]:
        """Weight of each answer in the score (unreachable has none)."""
        return {k: float(v["weight"]) for k, v in self.results.items() if "weight" in v}


def load_callback_rules(path: str | Path | None = None) -> CallbackRules:
    """Read callback rules from a TOML file (default the packaged one).

    Examples
    --------
    >>> sorted(load_callback_rules().results)
    ['basically_satisfied', 'dissatisfied', 'satisfied', 'unreachable']
    """
    raw, source = read_rules("callbacks.toml", path, CallbackError)
    return CallbackRules(
        results=dict(raw.get("results", {})),
        within_days=float(raw.get("within_days", 15)),
        max_reopens=int(raw.get("max_reopens", 1)),
        reopen_on=tuple(raw.get("reopen_on", ["dissatisfied"])),
        source=source,
    )


@functools.lru_cache(maxsize=1)
def _packaged() -> CallbackRules:
    return load_callback_rules()


def callback_rules(rules: CallbackRules | str | Path | None = None) -> CallbackRules:
    """``rules`` itself, read from a path, or the packaged rules.

    Examples
    --------
    >>> callback_rules() is callback_rules()
    True
    """
    if isinstance(rules, CallbackRules):
        return rules
    return _packaged() if rules is None else load_callback_rules(rules)


class CallbackChange(NamedTuple):
    """What :func:`record_callbacks` did: the ``callbacks`` layer after (old and new
    calls), the ``reports`` after (reopened cases), the new ``events`` (one ``reopen``
    per reopened case) and the ``reopened`` report ids.

    Examples
    --------
    >>> import pandas as pd
    >>> change = CallbackChange(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ["R1"])
    >>> change.reopened
    ['R1']
    """

    callbacks: pd.DataFrame
    reports: pd.DataFrame
    events: pd.DataFrame
    reopened: list[str]


def _results(result: pd.Series, rules: CallbackRules) -> pd.Series:
    """Answer codes from codes or Chinese labels; unknown ones raise, rows named."""
    by_label = {str(v.get("label_zh")): k for k, v in rules.results.items()}
    text = result.astype("string").str.strip()
    code = text.where(text.isin(list(rules.results))).fillna(text.map(by_label))
    bad = code.isna().to_numpy()
    if bad.any():
        raise CallbackError(
            f"unknown callback answers at rows {format_rows(result.index[bad].tolist())}: "
            f"{', '.join(sorted(set(text[bad].fillna('<empty>'))))}.",
            hint="Answer with one of "
            + ", ".join(f"{k} ({rules.label(k)})" for k in rules.results)
            + f" ({rules.source}).",
        )
    return code.astype(object)


def _closed_at(reports: pd.DataFrame, events: pd.DataFrame | None) -> pd.Series:
    """When each case closed last: ``closed_at`` where the layer has it, else the last
    event into ``closed``."""
    out = pd.Series(pd.NaT, index=reports.index, dtype="datetime64[us, UTC]")
    if "closed_at" in reports.columns:
        out = utc_series(reports["closed_at"]).set_axis(reports.index)
    if events is not None and len(events):
        ev = events[(events["to_status"] == CLOSED).to_numpy()]
        if len(ev):
            last = utc_series(ev["at"]).groupby(ev["report_id"].astype(str).to_numpy()).max()
            out = out.fillna(utc_series(reports["report_id"].astype(str).map(last)))
    return out


def _reopens(reports: pd.DataFrame, events: pd.DataFrame | None) -> pd.Series:
    """How often each case was reopened already (events ``closed -> opened``)."""
    if events is None or not len(events):
        return pd.Series(0, index=reports.index)
    ev = events[((events["from_status"] == CLOSED) & (events["to_status"] == REOPENED)).to_numpy()]
    n = ev.groupby(ev["report_id"].astype(str).to_numpy()).size()
    return reports["report_id"].astype(str).map(n).fillna(0).astype(int)


def _check_cases(calls: pd.DataFrame, reports: pd.DataFrame) -> pd.Series:
    """Position of each call's case in ``reports``; unknown or unclosed cases raise."""
    ids = pd.Index(reports["report_id"].astype(str))
    pos = pd.Series(ids.get_indexer(calls["report_id"].astype(str)), index=calls.index)
    unknown = (pos < 0).to_numpy()
    if unknown.any():
        raise CallbackError(
            f"callbacks at rows {format_rows(calls.index[unknown].tolist())} name no case: "
            f"{', '.join(sorted(set(calls['report_id'][unknown].astype(str))))}.",
            hint="Check the report ids against the workspace's reports.",
        )
    status = reports["status"].astype(str).to_numpy()[pos.to_numpy()]
    open_ = status != CLOSED
    if open_.any():
        raise CallbackError(
            f"callbacks at rows {format_rows(calls.index[open_].tolist())} are for cases "
            f"not closed ({', '.join(sorted(set(status[open_])))}).",
            hint="Call back after a case closes (结案后回访).",
        )
    return pos


def record_callbacks(
    calls: pd.DataFrame,
    *,
    reports: pd.DataFrame,
    events: pd.DataFrame | None = None,
    existing: pd.DataFrame | None = None,
    rules: CallbackRules | str | Path | None = None,
    at: object = None,
    actor_id: str = "callback",
) -> CallbackChange:
    """Record callbacks; a dissatisfied answer reopens its case per the rules.

    Parameters
    ----------
    calls
        ``report_id``, ``result`` (a code or its Chinese label: 满意, 基本满意, 不满意,
        无法联系), optional ``at`` (default ``at``), ``caller_id``, ``note``.
    reports
        The reports layer: each call's case must be ``closed``.
    events
        The ``report_events``: when cases closed (without ``closed_at``) and how often
        callbacks reopened them.
    existing
        The callbacks recorded before (ids continue from them).
    rules
        :class:`CallbackRules` or a path; default the packaged ones.
    at
        Time of recording (UTC; default now), and of calls without ``at``.
    actor_id
        The events' actor when a call has no ``caller_id``.

    Returns
    -------
    CallbackChange

    Raises
    ------
    CallbackError
        An unknown answer, or a call for a case that is unknown or not closed (rows
        named).

    Examples
    --------
    A late dissatisfied answer (20 days after closing) is recorded, not reopened:

    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1"], "status": ["closed"],
    ...                         "closed_at": pd.to_datetime(["2026-05-01"], utc=True)})
    >>> calls = pd.DataFrame({"report_id": ["R1"], "result": ["dissatisfied"],
    ...                       "at": ["2026-05-21"]})
    >>> c = record_callbacks(calls, reports=reports)
    >>> c.reopened, c.callbacks[["callback_id", "result"]].values.tolist()
    ([], [['CB000001', 'dissatisfied']])
    """
    rules = callback_rules(rules)
    at_ts = utc_scalar(at, name="at")
    new = calls.copy()
    new["result"] = _results(new["result"], rules)
    new["at"] = utc_series(new["at"]).fillna(at_ts) if "at" in new.columns else at_ts
    pos = _check_cases(new, reports)
    old = existing if existing is not None else pd.DataFrame(columns=CALLBACK_COLUMNS)
    start = len(old) + 1
    new["callback_id"] = [f"CB{i:06d}" for i in range(start, start + len(new))]
    for col in ("caller_id", "note"):
        if col not in new.columns:
            new[col] = None
    new = new[CALLBACK_COLUMNS + [c for c in new.columns if c not in CALLBACK_COLUMNS]]

    closed_at = _closed_at(reports, events).to_numpy()[pos.to_numpy()]
    done = _reopens(reports, events).to_numpy()[pos.to_numpy()]
    late = (new["at"].to_numpy() - closed_at) > np.timedelta64(int(rules.within_days * 86400), "s")
    wants = new["result"].isin(rules.reopen_on).to_numpy() & ~pd.isna(late) & ~late
    wants &= done < rules.max_reopens
    # one reopen per case even when several calls ask: the first (by time) does it
    order = new.assign(_w=wants, _p=pos.to_numpy()).sort_values("at", kind="stable")
    first = order[order["_w"]].drop_duplicates("_p")
    rows = first["_p"].to_numpy(dtype=int)
    ids = reports["report_id"].astype(str).to_numpy()[rows]
    callers = first["caller_id"].where(first["caller_id"].notna(), actor_id).astype(str)
    notes = first["note"].astype("string").fillna("")
    out, steps = reports.copy(), [_events([])]
    reasons = ("回访不满意, 重办 / dissatisfied callback, reopened " + notes).str.strip()
    # the case workflow's own step (a new 派遣 clock, the history row), case by case so
    # each keeps its caller's words: reopens are few
    for rid, who, when, why in zip(ids, callers, first["at"], reasons, strict=True):
        out, step = act(out, rid, "reopen", actor_id=who, at=when, note=why)
        steps.append(step)
    ev = pd.concat(steps, ignore_index=True)
    both = pd.concat([old, new], ignore_index=True) if len(old) else new.reset_index(drop=True)
    return CallbackChange(both, out, ev, ids.tolist())


def satisfaction(
    callbacks: pd.DataFrame,
    reports: pd.DataFrame,
    *,
    by: str = "admin_code",
    level: str | None = None,
    start: object = None,
    end: object = None,
    rules: CallbackRules | str | Path | None = None,
) -> pd.DataFrame:
    """Satisfaction per area, department or worker: the last answer per case counts.

    Parameters
    ----------
    callbacks
        The callbacks layer.
    reports
        The reports (``admin_code``, ``lead_department_id``, ``assignee_id``).
    by
        ``admin_code`` (area), ``lead_department_id`` (department) or
        ``assignee_id`` (the grid worker of the case's unit).
    level
        With ``by="admin_code"``: the areas at this level (``county``, ``township``
        ...; default the cases' own codes).
    start, end
        Calls in ``[start, end)`` only (UTC).
    rules
        For the answers' weights.

    Returns
    -------
    pandas.DataFrame
        One row per group (the ``by`` column, renamed ``department_id`` or
        ``worker_id`` for departments and workers): ``callbacks`` (cases called),
        ``answered``, one count per answer, ``satisfaction_rate`` (satisfied or
        basically satisfied, of the answered) and ``satisfaction_score`` (the
        answers' mean weight, 0-100).

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1", "R2", "R3"],
    ...                         "admin_code": ["430202001001", "430202001002", "430203001001"]})
    >>> calls = pd.DataFrame({"report_id": ["R1", "R2", "R3", "R3"],
    ...     "result": ["satisfied", "basically_satisfied", "dissatisfied", "satisfied"],
    ...     "at": pd.to_datetime(["2026-05-01", "2026-05-01", "2026-05-01", "2026-05-09"],
    ...                          utc=True)})
    >>> s = satisfaction(calls, reports, level="county")
    >>> s[["admin_code", "answered", "satisfaction_rate", "satisfaction_score"]].values.tolist()
    [['430202', 2, 1.0, 90.0], ['430203', 1, 1.0, 100.0]]
    """
    rules = callback_rules(rules)
    cb = callbacks.assign(at=utc_series(callbacks["at"]))
    if start is not None:
        cb = cb[(cb["at"] >= utc_scalar(start, name="start")).to_numpy()]
    if end is not None:
        cb = cb[(cb["at"] < utc_scalar(end, name="end")).to_numpy()]
    last = cb.sort_values("at", kind="stable").drop_duplicates("report_id", keep="last")
    key = reports.set_index(reports["report_id"].astype(str))[by]
    group = last["report_id"].astype(str).map(key)
    if by == "admin_code" and level is not None:
        group = codes.ancestor(group.astype(object), level)
    name = {"lead_department_id": "department_id", "assignee_id": "worker_id"}.get(by, by)
    last = last.assign(**{name: group.to_numpy()}).dropna(subset=[name])
    counts = pd.crosstab(last[name], last["result"]).reindex(
        columns=list(rules.results), fill_value=0
    )
    weights = pd.Series(rules.weights)
    answered = counts[weights.index].sum(axis=1)
    good = counts[[c for c in ("satisfied", "basically_satisfied") if c in counts]].sum(axis=1)
    out = counts.assign(
        callbacks=counts.sum(axis=1),
        answered=answered,
        satisfaction_rate=(good / answered.where(answered > 0)).round(4),
        satisfaction_score=(
            (counts[weights.index] * weights).sum(axis=1) / answered.where(answered > 0) * 100
        ).round(1),
    )
    cols = ["callbacks", "answered", *rules.results, "satisfaction_rate", "satisfaction_score"]
    return out[cols].reset_index().rename_axis(columns=None)


_LEVEL_OF_DIGITS = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}
#: Chinese headers of the satisfaction columns (for the assessment's XLSX)
HEADERS_ZH = {"callbacks": "回访数", "satisfaction_rate": "回访满意率"}


def with_satisfaction(
    assessment: Assessment,
    callbacks: pd.DataFrame | None,
    reports: pd.DataFrame | None,
    *,
    area_digits: int | None = None,
    start: object = None,
    end: object = None,
    rules: CallbackRules | str | Path | None = None,
) -> Assessment:
    """The assessment with ``callbacks`` and ``satisfaction_rate`` (回访满意率) in its
    worker, department and area tables (joined on ``worker_id``, ``department_id``,
    ``admin_code`` at ``area_digits``); scores and ranks unchanged.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.ops.assess import assess
    >>> compliance = pd.DataFrame({"worker_id": ["W1", "W2"], "compliant": [True, False]})
    >>> reports = pd.DataFrame({"report_id": ["R1"], "assignee_id": ["W1"],
    ...                         "lead_department_id": ["D1"], "admin_code": ["430202001001"]})
    >>> calls = pd.DataFrame({"report_id": ["R1"], "result": ["satisfied"], "at": ["2026-05-01"]})
    >>> a = with_satisfaction(assess(compliance=compliance), calls, reports)
    >>> a.workers[["worker_id", "callbacks", "satisfaction_rate"]].values.tolist()
    [['W1', 1, 1.0], ['W2', 0, nan]]
    """
    if callbacks is None or reports is None or not len(callbacks):
        return assessment
    level = _LEVEL_OF_DIGITS.get(area_digits) if area_digits else None
    joins = {
        "workers": ("assignee_id", "worker_id", None),
        "departments": ("lead_department_id", "department_id", None),
        "areas": ("admin_code", "admin_code", level),
    }
    tables = {}
    for name in joins:
        table = getattr(assessment, name)
        by, key, lv = joins[name]
        if by not in reports.columns or key not in table.columns:
            tables[name] = table
            continue
        s = satisfaction(callbacks, reports, by=by, level=lv, start=start, end=end, rules=rules)
        s = s.set_index(key)[["callbacks", "satisfaction_rate"]]
        out = table.join(s, on=key)
        out["callbacks"] = out["callbacks"].fillna(0).astype(int)
        tables[name] = out
    return dataclasses.replace(assessment, **tables)
