"""Escalation (督办) run by several writers at once, on both backends: two ``gridkit
escalate`` processes started together, runs in threads each with its own store (as the
processes of ``gridkit serve --processes 2`` are), and the service's scheduler run twice
at once in one process. Whatever the interleaving, each lapse is escalated once: one
``escalate`` event per case and level, never two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.cli.cases import escalate_cmd
from gridkit.io import write_layer
from gridkit.ops.cases import escalate
from gridkit.ops.reports import normalise_reports
from gridkit.store import open_store
from gridkit.store.transfer import load
from tests import postgis_cluster

N_CASES = 40
AT = "2026-05-03T00:00Z"  # 24-48 h past the deadlines: level 1 (2 for some)
ROOT = Path(__file__).parents[1]


def _overdue_workspace(path: Path, n: int = N_CASES) -> Path:
    """Units, and ``n`` cases in 处置 past their deadline, in two districts."""
    t = pd.Timestamp("2026-05-01T00:00Z")
    xs = 113.0 + (np.arange(n) % 10) * 0.01
    district = np.where(np.arange(n) % 2 == 0, "430202", "430203")
    reports = gpd.GeoDataFrame(
        {
            "report_id": [f"R{i:07d}" for i in range(1, n + 1)],
            "category": "floating_garbage",
            "description": [f"河面漂浮垃圾 {i}" for i in range(n)],
            "source": "patrol",
            "status": "handling",
            "admin_code": [f"{d}001001" for d in district],
            "lead_department_id": "D1",
            "reported_at": t,
            # some 1 h late at AT (level 1), some 30 h (level 2 with a 24 h repeat)
            "due_at": [t + pd.Timedelta(hours=47 if i % 3 else 18) for i in range(n)],
        },
        geometry=shapely.points(xs, np.full(n, 27.705)),
        crs=4326,
    )
    # as a served workspace has them: the contract's columns (escalation's among them)
    # and each case's history so far
    reports = normalise_reports(reports)
    write_layer(reports, path, "reports")
    events = pd.DataFrame(
        {
            "report_id": reports["report_id"],
            "at": t,
            "actor_id": "W1",
            "action": "report",
            "from_status": None,
            "to_status": "handling",
            "note": "上报",
            "evidence": None,
            "due_at": reports["due_at"],
        }
    )
    write_layer(events, path, "report_events")
    return path


@pytest.fixture(params=["gpkg", "postgis"])
def ws(request, tmp_path: Path) -> str:
    path = _overdue_workspace(tmp_path / "ws.gpkg")
    if request.param == "gpkg":
        return str(path)
    url = postgis_cluster.new_database()  # skips, or fails under CI=true, without PostGIS
    load(path, url)
    return url


def _check_once(ws: str) -> pd.DataFrame:
    """Every case escalated once, to the level one run alone gives it."""
    store = open_store(ws)
    events = store.read("report_events")
    reports = store.read("reports")
    getattr(store, "close", lambda: None)()
    esc = events[events["action"] == "escalate"]
    alone = escalate(_overdue_workspace_frame(), at=AT)
    want = alone.events.groupby("report_id").size()
    got = esc.groupby("report_id").size()
    assert len(want) == N_CASES
    dup = got[got > 1]
    assert dup.empty, f"{len(dup)} case(s) escalated more than once: {dup.head().to_dict()}"
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    assert not esc.duplicated(["report_id", "note"]).any()
    levels = reports.set_index("report_id")["escalation_level"].astype(int)
    expected = alone.reports.set_index("report_id")["escalation_level"].astype(int)
    assert levels.sort_index().to_dict() == expected.sort_index().to_dict()
    return esc


_FRAME: list[gpd.GeoDataFrame] = []


def _overdue_workspace_frame() -> gpd.GeoDataFrame:
    if not _FRAME:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = _overdue_workspace(Path(tmp) / "x.gpkg")
            _FRAME.append(gpd.read_file(path, layer="reports"))
    return _FRAME[0]


def test_two_escalate_processes_started_together_escalate_each_case_once(ws: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "gridkit.cli", "escalate", ws, "--at", AT]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    _check_once(ws)
    # and a third run afterwards finds nothing
    third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert "no case to escalate" in third.stdout


@pytest.mark.parametrize("runs", [2, 3])
def test_runs_in_threads_each_with_its_own_store_escalate_each_case_once(
    ws: str, runs: int
) -> None:
    start = threading.Barrier(runs)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            escalate_cmd(Path(ws) if not ws.startswith("postgresql") else ws, at=AT)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    _check_once(ws)


def test_the_service_scheduler_run_twice_at_once_escalates_each_case_once(ws: str) -> None:
    pytest.importorskip("fastapi")
    from api.app import create_app
    from api.cases import run_escalation

    service = create_app(workspace=ws).state.service
    other = create_app(workspace=ws).state.service  # a second process's service
    start = threading.Barrier(3)
    done: list[list[str]] = []

    def run(svc) -> None:
        start.wait()
        done.append(run_escalation(svc, at=AT))

    threads = [threading.Thread(target=run, args=(s,)) for s in (service, service, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sum(len(d) for d in done) == N_CASES
    esc = _check_once(ws)
    assert sorted(esc["report_id"]) == sorted(i for d in done for i in d)
    assert run_escalation(service, at=AT) == []


def test_serve_with_two_processes_escalates_each_case_once(tmp_path: Path) -> None:
    """The tester's run: ``gridkit serve URL --processes 2``; both workers escalate at
    startup (the cases are months past their deadlines: the top level at once)."""
    from tests.test_postgis_processes import _port, _serve

    url = postgis_cluster.new_database()
    load(_overdue_workspace(tmp_path / "ws.gpkg"), url)
    os.environ["GRIDKIT_ESCALATE_EVERY_S"] = "0.5"  # and again and again meanwhile
    try:
        server = _serve(url, _port(), 2)
    finally:
        del os.environ["GRIDKIT_ESCALATE_EVERY_S"]
    try:
        store = open_store(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            events = store.read("report_events")
            esc = events[events["action"] == "escalate"]
            if esc["report_id"].nunique() == N_CASES:
                break
            time.sleep(0.5)
        time.sleep(3)  # several more runs of both workers
        events = store.read("report_events")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    esc = events[events["action"] == "escalate"]
    counts = esc.groupby("report_id").size()
    assert len(counts) == N_CASES and (counts == 1).all(), counts[counts > 1].head()
    levels = store.read("reports")["escalation_level"].astype(int)
    assert (levels == 3).all()
    store.close()
