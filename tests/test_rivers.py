"""split_rivers: cutting, lengths, boundary rivers, ids, corridors; real sample and properties."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from shapely import LineString, Point, box

from gridkit import GridkitError, GridkitWarning, InvalidLayerError
from gridkit.rivers import split_rivers
from gridkit.rivers.linesplit import LineTable, equal_breaks

UTM = 32649  # Zhuzhou lies in UTM zone 49N
X0, Y0 = 700_000.0, 3_080_000.0


# ----------------------------------------------------------------------------- builders


def admin(polys, codes=None, level="township"):
    codes = codes or [f"430202{i + 1:03d}" for i in range(len(polys))]
    return gpd.GeoDataFrame(
        {"admin_code": codes, "name": codes, "level": level, "parent_code": "430202"},
        geometry=list(polys),
        crs=UTM,
    )


def rivers(lines, ids=None):
    ids = ids or [f"R{i + 1}" for i in range(len(lines))]
    return gpd.GeoDataFrame({"river_id": ids, "name": ids}, geometry=list(lines), crs=UTM)


def two_squares(w=10_000.0):
    return admin([box(X0, Y0, X0 + w, Y0 + w), box(X0 + w, Y0, X0 + 2 * w, Y0 + w)])


def voronoi_tiling(seed: int, n: int, size: float = 20_000.0):
    """Seeded Voronoi tiling of a square (codes sorted by position, deterministic)."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, (n, 2)) + np.array([X0, Y0])
    frame = box(X0, Y0, X0 + size, Y0 + size)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame, ordered=True)
    )
    cells = shapely.intersection(cells, frame)
    return admin(cells)


def random_river(seed: int, n: int = 30, size: float = 20_000.0):
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.1 * size, 0.3 * size, 2)
    heading = rng.uniform(0, np.pi / 2)
    ang = heading + np.cumsum(rng.normal(0, 0.4, n))
    steps = rng.uniform(200, 800, n)[:, None] * np.c_[np.cos(ang), np.sin(ang)]
    xy = np.vstack([start, start + np.cumsum(steps, axis=0)]) + np.array([X0, Y0])
    return LineString(xy)


def quiet_split(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        return split_rivers(*args, **kw)


def inside_length(riv, adm):
    return float(
        shapely.intersection(
            shapely.union_all(riv.geometry.array), shapely.union_all(adm.geometry.array)
        ).length
    )


# ----------------------------------------------------------------------------- linesplit


def test_linetable_matches_shapely_substring():
    from shapely.ops import substring

    rng = np.random.default_rng(1)
    lines = [
        LineString(np.cumsum(rng.normal(size=(rng.integers(2, 20), 2)), axis=0)) for _ in range(50)
    ]
    t = LineTable.from_lines(lines)
    li = rng.integers(0, 50, 500)
    a = rng.uniform(0, 1, 500) * t.lengths[li]
    b = a + rng.uniform(0, 1, 500) * (t.lengths[li] - a)
    got = t.substrings(li, a, b)
    for g, i, x, y in zip(got, li, a, b, strict=True):
        assert shapely.hausdorff_distance(g, substring(lines[i], x, y)) < 1e-9
    np.testing.assert_allclose(shapely.length(got), b - a, atol=1e-9)


def test_equal_breaks_fewest_equal_parts():
    piece, a, b = equal_breaks(np.array([3000.0, 1000.0, 999.0, 2500.0]), 1000.0)
    assert np.bincount(piece).tolist() == [3, 1, 1, 3]
    assert np.all(b - a <= 1000.0 + 1e-9)
    np.testing.assert_allclose(np.bincount(piece, weights=b - a), [3000, 1000, 999, 2500])


# ----------------------------------------------------------------------------- basics


def test_cut_at_boundary_and_by_length():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 19_000, Y0 + 5000)])
    reaches, units = quiet_split(rivers([line]), two_squares(), max_length_m=4000, corridor_m=50)
    assert reaches["length_m"].sum() == pytest.approx(18_000, rel=1e-9)
    assert reaches["length_m"].max() <= 4000
    # 9 km in each square -> 3 equal reaches of 3 km each
    assert reaches.groupby("admin_code")["length_m"].agg(list).map(len).tolist() == [3, 3]
    np.testing.assert_allclose(reaches["length_m"], 3000.0)
    assert reaches["seq"].tolist() == [1, 2, 3, 4, 5, 6]
    assert reaches["reach_id"].tolist() == [
        "430202001-R1-001",
        "430202001-R1-002",
        "430202001-R1-003",
        "430202002-R1-001",
        "430202002-R1-002",
        "430202002-R1-003",
    ]
    assert not reaches["boundary"].any()
    assert reaches.crs.to_epsg() == UTM
    assert set(units["unit_id"]) == set(reaches["reach_id"])
    assert (units["bank"] == "both").all()
    # corridor units: 2 x 50 m wide, no overlaps, consecutive ones touch
    g = np.asarray(units.geometry.array)
    assert shapely.area(shapely.union_all(g)) == pytest.approx(shapely.area(g).sum(), rel=1e-9)
    for i in range(len(g) - 1):
        u = units.set_index("unit_id").geometry
        s = shapely.intersection(u[reaches["reach_id"][i]], u[reaches["reach_id"][i + 1]])
        assert s.length == pytest.approx(100.0, abs=1.0)


def test_result_unpacks_and_has_report():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    result = quiet_split(rivers([line]), two_squares(), max_length_m=5000, corridor_m=None)
    reaches, units = result
    assert len(units) == 0 and len(reaches) == 2
    assert result.report.ok
    assert result.admin_areas is not None


def test_wgs84_in_wgs84_out():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 19_000, Y0 + 5000)])
    riv = rivers([line]).to_crs(4326)
    reaches, units = quiet_split(riv, two_squares().to_crs(4326), max_length_m=4000)
    assert reaches.crs.to_epsg() == 4326 and units.crs.to_epsg() == 4326
    assert reaches["length_m"].sum() == pytest.approx(18_000, rel=1e-4)


def test_min_length_merges_across_confluence_and_redivides():
    main = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    trib = LineString([(X0 + 8800, Y0 + 9000), (X0 + 8800, Y0 + 5000)])  # joins 200 m before end
    reaches, _ = quiet_split(
        rivers([main, trib], ["M", "T"]),
        two_squares(),
        max_length_m=3000,
        min_length_m=500,
        corridor_m=None,
    )
    m = reaches[reaches["river_id"] == "M"]
    # 200 m piece after the confluence merged back: 8 km -> 3 equal reaches
    np.testing.assert_allclose(m["length_m"], 8000 / 3)
    reaches2, _ = quiet_split(
        rivers([main, trib], ["M", "T"]), two_squares(), max_length_m=3000, corridor_m=None
    )
    m2 = reaches2[reaches2["river_id"] == "M"]
    assert len(m2) == 4 and m2["length_m"].iloc[-1] == pytest.approx(200)


def test_confluence_cut_and_tributary_direction():
    main = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    # tributary drawn from its mouth upstream: must be flipped by topology
    trib = LineString([(X0 + 5000, Y0 + 5000), (X0 + 5000, Y0 + 9000)])
    result = quiet_split(
        rivers([main, trib], ["M", "T"]), two_squares(), max_length_m=10_000, corridor_m=50
    )
    reaches, units = result
    m = reaches[reaches["river_id"] == "M"]
    np.testing.assert_allclose(m["length_m"], [4000, 4000])
    t = reaches[reaches["river_id"] == "T"].iloc[0]
    assert shapely.get_point(t.geometry, -1).equals(Point(X0 + 5000, Y0 + 5000))
    assert t["rank"] == 1 and m["rank"].eq(0).all()
    # main stem wins its whole corridor at the confluence
    g = units.set_index("reach_id").geometry
    near = shapely.buffer(Point(X0 + 5000, Y0 + 5030), 5)
    assert shapely.intersection(g[t["reach_id"]], near).area < 1e-6
    g2 = np.asarray(units.geometry.array)
    assert shapely.area(shapely.union_all(g2)) == pytest.approx(shapely.area(g2).sum(), rel=1e-9)


def test_outlet_sets_direction():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 19_000, Y0 + 5000)])
    reaches, _ = quiet_split(
        rivers([line]), two_squares(), max_length_m=20_000, corridor_m=None, outlet=(X0, Y0 + 5000)
    )
    assert reaches["admin_code"].tolist() == ["430202002", "430202001"]
    assert shapely.get_point(reaches.geometry.iloc[-1], -1).x == pytest.approx(X0 + 1000)


def test_boundary_river_one_reach_two_banks():
    w = 10_000.0
    adm = two_squares(w)
    # runs along the shared edge x = X0 + w, zigzagging 20 m either side, then turns east
    ys = np.arange(500, 9001, 250)
    xs = X0 + w + np.where(np.arange(len(ys)) % 2, 20.0, -20.0)
    line = LineString(np.c_[xs, Y0 + ys])
    result = quiet_split(rivers([line]), adm, max_length_m=20_000, corridor_m=50)
    reaches, units = result
    assert reaches["boundary"].sum() == 1
    b = reaches[reaches["boundary"]].iloc[0]
    assert b["reach_id"].startswith("430202001+430202002-R1-")
    # flowing north, the west square is on the left bank
    assert (b["left_code"], b["right_code"]) == ("430202001", "430202002")
    bu = units[units["reach_id"] == b["reach_id"]]
    assert set(bu["bank"]) == {"left", "right"}
    assert dict(zip(bu["bank"], bu["admin_code"], strict=True)) == {
        "left": "430202001",
        "right": "430202002",
    }
    total = reaches["length_m"].sum()
    assert total == pytest.approx(line.length, rel=1e-9)
    # without detection it is cut at every zigzag
    many, _ = quiet_split(
        rivers([line]), adm, max_length_m=20_000, corridor_m=None, boundary_tolerance_m=0
    )
    assert len(many) > 20 and not many["boundary"].any()


def test_water_body_units_win_over_river():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    lake = box(X0 + 4000, Y0 + 4000, X0 + 6000, Y0 + 6000)
    wb = gpd.GeoDataFrame(
        {"water_body_id": ["W1"], "name": ["湖"], "kind": ["lake"]}, geometry=[lake], crs=UTM
    )
    reaches, units = quiet_split(rivers([line]), two_squares(), max_length_m=2000, water_bodies=wb)
    w = units[units["kind"] == "water_body"]
    assert w["unit_id"].tolist() == ["430202001-W1"]
    assert w["area_m2"].iloc[0] == pytest.approx(4e6)
    r = units[units["kind"] == "river_reach"]
    assert shapely.intersection(shapely.union_all(r.geometry.array), lake).area < 1e-6
    assert reaches["length_m"].sum() == pytest.approx(8000)


def test_network_problems_reported():
    adm = two_squares()
    a = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    outside = LineString([(X0 - 5000, Y0 + 5000), (X0 + 3000, Y0 + 7000)])
    near = LineString([(X0 + 6000, Y0 + 8000), (X0 + 6000, Y0 + 5020)])  # 20 m short
    zero = shapely.MultiLineString(
        [
            [(X0 + 2000, Y0 + 2000), (X0 + 3000, Y0 + 2000)],
            [(X0 + 100, Y0 + 100), (X0 + 100, Y0 + 100)],
        ]
    )
    with pytest.warns(GridkitWarning):
        result = split_rivers(rivers([a, a, outside, near, zero]), adm, max_length_m=5000)
    codes = {p.code: p for p in result.report.problems}
    assert {"duplicate_river", "outside_areas", "not_connected", "zero_length"} <= set(codes)
    assert codes["duplicate_river"].rows == ("R2",)
    assert "R3" in codes["outside_areas"].message
    assert codes["not_connected"].rows == ("R4",)
    assert "R2" not in set(result.reaches["river_id"])


def test_admin_overlap_and_gap_cleaned():
    w = 10_000.0
    adm = admin(
        [
            box(X0, Y0, X0 + w + 3, Y0 + w),  # 3 m overlap
            box(X0 + w, Y0, X0 + 2 * w, Y0 + w / 2),
            box(X0 + w + 4, Y0 + w / 2, X0 + 2 * w, Y0 + w),
        ]
    )  # 4 m gap
    line = LineString([(X0 + 1000, Y0 + 7000), (X0 + 19_000, Y0 + 7000)])
    result = quiet_split(rivers([line]), adm, max_length_m=50_000, corridor_m=None)
    codes = [p.code for p in result.report.problems]
    assert "admin_overlap" in codes and "admin_gap" in codes
    assert result.reaches["length_m"].sum() == pytest.approx(18_000, rel=1e-9)


def test_sliver_gaps_are_told_once():
    """The sample admin areas have notches under 1 m² (digitising noise): closed, and
    told as one line, not as 'a gap of 0.0 m²' per area."""
    import geodata

    result = quiet_split(
        geodata.xiang_river(), geodata.zhuzhou_admin(), max_length_m=4000, min_length_m=300
    )
    gaps = [p.message for p in result.report.problems if p.code == "admin_gap"]
    assert not any("gap of 0.0 m²" in m for m in gaps)
    assert sum("sliver(s) thinner than 1 cm or under 1 m²" in m for m in gaps) == 1


def test_finest_level_used():
    adm = two_squares()
    county = admin([box(X0, Y0, X0 + 20_000, Y0 + 10_000)], ["430202"], level="county")
    both = gpd.GeoDataFrame(
        gpd.pd.concat([county, adm], ignore_index=True), geometry="geometry", crs=UTM
    )
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 19_000, Y0 + 5000)])
    reaches, _ = quiet_split(rivers([line]), both, max_length_m=50_000, corridor_m=None)
    assert sorted(set(reaches["admin_code"])) == ["430202001", "430202002"]


@pytest.mark.parametrize(
    ("kw", "err"),
    [
        ({"max_length_m": 0}, GridkitError),
        ({"max_length_m": 100, "min_length_m": 200}, GridkitError),
        ({"max_length_m": 100, "corridor_m": -1}, GridkitError),
    ],
)
def test_bad_options(kw, err):
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    with pytest.raises(err):
        split_rivers(rivers([line]), two_squares(), **kw)


def test_bad_layers():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 9000, Y0 + 5000)])
    with pytest.raises(InvalidLayerError, match="river_id"):
        split_rivers(
            rivers([line]).rename(columns={"river_id": "id"}), two_squares(), max_length_m=100
        )
    with pytest.raises(InvalidLayerError, match="admin_areas"):
        split_rivers(rivers([line]), two_squares().drop(columns="level"), max_length_m=100)


# ----------------------------------------------------------------------------- stability


def test_ids_deterministic_and_stable_under_local_change():
    adm = voronoi_tiling(3, 25)
    riv = rivers([random_river(s) for s in range(4)])
    r1, u1 = quiet_split(riv, adm, max_length_m=1500, min_length_m=200)
    r1b, _ = quiet_split(riv, adm, max_length_m=1500, min_length_m=200)
    assert r1["reach_id"].tolist() == r1b["reach_id"].tolist()
    assert r1["reach_id"].is_unique and u1["unit_id"].is_unique
    # move the border between two neighbouring areas crossed by a river
    touched = r1[~r1["boundary"]]["admin_code"].value_counts().index[0]
    i = adm.index[adm["admin_code"] == touched][0]
    geoms = np.asarray(adm.geometry.array).copy()
    nb = [
        j
        for j in range(len(adm))
        if j != i
        and shapely.intersects(geoms[i], geoms[j])
        and shapely.intersection(geoms[i], geoms[j]).length > 0
    ]
    j = nb[0]
    bite = shapely.intersection(shapely.buffer(geoms[j], 300), geoms[i])
    geoms[j] = shapely.union(geoms[j], bite)
    geoms[i] = shapely.difference(geoms[i], bite)
    adm2 = adm.set_geometry(list(geoms), crs=UTM)
    r2, _ = quiet_split(riv, adm2, max_length_m=1500, min_length_m=200)
    changed = {adm["admin_code"][i], adm["admin_code"][j]}

    def untouched(r):
        keep = ~r["admin_code"].isin(changed)
        if "right_code" in r:
            keep &= ~r["right_code"].isin(changed) & ~r["left_code"].isin(changed)
        return r[keep].set_index("reach_id")["length_m"]

    a, b = untouched(r1), untouched(r2)
    assert set(a.index) == set(b.index)
    np.testing.assert_allclose(a.sort_index(), b.sort_index(), rtol=1e-9)


# ----------------------------------------------------------------------------- properties


def _check_invariants(riv, adm, reaches, units, max_len, min_len):
    # length conserved
    assert reaches["length_m"].sum() == pytest.approx(inside_length(riv, adm), rel=1e-4)
    np.testing.assert_allclose(
        shapely.length(reaches.geometry.array), reaches["length_m"], rtol=1e-6, atol=1e-6
    )
    assert (reaches["length_m"] <= max_len * (1 + 1e-9)).all()
    # every non-boundary reach lies in its area
    areas = adm.set_index("admin_code").geometry
    nb = reaches[~reaches["boundary"]]
    g = np.asarray(nb.geometry.array)
    own = np.asarray(areas.loc[nb["admin_code"]].array)
    outside = shapely.length(shapely.difference(g, shapely.buffer(own, 1e-3)))
    assert (outside < 1e-3).all()
    assert reaches["reach_id"].is_unique
    assert (
        reaches.groupby("river_id")["seq"]
        .apply(lambda s: list(s) == list(range(1, len(s) + 1)))
        .all()
    )
    if len(units):
        ug = np.asarray(units.geometry.array)
        assert units["unit_id"].is_unique
        union = shapely.area(shapely.union_all(ug))
        assert union == pytest.approx(shapely.area(ug).sum(), rel=1e-6, abs=1.0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_areas=st.integers(2, 30),
    n_rivers=st.integers(1, 4),
    max_len=st.floats(300, 5000),
    min_frac=st.floats(0, 0.5),
)
# a boundary reach's bank unit swallowed a spill zone lying outside its area, overlapping
# 7 units (test_corridor_units_never_overlap_degenerate_spill_case)
@example(seed=1788, n_areas=16, n_rivers=4, max_len=300.0, min_frac=0.0)
def test_properties_random_networks(seed, n_areas, n_rivers, max_len, min_frac):
    adm = voronoi_tiling(seed, n_areas)
    riv = rivers([random_river(seed * 7 + k) for k in range(n_rivers)])
    min_len = min_frac * max_len
    result = quiet_split(riv, adm, max_length_m=max_len, min_length_m=min_len, corridor_m=40)
    _check_invariants(riv, adm, result.reaches, result.units, max_len, min_len)
    # flagged or merged: no unflagged short reach
    short = result.reaches["length_m"] < min_len * (1 - 1e-9)
    if short.any():
        assert "short_piece" in [p.code for p in result.report.problems]
    again = quiet_split(riv, adm, max_length_m=max_len, min_length_m=min_len, corridor_m=40)
    assert again.reaches["reach_id"].tolist() == result.reaches["reach_id"].tolist()
    assert again.units["unit_id"].tolist() == result.units["unit_id"].tolist()


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def zhuzhou():
    geodata = pytest.importorskip("geodata")
    try:
        return geodata.zhuzhou_admin(), geodata.xiang_river()
    except Exception as exc:  # files not built yet
        pytest.skip(f"sample data not available: {exc}")


def test_real_xiang_river(zhuzhou):
    adm, riv = zhuzhou
    result = quiet_split(riv, adm, max_length_m=5000, min_length_m=500, corridor_m=100)
    reaches, units = result
    metric = gpd.GeoDataFrame(geometry=riv.geometry, crs=4326).estimate_utm_crs()
    city = adm[adm["level"] == "city"].to_crs(metric)
    inside = shapely.intersection(riv.to_crs(metric).geometry.iloc[0], city.geometry.iloc[0]).length
    assert reaches["length_m"].sum() == pytest.approx(inside, rel=1e-4)
    districts = adm[adm["level"] == "county"].to_crs(metric).set_index("admin_code").geometry
    r = reaches.to_crs(metric)
    crossed = set(r["admin_code"]) | set(r["right_code"].dropna())
    assert len(crossed) >= 3  # the Xiang crosses several real districts
    nb = r[~r["boundary"]]
    own = np.asarray(districts.loc[nb["admin_code"]].array)
    out = shapely.length(
        shapely.difference(np.asarray(nb.geometry.array), shapely.buffer(own, 0.01))
    )
    assert (out < 0.05).all()
    assert (reaches["length_m"] <= 5000 + 1e-6).all()
    short = reaches["length_m"] < 500
    flagged = {p.code for p in result.report.problems}
    assert not short.any() or "short_piece" in flagged
    ug = np.asarray(units.to_crs(metric).geometry.array)
    assert shapely.area(shapely.union_all(ug)) == pytest.approx(shapely.area(ug).sum(), rel=1e-6)
    assert units["unit_id"].is_unique


# ----------------------------------------------------------------------------- crossings


def test_crossing_measures_match_geos_including_collinear():
    from gridkit.rivers.linesplit import crossing_measures, polygon_edges

    adm = voronoi_tiling(5, 12)
    edges = polygon_edges(np.asarray(adm.geometry.array))
    lines = [random_river(s) for s in range(6)]
    # one line running along a boundary edge for a while (collinear overlap)
    e = edges[len(edges) // 2]
    d = (e[2:] - e[:2]) / 4
    lines.append(
        LineString([e[:2] - d + (0, 300), e[:2] + d, e[:2] + 3 * d, e[:2] + 3 * d + (300, 0)])
    )
    t = LineTable.from_lines(lines)
    line, m = crossing_measures(t, edges)
    bnd = shapely.union_all(shapely.boundary(np.asarray(adm.geometry.array)))
    for i, g in enumerate(lines):
        parts = shapely.get_parts(shapely.line_merge(shapely.intersection(g, bnd)))
        if len(parts) and shapely.get_type_id(parts[0]) == 7:
            parts = shapely.get_parts(parts[0])
        ends = [shapely.get_point(p, 0) for p in parts if p.geom_type == "LineString"]
        ends += [shapely.get_point(p, -1) for p in parts if p.geom_type == "LineString"]
        pts = shapely.get_coordinates([p for p in parts if p.geom_type == "Point"] + ends)
        want = np.sort(shapely.line_locate_point(g, shapely.points(pts)))
        got = np.sort(m[line == i])
        # every GEOS meeting point is found (extra points at vertices are harmless)
        for w in want:
            assert np.min(np.abs(got - w)) < 1e-6


def test_box_pairs_match_strtree_query():
    from gridkit.rivers.linesplit import box_pairs

    rng = np.random.default_rng(4)
    for trial in range(150):
        na, nb = rng.integers(0, 50, 2)

        def boxes(n):
            lo = np.round(rng.uniform(0, 20, (n, 2)), int(rng.integers(0, 2)))
            ext = np.round(rng.exponential(rng.choice([0.5, 3.0, 10.0]), (n, 2)))
            if rng.random() < 0.2:
                ext[:, 1] = 0.0  # flat boxes, boxes touching at integer coordinates
            return lo, lo + ext

        alo, ahi = boxes(na)
        blo, bhi = boxes(nb)
        got = box_pairs(alo, ahi, blo, bhi)
        if got is None:  # too degenerate for a grid: callers fall back to the tree
            continue
        pairs = list(zip(got[0].tolist(), got[1].tolist(), strict=True))
        want = set()
        if na and nb:
            tree = shapely.STRtree(shapely.linestrings(np.stack([blo, bhi], axis=1)))
            i, j = tree.query(shapely.linestrings(np.stack([alo, ahi], axis=1)))
            want = set(zip(i.tolist(), j.tolist(), strict=True))
        assert len(pairs) == len(set(pairs)) and set(pairs) == want, trial
    # one box far larger than the rest: no grid
    lo = np.zeros((3, 2))
    hi = np.array([[1.0, 1.0], [1.0, 1.0], [1e7, 1e7]])
    assert box_pairs(lo, hi, lo, hi, budget=100) is None


def test_dwithin_pairs_match_tree_query():
    from gridkit.rivers.network import _dwithin_pairs

    rng = np.random.default_rng(5)
    for _ in range(60):
        n = int(rng.integers(1, 20))
        lines = []
        for _ in range(n):
            xy = np.cumsum(rng.normal(0, 3, (rng.integers(2, 60), 2)), axis=0)
            xy += rng.uniform(0, 50, 2)
            lines.append(LineString(np.round(xy) if rng.random() < 0.3 else xy))
        lines = np.array(lines)
        group = rng.integers(0, 4, n)
        tree = shapely.STRtree(lines)
        xy, pidx = shapely.get_coordinates(lines, return_index=True)
        pts = np.r_[
            shapely.get_point(lines, 0),
            shapely.get_point(lines, -1),
            shapely.points(np.round(rng.uniform(0, 50, (20, 2)))),
        ]
        pg = rng.integers(0, 4, len(pts))
        for d in (0.5, 1.0, 50.0):
            i, j = tree.query(pts, predicate="dwithin", distance=d)
            other = pg[i] != group[j]
            got = _dwithin_pairs(tree, pts, d, xy, pidx, pt_group=pg, line_group=group)
            # same pairs in the same order (the caller keeps the last hit per point)
            np.testing.assert_array_equal(got[0], i[other])
            np.testing.assert_array_equal(got[1], j[other])


def test_net_edges_chain_and_unique_edges():
    from gridkit.rivers.admin import _net_edges, _overlap_free_union
    from gridkit.rivers.linesplit import polygon_edges

    adm = np.asarray(voronoi_tiling(3, 15).geometry.array)
    # a hole, a multipolygon and an overlapping square
    adm[0] = shapely.difference(adm[0], shapely.buffer(shapely.centroid(adm[0]), 50))
    adm[1] = shapely.union(adm[1], box(X0 + 30_000, Y0, X0 + 31_000, Y0 + 1_000))
    for geoms in (adm[:-1], adm, np.r_[adm, [box(X0, Y0, X0 + 5_000, Y0 + 5_000)]]):
        chain, edges = _net_edges(geoms)
        want = polygon_edges(geoms)
        np.testing.assert_array_equal(edges[np.lexsort(edges.T[::-1])], want)
        assert np.array_equal(chain, chain[np.lexsort(chain[:, :4].T[::-1])])
        assert set(np.abs(chain[:, 4]).tolist()) <= {1.0, 2.0}
    assert _overlap_free_union(adm) is not None
    assert _overlap_free_union(np.r_[adm, [box(X0, Y0, X0 + 5_000, Y0 + 5_000)]]) is None


def test_flow_order_matches_lexsort():
    from gridkit.rivers.split import _flow_order

    rng = np.random.default_rng(6)
    for trial in range(200):
        n_parts = int(rng.integers(1, 30))
        part_river = np.sort(rng.integers(0, 5, n_parts))
        part_order = np.zeros(n_parts, dtype=np.int64)
        for r in np.unique(part_river):
            idx = np.flatnonzero(part_river == r)
            part_order[idx] = rng.permutation(len(idx))
        part = np.sort(rng.integers(0, n_parts, int(rng.integers(0, 60))))
        m = np.zeros(len(part))
        for q in np.unique(part):
            i = np.flatnonzero(part == q)
            m[i] = np.sort(rng.choice(1000, len(i), replace=False)).astype(float)
        if trial % 5 == 0 and len(part) > 2:
            m[::-1].sort()  # not in measure order: the general path
        want = np.lexsort((m, part_order[part], part_river[part]))
        np.testing.assert_array_equal(_flow_order(part, m, part_river, part_order), want)


# ----------------------------------------------------------------------------- spill


def test_corridor_spill_into_neighbour_is_not_dropped():
    # the river stays 30 m west of the border (x = X0 + 10 km) for 300 m: its corridor
    # spills 20 m into the east square, where the river has no reach
    adm = two_squares()
    bx = X0 + 10_000
    line = LineString(
        [
            (X0 + 2000, Y0 + 5000),
            (bx - 400, Y0 + 5000),
            (bx - 30, Y0 + 5400),
            (bx - 30, Y0 + 5700),
            (bx - 400, Y0 + 6100),
            (X0 + 2000, Y0 + 6100),
        ]
    )
    result = quiet_split(rivers([line]), adm, max_length_m=2000, corridor_m=50)
    reaches, units = result
    assert not reaches["boundary"].any() and set(reaches["admin_code"]) == {"430202001"}
    zone = shapely.intersection(shapely.buffer(line, 50), shapely.union_all(adm.geometry.array))
    ug = np.asarray(units.geometry.array)
    assert shapely.area(shapely.difference(zone, shapely.union_all(ug))) < 1.0
    assert shapely.area(shapely.union_all(ug)) == pytest.approx(shapely.area(ug).sum(), rel=1e-9)
    spill = units[units["admin_code"] == "430202002"]
    assert len(spill) == 1
    s = spill.iloc[0]
    assert s["unit_id"] == f"{s['reach_id']}@430202002"
    assert s["reach_id"] in set(reaches["reach_id"]) and s["length_m"] == 0
    # flowing north along the border, the east square is on the right bank
    assert s["bank"] == "right"
    assert s["area_m2"] == pytest.approx(
        shapely.area(shapely.difference(zone, adm.geometry.iloc[0])), rel=1e-3
    )
    assert "corridor_spill" in {p.code for p in result.report.problems}
    # every unit lies in its own area
    areas = adm.set_index("admin_code").geometry
    own = np.asarray(areas.loc[units["admin_code"]].array)
    assert (shapely.area(shapely.difference(ug, shapely.buffer(own, 1e-6))) < 1e-3).all()


def test_crossing_corridor_triangles_merge_into_own_units():
    # an oblique crossing: the bits of corridor beyond the cut join the first unit on
    # the other side instead of being lost or becoming slivers
    line = LineString([(X0 + 6000, Y0 + 2000), (X0 + 14_000, Y0 + 8000)])
    result = quiet_split(rivers([line]), two_squares(), max_length_m=20_000, corridor_m=50)
    _, units = result
    assert len(units) == 2 and "corridor_spill" not in {p.code for p in result.report.problems}
    zone = shapely.buffer(line, 50)
    ug = np.asarray(units.geometry.array)
    assert shapely.area(shapely.union_all(ug)) == pytest.approx(shapely.area(zone), rel=1e-6)
    assert shapely.area(shapely.union_all(ug)) == pytest.approx(shapely.area(ug).sum(), rel=1e-9)


# ----------------------------------------------------------------------------- shoreline


def _lake_frame(geom, wid="W1"):
    return gpd.GeoDataFrame(
        {"water_body_id": [wid], "name": ["湖"], "kind": ["lake"]}, geometry=[geom], crs=UTM
    )


@pytest.mark.parametrize("shape", ["box", "blob", "ring"])
def test_large_water_body_split_by_shoreline(shape):
    c = Point(X0 + 5000, Y0 + 5000)
    if shape == "box":
        lake = box(X0 + 3000, Y0 + 4000, X0 + 7000, Y0 + 6000)
    elif shape == "blob":
        ang = np.linspace(0, 2 * np.pi, 200, endpoint=False)
        r = 1500 + 600 * np.sin(3 * ang) + 200 * np.cos(7 * ang)
        lake = shapely.Polygon(np.c_[c.x + r * np.cos(ang), c.y + r * np.sin(ang)])
    else:  # an island in the lake
        lake = shapely.difference(c.buffer(2000), c.buffer(500))
    line = LineString([(X0 + 1000, Y0 + 9000), (X0 + 9000, Y0 + 9000)])
    shore = lake.exterior.length
    result = quiet_split(
        rivers([line]),
        two_squares(),
        max_length_m=2000,
        water_bodies=_lake_frame(lake),
        max_shoreline_m=3000,
    )
    w = result.units[result.units["kind"] == "water_body"]
    n = int(np.ceil(shore / 3000))
    assert len(w) == n
    assert w["unit_id"].tolist() == [f"430202001-W1-s{i:02d}" for i in range(1, n + 1)]
    g = np.asarray(w.geometry.array)
    assert (shapely.get_type_id(g) == 3).all()  # one Polygon each
    # exact tiling up to the 0.1 mm snapping grid (< 1 m², the validation tolerance)
    assert shapely.area(g).sum() == pytest.approx(lake.area, abs=1.0)
    assert shapely.area(shapely.union_all(g)) == pytest.approx(lake.area, abs=1.0)
    assert shapely.area(shapely.difference(shapely.union_all(g), lake)) < 1e-3
    # roughly equal shoreline each, none much above the maximum
    shore_band = shapely.buffer(lake.exterior, 1e-3)
    own_shore = shapely.length(shapely.intersection(shapely.boundary(g), shore_band))
    assert own_shore.sum() == pytest.approx(shore, rel=1e-3)
    assert own_shore.max() <= 3000 * 1.1
    assert own_shore.min() >= shore / n * 0.75
    # small water bodies stay whole; the option is checked
    small = quiet_split(
        rivers([line]),
        two_squares(),
        max_length_m=2000,
        water_bodies=_lake_frame(lake),
        max_shoreline_m=1e6,
    )
    assert (small.units["kind"] == "water_body").sum() == 1
    with pytest.raises(GridkitError):
        split_rivers(rivers([line]), two_squares(), max_length_m=2000, max_shoreline_m=0)


# ----------------------------------------------------------------------------- validity


def _assert_valid_polygons(units):
    g = np.asarray(units.geometry.array)
    assert (shapely.get_type_id(g) == 3).all()
    bad = ~shapely.is_valid(g)
    assert not bad.any(), list(units["unit_id"][bad])
    # still valid once brought back to metres (how validate_units checks overlaps)
    back = np.asarray(units.to_crs(units.estimate_utm_crs()).geometry.array)
    assert shapely.is_valid(back).all()


@pytest.mark.parametrize("max_len", [5000, 3000])
@pytest.mark.parametrize("min_len", [None, 500])
def test_real_sample_units_valid(zhuzhou, max_len, min_len):
    # spill pieces merged back onto their unit used to leave zero-width spikes (vertices
    # 1e-10 m apart): valid in UTM, self-intersecting after reprojection to WGS84
    from gridkit.validate import validate_units

    adm, riv = zhuzhou
    result = quiet_split(riv, adm, max_length_m=max_len, min_length_m=min_len)
    _assert_valid_polygons(result.units)
    check = validate_units(
        result.units, reaches=result.reaches, admin_areas=adm, max_length_m=max_len
    )
    assert check.ok, check
    assert result.units["area_m2"].min() >= 100.0
    assert "repaired_geometry" not in {p.code for p in result.report.problems}


def test_synthetic_demo_units_valid_and_no_slivers(zhuzhou):
    from gridkit.synth import sample_layers
    from gridkit.validate import validate_units

    adm, riv = zhuzhou
    layers = sample_layers(admin=adm, river=riv)
    result = quiet_split(
        layers["rivers"],
        layers["admin_areas"],
        water_bodies=layers["water_bodies"],
        corridor_m=50,
        max_length_m=3000,
        min_length_m=500,
    )
    units = result.units
    _assert_valid_polygons(units)
    check = validate_units(
        units, reaches=result.reaches, admin_areas=layers["admin_areas"], max_length_m=3000
    )
    assert check.ok, check
    metric = units.to_crs(units.estimate_utm_crs())
    assert shapely.area(np.asarray(metric.geometry.array)).min() >= 100.0 - 1e-6
    assert units["area_m2"].min() >= 100.0
    codes = {p.code for p in result.report.problems}
    assert "sliver_merged" in codes and "repaired_geometry" not in codes
    assert result.report.figures["corridor_slivers_merged"] > 0


def test_sliver_threshold_option():
    # a spill with no unit of its own area to share an edge with is kept, whatever the
    # threshold (merging into a unit of another area would break the admin rule)
    adm = two_squares()
    bx = X0 + 10_000
    line = LineString(
        [
            (X0 + 2000, Y0 + 5000),
            (bx - 400, Y0 + 5000),
            (bx - 30, Y0 + 5400),
            (bx - 30, Y0 + 5700),
            (bx - 400, Y0 + 6100),
            (X0 + 2000, Y0 + 6100),
        ]
    )
    kept = quiet_split(rivers([line]), adm, max_length_m=2000, corridor_m=50)
    assert (kept.units["admin_code"] == "430202002").sum() == 1
    # the spill touches no unit of its own area: nothing to merge into, so it is kept
    big = quiet_split(rivers([line]), adm, max_length_m=2000, corridor_m=50, sliver_m2=1e5)
    assert (big.units["admin_code"] == "430202002").sum() == 1
    with pytest.raises(GridkitError):
        split_rivers(rivers([line]), adm, max_length_m=2000, sliver_m2=-1)


def test_invalid_unit_after_reprojection_is_repaired_and_reported():
    from gridkit.rivers.split import _reproject_units
    from gridkit.validate import ValidationReport

    bowtie = shapely.Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    units = gpd.GeoDataFrame(
        {"unit_id": ["U1", "U2"]}, geometry=[bowtie, box(X0, Y0, X0 + 9, Y0 + 9)], crs=UTM
    )
    report = ValidationReport()
    out = _reproject_units(units, 4326, report)
    assert shapely.is_valid(np.asarray(out.geometry.array)).all()
    assert (shapely.get_type_id(np.asarray(out.geometry.array)) == 3).all()
    assert [p.code for p in report.problems] == ["repaired_geometry"]
    assert report.problems[0].rows == ("U1",)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_areas=st.integers(2, 25),
    n_rivers=st.integers(1, 4),
    max_len=st.floats(300, 5000),
    corridor=st.floats(10, 120),
)
def test_properties_units_always_valid(seed, n_areas, n_rivers, max_len, corridor):
    # inputs in WGS84, so every unit goes through the reprojection back to lon/lat
    adm = voronoi_tiling(seed, n_areas).to_crs(4326)
    riv = rivers([random_river(seed * 7 + k) for k in range(n_rivers)]).to_crs(4326)
    result = quiet_split(
        riv, adm, max_length_m=max_len, min_length_m=0.2 * max_len, corridor_m=corridor
    )
    if len(result.units):
        _assert_valid_polygons(result.units)
        assert "repaired_geometry" not in {p.code for p in result.report.problems}


# ----------------------------------------------------------------------------- overlaps

_OVERLAP_CASE = Path(__file__).parent / "data" / "corridor_overlap_case.json"


def _overlap_case() -> dict:
    return json.loads(_OVERLAP_CASE.read_text(encoding="utf-8"))


def test_corridor_units_never_overlap_degenerate_spill_case():
    """Found by test_properties_random_networks (seed 1788): area 430202005 less the
    corridor of its own reaches left a 9e-11 m² collapsed triangle beside the real
    polygon; GEOS then intersected the spill of area 430202001's reaches with it as if
    the spill lay wholly inside, and the bank unit 430202005+430202016-R4-001-R
    swallowed 20,600 m² of areas 430202001 and 430202016, overlapping 7 units."""
    from gridkit.validate import validate_units

    case = _overlap_case()
    crs = case["crs"]
    riv = rivers(list(map(shapely.from_wkt, case["rivers"].values())), list(case["rivers"]))
    adm = admin(
        list(map(shapely.from_wkt, case["admin_areas"].values())), list(case["admin_areas"])
    )
    assert riv.crs.to_epsg() == adm.crs.to_epsg() == crs
    max_len = case["max_length_m"]
    result = quiet_split(
        riv,
        adm,
        max_length_m=max_len,
        min_length_m=case["min_length_m"],
        corridor_m=case["corridor_m"],
    )
    units = result.units
    ug = np.asarray(units.geometry.array)
    # brute force: every pair of units, not only the ones a tree proposes
    i, j = np.triu_indices(len(ug), 1)
    pair = shapely.area(shapely.intersection(ug[i], ug[j]))
    ids = units["unit_id"].to_numpy()
    bad = pair >= 0.1
    assert not bad.any(), [
        f"{a}/{b} {v:.0f} m²" for a, b, v in zip(ids[i[bad]], ids[j[bad]], pair[bad], strict=True)
    ]
    union = shapely.area(shapely.union_all(ug))
    assert union == pytest.approx(shapely.area(ug).sum(), rel=1e-6, abs=1.0)
    # every unit inside its own area; the bank unit that overflowed is its right bank's
    areas = adm.set_index("admin_code").geometry
    own = np.asarray(areas.loc[units["admin_code"]].array)
    assert (shapely.area(shapely.difference(ug, own)) < 0.1).all()
    bank = units.set_index("unit_id").loc["430202005+430202016-R4-001-R"]
    assert (bank["admin_code"], bank["bank"]) == ("430202005", "right")
    assert bank["area_m2"] < 250 * 40 * 2  # one bank of a 250 m reach, 40 m corridor
    check = validate_units(units, reaches=result.reaches, admin_areas=adm, max_length_m=max_len)
    assert not {"overlap", "outside_admin_area"} & {p.code for p in check.problems}, check


def test_available_area_drops_collapsed_parts():
    """The spill zone of an area is cut from what its reaches left (``avail``); a
    collapsed 9e-11 m² part of it made GEOS return the whole spill as inside."""
    from gridkit.rivers.corridors import _available

    z = _overlap_case()["spill_zone"]
    avail, spill = shapely.from_wkt(z["avail"]), shapely.from_wkt(z["spill"])
    parts = shapely.get_parts(avail)
    assert shapely.area(parts).min() < 1e-9 and not shapely.intersects(spill, parts[0])
    got = _available(avail, None)
    assert shapely.get_type_id(got) == 3 and got.equals(parts[0])
    # the spill lies outside: the zone cut from the cleaned area is empty
    assert shapely.area(shapely.intersection(spill, got)) == 0.0
    # without claims and without collapsed parts the area is passed through as it is
    assert _available(parts[0], None) is parts[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.floats(-80.0, 80.0), min_size=4, max_size=12),
    st.lists(
        st.sampled_from(
            [-3000.0, -2500.0, -20.0, 300.0, 5000.0, 9990.0, 10030.0, 12000.0, 13000.0]
        ),
        min_size=4,
    ),
)
def test_river_measured_whole_sampled_only_where_the_tiling_is(dx, ys):
    """A river weaving along the line between two areas and far out of the tiling's
    box: its reaches (boundary runs included) are those of sampling the whole line,
    which a far-away extra area forces (the tiling's box then covers every vertex)."""
    w = 10_000.0
    xy = [(X0 + w + d, Y0 + y) for d, y in zip(dx, ys * len(dx), strict=False)]
    line = LineString(xy)
    if line.length < 1 or not line.is_simple:
        return
    adm = two_squares(w)
    far = admin(
        [
            box(X0 - 50_000, Y0 - 50_000, X0 - 49_900, Y0 - 49_900),
            box(X0 + 60_000, Y0 + 60_000, X0 + 60_100, Y0 + 60_100),
        ],
        codes=["430202998", "430202999"],
    )
    both = gpd.GeoDataFrame(pd.concat([adm, far], ignore_index=True), crs=UTM)
    options = {"max_length_m": 1500.0, "corridor_m": 50.0}
    got, _ = quiet_split(rivers([line]), adm, **options)
    want, _ = quiet_split(rivers([line]), both, **options)
    assert got["reach_id"].tolist() == want["reach_id"].tolist()
    assert got["boundary"].tolist() == want["boundary"].tolist()
    assert (got["length_m"].to_numpy() == want["length_m"].to_numpy()).all()
    ga, gb = np.asarray(got.geometry.array), np.asarray(want.geometry.array)
    assert shapely.equals_exact(ga, gb, tolerance=0).all()


def test_boundary_river_out_and_back_keeps_its_runs():
    """Along the line between two areas, out of the tiling for 6 km and back: two
    boundary stretches, not bridged over the stretch outside."""
    w = 10_000.0
    line = LineString(
        [
            (X0 + w, Y0 + 2000),
            (X0 + w, Y0 + 9900),
            (X0 + w, Y0 + 13000),
            (X0 + w + 10, Y0 + 9000),
            (X0 + w + 10, Y0 + 3000),
        ]
    )
    got, _ = quiet_split(rivers([line]), two_squares(w), max_length_m=20_000.0, corridor_m=50.0)
    assert got["boundary"].sum() == 2


def _gappy_tiling(seed: int, n: int = 30):
    """A Voronoi tiling of 20 km x 20 km across 10 km gap cells, each area shrunk by a
    random 0-6 m: thin gaps everywhere, some crossing a cell line."""
    adm = voronoi_tiling(seed, n)
    rng = np.random.default_rng(seed)
    shrink = rng.uniform(0.0, 6.0, len(adm))
    adm["geometry"] = shapely.buffer(np.asarray(adm.geometry.array), -shrink, join_style="mitre")
    return adm


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000))
def test_thin_gaps_by_cell_cover_the_gaps_of_the_whole_union(seed):
    """Brute force: the closing of the whole union. Cell by cell the same gaps are found
    (cut at the cell lines), to float noise."""
    from gridkit.rivers.admin import _thin_gaps

    adm = _gappy_tiling(seed)
    g = np.asarray(adm.geometry.array)
    union = shapely.union_all(g)
    closed = shapely.buffer(
        shapely.buffer(union, 10.0, join_style="mitre"), -10.0, join_style="mitre"
    )
    whole = shapely.difference(closed, union)
    cells = shapely.union_all(_thin_gaps(g, 10.0))
    assert whole.area > 1000  # the test has gaps to find
    assert shapely.symmetric_difference(whole, cells).area < 1e-6 * whole.area + 1e-3


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000))
def test_clean_tiling_does_not_depend_on_the_extent(seed):
    """An area cleaned in a tiling cut down to the cells around it (plus the areas
    within reach of them) comes out bit for bit as in the whole tiling."""
    from gridkit.rivers.admin import GAP_CELL_M, clean_tiling, gap_cells, gap_reach
    from gridkit.validate import ValidationReport

    adm = _gappy_tiling(seed, n=40)
    whole = clean_tiling(adm, snap_m=10.0, report=ValidationReport())
    # the area whose surroundings are the fewest cells, so the tiling is cut down
    near = [
        gap_cells(shapely.bounds(g).reshape(1, 4) + np.r_[-100, -100, 100, 100])
        for g in whole.geoms
    ]
    k = int(np.argmin([len(c) for c in near]))
    cells = near[k]
    lo, r = cells * GAP_CELL_M, gap_reach(10.0)
    grown = shapely.box(
        lo[:, 0] - r, lo[:, 1] - r, lo[:, 0] + GAP_CELL_M + r, lo[:, 1] + GAP_CELL_M + r
    )
    src = np.asarray(adm.geometry.array)
    keep = np.unique(shapely.STRtree(src).query(grown, predicate="intersects")[1])
    part = clean_tiling(adm.iloc[keep], snap_m=10.0, report=ValidationReport())
    code = whole.codes[k]
    assume(len(part) < len(whole))  # a cut tiling (a seed may give one area's cells all)
    j = list(part.codes).index(code)
    assert shapely.equals_exact(part.geoms[j], whole.geoms[k], tolerance=0)
