"""The ``gridkit`` command.

Exit codes: 0 ok, 1 invalid data (a readable message and a hint), 2 usage error.
Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gridkit import __version__
from gridkit.cli.assign import assign_cmd
from gridkit.cli.communities import split_communities_cmd
from gridkit.cli.maps import map_cmd
from gridkit.cli.rivers import split_rivers_cmd, validate_cmd
from gridkit.cli.serve import keys_app, require_api_extra, serve_cmd, serve_workspace
from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    console,
    err_console,
    write_output,
)
from gridkit.cli.versions import diff_cmd, publish_cmd
from gridkit.demo import print_summary, run_demo
from gridkit.errors import GridkitError, GridkitWarning
from gridkit.io import split_source
from gridkit.store import issue_key, open_store

app = typer.Typer(
    name="gridkit",
    help="Grid management for rivers, reservoirs and communities: split, assign, patrol, map.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        console.print(f"gridkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def demo(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="GeoPackage to build.")
    ] = Path("demo-workspace/zhuzhou.gpkg"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic layers.")] = 20261122,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the workspace afterwards.")] = False,
) -> None:
    """Build the Zhuzhou sample workspace and print what is in it (no network needed)."""
    if serve:
        require_api_extra("gridkit demo --serve")  # before the build, not after it
    summary = run_demo(workspace, seed=seed)
    print_summary(summary, console)
    if serve:
        secret, _ = issue_key(open_store(workspace), "demo", role="admin")
        console.print(
            f"demo admin key (shown once): [bold]{secret}[/]\n"
            f"open http://127.0.0.1:8000/maps/coverage?key={secret}"
        )
        serve_workspace(workspace)


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="File to check.")],
    layer: Annotated[
        str,
        typer.Option(
            "--layer",
            "-l",
            help="Layer to check, named after its contract layer (units, rivers ...); a "
            "file with a single layer is read as it. It must exist.",
        ),
    ],
    crs: CrsOption = None,
    encoding: EncodingOption = None,
    columns: ColumnsOption = None,
    repair: Annotated[bool, typer.Option("--repair", help="Repair invalid geometries.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the checked layer here.")
    ] = None,
) -> None:
    """Check a layer against the data contract (exit 1 with the problems when it fails)."""
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    named = None if split_source(path)[1] else layer  # FILE.gpkg:NAME names the layer itself
    df = inputs.read(path, layer, source_layer=named, repair=repair)
    console.print(f"[green]ok[/] {path}: layer {layer!r}, {len(df):,} rows")
    if output is not None:
        write_output({layer: df}, output)


app.command("diff")(diff_cmd)
app.command("publish")(publish_cmd)
app.command("split-rivers")(split_rivers_cmd)
app.command("split-communities")(split_communities_cmd)
app.command("validate")(validate_cmd)
app.command("assign")(assign_cmd)
app.command("map")(map_cmd)
app.command("serve")(serve_cmd)
app.add_typer(keys_app, name="keys")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn errors into exit codes and readable lines."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    with warnings.catch_warnings():
        warnings.simplefilter("default", GridkitWarning)
        warnings.showwarning = _show_warning
        try:
            # standalone mode: typer/click handle --help, usage errors (exit 2) and Ctrl-C
            app(args=args, prog_name="gridkit", standalone_mode=True)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except GridkitError as exc:
            if debug:
                raise
            # messages hold user data and brackets (gridkit[api]): never rich markup
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
            if exc.hint:
                err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}", highlight=False)
            return 1
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False)
