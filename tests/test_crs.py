"""Datums and metric CRS: GCJ-02 / BD-09 conversions and declared CRS handling."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import Point

from gridkit.crs import (
    WGS84,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    like_input,
    local_metric_crs,
    parse_crs,
    result_crs,
    shift_datum,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from gridkit.errors import CRSError

GEOD = pyproj.Geod(ellps="WGS84")
china_lon = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=18.0, max_value=53.5, allow_nan=False)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
def test_gcj02_round_trip_within_half_a_metre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back) < 0.5


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
def test_bd09_round_trip_within_half_a_metre(lon: float, lat: float) -> None:
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert metres(lon, lat, *back) < 0.5
    back_gcj = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert metres(lon, lat, *back_gcj) < 0.5


def test_offset_in_zhuzhou_is_a_few_hundred_metres() -> None:
    lon, lat = 113.134, 27.827  # Zhuzhou city centre
    offset = metres(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert 200 < offset < 800
    bd_offset = metres(lon, lat, *wgs84_to_bd09(lon, lat))
    assert bd_offset > offset  # BD-09 adds its own shift on top of GCJ-02


@pytest.mark.parametrize("lonlat", [(2.35, 48.85), (-74.0, 40.7), (151.2, -33.9), (0.0, 0.0)])
def test_points_outside_china_untouched(lonlat: tuple[float, float]) -> None:
    for func in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        out = func(*lonlat)
        assert (float(out[0]), float(out[1])) == lonlat


def test_vectorised_over_arrays() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(110, 115, 10_000)
    lat = rng.uniform(25, 30, 10_000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == (10_000,)
    assert np.all(metres(lon, lat, *gcj02_to_wgs84(glon, glat)) < 0.5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("bd09", "bd09"), ("BD_09", "bd09")],
)
def test_parse_chinese_datums(value: str, expected: str) -> None:
    assert parse_crs(value) == expected


@pytest.mark.parametrize("value", [4326, "EPSG:4490", "4547", pyproj.CRS(32649)])
def test_parse_epsg(value: object) -> None:
    assert isinstance(parse_crs(value), pyproj.CRS)


def test_parse_unknown_crs_is_clear() -> None:
    with pytest.raises(CRSError, match="Unknown CRS 'wgs-ish'") as info:
        parse_crs("wgs-ish")
    assert "gcj02" in info.value.hint


def _pts(crs=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"a": [1]}, geometry=[Point(113.134, 27.827)], crs=crs)


def test_to_wgs84_declared_gcj02_shifts_back() -> None:
    gcj = shift_datum(_pts(4326), source="wgs84", target="gcj02")
    out = to_wgs84(gcj.set_crs(None, allow_override=True), crs="gcj02")
    p = out.geometry.iloc[0]
    assert metres(113.134, 27.827, p.x, p.y) < 0.5
    assert out.crs.to_epsg() == 4326


def test_to_wgs84_missing_crs_needs_declaration() -> None:
    with pytest.raises(CRSError, match="has no coordinate reference system") as info:
        to_wgs84(_pts(), source="reports.geojson")
    assert "--crs" in info.value.hint


def test_to_wgs84_projected_metres_declared_as_lonlat() -> None:
    metric = _pts(4326).to_crs(32649).set_crs(None, allow_override=True)
    with pytest.raises(CRSError, match="cannot be longitude/latitude"):
        to_wgs84(metric, crs=4326, source="x.gpkg")


def test_to_wgs84_conflicting_declaration() -> None:
    with pytest.raises(CRSError, match="was declared"):
        to_wgs84(_pts(4326).to_crs(32649), crs=3857)


def test_cgcs2000_treated_as_wgs84() -> None:
    out = to_wgs84(_pts(4490))
    assert out.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].x == pytest.approx(113.134)


def test_projected_input_is_reprojected() -> None:
    out = to_wgs84(_pts(4326).to_crs(32649))
    assert out.geometry.iloc[0].x == pytest.approx(113.134, abs=1e-7)


def test_local_metric_crs_is_utm_zone_of_data() -> None:
    assert local_metric_crs(_pts(4326)).to_epsg() == 32649  # 113 E -> UTM 49N
    south = gpd.GeoDataFrame(geometry=[Point(151.2, -33.9)], crs=4326)
    assert local_metric_crs(south).to_epsg() == 32756


# --------------------------------------------------------------------------- result CRS


@pytest.mark.parametrize(
    ("carried", "declared", "expected"),
    [
        (3067, None, 3067),
        (32649, None, 32649),
        (4490, None, 4490),
        (4326, None, 4326),
        (None, 32649, 32649),  # an unlabelled layer takes the declaration
        (None, "EPSG:4490", 4490),
        (32649, 32649, 32649),
        (None, "gcj02", 4326),  # no CRS can label GCJ-02 / BD-09: WGS84
        (4326, "bd09", 4326),
    ],
)
def test_result_crs_is_the_callers(carried, declared, expected) -> None:
    pts = _pts(carried)
    assert result_crs(pts, declared).to_epsg() == expected


def test_like_input_reprojects_once_and_never_copies_in_place() -> None:
    wgs = _pts(4326)
    assert like_input(wgs, wgs.crs) is wgs  # already there: no copy
    utm = like_input(wgs, pyproj.CRS.from_epsg(32649))
    assert utm.crs.to_epsg() == 32649
    assert utm.geom_equals_exact(wgs.to_crs(32649), tolerance=0).all()
    assert utm["a"].tolist() == [1]


def test_like_input_given_rows_come_back_untouched() -> None:
    given = _pts(4326).to_crs(32649)
    located = to_wgs84(given).assign(unit_id="U1")
    out = like_input(located, given.crs, given=given)
    assert out.crs.to_epsg() == 32649 and out["unit_id"].tolist() == ["U1"]
    assert out.geometry.iloc[0].equals_exact(given.geometry.iloc[0], tolerance=0)
    assert located.crs.equals(WGS84)  # the frame handed in is not changed


def test_like_input_cgcs2000_is_relabelled_not_moved() -> None:
    wgs = _pts(4326)
    out = like_input(wgs, pyproj.CRS.from_epsg(4490))
    assert out.crs.to_epsg() == 4490
    assert out.geometry.iloc[0].equals_exact(wgs.geometry.iloc[0], tolerance=0)
