"""What the ``/maps/view`` page can show: coverage, compliance or cases, at each zoom.

A :class:`Theme` is one view over the units of a :class:`~gridkit.maps.ViewIndex`: a
status class per unit (street zoom), a few numbers per unit (the popup), and per
village or township the sums and a class (the choropleth at city and county zoom).
The numbers come in already computed (compliance rows from
``gridkit.ops.patrol_compliance``; open and overdue counts from the case rules of
``gridkit.ops``): this module only sums and classes them, so a view never
re-implements a rule.

Classes and colours (:data:`VIEWS`) are colour-blind safe: blue / orange / red from
ColorBrewer's RdYlBu (never red against green), a sequential purple for case rates,
a very light grey (dashed outline on units) for "nothing required"; the classes of
each view differ in lightness, so they are told apart in greyscale too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridkit.errors import GridkitError
from gridkit.maps.areas import RATE_BINS, RATE_COLORS, rate_class
from gridkit.webmap import staffed_class

__all__ = [
    "VIEWS",
    "Theme",
    "case_rates",
    "cases_theme",
    "completion",
    "compliance_theme",
    "coverage_theme",
]

_GOOD, _MID, _BAD, _NONE = "#2c7bb6", "#fdae61", "#d7191c", "#f0f0f0"

#: per view, the unit classes and the area classes in legend order, with their colours
VIEWS: dict[str, dict[str, dict[str, str]]] = {
    "coverage": {
        "units": {"staffed": "#1a9641", "unassigned": "#7b3294"},
        "areas": {"staffed_all": _GOOD, "staffed_most": _MID, "staffed_low": _BAD},
    },
    "compliance": {
        "units": {"full": _GOOD, "partial": _MID, "low": _BAD, "no_data": _NONE},
        "areas": {"full": _GOOD, "partial": _MID, "low": _BAD, "no_data": _NONE},
    },
    "cases": {
        "units": {"case_none": "#f2f0f7", "case_open": "#9e9ac8", "case_overdue": "#3f007d"},
        "areas": dict(RATE_COLORS),
    },
}
RATE_TEXT = {"rate_none": "0", "rate_low": f"< {RATE_BINS[1]:g}",
             "rate_mid": f"{RATE_BINS[1]:g}–{RATE_BINS[2]:g}",
             "rate_high": f"≥ {RATE_BINS[2]:g}"}  # fmt: skip


@dataclass(frozen=True)
class Theme:
    """One view over an index's units: ``unit_class`` and ``unit_values`` aligned to
    its units, ``area_values`` (with class ``c``) aligned to its areas, and ``until``:
    the time after which the view is stale (a case falls overdue), if any.

    Examples
    --------
    >>> t = coverage_theme(np.array([True, False]), np.array([0, 0]), 1)
    >>> t.unit_class.tolist(), t.area_values.to_dict("records")
    (['staffed', 'unassigned'], [{'staffed': 1, 'c': 'staffed_low'}])
    """

    name: str
    unit_class: np.ndarray
    unit_values: pd.DataFrame
    area_values: pd.DataFrame | None
    until: pd.Timestamp | None = None

    def stale(self, now: pd.Timestamp) -> bool:
        """Whether ``now`` is past :attr:`until` (build the view again).

        Examples
        --------
        >>> t = coverage_theme(np.array([True]), np.array([-1]), 0)
        >>> t.stale(pd.Timestamp.now(tz="UTC"))
        False
        """
        return self.until is not None and now >= self.until


def _sums(area_of: np.ndarray, n_areas: int, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-unit ``values`` summed into their areas (``area_of`` -1: in no area)."""
    inside = area_of >= 0
    return pd.DataFrame({
        k: np.bincount(area_of[inside], weights=np.asarray(v, dtype=float)[inside],
                       minlength=n_areas)
        for k, v in values.items()
    })  # fmt: skip


def _positions(ids: pd.Series | pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value among ``ids`` (-1: not there)."""
    index = ids if isinstance(ids, pd.Index) else pd.Index(ids.astype(str))
    return np.asarray(index.get_indexer(values.astype(str).to_numpy()))


def coverage_theme(staffed: np.ndarray, area_of: np.ndarray, n_areas: int) -> Theme:
    """Units staffed or not; areas by the share of units staffed (all, ≥ 80 %, < 80 %).

    Examples
    --------
    >>> t = coverage_theme(np.array([True, True, False, True]), np.array([0, 0, 1, 1]), 2)
    >>> t.area_values["c"].tolist()
    ['staffed_all', 'staffed_low']
    """
    staffed = np.asarray(staffed, dtype=bool)
    area = None
    if n_areas:
        area = _sums(area_of, n_areas, {"staffed": staffed, "n": np.ones(len(staffed))})
        share = area["staffed"] / area["n"].where(area["n"] > 0)
        area = pd.DataFrame({"staffed": area["staffed"].astype(int), "c": staffed_class(share)})
    return Theme("coverage", np.where(staffed, "staffed", "unassigned"), pd.DataFrame(), area)


def completion(required: pd.Series, done: pd.Series) -> np.ndarray:
    """The compliance class of patrols ``done`` against ``required`` (per unit or summed
    per area): ``full``, ``partial`` (≥ 50 %), ``low``, ``no_data`` (nothing required).

    Examples
    --------
    >>> completion(pd.Series([4, 4, 4, 0]), pd.Series([4, 2, 1, 0])).tolist()
    ['full', 'partial', 'low', 'no_data']
    """
    share = done / required.where(required > 0)
    done_cls = np.where(share >= 1, "full", np.where(share >= 0.5, "partial", "low"))
    return np.where(required <= 0, "no_data", done_cls)


def compliance_theme(
    ids: pd.Series | pd.Index, rows: pd.DataFrame, area_of: np.ndarray, n_areas: int
) -> Theme:
    """Units and areas by the share of required patrols done.

    ``rows`` are compliance rows (``unit_id``, ``required``, ``done``, one per worker
    and unit, as ``gridkit.ops.patrol_compliance`` returns them); a unit sums its
    rows, counting no more patrols done than required. Classes: ``full`` (all done),
    ``partial`` (≥ 50 %), ``low`` (< 50 %), ``no_data`` (nothing required).

    Examples
    --------
    >>> rows = pd.DataFrame({"unit_id": ["A", "A", "B"], "worker_id": ["W1", "W2", "W1"],
    ...                      "required": [4, 4, 4], "done": [4, 1, 9]})
    >>> t = compliance_theme(pd.Series(["A", "B", "C"]), rows, np.array([0, 0, 0]), 1)
    >>> t.unit_class.tolist(), t.unit_values.to_dict("list")
    (['partial', 'full', 'no_data'], {'q': [8, 4, 0], 'd': [5, 4, 0]})
    >>> t.area_values.to_dict("records")
    [{'required': 12, 'done': 9, 'c': 'partial'}]
    """
    for col in ("unit_id", "required", "done"):
        if col not in rows.columns:
            raise GridkitError(f"compliance rows lack column {col!r}.",
                               hint="Pass the rows of gridkit.ops.patrol_compliance.")  # fmt: skip
    r = rows[["required", "done"]].apply(pd.to_numeric, errors="coerce").fillna(0)
    pos = _positions(ids, rows["unit_id"])
    inside = pos >= 0
    q = np.bincount(pos[inside], weights=r["required"].to_numpy()[inside], minlength=len(ids))
    d = np.bincount(pos[inside], weights=r["done"].to_numpy()[inside], minlength=len(ids))
    unit = pd.DataFrame({"q": q.astype(int), "d": np.minimum(d, q).astype(int)})
    area = None
    if n_areas:
        s = _sums(area_of, n_areas, {"required": unit["q"], "done": unit["d"]}).astype(int)
        area = s.assign(c=completion(s["required"], s["done"]))
    return Theme("compliance", completion(unit["q"], unit["d"]), unit, area)


def cases_theme(
    ids: pd.Series | pd.Index,
    cases: pd.DataFrame,
    sizes: pd.DataFrame,
    area_of: np.ndarray,
    n_areas: int,
    *,
    until: pd.Timestamp | None = None,
) -> Theme:
    """Units by their open and overdue cases; areas by open cases per 1,000
    households (community units) or per km of river (units without households).

    ``cases`` has one row per open case: ``unit_id`` and ``overdue`` (bool, as
    ``gridkit.ops.cases.overdue`` says); ``sizes`` the units' ``households`` and
    ``km`` (aligned to ``ids``). An area's class is the higher of its two rates'
    classes (:func:`~gridkit.maps.areas.rate_class`); ``r`` and ``rk`` are the rates
    (missing without households or river), ``late`` the overdue cases.

    Examples
    --------
    >>> ids = pd.Series(["A", "B", "R"])
    >>> cases = pd.DataFrame({"unit_id": ["A", "A", "R"], "overdue": [True, False, False]})
    >>> sizes = pd.DataFrame({"households": [300, 700, 0], "km": [0, 0, 2.0]})
    >>> t = cases_theme(ids, cases, sizes, np.array([0, 0, 0]), 1)
    >>> t.unit_class.tolist()
    ['case_overdue', 'case_none', 'case_open']
    >>> t.area_values[["open", "late", "r", "rk", "c"]].to_dict("records")
    [{'open': 3, 'late': 1, 'r': 2.0, 'rk': 0.5, 'c': 'rate_mid'}]
    """
    # positions of the cases' units (an Index passed in keeps its hash table: a million
    # units are not hashed again for each build); cases outside the units are dropped
    pos = _positions(ids, cases["unit_id"])
    late_flag = cases["overdue"].fillna(False).astype(bool).to_numpy()
    inside = pos >= 0
    n_open = np.bincount(pos[inside], minlength=len(ids))
    n_late = np.bincount(pos[inside & late_flag], minlength=len(ids))
    cls = np.where(n_late > 0, "case_overdue", np.where(n_open > 0, "case_open", "case_none"))
    unit = pd.DataFrame({"o": n_open, "l": n_late})
    area = None
    if n_areas:
        hh = pd.to_numeric(sizes["households"], errors="coerce").fillna(0).to_numpy()
        km = pd.to_numeric(sizes["km"], errors="coerce").fillna(0).to_numpy()
        community = hh > 0
        s = _sums(area_of, n_areas, {
            "open": n_open, "late": n_late, "households": hh, "km": np.where(community, 0, km),
            "open_hh": np.where(community, n_open, 0), "open_km": np.where(community, 0, n_open),
        })  # fmt: skip
        area = case_rates(s)
    return Theme("cases", cls, unit, area, until=until)


def case_rates(s: pd.DataFrame) -> pd.DataFrame:
    """Areas' case numbers and class from their sums: ``open``, ``late``,
    ``households`` and ``open_hh`` (community units), ``km`` and ``open_km`` (units
    without households). ``r``: open cases per 1,000 households, ``rk``: per km of
    river (missing without either); class ``c``: the higher of the two rates' classes.

    Examples
    --------
    >>> s = pd.DataFrame({"open": [3.0], "late": [1.0], "households": [1000.0], "km": [2.0],
    ...                   "open_hh": [2.0], "open_km": [1.0]})
    >>> case_rates(s).to_dict("records")
    [{'open': 3, 'late': 1, 'households': 1000, 'km': 2.0, 'r': 2.0, 'rk': 0.5, 'c': 'rate_mid'}]
    """
    r = (s["open_hh"] / (s["households"] / 1000.0).where(s["households"] > 0)).round(2)
    rk = (s["open_km"] / s["km"].where(s["km"] > 0)).round(2)
    order = {k: i for i, k in enumerate(RATE_COLORS)}
    worst = np.maximum(rate_class(r).map(order).to_numpy(), rate_class(rk).map(order).to_numpy())
    return pd.DataFrame({
        "open": s["open"].astype(int), "late": s["late"].astype(int),
        "households": s["households"].astype(int), "km": s["km"].round(2), "r": r, "rk": rk,
        "c": np.asarray(list(RATE_COLORS))[worst],
    })  # fmt: skip
