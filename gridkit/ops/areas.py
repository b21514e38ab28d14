"""Which administrative area a feature belongs to, for layers that carry no code.

A service scopes every layer by admin code (:func:`gridkit.codes.in_scope`). Layers
drawn without one (``water_bodies``: a reservoir may straddle districts) get the
code of the smallest area holding every admin area they lie in.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.crs import to_wgs84

__all__ = ["admin_codes_of"]


def _leaves(pairs: pd.DataFrame) -> pd.DataFrame:
    """Drop the pairs whose area holds another area of the same feature (a city
    around its districts): what is left are the smallest areas met."""
    depth = codes.level(pairs["code"]).map({lv: i for i, lv in enumerate(codes.LEVELS)}).to_numpy()
    holders = np.zeros(len(pairs), dtype=bool)
    for i, lv in enumerate(codes.LEVELS):
        at, deeper = depth == i, depth > i
        if not at.any() or not deeper.any():
            continue
        # (feature, area) pairs of the areas at this level holding a deeper area met
        held = pd.MultiIndex.from_arrays(
            [pairs["feature"].to_numpy()[deeper], codes.ancestor(pairs["code"][deeper], lv)]
        )
        mine = pd.MultiIndex.from_arrays(
            [pairs["feature"].to_numpy()[at], pairs["code"].to_numpy()[at]]
        )
        holders[at] = mine.isin(held)
    return pairs[~holders]


def _common(pairs: pd.DataFrame) -> pd.Series:
    """Per feature, the deepest code every one of its areas lies in."""
    out = pd.Series(None, index=pd.Index(pairs["feature"].unique()), dtype=object)
    for lv in codes.LEVELS:  # from the widest: each level that agrees overwrites
        anc = codes.ancestor(pairs["code"], lv)
        by = anc.groupby(pairs["feature"].to_numpy(), dropna=False)
        agree = (by.nunique(dropna=False) == 1) & by.count().eq(by.size())
        first = by.first()
        out.loc[agree[agree].index] = first[agree].to_numpy()
    return out


def admin_codes_of(features: gpd.GeoDataFrame, admin_areas: gpd.GeoDataFrame) -> pd.Series:
    """The admin code of each feature: its own ``admin_code`` where it has one, else the
    smallest area holding every admin area its geometry lies in (shared boundaries
    alone do not count); ``None`` for a feature in no area or without geometry.

    Parameters
    ----------
    features
        Any layer (e.g. ``water_bodies``); an ``admin_code`` column is kept where set.
    admin_areas
        The ``admin_areas`` layer (``admin_code``), at one level or several.

    Returns
    -------
    pandas.Series
        Normalised codes (object, ``None`` where unknown), aligned to ``features``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> admin = gpd.GeoDataFrame(
    ...     {"admin_code": ["430200", "430202", "430203", "430202001"]},
    ...     geometry=[box(0, 0, 2, 1), box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 0, 0.5, 1)],
    ...     crs=4326)
    >>> lakes = gpd.GeoDataFrame(
    ...     {"name": ["inside a township", "two districts", "in the district", "away"]},
    ...     geometry=[box(0.1, 0.1, 0.2, 0.2), box(0.9, 0.1, 1.1, 0.2),
    ...               box(0.6, 0.1, 0.9, 0.2), box(5, 5, 6, 6)], crs=4326)
    >>> admin_codes_of(lakes, admin).tolist()
    ['430202001', '430200', '430202', None]
    """
    own = (
        codes.normalise(features["admin_code"])
        if "admin_code" in features.columns
        else pd.Series(None, index=features.index, dtype=object)
    )
    todo = np.flatnonzero(own.isna().to_numpy())
    if not len(todo) or admin_areas is None or not len(admin_areas):
        return own.astype(object).where(own.notna(), None)
    geoms = to_wgs84(features).geometry.to_numpy()[todo]
    areas = to_wgs84(admin_areas)
    tree = shapely.STRtree(areas.geometry.to_numpy())
    f, a = tree.query(geoms, predicate="intersects")
    # a lake on the boundary of an area is not in it: the interiors must meet
    inner = ~shapely.touches(geoms[f], areas.geometry.to_numpy()[a])
    pairs = pd.DataFrame(
        {"feature": todo[f[inner]], "code": codes.normalise(areas["admin_code"].iloc[a[inner]])}
    ).dropna()
    found = _common(_leaves(pairs.reset_index(drop=True)))
    out = own.astype(object).copy()
    pos = found.index.to_numpy(dtype=int)
    out.iloc[pos] = found.to_numpy()
    return out.where(out.notna(), None)
