"""Problem reports (案件): rules, intake (采集), duplicates, assignment checks, retention.

The case workflow after intake (立案 open, 派遣 dispatch, 处置 handle, 反馈 report back,
核查 verify, 结案 close, escalation 督办) is :mod:`gridkit.ops.cases`. Every function is
pure: it takes the ``reports`` layer (and the rules) and returns a :class:`ReportChange`
with the new state of the reports and the ``report_events`` rows (the case history) for
what changed. Persisting both is the store's job.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import Point
>>> from gridkit.synth.ops import grid_units
>>> units = grid_units(2, 2)
>>> new = gpd.GeoDataFrame({"category": ["street_light"], "source": ["hotline"],
...                         "reported_at": ["2026-05-01T08:00Z"]},
...                        geometry=[Point(113.1025, 27.8025)], crs=4326)
>>> reports, events = intake(new, units=units)
>>> reports[["report_id", "status", "unit_id"]].iloc[0].tolist()
['R0000001', 'collected', '430202001000000']
>>> events[["action", "to_status"]].iloc[0].tolist()
['collect', 'collected']
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import WGS84, degrees_around, lonlat_to_local_metric, to_wgs84
from gridkit.errors import GridkitError, GridkitWarning, format_rows
from gridkit.ops.locate import _lowest_hit, locate
from gridkit.ops.rulefiles import read_rules
from gridkit.ops.times import utc_scalar, utc_series
from gridkit.ops.worktime import (
    CalendarError,
    WorkCalendar,
    _deadline_us,
    _limit_arrays,
    _utc_times,
    _utc_us,
    add_working_hours,
    stage_limits,
    work_calendar,
    working_hours_between,
)

__all__ = [
    "EVENT_COLUMNS",
    "LEGACY_STATUS",
    "Action",
    "AssignmentError",
    "DuplicatePairs",
    "ReportChange",
    "ReportError",
    "ReportRules",
    "TransitionError",
    "check_assignment",
    "duplicate_pairs",
    "expired_contacts",
    "intake",
    "load_report_rules",
    "normalise_reports",
    "parent_admin_code",
    "purge_contacts",
    "report_rules",
    "stage_due",
]

EVENT_COLUMNS = [
    "report_id",
    "at",
    "actor_id",
    "action",
    "from_status",
    "to_status",
    "note",
    "evidence",
    "due_at",
]
#: statuses of the first wave's lifecycle, read as the stage they meant
LEGACY_STATUS = {
    "reported": "collected",
    "assigned": "dispatched",
    "in_progress": "handling",
    "resolved": "reported_back",
}
_STR_COLUMNS = [
    "report_id",
    "category",
    "description",
    "source",
    "status",
    "unit_id",
    "admin_code",
    "assignee_id",
    "lead_department_id",
    "support_department_ids",
    "duplicate_of",
    "reporter_contact",
    "resolved_by",
    "evidence",
    "escalated_to",
    "handler_reason",
]
_STRING = pd.array([], dtype="string").dtype  # what astype("string") gives: NA for missing
_TIME_COLUMNS = [
    "reported_at",
    "opened_at",
    "due_at",
    "resolved_at",
    "closed_at",
    "paused_at",
    "last_escalated_at",
    "escalated_due_at",
]
_UTC_US = pd.DatetimeTZDtype(unit="us", tz="UTC")
_INT_COLUMNS = ["extensions", "returns", "reworks", "escalation_level"]


class ReportError(GridkitError, ValueError):
    """A report cannot be taken in or routed (unknown category, no place, ...)."""


class TransitionError(GridkitError, ValueError):
    """A status change the rules do not allow (wrong order, same person verifying, ...)."""


class AssignmentError(ReportError):
    """An assignee the rules refuse: ``reason`` is ``"unknown"`` (no such worker),
    ``"outside"`` (the worker's area and the case's are unrelated) or ``"not_yours"``
    (the caller's role or scope may not choose that worker)."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class ReportChange(NamedTuple):
    """New state of the ``reports`` layer and the ``report_events`` rows for the change.

    What every step of the case workflow returns; a tuple, so ``reports, events = ...``.

    Examples
    --------
    >>> import pandas as pd
    >>> new = pd.DataFrame({"category": ["cctv"], "source": ["patrol"],
    ...                     "admin_code": ["430202001"]})
    >>> change = intake(new, at="2026-05-01T08:00Z")
    >>> change.reports["status"].tolist(), change.events.columns.tolist() == EVENT_COLUMNS
    (['collected'], True)
    >>> reports, events = change
    """

    reports: gpd.GeoDataFrame
    events: pd.DataFrame


@dataclass(frozen=True)
class Action:
    """A step of the case workflow (``[actions.NAME]`` in ``reports.toml``).

    ``from_`` the statuses it may happen in, ``to`` the new status (None: unchanged),
    ``by`` who may take it (``dispatcher``, ``supervisor``, ``department``,
    ``verifier``, ``system``), ``reason`` whether a note is required.

    Examples
    --------
    >>> a = report_rules().actions["return"]
    >>> a.label_zh, a.from_, a.to, a.by, a.reason
    ('退回', ('dispatched', 'handling'), 'returned', ('department',), True)
    """

    name: str
    label_zh: str
    from_: tuple[str, ...]
    to: str | None
    by: tuple[str, ...]
    reason: bool = False


def _actions(data: Mapping[str, object]) -> dict[str, Action]:
    out = {}
    for name, spec in dict(data).items():  # type: ignore[call-overload]
        s = dict(spec)
        out[name] = Action(
            name,
            str(s.get("label_zh", name)),
            tuple(s.get("from", ())),
            s.get("to"),
            tuple(s.get("by", ())),
            bool(s.get("reason", False)),
        )
    return out


def _hours(text: object) -> float:
    """``"10d"`` (calendar days) or ``"36h"`` or a number of hours, as hours."""
    s = str(text).strip().lower()
    if s.endswith("d"):
        return float(s[:-1]) * 24
    return float(s[:-1] if s.endswith("h") else s)


@dataclass(frozen=True)
class ReportRules:
    """Report categories, sources, the stages and actions of a case (see ``reports.toml``).

    Read them with :func:`load_report_rules` (an edited copy of the TOML) or
    :func:`report_rules` (the packaged ones); :meth:`from_dict` builds them in code.

    Examples
    --------
    >>> rules = report_rules()
    >>> [(k, rules.label(k)) for k in ("street_light", "cctv", "sand_mining")]
    [('street_light', '路灯损坏'), ('cctv', '监控老旧'), ('sand_mining', '非法采砂')]
    >>> rules.due_in_h("sand_mining"), rules.evidence("sand_mining"), rules.sources["hotline"]
    (48.0, ('before', 'after'), '热线(12345)')
    >>> rules.transitions["reported_back"], rules.max_extensions
    (('verified', 'handling'), 2)
    >>> rules.stages["dispatched"], rules.actions["dispatch"].by, rules.auto_open("street_light")
    ('派遣', ('dispatcher',), True)

    A category not in the rules is labelled by its key:

    >>> own = ReportRules.from_dict({"categories": {"oil_spill": {"label_zh": "油污"}},
    ...                              "sources": {"patrol": "巡查发现"}})
    >>> own.label("oil_spill"), own.label("litter"), own.due_in_h("oil_spill")
    ('油污', 'litter', 168.0)
    """

    categories: Mapping[str, Mapping[str, object]]
    sources: Mapping[str, str]
    actions: Mapping[str, Action]
    stages: Mapping[str, str] = field(default_factory=dict)
    stage_clock: Mapping[str, str] = field(default_factory=dict)
    duplicate_radius_m: float = 50.0
    open_statuses: tuple[str, ...] = (
        "collected",
        "opened",
        "dispatched",
        "handling",
        "reported_back",
        "verified",
        "returned",
    )
    max_extensions: int = 2
    max_extension_h: float = 240.0
    escalation_repeat_h: float = 72.0
    escalation_max_level: int = 3
    source: str = field(default="<defaults>", compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = "<dict>") -> ReportRules:
        """Build rules from a parsed TOML table; the stages and actions default to the
        packaged ones."""
        esc = dict(data.get("escalation", {}))  # type: ignore[arg-type]
        base = None if "actions" in data else _packaged_rules()
        return cls(
            categories={k: dict(v) for k, v in dict(data["categories"]).items()},  # type: ignore[arg-type]
            sources=dict(data["sources"]),  # type: ignore[arg-type]
            actions=_actions(data["actions"]) if base is None else base.actions,  # type: ignore[arg-type]
            stages=dict(data.get("stages", base.stages if base else {})),  # type: ignore[arg-type]
            stage_clock=dict(data.get("stage_clock", base.stage_clock if base else {})),  # type: ignore[arg-type]
            duplicate_radius_m=float(data.get("duplicate_radius_m", 50.0)),  # type: ignore[arg-type]
            open_statuses=tuple(data.get("open_statuses", cls.open_statuses)),  # type: ignore[arg-type]
            max_extensions=int(data.get("max_extensions", 2)),  # type: ignore[arg-type]
            max_extension_h=_hours(data.get("max_extension", "10d")),
            escalation_repeat_h=float(esc.get("repeat_h", 72.0)),
            escalation_max_level=int(esc.get("max_level", 3)),
            source=source,
        )

    @property
    def transitions(self) -> dict[str, tuple[str, ...]]:
        """Status -> the statuses an action may move it to (derived from the actions)."""
        out: dict[str, list[str]] = {}
        for a in self.actions.values():
            for f in a.from_:
                if a.to and a.to not in out.setdefault(f, []):
                    out[f].append(a.to)
        return {k: tuple(v) for k, v in out.items()}

    def due_in_h(self, category: str) -> float:
        return float(self.categories[category].get("due_in_h", 168))  # type: ignore[arg-type]

    def evidence(self, category: str) -> tuple[str, ...]:
        return tuple(self.categories[category].get("evidence", ()))  # type: ignore[arg-type]

    def label(self, category: str) -> str:
        return str(self.categories.get(category, {}).get("label_zh", category))

    def auto_open(self, category: str) -> bool:
        """Whether the system opens (立案) and dispatches a case of this category itself."""
        return bool(self.categories.get(category, {}).get("auto_open", False))


def load_report_rules(path: str | Path | None = None, **overrides: object) -> ReportRules:
    """Read report rules from a TOML file (default: the packaged ``rules/reports.toml``).

    Parameters
    ----------
    path
        An edited copy of ``reports.toml``; ``None`` for the defaults.
    **overrides
        Top-level values to replace, e.g. ``duplicate_radius_m=100``.

    Examples
    --------
    >>> rules = load_report_rules()
    >>> rules.label("sand_mining"), rules.due_in_h("sand_mining")
    ('非法采砂', 48.0)
    """
    data, source = read_rules("reports.toml", path, ReportError)
    data.update(overrides)
    return ReportRules.from_dict(data, source=source)


@functools.cache
def _packaged_rules() -> ReportRules:
    return load_report_rules()  # frozen, so one shared copy is safe


def report_rules(rules: ReportRules | str | Path | None = None) -> ReportRules:
    """The rules to apply: ``rules`` itself, read from a path, or the packaged ones.

    The packaged rules are read once and shared (they are frozen), so this is cheap
    enough to call for every request.

    Parameters
    ----------
    rules
        :class:`ReportRules`, a path to an edited ``reports.toml``, or ``None`` for
        the packaged ``rules/reports.toml``.

    Examples
    --------
    >>> report_rules() is report_rules()
    True
    >>> "street_light" in report_rules().categories, report_rules().duplicate_radius_m
    (True, 50.0)
    """
    if isinstance(rules, ReportRules):
        return rules
    return _packaged_rules() if rules is None else load_report_rules(rules)


# --------------------------------------------------------------------------- deadlines


def _in_calendar(compute, times: pd.Series | Callable[[], pd.Series], calendar: object):
    """``compute(calendar)`` in the workday calendar; where it lacks a year the times
    reach, again with those years counted as plain weekdays (no holidays, no 调休) and a
    warning naming the file to complete: a service keeps taking cases on 1 January
    while the new year's schedule is added. (``times``: or what makes them, only
    needed then.)"""
    cal = work_calendar(calendar)  # type: ignore[arg-type]
    try:
        return compute(cal)
    except CalendarError:
        pass
    if callable(times):
        times = times()
    years = times.dt.tz_convert("Asia/Shanghai").dt.year.dropna().astype(int)
    low, high = int(years.min()), int(years.max()) + 1  # deadlines may run into the next
    missing = sorted(set(range(low, high + 1)) - set(cal.years))
    warnings.warn(
        f"the workday calendar has no year {', '.join(map(str, missing))} ({cal.source}): "
        "deadlines there count weekdays only, without public holidays or 调休; add the "
        "year's schedule to the file.",
        GridkitWarning,
        stacklevel=3,
    )
    span = range(min(cal.years[0], low), max(cal.years[-1], high) + 1)
    return compute(dataclasses.replace(cal, years=tuple(span)))


def stage_due(
    start: object,
    categories: object,
    statuses: object,
    *,
    rules: ReportRules | str | Path | None = None,
    handlers: object = None,
    calendar: WorkCalendar | str | Path | None = None,
) -> pd.Series:
    """The deadline of each case's stage, counted from ``start`` in working time: the
    limit of the stage's clock (``[stage_clock]`` of ``reports.toml``: open 立案,
    dispatch 派遣, handle 处置, verify 核查) for its category (``[stage_limits]`` of
    ``handlers.toml``, in the calendar of ``workdays.toml``); NaT for a stage without a
    clock (verified, closed, rejected).

    Examples
    --------
    Friday 13 February 2026, 10:00 Beijing time: a street light to handle in 3 working
    days (the Spring Festival holiday between), a case to open in 4 working hours:

    >>> due = stage_due(["2026-02-13T02:00Z"] * 3, ["street_light"] * 3,
    ...                 ["dispatched", "collected", "closed"])
    >>> [t.tz_convert("Asia/Shanghai").strftime("%m-%d %H:%M") if pd.notna(t) else "-"
    ...  for t in due]
    ['02-25 17:30', '02-13 16:00', '-']
    """
    begin = _starts(start)
    utc, missing = _utc_us(begin)
    due, none = _stage_due_us(utc, missing, categories, statuses, rules=rules,
                              handlers=handlers, calendar=calendar)  # fmt: skip
    return _utc_times(due, none, begin.index)


def _stage_due_us(
    utc: np.ndarray,
    missing: np.ndarray,
    categories: object,
    statuses: object,
    *,
    rules: ReportRules | str | Path | None = None,
    handlers: object = None,
    calendar: WorkCalendar | str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stage_due` of starts in UTC microseconds (``missing`` where none): the
    deadlines in UTC microseconds and where there is none (no Series on the way: the
    report writer's batches are a few rows)."""
    rules = report_rules(rules)
    limits = stage_limits(handlers)
    cats = np.atleast_1d(np.asarray(categories, dtype=object))
    # the stage's clock per distinct status (a batch has one or two)
    keys, uniq = pd.factorize(np.atleast_1d(np.asarray(statuses, dtype=object)))
    clock = np.array([*(rules.stage_clock.get(u) for u in uniq), None], dtype=object)[keys]
    due, none = np.zeros(len(utc), dtype="int64"), np.ones(len(utc), dtype=bool)
    timed = ~missing & pd.notna(clock)
    for key in pd.unique(clock[timed]):
        m = timed & (clock == key)
        amount, in_days = _limit_arrays(limits, cats[m], str(key), int(m.sum()))
        due[m], none[m] = _in_calendar(
            lambda cal, m=m, a=amount, d=in_days: _deadline_us(cal, utc[m], missing[m], a, d),
            lambda m=m: _utc_times(utc[m], missing[m], pd.RangeIndex(int(m.sum()))),
            calendar,
        )
    return due, none


def _starts(start: object) -> pd.Series:
    """Start times as UTC (``datetime64[us, UTC]``), indexed 0..n-1; a column of
    that type is taken as it is."""
    if isinstance(start, pd.Series) and start.dtype == _UTC_US:
        return start.reset_index(drop=True)
    arr = np.atleast_1d(np.asarray(start))
    if arr.dtype == "datetime64[us]":  # a UTC column's numpy values, naive
        return _utc_times(arr.view("int64"), np.isnat(arr), pd.RangeIndex(len(arr)))
    return utc_series(pd.Series(list(np.atleast_1d(np.asarray(start, dtype=object)))))


def _worked_h(start: pd.Series, end: pd.Series, calendar: object = None) -> np.ndarray:
    """Working hours between two instants (a paused case's clock stood still)."""
    hours = _in_calendar(
        lambda cal: working_hours_between(start, end, calendar=cal),
        pd.concat([start, end]),
        calendar,
    )
    return hours.to_numpy(dtype=float, na_value=0.0).clip(min=0)


def _add_working_h(due: pd.Series, hours: np.ndarray, calendar: object = None) -> pd.Series:
    return _in_calendar(lambda cal: add_working_hours(due, hours, calendar=cal), due, calendar)


# --------------------------------------------------------------------------- frames


def normalise_reports(reports: pd.DataFrame) -> gpd.GeoDataFrame:
    """A copy of a ``reports`` layer with every lifecycle column present and typed.

    Strings become pandas ``string`` (``<NA>`` for missing), times UTC
    (``datetime64[us, UTC]``), counters ``int64``; a frame without geometry gets an
    empty WGS84 one. Every function of this module works on this form and hands it
    on; a frame already in it is only copied.

    Parameters
    ----------
    reports
        A ``reports`` layer (or new reports), GeoDataFrame or plain DataFrame.

    Returns
    -------
    geopandas.GeoDataFrame
        Same rows and index, every column of the report lifecycle present.

    Examples
    --------
    >>> import pandas as pd
    >>> r = normalise_reports(pd.DataFrame({"report_id": ["R1"], "category": ["cctv"],
    ...                                     "reported_at": ["2026-05-01T08:00+08:00"]}))
    >>> str(r["reported_at"].iloc[0]), bool(r["status"].isna().all()), int(r["returns"].iloc[0])
    ('2026-05-01 00:00:00+00:00', True, 0)
    >>> str(r["status"].dtype), r.crs.to_epsg()
    ('string', 4326)
    """
    if _is_normalised(reports):
        return reports.copy()  # type: ignore[return-value]
    if isinstance(reports, gpd.GeoDataFrame) and reports._geometry_column_name in reports:
        out = reports.copy()
    else:
        out = gpd.GeoDataFrame(reports.copy(), geometry=[None] * len(reports), crs=WGS84)
    # as arrays: every column is ``out``'s (its index), and a Series whose index is
    # another object, however equal, is aligned by the constructor (~a third of the cost)
    arrays = _normalised_columns(out)
    return gpd.GeoDataFrame(
        arrays, index=out.index, geometry=out._geometry_column_name, crs=out.crs, copy=False
    )


def _normalised_columns(out: gpd.GeoDataFrame) -> dict[object, object]:
    """The columns of :func:`normalise_reports`' answer for ``out`` (a GeoDataFrame of
    reports the caller owns), typed, in order, as arrays (no frame built)."""
    n = len(out)
    # the columns are built first and the frame once: ~20 assignments into a
    # GeoDataFrame cost more than the work itself on the one-row frames of the API
    cols: dict[object, object] = dict(out.items())
    for col in _STR_COLUMNS:
        if col not in cols:
            cols[col] = pd.array([None] * n, dtype=_STRING)  # the dtype, not its name:
        elif cols[col].dtype != _STRING:  # type: ignore[attr-defined]  # no registry lookup
            cols[col] = cols[col].astype(_STRING)  # type: ignore[attr-defined]
    for col in _TIME_COLUMNS:
        cols[col] = (
            utc_series(cols[col])
            if col in cols
            else pd.Series(pd.NaT, index=out.index, dtype=_UTC_US)
        )
    for col in _INT_COLUMNS:
        if col not in cols:
            cols[col] = np.zeros(n, dtype="int64")
        elif cols[col].dtype != "int64":  # type: ignore[attr-defined]
            cols[col] = pd.to_numeric(cols[col]).fillna(0).astype("int64")  # type: ignore[call-overload]
    # straight from the columns, not copied again (a GeoDataFrame made from a DataFrame
    # copies every column); copy-on-write keeps the caller's frame apart
    status = cols["status"]
    if status.isin(list(LEGACY_STATUS)).any():  # type: ignore[attr-defined]
        cols["status"] = status.replace(LEGACY_STATUS)  # type: ignore[attr-defined]
    return {k: v.array if isinstance(v, pd.Series) else v for k, v in cols.items()}


def _is_normalised(reports: pd.DataFrame) -> bool:
    """Whether ``reports`` already has every lifecycle column with its type (the
    output of :func:`normalise_reports`, handed from one step to the next)."""
    if not isinstance(reports, gpd.GeoDataFrame) or reports.crs is None:
        return False
    if reports._geometry_column_name not in reports:
        return False
    dtypes = dict(zip(reports.columns, reports.dtypes, strict=True))
    utc_us = pd.DatetimeTZDtype(unit="us", tz="UTC")
    return (
        all(dtypes.get(c) == _STRING for c in _STR_COLUMNS)
        and all(dtypes.get(c) == utc_us for c in _TIME_COLUMNS)
        and all(dtypes.get(c) == "int64" for c in _INT_COLUMNS)
    )


def _events(rows: list[dict]) -> pd.DataFrame:
    # built column by column with their final types (one frame, no conversions after)
    cols: dict[str, object] = {}
    for col in EVENT_COLUMNS:
        values = [r.get(col) for r in rows]
        if col in ("at", "due_at"):
            cols[col] = (
                utc_series(pd.Series(values, dtype=object))
                if any(v is not None for v in values)
                else pd.Series(pd.NaT, index=pd.RangeIndex(len(rows)), dtype=_UTC_US)
            )
        else:
            cols[col] = pd.array(
                [None if v is None or pd.isna(v) else str(v) for v in values], dtype=_STRING
            )
    return pd.DataFrame(cols)


def _positions(reports: pd.DataFrame, report_ids: object) -> np.ndarray:
    ids = [report_ids] if isinstance(report_ids, str) else list(report_ids)  # type: ignore[arg-type]
    lookup = pd.Index(reports["report_id"].astype(str))
    pos = lookup.get_indexer([str(i) for i in ids])
    if (pos < 0).any():
        missing = [i for i, p in zip(ids, pos, strict=True) if p < 0]
        raise ReportError(
            f"unknown report_id {format_rows(missing)}.",
            hint="Pass ids present in the reports layer.",
        )
    return pos


# --------------------------------------------------------------------------- intake


def intake(
    new: pd.DataFrame,
    *,
    units: gpd.GeoDataFrame | None = None,
    existing: gpd.GeoDataFrame | None = None,
    rules: ReportRules | str | Path | None = None,
    crs: object = None,
    at: object = None,
    actor_id: str | None = None,
    keep_existing: bool = True,
) -> ReportChange:
    """Take in new reports: check them, place them, link likely duplicates.

    Parameters
    ----------
    new
        New reports: ``category``, ``source``, optional ``description``,
        ``reported_at`` (default ``at``), ``report_id`` (generated when missing),
        ``reporter_contact``, and a Point geometry. Hotline reports with only an
        address have no geometry and carry ``unit_id`` or ``admin_code`` chosen by hand.
    units
        The ``units`` layer, to put points in units (:func:`gridkit.locate`) and to
        fill ``admin_code``.
    existing
        Reports already in the system: ids continue from them, and a new report within
        ``rules.duplicate_radius_m`` of one of their open reports of the same category
        is linked to it through ``duplicate_of``.
    rules
        :class:`ReportRules` or a path to a ``reports.toml``; default the packaged one.
    crs
        Declared datum of the new points (e.g. ``"gcj02"`` from phone map SDKs).
    at
        Intake time (UTC; default now); also the default ``reported_at``.
    actor_id
        Who took the reports in (the event's ``actor_id``); default the reporter's
        ``reporter_id`` column when present.
    keep_existing
        False: ``reports`` of the answer holds the new rows only (a caller writing
        them does not need ``existing`` again, nor its copy).

    Returns
    -------
    ReportChange
        ``reports``: ``existing`` plus the new rows with ``status="collected"``,
        ``unit_id``, ``admin_code``, ``duplicate_of``; ``events``: one ``None ->
        collected`` row per new report (action ``collect``).

    Raises
    ------
    ReportError
        Unknown category or source, or a report with neither a point nor a
        hand-chosen ``unit_id``/``admin_code``.

    Examples
    --------
    Two calls about the same street light, 22 m apart, and a camera elsewhere:

    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridkit.synth.ops import grid_units
    >>> units = grid_units(2, 2)  # four 500 m cells of village 430202001
    >>> new = gpd.GeoDataFrame(
    ...     {"category": ["street_light", "street_light", "cctv"],
    ...      "source": ["hotline", "resident", "patrol"],
    ...      "reported_at": ["2026-05-01T08:00Z", "2026-05-01T08:30Z", "2026-05-01T09:00Z"]},
    ...     geometry=[Point(113.1025, 27.8025), Point(113.1025, 27.8027),
    ...               Point(113.1075, 27.8075)], crs=4326)
    >>> reports, events = intake(new, units=units, at="2026-05-01T10:00Z")
    >>> reports[["report_id", "unit_id", "status", "duplicate_of"]].values.tolist()
    [['R0000001', '430202001000000', 'collected', <NA>],
     ['R0000002', '430202001000000', 'collected', 'R0000001'],
     ['R0000003', '430202001000003', 'collected', <NA>]]
    >>> reports["admin_code"].unique().tolist(), events["note"].iloc[1]
    (['430202001'], '路灯损坏; source resident; likely duplicate of R0000001')

    A later report continues the ids of the layer and links to its open reports:

    >>> more = gpd.GeoDataFrame({"category": ["street_light"], "source": ["patrol"]},
    ...                         geometry=[Point(113.1026, 27.8025)], crs=4326)
    >>> reports, events = intake(more, units=units, existing=reports, at="2026-05-02T10:00Z")
    >>> len(reports), reports[["report_id", "duplicate_of"]].iloc[-1].tolist()
    (4, ['R0000004', 'R0000001'])
    """
    rules = report_rules(rules)
    at_ts = utc_scalar(at, name="at")
    if crs is None and len(new) <= FEW_REPORTS:
        few = _intake_few(new, units=units, existing=existing, rules=rules, at=at_ts,
                          actor_id=actor_id, keep_existing=keep_existing)  # fmt: skip
        if few is not None:
            return few
    df = normalise_reports(new)
    bad_cat = ~df["category"].isin(list(rules.categories)).to_numpy()
    if bad_cat.any():
        raise ReportError(
            f"unknown report categories {format_rows(sorted(set(df['category'][bad_cat])))}.",
            hint=f"Known categories ({rules.source}): {', '.join(rules.categories)}.",
        )
    bad_src = ~df["source"].isin(list(rules.sources)).to_numpy()
    if bad_src.any():
        raise ReportError(
            f"unknown report sources {format_rows(sorted(set(df['source'][bad_src])))}.",
            hint=f"Known sources: {', '.join(rules.sources)}.",
        )
    df["reported_at"] = df["reported_at"].fillna(at_ts)
    if crs is not None or df.crs is None or not df.crs.equals(WGS84):
        df = to_wgs84(df if df.crs is not None or crs is not None else df.set_crs(WGS84), crs=crs)
    geoms = np.asarray(df.geometry.array)
    has_point = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if units is not None and len(df):
        # the points and their hand-chosen units only: locate copies what it is given
        where = gpd.GeoDataFrame(
            {"unit_id": df["unit_id"].array}, geometry=df.geometry.array, index=df.index
        )
        df["unit_id"] = locate(where, units)["unit_id"].array  # same rows: df is WGS84
        # unit -> admin code as one Series (not the units frame re-indexed, every column)
        admin = pd.Series(units["admin_code"].astype("string").array, index=units["unit_id"].array)
        df["admin_code"] = df["admin_code"].fillna(df["unit_id"].map(admin))
    unplaced = ~has_point & df["unit_id"].isna().to_numpy() & df["admin_code"].isna().to_numpy()
    if unplaced.any():
        rows = df.index[unplaced].tolist()
        raise ReportError(
            f"reports at rows {format_rows(rows)} have no point, unit_id or admin_code.",
            hint="Hotline reports with only an address need a unit_id or admin_code "
            "chosen by hand.",
        )

    old = normalise_reports(existing) if existing is not None else normalise_reports(df.iloc[:0])
    df["report_id"] = _new_ids(df["report_id"], old["report_id"])
    df["status"] = pd.array(["collected"] * len(df), dtype=_STRING)  # keeps the frame typed
    # the 立案 clock runs from collection (working time, rules/handlers.toml)
    df["due_at"] = stage_due(
        df["reported_at"],
        df["category"].to_numpy(dtype=object),
        df["status"].to_numpy(dtype=object),
        rules=rules,
    ).to_numpy()
    df["duplicate_of"] = pd.array([None] * len(df), dtype=_STRING)
    df = df.sort_values("reported_at", kind="stable")
    df["duplicate_of"] = _link_duplicates(df, old, rules)

    actors = (
        df["reporter_id"].astype("string")
        if actor_id is None and "reporter_id" in df.columns
        else pd.Series(actor_id, index=df.index, dtype="string")
    )
    events = _events(
        [
            {
                "report_id": rid,
                "at": t,
                "actor_id": a,
                "action": "collect",
                "from_status": None,
                "to_status": "collected",
                "note": _collect_note(rules, cat, src, None if pd.isna(dup) else dup),
                "evidence": ev,
            }
            for rid, t, a, cat, src, dup, ev in zip(
                df["report_id"],
                df["reported_at"],
                actors,
                df["category"],
                df["source"],
                df["duplicate_of"],
                df["evidence"],
                strict=True,
            )
        ]
    )
    if old.crs is not None and df.crs is not None and old.crs != df.crs:
        df = df.to_crs(old.crs)
    out = pd.concat([old, df]) if len(old) and keep_existing else df
    return ReportChange(gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=df.crs), events)


#: batches up to this many new reports are taken in by :func:`_intake_few`
FEW_REPORTS = 64


def _intake_few(
    new: pd.DataFrame,
    *,
    units: gpd.GeoDataFrame | None,
    existing: gpd.GeoDataFrame | None,
    rules: ReportRules,
    at: pd.Timestamp,
    actor_id: str | None,
    keep_existing: bool = True,
) -> ReportChange | None:
    """:func:`intake` of a few reports (the API's batches) with their values in arrays
    and lists, the frames built once at the end: the same answer, row for row and type
    for type (``tests/test_intake_few.py``), at a fraction of the cost, which on a few
    rows is pandas' per-operation overhead. None where the general path must answer:
    a point not in WGS84, ids to make, a report it would refuse (it raises the error),
    candidates in another CRS, reports without a time, units with repeated ids."""
    if not isinstance(new, gpd.GeoDataFrame) or new._geometry_column_name not in new:
        return None
    if new.crs is None or not new.crs.equals(WGS84) or not len(new):
        return None
    if "report_id" not in new or new["report_id"].isna().any():
        return None  # ids to make: the general path's _new_ids
    if existing is not None and (
        not isinstance(existing, gpd.GeoDataFrame)
        or existing._geometry_column_name not in existing
        or existing.crs is None
        or not existing.crs.equals(WGS84)
    ):
        return None
    cols = _normalised_columns(new.copy())
    cats = cols["category"].to_numpy(dtype=object, na_value=None)  # type: ignore[attr-defined]
    srcs = cols["source"].to_numpy(dtype=object, na_value=None)  # type: ignore[attr-defined]
    if not all(c in rules.categories for c in cats) or not all(s in rules.sources for s in srcs):
        return None  # refused: the general path says why
    reported = pd.Series(cols["reported_at"]).fillna(at)
    if reported.isna().any():
        return None
    geom_name = new._geometry_column_name
    geoms = np.asarray(cols[geom_name])
    has_point = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if units is not None and not _place_few(cols, new, units):
        return None
    unit_na = pd.isna(np.asarray(cols["unit_id"], dtype=object))
    admin_na = cols["admin_code"].isna()  # type: ignore[attr-defined]
    if (~has_point & unit_na & admin_na).any():
        return None  # unplaced: refused by the general path

    n = len(new)
    ids = cols["report_id"].to_numpy(dtype=object)  # type: ignore[attr-defined]
    old = normalise_reports(existing) if existing is not None else None
    cols["status"] = pd.array(["collected"] * n, dtype=_STRING)
    due = stage_due(reported, cats, np.array(["collected"] * n, dtype=object), rules=rules)
    cols["reported_at"] = reported.array
    cols["due_at"] = pd.Series(due.to_numpy()).array
    # time order (stable), as sort_values gives it: rows and index follow
    times = reported.to_numpy(dtype="datetime64[us]").view("int64")
    order = np.argsort(times, kind="stable")
    sorted_ = not (np.diff(order) != 1).any()
    if not sorted_:
        cols = {k: _take(v, order) for k, v in cols.items()}
        cats, srcs, ids, geoms = cats[order], srcs[order], ids[order], geoms[order]
    index = new.index if sorted_ else new.index[order]
    if old is not None and len(old):
        is_open = (
            old["status"].isin(rules.open_statuses).to_numpy()
            & old["duplicate_of"].isna().to_numpy()
        )
        olds = (np.asarray(old.geometry.array)[is_open],
                old["category"].to_numpy(dtype=object)[is_open],
                old["report_id"].to_numpy(dtype=object)[is_open])  # fmt: skip
    else:
        olds = (np.empty(0, dtype=object),) * 3
    catv = cols["category"].to_numpy(dtype=object)  # type: ignore[attr-defined]
    links = _duplicate_links(geoms, catv, ids, *olds, rules)
    dup = [links.get(k) for k in range(n)]
    cols["duplicate_of"] = pd.array(dup, dtype=_STRING)
    df = gpd.GeoDataFrame(cols, index=index, geometry=geom_name, crs=new.crs, copy=False)

    if actor_id is None and "reporter_id" in df.columns:
        actors = df["reporter_id"].astype("string").to_numpy(dtype=object, na_value=None)
    else:
        actors = [actor_id] * n

    evidence = cols["evidence"].to_numpy(dtype=object, na_value=None)  # type: ignore[attr-defined]
    times = pd.Series(cols["reported_at"], index=pd.RangeIndex(n))
    events = _collect_events(ids, times, actors, cats, srcs, dup, evidence, rules)
    if old is not None and len(old) and keep_existing:
        out = pd.concat([old, df])
        return ReportChange(gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=df.crs), events)
    return ReportChange(df, events)


def _place_few(cols: dict, new: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> bool:
    """:func:`intake`'s placing for :func:`_intake_few`: ``cols``' ``unit_id`` located
    (:func:`gridkit.locate`), its ``admin_code`` filled from the unit's; False (nothing
    changed) where units repeat an id or lack one (pandas' map decides there)."""
    unit_ids = units["unit_id"]
    if unit_ids.isna().any() or not unit_ids.is_unique:
        return False
    geom_name = new._geometry_column_name
    where = gpd.GeoDataFrame(
        {"unit_id": cols["unit_id"], "geometry": cols[geom_name]},
        index=new.index,
        geometry="geometry",
        crs=new.crs,
        copy=False,
    )
    located = locate(where, units)["unit_id"].array
    admin = dict(
        zip(
            unit_ids.to_numpy(dtype=object),
            units["admin_code"].astype("string").to_numpy(dtype=object, na_value=None),
            strict=True,
        )
    )
    have = cols["admin_code"].to_numpy(dtype=object, na_value=None)
    found = pd.array(located, dtype=object).to_numpy(dtype=object, na_value=None)
    cols["unit_id"] = located
    cols["admin_code"] = pd.array(
        [h if h is not None else admin.get(u) if u is not None else None
         for h, u in zip(have, found, strict=True)],
        dtype=_STRING,
    )  # fmt: skip
    return True


def _collect_events(
    ids: object,
    times: pd.Series,
    actors: object,
    cats: object,
    srcs: object,
    dup: list,
    evidence: object,
    rules: ReportRules,
) -> pd.DataFrame:
    """The ``collect`` events of new reports as :func:`_events` makes them, its columns
    typed directly: the times are the reports' (UTC microseconds), no due time yet."""

    def text(values: object) -> object:  # as _events types them
        return pd.array([None if v is None or pd.isna(v) else str(v) for v in values],
                        dtype=_STRING)  # fmt: skip

    n = len(dup)
    notes = [
        _collect_note(rules, cat, src, d)
        for cat, src, d in zip(cats, srcs, dup, strict=True)  # type: ignore[call-overload]
    ]
    return pd.DataFrame(
        {
            "report_id": text(ids),
            "at": times,
            "actor_id": text(actors),
            "action": pd.array(["collect"] * n, dtype=_STRING),
            "from_status": pd.array([None] * n, dtype=_STRING),
            "to_status": pd.array(["collected"] * n, dtype=_STRING),
            "note": pd.array(notes, dtype=_STRING),
            "evidence": text(evidence),
            "due_at": pd.Series(pd.NaT, index=times.index, dtype=_UTC_US),
        }  # in the order of EVENT_COLUMNS
    )


def _collect_note(rules: ReportRules, category: object, source: object, dup: object) -> str:
    """The note of a new report's ``collect`` event: its category's label, its source,
    and the report it likely duplicates (``dup``, None for none)."""
    note = f"{rules.label(category)}; source {source}"
    return note if dup is None else f"{note}; likely duplicate of {dup}"


def _take(values: object, order: np.ndarray) -> object:
    """``values`` (a column array) in ``order``."""
    if isinstance(values, np.ndarray):
        return values[order]
    return values.take(order)  # type: ignore[attr-defined]


class RowsTaken(NamedTuple):
    """New reports taken in by :func:`intake_rows`, as columns of Python values.

    ``reports``: column -> values, the columns of :func:`normalise_reports` in its
    order (no geometry), the rows in the order given; ``geometry``: their points;
    ``events``: :data:`EVENT_COLUMNS` -> values, one ``collect`` event per report in
    time order. Times are ``datetime`` in UTC (microseconds), missing values None.
    """

    reports: dict[str, list]
    geometry: np.ndarray
    events: dict[str, list]


_EPOCH = pd.Timestamp(0, tz="UTC").to_pydatetime()


def _datetimes(us: np.ndarray) -> list:
    """Epoch microseconds as UTC ``datetime`` (None for NaT)."""
    nat = np.iinfo("int64").min
    return [None if v == nat else _EPOCH + _dt.timedelta(microseconds=int(v)) for v in us]


class IntakeClock(NamedTuple):
    """When new reports were made and by when they must be opened (立案), as epoch
    microseconds in UTC (:func:`intake_clock`; NaT's integer where there is no limit)."""

    reported_us: np.ndarray
    due_us: np.ndarray


def intake_clock(
    records: Sequence[Mapping[str, object]],
    *,
    rules: ReportRules | str | Path | None = None,
    at: object = None,
) -> IntakeClock:
    """The times :func:`intake` gives new reports: ``reported_at`` (the record's own,
    else ``at``) and the deadline of the collected stage from it (:func:`stage_due`).
    What a batch's intake does not need the stored reports for: worked out before it
    asks them (:func:`intake_rows`' ``clock``). A category the rules do not know gets
    no deadline here (:func:`intake_rows` refuses it).

    Examples
    --------
    >>> c = intake_clock([{"category": "street_light"}], at="2026-05-01T10:00Z")
    >>> [str(np.datetime64(int(v), "us")) for v in (c.reported_us[0], c.due_us[0])]
    ['2026-05-01T10:00:00.000000', '2026-05-06T06:30:00.000000']
    """
    rules = report_rules(rules)
    n = len(records)
    at_us = utc_scalar(at, name="at").value // 1000  # ns -> us
    given = [r.get("reported_at") for r in records]
    if any(t is not None for t in given):  # as report_frame and normalise_reports read them
        reported = utc_series(pd.Series(pd.to_datetime(given, utc=True)))
        times = reported.to_numpy(dtype="datetime64[us]").view("int64").copy()
        times[pd.isna(given)] = at_us
    else:
        times = np.full(n, at_us, dtype="int64")
    cats = np.asarray([r.get("category") for r in records], dtype=object)
    known = np.isin(cats, list(rules.categories))
    due_us = np.full(n, np.iinfo("int64").min, dtype="int64")
    if known.any():
        k = int(known.sum())
        due, none = _stage_due_us(times[known], np.zeros(k, dtype=bool), cats[known],
                                  np.full(k, "collected", dtype=object), rules=rules)  # fmt: skip
        due_us[known] = np.where(none, np.iinfo("int64").min, due)
    return IntakeClock(times, due_us)


def intake_rows(
    records: Sequence[Mapping[str, object]],
    points: Sequence[object],
    report_ids: Sequence[str],
    *,
    units: tuple[Sequence[object], Sequence[object], Sequence[object]],
    candidates: tuple[Sequence[object], Sequence[object], Sequence[object]] = ((), (), ()),
    actors: Sequence[str | None] | None = None,
    rules: ReportRules | str | Path | None = None,
    at: object = None,
    clock: IntakeClock | None = None,
) -> RowsTaken | None:
    """:func:`intake` of a few reports given as values, answered as values: what the
    API's writer takes in with every batch, where a frame costs more to build than
    the work it holds. The same reports and events as :func:`intake` gives for
    :func:`gridkit.ops.intake.report_frame` of the same records (value for value;
    ``tests/test_intake_rows.py`` checks it against :func:`intake` by hypothesis).

    Parameters
    ----------
    records
        One mapping per report, as for :func:`gridkit.ops.intake.report_frame`
        (``category``, ``source``, ``description``, ``reported_at``, ...).
    points
        The WGS84 point of each report.
    report_ids
        The id of each report.
    units
        The units that may hold the points, in layer order: their ids, admin codes
        and polygons in WGS84 (e.g. those a database found at the points).
    candidates
        The open reports a new one may duplicate (open, themselves no duplicate):
        their points, categories and ids.
    actors
        Who took each report in (the ``actor_id`` of its event); default None.
    rules, at
        As for :func:`intake`.
    clock
        The records' :func:`intake_clock`, when worked out before (the API's writer
        does, before it waits for its turn); else worked out here.

    Returns
    -------
    RowsTaken or None
        None where :func:`intake` must answer: a category or source it would refuse,
        a report without a point, a point in no unit given (the nearest unit of the
        whole layer), a record key outside the layer's columns, units without ids or
        repeating one.

    Examples
    --------
    >>> from shapely import Point
    >>> from gridkit.synth.ops import grid_units
    >>> u = grid_units(2, 2)
    >>> got = intake_rows(
    ...     [{"category": "street_light", "source": "hotline"}] * 2,
    ...     [Point(113.1025, 27.8025), Point(113.1025, 27.8027)], ["R0000001", "R0000002"],
    ...     units=(u["unit_id"], u["admin_code"], u.geometry), at="2026-05-01T10:00Z")
    >>> got.reports["unit_id"], got.reports["duplicate_of"]
    (['430202001000000', '430202001000000'], [None, 'R0000001'])
    >>> got.events["note"][1], got.reports["due_at"][0].isoformat()
    ('路灯损坏; source hotline; likely duplicate of R0000001', '2026-05-06T06:30:00+00:00')
    """
    rules = report_rules(rules)
    n = len(records)
    if not n or len(points) != n or len(report_ids) != n:
        return None
    keys = list(records[0])
    if "report_id" in keys:
        return None  # a record's own id: report_frame's and intake's to settle
    present = [k for k in keys if any(r.get(k) is not None for r in records)]
    if any(k not in _STR_COLUMNS and k != "reported_at" for k in present):
        return None  # a column of another kind: normalise_reports decides
    if any(k not in keys for r in records for k in r):
        return None
    cats = [r.get("category") for r in records]
    srcs = [r.get("source") for r in records]
    if not all(c in rules.categories for c in cats) or not all(x in rules.sources for x in srcs):
        return None  # refused: the general path says why
    if any(not isinstance(r.get(k), str | None) for r in records for k in present
           if k != "reported_at"):  # fmt: skip
        return None
    geoms = np.asarray(points, dtype=object)
    if (shapely.is_missing(geoms) | shapely.is_empty(geoms)).any():
        return None
    hit = _units_hit(geoms, units)
    if hit is None:
        return None
    unit_of, admin_of = hit

    if clock is None or len(clock.reported_us) != n:
        clock = intake_clock(records, rules=rules, at=at)
    times, due_us = clock

    # duplicates in time order (stable), as intake sorts; the rows stay as given
    order = np.argsort(times, kind="stable")
    ids = np.asarray(list(report_ids), dtype=object)
    catv = np.asarray(cats, dtype=object)
    old = tuple(np.asarray(list(c), dtype=object) for c in candidates)
    links = _duplicate_links(geoms[order], catv[order], ids[order], *old, rules)
    dup: list = [None] * n
    for k, original in links.items():
        dup[int(order[k])] = None if original is None else str(original)

    given_admin = [r.get("admin_code") for r in records]
    values: dict[str, list] = {"report_id": [str(i) for i in ids]}
    for k in present:
        values[k] = [r.get(k) for r in records]
    fill = {
        "status": ["collected"] * n,
        "unit_id": unit_of,
        "admin_code": [a if a is not None else b for a, b in zip(given_admin, admin_of,
                                                                  strict=True)],
        "duplicate_of": dup,
    }  # fmt: skip
    for col in _STR_COLUMNS:
        if col in fill:
            values[col] = fill[col]
        elif col not in values:
            values[col] = [None] * n
    stamps = _datetimes(times)
    for col in _TIME_COLUMNS:
        values[col] = stamps if col == "reported_at" else (
            _datetimes(due_us) if col == "due_at" else [None] * n
        )  # fmt: skip
    for col in _INT_COLUMNS:
        values[col] = [0] * n

    evidence = values["evidence"]
    who = list(actors) if actors is not None else [None] * n
    events: dict[str, list] = {
        "report_id": [values["report_id"][i] for i in order],
        "at": [stamps[i] for i in order],
        "actor_id": [who[i] for i in order],
        "action": ["collect"] * n,
        "from_status": [None] * n,
        "to_status": ["collected"] * n,
        "note": [_collect_note(rules, cats[i], srcs[i], dup[i]) for i in order],
        "evidence": [evidence[i] for i in order],
        "due_at": [None] * n,
    }
    return RowsTaken(values, geoms, events)


def _units_hit(
    geoms: np.ndarray, units: tuple[Sequence[object], Sequence[object], Sequence[object]]
) -> tuple[list, list] | None:
    """Each point's unit and its admin code as :func:`gridkit.locate` places them
    among ``units`` (ids, admin codes, polygons in layer order): the first unit
    holding it, else the first it lies on the edge of. None where a point has no
    unit among them or the units repeat or lack an id."""
    ids = [None if pd.isna(u) else str(u) for u in units[0]]
    if not ids or None in ids or len(set(ids)) != len(ids):
        return None
    admins = [None if pd.isna(a) else str(a) for a in units[1]]
    polys = np.asarray(list(units[2]), dtype=object)
    tree = shapely.STRtree(polys)
    idx = _lowest_hit(len(geoms), *tree.query(geoms, predicate="within"))
    edge = np.flatnonzero(idx < 0)
    if len(edge):
        got = _lowest_hit(len(edge), *tree.query(geoms[edge], predicate="intersects"))
        idx[edge] = got
        if (got < 0).any():
            return None
    return [ids[i] for i in idx], [admins[i] for i in idx]


def _new_ids(ids: pd.Series, taken: pd.Series) -> pd.Series:
    missing = ids.isna().to_numpy()
    if not missing.any():
        return ids
    used = set(taken.dropna().astype(str)) | set(ids.dropna().astype(str))
    fresh, k = [], len(used) + 1
    while len(fresh) < missing.sum():
        rid = f"R{k:07d}"
        if rid not in used:
            fresh.append(rid)
        k += 1
    out = ids.copy()
    out[missing] = fresh
    return out


class DuplicatePairs(NamedTuple):
    """Pairs found by :func:`duplicate_pairs`: positions into the reports and into the
    candidates, and their distance in metres (NaN when not measured).

    Examples
    --------
    >>> import shapely
    >>> new = shapely.points([(113.1025, 27.8025)])
    >>> old = shapely.points([(113.1025, 27.8027), (113.1025, 27.8027), (113.1075, 27.8075)])
    >>> pairs = duplicate_pairs(new, ["street_light"], old, ["cctv", "street_light", "cctv"],
    ...                         radius_m=50)
    >>> pairs.report.tolist(), pairs.candidate.tolist(), pairs.distance_m.round().tolist()
    ([0], [1], [22.0])
    >>> report, candidate, distance_m = pairs  # a tuple of three aligned arrays
    """

    report: np.ndarray
    candidate: np.ndarray
    distance_m: np.ndarray


#: most point-box comparisons made at once before a search builds an R-tree instead
_BROADCAST_MAX = 1 << 22


def duplicate_pairs(
    points: object,
    categories: object,
    candidates: object,
    candidate_categories: object,
    *,
    radius_m: float,
    exact: bool = True,
) -> DuplicatePairs:
    """The duplicate search: pairs of a report and a candidate of the same category
    within ``radius_m`` of each other.

    The one search behind ``duplicate_of`` (:func:`intake` links each new report to
    the nearest earlier open one it finds here) and behind any prefilter of the
    candidates a caller keeps (the API's report writer asks, with ``exact=False``,
    which open reports of the layer it must hand to :func:`intake`).

    Parameters
    ----------
    points, candidates
        Point geometries in WGS84 lon/lat (arrays or GeoSeries); missing or empty
        ones match nothing.
    categories, candidate_categories
        The category of each (any comparable values: keys or integer codes).
    radius_m
        Largest distance of a duplicate, in metres; 0 or less finds nothing.
    exact
        Measure the distance (in the local UTM zone of the points and candidates,
        :func:`gridkit.crs.local_metric_crs`) and keep pairs within ``radius_m``.
        False keeps every pair whose candidate lies in a box around the point that
        holds the circle 1.5 times over (:func:`gridkit.crs.degrees_around`): a
        cheap superset, with ``distance_m`` NaN.

    Returns
    -------
    DuplicatePairs
        Sorted by report, then candidate.

    Examples
    --------
    >>> import shapely
    >>> m = 1 / 111_000  # about a metre of latitude in degrees
    >>> new = shapely.points([(113.0, 27.8), (113.0, 27.8 + 300 * m)])
    >>> old = shapely.points([(113.0, 27.8 + 40 * m), (113.0, 27.8 + 60 * m),
    ...                       (113.0, 27.8 + 20 * m)])
    >>> pairs = duplicate_pairs(new, ["cctv", "cctv"], old, ["cctv", "cctv", "sewage"],
    ...                         radius_m=50)
    >>> pairs.report.tolist(), pairs.candidate.tolist(), pairs.distance_m.round().tolist()
    ([0], [0], [40.0])
    >>> duplicate_pairs(new, ["cctv"] * 2, old, ["cctv"] * 3, radius_m=50, exact=False)[1]
    array([0, 1, 2])
    """
    pts = np.asarray(points, dtype=object)
    cand = np.asarray(candidates, dtype=object)
    cat_p = np.asarray(categories, dtype=object)
    cat_c = np.asarray(candidate_categories, dtype=object)
    pos_p = np.flatnonzero(~(shapely.is_missing(pts) | shapely.is_empty(pts)))
    pos_c = np.flatnonzero(~(shapely.is_missing(cand) | shapely.is_empty(cand)))
    none = np.empty(0, dtype=np.int64)
    if radius_m <= 0 or not len(pos_p) or not len(pos_c):
        return DuplicatePairs(none, none, np.empty(0))
    qi, ci = _boxed(pts[pos_p], cand[pos_c], radius_m)
    q, c = pos_p[qi], pos_c[ci]
    same = cat_p[q] == cat_c[c]
    q, c = q[same], c[same]
    if not exact:
        order = np.lexsort((c, q))
        return DuplicatePairs(q[order], c[order], np.full(len(q), np.nan))
    # in the UTM zone of every point and candidate (local_metric_crs); only the ends of
    # the pairs are projected (the search's cost stays with them)
    up, q_at = np.unique(q, return_inverse=True)
    uc, c_at = np.unique(c, return_inverse=True)
    zone_of = np.concatenate([pts[pos_p], cand[pos_c]])
    p_m, c_m = lonlat_to_local_metric(pts[up], cand[uc], around=zone_of)
    dist = shapely.distance(p_m[q_at], c_m[c_at])
    keep = dist <= radius_m
    q, c, dist = q[keep], c[keep], dist[keep]
    order = np.lexsort((c, q))
    return DuplicatePairs(q[order], c[order], dist[order])


def _boxed(points: np.ndarray, candidates: np.ndarray, radius_m: float) -> tuple:
    """Positions (point, candidate) of candidates whose bounds meet the box around a
    point holding ``radius_m`` 1.5 times over: broadcast for small searches, an
    R-tree for large ones."""
    xy = shapely.get_coordinates(points)
    dx, dy = degrees_around(xy[:, 1], np.full(len(xy), radius_m))
    lo_x, hi_x, lo_y, hi_y = xy[:, 0] - dx, xy[:, 0] + dx, xy[:, 1] - dy, xy[:, 1] + dy
    if len(points) * len(candidates) > _BROADCAST_MAX:
        tree = shapely.STRtree(candidates)
        qi, ci = tree.query(shapely.box(lo_x, lo_y, hi_x, hi_y))
        return qi, ci
    b = shapely.bounds(candidates)
    near = (b[None, :, 0] <= hi_x[:, None]) & (b[None, :, 2] >= lo_x[:, None])
    near &= (b[None, :, 1] <= hi_y[:, None]) & (b[None, :, 3] >= lo_y[:, None])
    qi, ci = np.nonzero(near)
    return qi, ci


def _link_duplicates(df: gpd.GeoDataFrame, old: gpd.GeoDataFrame, rules: ReportRules):
    """``duplicate_of`` for ``df`` (sorted by time): the nearest earlier open report."""
    result = df["duplicate_of"].copy()
    is_open = (
        old["status"].isin(rules.open_statuses).to_numpy() & old["duplicate_of"].isna().to_numpy()
    )
    links = _duplicate_links(
        np.asarray(df.geometry.array),
        df["category"].to_numpy(dtype=object),
        df["report_id"].to_numpy(dtype=object),
        np.asarray(old.geometry.array)[is_open],
        old["category"].to_numpy(dtype=object)[is_open],
        old["report_id"].to_numpy(dtype=object)[is_open],
        rules,
    )
    for pos, rid in links.items():
        result.iloc[pos] = rid
    return result


def _duplicate_links(
    geoms: np.ndarray,
    cats: np.ndarray,
    ids: np.ndarray,
    old_geoms: np.ndarray,
    old_cats: np.ndarray,
    old_ids: np.ndarray,
    rules: ReportRules,
) -> dict[int, object]:
    """Position of a new report (sorted by time) -> the id of its original: the
    nearest earlier of the open old reports (``old_*``) and the new ones."""
    # candidates: the open old reports, then the new ones (plain arrays, no frames)
    cgeoms = np.concatenate([old_geoms, geoms])
    n_old = len(old_geoms)
    cat = np.concatenate([old_cats, cats])

    def earlier(q: np.ndarray, c: np.ndarray) -> np.ndarray:
        # A candidate is earlier: an open old report, or a new one earlier in the batch.
        return (q != c) & ((c < n_old) | (c < q))

    radius = rules.duplicate_radius_m
    # boxes first: no earlier candidate in any box (most batches), nothing to measure
    rough = duplicate_pairs(cgeoms[n_old:], cat[n_old:], cgeoms, cat, radius_m=radius,
                            exact=False)  # fmt: skip
    if not earlier(rough.report + n_old, rough.candidate).any():
        return {}
    pairs = duplicate_pairs(cgeoms[n_old:], cat[n_old:], cgeoms, cat, radius_m=radius)
    q, c, dist = pairs.report + n_old, pairs.candidate, pairs.distance_m
    keep = earlier(q, c)
    q, c, dist = q[keep], c[keep], dist[keep]
    if len(q) == 0:
        return {}
    rid = np.concatenate([old_ids, ids])
    original: dict[int, int] = {}  # duplicate position -> position of its original
    # Pairs sorted by new report (time order), nearest candidate first. Only reports
    # with a neighbour loop here; a candidate that is itself a duplicate is skipped,
    # so chains link to the first report.
    order = np.lexsort((dist, q))
    for qq, cc in zip(q[order], c[order], strict=True):
        if qq in original or cc in original:
            continue
        original[qq] = cc
    return {int(qq) - n_old: rid[cc] for qq, cc in original.items()}


# --------------------------------------------------------------------------- routing


def parent_admin_code(code: str, admin_areas: pd.DataFrame | None = None) -> str | None:
    """The next administrative level up: from ``admin_areas.parent_code`` or the code itself.

    Chinese codes nest as 2 (province), 4 (city), 6 (county), 9 (township) and
    12 (village) digits; trailing zero-padding is ignored.

    Examples
    --------
    >>> parent_admin_code("430202001001"), parent_admin_code("430202"), parent_admin_code("43")
    ('430202001', '4302', None)
    """
    if admin_areas is not None and "parent_code" in admin_areas:
        parents = dict(
            zip(admin_areas["admin_code"].astype(str), admin_areas["parent_code"], strict=True)
        )
        if code in parents and pd.notna(parents[code]):
            return str(parents[code])
    c = str(code).strip()
    levels = (2, 4, 6, 9, 12)
    # Significant length: the shortest level after which only zero padding follows.
    sig = next((w for w in levels if w <= len(c) and set(c[w:]) <= {"0"}), len(c))
    shorter = [w for w in levels if w < sig]
    return c[: shorter[-1]] if shorter else None


# --------------------------------------------------------------------------- assignment

#: the roles that may choose an assignee, and whom: themselves only, or within scope
_CHOOSERS = ("worker", "supervisor", "admin")


def _areas_related(case: str | None, worker: str | None) -> bool:
    """Whether a worker of area ``worker`` may hold a case of area ``case``: one holds
    the other, or both lie in the same county-level area (区/县)."""
    if case is None:
        return True  # an unplaced case: anyone the caller may choose
    if worker is None:
        return False
    if codes.in_scope(case, worker) or codes.in_scope(worker, case):
        return True
    district = codes.district(case)
    return district is not None and district == codes.district(worker)


def check_assignment(
    reports: pd.DataFrame,
    report_id: str,
    assignee_id: str,
    *,
    workers: pd.DataFrame | None,
    by_role: str,
    by_worker: str | None = None,
    by_scope: str | None = None,
) -> str | None:
    """Check that ``assignee_id`` may take the case ``report_id``; the assignee's
    admin code when it may.

    The assignee must be a worker of the ``workers`` layer, of an area related to the
    case's (one holds the other, or both lie in one county-level area, so the worker
    can see the case), and be one the caller may choose: a worker only themselves, a
    supervisor a worker inside their scope, an admin anyone.

    Parameters
    ----------
    reports
        The ``reports`` layer (``report_id``, ``admin_code``).
    report_id, assignee_id
        The case and the worker proposed.
    workers
        The ``workers`` layer (``worker_id``, ``admin_code``); None: no worker exists.
    by_role, by_worker, by_scope
        Who assigns: role (``worker``, ``supervisor``, ``admin``), their worker id
        and their scope (an admin code; empty or None for everywhere).

    Raises
    ------
    AssignmentError
        Naming the worker, the case and the rule (``reason``: ``unknown``,
        ``outside``, ``not_yours``).

    Examples
    --------
    >>> import pandas as pd
    >>> reports = pd.DataFrame({"report_id": ["R1"], "admin_code": ["430202001001"]})
    >>> workers = pd.DataFrame({"worker_id": ["W1", "W2", "W3"],
    ...                         "admin_code": ["430202001001", "430202003", "430203001001"]})
    >>> check_assignment(reports, "R1", "W2", workers=workers, by_role="supervisor",
    ...                  by_scope="430202")
    '430202003'
    >>> for who, role, scope in (("NOPE", "supervisor", "430202"),
    ...                          ("W3", "admin", None), ("W2", "worker", None)):
    ...     try:
    ...         check_assignment(reports, "R1", who, workers=workers, by_role=role,
    ...                          by_worker="W1", by_scope=scope)
    ...     except AssignmentError as e:
    ...         print(e.reason)
    unknown
    outside
    not_yours
    """
    if by_role not in _CHOOSERS:
        raise AssignmentError(
            f"role {by_role!r} may not assign cases.", reason="not_yours", hint="Ask a supervisor."
        )
    if by_role == "worker" and assignee_id != by_worker:
        raise AssignmentError(
            f"workers may not hand case {report_id} to someone else ({assignee_id}).",
            reason="not_yours",
            hint="Ask a supervisor to reassign it, or return it with a note.",
        )
    known = None if workers is None else workers[workers["worker_id"].astype(str) == assignee_id]
    if known is None or not len(known):
        raise AssignmentError(
            f"no worker {assignee_id!r} in the workers layer.",
            reason="unknown",
            hint="Choose a worker_id of the workers layer.",
        )
    code = known["admin_code"].iloc[0] if "admin_code" in known else None
    code = None if code is None or pd.isna(code) else codes.normalise(str(code))
    row = reports[reports["report_id"].astype(str) == report_id]
    case = row["admin_code"].iloc[0] if len(row) and "admin_code" in row else None
    case = None if case is None or pd.isna(case) else codes.normalise(str(case))
    if not _areas_related(case, code):
        raise AssignmentError(
            f"worker {assignee_id} ({code}) works outside case {report_id}'s area ({case}).",
            reason="outside",
            hint="Choose a worker of the case's district, or hand the case over.",
        )
    if by_role == "supervisor" and by_scope and not codes.in_scope(code, by_scope):
        raise AssignmentError(
            f"worker {assignee_id} ({code}) is outside your scope {by_scope}.",
            reason="not_yours",
            hint="Choose a worker of your own area.",
        )
    return code


# --------------------------------------------------------------------------- retention

_FINAL = ("closed", "rejected")


def expired_contacts(
    reports: pd.DataFrame,
    *,
    days: float,
    events: pd.DataFrame | None = None,
    at: object = None,
) -> pd.Series:
    """Boolean Series (aligned to ``reports``): closed or rejected cases, finished
    more than ``days`` before ``at``, that still hold a reporter's contact.

    A case finished when its last event into ``closed``/``rejected`` happened
    (``events``); without such an event, when it was resolved, else reported.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1", "R2", "R3"],
    ...                   "status": ["closed", "closed", "in_progress"],
    ...                   "reported_at": ["2026-01-01T00:00Z"] * 3,
    ...                   "reporter_contact": ["13812341234", "13900000000", "137"]})
    >>> ev = pd.DataFrame({"report_id": ["R1", "R2"], "to_status": ["closed", "closed"],
    ...                    "at": ["2026-02-01T00:00Z", "2026-04-20T00:00Z"]})
    >>> expired_contacts(r, days=30, events=ev, at="2026-05-01T00:00Z").tolist()
    [True, False, False]
    """
    if days < 0:
        raise ReportError(f"a retention of {days} days is negative.", hint="Give days >= 0.")
    at_ts = utc_scalar(at, name="at")
    ids = reports["report_id"].astype(str)
    finished = pd.Series(pd.NaT, index=reports.index, dtype="datetime64[us, UTC]")
    if events is not None and len(events):
        done = events[events["to_status"].isin(_FINAL).to_numpy(dtype=bool, na_value=False)]
        last = utc_series(done["at"]).groupby(done["report_id"].astype(str).to_numpy()).max()
        finished = pd.Series(ids.map(last).to_numpy(), index=reports.index).astype(finished.dtype)
    for col in ("resolved_at", "reported_at"):
        if col in reports:
            finished = finished.fillna(utc_series(reports[col]))
    contact = reports["reporter_contact"] if "reporter_contact" in reports else None
    if contact is None:
        return pd.Series(False, index=reports.index)
    final = reports["status"].isin(_FINAL).to_numpy(dtype=bool, na_value=False)
    old = (finished <= at_ts - pd.Timedelta(days=days)).to_numpy(dtype=bool, na_value=False)
    held = contact.notna().to_numpy() & (contact.astype(str).str.strip() != "").to_numpy()
    return pd.Series(final & old & held, index=reports.index)


def purge_contacts(
    reports: pd.DataFrame,
    *,
    days: float,
    events: pd.DataFrame | None = None,
    at: object = None,
    actor_id: str = "retention",
) -> ReportChange:
    """Remove the reporters' contacts of cases finished more than ``days`` ago
    (:func:`expired_contacts`), with one audit event per case (its status unchanged).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1", "R2"], "status": ["closed", "assigned"],
    ...                   "category": ["cctv"] * 2, "source": ["hotline"] * 2,
    ...                   "reported_at": ["2026-01-01T00:00Z"] * 2,
    ...                   "reporter_contact": ["13812341234", "13900000000"]})
    >>> out, ev = purge_contacts(r, days=90, at="2026-06-01T00:00Z")
    >>> out["reporter_contact"].tolist(), ev[["report_id", "to_status"]].values.tolist()
    ([<NA>, '13900000000'], [['R1', 'closed']])
    """
    out = normalise_reports(reports)
    mask = expired_contacts(out, days=days, events=events, at=at).to_numpy()
    out.loc[mask, "reporter_contact"] = pd.NA
    status = out["status"].to_numpy(dtype=object)[mask]
    now = utc_scalar(at, name="at")
    events_out = _events(
        [
            {
                "report_id": rid,
                "at": now,
                "actor_id": actor_id,
                "from_status": st,
                "to_status": st,
                "note": f"reporter contact removed: case finished over {days:g} days ago",
            }
            for rid, st in zip(out["report_id"].to_numpy(dtype=object)[mask], status, strict=True)
        ]
    )
    return ReportChange(out, events_out)
