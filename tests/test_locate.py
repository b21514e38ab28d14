"""gridkit.locate: point-in-unit, nearest fallback, datums, GPS accuracy."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import Point

from gridkit.crs import local_metric_crs, wgs84_to_gcj02
from gridkit.errors import CRSError, InvalidLayerError
from gridkit.ops.locate import locate, locate_indices
from gridkit.synth.ops import grid_units


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return grid_units(4, 3)  # 4 x 3 cells of 0.005 deg from (113.10, 27.80)


def _pts(xy, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=[Point(x, y) for x, y in xy], crs=4326)


def test_inside_points_get_their_unit_and_zero_distance(units):
    pts = _pts([(113.1025, 27.8025), (113.1175, 27.8125)], report_id=["a", "b"])
    pts.index = [10, 20]
    out = locate(pts, units)
    assert list(out.index) == [10, 20]
    assert list(out["unit_id"]) == [units.unit_id[0], units.unit_id[2 * 4 + 3]]
    assert list(out["distance_m"]) == [0.0, 0.0]
    assert list(out["report_id"]) == ["a", "b"]
    assert not out["ambiguous"].any()


def test_outside_point_gets_nearest_unit_and_metric_distance(units):
    # 0.001 deg west of the grid at 27.8 N is about 98.5 m.
    out = locate(_pts([(113.099, 27.8025)]), units)
    assert out["unit_id"].iloc[0] == units.unit_id[0]
    assert out["distance_m"].iloc[0] == pytest.approx(98.5, abs=1.0)


def test_max_distance_leaves_far_points_without_unit(units):
    out = locate(_pts([(113.0, 27.8)]), units, max_distance_m=1000)
    assert out["unit_id"].isna().all()
    assert np.isnan(out["distance_m"].iloc[0])


def test_point_on_shared_edge_is_inside_with_distance_zero(units):
    out = locate(_pts([(113.105, 27.8025)]), units)
    assert out["distance_m"].iloc[0] == 0.0
    assert out["unit_id"].iloc[0] in set(units.unit_id[:2])


def test_missing_geometry_keeps_hand_chosen_unit(units):
    pts = gpd.GeoDataFrame(
        {"unit_id": ["X1", None]}, geometry=[None, Point(113.1025, 27.8025)], crs=4326
    )
    out = locate(pts, units)
    assert out["unit_id"].tolist() == ["X1", units.unit_id[0]]
    assert np.isnan(out["distance_m"].iloc[0])


def test_gcj02_points_are_shifted_before_locating(units):
    # A WGS84 point 30 m inside a cell, exported by a phone SDK in GCJ-02.
    lon, lat = 113.1003, 27.8025
    glon, glat = wgs84_to_gcj02(lon, lat)
    pts = gpd.GeoDataFrame(geometry=[Point(float(glon), float(glat))], crs=None)
    out = locate(pts, units, crs="gcj02")
    assert out["unit_id"].iloc[0] == units.unit_id[0]
    assert out.geometry.iloc[0].x == pytest.approx(lon, abs=1e-7)
    # Read as WGS84 the same coordinates land several hundred metres away.
    naive = locate(pts.set_crs(4326), units)
    assert naive["unit_id"].iloc[0] != units.unit_id[0]


def test_accuracy_flags_points_near_a_boundary(units):
    pts = _pts([(113.1002, 27.8025), (113.1025, 27.8025)], accuracy_m=[30.0, 30.0])
    out = locate(pts, units, accuracy_m="accuracy_m")
    assert out["ambiguous"].tolist() == [True, False]
    assert locate(pts, units, accuracy_m=5)["ambiguous"].tolist() == [False, False]
    assert locate(pts, units, accuracy_m=np.array([5.0, 300.0]))["ambiguous"].tolist() == [
        False,
        True,
    ]


def test_errors(units):
    with pytest.raises(InvalidLayerError, match="accuracy_m="):
        locate(_pts([(113.1, 27.8)]), units, accuracy_m="acc")
    with pytest.raises(InvalidLayerError, match="unit_id"):
        locate(_pts([(113.1, 27.8)]), units.drop(columns="unit_id"))
    with pytest.raises(CRSError):
        locate(_pts([(113.1, 27.8)]).set_crs(None, allow_override=True), units)
    # units in projected metres mislabelled as WGS84 are refused, not searched
    metres = units.to_crs(32649).set_crs(4326, allow_override=True)
    with pytest.raises(CRSError, match="cannot be longitude/latitude"):
        locate(_pts([(113.1, 27.8)]), metres)


def test_overlapping_units_lowest_position_wins():
    polys = shapely.box([0, 0.5], [0, 0], [1, 1.5], [1, 1])
    pts = shapely.points([[0.75, 0.5], [0.25, 0.5], [1.25, 0.5]])
    assert locate_indices(pts, polys).tolist() == [0, 0, 1]


def test_counts_equal_input_counts(units):
    rng = np.random.default_rng(3)
    x = rng.uniform(113.095, 113.125, 2000)
    y = rng.uniform(27.795, 27.82, 2000)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)
    out = locate(pts, units)
    assert len(out) == len(pts)
    assert out["unit_id"].notna().all()
    assert out["unit_id"].value_counts().sum() == len(pts)
    # Same answer as a geopandas spatial join for the points inside.
    inside = out["distance_m"] == 0
    joined = gpd.sjoin(pts[inside.to_numpy()], units[["unit_id", "geometry"]], predicate="within")
    joined = joined[~joined.index.duplicated()]
    assert (joined["unit_id"] == out.loc[joined.index, "unit_id"]).all()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(113.09, 113.13), st.floats(27.79, 27.82)),
        min_size=1,
        max_size=40,
    )
)
def test_every_point_gets_one_unit_distance_zero_iff_inside(xy):
    units = grid_units(4, 3)
    pts = _pts(xy)
    out = locate(pts, units)
    assert len(out) == len(pts)
    assert out["unit_id"].notna().all()
    polys = units.set_index("unit_id").geometry
    covered = np.asarray(
        shapely.covers(
            np.asarray(polys.loc[out["unit_id"].to_numpy()].array),
            np.asarray(out.geometry.array),
        )
    )
    dist = out["distance_m"].to_numpy()
    assert np.array_equal(dist == 0, covered)
    assert (dist >= 0).all()


def test_result_types(units):
    out = locate(_pts([(113.1025, 27.8025)]), units)
    assert isinstance(out, gpd.GeoDataFrame)
    assert pd.api.types.is_string_dtype(out["unit_id"].dtype)
    assert out["ambiguous"].dtype == bool


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.floats(0.2, 0.9)),
        min_size=1,
        max_size=40,
        unique_by=lambda c: c[:2],
    ),
    xy=st.lists(st.tuples(st.floats(112.9, 113.3), st.floats(27.6, 28.0)), min_size=1, max_size=20),
    max_m=st.none() | st.floats(50, 20_000),
)
def test_outside_points_get_the_nearest_unit_in_metres(cells, xy, max_m):
    # scattered units with gaps between them; the answer must be the brute-force
    # nearest over every unit in the metric CRS (lowest position among equals)
    d = 0.01
    boxes = [
        shapely.box(113.0 + i * d, 27.7 + j * d, 113.0 + (i + s) * d, 27.7 + (j + s) * d)
        for i, j, s in cells
    ]
    units = gpd.GeoDataFrame(
        {"unit_id": [f"U{k:03d}" for k in range(len(boxes))]}, geometry=boxes, crs=4326
    )
    out = locate(_pts(xy), units, max_distance_m=max_m)
    metric = local_metric_crs(units)
    um = np.asarray(units.to_crs(metric).geometry.array)
    pm = np.asarray(_pts(xy).to_crs(metric).geometry.array)
    for k, p in enumerate(pm):
        dist = shapely.distance(um, p)
        best = int(np.argmin(dist))  # argmin takes the lowest position among equals
        got = out["unit_id"].iloc[k]
        if max_m is not None and dist[best] > max_m:
            assert pd.isna(got) and np.isnan(out["distance_m"].iloc[k])
        else:
            # a point on an edge in lon/lat is in the unit (distance 0), though the
            # projection may put it a few millimetres off: hence the 1 cm tolerance
            assert out["distance_m"].iloc[k] == pytest.approx(dist[best], abs=0.01)
            assert dist[int(got[1:])] == pytest.approx(dist[best], abs=0.01)


def test_few_points_and_many_points_take_different_indexes_to_the_same_answer():
    # a few points query the units' own index; many points a tree of the points: the
    # answer (including the lowest position among overlapping units, edges and the
    # nearest fallback) must not depend on which one was used
    units = grid_units(12, 10)
    overlap = units.iloc[[5, 17, 40]].copy()
    overlap["unit_id"] = ["X5", "X17", "X40"]
    overlap["geometry"] = shapely.buffer(np.asarray(overlap.geometry.array), 0.001)  # degrees
    units = pd.concat([units, overlap], ignore_index=True)
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = units.total_bounds
    xy = np.c_[rng.uniform(x0 - 0.01, x1 + 0.01, 1200), rng.uniform(y0 - 0.01, y1 + 0.01, 1200)]
    xy[:20] = np.round(xy[:20] / 0.005) * 0.005  # on unit corners and edges
    many = locate(_pts(xy), units, max_distance_m=2_000)
    for start in range(0, 60, 6):  # 6 points among 123 units: the few-points path
        few = locate(_pts(xy[start : start + 6]), units, max_distance_m=2_000)
        assert few["unit_id"].tolist() == many["unit_id"].iloc[start : start + 6].tolist()
        assert np.allclose(
            few["distance_m"], many["distance_m"].iloc[start : start + 6], equal_nan=True
        )
