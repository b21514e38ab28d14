"""GeoJSON (RFC 7946), encoded in one place for files, maps and the API.

RFC 7946 asks for longitude/latitude in WGS84, counter-clockwise exterior rings and
no ``crs`` member; 7 decimals (~1 cm) is the default precision. Properties are made
JSON-ready column by column: missing values (``None``, NaN, NaT, ``pd.NA``) become
``null``, timestamps ISO 8601 text and numpy scalars plain numbers.

Three levels, from the API's hot path to a whole file:

- :func:`geometries` and :func:`records`: the two halves, vectorised, so a caller can
  cache them (the API serialises each feature once per layer version);
- :class:`Piece` / :func:`pieces` and :func:`feature_bytes`: one feature as bytes;
- :func:`to_geojson`: a FeatureCollection of a (Geo)DataFrame, e.g. for a ``.geojson``
  file (:func:`gridkit.io.write_layer`) or a map's data.

orjson is used when installed (the ``api`` extra; ~14x faster), the standard library
otherwise; both give the same compact JSON.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import box
>>> units = gpd.GeoDataFrame({"unit_id": ["U1"]}, geometry=[box(113.1, 27.8, 113.2, 27.9)],
...                          crs=4326)
>>> doc = to_geojson(units, id_col="unit_id")
>>> doc[:46]
b'{"type":"FeatureCollection","features":[{"type'
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit import codes

try:  # optional: the ``api`` extra brings it; the standard library does the same, slower
    import orjson
except ImportError:  # pragma: no cover - exercised in a core-only install
    orjson = None

__all__ = [
    "PRECISION",
    "FeatureIndex",
    "Piece",
    "column_pieces",
    "dumps",
    "feature_bytes",
    "geometries",
    "jsonable",
    "pieces",
    "records",
    "rounded",
    "to_geojson",
]

PRECISION = 7  # decimals, ~1 cm

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon
#: the instants a datetime64 can hold, as integers of its unit, a little inside (the
#: smallest integer is NaT, and numpy converts the extremes between units wrongly)
_INT64_RANGE = np.array([np.iinfo(np.int64).min + 2**32, np.iinfo(np.int64).max - 2**32])


def jsonable(value: object) -> object:
    """JSON for a value pandas left as an object: timestamps, missing values, numpy scalars.

    The ``default`` hook of :func:`dumps`; raises ``TypeError`` for anything else.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> jsonable(pd.Timestamp("2026-03-01 08:00", tz="UTC"))
    '2026-03-01T08:00:00+00:00'
    >>> jsonable(pd.NaT) is None, jsonable(pd.NA) is None, jsonable(np.int64(3))
    (True, True, 3)
    """
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        item = value.item()
        return None if isinstance(item, float) and np.isnan(item) else item
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def _nan_free(value: object) -> object:
    """NaN floats as ``None`` (the standard library would write the invalid ``NaN``)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_free(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_free(v) for v in value]
    return value


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON of ``obj``; NaN as ``null``, timestamps ISO 8601, numpy scalars.

    Examples
    --------
    >>> import numpy as np
    >>> dumps({"n": np.int64(2), "x": float("nan"), "name": "湘江"}).decode()
    '{"n":2,"x":null,"name":"湘江"}'
    """
    if orjson is not None:
        return orjson.dumps(obj, default=jsonable, option=orjson.OPT_SERIALIZE_NUMPY)
    text = json.dumps(_nan_free(obj), default=jsonable, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def rounded(geoms: np.ndarray, *, precision: int = PRECISION) -> np.ndarray:
    """Geometries with coordinates rounded to ``precision`` decimals and polygon
    exteriors counter-clockwise (RFC 7946). ``None`` stays ``None``.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> cw = shapely.Polygon([(0, 0), (0, 1.123456789), (1, 1), (1, 0)])
    >>> g = rounded(np.array([cw, None]), precision=3)
    >>> bool(shapely.is_ccw(g[0].exterior)), max(y for _, y in g[0].exterior.coords), g[1]
    (True, 1.123, None)
    """
    geoms = shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c, precision))
    kinds = shapely.get_type_id(geoms)
    polys = (kinds == _POLYGONAL[0]) | (kinds == _POLYGONAL[1])  # np.isin: ~15 µs more
    if polys.any():
        geoms[polys] = shapely.orient_polygons(geoms[polys], exterior_cw=False)
    return geoms


def geometries(geoms: np.ndarray, *, precision: int = PRECISION) -> list[bytes]:
    """GeoJSON geometry objects as bytes, one per geometry (``b"null"`` for ``None``),
    rounded and oriented by :func:`rounded`.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> geometries(np.array([shapely.Point(113.123456789, 27.8), None]))
    [b'{"type":"Point","coordinates":[113.1234568,27.8]}', b'null']
    """
    text = shapely.to_geojson(rounded(geoms, precision=precision))
    return [b"null" if g is None else g.encode() for g in text]


def records(columns: Mapping[str, pd.Series]) -> list[dict]:
    """Rows of ``columns`` as JSON-ready dicts: missing values ``None``, times ISO 8601.

    Column by column (one conversion each) rather than through an object copy of a
    frame, whose cost on the few rows of a write batch is all pandas overhead.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"n": [1.5, None], "t": pd.to_datetime(["2026-03-01", None])})
    >>> records(dict(df.items()))
    [{'n': 1.5, 't': '2026-03-01T00:00:00'}, {'n': None, 't': None}]
    """
    names = list(columns)
    cols = []
    for s in columns.values():
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            cols.append([None if pd.isna(t) else t.isoformat() for t in s])
        else:
            cols.append(s.to_numpy(dtype=object, na_value=None).tolist())
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def feature_bytes(fid: str | None, geometry: bytes, properties: dict) -> bytes:
    """One Feature from an id (``None``: no ``id`` member), GeoJSON geometry bytes
    (see :func:`geometries`) and JSON-ready properties (see :func:`records`).

    Examples
    --------
    >>> feature_bytes("U1", b"null", {"households": 120})
    b'{"type":"Feature","id":"U1","geometry":null,"properties":{"households":120}}'
    """
    head = b'{"type":"Feature",' if fid is None else b'{"type":"Feature","id":' + dumps(fid) + b","
    return head + b'"geometry":' + geometry + b',"properties":' + dumps(properties) + b"}"


@dataclass(frozen=True)
class Piece:
    """One feature with every property: cut to a reader's view with :meth:`encode`.

    Examples
    --------
    >>> p = Piece("R1", b"null", {"category": "garbage", "reporter_contact": "138"})
    >>> p.encode(frozenset({"reporter_contact"}))
    b'{"type":"Feature","id":"R1","geometry":null,"properties":{"category":"garbage"}}'
    """

    id: str
    geometry: bytes
    properties: dict

    def encode(self, hidden: Collection[str] = frozenset(), hide_geometry: bool = False) -> bytes:
        """The feature as GeoJSON bytes, without the ``hidden`` properties (and without
        its geometry when ``hide_geometry``)."""
        rec = self.properties
        if hidden:
            rec = {k: v for k, v in rec.items() if k not in hidden}
        return feature_bytes(self.id, b"null" if hide_geometry else self.geometry, rec)


def _columns(df: pd.DataFrame, exclude: Collection[str]) -> dict[str, pd.Series]:
    """Property columns of ``df`` by name, without the geometry (no copy of the frame)."""
    gcol = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    return {str(c): s for c, s in df.items() if c != gcol and c not in exclude}


def _geoms(df: pd.DataFrame) -> np.ndarray:
    if isinstance(df, gpd.GeoDataFrame):
        return np.asarray(df.geometry.array, dtype=object)
    return np.full(len(df), None, dtype=object)


def pieces(
    df: pd.DataFrame,
    *,
    id_col: str | None,
    precision: int = PRECISION,
    exclude: Collection[str] = (),
) -> list[Piece]:
    """Every row of ``df`` (WGS84) as a :class:`Piece`, serialised in one vectorised
    pass, so that many readers, each with their own view, are answered from it.

    Ids come from ``id_col``, else the row number; ``exclude`` names columns never
    encoded.

    Examples
    --------
    >>> import pandas as pd
    >>> [p.id for p in pieces(pd.DataFrame({"unit_id": ["U1", "U2"]}), id_col="unit_id")]
    ['U1', 'U2']
    """
    props = _columns(df, exclude)
    ids = (
        props[id_col].astype(str).tolist()
        if id_col and id_col in props
        else [str(i) for i in range(len(df))]
    )
    geo = geometries(_geoms(df), precision=precision)
    return [Piece(i, g, r) for i, g, r in zip(ids, geo, records(props), strict=True)]


def column_pieces(
    columns: Mapping[str, Sequence[object]],
    geoms: object,
    *,
    id_col: str,
    precision: int = PRECISION,
    exclude: Collection[str] = (),
) -> list[Piece]:
    """:func:`pieces` of rows given as columns of Python values (``None`` missing,
    ``datetime`` times), as a few rows written are: the same pieces as those of a
    frame of the same rows, without making one.

    Examples
    --------
    >>> import datetime as dt, shapely
    >>> t = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    >>> p = column_pieces({"report_id": ["R1"], "reported_at": [t], "n": [None]},
    ...                   [shapely.Point(113.1, 27.8)], id_col="report_id")
    >>> p[0].properties
    {'report_id': 'R1', 'reported_at': '2026-03-01T00:00:00+00:00', 'n': None}
    >>> p[0].geometry
    b'{"type":"Point","coordinates":[113.1,27.8]}'
    """
    names = [c for c in columns if c not in exclude]
    cols = [
        [v.isoformat() if isinstance(v, _dt.datetime) else v for v in columns[c]] for c in names
    ]
    ids = [str(i) for i in columns[id_col]]
    geo = geometries(np.asarray(geoms, dtype=object), precision=precision)
    return [
        Piece(i, g, dict(zip(names, row, strict=True)))
        for i, g, row in zip(ids, geo, zip(*cols, strict=True), strict=True)
    ]


def to_geojson(
    df: pd.DataFrame,
    *,
    id_col: str | None = None,
    precision: int = PRECISION,
    exclude: Collection[str] = (),
) -> bytes:
    """A FeatureCollection of ``df`` as UTF-8 bytes (RFC 7946).

    Parameters
    ----------
    df
        A GeoDataFrame in WGS84 (reproject first), or a DataFrame (an attribute table:
        every geometry ``null``).
    id_col
        Column giving each feature's ``id`` (as text); ``None``: no ``id`` members.
    precision
        Decimals kept in coordinates.
    exclude
        Columns left out of the properties.

    Examples
    --------
    >>> import json, geopandas as gpd, pandas as pd
    >>> from shapely import Point
    >>> reports = gpd.GeoDataFrame(
    ...     {"report_id": ["R1"], "reported_at": [pd.Timestamp("2026-03-01", tz="UTC")],
    ...      "share": [float("nan")]},
    ...     geometry=[Point(113.12345678, 27.8)], crs=4326)
    >>> doc = json.loads(to_geojson(reports, id_col="report_id"))
    >>> doc["features"][0]["id"], doc["features"][0]["properties"]
    ('R1', {'report_id': 'R1', 'reported_at': '2026-03-01T00:00:00+00:00', 'share': None})
    >>> doc["features"][0]["geometry"]["coordinates"]
    [113.1234568, 27.8]
    """
    props = _columns(df, exclude)
    ids: list[str | None] = (
        props[id_col].astype(str).tolist() if id_col and id_col in props else [None] * len(df)
    )
    if id_col and id_col in exclude:
        ids = df[id_col].astype(str).tolist()
    geo = geometries(_geoms(df), precision=precision)
    body = b",".join(
        feature_bytes(i, g, r) for i, g, r in zip(ids, geo, records(props), strict=True)
    )
    return b'{"type":"FeatureCollection","features":[' + body + b"]}"


@dataclass
class FeatureIndex:
    """A layer encoded once and ready to page through: each feature's GeoJSON bytes
    and what filters need (ids, bounds, admin codes, times), as arrays.

    A service builds it once per layer version and view and answers every page,
    bbox, time and scope query from it without touching the geometries again.

    Attributes
    ----------
    features
        One GeoJSON Feature (bytes) per row.
    ids
        Each feature's id, as text.
    bounds
        ``(n, 4)`` min x, min y, max x, max y; NaN where a feature has no geometry
        (or its geometry is hidden: a bbox query must not reveal where it is).
    admin_codes
        Each feature's admin code, normalised once by :func:`gridkit.codes.normalise`
        (``''`` where missing), or None when the layer has none.
    times
        Each feature's time (``datetime64[ns]``, UTC), or None.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> reports = gpd.GeoDataFrame(
    ...     {"report_id": ["R1", "R2"], "admin_code": ["430202001001", "430211002003"]},
    ...     geometry=[Point(113.13, 27.83), Point(113.40, 27.60)], crs=4326)
    >>> index = FeatureIndex.from_frame(reports, id_col="report_id")
    >>> index.ids.tolist(), index.in_bbox((113.0, 27.8, 113.2, 27.9)).tolist()
    (['R1', 'R2'], [True, False])
    >>> index.in_scope("430211").tolist(), index.extent(index.in_scope("430200"))
    ([False, True], [113.13, 27.6, 113.4, 27.83])
    """

    features: list[bytes]
    ids: np.ndarray
    bounds: np.ndarray
    admin_codes: np.ndarray | None
    times: np.ndarray | None

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        id_col: str | None,
        hidden: Collection[str] = (),
        hide_geometry: bool = False,
        time_col: str | None = None,
        exclude: Collection[str] = (),
        precision: int = PRECISION,
    ) -> FeatureIndex:
        """Encode every feature of ``df`` (WGS84) once.

        ``hidden`` columns and ``exclude`` columns are left out of the properties;
        ``hide_geometry`` encodes ``null`` geometries and leaves no bounds.
        """
        props = _columns(df, {*hidden, *exclude})
        geoms = _geoms(df)
        if hide_geometry:
            geoms = np.full(len(df), None, dtype=object)
        ids = (
            props[id_col].astype(str).to_numpy()
            if id_col and id_col in props
            else np.arange(len(df)).astype(str)
        )
        features = [  # JSON is per feature
            feature_bytes(fid, g, rec)
            for fid, g, rec in zip(
                ids, geometries(geoms, precision=precision), records(props), strict=True
            )
        ]
        admin = (
            codes.normalise(df["admin_code"]).fillna("").to_numpy(dtype=str)
            if "admin_code" in df.columns
            else None
        )
        times = None
        if time_col and time_col in df.columns:
            t = pd.to_datetime(df[time_col], utc=True, errors="coerce")
            times = t.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        return cls(features, ids, shapely.bounds(geoms), admin, times)

    def __len__(self) -> int:
        return len(self.features)

    def in_bbox(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Mask of the features whose bounds meet ``bbox`` (min x, min y, max x, max y);
        a box whose min x is east of its max x crosses the antimeridian (OGC API -
        Features): from min x to 180 and from -180 to max x."""
        x0, y0, x1, y1 = bbox
        b = self.bounds
        lat = (b[:, 1] <= y1) & (b[:, 3] >= y0)
        if x0 > x1:
            return lat & ((b[:, 2] >= x0) | (b[:, 0] <= x1))
        return lat & (b[:, 0] <= x1) & (b[:, 2] >= x0)

    def in_period(self, start: np.datetime64 | None, end: np.datetime64 | None) -> np.ndarray:
        """Mask of the features whose time lies in ``[start, end]`` (open ends allowed);
        features without a time are outside every period. All true without times."""
        if self.times is None:
            return np.ones(len(self), dtype=bool)
        t = self.times
        mask = ~np.isnat(t)
        # compared in the times' own unit: numpy would turn year 9999 into nanoseconds
        # (past 2262) and overflow, silently
        unit, _ = np.datetime_data(t.dtype)
        lo, hi = _INT64_RANGE.view(f"datetime64[{unit}]").astype("datetime64[us]")
        if start is not None:
            start = np.datetime64(start, "us")
            if start > hi:
                return np.zeros(len(self), dtype=bool)
            if start > lo:
                mask &= t >= start.astype(t.dtype)
        if end is not None:
            end = np.datetime64(end, "us")
            if end < lo:
                return np.zeros(len(self), dtype=bool)
            if end < hi:
                mask &= t <= end.astype(t.dtype)
        return mask

    def in_scope(self, scope: str | None) -> np.ndarray:
        """Mask of the features inside the admin area ``scope``, as
        :func:`gridkit.codes.in_scope` answers, read off the codes normalised once
        (a prefix test per feature: ~0.1 ms on 20,000 features); all true for no
        scope or a layer without admin codes."""
        if not scope or self.admin_codes is None:
            return np.ones(len(self), dtype=bool)
        return np.char.startswith(self.admin_codes, codes.prefix(scope))

    def extent(self, mask: np.ndarray | None = None) -> list[float] | None:
        """``[min x, min y, max x, max y]`` of the (masked) features that have bounds,
        or None when there are none."""
        ok = np.isfinite(self.bounds).all(axis=1)
        if mask is not None:
            ok &= mask
        if not ok.any():
            return None
        b = self.bounds[ok]
        return [
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        ]
