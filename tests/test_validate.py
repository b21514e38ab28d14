"""validate_units and the split-rivers / validate commands."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
import typer
from shapely import LineString
from typer.testing import CliRunner

from gridkit import GridkitWarning
from gridkit.cli.rivers import split_rivers_cmd, validate_cmd
from gridkit.io import write_layer, write_layers
from gridkit.rivers import split_rivers
from gridkit.validate import Problem, ValidationReport, validate_units
from tests.test_rivers import X0, Y0, rivers, two_squares


@pytest.fixture
def split():
    line = LineString([(X0 + 1000, Y0 + 5000), (X0 + 19_000, Y0 + 5000)])
    riv, adm = rivers([line]), two_squares()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        reaches, units = split_rivers(riv, adm, max_length_m=4000, corridor_m=50)
    return riv, adm, reaches, units


def test_valid_split_is_valid(split):
    riv, adm, reaches, units = split
    report = validate_units(
        units, reaches=reaches, rivers=riv, admin_areas=adm, max_length_m=4000, min_length_m=100
    )
    assert report.ok, str(report)
    assert str(report) == "valid: no problems found"
    assert report.figures["length_conservation_max_rel"] < 1e-9
    assert report.figures["reaches"] == 6


def test_detects_overlap_and_outside(split):
    _riv, adm, reaches, units = split
    bad = units.copy()
    g = np.asarray(bad.geometry.array).copy()
    g[0] = shapely.buffer(g[0], 30)  # overlaps its neighbour
    bad = bad.set_geometry(list(g), crs=units.crs)
    report = validate_units(bad, reaches=reaches, admin_areas=adm)
    codes = {p.code for p in report.errors}
    assert "overlap" in codes
    assert units["unit_id"].iloc[0] in next(p for p in report.errors if p.code == "overlap").rows
    moved = units.copy()
    moved.loc[0, "admin_code"] = "430202002"
    assert "outside_admin_area" in {p.code for p in validate_units(moved, admin_areas=adm).errors}


def test_detects_length_bounds_and_conservation(split):
    riv, adm, reaches, units = split
    report = validate_units(
        units, reaches=reaches, rivers=riv, admin_areas=adm, max_length_m=2000, min_length_m=3500
    )
    codes = {p.code: p.severity for p in report.problems}
    assert codes["too_long"] == "error" and codes["too_short"] == "warning"
    dropped = reaches.iloc[1:]
    report = validate_units(units.iloc[3:], reaches=dropped, rivers=riv, admin_areas=adm)
    assert "length_not_conserved" in {p.code for p in report.errors}
    assert "R1" in str(report)


def test_detects_reach_crossing_area(split):
    _riv, adm, reaches, units = split
    r = reaches.copy()
    merged = shapely.line_merge(shapely.union_all(r.geometry.array[2:4]))
    g = np.asarray(r.geometry.array).copy()
    g[2] = merged
    r = r.set_geometry(list(g), crs=r.crs)
    r.loc[2, "length_m"] = merged.length
    report = validate_units(units, reaches=r, admin_areas=adm)
    assert "reach_crosses_area" in {p.code for p in report.errors}


def test_report_api_unchanged():
    rep = ValidationReport()
    rep.add("x", "msg", rows=[1], severity="warning")
    assert rep.ok and rep.problems == [Problem("x", "msg", ("1",), "warning")]
    assert list(rep.to_frame().columns) == ["severity", "code", "message", "rows"]


def test_invalid_units_layer_is_reported_not_raised(split):
    _, _, _, units = split
    report = validate_units(units.drop(columns="kind"))
    assert not report.ok and report.problems[0].code == "invalid_layer"


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def app():
    app = typer.Typer()
    app.command("split-rivers")(split_rivers_cmd)
    app.command("validate")(validate_cmd)
    return app


def test_cli_split_then_validate(app, tmp_path, split):
    riv, adm, *_ = split
    write_layer(riv.to_crs(4326), tmp_path / "rivers.geojson")
    write_layer(adm.to_crs(4326), tmp_path / "admin.gpkg", "admin_areas")
    runner = CliRunner()
    out = tmp_path / "out.gpkg"
    res = runner.invoke(
        app,
        [
            "split-rivers",
            str(tmp_path / "rivers.geojson"),
            "--admin",
            str(tmp_path / "admin.gpkg"),
            "--max-length",
            "4000",
            "--corridor",
            "50",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "6 reaches" in res.output
    res = runner.invoke(
        app,
        ["validate", str(out), "--against", str(tmp_path / "admin.gpkg"), "--max-length", "4000"],
    )
    assert res.exit_code == 0, res.output
    assert "valid" in res.output
    res = runner.invoke(app, ["validate", str(out), "--max-length", "1000"])
    assert res.exit_code == 1
    assert "too_long" in res.output


def test_cli_validate_overlapping_units_exit_1(app, tmp_path, split):
    _, _adm, reaches, units = split
    g = np.asarray(units.geometry.array).copy()
    g[1] = shapely.buffer(g[1], 40)
    bad = units.set_geometry(list(g), crs=units.crs)
    write_layers({"units": bad, "reaches": reaches}, tmp_path / "bad.gpkg")
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "bad.gpkg")])
    assert res.exit_code == 1
    assert "overlap" in res.output


def test_community_units_dispatch(split):
    _, _adm, _, units = split
    comm = units.iloc[:1].assign(kind="community_grid", unit_id="C1")
    report = validate_units(comm)
    assert report.ok  # no river checks; community checks plug in via _community_validate


def test_overlap_checked_within_water_and_community_families() -> None:
    """A river corridor may cross a community; two grids of one family may not overlap."""
    import geopandas as gpd
    import shapely

    from gridkit.validate import validate_units

    def unit(uid, kind, geom):
        return {
            "unit_id": uid,
            "kind": kind,
            "parent_id": "P",
            "admin_code": "430202001001",
            "geometry": geom,
        }

    grid = shapely.box(0, 0, 1000, 1000)
    corridor = shapely.box(400, -100, 500, 1100)
    rows = [unit("C1-001", "community_grid", grid), unit("R-001", "river_reach", corridor)]
    ok = validate_units(gpd.GeoDataFrame(rows, crs=32649))
    assert not [p for p in ok.problems if p.code == "overlap"]
    rows.append(unit("C1-002", "community_grid", shapely.box(900, 0, 1900, 1000)))
    bad = validate_units(gpd.GeoDataFrame(rows, crs=32649))
    overlaps = [p for p in bad.problems if p.code == "overlap"]
    assert len(overlaps) == 1 and set(overlaps[0].rows) == {"C1-001", "C1-002"}
