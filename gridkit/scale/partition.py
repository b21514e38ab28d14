"""Partition keys and halos: which rows a partition owns and which it must also see.

A partition is an admin-code prefix (``"43"`` a province, ``"4302"`` a city). A row is
*owned* by the partition its code starts with; a *halo* is what lies within a margin
of the owned rows' box and belongs to other partitions (the neighbour's bank of a
boundary river, the community across the line, the units a track crosses into).
Rows keep their position in the whole layer (``_pos``) so that every rule decided by
order ("the first polygon holding a point") decides the same on a slice.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.errors import GridkitError

__all__ = ["POS", "area_keys", "concat_parts", "in_box", "keys_of", "owned", "with_positions"]

#: Column carrying a row's position in the whole layer.
POS = "_pos"


def keys_of(codes: pd.Series, by: str) -> pd.Series:
    """Partition key of each admin code (or id starting with one): ``by`` is
    ``"province"`` (2 digits), ``"city"`` (4) or ``"county"`` (6).

    Examples
    --------
    >>> keys_of(pd.Series(["430202001001-C01", "110100"]), "city").tolist()
    ['4302', '1101']
    """
    return codes.astype(str).str[: width_of(by)]


def width_of(by: str) -> int:
    """Digits of the admin-code prefix that keys a partition of level ``by``.

    Raises
    ------
    GridkitError
        For a level that is not ``province``, ``city`` or ``county``.

    Examples
    --------
    >>> width_of("county")
    6
    """
    if by not in ("province", "city", "county"):
        raise GridkitError(
            f"cannot partition by {by!r}.", hint="Partition by county, city or province."
        )
    return codes.DIGITS[by]


def area_keys(df: pd.DataFrame, by: str, *, what: str, column: str = "admin_code") -> pd.Series:
    """The partition key (admin-code prefix of level ``by``) of every row of a user's
    layer, checked: a layer without admin codes to partition on is an error naming it.

    Raises
    ------
    GridkitError
        When ``column`` is missing, empty on some rows, or not a code of level ``by``
        or finer.

    Examples
    --------
    >>> area_keys(pd.DataFrame({"admin_code": ["430202001001"]}), "county", what="units").tolist()
    ['430202']
    >>> area_keys(pd.DataFrame({"unit_id": ["U1"]}), "county", what="units.gpkg")
    Traceback (most recent call last):
    gridkit.errors.GridkitError: units.gpkg has no admin_code column to partition on by county.
    Hint: Run without --engine (one process), or add each row's 6-digit (or longer) admin code.
    """
    width = width_of(by)
    hint = (
        f"Run without --engine (one process), or add each row's {width}-digit (or longer) "
        f"admin code."
    )
    if column not in df.columns:
        raise GridkitError(f"{what} has no {column} column to partition on by {by}.", hint=hint)
    code = df[column].astype("string").str.strip()
    bad = code.isna() | ~code.str.fullmatch(rf"\d{{{width},}}").fillna(False)
    if bad.any():
        at = int(np.flatnonzero(bad.to_numpy())[0])
        raise GridkitError(
            f"{what}: {int(bad.sum())} row(s) have no {width}-digit {column} to partition on "
            f"by {by} (first: row {at + 1}, {column} {df[column].iloc[at]!r}).",
            hint=hint,
        )
    return code.str[:width].astype(object)


def owned(df: pd.DataFrame, column: str, key: str) -> pd.DataFrame:
    """Rows whose ``column`` starts with ``key``.

    Examples
    --------
    >>> owned(pd.DataFrame({"c": ["4302", "4303"]}), "c", "4302")["c"].tolist()
    ['4302']
    """
    return df[df[column].astype(str).str.startswith(key).to_numpy()]


def with_positions(df: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``df`` with its row positions in ``_pos`` (once, on the whole layer).

    Examples
    --------
    >>> with_positions(gpd.GeoDataFrame({"a": [5, 6]}, geometry=[None, None]))[POS].tolist()
    [0, 1]
    """
    return df.assign(**{POS: np.arange(len(df))})


def in_box(
    df: gpd.GeoDataFrame, box: tuple[float, float, float, float], margin: float = 0.0
) -> gpd.GeoDataFrame:
    """Rows whose geometry meets ``box`` grown by ``margin``, in their original order.

    Examples
    --------
    >>> g = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0), shapely.Point(9, 9)])
    >>> len(in_box(g, (0, 0, 1, 1))), len(in_box(g, (0, 0, 1, 1), margin=10))
    (1, 2)
    """
    x0, y0, x1, y1 = box
    area = shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)
    hit = df.sindex.query(area, predicate="intersects")
    return df.iloc[np.sort(hit)]


def concat_parts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The tasks' rows one after the other, each column of the type the parts holding
    values in it give it: a part where a column is all None has it as ``object``,
    where the others (and the one-process run) have strings.

    Examples
    --------
    >>> a = pd.DataFrame({"c": pd.array(["x"], dtype="string")})
    >>> concat_parts([a, pd.DataFrame({"c": [None]})])["c"].dtype == a["c"].dtype
    True
    """
    out = pd.concat(parts, ignore_index=True)
    if isinstance(parts[0], gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry=parts[0].geometry.name, crs=parts[0].crs)
    for col in out.columns:
        types = {p[col].dtype for p in parts if col in p and p[col].notna().any()}
        if len(types) == 1 and (kind := types.pop()) != out[col].dtype:
            out[col] = out[col].astype(kind)
    return out
