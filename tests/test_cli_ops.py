"""Every capability has its command: locate, hotspots, assess, and split-communities
with locked units, seeds and regular cells (and figures that apply to the run)."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.cli import main
from gridkit.crs import wgs84_to_gcj02
from gridkit.io import read_layer, write_layer
from gridkit.synth.ops import grid_units
from tests.test_communities import CRS, X0, Y0, make_city


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- split-communities -----------------------------------------------------------------


@pytest.fixture
def city(tmp_path: Path) -> dict[str, Path]:
    communities, buildings = make_city(21)  # 4 communities of 300 m, 40 buildings each
    comm = write_layer(communities, tmp_path / "社区.gpkg", "communities")
    bld = write_layer(buildings, tmp_path / "buildings.gpkg", "buildings")
    return {"communities": comm, "buildings": bld, "dir": tmp_path}


def _split(capsys, city, *extra: str, out: str = "units.gpkg"):
    path = city["dir"] / out
    code, stdout, err = run(
        capsys, "split-communities", city["communities"], "--buildings", city["buildings"],
        "--max-households", "400", "-o", path, *extra,
    )  # fmt: skip
    assert code == 0, err
    return read_layer(path, "units"), " ".join(stdout.split())


def test_n_units_is_per_community_and_says_so(capsys, city) -> None:
    """`--n-units 20` gave 80 units, more than the default: it is a count per community
    (4 here); the command says so, and the result has it or the line names the miss."""
    default, _ = _split(capsys, city, out="d.gpkg")
    units, line = _split(capsys, city, "--n-units", "3")
    assert len(units) == 4 * 3 > len(default)
    assert "3 asked per community x 4 communities, met" in line
    units, line = _split(capsys, city, "--n-units", "60", out="many.gpkg")
    per = units.groupby("parent_id").size()
    missed = per[per < 60]
    assert not missed.empty  # 40 buildings cannot make 60 units
    assert f"missed in {len(missed)} communit" in line
    for cid, made in missed.items():
        assert f"{cid} {made} of 60" in line
    _, out, _ = run(capsys, "split-communities", "--help")
    assert "EACH community" in " ".join(out.replace("│", " ").split())


@pytest.mark.parametrize("method", ["square", "h3"])
def test_regular_cells_print_no_nan_and_take_cell_area(capsys, city, method) -> None:
    if method == "h3":
        pytest.importorskip("h3")
    area = {"square": 20_000, "h3": 100_000}[method]  # H3: the resolution of closest area
    units, line = _split(capsys, city, "--method", method, "--cell-area", str(area))
    assert "nan" not in line.lower() and "barriers" not in line
    if method == "square":
        assert units["area_m2"].max() <= 20_000 * (1 + 1e-4)  # (written in WGS84)
        assert len(units) >= 4 * 90_000 / 20_000
    default, _ = _split(capsys, city, "--method", method, out="default.gpkg")
    assert units["area_m2"].max() > 1.5 * default["area_m2"].max()  # default: 10,000 m²
    code, _, err = run(
        capsys, "split-communities", city["communities"], "--buildings", city["buildings"],
        "--max-households", "400", "-o", city["dir"] / "x.gpkg", "--cell-area", "5000",
    )  # fmt: skip
    assert code == 1 and "--method square" in err


def test_barrier_share_printed_when_barriers_are_given(capsys, city) -> None:
    road = gpd.GeoDataFrame(
        {"name": ["建设路"]},
        geometry=[shapely.LineString([(X0 + 150, Y0 - 10), (X0 + 150, Y0 + 610)])],
        crs=CRS,
    )
    bar = write_layer(road, city["dir"] / "roads.gpkg", "roads")
    _, line = _split(capsys, city, "--barriers", str(bar))
    share = re.search(r"on barriers (\d+)%", line)
    assert share is not None and 0 < int(share.group(1)) <= 100


def test_locked_and_seeds(capsys, city) -> None:
    first, _ = _split(capsys, city, out="first.gpkg")
    keep = first.iloc[[0]]
    locked = write_layer(keep, city["dir"] / "locked.gpkg", "units")
    units, _ = _split(capsys, city, "--locked", str(locked), out="second.gpkg")
    kept = units.set_index("unit_id").geometry[keep["unit_id"].iloc[0]]
    assert kept.equals_exact(keep.geometry.iloc[0], 1e-9)

    seeds = gpd.GeoDataFrame(
        geometry=[shapely.Point(X0 + 30 + 10 * i, Y0 + 30 + 60 * i) for i in range(4)], crs=CRS
    )
    path = write_layer(seeds, city["dir"] / "seeds.gpkg", "seeds")
    units, _ = _split(capsys, city, "--max-households", "100000", "--seeds", str(path),
                      out="seeded.gpkg")  # fmt: skip
    in_c00 = units[units["parent_id"] == "C00"]
    assert len(in_c00) >= 4  # one unit per seed at least (the cap alone would give 1)


# -- locate and hotspots -----------------------------------------------------------------


def _units(tmp_path: Path) -> tuple[gpd.GeoDataFrame, Path]:
    units = grid_units(6, 6)
    return units, write_layer(units, tmp_path / "units.gpkg", "units")


def test_locate_a_gcj02_hotline_csv(capsys, tmp_path: Path) -> None:
    """A hotline export: Chinese columns, GB18030, GCJ-02 coordinates."""
    units, upath = _units(tmp_path)
    rng = np.random.default_rng(3)
    x0, y0, x1, y1 = units.total_bounds
    lon, lat = rng.uniform(x0 - 0.002, x1, 200), rng.uniform(y0, y1, 200)
    truth = gpd.GeoDataFrame({"工单号": [f"GD{i:04d}" for i in range(200)]},
                             geometry=gpd.points_from_xy(lon, lat), crs=4326)  # fmt: skip
    glon, glat = wgs84_to_gcj02(lon, lat)
    sheet = tmp_path / "热线.csv"
    pd.DataFrame(
        {"工单号": truth["工单号"], "经度": glon, "纬度": glat, "问题": "占道经营"}
    ).to_csv(sheet, index=False, encoding="gb18030")
    out = tmp_path / "located.csv"
    code, stdout, err = run(
        capsys, "locate", sheet, upath, "-o", out, "--crs", "gcj02", "--encoding", "gb18030"
    )
    assert code == 0, err
    assert "200 points" in stdout
    got = pd.read_csv(out, encoding="utf-8-sig")
    from gridkit.ops import locate

    expected = locate(truth, units)
    assert got["工单号"].tolist() == truth["工单号"].tolist()
    same = got["unit_id"].astype(str) == expected["unit_id"].astype(str).to_numpy()
    assert same.mean() > 0.98  # the datum round trip moves points by centimetres
    assert np.abs(got["lon"] - lon).max() < 1e-5


def test_locate_refuses_a_table_without_coordinates(capsys, tmp_path: Path) -> None:
    _, upath = _units(tmp_path)
    sheet = tmp_path / "x.csv"
    sheet.write_text("编号,地址\n1,建设路\n", encoding="utf-8")
    code, _, err = run(capsys, "locate", sheet, upath, "-o", tmp_path / "o.gpkg")
    assert code == 1
    assert "no points to locate" in err and "编号, 地址" in err


def test_hotspots_command_matches_the_function(capsys, tmp_path: Path) -> None:
    from gridkit.ops import hotspots

    units, upath = _units(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(113.10, 113.11, 120), rng.uniform(27.80, 27.81, 120)
    reports = gpd.GeoDataFrame({"category": ["road_damage"] * 120},
                               geometry=gpd.points_from_xy(x, y), crs=4326)  # fmt: skip
    rpath = write_layer(reports, tmp_path / "reports.gpkg", "hotline")
    out = tmp_path / "hot.gpkg"
    code, stdout, err = run(capsys, "hotspots", rpath, upath, "-o", out, "--value", "count",
                            "--permutations", "99", "--seed", "1")  # fmt: skip
    assert code == 0, err
    got = read_layer(out, "hotspots", check=False)
    expected = hotspots(reports, units, value="count", permutations=99, seed=1)
    assert got["hotspot"].tolist() == expected["hotspot"].tolist()
    assert "120 reports in 36 units" in stdout and "hot-95 4" in stdout


# -- assess ------------------------------------------------------------------------------


def test_assess_a_season_from_the_workspace(capsys, tmp_path: Path) -> None:
    from gridkit.ops import assess, patrol_compliance, simulate
    from gridkit.ops.patrols import flag_patrols
    from gridkit.store import open_store
    from tests.api.test_writes import field_workspace

    ws, _ = field_workspace(tmp_path / "ws.gpkg")
    store = open_store(ws)
    units, workers, assignments = (store.read(n) for n in ("units", "workers", "assignments"))
    sim = simulate(units, workers, assignments, start="2026-03-01", end="2026-04-01", seed=4)
    for name in ("patrols", "reports"):
        write_layer(getattr(sim, name), ws, name)
    out = tmp_path / "考核.xlsx"
    code, stdout, err = run(capsys, "assess", ws, "--period", "2026-03-01..2026-04-01", "-o", out)
    assert code == 0, err
    sheet = pd.read_excel(out, sheet_name="网格员")
    flagged = flag_patrols(sim.patrols, workers=workers)
    compliance = patrol_compliance(flagged, assignments, period=("2026-03-01", "2026-04-01"),
                                   units=units, workers=workers, now="2026-04-01")  # fmt: skip
    expected = assess(compliance=compliance, reports=sim.reports, workers=workers,
                      now="2026-04-01")  # fmt: skip
    assert sorted(sheet.iloc[:, 0].astype(str)) == sorted(expected.workers["worker_id"])
    assert "workers: 2 rows" in stdout
    code, _, err = run(capsys, "assess", ws, "--period", "2026-04-01..2026-03-01", "-o", out)
    assert code == 1 and "START before END" in err


# -- --engine dask on the commands that scale ----------------------------------------

HAS_DASK = all(
    __import__("importlib").util.find_spec(m) for m in ("dask", "distributed", "dask_geopandas")
)


@pytest.fixture
def staffing_files(tmp_path: Path) -> dict[str, Path]:
    from benchmarks.bench_assign import synthetic_city

    units, workers = synthetic_city(300, 80, seed=2)  # 2 districts (counties)
    return {
        "units": write_layer(units, tmp_path / "units.gpkg", "units"),
        "workers": write_layer(workers, tmp_path / "workers.gpkg", "workers"),
        "dir": tmp_path,
    }


def _assign(capsys, files, out: str, *extra: str) -> tuple[dict, str]:
    path = files["dir"] / out
    code, stdout, err = run(
        capsys, "assign", "--units", files["units"], "--workers", files["workers"],
        "-o", path, "--budget", "4", "--method", "heuristic", *extra,
    )  # fmt: skip
    assert code == 0, err
    layers = {n: read_layer(path, n) for n in ("assignments", "worker_loads")}
    return layers, " ".join(stdout.split())


@pytest.mark.skipif(not HAS_DASK, reason="needs the 'scale' extra (dask, distributed)")
@pytest.mark.timeout(240)
def test_assign_on_dask_writes_the_serial_answer(capsys, staffing_files) -> None:
    serial, _ = _assign(capsys, staffing_files, "serial.gpkg")
    dask, dline = _assign(capsys, staffing_files, "dask.gpkg", "--engine", "dask",
                          "--dask-workers", "2")  # fmt: skip
    assert "partitions" in dline and "gap" in dline
    for name in ("assignments", "worker_loads"):
        a = serial[name].drop(columns=["valid_from", "valid_to"], errors="ignore")
        b = dask[name].drop(columns=["valid_from", "valid_to"], errors="ignore")
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert len(serial["assignments"]) > 250


def test_assign_rejects_an_unknown_engine(capsys, staffing_files) -> None:
    code, _, err = run(
        capsys, "assign", "--units", staffing_files["units"], "--workers",
        staffing_files["workers"], "-o", staffing_files["dir"] / "x.gpkg", "--engine", "spark",
    )  # fmt: skip
    assert code != 0 and "serial or dask" in err


@pytest.mark.skipif(not HAS_DASK, reason="needs the 'scale' extra (dask, distributed)")
@pytest.mark.timeout(240)
def test_split_communities_on_dask_writes_the_serial_units(capsys, city) -> None:
    serial, _ = _split(capsys, city, out="serial.gpkg")
    dask, line = _split(capsys, city, "--engine", "dask", "--dask-workers", "2", out="dask.gpkg")
    assert "partition" in line
    serial = serial.sort_values("unit_id").reset_index(drop=True)
    assert list(dask.columns) == list(serial.columns)
    pd.testing.assert_frame_equal(
        pd.DataFrame(dask.drop(columns="geometry")),
        pd.DataFrame(serial.drop(columns="geometry")),
        check_dtype=False,
    )
    assert shapely.equals_exact(
        np.asarray(dask.geometry.array), np.asarray(serial.geometry.array), tolerance=0
    ).all()


def test_split_communities_engine_refuses_locked_units(capsys, city) -> None:
    _split(capsys, city, out="first.gpkg")
    code, _, err = run(
        capsys, "split-communities", city["communities"], "--buildings", city["buildings"],
        "--max-households", "400", "-o", city["dir"] / "x.gpkg", "--engine", "serial",
        "--scheduler", "tcp://127.0.0.1:1", "--locked", city["dir"] / "first.gpkg",
    )  # fmt: skip
    assert code != 0 and "--locked and --seeds" in err
