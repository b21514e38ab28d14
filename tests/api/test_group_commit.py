"""Group commit: reports arriving together are taken in and committed together, and
each still gets its own answer (created, replayed or refused)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api._group import GroupCommit
from api.auth import Principal
from api.errors import ApiError
from api.responses import encode, feature_of
from api.writer import Submission
from gridkit.crs import wgs84_to_gcj02
from gridkit.store import open_store
from tests.api.test_writes import INSIDE, field_workspace, h, report

SUP = Principal(role="supervisor", worker_id="S1", name="王主任")
W1 = Principal(role="worker", worker_id="W1", name="张三")
#: W1 on a key scoped to another district: his reports there are refused
W1_AWAY = Principal(role="worker", worker_id="W1", name="张三", scope="430281")
# unit 430203001001-001 (assigned to W2) is the cell east of INSIDE's unit
ELSEWHERE = (113.014, 27.704)


def _sub(caller=SUP, key=None, lon=INSIDE[0], lat=INSIDE[1], crs=None, category="street_light"):
    props = {
        "category": category,
        "description": "路灯不亮",
        "source": "patrol",
        "admin_code": None,
        "unit_id": None,
        "reporter_contact": None,
        "reported_at": None,
    }
    return Submission(props, (lon, lat), crs, caller, key)


def _intake_batch(app, subs):
    """One batch through the app's report writer, on this thread."""
    return app.state.service.reports.process(subs)


# ------------------------------------------------------------------ the mechanism


def test_group_commit_batches_jobs_queued_together_and_answers_each() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def process(jobs):
        gate.wait(5)  # hold the first batch so the rest queue up behind it
        batches.append(list(jobs))
        return [ValueError(j) if j == 3 else j * 10 for j in jobs]

    group = GroupCommit(process)
    futures = [group.submit(0)]
    time.sleep(0.05)  # the writer has taken job 0 and waits at the gate
    futures += [group.submit(j) for j in range(1, 6)]
    gate.set()
    assert [f.result(5) for f in futures if not f.exception(5)] == [0, 10, 20, 40, 50]
    assert isinstance(futures[3].exception(), ValueError)  # only that job failed
    assert batches == [[0], [1, 2, 3, 4, 5]]
    group.close()


def test_jobs_submitted_from_an_event_loop_are_answered_there_in_one_hand_over() -> None:
    """``submit_async``: the batch's asyncio futures are answered on their loop by one
    call (not a wake-up per job); a failed job fails alone, and a job whose request
    was cancelled meanwhile changes nothing for the others."""
    import asyncio

    gate = threading.Event()

    def process(jobs):
        gate.wait(5)
        return [ValueError(j) if j == 3 else j * 10 for j in jobs]

    group = GroupCommit(process)

    async def main():
        loop = asyncio.get_running_loop()
        handed: list[int] = []
        real = loop.call_soon_threadsafe

        def counted(callback, *args, **kw):
            handed.append(len(args[0]) if args else 0)
            return real(callback, *args, **kw)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        first = group.submit_async(0)
        await asyncio.sleep(0.05)  # the writer has taken job 0 and waits at the gate
        rest = [group.submit_async(j) for j in range(1, 6)]
        rest[1].cancel()  # job 2's request gave up
        gate.set()
        got = await asyncio.gather(first, *rest, return_exceptions=True)
        return got, handed

    got, handed = asyncio.run(main())
    assert got[0] == 0 and got[1] == 10 and got[4:] == [40, 50]
    assert isinstance(got[2], asyncio.CancelledError) and isinstance(got[3], ValueError)
    assert handed == [1, 5]  # one hand-over per batch, with all its answers
    group.close()


def test_group_commit_failing_batch_fails_every_job_in_it() -> None:
    def process(jobs):
        raise OSError("disk full")

    group = GroupCommit(process)
    futures = [group.submit(j) for j in range(3)]
    for f in futures:
        with pytest.raises(OSError, match="disk full"):
            f.result(5)
    group.close()


def test_first_job_back_after_a_busy_batch_waits_for_the_others() -> None:
    # clients answered together come back one by one: the first must not start a
    # batch of its own (and pay a whole pass of the work alone) when the last
    # batches had company
    batches: list[list] = []
    gate = threading.Event()

    def process(jobs):
        gate.wait(5)
        batches.append(list(jobs))
        return list(jobs)

    group = GroupCommit(process, window_s=2.0)
    futures = [group.submit(0)]
    time.sleep(0.05)  # job 0 is taken alone; 1-3 queue behind it
    futures += [group.submit(j) for j in (1, 2, 3)]
    gate.set()
    assert [f.result(5) for f in futures] == [0, 1, 2, 3]
    assert batches == [[0], [1, 2, 3]]
    first = group.submit("a")
    time.sleep(0.1)  # the other two are on their way back
    rest = [group.submit("b"), group.submit("c")]
    assert [f.result(5) for f in [first, *rest]] == ["a", "b", "c"]
    assert batches[-1] == ["a", "b", "c"]
    group.close()


def test_announced_request_joins_the_batch_being_gathered() -> None:
    # a request announced (its body still being parsed) makes the writer wait for it
    # instead of starting the batch without it and leaving it a batch of its own
    batches: list[list[str]] = []
    group = GroupCommit(lambda jobs: batches.append(list(jobs)) or list(jobs), window_s=2.0)
    announced = threading.Event()
    late: list = []

    def client() -> None:
        with group.expecting():
            announced.set()
            time.sleep(0.1)  # reading and parsing the body
            late.append(group.submit("late"))

    t = threading.Thread(target=client)
    t.start()
    announced.wait(5)
    first = group.submit("first")
    assert first.result(5) == "first"
    t.join(5)
    assert late[0].result(5) == "late"
    assert batches == [["first", "late"]]
    assert group._coming == 0
    group.close()


def test_announcement_withdrawn_without_a_job_stops_the_wait() -> None:
    # a request refused before it submits (bad body, no key) must not hold the writer
    # for the whole window; with a window of 30 s, a held writer would time out below
    group = GroupCommit(lambda jobs: list(jobs), window_s=30.0)
    with group.expecting():
        pass
    assert group._coming == 0
    assert group.submit(1).result(5) == 1
    group.close()


# ------------------------------------------------------------------ one batch of reports


@pytest.fixture
def app(tmp_path: Path):
    ws, _keys = field_workspace(tmp_path / "ws.gpkg")
    return create_app(workspace=ws)


def test_one_batch_answers_every_report_on_its_own(app) -> None:
    glon, glat = wgs84_to_gcj02(INSIDE[0] + 0.02, INSIDE[1])
    subs = [
        _sub(key="k1"),  # created
        _sub(key="k1"),  # same key in the same batch: a replay of the first
        _sub(lon=INSIDE[0] + 0.0001),  # 10 m from the first: its duplicate
        _sub(caller=W1_AWAY, lon=ELSEWHERE[0], lat=ELSEWHERE[1]),  # outside his scope: 403
        _sub(lon=120.0, lat=30.0),  # outside the service area: 422
        _sub(lon=float(glon), lat=float(glat), crs="gcj02"),  # declared datum
        _sub(crs="EPSG:999999"),  # unknown datum: 400
    ]
    out = _intake_batch(app, subs)
    rows, pos, replay, _ = out[0]
    first = rows["report_id"].iloc[pos]
    assert not replay and rows["status"].iloc[pos] == "dispatched"  # street lights: auto_open
    assert out[1].replay and out[1].rows["report_id"].iloc[out[1].pos] == first
    dup = out[2].rows.iloc[out[2].pos]
    assert dup["duplicate_of"] == first and dup["status"] == "collected"
    assert isinstance(out[3], ApiError) and out[3].status == 403
    assert isinstance(out[4], ApiError) and out[4].status == 422
    placed = out[5].rows.iloc[out[5].pos]
    assert placed.geometry.x == pytest.approx(INSIDE[0] + 0.02, abs=1e-5)
    assert isinstance(out[6], ApiError) and out[6].status == 400

    store = open_store(app.state.service.settings.workspace)
    reports = store.read("reports")
    created = {out[k].rows["report_id"].iloc[out[k].pos] for k in (0, 2, 5)}
    assert created <= set(reports["report_id"])
    assert len(reports) == 3 + 3  # the workspace's three and the three created
    assert (reports["idempotency_key"] == "k1").sum() == 1
    events = store.read("report_events")
    mine = events[events["report_id"].isin(created)]
    # 3 collected; the 2 originals opened and dispatched by the rules, the duplicate not
    assert mine["action"].value_counts().to_dict() == {"collect": 3, "open": 2, "dispatch": 2}
    assert set(mine.loc[mine["action"] == "collect", "actor_id"]) == {"S1"}
    assert set(mine.loc[mine["action"] != "collect", "actor_id"]) == {"system"}


def test_batch_answers_are_the_features_of_their_rows_as_each_caller_sees_them(app) -> None:
    # the writer serialises the batch once; each answer is cut to its caller's view
    # and must be exactly the feature the single-row path makes of that row
    out = _intake_batch(app, [_sub(key="a"), _sub(caller=W1), _sub(key="a")])
    for o in out:
        for who in (SUP, W1):
            assert encode(o.piece, who, "reports") == feature_of(o.rows, who, "reports", o.pos)
    public = orjson.loads(encode(out[1].piece, W1, "reports"))
    assert "reporter_contact" not in public["properties"]
    assert "reporter_contact" in orjson.loads(encode(out[1].piece, SUP, "reports"))["properties"]


def test_a_bad_point_is_refused_alone_not_with_its_batch(app) -> None:
    # projected metres sent as lon/lat (no datum declared), and an unknown datum: those
    # two are refused with 400; the reports batched with them are taken in
    out = _intake_batch(
        app,
        [
            _sub(lon=500000.0, lat=3000000.0),
            _sub(),
            _sub(crs="EPSG:999999"),
            _sub(crs="EPSG:999999", lon=500000.0, lat=3000000.0),
            _sub(lon=INSIDE[0] + 0.001),
        ],
    )
    assert isinstance(out[0], ApiError) and out[0].status == 400
    assert "longitude/latitude" in out[0].detail
    assert isinstance(out[2], ApiError) and out[2].status == 400
    assert isinstance(out[3], ApiError) and out[3].status == 400
    for o in (out[1], out[4]):
        assert not isinstance(o, BaseException) and o.rows["status"].iloc[o.pos] == "dispatched"


def test_refused_report_is_not_an_original_for_the_rest_of_its_batch(app) -> None:
    # the worker's report is refused; the supervisor's report next to it is then an
    # original, not a duplicate of a report that was never stored
    out = _intake_batch(
        app,
        [
            _sub(caller=W1_AWAY, lon=ELSEWHERE[0], lat=ELSEWHERE[1]),
            _sub(lon=ELSEWHERE[0] + 0.0001, lat=ELSEWHERE[1]),
        ],
    )
    assert isinstance(out[0], ApiError) and out[0].status == 403
    kept = out[1].rows.iloc[out[1].pos]
    assert pd.isna(kept["duplicate_of"])


def test_replay_of_a_key_stored_by_an_earlier_batch(app) -> None:
    first = _intake_batch(app, [_sub(key="phone-7")])[0]
    again = _intake_batch(app, [_sub(key="phone-7"), _sub(key="phone-8")])
    assert again[0].replay
    assert again[0].rows["report_id"].iloc[again[0].pos] == first.rows["report_id"].iloc[first.pos]
    assert not again[1].replay


# ------------------------------------------------------------------ over HTTP, concurrently


def test_concurrent_posts_are_all_stored_once_with_their_events(tmp_path: Path) -> None:
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    client = TestClient(create_app(workspace=ws))
    n = 40

    def post(i: int):
        body = report(lon=113.0 + (i % 20) * 0.01 + 0.004, lat=27.704 + (i // 20) * 0.01)
        return client.post(
            "/reports", json=body, headers=h(keys["sup"], **{"Idempotency-Key": f"c{i}"})
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(n)))
    assert all(r.status_code == 201 for r in answers), [r.text for r in answers][:3]
    ids = [r.json()["id"] for r in answers]
    assert len(set(ids)) == n
    store = open_store(ws)
    reports = store.read("reports")
    assert sorted(reports.loc[reports["report_id"].isin(ids), "idempotency_key"]) == sorted(
        f"worker:S1/c{i}"
        for i in range(n)  # stored as the caller's own keys
    )
    events = store.read("report_events")
    collected = events[(events["action"] == "collect") & events["report_id"].isin(ids)]
    assert sorted(collected["report_id"]) == sorted(ids)
    assert (collected["to_status"] == "collected").all()


def test_every_post_withdraws_its_announcement_whatever_its_answer(tmp_path: Path) -> None:
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    app = create_app(workspace=ws)
    client = TestClient(app)
    ok = client.post("/reports", json=report(), headers=h(keys["sup"]))
    bad = client.post("/reports", json={"category": 5}, headers=h(keys["sup"]))
    anon = client.post("/reports", json=report())
    assert (ok.status_code, bad.status_code, anon.status_code) == (201, 400, 401)
    assert app.state.service.reports.group._coming == 0


def test_duplicate_candidates_are_the_open_reports_within_the_radius(app) -> None:
    # a report 45 m east (longitude shrinks with latitude) or 45 m north of an open one
    # is its duplicate in a later batch; one 200 m away is a new problem
    m_lat = 1 / 111_000.0
    m_lon = m_lat / np.cos(np.radians(INSIDE[1]))
    first = _intake_batch(app, [_sub(key="orig")])[0]
    rid = first.rows["report_id"].iloc[first.pos]
    later = _intake_batch(
        app,
        [
            _sub(lon=INSIDE[0] + 45 * m_lon),
            _sub(lat=INSIDE[1] + 45 * m_lat),
            _sub(lon=INSIDE[0] + 200 * m_lon, category="green_belt"),
            _sub(lon=INSIDE[0] - 200 * m_lon),
        ],
    )
    dup = [o.rows["duplicate_of"].iloc[o.pos] for o in later]
    assert dup[0] == rid and dup[1] == rid
    assert pd.isna(dup[2]) and pd.isna(dup[3])
