"""Persistence behind one interface: the GeoPackage workspace (embedded) backend.

The API reads and writes through a :class:`Store`; the GeoPackage backend keeps
everything in one workspace file that also opens in QGIS. Design rules it follows
(see the design's pitfalls):

- one writer at a time: every write goes through one lock, and GeoPackage (SQLite)
  is put in WAL mode so readers are not blocked;
- a write returns only after its transaction is committed, so an acknowledged
  (2xx) write is on disk;
- a layer is created through GDAL (its first rows, its metadata and R-tree index);
  after that, inserts and updates go through plain SQLite, with the SQL functions
  GDAL's triggers need registered, so the R-tree index and the feature count stay
  current: rows of several layers (a report and its events) are written in one
  transaction, committed (``synchronous=FULL``) before returning;
- idempotency keys are stored in the row they created, in the same transaction.

A PostGIS backend can follow behind the same interface.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import struct
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridkit.crs import WGS84
from gridkit.errors import GridkitError, InputFileError, LayerNotFoundError
from gridkit.io import read_layer, write_layer

__all__ = [
    "ROLES",
    "ApiKey",
    "GeoPackageStore",
    "KeyRequest",
    "Store",
    "check_key_requests",
    "hash_key",
    "open_store",
]

ROLES = ("viewer", "worker", "supervisor", "planner", "admin")
#: how often, at most, the store looks for writes by other processes (seconds)
SYNC_S = 1.0
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


class ConcurrentWriteError(GridkitError):
    """Another process changed a layer since this store last saw it; nothing was written.

    ``layers`` names them; the store has forgotten what it held of them, so the next
    read sees the other process's rows.
    """

    def __init__(self, layers: Sequence[str]) -> None:
        self.layers = list(layers)
        super().__init__(
            f"{', '.join(self.layers)} changed in another process during this write; "
            "nothing was written.",
            hint="Try again: the store reads the layer again first.",
        )


class KeyRequest(NamedTuple):
    """A key to issue: who it is for, the role, the admin-code scope, the worker."""

    name: str
    role: str
    scope: str = ""
    worker_id: str | None = None


def check_key_requests(
    requests: Sequence[KeyRequest], *, source: str = "", rows: Sequence[int] | None = None
) -> list[KeyRequest]:
    """The requests cleaned (blanks stripped, scope ``""`` for none), or one error naming
    every bad one; ``source`` and ``rows`` (a CSV file and its line numbers) say where
    they came from."""
    rows = list(rows) if rows is not None else list(range(1, len(requests) + 1))
    where = f"{source}: " if source else ""
    if not requests:
        raise GridkitError(f"{where}no keys to issue.", hint="Give at least one name and role.")
    clean, bad = [], []
    for row, r in zip(rows, requests, strict=True):
        name = (r.name or "").strip()
        role = (r.role or "").strip().lower()
        scope = (r.scope or "").strip()
        worker = (r.worker_id or "").strip() or None
        problem = (
            "no name"
            if not name
            else f"unknown role {r.role!r}"
            if role not in ROLES
            else "a worker key needs a worker_id"
            if role == "worker" and not worker
            else f"scope {scope!r} is not an admin code (digits)"
            if scope and not scope.isdigit()
            else None
        )
        if problem:
            bad.append(problem if len(requests) == 1 and not source else f"row {row}: {problem}")
        clean.append(KeyRequest(name, role, scope, worker))
    if bad:
        raise GridkitError(
            where + "; ".join(bad) + ".",
            hint=f"Roles: {', '.join(ROLES)}; worker keys need a worker id (workers write "
            "only on their own units); a scope is an admin code prefix. Nothing was issued.",
        )
    return clean


class Store(ABC):
    """What the API needs from persistence."""

    @abstractmethod
    def layers(self) -> list[str]: ...

    @abstractmethod
    def read(self, layer: str) -> pd.DataFrame: ...

    @abstractmethod
    def generation(self, layer: str) -> int:
        """A counter that changes whenever ``layer`` changes (for response caches)."""

    def append(self, layer: str, rows: pd.DataFrame) -> None:
        """Append rows to one layer (one transaction)."""
        self.append_many({layer: rows})

    @abstractmethod
    def append_many(self, rows: Mapping[str, pd.DataFrame], *, if_unchanged: bool = False) -> None:
        """Append rows to several layers in one transaction, committed on return.
        ``if_unchanged``: write nothing and raise :class:`ConcurrentWriteError` when
        another process changed one of them since this store last saw it (rows that
        depend on the layer as the caller read it, e.g. the next ids)."""

    @abstractmethod
    def update(
        self,
        layer: str,
        id_col: str,
        id_value: str,
        values: Mapping[str, Any],
        *,
        append: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        """Set ``values`` on the row where ``id_col == id_value``, and append ``append``
        (e.g. the change's events) in the same transaction, committed on return."""

    @abstractmethod
    def versions(self) -> pd.DataFrame:
        """The published grid versions (``version``, ``published_at``, ``n_units``,
        ``note``); empty when none was published."""

    @abstractmethod
    def publish(self, units: gpd.GeoDataFrame, *, note: str = "") -> tuple[int, Any]:
        """Publish ``units`` as the next grid version (:func:`gridkit.versions.publish`):
        the version number and the diff against the previous one (None for the first)."""

    @abstractmethod
    def add_key(
        self, name: str, *, role: str, scope: str = "", worker_id: str | None = None
    ) -> tuple[str, ApiKey]:
        """Issue one key: the secret (shown once, stored only as its hash) and the key."""

    @abstractmethod
    def add_keys(self, requests: Sequence[KeyRequest]) -> list[tuple[str, ApiKey]]:
        """Issue several keys in one transaction, all or none (checked by
        :func:`check_key_requests`)."""

    @abstractmethod
    def find_key(self, key: str) -> ApiKey | None: ...

    @abstractmethod
    def revoke_key(self, key_id: str) -> None: ...


class _Update(NamedTuple):
    """New ``values`` for the row of ``layer`` where ``id_col == id_value``."""

    layer: str
    id_col: str
    id_value: str
    values: dict[str, Any]


@dataclass(frozen=True)
class _Table:
    columns: list[str]
    geometry: str | None
    srs_id: int


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
        # layer -> (generation, frames): the layer is the frames end to end; appended
        # rows wait as frames of their own until the next read joins them
        self._cache: dict[str, tuple[int, list[pd.DataFrame]]] = {}
        self._layer_names: list[str] | None = None
        self._tables: dict[str, _Table] = {}
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (key_id TEXT PRIMARY KEY, "
                "name TEXT NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '', "
                "worker_id TEXT, hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, "
                "revoked INTEGER NOT NULL DEFAULT 0)"
            )
            # what each layer looked like when we last knew it (see _sync)
            self._marks = _contents(con)
        self._file_sig = self._signature()
        self._next_sync = time.monotonic() + SYNC_S

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation (call with the lock held when writing).

        Not kept open between operations: GDAL carries its own SQLite library, and two
        SQLite libraries with the same file open in one process release each other's
        POSIX locks (a GDAL connection closing would delete the WAL under ours and
        lose what we commit next). Reads through GDAL take the same lock.
        """
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
            with self._lock:
                self._layer_names = [
                    str(n)
                    for n, _ in pyogrio.list_layers(self.path)
                    if not str(n).startswith("gridkit_")
                ]
        return self._layer_names

    def generation(self, layer: str) -> int:
        self._sync()
        return self._generations.get(layer, 0)

    def _signature(self) -> tuple:
        """Size and time of the file and its WAL: what any writer changes."""
        sig = []
        for p in (self.path, Path(f"{self.path}-wal")):
            try:
                st = p.stat()
                sig.append((st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append(None)
        return tuple(sig)

    def _sync(self) -> None:
        """Notice what other processes wrote (``gridkit publish`` from the command line,
        a planner editing in QGIS): at most once every ``SYNC_S`` seconds, a look at the
        file's size and time; when they moved, the last change and feature count of
        every layer (``gpkg_contents``) say which layers to read again."""
        now = time.monotonic()
        if now < self._next_sync:
            return
        self._next_sync = now + SYNC_S
        sig = self._signature()
        if sig == self._file_sig:
            return
        if not self._lock.acquire(blocking=False):  # a write of ours is under way: the
            self._next_sync = now  # caller (maybe an event loop) does not wait, the next does
            return
        try:
            with self._connect() as con:
                seen = _contents(con)
            for name in set(seen) | set(self._marks):
                if seen.get(name) != self._marks.get(name):
                    self._forget(name)
            if set(seen) != set(self._marks):
                self._layer_names = None
            self._marks = seen
            self._file_sig = sig
        finally:
            self._lock.release()

    def _bump(self, layer: str) -> None:
        self._generations[layer] = self._generations.get(layer, 0) + 1
        self._cache.pop(layer, None)

    def read(self, layer: str) -> pd.DataFrame:
        with self._lock:
            df = self._cached(layer)
            if df is not None:
                return df
            if layer not in self.layers():
                raise LayerNotFoundError(f"{self.path}: no layer {layer!r}.")
            gen = self.generation(layer)
            df = read_layer(self.path, layer, check=False)
            self._cache[layer] = (gen, [df])
        return df

    def _cached(self, layer: str) -> pd.DataFrame | None:
        """The held copy of ``layer`` if current (its appended rows joined now), or None."""
        cached = self._cache.get(layer)
        if cached is None or cached[0] != self.generation(layer):
            return None
        frames = cached[1]
        if len(frames) > 1:
            both = pd.concat(frames, ignore_index=True)
            if isinstance(frames[0], gpd.GeoDataFrame) != isinstance(both, gpd.GeoDataFrame):
                del self._cache[layer]  # cannot keep the layer's kind: read it again
                return None
            self._cache[layer] = (cached[0], [both])
            return both
        return frames[0]

    def _table(self, con: sqlite3.Connection, layer: str) -> _Table:
        """Columns, geometry column and SRS id of a layer's table (cached)."""
        table = self._tables.get(layer)
        if table is None:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{layer}")')]
            row = con.execute(
                "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                (layer,),
            ).fetchone()
            table = _Table(cols, row[0] if row else None, int(row[1]) if row else 0)
            self._tables[layer] = table
        return table

    def append_many(self, rows: Mapping[str, pd.DataFrame], *, if_unchanged: bool = False) -> None:
        """Append rows to several layers in one SQLite transaction.

        A layer that does not exist yet is created through GDAL with its rows first
        (its own commit); columns a layer lacks are added. Rows are matched to the
        table's columns by name.
        """
        self._write(rows, None, if_unchanged=if_unchanged)

    def update(
        self,
        layer: str,
        id_col: str,
        id_value: str,
        values: Mapping[str, Any],
        *,
        append: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        for c in [*values, id_col]:
            if not c.replace("_", "").isalnum():
                raise GridkitError(f"invalid column name {c!r}")
        change = _Update(layer, id_col, id_value, dict(values)) if values else None
        self._write(append or {}, change)

    def _write(
        self,
        rows: Mapping[str, pd.DataFrame],
        change: _Update | None,
        *,
        if_unchanged: bool = False,
    ) -> None:
        """One transaction: the row update ``change`` (if any) and the appended rows.

        Inside it, before writing, each layer's last change is compared with what this
        store last saw: a layer another process changed meanwhile is forgotten (read
        again next time), and with ``if_unchanged`` nothing is written."""
        todo = {name: df for name, df in rows.items() if len(df)}
        if not todo and change is None:
            return
        touched = [
            *todo,
            *([change.layer] if change is not None and change.layer not in todo else []),
        ]
        with self._lock:
            created = [name for name in todo if name not in self.layers()]
            for name in created:
                write_layer(todo[name], self.path, name)
                self._layer_names = None  # a new layer: list again
            outside: list[str] = []
            with self._connect() as con:
                if change is not None:
                    columns = {c: pd.Series([v]) for c, v in change.values.items()}
                    self._add_columns(con, change.layer, columns)
                inserts = self._prepare(con, todo, created)
                now = _gpkg_now()
                try:
                    with _transaction(con):
                        before = _contents(con)
                        outside = [
                            n
                            for n in touched
                            if n not in created and before.get(n) != self._marks.get(n)
                        ]
                        if outside and if_unchanged:
                            raise ConcurrentWriteError(outside)
                        if change is not None:
                            sets = ", ".join(f'"{c}" = ?' for c in change.values)
                            params = [_sql_value(v) for v in change.values.values()]
                            cur = con.execute(
                                f'UPDATE "{change.layer}" SET {sets} WHERE "{change.id_col}" = ?',
                                [*params, change.id_value],
                            )
                            if cur.rowcount == 0:
                                raise LayerNotFoundError(
                                    f"{change.layer}: no row with {change.id_col} = "
                                    f"{change.id_value!r}."
                                )
                            _touch_contents(con, change.layer, now, None)
                        for name, cols, tuples, bounds in inserts:
                            names = ", ".join(f'"{c}"' for c in cols)
                            slots = ", ".join("?" * len(cols))
                            sql = f'INSERT INTO "{name}" ({names}) VALUES ({slots})'
                            con.executemany(sql, tuples)
                            _touch_contents(con, name, now, bounds)
                        # ours, read while no one else can write: _sync will not take our
                        # own change for someone else's
                        ours = _contents(con)
                except BaseException:
                    for name in outside:  # read again from the file as it is now
                        self._marks[name] = before[name]
                        self._forget(name)
                    raise
            for name in touched:
                if name in ours:
                    self._marks[name] = ours[name]
            for name in outside:  # their rows are not in what we hold: read it again
                self._forget(name)
            if change is not None and change.layer not in outside:
                held = self._cached(change.layer)
                self._bump(change.layer)
                if held is not None:
                    # keep the in-memory copy current (a copy: readers may hold the old one)
                    df = _updated(held, change.id_col, change.id_value, change.values)
                    if df is not None:
                        self._cache[change.layer] = (self.generation(change.layer), [df])
            for name, df in todo.items():
                cached = self._cache.get(name)
                self._bump(name)
                if (
                    name in created
                    or name in outside
                    or cached is None
                    or cached[0] != self.generation(name) - 1
                ):
                    continue
                # keep the in-memory copy current instead of reading the layer again;
                # joined at the next read (appending stays O(batch) under a stream
                # of writes), or here once many batches are waiting
                self._cache[name] = (self.generation(name), [*cached[1], df])
                if len(cached[1]) >= 64:
                    self._cached(name)

    def _forget(self, layer: str) -> None:
        """Drop what is held of ``layer``: the next read reads the file."""
        self._bump(layer)
        self._tables.pop(layer, None)

    def _add_columns(
        self, con: sqlite3.Connection, name: str, columns: Mapping[str, pd.Series]
    ) -> _Table:
        """The table, with the ``columns`` it lacks added (typed by their values).
        ADD COLUMN is DDL: outside the data transaction, harmless if repeated."""
        table = self._table(con, name)
        missing = [c for c in columns if str(c) not in table.columns]
        for col in missing:
            con.execute(f'ALTER TABLE "{name}" ADD COLUMN "{col}" {_sql_type(columns[col])}')
        if missing:
            self._tables.pop(name, None)
            table = self._table(con, name)
        return table

    def _prepare(
        self, con: sqlite3.Connection, todo: Mapping[str, pd.DataFrame], created: list[str]
    ) -> list[tuple[str, list[str], list[tuple], Any]]:
        """Columns, row tuples and bounds to insert for the layers not just created;
        columns a table lacks are added first."""
        inserts = []
        for name, df in todo.items():
            if name in created:
                continue
            out = df
            if isinstance(out, gpd.GeoDataFrame) and out.crs is not None:
                if not out.crs.equals(WGS84):
                    out = out.to_crs(4326)
            geom = getattr(out, "_geometry_column_name", None)
            table = self._add_columns(con, name, {c: s for c, s in out.items() if c != geom})
            inserts.append((name, *_sql_rows(out, geom, table)))
        return inserts

    # -- versions ---------------------------------------------------------------------
    def versions(self) -> pd.DataFrame:
        from gridkit.versions import VERSIONS_LAYER
        from gridkit.versions import versions as published

        with self._lock:  # GDAL opens the file: under the lock, like every GDAL access
            if VERSIONS_LAYER not in self.layers():
                return published(self.path)  # the empty table, with its columns
            return self.read(VERSIONS_LAYER)

    def publish(self, units: gpd.GeoDataFrame, *, note: str = "") -> tuple[int, Any]:
        from gridkit.versions import HISTORY_LAYER, VERSIONS_LAYER, publish, publishable

        units = publishable(units)  # before the lock: a city's grid takes a while
        # GDAL writes these layers: under the lock, with none of our connections open
        with self._lock:
            try:
                return publish(units, self.path, note=note, validate=False)
            finally:  # written, or partly written before an error: read them again
                self._layer_names = None
                for name in ("units", HISTORY_LAYER, "lineage", VERSIONS_LAYER):
                    self._forget(name)
                with self._connect() as con:  # what we wrote is not news to _sync
                    self._marks = _contents(con)

    # -- API keys ---------------------------------------------------------------------
    def add_key(
        self, name: str, *, role: str, scope: str = "", worker_id: str | None = None
    ) -> tuple[str, ApiKey]:
        return self.add_keys([KeyRequest(name, role, scope, worker_id)])[0]

    def add_keys(self, requests: Sequence[KeyRequest]) -> list[tuple[str, ApiKey]]:
        checked = check_key_requests(requests)
        issued = [
            ("gk_" + secrets.token_urlsafe(32), ApiKey(secrets.token_hex(6), *r)) for r in checked
        ]
        now = pd.Timestamp.now(tz="UTC").isoformat()
        with self._lock, self._connect() as con:
            # one statement: sqlite3 makes it one transaction (all keys or none)
            con.executemany(
                f"INSERT INTO {KEYS_TABLE} (key_id, name, role, scope, worker_id, hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (k.key_id, k.name, k.role, k.scope, k.worker_id, hash_key(secret), now)
                    for secret, k in issued
                ],
            )
        return issued

    def find_key(self, key: str) -> ApiKey | None:
        with self._lock, self._connect() as con:
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
        with self._lock, self._connect() as con:
            return pd.read_sql_query(
                f"SELECT key_id, name, role, scope, worker_id, created_at, revoked "
                f"FROM {KEYS_TABLE} ORDER BY created_at",
                con,
            )


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


def _updated(
    df: pd.DataFrame, id_col: str, id_value: str, values: Mapping[str, Any]
) -> pd.DataFrame | None:
    """``df`` with ``values`` set on the rows where ``id_col == id_value``; None when a
    value does not fit its column (the caller then reads the layer again)."""
    if any(c not in df.columns for c in values) or id_col not in df.columns:
        return None
    out = df.copy()
    rows = (out[id_col].astype(str) == str(id_value)).to_numpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an upcast warning means the value does not fit
            for col, value in values.items():
                out.loc[rows, col] = value
    except (TypeError, ValueError, Warning):
        return None
    return out


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


def open_store(workspace: str | Path) -> Store:
    """Open the store for a workspace (a ``.gpkg`` path today; PostGIS URLs later)."""
    return GeoPackageStore(workspace)
