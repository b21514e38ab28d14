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
