"""The report writer over PostGIS drafts a batch without the intakes' lock and, under
it, keeps the draft when its answers still hold (issue 25: writes with 1 and 2
processes). Another process writing meanwhile must change nothing in the answers:
the same ids, units, duplicate links, statuses and events as a GeoPackage taking in
the same batches in the order they were committed.

A throwaway cluster (tests/postgis_cluster.py): skipped without PostgreSQL, failing
under CI.
"""

from __future__ import annotations

import contextlib
import threading

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from api.writer import Outcome, ReportWriter
from gridkit.store.postgis import INTAKE_LOCK
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.test_postgis_writes import WORKER, _answer, _sub, _workspace


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """A GeoPackage service, and two services ("processes") over its PostGIS copy."""
    ws = _workspace(tmp_path_factory.mktemp("pg-drafts") / "ws.gpkg")
    url = postgis_cluster.new_database()
    load(ws, url)
    gpkg = TestClient(create_app(workspace=ws))
    pg, pg2 = TestClient(create_app(workspace=url)), TestClient(create_app(workspace=url))
    pg2.app.state.service.write_lock = threading.Lock()  # a process of its own
    return gpkg, pg, pg2, url


@contextlib.contextmanager
def _meanwhile(writer: ReportWriter, other: ReportWriter, batch: list, kept: list, url: str):
    """A third process holds the intakes' lock as ``writer`` begins (so it drafts),
    then lets it go, and ``other`` takes in ``batch`` while the draft is out of the
    lock; ``kept`` records whether each draft was kept."""
    import psycopg

    draft, confirm = writer._draft, writer._confirm
    holder = psycopg.connect(url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (INTAKE_LOCK,))

    def drafted(*args):
        out = draft(*args)
        holder.execute("SELECT pg_advisory_unlock(%s)", (INTAKE_LOCK,))
        other.process(batch)
        return out

    def confirmed(*args):
        out = confirm(*args)
        kept.append(out is not None)
        return out

    writer._draft, writer._confirm = drafted, confirmed  # type: ignore[method-assign]
    try:
        yield
    finally:
        del writer._draft, writer._confirm
        holder.close()


def _events(client: TestClient, ids: list[str]) -> pd.DataFrame:
    ev = client.app.state.service.store.read("report_events")
    ev = ev[ev["report_id"].astype(str).isin(ids)]
    cols = ["report_id", "action", "from_status", "to_status", "actor_id", "note"]
    return ev[cols].astype(str).sort_values(["report_id", "action"]).reset_index(drop=True)


def _piece_ids(results: list) -> list[str | None]:
    return [r.piece.id if isinstance(r, Outcome) else None for r in results]


def test_a_draft_is_kept_with_its_ids_moved_past_another_process(three) -> None:
    gpkg, pg, pg2, url = three
    writer, other = pg.app.state.service.reports, pg2.app.state.service.reports
    elsewhere = [_sub(113.0611, 27.7322), _sub(113.0352, 27.7051)]
    # two 10 m apart (the second links to the first, in the batch), one keyed, and one
    # the worker may not file (403): its id goes to the next
    batch = [
        _sub(113.0500, 27.7250),
        _sub(113.0253, 27.7051, caller=WORKER),
        _sub(113.0500, 27.72509),
        _sub(113.1033, 27.7211, key="d1"),
    ]
    kept: list[bool] = []
    with _meanwhile(writer, other, elsewhere, kept, url):
        got = writer.process(batch)
    assert kept == [True]  # the other's reports are far away: the draft holds
    want_other = gpkg.app.state.service.reports.process(elsewhere)
    want = gpkg.app.state.service.reports.process(batch)
    assert [_answer(r) for r in got] == [_answer(r) for r in want]
    assert _answer(got[1]) == ("ApiError", 403)
    ids = [_answer(r)[1] for r in got if isinstance(r, Outcome)]
    assert ids == ["R0000006", "R0000007", "R0000008"]  # after R4, R5 of the other
    assert _answer(got[2])[4] == "R0000006"  # the link moved with the id
    assert _piece_ids(got) == [ids[0], None, *ids[1:]]  # what is served names them too
    both = [*ids, *(_answer(r)[1] for r in want_other)]
    pd.testing.assert_frame_equal(_events(pg, both), _events(gpkg, both))
    assert _events(pg, ids)["note"].str.endswith("; likely duplicate of R0000006").sum() == 1
    # a retry of the keyed report, sent to the other process: the stored report again
    again = other.process([_sub(113.1033, 27.7211, key="d1")])
    assert _answer(again[0]) == (True, *_answer(got[3])[1:])


def test_a_free_lock_is_taken_at_once_without_a_draft(three) -> None:
    gpkg, pg, _, _ = three
    writer = pg.app.state.service.reports
    drafts: list = []
    writer._draft = lambda *args: drafts.append(1)  # type: ignore[method-assign]
    try:
        got = writer.process([_sub(113.0900, 27.7600)])
    finally:
        del writer._draft
    want = gpkg.app.state.service.reports.process([_sub(113.0900, 27.7600)])
    assert drafts == [] and [_answer(r) for r in got] == [_answer(r) for r in want]


def test_a_draft_whose_candidates_changed_is_done_again(three) -> None:
    gpkg, pg, pg2, url = three
    writer, other = pg.app.state.service.reports, pg2.app.state.service.reports
    # meanwhile the other process takes a report 5 m from the batch's first point
    near = [_sub(113.0708, 27.7401)]
    batch = [_sub(113.07085, 27.74012), _sub(113.0852, 27.7502, "green_belt")]
    kept: list[bool] = []
    with _meanwhile(writer, other, near, kept, url):
        got = writer.process(batch)
    assert kept == [False]  # done again under the lock
    first = gpkg.app.state.service.reports.process(near)
    want = gpkg.app.state.service.reports.process(batch)
    assert [_answer(r) for r in got] == [_answer(r) for r in want]
    assert _answer(got[0])[4] == _answer(first[0])[1]  # the duplicate of the other's report
    ids = [_answer(r)[1] for r in [*first, *want]]
    pd.testing.assert_frame_equal(_events(pg, ids), _events(gpkg, ids))


def test_a_draft_keeps_no_table_lock_while_it_waits_for_its_turn(three) -> None:
    """While a batch is drafted (another process holds the intakes' lock), the
    questions it asked hold no lock on the tables: a column added meanwhile (another
    intake's new column, QGIS, an upgrade) goes through instead of waiting for the
    draft, which waits for that intake: a deadlock before."""
    import psycopg

    gpkg, pg, _, url = three
    writer = pg.app.state.service.reports
    draft = writer._draft
    holder = psycopg.connect(url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (INTAKE_LOCK,))
    altered: list[str] = []

    def drafted(*args):
        out = draft(*args)
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SET lock_timeout = '5s'")
            other.execute("ALTER TABLE reports ADD COLUMN draft_probe text")
            other.execute("ALTER TABLE units ADD COLUMN draft_probe text")
            altered.append("done")
        holder.execute("SELECT pg_advisory_unlock(%s)", (INTAKE_LOCK,))
        return out

    writer._draft = drafted  # type: ignore[method-assign]
    try:
        got = writer.process([_sub(113.0950, 27.7650)])
    finally:
        del writer._draft
        holder.close()
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("ALTER TABLE reports DROP COLUMN IF EXISTS draft_probe")
            con.execute("ALTER TABLE units DROP COLUMN IF EXISTS draft_probe")
    want = gpkg.app.state.service.reports.process([_sub(113.0950, 27.7650)])
    assert altered == ["done"] and [_answer(r) for r in got] == [_answer(r) for r in want]
