"""Issue 19: assignees that exist and may be chosen (10), every served layer scoped
(13), workers reporting anywhere in their scope (14), personal data (15)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import write_layer
from gridkit.store import issue_key, open_store
from tests.api.test_writes import field_workspace, h, report

# the workspace's units: a 25-column grid from 113.00 E, 27.70 N, 0.01 degrees apart;
# even columns in district 430202, odd ones in 430203


@pytest.fixture
def setup(tmp_path: Path):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    store = open_store(ws)
    keys["w1_scoped"] = issue_key(store, "张三(区)", role="worker", worker_id="W1", scope="430202")[
        0
    ]
    keys["sup_202"] = issue_key(store, "荷塘区主任", role="supervisor", scope="430202")[0]
    return ws, TestClient(create_app(workspace=ws)), keys


def _assigned_case(client, keys) -> str:
    r = client.post("/reports", json=report(), headers=h(keys["w1"]))
    assert r.status_code == 201 and r.json()["properties"]["assignee_id"] == "W1", r.text
    return r.json()["id"]


# ------------------------------------------------------------------ 10: assignees


def test_a_worker_cannot_hand_a_case_to_another_district(setup) -> None:
    _, client, keys = setup
    rid = _assigned_case(client, keys)
    # the assignee is the grid worker who verifies: the centre chooses them, not a worker
    for who in ("W2", "W1"):
        r = client.patch(
            f"/reports/{rid}",
            json={"status": "dispatched", "assignee_id": who},
            headers=h(keys["w1_scoped"]),
        )
        assert r.status_code == 403 and "supervisor, dispatcher" in r.json()["detail"], r.text
    # nothing changed: W1 still holds it
    again = client.get(f"/collections/reports/items/{rid}", headers=h(keys["sup"]))
    assert again.status_code == 200 and again.json()["properties"]["assignee_id"] == "W1"


def test_a_supervisor_cannot_assign_nobody_or_outside(setup) -> None:
    ws, client, keys = setup
    rid = _assigned_case(client, keys)
    url = f"/reports/{rid}"
    # the status as it is: only the assignee changes
    body = {"status": "dispatched", "assignee_id": "NOPE-NOT-A-WORKER"}
    r = client.patch(url, json=body, headers=h(keys["sup_202"]))
    assert r.status_code == 422 and "NOPE-NOT-A-WORKER" in r.json()["detail"], r.text
    # W2 works in 430203: outside the case's district (they could not even see it)
    r = client.patch(url, json={**body, "assignee_id": "W2"}, headers=h(keys["sup"]))
    assert r.status_code == 422 and "outside case" in r.json()["detail"], r.text
    assert open_store(ws).read("reports").set_index("report_id").at[rid, "assignee_id"] == "W1"
    # a worker of the case's district is fine, and a worker may take a case himself
    r = client.patch(url, json={**body, "assignee_id": "W1"}, headers=h(keys["sup_202"]))
    assert r.status_code == 200, r.text


def test_a_supervisor_assigns_only_within_scope(tmp_path: Path) -> None:
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    workers = open_store(ws).read("workers")
    extra = workers.iloc[[0]].assign(worker_id="W9", admin_code="430200")  # a city worker
    write_layer(pd.concat([workers, extra], ignore_index=True), ws, "workers")
    sup = issue_key(open_store(ws), "荷塘区主任", role="supervisor", scope="430202")[0]
    client = TestClient(create_app(workspace=ws))
    rid = _assigned_case(client, keys)
    body = {"status": "dispatched", "assignee_id": "W9"}
    r = client.patch(f"/reports/{rid}", json=body, headers=h(sup))
    assert r.status_code == 403 and "outside your scope" in r.json()["detail"], r.text
    # a new assignee with a step the case may not take changes nothing: all or nothing
    for status, code in (("closed", 409), ("in_progress", 403)):
        r = client.patch(f"/reports/{rid}", json={**body, "status": status}, headers=h(keys["sup"]))
        assert r.status_code == code, r.text
        held = open_store(ws).read("reports").set_index("report_id").at[rid, "assignee_id"]
        assert held == "W1", status
    # the city's supervisor may (the city worker's area holds the case)
    r = client.patch(f"/reports/{rid}", json=body, headers=h(keys["sup"]))
    assert r.status_code == 200 and r.json()["properties"]["assignee_id"] == "W9", r.text


# ------------------------------------------------------------------ 13: every layer scoped


def _with_water(ws: Path) -> None:
    admin = gpd.GeoDataFrame(
        {
            "admin_code": ["430200", "430202", "430203"],
            "name": ["株洲市", "荷塘区", "芦淞区"],
            "level": ["city", "county", "county"],
            "parent_code": ["430000", "430200", "430200"],
        },
        geometry=[
            shapely.box(112.99, 27.69, 113.26, 27.8),
            shapely.box(112.99, 27.69, 113.10, 27.8),
            shapely.box(113.10, 27.69, 113.26, 27.8),
        ],
        crs=4326,
    )
    write_layer(admin, ws, "admin_areas")
    water = gpd.GeoDataFrame(
        {
            "water_body_id": ["WB1", "WB2", "WB3"],
            "name": ["荷塘水库", "芦淞湖", "两区界湖"],
            "kind": ["reservoir", "lake", "lake"],
        },
        geometry=[
            shapely.box(113.01, 27.71, 113.02, 27.72),
            shapely.box(113.20, 27.71, 113.21, 27.72),
            shapely.box(113.09, 27.75, 113.11, 27.76),
        ],
        crs=4326,
    )
    write_layer(water, ws, "water_bodies")


def test_water_bodies_are_scoped(tmp_path: Path) -> None:
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    _with_water(ws)
    sup = issue_key(open_store(ws), "荷塘区主任", role="supervisor", scope="430202")[0]
    client = TestClient(create_app(workspace=ws))
    url = "/collections/water_bodies"
    mine = client.get(f"{url}/items", headers=h(sup)).json()
    assert [f["id"] for f in mine["features"]] == ["WB1"]
    everyone = client.get(f"{url}/items", headers=h(keys["sup"])).json()
    assert [f["id"] for f in everyone["features"]] == ["WB1", "WB2", "WB3"]
    # the extent is the scope's, not the city's; a single item outside it is 404
    bbox = client.get(url, headers=h(sup)).json()["extent"]["spatial"]["bbox"][0]
    assert bbox == pytest.approx([113.01, 27.71, 113.02, 27.72])
    assert client.get(f"{url}/items/WB2", headers=h(sup)).status_code == 404
    assert client.get(f"{url}/items/WB2", headers=h(keys["sup"])).status_code == 200
    # a district elsewhere sees none of them
    far = client.get(f"{url}/items", headers=h(keys["far"])).json()
    assert far["numberMatched"] == 0


# ------------------------------------------------------------------ 14: report anywhere in scope


def test_a_worker_reports_one_unit_over(setup) -> None:
    _, client, keys = setup
    # unit 430202001001-002 (113.02 E) is not W1's, but lies in W1's scope 430202
    r = client.post("/reports", json=report(lon=113.024, lat=27.704), headers=h(keys["w1_scoped"]))
    assert r.status_code == 201, r.text
    p = r.json()["properties"]
    assert p["unit_id"] == "430202001001-002" and p["lead_department_id"] == "D1"
    # outside his scope stays refused
    r = client.post("/reports", json=report(lon=113.014, lat=27.704), headers=h(keys["w1_scoped"]))
    assert r.status_code == 403 and "outside your scope" in r.json()["detail"]


# ------------------------------------------------------------------ 15: personal data


def test_phones_in_free_text_are_masked_for_viewers(setup) -> None:
    _, client, keys = setup
    body = report(description="路灯坏了，联系电话 13812341234", reporter_contact="13900001111")
    rid = client.post("/reports", json=body, headers=h(keys["sup"])).json()["id"]
    url = f"/collections/reports/items/{rid}"
    seen = client.get(url, headers=h(keys["viewer"])).json()["properties"]
    assert seen["description"] == "路灯坏了，联系电话 138****1234"
    assert "reporter_contact" not in seen
    full = client.get(url, headers=h(keys["sup"])).json()["properties"]
    assert full["description"].endswith("13812341234")
    assert full["reporter_contact"] == "13900001111"


def test_phones_in_figures_are_masked_for_viewers(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    from gridkit.ops.simulate import simulate
    from gridkit.synth.ops import grid_units, grid_workers

    ws = tmp_path / "ws.gpkg"
    units = grid_units(4, 4, river_rows=1, admin_code="430202001001")
    workers, assignments = grid_workers(units)
    # ledgers often put the phone in the name cell
    workers["name"] = [f"网格员{i} 1380000{i:04d}" for i in range(len(workers))]
    sim = simulate(units, workers, assignments, start="2026-03-01", end="2026-04-01", seed=3)
    for name, df in (
        ("units", units),
        ("workers", workers),
        ("assignments", assignments),
        ("patrols", sim.patrols),
        ("reports", sim.reports),
        ("departments", sim.departments),
    ):
        write_layer(df, ws, name)
    store = open_store(ws)
    viewer = issue_key(store, "看", role="viewer")[0]
    sup = issue_key(store, "sup", role="supervisor")[0]
    client = TestClient(create_app(workspace=ws))
    url = "/stats/assessment?start=2026-03-01&end=2026-04-01"
    for key, masked in ((sup, False), (viewer, True), (sup, False)):  # cached: both ways
        names = [w["name"] for w in client.get(url, headers=h(key)).json()["workers"]]
        assert names and all(("****" in n) == masked for n in names), names
    xlsx = client.get(url + "&format=xlsx", headers=h(viewer))
    sheet = pd.read_excel(io.BytesIO(xlsx.content), sheet_name="workers")
    assert sheet["name"].str.contains(r"1380000\d{4}").sum() == 0
    assert sheet["name"].str.contains(r"138\*\*\*\*\d{4}").all()


def test_private_reads_are_logged_and_audited(setup, caplog) -> None:
    ws, client, keys = setup
    caplog.set_level(logging.INFO, logger="gridkit.audit")
    r = client.get("/collections/workers/items", headers=h(keys["sup"]))
    assert r.status_code == 200
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "gridkit.audit"]
    assert len(lines) == 1 and "王主任" in lines[0] and "W1" in lines[0] and "workers" in lines[0]
    # viewers get no private fields: nothing to audit
    caplog.clear()
    client.get("/collections/workers/items", headers=h(keys["viewer"]))
    client.get("/collections/units/items", headers=h(keys["sup"]))  # nothing private there
    assert not [rec for rec in caplog.records if rec.name == "gridkit.audit"]
    client.get("/collections/reports/items/R1", headers=h(keys["sup"]))
    from api.audit import AUDIT

    rows = open_store(ws).records(AUDIT)
    assert rows[["who", "layer"]].values.tolist() == [["S1", "workers"], ["S1", "reports"]]
    assert rows["records"].tolist() == ["W1,W2", "R1"] and rows["at"].notna().all()


def _closed_case_workspace(path: Path) -> Path:
    ws, _ = field_workspace(path)
    store = open_store(ws)
    reports = store.read("reports")
    reports = reports.assign(
        status=["closed", "closed", "in_progress"],
        reporter_contact=["13900000000", "13911112222", "13933334444"],
    )
    write_layer(reports, ws, "reports")
    events = pd.DataFrame(
        {
            "report_id": ["R1", "R2"],
            "at": pd.to_datetime(["2026-01-05T00:00Z", pd.Timestamp.now(tz="UTC")], utc=True),
            "actor_id": "S1",
            "from_status": "verified",
            "to_status": "closed",
            "note": None,
            "evidence": None,
        }
    )
    write_layer(events, ws, "report_events")
    return ws


def test_contact_retention_runs_at_startup(tmp_path: Path, monkeypatch) -> None:
    ws = _closed_case_workspace(tmp_path / "ws.gpkg")
    monkeypatch.setenv("GRIDKIT_CONTACT_RETENTION_DAYS", "30")
    with TestClient(create_app(workspace=ws)):
        pass  # startup ran the retention
    store = open_store(ws)
    contacts = store.read("reports").set_index("report_id")["reporter_contact"]
    # R1 closed months ago: removed; R2 closed today and R3 open: kept
    assert pd.isna(contacts["R1"])
    assert contacts["R2"] == "13911112222" and contacts["R3"] == "13933334444"
    events = store.read("report_events")
    purged = events[events["actor_id"] == "retention"]
    assert purged["report_id"].tolist() == ["R1"] and "contact removed" in purged["note"].iloc[0]


def test_no_retention_without_the_setting(tmp_path: Path, monkeypatch) -> None:
    ws = _closed_case_workspace(tmp_path / "ws.gpkg")
    monkeypatch.delenv("GRIDKIT_CONTACT_RETENTION_DAYS", raising=False)
    with TestClient(create_app(workspace=ws)):
        pass
    assert open_store(ws).read("reports")["reporter_contact"].notna().all()


def test_scopes_follow_their_layers_and_nothing_else(tmp_path: Path) -> None:
    """Water bodies take their codes from the admin areas: a new admin area re-scopes
    them; a report written does not make the units (or water bodies) serialise again."""
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    _with_water(ws)
    sup = issue_key(open_store(ws), "荷塘区主任", role="supervisor", scope="430202")[0]
    client = TestClient(create_app(workspace=ws))
    cache = client.app.state.service.geojson_cache

    def served(layer: str):
        assert client.get(f"/collections/{layer}/items", headers=h(sup)).status_code == 200
        return next(v[2] for k, v in cache.items() if k[0] == layer and k[1])

    units, water = served("units"), served("water_bodies")
    assert client.post("/reports", json=report(), headers=h(keys["sup"])).status_code == 201
    assert served("units") is units and served("water_bodies") is water
    # the admin areas redrawn: 芦淞区 now holds the whole east of 113.00
    admin = open_store(ws).read("admin_areas")
    east = admin["admin_code"] == "430203"
    admin.loc[~east & (admin["level"] == "county"), "geometry"] = shapely.box(
        112.9, 27.6, 113, 27.8
    )
    admin.loc[east, "geometry"] = shapely.box(113.0, 27.69, 113.26, 27.8)
    client.app.state.service.store.save_layer("admin_areas", admin)  # as a planner's publish
    mine = client.get("/collections/water_bodies/items", headers=h(sup)).json()
    assert mine["numberMatched"] == 0
