"""Grid versions over HTTP: planners publish a redrawn grid; the service follows it."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import read_layer
from gridkit.store import issue_key, open_store
from gridkit.versions import versions
from tests.api.conftest import make_workspace


@pytest.fixture
def setup(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws.gpkg", n=20)
    store = open_store(ws)
    keys = {
        role: issue_key(store, f"k-{role}", role=role)[0]
        for role in ("viewer", "supervisor", "planner", "admin")
    }
    keys["district_planner"] = issue_key(store, "区规划", role="planner", scope="430202")[0]
    return ws, TestClient(create_app(workspace=ws)), keys


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _gpkg(units: gpd.GeoDataFrame, tmp: Path, name: str = "draft.gpkg") -> tuple:
    path = tmp / name
    units.to_file(path, layer="units", driver="GPKG")
    return ("units", (name, path.read_bytes(), "application/geopackage+sqlite3"))


def _split_first(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The grid with its first unit cut into west and east halves (new ids)."""
    first = units.iloc[0]
    x0, y0, x1, y1 = first.geometry.bounds
    mid = (x0 + x1) / 2
    halves = gpd.GeoDataFrame(
        [first.to_dict(), first.to_dict()], geometry="geometry", crs=units.crs
    )
    halves["unit_id"] = [first["unit_id"] + "a", first["unit_id"] + "b"]
    halves["households"] = [50, 50]
    halves["geometry"] = [shapely.box(x0, y0, mid, y1), shapely.box(mid, y0, x1, y1)]
    out = gpd.GeoDataFrame(
        [*halves.to_dict("records"), *units.iloc[1:].to_dict("records")],
        geometry="geometry",
        crs=units.crs,
    )
    return out.drop(columns=["version"], errors="ignore")


def test_planner_publishes_and_the_service_follows(setup, tmp_path: Path) -> None:
    ws, client, keys = setup
    assert client.get("/versions", headers=h(keys["viewer"])).json() == {"versions": []}
    units = read_layer(ws, "units")
    first = client.post(
        "/versions",
        files=[_gpkg(units, tmp_path)],
        data={"note": "现行网格"},
        headers=h(keys["planner"]),
    )
    assert first.status_code == 201, first.text
    # the workspace's grid was in force before any version: version 1 is diffed with it
    assert first.json()["version"] == 1
    assert first.json()["changes"]["old_units"]["unchanged"] == len(units)
    assert first.headers["location"] == "/versions/1"
    one = client.get("/versions/1", headers=h(keys["viewer"]))
    assert one.status_code == 200 and one.json()["note"] == "现行网格"
    assert client.get("/versions/9", headers=h(keys["viewer"])).status_code == 404

    draft = _split_first(units)
    r = client.post(
        "/versions",
        files=[_gpkg(draft, tmp_path, "redrawn.gpkg")],
        data={"note": "拆分第一个网格"},
        headers=h(keys["admin"]),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == 2 and body["n_units"] == len(units) + 1
    assert body["changes"]["old_units"]["split"] == 1
    assert body["changes"]["old_units"]["unchanged"] == len(units) - 1
    listed = client.get("/versions", headers=h(keys["viewer"])).json()["versions"]
    assert [(v["version"], v["note"]) for v in listed] == [(1, "现行网格"), (2, "拆分第一个网格")]

    # the service serves the new grid at once: items, and reports located in it
    items = client.get("/collections/units/items?limit=1000", headers=h(keys["viewer"])).json()
    ids = {f["id"] for f in items["features"]}
    old_id = units["unit_id"].iloc[0]
    assert old_id not in ids and {old_id + "a", old_id + "b"} <= ids
    _, y0, x1, _ = units.geometry.iloc[0].bounds
    east = {"category": "street_light", "source": "patrol", "lon": x1 - 0.001, "lat": y0 + 0.004}
    rep = client.post("/reports", json=east, headers=h(keys["supervisor"]))
    assert rep.status_code == 201, rep.text
    assert rep.json()["properties"]["unit_id"] == old_id + "b"
    lineage = read_layer(ws, "lineage")
    assert set(lineage.loc[lineage["relation"] == "split", "new_id"]) == {
        old_id + "a",
        old_id + "b",
    }


def test_publishing_roles(setup, tmp_path: Path) -> None:
    ws, client, keys = setup
    units = read_layer(ws, "units")
    for role, status in (("viewer", 403), ("supervisor", 403), ("district_planner", 403)):
        r = client.post("/versions", files=[_gpkg(units, tmp_path)], headers=h(keys[role]))
        assert r.status_code == status, (role, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert "without a scope" in r.json()["detail"]
    assert client.post("/versions", files=[_gpkg(units, tmp_path)]).status_code == 401
    assert versions(open_store(ws)).empty


def test_bad_uploads_are_clear_and_publish_nothing(setup, tmp_path: Path) -> None:
    ws, client, keys = setup
    units = read_layer(ws, "units")
    post = lambda files, **kw: client.post(  # noqa: E731
        "/versions", files=files, headers=h(keys["planner"]), **kw
    )
    # overlapping units: validation fails, every problem told, nothing published
    bad = units.copy()
    bad.loc[1, "geometry"] = shapely.box(*units.geometry.iloc[0].buffer(0.002).bounds)
    r = post([_gpkg(bad, tmp_path)])
    assert r.status_code == 422, r.text
    assert "nothing was published" in r.json()["detail"]
    assert "overlap" in r.json()["detail"].lower()
    # a file that is no GeoPackage: named as uploaded, not as our temporary copy
    r = post([("units", ("网格.gpkg", b"not a geopackage", "application/octet-stream"))])
    assert r.status_code == 400, r.text
    assert "网格.gpkg" in r.json()["detail"] and "gridkit-upload" not in r.json()["detail"]
    # missing contract columns
    r = post([_gpkg(units.drop(columns=["kind"]), tmp_path)])
    assert r.status_code == 422 and "kind" in r.json()["detail"]
    # a spreadsheet is not a grid
    r = post([("units", ("grid.xlsx", b"PK\x03\x04", "application/octet-stream"))])
    assert r.status_code == 415
    assert versions(open_store(ws)).empty


def test_vertex_limit(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws.gpkg", n=20)
    key = issue_key(open_store(ws), "p", role="planner")[0]
    client = TestClient(create_app(workspace=ws, max_vertices=90))
    units = read_layer(ws, "units")
    geojson = io.BytesIO(units.to_json().encode())
    r = client.post(
        "/versions",
        files=[("units", ("units.geojson", geojson, "application/geo+json"))],
        headers=h(key),
    )
    assert r.status_code == 413 and "100 vertices" in r.json()["detail"], r.text
    # a GeoPackage is bounded before it is read, from the bytes of its geometries
    r = client.post("/versions", files=[_gpkg(units, tmp_path)], headers=h(key))
    assert r.status_code == 413, r.text
    assert "up to 150 vertices by their size; the limit is 90" in r.json()["detail"]


def test_a_grid_published_from_the_command_line_is_served(setup, tmp_path, monkeypatch) -> None:
    """A planner may publish with the CLI while the service runs: the service notices
    the rewritten layers (within gridkit.store.gpkg.SYNC_S; 0 here) and serves the new grid."""
    import gridkit.store.gpkg
    from gridkit.cli import main

    monkeypatch.setattr(gridkit.store.gpkg, "SYNC_S", 0.0)
    ws, client, keys = setup
    units = read_layer(ws, "units")
    ids = lambda: {  # noqa: E731
        f["id"]
        for f in client.get(
            "/collections/units/items?limit=1000", headers=h(keys["viewer"])
        ).json()["features"]
    }
    assert units["unit_id"].iloc[0] in ids()
    draft = tmp_path / "draft.gpkg"
    _split_first(units).to_file(draft, layer="units", driver="GPKG")
    assert main(["publish", str(draft), "--workspace", str(ws)]) == 0
    client.app.state.service.store._next_sync = 0.0  # the next look is due now
    assert units["unit_id"].iloc[0] + "a" in ids()
    assert [
        v["version"] for v in client.get("/versions", headers=h(keys["viewer"])).json()["versions"]
    ] == [1]
