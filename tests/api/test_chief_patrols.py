"""A chief records a patrol over HTTP with its mode and the 看/查/交 checklist (issue 20
item 9): a car patrol by a county chief counts, the same track declared on foot is
flagged, and a checklist problem becomes a case linked to the patrol."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import write_layer
from gridkit.store import issue_key, open_store
from gridkit.synth.people import chief_demo


@pytest.fixture
def chief(tmp_path: Path):
    units, chiefs, patrols = chief_demo()
    ws = tmp_path / "ws.gpkg"
    workers = gpd.GeoDataFrame(
        {
            "worker_id": ["W-C", "W-V"],
            "name": ["县河长", "村河长"],
            "role": "grid_worker",
            "level": ["county", "village"],
            "admin_code": ["430202", "430202001001"],
            "capacity": 0.0,
        },
        geometry=[shapely.Point(113.12, 27.81), shapely.Point(113.11, 27.81)],
        crs=4326,
    )
    admin = gpd.GeoDataFrame(  # the county holds the riverside road the chief drove
        {"admin_code": ["430202"], "name": ["荷塘区"], "level": ["county"]},
        geometry=[shapely.box(113.05, 27.75, 113.25, 27.85)],
        crs=4326,
    )
    layers = (("admin_areas", admin), ("units", units), ("river_chiefs", chiefs))
    for name, df in (*layers, ("workers", workers)):
        write_layer(df, ws, name)
    key, _ = issue_key(open_store(ws), "县河长", role="worker", worker_id="W-C")
    track = shapely.get_coordinates(patrols.geometry.iloc[0])
    start = pd.Timestamp("2026-05-06T01:00Z")
    times = pd.date_range(start, start + pd.Timedelta(minutes=40), periods=len(track))
    points = [
        {"lon": x, "lat": y, "t": t.isoformat(), "accuracy_m": 8}
        for (x, y), t in zip(track, times, strict=True)
    ]
    return TestClient(create_app(workspace=ws)), {"X-API-Key": key}, points


def test_a_car_patrol_counts_and_the_same_track_on_foot_is_flagged(chief) -> None:
    client, key, points = chief
    car = client.post("/patrols", json={"mode": "car", "points": points}, headers=key)
    assert car.status_code == 201, car.text
    made = car.json()["created"][0]
    assert made["valid"], made
    foot = client.post(
        "/patrols", json={"mode": "foot", "points": points, "patrol_id": "P-2"}, headers=key
    )
    assert foot.status_code == 201, foot.text
    walked = foot.json()["created"][0]
    assert not walked["valid"] and "implausible_speed" in walked["flags"]


def test_a_checklist_problem_becomes_a_case_of_the_patrol(chief) -> None:
    client, key, points = chief
    body = {
        "patrol_id": "P-CHK",
        "mode": "car",
        "points": points,
        "checklist": {
            "outfalls": {"result": "problem", "note": "暗管排污"},
            "smell": "ok",
        },
    }
    r = client.post("/patrols", json=body, headers=key)
    assert r.status_code == 201, r.text
    cases = r.json()["created"][0]["reports"]
    assert len(cases) == 1
    case = client.get(f"/collections/reports/items/{cases[0]}", headers=key).json()
    props = case["properties"]
    assert (props["category"], props["source"], props["patrol_id"]) == (
        "illegal_discharge",
        "patrol",
        "P-CHK",
    )
    assert props["status"] == "collected"  # a case like any other: the centre opens it
    again = client.post("/patrols", json=body, headers=key)  # a retry: nothing twice
    assert again.status_code == 200 and again.json()["existing"] == ["P-CHK"]
    listed = client.get("/collections/reports/items", headers=key).json()
    assert listed["numberMatched"] == 1


def test_an_unknown_checklist_item_is_named(chief) -> None:
    client, key, points = chief
    body = {"mode": "car", "points": points, "checklist": {"fish_count": "ok"}}
    r = client.post("/patrols", json=body, headers=key)
    assert r.status_code == 422
    assert "fish_count" in r.json()["detail"]


def test_a_problem_already_reported_is_not_handed_over_twice(chief) -> None:
    client, key, points = chief
    body = {
        "patrol_id": "P-APP",
        "mode": "car",
        "points": points,
        "checklist": {"outfalls": {"result": "problem", "reported": True}, "smell": "ok"},
    }
    r = client.post("/patrols", json=body, headers=key)
    assert r.status_code == 201, r.text
    assert r.json()["created"][0]["reports"] == []
