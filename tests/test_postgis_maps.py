"""Maps from the database: the map pages' data endpoints (``/maps/data/units``,
``/areas``, ``/search``, the ``/maps/view`` page's overview) answer over PostGIS in SQL
(:class:`gridkit.store.ViewQueries`) exactly what the in-memory index answers over the
GeoPackage: the same features (ids, status, workers, area counts and classes), the
same geometry within the zoom's simplification tolerance, the same scope."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import write_layer
from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from gridkit.synth import maps as synth
from tests import postgis_cluster

N = 900  # 30 rows of 30 units: 30 villages, two districts


def _workspace(path):
    u = synth.units(N, seed=3)
    row = np.arange(N) // 30
    east = row >= 20  # the last ten rows lie in another district
    u.loc[east, "admin_code"] = u.loc[east, "admin_code"].str.replace("430202", "430203")
    u.loc[5, "name"] = None
    u.loc[7, "geometry"] = shapely.Polygon()  # empty: shown by neither
    write_layer(u, path, "units")
    a = synth.assignments(u, n_workers=12, seed=3)
    a = pd.concat(
        [a, pd.DataFrame({"unit_id": [u["unit_id"][0]] * 2, "worker_id": ["W999", "W002"]})]
    )
    a["valid_to"] = pd.Series(pd.NaT, index=a.index, dtype="datetime64[ms, UTC]")
    a.loc[a.index[3], "valid_to"] = pd.Timestamp("2026-01-01", tz="UTC")  # ended: not shown
    write_layer(a.reset_index(drop=True), path, "assignments")
    workers = pd.DataFrame({"worker_id": [f"W{i:03d}" for i in range(1, 10)],
                            "name": [f"网格员{i}号" for i in range(1, 10)]})  # fmt: skip
    write_layer(workers, path, "workers")  # W010..W012, W999: no name, shown by id
    villages = sorted(set(u["admin_code"]))[:10]  # outlines for a third; the rest unioned
    admin = u[u["admin_code"].isin(villages)].dissolve("admin_code").reset_index()
    outline = shapely.buffer(admin.geometry.array, 0.0005)
    admin = gpd.GeoDataFrame({"admin_code": admin["admin_code"], "level": "village",
                              "name": [f"{c[-3:]}村" for c in admin["admin_code"]]},
                             geometry=outline, crs=4326)  # fmt: skip
    # the levels above: search finds 荷塘区 and its township by name, never a district
    # without units (天元区), and a scoped caller finds only the places of the scope
    above = gpd.GeoDataFrame(
        {"admin_code": ["430202", "430202000", "430203", "430211"],
         "level": ["county", "township", "county", "county"],
         "name": ["荷塘区", "月塘街道", "芦淞区", "天元区"]},
        geometry=[shapely.box(113.0, 27.7, 113.3, 27.95)] * 4, crs=4326,
    )  # fmt: skip
    write_layer(pd.concat([admin, above], ignore_index=True), path, "admin_areas")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ws = _workspace(tmp_path_factory.mktemp("pg-maps") / "ws.gpkg")
    store = open_store(ws)
    keys = {"all": issue_key(store, "viewer", role="viewer")[0],
            "east": issue_key(store, "east", role="supervisor", scope="430203")[0]}  # fmt: skip
    url = postgis_cluster.new_database()
    load(ws, url)  # the keys come along
    pg = TestClient(create_app(workspace=url))
    return TestClient(create_app(workspace=ws)), pg, keys


def _get(client, path, key):
    r = client.get(path, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text[:300]
    return r


def _same_features(a: dict, b: dict, tol: float) -> None:
    assert a.get("too_many") == b.get("too_many")
    ids = [json.dumps(f["properties"], ensure_ascii=False) for f in a["features"]]
    assert ids == [json.dumps(f["properties"], ensure_ascii=False) for f in b["features"]]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        ga = shapely.from_geojson(json.dumps(fa["geometry"]))
        gb = shapely.from_geojson(json.dumps(fb["geometry"]))
        assert shapely.hausdorff_distance(ga, gb) <= tol + 1e-5, fa["properties"]
        assert shapely.is_ccw(gb.exterior if gb.geom_type == "Polygon" else gb.geoms[0].exterior)


VIEWPORTS = [
    ("113.1,27.8,113.112,27.812", 16, None),  # 6 decimals, little simplified
    ("113.1,27.8,113.16,27.86", 13, None),  # the whole grid, half a pixel at 13
    ("113.09,27.79,113.2,27.9", 11, None),
    ("113.1,27.8,113.13,27.83", 14, 100),  # about 225: counted, too many
    ("113.1,27.8,113.16,27.86", 13, 50),  # 900: estimated, too many
    ("113.3,27.9,113.4,28.0", 14, None),  # nothing there
]


@pytest.mark.parametrize(("bbox", "zoom", "limit"), VIEWPORTS)
@pytest.mark.parametrize("who", ["all", "east"])
def test_viewport_units_are_the_same_from_sql(pair, who, bbox, zoom, limit):
    gpkg, pg, keys = pair
    q = f"/maps/data/units?bbox={bbox}&zoom={zoom}" + (f"&limit={limit}" if limit else "")
    a, b = _get(gpkg, q, keys[who]), _get(pg, q, keys[who])
    assert a.headers["content-type"] == b.headers["content-type"] == "application/geo+json"
    _same_features(a.json(), b.json(), 0.5 * 360 / (256 * 2**zoom))
    if who == "east":  # units 600.. lie in the district 430203
        assert all(int(f["properties"]["id"][-4:]) >= 600 for f in b.json()["features"])


@pytest.mark.parametrize(("bbox", "zoom"), [("113.09,27.79,113.2,27.9", 9),
                                            ("113.1,27.8,113.12,27.81", 12)])  # fmt: skip
@pytest.mark.parametrize("who", ["all", "east"])
def test_areas_are_the_same_from_sql(pair, who, bbox, zoom):
    gpkg, pg, keys = pair
    q = f"/maps/data/areas?bbox={bbox}&zoom={zoom}"
    a, b = _get(gpkg, q, keys[who]).json(), _get(pg, q, keys[who]).json()
    _same_features(a, b, 0.5 * 360 / (256 * 2**zoom))
    names = {f["properties"]["name"] for f in b["features"]}
    if who == "all" and zoom == 9:  # outlines of both kinds: named, and unioned units
        assert "001村" in names and "430202000015" in names
        assert sum(f["properties"]["n_units"] for f in b["features"]) == N - 1
    if who == "east":
        assert {f["properties"]["admin_code"][:6] for f in b["features"]} <= {"430203"}


@pytest.mark.parametrize("q", ["430202000001-0000", "w01", "网格员3", "w999", "第12网格",
                               "002村", "x-nothing", " 荷塘 ", "%", "0_0", "\\", "区",
                               "街道", "天元"])  # fmt: skip
@pytest.mark.parametrize("who", ["all", "east"])
def test_search_is_the_same_from_sql(pair, who, q):
    gpkg, pg, keys = pair
    path = "/maps/data/search?" + urlencode({"q": q})
    a, b = _get(gpkg, path, keys[who]).json(), _get(pg, path, keys[who]).json()
    assert a == b
    if q == "区":  # the districts holding the caller's units, never one without units
        places = [t for t, *_ in b if "-" not in t]  # then the units named 荷塘区第N网格
        assert places == (["荷塘区", "芦淞区"] if who == "all" else ["芦淞区"])
        assert len(b) == 20
    if q in ("街道", "天元"):
        assert [t for t, *_ in b] == (["月塘街道"] if q == "街道" and who == "all" else [])
    if q == "w999" and who == "all":  # a unit with several workers: names joined, sorted
        assert b[0][0].startswith("430202000001-0000 荷塘区第1网格 · ")
        assert b[0][0].endswith(" · W999 · 网格员2号")


def test_the_view_page_is_the_same_and_no_route_reads_the_units_into_memory(pair, monkeypatch):
    gpkg, pg, keys = pair
    store = pg.app.state.service.store

    def refuse(layer):
        raise AssertionError(f"read {layer} into memory")

    monkeypatch.setattr(store, "read", refuse)  # the in-memory index would read them
    for who in keys:
        assert _get(gpkg, "/maps/view", keys[who]).text == _get(pg, "/maps/view", keys[who]).text
        for q in ("/maps/data/units?bbox=113.1,27.8,113.12,27.82&zoom=15",
                  "/maps/data/areas?bbox=113.1,27.8,113.12,27.82&zoom=9",
                  "/maps/data/search?q=w00"):  # fmt: skip
            _get(pg, q, keys[who])


def test_an_edit_in_the_database_is_served_at_once(pair):
    _, pg, keys = pair
    store = pg.app.state.service.store
    q = "/maps/data/units?bbox=113.1,27.8,113.103,27.803&zoom=16"
    before = _get(pg, q, keys["all"]).json()["features"]
    areas = "/maps/data/areas?bbox=113.1,27.8,113.103,27.803&zoom=9"
    staffed = _get(pg, areas, keys["all"]).json()["features"][0]["properties"]["staffed"]
    with store._connection() as con:  # as QGIS would: straight into the table
        con.execute("UPDATE assignments SET valid_to = now() WHERE unit_id = %s",
                    (before[0]["properties"]["id"],))  # fmt: skip
    after = _get(pg, q, keys["all"]).json()["features"]
    assert before[0]["properties"]["s"] == "staffed"
    assert after[0]["properties"] == {"id": before[0]["properties"]["id"], "s": "unassigned",
                                      "w": ""}  # fmt: skip
    start = time.monotonic()  # the areas' counts are held per version: NOTIFY moves it
    while _get(pg, areas, keys["all"]).json()["features"][0]["properties"]["staffed"] == staffed:
        assert time.monotonic() - start < 1.0, "the edit was not in the areas within a second"
        time.sleep(0.01)
    now = _get(pg, areas, keys["all"]).json()["features"][0]["properties"]["staffed"]
    assert now == staffed - 1


def test_the_workers_lookup_is_indexed(pair):
    """assignments has no id column in the contract: the first view makes the btree on
    unit_id its per-unit lookups need (one per unit of a viewport, not a table scan)."""
    _, pg, keys = pair
    _get(pg, "/maps/data/units?bbox=113.1,27.8,113.103,27.803&zoom=16", keys["all"])
    with pg.app.state.service.store._connection() as con:
        plan = con.execute(
            "EXPLAIN SELECT worker_id FROM assignments WHERE unit_id = '430202000001-0001'"
        ).fetchall()
    assert "gridkit_assignments_unit_id" in " ".join(r[0] for r in plan)


def test_the_database_away_is_a_503_and_the_maps_come_back(pair):
    _, pg, keys = pair
    q = "/maps/data/units?bbox=113.1,27.8,113.103,27.803&zoom=16"
    postgis_cluster.pg_ctl("stop")
    try:
        for path in (q, "/maps/data/search?q=w00"):
            r = pg.get(path, headers={"X-API-Key": keys["all"]})
            assert r.status_code == 503 and r.headers["Retry-After"], r.text[:300]
            assert r.headers["content-type"] == "application/problem+json"
            assert "127.0.0.1" not in r.text
    finally:
        postgis_cluster.pg_ctl("start")
    # back as a client sees it, retrying after its Retry-After: the pool's connections
    # to the stopped server are found dead and replaced (a 503 until then)
    deadline = time.monotonic() + 15
    r = pg.get(q, headers={"X-API-Key": keys["all"]})
    while r.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
        r = pg.get(q, headers={"X-API-Key": keys["all"]})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["features"]) == 4
