"""SQLite encodings of the GeoPackage backend: geometry blobs, values, rows, the SQL
functions GDAL's triggers call and the ``gpkg_contents`` bookkeeping.

Private to :mod:`gridkit.store.gpkg` (the GeoPackage store); kept apart so the store's
module reads as the store.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely

from gridkit.errors import GridkitError


@dataclass(frozen=True)
class _Table:
    """What a layer's table is: its columns, geometry column and SRS id."""

    columns: list[str]
    geometry: str | None
    srs_id: int


_GP_POINT = b"GP\x00\x01" + (4326).to_bytes(4, "little")  # little-endian, no envelope
_GP_BOX = b"GP\x00\x03" + (4326).to_bytes(4, "little")  # + envelope (minx maxx miny maxy)
_GP_EMPTY = b"GP\x00\x11" + (4326).to_bytes(4, "little")  # empty flag
_ENVELOPE = struct.Struct("<4d")


def _gpkg_geometry(blob: bytes | None):
    """Decode a GeoPackage geometry blob (header + WKB) into shapely, None for NULL."""
    if blob is None:
        return None
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    size = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get(envelope, 0)
    return shapely.from_wkb(bytes(blob[size:]))


_POINT_WKB = b"\x01\x01\x00\x00\x00"  # little-endian 2D point


def _blob_bounds(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, miny, maxx, maxy) of a GeoPackage blob, None when NULL or empty.

    Read from the header's envelope or, for a 2D point, from the WKB itself; other
    geometries without an envelope are decoded. GDAL's R-tree triggers call this five
    times per inserted row, so the common cases avoid decoding.
    """
    if blob is None or blob[3] & 0x10:
        return None
    flags = blob[3]
    if (flags >> 1) & 0b111:
        minx, maxx, miny, maxy = struct.unpack_from("<4d" if flags & 1 else ">4d", blob, 8)
        return minx, miny, maxx, maxy
    if len(blob) == 29 and blob[8:13] == _POINT_WKB:
        x, y = struct.unpack_from("<2d", blob, 13)
        return None if x != x else (x, y, x, y)  # NaN coordinates: an empty point
    g = _gpkg_geometry(blob)
    return None if g.is_empty else tuple(g.bounds)


def _bound(i: int):
    def f(blob: bytes | None) -> float | None:
        b = _blob_bounds(blob)
        return None if b is None else float(b[i])

    return f


def _register_gpkg_functions(con: sqlite3.Connection) -> None:
    """The SQL functions GDAL's R-tree triggers call (design pitfall: plain sqlite3
    connections lack them, so any statement firing a trigger would fail)."""
    con.create_function(
        "ST_IsEmpty",
        1,
        lambda b: None if b is None else int(_blob_bounds(b) is None),
        deterministic=True,
    )
    for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
        con.create_function(name, 1, _bound(i), deterministic=True)


def _sql_type(values: pd.Series) -> str:
    """GeoPackage column type for a new column (GDAL reads these declared types)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(values.dtype):
        return "INTEGER"
    if pd.api.types.is_float_dtype(values.dtype):
        return "REAL"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "DATETIME"
    return "TEXT"


def _sql_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, pd.Timestamp):
        # GeoPackage DATETIME: ISO 8601 UTC with milliseconds and a Z
        t = value.tz_convert("UTC") if value.tzinfo else value.tz_localize("UTC")
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _gpkg_now() -> str:
    return _sql_value(pd.Timestamp.now(tz="UTC"))


@contextmanager
def _transaction(con: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock at once), then COMMIT, or ROLLBACK on error."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _contents(con: sqlite3.Connection) -> dict[str, tuple]:
    """Layer -> (last change, feature count): what a write by anyone changes (GDAL and
    this store keep both current; QGIS writes through GDAL)."""
    try:
        rows = con.execute(
            "SELECT c.table_name, c.last_change, o.feature_count FROM gpkg_contents c "
            "LEFT JOIN gpkg_ogr_contents o ON o.table_name = c.table_name "
            # tables GDAL counts but did not register (it may leave attribute tables
            # out of gpkg_contents): their count alone
            "UNION ALL SELECT table_name, NULL, feature_count FROM gpkg_ogr_contents "
            "WHERE table_name NOT IN (SELECT table_name FROM gpkg_contents)"
        ).fetchall()
    except sqlite3.OperationalError:  # no gpkg_ogr_contents: not written by GDAL
        rows = con.execute("SELECT table_name, last_change, NULL FROM gpkg_contents").fetchall()
    return {str(name): (changed, count) for name, changed, count in rows}


def _touch_contents(con: sqlite3.Connection, layer: str, now: str, bounds) -> None:
    """Keep ``gpkg_contents`` honest: last change, and the extent grown to new rows."""
    if bounds is None:
        con.execute("UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?", (now, layer))
        return
    con.execute(
        "UPDATE gpkg_contents SET last_change = ?, "
        "min_x = min(coalesce(min_x, ?), ?), min_y = min(coalesce(min_y, ?), ?), "
        "max_x = max(coalesce(max_x, ?), ?), max_y = max(coalesce(max_y, ?), ?) "
        "WHERE table_name = ?",
        (now, *(v for b in bounds for v in (b, b)), layer),
    )


def _gpkg_blobs(geoms) -> tuple[list[bytes | None], tuple[float, ...] | None]:
    """GeoPackage geometry blobs (header, envelope except for points, WKB) and the
    overall bounds (None when there is no geometry)."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    empty = present & shapely.is_empty(geoms)
    full = present & ~empty
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    points = shapely.get_type_id(geoms) == 0
    out: list[bytes | None] = [None] * len(geoms)
    for i in np.flatnonzero(present):  # header + bytes: no vectorised form, cheap per row
        if empty[i]:
            head = _GP_EMPTY
        elif points[i]:
            head = _GP_POINT
        else:
            b = bounds[i]
            head = _GP_BOX + _ENVELOPE.pack(b[0], b[2], b[1], b[3])
        out[i] = head + wkb[i]
    total = None
    if full.any():
        b = bounds[full]
        total = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    return out, total


def _sql_rows(df: pd.DataFrame, geom: str | None, table: _Table):
    """Columns, row tuples and bounds for ``INSERT`` (values in GeoPackage encodings:
    None for missing, ISO 8601 UTC times with milliseconds, GeoPackage blobs)."""
    series = {c: s for c, s in df.items() if c != geom and str(c) in table.columns}
    cols = list(series)
    names = [str(c) for c in cols]
    is_time = [pd.api.types.is_datetime64_any_dtype(s.dtype) for s in series.values()]
    bulk = len(df) > 100  # vectorised time formatting pays off on many rows only
    values = np.empty((len(df), len(cols)), dtype=object)
    for k, (s, t) in enumerate(zip(series.values(), is_time, strict=True)):  # one a column
        values[:, k] = (_iso_times(s) if t and bulk else s).to_numpy(dtype=object, na_value=None)
    for k, c in enumerate(cols):
        if series[c].dtype == object or (is_time[k] and not bulk):
            # Timestamps, numpy scalars and other Python objects, one by one
            values[:, k] = [_sql_value(v) for v in values[:, k]]
    bounds = None
    if geom is not None and table.geometry is not None:
        if table.srs_id != 4326:
            raise GridkitError(f"layer uses SRS {table.srs_id}; the store writes WGS84 only.")
        blobs, bounds = _gpkg_blobs(df[geom].array)
        column = np.empty(len(blobs), dtype=object)
        column[:] = blobs
        values = np.column_stack([values, column])
        names.append(table.geometry)
    return names, [tuple(r) for r in values.tolist()], bounds


def _iso_times(values: pd.Series) -> pd.Series:
    """GeoPackage DATETIME text (``2026-05-01T08:00:00.000Z``) for a datetime column."""
    t = values.dt.tz_convert("UTC") if values.dt.tz is not None else values
    return t.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
