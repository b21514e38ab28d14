"""Moving a workspace between a GeoPackage file and a PostGIS database, both ways.

:func:`load` copies every layer and ``gridkit_*`` service table (API keys, audit) of a
GeoPackage into a database, :func:`dump` the other way. Ids, times (UTC instants),
Chinese text and geometries (WGS84 doubles, as stored) come back identical; a layer
of the contract gains in the database the contract columns it lacked (empty).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pyogrio

from gridkit.errors import InputFileError
from gridkit.io import read_layer, write_layer
from gridkit.store.gpkg import check_workspace
from gridkit.store.keys import KEYS
from gridkit.store.postgis import (
    PostGISStore,
    _connect_once,
    _create_sql,
    _ident,
    _psycopg,
    upgrade,
)

__all__ = ["dump", "load"]

#: the schema's own tables: not copied
_SCHEMA_TABLES = ("gridkit_layer_versions", "gridkit_revisions")
_SQLITE_TO_PG = {"INTEGER": "bigint", "REAL": "double precision", "BOOLEAN": "boolean"}
_PG_TO_SQLITE = {"bigint": "INTEGER", "integer": "INTEGER", "double precision": "REAL"}


def load(workspace: str | Path, url: str) -> dict[str, int]:
    """Copy a GeoPackage workspace into the database at ``url`` (schema upgraded first;
    each layer and service table replaced whole); rows copied per table.

    Examples
    --------
    >>> load("demo-workspace/zhuzhou.gpkg", "postgresql://grid@localhost/zz")  # doctest: +SKIP
    {'admin_areas': 354, 'rivers': 77, ...}
    """
    path = check_workspace(workspace)
    upgrade(url)
    counts: dict[str, int] = {}
    store = PostGISStore(url)
    try:
        for name, _ in pyogrio.list_layers(path):
            name = str(name)
            if name.startswith("gridkit_"):
                continue
            df = read_layer(path, name, check=False)
            store.save_layer(name, df)
            counts[name] = len(df)
    finally:
        store.close()
    psycopg, _ = _psycopg()
    with sqlite3.connect(path) as src, _connect_once(psycopg, url) as con, con.transaction():
        for name in _sqlite_service_tables(src):
            info = src.execute(f"PRAGMA table_info({_ident(name)})").fetchall()
            cols = [str(r[1]) for r in info]
            rows = src.execute(f"SELECT * FROM {_ident(name)}").fetchall()
            con.execute(f"DROP TABLE IF EXISTS {_ident(name)}")
            if name == KEYS.name:
                con.execute(_create_sql(KEYS))
            else:
                defs = [
                    f"{_ident(str(r[1]))} {_SQLITE_TO_PG.get(str(r[2]).upper(), 'text')}"
                    + (" PRIMARY KEY" if r[5] == 1 else "")
                    for r in info
                ]
                con.execute(f"CREATE TABLE {_ident(name)} ({', '.join(defs)})")
            if rows:
                names = ", ".join(_ident(c) for c in cols)
                with con.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {_ident(name)} ({names}) VALUES "
                        f"({', '.join(['%s'] * len(cols))})",
                        rows,
                    )
            counts[name] = len(rows)
    return counts


def _sqlite_service_tables(con: sqlite3.Connection) -> list[str]:
    rows = con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'gridkit\\_%' "
        "ESCAPE '\\' ORDER BY rowid"
    ).fetchall()
    return [str(r[0]) for r in rows]


def dump(url: str, workspace: str | Path) -> dict[str, int]:
    """Copy the database at ``url`` into a new GeoPackage ``workspace`` (written beside
    as ``NAME.partial.gpkg`` and renamed when complete); rows copied per table.

    Examples
    --------
    >>> dump("postgresql://grid@localhost/zz", "zz-copy.gpkg")  # doctest: +SKIP
    {'admin_areas': 354, 'rivers': 77, ...}
    """
    out = Path(workspace)
    if out.exists():
        raise InputFileError(
            f"{out}: already exists.", hint="Name a new file (a dump never overwrites)."
        )
    partial = out.with_name(out.stem + ".partial.gpkg")  # GDAL names the format by suffix
    partial.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    store = PostGISStore(url)
    try:
        for name in store.layers():
            df = store.read(name)
            write_layer(df, partial, name)
            counts[name] = len(df)
    finally:
        store.close()
    if not counts:
        raise InputFileError(f"{url}: no layer to dump.", hint="Load one first: gridkit db load.")
    psycopg, _ = _psycopg()
    with _connect_once(psycopg, url) as con, sqlite3.connect(partial) as dst:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_name LIKE 'gridkit\\_%%' AND NOT table_name = ANY(%s) "
            "ORDER BY table_name",
            (list(_SCHEMA_TABLES),),
        ).fetchall()
        for (name,) in tables:
            info = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE "
                "table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
                (name,),
            ).fetchall()
            if name == KEYS.name:
                dst.execute(_create_sql(KEYS).replace("bigint", "INTEGER").replace("text", "TEXT"))
            else:
                defs = [f"{_ident(c)} {_PG_TO_SQLITE.get(t, 'TEXT')}" for c, t in info]
                dst.execute(f"CREATE TABLE {_ident(name)} ({', '.join(defs)})")
            cols = [c for c, _ in info]
            rows = con.execute(f"SELECT {', '.join(map(_ident, cols))} FROM {_ident(name)}")
            rows = [tuple(_sqlite_value(v) for v in r) for r in rows.fetchall()]
            dst.executemany(
                f"INSERT INTO {_ident(name)} VALUES ({', '.join('?' * len(cols))})", rows
            )
            counts[name] = len(rows)
    partial.replace(out)
    return counts


def _sqlite_value(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[attr-defined]
    return value
