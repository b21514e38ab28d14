"""River chiefs' coverage (河长制 四级全覆盖): :func:`chief_coverage`.

Every river has a chief at four levels (city, county, township, village) for each
section of it, a section being the stretch inside one admin area of that level. The
sections of a river are found from its reaches (:func:`gridkit.split_rivers`): a
reach lies in an area of the finest level; the areas above it come from
``parent_code`` in the admin layer, or from the code itself
(:func:`gridkit.codes.ancestor`) where the layer stops.

Examples
--------
>>> import pandas as pd
>>> reaches = pd.DataFrame({"river_id": ["A", "A"], "admin_code": ["430202", "430203"],
...                         "length_m": [100.0, 50.0]})
>>> admin = pd.DataFrame({"admin_code": ["430200", "430202", "430203"],
...                       "level": ["city", "county", "county"]})
>>> chiefs = pd.DataFrame({"chief_id": ["C1", "C2"], "worker_id": ["W1", "W2"],
...                        "level": ["city", "county"], "river_id": "A",
...                        "admin_code": ["430200", "430202"]})
>>> cov = chief_coverage(reaches, chiefs, admin)
>>> cov.rivers[["city", "county", "full"]].to_dict("records")
[{'city': True, 'county': False, 'full': False}]
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.errors import InvalidLayerError
from gridkit.layers import check_layer

__all__ = ["ChiefCoverage", "chief_coverage"]

#: the four levels of full coverage (四级全覆盖); province and general chiefs are extra.
LEVELS = ("city", "county", "township", "village")


@dataclass
class ChiefCoverage:
    """Result of :func:`chief_coverage`.

    Attributes
    ----------
    sections
        One row per river, level and section (``river_id``, ``level``,
        ``admin_code``, ``length_m``, ``n_reaches``, ``chief_ids``, ``worker_ids``,
        ``covered``); ``admin_code`` is None where the admin data stop above that
        level (covered when the river has a chief at that level inside the coarser
        section).
    rivers
        One row per river: ``river_id``, one bool column per level, ``full``.
    full_share
        Share of rivers with a chief on every section at all four levels (四级全覆盖).

    Examples
    --------
    >>> import pandas as pd
    >>> reaches = pd.DataFrame({"river_id": ["A"], "admin_code": ["430202001001"],
    ...                         "length_m": [100.0]})
    >>> admin = pd.DataFrame({"admin_code": ["430202001001"], "level": ["village"]})
    >>> chiefs = pd.DataFrame({"chief_id": ["C1"], "worker_id": ["W1"], "level": ["village"],
    ...                        "river_id": ["A"], "admin_code": ["430202001001"]})
    >>> cov = chief_coverage(reaches, chiefs, admin)
    >>> cov.sections[["level", "admin_code", "covered"]].values.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [['city', '430200', False], ['county', '430202', False],
     ['township', '430202001', False], ['village', '430202001001', True]]
    >>> cov.full_share
    0.0
    """

    sections: pd.DataFrame
    rivers: pd.DataFrame
    full_share: float


@dataclass(frozen=True)
class _AdminTable:
    """Level and parent of every code of the admin layer (codes as text)."""

    level_of: dict[str, str]
    parent_of: dict[str, str | None]

    @classmethod
    def from_layer(cls, admin_areas: pd.DataFrame) -> _AdminTable:
        level_of = dict(
            zip(admin_areas["admin_code"].astype(str), admin_areas["level"], strict=True)
        )
        parent_of = {}
        if "parent_code" in admin_areas.columns:
            parent_of = {
                str(c): (None if pd.isna(p) else str(p))
                for c, p in zip(admin_areas["admin_code"], admin_areas["parent_code"], strict=True)
            }
        return cls(level_of, parent_of)

    def areas_by_level(self, finest: pd.Series) -> pd.DataFrame:
        """The area at each level holding each code of ``finest`` (one column per level,
        None where unknown): up the ``parent_code`` chain of the layer first, then, for
        the levels the layer does not reach, from the code (:func:`gridkit.codes.ancestor`)."""
        found = pd.DataFrame(
            {lvl: pd.Series(None, index=finest.index, dtype=object) for lvl in LEVELS}
        )
        up = finest.astype(object)
        # one step per level of the chain; a cycle in parent_code adds nothing after one turn
        for _ in range(len(self.parent_of) + 1):
            at = up.map(self.level_of)
            for lvl in LEVELS:
                take = found[lvl].isna() & (at == lvl)
                found[lvl] = found[lvl].where(~take, up)
            up = up.map(self.parent_of)
            if up.isna().all():
                break
        for lvl in ("county", "city", "township"):
            ruled = codes.ancestor(finest, lvl)
            found[lvl] = found[lvl].where(found[lvl].notna(), ruled)
        return found.astype(object).where(found.notna(), None)


def chief_coverage(
    reaches: gpd.GeoDataFrame | pd.DataFrame,
    river_chiefs: pd.DataFrame,
    admin_areas: gpd.GeoDataFrame | pd.DataFrame,
) -> ChiefCoverage:
    """Which river sections have an appointed chief at each of the four levels.

    A reach's section at level L is the admin area at level L containing it, found
    through ``parent_code`` (or from the code, :func:`gridkit.codes.ancestor`, when
    the parent is not in the layer); boundary reaches belong to the sections of both
    banks.

    Parameters
    ----------
    reaches
        ``reaches`` layer (from :func:`split_rivers`).
    river_chiefs
        ``river_chiefs`` layer: ``chief_id``, ``worker_id``, ``level``, ``river_id``,
        ``admin_code`` (the section).
    admin_areas
        ``admin_areas`` layer (only codes, levels and parents are used).

    Returns
    -------
    ChiefCoverage
        ``.sections`` (gaps have ``covered`` False), ``.rivers``, ``.full_share``.

    Examples
    --------
    >>> import pandas as pd, geodata
    >>> from gridkit import split_rivers
    >>> admin = geodata.zhuzhou_admin()
    >>> reaches, _ = split_rivers(geodata.xiang_river(), admin, max_length_m=5000,
    ...                           corridor_m=None)
    >>> chiefs = pd.DataFrame({"chief_id": ["C1"], "worker_id": ["W1"], "level": ["city"],
    ...                        "river_id": ["XJ"], "admin_code": ["430200"]})
    >>> cov = chief_coverage(reaches, chiefs, admin)
    >>> cov.rivers[["river_id", "city", "county"]].values.tolist()
    [['XJ', True, False]]
    >>> cov.full_share
    0.0
    """
    chiefs = _check_inputs(reaches, river_chiefs, admin_areas)
    per_area = _river_areas(reaches)
    sec = _sections(per_area, _AdminTable.from_layer(admin_areas))
    sec = _appoint(sec, chiefs)
    sec["covered"] = sec["chief_ids"].notna()
    sec["level"] = pd.Categorical(sec["level"], categories=list(LEVELS), ordered=True)
    sec = sec.sort_values(["river_id", "level", "key"]).drop(columns=["key", "finest"])
    sec = sec.reset_index(drop=True)
    sec["level"] = sec["level"].astype(str)
    per = sec.groupby(["river_id", "level"])["covered"].all().unstack("level")
    per = per.reindex(columns=list(LEVELS), fill_value=False).fillna(False).astype(bool)
    per["full"] = per.all(axis=1)
    per = per.reset_index()
    per.columns.name = None
    share = float(per["full"].mean()) if len(per) else 0.0
    return ChiefCoverage(sec, per, share)


def _check_inputs(
    reaches: pd.DataFrame, river_chiefs: pd.DataFrame, admin_areas: pd.DataFrame
) -> pd.DataFrame:
    """The chiefs, checked, with ``river_id`` and ``admin_code`` as text."""
    for col in ("river_id", "admin_code", "length_m"):
        if col not in reaches.columns:
            raise InvalidLayerError(
                f"reaches: missing column {col!r}.",
                hint="Pass the reaches layer from split_rivers.",
            )
    river_chiefs = check_layer(pd.DataFrame(river_chiefs), "river_chiefs", source="river_chiefs")
    for col in ("admin_code", "level"):
        if col not in admin_areas.columns:
            raise InvalidLayerError(f"admin_areas: missing column {col!r}.")
    return _serving(river_chiefs).assign(
        admin_code=lambda c: c["admin_code"].astype(str),
        river_id=lambda c: c["river_id"].astype(str),
    )


def _serving(chiefs: pd.DataFrame, at: object = None) -> pd.DataFrame:
    """The chiefs proper (role ``chief``, a river) of the four levels whose appointment
    holds at ``at`` (default now): supporting roles and general chiefs hold no section."""
    keep = chiefs["level"].isin(LEVELS).to_numpy() & chiefs["river_id"].notna().to_numpy()
    if "role" in chiefs:
        keep &= chiefs["role"].fillna("chief").eq("chief").to_numpy()
    when = pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at)
    when = when.tz_localize("UTC") if when.tzinfo is None else when
    for col, ok in (("valid_from", lambda t: t <= when), ("valid_to", lambda t: t > when)):
        if col in chiefs:
            t = pd.to_datetime(chiefs[col], utc=True)
            keep &= (t.isna() | ok(t)).to_numpy()
    return chiefs[keep]


def _river_areas(reaches: pd.DataFrame) -> pd.DataFrame:
    """Length and number of reaches of each river in each finest area; a boundary
    reach counts in the areas of both banks."""
    r = pd.DataFrame(reaches).copy()
    r["admin_code"] = r["admin_code"].astype(str)
    cols = ["river_id", "admin_code", "length_m"]
    sides = [r[cols]]
    for col in ("left_code", "right_code"):
        if col in r.columns and "boundary" in r.columns:
            b = r[r["boundary"].astype(bool)]
            sides.append(b[["river_id", col, "length_m"]].rename(columns={col: "admin_code"}))
    if len(sides) > 1:
        bnd = r["boundary"].astype(bool) if "boundary" in r.columns else False
        sides[0] = r.loc[~bnd, cols]
    both = pd.concat(sides, ignore_index=True)
    both["admin_code"] = both["admin_code"].astype(str)
    return (
        both.groupby(["river_id", "admin_code"], sort=True)
        .agg(length_m=("length_m", "sum"), n_reaches=("length_m", "size"))
        .reset_index()
    )


def _sections(per_area: pd.DataFrame, table: _AdminTable) -> pd.DataFrame:
    """One row per river, level and section, keyed by the section's code, or by
    ``?`` and the finest area below the level where the admin data stop."""
    anc = table.areas_by_level(per_area["admin_code"])
    n, k = len(per_area), len(LEVELS)
    sec = pd.DataFrame(
        {
            "river_id": np.repeat(per_area["river_id"].to_numpy(dtype=object), k),
            "level": np.tile(np.array(LEVELS, dtype=object), n),
            "admin_code": anc[list(LEVELS)].to_numpy(dtype=object).ravel(),
            "finest": np.repeat(per_area["admin_code"].to_numpy(dtype=object), k),
            "length_m": np.repeat(per_area["length_m"].to_numpy(), k),
            "n_reaches": np.repeat(per_area["n_reaches"].to_numpy(), k),
        }
    )
    unknown = sec["admin_code"].isna()
    sec["key"] = np.where(unknown, "?" + sec["finest"], sec["admin_code"].fillna(""))
    return (
        sec.groupby(["river_id", "level", "key"], sort=False)
        .agg(
            admin_code=("admin_code", "first"),
            finest=("finest", "first"),
            length_m=("length_m", "sum"),
            n_reaches=("n_reaches", "sum"),
        )
        .reset_index()
    )


def _joined(values: pd.Series) -> str:
    return ", ".join(map(str, values))


def _appoint(sec: pd.DataFrame, chiefs: pd.DataFrame) -> pd.DataFrame:
    """``chief_ids`` and ``worker_ids`` of each section (missing where none): chiefs
    of that river, level and area; where the area is unknown, chiefs of that river and
    level whose area lies inside the finest area known (:func:`gridkit.codes.in_scope`)."""
    by = (
        chiefs.groupby(["river_id", "level", "admin_code"])
        .agg(chief_ids=("chief_id", _joined), worker_ids=("worker_id", _joined))
        .reset_index()
    )
    sec["river_id"] = sec["river_id"].astype(str)
    sec = sec.merge(by, how="left", on=["river_id", "level", "admin_code"])
    gaps = sec.loc[sec["admin_code"].isna(), ["river_id", "level", "finest"]]
    if len(gaps) == 0:
        return sec
    pairs = gaps.reset_index(names="row").merge(
        chiefs[["river_id", "level", "admin_code", "chief_id", "worker_id"]]
        .reset_index(drop=True)
        .reset_index(names="pos"),
        on=["river_id", "level"],
    )
    inside = np.zeros(len(pairs), dtype=bool)
    for finest, rows in pairs.groupby("finest").indices.items():
        inside[rows] = codes.in_scope(pairs["admin_code"].iloc[rows], finest).to_numpy()
    hits = pairs[inside].sort_values(["row", "pos"])
    if len(hits):
        found = hits.groupby("row").agg(
            chief_ids=("chief_id", _joined), worker_ids=("worker_id", _joined)
        )
        sec.loc[found.index, ["chief_ids", "worker_ids"]] = found.to_numpy()
    return sec
