"""A throwaway PostgreSQL 15 + PostGIS 3 cluster for the tests: initdb and pg_ctl in a
temporary directory, listening on loopback only; one per test process, stopped at exit
(and a durable one for benchmarks, see :func:`cluster`).

Without PostgreSQL/PostGIS on the machine the PostGIS tests skip, and fail under
``CI=true`` (CI installs them: see .ci/run), as the browser tests do.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

BIN = Path(os.environ.get("GRIDKIT_PG_BIN", "/usr/lib/postgresql/15/bin"))
_state: dict = {}
_durable: dict = {}  # the cluster with PostgreSQL's own durability (benchmarks)
_names = itertools.count()


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _missing() -> str | None:
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL at {BIN} (apt-get install postgresql postgresql-15-postgis-3)"
    if not Path("/usr/share/postgresql/15/extension/postgis.control").exists():
        return "no PostGIS 3 for PostgreSQL 15 (apt-get install postgresql-15-postgis-3)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return 'psycopg is not installed (pip install -e ".[postgis]")'
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(*, durable: bool = False) -> str:
    """The base URL of the running cluster (started on first use), or skip/fail.

    The tests' cluster runs without ``fsync`` (nothing of it outlives the run); a
    ``durable`` one (another cluster, PostgreSQL's own settings: each commit flushed
    to disk, full pages written) is what a benchmark of durable writes measures."""
    state = _durable if durable else _state
    if "url" in state:
        return state["url"]
    reason = _state.get("error") or _missing()
    if reason is not None:
        _state["error"] = reason
        if os.environ.get("CI"):
            pytest.fail(f"PostGIS tests cannot run in CI: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="gridkit-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    run = _as_postgres()
    subprocess.run(
        [*run, str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True,
    )  # fmt: skip
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock} "
        "-c max_connections=200"
    )
    if not durable:
        opts += " -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [*run, str(BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
         "-w", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    state.update(root=root, data=data, opts=opts, port=port)
    atexit.register(stop)
    url = f"postgresql://postgres@127.0.0.1:{port}"
    import psycopg

    with psycopg.connect(f"{url}/postgres", autocommit=True) as con:
        con.execute("CREATE DATABASE gridkit_template")
    with psycopg.connect(f"{url}/gridkit_template", autocommit=True) as con:
        con.execute("CREATE EXTENSION postgis")
    state["url"] = url
    return url


def new_database(*, durable: bool = False) -> str:
    """The URL of a new empty database with PostGIS (no gridkit schema yet), in the
    ``durable`` cluster or the tests' (see :func:`cluster`)."""
    import psycopg

    base = cluster(durable=durable)
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name} TEMPLATE gridkit_template")
    return f"{base}/{name}"


def pg_ctl(action: str) -> None:
    """Stop or start the cluster (``stop`` fast, ``start``): the database going away."""
    run = _as_postgres()
    args = (
        ["-m", "fast"]
        if action == "stop"
        else ["-o", _state["opts"], "-l", str(_state["root"] / "log")]
    )
    subprocess.run(
        [*run, str(BIN / "pg_ctl"), "-D", str(_state["data"]), *args, "-w", action],
        check=True, capture_output=True,
    )  # fmt: skip


def stop() -> None:
    for state in (_state, _durable):
        if "data" in state:
            subprocess.run(
                [*_as_postgres(), str(BIN / "pg_ctl"), "-D", str(state["data"]), "-m",
                 "immediate", "stop"],
                capture_output=True,
            )  # fmt: skip
            shutil.rmtree(state["root"], ignore_errors=True)
            state.clear()
