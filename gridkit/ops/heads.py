"""Building heads at work: which buildings have a head, where a head may report, and
their 巡记做报 records counted.

- :func:`head_coverage`: every building with its head(s) at a time, and ``has_head``
  (the coverage map shows the buildings without one);
- :func:`head_buildings` and :func:`head_scopes`: the buildings of each head, and the
  admin code their key reports in (the narrowest area holding all their buildings), for
  the case model's permissions (``Person.buildings``);
- :func:`head_activity`: records per head and kind (visits, notes, fixes, reports up).

Examples
--------
>>> import pandas as pd
>>> heads = pd.DataFrame({"building_id": ["B1", "B2"], "worker_id": ["H1", "H1"]})
>>> buildings = pd.DataFrame({"building_id": ["B1", "B2", "B3"],
...                           "community_id": ["C1", "C1", "C2"]})
>>> cov = head_coverage(buildings, heads)
>>> cov[["building_id", "head_id", "has_head"]].values.tolist()
[['B1', 'H1', True], ['B2', 'H1', True], ['B3', None, False]]
"""

from __future__ import annotations

import pandas as pd

from gridkit import codes
from gridkit.ops.times import utc_scalar, utc_series

__all__ = ["head_activity", "head_buildings", "head_coverage", "head_scopes"]


def _valid(building_heads: pd.DataFrame, at: object) -> pd.DataFrame:
    """The appointments valid at ``at`` (all when ``at`` is None)."""
    h = building_heads[building_heads["worker_id"].notna().to_numpy()]
    if at is None:
        return h
    t = utc_scalar(at, name="at")
    ok = pd.Series(True, index=h.index)
    if "valid_from" in h.columns:
        vf = utc_series(h["valid_from"])
        ok &= vf.isna() | (vf <= t)
    if "valid_to" in h.columns:
        vt = utc_series(h["valid_to"])
        ok &= vt.isna() | (vt > t)
    return h[ok.to_numpy(dtype=bool)]


def head_coverage(
    buildings: pd.DataFrame, building_heads: pd.DataFrame, *, at: object = None
) -> pd.DataFrame:
    """The buildings with their heads at ``at``: ``head_id`` (several joined by ``;``
    when stairwells have their own), ``heads`` (how many) and ``has_head``.

    Parameters
    ----------
    buildings
        The buildings layer (a GeoDataFrame stays one: ready for a map).
    building_heads
        The ``building_heads`` layer.
    at
        Appointments valid then (UTC; default: all rows).

    Examples
    --------
    See the module's example.
    """
    h = _valid(building_heads, at)
    per = h.groupby(h["building_id"].astype(str))["worker_id"].agg(
        lambda s: ";".join(sorted(set(map(str, s))))
    )
    n = h.groupby(h["building_id"].astype(str))["worker_id"].nunique()
    ids = buildings["building_id"].astype(str)
    out = buildings.copy()
    out["head_id"] = ids.map(per).astype(object).where(ids.isin(per.index), None)
    out["heads"] = ids.map(n).fillna(0).astype(int).to_numpy()
    out["has_head"] = (out["heads"] > 0).to_numpy()
    return out


def head_buildings(building_heads: pd.DataFrame, *, at: object = None) -> dict[str, frozenset[str]]:
    """Each head's buildings at ``at``.

    Examples
    --------
    >>> import pandas as pd
    >>> heads = pd.DataFrame({"building_id": ["B1", "B2", "B3"], "worker_id": ["H1", "H1", "H2"],
    ...                       "valid_to": [None, "2026-01-01", None]})
    >>> head_buildings(heads, at="2026-05-01")
    {'H1': frozenset({'B1'}), 'H2': frozenset({'B3'})}
    """
    h = _valid(building_heads, at)
    groups = h.groupby(h["worker_id"].astype(str))["building_id"]
    return {w: frozenset(map(str, b)) for w, b in groups}


def head_scopes(
    building_heads: pd.DataFrame,
    buildings: pd.DataFrame,
    communities: pd.DataFrame,
    *,
    at: object = None,
) -> pd.Series:
    """The admin code each head reports in: the narrowest area (village, township,
    county, city) holding the communities of all their buildings.

    Examples
    --------
    >>> import pandas as pd
    >>> heads = pd.DataFrame({"building_id": ["B1", "B2", "B3"], "worker_id": ["H1", "H1", "H2"]})
    >>> buildings = pd.DataFrame({"building_id": ["B1", "B2", "B3"],
    ...                           "community_id": ["C1", "C2", "C1"]})
    >>> communities = pd.DataFrame({"community_id": ["C1", "C2"],
    ...                             "admin_code": ["430202001001", "430202001002"]})
    >>> head_scopes(heads, buildings, communities).to_dict()
    {'H1': '430202001', 'H2': '430202001001'}
    """
    h = _valid(building_heads, at)
    community = pd.Series(
        buildings["community_id"].astype(str).to_numpy(),
        index=buildings["building_id"].astype(str).to_numpy(),
    )
    code = pd.Series(
        communities["admin_code"].astype(str).to_numpy(),
        index=communities["community_id"].astype(str).to_numpy(),
    )
    area = h["building_id"].astype(str).map(community).map(code)
    frame = pd.DataFrame({"worker_id": h["worker_id"].astype(str).to_numpy(), "code": area})
    frame = frame.dropna()
    out = pd.Series(None, index=pd.Index(sorted(frame["worker_id"].unique())), dtype=object)
    for level in ("village", "township", "county", "city"):  # four levels, each vectorised
        anc = codes.ancestor(frame["code"].astype(object), level)
        one = (
            frame.assign(anc=anc.to_numpy())
            .groupby("worker_id")["anc"]
            .agg(lambda s: s.iloc[0] if s.nunique(dropna=False) == 1 else None)
        )
        out = out.where(out.notna(), one.reindex(out.index))
    return out.rename("scope")


def head_activity(
    head_records: pd.DataFrame, *, start: object = None, end: object = None
) -> pd.DataFrame:
    """巡记做报 counted per head: one column per kind (visit, note, fix, report), the
    total and the buildings visited, in ``[start, end)``.

    Examples
    --------
    >>> import pandas as pd
    >>> rec = pd.DataFrame({"worker_id": ["H1", "H1", "H2"], "building_id": ["B1", "B2", "B3"],
    ...                     "kind": ["visit", "fix", "visit"],
    ...                     "at": pd.to_datetime(["2026-05-01"] * 3, utc=True)})
    >>> head_activity(rec).values.tolist()
    [['H1', 1, 0, 1, 0, 2, 2], ['H2', 1, 0, 0, 0, 1, 1]]
    """
    r = head_records
    t = utc_series(r["at"])
    keep = pd.Series(True, index=r.index)
    if start is not None:
        keep &= t >= utc_scalar(start, name="start")
    if end is not None:
        keep &= t < utc_scalar(end, name="end")
    r = r[keep.to_numpy(dtype=bool)]
    kinds = ["visit", "note", "fix", "report"]
    counts = pd.crosstab(r["worker_id"], r["kind"]).reindex(columns=kinds, fill_value=0)
    counts["records"] = counts.sum(axis=1)
    counts["buildings"] = r.groupby("worker_id")["building_id"].nunique()
    return counts.reset_index().rename_axis(columns=None)
