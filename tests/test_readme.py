"""The README's examples run as written (issue 18).

Python blocks run in order, one namespace per section (``<!-- readme-test: continues -->``
before a block joins the previous block's namespace; ``<!-- readme-test: skip (why) -->``
leaves it out). Console blocks run their ``gridkit ...`` lines through
:func:`gridkit.cli.main` on files the test makes, checking exit codes and any output the
README shows; their ``curl`` lines go to the app in-process (TestClient), with the keys
``$KEY`` and ``$PLANNER_KEY`` issued by :func:`gridkit.store.issue_key`. In a block marked
``<!-- readme-test: in-process (...) -->`` ``gridkit serve`` is not started (the app
in-process stands in) and ``gridkit demo`` is stood in for by a sample workspace (the demo
itself is tested in ``tests/test_demo.py``; 22 s is over this test's budget).
"""

from __future__ import annotations

import re
import shlex
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

import gridkit
from gridkit.cli import main
from gridkit.io import write_layers
from gridkit.synth import sample_layers

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(
    r"(?:<!--\s*readme-test:\s*(?P<marker>.*?)\s*-->\s*\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.S | re.M,
)
BUDGET_S = 60.0


@dataclass
class Block:
    section: str
    lang: str
    marker: str
    body: str
    line: int


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` in order, with their section and marker."""
    heads = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.+)$", text, re.M)]
    out = []
    for m in BLOCK.finditer(text):
        section = next((h for pos, h in reversed(heads) if pos < m.start()), "")
        line = text.count("\n", 0, m.start("lang")) + 1
        out.append(Block(section, m.group("lang"), m.group("marker") or "", m.group("body"), line))
    return out


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_blocks_are_found() -> None:
    langs = [b.lang for b in BLOCKS]
    assert langs.count("python") >= 8 and langs.count("console") >= 7
    known = ("continues", "skip", "in-process")
    assert all(b.marker == "" or b.marker.startswith(known) for b in BLOCKS), [
        b.marker for b in BLOCKS
    ]


# -- files the examples use ----------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    layers = sample_layers(seed=1, n_buildings=2_000, n_communities=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        units = gridkit.split_communities(
            layers["communities"], layers["buildings"], max_households=300
        )
        assignments = gridkit.assign_workers(units, layers["workers"]).assignments
    return {**layers, "units": units, "assignments": assignments}


def make_files(root: Path, sample: dict[str, pd.DataFrame]) -> None:
    """Every file the README's commands name, in ``root``."""
    write_layers(sample, root / "ws.gpkg")  # stands in for `gridkit demo --workspace ws.gpkg`
    write_layers({"rivers": sample["rivers"]}, root / "rivers.gpkg")
    write_layers({"admin_areas": sample["admin_areas"]}, root / "admin.gpkg")
    write_layers({"units": sample["units"]}, root / "units.gpkg")
    write_layers({"units": sample["units"]}, root / "old.gpkg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        redrawn = gridkit.split_communities(
            sample["communities"], sample["buildings"], max_households=350
        )
    write_layers({"units": redrawn}, root / "new.gpkg")
    write_layers({"units": redrawn}, root / "redrawn.gpkg")
    worker = sample["assignments"].worker_id.iloc[0]
    code = sample["workers"].set_index("worker_id").admin_code[worker]
    (root / "staff.csv").write_text(
        f"name,role,scope,worker_id\n李四,worker,{code},{worker}\n王科长,viewer,430211,\n",
        encoding="utf-8",
    )


# -- Python blocks -------------------------------------------------------------------


def python_runs() -> list[list[Block]]:
    runs: list[list[Block]] = []
    for b in BLOCKS:
        if b.lang != "python" or b.marker.startswith("skip"):
            continue
        if b.marker.startswith("continues") and runs:
            runs[-1].append(b)
        elif runs and runs[-1][-1].section == b.section:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


@pytest.fixture
def py_tmp(tmp_path: Path, sample, monkeypatch) -> Path:
    """What the Python blocks read: the demo's workspace (here the sample's layers)."""
    (tmp_path / "demo-workspace").mkdir()
    write_layers(sample, tmp_path / "demo-workspace" / "zhuzhou.gpkg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def in_tmp(tmp_path: Path, sample, monkeypatch) -> Path:
    make_files(tmp_path, sample)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_python_examples_run(py_tmp: Path, capsys) -> None:
    start = time.perf_counter()
    for run in python_runs():
        namespace: dict[str, object] = {"__name__": "readme"}
        for block in run:
            code = compile(block.body, f"README.md:{block.line}", "exec")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(code, namespace)  # the README's own examples
    made = ["areas.geojson", "coverage.html", "assessment.xlsx"]
    assert all((py_tmp / name).stat().st_size > 0 for name in made)
    published = gridkit.versions.versions(py_tmp / "ws.gpkg")
    assert published.note.tolist() == ["tighter cap in 荷塘社区"]
    assert time.perf_counter() - start < BUDGET_S


# -- console blocks ------------------------------------------------------------------


def console_lines(body: str) -> list[tuple[str, list[str]]]:
    """(command, shown output) pairs; ``\\`` continues a command on the next line."""
    out: list[tuple[str, list[str]]] = []
    prompt = any(line.startswith("$ ") for line in body.splitlines())
    pending = ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if pending:
            pending += " " + line.strip()
        elif prompt and not line.startswith("$ "):
            out[-1][1].append(line)
            continue
        else:
            pending = line.removeprefix("$ ")
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        out.append((pending, []))
        pending = ""
    return out


def curl(client, command: str, env: dict[str, str]):
    """Send a curl command line to the in-process app."""
    args = [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], a) for a in shlex.split(command)[1:]]
    method, headers, data, files, form, url = None, {}, None, {}, {}, None
    it = iter(args)
    for a in it:
        if a == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif a == "-X":
            method = next(it)
        elif a == "-d":
            data = next(it)
        elif a == "-F":
            name, _, value = next(it).partition("=")
            if value.startswith("@"):
                path = Path(value[1:])
                files[name] = (path.name, path.read_bytes(), "application/octet-stream")
            else:
                form[name] = value
        else:
            url = a
    path = re.sub(r"^https?://[^/]+", "", url)
    method = method or ("POST" if data is not None or files else "GET")
    if files:
        return client.request(method, path, headers=headers, files=files, data=form)
    return client.request(method, path, headers=headers, content=data)


def test_console_examples_run(in_tmp: Path, sample, capsys) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api import create_app
    from gridkit.store import issue_key, open_store

    store = open_store(in_tmp / "ws.gpkg")
    env = {
        "KEY": issue_key(store, "示例", role="admin")[0],
        "PLANNER_KEY": issue_key(store, "规划", role="planner")[0],
    }
    # the README's `check` example shows a file that lacks river_id
    line = sample["rivers"].geometry.iloc[:1].values
    bad = gpd.GeoDataFrame({"rid": ["R1"], "name": ["湘江"]}, geometry=line, crs=4326)
    bad.to_file(in_tmp / "bad_rivers.gpkg", layer="rivers")
    client = None
    start = time.perf_counter()
    statuses, commands = [], []
    for block in BLOCKS:
        if block.lang not in ("console", "bash") or block.marker.startswith("skip"):
            continue
        last = 0
        for command, shown in console_lines(block.body):
            if command.startswith("#") or not command.strip():
                continue
            if command.startswith("curl "):
                client = client or TestClient(create_app(workspace=in_tmp / "ws.gpkg"))
                r = curl(client, command, env)
                assert r.status_code < 300, (block.line, command, r.status_code, r.text)
                statuses.append(r.status_code)
                continue
            args = shlex.split(command, comments=True)
            if args[0] == "echo" and args[1:] == ["$?"]:
                assert shown == [str(last)], (block.line, shown, last)
                continue
            if args[0] != "gridkit":
                continue  # pip, pytest, ruff, lint-imports
            if block.marker.startswith("in-process") and args[1] in ("serve", "demo"):
                continue  # see the module docstring
            if args[1:3] == ["check", "rivers.gpkg"] and shown:
                args[2] = "bad_rivers.gpkg"  # the file of the example, not the good one
            capsys.readouterr()
            last = main(args[1:])
            commands.append(args[1])
            out, err = capsys.readouterr()
            if shown:
                text = (out + err).replace("bad_rivers.gpkg", "rivers.gpkg")
                assert [line for line in text.splitlines() if line] == shown, (block.line, text)
            else:
                assert last == 0, (block.line, command, out, err)
    assert statuses == [200, 201, 201]
    assert len(commands) == 12 and commands.count("split-communities") == 2, commands
    made = ["grid.gpkg", "grids.gpkg", "lineage.parquet", "staffing.gpkg", "coverage.html"]
    assert all((in_tmp / name).stat().st_size > 0 for name in [*made, "issued.csv"])
    assert time.perf_counter() - start < BUDGET_S
