"""Report intakes of several server processes over PostGIS take the intakes' lock in
turn (issue 25). A batch that waits for its turn holds no lock on the tables while it
waits, and asks its questions once it holds the lock: what another process wrote
meanwhile counts (its ids are continued, its open reports are duplicate candidates),
the same answers as a GeoPackage taking in the same batches in commit order.

A throwaway cluster (tests/postgis_cluster.py): skipped without PostgreSQL, failing
under CI.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.store.postgis import INTAKE_LOCK
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.test_postgis_writes import _answer, _sub, _workspace


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """A GeoPackage service, and two services ("processes") over its PostGIS copy."""
    ws = _workspace(tmp_path_factory.mktemp("pg-turns") / "ws.gpkg")
    url = postgis_cluster.new_database()
    load(ws, url)
    gpkg = TestClient(create_app(workspace=ws))
    pg, pg2 = TestClient(create_app(workspace=url)), TestClient(create_app(workspace=url))
    pg2.app.state.service.write_lock = threading.Lock()  # a process of its own
    return gpkg, pg, pg2, url


def _waiting_for_the_lock(url: str, timeout_s: float = 10.0) -> None:
    """Return once a session waits for the intakes' lock (fail after ``timeout_s``)."""
    import psycopg

    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as con:
        while time.monotonic() < deadline:
            row = con.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = %s",
                (INTAKE_LOCK & 0xFFFFFFFF,),
            ).fetchone()
            if row[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no batch came to wait for the intakes' lock")


def _polls_set_aside(store) -> None:
    """Another process's announcements heard, then set aside, with the store's next
    poll far off: as a process taking in reports alone may, it looks at nothing (the
    versions, the columns) before its next batch."""
    time.sleep(0.3)
    with store._heard_lock:
        store._heard.clear()
    store._dirty, store._next_poll = False, time.monotonic() + 3600


def _events(client: TestClient, ids: list[str]) -> pd.DataFrame:
    ev = client.app.state.service.store.read("report_events")
    ev = ev[ev["report_id"].astype(str).isin(ids)]
    cols = ["report_id", "action", "from_status", "to_status", "actor_id", "note"]
    return ev[cols].astype(str).sort_values(["report_id", "action"]).reset_index(drop=True)


def test_a_batch_that_waited_for_its_turn_counts_what_was_written_meanwhile(three) -> None:
    gpkg, pg, pg2, url = three
    writer, other = pg.app.state.service.reports, pg2.app.state.service.reports
    # the other process's reports: one the batch below duplicates (5 m away)
    elsewhere = [_sub(113.0708, 27.7401, "road_damage"), _sub(113.0352, 27.7051)]
    batch = [_sub(113.07085, 27.74012, "road_damage"), _sub(113.0852, 27.7502, "cctv")]
    holding, waiting = threading.Event(), threading.Event()
    once = other._once

    def slow_once(*args):  # the other process, holding the lock, until the batch waits
        holding.set()
        assert waiting.wait(10)
        return once(*args)

    other._once = slow_once  # type: ignore[method-assign]
    got: dict = {}
    first = threading.Thread(target=lambda: got.setdefault("other", other.process(elsewhere)))
    first.start()
    try:
        assert holding.wait(10)
        second = threading.Thread(target=lambda: got.setdefault("batch", writer.process(batch)))
        second.start()
        _waiting_for_the_lock(url)
        waiting.set()
        first.join(20)
        second.join(20)
    finally:
        waiting.set()
        del other._once
    want_other = gpkg.app.state.service.reports.process(elsewhere)
    want = gpkg.app.state.service.reports.process(batch)
    assert [_answer(r) for r in got["other"]] == [_answer(r) for r in want_other]
    assert [_answer(r) for r in got["batch"]] == [_answer(r) for r in want]
    ids = [_answer(r)[1] for r in got["batch"]]
    other_ids = [_answer(r)[1] for r in got["other"]]
    assert int(ids[0][1:]) == int(other_ids[-1][1:]) + 1  # the ids continue
    assert _answer(got["batch"][0])[4] == other_ids[0]  # the other's report, duplicated
    both = [*ids, *other_ids]
    pd.testing.assert_frame_equal(_events(pg, both), _events(gpkg, both))


def test_a_batch_waiting_for_its_turn_holds_no_table_lock(three) -> None:
    """While a batch waits for the intakes' lock (another process holds it), it holds
    no lock on the tables: a column added meanwhile (another intake's new column,
    QGIS, an upgrade) goes through instead of waiting for the batch, which waits for
    that intake: a deadlock otherwise."""
    import psycopg

    gpkg, pg, _, url = three
    writer = pg.app.state.service.reports
    holder = psycopg.connect(url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (INTAKE_LOCK,))
    got: dict = {}
    waiter = threading.Thread(
        target=lambda: got.setdefault("batch", writer.process([_sub(113.0950, 27.7650)]))
    )
    waiter.start()
    try:
        _waiting_for_the_lock(url)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SET lock_timeout = '5s'")
            other.execute("ALTER TABLE reports ADD COLUMN turn_probe text")
            other.execute("ALTER TABLE units ADD COLUMN turn_probe text")
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", (INTAKE_LOCK,))
        holder.close()
        waiter.join(20)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("ALTER TABLE reports DROP COLUMN IF EXISTS turn_probe")
            con.execute("ALTER TABLE units DROP COLUMN IF EXISTS turn_probe")
    want = gpkg.app.state.service.reports.process([_sub(113.0950, 27.7650)])
    assert [_answer(r) for r in got["batch"]] == [_answer(r) for r in want]


def test_a_column_another_process_added_is_asked_about(tmp_path) -> None:
    """A process that took in keyless reports knows the reports table without an
    Idempotency-Key column; another process then adds it with a keyed report. A retry
    of that report sent to the first process is answered as a replay (the columns are
    checked with the batch's questions, in the same round trip), not taken in twice."""
    ws = _workspace(tmp_path / "ws.gpkg")
    url = postgis_cluster.new_database()
    load(ws, url)
    first, second = (TestClient(create_app(workspace=url)) for _ in range(2))
    second.app.state.service.write_lock = threading.Lock()  # a process of its own
    mine, other = first.app.state.service.reports, second.app.state.service.reports
    before = mine.process([_sub(113.0611, 27.7322)])  # no key: the column not made
    store = first.app.state.service.store
    store.layers()  # (the events table its write made, looked at)
    assert "idempotency_key" not in store._tables["reports"].columns
    keyed = other.process([_sub(113.0950, 27.7650, key="retry-1")])
    _polls_set_aside(store)  # it looks at nothing before the retry (versions, columns)
    turns, intake = [], store.report_intake
    store.report_intake = lambda **kw: turns.append(1) or intake(**kw)
    try:
        again = mine.process([_sub(113.0950, 27.7650, key="retry-1")])
    finally:
        del store.report_intake
    assert _answer(again[0]) == (True, *_answer(keyed[0])[1:])  # the stored report
    assert turns == [1]  # in one transaction: not written, refused by the index, retried
    assert _answer(before[0])[0] is False
    reports = first.app.state.service.store.read("reports")
    assert (reports["idempotency_key"] == "key:k-admin/retry-1").sum() == 1


def test_an_intakes_generic_plans_stay_in_its_transaction(three) -> None:
    """A batch's statements run on their prepared generic plans (not planned again for
    each batch's values); the setting ends with the transaction, so the pooled
    connection's next user (a page of items, a map) plans as PostgreSQL chooses."""
    import numpy as np
    import shapely

    from gridkit.store import open_store

    store = open_store(three[3])
    points = np.array([shapely.Point(113.0708, 27.7401)], dtype=object)
    try:
        with store.report_intake() as txn:
            txn.ask_rows(points, ["cctv"], radius_m=50.0, statuses=["collected"])
            inside = txn._con.execute("SHOW plan_cache_mode").fetchone()[0]
            used = txn._con
        after = used.execute("SHOW plan_cache_mode").fetchone()[0]  # back in the pool
    finally:
        store.close()
    assert inside == "force_generic_plan"
    assert after == "auto"  # the connection given back as it was


def test_a_column_dropped_by_another_process_fails_no_batch(tmp_path) -> None:
    """A column of the reports dropped elsewhere (a DBA, QGIS) while this process still
    knows it, and before it has looked at the versions again: its next keyed batch
    (whose stored rows it asks for with the columns it knows) is asked again with the
    columns as they are, and taken in (it failed with UndefinedColumn, a 500)."""
    import psycopg

    ws = _workspace(tmp_path / "ws.gpkg")
    url = postgis_cluster.new_database()
    load(ws, url)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ALTER TABLE reports ADD COLUMN drop_probe text")
    client = TestClient(create_app(workspace=url))
    writer, store = client.app.state.service.reports, client.app.state.service.store
    first = writer.process([_sub(113.0712, 27.7405, key="drop-1")])
    assert not isinstance(first[0], BaseException), first
    store.layers()
    assert "drop_probe" in store._tables["reports"].columns  # known to this process
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ALTER TABLE reports DROP COLUMN drop_probe")
    _polls_set_aside(store)  # it has not looked at the columns since
    got = writer.process([_sub(113.0721, 27.7415, key="drop-2")])
    assert not isinstance(got[0], BaseException), got
    stored = store.read("reports")
    assert got[0].piece.id in set(stored["report_id"]) and "drop_probe" not in stored
