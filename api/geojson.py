"""The served layers as GeoJSON, once per layer generation and role.

The encoding itself is :mod:`gridkit.geojson` (RFC 7946); this module adds what the
service needs around it: the per-feature bytes cached with the filters of a page
(ids, bounds, admin codes, times) and the bookkeeping columns never served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

import gridkit.geojson
from gridkit.geojson import PRECISION, FeatureIndex, Piece

__all__ = [
    "INTERNAL",
    "PRECISION",
    "Piece",
    "Serialised",
    "column_pieces",
    "feature",
    "pieces",
    "serialise",
]

#: bookkeeping columns of the service, never served: a stored Idempotency-Key names
#: its caller, and its request fingerprint covers private fields
INTERNAL = frozenset({"idempotency_key", "idempotency_hash"})


#: a layer encoded once, with the filters of a page (:class:`gridkit.geojson.FeatureIndex`)
Serialised = FeatureIndex


def pieces(df: pd.DataFrame, *, id_col: str | None) -> list[Piece]:
    """Every row of ``df`` as a :class:`Piece` (see :func:`gridkit.geojson.pieces`),
    without the service's bookkeeping columns."""
    return gridkit.geojson.pieces(df, id_col=id_col, exclude=INTERNAL)


def column_pieces(
    columns: Mapping[str, Sequence[object]], geoms: object, *, id_col: str
) -> list[Piece]:
    """Rows given as columns of values as :class:`Piece` (see
    :func:`gridkit.geojson.column_pieces`), without the service's bookkeeping columns."""
    return gridkit.geojson.column_pieces(columns, geoms, id_col=id_col, exclude=INTERNAL)


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
    """Serialise every feature of ``df`` (WGS84) to GeoJSON bytes, without the
    service's bookkeeping columns (no geometry, no bounds where it is hidden: a bbox
    query must not reveal where)."""
    return FeatureIndex.from_frame(
        df,
        id_col=id_col,
        hidden=hidden,
        hide_geometry=hide_geometry,
        time_col=time_col,
        exclude=INTERNAL,
    )
