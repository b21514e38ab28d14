"""Shared pieces of the ``gridkit`` command: console, option types, layer in/out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import pandas as pd
import pyogrio
import typer
from rich.console import Console

from gridkit.errors import InputFileError
from gridkit.io import MULTI_LAYER, format_of, read_layer, write_layers

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
    typer.Option("--crs", help="Datum of inputs without one: EPSG code, 'gcj02' or 'bd09'."),
]
OutputOption = Annotated[
    Path,
    typer.Option("-o", "--output", help="Output file: .gpkg, .geojson, .parquet or .shp."),
]
EncodingOption = Annotated[
    str | None,
    typer.Option("--encoding", help="Attribute encoding of Shapefile input, e.g. gbk."),
]


def read_input(
    path: Path,
    layer: str,
    *,
    crs: str | None = None,
    encoding: str | None = None,
    repair: bool = False,
) -> pd.DataFrame:
    """Read a contract layer from a CLI argument (layer by name or the file's only one).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridkit.io import write_layer
    >>> from gridkit.synth.ops import grid_units
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "draft.gpkg"
    ...     _ = write_layer(grid_units(3, 2), path, "grid")  # the file's only layer
    ...     len(read_input(path, "units"))
    6
    """
    if format_of(path) in MULTI_LAYER:
        try:
            names = [n for n, _ in pyogrio.list_layers(path)] if path.exists() else []
        except pyogrio.errors.DataSourceError as exc:
            raise InputFileError(
                f"{path}: cannot open ({exc}).",
                hint="Is the file complete and of the type its extension says?",
            ) from exc
        use = layer if layer in names or len(names) != 1 else names[0]
        return read_layer(path, use, crs=crs, encoding=encoding, check=layer, repair=repair)
    return read_layer(path, layer, crs=crs, encoding=encoding, repair=repair)


def write_output(layers: Mapping[str, pd.DataFrame], path: Path) -> None:
    """Write result layers and say where they went.

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
