"""Moving a workspace between a GeoPackage file and a PostGIS database, both ways.

:func:`load` copies every layer and ``gridkit_*`` service table (API keys, audit) of a
GeoPackage into a database, :func:`dump` the other way. Ids, times (UTC instants),
Chinese text and geometries (WGS84 doubles, as stored) come back identical; a layer
of the contract gains in the database the contract columns it lacked (empty).
"""

from __future__ import annotations

import sqlite3
import warnings
from contextlib import closing
from pathlib import Path

import pandas as pd
import pyogrio

from gridkit.errors import GridkitError, GridkitWarning, InputFileError
from gridkit.io import read_layer, write_layer
from gridkit.layers import LAYERS
from gridkit.store.gpkg import check_workspace
from gridkit.store.keys import KEYS
from gridkit.store.postgis import (
    PostGISStore,
    _connect_once,
    _create_sql,
    _ident,
    _psycopg,
    shown,
    upgrade,
)

__all__ = ["dump", "load", "refuse_replacing", "typed"]

#: the schema's own tables: not copied
_SCHEMA_TABLES = ("gridkit_layer_versions", "gridkit_revisions")
_SQLITE_TO_PG = {"INTEGER": "bigint", "REAL": "double precision", "BOOLEAN": "boolean"}
_PG_TO_SQLITE = {"bigint": "INTEGER", "integer": "INTEGER", "double precision": "REAL"}
#: a GeoPackage field's type (pyogrio's dtype) or a database column's, as a kind
_DTYPE_KIND = {"bool": "bool", "int64": "int", "int32": "int", "int16": "int"}
_PG_KIND = {"boolean": "bool", "bigint": "int", "integer": "int", "smallint": "int"}


def typed(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """``df`` with its columns of ``kinds`` (``bool``, ``int``, ``datetime``) in types
    that keep their gaps: nullable booleans and integers (GDAL reads a boolean with
    gaps as objects, an integer with gaps as floats) and times in UTC (an empty time
    column has no zone to read); other columns, and values that do not fit, as they are.

    Examples
    --------
    >>> df = pd.DataFrame({"ok": [True, None], "n": [3.0, None], "at": [None, None]})
    >>> typed(df, {"ok": "bool", "n": "int", "at": "datetime"}).dtypes.astype(str).tolist()
    ['boolean', 'Int64', 'datetime64[ms, UTC]']
    >>> typed(df.assign(n=[1.5, None]), {"n": "int"})["n"].tolist()  # kept: not integers
    [1.5, nan]
    """
    out = {}
    for col, kind in kinds.items():
        if col not in df.columns:
            continue
        s = df[col]
        try:
            if kind == "bool" and not pd.api.types.is_bool_dtype(s.dtype):
                out[col] = s.astype("boolean")
            elif kind == "int" and pd.api.types.is_float_dtype(s.dtype):
                out[col] = s.astype("Int64")  # refused (TypeError) for fractions
            elif kind == "datetime" and s.isna().all():
                out[col] = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ms, UTC]")
        except (TypeError, ValueError):
            continue
    return df.assign(**out) if out else df


def _kinds(path: Path, layer: str) -> dict[str, str]:
    """The kinds of a GeoPackage layer's columns: the contract's, else the field types
    the file declares (booleans, integers, times)."""
    info = pyogrio.read_info(path, layer=layer)
    kinds = {}
    for col, dtype in zip(info["fields"], info["dtypes"], strict=True):
        dtype = str(dtype)
        kind = _DTYPE_KIND.get(dtype, "datetime" if dtype.startswith("datetime") else None)
        if kind is not None:
            kinds[str(col)] = kind
    spec = LAYERS.get(layer)
    if spec is not None:
        kinds.update({c.name: c.kind for c in spec.columns if c.kind != "str"})
    return kinds


def _db_kinds(url: str, layer: str) -> dict[str, str]:
    """The kinds of a database table's columns (booleans, integers, times)."""
    psycopg, _ = _psycopg()
    with _connect_once(psycopg, url) as con:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_schema = current_schema() AND table_name = %s",
            (layer,),
        ).fetchall()
    return {
        str(c): _PG_KIND.get(str(t), "datetime" if str(t).startswith("timestamp") else "")
        for c, t in rows
        if str(t) in _PG_KIND or str(t).startswith("timestamp")
    }


def load(workspace: str | Path, url: str, *, replace: bool = False) -> dict[str, int]:
    """Copy a GeoPackage workspace into the database at ``url`` (schema upgraded first;
    each layer and service table replaced whole); rows copied per table.

    A database whose tables of those names hold rows is refused unless ``replace``
    (the rows stored there since, reports included, would be lost); a file with no
    layer of the contract is refused, its layers outside the contract are loaded with a
    warning; a column name a table cannot take is refused, naming the layer.

    Examples
    --------
    >>> load("demo-workspace/zhuzhou.gpkg", "postgresql://grid@localhost/zz")  # doctest: +SKIP
    {'admin_areas': 354, 'rivers': 77, ...}
    """
    path = check_workspace(workspace)
    layers = [str(n) for n, _ in pyogrio.list_layers(path) if not str(n).startswith("gridkit_")]
    _check_layers(path, layers)
    if not replace:
        with closing(sqlite3.connect(path)) as src:
            refuse_replacing(url, [*layers, *_sqlite_service_tables(src)])
    upgrade(url)
    counts: dict[str, int] = {}
    store = PostGISStore(url)
    try:
        for name in layers:
            df = typed(read_layer(path, name, check=False), _kinds(path, name))
            store.save_layer(name, df)
            counts[name] = len(df)
        store.analyze(layers)  # the planner's statistics: indexed lookups from the start
    finally:
        store.close()
    psycopg, _ = _psycopg()
    with (
        closing(sqlite3.connect(path)) as src,
        _connect_once(psycopg, url) as con,
        con.transaction(),
    ):
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


#: the layers ``gridkit publish`` keeps beside the contract (``gridkit.versions``): the
#: versions published and every unit of each; the service reads them (``GET /versions``,
#: restore), so they are loaded as they are, without a word
PUBLISH_HISTORY = ("versions", "unit_versions")


def _check_layers(path: Path, layers: list[str]) -> None:
    """Refuse a file with no layer of the contract, or a column name no table can
    take; warn of layers outside the contract (loaded as tables of their own)."""
    foreign = [n for n in layers if n not in LAYERS and n not in PUBLISH_HISTORY]
    if layers and len(foreign) + sum(n in PUBLISH_HISTORY for n in layers) == len(layers):
        raise InputFileError(
            f"{path}: no layer of the gridkit contract (it has {', '.join(layers)}).",
            hint=f"Load a gridkit workspace (layers {', '.join(list(LAYERS)[:4])}, ...), "
            "e.g. one made by gridkit demo or gridkit db dump.",
        )
    for name in layers:
        for col in [name, *pyogrio.read_info(path, layer=name)["fields"]]:
            try:
                _ident(str(col))
            except GridkitError:
                is_layer = col is name
                what = f"layer {name!r}" if is_layer else f"column {col!r} of layer {name!r}"
                fix = (
                    "Rename the layer in the file (e.g. in QGIS)"
                    if is_layer
                    else f"Rename it in the file (in QGIS, or: gridkit check {path}:{name} "
                    f"-l {name} --columns {col}=name -o {name}.gpkg writes the layer renamed)"
                )
                raise InputFileError(
                    f"{path}: the name of {what} is not a plain name (letters, digits, _), "
                    "which a database table takes; nothing was loaded.",
                    hint=f"{fix}, then load again.",
                ) from None
    if foreign:
        warnings.warn(
            f"{path}: {', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not "
            "in the gridkit contract: loaded as tables of their own, which the service "
            "does not use.",
            GridkitWarning,
            stacklevel=3,
        )


def refuse_replacing(url: str, tables: list[str]) -> None:
    """Refuse to replace tables of the database that hold rows (what is lost named):
    the check of ``gridkit db load`` and ``gridkit national load`` before they make the
    tables again.

    Examples
    --------
    >>> refuse_replacing("postgresql://grid@db/zz", ["units"])  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    gridkit.errors.InputFileError: postgresql://grid@db/zz already holds units (2,407 rows); ...
    """
    psycopg, _ = _psycopg()
    with _connect_once(psycopg, url) as con:
        present = [
            str(r[0])
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_name = ANY(%s)",
                (tables,),
            ).fetchall()
        ]
        rows = {
            t: int(con.execute(f"SELECT count(*) FROM {_ident(t)}").fetchone()[0]) for t in present
        }
    full = {t: n for t, n in rows.items() if n}
    if full:
        listed = ", ".join(f"{t} ({n:,} rows)" for t, n in full.items())
        raise InputFileError(
            f"{shown(url)} already holds {listed}; loading replaces them whole, and rows "
            "stored there since (reports, keys) would be lost. Nothing was loaded.",
            hint=f"Keep a copy first (gridkit db dump {shown(url)} before.gpkg), then "
            "load again with --replace; or load into a new database.",
        )


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
            write_layer(typed(df, _db_kinds(url, name)), partial, name)
            counts[name] = len(df)
    finally:
        store.close()
    if not counts:
        raise InputFileError(f"{url}: no layer to dump.", hint="Load one first: gridkit db load.")
    psycopg, _ = _psycopg()
    with _connect_once(psycopg, url) as con, closing(sqlite3.connect(partial)) as dst:
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
        dst.commit()
    partial.replace(out)
    return counts


def _sqlite_value(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[attr-defined]
    return value
