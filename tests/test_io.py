"""Layer I/O: round trips in every format, single-layer siblings, encodings, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from gridkit.errors import (
    GridkitWarning,
    InputFileError,
    LayerNotFoundError,
    UnsupportedFormatError,
)
from gridkit.io import layer_path, list_layers, read_layer, read_layers, write_layer, write_layers


def _units() -> gpd.GeoDataFrame:
    from tests import geometries as g

    cells = [shapely.affinity.translate(g.square, i * g.D, 0) for i in range(3)]
    return gpd.GeoDataFrame(
        {
            "unit_id": ["430202001001-001", "430202001001-002", "430202001001-003"],
            "kind": ["community_grid"] * 3,
            "parent_id": ["C1", "C1", "C2"],
            "admin_code": ["430202001001"] * 3,
            "households": [120, 0, 310],
            "area_m2": [1.0e6, 1.1e6, 0.9e6],
            "version": [1, 1, 1],
            "name": ["建设村一组", "建设村二组", "荷塘社区"],
        },
        geometry=cells,
        crs=4326,
    )


def _reports() -> gpd.GeoDataFrame:
    t = pd.Timestamp("2026-05-01T08:30:00Z")
    return gpd.GeoDataFrame(
        {
            "report_id": ["R1", "R2"],
            "category": ["floating_garbage", "street_light"],
            "description": ["河面漂浮垃圾", None],
            "source": ["patrol", "hotline"],
            "status": ["reported", "assigned"],
            "unit_id": ["U1", None],
            "assignee_id": [None, "W1"],
            "lead_department_id": [None, "D1"],
            "reported_at": [t, t + pd.Timedelta("1h")],
            "due_at": [t + pd.Timedelta("3D"), pd.NaT],
            "resolved_at": [pd.NaT, pd.NaT],
            "duplicate_of": [None, None],
            "reporter_contact": [None, "138****0000"],
        },
        geometry=[shapely.Point(113.1, 27.8), None],
        crs=4326,
    )


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".parquet"])
def test_round_trip_units(tmp_path: Path, ext: str) -> None:
    units = _units()
    path = write_layer(units, tmp_path / f"grid{ext}", "units")
    back = read_layer(path, "units")
    assert list(back["unit_id"]) == list(units["unit_id"])
    assert list(back["name"]) == list(units["name"])  # UTF-8 Chinese text intact
    assert back.crs.to_epsg() == 4326
    assert np.array_equal(back["households"].to_numpy(), units["households"].to_numpy())
    # RFC 7946 rounds GeoJSON to 7 decimals (~1 cm); others are exact
    tol = 1e-7 if ext == ".geojson" else 0
    assert shapely.equals_exact(back.geometry.array, units.geometry.array, tolerance=tol).all()


@pytest.mark.parametrize("ext", [".gpkg", ".parquet", ".geojson"])
def test_round_trip_datetimes_and_null_geometries(tmp_path: Path, ext: str) -> None:
    reports = _reports()
    path = write_layer(reports, tmp_path / f"r{ext}", "reports")
    back = read_layer(path, "reports")
    assert back["reported_at"].dt.tz is not None
    assert (back["reported_at"] == reports["reported_at"]).all()
    assert back.geometry.isna().tolist() == [False, True]
    assert back["description"].iloc[0] == "河面漂浮垃圾"


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".parquet"])
def test_attribute_table_round_trip(tmp_path: Path, ext: str) -> None:
    lineage = pd.DataFrame(
        {
            "old_id": ["a", "b", None],
            "new_id": ["a", "c", "d"],
            "relation": ["unchanged", "modified", "added"],
            "share": [1.0, 0.8, None],
        }
    )
    path = write_layer(lineage, tmp_path / f"l{ext}", "lineage")
    back = read_layer(path, "lineage")
    assert not isinstance(back, gpd.GeoDataFrame)
    assert list(back["relation"]) == list(lineage["relation"])


def test_workspace_holds_layers_by_name(tmp_path: Path, rivers, admin_areas) -> None:
    ws = tmp_path / "ws.gpkg"
    write_layers({"rivers": rivers, "admin_areas": admin_areas, "units": _units()}, ws)
    assert sorted(list_layers(ws)) == ["admin_areas", "rivers", "units"]
    write_layer(rivers.iloc[:1], ws, "rivers")  # replaces only that layer
    layers = read_layers(ws)
    assert len(layers["rivers"]) == 1
    assert len(layers["units"]) == 3
    assert layers["admin_areas"]["name"].tolist() == ["荷塘区", "芦淞区", "天元区"]


def test_workspace_opens_with_gdal(tmp_path: Path, rivers) -> None:
    ws = tmp_path / "ws.gpkg"
    write_layers({"rivers": rivers, "units": _units()}, ws)
    info = pyogrio.read_info(ws, layer="units")
    assert info["features"] == 3
    assert info["driver"] == "GPKG"
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo is None:
        pytest.skip("GDAL's ogrinfo (Debian gdal-bin) is not installed")
    out = subprocess.run(
        [ogrinfo, "-so", "-al", str(ws)], capture_output=True, text=True, check=True
    ).stdout
    assert "Layer name: units" in out
    assert "Feature Count: 3" in out
    assert "unit_id: String" in out


def test_single_layer_formats_write_siblings(tmp_path: Path, rivers) -> None:
    out = tmp_path / "split.geojson"
    written = write_layers({"rivers": rivers, "units": _units()}, out)
    assert written == [layer_path(out, "rivers"), layer_path(out, "units")]
    assert written[1].name == "split_units.geojson"
    assert sorted(list_layers(out)) == ["rivers", "units"]
    assert len(read_layer(out, "units")) == 3  # finds the sibling by layer name


def test_geojson_is_rfc7946(tmp_path: Path) -> None:
    units = _units().to_crs(32649)  # written in WGS84 whatever the input CRS
    cw = shapely.orient_polygons(units.geometry.array, exterior_cw=True)
    units = units.set_geometry(gpd.GeoSeries(cw, crs=32649))
    path = write_layer(units, tmp_path / "u.geojson", "units")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert "crs" not in doc
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    assert 113 < ring[0][0] < 114  # lon first
    assert shapely.is_ccw(shapely.LinearRing(ring))
    assert max(len(str(c).split(".")[1]) for c in ring[0]) <= 7


def test_shapefile_export_warns_and_reads_back(tmp_path: Path) -> None:
    units = _units()
    units["estimated_households"] = units["households"]
    with pytest.warns(GridkitWarning, match="export only"):
        path = write_layer(units, tmp_path / "u.shp", "units")
    back = read_layer(path, check=False)
    assert back["name"].tolist() == units["name"].tolist()
    assert "households" in back.columns


def test_shapefile_name_collision_refused(tmp_path: Path) -> None:
    units = _units()
    units["households_a"] = 1
    units["households_b"] = 2
    with pytest.raises(UnsupportedFormatError, match="collide"):
        write_layer(units, tmp_path / "u.shp", "units")


def test_gbk_shapefile_needs_encoding(tmp_path: Path) -> None:
    units = _units()[["unit_id", "name", "geometry"]]
    with pytest.warns(GridkitWarning):
        path = write_layer(units, tmp_path / "gbk.shp", encoding="GBK")
    path.with_suffix(".cpg").unlink()  # as many Chinese GIS exports come: no .cpg
    with pytest.raises(InputFileError, match="not UTF-8") as info:
        read_layer(path, check=False)
    assert "gbk" in info.value.hint
    back = read_layer(path, check=False, encoding="gbk")
    assert back["name"].tolist() == units["name"].tolist()


def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"unsupported file type '\.kml'"):
        read_layer(tmp_path / "x.kml", "units")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_layer(tmp_path / "none.gpkg", "units")


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputFileError, match="cannot open"):
        read_layer(bad, "units")


def test_missing_layer_lists_what_is_there(tmp_path: Path, rivers) -> None:
    ws = tmp_path / "ws.gpkg"
    write_layers({"rivers": rivers, "units": _units()}, ws)
    with pytest.raises(LayerNotFoundError, match="no layer 'reaches'") as info:
        read_layer(ws, "reaches")
    assert "rivers" in info.value.hint
    with pytest.raises(LayerNotFoundError, match="which one"):
        read_layer(ws)


def test_declared_gcj02_on_read(tmp_path: Path) -> None:
    from gridkit.crs import shift_datum

    units = _units()
    gcj = shift_datum(units, source="wgs84", target="gcj02")
    path = write_layer(gcj, tmp_path / "amap.geojson", "units")
    back = read_layer(path, "units", crs="gcj02")
    d = shapely.hausdorff_distance(
        back.to_crs(32649).geometry.array, units.to_crs(32649).geometry.array
    )
    assert d.max() < 0.5


def test_append_matches_fields_by_name_not_position(tmp_path: Path) -> None:
    """pyogrio appends by position when columns come in another order: gridkit reorders."""
    from gridkit.errors import UnsupportedFormatError

    units = _units()
    ws = write_layer(units.iloc[:1], tmp_path / "ws.gpkg", "units")
    shuffled = units.iloc[1:][
        [
            "name",
            "households",
            "unit_id",
            "kind",
            "parent_id",
            "admin_code",
            "area_m2",
            "version",
            "geometry",
        ]
    ]
    write_layer(shuffled, ws, "units", append=True)
    back = read_layer(ws, "units")
    assert back["unit_id"].tolist() == units["unit_id"].tolist()
    assert back["name"].tolist() == units["name"].tolist()
    assert back["households"].tolist() == units["households"].tolist()
    with pytest.raises(UnsupportedFormatError, match="does not have: extra"):
        write_layer(units.iloc[:1].assign(extra=1), ws, "units", append=True)


def test_times_are_written_to_the_millisecond_and_a_60th_second_is_read(tmp_path):
    """GDAL rounds a time to milliseconds when it writes a GeoPackage, and wrote
    03:17:59.9996 as '03:17:60.000Z', which no reader takes (the demo's patrol points
    then came back as text and `gridkit targets` failed)."""
    import sqlite3
    from contextlib import closing

    t = pd.to_datetime(
        ["2026-01-01T03:17:59.999600Z", "2026-01-01T03:18:00.000400Z", None], utc=True
    )
    df = gpd.GeoDataFrame(
        {"patrol_id": ["P1", "P1", "P2"], "t": t},
        geometry=gpd.points_from_xy([113.1, 113.2, 113.3], [27.8, 27.8, 27.8]),
        crs=4326,
    )
    ws = tmp_path / "ws.gpkg"
    write_layer(df, ws, "patrol_points")
    back = read_layer(ws, "patrol_points", check=False)["t"]
    assert back.iloc[0] == pd.Timestamp("2026-01-01T03:17:59.999Z")  # cut, not rounded up
    assert back.iloc[1] == pd.Timestamp("2026-01-01T03:18:00Z") and pd.isna(back.iloc[2])
    # a file an older gridkit wrote: read as 59.999 s, with the other rows as written
    # (the R-tree triggers want SpatiaLite: not needed)
    with closing(sqlite3.connect(ws)) as con, con:
        for (trigger,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            con.execute(f'DROP TRIGGER "{trigger}"')
        con.execute("UPDATE patrol_points SET t = '2026-01-01T03:17:60.000Z' WHERE fid = 1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Error parsing datetimes" left for the user
        again = read_layer(ws, "patrol_points", check=False)["t"]
    assert pd.api.types.is_datetime64_any_dtype(again.dtype)
    assert again.tolist()[:2] == back.tolist()[:2] and pd.isna(again.iloc[2])
