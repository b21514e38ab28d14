"""Writers over PostGIS take their locks in one order: the layers' version rows
first, then any table they create or give a column. A write that added a column
(``ALTER TABLE``, e.g. the first escalation's ``escalated_to``) before locking the
version rows waited in a circle with a writer that held them and wanted the table:
PostgreSQL broke the deadlock by failing one (seen with two server processes
escalating at start-up, reported as "cannot reach the server")."""

from __future__ import annotations

import threading
import time

import pytest

from gridkit.store import open_store
from gridkit.store.base import RowUpdate, WriteBatch
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.conftest import make_workspace

psycopg = pytest.importorskip("psycopg")


def test_a_write_adding_a_column_waits_for_the_version_rows_without_a_deadlock(
    tmp_path,
) -> None:
    url = postgis_cluster.new_database()
    load(make_workspace(tmp_path / "ws.gpkg"), url)
    store = open_store(url)
    store.read("reports")  # seen, as a running service has
    other = psycopg.connect(url)  # another process's writer, mid-transaction
    other.execute(
        "SELECT version FROM gridkit_layer_versions WHERE layer = 'reports' FOR UPDATE"
    ).fetchone()
    failed: list[BaseException] = []

    def escalate() -> None:
        try:
            store.write(
                WriteBatch({}, RowUpdate("reports", "report_id", "R1", {"escalated_to": "市级"}))
            )
        except BaseException as exc:  # reported below
            failed.append(exc)

    t = threading.Thread(target=escalate)
    t.start()
    time.sleep(0.5)  # the write is waiting for the version row now
    # the other writer goes on to its table: it must not find it locked by the waiter
    other.execute(
        "INSERT INTO reports (report_id, category, status) "
        "VALUES ('R9', 'floating_garbage', 'reported')"
    )
    other.commit()
    other.close()
    t.join(30)
    assert not t.is_alive() and not failed, failed
    rows = open_store(url).read("reports").set_index("report_id")
    assert rows.loc["R1", "escalated_to"] == "市级" and "R9" in rows.index


def test_two_processes_making_the_same_new_layer_at_once_both_write(tmp_path) -> None:
    """The first ``report_events`` of two servers: both find no table; one makes it,
    the other waits and appends to it (without the lock one failed on pg_type's
    duplicate key)."""
    import pandas as pd

    url = postgis_cluster.new_database()
    load(make_workspace(tmp_path / "ws.gpkg"), url)
    stores = [open_store(url), open_store(url)]
    for s in stores:
        s.layers()
    for round_ in range(4):
        layer = f"notes_{round_}"
        start = threading.Barrier(2)
        failed: list[BaseException] = []

        def write(
            i: int,
            layer: str = layer,
            start: threading.Barrier = start,
            failed: list[BaseException] = failed,
        ) -> None:
            rows = pd.DataFrame({"note_id": [f"N{i}"], "text": [f"第{i}条"]})
            start.wait()
            try:
                stores[i].append_many({layer: rows})
            except BaseException as exc:  # reported below
                failed.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not failed, failed
        got = open_store(url).read(layer)
        assert sorted(got["note_id"]) == ["N0", "N1"], got
