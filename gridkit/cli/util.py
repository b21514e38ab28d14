"""Shared pieces of the ``gridkit`` command: console, option types, layer in/out.

Every command that reads files takes the same input options, defined once here:
``--layer`` (the layer or sheet of its main input; any input also takes
``FILE.gpkg:LAYER``), ``--columns`` (``SRC=DST`` renames, repeatable, or a TOML mapping
file), ``--encoding`` (Shapefile and CSV text) and ``--crs`` (a datum for every input,
or ``LAYER=DATUM`` for one). Reading goes through :class:`Inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from gridkit.errors import CRSError, GridkitError, LayerNotFoundError
from gridkit.io import ColumnMap, write_layers
from gridkit.io import read_input as _io_read_input
from gridkit.layers import LAYERS
from gridkit.store import database_url, open_store, shown

# soft wrap: lines are never cut at the terminal's width (a copied path, key or URL
# stays whole); tables still fit the width
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun, singular for one: "1 row", "2 rows", "1,204 rows".

    Examples
    --------
    >>> plural(1, "row"), plural(1204, "row"), plural(0, "community", "communities")
    ('1 row', '1,204 rows', '0 communities')
    """
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


CrsOption = Annotated[
    str | None,
    typer.Option(
        "--crs",
        help="Datum of inputs that carry none, or whose lon/lat are from a Chinese web "
        "map: an EPSG code, gcj02 or bd09. LAYER=DATUM declares it for one input only, "
        "e.g. --crs reports=gcj02 (several: comma-separated).",
    ),
]
OutputOption = Annotated[
    Path,
    typer.Option(
        "-o",
        "--output",
        help="Output file: .gpkg, .geojson, .parquet or .shp; tables also .csv or .xlsx.",
    ),
]
EncodingOption = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of Shapefile (.dbf) and CSV input, e.g. gbk (default UTF-8).",
    ),
]
LayerOption = Annotated[
    str | None,
    typer.Option(
        "--layer",
        "-l",
        help="Layer (or sheet) of the main input to read; it must exist. Default: the "
        "layer named after what is read (units, rivers ...) or the file's only layer. "
        "Any input may also be given as FILE.gpkg:LAYER.",
    ),
]
ColumnsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--columns",
        metavar="SRC=DST|MAP.toml",
        help="Rename input columns, e.g. --columns 名称=name (repeatable), or a TOML "
        'mapping file: a "columns" table (名称 = "name") and "values.COLUMN" tables for '
        'coded values (values.level: 区县 = "county").',
    ),
]


def crs_for(crs: str | None, layer: str | None) -> str | None:
    """The datum declared for one input: ``--crs gcj02`` for all, or
    ``--crs reports=gcj02,workers=4490`` per contract layer.

    Examples
    --------
    >>> crs_for("gcj02", "units"), crs_for("reports=gcj02", "units")
    ('gcj02', None)
    >>> crs_for("4490, reports=gcj02", "reports"), crs_for("4490, reports=gcj02", "rivers")
    ('gcj02', '4490')
    >>> crs_for("report=gcj02", "reports")
    Traceback (most recent call last):
    ...
    gridkit.errors.CRSError: --crs report=gcj02: 'report' is not a layer.
    Hint: Name a contract layer: admin_areas, rivers, water_bodies, ...
    """
    if crs is None or "=" not in crs:
        return crs
    default, per_layer = None, {}
    for part in (p.strip() for p in crs.split(",")):
        if "=" not in part:
            default = part or None
            continue
        name, datum = (s.strip() for s in part.split("=", 1))
        if name not in LAYERS:
            raise CRSError(
                f"--crs {crs}: {name!r} is not a layer.",
                hint=f"Name a contract layer: {', '.join(LAYERS)}.",
            )
        per_layer[name] = datum
    return per_layer.get(layer or "", default)


@dataclass
class Inputs:
    """The input options of one command run, applied to each file it reads.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.io import write_layer
    >>> from gridkit.synth.ops import grid_units
    >>> inputs = Inputs(columns=["编号=unit_id"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_layer(grid_units(2, 1).rename(columns={"unit_id": "编号"}),
    ...                        pathlib.Path(tmp) / "grid.gpkg", "units")
    ...     inputs.read(path, "units")["unit_id"].tolist()
    ['430202001000000', '430202001000001']
    """

    crs: str | None = None
    encoding: str | None = None
    columns: list[str] | None = None
    _map: ColumnMap | None = field(default=None, init=False, repr=False)

    def read(
        self,
        path: Path,
        layer: str | None,
        *,
        source_layer: str | None = None,
        check: bool = True,
        repair: bool = False,
        require: tuple[str, ...] | None = None,
    ) -> pd.DataFrame:
        """Read one input as contract layer ``layer`` (see :func:`gridkit.io.read_input`);
        ``require``: the columns the command uses, when fewer than the contract's."""
        url = database_url(path)
        if url is not None:
            return read_database_layer(url, layer, source_layer)
        if self._map is None:
            self._map = ColumnMap.parse(self.columns)
        return _io_read_input(
            path,
            layer,
            source_layer=source_layer,
            columns=self._map,
            crs=crs_for(self.crs, layer),
            encoding=self.encoding,
            check=check,
            repair=repair,
            require=require,
        )


def read_database_layer(url: str, layer: str | None, source_layer: str | None = None):
    """A layer of a database workspace: ``URL:LAYER`` (or ``source_layer``, else the
    contract layer ``layer``), as the store serves it (WGS84, checked when stored).

    Examples
    --------
    >>> read_database_layer("postgresql://grid@db.example/zz", None)
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: postgresql://grid@db.example/zz: which layer? ...
    """
    base, named = _split_url(url)
    name = source_layer or named or layer
    if not name:
        raise GridkitError(
            f"{url}: which layer? Name it as URL:LAYER (e.g. {url}:units).",
            hint="the layers of a workspace: units, reports, patrols, workers, ...",
        )
    store = open_store(base)
    have = store.layers()
    if name not in have:
        raise LayerNotFoundError(
            f"{shown(base)} has no layer {name!r}.",
            hint=f"Layers present: {', '.join(sorted(have)) or 'none'}.",
        )
    return store.read(name)


def input_layers(path: Path | str) -> list[str]:
    """The layers of an input, a file (:func:`gridkit.io.list_layers` of ``FILE`` in
    ``FILE:LAYER``) or a database workspace (``URL`` or ``URL:LAYER``): what a command
    looks for a sibling layer in (e.g. ``validate``'s reaches beside its units).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.io import write_layer
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_layer(grid_units(2, 1), pathlib.Path(tmp) / "ws.gpkg", "units")
    ...     input_layers(f"{path}:units")
    ['units']
    """
    from gridkit.io import list_layers, split_source

    url = database_url(path)
    if url is None:
        return list_layers(split_source(path)[0])
    return open_store(_split_url(url)[0]).layers()


def _split_url(url: str) -> tuple[str, str]:
    """``URL:LAYER`` as the URL and the layer ('' when none is named).

    Examples
    --------
    >>> _split_url("postgresql://grid:pw@db:5432/zz:units"), _split_url("postgresql://db/zz")
    (('postgresql://grid:pw@db:5432/zz', 'units'), ('postgresql://db/zz', ''))
    """
    base, _, named = url.rpartition(":")
    if not base or "/" in named or "@" in named or named.isdigit():  # no :LAYER part
        return url, ""
    return base, named


def write_output(layers: Mapping[str, pd.DataFrame], path: Path) -> None:
    """Write result layers and say where they went (tables may go to .csv or .xlsx).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_output({"units": grid_units(2, 1)}, pathlib.Path(tmp) / "out.gpkg")
    wrote units (2 rows) to .../out.gpkg
    """
    written = write_layers(layers, path)
    for p, (name, df) in zip(written, layers.items(), strict=False):
        console.print(f"wrote [bold]{name}[/] ({plural(len(df), 'row')}) to {p}")
