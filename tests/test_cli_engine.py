"""``--engine dask`` on the ordinary commands (``gridkit locate``, ``hotspots``,
``split-rivers``, ``compliance``): the same output files as the one-process command,
on a user's files (GeoPackage, lon/lat) partitioned by admin-code prefix.

The data: a synthetic city of 4 counties (``gridkit.synth.synthetic_layers``), its
rivers crossing the county lines, river and community units, reports and patrols near
the lines. Most cases run the partitioned code in this process (``Engine.local`` is
replaced by ``Engine.serial``); one runs a ``LocalCluster`` of 2 workers.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit import split_communities, split_rivers
from gridkit.cli import main
from gridkit.io import read_layer, write_layer
from gridkit.scale.engine import Engine
from gridkit.synth.layers import synthetic_layers
from gridkit.synth.maps import reports as synth_reports

HAS_DASK = all(importlib.util.find_spec(m) for m in ("dask", "distributed", "dask_geopandas"))


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())


@pytest.fixture
def in_process(monkeypatch):
    """``--engine dask`` runs its partition tasks here, one after the other."""
    monkeypatch.setattr(Engine, "local", classmethod(lambda cls, *a, **k: cls.serial()))


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("city")
    layers = synthetic_layers(seed=3, n_buildings=3000, river_km=150, n_areas=60, n_counties=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        river = split_rivers(layers["rivers"], layers["admin_areas"], max_length_m=2000)
        grids = split_communities(layers["communities"], layers["buildings"], max_households=400)
    units = gpd.GeoDataFrame(
        pd.concat([river.units, grids.to_crs(4326)], ignore_index=True), crs=4326
    )
    reports = synth_reports(units, 1500, seed=1).drop(columns="unit_id")
    # a user's rivers: no parent_river_id (basins are found from the lines)
    rivers = layers["rivers"].drop(columns=["parent_river_id", "synthetic"])
    return {
        "dir": d,
        "layers": layers,
        "units": units,
        "river_units": river.units,
        "rivers": write_layer(rivers, d / "河流.gpkg", "rivers"),
        "admin": write_layer(layers["admin_areas"], d / "admin.gpkg", "admin_areas"),
        "units_file": write_layer(units, d / "units.gpkg", "units"),
        "reports_file": write_layer(reports, d / "reports.gpkg", "reports"),
    }


def _same_file(a: Path, b: Path, layer: str) -> None:
    """The two files hold the same rows, columns, values and geometry, bit for bit."""
    x, y = read_layer(a, layer, check=False), read_layer(b, layer, check=False)
    assert list(x.columns) == list(y.columns)
    pd.testing.assert_frame_equal(
        pd.DataFrame(x.drop(columns="geometry")), pd.DataFrame(y.drop(columns="geometry"))
    )
    gx, gy = np.asarray(x.geometry.array), np.asarray(y.geometry.array)
    assert shapely.equals_exact(gx, gy, tolerance=0).all()


# -- locate -------------------------------------------------------------------------------


def test_units_and_points_cross_the_county_lines(city) -> None:
    """The data is what the tests need: units of 4 counties, a river unit cut by a
    county line, reports on both sides of the lines and outside every unit."""
    u = city["units"]
    assert u["admin_code"].str[:6].nunique() == 4
    reaches_per_river = (
        city["river_units"].groupby("parent_id")["admin_code"].agg(lambda s: s.str[:6].nunique())
    )
    assert (reaches_per_river > 1).any()


@pytest.mark.parametrize("extra", [(), ("--accuracy", "20", "--max-distance", "400")])
def test_locate_on_dask_writes_the_serial_answer(capsys, city, in_process, extra) -> None:
    d = city["dir"]
    args = ("locate", city["reports_file"], city["units_file"])
    code, _, err = run(capsys, *args, "-o", d / "one.gpkg", *extra)
    assert code == 0, err
    code, out, err = run(capsys, *args, "-o", d / "part.gpkg", "--engine", "dask", *extra)
    assert code == 0, err
    assert "4 partitions" in out  # --partition-by county (the default)
    _same_file(d / "one.gpkg", d / "part.gpkg", "located")
    located = read_layer(d / "part.gpkg", "located", check=False)
    assert located["distance_m"].gt(0).any()  # points outside every unit
    code, out, err = run(capsys, *args, "-o", d / "city.gpkg", "--engine", "dask",
                         "--partition-by", "city", *extra)  # fmt: skip
    assert code == 0 and "1 partition," in out
    _same_file(d / "one.gpkg", d / "city.gpkg", "located")


def test_engine_refuses_units_without_codes_to_partition_on(capsys, city, in_process) -> None:
    d = city["dir"]
    bad = city["units"].assign(admin_code="4302")  # a city code: no county to split by
    path = write_layer(bad, d / "短码.gpkg", "units")
    code, _, err = run(capsys, "locate", city["reports_file"], path, "-o", d / "x.gpkg",
                       "--engine", "dask")  # fmt: skip
    assert code == 1
    assert "短码.gpkg" in err and "no 6-digit admin_code to partition on by county" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "locate", city["reports_file"], path, "-o", d / "x.gpkg",
                       "--engine", "dask", "--partition-by", "town")  # fmt: skip
    assert code == 1 and "county, city or province" in err


# -- hotspots ------------------------------------------------------------------------------


def test_hotspots_on_dask_write_the_serial_answer(capsys, city, in_process) -> None:
    d = city["dir"]
    args = ("hotspots", city["reports_file"], city["units_file"], "--permutations", "99")
    code, _, err = run(capsys, *args, "-o", d / "h1.gpkg", "--draws", "unit")
    assert code == 0, err
    code, out, err = run(capsys, *args, "-o", d / "h2.gpkg", "--engine", "dask")
    assert code == 0, err
    assert "4 partitions" in out
    _same_file(d / "h1.gpkg", d / "h2.gpkg", "hotspots")
    hot = read_layer(d / "h2.gpkg", "hotspots", check=False)
    assert hot["hotspot"].ne("not significant").sum() > 10
    code, _, err = run(capsys, *args, "-o", d / "h3.gpkg", "--engine", "dask", "--draws", "esda")
    assert code == 1 and "--draws unit" in err


# -- split-rivers ------------------------------------------------------------------------


def _split_rivers(capsys, city, out: str, *extra: object) -> str:
    code, stdout, err = run(
        capsys, "split-rivers", city["rivers"], "--admin", city["admin"], "--max-length",
        "1500", "--min-length", "300", "--corridor", "50", "-o", city["dir"] / out, *extra,
    )  # fmt: skip
    assert code == 0, err
    return stdout


def test_split_rivers_on_dask_writes_the_serial_answer(capsys, city, in_process) -> None:
    """The rivers cross the county lines (a boundary river's banks in two counties);
    reaches and units, ids, seq, order and geometry are the one-process ones."""
    _split_rivers(capsys, city, "r1.gpkg")
    line = _split_rivers(capsys, city, "r2.gpkg", "--engine", "dask")
    assert "4 partitions" in line
    for layer in ("reaches", "units"):
        _same_file(city["dir"] / "r1.gpkg", city["dir"] / "r2.gpkg", layer)
    reaches = read_layer(city["dir"] / "r2.gpkg", "reaches")
    assert reaches.groupby("river_id")["admin_code"].agg(lambda s: s.str[:6].nunique()).max() > 1


def test_split_rivers_turned_towards_the_outlet_on_dask(capsys, city, in_process) -> None:
    """``--outlet`` near the drawn source turns the main stem: ``seq`` runs against the
    drawing (and is renumbered so on the gathered reaches)."""
    extra = ("--outlet", "113.0,27.3", "--no-confluences")
    _split_rivers(capsys, city, "t1.gpkg", *extra)
    _split_rivers(capsys, city, "t2.gpkg", *extra, "--engine", "dask")
    for layer in ("reaches", "units"):
        _same_file(city["dir"] / "t1.gpkg", city["dir"] / "t2.gpkg", layer)
    drawn = read_layer(city["rivers"], "rivers").set_index("river_id").geometry["R001"]
    main = read_layer(city["dir"] / "t1.gpkg", "reaches").query("river_id == 'R001'")
    first = main.sort_values("seq").geometry.iloc[0]
    assert shapely.line_locate_point(drawn, shapely.get_point(first, 0)) > drawn.length / 2


def test_split_rivers_engine_refuses_water_bodies_and_short_codes(capsys, city, in_process):
    d = city["dir"]
    wb = write_layer(city["layers"]["water_bodies"], d / "wb.gpkg", "water_bodies")
    code, _, err = run(capsys, "split-rivers", city["rivers"], "--admin", city["admin"],
                       "--max-length", "1500", "-o", d / "x.gpkg", "--water-bodies", wb,
                       "--engine", "dask")  # fmt: skip
    assert code == 1 and "--water-bodies are not split per partition" in err
    adm = city["layers"]["admin_areas"]
    short = adm[adm["level"] == "county"].assign(admin_code=lambda a: a["admin_code"].str[:4])
    path = write_layer(short.assign(admin_code=[f"99{i:02d}" for i in range(len(short))]),
                       d / "县.gpkg", "admin_areas")  # fmt: skip
    code, _, err = run(capsys, "split-rivers", city["rivers"], "--admin", path,
                       "--max-length", "1500", "-o", d / "x.gpkg", "--engine", "dask")  # fmt: skip
    assert code == 1 and "县.gpkg" in err and "to partition on by county" in err


def _two_counties() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Two counties 50 km apart (25 villages of 2 km each), a winding river in each; the
    first river listed is the far county's."""
    x0, y0 = 500_000.0, 3_000_000.0
    cells, codes = [], []
    for dx, county in ((0, "430202"), (60_000, "430203")):
        for k in range(25):
            x, y = x0 + dx + (k // 5) * 2000, y0 + (k % 5) * 2000
            cells.append(shapely.box(x, y, x + 2000, y + 2000))
            codes.append(f"{county}001{k + 1:03d}")
    admin = gpd.GeoDataFrame(
        {"admin_code": codes, "name": codes, "level": "village"}, geometry=cells, crs=32649
    )
    rng = np.random.default_rng(1)
    lines = []
    for dx, f, phase in ((0, 1700, 0), (60_000, 1300, 1)):
        xs = np.sort(rng.uniform(-300, 10_300, 400))
        lines.append(
            shapely.LineString(np.c_[x0 + dx + xs, y0 + 5000 + 3000 * np.sin(xs / f + phase)])
        )
    rivers = gpd.GeoDataFrame(
        {"river_id": ["A", "B"], "name": ["甲河", "乙河"]}, geometry=lines, crs=32649
    )
    return rivers, admin


def test_a_river_task_measures_as_the_one_process_run() -> None:
    """split_rivers measures along a table of every line it is given (running sums over
    the lines before each one): a task given only its own river would place the cuts of
    county 430203's river 1e-10 m apart from the one-process run (25 of 64 reaches did)."""
    from gridkit.scale.rivers import split_river_layers_partitioned

    rivers, admin = _two_counties()
    options = {"max_length_m": 700.0, "corridor_m": 30.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = split_rivers(rivers, admin, **options)
        reaches, units = split_river_layers_partitioned(rivers, admin, by="county", **options)
    assert len(reaches.attrs["partitions"]) == 2
    for got, want in ((reaches, one.reaches), (units, one.units)):
        assert got["reach_id"].tolist() == want["reach_id"].tolist()
        assert shapely.equals_exact(
            np.asarray(got.geometry.array), np.asarray(want.geometry.array), tolerance=0
        ).all()


@pytest.mark.skipif(not HAS_DASK, reason="needs the 'scale' extra (dask, distributed)")
@pytest.mark.timeout(240)
def test_split_rivers_on_a_localcluster_of_two_workers(capsys, city) -> None:
    _split_rivers(capsys, city, "lc1.gpkg")
    line = _split_rivers(capsys, city, "lc2.gpkg", "--engine", "dask", "--dask-workers", "2")
    assert "on 2 Dask worker(s)" in line
    for layer in ("reaches", "units"):
        _same_file(city["dir"] / "lc1.gpkg", city["dir"] / "lc2.gpkg", layer)


# -- compliance ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(city) -> dict:
    """A workspace GeoPackage: the city's river units, chiefs, workers and a quarter of
    chief patrols, plus a replay across the county line: a track of a chief of county
    990202, uploaded a day earlier by a chief of county 990201 (so the original,
    later, is a replay that does not count; its task must see the other county's
    track)."""
    from gridkit.ops.chiefs import section_hits
    from gridkit.synth.chief_patrols import chief_patrols

    layers = city["layers"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        river = split_rivers(layers["rivers"], layers["admin_areas"], max_length_m=2000)
    reaches = river.reaches
    chiefs = layers["river_chiefs"]
    season = chief_patrols(reaches, chiefs, start="2026-04-01", end="2026-07-01", seed=1)
    patrols = season.patrols
    duty = chiefs[chiefs["role"].fillna("chief").eq("chief")]
    hits = section_hits(patrols, chiefs, river.units, workers=layers["workers"])
    code = hits["chief_id"].map(duty.set_index("chief_id")["admin_code"])
    may = hits["started_at"].dt.month.eq(5).to_numpy()  # a window inside the quarter
    counted = hits[hits["verified"] & may & code.str.startswith("990202").to_numpy()]
    victim = patrols.set_index("patrol_id").loc[counted["patrol_id"].iloc[0]]
    victim["patrol_id"] = counted["patrol_id"].iloc[0]
    thief = duty[duty["admin_code"].str.startswith("990201")]["worker_id"].iloc[0]
    replay = patrols[patrols["patrol_id"] == victim["patrol_id"]].assign(
        patrol_id="P-REPLAY", worker_id=thief, chief_id=None,
        started_at=victim["started_at"] - pd.Timedelta(days=1),
        ended_at=victim["ended_at"] - pd.Timedelta(days=1),
    )  # fmt: skip
    patrols = gpd.GeoDataFrame(pd.concat([patrols, replay], ignore_index=True), crs=patrols.crs)
    ws = city["dir"] / "workspace.gpkg"
    saved = {"units": river.units, "river_chiefs": chiefs, "workers": layers["workers"]}
    for name, df in {**saved, "patrols": patrols}.items():
        write_layer(df, ws, name)
    return {
        "path": ws,
        "victim": victim,
        "patrols": patrols,
        "units": river.units,
        "chiefs": chiefs,
    }


def test_the_replay_crosses_the_county_line(workspace) -> None:
    from gridkit.ops.patrols import flag_patrols

    flagged = flag_patrols(workspace["patrols"].query("geometry.notna()", engine="python"))
    row = flagged[flagged["patrol_id"] == workspace["victim"]["patrol_id"]]
    assert row["duplicate_of"].tolist() == ["P-REPLAY"]


def test_compliance_on_dask_writes_the_serial_table(capsys, city, workspace, in_process) -> None:
    d = city["dir"]
    code, one, err = run(capsys, "compliance", workspace["path"], "--period", "2026-Q2",
                         "-o", d / "c1.csv")  # fmt: skip
    assert code == 0, err
    code, part, err = run(capsys, "compliance", workspace["path"], "--period", "2026-Q2",
                          "-o", d / "c2.csv", "--engine", "dask")  # fmt: skip
    assert code == 0, err
    assert "partitions" in part
    a = pd.read_csv(d / "c1.csv", encoding="utf-8-sig")
    b = pd.read_csv(d / "c2.csv", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > 50 and a["compliant"].any() and not a["compliant"].all()
    assert one.split(" wrote")[0] in part  # the same lines per level
