"""Figures and map pages over a simulated month of patrols and reports."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api import create_app
from gridkit.io import write_layer
from gridkit.ops.assess import SHEET_TITLES
from gridkit.ops.simulate import simulate
from gridkit.store import issue_key, open_store
from gridkit.synth.ops import grid_units, grid_workers


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    ws = tmp_path_factory.mktemp("season") / "ws.gpkg"
    units = grid_units(8, 8, river_rows=1, admin_code="430202001001")
    workers, assignments = grid_workers(units)
    sim = simulate(units, workers, assignments, start="2026-03-01", end="2026-04-01", seed=3)
    for name, df in (
        ("units", units),
        ("workers", workers),
        ("assignments", assignments),
        ("patrols", sim.patrols),
        ("reports", sim.reports),
        ("departments", sim.departments),
    ):
        write_layer(df, ws, name)
    store = open_store(ws)
    keys = {
        "sup": issue_key(store, "sup", role="supervisor")[0],
        "other": issue_key(store, "other", role="supervisor", scope="430281")[0],
    }
    return ws, TestClient(create_app(workspace=ws)), keys, sim


def test_coverage_figures(season) -> None:
    _, client, keys, _ = season
    body = client.get("/stats/coverage", headers={"X-API-Key": keys["sup"]}).json()
    assert body["summary"] == {"units": 64, "staffed": 64, "share": 1.0}
    assert {r["kind"] for r in body["by_district"]} == {"river_reach", "community_grid"}


def test_compliance_figures_match_the_library(season) -> None:
    from gridkit.ops.patrols import patrol_compliance

    ws, client, keys, _ = season
    r = client.get(
        "/stats/compliance?start=2026-03-01&end=2026-04-01", headers={"X-API-Key": keys["sup"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    store = open_store(ws)
    direct = patrol_compliance(
        store.read("patrols"),
        store.read("assignments"),
        period=("2026-03-01", "2026-04-01"),
        units=store.read("units"),
        workers=store.read("workers"),
        now="2026-04-01",
    )
    assert body["summary"]["compliant_share"] == round(float(direct["compliant"].mean()), 4)
    assert len(body["rows"]) == len(direct)


def test_xlsx_downloads(season) -> None:
    _, client, keys, _ = season
    for fig in ("coverage", "compliance", "hotspots", "assessment"):
        r = client.get(f"/stats/{fig}?format=xlsx", headers={"X-API-Key": keys["sup"]})
        assert r.status_code == 200, (fig, r.text)
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheets = pd.read_excel(io.BytesIO(r.content), sheet_name=None)
        if fig == "assessment":  # the workbook gridkit assess writes: Chinese sheets
            assert set(SHEET_TITLES.values()) <= set(sheets)
            assert "部门名称" in sheets[SHEET_TITLES["departments"]].columns
        else:
            assert "summary" in sheets


def test_hotspots_and_assessment_json(season) -> None:
    _, client, keys, _ = season
    hot = client.get("/stats/hotspots?top=5", headers={"X-API-Key": keys["sup"]}).json()
    assert len(hot["units"]) == 5
    assert hot["units"][0]["gi_z"] >= hot["units"][-1]["gi_z"]
    ranked = client.get("/stats/assessment", headers={"X-API-Key": keys["sup"]}).json()
    assert {"workers", "departments", "areas"} <= set(ranked)


@pytest.mark.parametrize(
    "path",
    [
        "/stats/coverage",
        "/stats/compliance",
        "/stats/hotspots",
        "/stats/assessment",
        "/maps/coverage",
        "/maps/compliance",
        "/maps/hotspots",
    ],
)
def test_out_of_scope_sees_nothing(season, path: str) -> None:
    """A supervisor of a district without units gets a clear 404 everywhere."""
    _, client, keys, _ = season
    r = client.get(path, headers={"X-API-Key": keys["other"]})
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/problem+json"


def test_city_scope_sees_its_districts(season) -> None:
    # 430200 is the city of the units' district 430202 (gridkit.codes.in_scope), though
    # no unit code starts with "430200"
    ws, client, keys, _ = season
    city = issue_key(open_store(ws), "city", role="supervisor", scope="430200")[0]
    every = client.get("/stats/coverage", headers={"X-API-Key": keys["sup"]}).json()
    mine = client.get("/stats/coverage", headers={"X-API-Key": city}).json()
    assert mine["summary"] == every["summary"]
    assert {r["district"] for r in mine["by_district"]} == {"430202"}


@pytest.mark.parametrize("page", ["/maps/hotspots", "/maps/compliance", "/maps/coverage"])
def test_map_pages(season, page: str) -> None:
    _, client, keys, _ = season
    r = client.get(page, headers={"X-API-Key": keys["sup"]})
    assert r.status_code == 200, r.text
    assert "https://" not in r.text.split("<body")[0].replace("https://www.w3.org", "")


def test_bad_period_is_400(season) -> None:
    _, client, keys, _ = season
    r = client.get(
        "/stats/compliance?start=2026-04-01&end=2026-03-01", headers={"X-API-Key": keys["sup"]}
    )
    assert r.status_code == 400
    r = client.get("/stats/compliance?start=April", headers={"X-API-Key": keys["sup"]})
    assert r.status_code == 400


def test_workspace_fixture_is_real(season) -> None:
    ws, _, _, sim = season
    assert Path(ws).exists() and len(sim.patrols) > 100


def test_impossible_dates_are_400(season) -> None:
    _, client, keys, _ = season
    r = client.get(
        "/stats/assessment?start=0000-00-00&end=0000-00-01", headers={"X-API-Key": keys["sup"]}
    )
    assert r.status_code == 400
    assert "calendar date" in r.json()["detail"]
