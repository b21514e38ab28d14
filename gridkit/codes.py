"""Administrative division codes (行政区划代码, GB/T 2260 and the statistical 12-digit codes).

Codes nest: a province is ``430000``, a city (prefecture) ``430200``, a county-level
area ``430202`` (a district), ``430281`` (a county-level city) or ``430221`` (a
county), all six digits; a township or street (乡镇/街道) adds three digits
(``430202001``) and a village or community (村/社区) three more
(``430202001001``). Statistical exports pad to twelve digits
(``430202000000`` is the district); :func:`normalise` removes that padding.

The **level is read from the whole code**, not its length alone: six digits are a
province when the last four are zeros, a city when the last two are, else a
county-level area. Every function takes one code (``str`` or ``int``) and returns a
scalar, or a ``pandas.Series`` / array-like of codes and returns a ``Series``
aligned to it (vectorised with pandas string methods).

This is the one place where codes are cut or compared; everything in gridkit and
the API goes through it.

Examples
--------
>>> from gridkit import codes
>>> codes.level("430000"), codes.level("430200"), codes.level("430202"), codes.level("430281")
('province', 'city', 'county', 'county')
>>> codes.level("430202001"), codes.level("430202001001")
('township', 'village')
>>> codes.parent("430202001001"), codes.parent("430202"), codes.parent("430200")
('430202001', '430200', '430000')
>>> codes.in_scope("430202001001", "430200"), codes.in_scope("430302", "430200")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import overload

import numpy as np
import pandas as pd

__all__ = [
    "DIGITS",
    "LEVELS",
    "ancestor",
    "ancestors",
    "district",
    "in_scope",
    "level",
    "normalise",
    "parent",
    "prefix",
]

#: Administrative levels from the top down.
LEVELS = ("province", "city", "county", "township", "village")

#: Significant digits of each level (a city is ``4302``, written ``430200``).
DIGITS = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}
_SIGNIFICANT = DIGITS

Codes = pd.Series | np.ndarray | list | tuple


def _none(s: pd.Series) -> pd.Series:
    # missing values as None (not NaN) in an object Series
    return s.astype(object).where(s.notna(), None)


def _apply(series_fn, scalar_fn, code):
    """Run a rule on many codes (vectorised, Series out) or on one (plain Python: a
    single code, as in an API request, costs microseconds, not a pandas round trip)."""
    if _is_many(code):
        return _per_unique(series_fn, _series(code))
    return scalar_fn(code)


def _per_unique(series_fn, s: pd.Series) -> pd.Series:
    """``series_fn`` on the distinct codes only, mapped back: a layer of a million rows
    holds a few thousand codes. Missing codes give None."""
    idx, uniques = pd.factorize(s)
    if len(uniques) * 2 > len(s):
        return series_fn(s)
    out = series_fn(pd.Series(uniques, dtype=object)).to_numpy(dtype=object)
    values = np.full(len(s), None, dtype=object)
    found = idx >= 0
    values[found] = out[idx[found]]
    return pd.Series(values, index=s.index, dtype=object)


# ------------------------------------------------------------------ one code at a time


def _norm1(code: object) -> str | None:
    if code is None or code is pd.NA or (isinstance(code, float) and code != code):
        return None
    t = str(code).strip()
    if len(t) == 12 and t.endswith("000000"):
        t = t[:6]
    elif len(t) == 12 and t.endswith("000"):
        t = t[:9]
    return t.ljust(6, "0") if len(t) in (2, 4) else t


def _level1(code: object) -> str | None:
    t = _norm1(code)
    if t is None:
        return None
    if len(t) == 6:
        return "province" if t.endswith("0000") else "city" if t.endswith("00") else "county"
    return {9: "township", 12: "village"}.get(len(t))


def _prefix1(code: object) -> str | None:
    t, lv = _norm1(code), _level1(code)
    return t[: _SIGNIFICANT[lv]] if lv in ("province", "city") else t


def _parent1(code: object) -> str | None:
    t, lv = _norm1(code), _level1(code)
    if lv is None or lv == "province":
        return None
    up = t[: _SIGNIFICANT[LEVELS[LEVELS.index(lv) - 1]]]
    return up.ljust(6, "0") if len(up) < 6 else up


def _ancestor1(code: object, at: str) -> str | None:
    t, lv = _norm1(code), _level1(code)
    if lv is None or LEVELS.index(lv) < LEVELS.index(at):
        return None
    return t[: _SIGNIFICANT[at]].ljust(6, "0")


# ----------------------------------------------------------------- many codes at once


def _is_many(code: object) -> bool:
    return isinstance(code, pd.Series | pd.Index | np.ndarray | list | tuple)


def _series(codes: Iterable[object]) -> pd.Series:
    s = codes if isinstance(codes, pd.Series) else pd.Series(list(codes), dtype=object)
    return s.astype(object).where(s.notna(), None)


def _norm_series(s: pd.Series) -> pd.Series:
    text = s.map(lambda c: None if c is None else str(c).strip(), na_action="ignore")
    text = text.astype(object)
    n = text.str.len()
    # 12-digit statistical padding: 430202000000 -> 430202, 430202001000 -> 430202001
    twelve = n == 12
    text = text.where(~(twelve & text.str.endswith("000000", na=False)), text.str[:6])
    twelve = text.str.len() == 12
    text = text.where(~(twelve & text.str.endswith("000", na=False)), text.str[:9])
    # short prefixes stand for their six-digit code: 43 -> 430000, 4302 -> 430200
    n = text.str.len()
    short = (n == 2) | (n == 4)
    text = text.where(~short, text.str.ljust(6, "0"))
    return _none(text)


@overload
def normalise(code: str | int) -> str: ...
@overload
def normalise(code: Codes) -> pd.Series: ...
def normalise(code):
    """Canonical form of admin codes: text, no 12-digit padding, six digits at least.

    Parameters
    ----------
    code : str, int or array-like
        One code or many.

    Returns
    -------
    str or pandas.Series
        ``430202000000`` -> ``430202``; ``430202001000`` -> ``430202001``; ``43`` ->
        ``430000``; ``4302`` -> ``430200``. Missing values stay missing.

    Examples
    --------
    >>> normalise("430202000000"), normalise(430202001000), normalise("4302")
    ('430202', '430202001', '430200')
    >>> normalise(["430211", None, "430211003000"]).tolist()
    ['430211', None, '430211003']
    """
    return _apply(_norm_series, _norm1, code)


def _level_series(s: pd.Series) -> pd.Series:
    s = _norm_series(s)
    n = s.str.len()
    out = pd.Series([None] * len(s), index=s.index, dtype=object)
    six = n == 6
    out[six & s.str.endswith("0000", na=False)] = "province"
    out[six & ~s.str.endswith("0000", na=False) & s.str.endswith("00", na=False)] = "city"
    out[six & ~s.str.endswith("00", na=False)] = "county"
    out[n == 9] = "township"
    out[n == 12] = "village"
    return _none(out)


@overload
def level(code: str | int) -> str | None: ...
@overload
def level(code: Codes) -> pd.Series: ...
def level(code):
    """Administrative level of codes: ``province``, ``city``, ``county``, ``township``,
    ``village``, or ``None`` for a code of no level (wrong length).

    Six-digit codes are told apart by their zeros: ``430000`` province, ``430200``
    city, ``430202`` / ``430281`` county level.

    Examples
    --------
    >>> level("430281"), level("430200"), level("430202001001"), level("4302021")
    ('county', 'city', 'village', None)
    """
    return _apply(_level_series, _level1, code)


def _prefix_series(s: pd.Series) -> pd.Series:
    s = _norm_series(s)
    lv = _level_series(s)
    out = s.copy()
    out[lv == "province"] = s.str[:2]
    out[lv == "city"] = s.str[:4]
    return out


@overload
def prefix(code: str | int) -> str: ...
@overload
def prefix(code: Codes) -> pd.Series: ...
def prefix(code):
    """The prefix every code inside an area starts with: ``430000`` -> ``43``,
    ``430200`` -> ``4302``, ``430202`` -> ``430202``.

    Examples
    --------
    >>> prefix("430000"), prefix("430200"), prefix("430202001")
    ('43', '4302', '430202001')
    """
    return _apply(_prefix_series, _prefix1, code)


def _parent_series(s: pd.Series) -> pd.Series:
    s = _norm_series(s)
    lv = _level_series(s)
    out = pd.Series([None] * len(s), index=s.index, dtype=object)
    out[lv == "village"] = s.str[:9]
    out[lv == "township"] = s.str[:6]
    out[lv == "county"] = s.str[:4] + "00"
    out[lv == "city"] = s.str[:2] + "0000"
    return _none(out)


def _table_parents(admin_areas: pd.DataFrame | None) -> dict[str, str]:
    if admin_areas is None or "parent_code" not in admin_areas:
        return {}
    known = admin_areas[admin_areas["parent_code"].notna()]
    return dict(
        zip(
            normalise(known["admin_code"]).tolist(),
            normalise(known["parent_code"]).tolist(),
            strict=True,
        )
    )


@overload
def parent(code: str | int, admin_areas: pd.DataFrame | None = None) -> str | None: ...
@overload
def parent(code: Codes, admin_areas: pd.DataFrame | None = None) -> pd.Series: ...
def parent(code, admin_areas=None):
    """The area one level up, or ``None`` above a province.

    Parameters
    ----------
    code : str, int or array-like
        One code or many.
    admin_areas : DataFrame, optional
        An ``admin_areas`` layer. Where it gives a ``parent_code``, that wins (a
        county-level city directly under a province, 省直辖县级市, has no city).

    Examples
    --------
    >>> parent("430202001001"), parent("430202001"), parent("430281"), parent("430000")
    ('430202001', '430202', '430200', None)
    >>> import pandas as pd
    >>> areas = pd.DataFrame({"admin_code": ["429004"], "parent_code": ["420000"]})
    >>> parent("429004", areas)
    '420000'
    """
    table = _table_parents(admin_areas)
    many = _is_many(code)
    if not many:
        return table.get(_norm1(code)) or _parent1(code)
    s = _series(code)
    out = _per_unique(_parent_series, s)
    if table:
        from_table = _norm_series(s).map(table)
        out = _none(from_table.where(from_table.notna(), out))
    return out if many else out.iloc[0]


def ancestors(code: str | int, admin_areas: pd.DataFrame | None = None) -> list[str]:
    """Every area above ``code``, nearest first.

    Examples
    --------
    >>> ancestors("430202001001")
    ['430202001', '430202', '430200', '430000']
    """
    out: list[str] = []
    up = parent(code, admin_areas)
    while up is not None and up not in out:
        out.append(up)
        up = parent(up, admin_areas)
    return out


@overload
def ancestor(code: str | int, at: str) -> str | None: ...
@overload
def ancestor(code: Codes, at: str) -> pd.Series: ...
def ancestor(code, at):
    """The area at level ``at`` containing ``code`` (the code itself at its own
    level), or ``None`` where ``code`` is above that level.

    Examples
    --------
    >>> ancestor("430202001001", "county"), ancestor("430202001001", "city")
    ('430202', '430200')
    >>> ancestor("430200", "township") is None
    True
    """
    if at not in _SIGNIFICANT:
        raise ValueError(f"Unknown admin level {at!r}; choose one of {', '.join(LEVELS)}.")
    if not _is_many(code):
        return _ancestor1(code, at)
    return _per_unique(lambda s: _ancestor_series(s, at), _series(code))


def _ancestor_series(s: pd.Series, at: str) -> pd.Series:
    s = _norm_series(s)
    depth = _level_series(s).map({lv: i for i, lv in enumerate(LEVELS)})
    want = LEVELS.index(at)
    cut = s.str[: _SIGNIFICANT[at]]
    if at in ("province", "city"):
        cut = cut.str.ljust(6, "0")
    out = cut.where(depth >= want, None).astype(object)
    return _none(out.where(depth.notna(), None))


def district(code):
    """The county-level area (区/县/县级市) of codes at that level or below; ``None``
    for a city or a province. Shorthand for ``ancestor(code, "county")``.

    Examples
    --------
    >>> district("430211003002"), district("430200")
    ('430211', None)
    """
    return ancestor(code, "county")


@overload
def in_scope(code: str | int | None, scope: str | None) -> bool: ...
@overload
def in_scope(code: Codes, scope: str | Codes | None) -> pd.Series: ...
def in_scope(code, scope):
    """Whether codes lie inside the area ``scope`` (or are it). An empty scope holds
    everything; a missing code is in no scope but the empty one.

    The scope may be any form of an area's code: ``430200``, ``4302`` or
    ``430200000000`` all mean the city. With many codes, ``scope`` may be one scope
    or one per code (pairwise).

    Examples
    --------
    >>> in_scope("430211003002", "430211"), in_scope("430211", "430200")
    (True, True)
    >>> in_scope("430311", "4302"), in_scope(None, ""), in_scope(None, "43")
    (False, True, False)
    >>> in_scope(["430211001", "430302001"], ["430200", "430211"]).tolist()
    [True, False]
    """
    many = _is_many(code)
    if not many and not _is_many(scope):
        c = _norm1(code)
        return not scope or (c is not None and c.startswith(_prefix1(str(scope)) or ""))
    s = _series(code) if many else pd.Series([code], dtype=object)
    if not _is_many(scope):
        if not scope:
            return pd.Series(True, index=s.index)
        p = prefix(str(scope))
        inside = _per_unique(lambda u: _norm_series(u).str.startswith(p, na=False), s)
        return inside.fillna(False).astype(bool)
    scopes = _series(scope)
    scopes.index = s.index
    empty = scopes.isna() | (scopes.astype(str) == "")
    p = _per_unique(_prefix_series, scopes.where(~empty, None))
    c = _per_unique(_norm_series, s)
    ok = (c.notna() & p.notna()).to_numpy()
    out = empty.to_numpy(dtype=bool).copy()
    out[ok] = np.char.startswith(c[ok].to_numpy(dtype=str), p[ok].to_numpy(dtype=str))
    out = pd.Series(out, index=s.index)
    return out if many else bool(out.iloc[0])
