"""One case's history over the API (tester's W3): ``report_events`` filtered by
``report_id`` (and ``action``, ``to_status``), scoped as the reports are, declared in
its queryables and the OpenAPI document, and an unknown parameter answered with the
history's own filters. On both backends."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import read_layer, write_layer
from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.conftest import make_workspace

T0 = pd.Timestamp("2026-05-01T00:00Z")


def _history(reports: pd.DataFrame) -> pd.DataFrame:
    """Each case reported and dispatched; R1 escalated and closed; R2 escalated."""
    rows = []
    for k, rid in enumerate(reports["report_id"]):
        rows += [
            (rid, T0 + pd.Timedelta(hours=k), "reported", None, "reported", "上报"),
            (rid, T0 + pd.Timedelta(hours=k + 1), "dispatch", "reported", "handling", "派遣"),
        ]
    rows += [
        ("R1", T0 + pd.Timedelta("3D"), "escalate", "handling", "handling", "escalated (督办)"),
        ("R1", T0 + pd.Timedelta("4D"), "close", "handling", "closed", "结案"),
        ("R2", T0 + pd.Timedelta("3D"), "escalate", "handling", "handling", "escalated (督办)"),
    ]
    cols = ["report_id", "at", "action", "from_status", "to_status", "note"]
    return pd.DataFrame(rows, columns=cols).assign(actor_id="system")


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def setup(request, tmp_path_factory):
    path = make_workspace(tmp_path_factory.mktemp("events") / "ws.gpkg")
    reports = read_layer(path, "reports")
    reports["lead_department_id"] = ["D1", "D2", "D2"]
    write_layer(reports, path, "reports")
    events = _history(reports)
    write_layer(events, path, "report_events")
    ws: str | Path = path
    if request.param == "postgis":
        ws = postgis_cluster.new_database()
        load(path, ws)
    store = open_store(ws)
    keys = {
        "viewer": issue_key(store, "看", role="viewer")[0],
        "supervisor": issue_key(store, "督", role="supervisor")[0],
        # R2 is the only case in 430203
        "district": issue_key(store, "区督", role="supervisor", scope="430203")[0],
        # D1 leads R1 only
        "department": issue_key(store, "部门", role="department", department_id="D1")[0],
    }
    getattr(store, "close", lambda: None)()
    return TestClient(create_app(workspace=ws, escalate_every_s=0)), keys, events


def _get(client, key: str, query: str):
    return client.get(f"/collections/report_events/items?{query}", headers={"X-API-Key": key})


def _pairs(r) -> list[tuple[str, str]]:
    assert r.status_code == 200, r.text
    return sorted(
        (f["properties"]["report_id"], f["properties"]["action"]) for f in r.json()["features"]
    )


def test_one_cases_history_by_report_id(setup) -> None:
    client, keys, events = setup
    want = sorted(zip(events["report_id"], events["action"], strict=True))
    for rid in ("R1", "R2", "R3"):
        got = _pairs(_get(client, keys["supervisor"], f"report_id={rid}"))
        assert got == [p for p in want if p[0] == rid]
    both = _pairs(_get(client, keys["supervisor"], "report_id=R1,R3"))
    assert both == [p for p in want if p[0] in ("R1", "R3")]
    assert _pairs(_get(client, keys["supervisor"], "report_id=R9")) == []


def test_action_and_stage_filters_combine(setup) -> None:
    client, keys, _ = setup
    esc = _pairs(_get(client, keys["supervisor"], "action=escalate"))
    assert esc == [("R1", "escalate"), ("R2", "escalate")]
    assert _pairs(_get(client, keys["supervisor"], "action=escalate&report_id=R2")) == [
        ("R2", "escalate")
    ]
    closed = _pairs(_get(client, keys["supervisor"], "to_status=closed"))
    assert closed == [("R1", "close")]
    r = _get(client, keys["supervisor"], "action=escalate&limit=1")
    assert r.json()["numberMatched"] == 2 and len(r.json()["features"]) == 1


def test_a_caller_sees_only_the_history_of_cases_he_may_see(setup) -> None:
    client, keys, _ = setup
    # a district supervisor: only his district's case
    assert _pairs(_get(client, keys["district"], "report_id=R1")) == []
    assert {p[0] for p in _pairs(_get(client, keys["district"], "action=escalate"))} == {"R2"}
    # a department: only the cases it leads, filtered or not
    assert {p[0] for p in _pairs(_get(client, keys["department"], "limit=100"))} == {"R1"}
    assert _pairs(_get(client, keys["department"], "report_id=R2")) == []
    assert _pairs(_get(client, keys["department"], "report_id=R1,R2")) == [
        ("R1", a) for a in sorted(["reported", "dispatch", "escalate", "close"])
    ]


def test_queryables_openapi_and_unknown_parameters_name_the_historys_filters(setup) -> None:
    client, keys, _ = setup
    h = {"X-API-Key": keys["viewer"]}
    q = client.get("/collections/report_events/queryables", headers=h)
    assert q.status_code == 200
    assert set(q.json()["properties"]) == {"report_id", "action", "to_status"}
    assert "closed" in q.json()["properties"]["to_status"]["enum"]
    doc = client.get("/openapi.json").json()
    params = {
        p["name"] for p in doc["paths"]["/collections/report_events/items"]["get"]["parameters"]
    }
    assert {"report_id", "action", "to_status", "bbox", "datetime", "limit"} <= params
    assert "status" not in params
    bad = _get(client, keys["viewer"], "status=closed")
    assert bad.status_code == 400
    detail = bad.json()["detail"]
    assert "'status'" in detail and "report_id" in detail and "to_status" in detail
    assert "assignee_id" not in detail and "mine" not in detail
    # the reports keep theirs; report_id is not one of them
    assert client.get("/collections/reports/items?report_id=R1", headers=h).status_code == 400
    assert client.get("/collections/reports/items?status=reported", headers=h).status_code == 200
