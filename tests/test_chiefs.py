"""chief_coverage: four-level river chief coverage per river and section (四级全覆盖)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely import box

from gridkit import InvalidLayerError
from gridkit.rivers import chief_coverage


@pytest.fixture
def admin():
    rows = [
        ("430200", "city", "430000"),
        ("430202", "county", "430200"),
        ("430203", "county", "430200"),
        ("430202001", "township", "430202"),
        ("430203001", "township", "430203"),
        ("430202001001", "village", "430202001"),
        ("430203001001", "village", "430203001"),
    ]
    return gpd.GeoDataFrame(
        {
            "admin_code": [r[0] for r in rows],
            "name": [r[0] for r in rows],
            "level": [r[1] for r in rows],
            "parent_code": [r[2] for r in rows],
        },
        geometry=[box(0, 0, 1, 1)] * len(rows),
        crs=4326,
    )


@pytest.fixture
def reaches():
    return pd.DataFrame(
        {
            "reach_id": ["a1", "a2", "b1", "b2"],
            "river_id": ["A", "A", "B", "B"],
            "admin_code": ["430202001001", "430203001001", "430202001001", "430202001001"],
            "seq": [1, 2, 1, 2],
            "length_m": [100.0, 200.0, 50.0, 50.0],
            "boundary": [False, False, False, False],
        }
    )


def chiefs(rows):
    return pd.DataFrame(rows, columns=["chief_id", "worker_id", "level", "river_id", "admin_code"])


def test_full_coverage_and_gaps(reaches, admin):
    full_b = [
        ("c1", "w1", "city", "B", "430200"),
        ("c2", "w2", "county", "B", "430202"),
        ("c3", "w3", "township", "B", "430202001"),
        ("c4", "w4", "village", "B", "430202001001"),
    ]
    part_a = [
        ("c5", "w1", "city", "A", "430200"),
        ("c6", "w2", "county", "A", "430202"),
        ("c7", "w5", "township", "A", "430202001"),
        ("c8", "w6", "village", "A", "430202001001"),
        ("c9", "w7", "county", "A", "430203"),
    ]
    cov = chief_coverage(reaches, chiefs(full_b + part_a), admin)
    assert cov.full_share == pytest.approx(0.5)
    per = cov.rivers.set_index("river_id")
    assert per.loc["B", "full"] and not per.loc["A", "full"]
    assert per.loc["A", "county"] and not per.loc["A", "township"]
    gaps = cov.sections[~cov.sections["covered"]]
    assert set(zip(gaps["river_id"], gaps["level"], gaps["admin_code"], strict=False)) == {
        ("A", "township", "430203001"),
        ("A", "village", "430203001001"),
    }
    a_city = cov.sections[(cov.sections["river_id"] == "A") & (cov.sections["level"] == "city")]
    assert a_city["length_m"].iloc[0] == 300 and a_city["chief_ids"].iloc[0] == "c5"


def test_boundary_reach_needs_both_sides(admin):
    r = pd.DataFrame(
        {
            "reach_id": ["x"],
            "river_id": ["A"],
            "admin_code": ["430202001001"],
            "seq": [1],
            "length_m": [10.0],
            "boundary": [True],
            "left_code": ["430202001001"],
            "right_code": ["430203001001"],
        }
    )
    cov = chief_coverage(r, chiefs([("c1", "w", "county", "A", "430202")]), admin)
    county = cov.sections[cov.sections["level"] == "county"]
    assert sorted(county["admin_code"]) == ["430202", "430203"]
    assert county["covered"].tolist() == [True, False]


def test_coarse_admin_data_uses_code_prefix(reaches):
    admin = gpd.GeoDataFrame(
        {
            "admin_code": ["430200", "430202", "430203"],
            "name": "x",
            "level": ["city", "county", "county"],
            "parent_code": ["430000", "430200", "430200"],
        },
        geometry=[box(0, 0, 1, 1)] * 3,
        crs=4326,
    )
    r = reaches.assign(admin_code=["430202", "430202", "430202", "430202"])
    rows = [
        ("c1", "w", "city", "B", "430200"),
        ("c2", "w", "county", "B", "430202"),
        ("c3", "w", "township", "B", "430202001"),
        ("c4", "w", "village", "B", "430202001007"),
    ]
    cov = chief_coverage(r, chiefs(rows), admin)
    per = cov.rivers.set_index("river_id")
    assert per.loc["B", "full"] and not per.loc["A", "full"]


def test_bad_chiefs_layer(reaches, admin):
    with pytest.raises(InvalidLayerError, match="level"):
        chief_coverage(reaches, chiefs([("c1", "w", "national", "A", "43")]), admin)


def test_real_sample(admin):
    geodata = pytest.importorskip("geodata")
    import warnings

    from gridkit.rivers import split_rivers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adm = geodata.zhuzhou_admin()
        reaches, _ = split_rivers(geodata.xiang_river(), adm, max_length_m=5000, corridor_m=None)
    cov = chief_coverage(reaches, chiefs([("c1", "w", "city", "XJ", "430200")]), adm)
    assert cov.full_share == 0.0
    city = cov.sections[cov.sections["level"] == "city"]
    assert city["covered"].all() and len(city) == 1
