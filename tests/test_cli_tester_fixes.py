"""What a new user found at the command line, on his own files: far points given a
unit, naive times read as UTC, a national build over an earlier one, a layer
outside the contract "ok", a bad --scheduler's traceback, swapped lon/lat called
projected metres, geopandas' warning on empty geometries, help texts."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.cli import main
from gridkit.crs import local_metric_crs
from gridkit.errors import CRSError, GridkitWarning
from gridkit.io import read_layer, write_layer, write_table
from gridkit.ops.hotspots import hotspots
from gridkit.ops.locate import NEAREST_WITHIN_M, locate
from gridkit.scale.engine import Engine, SchedulerError
from gridkit.scale.ops import hotspots_points_partitioned, locate_points_partitioned
from gridkit.synth.ops import grid_units

# Zhuzhou-like grid: 6 x 6 cells of 0.005 deg from (113.10, 27.80); Changsha's centre
# lies some 50 km north-west of it
CHANGSHA = (112.94, 28.23)


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return grid_units(6, 6)


@pytest.fixture
def upath(units, tmp_path: Path) -> Path:
    return write_layer(units, tmp_path / "units.gpkg", "units")


def _reports_csv(path: Path, lon, lat, **cols) -> Path:
    n = len(lon)
    pd.DataFrame(
        {"report_id": [f"R{i:03d}" for i in range(n)], "lon": lon, "lat": lat, **cols}
    ).to_csv(path, index=False)
    return path


# -- 1. locate: the nearest unit only within --max-distance ------------------------------


def _changsha(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(CHANGSHA[0], 0.03, n), rng.normal(CHANGSHA[1], 0.03, n)


def test_cli_locate_leaves_far_points_without_a_unit_and_says_how_far(capsys, tmp_path, upath):
    lon, lat = _changsha(600)
    lon, lat = np.r_[0.0, 113.1153, 113.1315, lon], np.r_[0.0, 27.8153, 27.8153, lat]
    sheet = _reports_csv(tmp_path / "长沙.csv", lon, lat)
    out = tmp_path / "located.csv"
    code, stdout, err = run(capsys, "locate", sheet, upath, "-o", out)
    assert code == 0, err
    assert "603 points: 1 inside a unit, 1 given the nearest (within 500 m)" in stdout
    assert "601 farther: no unit" in stdout
    # one warning line: how many and how far (0,0 is ~20,000 km off; Changsha ~50 km)
    (line,) = [x for x in err.split("warning: ")[1:] if "from every unit" in x]
    assert line.startswith("601 points farther than 500 m from every unit (the nearest about")
    far = [float(v.replace(",", "")) for v in re.findall(r"([\d,.]+) km", line)]
    assert 30 < min(far) < 70 and max(far) > 19_000
    got = pd.read_csv(out, encoding="utf-8-sig")
    assert got["unit_id"].notna().tolist() == [False, True, True] + [False] * 600
    assert got["distance_m"].iloc[2] == pytest.approx(150, abs=10)  # 0.0015 deg east


def test_cli_locate_max_distance_widens_the_nearest(capsys, tmp_path, upath, units):
    lon, lat = _changsha(20)
    sheet = _reports_csv(tmp_path / "r.csv", lon, lat)
    code, stdout, err = run(capsys, "locate", sheet, upath, "-o", tmp_path / "o.csv",
                            "--max-distance", "1e6")  # fmt: skip
    assert code == 0, err
    assert "20 given the nearest" in stdout and "from every unit" not in err
    got = pd.read_csv(tmp_path / "o.csv", encoding="utf-8-sig", dtype={"unit_id": str})
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    assert got["unit_id"].tolist() == locate(pts, units)["unit_id"].tolist()


@settings(max_examples=40, deadline=None)
@given(
    xy=st.lists(st.tuples(st.floats(112.9, 113.4), st.floats(27.6, 28.1)), min_size=1, max_size=25),
    max_m=st.floats(0, 30_000),
)
def test_the_warning_counts_the_points_beyond_the_limit_by_brute_force(units, xy, max_m):
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(x, y) for x, y in xy], crs=4326)
    metric = local_metric_crs(units)
    um = np.asarray(units.to_crs(metric).geometry.array)
    pm = np.asarray(pts.to_crs(metric).geometry.array)
    nearest = np.array([shapely.distance(um, p).min() for p in pm])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = locate(pts, units, max_distance_m=max_m)
    beyond = int(out["unit_id"].isna().sum())
    # 1 cm either side of the limit: the projection's round-off
    assert (nearest > max_m + 0.01).sum() <= beyond <= (nearest > max_m - 0.01).sum()
    said = [str(w.message) for w in seen if "from every unit" in str(w.message)]
    if beyond:
        (line,) = said
        assert line.startswith(f"{beyond:,} point")
    else:
        assert said == []


def test_partitioned_locate_equals_one_process_and_warns_once(units):
    lon, lat = _changsha(30, seed=2)
    x0, y0, x1, y1 = units.total_bounds
    rng = np.random.default_rng(5)
    lon = np.r_[lon, rng.uniform(x0 - 0.01, x1 + 0.01, 200)]
    lat = np.r_[lat, rng.uniform(y0 - 0.01, y1 + 0.01, 200)]
    pts = gpd.GeoDataFrame(
        {"report_id": range(len(lon))}, geometry=gpd.points_from_xy(lon, lat), crs=4326
    )
    with warnings.catch_warnings(record=True) as one:
        warnings.simplefilter("always")
        a = locate(pts, units, max_distance_m=NEAREST_WITHIN_M)
    with warnings.catch_warnings(record=True) as parts:
        warnings.simplefilter("always")
        b = locate_points_partitioned(
            pts, units, by="county", margin_m=300, max_distance_m=NEAREST_WITHIN_M
        )
    assert a["unit_id"].isna().sum() >= 30
    pd.testing.assert_series_equal(a["unit_id"], b["unit_id"])
    np.testing.assert_allclose(a["distance_m"], b["distance_m"])
    said = lambda ws: [str(w.message) for w in ws if "from every unit" in str(w.message)]  # noqa: E731
    assert said(parts) == said(one) and len(said(one)) == 1


def test_hotspots_do_not_count_far_reports_on_any_engine(units):
    inside = units.representative_point().iloc[np.arange(60) % 9]
    lon, lat = _changsha(40, seed=4)
    geoms = list(inside) + list(gpd.points_from_xy(lon, lat))
    reports = gpd.GeoDataFrame({"category": ["sewage"] * len(geoms)}, geometry=geoms, crs=4326)
    with pytest.warns(GridkitWarning, match="^40 points farther than 500 m"):
        one = hotspots(reports, units, value="count", permutations=99, draws="unit")
    assert int(one["count"].sum()) == 60
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        part = hotspots_points_partitioned(reports, units, value="count", permutations=99)
    assert [c for c in part.columns if c != "geometry"] == [
        c for c in one.columns if c != "geometry"
    ]
    for col in ("count", "gi_z", "gi_p", "hotspot"):
        assert part[col].tolist() == one[col].tolist(), col
    assert sum("from every unit" in str(w.message) for w in seen) == 1
    wide = hotspots(reports, units, value="count", permutations=99, max_distance_m=None)
    assert int(wide["count"].sum()) == 100  # the old answer, on request


# -- 2. times without a zone in a CSV/XLSX are Beijing time ----------------------------


def test_cli_locate_reads_naive_csv_times_as_beijing_time(capsys, tmp_path, upath):
    sheet = _reports_csv(
        tmp_path / "export.csv",
        [113.1025, 113.1075, 113.1125],
        [27.8025, 27.8025, 27.8025],
        reported_at=["2026-03-01 00:00:00", "2026-03-01T08:00:00+08:00", "2026-03-01 00:00Z"],
    )
    code, _, err = run(capsys, "locate", sheet, upath, "-o", tmp_path / "o.gpkg")
    assert code == 0, err
    got = read_layer(tmp_path / "o.gpkg", "located", check=False)["reported_at"]
    assert got.tolist() == [
        pd.Timestamp("2026-02-28 16:00", tz="UTC"),  # Beijing midnight
        pd.Timestamp("2026-03-01 00:00", tz="UTC"),  # its offset as written
        pd.Timestamp("2026-03-01 00:00", tz="UTC"),
    ]


def test_xlsx_naive_times_are_beijing_and_a_written_workbook_reads_back(tmp_path):
    book = tmp_path / "台账.xlsx"
    pd.DataFrame(
        {
            "report_id": ["R1", "R2"],
            "category": ["sewage"] * 2,
            "source": ["hotline"] * 2,
            "status": ["reported"] * 2,
            "reported_at": [pd.Timestamp("2026-03-01 09:30"), pd.Timestamp("2026-03-02 00:00")],
            "lon": [113.1, 113.11],
            "lat": [27.8, 27.81],
        }
    ).to_excel(book, sheet_name="reports", index=False)
    got = read_layer(book, "reports")["reported_at"]
    assert got.tolist() == [
        pd.Timestamp("2026-03-01 01:30", tz="UTC"),
        pd.Timestamp("2026-03-01 16:00", tz="UTC"),
    ]
    again = write_table(read_layer(book, "reports"), tmp_path / "again.xlsx", sheet="reports")
    assert read_layer(again, "reports")["reported_at"].tolist() == got.tolist()
    # a workbook holds Beijing wall time, as a Chinese user reads it
    assert str(pd.read_excel(again, sheet_name="reports")["reported_at"][0]) == (
        "2026-03-01 09:30:00"
    )


def test_geopackage_times_are_read_as_stored(tmp_path, units):
    t = pd.Timestamp("2026-03-01 00:00", tz="UTC")
    reports = gpd.GeoDataFrame(
        {"report_id": ["R1"], "category": ["sewage"], "source": ["hotline"],
         "status": ["reported"], "reported_at": [t]},
        geometry=[shapely.Point(113.101, 27.801)], crs=4326,
    )  # fmt: skip
    path = write_layer(reports, tmp_path / "r.gpkg", "reports")
    assert read_layer(path, "reports")["reported_at"].tolist() == [t]


# -- 3. national build into a directory that is not empty -----------------------------


def test_national_build_refuses_a_foreign_directory_and_replaces_a_build(capsys, tmp_path):
    import pyarrow.dataset as pds

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run(capsys, "national", "build", "--scale", "0.0001", "-o", mine)
    assert code == 1 and "holds no national build" in err and "notes.txt" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]

    out = tmp_path / "nat"
    args = ("national", "build", "--months", "1", "--city-buildings", "2000", "-o", out)
    code, _, err = run(capsys, *args, "--scale", "0.0002")  # 4 cities
    assert code == 0, err
    code, _, err = run(capsys, *args, "--scale", "0.0001")  # 2 cities
    assert code == 1 and "holds an earlier national build" in err and "--overwrite" in err
    code, _, err = run(capsys, *args, "--scale", "0.0001", "--overwrite")
    assert code == 0, err
    meta = json.loads((out / "national.json").read_text(encoding="utf-8"))
    assert meta["cities"] == 2
    for layer in ("buildings", "reports", "communities"):
        n = pds.dataset(out / layer, partitioning="hive").count_rows()
        assert n == meta["rows"][layer], layer
    cities = {p.name for p in (out / "buildings").glob("province=*/city=*")}
    assert len(cities) == 2


def test_national_split_into_the_same_directory_keeps_no_earlier_partitions(tmp_path):
    import pyarrow.dataset as pds

    from gridkit.national import ALBERS, write_partitioned

    four = gpd.GeoDataFrame(
        {"admin_code": ["110101001001", "110201001001", "120101001001", "120201001001"]},
        geometry=[shapely.Point(0, 0)] * 4,
        crs=ALBERS,
    )
    write_partitioned(four, tmp_path, "units")
    write_partitioned(four.iloc[:2], tmp_path, "units")  # a second run, two cities
    assert pds.dataset(tmp_path / "units", partitioning="hive").count_rows() == 2
    write_partitioned(four.iloc[:0], tmp_path, "units")  # a run without any
    assert not (tmp_path / "units").exists()


# -- 4. check: a layer outside the contract ---------------------------------------------


def test_check_says_a_layer_outside_the_contract_is_not_checked(capsys, tmp_path, units):
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(113.1, 27.8)], crs=4326).to_file(
        tmp_path / "junk.shp"
    )
    code, stdout, err = run(capsys, "check", tmp_path / "junk.shp", "--layer", "junk")
    assert code == 0
    assert not stdout.startswith("ok") and "(not checked)" in stdout
    assert "'junk' is not a layer of the data contract" in err and "read, not checked" in err


def test_check_takes_file_colon_layer(capsys, tmp_path, units):
    ws = write_layer(units, tmp_path / "ws.gpkg", "units")
    write_layer(units.head(2), ws, "old_units")
    code, stdout, err = run(capsys, "check", f"{ws}:units")
    assert code == 0, err
    assert "ok" in stdout and "layer 'units', 36 rows" in stdout
    code, _, err = run(capsys, "check", ws)  # two layers, neither named: which one?
    assert code == 1 and "which contract layer" in err and "--layer units" in err


# -- 5. --scheduler ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("bogus", "missing port number"),
        ("tcp://127.0.0.1:http", "port 'http' is not a number"),
        ("tcp://127.0.0.1:99999", "port 99999 is out of range"),
    ],
)
def test_a_malformed_scheduler_is_one_line(capsys, tmp_path, upath, address, why):
    sheet = _reports_csv(tmp_path / "r.csv", [113.101], [27.801])
    code, _, err = run(capsys, "locate", sheet, upath, "-o", tmp_path / "o.csv",
                       "--engine", "dask", "--scheduler", address)  # fmt: skip
    assert code == 1 and "Traceback" not in err
    assert f"--scheduler {address!r} is no Dask scheduler address ({why})" in err
    assert "tcp://HOST:PORT" in err and "dask scheduler" in err


def test_national_split_rivers_with_a_bad_scheduler_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "national", "build", "--scale", "0.0001", "--months", "1",
                       "-o", tmp_path / "nat")  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, "national", "split-rivers", tmp_path / "nat", "-o",
                       tmp_path / "out", "--scheduler", "bogus")  # fmt: skip
    assert code == 1 and "Traceback" not in err and "missing port number" in err


def test_no_scheduler_listening_is_named_within_the_timeout():
    import time

    t0 = time.perf_counter()
    with pytest.raises(SchedulerError, match=r"no Dask scheduler answered at tcp://127.0.0.1:1 "):
        Engine.connect("tcp://127.0.0.1:1", timeout_s=1)
    assert time.perf_counter() - t0 < 10
    try:
        Engine.connect("tcp://127.0.0.1:1", timeout_s=1)
    except SchedulerError as e:
        assert "Is the scheduler running?" in e.hint and "dask scheduler" in e.hint


# -- 6. swapped lon/lat ---------------------------------------------------------------


@pytest.mark.parametrize("names", [("lon", "lat"), ("x", "y"), ("经度", "纬度")])
def test_swapped_coordinates_are_called_swapped(capsys, tmp_path, upath, names):
    sheet = tmp_path / "swapped.csv"
    pd.DataFrame({"report_id": ["R1", "R2"], names[0]: [27.7, 27.81], names[1]: [113.0, 113.11]}
                 ).to_csv(sheet, index=False)  # fmt: skip
    extra = ("--crs", "4326") if names[0] == "x" else ()
    code, _, err = run(capsys, "locate", sheet, upath, "-o", tmp_path / "o.csv", *extra)
    assert code == 1
    assert "the columns look swapped (lat, lon)" in err and "projected metres" not in err
    # the fix the hint gives works
    fix = ("--columns", f"{names[0]}={names[1]}", "--columns", f"{names[1]}={names[0]}")
    code, stdout, err = run(capsys, "locate", sheet, upath, "-o", tmp_path / "o.csv", *extra, *fix)
    assert code == 0, err
    assert "1 inside a unit" in stdout


def test_projected_metres_are_still_called_so():
    from gridkit.crs import check_lonlat_bounds

    pts = gpd.GeoDataFrame(geometry=[shapely.Point(700_000, 3_070_000)], crs=4326)
    with pytest.raises(CRSError) as info:
        check_lonlat_bounds(pts, source="utm.csv")
    assert "projected metres" in info.value.hint and "swapped" not in str(info.value)


def test_swapped_points_that_stay_in_range_are_hinted_at_by_locate(units):
    # lat/lon read as lon/lat where both fit: (27.81, 113.11) is a valid place (the
    # Arctic): nothing to refuse, but no unit is near and swapped they lie among them
    wide = grid_units(2, 2).assign(
        geometry=lambda d: d.geometry.translate(xoff=83.11 - 113.1 - 0.004, yoff=27.81 - 27.8)
    )  # units in western China, lon 83
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(27.812, 83.108)], crs=4326)
    with pytest.warns(GridkitWarning, match=r"1 of them would lie among the units with x and y"):
        locate(pts, wide, max_distance_m=500)


# -- 7. empty geometries ----------------------------------------------------------------


def test_empty_geometries_raise_no_geopandas_warning(capsys, tmp_path, units):
    broken = units.copy()
    broken.loc[3, "geometry"] = shapely.Polygon()
    ws = write_layer(broken, tmp_path / "ws.gpkg", "units")
    code, _, err = run(capsys, "check", f"{ws}:units")
    assert code == 1 and "have no geometry" in err
    assert "GeoSeries.notna" not in err and "previously returned" not in err
    sheet = tmp_path / "r.csv"
    sheet.write_text("report_id,wkt\nR1,POINT (113.101 27.801)\nR2,POINT EMPTY\n", "utf-8")
    code, stdout, err = run(capsys, "locate", sheet, tmp_path / "ws.gpkg:units", "-o",
                            tmp_path / "o.csv")  # fmt: skip
    # (the units' empty row is refused above; locate checks them too)
    assert "GeoSeries.notna" not in err
    good = write_layer(units, tmp_path / "good.gpkg", "units")
    code, stdout, err = run(capsys, "locate", sheet, good, "-o", tmp_path / "o.csv")
    assert code == 0, err
    assert "GeoSeries.notna" not in err and "1 without a location" in stdout
    got = pd.read_csv(tmp_path / "o.csv", encoding="utf-8-sig")
    assert got["lon"].isna().tolist() == [False, True]


# -- 8. help texts ----------------------------------------------------------------------


def _help(capsys, *args: str) -> str:
    code, stdout, _ = run(capsys, *args, "--help")
    assert code == 0
    return re.sub(r"[\s│]+", " ", stdout)  # without the boxes' edges where lines wrap


def test_help_texts(capsys):
    assert "county, city or province" in _help(capsys, "split-communities")
    assert "postgresql://" in _help(capsys, "keys", "revoke")
    assert "postgresql://" in _help(capsys, "assess")
    assert "postgresql://" in _help(capsys, "compliance")
    assert "every layer table brought up" in _help(capsys, "db")
    assert "--max-distance" in _help(capsys, "hotspots")
    assert "Beijing time" in _help(capsys, "locate")


def test_subcommand_help_is_one_paragraph():
    # typer keeps a docstring's line breaks: "every layer / table" in `gridkit db --help`
    import typer.main

    from gridkit.cli.app import app

    def helps(group):
        for name, cmd in group.commands.items():
            yield name, cmd.help or ""
            if hasattr(cmd, "commands"):
                yield from helps(cmd)

    # paragraphs (a blank line between) are fine; a line break inside one is not
    got = helps(typer.main.get_command(app))
    broken = [name for name, text in got if "\n" in text.strip().replace("\n\n", "")]
    assert broken == []


def test_check_layer_option_is_optional_in_help(capsys):
    text = _help(capsys, "check")
    assert "FILE:LAYER" in text
