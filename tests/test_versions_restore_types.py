"""A version restored on PostGIS after ``gridkit db load`` (tester's W2): the units'
``households`` are nullable integers (river units have none), read back from a
GeoPackage as floats; the version's rows are typed per the contract (``Int64``)
before any store write, so ``unit_versions.households`` (bigint) takes them. Over the
API the restore answers 201, never 500. The same on a GeoPackage."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from gridkit.versions import publish, restore, versions
from tests import postgis_cluster


def _grid(n_grid: int = 12, n_river: int = 6, *, households: int = 253) -> gpd.GeoDataFrame:
    """Community grids with households, and river units with none (null)."""
    xs = 113.0 + np.arange(n_grid + n_river) * 0.01
    kind = ["community_grid"] * n_grid + ["river_reach"] * n_river
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"430202001-{k[0].upper()}{i:03d}" for i, k in enumerate(kind)],
            "kind": kind,
            "parent_id": ["C1"] * n_grid + ["XJ"] * n_river,
            "reach_id": [None] * n_grid + [f"XJ-{i:03d}" for i in range(n_river)],
            "admin_code": "430202001001",
            # as the demo has them: integers, none where a unit has no households
            "households": pd.array(
                [households + i for i in range(n_grid)] + [None] * n_river, dtype="Int64"
            ),
            "name": [f"网格{i}" for i in range(n_grid + n_river)],
        },
        geometry=shapely.box(xs, 27.70, xs + 0.009, 27.709),
        crs=4326,
    )  # fmt: skip


def _published(path: Path) -> Path:
    """A workspace file with versions 1 and 2 (some households changed)."""
    publish(_grid(), path, validate=False, note="第一版")
    publish(_grid(households=300), path, validate=False, note="第二版")
    return path


@pytest.fixture(params=["gpkg", "postgis"])
def ws(request, tmp_path: Path) -> str:
    path = _published(tmp_path / "ws.gpkg")
    if request.param == "gpkg":
        return str(path)
    url = postgis_cluster.new_database()
    load(path, url)
    return url


def _households(frame: pd.DataFrame) -> dict[str, object]:
    return {
        u: (None if pd.isna(h) else int(h))
        for u, h in zip(frame["unit_id"], frame["households"], strict=True)
    }


def test_restore_after_load_types_households_as_nullable_integers(ws: str) -> None:
    store = open_store(ws)
    version, _ = restore(store, 1, confirm=True)
    assert version == 3
    assert versions(store)["restored_from"].tolist()[-1] == 1
    units = store.read("units")
    assert _households(units) == _households(_grid())
    history = store.read("unit_versions")
    v3 = history[pd.to_numeric(history["version"]) == 3]
    assert _households(v3) == _households(_grid())
    # and again (the history now holds the restored rows): version 4 from 2
    assert restore(store, 2, confirm=True)[0] == 4
    assert _households(store.read("units")) == _households(_grid(households=300))
    getattr(store, "close", lambda: None)()


def test_restore_over_the_api_answers_201_never_500(ws: str) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api import create_app

    secret, _ = issue_key(open_store(ws), "规划", role="planner")
    client = TestClient(create_app(workspace=ws, escalate_every_s=0))
    r = client.post("/versions/1/restore?confirm=true", headers={"X-API-Key": secret})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 3 and r.json()["restored_from"] == 1
    units = client.get("/collections/units/items?limit=100", headers={"X-API-Key": secret})
    assert units.status_code == 200
    got = {f["id"]: f["properties"].get("households") for f in units.json()["features"]}
    assert got == _households(_grid())
