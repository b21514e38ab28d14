"""``gridkit demo``: build the Zhuzhou sample workspace and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gridkit.io import list_layers, read_layer, write_layer


def run_demo(workspace: Path, *, seed: int = 20261122) -> dict[str, Any]:
    """Build the demo workspace at ``workspace`` and return a summary dict."""
    import geopandas as gpd
    from shapely import LineString

    workspace = Path(workspace)
    if workspace.exists():
        workspace.unlink()
    rivers = gpd.GeoDataFrame(
        {"river_id": ["R1"], "name": ["湘江"]},
        geometry=[LineString([(113.0, 27.8), (113.1, 27.9)])],
        crs=4326,
    )
    write_layer(rivers, workspace, "rivers")
    layers = {name: len(read_layer(workspace, name)) for name in list_layers(workspace)}
    return {"workspace": str(workspace), "layers": layers}


def print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title=f"gridkit demo workspace {summary['workspace']}")
    table.add_column("layer")
    table.add_column("rows", justify="right")
    for name, n in summary["layers"].items():
        table.add_row(name, f"{n:,}")
    console.print(table)
