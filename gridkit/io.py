"""Reading and writing layers: GeoPackage, GeoJSON, GeoParquet and Shapefile.

The format follows the file extension:

============  ===========================  =============================================
extension     format                       notes
============  ===========================  =============================================
``.gpkg``     GeoPackage (native)          many layers by name; a *workspace* is one file
``.geojson``  GeoJSON, RFC 7946            one layer per file, always WGS84
``.parquet``  GeoParquet                   one layer per file (geopandas/pyarrow)
``.shp``      Shapefile                    export only (with a warning); read with
                                           ``encoding="gbk"`` for Chinese GIS exports;
                                           gridkit's own cut names (``parent_cod``) are
                                           read back as the contract's
``.csv``      table (UTF-8 with BOM)       one table; points from ``lon``/``lat`` (or
                                           ``x``/``y``, or a ``wkt`` column)
``.xlsx``     Excel workbook               one table per sheet, points as for CSV
============  ===========================  =============================================

Files come as users have them: ``FILE.gpkg:LAYER`` names a layer in the path,
:class:`ColumnMap` renames columns (``名称`` -> ``name``) and maps coded values
(``区县`` -> ``county``) before the contract check, and a nullable contract column the
file lacks is read as nulls.

Single-layer formats hold several layers as sibling files: writing ``reaches`` and
``units`` to ``out.geojson`` writes ``out_reaches.geojson`` and ``out_units.geojson``,
and reading layer ``units`` from ``out.geojson`` finds ``out_units.geojson``.

Times in a CSV or workbook that carry no zone (``2026-03-01 08:00``, as exports of
Chinese systems write them) are Beijing time (:data:`TABLE_TZ`, ``Asia/Shanghai``,
as the 12345 importer reads them); a time with an offset (``+08:00``, ``Z``) is
taken as written. Everything is kept in UTC; a workbook gridkit writes holds Beijing
wall time, so it reads back the same. GeoPackage, GeoParquet and GeoJSON times are
read as stored.

Every read converts to WGS84 honouring a declared datum (``crs=``, see
:mod:`gridkit.crs`) and checks the layer against the data contract
(:func:`gridkit.layers.check_layer`) when its name is a contract layer.

Examples
--------
>>> import tempfile, pathlib, geopandas as gpd
>>> from shapely import LineString
>>> rivers = gpd.GeoDataFrame({"river_id": ["R1"], "name": ["湘江"]},
...                           geometry=[LineString([(113.0, 27.8), (113.1, 27.9)])], crs=4326)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ws.gpkg"
>>> _ = write_layer(rivers, path, "rivers")
>>> read_layer(path, "rivers").loc[0, "name"]
'湘江'
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridkit.crs import WGS84, parse_crs, to_wgs84
from gridkit.errors import (
    GridkitError,
    GridkitWarning,
    InputFileError,
    InvalidLayerError,
    LayerNotFoundError,
    UnsupportedFormatError,
)
from gridkit.geojson import to_geojson
from gridkit.layers import LAYERS, LayerSpec, check_layer

__all__ = [
    "FORMATS",
    "ColumnMap",
    "format_of",
    "layer_path",
    "list_layers",
    "read_input",
    "read_layer",
    "read_layers",
    "read_table",
    "split_source",
    "write_layer",
    "write_layers",
    "write_table",
]

PathLike = str | os.PathLike

FORMATS = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".shp": "shapefile",
    ".csv": "csv",
    ".xlsx": "xlsx",
}
#: formats holding several layers by name (GeoPackage layers, workbook sheets)
MULTI_LAYER = {"gpkg", "xlsx"}
#: attribute tables (with points from coordinate columns)
TABLES = {"csv", "xlsx"}
#: the zone of times without one in a CSV or workbook a user hands in (exports of
#: Chinese systems hold Beijing wall time); ``gridkit.ops.times.LOCAL_TZ``, the
#: 12345 importer's, is the same zone
TABLE_TZ = "Asia/Shanghai"


def format_of(path: PathLike) -> str:
    """The format name for a path, from its extension.

    Raises
    ------
    UnsupportedFormatError
        For any other extension.

    Examples
    --------
    >>> format_of("out.GeoJSON"), format_of("ws.gpkg"), format_of("units.parquet")
    ('geojson', 'gpkg', 'parquet')
    >>> format_of("lineage.csv"), format_of("台账.xlsx")
    ('csv', 'xlsx')
    >>> format_of("units.kml")
    Traceback (most recent call last):
    ...
    gridkit.errors.UnsupportedFormatError: units.kml: unsupported file type '.kml'.
    Hint: Use .gpkg (GeoPackage, several layers), .geojson, .parquet ...
    """
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        raise UnsupportedFormatError(
            f"{path}: unsupported file type {ext or '(no extension)'!r}.",
            hint="Use .gpkg (GeoPackage, several layers), .geojson, .parquet "
            "(GeoParquet), .shp (Shapefile, export only), or .csv / .xlsx for tables.",
        ) from None


def layer_path(path: PathLike, layer: str) -> Path:
    """Sibling file holding ``layer`` for single-layer formats (``out_units.geojson``).

    Examples
    --------
    >>> layer_path("exports/out.geojson", "units").as_posix()
    'exports/out_units.geojson'
    """
    p = Path(path)
    return p.with_name(f"{p.stem}_{layer}{p.suffix}")


def split_source(path: PathLike) -> tuple[Path, str | None]:
    """Split ``FILE.gpkg:LAYER`` into the file and the layer named in it.

    A path without a layer part (or an existing file whose name holds a colon) comes
    back whole with ``None``.

    Examples
    --------
    >>> split_source("exports/ws.gpkg:units")
    (PosixPath('exports/ws.gpkg'), 'units')
    >>> split_source("台账.xlsx:花名册"), split_source("ws.gpkg")
    ((PosixPath('台账.xlsx'), '花名册'), (PosixPath('ws.gpkg'), None))
    """
    text = os.fspath(path)
    head, sep, tail = text.rpartition(":")
    if (
        sep
        and tail
        and not re.search(r"[/\\]", tail)
        and Path(head).suffix.lower() in FORMATS
        and not Path(text).exists()
    ):
        return Path(head), tail
    return Path(text), None


def list_layers(path: PathLike) -> list[str]:
    """Layer names in a file: GeoPackage layers, workbook sheets; a single-layer file
    lists its siblings ``NAME_layer`` or else its own stem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ws, out = pathlib.Path(tmp) / "ws.gpkg", pathlib.Path(tmp) / "out.geojson"
    ...     _ = write_layers({"units": grid_units(2, 2)}, ws)
    ...     _ = write_layers({"units": grid_units(2, 2), "reaches": grid_units(1, 1)}, out)
    ...     list_layers(ws), list_layers(out)
    (['units'], ['reaches', 'units'])
    """
    p = Path(path)
    fmt = format_of(p)
    if fmt in MULTI_LAYER:
        return _layer_names(p, fmt)
    names = [layer for layer in LAYERS if layer_path(p, layer).exists()]
    return names or ([p.stem] if p.exists() else [])


def _layer_names(p: Path, fmt: str) -> list[str]:
    _require_file(p)
    try:
        if fmt == "xlsx":
            with pd.ExcelFile(p, engine="openpyxl") as book:
                return [str(n) for n in book.sheet_names]
        return [str(name) for name, _ in pyogrio.list_layers(p)]
    except (pyogrio.errors.DataSourceError, ValueError, OSError, KeyError) as exc:
        raise InputFileError(
            f"{p}: cannot open ({exc}).",
            hint="Is the file complete and of the type its extension says?",
        ) from exc


def _require_file(p: Path) -> None:
    if not p.exists():
        raise InputFileError(f"{p}: no such file.", hint="Check the path and the extension.")


def _resolve_single(p: Path, layer: str | None) -> Path:
    if p.exists():
        return p
    if layer is not None and layer_path(p, layer).exists():
        return layer_path(p, layer)
    _require_file(p)
    return p


def read_layer(
    path: PathLike,
    layer: str | None = None,
    *,
    crs: object = None,
    encoding: str | None = None,
    columns: ColumnMap | Mapping[str, str] | None = None,
    check: bool | str = True,
    repair: bool = False,
    bbox: tuple[float, float, float, float] | None = None,
    require: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read one layer as a GeoDataFrame in WGS84 (a DataFrame for attribute tables).

    Times of the contract's datetime columns in a CSV or workbook are Beijing time
    (:data:`TABLE_TZ`) unless they carry an offset (``+08:00``, ``Z``); every time
    comes back in UTC. Times in GeoPackage, GeoParquet and GeoJSON are read as stored.

    Parameters
    ----------
    path
        ``.gpkg``, ``.geojson``, ``.parquet``, ``.shp``, ``.csv`` or ``.xlsx`` file, or
        ``FILE:LAYER``.
    layer
        Layer (GeoPackage) or sheet (workbook) name; it must exist. In a file with one
        layer it may be omitted. For single-layer formats the file ``path`` or its
        sibling ``STEM_layer.ext`` is read.
    crs
        Declared datum of the input: an EPSG code, ``"gcj02"`` or ``"bd09"``. Lon/lat
        columns of a table are WGS84 unless declared otherwise.
    encoding
        Text encoding of Shapefiles without a ``.cpg`` file and of CSV files (default
        UTF-8), e.g. ``"gbk"``. GeoPackage, GeoJSON and GeoParquet are always UTF-8.
    columns
        A :class:`ColumnMap` (or a plain ``{source: contract}`` mapping) applied before
        the check: renames columns and maps coded values.
    check
        Check against the contract layer ``layer`` (``True``), a named contract layer
        (a string), or not at all (``False``).
    repair
        Repair invalid geometries (see :func:`gridkit.layers.check_layer`).
    bbox
        Only read features intersecting this lon/lat box (GeoPackage index).
    require
        The contract columns the caller uses, if fewer than the contract requires
        (see :func:`gridkit.layers.check_layer`).

    Raises
    ------
    InputFileError, UnsupportedFormatError, LayerNotFoundError, CRSError,
    InvalidLayerError

    Examples
    --------
    A round trip through a GeoPackage: back in WGS84, checked against the contract;
    a layer the file does not hold is named with the ones it does:

    >>> import tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ws = write_layer(grid_units(2, 2).to_crs(32649), pathlib.Path(tmp) / "ws.gpkg", "units")
    ...     units = read_layer(ws, "units")
    ...     read_layer(ws, "rivers")
    Traceback (most recent call last):
    ...
    gridkit.errors.LayerNotFoundError: .../ws.gpkg has no layer 'rivers'.
    Hint: Layers present: units.
    >>> len(units), units.crs.to_epsg(), units["unit_id"].iloc[-1]
    (4, 4326, '430202001000003')

    A hotline export as it comes: Chinese headers, GCJ-02 lon/lat, no ``assignee_id``:

    >>> csv = pathlib.Path(tempfile.mkdtemp()) / "12345.csv"
    >>> _ = csv.write_text(
    ...     "编号,类别,来源,状态,时间,经度,纬度\\n"
    ...     "RX1,sewage,hotline,reported,2026-05-01 08:30+08:00,113.1553,27.8577\\n",
    ...     encoding="utf-8-sig")
    >>> names = ColumnMap.parse(["编号=report_id", "类别=category", "来源=source",
    ...                          "状态=status", "时间=reported_at"])
    >>> hotline = read_layer(csv, "reports", crs="gcj02", columns=names)
    >>> hotline.loc[0, "reported_at"], hotline["assignee_id"].isna().all()
    (Timestamp('2026-05-01 00:30:00+0000', tz='UTC'), np.True_)
    >>> round(float(hotline.geometry.x[0]), 4)  # GCJ-02 shifted back to WGS84
    113.1495
    """
    p, in_path = split_source(path)
    layer = layer if layer is not None else in_path
    name = check if isinstance(check, str) else (layer if check else None)
    opts = _ReadOptions(crs, encoding, ColumnMap.of(columns), repair, bbox, require)
    return _read(p, layer, name, opts, check=check is not False)


@dataclass(frozen=True)
class _ReadOptions:
    crs: object
    encoding: str | None
    columns: ColumnMap
    repair: bool
    bbox: tuple[float, float, float, float] | None
    require: Iterable[str] | None


def _read(
    p: Path, layer: str | None, name: str | None, opts: _ReadOptions, *, check: bool
) -> pd.DataFrame:
    """Read ``layer`` of ``p`` as contract layer ``name`` (its names, types and points),
    checked against the contract when ``check``."""
    fmt = format_of(p)
    df, source, layer_name = _read_raw(p, fmt, layer, encoding=opts.encoding, bbox=opts.bbox)
    if name is None and check and fmt in MULTI_LAYER and layer is None:
        name = layer_name
    spec = LAYERS.get(name) if name is not None else None
    crs = opts.crs
    if fmt == "shapefile" and spec is not None:
        df = _untruncate(df, spec)
    df = opts.columns.apply(df, source=source)
    if fmt in TABLES:
        df = _table_frame(df, spec, source=source, crs=crs)
    df = _georeference(df, fmt, crs=crs, source=source)
    if spec is not None:
        if spec.geometry is None and isinstance(df, gpd.GeoDataFrame):
            df = pd.DataFrame(df.drop(columns=df.geometry.name))
        df = _coerce(df, spec.name, naive_tz=TABLE_TZ if fmt in TABLES else None)
    if spec is not None and check:
        df = check_layer(df, spec.name, source=source, repair=opts.repair, require=opts.require)
    return df


def _read_raw(
    p: Path, fmt: str, layer: str | None, *, encoding: str | None, bbox
) -> tuple[pd.DataFrame, str, str | None]:
    """The file's frame as stored, where it came from, and the layer read."""
    if fmt == "parquet":
        p = _resolve_single(p, layer)
        try:
            return gpd.read_parquet(p, bbox=bbox), str(p), None
        except ValueError:  # plain Parquet without geometry metadata: an attribute table
            return pd.read_parquet(p), str(p), None
    if fmt in TABLES:
        if fmt == "csv":
            p = _resolve_single(p, layer)
            return _read_csv(p, encoding), str(p), None
        sheet = _pick_layer(p, fmt, layer)
        return _read_xlsx(p, sheet), f"{p}, sheet {sheet!r}", sheet
    layer_name = None
    if fmt in MULTI_LAYER:
        layer_name = _pick_layer(p, fmt, layer)
    else:
        p = _resolve_single(p, layer)
    # GeoPackage, GeoJSON and GeoParquet are UTF-8 by definition (and pyogrio's Arrow
    # reader takes no encoding): the encoding is for Shapefile .dbf files
    kwargs = {"encoding": encoding} if encoding and fmt == "shapefile" else {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            df = pyogrio.read_dataframe(
                p, layer=layer_name, bbox=bbox, use_arrow=fmt != "shapefile", **kwargs
            )
        for w in caught:
            if not str(w.message).startswith("Error parsing datetimes"):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if fmt == "gpkg" and caught:
            df = _repair_times(df, p, layer_name)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{p}: text is not in the expected encoding ({exc.reason}).",
            hint="Chinese GIS exports are often GBK: pass encoding='gbk' / --encoding gbk.",
        ) from exc
    except pyogrio.errors.DataSourceError as exc:
        raise InputFileError(
            f"{p}: cannot open ({exc}).",
            hint="Is the file complete and of the type its extension says?",
        ) from exc
    if fmt == "shapefile" and encoding is None:
        _check_mojibake(df, p)
    return df, str(p), layer_name


#: a second of 60 as GDAL writes a time whose milliseconds round up (59.9995 s)
_SECOND_60 = re.compile(r":60(?:\.0*)?(?=[Zz+-]|$)")


def _repair_times(df: pd.DataFrame, p: Path, layer: str | None) -> pd.DataFrame:
    """Time fields GDAL gave back as text because a value has a 60th second (GDAL up
    to 3.12 wrote ``03:17:60.000Z`` for 03:17:59.9996; gridkit now writes milliseconds
    itself): such a value is read as 59.999 s, the rest as written."""
    info = pyogrio.read_info(p, layer=layer)
    declared = dict(zip(info["fields"], info["dtypes"], strict=True))
    for c in df.columns:
        if str(declared.get(c, "")).startswith("datetime") and not (
            pd.api.types.is_datetime64_any_dtype(df[c].dtype)
        ):
            fixed = df[c].astype("string").str.replace(_SECOND_60, ":59.999", regex=True)
            df[c] = pd.to_datetime(fixed, utc=True, format="ISO8601")
    return df


def _ms_times(df: pd.DataFrame) -> pd.DataFrame:
    """Time columns cut to whole milliseconds, the GeoPackage's precision (GDAL rounds
    the rest, and wrote 59.9996 s as a 60th second no reader takes)."""
    cut = {
        c: df[c].dt.floor("ms")
        for c in df.columns
        if pd.api.types.is_datetime64_any_dtype(df[c].dtype)
        and (df[c].dt.microsecond % 1000 != 0).any()
    }
    return df.assign(**cut) if cut else df


def _georeference(df: pd.DataFrame, fmt: str, *, crs: object, source: str) -> pd.DataFrame:
    # shapely's test, not GeoSeries.notna(): that warns of empty geometries (which count)
    if isinstance(df, gpd.GeoDataFrame) and not shapely.is_missing(df.geometry.array).all():
        if fmt == "geojson" and crs is None and df.crs is None:
            df = df.set_crs(WGS84)  # RFC 7946: GeoJSON is WGS84 unless declared otherwise
        return to_wgs84(df, crs=crs, source=source)
    if isinstance(df, gpd.GeoDataFrame) and df.crs is None:
        return df.set_crs(WGS84)
    return df


def _pick_layer(p: Path, fmt: str, layer: str | None) -> str:
    names = _layer_names(p, fmt)
    kind = "sheet" if fmt == "xlsx" else "layer"
    if layer is None:
        if len(names) == 1:
            return names[0]
        raise LayerNotFoundError(
            f"{p} holds {len(names)} {kind}s ({', '.join(names)}); which one?",
            hint=f"Name the {kind}, e.g. read_layer(path, 'units') or FILE{p.suffix}:units "
            "/ --layer units.",
        )
    if layer not in names:
        raise LayerNotFoundError(
            f"{p} has no {kind} {layer!r}.",
            hint=f"{kind.capitalize()}s present: {', '.join(names) or 'none'}.",
        )
    return layer


@dataclass(frozen=True)
class ColumnMap:
    """How a user's file maps onto the contract: column renames and coded values.

    ``columns`` maps a source column to its contract name (``名称`` -> ``name``);
    ``values`` maps, per contract column, the values found to contract values
    (``level``: ``区县`` -> ``county``). Values not in the map are left for the contract
    check to report. Built from ``SRC=DST`` strings and TOML files by :meth:`parse`.

    Examples
    --------
    >>> import pandas as pd
    >>> m = ColumnMap({"名称": "name", "级别": "level"}, {"level": {"区县": "county"}})
    >>> m.apply(pd.DataFrame({"名称": ["荷塘区"], "级别": ["区县"]})).to_dict("records")
    [{'name': '荷塘区', 'level': 'county'}]
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.columns or self.values)

    @classmethod
    def of(cls, value: ColumnMap | Mapping[str, str] | None) -> ColumnMap:
        """A :class:`ColumnMap` from itself, a ``{source: contract}`` mapping or None.

        Examples
        --------
        >>> ColumnMap.of({"名称": "name"}).columns, bool(ColumnMap.of(None))
        ({'名称': 'name'}, False)
        """
        if isinstance(value, ColumnMap):
            return value
        return cls(dict(value or {}))

    @classmethod
    def parse(cls, specs: Iterable[str | os.PathLike] | str | None) -> ColumnMap:
        """Read ``SRC=DST`` strings and TOML mapping files (what ``--columns`` takes).

        A TOML file has a ``[columns]`` table (``名称 = "name"``) and ``[values.COLUMN]``
        tables (``区县 = "county"``), keyed by the contract column.

        Raises
        ------
        GridkitError
            A spec that is neither ``SRC=DST`` nor a TOML file, or a malformed file.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> toml = pathlib.Path(tempfile.mkdtemp()) / "mapping.toml"
        >>> _ = toml.write_text('[columns]\\n级别 = "level"\\n[values.level]\\n村 = "village"\\n',
        ...                     encoding="utf-8")
        >>> m = ColumnMap.parse(["名称=name", str(toml)])
        >>> m.columns, m.values
        ({'名称': 'name', '级别': 'level'}, {'level': {'村': 'village'}})
        >>> ColumnMap.parse(["名称"])
        Traceback (most recent call last):
        ...
        gridkit.errors.GridkitError: --columns '名称' is neither SRC=DST nor a .toml file.
        Hint: Rename with --columns 名称=name (repeatable) or a mapping file ...
        """
        if specs is None:
            return cls()
        if isinstance(specs, str | os.PathLike):
            specs = [specs]
        out = cls()
        for spec in specs:
            text = os.fspath(spec)
            if text.lower().endswith(".toml"):
                out = out.merge(cls.from_toml(text))
            elif "=" in text and all(part.strip() for part in text.split("=", 1)):
                src, dst = (part.strip() for part in text.split("=", 1))
                out = out.merge(cls({src: dst}))
            else:
                raise GridkitError(
                    f"--columns {text!r} is neither SRC=DST nor a .toml file.",
                    hint="Rename with --columns 名称=name (repeatable) or a mapping file "
                    "with [columns] and [values.COLUMN] tables: --columns mapping.toml.",
                )
        return out

    @classmethod
    def from_toml(cls, path: PathLike) -> ColumnMap:
        """Read a TOML mapping file (see :meth:`parse`).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> toml = pathlib.Path(tempfile.mkdtemp()) / "m.toml"
        >>> _ = toml.write_text('[columns]\\n名称 = "name"\\n', encoding="utf-8")
        >>> ColumnMap.from_toml(toml).columns
        {'名称': 'name'}
        """
        p = Path(path)
        _require_file(p)
        try:
            data = tomllib.loads(_quote_bare_keys(p.read_text(encoding="utf-8-sig")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise GridkitError(
                f"{p}: not a valid UTF-8 TOML mapping ({exc}).",
                hint='Write [columns] 名称 = "name" and [values.level] 区县 = "county" tables.',
            ) from exc
        columns, values = data.get("columns", {}), data.get("values", {})
        tables = [columns, *values.values()] if isinstance(values, dict) else [None]
        if not all(
            isinstance(t, dict) and all(isinstance(v, str) for v in t.values()) for t in tables
        ):
            raise GridkitError(
                f"{p}: [columns] and [values.COLUMN] must map names to text.",
                hint='e.g. [columns] 名称 = "name" and [values.level] 区县 = "county".',
            )
        return cls(dict(columns), {str(k): dict(v) for k, v in values.items()})

    def merge(self, other: ColumnMap) -> ColumnMap:
        """Both maps; ``other`` wins where they disagree.

        Examples
        --------
        >>> ColumnMap({"a": "x"}).merge(ColumnMap({"b": "y"})).columns
        {'a': 'x', 'b': 'y'}
        """
        values = {k: dict(v) for k, v in self.values.items()}
        for col, mapping in other.values.items():
            values.setdefault(col, {}).update(mapping)
        return ColumnMap({**self.columns, **other.columns}, values)

    def apply(self, df: pd.DataFrame, *, source: str = "<data>") -> pd.DataFrame:
        """Rename the columns present and map the coded values (a new frame).

        Raises
        ------
        InvalidLayerError
            When a rename would give two columns one name.

        Examples
        --------
        >>> import pandas as pd
        >>> ColumnMap({"名称": "name"}).apply(pd.DataFrame({"名称": ["a"], "name": ["b"]}))
        Traceback (most recent call last):
        ...
        gridkit.errors.InvalidLayerError: <data>: column '名称' would be renamed to 'name', ...
        Hint: Map only one column to 'name' (or drop the other one).
        """
        if not self:
            return df
        rename = {s: d for s, d in self.columns.items() if s in df.columns and s != d}
        kept = [c for c in df.columns if c not in rename]
        for src, dst in rename.items():
            clash = [c for c in kept if c == dst] + [s for s, d in rename.items() if d == dst]
            if len(clash) > 1:
                raise InvalidLayerError(
                    f"{source}: column {src!r} would be renamed to {dst!r}, which "
                    f"{', '.join(repr(c) for c in clash if c != src)} also gives.",
                    hint=f"Map only one column to {dst!r} (or drop the other one).",
                )
        out = df.rename(columns=rename) if rename else df.copy()
        for col, mapping in self.values.items():
            if col in out.columns and mapping:
                s = out[col]
                mapped = s.astype("string").str.strip().map(mapping)
                out[col] = mapped.astype(object).where(mapped.notna(), s)
        return out


def _text_table(table: object) -> bool:
    return isinstance(table, dict) and all(isinstance(v, str) for v in table.values())


_KEY_LINE = re.compile(r"^([ \t]*)([^\s\"'\[#=][^=\n]*?)([ \t]*=)", re.MULTILINE)
_BARE_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def _quote_bare_keys(text: str) -> str:
    """Quote keys TOML does not allow bare (``名称 = "name"`` is how people write a
    mapping; TOML wants ``"名称" = "name"``)."""

    def quote(m: re.Match) -> str:
        key = m.group(2)
        if _BARE_KEY.fullmatch(key):
            return m.group(0)
        escaped = key.replace("\\", "\\\\").replace('"', '\\"')
        return f'{m.group(1)}"{escaped}"{m.group(3)}'

    return _KEY_LINE.sub(quote, text)


def _untruncate(df: pd.DataFrame, spec: LayerSpec) -> pd.DataFrame:
    """Give back contract names a Shapefile cut to 10 bytes (``parent_cod``)."""
    rename = {}
    for col in spec.columns:
        short = col.name.encode()[:10].decode(errors="ignore")
        if short != col.name and short in df.columns and col.name not in df.columns:
            rename[short] = col.name
    return df.rename(columns=rename) if rename else df


def _read_csv(p: Path, encoding: str | None) -> pd.DataFrame:
    try:  # all text first: codes such as 007 or 430202001001 keep their digits
        return pd.read_csv(p, dtype=str, encoding=encoding or "utf-8-sig", skipinitialspace=True)
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{p}: text is not {encoding or 'UTF-8'} ({exc.reason} at byte {exc.start}).",
            hint="Chinese spreadsheets are often saved as GBK: pass encoding='gbk' / "
            "--encoding gbk (or save the file as UTF-8 CSV).",
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, LookupError) as exc:
        raise InputFileError(
            f"{p}: cannot read as CSV ({exc}).",
            hint="Check that the file is a comma-separated table with one header line.",
        ) from exc


def _read_xlsx(p: Path, sheet: str) -> pd.DataFrame:
    try:
        return pd.read_excel(p, sheet_name=sheet, dtype=str, engine="openpyxl")
    except (ValueError, OSError, KeyError) as exc:
        raise InputFileError(
            f"{p}: cannot read sheet {sheet!r} ({exc}).",
            hint="Is the file an .xlsx workbook (Excel 2007 or later)?",
        ) from exc


_LEADING_ZERO = re.compile(r"^[+-]?0\d")


def _typed(df: pd.DataFrame, text: set[str]) -> pd.DataFrame:
    """Numbers and booleans from a table read as text, except the ``text`` columns and
    values such as ``007`` whose digits are an identifier."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if col in text or not pd.api.types.is_string_dtype(s.dtype) or s.isna().all():
            continue
        lower = s.str.strip().str.lower()
        if lower.dropna().isin(["true", "false"]).all():
            out[col] = lower.map({"true": True, "false": False}).astype("boolean")
            continue
        num = pd.to_numeric(s.str.strip(), errors="coerce")
        if num.notna().sum() != s.notna().sum() or s.str.match(_LEADING_ZERO).any():
            continue
        integral = num.notna().any() and bool((num.dropna() % 1 == 0).all())
        out[col] = num.astype("Int64" if num.isna().any() else "int64") if integral else num
    return out


_COORDS = (
    (("lon", "lng", "long", "longitude", "经度"), ("lat", "latitude", "纬度")),
    (("x",), ("y",)),
)
_WKT = ("wkt", "geometry", "geom", "the_geom", "shape")


def _table_frame(
    df: pd.DataFrame, spec: LayerSpec | None, *, source: str, crs: object
) -> pd.DataFrame:
    """A table's values typed, and its points from coordinate or WKT columns."""
    text = {c.name for c in spec.columns if c.kind == "str"} if spec else set()
    df = _typed(df, text)
    if spec is not None and spec.geometry is None:
        return df
    by_name = {str(c).strip().lower(): c for c in df.columns}
    for xs, ys in _COORDS:
        x = next((by_name[n] for n in xs if n in by_name), None)
        y = next((by_name[n] for n in ys if n in by_name), None)
        if x is not None and y is not None:
            geoms = _points(df, x, y, source=source)
            return _with_geometry(df.drop(columns=[x, y]), geoms, crs=crs)
    wkt = next((by_name[n] for n in _WKT if n in by_name), None)
    if wkt is not None:
        raw = df[wkt].astype(object).where(df[wkt].notna(), None)
        geoms = shapely.from_wkt(raw.to_numpy(), on_invalid="ignore")
        bad = df.index[raw.notna().to_numpy() & shapely.is_missing(geoms)]
        _refuse_rows(source, bad, f"{wkt!r} is not WKT", "Write points as POINT (113.1 27.8).")
        return _with_geometry(df.drop(columns=[wkt]), geoms, crs=crs)
    if spec is None:
        return df
    if not spec.geometry_nullable:
        raise InvalidLayerError(
            f"{source}: layer {spec.name!r} needs locations, and the table has no lon/lat, "
            "x/y or WKT column.",
            hint=f"Columns present: {', '.join(map(str, df.columns))}. Add lon and lat "
            "columns (or rename yours with --columns 经度=lon --columns 纬度=lat).",
        )
    return gpd.GeoDataFrame(df, geometry=[None] * len(df), crs=WGS84)


def _points(df: pd.DataFrame, x: str, y: str, *, source: str) -> np.ndarray:
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    for col, values in ((x, xs), (y, ys)):
        bad = df.index[df[col].notna().to_numpy() & np.isnan(values)]
        _refuse_rows(source, bad, f"{col!r} is not a number", "Coordinates are decimal numbers.")
    half = np.isnan(xs) != np.isnan(ys)
    _refuse_rows(
        source,
        df.index[half],
        f"only one of {x!r}, {y!r} is given",
        "Give both coordinates or neither (a report without a location).",
    )
    geoms = shapely.points(xs, ys)
    geoms[np.isnan(xs)] = None
    return geoms


def _refuse_rows(source: str, rows: pd.Index, what: str, hint: str) -> None:
    if len(rows):
        # index 0 is the line after the header: line 2 of the file
        lines = ", ".join(str(int(i) + 2) for i in rows[:10]) + (" ..." if len(rows) > 10 else "")
        raise InputFileError(f"{source}: line {lines}: {what}.", hint=hint)


def _with_geometry(df: pd.DataFrame, geoms: np.ndarray, *, crs: object) -> gpd.GeoDataFrame:
    """Points labelled WGS84 (lon/lat), or the declared CRS when it is a projected one;
    a declared GCJ-02/BD-09 is shifted by :func:`gridkit.crs.to_wgs84` afterwards."""
    declared = parse_crs(crs) if crs is not None else None
    label = declared if declared is not None and not isinstance(declared, str) else WGS84
    return gpd.GeoDataFrame(df, geometry=geoms, crs=label)


def read_table(
    path: PathLike,
    layer: str | None = None,
    *,
    encoding: str | None = None,
    columns: ColumnMap | Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read a CSV file or a workbook sheet as it is: columns renamed, numbers typed.

    Codes with leading zeros stay text; no contract check and no geometry (use
    :func:`read_layer` for a contract layer, with points from lon/lat columns).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> csv = pathlib.Path(tempfile.mkdtemp()) / "loads.csv"
    >>> _ = csv.write_text("网格员,编号,负荷\\n张三,007,2.5\\n", encoding="utf-8")
    >>> read_table(csv, columns={"网格员": "name"}).to_dict("records")
    [{'name': '张三', '编号': '007', '负荷': 2.5}]
    """
    p, in_path = split_source(path)
    fmt = format_of(p)
    if fmt not in TABLES:
        raise UnsupportedFormatError(
            f"{p}: read_table reads .csv and .xlsx files.",
            hint="Read layers with read_layer.",
        )
    df, source, _ = _read_raw(p, fmt, layer or in_path, encoding=encoding, bbox=None)
    return _typed(ColumnMap.of(columns).apply(df, source=source), set())


def write_table(df: pd.DataFrame, path: PathLike, *, sheet: str | None = None) -> Path:
    """Write a table as ``.csv`` (UTF-8 with a BOM, so Excel shows Chinese) or as a
    sheet of an ``.xlsx`` workbook (other sheets kept). Returns the path.

    Points become ``lon``/``lat`` columns (WGS84), other geometries a ``wkt`` column;
    :func:`read_layer` reads both back. Excel has no time zones: datetimes go to a
    workbook as Beijing wall time (:data:`TABLE_TZ`, how :func:`read_layer` reads a
    time without a zone there), to a CSV in UTC with the offset written.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> lineage = pd.DataFrame({"old_id": ["U1"], "new_id": ["U2"], "relation": ["modified"],
    ...                         "share": [1.0]})
    >>> write_table(lineage, tmp / "lineage.csv").read_bytes()[:3]
    b'\\xef\\xbb\\xbf'
    >>> _ = write_table(lineage, tmp / "figures.xlsx", sheet="lineage")
    >>> read_layer(tmp / "figures.xlsx", "lineage")["relation"].tolist()
    ['modified']
    """
    p = Path(path)
    fmt = format_of(p)
    if fmt not in TABLES:
        raise UnsupportedFormatError(
            f"{p}: tables are written as .csv or .xlsx.", hint="Name the output .csv or .xlsx."
        )
    out = _flat(df)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        out.to_csv(p, index=False, encoding="utf-8-sig")
        return p
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert(TABLE_TZ).dt.tz_localize(None)
    append = p.exists()
    with pd.ExcelWriter(
        p,
        engine="openpyxl",
        mode="a" if append else "w",
        if_sheet_exists="replace" if append else None,
    ) as book:
        out.to_excel(book, sheet_name=sheet or p.stem[:31], index=False)
    return p


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(df, gpd.GeoDataFrame) or df._geometry_column_name not in df.columns:
        return pd.DataFrame(df).copy()
    if df.crs is not None and not df.crs.equals(WGS84):
        df = df.to_crs(WGS84)
    geoms = np.asarray(df.geometry.array)
    out = pd.DataFrame(df.drop(columns=df.geometry.name))
    kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
    if kinds <= {0}:  # points (or none): lon/lat, as spreadsheets and hotlines have them
        # empty points (POINT EMPTY) have no x: blank, as missing ones
        at = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        out["lon"] = np.where(at, shapely.get_x(np.where(at, geoms, None)), np.nan)
        out["lat"] = np.where(at, shapely.get_y(np.where(at, geoms, None)), np.nan)
    else:
        out["wkt"] = shapely.to_wkt(geoms, rounding_precision=7)
    return out


def _check_mojibake(df: pd.DataFrame, p: Path) -> None:
    """Refuse GBK text that GDAL decoded as Latin-1 (no ``.cpg`` file): never silent."""
    if p.with_suffix(".cpg").exists() or p.with_suffix(".CPG").exists():
        return
    for col in df.columns:
        if not (pd.api.types.is_string_dtype(df[col].dtype)):
            continue
        for value in df[col].dropna().head(50):
            if not isinstance(value, str) or value.isascii():
                continue
            try:
                raw = value.encode("latin-1")
            except UnicodeEncodeError:
                return  # real non-Latin text: decoded properly
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputFileError(
                    f"{p}: column {col!r} holds text that is not UTF-8 (e.g. {value!r}); the "
                    "Shapefile has no .cpg file naming its encoding.",
                    hint="Chinese GIS exports are usually GBK: read with encoding='gbk' "
                    "(--encoding gbk).",
                ) from None


def _coerce(df: pd.DataFrame, layer: str, *, naive_tz: str | None = None) -> pd.DataFrame:
    """Bring values to the contract's kinds where that is lossless (ints read as floats,
    datetimes read as text: without a zone, in ``naive_tz``, else UTC); real
    mismatches are left for the check to report."""
    spec = LAYERS[layer]
    out = None
    for col in spec.columns:
        if col.name not in df.columns:
            continue
        s = df[col.name]
        new = None
        if col.kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(s.dtype):
            parsed = (
                _zoned_times(s, naive_tz)
                if naive_tz is not None
                else pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
            )
            if parsed.notna().sum() == s.notna().sum():
                new = parsed
        elif col.kind == "int" and pd.api.types.is_float_dtype(s.dtype):
            if (s.dropna() % 1 == 0).all():
                new = s.astype("Int64") if s.isna().any() else s.astype("int64")
        elif col.kind == "bool" and not pd.api.types.is_bool_dtype(s.dtype):
            if s.dropna().isin([0, 1, True, False]).all() and s.notna().all():
                new = s.astype(bool)
        elif col.kind == "str" and pd.api.types.is_numeric_dtype(s.dtype) and s.notna().all():
            # codes such as 430202 come back as integers from some writers
            if pd.api.types.is_integer_dtype(s.dtype):
                new = s.astype(str)
        if new is not None:
            out = df.copy() if out is None else out
            out[col.name] = new
    return df if out is None else out


#: a time of day followed by a zone: ``Z``, ``UTC``/``GMT`` or an offset (``+08``,
#: ``+0800``, ``+08:00``)
_ZONED = re.compile(r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$")


def _zoned_times(values: pd.Series, tz: str) -> pd.Series:
    """Times as text in UTC: those without a zone taken as ``tz`` wall time, those with
    one as written (a column may mix both); NaT where unreadable.

    Examples
    --------
    >>> t = _zoned_times(pd.Series(["2026-03-01 08:00", "2026-03-01T08:00+08:00",
    ...                             "2026-03-01 00:00Z", None]), "Asia/Shanghai")
    >>> [str(x) for x in t]
    ['2026-03-01 00:00:00+00:00', '2026-03-01 00:00:00+00:00', '2026-03-01 00:00:00+00:00', 'NaT']
    """
    text = values.astype("string").str.strip()
    zoned = text.str.contains(_ZONED).fillna(False).to_numpy(dtype=bool)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if zoned.any():
        out[zoned] = pd.to_datetime(text[zoned], errors="coerce", utc=True, format="mixed")
    naive = ~zoned & text.notna().to_numpy(dtype=bool)
    if naive.any():
        local = pd.to_datetime(text[naive], errors="coerce", format="mixed")
        out[naive] = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
            "UTC"
        )
    return out


def write_layer(
    df: pd.DataFrame,
    path: PathLike,
    layer: str | None = None,
    *,
    encoding: str = "UTF-8",
    append: bool = False,
) -> Path:
    """Write one layer; returns the path written.

    GeoPackage: the layer named ``layer`` is replaced (or appended to with
    ``append=True``), other layers are kept.
    GeoJSON: RFC 7946 (WGS84, counter-clockwise exteriors, 7 decimals), written by
    :func:`gridkit.geojson.to_geojson`.
    GeoParquet: via geopandas/pyarrow. Shapefile: with a :class:`GridkitWarning` about
    the format's limits (10-character names, no datetimes); written as UTF-8 with a
    ``.cpg`` file unless ``encoding`` says otherwise. CSV and XLSX: tables, see
    :func:`write_table` (the layer name is the sheet name).

    Examples
    --------
    Writing a layer again replaces it and keeps the others:

    >>> import tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ws = pathlib.Path(tmp) / "ws.gpkg"
    ...     _ = write_layer(grid_units(3, 3), ws, "units")
    ...     _ = write_layer(grid_units(1, 1), ws, "old_units")
    ...     _ = write_layer(grid_units(2, 1), ws, "units")
    ...     geojson = write_layer(grid_units(1, 1), pathlib.Path(tmp) / "u.geojson")
    ...     sorted(list_layers(ws)), len(read_layer(ws, "units")), geojson.name
    (['old_units', 'units'], 2, 'u.geojson')
    """
    p = Path(path)
    fmt = format_of(p)
    if fmt in TABLES:
        return write_table(df, p, sheet=layer)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt in MULTI_LAYER and not layer:
        raise LayerNotFoundError(
            f"{p}: a GeoPackage layer needs a name.", hint="Pass the layer name, e.g. 'units'."
        )
    if isinstance(df, gpd.GeoDataFrame) and df.crs is not None and not df.crs.equals(WGS84):
        df = df.to_crs(WGS84)
    if fmt == "parquet":
        if isinstance(df, gpd.GeoDataFrame):
            df.to_parquet(p, index=False, schema_version="1.0.0")
        else:
            df.to_parquet(p, index=False)
        return p
    if fmt == "shapefile":
        df = _shapefile_ready(df, p)
        pyogrio.write_dataframe(df, p, encoding=encoding)
        return p
    if fmt == "geojson":  # RFC 7946 through the one encoder the maps and the API use
        p.write_bytes(to_geojson(df))
        return p
    df = _ms_times(df)
    if not p.exists():
        pyogrio.write_dataframe(df, p, layer=layer, driver="GPKG", use_arrow=True)
        return p
    try:
        present = {str(n) for n, _ in pyogrio.list_layers(p)}
    except pyogrio.errors.DataSourceError as exc:  # never written over: it may be a workspace
        raise InputFileError(
            f"{p}: the GeoPackage cannot be opened to add the layer {layer!r} ({exc}); "
            "nothing was written.",
            hint="Check the file and the disk (space, the -wal and -shm files beside it); "
            "to start a new file, write to another name.",
        ) from exc
    if layer not in present:  # a new layer beside the others: opened for update, never
        pyogrio.write_dataframe(  # created anew (see _kept)
            df, p, layer=layer, driver="GPKG", use_arrow=True, append=True
        )
    elif append:
        pyogrio.write_dataframe(
            _in_layer_order(df, p, layer), p, layer=layer, driver="GPKG", append=True
        )
    else:
        try:
            with _kept(p):
                pyogrio.write_dataframe(df, p, layer=layer, driver="GPKG", use_arrow=True)
        except pyogrio.errors.DataSourceError as exc:
            raise InputFileError(
                f"{p}: the layer {layer!r} could not be written ({exc}); the file is as it was.",
                hint="Check the disk (space, the -wal and -shm files beside the file) and "
                "try again.",
            ) from exc
    return p


@contextmanager
def _kept(p: Path) -> Iterator[None]:
    """The GeoPackage ``p`` put back as it was if the write in the block fails.

    pyogrio replaces a layer by opening the file for update, and when that open fails
    (a moment's "disk I/O error" while another connection checkpoints the WAL, a file
    locked elsewhere) it deletes the file and creates a new one: a workspace would be
    lost for one layer's write. A hard link keeps the file's data while the block runs
    and is renamed back when the block fails and left a different file (or none) at
    ``p``. Where the file system has no hard links, the block runs unguarded (its open
    was just checked by the caller).
    """
    keep = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.keep")
    try:
        os.link(p, keep)
    except OSError:
        yield
        return
    try:
        yield
    except BaseException:
        try:
            replaced = not p.exists() or not os.path.samefile(p, keep)
        except OSError:
            replaced = True
        if replaced:
            os.replace(keep, p)
        raise
    finally:
        keep.unlink(missing_ok=True)


def _in_layer_order(df: pd.DataFrame, p: Path, layer: str) -> pd.DataFrame:
    """Columns in the existing layer's field order.

    pyogrio's (non-arrow) append matches fields by position when the columns come in
    another order, which would silently put values in the wrong fields.
    """
    fields = [str(f) for f in pyogrio.read_info(p, layer=layer)["fields"]]
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    extra = [c for c in df.columns if c != geom and str(c) not in fields]
    if extra:
        raise UnsupportedFormatError(
            f"{p}, layer {layer!r}: cannot append columns the layer does not have: "
            f"{', '.join(map(str, extra))}.",
            hint="Add the columns to the layer first (gridkit.store does), or rewrite it.",
        )
    order = [f for f in fields if f in df.columns]
    return df[order + ([geom] if geom else [])]


def _shapefile_ready(df: pd.DataFrame, p: Path) -> pd.DataFrame:
    if not isinstance(df, gpd.GeoDataFrame) or shapely.is_missing(df.geometry.array).all():
        raise UnsupportedFormatError(
            f"{p}: a Shapefile needs geometries; this layer is an attribute table.",
            hint="Write it to .gpkg, .geojson or .parquet instead.",
        )
    out = df.copy()
    notes = []
    long = [c for c in out.columns if c != out.geometry.name and len(str(c).encode()) > 10]
    if long:
        short = [str(c)[:10] for c in long]
        if len(set(short)) < len(short) or set(short) & (set(out.columns) - set(long)):
            raise UnsupportedFormatError(
                f"{p}: column names {', '.join(map(str, long))} collide when cut to the "
                "Shapefile limit of 10 characters.",
                hint="Write a GeoPackage (.gpkg) instead, or rename the columns.",
            )
        notes.append(f"names cut to 10 characters: {', '.join(map(str, long))}")
        # cut them here (as read_layer undoes it) rather than let GDAL warn a second time
        out = out.rename(
            columns={c: s for c, s in zip(long, short, strict=True) if str(c).isascii()}
        )
    dts = [c for c in out.columns if pd.api.types.is_datetime64_any_dtype(out[c].dtype)]
    for c in dts:
        out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    if dts:
        notes.append(f"datetimes written as text: {', '.join(map(str, dts))}")
    warnings.warn(
        f"{p}: Shapefile is for export only and loses information"
        + (f" ({'; '.join(notes)})" if notes else "")
        + ". Keep the GeoPackage as the master copy.",
        GridkitWarning,
        stacklevel=3,
    )
    return out


def read_layers(
    path: PathLike, layers: list[str] | None = None, *, crs: object = None, check: bool = True
) -> dict[str, pd.DataFrame]:
    """Read several layers (all contract layers present when ``layers`` is None).

    Examples
    --------
    >>> import tempfile, pathlib, geodata
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = pathlib.Path(tmp) / "out.geojson"
    ...     layers = {"units": grid_units(2, 2), "admin_areas": geodata.zhuzhou_admin()}
    ...     _ = write_layers(layers, out)
    ...     {name: len(df) for name, df in read_layers(out).items()}
    {'admin_areas': 10, 'units': 4}
    """
    names = layers if layers is not None else list_layers(path)
    return {name: read_layer(path, name, crs=crs, check=check) for name in names}


def write_layers(layers: Mapping[str, pd.DataFrame], path: PathLike) -> list[Path]:
    """Write several layers: into one GeoPackage, or ``STEM_layer.ext`` siblings.

    A single layer to a single-layer format is written to ``path`` itself.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> layers = {"units": grid_units(2, 2), "reaches": grid_units(1, 1)}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     siblings = write_layers(layers, pathlib.Path(tmp) / "out.parquet")
    ...     one_file = write_layers(layers, pathlib.Path(tmp) / "ws.gpkg")
    ...     alone = write_layers({"units": layers["units"]}, pathlib.Path(tmp) / "u.geojson")
    >>> [p.name for p in siblings], [p.name for p in one_file], [p.name for p in alone]
    (['out_units.parquet', 'out_reaches.parquet'], ['ws.gpkg', 'ws.gpkg'], ['u.geojson'])
    """
    p = Path(path)
    fmt = format_of(p)
    if fmt in MULTI_LAYER or len(layers) == 1:
        return [write_layer(df, p, name) for name, df in layers.items()]
    return [write_layer(df, layer_path(p, name), name) for name, df in layers.items()]


def read_input(
    path: PathLike,
    layer: str | None,
    *,
    source_layer: str | None = None,
    columns: ColumnMap | Mapping[str, str] | None = None,
    crs: object = None,
    encoding: str | None = None,
    check: bool = True,
    repair: bool = False,
    require: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read a contract layer from a file a user hands in, checked as ``layer``.

    Which layer of the file: ``source_layer`` (or ``FILE.gpkg:NAME``) when named, and
    it must exist; otherwise the layer called ``layer``, or the file's only layer
    whatever its name (with a one-line :class:`GridkitWarning` naming it). A named
    layer that is missing is an error listing the layers present, unless the name is
    the contract name and the file has a single layer.

    What the CLI and the API's uploads read: a GeoPackage with a ``units`` layer, a
    GeoPackage whose only layer is called something else, a single-layer file, a CSV
    or a workbook sheet.

    Parameters
    ----------
    path
        The file (see :func:`read_layer` for the formats), or ``FILE:LAYER``.
    layer
        The contract layer wanted (``units``, ``workers``, ...), or a name outside the
        contract (read unchecked), or None (the file's only layer, unchecked).
    source_layer
        The layer (or sheet) of the file to read, as the user named it.
    columns, crs, encoding, repair, require
        As for :func:`read_layer`.
    check
        Check against the contract (``False``: only pick, rename and georeference).

    Raises
    ------
    InputFileError, LayerNotFoundError, CRSError, InvalidLayerError
        As for :func:`read_layer`.

    Examples
    --------
    >>> import tempfile, pathlib, warnings
    >>> from gridkit.synth.ops import grid_units
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "redrawn.gpkg"
    >>> _ = write_layer(grid_units(2, 2), path, "grid_2026")
    >>> with warnings.catch_warnings(record=True) as notes:
    ...     warnings.simplefilter("always")
    ...     len(read_input(path, "units")), str(notes[0].message)
    (4, "...redrawn.gpkg: reading its only layer 'grid_2026' as 'units'.")
    >>> len(read_input(f"{path}:grid_2026", "units"))
    4
    >>> read_input(path, "units", source_layer="grid_2025")
    Traceback (most recent call last):
    ...
    gridkit.errors.LayerNotFoundError: .../redrawn.gpkg has no layer 'grid_2025'.
    Hint: Layers present: grid_2026.
    """
    p, in_path = split_source(path)
    source_layer = source_layer if source_layer is not None else in_path
    fmt = format_of(p)
    if fmt in MULTI_LAYER:
        use = _choose_layer(p, fmt, layer, source_layer)
    elif source_layer is not None and not layer_path(p, source_layer).exists():
        _require_file(p)
        if source_layer not in (layer, p.stem):
            raise LayerNotFoundError(
                f"{p} has no layer {source_layer!r}.",
                hint=f"It holds one layer, {p.stem!r}: drop --layer (or the :LAYER part).",
            )
        use = layer
    else:
        use = source_layer if source_layer is not None else layer
    # unchecked reads still take the contract's names, types and points (buildings
    # whose households the splitter estimates keep their ids as text)
    opts = _ReadOptions(crs, encoding, ColumnMap.of(columns), repair, None, require)
    return _read(p, use, layer, opts, check=check)


def _choose_layer(p: Path, fmt: str, layer: str | None, named: str | None) -> str:
    names = _layer_names(p, fmt)
    if named is not None and named in names:
        return named
    kind = "sheet" if fmt == "xlsx" else "layer"
    only = len(names) == 1 and (named is None or (named == layer and layer in LAYERS))
    if only:
        if names[0] != layer and layer is not None:
            warnings.warn(
                f"{p}: reading its only {kind} {names[0]!r} as {layer!r}.",
                GridkitWarning,
                stacklevel=4,
            )
        return names[0]
    if named is not None:
        raise LayerNotFoundError(
            f"{p} has no {kind} {named!r}.",
            hint=f"{kind.capitalize()}s present: {', '.join(names) or 'none'}.",
        )
    if layer in names:
        return layer
    raise LayerNotFoundError(
        f"{p} holds {len(names)} {kind}s ({', '.join(names) or 'none'})"
        + (f" and none is called {layer!r}" if layer else "")
        + "; which one?",
        hint=f"Name it with --layer NAME or {p.name}:NAME.",
    )
