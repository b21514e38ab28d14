"""``gridkit serve`` and ``gridkit keys``."""

from __future__ import annotations

import copy
import csv
import io
import os
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from gridkit.cli.util import console, err_console, plural
from gridkit.errors import GridkitError, InputFileError, MissingExtraError, require_extra
from gridkit.store import (
    DATABASE_URL_ENV,
    KeyRequest,
    Store,
    check_key_requests,
    database_url,
    issue_key,
    issue_keys,
    list_keys,
    open_store,
    revoke_key,
    shown,
)

keys_app = typer.Typer(
    help="Issue, list and revoke API keys (stored as SHA-256 hashes).", no_args_is_help=True
)

WorkspaceOption = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace GeoPackage or postgresql:// URL.")
]

#: the service, built by uvicorn in this process from the settings in the environment
APP_FACTORY = "api.serving:serving_app"
#: uvicorn's h11 protocol with a deadline for request headers (by name, like the app)
PROTOCOL_FACTORY = "api.serving:bounded_protocol"
#: the same protocol by name, for several processes (its default deadline for headers)
PROTOCOL_BY_NAME = "api.serving:BoundedH11Protocol"
#: largest request head (request line and headers) read: h11's default, stated
MAX_HEAD_BYTES = 16 * 1024


def require_api_extra(command: str) -> Any:
    """The ``uvicorn`` module, or a :class:`~gridkit.errors.MissingExtraError` naming
    the extra to install when the 'api' extra (FastAPI, uvicorn, pydantic-settings) is
    missing.

    Examples
    --------
    >>> require_api_extra("gridkit serve").__name__
    'uvicorn'
    """
    # optional dependencies, imported here only: `gridkit --help` and the commands that
    # do not serve work with the core dependencies alone
    _, uvicorn, _ = require_extra("api", command)
    return uvicorn


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a while, then put back what was there.

    Examples
    --------
    >>> import os
    >>> with environment(GRIDKIT_TITLE="demo"):
    ...     os.environ["GRIDKIT_TITLE"]
    'demo'
    >>> "GRIDKIT_TITLE" in os.environ
    False
    """
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve_workspace(
    workspace: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = True,
    header_timeout_s: float = 10.0,
    keep_alive_s: float = 5.0,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    processes: int = 1,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Run the API over ``workspace`` with uvicorn (blocks) in ``processes`` server
    processes (a PostGIS workspace only: see :func:`check_processes`); ``access_log``
    logs a line per request to the terminal (off for the fastest service).

    With ``ssl_certfile`` and ``ssl_keyfile`` (PEM) it serves HTTPS: phones allow the
    field app's offline cache, GPS and camera only on HTTPS pages (localhost aside).

    No client holds a connection for free: a request's headers must arrive within
    ``header_timeout_s`` (else 408 and the connection is closed), an idle kept-alive
    connection is closed after ``keep_alive_s``, the request head is at most 16 KiB,
    and the body has the app's deadline (``GRIDKIT_BODY_TIMEOUT_S``,
    ``GRIDKIT_MIN_BODY_RATE``).

    Behind a reverse proxy, the client's address (anonymous reports are rate-limited
    per client) comes from the proxy's ``X-Forwarded-For`` header, believed only from
    the addresses in ``forwarded_allow_ips`` (comma-separated, ``*`` for any; default
    uvicorn's: ``$FORWARDED_ALLOW_IPS`` or ``127.0.0.1``, a proxy on this machine).

    The app is built by uvicorn in each process from the factory
    ``api.serving:serving_app`` (:func:`api.create_app`, the objects of its start
    frozen out of the garbage collector), which reads its settings from ``GRIDKIT_*``
    environment variables: the workspace is passed as ``GRIDKIT_WORKSPACE`` (other
    ``GRIDKIT_*`` settings apply as set).

    Examples
    --------
    >>> serve_workspace(Path("demo-workspace/zhuzhou.gpkg"))  # doctest: +SKIP
    """
    uvicorn = require_api_extra("gridkit serve")
    from uvicorn.importer import import_from_string  # the 'api' extra, checked above

    # While serving, pandas keeps strings in Python objects: the service's work is many
    # small frames (a batch of reports, a patch), where Arrow-backed strings, pandas'
    # default, cost a pyarrow call per element or operation; the report writer runs
    # ~1.4x faster this way (benchmarks/bench_api.py). Restored when the server stops.
    with (
        pd.option_context("mode.string_storage", "python"),
        environment(GRIDKIT_WORKSPACE=str(workspace)),
    ):
        scheme = "https" if ssl_certfile else "http"
        err_console.print(
            f"serving {shown(workspace)} on {scheme}://{host}:{port}/ (Ctrl-C to stop); "
            f"field app at {scheme}://{host}:{port}/app/"
        )
        protocol = import_from_string(PROTOCOL_FACTORY)(header_timeout_s)
        if processes > 1:  # passed to each process by name (a made class does not pickle)
            protocol = PROTOCOL_BY_NAME
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            log_level="info",
            access_log=access_log,
            log_config=_log_config(),
            http=protocol,
            timeout_keep_alive=keep_alive_s,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
            ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
            workers=processes if processes > 1 else None,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
        )


def _log_config() -> dict:
    """uvicorn's logging, with the service's own messages (``gridkit.*``: reports no
    department handles, unexpected errors with their traceback) in the same format."""
    from uvicorn.config import LOGGING_CONFIG  # the 'api' extra: checked by the caller

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["gridkit"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve_cmd(
    workspace: Annotated[
        Path | None,
        typer.Argument(
            help="Workspace GeoPackage, or postgresql://user@host/db (default: "
            "GRIDKIT_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log a line per request.")
    ] = True,
    header_timeout: Annotated[
        float,
        typer.Option(help="Seconds a request's headers may take to arrive (else 408).", min=0.1),
    ] = 10.0,
    keep_alive: Annotated[
        float, typer.Option(help="Seconds an idle kept-alive connection stays open.", min=0.1)
    ] = 5.0,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(help="TLS certificate (PEM) to serve HTTPS; needs --ssl-keyfile."),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM) of --ssl-certfile.")
    ] = None,
    processes: Annotated[
        int, typer.Option(help="Server processes (a postgresql:// workspace only).", min=1)
    ] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies (comma-separated addresses, * for any) whose "
            "X-Forwarded-For gives the client's address (default: $FORWARDED_ALLOW_IPS "
            "or 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a workspace over HTTP(S): OGC API - Features, reports, patrols, maps, the
    field app at /app/."""
    require_api_extra("gridkit serve")
    if workspace is None:  # the database of the environment, as open_store takes it
        workspace = os.environ.get(DATABASE_URL_ENV) or None
        if workspace is None:
            raise GridkitError(
                f"no workspace given and {DATABASE_URL_ENV} is not set.",
                hint="gridkit serve WORKSPACE.gpkg, or gridkit serve postgresql://user@host/db.",
            )
    check_tls(ssl_certfile, ssl_keyfile)
    check_processes(workspace, processes)
    keys = list_keys(open_store(workspace))  # a missing or foreign file: one line, untouched
    if not (keys["revoked"] == 0).any():
        err_console.print(
            "no API key in this workspace yet: issue one (printed once) with\n"
            f"  gridkit keys add NAME --role admin --workspace {shown(workspace)}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    serve_workspace(
        workspace,
        host=host,
        port=port,
        access_log=access_log,
        header_timeout_s=header_timeout,
        keep_alive_s=keep_alive,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        processes=processes,
        forwarded_allow_ips=forwarded_allow_ips,
    )


def check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    """Refuse half a TLS setup or unreadable PEM files, in one line before serving.

    Examples
    --------
    >>> check_tls(None, None)
    >>> check_tls(Path("cert.pem"), None)
    Traceback (most recent call last):
    ...
    gridkit.errors.InputFileError: --ssl-certfile needs --ssl-keyfile (and the other way round).
    Hint: Give both PEM files: the certificate and its private key.
    """
    if certfile is None and keyfile is None:
        return
    if certfile is None or keyfile is None:
        raise InputFileError(
            "--ssl-certfile needs --ssl-keyfile (and the other way round).",
            hint="Give both PEM files: the certificate and its private key.",
        )
    for path in (certfile, keyfile):
        if not path.is_file():
            raise InputFileError(f"{path}: no such file.", hint="Check the path of the PEM file.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as exc:
        raise InputFileError(
            f"{certfile} / {keyfile}: not a certificate and its private key in PEM ({exc}).",
            hint="openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
            "-days 365 -subj /CN=HOST makes a self-signed pair for testing.",
        ) from None


def check_processes(workspace: Path | str, processes: int) -> None:
    """Refuse several server processes over a GeoPackage (one file, one writer).

    Examples
    --------
    >>> check_processes("postgresql://grid@db/zz", 4)
    >>> check_processes(Path("ws.gpkg"), 2)
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: --processes 2 needs a PostGIS workspace; ws.gpkg is ...
    Hint: Serve it with one process, or move it to PostGIS: gridkit db load ws.gpkg postgresql://...
    """
    if processes > 1 and database_url(workspace) is None:
        raise GridkitError(
            f"--processes {processes} needs a PostGIS workspace; {workspace} is a GeoPackage "
            "(one writer per file).",
            hint=f"Serve it with one process, or move it to PostGIS: gridkit db load "
            f"{workspace} postgresql://...",
        )


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="Who the key is for.")],
    role: Annotated[
        str,
        typer.Option(
            help="worker (a person: what they may do follows from their appointments), "
            "dispatcher, supervisor, department, viewer, planner or admin."
        ),
    ],
    workspace: WorkspaceOption,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="The person (workers layer).")
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            help="Admin code prefix the key is limited to (a person's key: default the "
            "person's own area, the admin_code of the workers layer)."
        ),
    ] = "",
    department: Annotated[
        str | None,
        typer.Option("--department", help="For department keys: the department (departments)."),
    ] = None,
    qr: Annotated[
        bool, typer.Option("--qr", help="Also show the key as a QR code (to sign in the app).")
    ] = False,
    qr_file: Annotated[
        Path | None,
        typer.Option("--qr-file", help="Save the QR code as PNG or SVG (implies --qr)."),
    ] = None,
    app_url: Annotated[
        str | None,
        typer.Option(
            "--app-url",
            help="The field app's address, e.g. https://grid.example.cn/app/: the QR code "
            "then opens the app signed in.",
        ),
    ] = None,
) -> None:
    """Issue a key and print it once (only its hash is stored)."""
    store = open_store(workspace)
    if department and not scope and "departments" in store.layers():
        d = store.read("departments")
        hit = d[d["department_id"].astype(str) == department]
        if not len(hit):
            raise GridkitError(
                f"{workspace}: no department {department!r} in the departments layer.",
                hint="gridkit keys add NAME --role department --department ID (an id of the "
                "departments layer).",
            )
        scope = str(hit["admin_code"].iloc[0])  # a department sees cases of its area
    request = check_key_requests([KeyRequest(name, role, scope, worker_id, department)])[0]
    check_known(store, [request], source=str(workspace))
    request = worker_scopes(store, [request])[0]
    scope = request.scope
    if qr_file is not None and qr_file.suffix.lower() not in (".png", ".svg"):
        raise InputFileError(f"{qr_file}: a QR code is saved as .png or .svg.", hint="Rename it.")
    secret, key = issue_key(
        store, name, role=role, scope=scope, worker_id=worker_id, department_id=department
    )
    err_console.print(
        f"key {key.key_id} for {name!r} ({role}"
        + (f", scope {scope}" if scope else "")
        + (f", department {department}" if department else "")
        + "); it is shown only once:"
    )
    print(secret)
    if qr or qr_file is not None:
        show_key_qr(secret, app_url=app_url, path=qr_file, terminal=qr)


def key_qr_text(secret: str, *, app_url: str | None = None) -> str:
    """What a key's QR code holds: the key, or a link to the field app that signs in
    with it (the key after ``#``: never sent to a server, kept out of logs).

    Examples
    --------
    >>> key_qr_text("gk_abc")
    'gk_abc'
    >>> key_qr_text("gk_abc", app_url="https://grid.example.cn/app/")
    'https://grid.example.cn/app/#key=gk_abc'
    """
    if not app_url:
        return secret
    return f"{app_url.split('#', 1)[0]}#key={secret}"


def show_key_qr(
    secret: str, *, app_url: str | None = None, path: Path | None = None, terminal: bool = False
) -> None:
    """Draw the key's QR code in the terminal (``terminal``; on standard error: standard
    output keeps the key alone) and save it to ``path`` (PNG or SVG) when given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     png = pathlib.Path(tmp) / "key.png"
    ...     show_key_qr("gk_abc", path=png)
    ...     png.read_bytes()[:4]
    b'\x89PNG'
    """
    try:
        import segno  # the 'api' extra, needed by this option only
    except ImportError as exc:
        raise MissingExtraError(
            "keys add --qr needs the 'api' extra: pip install \"gridkit[api]\"",
            hint="segno is not installed.",
        ) from exc
    code = segno.make(key_qr_text(secret, app_url=app_url), error="m")
    if terminal:
        code.terminal(out=sys.stderr, compact=True)
    if path is not None:
        code.save(str(path), scale=8, border=4)
        err_console.print(f"QR code saved to {path}: show it to the phone", highlight=False)


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
    requests, lines = read_key_requests(csv_file)
    store = open_store(workspace)
    check_known(store, requests, source=str(csv_file), rows=lines)
    issued = issue_keys(store, worker_scopes(store, requests))
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
        f"issued {plural(len(issued), 'key')} from {csv_file}"
        + (f" (lines {lines[0]}-{lines[-1]})" if lines else "")
        + ("" if out is None else f"; secrets in {out}")
        + ": they are shown only once, keep them safe"
    )


def worker_scopes(store: Store, requests: list[KeyRequest]) -> list[KeyRequest]:
    """A person's key without a scope limited to the person's own area (the
    ``admin_code`` of the workers layer): least privilege by default. A key for a wider
    area names it (``--scope 4302``); keys for no person, and workspaces without the
    layer or the code, are left as asked.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from gridkit.store import create_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> workers = pd.DataFrame({"worker_id": ["W1"], "admin_code": ["430211001001"]})
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"workers": workers})
    >>> [r.scope for r in worker_scopes(store, [KeyRequest("易超", "worker", worker_id="W1"),
    ...     KeyRequest("县河长", "worker", "4302", "W1"), KeyRequest("看", "viewer")])]
    ['430211001001', '4302', '']
    >>> tmp.cleanup()
    """
    if not any(r.worker_id and not r.scope for r in requests):
        return requests
    if "workers" not in store.layers():
        return requests
    workers = store.read("workers")
    if "admin_code" not in workers.columns:
        return requests
    codes = workers["admin_code"].astype("string")
    area = dict(zip(workers["worker_id"].astype(str), codes, strict=True))
    out = []
    for r in requests:
        code = area.get(str(r.worker_id)) if r.worker_id and not r.scope else None
        out.append(r._replace(scope=str(code)) if code is not None and not pd.isna(code) else r)
    return out


def check_known(
    store: Store, requests: list[KeyRequest], *, source: str, rows: list[int] | None = None
) -> None:
    """Refuse key requests naming a worker not in the ``workers`` layer, or a scope that
    is the prefix of no ``admin_code`` of ``admin_areas`` (a typo would give a key that
    sees nothing). A layer the workspace lacks is not checked.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from gridkit.store import create_store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> workers = pd.DataFrame({"worker_id": ["W1"]})
    >>> store = create_store(f"{tmp.name}/ws.gpkg", {"workers": workers})
    >>> check_known(store, [KeyRequest("张三", "worker", worker_id="W1")], source="cli")
    >>> check_known(store, [KeyRequest("李四", "worker", worker_id="W2")], source="keys.csv",
    ...             rows=[3])
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: keys.csv line 3: worker 'W2' is not in the workers layer ...
    Hint: Check the worker id (gridkit keys add ... --worker-id ID), or add the worker first.
    >>> tmp.cleanup()
    """
    layers = set(store.layers())
    where = [f"{source} line {r}" for r in rows] if rows else [source] * len(requests)
    if "workers" in layers and any(r.worker_id for r in requests):
        known = set(store.read("workers")["worker_id"].astype(str))
        for at, r in zip(where, requests, strict=True):
            if r.worker_id and r.worker_id not in known:
                raise GridkitError(
                    f"{at}: worker {r.worker_id!r} is not in the workers layer "
                    f"({plural(len(known), 'worker')}). Nothing was issued.",
                    hint="Check the worker id (gridkit keys add ... --worker-id ID), "
                    "or add the worker first.",
                )
    if "admin_areas" in layers and any(r.scope for r in requests):
        codes = store.read("admin_areas")["admin_code"].astype(str)
        for at, r in zip(where, requests, strict=True):
            if r.scope and not codes.str.startswith(r.scope).any():
                raise GridkitError(
                    f"{at}: scope {r.scope!r} matches no admin area of the workspace "
                    f"(codes such as {', '.join(codes.head(3))}). Nothing was issued.",
                    hint="A scope is the start of an admin code: a county's 6 digits, a "
                    "township's 9.",
                )


def read_key_requests(path: Path) -> tuple[list[KeyRequest], list[int]]:
    """Key requests from a CSV (UTF-8, or GB18030 as Excel saves it on Chinese Windows),
    with the line number of each.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sheet = pathlib.Path(tmp) / "keys.csv"
    ...     _ = sheet.write_text("name,role,worker_id\\n张三,worker,W1\\n\\n李四,viewer,\\n")
    ...     requests, lines = read_key_requests(sheet)
    >>> [(r.name, r.role, r.worker_id) for r in requests], lines
    ([('张三', 'worker', 'W1'), ('李四', 'viewer', None)], [2, 4])
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(
            f"{path}: cannot read ({exc.strerror}).", hint="Check the path of the CSV."
        ) from exc
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
    table = Table()
    df = list_keys(open_store(workspace))
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
    revoke_key(open_store(workspace), key_id)
    console.print(f"revoked {key_id}")
