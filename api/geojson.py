"""GeoJSON (RFC 7946) serialisation of layers, once per layer generation and role."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import shapely

PRECISION = 7  # ~1 cm


@dataclass
class Serialised:
    """A layer ready to page through: one JSON byte string per feature plus filters."""

    features: list[bytes]
    ids: np.ndarray
    bounds: np.ndarray  # (n, 4), NaN where no geometry
    admin_codes: np.ndarray | None
    times: np.ndarray | None  # datetime64[ns, UTC] as int64 ns, or None


def _default(value: object) -> object:
    """JSON for values pandas left as objects (timestamps in mixed columns, NA)."""
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _jsonable(columns: dict[str, pd.Series]) -> list[dict]:
    """Rows of the ``columns`` as JSON-ready dicts: missing values None, times ISO 8601.

    Column by column (one conversion each) rather than through an object copy of a
    frame, whose cost on the few rows of a write batch is all pandas overhead."""
    names = list(columns)
    cols = []
    for s in columns.values():
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            cols.append([None if pd.isna(t) else t.isoformat() for t in s])
        else:
            cols.append(s.to_numpy(dtype=object, na_value=None).tolist())
    return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def feature(
    df: pd.DataFrame,
    *,
    id_col: str | None,
    hidden: list[str],
    hide_geometry: bool,
    row: int = 0,
) -> bytes:
    """One feature of ``df`` as GeoJSON bytes, the same as ``serialise(...).features[row]``
    without serialising the whole layer (the single-row path of the writes)."""
    piece = pieces(df.iloc[[row]], id_col=id_col)[0]
    if not (id_col and id_col in df.columns):
        piece = Piece(str(row), piece.geometry, piece.properties)
    return piece.encode(frozenset(hidden), hide_geometry=hide_geometry)


def _feature_bytes(fid: str, geom: bytes, rec: dict) -> bytes:
    return (
        b'{"type":"Feature","id":'
        + orjson.dumps(fid)
        + b',"geometry":'
        + geom
        + b',"properties":'
        + orjson.dumps(rec, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
        + b"}"
    )


#: bookkeeping columns of the service, never served: a stored Idempotency-Key names
#: its caller, and its request fingerprint covers private fields
INTERNAL = frozenset({"idempotency_key", "idempotency_hash"})


def _parts(
    df: pd.DataFrame, *, id_col: str | None, hidden: list[str], hide_geometry: bool
) -> tuple[np.ndarray, list[bytes], list[dict], np.ndarray, dict[str, pd.Series]]:
    """Ids, GeoJSON geometries, JSON-ready property records and bounds of every row
    of ``df`` (WGS84), vectorised; also the property columns they came from."""
    n = len(df)
    gcol = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    geoms = np.asarray(df.geometry.array) if gcol else np.full(n, None, dtype=object)
    skip = {gcol, *hidden, *INTERNAL}
    props = {str(c): s for c, s in df.items() if c not in skip}  # no copy of the frame
    if hide_geometry:  # no geometry, no bounds: a bbox query must not reveal where
        geoms = np.full(n, None, dtype=object)
    bounds = shapely.bounds(geoms)
    rounded = shapely.transform(geoms, lambda c: np.round(c, PRECISION))
    polys = np.isin(shapely.get_type_id(rounded), [3, 6])
    if polys.any():  # RFC 7946: exterior rings counter-clockwise
        rounded[polys] = shapely.orient_polygons(rounded[polys], exterior_cw=False)
    geo_json = [b"null" if g is None else g.encode() for g in shapely.to_geojson(rounded)]
    ids = (
        props[id_col].astype(str).to_numpy()
        if id_col and id_col in props
        else (np.arange(n).astype(str))
    )
    return ids, geo_json, _jsonable(props), bounds, props


@dataclass(frozen=True)
class Piece:
    """One feature, every property included: cut to a caller with :meth:`encode`."""

    id: str
    geometry: bytes
    properties: dict

    def encode(self, hidden: frozenset[str] | set[str] = frozenset(), hide_geometry=False) -> bytes:
        """The feature as GeoJSON bytes, without the ``hidden`` properties (and without
        its geometry when ``hide_geometry``)."""
        rec = self.properties
        if hidden:
            rec = {k: v for k, v in rec.items() if k not in hidden}
        return _feature_bytes(self.id, b"null" if hide_geometry else self.geometry, rec)


def pieces(df: pd.DataFrame, *, id_col: str | None) -> list[Piece]:
    """Every row of ``df`` as a :class:`Piece`, serialised once (vectorised) so that
    many callers, each with their own view, can be answered from one pass."""
    ids, geo_json, records, _, _ = _parts(df, id_col=id_col, hidden=[], hide_geometry=False)
    return [Piece(str(i), g, r) for i, g, r in zip(ids, geo_json, records, strict=True)]


def serialise(
    df: pd.DataFrame,
    *,
    id_col: str | None,
    hidden: list[str],
    hide_geometry: bool,
    time_col: str | None,
) -> Serialised:
    """Serialise every feature of ``df`` (WGS84) to GeoJSON bytes."""
    ids, geo_json, records, bounds, props = _parts(
        df, id_col=id_col, hidden=hidden, hide_geometry=hide_geometry
    )
    features = [  # JSON is per feature
        _feature_bytes(fid, g, rec) for fid, rec, g in zip(ids, records, geo_json, strict=True)
    ]
    codes = props["admin_code"].astype(str).to_numpy() if "admin_code" in props else None
    times = None
    if time_col and time_col in props:
        t = pd.to_datetime(props[time_col], utc=True, errors="coerce")
        times = t.to_numpy(dtype="datetime64[ns]")
    return Serialised(features, ids, bounds, codes, times)
