"""Shared pieces of the ``gridkit`` command: console, option types, layer in/out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from gridkit.io import write_layers

console = Console()
err_console = Console(stderr=True)

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
        console.print(f"wrote [bold]{name}[/] ({len(df):,} rows) to {p}")
