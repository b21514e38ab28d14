"""Cases the way a grid-management centre runs them (GB/T 30428): stages, actions,
deadlines per stage, escalation (督办).

A report taken in (:func:`gridkit.ops.reports.intake`, 采集) is a case in stage
``collected``. The centre opens it (立案) and dispatches it (派遣) to the most local
department that handles its category; the department accepts (受理) or returns it
(退回), handles it and reports back (反馈) with evidence; the grid worker of its unit
verifies on site (核查) or sends it back for rework (返工); the centre closes it
(结案). The steps, the statuses they move between and who may take them are the
``[actions]`` of ``rules/reports.toml``; :func:`act` takes one step for one or several
cases and returns the new state and one ``report_events`` row each.

Every stage with a clock (``[stage_clock]``: 立案, 派遣, 处置, 核查) has a deadline:
``due_at`` is the deadline of the case's *current* stage; the event that ends a stage
records the deadline it had (``report_events.due_at``), so on-time rates per stage are
a count over the history. :func:`escalate` escalates the cases past their deadline one
admin level up, and again every ``repeat_h`` hours, never twice for the same lapse.

Examples
--------
A street light reported in a village of 荷塘区, taken through every step:

>>> import pandas as pd
>>> from gridkit.ops.reports import intake
>>> new = pd.DataFrame({"category": ["cctv"], "source": ["patrol"],
...                     "admin_code": ["430202001"], "unit_id": ["430202001000000"]})
>>> reports, _ = intake(new, at="2026-05-11T01:00Z")
>>> departments = pd.DataFrame({"department_id": ["D1"], "name": ["荷塘区城管局"],
...                             "admin_code": ["430202"], "categories": ["cctv"]})
>>> steps = [("open", "C1", {}), ("dispatch", "C1", {"departments": departments}),
...          ("accept", "D1-staff", {}),
...          ("report_back", "D1-staff", {"evidence": "after:cam.jpg"}),
...          ("verify", "W1", {}), ("close", "C1", {})]
>>> for action, who, extra in steps:
...     reports, ev = act(reports, "R0000001", action, actor_id=who,
...                       at="2026-05-11T02:00Z", **extra)
...     print(action, ev["from_status"].iloc[0], "->", ev["to_status"].iloc[0])
open collected -> opened
dispatch opened -> dispatched
accept dispatched -> handling
report_back handling -> reported_back
verify reported_back -> verified
close verified -> closed
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import GridkitError, GridkitWarning, format_rows
from gridkit.ops.reports import (
    LEGACY_STATUS,
    ReportChange,
    ReportError,
    ReportRules,
    TransitionError,
    _add_working_h,
    _events,
    _positions,
    _worked_h,
    normalise_reports,
    report_rules,
    stage_due,
)
from gridkit.ops.routing import HandlerRules
from gridkit.ops.routing import route as route_handlers
from gridkit.ops.times import utc_array, utc_scalar, utc_series

__all__ = [
    "act",
    "action_for",
    "auto_dispatch",
    "escalate",
    "escalate_each",
    "extend_deadline",
    "hand_over",
    "overdue",
    "route",
    "stage_due",
    "transition",
]

Rules = ReportRules | str | Path | None


# --------------------------------------------------------------------------- deadlines


# --------------------------------------------------------------------------- routing


def _routes(departments: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """Category -> [(admin_code, department_id)], most local first, ties by id."""
    routes: dict[str, list[tuple[str, str]]] = {}
    for dept, code, cats in zip(
        departments["department_id"].astype(str),
        departments["admin_code"].astype(str),
        departments["categories"].fillna("").astype(str),
        strict=True,
    ):
        for cat in re.split(r"[;,]", cats):
            if cat.strip():
                routes.setdefault(cat.strip(), []).append((code, dept))
    for pairs in routes.values():
        # the most local first: a district (430202) before its city (430200 = 4302...)
        pairs.sort(key=lambda cd: (-len(codes.prefix(cd[0]) or ""), cd[1]))
    return routes


def route(
    categories: object,
    admin_codes: object,
    departments: pd.DataFrame,
    *,
    handlers: HandlerRules | str | Path | None = None,
) -> pd.DataFrame:
    """The lead department for each case, why, and the departments supporting it.

    The lead is the one :func:`gridkit.ops.routing.route` picks (the first handler type
    of the category's preference with a department serving the case's area, the most
    local first); the other departments serving the category in an area holding the
    case's support it (``;``-separated).

    Returns a frame aligned to the inputs: ``department_id`` (NA when none handles it),
    ``support`` and ``reason`` (Chinese / English).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"department_id": ["D-city", "D-dist"], "name": ["市城管局", "区城管局"],
    ...                   "admin_code": ["430200", "430202"], "categories": ["cctv", "cctv"]})
    >>> r = route(["cctv", "sewage"], ["430202001", "430202001"], d)
    >>> r["department_id"].tolist(), r["support"].tolist()
    (['D-dist', <NA>], ['D-city', <NA>])
    """
    cats = pd.Series(np.atleast_1d(np.asarray(categories, dtype=object))).astype("string")
    places = pd.Series(np.atleast_1d(np.asarray(admin_codes, dtype=object))).astype("string")
    cases = pd.DataFrame({"admin_code": places.astype(object), "category": cats.astype(object)})
    found = route_handlers(cases, departments, handlers)
    lead = found["department_id"].astype("string").reset_index(drop=True)
    routes = _routes(departments)
    support = []
    for cat, admin, ld in zip(cats.fillna(""), places.fillna(""), lead, strict=True):
        others = sorted(
            {d for code, d in routes.get(cat, ()) if codes.in_scope(admin, code)} - {ld}
        )
        support.append(";".join(others) if others and pd.notna(ld) else pd.NA)
    return pd.DataFrame(
        {
            "department_id": lead,
            "support": pd.array(support, dtype="string"),
            "reason": found["handler_reason"].astype("string").reset_index(drop=True),
        }
    )


# --------------------------------------------------------------------------- actions


def _evidence_kinds(value: object) -> set[str]:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return set()
    items = str(value).split(";")
    return {i.split(":", 1)[0].strip() for i in items if ":" in i}


def _items(text: str | None) -> set[str]:
    """The ``kind:name`` items of an evidence text."""
    if not text:
        return set()
    return {":".join(p.strip() for p in i.split(":", 1)) for i in text.split(";") if ":" in i}


def _received(uploaded: pd.DataFrame | None) -> dict[str, set[str]] | None:
    """``kind:name`` of the files received, per report (None: not known)."""
    if uploaded is None:
        return None
    items = uploaded["kind"].astype(str) + ":" + uploaded["name"].astype(str)
    return {str(r): set(g) for r, g in items.groupby(uploaded["report_id"].astype(str))}


def _evidence_text(evidence: object) -> str | None:
    if evidence is None:
        return None
    if isinstance(evidence, Mapping):
        return ";".join(f"{k}:{v}" for k, v in evidence.items())
    return str(evidence)


class _Step:
    """One action on some cases: the checks and the changes, column by column."""

    def __init__(self, out: gpd.GeoDataFrame, pos: np.ndarray, action: str, rules: ReportRules):
        self.out, self.pos, self.rules = out, pos, rules
        self.spec = rules.actions[action]
        self.problems: list[str] = []
        self.ids = out["report_id"].to_numpy(dtype=object)[pos]
        self.status = out["status"].to_numpy(dtype=object)[pos]

    def col(self, name: str) -> np.ndarray:
        return self.out[name].to_numpy(dtype=object)[self.pos]

    def check_status(self, times: pd.Series) -> np.ndarray:
        """Cases whose status allows the action (problems named for the others)."""
        ok = np.isin(self.status, self.spec.from_)
        reported = self.out["reported_at"].iloc[self.pos].reset_index(drop=True)
        early = (times.reset_index(drop=True) < reported).fillna(False).to_numpy(dtype=bool)
        for k in np.flatnonzero(~ok):
            allowed = ", ".join(self.spec.from_)
            self.problems.append(f"{self.ids[k]} is {self.status[k]!r} (allowed from: {allowed})")
        for k in np.flatnonzero(early):
            self.problems.append(f"{self.ids[k]}: {times.iat[k]} is before it was reported")
        return ok

    def set(self, name: str, values: object) -> None:
        self.out.iloc[self.pos, self.out.columns.get_loc(name)] = values


def act(
    reports: gpd.GeoDataFrame,
    report_ids: str | Sequence[str],
    action: str,
    *,
    actor_id: str | Sequence[str],
    at: object = None,
    note: str | None = None,
    department_id: str | None = None,
    hours: float | None = None,
    evidence: str | Mapping[str, str] | None = None,
    uploaded: pd.DataFrame | None = None,
    departments: pd.DataFrame | None = None,
    assignments: pd.DataFrame | None = None,
    rules: Rules = None,
) -> ReportChange:
    """Take one step of the case workflow (``[actions]`` of ``reports.toml``) for one or
    several cases: all of them, or none when any may not take it.

    Parameters
    ----------
    reports
        The ``reports`` layer.
    report_ids
        One case id or several.
    action
        ``open``, ``reject``, ``dispatch``, ``redispatch``, ``accept``, ``return``,
        ``extend``, ``pause``, ``resume``, ``report_back``, ``verify``, ``rework``,
        ``close``, ``reopen`` (or an action of edited rules).
    actor_id
        Who takes it (recorded; who verifies must differ from who reported back); one
        per case when several take it.
        Whether they *may* is :func:`gridkit.ops.access.may`'s question, asked before.
    at
        When (UTC; a scalar or one per case; default now).
    note
        Free text; required by the actions with ``reason = true`` (reject, return,
        redispatch, extend, pause, rework, reopen).
    department_id
        ``dispatch``/``redispatch``: the department to send the case to; default the
        one :func:`route` picks from ``departments``.
    hours
        ``extend``: the hours added to the handling deadline (at most
        ``max_extension``, ``max_extensions`` times).
    evidence
        ``"before:a.jpg;after:b.jpg"`` or ``{"after": "b.jpg"}``, accumulated in the
        case's ``evidence``; ``report_back`` needs the kinds its category lists.
    uploaded
        The files actually received (``report_id``, ``kind``, ``name``): when given,
        only they count as evidence.
    departments
        The ``departments`` layer, for routing and to check ``department_id``.
    assignments
        ``dispatch``/``redispatch``: ``unit_id``, ``worker_id`` (``role``,
        ``valid_from``, ``valid_to``); a case without an assignee gets its unit's grid
        worker (valid at the step's time), the one who verifies, as :func:`hand_over` does.
    rules
        :class:`~gridkit.ops.reports.ReportRules` or a path to a ``reports.toml``.

    Returns
    -------
    ReportChange
        The cases in their new stage (``due_at`` the new stage's deadline) and one
        event each: ``action``, ``from_status``, ``to_status``, ``note``, and
        ``due_at``, the deadline of the stage the step ended.

    Raises
    ------
    TransitionError
        Listing every case that may not take the step and why; nothing changed.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1"], "category": ["sand_mining"],
    ...                   "source": ["patrol"], "status": ["dispatched"],
    ...                   "lead_department_id": ["D1"], "admin_code": ["430202001"],
    ...                   "reported_at": ["2026-05-11T00:00Z"]})
    >>> r, ev = act(r, "R1", "return", actor_id="D1-staff", note="非本部门职责",
    ...             at="2026-05-11T02:00Z")
    >>> r["status"].iloc[0], int(r["returns"].iloc[0]), ev["action"].iloc[0]
    ('returned', 1, 'return')
    >>> try:
    ...     act(r, "R1", "accept", actor_id="D1-staff")
    ... except TransitionError as e:
    ...     print(e.message)
    cannot accept: R1 is 'returned' (allowed from: dispatched)
    """
    rules = report_rules(rules)
    if action not in rules.actions:
        raise ReportError(
            f"unknown action {action!r}.", hint=f"Known actions: {', '.join(rules.actions)}."
        )
    spec = rules.actions[action]
    if spec.reason and not (note or "").strip():
        raise TransitionError(
            f"a reason is needed to {action} ({spec.label_zh}).", hint="Pass note='...'."
        )
    out = normalise_reports(reports)
    pos = _positions(out, report_ids)
    times = utc_array(at, len(pos), name="at")
    step = _Step(out, pos, action, rules)
    actors = np.broadcast_to(np.asarray(actor_id, dtype=object), len(pos))
    step.check_status(times)
    ev_text = _evidence_text(evidence)
    _check_specific(step, actors, department_id, hours, ev_text, uploaded, departments)
    if step.problems:
        raise TransitionError(
            f"cannot {action}: " + "; ".join(step.problems),
            hint="See the [actions] of rules/reports.toml; nothing was changed.",
        )
    old_due = out["due_at"].iloc[pos].reset_index(drop=True)
    notes = _apply(step, actors, times, note, department_id, hours, ev_text, departments)
    if action in ("dispatch", "redispatch") and assignments is not None and len(assignments):
        _assign_verifier(step, assignments, times.max())
    return ReportChange(
        out,
        _events(
            [
                {
                    "report_id": step.ids[k],
                    "at": times.iat[k],
                    "actor_id": actors[k],
                    "action": action,
                    "from_status": step.status[k],
                    "to_status": spec.to or step.status[k],
                    "note": notes[k],
                    "evidence": ev_text,
                    "due_at": old_due.iat[k] if _ends_stage(action, spec.to) else None,
                }
                for k in range(len(pos))
            ]
        ),
    )


#: actions that start their stage's clock again although the status may not change
_RESTART = ("redispatch", "rework", "reopen")


def _ends_stage(action: str, to: str | None) -> bool:
    return to is not None or action in _RESTART


def _check_specific(
    step: _Step,
    actors: np.ndarray,
    department_id: str | None,
    hours: float | None,
    ev_text: str | None,
    uploaded: pd.DataFrame | None,
    departments: pd.DataFrame | None,
) -> None:
    """The checks particular to an action (evidence, deadlines, departments, people)."""
    name, rules, p = step.spec.name, step.rules, step.problems
    paused = step.out["paused_at"].iloc[step.pos].notna().to_numpy()
    if name == "pause":
        p += [f"{i} is already paused" for i in step.ids[paused]]
    if name == "resume":
        p += [f"{i} is not paused" for i in step.ids[~paused]]
    if name == "extend":
        if hours is None or not 0 < hours <= rules.max_extension_h:
            p.append(f"give hours between 0 and {rules.max_extension_h:g} to extend by")
        used = step.col("extensions")
        p += [
            f"{i} was already extended {n} times"
            for i, n in zip(step.ids, used, strict=True)
            if n >= rules.max_extensions
        ]
    if name in ("verify", "rework"):
        by = step.col("resolved_by")
        p += [
            f"{i} was reported back by {a}, who cannot also verify it"
            for i, b, a in zip(step.ids, by, actors, strict=True)
            if pd.notna(b) and b == a
        ]
    if name == "report_back":
        _check_evidence(step, ev_text, uploaded)
    if name in ("dispatch", "redispatch") and department_id is not None and departments is not None:
        if department_id not in set(departments["department_id"].astype(str)):
            p.append(f"no department {department_id!r} in the departments layer")
    if name in ("dispatch", "redispatch") and department_id is None and departments is None:
        p.append("name the department (department_id) or give the departments layer to route")
    if name == "redispatch" and department_id is not None:
        lead = step.col("lead_department_id")
        p += [
            f"{i} is already with {department_id}"
            for i, d in zip(step.ids, lead, strict=True)
            if d == department_id
        ]


def _check_evidence(step: _Step, ev_text: str | None, uploaded: pd.DataFrame | None) -> None:
    received = _received(uploaded)
    have_new = _evidence_kinds(ev_text) if received is None else set()
    evid, cats = step.col("evidence"), step.col("category")
    for k, rid in enumerate(step.ids):
        if received is not None:
            mine = received.get(str(rid), set())
            step.problems += [f"{rid}: {i} was never uploaded" for i in _items(ev_text) - mine]
            evid[k] = ";".join(sorted(mine)) or None
        need = set(step.rules.evidence(str(cats[k]))) if cats[k] in step.rules.categories else set()
        missing = need - (_evidence_kinds(evid[k]) | have_new)
        if missing:
            step.problems.append(f"{rid} lacks {'/'.join(sorted(missing))} evidence")
    if received is not None:
        step.set("evidence", evid)


def _apply(
    step: _Step,
    actors: np.ndarray,
    times: pd.Series,
    note: str | None,
    department_id: str | None,
    hours: float | None,
    ev_text: str | None,
    departments: pd.DataFrame | None,
) -> list[str | None]:
    """Make the step's changes; the events' notes."""
    name, to, out, pos = step.spec.name, step.spec.to, step.out, step.pos
    t = times.to_numpy()
    notes: list[str | None] = [note] * len(pos)
    if ev_text:
        prev = out["evidence"].iloc[pos].to_numpy(dtype=object, na_value=None)
        step.set("evidence", np.asarray([_merged(p, ev_text) for p in prev], dtype=object))
    if name in ("dispatch", "redispatch"):
        notes = _dispatch(step, department_id, departments, note)
    elif name == "extend":
        old = out["due_at"].iloc[pos].reset_index(drop=True)
        new = _add_working_h(old, np.full(len(pos), float(hours or 0)))
        step.set("due_at", new.to_numpy())
        step.set("extensions", step.col("extensions").astype("int64") + 1)
        notes = [
            f"延期 deadline extended from {_iso(o)} to {_iso(n)}: {note}"
            for o, n in zip(old, new, strict=True)
        ]
    elif name == "pause":
        step.set("paused_at", t)
    elif name == "resume":
        # the clock stood still while the case waited: the deadline moves as far
        paused = out["paused_at"].iloc[pos].reset_index(drop=True)
        shift = _worked_h(paused, times.reset_index(drop=True))
        old = out["due_at"].iloc[pos].reset_index(drop=True)
        due = _add_working_h(old, shift)
        step.set("due_at", due.to_numpy())
        step.set("paused_at", pd.NaT)
        # the lapse goes on from the moved deadline: not a new one to escalate again
        esc = out["escalated_due_at"].iloc[pos].reset_index(drop=True)
        same = (esc == old).to_numpy(dtype=bool, na_value=False)
        step.set("escalated_due_at", due.where(same, esc).to_numpy())
    _stamp(step, actors, t)
    if to is not None:
        step.set("status", to)
    if _ends_stage(name, to):
        status = np.full(len(pos), to) if to else step.status
        due = stage_due(times.to_numpy(), step.col("category"), status, rules=step.rules)
        step.set("due_at", due.to_numpy())
        step.set("paused_at", pd.NaT)
        step.set("escalation_level", 0)  # a new stage: a new lapse, if any
    return notes


def _assign_verifier(step: _Step, assignments: pd.DataFrame, at: pd.Timestamp) -> None:
    """The unit's grid worker, valid at ``at``, as the assignee of the cases without one."""
    have = step.col("assignee_id")
    missing = pd.isna(have)
    if not missing.any():
        return
    valid = _valid_assignments(assignments, at).set_index("unit_id")["worker_id"]
    found = pd.Series(step.col("unit_id")).map(valid).to_numpy(dtype=object, na_value=None)
    step.set("assignee_id", np.where(missing, found, have))


def _merged(prev: str | None, new: str) -> str:
    """The evidence items of ``prev`` and then ``new``, each once."""
    items = (prev or "").split(";") + new.split(";")
    return ";".join(dict.fromkeys(i.strip() for i in items if i.strip()))


def _stamp(step: _Step, actors: np.ndarray, t: np.ndarray) -> None:
    """The timestamps and counters an action sets."""
    name = step.spec.name
    if name == "open":
        step.set("opened_at", t)
    elif name == "report_back":
        step.set("resolved_at", t)
        step.set("resolved_by", np.asarray(actors, dtype=object))
    elif name == "close":
        step.set("closed_at", t)
    elif name == "return":
        step.set("returns", step.col("returns").astype("int64") + 1)
    elif name == "rework":
        step.set("reworks", step.col("reworks").astype("int64") + 1)
        step.set("resolved_at", pd.NaT)
        step.set("resolved_by", None)
    elif name == "reopen":
        step.set("closed_at", pd.NaT)
        step.set("resolved_at", pd.NaT)
        step.set("resolved_by", None)


def _dispatch(
    step: _Step, department_id: str | None, departments: pd.DataFrame | None, note: str | None
) -> list[str | None]:
    """Lead (and supporting) department of each case: named, or routed."""
    n = len(step.pos)
    if department_id is not None:
        lead = np.full(n, department_id, dtype=object)
        support = np.full(n, None, dtype=object)
        reason = np.full(n, f"派遣 {department_id} (named)", dtype=object)
    else:
        found = route(step.col("category"), step.col("admin_code"), departments)  # type: ignore[arg-type]
        missing = found["department_id"].isna().to_numpy()
        if missing.any():
            raise TransitionError(
                "cannot dispatch: " + "; ".join(found["reason"][missing].astype(str)),
                hint="Name the department (department_id), or add one to the departments "
                "layer; nothing was changed.",
            )
        lead = found["department_id"].to_numpy(dtype=object)
        support = found["support"].to_numpy(dtype=object, na_value=None)
        reason = found["reason"].to_numpy(dtype=object)
    step.set("lead_department_id", lead)
    step.set("support_department_ids", support)
    step.set("handler_reason", reason)
    return [
        f"派遣 lead {ld}"
        + (f"; support {sp}" if sp else "")
        + f"; {rs}"
        + (f"; {note}" if note else "")
        for ld, sp, rs in zip(lead, support, reason, strict=True)
    ]


#: the deadline each clock keeps, as the centre names it
_CLOCK_LABELS = {"open": "立案", "dispatch": "派遣", "handle": "处置", "verify": "核查"}


def _local(t: object) -> str:
    """A time as the centre reads it: Beijing time to the minute."""
    return pd.Timestamp(t).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M +08:00")  # type: ignore[arg-type]


def _iso(t: object) -> str:
    return "none" if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- hand-over


def _valid_assignments(assignments: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    a = assignments
    ok = np.ones(len(a), dtype=bool)
    if "valid_from" in a:
        vf = utc_series(a["valid_from"])
        ok &= (vf.isna() | (vf <= at)).to_numpy()
    if "valid_to" in a:
        vt = utc_series(a["valid_to"])
        ok &= (vt.isna() | (vt > at)).to_numpy()
    out = a[ok]
    if "role" in out:
        # Grid workers first; building heads only where a unit has no grid worker.
        out = out.assign(_r=(out["role"] != "grid_worker").astype(int)).sort_values(
            "_r", kind="stable"
        )
    return out.drop_duplicates("unit_id")


def hand_over(
    reports: gpd.GeoDataFrame,
    *,
    departments: pd.DataFrame,
    assignments: pd.DataFrame | None = None,
    rules: Rules = None,
    at: object = None,
    actor_id: str = "system",
    report_ids: Iterable[str] | None = None,
    warn_unrouted: bool = True,
) -> ReportChange:
    """Open (立案) and dispatch (派遣) collected cases in one go, as the centre's rules
    do for the categories it opens automatically (:func:`auto_dispatch`).

    Parameters
    ----------
    reports
        The ``reports`` layer: cases in ``collected`` that are not duplicates are
        handed over (or only ``report_ids``).
    departments
        ``department_id``, ``name``, ``admin_code``, ``categories`` (keys separated by
        ``;`` or ``,``): the lead is the one :func:`route` picks, the others matching
        support.
    assignments
        ``unit_id``, ``worker_id`` (``role``, ``valid_from``, ``valid_to``): the unit's
        grid worker becomes ``assignee_id``, the one who verifies on site.
    rules, at, actor_id
        The rules, when (default now) and who (default ``system``).
    report_ids
        Restrict to these cases.
    warn_unrouted
        Warn (:class:`~gridkit.GridkitWarning`) of cases no department handles (they
        are opened and wait for a dispatcher).

    Returns
    -------
    ReportChange
        Two events per case dispatched (``open``, ``dispatch``), one per case only
        opened.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridkit.ops.reports import intake
    >>> from gridkit.synth import sample_layers
    >>> from gridkit.synth.ops import grid_units, grid_workers
    >>> departments = sample_layers(seed=1, n_buildings=50, n_communities=2,
    ...                             tributary_km=10)["departments"]
    >>> units = grid_units(2, 2)
    >>> workers, assignments = grid_workers(units)
    >>> new = gpd.GeoDataFrame(
    ...     {"category": ["sand_mining", "street_light"], "source": ["patrol", "hotline"],
    ...      "reported_at": ["2026-05-01T08:00Z", "2026-05-01T08:05Z"]},
    ...     geometry=[Point(113.1025, 27.8025), Point(113.1075, 27.8025)], crs=4326)
    >>> reports, _ = intake(new, units=units)
    >>> reports, events = hand_over(reports, departments=departments,
    ...                             assignments=assignments, at="2026-05-01T09:00Z")
    >>> reports[["status", "lead_department_id", "assignee_id"]].values.tolist()
    [['dispatched', 'D430202-01', 'W00000'], ['dispatched', 'T430202001', 'W00001']]
    >>> print(reports["handler_reason"].iloc[1].split(" / ")[1])  # doctest: +ELLIPSIS
    no property company ... nearest township office serving street_light in 430202001...
    >>> events["action"].tolist()
    ['open', 'open', 'dispatch', 'dispatch']
    """
    rules = report_rules(rules)
    at_ts = utc_scalar(at, name="at")
    out = normalise_reports(reports)
    todo = (out["status"] == "collected").to_numpy(dtype=bool, na_value=False)
    todo &= out["duplicate_of"].isna().to_numpy()
    if report_ids is not None:
        sel = np.zeros(len(out), dtype=bool)
        sel[_positions(out, report_ids)] = True
        todo &= sel
    if not todo.any():
        return ReportChange(out, _events([]))
    ids = out["report_id"].to_numpy(dtype=object)[todo].tolist()
    out, opened = act(out, ids, "open", actor_id=actor_id, at=at_ts, rules=rules)
    found = route(out["category"].to_numpy()[todo], out["admin_code"].to_numpy()[todo], departments)
    routed = found["department_id"].notna().to_numpy()
    if (~routed).any() and warn_unrouted:
        stuck = format_rows([i for i, ok in zip(ids, routed, strict=True) if not ok])
        warnings.warn(
            f"no department handles reports {stuck} (category and place); they are opened "
            "and wait for a dispatcher.",
            GridkitWarning,
            stacklevel=2,
        )
    events = [opened]
    if routed.any():
        go = [i for i, ok in zip(ids, routed, strict=True) if ok]
        out, sent = act(
            out, go, "dispatch", actor_id=actor_id, at=at_ts, departments=departments, rules=rules
        )
        events.append(sent)
        if assignments is not None and len(assignments):
            valid = _valid_assignments(assignments, at_ts).set_index("unit_id")["worker_id"]
            p = _positions(out, go)
            out.iloc[p, out.columns.get_loc("assignee_id")] = (
                out["unit_id"].iloc[p].map(valid).astype("string").to_numpy(dtype=object)
            )
    return ReportChange(out, pd.concat(events, ignore_index=True))


def auto_dispatch(
    reports: gpd.GeoDataFrame,
    *,
    departments: pd.DataFrame,
    assignments: pd.DataFrame | None = None,
    rules: Rules = None,
    at: object = None,
    report_ids: Iterable[str] | None = None,
    warn_unrouted: bool = True,
) -> ReportChange:
    """:func:`hand_over` the collected cases whose category the rules open
    automatically (``auto_open = true``); the others wait for the centre (立案).

    Examples
    --------
    >>> import pandas as pd
    >>> from gridkit.ops.reports import intake
    >>> new = pd.DataFrame({"category": ["street_light", "illegal_construction"],
    ...                     "source": ["patrol"] * 2, "admin_code": ["430202001"] * 2})
    >>> reports, _ = intake(new, at="2026-05-11T01:00Z")
    >>> d = pd.DataFrame({"department_id": ["D1"], "name": ["区城管局"], "admin_code": ["430202"],
    ...                   "categories": ["street_light;illegal_construction"]})
    >>> reports, ev = auto_dispatch(reports, departments=d, at="2026-05-11T01:00Z")
    >>> reports["status"].tolist()
    ['dispatched', 'collected']
    """
    rules = report_rules(rules)
    out = normalise_reports(reports)
    auto = out["category"].map(rules.auto_open).to_numpy(dtype=bool, na_value=False)
    ids = out["report_id"].to_numpy(dtype=object)[auto]
    if report_ids is not None:
        ids = np.intersect1d(ids.astype(str), np.asarray(list(report_ids), dtype=str))
    if not len(ids):
        return ReportChange(out, _events([]))
    return hand_over(
        out,
        departments=departments,
        assignments=assignments,
        rules=rules,
        at=at,
        report_ids=list(ids),
        warn_unrouted=warn_unrouted,
    )


# --------------------------------------------------------------------------- by status


def action_for(status: str, to_status: str, *, rules: Rules = None) -> str | None:
    """The action that moves a case from ``status`` to ``to_status``, or None.

    The first wave's statuses are understood (``assigned`` = dispatched,
    ``in_progress`` = handling, ``resolved`` = reported back; ``returned`` from
    reported back = rework).

    Examples
    --------
    >>> action_for("handling", "reported_back"), action_for("reported_back", "returned")
    ('report_back', 'rework')
    >>> action_for("collected", "closed") is None
    True
    """
    rules = report_rules(rules)
    status = LEGACY_STATUS.get(status, status)
    target = _LEGACY_TARGET.get(to_status, to_status)
    if to_status == "returned" and status == "reported_back":
        target = "handling"  # the first wave's rework
    for a in rules.actions.values():
        if a.to == target and status in a.from_:
            return a.name
    return None


#: a first-wave target status, as the stage it meant
_LEGACY_TARGET = {"assigned": "dispatched", "in_progress": "handling", "resolved": "reported_back"}


def transition(
    reports: gpd.GeoDataFrame,
    report_ids: str | Sequence[str],
    to_status: str,
    *,
    actor_id: str,
    at: object = None,
    note: str | None = None,
    evidence: str | Mapping[str, str] | None = None,
    rules: Rules = None,
    uploaded: pd.DataFrame | None = None,
    departments: pd.DataFrame | None = None,
    department_id: str | None = None,
) -> ReportChange:
    """Move cases to ``to_status`` by the action that leads there from where they are
    (:func:`act`): for callers that think in statuses rather than actions.

    The first wave's statuses are understood (``assigned`` = dispatched,
    ``in_progress`` = handling, ``resolved`` = reported back; ``returned`` from
    reported back = rework).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1"], "category": ["cctv"], "source": ["patrol"],
    ...                   "status": ["dispatched"], "reported_at": ["2026-05-01T00:00Z"]})
    >>> r, ev = transition(r, "R1", "handling", actor_id="D1", at="2026-05-02T00:00Z")
    >>> ev[["action", "from_status", "to_status"]].iloc[0].tolist()
    ['accept', 'dispatched', 'handling']
    >>> try:
    ...     transition(r, "R1", "closed", actor_id="C1")
    ... except TransitionError as e:
    ...     print(e.message)
    cannot move R1 to 'closed': it is 'handling' (it may go to: dispatched, reported_back, returned)
    """
    rules = report_rules(rules)
    out = normalise_reports(reports)
    pos = _positions(out, report_ids)
    current = set(out["status"].to_numpy(dtype=object)[pos])
    names = {action_for(s, to_status, rules=rules) for s in current}
    chosen = [rules.actions[n] for n in names if n is not None] if len(names) == 1 else []
    if not chosen:
        nexts = sorted({t for s in current for t in rules.transitions.get(str(s), ())})
        ids = format_rows(out["report_id"].to_numpy(dtype=object)[pos].tolist())
        now = ", ".join(repr(s) for s in sorted(current, key=str))
        raise TransitionError(
            f"cannot move {ids} to {to_status!r}: it is {now} (it may go to: "
            f"{', '.join(nexts) or 'nothing'})",
            hint="See the [actions] of rules/reports.toml; nothing was changed.",
        )
    return act(
        out,
        report_ids,
        chosen[0].name,
        actor_id=actor_id,
        at=at,
        note=note,
        evidence=evidence,
        rules=rules,
        uploaded=uploaded,
        departments=departments,
        department_id=department_id,
    )


def extend_deadline(
    reports: gpd.GeoDataFrame,
    report_ids: str | Sequence[str],
    *,
    actor_id: str,
    note: str,
    by_h: float,
    at: object = None,
    rules: Rules = None,
) -> ReportChange:
    """Extend the handling deadline by ``by_h`` hours (:func:`act` ``"extend"``).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1"], "category": ["sand_mining"],
    ...                   "source": ["patrol"], "status": ["handling"],
    ...                   "reported_at": ["2026-05-01T08:00Z"], "due_at": ["2026-05-03T09:00Z"]})
    >>> r, ev = extend_deadline(r, "R1", by_h=24, actor_id="D1", note="等待水位回落",
    ...                         at="2026-05-03T08:00Z")
    >>> int(r["extensions"].iloc[0]), ev["action"].iloc[0]
    (1, 'extend')

    The deadline fell in the Labour Day holiday (1-5 May); 24 working hours are three
    and a half working days after it, the last a Saturday worked (调休):

    >>> r["due_at"].dt.tz_convert("Asia/Shanghai").dt.strftime("%a %m-%d %H:%M").iloc[0]
    'Sat 05-09 11:30'
    """
    return act(
        reports, report_ids, "extend", actor_id=actor_id, note=note, hours=by_h, at=at, rules=rules
    )


# --------------------------------------------------------------------------- the clock


def overdue(reports: pd.DataFrame, *, at: object = None, rules: Rules = None) -> pd.Series:
    """Boolean Series (aligned to ``reports``): open cases, not paused, past the
    deadline of their current stage.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1", "R2", "R3", "R4"],
    ...                   "status": ["dispatched", "handling", "closed", "collected"],
    ...                   "due_at": ["2026-05-03T09:00Z", "2026-05-10T09:00Z",
    ...                              "2026-05-03T09:00Z", None]}, index=[10, 11, 12, 13])
    >>> overdue(r, at="2026-05-04T08:00+08:00").to_dict()
    {10: True, 11: False, 12: False, 13: False}

    At the deadline itself a case is not yet overdue:

    >>> overdue(r, at="2026-05-03T17:00+08:00").tolist()
    [False, False, False, False]
    """
    rules = report_rules(rules)
    at_ts = utc_scalar(at, name="at")
    status = reports["status"].astype("string").replace(_LEGACY_TARGET | {"reported": "collected"})
    due = utc_series(reports["due_at"])
    late = status.isin(list(rules.open_statuses)).fillna(False) & due.notna() & (due < at_ts)
    if "paused_at" in reports:
        late &= utc_series(reports["paused_at"]).isna()
    return late.astype(bool)


def _escalation_targets(admin: pd.Series, levels: np.ndarray, admin_areas: pd.DataFrame | None):
    """The admin code ``levels`` steps above each case's area (the highest there is):
    one step of every case at a time (:func:`gridkit.codes.parent` on the codes still
    climbing, the admin areas' parents looked up once a step, not once a case)."""
    start = admin.to_numpy(dtype=object, na_value=None)
    up = start.copy()
    steps = np.asarray(levels, dtype=np.int64)
    climbing = np.array([c is not None for c in start], dtype=bool) & (steps > 0)
    step = 0
    while climbing.any():
        at = np.flatnonzero(climbing)
        nxt = codes.parent(pd.Series([str(c) for c in up[at]], dtype=object), admin_areas)
        nxt = nxt.to_numpy(dtype=object, na_value=None)
        top = np.array([c is None for c in nxt], dtype=bool)  # nothing above: stays
        up[at[~top]] = nxt[~top]
        step += 1
        climbing[at[top]] = False
        climbing &= steps > step
    return [None if u == c else u for u, c in zip(up, start, strict=True)]


def _notified(code: str | None, staff: pd.DataFrame | None, lead: object) -> str:
    """Whom an escalation notifies: the supervisors of the area it went to (by name from
    ``staff`` when known) and the lead department."""
    who = []
    if code is not None and staff is not None and len(staff):
        s = staff[(staff["admin_code"].astype(str) == code).to_numpy()]
        if "post" in s:
            s = s[s["post"].isin(["supervisor", "dispatcher"]).to_numpy()]
        who += s["worker_id"].astype(str).tolist()[:5]
    if not who and code is not None:
        who.append(f"supervisors of {code}")
    if lead is not None and not pd.isna(lead):
        who.append(f"department {lead}")
    return ", ".join(who) or "the centre"


def escalate(
    reports: gpd.GeoDataFrame,
    *,
    at: object = None,
    rules: Rules = None,
    admin_areas: pd.DataFrame | None = None,
    staff: pd.DataFrame | None = None,
    actor_id: str = "system",
) -> ReportChange:
    """Escalate (督办) the cases past the deadline of their current stage.

    A lapse (a case, its stage and that stage's ``due_at``) goes one admin level up
    when it happens, and one more every ``rules.escalation_repeat_h`` hours while it
    lasts, up to ``rules.escalation_max_level`` levels. The level a lapse has
    reached is kept (``escalation_level``, ``escalated_due_at``), so running this
    again at the same time, or after a restart, changes nothing: a lapse is never
    escalated twice to the same level. A run that comes late goes straight to the
    level the lapse has reached, in one event.

    Each escalation is an event with the status unchanged, ``action`` ``escalate``
    and a ``note`` beginning ``escalated (督办)`` that names the level, the area it
    went to and whom it notifies.

    Parameters
    ----------
    reports
        The ``reports`` layer.
    at
        Now (UTC; default the clock).
    rules
        ``[escalation]`` of ``reports.toml``.
    admin_areas
        For the parent of each area (``parent_code``); default the nested codes.
    staff
        The ``staff`` layer (``worker_id``, ``post``, ``admin_code``): the supervisors
        notified by name.
    actor_id
        Who escalates (default ``system``).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1"], "category": ["cctv"], "source": ["patrol"],
    ...                   "status": ["handling"], "admin_code": ["430202001"],
    ...                   "lead_department_id": ["D1"],
    ...                   "reported_at": ["2026-05-01T00:00Z"], "due_at": ["2026-05-02T00:00Z"]})
    >>> out, ev = escalate(r, at="2026-05-03T00:00Z")
    >>> int(out["escalation_level"].iloc[0]), out["escalated_to"].iloc[0]
    (1, '430202')
    >>> print(ev["note"].iloc[0])  # doctest: +NORMALIZE_WHITESPACE
    escalated (督办) to level 1, 430202: 处置 overdue 24 h (due
    2026-05-02 08:00 +08:00); notifies supervisors of 430202, department D1
    >>> len(escalate(out, at="2026-05-03T00:00Z").events)  # the same lapse: nothing more
    0
    >>> out, ev = escalate(out, at="2026-05-09T00:00Z")  # 7 days late: levels 2 and 3
    >>> int(out["escalation_level"].iloc[0]), out["escalated_to"].iloc[0]
    (3, '430000')
    """
    rules = report_rules(rules)
    at_ts = utc_scalar(at, name="at")
    out = normalise_reports(reports)
    late = overdue(out, at=at_ts, rules=rules).to_numpy()
    due = out["due_at"]
    age_h = ((at_ts - due) / pd.Timedelta(hours=1)).to_numpy(dtype=float, na_value=0.0)
    reached = np.minimum(
        rules.escalation_max_level, 1 + np.floor(age_h / rules.escalation_repeat_h)
    ).astype(int)
    same_lapse = (out["escalated_due_at"] == due).to_numpy(dtype=bool, na_value=False)
    level_now = np.where(same_lapse, out["escalation_level"].to_numpy(), 0)
    pos = np.flatnonzero(late & (reached > level_now))
    if not len(pos):
        return ReportChange(out, _events([]))
    levels = reached[pos]
    targets = _escalation_targets(out["admin_code"].iloc[pos], levels, admin_areas)
    col = out.columns.get_loc
    out.iloc[pos, col("escalation_level")] = levels
    out.iloc[pos, col("escalated_due_at")] = due.iloc[pos].to_numpy()
    out.iloc[pos, col("last_escalated_at")] = at_ts
    out.iloc[pos, col("escalated_to")] = np.asarray(targets, dtype=object)
    status = out["status"].to_numpy(dtype=object)[pos]
    leads = out["lead_department_id"].to_numpy(dtype=object, na_value=None)[pos]
    rows = []
    for k, p in enumerate(pos):  # the cases escalated now: the output's own rows
        clock = rules.stage_clock.get(str(status[k]), "")
        stage = _CLOCK_LABELS.get(clock, rules.stages.get(str(status[k]), str(status[k])))
        rows.append(
            {
                "report_id": out["report_id"].iat[p],
                "at": at_ts,
                "actor_id": actor_id,
                "action": "escalate",
                "from_status": status[k],
                "to_status": status[k],
                "note": f"escalated (督办) to level {levels[k]}"
                + (f", {targets[k]}" if targets[k] else "")
                + f": {stage} overdue {age_h[p]:.0f} h (due {_local(due.iat[p])}); notifies "
                + _notified(targets[k], staff, leads[k]),
                "evidence": None,
                "due_at": due.iat[p],
            }
        )
    return ReportChange(out, _events(rows))


#: what an escalation changes on a case (the rest of the row is the case's own)
ESCALATION_COLUMNS = ("escalation_level", "escalated_due_at", "last_escalated_at", "escalated_to")

#: a write of one case's escalation: ``(report_id, values, events)``; False when the
#: reports changed since they were read (nothing written: read them again)
EscalationWrite = Callable[[str, dict, pd.DataFrame], bool]


def escalate_each(
    read: Callable[[], pd.DataFrame],
    write: EscalationWrite,
    *,
    at: object = None,
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
    attempts: int = 20,
    backoff_s: float = 0.02,
    **options: object,
) -> pd.DataFrame:
    """Escalate the overdue cases of a workspace written by others meanwhile (other
    runs, the service's other processes): the events written.

    Each case is decided again from the reports as ``read()`` gives them just before its
    ``write``, and ``write`` must write nothing (and return False) when the reports
    changed since that read, e.g. a store's ``WriteBatch(..., if_unchanged=True)``.
    Then the reports are read again and the case decided again, so two runs at once
    escalate each lapse once: the second finds it escalated. ``guard()`` is held over
    each case's read and write (a service's write lock, for the writers of its own
    process, which the stores' check does not see). A run that meets a conflict waits
    a little (doubling up to 1 s) so the other run gets on.

    Parameters
    ----------
    read
        The ``reports`` layer as stored now.
    write
        Writes ``values`` (of :data:`ESCALATION_COLUMNS`) on the case and its events,
        in one transaction, if the reports are as last read.
    at
        Now (UTC; default the clock), the same for every case of the run.
    guard
        Held over each case's read and write.
    attempts
        Conflicts in a row on one case before giving up (:class:`GridkitError`; what
        was written stays, the next run goes on).
    backoff_s
        The first wait after a conflict.
    **options
        ``rules``, ``admin_areas``, ``staff``, ``actor_id`` of :func:`escalate`.

    Examples
    --------
    >>> import pandas as pd
    >>> stored = pd.DataFrame({"report_id": ["R1"], "category": ["cctv"],
    ...                        "source": ["patrol"], "status": ["handling"],
    ...                        "admin_code": ["430202001"], "lead_department_id": ["D1"],
    ...                        "reported_at": ["2026-05-01T00:00Z"],
    ...                        "due_at": ["2026-05-02T00:00Z"]})
    >>> def write(rid, values, events):
    ...     global stored
    ...     stored = stored.assign(**{k: [v] for k, v in values.items()})
    ...     return True
    >>> ev = escalate_each(lambda: stored, write, at="2026-05-03T00:00Z")
    >>> ev["report_id"].tolist(), int(stored["escalation_level"].iloc[0])
    (['R1'], 1)
    >>> len(escalate_each(lambda: stored, write, at="2026-05-03T00:00Z"))  # done: nothing
    0
    """
    at_ts = utc_scalar(at, name="at")
    with guard():
        before = read()
        first = escalate(before, at=at_ts, **options)
    done: list[pd.DataFrame] = []
    decided = _Decided(before, first)
    for rid in first.events["report_id"].astype(str).unique():
        events = _escalate_one(
            read, write, rid, decided, at_ts, guard, attempts, backoff_s, options
        )
        if len(events):
            done.append(events)
    return pd.concat(done, ignore_index=True) if done else first.events.iloc[:0]


class _Decided:
    """A run's first decision, case by case, with the rows it was made from: a case whose
    row is the same when it is written is decided the same (no need to decide again)."""

    def __init__(self, reports: pd.DataFrame, change: ReportChange) -> None:
        # the decided cases' rows only: a copy of every row would cost a run over a
        # city's reports seconds (and its memory twice) when nothing is overdue
        self.rows = _rows_by_id(reports, change.events["report_id"].astype(str).unique())
        self.after = change.reports.set_index(change.reports["report_id"].astype(str))
        self.events = change.events

    def get(self, rid: str, row: pd.DataFrame) -> ReportChange | None:
        """The first decision on case ``rid``, if ``row`` is still as it was."""
        was = self.rows.get(rid)
        if was is None or len(row) != 1 or not _same_row(was, row.iloc[0]):
            return None
        events = self.events[(self.events["report_id"].astype(str) == rid).to_numpy()]
        return ReportChange(self.after.loc[[rid]], events)


def _rows_by_id(reports: pd.DataFrame, wanted: np.ndarray) -> dict[str, pd.Series]:
    """The rows of the reports whose id is in ``wanted``, by id."""
    ids = reports["report_id"].astype(str).to_numpy()
    at = np.flatnonzero(np.isin(ids, wanted))
    return {ids[i]: reports.iloc[i] for i in at}


def _same_row(a: pd.Series, b: pd.Series) -> bool:
    if list(a.index) != list(b.index):
        return False
    for x, y in zip(a.to_numpy(dtype=object), b.to_numpy(dtype=object), strict=True):
        x_na = x is None or (not hasattr(x, "__len__") and bool(pd.isna(x)))
        y_na = y is None or (not hasattr(y, "__len__") and bool(pd.isna(y)))
        if x_na or y_na:
            if x_na != y_na:
                return False
        elif not bool(x == y):
            return False
    return True


def _escalate_one(
    read, write, rid, decided, at_ts, guard, attempts, backoff_s, options
) -> pd.DataFrame:
    """One case: decided from the reports as read now (as first decided if its row is
    unchanged), written if they are unchanged since that read."""
    wait = backoff_s
    for _ in range(attempts):
        with guard():
            reports = read()
            row = reports[(reports["report_id"].astype(str) == rid).to_numpy()]
            change = decided.get(rid, row)
            if change is None:
                change = escalate(row, at=at_ts, **options)
            if not len(change.events):
                return change.events  # escalated meanwhile (another run), or changed
            after = change.reports.iloc[0]
            values = {c: after[c] for c in ESCALATION_COLUMNS}
            if write(rid, values, change.events):
                return change.events
        time.sleep(wait)  # outside the guard: the other writer gets on
        wait = min(1.0, wait * 2)
    raise GridkitError(
        f"escalation: the reports changed {attempts} times while case {rid} was "
        "escalated; stopped (what was escalated stays).",
        hint="Run it again: it goes on from where it stopped.",
    )
