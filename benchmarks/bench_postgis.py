"""The PostGIS backend against its peers, side by side in one run on the same tables
(issue 25): ``GET /collections/units/items?bbox=...&limit=1000`` (full 1,000-feature
pages, 16 clients) against **tipg** (the reference OGC API - Features server for
PostGIS) over the very same ``units`` table, and durable ``POST /reports`` (16
clients) against a bare FastAPI + psycopg INSERT, with 1 and 2 server processes; the
GeoPackage backend's figures beside them.

tipg runs from its own virtual environment (its pins differ from gridkit's): set
``GRIDKIT_TIPG_PYTHON`` to its python (default ``/tmp/tipg-venv/bin/python``; make it
with ``python -m venv /tmp/tipg-venv && /tmp/tipg-venv/bin/pip install tipg uvicorn``).
Without it the items cases run against the GeoPackage backend only. The database is
a throwaway cluster (tests/postgis_cluster.py) with PostgreSQL's own durability
settings (``fsync`` and ``full_page_writes`` on, as deployed; the tests' cluster runs
without them): a write answered is on disk, on both sides. ``GRIDKIT_BENCH_PG_FSYNC=off``
runs them on the tests' cluster instead (writes not durable: the figures of earlier
rounds, for comparison).

``GRIDKIT_BENCH_POSTGIS=writes`` (or ``items``) runs those cases alone, e.g.
``GRIDKIT_BENCH_POSTGIS=writes python -m benchmarks --only postgis`` (tipg is then not
started); the results file then holds those cases only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks._runner import Case

HERE = Path(__file__).resolve().parent
CLIENTS = 16
TIPG_PYTHON = Path(os.environ.get("GRIDKIT_TIPG_PYTHON", "/tmp/tipg-venv/bin/python"))
#: which cases run: "items", "writes" or both (unset)
ONLY = os.environ.get("GRIDKIT_BENCH_POSTGIS", "").strip().lower()
if ONLY not in ("", "items", "writes"):
    raise SystemExit(f"GRIDKIT_BENCH_POSTGIS={ONLY!r}: give items or writes (or unset it).")
#: whether the cluster flushes each commit to disk (PostgreSQL's default; see above)
DURABLE = os.environ.get("GRIDKIT_BENCH_PG_FSYNC", "on").strip().lower() != "off"
_state: dict = {}


def _wait(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.args}")
        time.sleep(0.2)
    raise RuntimeError(f"server did not start: {proc.args}")


def _start(name: str, args: list[str], health: str, env: dict | None = None) -> str:
    from tests.api.live import free_port

    port = free_port()
    proc = subprocess.Popen(
        [a.replace("{port}", str(port)) for a in args],
        env={**os.environ, "PYTHONPATH": str(HERE.parent), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(url + health, proc)
    _state.setdefault("procs", []).append(proc)
    _state.setdefault("order", []).append(name)
    _state[name] = url
    return url


def _setup(quick: bool) -> dict:
    if _state:
        return _state
    import atexit

    atexit.register(_stop)  # the servers go with this run, whatever happens
    from gridkit.store import issue_key, open_store
    from gridkit.store.transfer import load
    from gridkit.synth.ops import grid_units
    from tests import postgis_cluster

    side = 40 if quick else 100  # 1,600 or 10,000 units
    tmp = Path(tempfile.mkdtemp(prefix="gridkit-bench-pg-"))
    ws = tmp / "ws.gpkg"
    units = grid_units(side, side)
    from gridkit.io import write_layer

    write_layer(units, ws, "units")
    history = _history(units, len(units))
    write_layer(history.reports, ws, "reports")
    write_layer(history.events, ws, "report_events")
    secret, _ = issue_key(open_store(ws), "bench", role="admin")
    url = postgis_cluster.new_database(durable=DURABLE)  # the writes measured are durable
    load(ws, url)
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(
            "CREATE TABLE bare_reports (id bigserial PRIMARY KEY, props jsonb, "
            "geometry geometry(Point, 4326))"
        )
    b = units.total_bounds
    _state.update(url=url, ws=ws, key=secret, n_units=len(units),
                  bbox=f"{b[0]},{b[1]},{b[2]},{b[3]}")  # fmt: skip
    serve = [sys.executable, "-m", "gridkit.cli", "serve"]
    tail = ["--port", "{port}", "--no-access-log"]
    _start("gpkg", [*serve, str(ws), *tail], "/healthz")
    _start("pg1", [*serve, url, *tail], "/healthz")
    _start("pg2", [*serve, url, *tail, "--processes", "2"], "/healthz")
    uvicorn = ["-m", "uvicorn", "--port", "{port}", "--log-level", "warning"]
    _start("bare", [sys.executable, *uvicorn, "benchmarks._bare_pg_app:app"], "/docs",
           env={"BARE_DATABASE_URL": url})  # fmt: skip
    if TIPG_PYTHON.exists() and ONLY != "writes":
        _start("tipg", [str(TIPG_PYTHON), *uvicorn, "tipg.main:app"], "/collections",
               env={"DATABASE_URL": url, "TIPG_MAX_FEATURES_PER_QUERY": "10000"})  # fmt: skip
    return _state


def _history(units, n: int):
    """``n`` reports taken in before (one a unit on average), as a city's tables hold
    them: three in four closed (over the last month), the others taken in within the
    last hour (open, none overdue yet: no escalation runs while the servers are
    measured). The new reports' duplicate search has candidates to measure, and
    ``db load`` gives PostgreSQL their statistics. (A reports table made by the first
    report has none until autovacuum looks at it, up to a minute later: meanwhile
    the duplicate search scans the table, twice the database's work a report; not
    what a running service sees.)"""
    import numpy as np
    import pandas as pd
    import shapely

    from gridkit.ops.intake import report_frame
    from gridkit.ops.reports import intake

    rng = np.random.default_rng(25)
    x0, y0, x1, y1 = units.total_bounds
    points = shapely.points(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n))
    cats = rng.choice(["floating_garbage", "street_light", "sewage", "road_damage"], n)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    closed = rng.random(n) < 0.75
    ago = np.where(closed, rng.integers(24 * 60, 30 * 24 * 60, n), rng.integers(1, 60, n))
    records = [
        {"category": c, "source": "patrol", "reported_at": now - pd.Timedelta(minutes=int(m))}
        for c, m in zip(cats, ago, strict=True)
    ]
    ids = [f"R{k + 1:07d}" for k in range(n)]
    taken = intake(report_frame(records, list(points), report_ids=ids), units=units, at=now)
    reports = taken.reports
    reports.loc[reports["report_id"].isin(np.asarray(ids)[closed]).to_numpy(), "status"] = "closed"
    return taken._replace(reports=reports)


def _stop() -> None:
    import signal

    for http in _state.get("clients", ()):
        http.close()
    for proc in _state.get("procs", []):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(30)
    _state.clear()


def _clients() -> list[httpx.Client]:
    """The 16 clients, made once for the whole run and kept (connections kept alive):
    making an httpx client costs ~20 ms of CPU (its TLS context), which timed with
    each case would weigh on the fast side most (16 of them took 0.46 s). A connection
    idle for 2 s is not used again: the servers close theirs after 5 s (uvicorn's
    keep-alive), and a request sent as the server closed its connection was lost
    ("Server disconnected without sending a response") between two cases."""
    if "clients" not in _state:
        limits = httpx.Limits(keepalive_expiry=2.0)
        _state["clients"] = [httpx.Client(timeout=120, limits=limits) for _ in range(CLIENTS)]
    return _state["clients"]


def _run(n: int, job) -> list:
    """``n`` calls of ``job(client, i)`` spread over the 16 clients; their results."""
    out: list = [None] * n
    counter = iter(range(n))
    lock = threading.Lock()

    def client(http: httpx.Client) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            out[i] = job(http, i)

    threads = [threading.Thread(target=client, args=(http,)) for http in _clients()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _pages(base_name: str, collection: str, n: int, key: bool = True):
    def run(s: dict) -> list[int]:
        url = f"{s[base_name]}/collections/{collection}/items?bbox={s['bbox']}&limit=1000"
        headers = {"X-API-Key": s["key"]} if key else {}

        def get(http: httpx.Client, i: int) -> int:
            r = http.get(url + f"&offset={1000 * (i % max(1, s['n_units'] // 1000))}",
                         headers=headers)  # fmt: skip
            assert r.status_code == 200, r.text[:300]
            return len(r.json()["features"])

        return _run(n, get)

    return run


def _cpu_s(name: str) -> float:
    """CPU seconds spent so far by server ``name``'s processes (its session: every
    worker of ``--processes N``), from /proc; 0 where /proc is not there."""
    proc = _state["procs"][_state["order"].index(name)]
    total = 0
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == proc.pid:  # session id: the server and its workers
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


def _posts(base_name: str, n: int, tag: str):
    def run(s: dict) -> int:
        def post(http: httpx.Client, i: int) -> int:
            body = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": _point(s, i)},
                "properties": {"category": "floating_garbage", "description": f"{tag}{i}"},
            }
            headers = {"X-API-Key": s["key"], "Idempotency-Key": f"{tag}-{time.time_ns()}-{i}"}
            for _ in range(20):  # a 503 (a concurrent process won) is retried, as clients do
                r = http.post(f"{s[base_name]}/reports", json=body, headers=headers)
                if r.status_code != 503:
                    break
                time.sleep(0.05)
            assert r.status_code == 201, r.text[:300]
            return 1

        cpu = _cpu_s(base_name)
        done = sum(_run(n, post))
        # the server's CPU per report: what a loaded machine (other jobs on the same
        # cores) changes least, unlike the rates
        s.setdefault("cpu_ms", {}).setdefault(base_name, []).append(
            (_cpu_s(base_name) - cpu) / n * 1000
        )
        return done

    return run


def _point(s: dict, i: int) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in s["bbox"].split(","))
    return [x0 + (i * 0.6180339887 % 1) * (x1 - x0), y0 + (i * 0.4142135624 % 1) * (y1 - y0)]


def _load(s: dict | None = None, *_: object) -> dict:
    """The machine's 1-minute load as the case ends (other jobs share its cores), and
    the median server CPU per report of each side of the case (then forgotten)."""
    out: dict = {"load_1min": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}
    for name, ms in (s or {}).pop("cpu_ms", {}).items():
        out[f"{name}_cpu_ms_per_report"] = round(sorted(ms)[len(ms) // 2], 2)
    return out


def _same_pages(ours: list[int], peer: list[int]) -> dict | None:
    if sum(ours) != sum(peer):
        return {"check": f"features served differ: {sum(ours)} vs {sum(peer)}"}
    return None


def cases(quick: bool) -> list[Case]:
    pages = 16 if quick else 160
    posts = 32 if quick else 400

    def setup() -> dict:
        return _setup(quick)

    have_tipg = TIPG_PYTHON.exists()
    items = []
    for name, label in (("pg1", "PostGIS, 1 process"), ("pg2", "PostGIS, 2 processes")):
        items.append(
            Case(
                f"GET units items bbox limit=1000 x{pages}, {CLIENTS} clients: gridkit {label}",
                setup,
                _pages(name, "units", pages),
                _pages("tipg", "public.units", pages, key=False) if have_tipg else None,
                peer_name="tipg 1.6 (same table)" if have_tipg else "",
                size={"units": "1600" if quick else "10000", "pages": pages},
                check=_same_pages if have_tipg else None,
                repeat=3,
                trace_peer=False,
            )
        )
    items.append(
        Case(
            f"GET units items bbox limit=1000 x{pages}, {CLIENTS} clients: PostGIS vs GeoPackage",
            setup,
            _pages("pg1", "units", pages),
            _pages("gpkg", "units", pages),
            peer_name="gridkit over the GeoPackage",
            size={"pages": pages},
            check=_same_pages,
            repeat=3,
            trace_peer=False,
        )
    )
    writes = [
        Case(
            f"POST /reports x{posts}, {CLIENTS} clients: gridkit {label} "
            + ("(durable)" if DURABLE else "(fsync off: not durable)"),
            setup,
            _posts(name, posts, name),
            _posts("bare", posts, "bare"),
            peer_name="bare FastAPI + psycopg INSERT",
            size={"reports": posts},
            repeat=3,  # taking turns with the peer, medians: the machine is shared
            trace_peer=False,
            extra=_load,
        )
        for name, label in (("pg1", "PostGIS, 1 process"), ("pg2", "PostGIS, 2 processes"))
    ]
    writes.append(
        Case(
            f"POST /reports x{posts}, {CLIENTS} clients: PostGIS 1 process vs GeoPackage",
            setup,
            _posts("pg1", posts, "pgv"),
            _posts("gpkg", posts, "gp"),
            peer_name="gridkit over the GeoPackage",
            size={"reports": posts},
            repeat=3,
            trace_peer=False,
            extra=lambda s, *_: {**_load(s), **(_stop() or {})},
        )
    )
    return {"items": items, "writes": writes}.get(ONLY, [*items, *writes])
