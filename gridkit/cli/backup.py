"""``gridkit backup``: a consistent copy of a workspace, also while it is served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.util import console


def backup_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage (may be served).")],
    out: Annotated[Path, typer.Argument(help="The copy to write: a new .gpkg file.")],
) -> None:
    """Copy a workspace with SQLite's online backup: safe while `gridkit serve` writes
    (the copy holds every write committed before it began, and none after)."""
    from gridkit.store import backup_workspace

    copy = backup_workspace(workspace, out)
    size = copy.stat().st_size / 1e6
    console.print(f"backed up {workspace} to {copy} ({size:,.1f} MB)", soft_wrap=True)
