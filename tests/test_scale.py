"""Partitioned runs (gridkit.scale) against single-process runs on the same data.

Small national datasets (two provinces, a river and a community cut by the line);
the Dask case runs a LocalCluster of 2 workers and is skipped without the extra.
"""

from __future__ import annotations

import importlib.util
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit import hotspots, locate, patrol_compliance, split_communities, split_rivers
from gridkit.errors import GridkitError
from gridkit.national import build_national
from gridkit.scale import Engine, Frames, split_communities_partitioned
from gridkit.scale.ops import (
    compliance_partitioned,
    hotspots_partitioned,
    locate_partitioned,
    sort_rows,
)
from gridkit.scale.rivers import split_rivers_partitioned

HAS_DASK = all(importlib.util.find_spec(m) for m in ("dask", "distributed", "dask_geopandas"))
RIVER_OPTIONS = {"max_length_m": 2000.0, "corridor_m": 50.0}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return build_national(0.0002, tmp_path_factory.mktemp("nat"), seed=0)


@pytest.fixture(scope="module")
def clean_ds(tmp_path_factory):
    # seed 3: no city has edge noise between its communities (see the xfail below)
    return build_national(0.0002, tmp_path_factory.mktemp("nat3"), seed=3)


@pytest.fixture(scope="module")
def part_units(ds):
    return split_communities_partitioned(ds, max_households=1000)


@pytest.fixture(scope="module")
def single_rivers(ds):
    admin = ds.read("admin_areas")
    villages = admin[admin["level"] == "village"].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reaches, units = split_rivers(ds.read("rivers"), villages, **RIVER_OPTIONS)
    return (
        reaches.sort_values("reach_id").reset_index(drop=True),
        units.sort_values("unit_id").reset_index(drop=True),
    )


def _same_layer(a, b, *, tol_m: float) -> None:
    """Same rows and values; geometry equal to ``tol_m`` (0: bit for bit)."""
    a, b = a.copy(), b.copy()
    a.attrs, b.attrs = {}, {}
    ga, gb = np.asarray(a.geometry.array), np.asarray(b.geometry.array)
    if tol_m:  # same shapes (a vertex more or less on a straight stretch allowed)
        assert (shapely.hausdorff_distance(ga, gb) <= tol_m).all()
    else:
        assert shapely.equals_exact(ga, gb, tolerance=0).all()
    cols = [c for c in b.columns if c != "geometry"]
    assert list(a.columns) == list(b.columns)
    for c in cols:
        if pd.api.types.is_float_dtype(b[c]):
            np.testing.assert_allclose(a[c], b[c], rtol=1e-12, atol=tol_m)
        else:
            assert (
                a[c].astype(object).where(a[c].notna(), None).tolist()
                == b[c].astype(object).where(b[c].notna(), None).tolist()
            ), c


def test_rivers_by_province_equal_single_process(ds, single_rivers):
    reaches, units = split_rivers_partitioned(ds, **RIVER_OPTIONS)
    sr, su = single_rivers
    # a river cut by the province line: its reaches come from both partitions
    provinces = sr.groupby("river_id")["admin_code"].agg(lambda s: s.str[:2].nunique())
    assert (provinces > 1).any()
    # ids, admin codes, seq along the whole river, lengths and geometry: bit for bit
    # (split_rivers measures every river along its whole line, whatever the tiling)
    _same_layer(reaches, sr, tol_m=0)
    _same_layer(units, su, tol_m=0)
    assert reaches["reach_id"].tolist() == sr["reach_id"].tolist()
    assert reaches["seq"].tolist() == sr["seq"].tolist()


def _three_provinces() -> Frames:
    """Three provinces of 2 km villages in a row (x 0-20, 20-40, 40-60 km), a river
    winding west to east through all three with a tributary joining in the middle one,
    and a short river along the line between the first two (a boundary river)."""
    x0, y0 = 500_000.0, 3_000_000.0
    cells, codes = [], []
    for p, pp in enumerate(["43", "44", "45"]):
        for k in range(50):
            x, y = x0 + p * 20_000 + (k // 5) * 2000, y0 + (k % 5) * 2000
            cells.append(shapely.box(x, y, x + 2000, y + 2000))
            codes.append(f"{pp}0101001{k + 1:03d}")
    admin = gpd.GeoDataFrame(
        {"admin_code": codes, "name": codes, "level": "village"}, geometry=cells, crs=32649
    )
    xs = np.arange(-500.0, 60_600.0, 100.0)
    main = shapely.LineString(np.c_[x0 + xs, y0 + 5000 + 3000 * np.sin(2 * np.pi * xs / 15_000)])
    join = shapely.get_coordinates(main)[305]  # a vertex of the main stem, at 30 km
    tributary = shapely.LineString([(x0 + 31_000, y0 + 9900), tuple(join)])
    along = shapely.LineString([(x0 + 20_010, y0 + 500), (x0 + 20_010, y0 + 3500)])
    rivers = gpd.GeoDataFrame(
        {
            "river_id": ["R1", "R1-1", "R2"],
            "name": ["干流", "支流", "界河"],
            "parent_river_id": [None, "R1", None],
        },
        geometry=[main, tributary, along],
        crs=32649,
    )
    return Frames({"admin_areas": admin, "rivers": rivers})


def test_middle_province_splits_only_its_own_pieces_of_a_long_river():
    src = _three_provinces()
    reaches, units = split_rivers_partitioned(src, **RIVER_OPTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sr, su = split_rivers(src.read("rivers"), src.read("admin_areas"), **RIVER_OPTIONS)
    sr = sr.sort_values("reach_id").reset_index(drop=True)
    su = su.sort_values("unit_id").reset_index(drop=True)
    assert sr[sr["river_id"] == "R1"]["admin_code"].str[:2].nunique() == 3
    assert sr["boundary"].any()  # the river along the line between 43 and 44
    _same_layer(reaches, sr, tol_m=0)  # ids, codes, seq, lengths, geometry: bit for bit
    _same_layer(units, su, tol_m=0)
    # the middle task read the whole basin but split only its own pieces and the
    # halo's, not the others': villages within 5 km of its own, and those deciding the
    # thin gaps of the 10 km cells these lie in (x 8-52 km)
    parts = reaches.attrs["partitions"].set_index("key")
    middle = parts.loc["44"]
    near = shapely.box(508_000, 2_990_000, 552_000, 3_020_000)
    lines = np.asarray(src.read("rivers").geometry.array)
    assert middle["river_m"] == pytest.approx(shapely.length(lines).sum())
    assert middle["split_m"] <= shapely.length(shapely.intersection(lines, near)).sum() + 1e-6
    assert middle["split_m"] < 0.8 * middle["river_m"]
    assert middle["areas"] == 50 + 2 * 6 * 5  # its 50 villages and 6 columns each side
    assert middle["split"] < len(sr)


def test_border_community_units_equal_its_single_process_units(ds, part_units):
    units = part_units
    comm, bld = ds.read("communities"), ds.read("buildings")
    cut = comm[comm["community_id"].str.contains("-C9")]
    assert len(cut) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = split_communities(cut, bld, max_households=1000)
    got = units[units["parent_id"] == cut["community_id"].iloc[0]].reset_index(drop=True)
    alone = alone.sort_values("unit_id").reset_index(drop=True)
    assert len(got) > 1
    _same_layer(got, alone, tol_m=0)
    # its buildings on the far side of the line were read from the other partition
    parts = units.attrs["partitions"].set_index("key")
    owner = cut["admin_code"].iloc[0][:4]
    assert parts.loc[owner, "buildings"] > (bld["community_id"].str[:4] == owner).sum() - 1


def test_every_community_splits_as_it_does_alone(ds, part_units):
    """Partitioning adds nothing: each community's units are those of a run on its
    partition's communities alone (which is what the engine does)."""
    units = part_units
    comm, bld = ds.read("communities"), ds.read("buildings")
    for key in ds.partitions("city"):
        mine = comm[comm["admin_code"].str.startswith(key)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = split_communities(mine, bld, max_households=1000)
        ref = ref.sort_values("unit_id").reset_index(drop=True)
        got = units[units["admin_code"].str.startswith(key)].reset_index(drop=True)
        _same_layer(got, ref, tol_m=0)


def test_communities_by_city_equal_whole_country_run(clean_ds):
    units = split_communities_partitioned(clean_ds, max_households=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = split_communities(
            clean_ds.read("communities"), clean_ds.read("buildings"), max_households=1000
        )
    whole = whole.sort_values("unit_id").reset_index(drop=True)
    assert units["parent_id"].str.contains("-C9").any()  # the community cut by the line
    assert units["unit_id"].tolist() == whole["unit_id"].tolist()
    _same_layer(units, whole, tol_m=0)


def test_communities_equal_when_only_one_city_has_edge_noise(ds, part_units):
    units = part_units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = split_communities(ds.read("communities"), ds.read("buildings"), max_households=1000)
    whole = whole.sort_values("unit_id").reset_index(drop=True)
    assert units["unit_id"].tolist() == whole["unit_id"].tolist()
    _same_layer(units, whole, tol_m=0)


@pytest.fixture(scope="module")
def units(ds, part_units):
    _, river_units = split_rivers_partitioned(ds, **RIVER_OPTIONS)
    return gpd.GeoDataFrame(
        pd.concat([part_units, river_units], ignore_index=True), crs=part_units.crs
    )


@pytest.fixture(scope="module")
def assignments(ds, units):
    """Each community grid to its community's first grid worker, each river unit to
    its village's first river patroller."""
    workers = set(ds.read("workers")["worker_id"])
    grid = units["kind"] == "community_grid"
    worker = np.where(
        grid,
        units["parent_id"].astype(str) + "-G001",
        "W-RP-" + units["admin_code"].astype(str) + "-01",
    )
    a = pd.DataFrame({"unit_id": units["unit_id"], "worker_id": worker})
    return a[a["worker_id"].isin(workers)].reset_index(drop=True)


def test_locate_by_city_equals_single_process(ds, units):
    got = locate_partitioned(ds, units)
    want = locate(ds.read("reports"), units)
    got.attrs = {}
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(want))


def test_locate_far_points_are_placed_again_against_all_units(ds, units):
    got = locate_partitioned(ds, units, margin_m=1.0)  # a slice too thin on purpose
    want = locate(ds.read("reports"), units)
    assert got.attrs["relocated"] > 0
    got.attrs = {}
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(want))


def test_compliance_by_city_equals_single_process(ds, units, assignments):
    options = {"period": "2026-Q2", "now": "2026-07-01"}
    got = compliance_partitioned(ds, assignments, units, **options)
    want = patrol_compliance(
        ds.read("patrols"),
        assignments,
        units=units,
        workers=ds.read("workers"),
        river_chiefs=ds.read("river_chiefs"),
        **options,
    )
    pd.testing.assert_frame_equal(got, sort_rows(want))
    assert got["done"].sum() > 1000  # patrols count: the comparison is not empty
    sections = got[got["chief_id"].notna()]
    assert sections["done"].sum() > 0 and sections["admin_code"].str[:2].nunique() == 2


def test_hotspots_equal_single_process(ds, units):
    got = hotspots_partitioned(ds, units, permutations=99, seed=7)
    want = hotspots(ds.read("reports"), units, permutations=99, seed=7, draws="unit")
    got.attrs = {}
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(want), check_exact=True)
    assert (got["hotspot"] != "not significant").any()


def test_hotspot_cut_by_the_city_line_equals_single_process(ds, units):
    """Reports planted in the units on both sides of the line between two cities: Gi*
    runs per city, reading the units across the line as a halo, and every column
    equals the single-process run; without the halo the units at the line would
    score differently."""
    g = np.asarray(units.geometry.array)
    city = units["admin_code"].astype(str).str[:4].to_numpy()
    i, j = shapely.STRtree(g).query(g, predicate="intersects")
    cross = city[i] != city[j]
    seam = np.unique(np.r_[i[cross], j[cross]])
    assert len(set(city[seam])) == 2
    rng = np.random.default_rng(5)
    planted = np.repeat(seam, rng.integers(20, 40, len(seam)))
    background = rng.choice(len(units), 400)
    at = np.r_[planted, background]
    pts = shapely.point_on_surface(g[at])
    reports = gpd.GeoDataFrame(
        {"report_id": [f"R{city[k]}-{n:06d}" for n, k in enumerate(at)]},
        geometry=pts,
        crs=units.crs,
    )
    src = Frames({"admin_areas": ds.read("admin_areas"), "reports": reports})
    got = hotspots_partitioned(src, units, value="count", permutations=199, seed=3)
    want = hotspots(reports, units, value="count", permutations=199, seed=3, draws="unit")
    got.attrs = {}
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(want), check_exact=True)
    hot = got["hotspot"].str.startswith("hot").to_numpy()
    assert {c for c in city[seam[hot[seam]]]} == set(city[seam])  # hot on both sides
    # the halo matters: the seam units of one city scored on that city's units alone
    from gridkit.ops.hotspots import GiGlobals, gi_star, hotspot_values, queen_neighbours

    y = hotspot_values(got, "count")
    key = city[seam[0]]
    own = np.flatnonzero(city == key)
    alone = units.iloc[own]
    z, _ = gi_star(
        y[own],
        queen_neighbours(alone),
        alone["unit_id"].astype(str).to_numpy(),
        stats=GiGlobals.of(y),
        permutations=0,
    )
    at_line = np.isin(own, seam)
    assert not np.allclose(z[at_line], got["gi_z"].to_numpy()[own][at_line])
    # away from the line a city's units alone are all Gi* needs, bit for bit
    assert (got["gi_z"].to_numpy()[own][~at_line] == z[~at_line]).all()


@pytest.mark.skipif(not HAS_DASK, reason="needs the 'scale' extra (dask, distributed)")
@pytest.mark.timeout(240)
def test_localcluster_with_two_workers_gives_the_serial_answer(ds, part_units):
    serial = split_rivers_partitioned(ds, **RIVER_OPTIONS)
    serial_units = part_units
    with Engine.local(2, memory_limit="2GiB") as engine:
        assert engine.workers == 2
        reaches, units = split_rivers_partitioned(ds, engine=engine, **RIVER_OPTIONS)
        cunits = split_communities_partitioned(ds, engine=engine, max_households=1000)
    _same_layer(reaches, serial[0], tol_m=0)
    _same_layer(units, serial[1], tol_m=0)
    _same_layer(cunits, serial_units, tol_m=0)


def test_staffing_by_province_equals_single_process_where_both_prove_the_optimum(ds, part_units):
    from gridkit.scale.staffing import assign_partitioned
    from gridkit.staffing import assign_workers

    workers = ds.read("workers")
    workers = workers[workers["worker_id"].str.contains("-G")].reset_index(drop=True)
    options = {"method": "mip", "time_limit_s": 60.0, "valid_from": "2026-01-01"}
    part = assign_partitioned(part_units, workers, by="province", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = assign_workers(part_units, workers, **options)
    assert whole.gap < 1e-6 and part.gap < 1e-6  # both optimal: the answers must agree
    assert part.objective == pytest.approx(whole.objective, rel=1e-9)
    assert len(part.unassigned) == len(whole.unassigned)
    assert sorted(part.partitions["key"]) == ["11", "12"]
    with pytest.raises(GridkitError, match="beyond one city"):
        assign_partitioned(part_units, ds.read("workers"), by="city", **options)


def _chain_of_communities() -> Frames:
    """Three 1 km communities in a row: a1 (city 4302) touches b1 (city 4303) exactly,
    b1 and b2 (both 4303) meet with float noise (b1 reaches 0.3 mm into b2 at one end):
    one connected group across the city line, with noise only inside city 4303."""
    x0, y0 = 500_000.0, 3_000_000.0
    a1 = shapely.box(x0 + 0.0, y0, x0 + 1000, y0 + 1000)
    b1 = shapely.Polygon(
        [(x0 + 1000, y0), (x0 + 2000.0003, y0), (x0 + 2000, y0 + 1000), (x0 + 1000, y0 + 1000)]
    )
    b2 = shapely.box(x0 + 2000, y0, x0 + 3000, y0 + 1000)
    codes = ["430201001001", "430301001001", "430301001002"]
    comm = gpd.GeoDataFrame(
        {
            "community_id": [f"{c}-C01" for c in codes],
            "name": ["甲社区", "乙社区", "丙社区"],
            "admin_code": codes,
        },
        geometry=[a1, b1, b2],
        crs=32649,
    )
    rng = np.random.default_rng(2)
    xy = np.c_[rng.uniform(x0 + 5, x0 + 2995, 600), rng.uniform(y0 + 5, y0 + 995, 600)]
    owner = np.minimum((xy[:, 0] - x0) // 1000, 2).astype(int)
    bld = gpd.GeoDataFrame(
        {
            "building_id": [f"B{k:04d}" for k in range(len(xy))],
            "community_id": comm["community_id"].to_numpy()[owner],
            "households": rng.integers(1, 20, len(xy)),
        },
        geometry=shapely.box(xy[:, 0] - 4, xy[:, 1] - 4, xy[:, 0] + 4, xy[:, 1] + 4),
        crs=32649,
    )
    return Frames({"communities": comm, "buildings": bld})


def test_community_group_across_the_city_line_is_read_whole():
    """Edge snapping is decided per connected group: city 4302's task reads the group
    {a1, b1, b2} whole (b2 touches neither a1 nor its buildings), so a1 is snapped as in
    the whole run."""
    src = _chain_of_communities()
    units = split_communities_partitioned(src, max_households=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = split_communities(
            src.read("communities"), src.read("buildings"), max_households=500
        )
    whole = whole.sort_values("unit_id").reset_index(drop=True)
    assert units["unit_id"].tolist() == whole["unit_id"].tolist()
    _same_layer(units, whole, tol_m=0)
    parts = units.attrs["partitions"].set_index("key")
    assert parts.loc["4302", "halo"] == 2  # b1 touches a1; b2 only through b1
