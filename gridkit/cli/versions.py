"""``gridkit diff`` and ``gridkit publish``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    LayerOption,
    console,
    write_output,
)
from gridkit.store import check_workspace
from gridkit.versions import Diff, diff_units, publish


def _print_diff(diff: Diff) -> None:
    table = Table(title="grid changes")
    table.add_column("relation")
    table.add_column("old units", justify="right")
    table.add_column("new units", justify="right")
    for rel in ("unchanged", "modified", "split", "merged", "added", "removed"):
        table.add_row(
            rel,
            str(diff.summary["old_units"].get(rel, "")),
            str(diff.summary["new_units"].get(rel, "")),
        )
    console.print(table)
    console.print(str(diff))
    changed = diff.changed
    if len(changed):
        console.print(
            f"changed: {', '.join(sorted(diff.touched_ids())[:30])}"
            + (" ..." if len(diff.touched_ids()) > 30 else "")
        )


def diff_cmd(
    old: Annotated[Path, typer.Argument(help="Units in force (file with a 'units' layer).")],
    new: Annotated[Path, typer.Argument(help="Draft units.")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the lineage table here (.gpkg, .csv, .xlsx)."),
    ] = None,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Which units are unchanged, modified, split, merged, added or removed (exit 0)."""
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    diff = diff_units(
        inputs.read(old, "units", source_layer=layer), inputs.read(new, "units", source_layer=layer)
    )
    _print_diff(diff)
    if output is not None:
        write_output({"lineage": diff.lineage}, output)


def publish_cmd(
    units: Annotated[Path, typer.Argument(help="Units to publish.")],
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace GeoPackage.")],
    note: Annotated[str, typer.Option(help="What changed and why.")] = "",
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Check the units, record lineage against the version in force, publish a new version."""
    if workspace.exists():  # a new path makes a new workspace; an existing one must be one
        check_workspace(workspace)
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    version, diff = publish(inputs.read(units, "units", source_layer=layer), workspace, note=note)
    console.print(f"published version [bold]{version}[/] to {workspace}")
    if diff is not None:
        _print_diff(diff)
