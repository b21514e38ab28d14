"""The compliance and cases map views from the database (issue 25, item 7): over
PostGIS, ``/maps/view?view=compliance|cases`` and its data endpoints are answered
from SQL (:class:`gridkit.store.ViewQueries`), never from an in-memory index of the
units; the answers are the GeoPackage backend's on the same data, side by side.

- compliance: the library's rule (``gridkit.ops.patrol_compliance``) run once per
  scope, period and data version on the rows the scope needs (tracks of its workers
  and the earlier tracks near them, which make a replay), its per-unit results stored
  in the database for every server process;
- cases: open and overdue cases per unit and per area counted in SQL, the statuses
  told open or overdue by the case rules.
"""

from __future__ import annotations

import json
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app, mapdata
from gridkit.io import write_layer
from gridkit.store import PostGISStore, ViewQueries, issue_key, open_store, upgrade
from gridkit.store.postgis import migrations, revision
from gridkit.store.transfer import load
from gridkit.synth import maps as synth
from tests import postgis_cluster

psycopg = pytest.importorskip("psycopg")

N = 900  # 30 rows of 30 units (200 m x 220 m): 30 villages, two districts
NOW = pd.Timestamp.now(tz="UTC").floor("s")
DAY = pd.Timedelta(days=1)


def _units():
    u = synth.units(N, seed=5)
    row = np.arange(N) // 30
    east = row >= 20  # the last ten rows lie in another district
    u.loc[east, "admin_code"] = u.loc[east, "admin_code"].str.replace("430202", "430203")
    river = u["kind"] == "river_reach"
    u.loc[river, "households"] = 0  # rivers: cases per km
    u["households"] = u["households"].astype(float)
    u.loc[[4, 8], "households"] = np.nan  # unknown: neither rate
    u.loc[7, "geometry"] = shapely.Polygon()  # empty: shown by neither
    return u


def _row_track(u, row: int, shift: float = 0.0) -> shapely.LineString:
    """A walk along the middle of a row of units, west to east (6 km)."""
    b = u.geometry.iloc[row * 30 : row * 30 + 30].total_bounds
    y = (b[1] + b[3]) / 2 + shift
    return shapely.LineString([(b[0] + 1e-4, y), (b[2] - 1e-4, y)])


def _replay_unit(u, a) -> str:
    """An assigned unit of row 25 (east), where a worker replays a February walk."""
    row = u["unit_id"].iloc[25 * 30 : 26 * 30]
    return str(row[row.isin(a["unit_id"])].iloc[0])


def _patrols(u, a):
    """Each worker walks the rows of its units in March 2026: every week, once, or in
    two or three of its four weeks;
    an east worker's walk repeats exactly a walk made in February by someone else (a
    replay: no patrol); a check-in counts for a grid."""
    rows, geoms = [], []
    units_of = a.groupby("worker_id")["unit_id"].agg(list)
    pos = {uid: i for i, uid in enumerate(u["unit_id"])}
    for k, (wid, ids) in enumerate(units_of.items()):
        for r in sorted({pos[i] // 30 for i in ids}):
            for week in range(4):
                skip = {0: False, 1: week > 0}.get(k % 4, (week + k) % 3 == 0)
                if skip:  # every week, one week only, or two or three weeks of four
                    continue
                t = pd.Timestamp("2026-03-02T01:00Z") + pd.Timedelta(days=7 * week + k % 4)
                rows.append((f"P{wid}-{r}-{week}", wid, t, t + pd.Timedelta(hours=2)))
                geoms.append(_row_track(u, r, shift=3.5e-5 * (4 * (k % 3) + week)))  # 4 m apart
    replayed = _row_track(u, 25, shift=-3e-4)
    rows.append(("PX-feb", "W900", pd.Timestamp("2026-02-10T02:00Z"),
                 pd.Timestamp("2026-02-10T04:00Z")))  # fmt: skip
    geoms.append(replayed)
    late_worker = a.loc[a["unit_id"] == _replay_unit(u, a), "worker_id"].iloc[0]
    for week in range(4):
        t = pd.Timestamp("2026-03-03T02:00Z") + pd.Timedelta(days=7 * week)
        rows.append((f"PX-replay-{week}", late_worker, t, t + pd.Timedelta(hours=2)))
        geoms.append(replayed)
    first = u.geometry.iloc[2]
    rows.append(("PC-1", a.loc[a["unit_id"] == u["unit_id"].iloc[2], "worker_id"].iloc[0],
                 pd.Timestamp("2026-03-17T03:00Z"), pd.Timestamp("2026-03-17T03:05Z")))  # fmt: skip
    geoms.append(first.centroid)
    frame = pd.DataFrame(rows, columns=["patrol_id", "worker_id", "started_at", "ended_at"])
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=4326)


def _reports(u):
    rng = np.random.default_rng(7)
    n = 240
    statuses = ["collected", "dispatched", "handling", "reported_back", "closed", "rejected",
                "reported", "assigned", "resolved", "in_progress", "opened",
                "returned"]  # fmt: skip
    ids = u["unit_id"].to_numpy()[rng.integers(0, N, n)].astype(object)
    ids[:3] = [None, "nowhere-0001", u["unit_id"].iloc[7]]  # no unit, unknown, empty unit
    due = NOW + pd.to_timedelta(rng.integers(-72, 72, n), unit="h")
    due = pd.Series(due).where(rng.random(n) > 0.1)  # some have no deadline
    due.iloc[3] = NOW + pd.Timedelta(hours=5)  # the next to fall due (in scope)
    paused = pd.Series(NOW - 2 * DAY, index=range(n)).where(rng.random(n) < 0.15)
    dup = pd.Series([None] * n, dtype=object)
    dup[rng.random(n) < 0.1] = "R00000"
    return gpd.GeoDataFrame({
        "report_id": [f"R{k:05d}" for k in range(n)], "category": "floating_garbage",
        "source": "patrol", "unit_id": ids, "status": rng.choice(statuses, n),
        "due_at": pd.to_datetime(due, utc=True), "paused_at": pd.to_datetime(paused, utc=True),
        "duplicate_of": dup, "reported_at": NOW - 5 * DAY,
    }, geometry=shapely.points(np.full(n, 113.12), np.full(n, 27.83)), crs=4326)  # fmt: skip


def _workspace(path):
    u = _units()
    write_layer(u, path, "units")
    a = synth.assignments(u, n_workers=12, seed=5)
    a["valid_to"] = pd.Series(pd.NaT, index=a.index, dtype="datetime64[ms, UTC]")
    a.loc[a.index[3], "valid_to"] = pd.Timestamp("2026-01-01", tz="UTC")  # over before March
    write_layer(a, path, "assignments")
    workers = pd.DataFrame({"worker_id": [f"W{i:03d}" for i in range(1, 13)] + ["W900"],
                            "name": [f"网格员{i}号" for i in range(1, 14)],
                            "level": "village"})  # fmt: skip
    write_layer(workers, path, "workers")
    write_layer(_patrols(u, a), path, "patrols")
    write_layer(_reports(u), path, "reports")
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ws = _workspace(tmp_path_factory.mktemp("pg-mapviews") / "ws.gpkg")
    store = open_store(ws)
    keys = {"all": issue_key(store, "viewer", role="viewer")[0],
            "east": issue_key(store, "east", role="supervisor", scope="430203")[0]}  # fmt: skip
    url = postgis_cluster.new_database()
    load(ws, url)
    return TestClient(create_app(workspace=ws)), TestClient(create_app(workspace=url)), keys, url


def _get(client, path, key):
    r = client.get(path, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text[:300]
    return r


def _same(a: dict, b: dict, tol: float) -> None:
    assert a.get("too_many") == b.get("too_many")
    pa = [json.dumps(f["properties"], ensure_ascii=False) for f in a["features"]]
    assert pa == [json.dumps(f["properties"], ensure_ascii=False) for f in b["features"]]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        ga = shapely.from_geojson(json.dumps(fa["geometry"]))
        gb = shapely.from_geojson(json.dumps(fb["geometry"]))
        assert shapely.hausdorff_distance(ga, gb) <= tol + 1e-5, fa["properties"]


VIEWS = ["view=compliance&period=2026-03", "view=compliance", "view=compliance&period=2026-W11",
         "view=cases"]  # fmt: skip
BOXES = [("113.09,27.79,113.2,27.9", 13), ("113.1,27.8,113.112,27.812", 16),
         ("113.13,27.835,113.16,27.86", 16)]  # fmt: skip


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("who", ["all", "east"])
def test_compliance_and_cases_views_are_the_same_from_sql(pair, who, view):
    gpkg, pg, keys, _ = pair
    for bbox, zoom in BOXES:
        q = f"/maps/data/units?bbox={bbox}&zoom={zoom}&{view}"
        a, b = _get(gpkg, q, keys[who]).json(), _get(pg, q, keys[who]).json()
        _same(a, b, 0.5 * 360 / (256 * 2**zoom))
    q = f"/maps/data/areas?bbox=113.09,27.79,113.2,27.9&zoom=9&{view}"
    a, b = _get(gpkg, q, keys[who]).json(), _get(pg, q, keys[who]).json()
    _same(a, b, 0.5 * 360 / (256 * 2**9))
    page = f"/maps/view?{view}"
    assert _get(gpkg, page, keys[who]).text == _get(pg, page, keys[who]).text
    # the data is not trivial: several classes, per unit and per area
    whole = _get(pg, f"/maps/data/units?bbox={BOXES[0][0]}&zoom=13&{view}", keys[who]).json()
    classes = {f["properties"]["s"] for f in whole["features"]}
    assert len(classes) >= 2 + (view == "view=cases"), classes
    assert len({f["properties"]["c"] for f in b["features"]}) >= 2


def test_the_replay_of_an_earlier_walk_is_no_patrol_on_both(pair):
    """The east worker's March walks repeat a February walk by another worker: the
    database fetches that earlier track too, so the walks are judged replays."""
    gpkg, pg, keys, _ = pair
    q = "/maps/data/units?bbox=113.1,27.85,113.16,27.853&zoom=16&view=compliance&period=2026-03"
    got = {f["properties"]["id"]: f["properties"] for f in _get(pg, q, keys["east"]).json()[
        "features"]}  # fmt: skip
    u = _units()
    unit = _replay_unit(u, synth.assignments(u, n_workers=12, seed=5))
    assert got[unit]["q"] > 0 and got[unit]["d"] < got[unit]["q"]
    assert got == {f["properties"]["id"]: f["properties"]
                   for f in _get(gpkg, q, keys["east"]).json()["features"]}  # fmt: skip


def test_no_route_reads_a_layer_into_memory(pair, monkeypatch):
    _, pg, keys, _ = pair
    store = pg.app.state.service.store

    def refuse(layer):
        raise AssertionError(f"read {layer} into memory")

    monkeypatch.setattr(store, "read", refuse)
    for view in ("view=compliance&period=2026-02", "view=cases"):
        for q in (f"/maps/view?{view}",
                  f"/maps/data/areas?bbox=113.09,27.79,113.2,27.9&zoom=9&{view}",
                  f"/maps/data/units?bbox=113.1,27.8,113.12,27.82&zoom=15&{view}"):  # fmt: skip
            _get(pg, q, keys["all"])


def test_compliance_is_computed_once_for_every_process_and_follows_an_edit(pair, monkeypatch):
    """Two server processes (two apps, two stores): the first to ask computes the
    scope's compliance and stores it; the other reads it. An edit made in the
    database (as QGIS would) is in both within a second."""
    _, pg, keys, url = pair
    other = TestClient(create_app(workspace=url))
    calls = []
    real = mapdata.patrol_compliance
    monkeypatch.setattr(
        mapdata, "patrol_compliance", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    q = "/maps/data/areas?bbox=113.09,27.79,113.2,27.9&zoom=9&view=compliance&period=2026-W12"
    first = _get(pg, q, keys["all"]).json()
    assert _get(other, q, keys["all"]).json() == first
    assert len(calls) == 1
    done = {f["properties"]["admin_code"]: f["properties"]["done"] for f in first["features"]}
    assert sum(done.values()) > 0
    q3 = q.replace("2026-W12", "2026-03")
    before = {f["properties"]["admin_code"]: f["properties"]["done"]
              for f in _get(other, q3, keys["all"]).json()["features"]}  # fmt: skip
    with pg.app.state.service.store._connection() as con:  # a row's walks gone, in SQL
        con.execute("DELETE FROM patrols WHERE patrol_id LIKE 'PW001-0-%%'")
    start = time.monotonic()
    for client in (pg, other):
        while True:
            now = {f["properties"]["admin_code"]: f["properties"]["done"]
                   for f in _get(client, q3, keys["all"]).json()["features"]}  # fmt: skip
            if now != before:
                break
            assert time.monotonic() - start < 1.0, "the edit was not in the view within a second"
            time.sleep(0.01)
        assert now["430202000001"] < before["430202000001"]
        assert {k: v for k, v in now.items() if k != "430202000001"} == {
            k: v for k, v in before.items() if k != "430202000001"}  # fmt: skip


def test_a_case_falling_overdue_is_counted_at_once_from_sql(pair, monkeypatch):
    _, pg, keys, _ = pair
    monkeypatch.setattr(mapdata, "CASES_REFRESH_S", 0.0)
    store = pg.app.state.service.store
    soon = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=3)
    seen = store.generation("reports")
    with store._connection() as con:
        con.execute(
            "UPDATE reports SET status = 'dispatched', due_at = %s, paused_at = NULL, "
            "duplicate_of = NULL WHERE report_id = 'R00010'",
            (soon.to_pydatetime(),),
        )
        code = con.execute(
            "SELECT u.admin_code FROM reports r JOIN units u ON u.unit_id = r.unit_id "
            "WHERE r.report_id = 'R00010'"
        ).fetchone()[0]
    q = "/maps/data/areas?bbox=113.09,27.79,113.2,27.9&zoom=9&view=cases"

    def late():
        doc = _get(pg, q, keys["all"]).json()
        return {f["properties"]["admin_code"]: f["properties"]["late"] for f in doc["features"]}

    start = time.monotonic()
    while store.generation("reports") == seen:  # the edit announced (NOTIFY)
        assert time.monotonic() - start < 1.0
        time.sleep(0.01)
    before = late()
    assert pd.Timestamp.now(tz="UTC") < soon
    time.sleep(max(0.0, (soon - pd.Timestamp.now(tz="UTC")).total_seconds()) + 0.1)
    after = late()
    assert after[code] == before[code] + 1


def _search_database(url: str) -> ViewQueries:
    """20,000 units made in SQL (the planner takes an index only on a table this big)."""
    upgrade(url)
    store = PostGISStore(url)
    store.save_layer("units", synth.units(4, seed=1))
    with store._connection() as con:
        con.execute(
            "INSERT INTO units (unit_id, name, admin_code, geometry) SELECT "
            "'430202009999-' || g, '第' || g || '号网格', '430202' || lpad((g / 1000)::text, 6, "
            "'0'), ST_MakeEnvelope(114 + (g % 100) * 0.001, 28 + (g / 100) * 0.001, "
            "114.001 + (g % 100) * 0.001, 28.001 + (g / 100) * 0.001, 4326) "
            "FROM generate_series(1, 20000) g"
        )
        con.execute("ANALYZE units")
    return ViewQueries.build(store, "")


def test_search_uses_the_trigram_index():
    """Map search scanned the units (``lower(...) LIKE '%q%'``): revision 5 makes
    pg_trgm's GIN index on the search's expression, and the planner takes it."""
    views = _search_database(postgis_cluster.new_database())
    plan = views.search_plan("第12345号")
    assert "gridkit_units_search" in plan, plan
    assert "Seq Scan on units" not in plan, plan
    found = views.search("第12345号")
    assert [f[0] for f in found] == ["430202009999-12345 第12345号网格"]


def test_without_pg_trgm_the_upgrade_goes_on_and_search_scans():
    """A role that may not create extensions (no CREATE on the database): revision 5
    is applied all the same (a NOTICE), search answers by a scan; once an
    administrator creates pg_trgm, the first map view makes the index."""
    admin = postgis_cluster.new_database()
    name = admin.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute("DO $$ BEGIN CREATE ROLE gridkit_plain LOGIN; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$")  # fmt: skip
        con.execute("GRANT ALL ON SCHEMA public TO gridkit_plain")
        con.execute(f"REVOKE CREATE ON DATABASE {name} FROM PUBLIC")
    plain = admin.replace("postgres@", "gridkit_plain@")
    views = _search_database(plain)
    assert revision(plain) == max(n for n, _, _ in migrations())
    with psycopg.connect(admin, autocommit=True) as con:
        assert not con.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
    assert "gridkit_units_search" not in views.search_plan("第12345号")
    assert [f[0] for f in views.search("第12345号")] == ["430202009999-12345 第12345号网格"]
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute("CREATE EXTENSION pg_trgm")
    views = ViewQueries.build(PostGISStore(plain), "")
    assert "gridkit_units_search" in views.search_plan("第12345号")


def test_compliance_from_coverage_rows_is_the_same(tmp_path):
    """A ``patrols`` layer of coverage rows (which units each patrol covered, no
    tracks): the database fetches the rows of the scope's units alone."""
    ws = tmp_path / "ws.gpkg"
    u = _units()
    write_layer(u, ws, "units")
    a = synth.assignments(u, n_workers=12, seed=5)
    write_layer(a, ws, "assignments")
    weeks = pd.date_range("2026-05-05T02:00Z", periods=4, freq="7D")
    row = a["unit_id"].map(dict(zip(u["unit_id"], np.arange(N) // 30, strict=True)))
    times = row.map(lambda r: list(weeks[: (4, 2, 0)[r % 3]]))  # by village: 4, 2, 0 weeks
    rows = a.assign(started_at=times).explode("started_at").dropna(subset="started_at")
    rows = rows.reset_index(drop=True).astype({"started_at": "datetime64[ms, UTC]"})
    rows.insert(0, "patrol_id", [f"P{i}" for i in range(len(rows))])
    write_layer(rows, ws, "patrols")
    key = issue_key(open_store(ws), "east", role="supervisor", scope="430203")[0]
    url = postgis_cluster.new_database()
    load(ws, url)
    gpkg, pg = TestClient(create_app(workspace=ws)), TestClient(create_app(workspace=url))
    for view in ("view=compliance&period=2026-05", "view=compliance"):
        q = f"/maps/data/areas?bbox=113.09,27.79,113.2,27.9&zoom=9&{view}"
        a1, b1 = _get(gpkg, q, key).json(), _get(pg, q, key).json()
        _same(a1, b1, 0.5 * 360 / (256 * 2**9))
        assert len({f["properties"]["c"] for f in b1["features"]}) >= 2
        q = f"/maps/data/units?bbox={BOXES[0][0]}&zoom=13&{view}"
        _same(_get(gpkg, q, key).json(), _get(pg, q, key).json(), 0.5 * 360 / (256 * 2**13))


def test_upgrade_from_the_first_revision_makes_the_search_index():
    """A database of the first release with units: revision 5 applies on top of it
    and makes the trigram index on the units already there."""
    from tests.test_postgis import REVISION_1

    url = postgis_cluster.new_database()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(REVISION_1)
        con.execute(
            'CREATE TABLE units ("fid" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, '
            '"unit_id" text, "name" text, "admin_code" text, "geometry" geometry(Geometry, 4326))'
        )
        con.execute(
            "INSERT INTO units (unit_id, name, admin_code, geometry) VALUES ('430202001001-01', "
            "'建设村第1网格', '430202001001', ST_MakeEnvelope(113.1, 27.8, 113.102, 27.802, 4326))"
        )
        con.execute("INSERT INTO gridkit_layer_versions (layer, version) VALUES ('units', 1)")
    assert 5 in upgrade(url)
    assert revision(url) == max(n for n, _, _ in migrations())
    with psycopg.connect(url, autocommit=True) as con:
        assert con.execute("SELECT to_regclass('gridkit_units_search')").fetchone()[0]
    views = ViewQueries.build(PostGISStore(url), "430202")
    assert [f[0] for f in views.search("建设村")][:1] == ["430202001001-01 建设村第1网格"]


def test_the_cases_per_unit_are_counted_through_an_index(pair):
    """A viewport's open cases are counted per unit (``reports.unit_id``, no id
    column of its own in the contract): the first map view makes the btree."""
    _, pg, keys, _ = pair
    _get(pg, "/maps/data/units?bbox=113.1,27.8,113.103,27.803&zoom=16&view=cases", keys["all"])
    with pg.app.state.service.store._connection() as con, con.transaction():
        con.execute("SET LOCAL enable_seqscan = off")  # 240 reports: a scan is cheaper here
        plan = con.execute(
            "EXPLAIN SELECT count(*) FROM reports WHERE unit_id = '430202000001-0001'"
        ).fetchall()
    assert "gridkit_reports_unit_id" in " ".join(r[0] for r in plan)
