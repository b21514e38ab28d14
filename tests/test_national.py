"""The national synthetic dataset: plan, codes, partitions, crossings, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit import codes
from gridkit.national import build_national, national_plan, national_rivers, open_national


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return build_national(0.0002, tmp_path_factory.mktemp("nat"), seed=3)


def test_plan_scales_by_cities_not_city_size():
    small, big = national_plan(0.1), national_plan(1.0)
    assert big.n_provinces == 31 and len(big.cities) > 300
    assert 45e6 < big.n_buildings < 55e6
    # a city's work stays about the same as the country grows
    assert 0.5 < small.buildings_per_city / big.buildings_per_city < 2
    with pytest.raises(ValueError, match="scale"):
        national_plan(0)


def test_codes_are_real_shaped_and_nested(ds):
    admin = ds.read("admin_areas")
    lv = codes.level(admin["admin_code"])
    assert (lv.to_numpy() == admin["level"].to_numpy()).all()
    child = admin[admin["level"] != "province"]
    parents = set(admin["admin_code"])
    assert child["parent_code"].isin(parents).all()
    comm = ds.read("communities")
    assert comm["admin_code"].isin(admin.loc[admin["level"] == "village", "admin_code"]).all()
    # the generator's placeholder codes (990200 ...) are all rewritten
    # bureaus D<county>-NN and the local handlers (township offices T, community
    # committees C, property companies P) of the city, all under its own codes
    departments = ds.read("departments")["department_id"]
    assert departments.str.match(r"^(D(11|12)01\d{2}-\d{2}|[TCP](11|12)01\d{5,}(-C\d+)?)$").all()
    assert departments.str.startswith(("T", "C", "P")).any()
    for layer, col in (("buildings", "building_id"), ("workers", "worker_id")):
        ids = ds.read(layer)[col]
        assert not ids.str.contains("990").any()
        assert ids.str.extract(r"(\d{12})")[0].dropna().str[:2].isin(["11", "12"]).all()


def test_partitioned_files_hold_their_own_rows(ds):
    for city in ds.partitions("city"):
        b = ds.read("buildings", cities=[city])
        assert b["community_id"].str.startswith(city).all()
    meta = json.loads((ds.path / "national.json").read_text(encoding="utf-8"))
    assert meta["rows"]["buildings"] == len(ds.read("buildings"))
    assert (ds.path / "buildings" / "province=11" / "city=1101" / "part.parquet").exists()


def test_a_river_crosses_the_province_line(ds):
    rivers = ds.read("rivers")
    line = shapely.LineString([(ds.plan.cities[1].box[0], -1e7), (ds.plan.cities[1].box[0], 1e7)])
    assert rivers.intersects(line).any()
    chiefs = ds.read("river_chiefs")
    per_river = chiefs.groupby("river_id")["admin_code"].agg(lambda s: s.str[:2].nunique())
    assert (per_river > 1).any()


def test_a_community_straddles_the_city_line(ds):
    comm = ds.read("communities")
    x = ds.plan.cities[1].box[0]
    cut = comm[comm.intersects(shapely.LineString([(x, -1e7), (x, 1e7)]))]
    assert len(cut) == 1 and cut["community_id"].str.contains("-C9").all()
    b = ds.read("buildings")
    mine = b[b["community_id"] == cut["community_id"].iloc[0]]
    cx = shapely.get_x(shapely.centroid(np.asarray(mine.geometry.array)))
    assert (cx < x).any() and (cx > x).any()  # buildings on both sides


def test_a_year_of_patrols_and_reports(ds):
    p = ds.read("patrols")
    assert (p["started_at"].dt.year == 2026).all() and (p["ended_at"] > p["started_at"]).all()
    w = ds.read("workers")
    assert p["worker_id"].isin(w["worker_id"]).all()
    assert w["worker_id"].is_unique
    r = ds.read("reports")
    assert r["report_id"].is_unique and set(r["source"]) <= {"patrol", "resident", "hotline"}


def test_same_seed_same_files(ds, tmp_path):
    again = build_national(0.0002, tmp_path, seed=3)
    for layer in ("buildings", "workers", "patrols"):
        pd.testing.assert_frame_equal(pd.DataFrame(ds.read(layer)), pd.DataFrame(again.read(layer)))
    assert open_national(tmp_path).plan == ds.plan


def test_rivers_generator_is_fast_at_1e5_km():
    import time

    plan = national_plan(0.34)  # ~10^5 km of river
    t0 = time.perf_counter()
    rivers = national_rivers(plan)
    assert time.perf_counter() - t0 < 10
    assert 0.9e5 < rivers.length.sum() / 1000 < 1.1e5


def test_cli_builds_and_splits_partitioned(tmp_path, capsys):
    from gridkit.cli.app import main

    out = tmp_path / "nat"
    assert main(["national", "build", "--scale", "0.0002", "-o", str(out), "--seed", "5"]) == 0
    assert "2 provinces, 2 cities" in capsys.readouterr().out
    assert main(["national", "split-rivers", str(out), "-o", str(tmp_path / "res")]) == 0
    assert (tmp_path / "res" / "reaches" / "province=12" / "city=1201" / "part.parquet").exists()
    assert main(["national", "build", "--scale", "9", "-o", str(out)]) == 2  # usage error
    assert "whole country" in capsys.readouterr().err


def test_missing_dask_names_the_extra(monkeypatch):
    import sys

    from gridkit.errors import MissingExtraError
    from gridkit.scale import require_dask

    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(MissingExtraError, match="scale") as exc:
        require_dask("gridkit national --engine dask")
    assert "gridkit[scale]" in exc.value.hint


def test_a_city_without_rivers_has_no_river_staff():
    plan = national_plan(0.0032, city_buildings=10_000)
    rivers = national_rivers(plan)
    dry = next(c for c in plan.cities if not rivers.intersects(shapely.box(*c.box)).any())
    from gridkit.national import city_layers

    layers = city_layers(plan, dry, rivers)
    assert len(layers["river_chiefs"]) == 0 and len(layers["patrols"]) > 0
    assert "home" not in layers["workers"].columns


def test_build_tasks_get_no_rivers_and_read_their_box(tmp_path):
    """Every build task used to receive the national rivers (O(country) per task); a
    task now reads the rivers of its box from the files, and builds the same layers."""
    import geopandas as gpd

    items: list = []

    def mapper(func, tasks):
        items.extend(tasks)
        return [func(t) for t in tasks]

    ds = build_national(0.0032, tmp_path, seed=2, city_buildings=10_000, mapper=mapper)
    assert len(items) == 18
    assert not any(isinstance(a, gpd.GeoDataFrame) for item in items for a in item)
    from gridkit.national import city_layers
    from gridkit.national.dataset import _city_rivers

    rivers = national_rivers(ds.plan)
    # the province's first city (its province row holds the province's rivers), a city
    # on the province line, a city in the middle
    for city in (ds.plan.cities[0], ds.plan.cities[9], ds.plan.cities[4]):
        box_rivers = _city_rivers(ds, city)
        assert len(box_rivers) < len(rivers)
        whole, boxed = city_layers(ds.plan, city, rivers), city_layers(ds.plan, city, box_rivers)
        for layer in ("river_chiefs", "workers", "patrols", "reports"):
            pd.testing.assert_frame_equal(pd.DataFrame(whole[layer]), pd.DataFrame(boxed[layer]))
        files = ds.read("river_chiefs", cities=[city.code4])
        pd.testing.assert_frame_equal(files, pd.DataFrame(whole["river_chiefs"]))


def test_a_month_of_activity_is_the_years_first_month(ds, tmp_path):
    month = build_national(0.0002, tmp_path, seed=3, months=1)
    meta = json.loads((month.path / "national.json").read_text(encoding="utf-8"))
    assert meta["activity"] == {"from": "2026-01-01", "to": "2026-02-01", "months": 1}
    for layer, col in (("patrols", "started_at"), ("reports", "reported_at")):
        year = ds.read(layer)
        want = year[year[col] < pd.Timestamp("2026-02-01", tz="UTC")].reset_index(drop=True)
        got = month.read(layer)
        assert 0 < len(got) < len(year) / 8
        pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(want))
    # the rest of the country is the year's
    pd.testing.assert_frame_equal(
        pd.DataFrame(month.read("workers")), pd.DataFrame(ds.read("workers"))
    )
    with pytest.raises(ValueError, match="months must be 1-12"):
        build_national(0.0002, tmp_path / "bad", months=13)


def test_cli_months_option(tmp_path, capsys):
    from gridkit.cli.app import main

    out = tmp_path / "nat"
    assert main(["national", "build", "--scale", "0.0002", "-o", str(out), "--months", "2"]) == 0
    meta = json.loads((out / "national.json").read_text(encoding="utf-8"))
    assert meta["activity"]["to"] == "2026-03-01"
    assert main(["national", "build", "--scale", "0.0002", "-o", str(out), "--months", "0"]) == 2


def test_small_cities_keep_their_size_as_the_country_grows():
    # 10^4 to 10^7 buildings in cities of ~10 000: only the number of cities grows
    sizes = [national_plan(s, city_buildings=10_000) for s in (0.0004, 0.02, 0.2)]
    assert [len(p.cities) for p in sizes] == [2, 100, 1008]
    assert all(9_000 < p.buildings_per_city <= 10_000 for p in sizes)
    # the default plans up to the whole country are as before
    assert len(national_plan(1.0).cities) == 372 and national_plan(0.1).city_grid == (2, 2)
