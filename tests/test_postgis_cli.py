"""The commands a new user of docs/postgis.md runs, on a database URL: every command that
takes a workspace takes the URL; the password is never shown; connection errors that
last say what to fix; missing privileges are one line naming the fix.

A throwaway cluster (tests/postgis_cluster.py): skipped without PostgreSQL, failing
under CI.
"""

from __future__ import annotations

import os
import time
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


def test_validate_takes_url_layer(loaded, capsys) -> None:
    code, out = run(capsys, "validate", f"{loaded}:units")
    _clean(code, out)
    assert "unsupported file type" not in out and "25 units" in out, out


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
        # a typo in the host: not an outage to wait out
        "postgresql://grid@nohost.invalid/zz": ("nohost.invalid", "Check the host name"),
    }
    wrong = _password_role(base, f"pw{os.getpid()}")
    cases[wrong] = ("password authentication failed for user", "user and password")
    for url, (reason, fix) in cases.items():
        code, out = run(capsys, "keys", "list", "--workspace", url)
        assert code == 1 and reason in out and fix in out, out
        assert "Try again shortly" not in out and "Traceback" not in out, out
        assert len(out.strip().splitlines()) == 2  # error and hint
        assert SECRET not in out, out
    # the server not there: that one may pass, so try again shortly
    code, out = run(capsys, "keys", "list", "--workspace", "postgresql://x:pw@127.0.0.1:1/none")
    assert code == 1 and "Try again shortly" in out and "pw@" not in out, out


def _password_role(base: str, name: str) -> str:
    """A role whose password the server checks (a pg_hba line for it alone): the URL of
    a connection as it with a wrong password."""
    import psycopg

    _role(base, name)
    hba = postgis_cluster._state["data"] / "pg_hba.conf"
    text = hba.read_text()
    if f" {name} " not in text:
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n{text}")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as con:
        con.execute("SELECT pg_reload_conf()")
    url = base.replace("postgres@", f"{name}:not-{SECRET}@", 1) + "/postgres"
    for _ in range(50):  # the server reloads its configuration on a signal: wait for it
        try:
            psycopg.connect(url).close()
        except psycopg.OperationalError:
            return url
        time.sleep(0.1)
    raise AssertionError("the server never began checking the password")


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


def _gappy_workspace(path: Path) -> Path:
    """Layers with gaps in booleans and integers and empty time columns, as the demo's."""
    import geopandas as gpd
    import shapely

    from gridkit.io import write_layer

    t = pd.Timestamp("2026-05-01T08:00:00Z")
    pts = [shapely.Point(113.0 + k / 100, 27.7) for k in range(3)]
    patrols = gpd.GeoDataFrame(
        {
            "patrol_id": ["P1", "P2", "P3"],
            "worker_id": ["W1", "W1", "W2"],
            "started_at": [t, t, t],
            "ended_at": [t + pd.Timedelta("1h")] * 3,
            "teleport": pd.array([True, None, False], dtype="boolean"),
            "too_short": pd.array([None, False, False], dtype="boolean"),
            "implausible_speed": pd.array([False, None, None], dtype="boolean"),
            "verified": pd.array([None, True, False], dtype="boolean"),
            "n_points": pd.array([12, None, 3], dtype="Int64"),
        },
        geometry=[shapely.LineString([(113, 27.7), (113.01, 27.71)])] * 3,
        crs=4326,
    )
    reports = gpd.GeoDataFrame(
        {
            "report_id": ["R1", "R2", "R3"],
            "category": "floating_garbage",
            "status": "reported",
            "reported_at": [t, t, t],
            "paused_at": pd.Series([pd.NaT] * 3, dtype="datetime64[ms, UTC]"),
            "restored_from": pd.array([None, 4, None], dtype="Int64"),
            "urgent": pd.array([True, None, False], dtype="boolean"),
        },
        geometry=pts,
        crs=4326,
    )
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["U1", "U2", "U3"],
            "kind": "community_grid",
            "parent_id": "C1",
            "admin_code": "430202001001",
            "households": pd.array([4242, None, 7], dtype="Int64"),
        },
        geometry=[p.buffer(0.004, 4) for p in pts],
        crs=4326,
    )
    heads = pd.DataFrame(
        {
            "building_id": ["B1", "B2"],
            "worker_id": ["W1", "W2"],
            "valid_from": pd.Series([pd.NaT] * 2, dtype="datetime64[ms, UTC]"),
            "valid_to": pd.Series([pd.NaT] * 2, dtype="datetime64[ms, UTC]"),
        }
    )
    for name, df in {"patrols": patrols, "reports": reports, "units": units,
                     "building_heads": heads}.items():  # fmt: skip
        write_layer(df, path, name)
    return path


def test_load_then_dump_keeps_types_with_gaps(capsys, tmp_path: Path) -> None:
    import pyogrio

    from gridkit.io import read_layer

    ws = _gappy_workspace(tmp_path / "ws.gpkg")
    db = postgis_cluster.new_database()
    code, out = run(capsys, "db", "load", str(ws), db)
    assert code == 0, out
    types = dict(
        _sql(
            db,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    )
    for col, want in {
        "patrols.teleport": "boolean", "patrols.verified": "boolean",
        "patrols.too_short": "boolean", "patrols.n_points": "bigint",
        "reports.paused_at": "timestamp with time zone", "reports.restored_from": "bigint",
        "reports.urgent": "boolean", "units.households": "bigint",
        "building_heads.valid_from": "timestamp with time zone",
        "building_heads.valid_to": "timestamp with time zone",
    }.items():  # fmt: skip
        assert types[col] == want, (col, types[col])
    back = tmp_path / "back.gpkg"
    code, out = run(capsys, "db", "dump", db, str(back))
    assert code == 0, out
    for name in ("patrols", "reports", "units", "building_heads"):
        a, b = pyogrio.read_info(ws, layer=name), pyogrio.read_info(back, layer=name)
        declared = dict(zip(b["fields"], b["dtypes"], strict=True))
        for col, dtype in zip(a["fields"], a["dtypes"], strict=True):
            assert declared[col] == dtype, (name, col, declared[col], dtype)
        before, after = read_layer(ws, name, check=False), read_layer(back, name, check=False)
        cols = [c for c in before.columns if c != "geometry"]
        pd.testing.assert_frame_equal(pd.DataFrame(after[cols]), pd.DataFrame(before[cols]))


def _sql(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        cur = con.execute(sql)
        return cur.fetchall() if cur.description else []


def test_load_refuses_what_would_lose_data_or_cannot_be_a_table(capsys, tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    from gridkit.io import write_layer
    from gridkit.store import open_store

    ws = _gappy_workspace(tmp_path / "ws.gpkg")
    db = postgis_cluster.new_database()
    assert run(capsys, "db", "load", str(ws), db)[0] == 0
    store = open_store(db)  # a report taken since the load
    store.append("reports", store.read("reports").iloc[:1].assign(report_id="R9"))
    store.close()
    code, out = run(capsys, "db", "load", str(ws), _with_password(db))
    assert code == 1 and "reports (4 rows)" in out and "units (3 rows)" in out, out
    assert "--replace" in out and "db dump" in out and SECRET not in out, out
    assert len(_sql(db, "SELECT 1 FROM reports")) == 4  # untouched
    code, out = run(capsys, "db", "load", str(ws), db, "--replace")
    assert code == 0 and len(_sql(db, "SELECT 1 FROM reports")) == 3, out
    # a file of other layers: refused; a foreign layer beside the contract's: a warning
    points = gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.Point(113, 27)], crs=4326)
    other = write_layer(points, tmp_path / "other.gpkg", "points")
    code, out = run(capsys, "db", "load", str(other), postgis_cluster.new_database())
    assert code == 1 and "no layer of the gridkit contract (it has points)" in out, out
    write_layer(points, ws, "points")
    fresh = postgis_cluster.new_database()
    code, out = run(capsys, "db", "load", str(ws), fresh)
    assert code == 0 and "warning:" in out and "points is not in the gridkit contract" in out
    # a Chinese column name: the file, layer and column named, and the fix
    write_layer(points.rename(columns={"n": "名称"}), ws, "units")
    code, out = run(capsys, "db", "load", str(ws), postgis_cluster.new_database())
    assert code == 1 and "column '名称' of layer 'units'" in out and str(ws) in out, out
    assert "--columns 名称=name" in out and "Traceback" not in out, out


def test_a_privilege_missing_midway_is_one_line(capsys) -> None:
    base = postgis_cluster.cluster()
    app = _role(base, f"reader{os.getpid()}")
    user = app.split("//")[1].split(":")[0]
    db = postgis_cluster.new_database()
    assert run(capsys, "db", "upgrade", db)[0] == 0
    _sql(db, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}")  # reads only
    app_db = f"{app}/{db.rsplit('/', 1)[1]}"
    code, out = run(capsys, "keys", "list", "-w", app_db)
    assert code == 0, out
    code, out = run(capsys, "keys", "add", "张三", "--role", "viewer", "-w", app_db)
    assert code == 1 and "permission denied for schema public" in out, out
    assert "GRANT CREATE ON SCHEMA public TO " in out, out
    assert "Traceback" not in out and SECRET not in out and len(out.strip().splitlines()) == 2
