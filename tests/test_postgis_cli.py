"""The commands a new user of docs/postgis.md runs, on a database URL: every command that
takes a workspace takes the URL; the password is never shown; connection errors that
last say what to fix; missing privileges are one line naming the fix.

A throwaway cluster (tests/postgis_cluster.py): skipped without PostgreSQL, failing
under CI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from gridkit.cli import main
from gridkit.store.transfer import load
from tests import postgis_cluster

SECRET = "s3cret-pw"


def run(capsys, *args: str) -> tuple[int, str]:
    """``gridkit ARGS``: exit code, and what it printed (out and err)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def _with_password(url: str) -> str:
    """The URL with a password (the cluster trusts loopback: any password works)."""
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> str:
    """A database the API's test workspace was loaded into, its URL with a password."""
    from tests.api.conftest import make_workspace

    url = postgis_cluster.new_database()
    load(make_workspace(tmp_path_factory.mktemp("ws") / "ws.gpkg", n=25), url)
    return _with_password(url)


def _clean(code: int, out: str) -> None:
    assert SECRET not in out, out
    assert "Traceback" not in out and "no such workspace" not in out, out
    assert "postgresql:/p" not in out  # a URL shown whole, never folded by a Path


def test_every_workspace_command_takes_a_url_and_never_shows_the_password(
    loaded, capsys, tmp_path: Path
) -> None:
    masked = loaded.replace(SECRET, "***")
    code, out = run(capsys, "check", loaded, "-l", "units")
    _clean(code, out)
    assert code == 0 and f"ok {masked}: layer 'units', 25 rows" in out, out
    code, out = run(capsys, "reports", "export", loaded, "-o", str(tmp_path / "e.csv"))
    _clean(code, out)
    assert code == 0, out
    calls = tmp_path / "calls.csv"
    pd.DataFrame(
        {"report_id": ["R1"], "result": ["满意"], "at": ["2026-05-03T08:00:00+08:00"]}
    ).to_csv(calls, index=False)
    code, out = run(capsys, "callbacks", "record", str(calls), "-w", loaded)
    _clean(code, out)
    code, out = run(capsys, "callbacks", "satisfaction", loaded, "-o", str(tmp_path / "s.csv"))
    _clean(code, out)
    for cmd in ("missed", "targets", "heads"):  # the demo's layers are not all here
        code, out = run(capsys, cmd, loaded, "-o", str(tmp_path / f"{cmd}.csv"))
        _clean(code, out)
        assert code == 0 or f"{masked}: no " in out, out
    tickets = tmp_path / "tickets.csv"
    pd.DataFrame(
        {"ticket_id": ["T1"], "received_at": ["2026-05-02 09:00"], "description": ["路灯不亮"],
         "category": ["streetlight"], "lon": [113.005], "lat": [27.705]}
    ).to_csv(tickets, index=False)  # fmt: skip
    code, out = run(capsys, "reports", "import", str(tickets), "-w", loaded, "--dry-run")
    _clean(code, out)
    # a database is not copied by gridkit backup: one line naming pg_dump
    code, out = run(capsys, "backup", loaded, str(tmp_path / "b.gpkg"))
    _clean(code, out)
    assert code == 1 and "pg_dump" in out and "db dump" in out, out
    assert not (tmp_path / "b.gpkg").exists()
    # errors that name the URL mask it too
    code, out = run(capsys, "map", f"{loaded}:rivers", "-o", str(tmp_path / "r.html"))
    _clean(code, out)
    assert code == 1 and f"{masked} has no layer 'rivers'" in out, out


def test_escalate_at_garbage_is_one_line(loaded, capsys, tmp_path: Path) -> None:
    from tests.api.conftest import make_workspace

    for ws in (loaded, str(make_workspace(tmp_path / "ws.gpkg", n=4))):
        code, out = run(capsys, "escalate", ws, "--at", "garbage")
        assert code == 1 and "--at 'garbage': not a time" in out and "ISO 8601" in out, out
        assert "Traceback" not in out and "DateParseError" not in out


def test_lasting_connection_errors_say_what_to_fix(capsys) -> None:
    base = postgis_cluster.cluster()
    db = postgis_cluster.new_database()
    cases = {
        f"{base}/no_such_db": ('database "no_such_db" does not exist', "createdb"),
        _with_password(base.replace("postgres@", "nobody@") + "/postgres"): (
            'role "nobody" does not exist',
            "user and password",
        ),
        f"{db}?sslmode=bogus": ('invalid sslmode value: "bogus"', "Check the URL"),
        f"{db}?bogus_option=1": ('invalid URI query parameter: "bogus_option"', "Check the URL"),
    }
    for url, (reason, fix) in cases.items():
        code, out = run(capsys, "keys", "list", "--workspace", url)
        assert code == 1 and reason in out and fix in out, out
        assert "Try again shortly" not in out and "Traceback" not in out, out
        assert len(out.strip().splitlines()) == 2  # error and hint
        assert SECRET not in out
    # the server not there: that one may pass, so try again shortly
    code, out = run(capsys, "keys", "list", "--workspace", "postgresql://x:pw@127.0.0.1:1/none")
    assert code == 1 and "Try again shortly" in out and "pw@" not in out, out


def _role(base: str, name: str) -> str:
    """A login role that is no superuser; its URL's base."""
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as con:
        con.execute(f"DROP ROLE IF EXISTS {name}")
        con.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{SECRET}'")
    return base.replace("postgres@", f"{name}:{SECRET}@", 1)


def test_missing_privileges_are_one_line_naming_the_fix(capsys) -> None:
    import psycopg

    base = postgis_cluster.cluster()
    app = _role(base, f"app{os.getpid()}")
    user = app.split("//")[1].split(":")[0]
    name = f"bare{os.getpid()}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as con:  # no PostGIS in it
        con.execute(f"CREATE DATABASE {name} OWNER {user} TEMPLATE template0")
    code, out = run(capsys, "db", "upgrade", f"{app}/{name}")
    assert code == 1 and 'permission denied to create extension "postgis"' in out, out
    assert "CREATE EXTENSION postgis" in out and "superuser" in out, out
    assert "Traceback" not in out and SECRET not in out
    # made by a superuser, used by the app's role: GRANT, or run as the owner
    db = postgis_cluster.new_database()
    code, out = run(capsys, "db", "upgrade", db)
    assert code == 0, out
    app_db = f"{app}/{db.rsplit('/', 1)[1]}"
    for args in (("keys", "add", "张三", "--role", "viewer", "-w", app_db),
                 ("keys", "list", "-w", app_db)):  # fmt: skip
        code, out = run(capsys, *args)
        assert code == 1 and "permission denied for table" in out, out
        assert f"TO {user};" in out and "GRANT" in out and "Traceback" not in out, out
        assert SECRET not in out
