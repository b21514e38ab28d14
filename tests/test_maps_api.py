"""The /maps data endpoints (viewport units, areas, search, tiles) and the served pages'
context, read-only and cut to the caller's scope."""

from __future__ import annotations

import json
import re
import sqlite3
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

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


# ------------------------------------------------------------ the views of /maps/view

NOW = pd.Timestamp.now(tz="UTC")
OPEN = {"collected", "opened", "dispatched", "handling", "reported_back", "verified", "returned"}


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    """The API workspace with assignments, a May of patrols (coverage rows) and cases
    on units: open and overdue, open in time, paused, closed."""
    from fastapi.testclient import TestClient

    from api import create_app
    from gridkit.io import write_layer
    from gridkit.store import issue_key, open_store
    from tests.api.conftest import make_workspace

    ws = make_workspace(tmp_path_factory.mktemp("views") / "ws.gpkg")
    units = open_store(ws).read("units")
    ids = units["unit_id"].tolist()
    w1 = [u for u in ids if u.startswith("430202")][:100]
    w2 = [u for u in ids if u.startswith("430203")]
    write_layer(pd.DataFrame({"unit_id": w1 + w2,
                              "worker_id": ["W1"] * len(w1) + ["W2"] * len(w2)}),
                ws, "assignments")  # fmt: skip
    weeks = pd.to_datetime(["2026-05-05T02:00Z", "2026-05-12T02:00Z", "2026-05-19T02:00Z",
                            "2026-05-26T02:00Z"])  # fmt: skip
    rows = [(u, "W1", t) for u in w1 for t in weeks[:2]]  # W1: half of May's weeks
    rows += [(u, "W2", t) for u in w2[:60] for t in weeks]  # W2: every week, 60 units
    patrols = pd.DataFrame(rows, columns=["unit_id", "worker_id", "started_at"])
    patrols.insert(0, "patrol_id", [f"P{i}" for i in range(len(patrols))])
    write_layer(patrols, ws, "patrols")
    day = pd.Timedelta("1D")
    cases = [  # unit, status, due, paused
        (w1[0], "handling", NOW - day, None), (w1[0], "dispatched", NOW + day, None),
        (w1[1], "opened", NOW - day, NOW - 2 * day), (w1[2], "closed", NOW - day, None),
        (w2[0], "reported_back", NOW - 3 * day, None), (w2[5], "collected", NOW + 3 * day, None),
    ]  # fmt: skip
    reports = gpd.GeoDataFrame({
        "report_id": [f"R{i}" for i in range(len(cases))], "category": "floating_garbage",
        "source": "patrol", "unit_id": [c[0] for c in cases], "status": [c[1] for c in cases],
        "due_at": [c[2] for c in cases],
        "paused_at": pd.to_datetime([c[3] for c in cases], utc=True),
        "reported_at": NOW - 5 * day, "admin_code": [c[0][:12] for c in cases],
    }, geometry=[shapely.Point(113.0, 27.7)] * len(cases), crs=4326)  # fmt: skip
    write_layer(reports, ws, "reports")
    store = open_store(ws)
    k = {"viewer": issue_key(store, "v", role="viewer")[0],
         "district": issue_key(store, "d", role="supervisor", scope="430203")[0]}  # fmt: skip
    return TestClient(create_app(workspace=ws)), k, ws


def _get(c, key, path):
    r = c.get(path, headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json()


def test_compliance_view_sums_the_rules_rows_per_village(views):
    from gridkit.ops.patrols import patrol_compliance
    from gridkit.store import open_store

    c, k, ws = views
    s = open_store(ws)
    rows = patrol_compliance(s.read("patrols"), s.read("assignments"), period="2026-05",
                             workers=s.read("workers"))  # fmt: skip
    want: dict = {}
    for r in rows.itertuples():  # brute force: per unit at most its required, per village
        q, d = want.setdefault(r.unit_id[:12], [0, 0]), min(r.done, r.required)
        q[0] += r.required
        q[1] += d
    doc = _get(c, k["viewer"], f"/maps/data/areas?bbox={BOX}&zoom=9"
               "&view=compliance&period=2026-05")  # fmt: skip
    got = {f["properties"]["admin_code"]: f["properties"] for f in doc["features"]}
    for code, (q, d) in want.items():
        assert (got[code]["required"], got[code]["done"]) == (q, d)
        cls = "full" if d >= q else "partial" if d >= q / 2 else "low"
        assert got[code]["c"] == cls
    assert got["430202001001"]["c"] == "partial"  # W1 patrolled 2 of 4 weeks
    units = _get(c, k["viewer"], "/maps/data/units?bbox=112.99,27.69,113.26,27.81"
                 "&zoom=15&view=compliance&period=2026-05")  # fmt: skip
    by_id = {f["properties"]["id"]: f["properties"] for f in units["features"]}
    w2 = sorted(u for u in by_id if u.startswith("430203"))
    assert {by_id[u]["s"] for u in w2} == {"full", "low"}  # 60 patrolled weekly, the rest not
    assert sum(by_id[u]["s"] == "full" for u in w2) == 60
    unassigned = [p for p in by_id.values() if p["w"] == ""]
    assert unassigned and {p["s"] for p in unassigned} == {"no_data"}


def test_cases_view_counts_open_and_overdue_per_1000_households(views):
    c, k, _ = views
    doc = _get(c, k["viewer"], f"/maps/data/areas?bbox={BOX}&zoom=9&view=cases")
    got = {f["properties"]["admin_code"]: f["properties"] for f in doc["features"]}
    # 430202001001: handling (late), dispatched (in time), opened (paused: not late); the
    # closed case does not count; 125 units of 100 households
    a = got["430202001001"]
    assert (a["open"], a["late"], a["households"]) == (3, 1, 12_500)
    assert a["r"] == round(3 / 12.5, 2) and a["rk"] is None and a["c"] == "rate_low"
    b = got["430203001001"]
    assert (b["open"], b["late"]) == (2, 1)
    units = _get(c, k["viewer"], "/maps/data/units?bbox=112.99,27.69,113.26,27.81"
                 "&zoom=15&view=cases")  # fmt: skip
    s = {f["properties"]["id"]: f["properties"] for f in units["features"]}
    ids = sorted(s)
    w1 = [u for u in ids if u.startswith("430202")]
    assert (s[w1[0]]["s"], s[w1[0]]["o"], s[w1[0]]["l"]) == ("case_overdue", 2, 1)
    assert s[w1[1]]["s"] == "case_open" and s[w1[2]]["s"] == "case_none"


def test_views_are_scoped_and_cached_per_version_of_what_they_read(views):
    from gridkit.io import write_layer
    from gridkit.store import gpkg, open_store

    c, k, ws = views
    q = f"/maps/data/areas?bbox={BOX}&zoom=9&view=cases"
    doc = _get(c, k["district"], q)
    assert [f["properties"]["admin_code"] for f in doc["features"]] == ["430203001001"]
    before = _get(c, k["viewer"], q)
    reports = open_store(ws).read("reports")
    more = reports.iloc[[0]].assign(report_id="R99", unit_id=reports["unit_id"].iloc[4])
    write_layer(pd.concat([reports, more], ignore_index=True), ws, "reports")
    time.sleep(gpkg.SYNC_S + 0.05)  # the server looks at the file again within SYNC_S
    after = _get(c, k["viewer"], q)
    late = {f["properties"]["admin_code"]: f["properties"]["late"] for f in after["features"]}
    was = {f["properties"]["admin_code"]: f["properties"]["late"] for f in before["features"]}
    assert late["430203001001"] == was["430203001001"] + 1  # a new report: the view is new
    write_layer(reports, ws, "reports")


def test_view_pages_and_bad_views(views, client, keys):  # noqa: F811
    c, k, _ = views
    for view, title in (("coverage", "网格覆盖"), ("compliance", "巡查达标情况"),
                        ("cases", "未办结与逾期问题")):  # fmt: skip
        r = c.get(f"/maps/view?view={view}", headers=auth(k["viewer"]))
        assert r.status_code == 200 and f"<title>{title}</title>" in r.text
        assert len(r.text) < 20_000
    en = c.get("/maps/view?view=cases&lang=en", headers=auth(k["viewer"])).text
    assert "Open and overdue cases" in en and "per 1,000 households" in en
    assert c.get("/maps/view?view=heat", headers=auth(k["viewer"])).status_code == 400
    assert c.get(f"/maps/data/units?bbox={BOX}&zoom=14&view=x",
                 headers=auth(k["viewer"])).status_code == 400  # fmt: skip
    # the shared API workspace has no patrols: a clear 404, not an empty map
    r = client.get("/maps/view?view=compliance", headers=auth(keys["viewer"]))
    assert r.status_code == 404 and "patrols" in r.text


def test_cases_view_is_built_again_when_a_case_falls_overdue(views, monkeypatch):
    """No layer changes, yet a case passing its deadline changes the view: it is kept
    only until the next open case's deadline (at least CASES_REFRESH_S, here 0)."""
    from api import mapdata
    from gridkit.io import write_layer
    from gridkit.store import gpkg, open_store

    monkeypatch.setattr(mapdata, "CASES_REFRESH_S", 0.0)

    c, k, ws = views
    q = f"/maps/data/areas?bbox={BOX}&zoom=9&view=cases"
    reports = open_store(ws).read("reports")
    soon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=gpkg.SYNC_S + 2.5)
    more = reports.iloc[[1]].assign(report_id="R98", due_at=soon)  # dispatched, in time
    write_layer(pd.concat([reports, more], ignore_index=True), ws, "reports")
    time.sleep(gpkg.SYNC_S + 0.05)
    try:
        before = _get(c, k["viewer"], q)["features"][0]["properties"]
        assert pd.Timestamp.now(tz="UTC") < soon
        time.sleep(max(0.0, (soon - pd.Timestamp.now(tz="UTC")).total_seconds()) + 0.1)
        after = _get(c, k["viewer"], q)["features"][0]["properties"]
        assert after["admin_code"] == before["admin_code"] == "430202001001"
        assert (after["open"], after["late"]) == (before["open"], before["late"] + 1)
    finally:
        write_layer(reports, ws, "reports")
        time.sleep(gpkg.SYNC_S + 0.05)


def test_cases_view_is_built_at_most_once_a_minute(views):
    """Thousands of open cases fall due all day: the view waits CASES_REFRESH_S at
    least, so the calendar never sets the server's work."""
    from api import mapdata
    from gridkit.maps import ViewIndex
    from gridkit.store import open_store

    _, _, ws = views
    store = open_store(ws)
    index = ViewIndex.build(store.read("units"), assignments=store.read("assignments"))
    start = pd.Timestamp.now(tz="UTC")
    reports = store.read("reports")
    soon = reports.iloc[[1]].assign(report_id="R97", due_at=start + pd.Timedelta(seconds=5))

    class Layers:  # the store's two calls, with a case falling due in 5 s
        def layers(self):
            return store.layers()

        def read(self, name):
            return pd.concat([reports, soon], ignore_index=True)

    theme = mapdata._cases_theme(Layers(), index)
    assert theme.until >= start + pd.Timedelta(seconds=mapdata.CASES_REFRESH_S)
    assert not theme.stale(start + pd.Timedelta(seconds=30))
    assert theme.stale(start + pd.Timedelta(seconds=mapdata.CASES_REFRESH_S + 1))
