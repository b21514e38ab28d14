"""The ``gridkit`` command.

Exit codes: 0 ok, 1 invalid data (a readable message and a hint), 2 usage error.
Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import inspect
import re
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Annotated

import pyogrio.errors
import typer
import typer.core
from rich.markup import escape

from gridkit import __version__
from gridkit.cli.assign import assign_cmd
from gridkit.cli.backup import backup_cmd
from gridkit.cli.cases import escalate_cmd
from gridkit.cli.chiefs import chiefs_app
from gridkit.cli.communities import split_communities_cmd
from gridkit.cli.db import db_app
from gridkit.cli.maps import map_cmd
from gridkit.cli.national import national_app
from gridkit.cli.ops import assess_cmd, hotspots_cmd, locate_cmd
from gridkit.cli.reports import register as register_residents
from gridkit.cli.rivers import split_rivers_cmd, validate_cmd
from gridkit.cli.serve import keys_app, require_api_extra, serve_cmd, serve_workspace
from gridkit.cli.util import (
    ColumnsOption,
    CrsOption,
    EncodingOption,
    Inputs,
    console,
    err_console,
    plural,
    write_output,
)
from gridkit.cli.versions import diff_cmd, publish_cmd
from gridkit.demo import print_summary, run_demo
from gridkit.errors import GridkitError, GridkitWarning, InputFileError
from gridkit.io import list_layers, split_source
from gridkit.layers import LAYERS
from gridkit.store import check_workspace, issue_key, open_store, shown
from gridkit.store.postgis import DatabaseRefusedError

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
    port: Annotated[int, typer.Option("--port", help="Port to serve on (with --serve).")] = 8000,
) -> None:
    """Build the Zhuzhou sample workspace and print what is in it (no network needed)."""
    if serve:
        require_api_extra("gridkit demo --serve")  # before the build, not after it
    _check_demo_target(workspace)
    summary = run_demo(workspace, seed=seed)
    print_summary(summary, console)
    if serve:
        secret, _ = issue_key(open_store(workspace), "demo", role="admin")
        # each on a line of its own, never wrapped: a URL cut in two gives a bare 401
        console.print(f"demo admin key (shown once): {secret}", soft_wrap=True, highlight=False)
        console.print(
            f"open http://127.0.0.1:{port}/maps/coverage?key={secret}",
            soft_wrap=True,
            highlight=False,
        )
        serve_workspace(workspace, port=port)


def _check_demo_target(workspace: Path) -> None:
    """The demo replaces ``workspace``: refuse a file that is no GeoPackage (someone's
    data), and make its directory now, so that a bad path fails before any work."""
    if workspace.exists():
        check_workspace(workspace)
    try:
        workspace.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(
            f"{workspace.parent}: cannot make the directory ({exc.strerror or exc}).",
            hint="Pass --workspace a path in a directory you can write to.",
        ) from None


@app.command()
def check(
    path: Annotated[
        Path, typer.Argument(help="File to check, or FILE:LAYER (e.g. ws.gpkg:units).")
    ],
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            "-l",
            help="Contract layer to check it as (units, rivers ...; default: the LAYER of "
            "FILE:LAYER, or the file's name); a file with a single layer is read as it. "
            "It must exist.",
        ),
    ] = None,
    crs: CrsOption = None,
    encoding: EncodingOption = None,
    columns: ColumnsOption = None,
    repair: Annotated[bool, typer.Option("--repair", help="Repair invalid geometries.")] = False,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the checked layer here.")
    ] = None,
) -> None:
    """Check a layer against the data contract (exit 1 with the problems when it fails).
    A layer the contract does not define is read, not checked (a warning says so)."""
    inputs = Inputs(crs=crs, encoding=encoding, columns=columns)
    source, in_path = split_source(path)
    name = layer or in_path or _contract_name(source)
    if name is None and not source.exists():
        raise InputFileError(f"{source}: no such file.", hint="Check the path and the extension.")
    if name is None:
        raise GridkitError(
            f"{path}: which contract layer is it?",
            hint=f"Name it: --layer units (or {source.name}:units); contract layers: "
            f"{', '.join(LAYERS)}.",
        )
    named = None if in_path else name  # FILE.gpkg:NAME names the layer itself
    df = inputs.read(path, name, source_layer=named, repair=repair)
    if name not in LAYERS:
        warnings.warn(
            f"{name!r} is not a layer of the data contract ({', '.join(list(LAYERS)[:6])}, "
            "...): read, not checked.",
            GridkitWarning,
            stacklevel=2,
        )
        console.print(f"read {shown(path)}: layer {name!r}, {plural(len(df), 'row')} (not checked)")
    else:
        console.print(f"[green]ok[/] {shown(path)}: layer {name!r}, {plural(len(df), 'row')}")
    if output is not None:
        write_output({name: df}, output)


def _contract_name(source: Path) -> str | None:
    """The contract layer a file is named after, or holds alone (``units.shp``, a
    GeoPackage whose only layer is ``units``)."""
    if source.stem in LAYERS:
        return source.stem
    try:
        names = list_layers(source) if source.suffix.lower() == ".gpkg" else []
    except GridkitError:
        return None  # the read names the problem
    return names[0] if len(names) == 1 and names[0] in LAYERS else None


def plain_help(doc: str | None) -> str:
    """A docstring as terminal help: reStructuredText markup (````x````, ``:func:`x```)
    shown as plain words, each paragraph one line (the terminal wraps it).

    Examples
    --------
    >>> plain_help("Writes layers ``units``\\n(see :func:`gridkit.locate`).")
    "Writes layers 'units' (see gridkit.locate)."
    """
    text = inspect.cleandoc(doc or "")
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"'\1'", text)
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


for _name, _cmd in {
    "diff": diff_cmd,
    "publish": publish_cmd,
    "split-rivers": split_rivers_cmd,
    "split-communities": split_communities_cmd,
    "validate": validate_cmd,
    "assign": assign_cmd,
    "locate": locate_cmd,
    "hotspots": hotspots_cmd,
    "assess": assess_cmd,
    "escalate": escalate_cmd,
    "map": map_cmd,
    "serve": serve_cmd,
    "backup": backup_cmd,
}.items():
    app.command(_name, help=plain_help(_cmd.__doc__))(_cmd)
app.add_typer(keys_app, name="keys")
register_residents(app)  # reports import/export, callbacks, missed (gridkit.cli.reports)
app.add_typer(db_app, name="db")
app.add_typer(chiefs_app)  # compliance, summons, patrols import|ledger (gridkit.cli.chiefs)
app.add_typer(national_app, name="national")


def _plain_helps(group: typer.Typer) -> None:
    """Every subcommand's help as :func:`plain_help` makes it (typer shows a docstring's
    line breaks, cutting sentences mid-way in the command lists)."""
    for info in group.registered_commands:
        if info.help is None and info.callback is not None:
            info.help = plain_help(info.callback.__doc__)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _plain_helps(sub.typer_instance)


_plain_helps(app)

_type_shown = typer.core.TyperOption.display_type_rich


def _no_flag_type(self: typer.core.TyperOption, ctx: object) -> str | None:
    """Help shows no type for flags (``--serve <bool>`` reads as if it took a value)."""
    return None if self.is_flag else _type_shown(self, ctx)


typer.core.TyperOption.display_type_rich = _no_flag_type  # type: ignore[method-assign]


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
            _print_error(exc.message, exc.hint)
            return 1
        except (OSError, sqlite3.Error) as exc:  # the system's, not gridkit's
            if debug:
                raise
            _print_error(_os_message(exc), "Check the path, its permissions and the free space.")
            return 1
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:  # GDAL's
            if debug:
                raise
            _print_error(
                str(exc).split("; It might help")[0].strip(),
                "Is the file complete, and of the type its extension says?",
            )
            return 1
        except Exception as exc:  # last: a privilege the database refused (psycopg's)
            if debug or getattr(exc, "sqlstate", None) != "42501":
                raise
            err = DatabaseRefusedError.denied("the database", exc)
            _print_error(err.message, err.hint)
            return 1
    return 0


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


_URL = re.compile(r"postgres(?:ql)?:/+[^\s'\"]+")


def _unsecret(text: str) -> str:
    """``text`` with every database URL in it shown without its password.

    Examples
    --------
    >>> _unsecret("error at postgresql://grid:pw@db/zz:units, again")
    'error at postgresql://grid:***@db/zz:units, again'
    """
    return _URL.sub(lambda m: shown(m.group(0)), text)


def _print_error(message: str, hint: str | None) -> None:
    # messages hold user data and brackets (gridkit[api]): never rich markup; and a
    # line is never wrapped (a path or a key cut in two cannot be copied); a
    # database URL never shows its password
    message, hint = _unsecret(message), hint and _unsecret(hint)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[yellow]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(
        f"[yellow]warning:[/] {escape(_unsecret(str(message)))}", highlight=False, soft_wrap=True
    )
