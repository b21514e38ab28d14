"""``gridkit backup``: a consistent copy of a workspace, also while it is served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.util import console
from gridkit.errors import GridkitError
from gridkit.store import database_url, shown


def backup_cmd(
    workspace: Annotated[
        Path, typer.Argument(help="Workspace GeoPackage (may be served); not a database.")
    ],
    out: Annotated[Path, typer.Argument(help="The copy to write: a new .gpkg file.")],
) -> None:
    """Copy a workspace with SQLite's online backup: safe while `gridkit serve` writes
    (the copy holds every write committed before it began, and none after). A database
    is backed up with PostgreSQL's pg_dump."""
    from gridkit.store import backup_workspace

    url = database_url(workspace)
    if url is not None:
        raise GridkitError(
            f"{shown(url)}: gridkit backup copies a GeoPackage; a database is backed up "
            "with pg_dump.",
            hint=f"pg_dump -Fc -f gridkit.dump '{shown(url)}' (restore: pg_restore -d URL "
            f"gridkit.dump), or a GeoPackage copy: gridkit db dump '{shown(url)}' copy.gpkg.",
        )

    copy = backup_workspace(workspace, out)
    size = copy.stat().st_size / 1e6
    console.print(f"backed up {workspace} to {copy} ({size:,.1f} MB)", soft_wrap=True)
