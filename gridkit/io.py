"""Reading and writing layers: GeoPackage, GeoJSON, GeoParquet and Shapefile.

The format follows the file extension:

============  ===========================  =============================================
extension     format                       notes
============  ===========================  =============================================
``.gpkg``     GeoPackage (native)          many layers by name; a *workspace* is one file
``.geojson``  GeoJSON, RFC 7946            one layer per file, always WGS84
``.parquet``  GeoParquet                   one layer per file (geopandas/pyarrow)
``.shp``      Shapefile                    export only (with a warning); read with
                                           ``encoding="gbk"`` for Chinese GIS exports
============  ===========================  =============================================

Single-layer formats hold several layers as sibling files: writing ``reaches`` and
``units`` to ``out.geojson`` writes ``out_reaches.geojson`` and ``out_units.geojson``,
and reading layer ``units`` from ``out.geojson`` finds ``out_units.geojson``.

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
import warnings
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from gridkit.crs import WGS84, to_wgs84
from gridkit.errors import (
    GridkitWarning,
    InputFileError,
    LayerNotFoundError,
    UnsupportedFormatError,
)
from gridkit.geojson import to_geojson
from gridkit.layers import LAYERS, check_layer

__all__ = [
    "FORMATS",
    "format_of",
    "layer_path",
    "list_layers",
    "read_input",
    "read_layer",
    "read_layers",
    "write_layer",
    "write_layers",
]

PathLike = str | os.PathLike

FORMATS = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".shp": "shapefile",
}
MULTI_LAYER = {"gpkg"}


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
    >>> format_of("units.csv")
    Traceback (most recent call last):
    ...
    gridkit.errors.UnsupportedFormatError: units.csv: unsupported file type '.csv'.
    Hint: Use .gpkg (GeoPackage, several layers), .geojson, .parquet ...
    """
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        raise UnsupportedFormatError(
            f"{path}: unsupported file type {ext or '(no extension)'!r}.",
            hint="Use .gpkg (GeoPackage, several layers), .geojson, .parquet "
            "(GeoParquet) or .shp (Shapefile, export only).",
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


def list_layers(path: PathLike) -> list[str]:
    """Layer names in a file (a single-layer file lists its siblings ``NAME_layer``).

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
        _require_file(p)
        return [str(name) for name, _ in pyogrio.list_layers(p)]
    names = [layer for layer in LAYERS if layer_path(p, layer).exists()]
    return names or ([p.stem] if p.exists() else [])


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
    check: bool | str = True,
    repair: bool = False,
    bbox: tuple[float, float, float, float] | None = None,
) -> pd.DataFrame:
    """Read one layer as a GeoDataFrame in WGS84 (a DataFrame for attribute tables).

    Parameters
    ----------
    path
        ``.gpkg``, ``.geojson``, ``.parquet`` or ``.shp`` file.
    layer
        Layer name. In a GeoPackage with one layer it may be omitted. For single-layer
        formats the file ``path`` or its sibling ``STEM_layer.ext`` is read.
    crs
        Declared datum of the input: an EPSG code, ``"gcj02"`` or ``"bd09"``.
    encoding
        Attribute encoding for Shapefiles without a ``.cpg`` file, e.g. ``"gbk"``.
    check
        Check against the contract layer ``layer`` (``True``), a named contract layer
        (a string), or not at all (``False``).
    repair
        Repair invalid geometries (see :func:`gridkit.layers.check_layer`).
    bbox
        Only read features intersecting this lon/lat box (GeoPackage index).

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
    """
    p = Path(path)
    fmt = format_of(p)
    source = str(p)
    if fmt == "parquet":
        p = _resolve_single(p, layer)
        source = str(p)
        try:
            df = gpd.read_parquet(p, bbox=bbox)
        except ValueError:  # plain Parquet without geometry metadata: an attribute table
            df = pd.read_parquet(p)
    else:
        if fmt in MULTI_LAYER:
            _require_file(p)
            layer_name = _pick_layer(p, layer)
        else:
            p = _resolve_single(p, layer)
            source = str(p)
            layer_name = None
        kwargs = {}
        if encoding:
            kwargs["encoding"] = encoding
        try:
            df = pyogrio.read_dataframe(
                p, layer=layer_name, bbox=bbox, use_arrow=fmt != "shapefile", **kwargs
            )
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{source}: text is not in the expected encoding ({exc.reason}).",
                hint="Chinese GIS exports are often GBK: pass encoding='gbk' / --encoding gbk.",
            ) from exc
        except pyogrio.errors.DataSourceError as exc:
            raise InputFileError(
                f"{source}: cannot open ({exc}).",
                hint="Is the file complete and of the type its extension says?",
            ) from exc
        if fmt == "shapefile" and encoding is None:
            _check_mojibake(df, p)
    if isinstance(df, gpd.GeoDataFrame) and df.geometry.notna().any():
        if fmt == "geojson" and crs is None and df.crs is None:
            df = df.set_crs(WGS84)  # RFC 7946: GeoJSON is WGS84 unless declared otherwise
        df = to_wgs84(df, crs=crs, source=source)
    elif isinstance(df, gpd.GeoDataFrame) and df.crs is None:
        df = df.set_crs(WGS84)
    name = check if isinstance(check, str) else (layer if check else None)
    if name is None and check is True and fmt in MULTI_LAYER and layer is None:
        name = layer_name
    if name in LAYERS:
        spec = LAYERS[name]
        if spec.geometry is None and isinstance(df, gpd.GeoDataFrame):
            df = pd.DataFrame(df.drop(columns=df.geometry.name))
        df = _coerce(df, name)
        df = check_layer(df, name, source=source, repair=repair)
    return df


def _pick_layer(p: Path, layer: str | None) -> str:
    names = [str(n) for n, _ in pyogrio.list_layers(p)]
    if layer is None:
        if len(names) == 1:
            return names[0]
        raise LayerNotFoundError(
            f"{p} holds {len(names)} layers ({', '.join(names)}); which one?",
            hint="Name the layer, e.g. read_layer(path, 'units') or FILE.gpkg --layer units.",
        )
    if layer not in names:
        raise LayerNotFoundError(
            f"{p} has no layer {layer!r}.",
            hint=f"Layers present: {', '.join(names) or 'none'}.",
        )
    return layer


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


def _coerce(df: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Bring values to the contract's kinds where that is lossless (ints read as floats,
    datetimes read as text); real mismatches are left for the check to report."""
    spec = LAYERS[layer]
    out = None
    for col in spec.columns:
        if col.name not in df.columns:
            continue
        s = df[col.name]
        new = None
        if col.kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(s.dtype):
            parsed = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
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
    ``.cpg`` file unless ``encoding`` says otherwise.

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
    if append and p.exists() and layer in {str(n) for n, _ in pyogrio.list_layers(p)}:
        pyogrio.write_dataframe(
            _in_layer_order(df, p, layer), p, layer=layer, driver="GPKG", append=True
        )
        return p
    pyogrio.write_dataframe(df, p, layer=layer, driver="GPKG", use_arrow=True)
    return p


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
    if not isinstance(df, gpd.GeoDataFrame) or df.geometry.isna().all():
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
    layer: str,
    *,
    crs: object = None,
    encoding: str | None = None,
    repair: bool = False,
) -> pd.DataFrame:
    """Read a contract layer from a file a user hands in: the layer named ``layer``,
    or the file's only layer whatever its name, checked as ``layer``.

    What the CLI and the API's uploads read: a GeoPackage with a ``units`` layer, a
    GeoPackage whose only layer is called something else, or a single-layer file.

    Parameters
    ----------
    path
        The file (see :func:`read_layer` for the formats).
    layer
        The contract layer wanted (``units``, ``workers``, ...).
    crs, encoding, repair
        As for :func:`read_layer`.

    Raises
    ------
    InputFileError, LayerNotFoundError, CRSError, InvalidLayerError
        As for :func:`read_layer`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "redrawn.gpkg"
    >>> _ = write_layer(grid_units(2, 2), path, "grid_2026")
    >>> len(read_input(path, "units"))
    4
    """
    p = Path(path)
    if format_of(p) in MULTI_LAYER:
        try:
            names = [n for n, _ in pyogrio.list_layers(p)] if p.exists() else []
        except pyogrio.errors.DataSourceError as exc:
            raise InputFileError(
                f"{p}: cannot open ({exc}).",
                hint="Is the file complete and of the type its extension says?",
            ) from exc
        use = layer if layer in names or len(names) != 1 else names[0]
        return read_layer(p, use, crs=crs, encoding=encoding, check=layer, repair=repair)
    return read_layer(p, layer, crs=crs, encoding=encoding, repair=repair)
