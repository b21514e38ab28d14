"""Answers of the write routes: JSON bytes, and features as the caller may see them."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
from starlette.responses import Response

from api.auth import Principal
from api.geojson import Piece, feature
from gridkit.layers import LAYERS

GEOJSON = "application/geo+json"
JSON = "application/json"


def json_response(
    body: Any, status: int = 200, media_type: str = GEOJSON, **headers: str
) -> Response:
    """``body`` (bytes as they are, anything else through orjson) as a response."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=media_type, headers=headers)


def feature_of(df: pd.DataFrame, caller: Principal, layer: str, row: int = 0) -> bytes:
    """Row ``row`` of ``df`` as a GeoJSON Feature, private fields as ``caller`` may see."""
    spec = LAYERS[layer]
    return feature(
        df,
        id_col=spec.id,
        hidden=[] if caller.sees_private else list(spec.private),
        hide_geometry=spec.private_geometry and not caller.sees_private,
        row=row,
    )


def encode(piece: Piece, caller: Principal, layer: str) -> bytes:
    """``piece`` as a GeoJSON Feature, private fields as ``caller`` may see (the same
    bytes as :func:`feature_of` on its row)."""
    spec = LAYERS[layer]
    if caller.sees_private:
        return piece.encode()
    return piece.encode(frozenset(spec.private), hide_geometry=spec.private_geometry)
