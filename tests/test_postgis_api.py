"""The API over both backends answers the same: one workspace served from its
GeoPackage and, loaded with ``gridkit db load``, from PostGIS; the same queries give
the same GeoJSON (geometry, precision, property types, paging), and a write through
one is read back the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from tests import postgis_cluster
from tests.api.conftest import make_workspace

QUERIES = [
    "/collections/units/items?limit=1000",
    "/collections/units/items?bbox=113.0,27.7,113.1,27.75&limit=50&offset=10",
    "/collections/units/items?limit=7&offset=243",
    "/collections/reports/items",
    "/collections/reports/items?datetime=2026-05-01T00:00:00Z/2026-05-20T00:00:00Z",
    "/collections/workers/items",
    "/collections/units/items/430202001001-000",
    "/collections",
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[TestClient, TestClient, dict]:
    ws = make_workspace(tmp_path_factory.mktemp("pg-api") / "ws.gpkg")
    secret, _ = issue_key(open_store(ws), "admin", role="admin")
    url = postgis_cluster.new_database()
    load(ws, url)  # the key comes along
    auth = {"X-API-Key": secret}
    return TestClient(create_app(workspace=ws)), TestClient(create_app(workspace=url)), auth


def _same(body: dict) -> dict:
    body = dict(body)
    body.pop("timeStamp", None)
    return body


@pytest.mark.parametrize("query", QUERIES)
def test_both_backends_give_the_same_geojson(pair, query: str) -> None:
    gpkg, pg, auth = pair
    a, b = gpkg.get(query, headers=auth), pg.get(query, headers=auth)
    assert a.status_code == b.status_code == 200, (a.text[:300], b.text[:300])
    assert a.headers["content-type"] == b.headers["content-type"]
    if query == "/collections":  # layers a contract table gains in the database aside
        assert [c["id"] for c in a.json()["collections"]] == [
            c["id"] for c in b.json()["collections"]
        ]
        return
    assert _same(a.json()) == _same(b.json())


def test_a_report_posted_to_each_reads_back_the_same(pair) -> None:
    auth = pair[2]
    report = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [113.0153, 27.7051]},
        "properties": {"category": "floating_garbage", "description": "岸边垃圾 <b>"},
    }
    made = [
        c.post("/reports", json=report, headers={**auth, "Idempotency-Key": "k"}) for c in pair[:2]
    ]
    assert [r.status_code for r in made] == [201, 201]
    ids = [r.json()["id"] for r in made]
    assert ids[0] == ids[1]  # the same next id from the same reports
    back = [c.get(f"/collections/reports/items/{ids[0]}", headers=auth).json() for c in pair[:2]]
    for b in back:  # times are written by each at its own moment
        for k in ("reported_at", "due_at"):
            b["properties"].pop(k, None)
    diff = {
        k: (back[0]["properties"].get(k), back[1]["properties"].get(k))
        for k in set(back[0]["properties"]) | set(back[1]["properties"])
        if back[0]["properties"].get(k) != back[1]["properties"].get(k)
    }
    assert not diff
    assert back[0] == back[1]


def test_an_edit_made_in_the_table_directly_is_served_within_a_second(pair) -> None:
    """QGIS edits the PostGIS table itself (an UPDATE through its provider): the
    trigger moves the layer's version, NOTIFY tells the service, the next page has it."""
    import time

    import psycopg

    _, pg, auth = pair
    url = str(pg.app.state.service.store.url)
    unit = "/collections/units/items/430203001001-001"
    assert pg.get(unit, headers=auth).json()["properties"]["name"] == "网格<1>"
    with psycopg.connect(url, autocommit=True) as con:  # as QGIS would, by fid
        con.execute("UPDATE units SET name = '芦淞网格（QGIS 改）' WHERE fid = 2")
    start = time.monotonic()
    while pg.get(unit, headers=auth).json()["properties"]["name"] != "芦淞网格（QGIS 改）":
        assert time.monotonic() - start < 1.0, "the edit was not served within a second"
        time.sleep(0.01)


def test_owslib_gdal_and_qgis_read_the_postgis_backed_service(pair) -> None:
    """OWSLib and GDAL's OAPIF driver (QGIS's provider) read the service over PostGIS;
    GDAL's PostgreSQL driver (QGIS opening the tables directly) reads the tables."""
    import shutil
    import subprocess

    from tests.api.live import live_server

    features = pytest.importorskip("owslib.ogcapi.features")
    _, pg, auth = pair
    url = str(pg.app.state.service.store.url)
    with live_server(url) as base:
        api = features.Features(base, headers=auth)
        ids = [c["id"] for c in api.collections()["collections"]]
        assert {"units", "reports", "workers"} <= set(ids)
        seen, offset = [], 0
        while True:
            page = api.collection_items("units", limit=40, offset=offset)
            seen += [f["id"] for f in page["features"]]
            offset += 40
            if offset >= page["numberMatched"]:
                break
        assert len(seen) == len(set(seen)) == 250
        ogrinfo = shutil.which("ogrinfo")
        if ogrinfo is None:
            pytest.skip("GDAL's ogrinfo (Debian gdal-bin) is not installed")
        out = subprocess.run(
            [ogrinfo, "-so", "-ro", f"OAPIF:{base}", "units",
             "--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {auth['X-API-Key']}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "Feature Count: 250" in out.stdout, out.stdout + out.stderr
        assert "Geometry: Polygon" in out.stdout
    pgdsn = url.replace("postgresql://", "")
    user_host, db = pgdsn.rsplit("/", 1)
    user, hostport = user_host.split("@")
    host, port = hostport.split(":")
    out = subprocess.run(
        [ogrinfo, "-so", "-ro", f"PG:host={host} port={port} user={user} dbname={db}", "units"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Feature Count: 250" in out.stdout, out.stdout + out.stderr
    assert "FID Column = fid" in out.stdout and "EPSG" in out.stdout and "4326" in out.stdout


def test_the_database_of_the_environment_is_served_without_a_workspace(pair, monkeypatch) -> None:
    """``GRIDKIT_DATABASE_URL`` and no workspace: ``create_app()`` serves the database
    (as every command opens it); with neither, one line names both variables."""
    import pydantic

    from gridkit.store import PostGISStore

    _, pg, auth = pair
    monkeypatch.delenv("GRIDKIT_WORKSPACE", raising=False)
    monkeypatch.setenv("GRIDKIT_DATABASE_URL", str(pg.app.state.service.store.url))
    app = create_app()
    assert isinstance(app.state.service.store, PostGISStore)
    query = "/collections/units/items?bbox=113.0,27.7,113.1,27.75&limit=20"
    got = TestClient(app).get(query, headers=auth)
    assert got.status_code == 200
    assert _same(got.json()) == _same(pg.get(query, headers=auth).json())  # the same database
    monkeypatch.delenv("GRIDKIT_DATABASE_URL")
    with pytest.raises(pydantic.ValidationError, match="GRIDKIT_DATABASE_URL"):
        create_app()


def test_gridkit_serve_without_a_workspace_serves_the_database_of_the_environment(
    pair, monkeypatch, capsys
) -> None:
    import uvicorn

    from gridkit.cli import main
    from gridkit.store import PostGISStore
    from tests.test_cli import _fake_uvicorn_run

    url = str(pair[1].app.state.service.store.url)
    monkeypatch.delenv("GRIDKIT_WORKSPACE", raising=False)
    monkeypatch.setenv("GRIDKIT_DATABASE_URL", url)
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", _fake_uvicorn_run(seen))
    assert main(["serve", "--port", "8124"]) == 0, capsys.readouterr().err
    assert isinstance(seen["app"].state.service.store, PostGISStore)
    assert seen["env"] == url and seen["port"] == 8124
    monkeypatch.delenv("GRIDKIT_DATABASE_URL")
    capsys.readouterr()
    assert main(["serve"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no workspace given and GRIDKIT_DATABASE_URL is not set" in err
    assert "Traceback" not in err


def test_evidence_photos_go_to_the_shared_folder_on_a_database(tmp_path, pair) -> None:
    """On a database, photos are kept in GRIDKIT_EVIDENCE_DIR (a folder every server
    process shares); without it an upload is a 503 that names the setting, never a
    folder made from the URL under the server's working directory."""
    from tests.api.test_evidence import jpeg, upload

    _, pg, auth = pair
    url = str(pg.app.state.service.settings.workspace)
    report = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [113.0161, 27.7043]},
        "properties": {"category": "floating_garbage"},
    }
    rid = pg.post("/reports", json=report, headers=auth).json()["id"]
    bare = TestClient(create_app(workspace=url))
    r = upload(bare, rid, auth["X-API-Key"], jpeg(), kind="before")
    assert r.status_code == 503 and "GRIDKIT_EVIDENCE_DIR" in r.json()["detail"], r.text
    assert not list(tmp_path.iterdir()) and not any(Path.cwd().glob("postgresql*"))
    shared = TestClient(create_app(workspace=url, evidence_dir=tmp_path / "photos"))
    r = upload(shared, rid, auth["X-API-Key"], jpeg(), kind="before")
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    assert (tmp_path / "photos" / rid / name).is_file()
    other = TestClient(create_app(workspace=url, evidence_dir=tmp_path / "photos"))
    got = other.get(f"/reports/{rid}/evidence/{name}", headers=auth)  # another process
    assert got.status_code == 200 and got.content == (tmp_path / "photos" / rid / name).read_bytes()
