"""``gridkit serve`` and ``gridkit keys``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridkit._cliutil import console, err_console
from gridkit.errors import GridkitError

keys_app = typer.Typer(
    help="Issue, list and revoke API keys (stored as SHA-256 hashes).", no_args_is_help=True
)

WorkspaceOption = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace GeoPackage.")]


def serve_workspace(
    workspace: Path, *, host: str = "127.0.0.1", port: int = 8000, access_log: bool = True
) -> None:
    """Run the API over ``workspace`` with uvicorn (blocks); ``access_log`` logs a line
    per request to the terminal (off for the fastest service)."""
    try:
        import uvicorn

        from api import create_app
    except ImportError as exc:
        raise GridkitError(
            f"The API cannot start: {exc}.",
            hint="install the api extra: pip install 'gridkit[api]'",
        ) from exc
    import pandas as pd

    # This process is the service: its pandas keeps strings in Python objects. Its
    # work is many small frames (a batch of reports, a patch), where Arrow-backed
    # strings, pandas' default, cost a pyarrow call per element or operation; the
    # report writer runs ~1.4x faster this way (benchmarks/bench_api.py).
    pd.options.mode.string_storage = "python"
    app = create_app(workspace=workspace)
    err_console.print(f"serving {workspace} on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)


def serve_cmd(
    workspace: Annotated[Path, typer.Argument(help="Workspace GeoPackage to serve.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log a line per request.")
    ] = True,
) -> None:
    """Serve a workspace over HTTP: OGC API - Features, reports, patrols, maps."""
    serve_workspace(workspace, host=host, port=port, access_log=access_log)


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="Who the key is for.")],
    role: Annotated[str, typer.Option(help="viewer, worker, supervisor, planner or admin.")],
    workspace: WorkspaceOption,
    worker_id: Annotated[str | None, typer.Option("--worker-id", help="For worker keys.")] = None,
    scope: Annotated[str, typer.Option(help="Admin code prefix the key is limited to.")] = "",
) -> None:
    """Issue a key and print it once (only its hash is stored)."""
    from gridkit.store import open_store

    secret, key = open_store(workspace).add_key(name, role=role, scope=scope, worker_id=worker_id)
    err_console.print(
        f"key {key.key_id} for {name!r} ({role}"
        + (f", scope {scope}" if scope else "")
        + "); it is shown only once:"
    )
    print(secret)


@keys_app.command("list")
def keys_list(workspace: WorkspaceOption) -> None:
    """List issued keys (never the secrets)."""
    from gridkit.store import open_store

    table = Table()
    df = open_store(workspace).keys()
    for col in df.columns:
        table.add_column(str(col))
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id from `keys list`.")],
    workspace: WorkspaceOption,
) -> None:
    """Revoke a key (takes effect within seconds on a running server)."""
    from gridkit.store import open_store

    open_store(workspace).revoke_key(key_id)
    console.print(f"revoked {key_id}")
