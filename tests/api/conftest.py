"""API fixtures: a small workspace, an app over it, and keys for every role.

The shared ``workspace`` (and so ``client`` and ``keys``) is parametrised over both
backends: the GeoPackage, and the same workspace loaded into a throwaway PostGIS
database (``gridkit db load``; tests/postgis_cluster.py: skipped locally without
PostgreSQL 15 + PostGIS 3, failing under ``CI=true``). Every test using them runs on
both (``[gpkg]``, ``[postgis]``)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.io import write_layer

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from api import create_app
from gridkit.store import issue_key, open_store
from gridkit.store.transfer import load
from tests import postgis_cluster

BACKENDS = ("gpkg", "postgis")


def make_workspace(path: Path, n: int = 250) -> Path:
    xs = 113.0 + (np.arange(n) % 25) * 0.01
    ys = 27.7 + (np.arange(n) // 25) * 0.01
    district = ["430202" if i % 2 == 0 else "430203" for i in range(n)]
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"{d}001001-{i:03d}" for i, d in enumerate(district)],
            "kind": "community_grid",
            "parent_id": "C1",
            "admin_code": [f"{d}001001" for d in district],
            "households": 100,
            "name": [f"网格<{i}>" for i in range(n)],
        },
        geometry=shapely.box(xs, ys, xs + 0.009, ys + 0.009),
        crs=4326,
    )
    write_layer(units, path, "units")
    workers = gpd.GeoDataFrame(
        {
            "worker_id": ["W1", "W2"],
            "name": ["张三", "李四"],
            "role": "grid_worker",
            "level": "village",
            "admin_code": ["430202001001", "430203001001"],
            "capacity": 500.0,
            "phone": ["13800000001", "13800000002"],
        },
        geometry=[shapely.Point(113.01, 27.71), shapely.Point(113.02, 27.72)],
        crs=4326,
    )
    write_layer(workers, path, "workers")
    t = pd.Timestamp("2026-05-01T00:00:00Z")
    reports = gpd.GeoDataFrame(
        {
            "report_id": ["R1", "R2", "R3"],
            "category": "floating_garbage",
            "description": ["河面漂浮垃圾", "<script>alert(1)</script>", "x"],
            "source": "patrol",
            "status": "reported",
            "unit_id": None,
            "assignee_id": None,
            "lead_department_id": None,
            "reported_at": [t, t + pd.Timedelta("10D"), t + pd.Timedelta("40D")],
            "due_at": pd.NaT,
            "resolved_at": pd.NaT,
            "duplicate_of": None,
            "reporter_contact": ["13900000000", None, None],
            "admin_code": ["430202001001", "430203001001", "430202001001"],
        },
        geometry=[shapely.Point(113.005, 27.705), shapely.Point(113.015, 27.705), None],
        crs=4326,
    )
    write_layer(reports, path, "reports")
    return path


@pytest.fixture(scope="session", params=BACKENDS)
def workspace(request, tmp_path_factory) -> Path | str:
    """The workspace file, or the URL of a database it was loaded into."""
    path = make_workspace(tmp_path_factory.mktemp("api") / "ws.gpkg")
    if request.param == "gpkg":
        return path
    url = postgis_cluster.new_database()  # skips, or fails under CI=true, without PostGIS
    load(path, url)
    return url


@pytest.fixture(scope="session")
def keys(workspace: Path | str) -> dict[str, str]:
    store = open_store(workspace)
    out = {}
    for role in ("viewer", "supervisor", "planner", "admin"):
        out[role], _ = issue_key(store, f"test-{role}", role=role)
    out["worker"], _ = issue_key(
        store, "test-worker", role="worker", worker_id="W1", scope="430202"
    )
    out["district_supervisor"], _ = issue_key(
        store, "sup-430203", role="supervisor", scope="430203"
    )
    getattr(store, "close", lambda: None)()  # a database's pool
    return out


@pytest.fixture(scope="session")
def client(workspace: Path | str, keys) -> TestClient:
    return TestClient(create_app(workspace=workspace))


def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}
