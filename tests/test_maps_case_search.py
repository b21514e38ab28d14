"""The map search finds cases (tester's W4): by case id or hotline ticket number, whole
and in any case, after the places and units; only cases the caller may see (scope, a
department its own), and nothing private in the text. On both backends."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import read_layer, write_layer
from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.conftest import make_workspace


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def setup(request, tmp_path_factory):
    path = make_workspace(tmp_path_factory.mktemp("search") / "ws.gpkg")
    reports = read_layer(path, "reports")
    reports["report_id"] = ["R0002920", "R20261122-001327", "R0000003"]
    reports["lead_department_id"] = ["D1", "D2", "D1"]
    # a hotline case (its ticket number), and one without a point but in a unit
    reports["ticket_system"] = [None, "12345", None]
    reports["ticket_id"] = [None, "GD2026-118", None]
    units = read_layer(path, "units")
    reports["unit_id"] = [None, None, units["unit_id"].iloc[4]]
    write_layer(reports, path, "reports")
    ws = str(path)
    if request.param == "postgis":
        ws = postgis_cluster.new_database()
        load(path, ws)
    store = open_store(ws)
    keys = {
        "viewer": issue_key(store, "看", role="viewer")[0],
        "district": issue_key(store, "区督", role="supervisor", scope="430203")[0],
        "department": issue_key(store, "部门", role="department", department_id="D1")[0],
    }
    getattr(store, "close", lambda: None)()
    return TestClient(create_app(workspace=ws, escalate_every_s=0)), keys, reports, units


def _search(client, key: str, q: str) -> list:
    r = client.get("/maps/data/search", params={"q": q}, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_case_is_found_by_its_id_and_its_ticket_number(setup) -> None:
    client, keys, reports, units = setup
    (hit,) = _search(client, keys["viewer"], "R0002920")
    text, s, w, n, e = hit
    assert text.startswith("R0002920 · ") and "13900000000" not in text
    point = reports.geometry.iloc[0]
    assert (s, w, n, e) == pytest.approx((point.y, point.x, point.y, point.x), abs=1e-6)
    # a case id with a dash, in lower case; its hotline ticket, with spaces around
    for q in ("r20261122-001327", " GD2026-118 "):
        (hit,) = _search(client, keys["viewer"], q)
        assert hit[0].startswith("R20261122-001327 · ") and "12345 GD2026-118" in hit[0]
    # no point: the bounds of its unit
    (hit,) = _search(client, keys["viewer"], "R0000003")
    b = units.geometry.iloc[4].bounds
    assert hit[1:] == pytest.approx([b[1], b[0], b[3], b[2]], abs=1e-6)
    # whole ids only: a part of one finds no case
    assert not any(h[0].startswith("R0") for h in _search(client, keys["viewer"], "R00029"))


def test_cases_come_after_places_and_units(setup) -> None:
    client, keys, *_ = setup
    places = _search(client, keys["viewer"], "430203001001-001")
    assert places and all(not h[0].startswith("R") for h in places)
    assert _search(client, keys["viewer"], "R0002920")[-1][0].startswith("R0002920")


def test_only_cases_the_caller_may_see(setup) -> None:
    client, keys, *_ = setup
    # R0002920 lies in 430202; the district supervisor's scope is 430203
    assert _search(client, keys["district"], "R0002920") == []
    assert len(_search(client, keys["district"], "GD2026-118")) == 1
    # D1 leads R0002920 and R0000003, not the hotline case
    assert len(_search(client, keys["department"], "R0002920")) == 1
    assert _search(client, keys["department"], "GD2026-118") == []
