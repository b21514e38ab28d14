"""The workspace at the command line: errors in one line (never a traceback, nothing
written on failure), the first minutes (keys, serve, demo --serve), and backups."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from gridkit.cli import main
from gridkit.store import list_keys, open_store
from tests.api.test_writes import field_workspace


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err: str) -> str:
    """The error line: exactly one, with a hint line, and no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, err
    assert any(ln.startswith("hint:") for ln in lines), err
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "text.gpkg"
    text.write_text("notes, not a database\n", encoding="utf-8")
    empty = tmp_path / "empty.gpkg"
    empty.touch()
    sqlite = tmp_path / "plain.gpkg"
    con = sqlite3.connect(sqlite)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    return {"text": text, "empty": empty, "plain": sqlite}


@pytest.mark.parametrize("kind", ["text", "empty", "plain", "missing"])
@pytest.mark.parametrize(
    "command",
    [
        ["serve", "{ws}"],
        ["keys", "list", "-w", "{ws}"],
        ["keys", "add", "张三", "--role", "viewer", "-w", "{ws}"],
        ["keys", "revoke", "abc", "-w", "{ws}"],
        ["backup", "{ws}", "{out}"],
    ],
)
def test_a_workspace_that_is_no_geopackage_is_one_line_and_left_alone(
    capsys, monkeypatch, tmp_path: Path, bad_files, kind: str, command: list[str]
) -> None:
    """`serve text.gpkg`, `keys add/list` on a non-GeoPackage raised sqlite3 errors;
    `serve empty.gpkg` turned the empty file into a 16 KB database."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("served"))
    ws = bad_files.get(kind, tmp_path / "none.gpkg")
    before = ws.read_bytes() if ws.exists() else None
    out = tmp_path / "copy.gpkg"
    args = [a.format(ws=ws, out=out) for a in command]
    code, _, err = run(capsys, *args)
    assert code == 1
    line = one_error(err)
    assert ws.name in line
    assert ("no such workspace" if kind == "missing" else "not a GeoPackage") in line
    # nothing written: the file as it was, no journal beside it, no copy
    assert (ws.read_bytes() if ws.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in bad_files.values())


@pytest.mark.parametrize("kind", ["text", "empty", "plain"])
def test_publish_into_a_file_that_is_no_workspace(capsys, tmp_path: Path, bad_files, kind) -> None:
    from gridkit.io import write_layer
    from gridkit.synth.ops import grid_units

    units = write_layer(grid_units(2, 2), tmp_path / "units.gpkg", "units")
    ws = bad_files[kind]
    before = ws.read_bytes()
    code, _, err = run(capsys, "publish", str(units), "--workspace", str(ws))
    assert code == 1
    assert "not a GeoPackage" in one_error(err)
    assert ws.read_bytes() == before


def test_gdal_errors_are_one_line(capsys, tmp_path: Path) -> None:
    """A file GDAL cannot open, read where gridkit does not check first: one line."""
    from gridkit.io import write_layer
    from tests.test_communities import make_city

    comm = write_layer(make_city(1)[0], tmp_path / "communities.gpkg", "communities")
    broken = tmp_path / "buildings.gpkg"
    broken.write_text("not a GeoPackage", encoding="utf-8")
    code, _, err = run(capsys, "split-communities", str(comm), "--buildings", str(broken),
                       "--max-households", "100", "-o", str(tmp_path / "out.gpkg"))  # fmt: skip
    assert code == 1
    assert "buildings.gpkg" in one_error(err)


def test_demo_into_a_directory_that_cannot_be_made(capsys) -> None:
    code, _, err = run(capsys, "demo", "--workspace", "/proc/x/w.gpkg")
    assert code == 1
    line = one_error(err)
    assert "/proc/x" in line


def test_demo_never_replaces_a_file_that_is_no_workspace(capsys, bad_files) -> None:
    code, _, err = run(capsys, "demo", "--workspace", str(bad_files["text"]))
    assert code == 1
    assert "not a GeoPackage" in one_error(err)
    assert bad_files["text"].read_text(encoding="utf-8") == "notes, not a database\n"


def test_os_errors_are_one_line(capsys, tmp_path: Path, rivers) -> None:
    """An OSError from deep inside a command (here: writing under a file, as if it were
    a directory) is one line and a hint, exit 1."""
    from gridkit.io import write_layer

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    code, _, err = run(capsys, "keys", "import", str(tmp_path / "nosuch.csv"), "-w", str(ws))
    assert code == 1
    assert "nosuch.csv" in one_error(err)
    path = write_layer(rivers, tmp_path / "r.gpkg", "rivers")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub" / "r.gpkg"
    code, _, err = run(capsys, "check", str(path), "--layer", "rivers", "-o", str(out))
    assert code == 1
    assert str(blocker) in one_error(err)


def test_errors_are_never_wrapped(capsys, tmp_path: Path) -> None:
    """A long path must stay on the error line (rich wrapped at 80 columns)."""
    deep = tmp_path / ("很长的目录名" * 12) / "workspace-with-a-long-name.gpkg"
    code, _, err = run(capsys, "keys", "list", "-w", str(deep))
    assert code == 1
    assert str(deep) in one_error(err)


# -- the first minutes ----------------------------------------------------------------


def test_serve_without_keys_says_how_to_get_one(capsys, monkeypatch, tmp_path: Path) -> None:
    import uvicorn

    from gridkit.store import create_store
    from gridkit.synth.ops import grid_units

    ws = create_store(tmp_path / "ws.gpkg", {"units": grid_units(2, 2)}).path
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    code, _, err = run(capsys, "serve", str(ws))
    assert code == 0, err
    assert f"gridkit keys add NAME --role admin --workspace {ws}" in err.splitlines()[0] or any(
        f"gridkit keys add NAME --role admin --workspace {ws}" in ln for ln in err.splitlines()
    )
    # with a key: no such line
    ws2, _ = field_workspace(tmp_path / "ws2.gpkg")
    code, _, err = run(capsys, "serve", str(ws2))
    assert code == 0 and "keys add" not in err


def test_demo_serve_port_and_unwrapped_key_and_url(capsys, monkeypatch, tmp_path: Path) -> None:
    """The key and the URL each whole on one line, whatever their length."""
    import uvicorn

    import gridkit.cli.app
    from gridkit.store import find_key

    ws, _ = field_workspace(tmp_path / ("长" * 30) / "ws.gpkg")
    monkeypatch.setattr(gridkit.cli.app, "run_demo", lambda path, seed: None)
    monkeypatch.setattr(gridkit.cli.app, "print_summary", lambda summary, console: None)
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(k))
    code, out, err = run(capsys, "demo", "--workspace", str(ws), "--serve", "--port", "8765")
    assert code == 0, err
    assert seen["port"] == 8765
    url = next(ln for ln in out.splitlines() if "http://" in ln).split("open ")[-1].strip()
    assert url.startswith("http://127.0.0.1:8765/maps/coverage?key=gk_")
    secret = url.split("key=")[1]
    assert find_key(open_store(ws), secret).role == "admin"


def test_keys_add_refuses_unknown_workers_and_scopes(capsys, tmp_path: Path) -> None:
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    n = len(list_keys(open_store(ws)))
    code, _, err = run(capsys, "keys", "add", "王五", "--role", "worker", "--worker-id", "W9",
                       "-w", str(ws))  # fmt: skip
    assert code == 1
    line = one_error(err)
    assert "W9" in line and "workers" in line
    code, _, err = run(capsys, "keys", "add", "主任", "--role", "supervisor", "--scope",
                       "440300", "-w", str(ws))  # fmt: skip
    assert code == 1
    assert "440300" in one_error(err)
    assert len(list_keys(open_store(ws))) == n  # nothing issued
    code, _, err = run(capsys, "keys", "add", "主任", "--role", "supervisor", "--scope",
                       "43020", "-w", str(ws))  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "keys", "add", "张三", "--role", "worker", "--worker-id", "W1",
                         "-w", str(ws))  # fmt: skip
    assert code == 0, err
    assert len(list_keys(open_store(ws))) == n + 2


def test_keys_import_refuses_unknown_workers(capsys, tmp_path: Path) -> None:
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    sheet = tmp_path / "keys.csv"
    sheet.write_text("name,role,worker_id\n张三,worker,W1\n王五,worker,W9\n", encoding="utf-8")
    n = len(list_keys(open_store(ws)))
    code, _, err = run(capsys, "keys", "import", str(sheet), "-w", str(ws))
    assert code == 1
    assert "W9" in one_error(err)
    assert len(list_keys(open_store(ws))) == n


def test_help_has_no_markup_and_documents_its_options(capsys) -> None:
    from gridkit.cli.app import app

    commands = [[c.name or c.callback.__name__] for c in app.registered_commands] + [
        ["keys", c.name] for c in app.registered_groups[0].typer_instance.registered_commands
    ]
    assert len(commands) >= 18
    for args in commands:
        code, out, _ = run(capsys, *args, "--help")
        assert code == 0
        assert "<bool>" not in out and "``" not in out and ":func:" not in out, out
    _, out, _ = run(capsys, "check", "--help")
    assert "gbk" in " ".join(out.split()).lower()  # --encoding is explained
    _, out, _ = run(capsys, "validate", "--help")
    text = " ".join(out.split())
    seg = text[text.index("--max-length") :][:120]
    assert "metre" in seg or " m " in seg or "length" in seg[13:], seg


def test_one_row_is_not_rows(capsys, tmp_path: Path, rivers) -> None:
    from gridkit.io import write_layer

    path = write_layer(rivers.head(1), tmp_path / "r.gpkg", "rivers")
    code, out, _ = run(capsys, "check", str(path), "--layer", "rivers", "-o",
                       str(tmp_path / "o.gpkg"))  # fmt: skip
    assert code == 0
    assert "1 rows" not in out and "1 row" in out


# -- backup ---------------------------------------------------------------------------


def test_backup_makes_a_copy_that_opens(capsys, tmp_path: Path) -> None:
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    out = tmp_path / "备份.gpkg"
    code, stdout, err = run(capsys, "backup", str(ws), str(out))
    assert code == 0, err
    assert out.name in stdout
    store = open_store(out)
    assert sorted(store.layers()) == sorted(open_store(ws).layers())
    assert len(store.read("units")) == 50
    assert len(list_keys(store)) == len(list_keys(open_store(ws)))
    code, _, err = run(capsys, "backup", str(ws), str(out))  # never overwrites
    assert code == 1 and "already exists" in one_error(err)


WRITER = """
import sys, pandas as pd
from gridkit.store import open_store
store = open_store(sys.argv[1])
base = store.read("assignments").iloc[:1]
for i in range(int(sys.argv[2])):
    store.append("assignments", base.assign(unit_id=f"U{i:05d}", worker_id="W1"))
    print(i, flush=True)
"""


def test_backup_while_another_process_writes_is_a_prefix(tmp_path: Path) -> None:
    """Backups taken while another process appends, one commit at a time: each copy
    passes integrity_check and holds the first k appended rows, for some k."""
    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    n_writes = 150
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(ws), str(n_writes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    writer.stdout.readline()  # the writer has started writing
    copies = []
    from gridkit.store import backup_workspace

    while writer.poll() is None and len(copies) < 8:
        copies.append(backup_workspace(ws, tmp_path / f"copy{len(copies)}.gpkg"))
    writer.communicate(timeout=120)
    assert writer.returncode == 0
    assert copies
    seen = set()
    for copy in copies:
        con = sqlite3.connect(copy)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        con.close()
        got = open_store(copy).read("assignments")["unit_id"].tolist()
        appended = [u for u in got if u.startswith("U")]
        assert got[:2] == ["430202001001-000", "430203001001-001"]
        assert appended == [f"U{i:05d}" for i in range(len(appended))]  # a prefix
        seen.add(len(appended))
    assert len(seen) > 1 or len(copies) == 1  # copies caught the writer at work


def test_backup_in_threads_while_the_store_writes(tmp_path: Path) -> None:
    """The same in one process: a thread appends through the store while backups run."""
    from gridkit.store import backup_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    store = open_store(ws)
    base = store.read("assignments").iloc[:1]
    done = threading.Event()

    def write() -> None:
        for i in range(80):
            store.append("assignments", base.assign(unit_id=f"U{i:05d}"))
        done.set()

    t = threading.Thread(target=write)
    t.start()
    copies = []
    while not done.is_set():
        copies.append(backup_workspace(ws, tmp_path / f"c{len(copies)}.gpkg"))
    t.join()
    for copy in copies:
        got = pd.Series(open_store(copy).read("assignments")["unit_id"])
        appended = got[got.str.startswith("U")].tolist()
        assert appended == [f"U{i:05d}" for i in range(len(appended))]
