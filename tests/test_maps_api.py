"""The /maps data endpoints (viewport units, areas, search, tiles) and the served pages'
context, read-only and cut to the caller's scope."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

pytest.importorskip("fastapi")

from tests.api.conftest import auth, client, keys, workspace  # noqa: F401 (fixtures)

BOX = "112.99,27.69,113.26,27.81"


def test_units_per_viewport_are_scoped_simplified_and_bounded(client, keys):  # noqa: F811
    r = client.get(f"/maps/data/units?bbox={BOX}&zoom=14", headers=auth(keys["viewer"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    ids = [f["properties"]["id"] for f in r.json()["features"]]
    assert len(ids) == 250 and len(set(ids)) == 250
    scoped = client.get(f"/maps/data/units?bbox={BOX}&zoom=14",
                        headers=auth(keys["district_supervisor"])).json()  # fmt: skip
    assert {f["properties"]["id"][:6] for f in scoped["features"]} == {"430203"}
    small = client.get("/maps/data/units?bbox=113.0,27.7,113.015,27.715&zoom=16",
                       headers=auth(keys["viewer"])).json()  # fmt: skip
    assert 0 < len(small["features"]) <= 9
    over = client.get(f"/maps/data/units?bbox={BOX}&zoom=14&limit=10",
                      headers=auth(keys["viewer"])).json()  # fmt: skip
    assert over["too_many"] == 250 and over["features"] == []


def test_bad_bbox_is_a_400_not_a_traceback(client, keys):  # noqa: F811
    for q in ("bbox=1,2,3&zoom=3", "bbox=113.3,27.7,113.0,27.8&zoom=3", "bbox=0,0,90,80&zoom=2"):
        r = client.get(f"/maps/data/units?{q}", headers=auth(keys["viewer"]))
        assert r.status_code in (400, 422), q
        assert "bbox" in r.text


def test_areas_and_search(client, keys):  # noqa: F811
    a = client.get(f"/maps/data/areas?bbox={BOX}&zoom=9", headers=auth(keys["viewer"])).json()
    props = [f["properties"] for f in a["features"]]
    assert {p["admin_code"] for p in props} == {"430202001001", "430203001001"}
    assert sum(p["n_units"] for p in props) == 250
    found = client.get("/maps/data/search?q=430203001001-001", headers=auth(keys["viewer"]))
    assert found.status_code == 200 and found.json()[0][0].startswith("430203001001-001")
    assert client.get("/maps/data/search?q=430202",
                      headers=auth(keys["district_supervisor"])).json() == []  # fmt: skip


def test_data_endpoints_need_a_key(client):  # noqa: F811
    client.cookies.clear()
    assert client.get(f"/maps/data/units?bbox={BOX}&zoom=14").status_code == 401
    assert client.get("/maps/view").status_code == 401


def test_view_page_is_small_and_loads_only_local_assets(client, keys):  # noqa: F811
    r = client.get("/maps/view", headers=auth(keys["viewer"]))
    assert r.status_code == 200
    assert len(r.content) < 30_000  # the data comes per viewport, not in the page
    assert "/assets/leaflet.js" in r.text and "http" not in r.text.split("<body>")[1]


def test_served_pages_name_categories_from_the_rules(client, keys):  # noqa: F811
    """Open cases in the coverage popups are named by the rules' label_zh, never the key."""
    page = client.get("/maps/coverage", headers=auth(keys["viewer"])).text
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    assert "漂浮垃圾" in text and "floating_garbage" not in text


def test_mbtiles_served_locally(client, keys, tmp_path, monkeypatch):  # noqa: F811
    from api import mapdata

    path = tmp_path / "t.mbtiles"
    db = sqlite3.connect(path)
    db.execute("create table metadata (name text, value text)")
    db.execute("insert into metadata values ('format', 'png')")
    db.execute("create table tiles (zoom_level int, tile_column int, tile_row int, tile_data blob)")
    db.execute("insert into tiles values (2, 3, 1, x'89504e470d0a')")  # TMS row 1 = XYZ y 2
    db.commit()
    db.close()
    monkeypatch.setenv("GRIDKIT_MBTILES", str(path))
    mapdata._mbtiles_at.cache_clear()
    r = client.get("/maps/tiles/2/3/2", headers=auth(keys["viewer"]))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    assert client.get("/maps/tiles/2/3/1", headers=auth(keys["viewer"])).status_code == 204
    page = client.get("/maps/view", headers=auth(keys["viewer"])).text
    assert json.dumps("/maps/tiles/{z}/{x}/{y}") in page
