"""A report's latency on loopback while hostile clients load the server (issue 19).

One client posts reports one at a time and times each answer (committed to the
GeoPackage before it is sent); meanwhile, in the loaded run, other clients send
oversized patrols (413), heavy patrols within the limits (built outside the writer's
lock), bodies and headers dripped a byte every half second (408). The figures are
p50/p95 of the report's latency, loaded against idle; asserted nowhere (the suite's
``tests/api/test_slow_clients.py`` asserts only that the report is answered first).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from benchmarks._runner import Case
from benchmarks.bench_api import HERE, _body, _wait

SERVE = (sys.executable, "-m", "gridkit.cli", "serve")


def _server() -> dict:
    from tests.api.live import free_port
    from tests.api.test_writes import field_workspace

    ws, keys = field_workspace(Path(tempfile.mkdtemp(prefix="gridkit-bench-load-")) / "ws.gpkg")
    port = free_port()
    proc = subprocess.Popen(
        [*SERVE, str(ws), "--port", str(port), "--no-access-log", "--header-timeout", "3"],
        env={**os.environ, "PYTHONPATH": str(HERE.parent), "GRIDKIT_BODY_TIMEOUT_S": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}/healthz", proc)
    return {"url": url, "keys": keys, "proc": proc, "figures": {}}


def _reports(state: dict, n: int) -> list[float]:
    took = []
    with httpx.Client(base_url=state["url"], headers={"X-API-Key": state["keys"]["sup"]}) as c:
        for i in range(n):
            t0 = time.perf_counter()
            assert c.post("/reports", json=_body(i), timeout=60).status_code == 201
            took.append(time.perf_counter() - t0)
    return took


def _hostile(state: dict, stop: threading.Event) -> list[threading.Thread]:
    from tests.api.test_bounds import _fixes
    from tests.api.test_slow_clients import _drip

    url, keys = state["url"], state["keys"]
    worker = {"X-API-Key": keys["w1"], "Content-Type": "application/json"}
    oversized = orjson.dumps({"patrols": [{"points": _fixes(20_000, day=d + 1)} for d in range(5)]})
    head = (
        b"POST /reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"X-API-Key: {keys['w2']}\r\nContent-Length: 200\r\n\r\n".encode()
    )

    def loop(job) -> None:
        while not stop.is_set():
            job()

    day = iter(range(10**6))
    jobs = [
        lambda: httpx.post(f"{url}/patrols", content=oversized, headers=worker, timeout=60),
        lambda: httpx.post(
            f"{url}/patrols",
            content=orjson.dumps({"points": _fixes(20_000, day=1 + next(day) % 28)}),
            headers=worker,
            timeout=120,
        ),
        *[lambda: _drip(url, head, b"x" * 200, every_s=0.5, until_s=10)] * 4,
        *[lambda: _drip(url, head, b"", every_s=0.5, until_s=10)] * 4,
    ]
    threads = [threading.Thread(target=loop, args=(j,), daemon=True) for j in jobs]
    for t in threads:
        t.start()
    return threads


def _percentiles(took: list[float]) -> dict:
    q = statistics.quantiles(took, n=20)
    return {"p50_ms": round(1e3 * statistics.median(took), 1), "p95_ms": round(1e3 * q[18], 1)}


def cases(quick: bool) -> list[Case]:
    n = 20 if quick else 100
    state: dict = {}

    def setup() -> dict:
        if not state:
            state.update(_server())
        return state

    def idle(s: dict) -> dict:
        s["figures"]["idle"] = _percentiles(_reports(s, n))
        return s["figures"]["idle"]

    def loaded(s: dict) -> dict:
        stop = threading.Event()
        threads = _hostile(s, stop)
        time.sleep(1.0)  # the hostile clients are under way
        try:
            s["figures"]["loaded"] = _percentiles(_reports(s, n))
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        return s["figures"]["loaded"]

    def figures(s: dict, _result: object) -> dict:
        s["proc"].kill()
        s["proc"].wait(10)
        return dict(s["figures"])

    return [
        Case(
            f"POST /reports x{n}: p95 under hostile load vs idle",
            setup,
            loaded,
            idle,
            peer_name="the same server, idle",
            size={"reports": n, "hostile_clients": 10},
            repeat=1,
            extra=figures,
            trace_peer=False,
        )
    ]
