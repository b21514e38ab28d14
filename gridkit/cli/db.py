"""``gridkit db``: a PostGIS database as the workspace (schema, loading, dumping)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridkit.cli.util import console, plural
from gridkit.errors import InputFileError

db_app = typer.Typer(
    help="A PostGIS database as the workspace: make its schema, load and dump layers.",
    no_args_is_help=True,
)

UrlArg = Annotated[str, typer.Argument(help="Database URL: postgresql://user@host/db.")]


@db_app.command("upgrade")
def upgrade_cmd(
    url: UrlArg,
    to: Annotated[int | None, typer.Option(help="Stop at this revision.")] = None,
) -> None:
    """Create or upgrade the gridkit schema (numbered SQL revisions, then every layer
    table brought up to the data contract)."""
    from gridkit.store.postgis import migrations, revision, upgrade

    url = _url(url)
    done = upgrade(url, to=to)
    latest = to if to is not None else migrations()[-1][0]
    what = f"applied {', '.join(map(str, done))}" if done else "already current"
    console.print(f"schema at revision {revision(url)} of {latest}: {what}")


@db_app.command("load")
def load_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage to read.")],
    url: UrlArg,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Replace the tables of the database that already hold rows."
        ),
    ] = False,
) -> None:
    """Copy every layer and service table of a GeoPackage workspace into the database
    (each layer replaced whole, in one transaction; the schema upgraded first). A
    database whose tables already hold rows is refused without --replace."""
    from gridkit.store.transfer import load

    counts = load(workspace, _url(url), replace=replace)
    console.print(
        f"loaded {plural(len(counts), 'table')} ({sum(counts.values()):,} rows) from {workspace}"
    )


@db_app.command("dump")
def dump_cmd(
    url: UrlArg,
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage to write (new).")],
) -> None:
    """Copy every layer and service table of the database into a new GeoPackage."""
    from gridkit.store.transfer import dump

    counts = dump(_url(url), workspace)
    console.print(
        f"dumped {plural(len(counts), 'table')} ({sum(counts.values()):,} rows) to {workspace}"
    )


def _url(text: str) -> str:
    from gridkit.store import database_url

    url = database_url(text)
    if url is None:
        raise InputFileError(
            f"{text}: not a database URL.", hint="Pass postgresql://user@host[:port]/database."
        )
    return url
