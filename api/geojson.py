"""The served layers as GeoJSON, once per layer generation and role.

The encoding itself is :mod:`gridkit.geojson` (RFC 7946); this module adds what the
service needs around it: the per-feature bytes cached with the filters of a page
(ids, bounds, admin codes, times) and the bookkeeping columns never served.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import gridkit.geojson
from gridkit import codes
from gridkit.geojson import PRECISION, Piece, feature_bytes, geometries, records

__all__ = ["INTERNAL", "PRECISION", "Piece", "Serialised", "feature", "pieces", "serialise"]

#: bookkeeping columns of the service, never served: a stored Idempotency-Key names
#: its caller, and its request fingerprint covers private fields
INTERNAL = frozenset({"idempotency_key", "idempotency_hash"})


@dataclass
class Serialised:
    """A layer ready to page through: one JSON byte string per feature plus filters."""

    features: list[bytes]
    ids: np.ndarray
    bounds: np.ndarray  # (n, 4), NaN where no geometry
    #: admin codes, normalised once (:func:`gridkit.codes.normalise`), '' where missing
    admin_codes: np.ndarray | None
    times: np.ndarray | None  # datetime64[ns, UTC] as int64 ns, or None

    def in_scope(self, scope: str) -> np.ndarray:
        """Which rows lie in the area ``scope`` (all for an empty scope): the answer of
        :func:`gridkit.codes.in_scope`, read off the codes normalised once per layer
        version (a prefix test per row: ~0.1 ms on 20,000 features, where normalising
        them per request would cost ~50 ms)."""
        if not scope or self.admin_codes is None:
            return np.ones(len(self.features), dtype=bool)
        return np.char.startswith(self.admin_codes, codes.prefix(scope))


def pieces(df: pd.DataFrame, *, id_col: str | None) -> list[Piece]:
    """Every row of ``df`` as a :class:`Piece` (see :func:`gridkit.geojson.pieces`),
    without the service's bookkeeping columns."""
    return gridkit.geojson.pieces(df, id_col=id_col, exclude=INTERNAL)


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


def serialise(
    df: pd.DataFrame,
    *,
    id_col: str | None,
    hidden: list[str],
    hide_geometry: bool,
    time_col: str | None,
) -> Serialised:
    """Serialise every feature of ``df`` (WGS84) to GeoJSON bytes."""
    n = len(df)
    gcol = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    skip = {gcol, *hidden, *INTERNAL}
    props = {str(c): s for c, s in df.items() if c not in skip}  # no copy of the frame
    geoms = np.asarray(df.geometry.array) if gcol else np.full(n, None, dtype=object)
    if hide_geometry:  # no geometry, no bounds: a bbox query must not reveal where
        geoms = np.full(n, None, dtype=object)
    ids = (
        props[id_col].astype(str).to_numpy()
        if id_col and id_col in props
        else np.arange(n).astype(str)
    )
    features = [  # JSON is per feature
        feature_bytes(fid, g, rec)
        for fid, g, rec in zip(ids, geometries(geoms), records(props), strict=True)
    ]
    admin = None
    if "admin_code" in props:
        admin = codes.normalise(props["admin_code"]).fillna("").to_numpy(dtype=str)
    times = None
    if time_col and time_col in props:
        t = pd.to_datetime(props[time_col], utc=True, errors="coerce")
        times = t.to_numpy(dtype="datetime64[ns]")
    return Serialised(features, ids, shapely.bounds(geoms), admin, times)
