"""Several server processes over one PostGIS database (``gridkit serve URL --processes
N``): reports posted by many clients with retries and Idempotency-Keys, one worker
killed with -9 midway: none lost, none stored twice, every report with its events.
Also: several processes are refused over a GeoPackage, and a database that goes away
gives 503 with Retry-After, then the service recovers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx

from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.conftest import make_workspace

CLIENTS, PER_CLIENT, PROCESSES = 32, 6, 4
BUDGET_S = 180  # the whole run, retries included


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database(tmp_path: Path) -> tuple[str, str]:
    url = postgis_cluster.new_database()
    load(make_workspace(tmp_path / "ws.gpkg"), url)
    secret, _ = issue_key(open_store(url), "采集员", role="admin")
    return url, secret


def _serve(url: str, port: int, processes: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", "serve", url, "--port", str(port),
         "--processes", str(processes), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")


def _workers(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _report(k: int) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [113.001 + (k % 25) * 0.01, 27.705]},
        "properties": {"category": "floating_garbage", "description": f"河面漂浮物 {k}"},
    }


def test_four_processes_32_clients_kill_9_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    url, secret = _database(tmp_path)
    port = _port()
    server = _serve(url, port, PROCESSES)
    acknowledged: dict[str, str] = {}  # key -> report id
    replays_differ: list[str] = []
    unexpected: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + BUDGET_S
    posted = threading.Event()

    def client(c: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for k in range(PER_CLIENT):
                key = f"c{c}-r{k}"
                ids = set()
                while time.monotonic() < deadline:
                    try:
                        r = http.post(
                            "/reports",
                            json=_report(c * PER_CLIENT + k),
                            headers={"X-API-Key": secret, "Idempotency-Key": key},
                        )
                    except httpx.HTTPError:  # the worker died under us: retry the same key
                        time.sleep(0.05)
                        continue
                    if r.status_code in (200, 201):
                        ids.add(r.json()["id"])
                        posted.set()
                        break
                    if r.status_code != 503:  # anything but busy is a failure: kept
                        with lock:
                            unexpected.append(f"{key}: {r.status_code} {r.text[:300]}")
                        return
                    time.sleep(0.05)  # busy: retry after a while
                with lock:
                    if ids:
                        acknowledged[key] = ids.pop()

    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        assert posted.wait(30)
        time.sleep(0.5)  # midway
        victims = _workers(server.pid)
        assert len(victims) >= PROCESSES, victims
        os.kill(victims[0], signal.SIGKILL)
        for t in threads:
            t.join(BUDGET_S)
        # every key was answered once more after all: replays give the same report
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for key, rid in list(acknowledged.items())[:40]:
                c, k = (int(x[1:]) for x in key.split("-"))
                for _ in range(50):  # a connection the killed worker had taken: again
                    try:
                        r = http.post(
                            "/reports",
                            json=_report(c * PER_CLIENT + k),
                            headers={"X-API-Key": secret, "Idempotency-Key": key},
                        )
                        break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                if r.json().get("id") != rid:
                    replays_differ.append(key)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    assert not unexpected, unexpected[:5]
    assert len(acknowledged) == CLIENTS * PER_CLIENT, "a client ran out of its budget"
    assert not replays_differ
    reports = open_store(url).read("reports")
    events = open_store(url).read("report_events")
    mine = reports[reports["idempotency_key"].notna()]
    keys = mine["idempotency_key"].str.split("/", n=1).str[1]
    assert sorted(keys) == sorted(acknowledged)  # 0 lost, 0 duplicated
    assert reports["report_id"].is_unique
    assert dict(zip(keys, mine["report_id"], strict=True)) == acknowledged
    assert set(mine["report_id"]) <= set(events["report_id"])  # each with its events


def test_several_processes_are_refused_on_a_geopackage(tmp_path: Path, capsys) -> None:
    from gridkit.cli import main

    ws = make_workspace(tmp_path / "ws.gpkg")
    assert main(["serve", str(ws), "--processes", "2"]) == 1
    err = capsys.readouterr().err
    assert "--processes 2 needs a PostGIS workspace" in err and "Traceback" not in err


def test_database_down_gives_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api import create_app

    url, secret = _database(tmp_path)
    http = TestClient(create_app(workspace=url), raise_server_exceptions=False)
    auth = {"X-API-Key": secret}
    assert http.get("/collections/units/items?limit=5", headers=auth).status_code == 200
    assert http.get("/readyz").status_code == 200
    r = http.post("/reports", json=_report(1), headers={**auth, "Idempotency-Key": "a"})
    assert r.status_code == 201
    postgis_cluster.pg_ctl("stop")
    try:
        # liveness stays (a restart would not help); readiness says to send nothing
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0, ready.text
        time.sleep(0.6)  # past the store's poll of versions
        r = http.post("/reports", json=_report(2), headers={**auth, "Idempotency-Key": "b"})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["Retry-After"]) > 0
        assert "database is unavailable" in r.json()["detail"]
        assert "Traceback" not in r.text and "127.0.0.1" not in r.text
        r = http.get("/collections/reports/items", headers=auth)
        assert r.status_code == 503 and "Retry-After" in r.headers
    finally:
        postgis_cluster.pg_ctl("start")
    deadline = time.monotonic() + 15
    while True:  # the service recovers by itself: the pool reconnects
        r = http.post("/reports", json=_report(2), headers={**auth, "Idempotency-Key": "b"})
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 201, r.text
    assert http.get("/readyz").status_code == 200
    ids = open_store(url).read("reports")["idempotency_key"].dropna()
    assert sorted(k.split("/", 1)[1] for k in ids) == ["a", "b"]  # nothing half-written
