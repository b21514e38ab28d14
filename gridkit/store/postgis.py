"""Persistence behind one interface: the PostGIS (production) backend.

A deployment on a database server opens its store by URL
(``postgresql://user@host/db``, or ``GRIDKIT_DATABASE_URL``). Design rules:

- every layer is a table with ``fid`` (identity primary key, what QGIS edits by), its
  columns, and a ``geometry`` column in EPSG:4326 with a GiST index; the contract
  (:data:`gridkit.layers.LAYERS`) gives, for the layers it names, a UNIQUE id column,
  CHECK constraints on the columns with choices (statuses, levels, kinds) and the
  columns a table lacks: the schema follows the specs, not a copy of them;
- a write is one transaction (psycopg 3, a connection pool), committed on return;
  reports' ids and idempotency keys are UNIQUE, so no two processes store the same;
- every write of a layer, by anyone (the service, ``gridkit db load``, QGIS), moves
  its row of ``gridkit_layer_versions`` (a statement trigger) and is announced by
  ``NOTIFY gridkit_layers``: each process keeps its copies and caches until then;
- a write that depends on the layer as the caller read it (``if_unchanged``) locks
  the layers' version rows first and writes nothing when one moved meanwhile;
- the schema is made and upgraded by numbered SQL revisions (``migrations/``,
  :func:`upgrade`), and each layer table is brought up to its spec.

psycopg is the ``postgis`` extra's: imported when a store is opened.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.resources
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, degrees_around
from gridkit.errors import GridkitError, InputFileError, LayerNotFoundError, MissingExtraError
from gridkit.layers import LAYERS
from gridkit.store.base import (
    ConcurrentWriteError,
    DatabaseUnavailableError,
    RecordTable,
    RowUpdate,
    Store,
    WriteBatch,
)

__all__ = [
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "PostGISStore",
    "ReportIntake",
    "database_url",
    "layer_ddl",
    "migrations",
    "upgrade",
]

#: how often, at most, versions are polled when no NOTIFY listener is connected (s)
POLL_S = 0.5
#: how long a request waits for a pooled connection before its 503 (s)
POOL_WAIT_S = 3.0
#: the geometry column of every layer table
GEOMETRY = "geometry"
#: foreign keys the contract has: (table, column) -> (table, column)
FOREIGN_KEYS = {("report_events", "report_id"): ("reports", "report_id")}
#: columns outside the contract the service keeps unique: (table, column)
UNIQUE = (("reports", "idempotency_key"),)
#: the number of a report id ``R<digits>`` (NULL for other ids), as indexed (rev. 4)
_REPORT_NUMBER = "gridkit_report_number(report_id)"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KIND_SQL = {
    "str": "text",
    "int": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "datetime": "timestamptz",
}


class DatabaseRefusedError(GridkitError):
    """The database refused the connection or the work for a lasting reason: the user
    or password, a database that does not exist, a bad URL option, a missing
    privilege. Trying again changes nothing; the hint names the fix.

    Examples
    --------
    >>> err = DatabaseRefusedError("postgresql://grid:***@db/zz", 'database "zz" does not exist')
    >>> err.message, err.hint
    ('postgresql://grid:***@db/zz: database "zz" does not exist.', 'Check the URL.')
    """

    def __init__(self, where: str, reason: str, hint: str = "Check the URL.") -> None:
        super().__init__(f"{where}: {reason}.", hint=hint)

    @classmethod
    def denied(cls, where: str, exc: BaseException, user: str = "USER") -> DatabaseRefusedError:
        """The error for a privilege the database's ``user`` lacks, naming its fix.

        Examples
        --------
        >>> err = DatabaseRefusedError.denied("db", Exception("permission denied for table t"))
        >>> err.message, "GRANT" in err.hint
        ('db: permission denied for table t.', True)
        """
        return cls(where, _first_line(exc), _privilege_hint(exc, user))


#: lasting reasons a connection fails (psycopg gives no SQLSTATE for them): pattern, fix
_REFUSED = (
    (
        r"password authentication failed|authentication failed|no password supplied"
        r'|role "[^"]*" does not exist|pg_hba\.conf',
        "Check the user and password in the URL (postgresql://USER:PASSWORD@HOST/DB), "
        "or the server's pg_hba.conf.",
    ),
    (
        r'database "[^"]*" does not exist',
        "Check the database name in the URL, or create it: createdb -O USER NAME "
        "(then gridkit db upgrade URL).",
    ),
    (
        r"failed to resolve host|could not translate host name",
        "Check the host name in the URL (postgresql://USER:PASSWORD@HOST:PORT/DB); if it "
        "is right, this machine's name service cannot resolve it.",
    ),
    (
        r'invalid .*(value|parameter|option)|missing "="|invalid URI|invalid port',
        "Check the URL: postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require "
        "(the options are libpq's).",
    ),
)


def database_url(text: object) -> str | None:
    """``text`` as a PostgreSQL URL, or None when it is not one (a file path).

    A URL passed where a path was expected may have lost a slash (``Path`` folds
    ``//``); it is put back.

    Examples
    --------
    >>> database_url("postgresql://grid@db.example/zhuzhou")
    'postgresql://grid@db.example/zhuzhou'
    >>> from pathlib import Path
    >>> database_url(Path("postgres://grid@localhost:5433/zz"))
    'postgres://grid@localhost:5433/zz'
    >>> database_url("demo-workspace/zhuzhou.gpkg") is None
    True
    """
    s = str(text)
    m = re.match(r"^(postgresql|postgres):/+(.*)$", s)
    if m is None:
        return None
    return f"{m.group(1)}://{m.group(2)}"


def _psycopg() -> tuple[Any, Any]:
    """psycopg and psycopg_pool, or the one-line error naming the extra."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError as e:
        raise MissingExtraError(
            "a PostGIS store needs the 'postgis' extra: pip install \"gridkit[postgis]\"",
            hint=f"{e.name} is not installed.",
        ) from e
    return psycopg, psycopg_pool


def _ident(name: str) -> str:
    """A quoted SQL identifier; names that are not plain words are refused."""
    if not _NAME.match(name):
        raise GridkitError(f"invalid table or column name {name!r}")
    return f'"{name}"'


def _frame_sql_type(values: pd.Series) -> str:
    """PostgreSQL type for a column made from values."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamptz" if getattr(dtype, "tz", None) is not None else "timestamp"
    return "text"


def layer_ddl(name: str, frame: pd.DataFrame | None = None) -> list[str]:
    """The statements creating layer ``name``: its columns (the frame's, typed by
    their values, then the spec's required ones it lacks, typed by the spec), ``fid`` primary key,
    geometry column with its GiST index when the frame or the spec has geometry,
    constraints from the spec (:func:`spec_ddl`) and the version trigger.

    Examples
    --------
    >>> ddl = layer_ddl("units")
    >>> ddl[0].split("(")[0]
    'CREATE TABLE "units" '
    >>> '"kind" text' in ddl[0], '"geometry" geometry(Geometry, 4326)' in ddl[0]
    (True, True)
    >>> any("USING gist" in s for s in ddl), any("gridkit_bump" in s for s in ddl)
    (True, True)
    """
    spec = LAYERS.get(name)
    cols: dict[str, str] = {}
    geom = spec is not None and spec.geometry is not None
    if frame is not None:
        gcol = getattr(frame, "_geometry_column_name", None)
        geom = gcol is not None
        cols = {str(c): _frame_sql_type(s) for c, s in frame.items() if c != gcol}
    if spec is not None:  # the contract's required columns, even when the frame lacks them
        cols.update(
            {c.name: _KIND_SQL[c.kind] for c in spec.columns if c.required and c.name not in cols}
        )
    table = _ident(name)
    parts = ['"fid" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY']
    parts += [f"{_ident(c)} {t}" for c, t in cols.items() if c != "fid"]
    if geom:
        parts.append(f"{_ident(GEOMETRY)} geometry(Geometry, 4326)")
    out = [f"CREATE TABLE {table} ({', '.join(parts)})"]
    if geom:
        out.append(f'CREATE INDEX "{name}_geometry_idx" ON {table} USING gist ({_ident(GEOMETRY)})')
    out.append(
        f'CREATE TRIGGER "{name}_version" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE '
        f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gridkit_bump()"
    )
    out.append(
        "INSERT INTO gridkit_layer_versions AS v (layer, version, rewritten) VALUES "
        f"('{name}', 1, 1) ON CONFLICT (layer) DO UPDATE SET version = v.version + 1, "
        "rewritten = v.version + 1"
    )
    return out


def spec_ddl(name: str, columns: Sequence[str], tables: Sequence[str]) -> list[str]:
    """Constraints a layer table with ``columns`` gets from the contract (idempotent:
    each dropped and made again, so a spec that changed is followed): the spec's
    required columns it lacks (optional ones come with the first rows that have them),
    UNIQUE id, CHECK of choices (``NOT VALID``: rows stored before
    a choice was retired stay readable), foreign keys to the ``tables`` present.

    Examples
    --------
    >>> for s in spec_ddl("admin_areas", ["admin_code", "level"], []): print(s[:90])
    ALTER TABLE "admin_areas" ADD COLUMN IF NOT EXISTS "name" text
    ALTER TABLE "admin_areas" ADD COLUMN IF NOT EXISTS "parent_code" text
    DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'admin_areas_admin_
    ALTER TABLE "admin_areas" DROP CONSTRAINT IF EXISTS "admin_areas_level_check"
    ALTER TABLE "admin_areas" ADD CONSTRAINT "admin_areas_level_check" CHECK ("level" IN ('pro
    """
    spec = LAYERS.get(name)
    table = _ident(name)
    out = []
    have = set(columns)
    if spec is not None:
        for c in spec.columns:
            if c.name not in have and c.required:
                out.append(
                    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {_ident(c.name)} "
                    f"{_KIND_SQL[c.kind]}"
                )
                have.add(c.name)
        if spec.id is not None and spec.id in have:
            key = f"{name}_{spec.id}_key"  # kept when there (foreign keys depend on it)
            out.append(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = "
                f"'{key}' AND conrelid = '{table}'::regclass) THEN ALTER TABLE {table} "
                f'ADD CONSTRAINT "{key}" UNIQUE ({_ident(spec.id)}); END IF; END $$'
            )
        for c in spec.columns:
            if c.choices and c.name in have:
                check = f'"{name}_{c.name}_check"'
                values = ", ".join("'" + v.replace("'", "''") + "'" for v in c.choices)
                out.append(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")
                out.append(
                    f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK "
                    f"({_ident(c.name)} IN ({values})) NOT VALID"
                )
    for (t, col), (ref, ref_col) in FOREIGN_KEYS.items():
        if (t == name and ref in tables) or (ref == name and t in tables):
            fk = f'"{t}_{col}_fkey"'
            out.append(f"ALTER TABLE {_ident(t)} DROP CONSTRAINT IF EXISTS {fk}")
            out.append(
                f"ALTER TABLE {_ident(t)} ADD CONSTRAINT {fk} FOREIGN KEY ({_ident(col)}) "
                f"REFERENCES {_ident(ref)} ({_ident(ref_col)}) DEFERRABLE INITIALLY DEFERRED "
                "NOT VALID"
            )
    if name == "reports" and "report_id" in have:  # the next id: see migration 0004
        out.append(
            'CREATE INDEX IF NOT EXISTS "reports_report_number_idx" ON "reports" '
            f"({_REPORT_NUMBER})"
        )
    for t, col in UNIQUE:
        if t == name and col in have:
            out.append(
                f'CREATE UNIQUE INDEX IF NOT EXISTS "{t}_{col}_key" ON {_ident(t)} '
                f"({_ident(col)}) WHERE {_ident(col)} IS NOT NULL"
            )
    return out


def migrations() -> list[tuple[int, str, str]]:
    """The schema's revisions: (number, name, SQL), in order.

    Examples
    --------
    >>> [(n, name) for n, name, _ in migrations()][:2]
    [(1, 'layer_versions'), (2, 'notify')]
    """
    out = []
    for entry in importlib.resources.files("gridkit.store.migrations").iterdir():
        m = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out)


#: the digest of table ``{name}``'s columns and types (see :func:`_digest`)
_DIGEST_SQL = (
    "(SELECT md5(string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' "
    "ORDER BY a.attnum)) FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident("
    "{name})) AND a.attnum > 0 AND NOT a.attisdropped)"
)
#: the layers' versions, in order, each with the digest of its table's columns
_POLL_VERSIONS = (
    f"SELECT v.layer, v.version, {_DIGEST_SQL.format(name='v.layer')} "
    "FROM gridkit_layer_versions v "
    "WHERE to_regclass(quote_ident(v.layer)) IS NOT NULL ORDER BY v.seq"
)
#: serialises upgrades of one database (several server processes starting at once)
_UPGRADE_LOCK = 0x67726964  # "grid"
#: the advisory lock report intakes of every process take in turn (ReportIntake)
INTAKE_LOCK = _UPGRADE_LOCK + 3
#: held by a write that creates a layer's table, to the end of its transaction: two
#: processes making the same new layer at once (the first report_events of two servers)
#: would otherwise both CREATE it, and one fail on the type's duplicate key
_DDL_LOCK = _UPGRADE_LOCK + 4


def upgrade(url: str, *, to: int | None = None) -> list[int]:
    """Create or upgrade the schema of the database at ``url`` to revision ``to``
    (the latest by default), then bring every layer table up to its spec (new
    contract columns, UNIQUE ids, CHECKs, foreign keys); the revisions applied.

    Each revision is one transaction, recorded in ``gridkit_revisions``; concurrent
    upgrades of one database wait for each other (an advisory lock).

    Examples
    --------
    >>> upgrade("postgresql://grid@db.example/zhuzhou")  # doctest: +SKIP
    [1, 2]
    """
    psycopg, _ = _psycopg()
    done = []
    with _connect_once(psycopg, url) as con:
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
            con.execute(
                "CREATE TABLE IF NOT EXISTS gridkit_revisions (revision int PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            have = {r[0] for r in con.execute("SELECT revision FROM gridkit_revisions")}
            for number, name, sql in migrations():
                if number in have or (to is not None and number > to):
                    continue
                with con.transaction():  # a savepoint: one revision, all or nothing
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO gridkit_revisions (revision, name) VALUES (%s, %s)",
                        (number, name),
                    )
                done.append(number)
            if to is None or to >= max(n for n, _, _ in migrations()):
                _follow_specs(con)
    return done


def _follow_specs(con: Any) -> None:
    """Bring every layer table up to its spec (see :func:`spec_ddl`)."""
    columns: dict[str, list[str]] = {}
    for table, col in con.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN gridkit_layer_versions v ON v.layer = c.table_name "
        "WHERE c.table_schema = current_schema() ORDER BY c.ordinal_position"
    ):
        columns.setdefault(table, []).append(col)
    for name, cols in columns.items():
        for stmt in spec_ddl(name, cols, list(columns)):
            con.execute(stmt)


def revision(url: str) -> int:
    """The schema revision of the database at ``url`` (0 when it has none).

    Examples
    --------
    >>> revision("postgresql://grid@db.example/zhuzhou")  # doctest: +SKIP
    2
    """
    psycopg, _ = _psycopg()
    with _connect_once(psycopg, url) as con:
        row = con.execute("SELECT to_regclass('gridkit_revisions') IS NOT NULL").fetchone()
        if not row[0]:
            return 0
        return int(
            con.execute("SELECT coalesce(max(revision), 0) FROM gridkit_revisions").fetchone()[0]
        )


@contextmanager
def _connect_once(psycopg: Any, url: str) -> Iterator[Any]:
    """One connection (autocommit: transactions are explicit), errors made readable:
    lasting ones (:class:`DatabaseRefusedError`, with the fix) told apart from the
    server being down or full (:class:`DatabaseUnavailableError`)."""
    try:
        con = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        line = _first_line(exc)
        for pattern, hint in _REFUSED:
            if re.search(pattern, line):
                raise DatabaseRefusedError(_safe(url), line, hint) from None
        raise DatabaseUnavailableError(line) from None
    try:
        con.execute("SET TIME ZONE 'UTC'")
        yield con
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseRefusedError.denied(_safe(url), exc, con.info.user) from None
    finally:
        con.close()


def _privilege_hint(exc: BaseException, user: str = "USER") -> str:
    """The fix for a missing privilege: the extension made by a superuser, or the
    tables granted to the user (or the work done as their owner).

    Examples
    --------
    >>> _privilege_hint(Exception('permission denied to create extension "postgis"'))[:40]
    'Ask a superuser to run CREATE EXTENSION '
    >>> _privilege_hint(Exception("permission denied for table reports"), "grid")[-25:]
    'IN SCHEMA public TO grid;'
    """
    text = str(exc)
    if "extension" in text:
        return (
            "Ask a superuser to run CREATE EXTENSION postgis; in this database (or run "
            "gridkit db upgrade once as a superuser), then db upgrade again as its owner."
        )
    grant = (
        f"GRANT CREATE ON SCHEMA public TO {user};"  # the service makes its tables
        if "schema" in text
        else f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user}; "
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {user};"
    )
    return (
        "Run gridkit db upgrade as the user the commands and the service run as (it "
        f"then owns the tables), or have the owner grant them: {grant}"
    )


def _reason(psycopg: Any, exc: BaseException) -> str:
    """Why the database is unavailable, in words that name no host or path."""
    if isinstance(exc, psycopg.errors.DiskFull | psycopg.errors.InsufficientResources):
        return "out of disk space or resources"
    if isinstance(exc, psycopg.errors.AdminShutdown | psycopg.errors.CannotConnectNow):
        return "the server is restarting"
    if isinstance(exc, psycopg.errors.TransactionRollback):  # deadlock, serialisation
        return f"a concurrent transaction conflicted ({_first_line(exc)})"
    return "cannot reach the server"


def _first_line(exc: BaseException) -> str:
    """The first line of a driver's error, without libpq's "connection to server at
    ... failed:" preamble and its FATAL level.

    Examples
    --------
    >>> _first_line(Exception('connection failed: connection to server at "db", port 5432 '
    ...                       'failed: FATAL:  database "zz" does not exist'))
    'database "zz" does not exist'
    """
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    line = re.sub(r"^connection (failed|is bad): ", "", text[0])
    line = re.sub(r"^connection to server .*? failed: ", "", line)
    return re.sub(r"^(FATAL|ERROR): +", "", line).strip()


@dataclass
class _Table:
    """A layer table as the store knows it: columns -> PostgreSQL type, geometry?, and
    the digest of its columns as read (:func:`_digest`; "" for a selection of them)."""

    columns: dict[str, str]
    geometry: bool
    digest: str = ""


def _digest(columns: Sequence[tuple[str, str]]) -> str:
    """The digest of a table's (name, type) columns in order, as :data:`_DIGEST_SQL`
    makes it in the database (to tell, in a query, whether they changed).

    Examples
    --------
    >>> _digest([("fid", "bigint"), ("名称", "text")])
    '17f184b637efa9547552183b303bda8b'
    """
    return hashlib.md5(",".join(f"{n} {t}" for n, t in columns).encode()).hexdigest()


def _unavailable(psycopg: Any) -> tuple[type[BaseException], ...]:
    """The errors meaning the server is down, restarting or out of space."""
    return (
        psycopg.OperationalError,
        psycopg.errors.DiskFull,
        psycopg.errors.InsufficientResources,
        psycopg.errors.AdminShutdown,
        psycopg.errors.CannotConnectNow,
    )


class PostGISStore(Store):
    """A PostGIS database as a store (see the module's notes).

    Parameters
    ----------
    url
        ``postgresql://user[:password]@host[:port]/database``; the schema must have been
        made by :func:`upgrade` (``gridkit db upgrade URL``).
    pool_size
        Connections at most in this process's pool.

    Examples
    --------
    >>> store = PostGISStore("postgresql://grid@localhost/zhuzhou")  # doctest: +SKIP
    >>> store.layers()  # doctest: +SKIP
    ['admin_areas', 'rivers', 'units', ...]
    """

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = database_url(url) or url
        self._psycopg, pool_mod = _psycopg()
        self._down = _unavailable(self._psycopg)
        have = revision(self.url)
        latest = migrations()[-1][0]
        if have < latest:
            raise GridkitError(
                f"{_safe(self.url)}: the gridkit schema is at revision {have}, "
                f"this gridkit needs {latest}.",
                hint=f"Run `gridkit db upgrade {_safe(self.url)}` first.",
            )
        self._pool = pool_mod.ConnectionPool(
            self.url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=_configure,
            # no reset callback: with one, each connection given back goes through
            # a pool worker thread (a thread switch per request, and the connection
            # not at once there for the next, with its prepared statements)
            check=_check_idle,
            open=True,
            timeout=POOL_WAIT_S,
            name="gridkit",
        )
        self._lock = threading.RLock()
        self._seen: dict[str, int] = {}  # layer -> version, as last polled
        self._writes = 0  # writes this process made (a poll meanwhile may predate one)
        self._order: list[str] | None = None
        self._dirty = True
        #: layer -> the highest version announced (NOTIFY "layer:version") since the
        #: last poll: polled only when one is newer than the version seen
        self._heard: dict[str, int] = {}
        self._heard_lock = threading.Lock()
        self._next_poll = 0.0
        self._listening = False
        self._marks: dict[str, int] = {}  # layer -> version this store last read or wrote
        self._cache: dict[str, tuple[int, list[pd.DataFrame]]] = {}
        # layer -> (last fid, rows) of the held copy: what a read of new rows starts from
        self._tails: dict[str, tuple[int, int]] = {}
        self._tables: dict[str, _Table] = {}
        self._closed = threading.Event()
        self._listener = threading.Thread(
            target=_listen,
            args=(weakref.ref(self), self._closed),
            name="gridkit-notify",
            daemon=True,
        )
        self._listener.start()
        self._marks = dict(self._versions())  # what the store has seen: as it opens

    def __repr__(self) -> str:
        return f"PostGISStore({_safe(self.url)!r})"

    def close(self) -> None:
        """Close the pool and stop listening."""
        self._closed.set()
        self._pool.close()

    def __del__(self) -> None:
        closed = getattr(self, "_closed", None)
        if closed is not None and not closed.is_set():
            closed.set()
            self._pool.close(timeout=0.5)

    # -- connections ------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; the server being down or full is a
        :class:`DatabaseUnavailableError` (the API's 503)."""
        try:
            with self._pool.connection() as con:
                try:
                    yield con
                finally:  # given back now (see _check_idle)
                    _RETURNED[con] = time.monotonic()
        except self._down as exc:
            raise DatabaseUnavailableError(_reason(self._psycopg, exc)) from None
        except self._pool_timeout():
            raise DatabaseUnavailableError(f"no connection within {POOL_WAIT_S:g} s") from None

    def _pool_timeout(self) -> type[BaseException]:
        import psycopg_pool  # checked by _psycopg in __init__

        return psycopg_pool.PoolTimeout

    def ping(self) -> None:
        """One round trip to the server (not the cached versions):
        :class:`DatabaseUnavailableError` when it is down, restarting or full."""
        with self._connection() as con:
            con.execute("SELECT 1").fetchone()

    # -- versions ---------------------------------------------------------------------
    def _versions(self, layer: str | None = None, *, listing: bool = False) -> dict[str, int]:
        """The layers' versions as last seen, polled first where they may be stale: a
        NOTIFY without a version (or the listener reconnected), a table made, no
        listener for :data:`POLL_S`, or a version announced newer than the one seen
        (another process's): of ``layer`` when one is asked about, of a layer not
        seen yet when the list is (``listing``), of any otherwise. (A server process
        taking in reports asks about the admin areas and the departments: another
        process's reports cost it no poll.)"""
        now = time.monotonic()
        if self._heard:
            seen = self._seen
            with self._heard_lock:  # announcements seen already are done with
                newer = {n: v for n, v in self._heard.items() if v > seen.get(n, 0)}
                self._heard = newer
            if layer is not None:
                stale = layer in newer
            elif listing:
                stale = any(n not in seen for n in newer)
            else:
                stale = bool(newer)
            if stale:
                self._dirty = True
        stale = self._dirty or self._order is None  # (None: a table made, look again)
        if stale or (not self._listening and now >= self._next_poll):
            self._dirty = False  # before the query: a NOTIFY meanwhile polls again
            self._next_poll = now + POLL_S
            writes, heard = self._writes, dict(self._heard)
            try:
                with self._connection() as con:
                    rows = con.execute(_POLL_VERSIONS).fetchall()
            except DatabaseUnavailableError:
                self._dirty = True
                raise
            seen = {str(n): int(v) for n, v, _ in rows}
            with self._lock:
                # a table's columns are read again when they changed (another process
                # added one, a DBA altered one), not at each new version of its rows
                for n, _, digest in rows:
                    table = self._tables.get(str(n))
                    if table is not None and table.digest != digest:
                        self._tables.pop(str(n), None)
                if self._writes != writes:  # this process wrote meanwhile: what it
                    # knows of its writes is newer than the poll; look again next time
                    seen = {**self._seen, **{n: max(v, self._seen.get(n, 0))
                                             for n, v in seen.items()}}  # fmt: skip
                    self._dirty = True
                self._seen = seen
                self._order = list(seen)
            with self._heard_lock:  # a layer announced, then gone: not looked for again
                self._heard = {n: v for n, v in self._heard.items()
                               if n in seen or heard.get(n) != v}  # fmt: skip
        return self._seen

    def layers(self) -> list[str]:
        self._versions(listing=True)
        return list(self._order or [])

    def generation(self, layer: str) -> int:
        return self._versions(layer).get(layer, 0)

    # -- reads ------------------------------------------------------------------------
    def read(self, layer: str) -> pd.DataFrame:
        with self._lock:
            gen = self.generation(layer)
            cached = self._cache.get(layer)
            if cached is not None and cached[0] == gen:
                frames = cached[1]
                if len(frames) > 1:
                    both = pd.concat(frames, ignore_index=True)
                    if isinstance(both, gpd.GeoDataFrame) == isinstance(
                        frames[0], gpd.GeoDataFrame
                    ):
                        self._cache[layer] = (gen, [both])
                        return both
                else:
                    return frames[0]
            if layer not in self.layers():
                raise LayerNotFoundError(f"{_safe(self.url)}: no layer {layer!r}.")
            base = cached if cached is not None and layer in self._tails else None
        with self._connection() as con, con.transaction():
            # one snapshot: the rows and the version they are
            con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = con.execute(
                "SELECT version, rewritten FROM gridkit_layer_versions WHERE layer = %s",
                (layer,),
            ).fetchone()
            version, rewritten = int(row[0]), int(row[1])
            table = self._table(con, layer)
            df = None
            if base is not None and rewritten <= base[0]:  # it only grew since
                df = self._grown(con, layer, table, base[1])
            if df is None:
                df = _read_table(con, layer, table)
            tail = con.execute(f"SELECT coalesce(max(fid), 0) FROM {_ident(layer)}").fetchone()
        with self._lock:
            self._cache[layer] = (version, [df])
            self._tails[layer] = (int(tail[0]), len(df))
            self._marks[layer] = version
            if self._seen.get(layer, 0) < version:
                self._seen[layer] = version
                self._writes += 1  # newer than a poll under way may know
        return df

    def _grown(
        self, con: Any, layer: str, table: _Table, frames: list[pd.DataFrame]
    ) -> pd.DataFrame | None:
        """The held frames and the rows added since (``fid`` above the last held),
        when the count of the table says that is all of it; else None."""
        last_fid, held = self._tails[layer]
        new = _read_table(con, layer, table, after=last_fid)
        total = con.execute(f"SELECT count(*) FROM {_ident(layer)}").fetchone()[0]
        if held + len(new) != int(total) or list(new.columns) != list(frames[0].columns):
            return None  # rows committed out of fid order, or the columns changed
        both = pd.concat([*frames, new], ignore_index=True)
        if isinstance(both, gpd.GeoDataFrame) != isinstance(frames[0], gpd.GeoDataFrame):
            return None
        return both

    def _table(self, con: Any, layer: str) -> _Table:
        table = self._tables.get(layer)
        if table is None:
            rows = con.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum",
                (_ident(layer),),
            ).fetchall()
            if not rows:
                raise LayerNotFoundError(f"{_safe(self.url)}: no layer {layer!r}.")
            cols = {str(n): str(t) for n, t in rows if n not in ("fid", GEOMETRY)}
            table = _Table(cols, any(n == GEOMETRY for n, _ in rows), _digest(rows))
            self._tables[layer] = table
        return table

    # -- writes -----------------------------------------------------------------------
    def write(self, batch: WriteBatch) -> None:
        """One PostgreSQL transaction: tables created or given the columns they lack,
        the layers' version rows locked (in name order), the row update, the rows
        (COPY), committed on return. With ``batch.if_unchanged``, a layer whose version
        moved since this store last saw it raises :class:`ConcurrentWriteError`.

        Examples
        --------
        >>> import pandas as pd
        >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
        >>> store.append("notes", pd.DataFrame({"note": ["河面漂浮物"]}))  # doctest: +SKIP
        """
        change = batch.change
        todo = {name: _wgs84(df) for name, df in batch.rows.items() if len(df)}
        touched = batch.layers
        if not touched:
            return
        with self._lock:
            marks = dict(self._marks)
            try:
                with self._connection() as con, con.transaction():
                    # the version rows first, then any table made or given columns: every
                    # writer takes its locks in this order (an ALTER TABLE before them
                    # waited in a circle with a writer holding them: a deadlock)
                    before = _lock_versions(con, touched)
                    created = self._prepare(con, todo, change)
                    outside = [
                        n for n in touched if n not in created and before.get(n) != marks.get(n)
                    ]
                    if outside and batch.if_unchanged:
                        raise ConcurrentWriteError(outside)
                    if change is not None:
                        _update(con, change)
                    fids = self._copy_all(con, todo)
                    ours = _lock_versions(con, touched)
            except ConcurrentWriteError:
                for name in outside:  # seen now: read it again before the next try
                    self._marks[name] = before[name]
                    self._seen[name] = max(self._seen.get(name, 0), before[name])
                self._writes += 1
                raise
            except BaseException:
                for name in touched:  # the tables may have changed under our names
                    self._tables.pop(name, None)
                raise
            self._follow(change, todo, before, ours, fids)

    def _copy_all(self, con: Any, todo: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """COPY each layer's rows; the last ``fid`` of each after (ours: writers hold
        the layers' version rows)."""
        fids = {}
        for name, df in todo.items():
            _copy_rows(con, name, df, self._tables[name])
            fids[name] = con.execute(
                f"SELECT coalesce(max(fid), 0) FROM {_ident(name)}"
            ).fetchone()[0]
        return fids

    def report_intake(self) -> AbstractContextManager[ReportIntake]:
        """One transaction for taking in new reports, serialised across processes:
        the questions a batch asks of the stored layers (replayed keys, the last
        report id, open reports near the new points, the units holding them) and the
        rows it writes, all in the same transaction (committed when the block ends).
        See :class:`ReportIntake`.

        Examples
        --------
        >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
        >>> with store.report_intake() as txn:  # doctest: +SKIP
        ...     txn.last_report_id()
        'R0000042'
        """
        return self._report_intake()

    @contextmanager
    def _report_intake(self) -> Iterator[ReportIntake]:
        errors = self._psycopg.errors
        with self._lock:
            try:
                with self._connection() as con:
                    # in a pipeline: statements whose answers are not read at once go
                    # with the next that is (the BEGIN with the batch's questions, the
                    # rows with the COMMIT)
                    with con.pipeline(), con.transaction():
                        txn = ReportIntake(self, con)
                        yield txn
                    written = txn.written  # committed: what the write answered
            except errors.UniqueViolation as exc:  # a writer outside the intake took an id
                self._tables.pop("reports", None)
                raise ConcurrentWriteError(["reports"]) from exc
            except errors.UndefinedColumn as exc:
                if not self._columns_changed(("reports", "report_events", "units")):
                    raise  # not a column dropped meanwhile: an error, said as it is
                # dropped meanwhile (a DBA, QGIS): asked again with the columns as they are
                raise ConcurrentWriteError(["reports"]) from exc
            except BaseException:
                for name in ("reports", "report_events"):
                    self._tables.pop(name, None)
                raise
            if written is not None:
                self._follow(None, *written)

    def _columns_changed(self, layers: Sequence[str]) -> bool:
        """Whether the columns of ``layers`` differ from those this process held, read
        again (on a connection of their own: the caller's transaction failed)."""
        held = {name: self._tables.pop(name, None) for name in layers}
        with self._connection() as con:
            try:
                return any(
                    table is not None and self._table(con, name).columns != table.columns
                    for name, table in held.items()
                )
            except LayerNotFoundError:  # dropped whole
                return True

    def _prepare(self, con: Any, todo: Mapping[str, pd.DataFrame], change: RowUpdate | None):
        """Create the layers ``todo`` names that do not exist and add the columns the
        rest lack (inside the write's transaction); the layers created."""
        created = []
        present = _present(con)
        if any(name not in present for name in todo):  # made one at a time, looked again
            con.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            present = _present(con)
        for name, df in todo.items():
            if name not in present:
                for stmt in layer_ddl(name, df):
                    con.execute(stmt)
                cols = [str(c) for c in df.columns]
                for stmt in spec_ddl(name, cols, [*present, name]):
                    con.execute(stmt)
                created.append(name)
                present.append(name)
                self._tables.pop(name, None)
                self._order = None
            self._add_columns(con, name, df)
        if change is not None:
            self._add_columns(
                con, change.layer, pd.DataFrame({c: [v] for c, v in change.values.items()})
            )
        return created

    def _add_columns(self, con: Any, name: str, df: pd.DataFrame) -> None:
        table = self._table(con, name)
        gcol = getattr(df, "_geometry_column_name", None)
        missing = [c for c in df.columns if c != gcol and str(c) not in table.columns]
        for c in missing:
            con.execute(
                f"ALTER TABLE {_ident(name)} ADD COLUMN IF NOT EXISTS {_ident(str(c))} "
                f"{_frame_sql_type(df[c])}"
            )
        spec = LAYERS.get(name)
        ruled = {c.name for c in spec.columns if c.choices} if spec is not None else set()
        new = {str(c) for c in missing}
        if new & ruled or any((name, c) in UNIQUE for c in new):  # their rules come along
            for stmt in spec_ddl(name, [*table.columns, *new], _present(con)):
                con.execute(stmt)
        if gcol is not None and not table.geometry:
            con.execute(
                f"ALTER TABLE {_ident(name)} ADD COLUMN IF NOT EXISTS {_ident(GEOMETRY)} "
                "geometry(Geometry, 4326)"
            )
        if missing or (gcol is not None and not table.geometry):
            self._tables.pop(name, None)
            self._table(con, name)

    def _follow(
        self,
        change: RowUpdate | None,
        todo: Mapping[str, pd.DataFrame],
        before: Mapping[str, int],
        ours: Mapping[str, int],
        fids: Mapping[str, int],
    ) -> None:
        """Keep the in-memory copies current after a write: a copy that was the layer
        just before it is changed the same way; any other is dropped."""
        self._writes += 1
        if self._order is not None and any(n not in self._order for n in ours):
            self._order = None  # a layer made: the list is looked at again
        for name, version in ours.items():
            cached = self._cache.pop(name, None)
            tail = self._tails.pop(name, None)
            self._marks[name] = version
            self._seen[name] = max(self._seen.get(name, 0), version)
            if cached is None or cached[0] != before.get(name) or tail is None:
                continue
            frames = cached[1]
            if change is not None and change.layer == name:
                held = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
                df = _updated(held, change.id_col, change.id_value, change.values)
                if df is None:
                    continue
                frames = [df]
            if name in todo:
                rows = todo[name]
                rows = rows.frame() if isinstance(rows, _Columns) else rows
                if set(rows.columns) - set(frames[0].columns):
                    continue  # new columns: the held rows lack them, read it again
                if len(frames) >= 64:
                    frames = [pd.concat(frames, ignore_index=True)]
                frames = [*frames, _as_read(rows, frames[0])]
                tail = (int(fids[name]), tail[1] + len(rows))
            self._cache[name] = (version, frames)
            self._tails[name] = tail

    def exclusive(self) -> AbstractContextManager[Any]:
        """This process's writer lock and a database advisory lock (other processes'
        ``exclusive`` sections wait) for a read-then-write sequence.

        Examples
        --------
        >>> with PostGISStore("postgresql://grid@localhost/zz").exclusive():  # doctest: +SKIP
        ...     pass
        """
        return self._exclusive()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock, self._connection() as con:
            con.execute("SELECT pg_advisory_lock(%s)", (_UPGRADE_LOCK + 1,))
            try:
                yield
            finally:
                con.execute("SELECT pg_advisory_unlock(%s)", (_UPGRADE_LOCK + 1,))

    def save_layer(self, layer: str, frame: pd.DataFrame, *, append: bool = False) -> None:
        """Replace ``layer`` by ``frame`` (table made again from the frame and the spec,
        in one transaction: readers see the old rows until it commits), or append it.

        Examples
        --------
        >>> from gridkit.synth.ops import grid_units
        >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
        >>> store.save_layer("units", grid_units(3, 1))  # doctest: +SKIP
        """
        if append:
            self.write(WriteBatch({layer: frame}))
            return
        frame = _wgs84(frame)
        with self._lock:
            try:
                with self._connection() as con, con.transaction():
                    _lock_versions(con, [layer])
                    con.execute(f"DROP TABLE IF EXISTS {_ident(layer)} CASCADE")
                    self._tables.pop(layer, None)
                    present = _present(con)
                    for stmt in layer_ddl(layer, frame):
                        con.execute(stmt)
                    for stmt in spec_ddl(layer, [str(c) for c in frame.columns], [*present, layer]):
                        con.execute(stmt)
                    _copy_rows(con, layer, frame, self._table(con, layer))
            finally:
                self._tables.pop(layer, None)
                self._cache.pop(layer, None)
                self._tails.pop(layer, None)
                self._order = None
                self._dirty = True

    def analyze(self, layers: Sequence[str]) -> None:
        """Refresh the query planner's statistics of these tables (``ANALYZE``), as
        after a bulk load: a table without them is planned as if nearly empty, and an
        indexed lookup (a report's unit, its duplicate candidates) can become a scan.

        Examples
        --------
        >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
        >>> store.analyze(["units", "reports"])  # doctest: +SKIP
        """
        names = [n for n in layers if n in set(self.layers())]
        if names:
            with self._connection() as con:
                con.execute(f"ANALYZE {', '.join(_ident(n) for n in names)}")

    def bulk_append(self, layer: str, frame: pd.DataFrame) -> int:
        """COPY ``frame``'s rows into the existing table ``layer``, in a transaction of
        their own that does not take the layer's version row first (the table's trigger
        moves the version as the COPY ends): one layer's partitions loaded by several
        processes at once go side by side (:func:`gridkit.scale.load.load_partitioned`).
        A column the table lacks is an error naming it: nothing is dropped.

        Examples
        --------
        >>> from gridkit.synth.ops import grid_units
        >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
        >>> store.save_layer("units", grid_units(3, 1).iloc[:0])  # doctest: +SKIP
        >>> store.bulk_append("units", grid_units(3, 1))  # doctest: +SKIP
        3
        """
        frame = _wgs84(frame)
        gcol = getattr(frame, "_geometry_column_name", None)
        with self._connection() as con, con.transaction():
            table = self._table(con, layer)
            lacking = [str(c) for c in frame.columns if c != gcol and str(c) not in table.columns]
            if lacking or (gcol is not None and not table.geometry):
                raise InputFileError(
                    f"{_safe(self.url)}: table {layer} has no column "
                    f"{', '.join(lacking) or GEOMETRY} for these rows; nothing was written.",
                    hint="Make the table with every column of every part first.",
                )
            _copy_rows(con, layer, frame, table)
        self._dirty = True
        return len(frame)

    # -- service tables -----------------------------------------------------------------
    def records(
        self, table: RecordTable, *, where: Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """Rows of a service table (a plain table, read at each call).

        Examples
        --------
        >>> from gridkit.store.keys import KEYS
        >>> PostGISStore("postgresql://grid@localhost/zz").records(KEYS)  # doctest: +SKIP
        Empty DataFrame...
        """
        where = dict(where or {})
        _check_names(table, where)
        cols = ", ".join(_ident(c) for c in table.names)
        sql = f"SELECT {cols} FROM {_ident(table.name)}" + _where_sql(where)
        with self._connection() as con:
            try:
                rows = con.execute(sql, [_py(v) for v in where.values()]).fetchall()
            except self._psycopg.errors.UndefinedTable:  # not made yet: no rows
                return pd.DataFrame(columns=table.names)
        return pd.DataFrame(rows, columns=table.names)

    def add_records(self, table: RecordTable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows into a service table, created first if missing (all or none)."""
        for row in rows:
            _check_names(table, row)
        with self._connection() as con, con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK + 2,))
            con.execute(_create_sql(table))
            for row in rows:
                cols = ", ".join(_ident(c) for c in row)
                slots = ", ".join(["%s"] * len(row))
                con.execute(
                    f"INSERT INTO {_ident(table.name)} ({cols}) VALUES ({slots})",
                    [_py(v) for v in row.values()],
                )

    def set_records(
        self, table: RecordTable, values: Mapping[str, Any], *, where: Mapping[str, Any]
    ) -> int:
        """Set ``values`` on the rows of a service table matching ``where``: how many."""
        _check_names(table, {**values, **where})
        sets = ", ".join(f"{_ident(c)} = %s" for c in values)
        sql = f"UPDATE {_ident(table.name)} SET {sets}" + _where_sql(where)
        params = [_py(v) for v in (*values.values(), *where.values())]
        with self._connection() as con:
            if con.execute("SELECT to_regclass(%s)", (_ident(table.name),)).fetchone()[0] is None:
                return 0
            return con.execute(sql, params).rowcount


@dataclass
class IntakeRows:
    """A batch's questions answered together (:meth:`ReportIntake.ask_rows`, under
    the intakes' lock): ``units`` at the points, ``replays`` under the keys asked and ``near`` (as
    :meth:`ReportIntake.open_near`) as :class:`FoundRows`, their frames made only
    when asked for; ``last``, the highest report id; and whether
    every point has a unit told only when asked (:attr:`every`).

    Examples
    --------
    >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
    >>> with store.report_intake() as txn:  # doctest: +SKIP
    ...     got = txn.ask_rows([shapely.Point(113.1, 27.8)], ["sewage"], ["phone-7/k1"],
    ...                        radius_m=50, statuses=["collected", "opened"])
    >>> got.replays.column("idempotency_key"), got.replay_frame().index.tolist()  # doctest: +SKIP
    (['phone-7/k1'], ['phone-7/k1'])
    """

    units: FoundRows | None
    points: Sequence[Any]
    replays: FoundRows | None
    last: str | None
    near: FoundRows | None

    @functools.cached_property
    def every(self) -> bool:
        """Whether every point lies in or on a unit found (else the nearest unit is
        the whole layer's to tell)."""
        return _every_point_in(self.points, self.units)

    def replay_frame(self) -> pd.DataFrame:
        """The reports stored under the keys asked, indexed by key (empty when none)."""
        if self.replays is None or not len(self.replays):
            return pd.DataFrame(index=pd.Index([], dtype=object))
        rows = self.replays.frame()
        return rows.set_index(rows["idempotency_key"].astype(str).to_numpy())


class ReportIntake:
    """What a batch of new reports asks of the database, inside the transaction of
    :meth:`PostGISStore.report_intake` (indexed queries; nothing held in memory):

    - :meth:`replays`: the rows stored under Idempotency-Keys (the UNIQUE index);
    - :meth:`last_report_id`: the highest ``R<digits>`` id (an expression index);
    - :meth:`open_near`: open originals of the new reports' categories near them
      (the GiST index), the only reports they can duplicate;
    - :meth:`units_at`: the units holding (or touching) the new points (GiST);
    - :meth:`ask_rows`: all of these, and the intakes' lock, in one round trip;
    - :meth:`append`: the new rows, written in the same transaction (sent with its
      commit: one round trip more).

    Examples
    --------
    >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
    >>> with store.report_intake() as txn:  # doctest: +SKIP
    ...     txn.replays(["phone-7/k1"]).index.tolist()
    ['phone-7/k1']
    """

    def __init__(self, store: PostGISStore, con: Any) -> None:
        self._store = store
        self._con = con
        self._locked = False
        #: (rows, version cursor before, cursor of versions and fids after) once written
        self._written: tuple | None = None
        #: the highest report number, read with the keys (:meth:`replays`), until a write
        self._last: tuple[int | None] | None = None
        names = ("reports", "units", "report_events")
        if all(n in store._seen for n in names):  # the layers last seen: tables stay
            self._has = dict.fromkeys(names, True)
            return
        has = con.execute(
            "SELECT to_regclass('reports') IS NOT NULL, to_regclass('units') IS NOT NULL, "
            "to_regclass('report_events') IS NOT NULL"
        ).fetchone()
        self._has = dict(zip(names, map(bool, has), strict=True))

    @property
    def written(self) -> tuple | None:
        """(rows, versions before, versions after, last fids) of :meth:`append`, read
        once the transaction is committed (None when nothing was written)."""
        if self._written is None:
            return None
        todo, before, after = self._written
        with before, after:
            versions = {str(n): int(v) for n, v in before.fetchall()}
            got = after.fetchall()
        ours = {str(n): int(v) for n, v, _ in got}
        return todo, versions, ours, {str(n): int(f) for n, _, f in got}

    def _lock(self, *, taken: bool = False) -> None:
        """Report intakes of every process, one at a time from here to the commit: what
        one batch decides (ids, duplicates) the next one reads, committed. Taken by the
        first question about the reports (the units are asked before), or by
        :meth:`ask_rows` (``taken``: it holds it now)."""
        if not self._locked:
            if not taken:
                self._con.execute("SELECT pg_advisory_xact_lock(%s)", (INTAKE_LOCK,))
            self._locked = True
            if not self._has["reports"]:  # made by the intake that held the lock before
                row = self._con.execute("SELECT to_regclass('reports') IS NOT NULL").fetchone()
                self._has["reports"] = bool(row[0])

    def ask_rows(
        self,
        points: Sequence[Any],
        categories: Sequence[Any],
        keys: Sequence[str] = (),
        unit_ids: Sequence[str] = (),
        *,
        radius_m: float,
        statuses: Sequence[str],
        columns: Sequence[str] | None = None,
    ) -> IntakeRows:
        """A batch's questions sent together and answered in one round trip (a
        pipeline): the intakes' lock, :meth:`units_at` the ``points`` and
        ``unit_ids``, :meth:`replays` of ``keys``, :meth:`last_report_id` and
        :meth:`open_near` the points (each with its category); the rows as read
        (:class:`IntakeRows`). The lock is waited for as the first statement, so a
        batch waiting for its turn holds no lock on a table (an intake adding a column
        would otherwise wait for it, and it for that intake)."""
        con = self._con
        with con.pipeline():  # sent together; answered as the block ends
            lock = None
            if not self._locked:
                # with the lock: the batch's statements use the generic plans of their
                # prepared forms (psycopg prepares them from their fifth use); their
                # plans do not depend on the values (a few points, keys, boxes), and
                # planning each again cost the database ~0.6 ms a batch
                lock = con.execute(_INTAKE_LOCK_SQL, (INTAKE_LOCK,))
            units = self._units_read(points, unit_ids)
            keyed = self._keys_read(keys)
            last = self._last_read()
            near = self._near_read(points, categories, radius_m, statuses, columns)
            # the columns these questions were written for, as they are now (another
            # process, QGIS or a DBA may have added one: a stored key then goes unseen)
            used = [n for n in ("reports", "units") if n in self._store._tables]
            digests = con.execute(
                f"SELECT l, {_DIGEST_SQL.format(name='l')} FROM unnest(%b::text[]) AS l",
                (used,),
            )
        with ExitStack() as done:
            if lock is not None:  # held from here to the commit
                done.enter_context(lock).fetchone()
                self._locked = True
            number = None if last is None else done.enter_context(last).fetchone()[0]
            found = None if units is None else units.found()
            stored = None if keyed is None else keyed.found()
            close = None if near is None else near.found()
            tables = self._store._tables
            changed = [str(n) for n, d in done.enter_context(digests).fetchall()
                       if tables.get(str(n), _Table({}, False)).digest != d]  # fmt: skip
        if changed:  # asked again with the columns as they are now
            for name in changed:
                self._store._tables.pop(name, None)
            return self.ask_rows(points, categories, keys, unit_ids, radius_m=radius_m,
                                 statuses=statuses, columns=columns)  # fmt: skip
        if self._locked and not self._has["reports"]:  # made by the lock's last holder
            self._lock(taken=True)
            if self._has["reports"]:
                return self.ask_rows(points, categories, keys, unit_ids, radius_m=radius_m,
                                     statuses=statuses, columns=columns)  # fmt: skip
        return IntakeRows(
            found,
            points,
            stored,
            None if number is None else f"R{number}",
            close,
        )

    def _rows(
        self,
        layer: str,
        where: str,
        params: Sequence[Any],
        columns: Sequence[str] | None = None,
        *,
        empty: bool = True,
    ) -> _Read | None:
        """The rows of ``layer`` matching ``where``, asked (:class:`_Read`: its answer
        None without a row when not ``empty``); None without the layer."""
        if not self._has[layer]:
            return None
        table = self._store._table(self._con, layer)
        if columns is not None:  # these columns only (and the geometry)
            table = _Table(
                {c: table.columns[c] for c in columns if c in table.columns}, table.geometry
            )
        return _Read(self._con, layer, table, where=where, params=params, empty=empty)

    def _columns(self, layer: str) -> dict[str, str]:
        return self._store._table(self._con, layer).columns if self._has[layer] else {}

    def replays(self, keys: Sequence[str]) -> pd.DataFrame:
        """The reports stored under any of ``keys`` (``idempotency_key``), indexed by
        key (empty when none, or the layer has no such column)."""
        self._lock()
        read, last = self._keys_read(keys), self._last_read()
        if last is not None:
            with last:
                self._last = last.fetchone()
        rows = None if read is None else read.answer()
        if rows is None:
            return pd.DataFrame(index=pd.Index([], dtype=object))
        return rows.set_index(rows["idempotency_key"].astype(str).to_numpy())

    def _keys_read(self, keys: Sequence[str]) -> _Read | None:
        if not keys or "idempotency_key" not in self._columns("reports"):
            return None
        return self._rows("reports", "idempotency_key = ANY(%b::text[])", [list(keys)], empty=False)

    def _last_read(self) -> Any:
        """The highest report number, asked (a cursor); None without report ids."""
        if "report_id" not in self._columns("reports"):
            return None
        return self._con.execute(f"SELECT max({_REPORT_NUMBER}) FROM reports")  # the index's

    def last_report_id(self) -> str | None:
        """The report id ``R<digits>`` with the highest number, None without one."""
        self._lock()
        if self._last is None:
            last = self._last_read()
            if last is None:
                return None
            with last:
                self._last = last.fetchone()
        return None if self._last[0] is None else f"R{self._last[0]}"

    def open_near(
        self,
        points: Sequence[Any],
        categories: Sequence[Any],
        radius_m: float,
        *,
        statuses: Sequence[str],
        columns: Sequence[str] | None = None,
    ) -> gpd.GeoDataFrame | None:
        """Reports of ``statuses`` that duplicate nothing (``duplicate_of`` empty),
        of the category of a new point, inside the box around it that holds
        ``radius_m`` 1.5 times over (:func:`gridkit.crs.degrees_around`), in layer
        (``fid``) order: the candidates the exact duplicate search then measures.
        Only ``columns`` (and the geometry) when given. None without a reports layer
        or without a candidate."""
        self._lock()
        read = self._near_read(points, categories, radius_m, statuses, columns)
        return None if read is None else read.answer()

    def _near_read(
        self,
        points: Sequence[Any],
        categories: Sequence[Any],
        radius_m: float,
        statuses: Sequence[str],
        columns: Sequence[str] | None,
    ) -> _Read | None:
        cols = self._columns("reports")
        if not self._has["reports"] or "category" not in cols or "status" not in cols:
            return None
        geoms = np.asarray(points, dtype=object)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        xy = shapely.get_coordinates(geoms[ok])
        cats = [None if pd.isna(c) else str(c) for c in np.asarray(categories, dtype=object)[ok]]
        if radius_m <= 0 or not len(xy):
            return None
        dx, dy = degrees_around(xy[:, 1], np.full(len(xy), float(radius_m)))
        single = "" if "duplicate_of" not in cols else " AND r.duplicate_of IS NULL"
        # each box made once (OFFSET 0: not inlined into the join, where it was made
        # again for every report it was compared with while the table had no stats)
        where = (
            "fid IN (SELECT r.fid FROM (SELECT ST_MakeEnvelope(u.x0, u.y0, u.x1, u.y1, 4326) "
            "AS box, u.* FROM unnest(%b::float8[], %b::float8[], %b::float8[], %b::float8[], "
            "%b::text[]) AS u(x0, y0, x1, y1, cat) OFFSET 0) q JOIN reports r ON "
            "r.geometry && q.box "
            "AND ST_XMin(r.geometry) <= q.x1 AND ST_XMax(r.geometry) >= q.x0 "
            "AND ST_YMin(r.geometry) <= q.y1 AND ST_YMax(r.geometry) >= q.y0 "
            f"AND r.category = q.cat WHERE r.status = ANY(%b::text[]){single})"
        )
        x, y = xy[:, 0], xy[:, 1]
        params = [
            (x - dx).tolist(), (y - dy).tolist(), (x + dx).tolist(), (y + dy).tolist(),
            cats, list(statuses),
        ]  # fmt: skip
        return self._rows("reports", where, params, columns, empty=False)

    def units_at(
        self, points: Sequence[Any], unit_ids: Sequence[str] = ()
    ) -> tuple[gpd.GeoDataFrame | None, bool]:
        """The units that hold or touch any of ``points`` (one indexed query) and the
        units named in ``unit_ids`` (chosen by hand), in layer (``fid``) order, with
        their ``unit_id``, ``admin_code`` and geometry; and
        whether every point has a unit (else the caller needs the nearest one, which
        only the whole layer answers as :func:`gridkit.ops.locate.locate` does)."""
        read = self._units_read(points, unit_ids)
        if read is None:
            return None, False
        found = read.found()
        return (None if found is None else found.frame()), _every_point_in(points, found)

    def _units_read(self, points: Sequence[Any], unit_ids: Sequence[str]) -> _Read | None:
        if not self._has["units"]:
            return None
        geoms = np.asarray(points, dtype=object)
        xy = shapely.get_coordinates(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
        # the units hit (whether each point has one is told from them: _every_point_in)
        hits = (
            "SELECT u.fid FROM unnest(%b::float8[], %b::float8[]) AS p(x, y) JOIN units u "
            "ON ST_Intersects(u.geometry, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))"
        )
        where = f"fid = ANY(ARRAY({hits}))"
        params = [xy[:, 0].tolist(), xy[:, 1].tolist()]
        named = [str(u) for u in unit_ids if u is not None and not pd.isna(u)]
        if named and "unit_id" in self._columns("units"):
            where, params = f"({where} OR unit_id = ANY(%b::text[]))", [*params, named]
        # what placing a report reads of its unit (the layer's other columns cost a
        # typed column each, for nothing)
        whole = self._store._table(self._con, "units")
        table = _Table({c: whole.columns[c] for c in ("unit_id", "admin_code")
                        if c in whole.columns}, whole.geometry)  # fmt: skip
        return _Read(self._con, "units", table, where=where, params=params)

    def append(self, rows: Mapping[str, pd.DataFrame]) -> None:
        """Write ``rows`` (layer -> frame) in this transaction: tables made or given
        the columns they lack, the layers' version rows locked, the rows inserted.
        In a pipeline (as :meth:`PostGISStore.report_intake` runs) these are sent
        with the commit; :attr:`written` reads what they answered."""
        store, con = self._store, self._con
        todo = {name: _wgs84(df) for name, df in rows.items() if len(df)}
        if not todo:
            return
        self._last = None  # ids written: asked again
        self._lock()
        if not all(self._fits(name, df) for name, df in todo.items()):
            store._prepare(con, todo, None)
        before = con.execute(_LOCK_VERSIONS, (sorted(todo),))
        for name, df in todo.items():
            _insert_rows(con, name, df, store._tables[name])
        self._written = (todo, before, self._versions_after(todo))

    def append_rows(self, rows: Mapping[str, tuple[Mapping[str, Sequence[Any]], Any]]) -> None:
        """:meth:`append` of rows given as columns of Python values: layer ->
        (column -> values, shapely geometries or None), into tables that :meth:`fits`
        them (else ``ValueError``: :meth:`append` a frame, which makes what is missing).
        No frame is made for the write (one is, after the commit, only for a copy of
        the layer held in memory to follow it)."""
        store, con = self._store, self._con
        todo = {name: _Columns(cols, geoms) for name, (cols, geoms) in rows.items()
                if len(_Columns(cols, geoms))}  # fmt: skip
        if not todo:
            return
        unfit = [n for n, c in todo.items() if not self.fits(n, c.values, c.geoms is not None)]
        if unfit:
            raise ValueError(f"tables {unfit} lack columns given: append a frame")
        self._last = None  # ids written: asked again
        self._lock()
        before = con.execute(_LOCK_VERSIONS, (sorted(todo),))
        for name, cols in todo.items():
            for c, values in cols.values.items():
                _check_storable(c, values)
            _insert_values(con, name, cols.values, cols.geoms, store._tables[name])
        self._written = (todo, before, self._versions_after(todo))

    def _versions_after(self, names: Iterable[str]) -> Any:
        """The versions of the layers written and their last fids, asked in one query
        (ours: we hold their rows)."""
        after = " UNION ALL ".join(
            f"SELECT '{name}', (SELECT version FROM gridkit_layer_versions WHERE layer = "
            f"'{name}'), (SELECT coalesce(max(fid), 0) FROM {_ident(name)})"
            for name in names
        )
        return self._con.execute(after)

    def fits(self, name: str, columns: Iterable[str], geometry: bool = False) -> bool:
        """Whether table ``name`` exists with every one of ``columns`` (and a geometry
        column when ``geometry``)."""
        if not self._has.get(name):
            return False
        table = self._store._table(self._con, name)
        return all(str(c) in table.columns for c in columns) and (not geometry or table.geometry)

    def _fits(self, name: str, df: pd.DataFrame) -> bool:
        """Whether table ``name`` exists with every column of ``df``."""
        gcol = getattr(df, "_geometry_column_name", None)
        return self.fits(name, [c for c in df.columns if c != gcol], gcol is not None)


def _every_point_in(points: Sequence[Any], found: FoundRows | None) -> bool:
    """Whether each of ``points`` (missing and empty ones aside) lies in or on one of
    the units ``found`` (those the query found at them: any unit it lies in is one)."""
    geoms = np.asarray(points, dtype=object)
    pts = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(pts):
        return True
    if found is None or not len(found):
        return False
    units = found.geometry()
    return bool(shapely.intersects(pts[:, None], units[None, :]).any(axis=1).all())


def _listen(ref: weakref.ref, closed: threading.Event) -> None:
    """LISTEN for layers' new versions (a thread): each marks the store's versions
    stale. Holds the store weakly: a store no longer used is closed and collected."""
    store = ref()
    if store is None:
        return
    psycopg, url = store._psycopg, store.url
    del store
    while not closed.is_set():
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as con:
                con.execute("LISTEN gridkit_layers")
                _mark(ref, listening=True)
                while not closed.is_set() and ref() is not None:
                    for note in con.notifies(timeout=1.0, stop_after=1):
                        _mark(ref, listening=True, payload=note.payload)
        except Exception:  # the server away: the store polls meanwhile, then reconnect
            _mark(ref, listening=False)
            closed.wait(1.0)
        if ref() is None:
            return


def _mark(ref: weakref.ref, *, listening: bool, payload: str | None = None) -> None:
    """The store's versions stale (``payload``: a NOTIFY's ``layer:version``, stale
    only when newer than the version the store has seen by its next look)."""
    store = ref()
    if store is None:
        return
    store._listening = listening
    layer, _, version = (payload or "").rpartition(":")
    if layer and version.isdigit():
        with store._heard_lock:
            store._heard[layer] = max(store._heard.get(layer, 0), int(version))
    else:  # connected again, or a server of an earlier revision: look again
        store._dirty = True


#: the intakes' lock, waited for as a batch's first statement (and its plans generic)
_INTAKE_LOCK_SQL = (
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true) "
    "FROM pg_advisory_xact_lock(%s)"
)


def _configure(con: Any) -> None:
    con.execute("SET TIME ZONE 'UTC'")


#: a pooled connection given back less than this long ago is handed out unchecked (s):
#: the check costs a round trip per request, and one in use a moment ago is alive (a
#: server gone meanwhile fails the request with a 503, and the pool replaces it)
CHECK_IDLE_S = 1.0
_RETURNED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # con -> given back


def _check_idle(con: Any) -> None:
    """The pool's check of a connection it hands out: a round trip (psycopg_pool's
    ``check_connection``) only when it has been idle for :data:`CHECK_IDLE_S`."""
    if time.monotonic() - _RETURNED.get(con, float("-inf")) < CHECK_IDLE_S:
        return
    if con.autocommit:  # as psycopg_pool.ConnectionPool.check_connection
        con.execute("")


def shown(workspace: object) -> str:
    """A workspace as messages show it: a database URL without its password, a path as
    it is.

    Examples
    --------
    >>> shown("postgresql://grid:s3cret@db/zz"), shown("ws.gpkg")
    ('postgresql://grid:***@db/zz', 'ws.gpkg')
    """
    url = database_url(workspace)
    return _safe(url) if url else str(workspace)


def _safe(url: str) -> str:
    """The URL without its password (for messages).

    Examples
    --------
    >>> _safe("postgresql://grid:s3cret@db/zz")
    'postgresql://grid:***@db/zz'
    """
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _present(con: Any) -> list[str]:
    """The layer tables that exist, in creation order."""
    rows = con.execute(
        "SELECT layer FROM gridkit_layer_versions WHERE to_regclass(quote_ident(layer)) "
        "IS NOT NULL ORDER BY seq"
    ).fetchall()
    return [str(r[0]) for r in rows]


#: the layers' versions, their rows locked until the transaction ends (name order:
#: two writers of the same layers never wait for each other in a circle)
_LOCK_VERSIONS = (
    "SELECT layer, version FROM gridkit_layer_versions WHERE layer = ANY(%s) "
    "ORDER BY layer FOR UPDATE"
)


def _lock_versions(con: Any, layers: Sequence[str]) -> dict[str, int]:
    """The layers' versions, their rows locked until the transaction ends
    (:data:`_LOCK_VERSIONS`)."""
    rows = con.execute(_LOCK_VERSIONS, (list(layers),)).fetchall()
    return {str(n): int(v) for n, v in rows}


def _wgs84(df: pd.DataFrame) -> pd.DataFrame:
    if isinstance(df, gpd.GeoDataFrame) and df.crs is not None and not df.crs.equals(WGS84):
        return df.to_crs(4326)
    return df


def _py(value: Any) -> Any:
    """A value as psycopg takes it: None for missing, Python scalars."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _update(con: Any, change: RowUpdate) -> None:
    sets = ", ".join(f"{_ident(c)} = %s" for c in change.values)
    cur = con.execute(
        f"UPDATE {_ident(change.layer)} SET {sets} WHERE {_ident(change.id_col)} = %s",
        [*(_py(v) for v in change.values.values()), change.id_value],
    )
    if cur.rowcount == 0:
        raise LayerNotFoundError(
            f"{change.layer}: no row with {change.id_col} = {change.id_value!r}."
        )


def _column_values(s: pd.Series) -> np.ndarray:
    """A column as Python values for COPY (None for missing)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = np.empty(len(s), dtype=object)  # None throughout
        ok = ~np.asarray(s.array.isna())
        if ok.any():  # most lifecycle times of a new report are still empty
            out[ok] = list(s[ok].dt.to_pydatetime())
        return out
    array = s.array
    if isinstance(array, pd.arrays.ArrowStringArray):
        # text held by Arrow (pandas' "string"): its own conversion, NA as None, at a
        # fraction of to_numpy's cost on the few rows of a batch
        return np.asarray(array.__arrow_array__().to_pylist(), dtype=object)
    out = s.to_numpy(dtype=object, na_value=None)
    if s.dtype == object:
        _check_storable(s.name, out)
    return out


def _check_storable(name: object, values: np.ndarray) -> None:
    """A list, dict, tuple or set in a column is refused, naming its column and row."""
    bad = [i for i, v in enumerate(values) if isinstance(v, list | dict | tuple | set)]
    if bad:
        raise GridkitError(
            f"column {name!r}, row {bad[0]}: a {type(values[bad[0]]).__name__} is not a "
            "storable value; nothing was written.",
            hint="Store text, numbers, booleans or times (a list as JSON text).",
        )


def _copy_rows(con: Any, name: str, df: pd.DataFrame, table: _Table) -> None:
    """COPY ``df``'s rows into table ``name`` (columns matched by name): row by row
    for a few, as one CSV made by pandas for many (:data:`BULK_ROWS`)."""
    if not len(df):
        return
    gcol = getattr(df, "_geometry_column_name", None)
    cols = [c for c in df.columns if c != gcol and str(c) in table.columns]
    names = [_ident(str(c)) for c in cols]
    hexes = None
    if gcol is not None and table.geometry:
        geoms = np.asarray(df[gcol].array, dtype=object)
        hexes = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
        names.append(_ident(GEOMETRY))
    if not names:
        return
    if len(df) > BULK_ROWS:
        _copy_csv(con, name, names, df, cols, hexes)
        return
    values = [_column_values(df[c]) for c in cols]
    if hexes is not None:
        values.append(np.asarray(hexes, dtype=object))
    rows = zip(*values, strict=True)  # Python values throughout (object arrays)
    with (
        con.cursor() as cur,
        cur.copy(f"COPY {_ident(name)} ({', '.join(names)}) FROM STDIN") as cp,
    ):
        for row in rows:
            cp.write_row(row)


class _Columns:
    """Rows written as columns of Python values (:meth:`ReportIntake.append_rows`),
    made a frame only when a held copy of the layer follows the write."""

    def __init__(self, values: Mapping[str, Sequence[Any]], geoms: Any) -> None:
        self.values, self.geoms = values, geoms

    def __len__(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0

    def frame(self) -> pd.DataFrame:
        """The rows as a frame of Python values (:func:`_as_read` types them as the
        held copy's columns)."""
        data = {c: pd.array(list(v), dtype=object) for c, v in self.values.items()}
        if self.geoms is None:
            return pd.DataFrame(data, index=pd.RangeIndex(len(self)))
        data[GEOMETRY] = gpd.array.from_shapely(np.asarray(self.geoms, dtype=object), crs=4326)
        return gpd.GeoDataFrame(data, geometry=GEOMETRY, crs=4326)


def _insert_rows(con: Any, name: str, df: pd.DataFrame, table: _Table) -> None:
    """INSERT ``df``'s rows into table ``name`` (columns matched by name) as one
    statement, each column one array (``unnest``): unlike COPY it can go in a pipeline,
    with the statements before it and the commit after it (one round trip)."""
    gcol = getattr(df, "_geometry_column_name", None)
    cols = [c for c in df.columns if c != gcol and str(c) in table.columns]
    # the frame as Python values at once (a column at a time costs a Series each)
    values = pd.DataFrame(df, columns=cols).to_numpy(dtype=object, na_value=None)
    for k, c in enumerate(cols):
        if df[c].dtype == object:
            _check_storable(c, values[:, k])
    geoms = None if gcol is None else np.asarray(df[gcol].array, dtype=object)
    _insert_values(con, name, {str(c): values[:, k] for k, c in enumerate(cols)}, geoms, table)


def _insert_values(
    con: Any, name: str, columns: Mapping[str, Sequence[Any]], geoms: Any, table: _Table
) -> None:
    """The INSERT of :func:`_insert_rows` from columns of Python values (those of
    ``table``; ``geoms``: shapely geometries or None)."""
    cols = [c for c in columns if c in table.columns]
    names = [_ident(c) for c in cols]
    arrays = [_array(con, columns[c]) for c in cols]
    # binary arrays (%b): psycopg's text form scans every element for what to quote
    casts = [f"%b::{table.columns[c]}[]" for c in cols]
    if geoms is not None and table.geometry:
        hexes = shapely.to_wkb(
            shapely.set_srid(np.asarray(geoms, dtype=object), 4326), hex=True, include_srid=True
        )
        arrays.append(list(hexes))
        casts.append("%b::text[]::geometry[]")
        names.append(_ident(GEOMETRY))
    if not names:
        return
    con.execute(
        f"INSERT INTO {_ident(name)} ({', '.join(names)}) SELECT * FROM unnest({', '.join(casts)})",
        arrays,
    )


def _array(con: Any, values: Sequence[Any]) -> list:
    """A column's values as an array parameter: Python values of one type (psycopg
    types the array by them); a column mixing types goes as text, each value written
    by psycopg as COPY writes it, which the cast to the column's type then reads."""
    out = [_py(v) for v in values]
    kinds = {type(v) for v in out if v is not None}
    if len(kinds) > 1:
        from psycopg.adapt import PyFormat, Transformer  # the 'postgis' extra: in use

        tx = Transformer(con)
        return [
            None if v is None else bytes(tx.get_dumper(v, PyFormat.TEXT).dump(v)).decode()
            for v in out
        ]
    return out


#: rows from which COPY goes as CSV written by pandas (one call) rather than row by row
BULK_ROWS = 2000
#: what stands for NULL in that CSV: a control character no stored text is
_CSV_NULL = "\x01"


def _copy_csv(
    con: Any, name: str, names: list[str], df: pd.DataFrame, cols: list, hexes: Any
) -> None:
    """COPY many rows as CSV made by pandas (times, numbers formatted vectorised;
    floats written as repr, exact). Text is quoted, NULL is ``\\x01`` unquoted or
    not (FORCE_NULL), so empty text stays empty text."""
    frame = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for k, c in enumerate(cols):
        s = df[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s.dtype):  # ISO text, vectorised
            aware = getattr(s.dtype, "tz", None) is not None
            raw = (s.dt.tz_convert("UTC").dt.tz_localize(None) if aware else s).to_numpy()
            text = np.datetime_as_string(raw, unit="us", timezone="UTC" if aware else "naive")
            s = pd.Series(np.where(pd.isna(raw), None, text), dtype=object)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            s = pd.Series(_column_values(s), dtype=object)
            if (s == _CSV_NULL).any():
                raise GridkitError(f"column {c!r}: a value is the control character U+0001.")
        frame[k] = s
    if hexes is not None:
        frame[len(cols)] = pd.Series(np.asarray(hexes, dtype=object), dtype=object)
    cols_sql = ", ".join(names)
    sql = (
        f"COPY {_ident(name)} ({cols_sql}) FROM STDIN "
        f"(FORMAT csv, NULL E'\\x01', FORCE_NULL ({cols_sql}))"
    )
    with con.cursor() as cur, cur.copy(sql) as cp:
        for start in range(0, len(frame), 50_000):
            text = frame.iloc[start : start + 50_000].to_csv(
                header=False,
                index=False,
                quoting=csv.QUOTE_NONNUMERIC,
                na_rep=_CSV_NULL,
                lineterminator="\n",
            )
            cp.write(text.encode("utf-8"))


def _read_table(con: Any, name: str, table: _Table, **how: Any) -> Any:
    """The whole table as the GeoPackage backend reads it: the same dtypes (text as
    strings, integers with gaps as floats, times in milliseconds), rows in fid order.
    Times come as epoch milliseconds and geometries as WKB: typed column by column,
    without a Python object per value where pandas can help it. ``how``: the rows
    after a fid, a ``where`` with its ``params`` and ``empty``, as :class:`_Read`
    takes them. Without a row and not ``empty``: None."""
    return _Read(con, name, table, **how).answer()


class _Read:
    """A read of :func:`_read_table`, asked now and answered when :meth:`answer` is
    called: in a pipeline (``con.pipeline()``) several are sent together and their
    answers come in one round trip."""

    def __init__(
        self,
        con: Any,
        name: str,
        table: _Table,
        *,
        after: int | None = None,
        where: str | None = None,
        params: Sequence[Any] = (),
        empty: bool = True,
    ) -> None:
        sel = []
        for c, sql_type in table.columns.items():
            if sql_type.startswith("timestamp"):
                sel.append(f"floor(extract(epoch FROM {_ident(c)}) * 1000)::bigint")
            else:
                sel.append(_ident(c))
        if table.geometry:
            sel.append(f"ST_AsBinary({_ident(GEOMETRY)})")
        conds = ([] if after is None else [f"fid > {int(after)}"]) + ([where] if where else [])
        cond = f" WHERE {' AND '.join(conds)}" if conds else ""
        sql = f"SELECT {', '.join(sel) or 'NULL'} FROM {_ident(name)}{cond} ORDER BY fid"
        self.table, self.sel, self.empty = table, sel, empty
        self.cur = con.cursor(binary=True)
        self.cur.execute(sql, params or None)

    def found(self) -> FoundRows | None:
        """The rows as :class:`FoundRows` (None without a row when not ``empty``)."""
        with self.cur as cur:
            rows = cur.fetchall()
        return None if not rows and not self.empty else FoundRows(rows, self.table, self.sel)

    def answer(self) -> pd.DataFrame | None:
        """The frame (None without a row when not ``empty``)."""
        got = self.found()
        return None if got is None else got.frame()


class FoundRows:
    """Rows a question of :class:`ReportIntake` answered (:meth:`ReportIntake.ask_rows`):
    their values as read (:meth:`column`, :meth:`geometry`: a batch of reports reads
    a few values of a few rows, which a frame costs more to build than to use) and,
    on demand, the frame a read of the layer gives (:meth:`frame`, made once).

    Examples
    --------
    >>> store = PostGISStore("postgresql://grid@localhost/zz")  # doctest: +SKIP
    >>> with store.report_intake() as txn:  # doctest: +SKIP
    ...     got = txn.ask_rows([shapely.Point(113.1, 27.8)], ["sewage"],
    ...                        radius_m=50, statuses=["collected"])
    >>> got.units.column("unit_id"), len(got.units.frame())  # doctest: +SKIP
    (['430202001000000'], 1)
    """

    def __init__(self, rows: list, table: _Table, sel: list[str]) -> None:
        self.rows = rows
        self._table, self._sel = table, sel
        self._names = list(table.columns)
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def columns(self) -> list[str]:
        """The columns read (without the geometry)."""
        return self._names

    def column(self, name: str) -> list:
        """The values of column ``name`` as read (times as epoch milliseconds)."""
        k = self._names.index(name)
        return [r[k] for r in self.rows]

    def geometry(self) -> np.ndarray:
        """The rows' geometries (shapely; None where missing)."""
        return shapely.from_wkb(np.asarray([r[-1] for r in self.rows], dtype=object))

    def frame(self) -> pd.DataFrame:
        """The rows as the frame a read of the layer gives (made once: not to change)."""
        if self._frame is None:
            self._frame = _frame(self.rows, self._table, self._sel)
        return self._frame


def _frame(rows: list, table: _Table, sel: list[str]) -> pd.DataFrame:
    """The rows read by :func:`_read_table` as its frame."""
    names = list(table.columns)
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in sel]
    data = {c: _series(cols[k], table.columns[c]) for k, c in enumerate(names)}
    if not table.geometry:
        return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    geoms = shapely.from_wkb(np.asarray(cols[-1], dtype=object))
    # the geometry as a column of the frame built once: set afterwards, geopandas
    # looks for it first (an error built and caught) on every read
    data = {c: s.array for c, s in data.items()}
    data[GEOMETRY] = gpd.array.from_shapely(geoms, crs=4326)
    return gpd.GeoDataFrame(
        data, index=pd.RangeIndex(len(rows)), geometry=GEOMETRY, crs=4326, copy=False
    )


def _series(values: Sequence[Any], sql_type: str) -> pd.Series:
    """A column read from PostgreSQL, typed as GDAL types the GeoPackage's (times
    arrive as epoch milliseconds, see :func:`_read_table`)."""
    values = list(values)
    if sql_type in ("bigint", "integer", "smallint") or sql_type.startswith("timestamp"):
        ints = pd.array(values, dtype="Int64")
        if sql_type.startswith("timestamp"):
            ms = ints.to_numpy(dtype="int64", na_value=np.iinfo("int64").min)
            times = pd.Series(ms.view("datetime64[ms]"))
            return times.dt.tz_localize("UTC") if "with time zone" in sql_type else times
        return pd.Series(ints.astype("float64" if ints.isna().any() else "int64"))
    if sql_type in ("double precision", "real", "numeric"):
        floats = pd.array(values, dtype="Float64")
        return pd.Series(floats.to_numpy(dtype="float64", na_value=np.nan))
    if sql_type == "boolean":
        flags = pd.array(values, dtype="boolean")
        return pd.Series(flags.astype(object) if flags.isna().any() else flags.astype(bool))
    if sql_type == "text" or sql_type.startswith("character"):
        return pd.Series(values, dtype="str")
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _as_read(rows: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Appended rows as a read would give them (the held copy's columns)."""
    gcol = getattr(rows, "_geometry_column_name", None)
    out = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    for c in like.columns:
        if isinstance(like, gpd.GeoDataFrame) and c == like.geometry.name:
            continue
        values = (
            rows[c].reset_index(drop=True)
            if c in rows.columns
            else pd.Series([None] * len(rows), dtype=object)
        )
        try:  # typed as the held copy's column (text as str, times in ms), as a read is
            out[c] = values.astype(like[c].dtype).array
        except (TypeError, ValueError):
            out[c] = values.to_numpy()
    if isinstance(like, gpd.GeoDataFrame):
        geoms = rows[gcol].to_numpy() if gcol is not None else [None] * len(rows)
        return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    return out


def _updated(
    df: pd.DataFrame, id_col: str, id_value: str, values: Mapping[str, Any]
) -> pd.DataFrame | None:
    """``df`` with ``values`` set on the rows where ``id_col == id_value``; None when a
    column is missing or a value does not fit (the caller reads the layer again)."""
    if any(c not in df.columns for c in values) or id_col not in df.columns:
        return None
    out = df.copy()
    rows = (out[id_col].astype(str) == str(id_value)).to_numpy()
    try:
        for col, value in values.items():
            dtype = out[col].dtype
            if isinstance(dtype, pd.DatetimeTZDtype) and isinstance(value, datetime):
                # as a read gives it back (whole milliseconds): a finer time does not
                # fit the column, and the copy was dropped and the table read again
                value = pd.Timestamp(value).tz_convert(dtype.tz).floor(dtype.unit)
            out.loc[rows, col] = value
    except (TypeError, ValueError):
        return None
    return out


def _check_names(table: RecordTable, row: Mapping[str, Any]) -> None:
    unknown = [c for c in row if c not in table.names]
    if unknown:
        raise GridkitError(f"{table.name}: no column {', '.join(map(repr, unknown))}.")


def _where_sql(where: Mapping[str, Any]) -> str:
    return (" WHERE " + " AND ".join(f"{_ident(c)} = %s" for c in where)) if where else ""


def _create_sql(table: RecordTable) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a service table.

    Examples
    --------
    >>> from gridkit.store.base import Column
    >>> _create_sql(RecordTable("gridkit_n", (Column("k"), Column("n", int, default=0)), "k"))
    'CREATE TABLE IF NOT EXISTS "gridkit_n" ("k" text PRIMARY KEY, "n" bigint DEFAULT 0)'
    """
    types = {str: "text", int: "bigint", bool: "boolean", float: "double precision"}
    cols = []
    for c in table.columns:
        sql = f"{_ident(c.name)} {types[c.type]}"
        sql += " PRIMARY KEY" if c.name == table.key else ""
        sql += " NOT NULL" if c.required else ""
        if c.default is not None:
            d = c.default
            lit = str(d) if isinstance(d, int | float) else "'" + str(d).replace("'", "''") + "'"
            sql += f" DEFAULT {lit}"
        sql += " UNIQUE" if c.unique else ""
        cols.append(sql)
    return f"CREATE TABLE IF NOT EXISTS {_ident(table.name)} ({', '.join(cols)})"
