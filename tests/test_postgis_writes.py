"""Reports taken in over PostGIS by SQL (issue 25): the same answers as the GeoPackage
backend for the same input (ids, unit, admin code, duplicate decision, status, events),
batch by batch; nothing of the layer held in the server process, so a process that
did not see another's reports still continues its ids and links its duplicates.

A throwaway cluster (tests/postgis_cluster.py): skipped without PostgreSQL, failing
under CI.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from api.auth import Principal
from api.writer import Outcome, RowsBatch, Submission, fingerprint, scoped_key
from gridkit.io import write_layer
from gridkit.ops.reports import intake_rows
from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.conftest import make_workspace

ADMIN = Principal("admin", name="调度员", key_id="k-admin")
#: a worker of district 430203: may not file reports in 430202
WORKER = Principal("worker", scope="430203", worker_id="W2", name="李四", key_id="k-w2")
#: what is compared of each stored report
FIELDS = ["report_id", "unit_id", "admin_code", "duplicate_of", "status", "category"]


def _workspace(path: Path, *, handlers: bool = True) -> Path:
    make_workspace(path)
    # the area served is the district, wider than the units: a point between two
    # units is taken and put in the nearest one
    admin = gpd.GeoDataFrame(
        {
            "admin_code": ["430202"],
            "name": ["荷塘区"],
            "level": ["county"],
            "parent_code": ["430200"],
        },
        geometry=[shapely.box(112.99, 27.69, 113.26, 27.81)],
        crs=4326,
    )
    write_layer(admin, path, "admin_areas")
    departments = pd.DataFrame(
        {
            "department_id": ["D-ENV"],
            "name": ["区环卫所"],
            "admin_code": ["430202"],
            "categories": ["floating_garbage"],
        }
    )
    if handlers:
        write_layer(departments, path, "departments")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[TestClient, TestClient, str]:
    """Two services over the same data: its GeoPackage and, loaded, its PostGIS copy."""
    ws = _workspace(tmp_path_factory.mktemp("pg-writes") / "ws.gpkg")
    url = postgis_cluster.new_database()
    load(ws, url)
    return TestClient(create_app(workspace=ws)), TestClient(create_app(workspace=url)), url


def _sub(x: float | None, y: float | None, cat: str = "floating_garbage", *, key=None,
         caller: Principal = ADMIN, **props) -> Submission:  # fmt: skip
    props = {"category": cat, "description": f"河面 {x},{y}", "source": "patrol", **props}
    point = None if x is None else (x, y)
    return Submission(
        props, point, None, caller, scoped_key(caller, key),
        fingerprint(props, point, None) if key else None,
    )  # fmt: skip


#: batches as the writer takes them in (several reports arriving together)
BATCHES = [
    # two 10 m apart (the second a duplicate of the first), one of another category
    # at the same place, one near the stored open report R1 (its duplicate), one on a
    # unit's edge, one between units (the nearest unit), one keyed
    [
        _sub(113.0153, 27.7051),
        _sub(113.0153, 27.70519),
        _sub(113.0153, 27.7051, "street_light"),
        _sub(113.00502, 27.70502),
        _sub(113.029, 27.7045),
        _sub(113.0392, 27.7045),
        _sub(113.1033, 27.7211, key="k1"),
    ],
    # a retry of k1 (a replay), k1 reused for another report (422), a report the
    # worker may not file (403) between two others, an address-only hotline report
    # placed by hand, a point outside the area served (400)
    [
        _sub(113.1033, 27.7211, key="k1"),
        _sub(113.2, 27.75, key="k1"),
        _sub(113.0611, 27.7322),
        _sub(113.0253, 27.7051, caller=WORKER),
        _sub(113.0155, 27.7053, "street_light"),
        _sub(None, None, "sewage", source="hotline", unit_id="430202001001-014"),
        _sub(120.0, 30.0),
    ],
    # the worker's own district, far from the others; a duplicate of batch 1's first
    [_sub(113.0352, 27.7051, caller=WORKER), _sub(113.01532, 27.70512)],
]


def _answer(result: Outcome | BaseException) -> tuple:
    if isinstance(result, BaseException):
        return (type(result).__name__, getattr(result, "status", None))
    if isinstance(result.rows, RowsBatch):  # taken in as values
        row = {f: result.rows.taken.reports[f][result.pos] for f in FIELDS}
    else:
        row = result.rows.iloc[result.pos]
    return (result.replay, *(None if pd.isna(row.get(f)) else str(row.get(f)) for f in FIELDS))


def _events(client: TestClient) -> pd.DataFrame:
    store = client.app.state.service.store
    ev = store.read("report_events")
    ev = ev[ev["report_id"].astype(str).str.startswith("R0")]
    return ev[["report_id", "action", "from_status", "to_status", "actor_id"]].astype(str)


def _taken_in(client: TestClient) -> list[list[tuple]]:
    """:data:`BATCHES` taken in by ``client``'s report writer, their answers."""
    writer = client.app.state.service.reports
    return [[_answer(r) for r in writer.process(batch)] for batch in BATCHES]


def _posted(clients: dict[str, TestClient], bodies: list[dict], tag: str) -> dict[str, list]:
    """``bodies`` posted to each client by a new admin key, each with its own
    Idempotency-Key; the 201s' JSON by client name."""
    out: dict[str, list] = {}
    for name, client in clients.items():
        secret, _ = issue_key(client.app.state.service.store, "采集员", role="admin")
        out[name] = []
        for k, body in enumerate(bodies):
            headers = {"X-API-Key": secret, "Idempotency-Key": f"{tag}{k}"}
            r = client.post("/reports", json=body, headers=headers)
            assert r.status_code == 201, r.text
            out[name].append(r.json())
    return out


def test_both_backends_take_in_the_same_batches_the_same(pair) -> None:
    gpkg, pg, _ = pair
    got = [_taken_in(client) for client in (gpkg, pg)]
    assert got[0] == got[1]
    first, second, third = got[1]
    assert [a[1] for a in first] == [f"R{k:07d}" for k in range(4, 11)]  # after R1..R3
    dup = {a[1]: a[4] for batch in got[1] for a in batch if a[0] is False}
    assert dup["R0000005"] == "R2"  # both near the stored open R2 (the first wave's status)
    assert dup["R0000006"] is None  # another category
    assert dup["R0000007"] == "R1"
    assert first[4][2] == "430202001001-002"  # on its unit's edge
    assert first[5][2] == "430203001001-003"  # between units: the nearest
    assert first[6][5] == "dispatched" and first[0][5] == "collected"  # handed over at once
    assert second[0] == (True, *first[6][1:])  # a retry: the stored report again
    assert second[1] == ("ApiError", 422) and second[3] == ("ApiError", 403)
    assert second[6] == ("ApiError", 422)  # outside the area served
    # the refused report's id is given to the next (no gap), on both backends
    assert [second[k][1] for k in (2, 4, 5)] == ["R0000011", "R0000012", "R0000013"]
    assert second[4][4] == "R0000006" and second[5][2] == "430202001001-014"  # by hand
    assert [a[1] for a in third] == ["R0000014", "R0000015"] and third[1][4] == "R2"
    # every report with its events, the same on both
    ev = [_events(c).sort_values(["report_id", "action"]).reset_index(drop=True) for c in pair[:2]]
    pd.testing.assert_frame_equal(ev[0], ev[1])
    assert set(ev[1]["report_id"]) == {f"R{k:07d}" for k in range(4, 16)}
    assert (ev[1][ev[1]["action"] == "collect"]["actor_id"] != "system").all()


@pytest.fixture(scope="module")
def plain_pair(tmp_path_factory) -> tuple[TestClient, TestClient, str]:
    """:func:`pair` without departments: nothing handed over, so the PostGIS writer
    takes every batch in as values (:func:`gridkit.ops.reports.intake_rows`)."""
    ws = _workspace(tmp_path_factory.mktemp("pg-plain") / "ws.gpkg", handlers=False)
    url = postgis_cluster.new_database()
    load(ws, url)
    return TestClient(create_app(workspace=ws)), TestClient(create_app(workspace=url)), url


def test_batches_taken_in_as_values_answer_as_the_geopackage(plain_pair, monkeypatch) -> None:
    """The writer's values path over PostGIS: the same answers, events and served
    features as the GeoPackage's frames, batch for batch (duplicates in the batch and
    of stored reports, an edge, the nearest unit, keys replayed and reused, a 403, an
    address-only report and a point outside the area)."""
    import api.writer

    gpkg, pg, _ = plain_pair
    taken = []

    def counted(*args, **kw):
        out = intake_rows(*args, **kw)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(api.writer, "intake_rows", counted)
    got = [_taken_in(client) for client in (gpkg, pg)]
    assert got[0] == got[1]
    # the PostGIS writer took in as values each batch whose points lie in units
    first, second, third = got[1]
    assert all(a[5] == "collected" for b in got[1] for a in b if a[0] is False)
    assert second[0] == (True, *first[6][1:]) and second[1] == ("ApiError", 422)
    assert second[3] == ("ApiError", 403) and second[6] == ("ApiError", 422)
    assert [a[1] for a in third] == ["R0000014", "R0000015"] and third[1][4] == "R2"
    ev = [_events(c).sort_values(["report_id", "action"]).reset_index(drop=True)
          for c in plain_pair[:2]]  # fmt: skip
    pd.testing.assert_frame_equal(ev[0], ev[1])
    # served the same: every property of the 201s, posted to both
    bodies = [
        {"lon": 113.0711, "lat": 27.7402, "category": "floating_garbage", "description": "油污"},
        {"lon": 113.0711, "lat": 27.74023, "category": "floating_garbage",
         "reported_at": "2026-12-06T09:30:00.123456+08:00", "reporter_contact": "13800000000"},
    ]  # fmt: skip
    pg.app.state.service.store.read("reports")  # a copy held: the writes keep it current
    posted = _posted({"gpkg": gpkg, "pg": pg}, bodies, "v")
    served = [posted["gpkg"], posted["pg"]]
    for doc in (served[0][0], served[1][0]):  # taken now: at each backend's now
        del doc["properties"]["reported_at"], doc["properties"]["due_at"]
    assert served[0] == served[1]
    assert served[1][1]["properties"]["duplicate_of"] == served[1][0]["id"]
    assert served[1][1]["properties"]["reported_at"] == "2026-12-06T01:30:00.123456+00:00"
    # the last batch and both posts were taken in as values (a batch with an
    # address-only report, or a point between units, goes as frames)
    assert taken[-3:] == [True, True, True] and not all(taken)
    # the copy held, kept current by the writes, is what a new read gives, type for type
    held = pg.app.state.service.store.read("reports")
    pd.testing.assert_frame_equal(held, open_store(plain_pair[2]).read("reports"))


def test_http_posts_give_the_same_answers(pair) -> None:
    gpkg, pg, _ = pair
    bodies = [
        {"lon": 113.0711, "lat": 27.7402, "category": "floating_garbage"},
        {"lon": 113.0711, "lat": 27.74023, "category": "floating_garbage"},
        {"lon": 113.0852, "lat": 27.7502, "category": "green_belt", "crs": "gcj02"},
    ]
    posted = _posted({"gpkg": gpkg, "pg": pg}, bodies, "h")
    answers = [
        [(d["id"], d["properties"]["unit_id"], d["properties"].get("duplicate_of"),
          d["properties"]["status"]) for d in posted[name]]
        for name in ("gpkg", "pg")
    ]  # fmt: skip
    assert answers[0] == answers[1]
    assert answers[1][1][2] == answers[1][0][0]


def test_a_process_that_saw_nothing_continues_the_ids_and_links_duplicates(pair) -> None:
    """No copy of the layer in the process: a second service over the same database,
    started before the first wrote, still continues after the other's ids and finds
    its open reports (it asks the database)."""
    _, pg, url = pair
    other = TestClient(create_app(workspace=url))
    writer = other.app.state.service.reports
    before = pg.app.state.service.reports.process([_sub(113.2003, 27.8003)])[0]
    after = writer.process([_sub(113.20031, 27.80031)])[0]
    a, b = _answer(before), _answer(after)
    assert int(b[1][1:]) == int(a[1][1:]) + 1 and b[4] == a[1]
    assert writer.held is None  # nothing of the layer read into the process


def test_next_id_and_located_unit_are_indexed_queries(pair) -> None:
    import psycopg

    url = pair[2]
    with psycopg.connect(url) as con:
        con.execute("SET enable_seqscan = off")  # tiny tables: show the index is usable
        plan = " ".join(
            r[0] for r in con.execute(
                "EXPLAIN SELECT max(gridkit_report_number(report_id)) FROM reports"
            )
        )  # fmt: skip
        assert "reports_report_number_idx" in plan
        plan = " ".join(
            r[0] for r in con.execute(
                "EXPLAIN SELECT u.fid FROM unnest(ARRAY[113.01]::float8[], ARRAY[27.71]::float8[]) "
                "AS p(x, y) JOIN units u ON ST_Intersects(u.geometry, "
                "ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))"
            )
        )  # fmt: skip
        assert "units_geometry_idx" in plan


def test_the_geopackage_writer_still_holds_its_layer(tmp_path: Path) -> None:
    """Over a GeoPackage (one process) the writer keeps the layer and its ids in memory."""
    ws = _workspace(tmp_path / "ws.gpkg")
    copy = tmp_path / "copy.gpkg"
    shutil.copy(ws, copy)
    client = TestClient(create_app(workspace=copy))
    writer = client.app.state.service.reports
    out = writer.process([_sub(113.0153, 27.7051), _sub(113.0153, 27.70519)])
    assert [_answer(r)[1] for r in out] == ["R0000004", "R0000005"]
    assert writer.held is not None and len(writer.held) == 5
    assert open_store(ws).read("reports")["report_id"].tolist() == ["R1", "R2", "R3"]
