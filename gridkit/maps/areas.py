"""Choropleths by township or village: what a supervisor reads at city and county zoom.

Units are summed into the admin area holding them (by ``admin_code``, cut with
:func:`gridkit.codes.ancestor`); the area's outline is the context's ``admin_areas``
polygon when there is one, else the union of its units. Each map kind colours the
areas by a status share (units staffed, patrols done) or a rate (open cases per 1,000
households or per km of river), with the numbers on click. Below a zoom where units
are too small to read the page shows the areas instead of the units
(:func:`switch_zoom`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit import codes
from gridkit.crs import WGS84
from gridkit.maps.context import Context, label_zoom
from gridkit.webmap import MAX_VILLAGES, UNIT_PX, area_outlines

__all__ = ["aggregate", "pick_level", "rate_class", "switch_zoom"]

#: open cases per 1,000 households (or per km): class bounds and colours (purples,
#: apart from the hot/cold spot reds and blues)
RATE_BINS = (0.0, 2.0, 5.0)
RATE_COLORS = {"rate_none": "#f2f0f7", "rate_low": "#cbc9e2", "rate_mid": "#9e9ac8",
               "rate_high": "#6a51a3"}  # fmt: skip


def pick_level(admin_code: pd.Series) -> str | None:
    """``"village"`` when the units lie in at most 400 villages, else ``"township"``;
    ``None`` when the codes name no township.

    Examples
    --------
    >>> pick_level(pd.Series(["430202001001", "430202001002"]))
    'village'
    >>> pick_level(pd.Series(["430202"])) is None
    True
    """
    if not len(admin_code):
        return None
    villages = codes.ancestor(admin_code.astype(str), "village").dropna()
    if len(villages) == len(admin_code) and villages.nunique() <= MAX_VILLAGES:
        return "village"
    towns = codes.ancestor(admin_code.astype(str), "township")
    return "township" if towns.notna().any() else None


def switch_zoom(units: gpd.GeoDataFrame) -> int:
    """The zoom from which a typical (median) unit is about 12 px wide.

    Examples
    --------
    >>> from shapely import box
    >>> u = gpd.GeoDataFrame(geometry=[box(113, 27, 113.005, 27.005)], crs=4326)
    >>> switch_zoom(u)
    12
    """
    b = units.geometry.bounds.to_numpy()
    return label_zoom(float(np.median(b[:, 2] - b[:, 0])) if len(b) else 0.0, px=UNIT_PX)


def aggregate(
    units: gpd.GeoDataFrame,
    values: pd.DataFrame,
    level: str,
    context: Context | None = None,
) -> gpd.GeoDataFrame:
    """Sum ``values`` (numeric columns, one row per unit) into the areas at ``level``.

    Returns one row per area with ``admin_code``, ``name`` (from the context, else the
    code), ``n_units`` and the sums, and the area's polygon (WGS84).

    Examples
    --------
    >>> import shapely
    >>> from shapely import box
    >>> u = gpd.GeoDataFrame({"admin_code": ["430202001001", "430202001001", "430202001002"]},
    ...     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2)], crs=4326)
    >>> a = aggregate(u, pd.DataFrame({"staffed": [1, 0, 1]}), "village")
    >>> a[["admin_code", "n_units", "staffed"]].values.tolist()
    [['430202001001', 2, 1], ['430202001002', 1, 1]]
    >>> shapely.area(a.geometry.array).tolist()
    [2.0, 1.0]
    """
    code = codes.ancestor(units["admin_code"].astype(str), level).to_numpy()
    keep = pd.notna(code)
    frame = values.reset_index(drop=True)[keep].assign(admin_code=code[keep], n_units=1)
    sums = frame.groupby("admin_code", sort=True).sum(numeric_only=True)
    ctx_areas = context.areas(level) if context is not None else None
    if ctx_areas is not None and "admin_code" in ctx_areas.columns:
        shapes = ctx_areas.assign(admin_code=ctx_areas["admin_code"].astype(str))
        shapes = shapes.drop_duplicates("admin_code").set_index("admin_code")
    else:
        shapes = gpd.GeoDataFrame(geometry=[], crs=WGS84)
    missing = sums.index.difference(shapes.index)
    geoms = dict(zip(shapes.index, shapes.geometry.array, strict=True))
    if len(missing):
        geoms |= area_outlines(code[keep], units.geometry.array[keep], set(missing))
    names = shapes["name"].astype(str) if "name" in shapes.columns else pd.Series(dtype=str)
    out = sums.reset_index()
    out["name"] = [names.get(c, c) for c in out["admin_code"]]
    return gpd.GeoDataFrame(out, geometry=[geoms[c] for c in out["admin_code"]], crs=WGS84)


def rate_class(rate: pd.Series) -> pd.Series:
    """``rate_none`` (0 or missing), ``rate_low`` (< 2), ``rate_mid`` (< 5), ``rate_high``.

    Examples
    --------
    >>> rate_class(pd.Series([0.0, 1.5, 3.0, 9.0, None])).tolist()
    ['rate_none', 'rate_low', 'rate_mid', 'rate_high', 'rate_none']
    """
    r = rate.fillna(0).to_numpy()
    cls = np.select(
        [r <= RATE_BINS[0], r < RATE_BINS[1], r < RATE_BINS[2]],
        ["rate_none", "rate_low", "rate_mid"],
        "rate_high",
    )
    return pd.Series(cls, index=rate.index)
