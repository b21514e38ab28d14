"""Building heads (issue 22 item 5): linked to buildings on the sample, coverage,
their 巡记做报 records, and a head's key reporting in his building's area (201) and not
elsewhere (403); and 九小场所 inspection targets (item 7) against brute force."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.crs import local_metric_crs
from gridkit.ops.heads import head_activity, head_buildings, head_coverage, head_scopes
from gridkit.ops.targets import inspection_status, overdue_targets
from gridkit.synth.heads import link_building_heads, simulate_head_records


def sample_community(n_buildings=40, n_heads=5, code="430202001001", x0=113.10):
    rng = np.random.default_rng(3)
    x = x0 + rng.uniform(0, 0.008, n_buildings)
    y = 27.80 + rng.uniform(0, 0.008, n_buildings)
    cid = f"{code}-C01"
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"{cid}-B{i:05d}" for i in range(n_buildings)],
            "community_id": cid,
            "households": rng.integers(10, 80, n_buildings),
        },
        geometry=shapely.box(x, y, x + 0.0003, y + 0.0002),
        crs=4326,
    )
    workers = pd.DataFrame(
        {
            "worker_id": [f"{cid}-H{i:03d}" for i in range(1, n_heads + 1)] + [f"{cid}-G001"],
            "name": [*["胡伟艳", "郭敏", "彭明杰", "李娜", "王强"][:n_heads], "张三"],
            "role": ["building_head"] * n_heads + ["grid_worker"],
            "level": "village",
            "admin_code": code,
            "capacity": 8.0,
        }
    )
    communities = pd.DataFrame({"community_id": [cid], "name": ["西塘社区"], "admin_code": [code]})
    return buildings, workers, communities


def test_every_building_gets_one_head_of_its_community_balanced():
    b1, w1, c1 = sample_community()
    b2, w2, c2 = sample_community(30, 0, "430203001001", x0=113.12)  # no heads there
    buildings = pd.concat([b1, b2], ignore_index=True)
    workers = pd.concat([w1, w2], ignore_index=True)
    communities = pd.concat([c1, c2], ignore_index=True)
    heads = link_building_heads(buildings, workers, communities=communities)
    assert heads["building_id"].is_unique and len(heads) == 40
    assert heads["worker_id"].str.startswith("430202001001-C01-H").all()
    sizes = heads.groupby("worker_id").size()
    assert len(sizes) == 5 and sizes.min() == sizes.max() == 8
    cov = head_coverage(buildings, heads)
    assert cov["has_head"].sum() == 40 and not cov.loc[40:, "has_head"].any()
    assert isinstance(cov, gpd.GeoDataFrame)  # ready for the coverage map


def test_demo_scale_link_is_fast():
    """1,280 heads over 10,097 buildings, as in the demo's month."""
    rng = np.random.default_rng(0)
    n_c, per = 40, 252
    comm = np.repeat(np.arange(n_c), per)
    codes = np.array([f"4302020{c // 10:02d}{c % 10 + 1:03d}" for c in range(n_c)])
    x = 113.0 + (comm % 8) * 0.01 + rng.uniform(0, 0.009, n_c * per)
    y = 27.8 + (comm // 8) * 0.01 + rng.uniform(0, 0.009, n_c * per)
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"B{i:06d}" for i in range(n_c * per)], "community_id": codes[comm]},
        geometry=shapely.points(x, y),
        crs=4326,
    )
    workers = pd.DataFrame(
        {
            "worker_id": [f"H{i:05d}" for i in range(1280)],
            "role": "building_head",
            "admin_code": codes[np.arange(1280) % n_c],
        }
    )
    communities = pd.DataFrame({"community_id": codes, "admin_code": codes})
    heads = link_building_heads(buildings, workers, communities=communities)
    assert heads["worker_id"].notna().all() and heads["worker_id"].nunique() == 1280
    records = simulate_head_records(heads, start="2026-03-01", end="2026-04-01", seed=2)
    act = head_activity(records)
    assert len(act) == 1280 and set(records["kind"]) == {"visit", "note", "fix", "report"}
    assert (act["records"] == act[["visit", "note", "fix", "report"]].sum(axis=1)).all()
    # daytime (08:00-20:00 Beijing) records only
    local = pd.to_datetime(records["at"]).dt.tz_convert("Asia/Shanghai").dt.hour
    assert local.between(8, 19).all()


def test_head_buildings_and_scopes_follow_appointments():
    buildings, workers, communities = sample_community(10, 2)
    heads = link_building_heads(buildings, workers, communities=communities)
    heads.loc[0, "valid_to"] = pd.Timestamp("2026-01-01T00:00Z")
    mine = head_buildings(heads, at="2026-05-01")
    assert sum(len(v) for v in mine.values()) == 9
    assert set(head_scopes(heads, buildings, communities)) == {"430202001001"}


def test_head_key_reports_in_his_buildings_area_not_elsewhere(tmp_path: Path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api import create_app
    from gridkit.store import issue_key, open_store
    from tests.api.test_open311 import make_workspace

    ws = make_workspace(tmp_path / "ws.gpkg")  # 西塘社区 west, 北坪社区 east
    buildings, workers, communities = sample_community(12, 2)
    heads = link_building_heads(buildings, workers, communities=communities)
    head = heads["worker_id"].iloc[0]
    scope = head_scopes(heads, buildings, communities)[head]
    key, _ = issue_key(open_store(ws), head, role="worker", worker_id=head, scope=scope)
    client = TestClient(create_app(workspace=ws))
    body = {"category": "fire_equipment", "description": "楼道灭火器过期", "source": "patrol"}
    inside = client.post(
        "/reports", json={**body, "lon": 113.105, "lat": 27.805}, headers={"X-API-Key": key}
    )
    assert inside.status_code == 201, inside.text
    outside = client.post(
        "/reports", json={**body, "lon": 113.115, "lat": 27.805}, headers={"X-API-Key": key}
    )
    assert outside.status_code == 403


def test_head_key_without_a_scope_reports_where_his_buildings_are(tmp_path: Path):
    """The permission model: a building head's key needs no scope of its own; his
    appointments (building_heads) place him, so he reports in his buildings' area (201)
    and not elsewhere (403)."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api import create_app
    from gridkit.io import write_layer
    from gridkit.store import issue_key, open_store
    from tests.api.test_open311 import make_workspace

    ws = make_workspace(tmp_path / "ws.gpkg")  # 西塘社区 west, 北坪社区 east
    buildings, workers, communities = sample_community(12, 2)
    heads = link_building_heads(buildings, workers, communities=communities)
    for name, df in (("building_heads", heads), ("buildings", buildings),
                     ("communities", communities)):  # fmt: skip
        write_layer(df, ws, name)
    head = heads["worker_id"].iloc[0]
    key, _ = issue_key(open_store(ws), head, role="worker", worker_id=head)  # no scope
    client = TestClient(create_app(workspace=ws))
    body = {"category": "fire_equipment", "description": "楼道灭火器过期", "source": "patrol"}
    at = {"X-API-Key": key}
    inside = client.post("/reports", json={**body, "lon": 113.105, "lat": 27.805}, headers=at)
    assert inside.status_code == 201, inside.text
    outside = client.post("/reports", json={**body, "lon": 113.115, "lat": 27.805}, headers=at)
    assert outside.status_code == 403, outside.text


# ---------------------------------------------------------------------- targets


def test_overdue_targets_listed():
    targets = gpd.GeoDataFrame(
        {
            "target_id": ["T1", "T2", "T3"],
            "name": ["好再来饭店", "如家旅馆", "星星网吧"],
            "kind": ["restaurant", "hostel", "internet_cafe"],
            "frequency_days": [30.0, 7.0, 14.0],
            "admin_code": "430202001001",
        },
        geometry=shapely.points([113.100, 113.101, 113.102], [27.8, 27.8, 27.8]),
        crs=4326,
    )
    fixes = gpd.GeoDataFrame(
        {
            "patrol_id": ["P1", "P2", "P3"],
            "worker_id": ["W1", "W2", "W1"],
            "t": pd.to_datetime(["2026-05-01T02:00Z", "2026-05-10T02:00Z", "2026-06-01T00:00Z"]),
        },
        geometry=shapely.points([113.10001, 113.10101, 113.10201], [27.8, 27.8, 27.8]),
        crs=4326,
    )
    s = inspection_status(targets, fixes, at="2026-05-20T02:00Z")
    assert s["checked_by"].tolist() == ["W1", "W2", None]  # P3 is after `at`
    assert s["overdue"].tolist() == [False, True, True]
    assert s.loc[1, "days_overdue"] == 3.0
    assert overdue_targets(s)["target_id"].tolist() == ["T3", "T2"]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([5.0, 30.0, 200.0]))
def test_check_ins_match_brute_force(seed, radius):
    rng = np.random.default_rng(seed)
    n_t, n_f = int(rng.integers(1, 8)), int(rng.integers(0, 40))
    targets = gpd.GeoDataFrame(
        {
            "target_id": [f"T{i}" for i in range(n_t)],
            "name": "店",
            "kind": "shop",
            "frequency_days": rng.choice([7.0, 30.0], n_t),
            "admin_code": "430202001001",
        },
        geometry=shapely.points(
            113.1 + rng.uniform(0, 0.005, n_t), 27.8 + rng.uniform(0, 0.005, n_t)
        ),
        crs=4326,
    )
    fixes = gpd.GeoDataFrame(
        {
            "patrol_id": [f"P{i % 5}" for i in range(n_f)],
            "worker_id": [f"W{i % 3}" for i in range(n_f)],
            "t": (
                pd.Timestamp("2026-05-01T00:00Z")
                + pd.to_timedelta(rng.uniform(0, 40, n_f), unit="D")
            ).floor("s"),
        },
        geometry=shapely.points(
            113.1 + rng.uniform(0, 0.005, n_f), 27.8 + rng.uniform(0, 0.005, n_f)
        ),
        crs=4326,
    )
    at = pd.Timestamp("2026-06-01T00:00Z")
    got = inspection_status(targets, fixes, radius_m=radius, at=at)
    crs = local_metric_crs(targets)
    tm, fm = targets.to_crs(crs).geometry.tolist(), fixes.to_crs(crs).geometry.tolist()
    for i in range(n_t):
        seen = [
            j for j in range(n_f) if fixes["t"].iloc[j] <= at and fm[j].distance(tm[i]) <= radius
        ]
        if not seen:
            assert pd.isna(got["last_checked_at"].iloc[i]) and got["overdue"].iloc[i]
            continue
        last = max(fixes["t"].iloc[j] for j in seen)
        assert got["last_checked_at"].iloc[i] == last
        assert got["check_ins"].iloc[i] == len({fixes["patrol_id"].iloc[j] for j in seen})
        due = last + pd.Timedelta(days=targets["frequency_days"].iloc[i])
        assert got["overdue"].iloc[i] == (at > due)
