"""Taking reports and fixes in: datum, service area, report frames and ids, known codes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit import codes
from gridkit.crs import wgs84_to_bd09, wgs84_to_gcj02
from gridkit.errors import CRSError
from gridkit.ops.intake import (
    OutsideServiceAreaError,
    ReportIds,
    count_vertices,
    in_service_area,
    known_admin_codes,
    place_points,
    point_frame,
    report_frame,
    service_area,
    wgs84_points,
)
from gridkit.ops.reports import ReportError, intake
from gridkit.synth.ops import grid_units

CITY = shapely.box(113.0, 27.7, 113.3, 27.9)


@pytest.fixture(scope="module")
def units():
    return grid_units(3, 3, admin_code="430202001")


def test_service_area_is_the_admin_areas_else_the_units(units) -> None:
    admin = gpd.GeoDataFrame({"admin_code": ["430200"]}, geometry=[CITY], crs=4326)
    assert service_area(admin, units).equals(CITY)  # the admin areas win
    from_units = service_area(None, units)
    assert from_units.equals(shapely.union_all(units.geometry.to_numpy()))
    assert service_area(None, None) is None and service_area(admin.iloc[:0], units) is None


def test_in_service_area_counts_the_boundary_and_takes_all_without_an_area() -> None:
    pts = shapely.points([(113.1, 27.8), (113.0, 27.8), (113.31, 27.8)])
    assert in_service_area(pts, CITY).tolist() == [True, True, False]
    assert in_service_area(gpd.GeoSeries(pts, crs=4326), CITY).tolist() == [True, True, False]
    assert in_service_area(pts, None).tolist() == [True, True, True]


@pytest.mark.parametrize(("datum", "shift"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_wgs84_points_from_chinese_web_datums(datum, shift) -> None:
    lon, lat = shift(np.array([113.13, 113.2]), np.array([27.83, 27.85]))
    got = shapely.get_coordinates(wgs84_points(np.column_stack([lon, lat]), datum))
    assert np.allclose(got, [(113.13, 27.83), (113.2, 27.85)], atol=1e-5)


def test_wgs84_points_from_projected_metres_and_refusals() -> None:
    p = wgs84_points([(500_000.0, 3_077_000.0)], "EPSG:32649")[0]  # UTM 49N
    assert p.x == pytest.approx(111.0, abs=0.01) and p.y == pytest.approx(27.82, abs=0.01)
    with pytest.raises(CRSError, match="longitude/latitude"):
        wgs84_points([(500_000.0, 3_077_000.0)])  # metres sent as lon/lat
    with pytest.raises(CRSError, match="Unknown CRS"):
        wgs84_points([(113.0, 27.8)], "EPSG:999999")


def test_place_points_answers_each_point_on_its_own() -> None:
    glon, glat = wgs84_to_gcj02(113.1, 27.8)
    out = place_points(
        [(113.1, 27.8), None, (120.0, 30.0), (500_000.0, 3e6), (float(glon), float(glat)), (1, 2)],
        [None, None, None, None, "gcj02", "EPSG:999999"],
        area=CITY,
    )
    assert out[0].equals(shapely.Point(113.1, 27.8)) and out[1] is None
    assert isinstance(out[2], OutsideServiceAreaError) and isinstance(out[2], ReportError)
    assert "(120.000000, 30.000000) lies outside the service area" in out[2].message
    assert isinstance(out[3], CRSError) and isinstance(out[5], CRSError)
    assert out[4].x == pytest.approx(113.1, abs=1e-5)
    # one datum for all, and no area: every point placed
    assert all(p is not None for p in place_points([(113.1, 27.8), (120.0, 30.0)], None))


def test_point_frame_converts_and_broadcasts() -> None:
    lon, lat = wgs84_to_gcj02(np.array([113.1, 113.2]), np.array([27.8, 27.8]))
    fixes = point_frame(
        {"patrol_id": "P1", "accuracy_m": [5.0, None]},
        np.column_stack([lon, lat]),
        crs="gcj02",
        source="patrol points",
    )
    assert fixes.crs.equals(4326) and fixes["patrol_id"].tolist() == ["P1", "P1"]
    assert np.allclose(fixes.geometry.x, [113.1, 113.2], atol=1e-5)
    with pytest.raises(CRSError, match="patrol points"):
        point_frame({"patrol_id": "P1"}, [(500_000.0, 3e6)], crs=4326, source="patrol points")


def test_report_frame_feeds_intake(units) -> None:
    records = [
        {"category": "street_light", "source": "patrol", "unit_id": None, "reported_at": None},
        {"category": "cctv", "source": "hotline", "unit_id": None, "reported_at": "2026-05-01"},
    ]
    pts = [shapely.Point(units.geometry.iloc[0].centroid), None]
    new = report_frame(records, pts, report_ids=["R0000001", "R0000002"])
    assert list(new.columns) == ["report_id", "category", "source", "reported_at", "geometry"]
    assert str(new["reported_at"].dtype).startswith("datetime64") and new.crs.equals(4326)
    assert new.geometry.iloc[1] is None
    with pytest.raises(ReportError, match="no point, unit_id or admin_code"):
        intake(new, units=units)
    change = intake(new.iloc[:1], units=units)
    assert change.reports["unit_id"].iloc[0] == units["unit_id"].iloc[0]


def test_report_ids_continue_after_the_highest_and_never_repeat() -> None:
    ids = ReportIds(pd.Series(["R0000002", "R0000005", "x-R9", None]))
    assert ids.take(3) == ["R0000006", "R0000007", "R0000008"]
    assert ReportIds([]).take(2) == ["R0000001", "R0000002"]
    # numbering follows the number, whatever its width; an iterator too
    wide = ReportIds(["R12", "R0000003"])
    assert next(wide) == "R0000013" and next(iter(wide)) == "R0000014"


def test_known_admin_codes_are_the_areas_and_every_level_above_units(units) -> None:
    admin = pd.DataFrame({"admin_code": ["430281000000", None]})
    known = known_admin_codes(units, admin)
    assert {"430281", "430202001", "430202", "430200", "430000"} <= known
    for asked in ("430202000000", "430200", "4302", "430202001000"):
        assert codes.normalise(asked) in known
    assert codes.normalise("430203") not in known
    assert known_admin_codes(None, None) is None
    assert known_admin_codes(None, pd.DataFrame({"name": ["x"]})) == frozenset()


def test_count_vertices(units) -> None:
    assert count_vertices(units) == 5 * len(units)
    assert count_vertices(units.iloc[:0]) == 0
