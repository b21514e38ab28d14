"""``gridkit serve`` and ``gridkit keys``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridkit.cli.util import console, err_console
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

    # While serving, pandas keeps strings in Python objects: the service's work is many
    # small frames (a batch of reports, a patch), where Arrow-backed strings, pandas'
    # default, cost a pyarrow call per element or operation; the report writer runs
    # ~1.4x faster this way (benchmarks/bench_api.py). Restored when the server stops.
    with pd.option_context("mode.string_storage", "python"):
        app = create_app(workspace=workspace)
        err_console.print(f"serving {workspace} on http://{host}:{port}/ (Ctrl-C to stop)")
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            access_log=access_log,
            log_config=_log_config(),
        )


def _log_config() -> dict:
    """uvicorn's logging, with the service's own messages (``gridkit.*``: reports no
    department handles, unexpected errors with their traceback) in the same format."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["gridkit"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


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
    from gridkit.store.gpkg import open_store

    secret, key = open_store(workspace).add_key(name, role=role, scope=scope, worker_id=worker_id)
    err_console.print(
        f"key {key.key_id} for {name!r} ({role}"
        + (f", scope {scope}" if scope else "")
        + "); it is shown only once:"
    )
    print(secret)


@keys_app.command("import")
def keys_import(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with columns name, role and optional scope, worker_id.")
    ],
    workspace: WorkspaceOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the issued keys here (default: standard output)."),
    ] = None,
) -> None:
    """Issue keys in bulk from a CSV, all or none; the secrets are printed once, as CSV."""
    from gridkit.store.gpkg import open_store

    requests, lines = read_key_requests(csv_file)
    issued = open_store(workspace).add_keys(requests)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["name", "role", "scope", "worker_id", "key_id", "key"])
    for secret, k in issued:
        writer.writerow([k.name, k.role, k.scope, k.worker_id or "", k.key_id, secret])
    if out is None:
        print(text.getvalue(), end="")
    else:
        out.write_text(text.getvalue(), encoding="utf-8-sig")  # BOM: Excel reads it as UTF-8
    err_console.print(
        f"issued {len(issued)} keys from {csv_file}"
        + (f" (lines {lines[0]}-{lines[-1]})" if lines else "")
        + ("" if out is None else f"; secrets in {out}")
        + ": they are shown only once, keep them safe"
    )


def read_key_requests(path: Path) -> tuple[list, list[int]]:
    """Key requests from a CSV (UTF-8, or GB18030 as Excel saves it on Chinese Windows),
    with the line number of each."""
    from gridkit.errors import InputFileError
    from gridkit.store.gpkg import KeyRequest, check_key_requests

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror}).") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise InputFileError(
                f"{path}: neither UTF-8 nor GB18030 text.", hint="Save the sheet as CSV UTF-8."
            ) from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    missing = [c for c in ("name", "role") if c not in fields]
    if missing:
        raise InputFileError(
            f"{path}: no column {', '.join(missing)} (columns: {', '.join(fields) or 'none'}).",
            hint="The first line names the columns: name,role,scope,worker_id "
            "(scope and worker_id may be left out).",
        )
    reader.fieldnames = fields
    requests, lines = [], []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        lines.append(reader.line_num)
        requests.append(
            KeyRequest(
                row.get("name") or "",
                row.get("role") or "",
                row.get("scope") or "",
                row.get("worker_id") or None,
            )
        )
    return check_key_requests(requests, source=str(path), rows=lines), lines


@keys_app.command("list")
def keys_list(workspace: WorkspaceOption) -> None:
    """List issued keys (never the secrets)."""
    from gridkit.store.gpkg import open_store

    table = Table()
    df = open_store(workspace).keys()
    for col in df.columns:
        if col == "key_id":  # whole, whatever the terminal's width: `keys revoke` needs it
            table.add_column(str(col), no_wrap=True, min_width=12)
        else:
            table.add_column(str(col), overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id from `keys list`.")],
    workspace: WorkspaceOption,
) -> None:
    """Revoke a key (takes effect within seconds on a running server)."""
    from gridkit.store.gpkg import open_store

    open_store(workspace).revoke_key(key_id)
    console.print(f"revoked {key_id}")
