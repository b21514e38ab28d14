"""Who may do what with a case: one permission model for every person.

A person (a row of ``workers``) holds appointments, each valid for a time: grid worker
of units (``assignments``), chief of river sections (``river_chiefs``), building head
of buildings (``building_heads``), staff of a department, dispatcher or supervisor
of an area (the ``staff`` layer). What they may do with a case follows from them, and
one person with two appointments is one :class:`Person` (and one key):

=============  ===================================================================
role for a     holds when
case
=============  ===================================================================
dispatcher     the person dispatches or supervises an area holding the case's
supervisor     the person supervises an area holding the case's
department     the person is staff of the case's lead department
verifier       the person is grid worker of the case's unit, chief of its river
               section, or supervisor of its area
=============  ===================================================================

The actions of the rules (``[actions]`` of ``reports.toml``) say which role each needs;
:func:`may` answers for a person and a case, :func:`case_roles` for a whole layer at
once ("my cases").

Examples
--------
>>> import pandas as pd
>>> staff = pd.DataFrame({"worker_id": ["P1", "P2"], "post": ["department", "dispatcher"],
...                       "admin_code": ["430202", "430202"], "department_id": ["D1", None]})
>>> assignments = pd.DataFrame({"unit_id": ["U1"], "worker_id": ["P1"]})
>>> p1 = appointments("P1", staff=staff, assignments=assignments)
>>> p1.departments, p1.units
(frozenset({'D1'}), frozenset({'U1'}))
>>> case = {"admin_code": "430202001", "unit_id": "U1", "lead_department_id": "D1"}
>>> sorted(roles_for(p1, case)), sorted(roles_for(appointments("P2", staff=staff), case))
(['department', 'verifier'], ['dispatcher'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.ops.reports import ReportRules, report_rules
from gridkit.ops.times import utc_scalar, utc_series

__all__ = ["ROLES", "Person", "appointments", "case_roles", "may", "roles_for"]

#: the roles a person may hold for a case (``by`` of the rules' actions)
ROLES = ("dispatcher", "supervisor", "department", "verifier")


@dataclass(frozen=True)
class Person:
    """A person's appointments at a time: what they are responsible for.

    ``dispatch`` and ``supervise`` are admin-code scopes (``""`` = everywhere);
    ``admin`` may do everything.

    Examples
    --------
    >>> p = Person("W1", units=frozenset({"U1"}), supervise=("430202",))
    >>> p.appointed, Person().appointed
    (True, False)
    """

    worker_id: str | None = None
    units: frozenset[str] = field(default_factory=frozenset)
    section_units: frozenset[str] = field(default_factory=frozenset)
    sections: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    buildings: frozenset[str] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    dispatch: tuple[str, ...] = ()
    supervise: tuple[str, ...] = ()
    admin: bool = False

    @property
    def appointed(self) -> bool:
        """Whether the person holds any appointment at all."""
        return bool(
            self.admin
            or self.units
            or self.sections
            or self.buildings
            or self.departments
            or self.dispatch
            or self.supervise
        )

    def with_posts(
        self,
        *,
        dispatch: tuple[str, ...] = (),
        supervise: tuple[str, ...] = (),
        departments: frozenset[str] = frozenset(),
        admin: bool = False,
    ) -> Person:
        """This person with more posts (a key's own role and scope, say).

        Examples
        --------
        >>> Person("W1").with_posts(supervise=("430202",)).supervise
        ('430202',)
        """
        return Person(
            self.worker_id,
            self.units,
            self.section_units,
            self.sections,
            self.buildings,
            self.departments | departments,
            tuple(dict.fromkeys(self.dispatch + dispatch)),
            tuple(dict.fromkeys(self.supervise + supervise)),
            self.admin or admin,
        )


def _valid(df: pd.DataFrame | None, worker_id: str, at: pd.Timestamp, col: str = "worker_id"):
    """The rows of ``df`` for ``worker_id`` valid at ``at`` (``valid_from``/``valid_to``)."""
    if df is None or not len(df) or col not in df:
        return None
    rows = df[(df[col].astype(str) == worker_id).to_numpy(dtype=bool, na_value=False)]
    ok = np.ones(len(rows), dtype=bool)
    if "valid_from" in rows:
        vf = utc_series(rows["valid_from"])
        ok &= (vf.isna() | (vf <= at)).to_numpy()
    if "valid_to" in rows:
        vt = utc_series(rows["valid_to"])
        ok &= (vt.isna() | (vt > at)).to_numpy()
    return rows[ok]


def _section_units(
    sections: pd.DataFrame, units: pd.DataFrame | None, reaches: pd.DataFrame | None
):
    """Units of the river sections (a river inside an area): by the reach's river."""
    if units is None or reaches is None or "reach_id" not in units or not len(sections):
        return frozenset()
    river_of = pd.Series(reaches["river_id"].astype(str).to_numpy(), index=reaches["reach_id"])
    river = units["reach_id"].map(river_of)
    hit = np.zeros(len(units), dtype=bool)
    for rid, code in zip(sections["river_id"].astype(str), sections["admin_code"], strict=True):
        hit |= ((river == rid) & codes.in_scope(units["admin_code"], str(code))).to_numpy(
            dtype=bool, na_value=False
        )
    return frozenset(units["unit_id"].astype(str)[hit])


def appointments(
    worker_id: str,
    *,
    assignments: pd.DataFrame | None = None,
    river_chiefs: pd.DataFrame | None = None,
    staff: pd.DataFrame | None = None,
    building_heads: pd.DataFrame | None = None,
    units: pd.DataFrame | None = None,
    reaches: pd.DataFrame | None = None,
    at: object = None,
) -> Person:
    """The :class:`Person` ``worker_id`` is at ``at`` (default now), from the layers of
    appointments given (absent ones hold none).

    Parameters
    ----------
    worker_id
        A ``workers`` id.
    assignments
        ``unit_id``, ``worker_id`` (``valid_from``, ``valid_to``): grid worker of units.
    river_chiefs
        ``worker_id``, ``river_id``, ``admin_code`` (``valid_from``, ``valid_to``):
        chief of river sections; with ``units`` and ``reaches`` also their units.
    staff
        ``worker_id``, ``post`` (dispatcher, supervisor, department), ``admin_code``,
        ``department_id`` (``valid_from``, ``valid_to``).
    building_heads
        ``building_id``, ``worker_id`` (``valid_from``, ``valid_to``): building head
        (楼栋长) of buildings.
    units, reaches
        To find the units of a chief's sections.
    at
        When (UTC; default now).

    Examples
    --------
    >>> import pandas as pd
    >>> chiefs = pd.DataFrame({"worker_id": ["W9"], "river_id": ["R1"],
    ...                        "admin_code": ["430202001"], "valid_to": ["2026-01-01T00:00Z"]})
    >>> appointments("W9", river_chiefs=chiefs, at="2025-06-01T00:00Z").sections
    frozenset({('R1', '430202001')})
    >>> appointments("W9", river_chiefs=chiefs, at="2026-06-01T00:00Z").appointed
    False
    """
    wid = str(worker_id)
    at_ts = utc_scalar(at, name="at")
    kw: dict[str, object] = {"worker_id": wid}
    a = _valid(assignments, wid, at_ts)
    if a is not None:
        kw["units"] = frozenset(a["unit_id"].astype(str))
    c = _valid(river_chiefs, wid, at_ts)
    if c is not None and len(c):
        kw["sections"] = frozenset(
            zip(c["river_id"].astype(str), c["admin_code"].astype(str), strict=True)
        )
        kw["section_units"] = _section_units(c, units, reaches)
    b = _valid(building_heads, wid, at_ts)
    if b is not None:
        kw["buildings"] = frozenset(b["building_id"].astype(str))
    s = _valid(staff, wid, at_ts)
    if s is not None and len(s):
        post = s["post"].astype(str)
        area = s["admin_code"].astype("string").fillna("").astype(str)
        kw["dispatch"] = tuple(dict.fromkeys(area[post == "dispatcher"]))
        kw["supervise"] = tuple(dict.fromkeys(area[post == "supervisor"]))
        if "department_id" in s:
            kw["departments"] = frozenset(
                s["department_id"][post == "department"].dropna().astype(str)
            )
    return Person(**kw)  # type: ignore[arg-type]


def _covers(scopes: tuple[str, ...], code: object) -> bool:
    if "" in scopes:
        return True
    if code is None or pd.isna(code):  # type: ignore[arg-type]
        return False
    return any(codes.in_scope(str(code), s) for s in scopes)


def roles_for(person: Person, case: Mapping[str, object]) -> set[str]:
    """The roles ``person`` holds for one case (``admin_code``, ``unit_id``,
    ``lead_department_id``): the ``by`` of the rules' actions.

    Examples
    --------
    >>> p = Person("W1", supervise=("430202",))
    >>> sorted(roles_for(p, {"admin_code": "430202001", "unit_id": "U7"}))
    ['dispatcher', 'supervisor', 'verifier']
    >>> roles_for(p, {"admin_code": "430203001"})
    set()
    """
    if person.admin:
        return set(ROLES)
    code, unit = case.get("admin_code"), case.get("unit_id")
    lead = case.get("lead_department_id")
    out = set()
    supervises = _covers(person.supervise, code)
    if supervises:
        out |= {"supervisor", "dispatcher", "verifier"}
    if _covers(person.dispatch, code):
        out.add("dispatcher")
    if lead is not None and not pd.isna(lead) and str(lead) in person.departments:  # type: ignore[arg-type]
        out.add("department")
    if (
        unit is not None
        and not pd.isna(unit)
        and str(unit) in (person.units | person.section_units)
    ):  # type: ignore[arg-type]
        out.add("verifier")
    return out


def may(
    person: Person,
    action: str,
    case: Mapping[str, object],
    *,
    rules: ReportRules | str | Path | None = None,
) -> str | None:
    """Why ``person`` may not take ``action`` on ``case``, or None when they may.

    Examples
    --------
    >>> p = Person("W1", units=frozenset({"U7"}))
    >>> may(p, "verify", {"admin_code": "430202001", "unit_id": "U7"}) is None
    True
    >>> may(p, "close", {"admin_code": "430202001", "unit_id": "U7"})
    'close (结案) is for: dispatcher'
    """
    rules = report_rules(rules)
    spec = rules.actions.get(action)
    if spec is None:
        return f"unknown action {action!r}"
    if roles_for(person, case) & set(spec.by):
        return None
    return f"{action} ({spec.label_zh}) is for: {', '.join(spec.by)}"


def case_roles(reports: pd.DataFrame, person: Person) -> pd.DataFrame:
    """For each case of ``reports`` (aligned), whether ``person`` holds each role:
    "my cases" for any person, vectorised over the layer.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"report_id": ["R1", "R2"], "admin_code": ["430202001", "430203001"],
    ...                   "unit_id": ["U1", "U2"], "lead_department_id": ["D1", "D2"]})
    >>> case_roles(r, Person("P", departments=frozenset({"D2"}), dispatch=("430202",)))
       dispatcher  supervisor  department  verifier
    0        True       False       False     False
    1       False       False        True     False
    """
    n = len(reports)

    def scoped(scopes: tuple[str, ...]) -> np.ndarray:
        if "" in scopes or person.admin:
            return np.ones(n, dtype=bool)
        hit = np.zeros(n, dtype=bool)
        col = reports["admin_code"] if "admin_code" in reports else pd.Series([None] * n)
        for s in scopes:
            hit |= codes.in_scope(col, s).to_numpy(dtype=bool, na_value=False)
        return hit

    def member(col: str, ids: frozenset[str]) -> np.ndarray:
        if col not in reports or not ids:
            return np.full(n, person.admin)
        return reports[col].astype("string").isin(list(ids)).to_numpy(dtype=bool, na_value=False)

    sup = scoped(person.supervise)
    return pd.DataFrame(
        {
            "dispatcher": sup | scoped(person.dispatch),
            "supervisor": sup,
            "department": member("lead_department_id", person.departments) | person.admin,
            "verifier": sup | member("unit_id", person.units | person.section_units),
        },
        index=reports.index,
    )
