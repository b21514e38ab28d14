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
from gridkit.errors import GridkitError
from gridkit.store import check_workspace, database_url, open_store, shown
from gridkit.versions import (
    ConfirmationRequiredError,
    Diff,
    diff_units,
    preview,
    publish,
    read_version,
    restore,
)


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
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="Workspace GeoPackage or postgresql:// URL.")
    ],
    units: Annotated[
        Path | None, typer.Argument(help="Units to publish (not with --restore).")
    ] = None,
    note: Annotated[str, typer.Option(help="What changed and why.")] = "",
    area: Annotated[
        str | None,
        typer.Option(
            help="Admin code: publish a redraw of this area only; the rest of the grid is "
            "kept with its ids."
        ),
    ] = None,
    restore_version: Annotated[
        int | None,
        typer.Option("--restore", help="Publish the units of version N again, as a new version."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show the changes, the staffing and the open cases affected."
        ),
    ] = False,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Publish a draft removing more than 20 % of the units in force, or units "
            "of a kind it has none of.",
        ),
    ] = False,
    crs: CrsOption = None,
    layer: LayerOption = None,
    columns: ColumnsOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Check the units, record lineage against the grid in force, publish a new version
    (or restore one: --restore N). A draft removing much of the grid needs --confirm."""
    if (units is None) == (restore_version is None):
        raise GridkitError(
            "Give the units to publish, or --restore N (not both).",
            hint="gridkit publish UNITS -w WORKSPACE, or gridkit publish --restore N -w WORKSPACE",
        )
    if database_url(workspace):  # a PostGIS workspace: the versions work on its store
        workspace = open_store(workspace)  # type: ignore[assignment]
    elif workspace.exists():  # a new path makes a new workspace; an existing one must be one
        check_workspace(workspace)
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    if dry_run:
        draft = (
            read_version(workspace, restore_version)
            if units is None
            else inputs.read(units, "units", source_layer=layer)
        )
        console.print(str(preview(draft, workspace, area=area, validate=units is not None)))
        return
    try:
        if units is None:
            version, diff = restore(workspace, restore_version, note=note, confirm=confirm)
        else:
            draft = inputs.read(units, "units", source_layer=layer)
            version, diff = publish(draft, workspace, note=note, area=area, confirm=confirm)
    except ConfirmationRequiredError as exc:
        console.print(str(exc.preview))
        raise GridkitError(exc.message, hint="Check the preview, then add --confirm.") from None
    console.print(f"published version [bold]{version}[/] to {shown(workspace)}")
    if diff is not None:
        _print_diff(diff)
