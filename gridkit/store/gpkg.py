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

import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from gridkit.crs import WGS84
from gridkit.errors import GridkitError, InputFileError, LayerNotFoundError
from gridkit.io import read_layer, write_layer, write_layers
from gridkit.store._gpkgsql import (
    _contents,
    _gpkg_now,
    _register_gpkg_functions,
    _sql_rows,
    _sql_type,
    _sql_value,
    _Table,
    _touch_contents,
    _transaction,
)
from gridkit.store.base import (
    ConcurrentWriteError,
    DatabaseUnavailableError,
    RecordTable,
    RowUpdate,
    Store,
    WriteBatch,
)

__all__ = ["GeoPackageStore", "backup_workspace", "check_workspace", "create_store", "open_store"]

#: how often, at most, the store looks for writes by other processes (seconds)
SYNC_S = 1.0
#: seconds between tries to open the file while SQLite answers "disk I/O error" (None:
#: give up with DatabaseUnavailableError)
OPEN_RETRY_S = (0.02, 0.1, 0.5, None)
_SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_FULL = 10, 14, 13


_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.RLock:
    """The one lock of the workspace file ``path`` in this process, shared by every
    store opened on it: GDAL carries its own SQLite library, and two SQLite libraries
    with one file open in one process do not see each other's locks (a GDAL read
    closing while another store's transaction runs removes the WAL index under it: a
    "disk I/O error", or a bus error on the mapped index). Two stores of one file in
    one process (a service and a command run beside it, tests' threads) wait for each
    other as one store's threads do.

    Examples
    --------
    >>> _file_lock(Path("a.gpkg")) is _file_lock(Path("./a.gpkg"))
    True
    >>> _file_lock(Path("a.gpkg")) is _file_lock(Path("b.gpkg"))
    False
    """
    key = str(path.resolve())
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.RLock())


class GeoPackageStore(Store):
    """The workspace GeoPackage as a store.

    Service tables (:class:`~gridkit.store.base.RecordTable`, e.g. the API keys of
    :mod:`gridkit.store.keys`) are plain SQLite tables named ``gridkit_*`` beside the
    layers.

    Parameters
    ----------
    path
        Workspace file; it must exist (build one with ``gridkit demo`` or write layers
        with :func:`gridkit.write_layers`).

    Examples
    --------
    A workspace of six units, read back whole:

    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(3, 2)})
    >>> isinstance(store, GeoPackageStore), store.path.name
    (True, 'ws.gpkg')
    >>> len(store.read("units")), store.generation("units")
    (6, 0)
    >>> tmp.cleanup()
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_workspace(path)
        self._uri = f"{self.path.resolve().as_uri()}?mode=rw"
        self._lock = _file_lock(self.path)
        self._generations: dict[str, int] = {}
        # layer -> (generation, frames): the layer is the frames end to end; appended
        # rows wait as frames of their own until the next read joins them
        self._cache: dict[str, tuple[int, list[pd.DataFrame]]] = {}
        self._layer_names: list[str] | None = None
        self._tables: dict[str, _Table] = {}
        self._file_sig = self._signature()  # before the contents: a write between is seen
        with self._connect() as con:
            _to_wal(con)
            # layer -> (last change, count) when this store last read or wrote it: what a
            # write if_unchanged compares with; _seen, as _sync last looked (PostGIS's too)
            self._marks = _contents(con)
        self._seen = dict(self._marks)
        self._next_sync = time.monotonic() + SYNC_S

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation (call with the lock held when writing).

        Not kept open between operations: GDAL carries its own SQLite library, and two
        SQLite libraries with the same file open in one process release each other's
        POSIX locks (a GDAL connection closing would delete the WAL under ours and
        lose what we commit next). Reads through GDAL take the same lock.
        """
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    def ping(self) -> None:
        """Open the file and read its schema (tried again while SQLite says "disk I/O
        error"; :class:`DatabaseUnavailableError` when it stays).

        >>> import tempfile
        >>> from gridkit.synth.ops import grid_units
        >>> tmp = tempfile.TemporaryDirectory()
        >>> create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(1, 1)}).ping()
        >>> tmp.cleanup()
        """
        con = self._open()
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()

    def _open(self) -> sqlite3.Connection:
        """A new connection with the schema read, before any work is done on it.

        SQLite answers "disk I/O error" for a moment while the file's WAL and
        shared-memory index are being removed or rebuilt under it (the last connection
        of another process, or of GDAL's own SQLite in this one, checkpointing as it
        closes): opening is tried again a few times. A disk that stays full or failing
        is a :class:`DatabaseUnavailableError` naming the file (the API's 503), not a
        traceback. Nothing has been read or written when it is raised.
        """
        for wait in OPEN_RETRY_S:
            # mode=rw: a workspace that went away is an error, never a new empty file
            con = sqlite3.connect(self._uri, uri=True, timeout=30, isolation_level=None)
            try:
                _register_gpkg_functions(con)
                con.execute("PRAGMA synchronous=FULL")  # a 2xx means the commit is on disk
                return con
            except sqlite3.OperationalError as exc:
                con.close()
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if code not in (_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN):
                    raise
                if wait is None or code == _SQLITE_FULL:
                    raise DatabaseUnavailableError(
                        f"{self.path}: {exc}",
                        hint="Check that the disk holding the workspace has space and "
                        "works, and that its -wal and -shm files beside it can be "
                        "written; then try again.",
                    ) from exc
                time.sleep(wait)
        raise AssertionError("unreachable")  # the last wait is None

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
            for name in set(seen) | set(self._seen):
                if seen.get(name) != self._seen.get(name):
                    self._forget(name)
            if set(seen) != set(self._seen):
                self._layer_names = None
            # not _marks: noticed is not read (a write if_unchanged must still refuse)
            self._seen = seen
            self._file_sig = sig
        finally:
            self._lock.release()

    def _contents_now(self) -> dict[str, tuple]:
        """Every layer's last change and count as they are now: what _sync last saw
        while the file has not changed since (no connection opened), else read again."""
        if self._signature() == self._file_sig:
            return self._seen
        with self._connect() as con:
            return _contents(con)

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
            mark = self._contents_now().get(layer)  # before the rows: a write between is refused
            df = read_layer(self.path, layer, check=False)
            self._marks[layer] = mark
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

    def write(self, batch: WriteBatch) -> None:
        """One SQLite transaction: the batch's row update (if any) and rows.

        A layer that does not exist yet is created through GDAL with its rows first
        (its own commit); columns a layer lacks are added; rows are matched to the
        table's columns by name. Inside the transaction, before writing, each layer's
        last change is compared with what this store last saw: a layer another process
        changed meanwhile is forgotten (read again next time), and with
        ``batch.if_unchanged`` nothing is written.

        Examples
        --------
        A report's status and its event, in one transaction:

        >>> import tempfile, pandas as pd
        >>> tmp = tempfile.TemporaryDirectory()
        >>> reports = pd.DataFrame({"report_id": ["R1"], "status": ["new"]})
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"reports": reports})
        >>> events = pd.DataFrame({"report_id": ["R1"], "to": ["done"]})
        >>> done = RowUpdate("reports", "report_id", "R1", {"status": "done"})
        >>> store.write(WriteBatch({"report_events": events}, done))
        >>> store.read("reports")["status"].tolist(), len(store.read("report_events"))
        (['done'], 1)
        >>> tmp.cleanup()
        """
        change = batch.change
        todo = {name: df for name, df in batch.rows.items() if len(df)}
        touched = batch.layers
        if not touched:
            return
        with self._lock:
            created = [name for name in todo if name not in self.layers()]
            if created:  # the file opens (tried again while SQLite says "disk I/O error")
                self._open().close()
            for name in created:
                try:
                    write_layer(todo[name], self.path, name)
                except InputFileError as exc:  # GDAL could not open it after all
                    raise DatabaseUnavailableError(exc.message, hint=exc.hint) from exc
                self._layer_names = None  # a new layer: list again
            outside: list[str] = []
            with self._connect() as con:
                if change is not None:
                    columns = {c: pd.Series([v]) for c, v in change.values.items()}
                    self._add_columns(con, change.layer, columns)
                inserts = self._prepare(con, todo, created)
                try:
                    with _transaction(con):
                        before = _contents(con)
                        outside = [
                            n
                            for n in touched
                            if n not in created and before.get(n) != self._marks.get(n)
                        ]
                        if outside and batch.if_unchanged:
                            raise ConcurrentWriteError(outside)
                        _apply(con, change, inserts)
                        # ours, read while no one else can write: _sync will not take our
                        # own change for someone else's
                        ours = _contents(con)
                except BaseException:
                    for name in outside:  # read again from the file as it is now
                        self._marks[name] = self._seen[name] = before[name]
                        self._forget(name)
                    raise
            for name in touched:
                if name in ours:
                    self._marks[name] = self._seen[name] = ours[name]
            for name in outside:  # their rows are not in what we hold: read it again
                self._forget(name)
            self._follow(change, todo, created=created, outside=outside)

    def _follow(
        self,
        change: RowUpdate | None,
        todo: Mapping[str, pd.DataFrame],
        *,
        created: Sequence[str],
        outside: Sequence[str],
    ) -> None:
        """Keep the in-memory copies current after a write (layers just created, or
        changed by another process, are read again from the file instead)."""
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
            stale = cached is None or cached[0] != self.generation(name) - 1
            if name in created or name in outside or stale:
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
        ADD COLUMN is DDL: outside the data transaction, harmless if repeated; a column
        another process added meanwhile (both saw it missing) is there, as wanted."""
        table = self._table(con, name)
        missing = [c for c in columns if str(c) not in table.columns]
        for col in missing:
            try:
                con.execute(f'ALTER TABLE "{name}" ADD COLUMN "{col}" {_sql_type(columns[col])}')
            except sqlite3.OperationalError as exc:
                if "duplicate column name" not in str(exc):
                    raise
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

    # -- whole layers -------------------------------------------------------------------
    def exclusive(self) -> AbstractContextManager[Any]:
        """The store's one write lock (re-entrant: this store's reads and writes work
        inside).

        Examples
        --------
        Read a counter and write the next value, with no writer in between:

        >>> import tempfile, pandas as pd
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"counter": pd.DataFrame({"n": [1]})})
        >>> with store.exclusive():  # read, then write what depends on it
        ...     n = int(store.read("counter")["n"].max())
        ...     store.append("counter", pd.DataFrame({"n": [n + 1]}))
        >>> store.read("counter")["n"].tolist()
        [1, 2]
        >>> tmp.cleanup()
        """
        return self._lock

    def save_layer(self, layer: str, frame: pd.DataFrame, *, append: bool = False) -> None:
        """Write a whole layer, or append a batch to it, through GDAL
        (:func:`gridkit.io.write_layer`: WGS84, the layer's own schema when appending).

        Examples
        --------
        The grid replaced by three units, then one more appended:

        >>> import tempfile
        >>> from gridkit.synth.ops import grid_units
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 2)})
        >>> store.save_layer("units", grid_units(3, 1))
        >>> store.save_layer("units", grid_units(1, 1), append=True)
        >>> len(store.read("units")), "units" in store.layers()
        (4, True)
        >>> tmp.cleanup()
        """
        # GDAL writes the layer: under the lock, with none of our connections open
        with self._lock:
            try:
                write_layer(frame, self.path, layer, append=append)
            finally:  # written, or partly written before an error: read it again
                self._layer_names = None
                self._forget(layer)
                with self._connect() as con:  # what we wrote is not news to _sync
                    seen = _contents(con)
                if layer in seen:
                    self._marks[layer] = self._seen[layer] = seen[layer]

    # -- service tables -----------------------------------------------------------------
    def records(
        self, table: RecordTable, *, where: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """Rows of a ``gridkit_*`` service table (plain SQLite, read at each call).

        Examples
        --------
        A service table of notes, made on the first insert:

        >>> import tempfile, pandas as pd
        >>> from gridkit.store.base import Column
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = create_store(f"{tmp.name}/ws.gpkg", {"counter": pd.DataFrame({"n": [1]})})
        >>> notes = RecordTable("gridkit_notes", (Column("note_id"), Column("text")), key="note_id")
        >>> store.records(notes).columns.tolist()  # no table yet: empty, with its columns
        ['note_id', 'text']
        >>> store.add_records(notes, [{"note_id": "N1", "text": "hi"}, {"note_id": "N2"}])
        >>> store.set_records(notes, {"text": "bye"}, where={"note_id": "N2"})
        1
        >>> store.records(notes, where={"note_id": "N2"})["text"].tolist()
        ['bye']
        >>> "gridkit_notes" in store.layers()
        False
        >>> tmp.cleanup()
        """
        where = dict(where or {})
        _check_names(table, where)
        cols = ", ".join(f'"{c}"' for c in table.names)
        sql = f'SELECT {cols} FROM "{table.name}"' + _where_sql(where)
        with self._lock, self._connect() as con:
            if not _has_table(con, table.name):
                return pd.DataFrame(columns=table.names)
            _upgrade(con, table)
            rows = con.execute(sql, [_sql_value(v) for v in where.values()]).fetchall()
        return pd.DataFrame(rows, columns=table.names)

    def add_records(self, table: RecordTable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows into a service table, created first if missing (all or none)."""
        for row in rows:
            _check_names(table, row)
        with self._lock, self._connect() as con:
            con.execute(_create_sql(table))
            _upgrade(con, table)
            with _transaction(con):
                for row in rows:
                    cols = ", ".join(f'"{c}"' for c in row)
                    slots = ", ".join("?" * len(row))
                    con.execute(
                        f'INSERT INTO "{table.name}" ({cols}) VALUES ({slots})',
                        [_sql_value(v) for v in row.values()],
                    )

    def set_records(
        self, table: RecordTable, values: Mapping[str, Any], *, where: Mapping[str, Any]
    ) -> int:
        """Set ``values`` on the rows of a service table matching ``where``: how many."""
        _check_names(table, {**values, **where})
        sets = ", ".join(f'"{c}" = ?' for c in values)
        sql = f'UPDATE "{table.name}" SET {sets}' + _where_sql(where)
        params = [_sql_value(v) for v in (*values.values(), *where.values())]
        with self._lock, self._connect() as con:
            if not _has_table(con, table.name):
                return 0
            _upgrade(con, table)
            return con.execute(sql, params).rowcount


def _apply(con: sqlite3.Connection, change: RowUpdate | None, inserts: Sequence[tuple]) -> None:
    """The statements of one write, inside its transaction: the update, then the inserts."""
    now = _gpkg_now()
    if change is not None:
        sets = ", ".join(f'"{c}" = ?' for c in change.values)
        params = [_sql_value(v) for v in change.values.values()]
        cur = con.execute(
            f'UPDATE "{change.layer}" SET {sets} WHERE "{change.id_col}" = ?',
            [*params, change.id_value],
        )
        if cur.rowcount == 0:
            raise LayerNotFoundError(
                f"{change.layer}: no row with {change.id_col} = {change.id_value!r}."
            )
        _touch_contents(con, change.layer, now, None)
    for name, cols, tuples, bounds in inserts:
        names = ", ".join(f'"{c}"' for c in cols)
        slots = ", ".join("?" * len(cols))
        con.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({slots})', tuples)
        _touch_contents(con, name, now, bounds)


def _check_names(table: RecordTable, row: Mapping[str, Any]) -> None:
    """Only the table's own columns go into SQL."""
    unknown = [c for c in row if c not in table.names]
    if unknown:
        raise GridkitError(f"{table.name}: no column {', '.join(map(repr, unknown))}.")


def _where_sql(where: Mapping[str, Any]) -> str:
    return (" WHERE " + " AND ".join(f'"{c}" = ?' for c in where)) if where else ""


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _upgrade(con: sqlite3.Connection, table: RecordTable) -> None:
    """Add the columns a newer gridkit gave a service table (nullable, or their default)."""
    have = {r[1] for r in con.execute(f'PRAGMA table_info("{table.name}")')}
    types = {str: "TEXT", int: "INTEGER", bool: "INTEGER", float: "REAL"}
    for c in table.columns:
        if c.name not in have:
            default = "" if c.default is None else f" DEFAULT {_sql_literal(c.default)}"
            con.execute(
                f'ALTER TABLE "{table.name}" ADD COLUMN "{c.name}" {types[c.type]}{default}'
            )


def _create_sql(table: RecordTable) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a service table."""
    types = {str: "TEXT", int: "INTEGER", bool: "INTEGER", float: "REAL"}
    cols = []
    for c in table.columns:
        sql = f'"{c.name}" {types[c.type]}'
        sql += " PRIMARY KEY" if c.name == table.key else ""
        sql += " NOT NULL" if c.required else ""
        sql += "" if c.default is None else f" DEFAULT {_sql_literal(c.default)}"
        sql += " UNIQUE" if c.unique else ""
        cols.append(sql)
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({", ".join(cols)})'


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool | int | float):
        return str(int(value) if isinstance(value, bool) else value)
    return "'" + str(value).replace("'", "''") + "'"


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


#: the first bytes of every SQLite 3 database file
SQLITE_HEADER = b"SQLite format 3\x00"
_NEW_WORKSPACE = "Build one with `gridkit demo --workspace PATH` or write layers to a .gpkg."


def check_workspace(path: str | Path) -> Path:
    """``path`` if it is an existing GeoPackage, else an :class:`InputFileError`; the
    file is only read (an empty or foreign file is never turned into a database).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> text = pathlib.Path(tmp.name) / "notes.gpkg"
    >>> _ = text.write_text("hello")
    >>> check_workspace(text)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.errors.InputFileError: .../notes.gpkg: not a GeoPackage (not an SQLite database).
    Hint: ...
    >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such workspace.", hint=_NEW_WORKSPACE) from None
    except OSError as exc:
        raise InputFileError(
            f"{path}: cannot read the workspace ({exc.strerror or exc}).",
            hint="Check the path and its permissions.",
        ) from None
    what = "an empty file" if not head else "not an SQLite database"
    if head == SQLITE_HEADER:
        try:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                found = con.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'gpkg_contents'"
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error as exc:
            found, what = None, f"unreadable: {exc}"
        if found:
            return path
        if what == "not an SQLite database":
            what = "an SQLite database without gpkg_contents"
    raise InputFileError(
        f"{path}: not a GeoPackage ({what}).",
        hint="Pass the workspace .gpkg (" + _NEW_WORKSPACE[0].lower() + _NEW_WORKSPACE[1:-1] + ").",
    )


def backup_workspace(workspace: str | Path, out: str | Path) -> Path:
    """Copy a workspace to ``out`` with SQLite's online backup: consistent while a
    server writes to it (the copy is the database as of one commit, never torn).

    ``out`` must not exist; it is written beside as ``out.partial`` and renamed when
    complete, so a failed backup leaves nothing behind.

    Examples
    --------
    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1)}).path
    >>> copy = backup_workspace(ws, f"{tmp.name}/copy.gpkg")
    >>> len(open_store(copy).read("units"))
    2
    >>> tmp.cleanup()
    """
    src_path, out = check_workspace(workspace), Path(out)
    if out.exists():
        raise InputFileError(
            f"{out}: already exists.", hint="Name a new file (a backup never overwrites)."
        )
    if not out.parent.is_dir():
        raise InputFileError(
            f"{out.parent}: no such directory.", hint="Create it or name a file in another one."
        )
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(f"{src_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                # one step, one read transaction: the copy is the database as of one
                # commit; in WAL mode (the store's) writers go on meanwhile
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dst.close()
        finally:
            src.close()
        partial.replace(out)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        raise InputFileError(
            f"backup of {src_path} to {out} failed ({exc}).",
            hint="Check the free space and permissions of the destination.",
        ) from exc
    return out


def open_store(workspace: str | Path) -> Store:
    """Open the store for a workspace (a ``.gpkg`` path today; PostGIS URLs later).

    Examples
    --------
    Open a workspace written beforehand; a missing one is an error:

    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> ws = f"{tmp.name}/ws.gpkg"
    >>> _ = write_layers({"units": grid_units(2, 1)}, ws)
    >>> type(open_store(ws)).__name__
    'GeoPackageStore'
    >>> open_store(f"{tmp.name}/none.gpkg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gridkit.errors.InputFileError: .../none.gpkg: no such workspace.
    Hint: Build one with `gridkit demo --workspace PATH` or write layers to a .gpkg.
    >>> tmp.cleanup()
    """
    return GeoPackageStore(workspace)


def create_store(workspace: str | Path, layers: Mapping[str, pd.DataFrame]) -> Store:
    """Write ``layers`` to a workspace GeoPackage (created if missing, those layers
    replaced) and open its store.

    Examples
    --------
    A workspace with a grid and its workers:

    >>> import tempfile
    >>> from gridkit.synth.ops import grid_units
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"units": grid_units(2, 1), "workers":
    ...                      pd.DataFrame({"worker_id": ["W1"]})})
    >>> sorted(store.layers())
    ['units', 'workers']
    >>> tmp.cleanup()
    """
    write_layers(layers, workspace)
    return open_store(workspace)


def _to_wal(con: sqlite3.Connection, *, within_s: float = 30.0) -> None:
    """Put the file in WAL mode (once: a file already in it is left as it is). Two
    processes opening a new file at once both switch it, and SQLite answers "database
    is locked" at once to the one whose switch would wait for the other (it does not
    wait for the busy timeout then): tried again until ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
