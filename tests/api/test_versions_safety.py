"""Publishing over HTTP cannot sink the server nor wipe the grid (issue 19, items 5,
9 and 12): views refused before they are read, a preview and a guard, a redraw of one
area, a restore, and failures of ours answered as 500 without server paths."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api import create_app
from gridkit.errors import UnsupportedFormatError
from gridkit.io import read_layer, write_layer
from gridkit.store import issue_key, open_store
from gridkit.versions import versions
from tests.api.conftest import make_workspace
from tests.test_upload_size import recursive_view_gpkg


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _gpkg(units: gpd.GeoDataFrame, tmp: Path, name: str = "draft.gpkg") -> tuple:
    path = tmp / name
    units.to_file(path, layer="units", driver="GPKG")
    return ("units", (name, path.read_bytes(), "application/geopackage+sqlite3"))


def river_grid(n: int = 34) -> gpd.GeoDataFrame:
    xs = 113.0 + np.arange(n) * 0.007
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"430202001-XJ-{i:03d}" for i in range(n)],
            "kind": "river_reach",
            "parent_id": "XJ",
            "reach_id": [f"XJ-{i:03d}" for i in range(n)],
            "admin_code": "430202001001",
            "bank": "both",
            "length_m": 700.0,
        },
        geometry=shapely.box(xs, 27.70, xs + 0.007, 27.702),
        crs=4326,
    )


@pytest.fixture
def setup(tmp_path: Path):
    """A workspace of 40 community grids in two districts, its grid published as
    version 1, workers on every unit and open cases on two of them."""
    ws = make_workspace(tmp_path / "ws.gpkg", n=40)
    units = read_layer(ws, "units")
    workers = np.where(units["admin_code"].str.startswith("430202"), "W1", "W2")
    write_layer(
        pd.DataFrame({"unit_id": units["unit_id"], "worker_id": workers}), ws, "assignments"
    )
    reports = read_layer(ws, "reports")
    reports["unit_id"] = [
        units["unit_id"].iloc[0],
        units["unit_id"].iloc[0],
        units["unit_id"].iloc[2],
    ]
    write_layer(reports, ws, "reports")
    store = open_store(ws)
    keys = {r: issue_key(store, f"k-{r}", role=r)[0] for r in ("viewer", "planner", "admin")}
    keys["district_planner"] = issue_key(store, "区规划", role="planner", scope="430202")[0]
    client = TestClient(create_app(workspace=ws))
    r = client.post("/versions", files=[_gpkg(units, tmp_path)], headers=h(keys["admin"]))
    assert r.status_code == 201, r.text
    return ws, client, keys, units


def test_a_recursive_view_is_refused_before_it_is_read(setup, tmp_path: Path) -> None:
    """Item 5: a small GeoPackage whose units layer is a WITH RECURSIVE view of 3 M
    rows took 21 s and 5 GB before its 413; now a 422 naming the layer and the fix,
    at once."""
    ws, client, keys, _ = setup
    # 300 k rows (not the incident's 3 M): were it read again, the suite would not sink
    path = recursive_view_gpkg(tmp_path / "view.gpkg", rows=300_000)
    t = time.perf_counter()
    r = client.post(
        "/versions",
        files=[("units", ("河道网格.gpkg", path.read_bytes(), "application/geopackage+sqlite3"))],
        headers=h(keys["planner"]),
    )
    assert time.perf_counter() - t < 2.0
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "河道网格.gpkg: layer 'units' is an SQL view" in detail
    assert "Save the layer as a table" in detail and "gridkit-upload" not in detail
    assert versions(open_store(ws))["version"].tolist() == [1]


def test_too_many_features_are_refused_before_reading(setup, tmp_path: Path) -> None:
    ws, _, keys, units = setup
    client = TestClient(create_app(workspace=ws, max_vertices=100))  # 25 units at most
    r = client.post("/versions", files=[_gpkg(units, tmp_path)], headers=h(keys["planner"]))
    assert r.status_code == 413 and "40 features" in r.json()["detail"], r.text


def test_a_river_grid_posted_for_the_city_is_stopped(setup, tmp_path: Path) -> None:
    """Item 9, the incident: a 34-unit river grid posted for the whole grid. A dry run
    shows what it would do; without confirm it is a 409 with that preview; nothing
    changes; confirmed it is published; version 1 is restored."""
    ws, client, keys, units = setup
    post = lambda query="", **kw: client.post(  # noqa: E731
        "/versions" + query,
        files=[_gpkg(river_grid(), tmp_path, "river.gpkg")],
        headers=h(keys["planner"]),
        **kw,
    )
    dry = post("?dry_run=true")
    assert dry.status_code == 200, dry.text
    p = dry.json()
    assert p["needs_confirm"] and p["version_in_force"] == 1 and p["n_units"] == 34
    assert p["changes"]["old_units"]["removed"] == 40
    assert p["staffing"]["share_before"] == 1.0 and p["staffing"]["share_after"] == 0.0
    assert p["staffing"]["workers_before"] == 2 and p["staffing"]["workers_after"] == 0
    assert p["affected_units"] == 40 and p["affected_open_reports"] == 3
    by_id = {a["unit_id"]: a for a in p["affected"]}
    assert by_id[units["unit_id"].iloc[0]]["open_reports"] == 2
    assert by_id[units["unit_id"].iloc[0]]["workers"] == ["W1"]

    stopped = post(data={"note": "河道网格"})
    assert stopped.status_code == 409, stopped.text
    assert stopped.headers["content-type"] == "application/problem+json"
    assert "40 of the 40 units in force" in stopped.json()["detail"]
    assert "community units and has none of that kind" in stopped.json()["detail"]
    assert stopped.json()["preview"]["affected_units"] == 40
    assert versions(open_store(ws))["version"].tolist() == [1]
    served = client.get("/collections/units/items?limit=1000", headers=h(keys["viewer"])).json()
    assert len(served["features"]) == 40

    done = post("?confirm=true", data={"note": "河道网格"})
    assert done.status_code == 201, done.text
    assert done.json()["version"] == 2

    # a restore is guarded like any draft: it removes the whole river grid
    back = client.post("/versions/1/restore", headers=h(keys["planner"]))
    assert back.status_code == 409 and back.json()["preview"]["n_units"] == 40, back.text
    dry = client.post("/versions/1/restore?dry_run=true", headers=h(keys["planner"]))
    assert dry.status_code == 200 and dry.json()["staffing"]["share_after"] == 1.0
    back = client.post("/versions/1/restore?confirm=true", headers=h(keys["planner"]))
    assert back.status_code == 201, back.text
    assert back.json()["version"] == 3 and back.json()["restored_from"] == 1
    assert back.json()["changes"]["new_units"]["added"] == 40
    served = client.get("/collections/units/items?limit=1000", headers=h(keys["viewer"])).json()
    assert {f["id"] for f in served["features"]} == set(units["unit_id"])
    listed = client.get("/versions", headers=h(keys["viewer"])).json()["versions"]
    assert [v["restored_from"] for v in listed] == [None, None, 1]
    assert client.post("/versions/9/restore", headers=h(keys["planner"])).status_code == 404
    assert client.post("/versions/1/restore", headers=h(keys["viewer"])).status_code == 403


def test_a_district_planner_redraws_his_district_only(setup, tmp_path: Path) -> None:
    ws, client, keys, units = setup
    mine = units[units["admin_code"].str.startswith("430202")]
    # the district's first unit cut in two halves: the other district is untouched
    x0, y0, x1, y1 = mine.geometry.iloc[0].bounds
    halves = mine.iloc[[0, 0]].assign(
        unit_id=["430202001001-000a", "430202001001-000b"],
        households=50,
        geometry=[shapely.box(x0, y0, (x0 + x1) / 2, y1), shapely.box((x0 + x1) / 2, y0, x1, y1)],
    )
    draft = pd.concat([halves, mine.iloc[1:]], ignore_index=True)
    post = lambda query, frame=draft: client.post(  # noqa: E731
        "/versions" + query, files=[_gpkg(frame, tmp_path)], headers=h(keys["district_planner"])
    )
    assert post("").status_code == 403  # the whole grid: not with a scoped key
    assert post("?area=430203").status_code == 403  # another district
    outside = pd.concat([draft, units.iloc[[1]]], ignore_index=True)  # 430203's unit
    r = post("?area=430202", outside)
    assert r.status_code == 422 and "1 lie outside it" in r.json()["detail"], r.text
    assert post("?area=河西").status_code == 400
    r = post("?area=430202")
    assert r.status_code == 201, r.text
    assert r.json()["area"] == "430202" and r.json()["n_units"] == 41
    assert r.json()["changes"]["old_units"] == {
        "unchanged": 39,
        "modified": 0,
        "split": 1,
        "merged": 0,
        "removed": 0,
    }
    now = read_layer(ws, "units").set_index("unit_id")
    other = units[units["admin_code"].str.startswith("430203")].set_index("unit_id")
    assert other.index.isin(now.index).all()
    assert now.loc[other.index].geometry.geom_equals_exact(other.geometry, 1e-9).all()


def test_a_grid_with_a_new_column_is_published(setup, tmp_path: Path) -> None:
    """Item 12 as seen: a grid with a column the history lacks failed to append and
    answered 400 naming the server's workspace file."""
    ws, client, keys, units = setup
    r = client.post(
        "/versions",
        files=[_gpkg(units.assign(网格长="张三"), tmp_path)],
        headers=h(keys["planner"]),
    )
    assert r.status_code == 201, r.text
    assert str(ws) not in r.text


def test_a_write_failure_is_a_500_without_paths(setup, tmp_path: Path, monkeypatch, caplog):
    """Item 12: a failure of the workspace is ours: 500 problem+json, no server path
    in it, the cause logged."""
    ws, client, keys, units = setup
    store = client.app.state.service.store

    def broken(layer, frame, *, append=False):
        raise UnsupportedFormatError(f"{ws}, layer {layer!r}: cannot append columns.")

    monkeypatch.setattr(store, "save_layer", broken)
    with caplog.at_level(logging.ERROR, logger="gridkit.api"):
        r = client.post(
            "/versions", files=[_gpkg(units.iloc[1:], tmp_path)], headers=h(keys["planner"])
        )
    assert r.status_code == 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert str(ws) not in r.text and str(tmp_path) not in r.text and "ws.gpkg" not in r.text
    assert "writing version 2 failed" in caplog.text and str(ws) in caplog.text
    monkeypatch.undo()
    assert versions(open_store(ws))["version"].tolist() == [1]
