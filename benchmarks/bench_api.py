"""HTTP throughput on loopback: gridkit's service against a bare FastAPI app (the ceiling).

Both run in their own uvicorn process on this machine; the same client sends the same
requests to each. ``POST /reports`` on gridkit locates, de-duplicates, hands over and
commits every report to the GeoPackage before answering, measured with one client
(latency) and with many clients at once (throughput: reports arriving together are
processed and committed together); ``GET items`` serves cached serialised GeoJSON.
The ratio is bare time / gridkit time: the share of the ceiling gridkit reaches.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks._runner import Case

HERE = Path(__file__).resolve().parent
CLIENTS = 16


def _wait(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError("server exited") from None
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _servers():
    from tests.api.live import free_port
    from tests.api.test_writes import field_workspace

    ws, keys = field_workspace(Path(tempfile.mkdtemp(prefix="gridkit-bench-api-")) / "ws.gpkg")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    ours_port, bare_port = free_port(), free_port()
    ours = subprocess.Popen(
        # no access log on either side: the bare app runs at log level warning
        [
            sys.executable,
            "-m",
            "gridkit.cli",
            "serve",
            str(ws),
            "--port",
            str(ours_port),
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks._bare_app:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=HERE.parent,
    )
    _wait(f"http://127.0.0.1:{ours_port}/healthz", ours)
    _wait(f"http://127.0.0.1:{bare_port}/docs", bare)
    return {
        "ours": f"http://127.0.0.1:{ours_port}",
        "bare": f"http://127.0.0.1:{bare_port}",
        "key": keys["sup"],
        "procs": (ours, bare),
    }


def _body(i: int) -> dict:
    """Report ``i``: points spread over the workspace's units (a low-discrepancy
    sequence), so most are new problems handed over and some are duplicates."""
    return {
        "category": "street_light",
        "source": "patrol",
        "description": f"#{i}",
        "lon": 113.0 + (i * 0.6180339887 % 1) * 0.248,
        "lat": 27.7 + (i * 0.4142135624 % 1) * 0.018,
    }


def _post(base: str, key: str, n: int) -> int:
    """One client, one request at a time: latency."""
    ok = 0
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as http:
        for i in range(n):
            ok += http.post("/reports", json=_body(i)).status_code == 201
    return ok


def _post_concurrent(base: str, key: str, n: int, clients: int) -> int:
    """``clients`` phones posting at once (each waits for its answer): throughput."""

    async def run() -> int:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(
            base_url=base, headers={"X-API-Key": key}, timeout=60, limits=limits
        ) as http:

            async def client(c: int) -> int:
                got = 0
                for i in range(c, n, clients):
                    got += (await http.post("/reports", json=_body(i))).status_code == 201
                return got

            return sum(await asyncio.gather(*(client(c) for c in range(clients))))

    return asyncio.run(run())


def _get(base: str, key: str, n: int) -> int:
    ok = 0
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as http:
        for _ in range(n):
            ok += http.get("/collections/units/items?limit=50").status_code == 200
    return ok


def cases(quick: bool) -> list[Case]:
    n_post, n_get = (30, 200) if quick else (300, 2000)
    n_many = 200 if quick else 2000
    state: dict = {}

    def setup():
        if not state:
            state.update(_servers())
        return state

    def same(ours, peer):
        return None if ours == peer else {"ok_ours": ours, "ok_bare": peer}

    def stop(_data, _result):
        return {}

    return [
        Case(
            f"POST /reports x{n_post} (durable)",
            setup,
            lambda s: _post(s["ours"], s["key"], n_post),
            lambda s: _post(s["bare"], s["key"], n_post),
            peer_name="bare FastAPI",
            size={"requests": n_post},
            check=same,
            repeat=1,
        ),
        Case(
            f"POST /reports x{n_many}, {CLIENTS} clients (durable, group commit)",
            setup,
            lambda s: _post_concurrent(s["ours"], s["key"], n_many, CLIENTS),
            lambda s: _post_concurrent(s["bare"], s["key"], n_many, CLIENTS),
            peer_name="bare FastAPI",
            size={"requests": n_many, "clients": CLIENTS},
            check=same,
            repeat=3,  # the median of three: one run on a shared 2-core machine varies ±15 %
        ),
        Case(
            f"GET items x{n_get} (cached)",
            setup,
            lambda s: _get(s["ours"], s["key"], n_get),
            lambda s: _get(s["bare"], s["key"], n_get),
            peer_name="bare FastAPI",
            size={"requests": n_get},
            check=same,
            repeat=3,
            extra=lambda s, r: _shutdown(s),
        ),
    ]


def _shutdown(state: dict) -> dict:
    for proc in state.get("procs", ()):
        proc.kill()
        proc.wait(10)
    return {}
