"""Durability: kill -9 the server while clients post; every acknowledged report
survives exactly once, and retrying with the same Idempotency-Key duplicates nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from gridkit.store import open_store
from tests.api.live import free_port, start
from tests.api.test_writes import INSIDE, field_workspace

CLIENTS = 4
PER_CLIENT = 25


def _client(base: str, key: str, n: int, acked: dict[str, str], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        for i in range(PER_CLIENT):
            if stop.is_set():
                return
            idem = f"c{n}-{i:03d}"
            body = {
                "category": "floating_garbage",
                "source": "patrol",
                "description": f"客户端{n} 第{i}条",
                "lon": INSIDE[0] + 0.00001 * i,
                "lat": INSIDE[1] + 0.001 * n,
            }
            try:
                r = http.post(
                    "/reports", json=body, headers={"X-API-Key": key, "Idempotency-Key": idem}
                )
            except httpx.HTTPError:
                return  # the server died under us: this one was never acknowledged
            if r.status_code == 201:
                acked[idem] = r.json()["id"]


def _keyed(reports):
    """The keyed reports with the client's own key (stored as ``owner/key``)."""
    keyed = reports.dropna(subset=["idempotency_key"])
    return keyed.assign(idem=keyed["idempotency_key"].str.split("/", n=1).str[1])


def test_kill_9_loses_no_acknowledged_report(tmp_path: Path) -> None:
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(ws, port)
    acked: dict[str, str] = {}
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client, args=(base, keys["sup"], n, acked, stop))
        for n in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL mid-way
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 20

    store = open_store(ws)  # the file opens cleanly after the crash
    reports = _keyed(store.read("reports"))
    by_key = reports.groupby("idem")["report_id"]
    for idem, rid in acked.items():
        assert list(by_key.get_group(idem)) == [rid]  # there, exactly once

    # restart; every client retries everything it sent: nothing is created twice
    proc = start(ws, port)
    try:
        retry = {}
        for n in range(CLIENTS):
            _client(base, keys["sup"], n, retry, threading.Event())
        for idem, rid in acked.items():
            assert retry[idem] == rid
    finally:
        proc.kill()
        proc.wait(10)
    reports = _keyed(open_store(ws).read("reports"))
    assert (reports["idempotency_key"].str.split("/").str[0] == "worker:S1").all()  # the caller's
    counts = reports["idem"].value_counts()
    assert counts.max() == 1
    assert len(counts) == CLIENTS * PER_CLIENT
