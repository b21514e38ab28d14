"""Persistence behind one interface: the GeoPackage workspace (embedded) backend.

The API reads and writes through a :class:`Store`; the GeoPackage backend keeps
everything in one workspace file that also opens in QGIS. Design rules it follows
(see the design's pitfalls):

- one writer at a time: every write goes through one lock, and GeoPackage (SQLite)
  is put in WAL mode so readers are not blocked;
- a write returns only after its transaction is committed, so an acknowledged
  (2xx) write is on disk;
- inserts of features go through GDAL (which maintains the R-tree index through its
  triggers); updates of attribute columns and the API keys table use plain SQLite
  (with the SQL functions GDAL's triggers need registered on the connection);
- idempotency keys are stored in the row they created, in the same transaction.

A PostGIS backend can follow behind the same interface.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from gridkit.crs import WGS84
from gridkit.errors import GridkitError, InputFileError, LayerNotFoundError
from gridkit.io import read_layer, write_layer

__all__ = ["ROLES", "ApiKey", "GeoPackageStore", "Store", "hash_key", "open_store"]

ROLES = ("viewer", "worker", "supervisor", "planner", "admin")
KEYS_TABLE = "gridkit_api_keys"


def hash_key(key: str) -> str:
    """SHA-256 of an API key: keys are random tokens, so a fast hash is the right one."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """An issued API key (the secret itself is never stored)."""

    key_id: str
    name: str
    role: str
    scope: str  # admin code prefix; "" = everywhere
    worker_id: str | None
    revoked: bool = False


class Store(ABC):
    """What the API needs from persistence."""

    @abstractmethod
    def layers(self) -> list[str]: ...

    @abstractmethod
    def read(self, layer: str) -> pd.DataFrame: ...

    @abstractmethod
    def generation(self, layer: str) -> int:
        """A counter that changes whenever ``layer`` changes (for response caches)."""

    @abstractmethod
    def append(self, layer: str, rows: pd.DataFrame) -> None: ...

    @abstractmethod
    def update(self, layer: str, id_col: str, id_value: str, values: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def add_key(
        self, name: str, *, role: str, scope: str = "", worker_id: str | None = None
    ) -> tuple[str, ApiKey]: ...

    @abstractmethod
    def find_key(self, key: str) -> ApiKey | None: ...

    @abstractmethod
    def revoke_key(self, key_id: str) -> None: ...


class GeoPackageStore(Store):
    """The workspace GeoPackage as a store.

    Parameters
    ----------
    path
        Workspace file; it must exist (build one with ``gridkit demo`` or write layers
        with :func:`gridkit.write_layers`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputFileError(
                f"{self.path}: no such workspace.",
                hint="Build one with `gridkit demo --workspace PATH` or write layers to a .gpkg.",
            )
        self._lock = threading.RLock()
        self._generations: dict[str, int] = {}
        self._cache: dict[str, tuple[int, pd.DataFrame]] = {}
        self._layer_names: list[str] | None = None
        self._field_cache: dict[str, list[str]] = {}
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (key_id TEXT PRIMARY KEY, "
                "name TEXT NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '', "
                "worker_id TEXT, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, "
                "revoked INTEGER NOT NULL DEFAULT 0)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        _register_gpkg_functions(con)
        try:
            con.execute("PRAGMA synchronous=FULL")  # a 2xx means the commit is on disk
            yield con
        finally:
            con.close()

    # -- layers -----------------------------------------------------------------------
    def layers(self) -> list[str]:
        # listing opens the file through GDAL (~5 ms): cached, refreshed by our writes
        if self._layer_names is None:
            self._layer_names = [
                str(n)
                for n, _ in pyogrio.list_layers(self.path)
                if not str(n).startswith("gridkit_")
            ]
        return self._layer_names

    def generation(self, layer: str) -> int:
        return self._generations.get(layer, 0)

    def _bump(self, layer: str) -> None:
        self._generations[layer] = self._generations.get(layer, 0) + 1
        self._cache.pop(layer, None)

    def read(self, layer: str) -> pd.DataFrame:
        cached = self._cache.get(layer)
        gen = self.generation(layer)
        if cached is not None and cached[0] == gen:
            return cached[1]
        if layer not in self.layers():
            raise LayerNotFoundError(f"{self.path}: no layer {layer!r}.")
        df = read_layer(self.path, layer, check=False)
        self._cache[layer] = (gen, df)
        return df

    def _fields(self, layer: str) -> list[str]:
        """Field names of ``layer`` in table order (GDAL metadata call, cached)."""
        fields = self._field_cache.get(layer)
        if fields is None:
            fields = [str(f) for f in pyogrio.read_info(self.path, layer=layer)["fields"]]
            self._field_cache[layer] = fields
        return fields

    def append(self, layer: str, rows: pd.DataFrame) -> None:
        """Append rows (one transaction); columns the layer lacks are added first."""
        if len(rows) == 0:
            return
        with self._lock:
            if layer in self.layers():
                fields = self._fields(layer)
                geom = getattr(rows, "_geometry_column_name", None)
                missing = [c for c in rows.columns if c != geom and str(c) not in fields]
                if missing:
                    self._field_cache.pop(layer, None)  # the schema changes: forget it
                    with self._connect() as con:
                        for col in missing:
                            con.execute(
                                f'ALTER TABLE "{layer}" ADD COLUMN "{col}" {_sql_type(rows[col])}'
                            )
                    # ADD COLUMN appends at the end of the table
                    fields = [*fields, *(str(c) for c in missing)]
                    self._field_cache[layer] = fields
                # the layer and its fields are known: append straight through pyogrio,
                # columns in the layer's field order (pyogrio's non-arrow append matches
                # fields by position), without write_layer's metadata look-ups
                out = rows
                if isinstance(out, gpd.GeoDataFrame) and out.crs is not None:
                    if not out.crs.equals(WGS84):
                        out = out.to_crs(4326)
                order = [f for f in fields if f in out.columns]
                out = out[order + ([geom] if geom and geom in out.columns else [])]
                pyogrio.write_dataframe(out, self.path, layer=layer, driver="GPKG", append=True)
            else:
                write_layer(rows, self.path, layer, append=True)
                self._layer_names = None  # a new layer: list again
                self._field_cache.pop(layer, None)
            cached = self._cache.get(layer)
            self._bump(layer)
            if cached is not None and cached[0] == self.generation(layer) - 1:
                # keep the in-memory copy current instead of re-reading the whole layer
                both = pd.concat([cached[1], rows], ignore_index=True)
                if isinstance(cached[1], gpd.GeoDataFrame) == isinstance(both, gpd.GeoDataFrame):
                    self._cache[layer] = (self.generation(layer), both)

    def update(self, layer: str, id_col: str, id_value: str, values: Mapping[str, Any]) -> None:
        if not values:
            return
        cols = list(values)
        for c in [*cols, id_col]:
            if not c.replace("_", "").isalnum():
                raise GridkitError(f"invalid column name {c!r}")
        sets = ", ".join(f'"{c}" = ?' for c in cols)
        params = [_sql_value(values[c]) for c in cols] + [id_value]
        with self._lock, self._connect() as con:
            cur = con.execute(f'UPDATE "{layer}" SET {sets} WHERE "{id_col}" = ?', params)
            if cur.rowcount == 0:
                raise LayerNotFoundError(f"{layer}: no row with {id_col} = {id_value!r}.")
            self._bump(layer)

    # -- API keys ---------------------------------------------------------------------
    def add_key(
        self, name: str, *, role: str, scope: str = "", worker_id: str | None = None
    ) -> tuple[str, ApiKey]:
        if role not in ROLES:
            raise GridkitError(f"unknown role {role!r}.", hint=f"Roles: {', '.join(ROLES)}.")
        if role == "worker" and not worker_id:
            raise GridkitError(
                "a worker key needs --worker-id (workers write only on their own units)."
            )
        secret = "gk_" + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(6)
        with self._lock, self._connect() as con:
            con.execute(
                f"INSERT INTO {KEYS_TABLE} (key_id, name, role, scope, worker_id, hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    name,
                    role,
                    scope or "",
                    worker_id,
                    hash_key(secret),
                    pd.Timestamp.now(tz="UTC").isoformat(),
                ),
            )
        return secret, ApiKey(key_id, name, role, scope or "", worker_id)

    def find_key(self, key: str) -> ApiKey | None:
        with self._connect() as con:
            row = con.execute(
                f"SELECT key_id, name, role, scope, worker_id, revoked FROM {KEYS_TABLE} "
                "WHERE hash = ?",
                (hash_key(key),),
            ).fetchone()
        if row is None or row[5]:
            return None
        return ApiKey(row[0], row[1], row[2], row[3], row[4], bool(row[5]))

    def revoke_key(self, key_id: str) -> None:
        with self._lock, self._connect() as con:
            cur = con.execute(f"UPDATE {KEYS_TABLE} SET revoked = 1 WHERE key_id = ?", (key_id,))
            if cur.rowcount == 0:
                raise GridkitError(f"no API key with id {key_id!r}.")

    def keys(self) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                f"SELECT key_id, name, role, scope, worker_id, created_at, revoked "
                f"FROM {KEYS_TABLE} ORDER BY created_at",
                con,
            )


def _gpkg_geometry(blob: bytes | None):
    """Decode a GeoPackage geometry blob (header + WKB) into shapely, None for NULL."""
    if blob is None:
        return None
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    size = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get(envelope, 0)
    return shapely.from_wkb(bytes(blob[size:]))


def _bound(i: int):
    def f(blob: bytes | None) -> float | None:
        g = _gpkg_geometry(blob)
        if g is None or g.is_empty:
            return None
        return float(g.bounds[i])

    return f


def _register_gpkg_functions(con: sqlite3.Connection) -> None:
    """The SQL functions GDAL's R-tree triggers call (design pitfall: plain sqlite3
    connections lack them, so any statement firing a trigger would fail)."""
    con.create_function(
        "ST_IsEmpty",
        1,
        lambda b: None if b is None else int(bool(b[3] & 0x10) or _gpkg_geometry(b).is_empty),
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
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        # GeoPackage DATETIME: ISO 8601 UTC with milliseconds and a Z
        t = value.tz_convert("UTC") if value.tzinfo else value.tz_localize("UTC")
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, bool):
        return int(value)
    return value


def open_store(workspace: str | Path) -> Store:
    """Open the store for a workspace (a ``.gpkg`` path today; PostGIS URLs later)."""
    return GeoPackageStore(workspace)
