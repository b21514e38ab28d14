"""NUL characters (U+0000) in what callers send: refused at the edge with the field
named, on both backends. PostgreSQL refuses NUL in text, so one report carrying it
failed every report of its group commit with a 500 (found by a tester on PostGIS)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_app
from gridkit.store import open_store
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.test_writes import field_workspace, fixes, h, report


@pytest.fixture(params=["gpkg", "postgis"])
def setup(request, tmp_path: Path):
    ws, keys = field_workspace(tmp_path / "ws.gpkg")
    if request.param == "postgis":
        url = postgis_cluster.new_database()  # skips, or fails under CI=true, without it
        load(ws, url)
        ws = url
    app = create_app(workspace=ws)
    with TestClient(app) as client:
        yield ws, client, keys
    getattr(app.state.service.store, "close", lambda: None)()


def _reports(ws) -> int:
    store = open_store(ws)
    try:
        return len(store.read("reports")) if "reports" in store.layers() else 0
    finally:
        getattr(store, "close", lambda: None)()


def test_a_nul_report_is_refused_and_the_others_are_taken(setup) -> None:
    ws, client, keys = setup
    before = _reports(ws)
    bodies = [report(description=f"路灯不亮 {i}") for i in range(12)]
    bodies[5] = report(description="a\u0000b")
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda b: client.post("/reports", json=b, headers=h(keys["w1"])), bodies)
        )
    codes = [r.status_code for r in answers]
    assert codes == [201] * 5 + [400] + [201] * 6, [r.text for r in answers]
    # the field is named, and only for the shape sent (a flat report, not a Feature)
    assert answers[5].json()["detail"] == (
        "description: Value error, text may not contain NUL characters (\\u0000)"
    )
    assert _reports(ws) == before + 11


def test_nul_in_a_patrol_or_a_checklist_key_is_refused(setup) -> None:
    _, client, keys = setup
    for body in (
        {"patrol_id": "P-nul-1", "notes": "巡河\u0000", "points": fixes()},
        {"patrol_id": "P-nul-2", "checklist": {"水面\u0000": "ok"}, "points": fixes()},
    ):
        r = client.post("/patrols", json=body, headers=h(keys["w1"]))
        assert r.status_code == 400 and "NUL" in r.text, r.text
    ok = client.post(
        "/patrols", json={"patrol_id": "P-ok", "points": fixes()}, headers=h(keys["w1"])
    )
    assert ok.status_code == 201, ok.text


def test_nul_in_an_open311_form_is_a_georeport_400(setup) -> None:
    _, client, _ = setup
    form = {"service_code": "street_light", "lat": "27.705", "long": "113.005"}
    r = client.post("/open311/v2/requests.json", data={**form, "description": "灯\u0000"})
    assert r.status_code == 400 and "description" in r.json()[0]["description"]


@pytest.mark.parametrize(
    "path",
    [
        "/collections/reports/items?category=%00",
        "/collections/units/items?unit_id=a%00b",
        "/maps/data/search?q=%00",
        "/collections/units%00/items",
    ],
)
def test_nul_in_the_url_is_a_400(setup, path) -> None:
    _, client, keys = setup
    r = client.get(path, headers=h(keys["sup"]))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "NUL" in r.json()["detail"]


def test_nul_in_an_open311_url_is_a_georeport_400(setup) -> None:
    _, client, _ = setup
    r = client.get("/open311/v2/requests/R1%00.json")
    assert r.status_code == 400 and r.json()[0]["code"] == 400
    r = client.get("/open311/v2/requests.xml?service_code=%00")
    assert r.status_code == 400 and r.text.lstrip().startswith("<?xml")


def test_nan_and_infinity_are_named_as_such(setup) -> None:
    # JSON has no NaN, but Python's encoders write it: "not finite", not "<= 180"
    _, client, keys = setup
    for bad in ("NaN", "Infinity"):
        body = f'{{"category": "street_light", "source": "patrol", "lon": {bad}, "lat": 27.7}}'
        r = client.post(
            "/reports", content=body, headers={**h(keys["w1"]), "content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["detail"] == "lon: Input should be a finite number"
