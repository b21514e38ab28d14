"""Sizing a received layer before reading it (issue 19, item 5): a GeoPackage whose
units layer is a recursive SQL view made 3 M rows out of a small file."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import pytest

from gridkit.errors import InputFileError, InvalidLayerError
from gridkit.ops.intake import count_vertices, upload_size
from gridkit.synth.ops import grid_units


def recursive_view_gpkg(path: Path, rows: int = 3_000_000) -> Path:
    """A GeoPackage whose ``units`` layer is a ``WITH RECURSIVE`` view of ``rows`` rows
    (each a copy of one seed unit), registered in gpkg_contents like a table."""
    seed = grid_units(1, 1).drop(columns="version")
    seed.to_file(path, layer="seed", driver="GPKG")
    with closing(sqlite3.connect(path)) as con, con:
        con.execute(
            f"""CREATE VIEW units AS
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
            SELECT n.i AS fid, s.unit_id || '-' || n.i AS unit_id, s.kind, s.parent_id,
                   s.admin_code, s.households, s.geom
            FROM n, seed AS s"""
        )
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
            "VALUES ('units', 'features', 'units', 4326)"
        )
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES ('units', 'geom', 'POLYGON', 4326, 0, 0)"
        )
    return path


def test_a_recursive_view_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = recursive_view_gpkg(tmp_path / "draft.gpkg")
    assert path.stat().st_size < 1_500_000
    t = time.perf_counter()
    with pytest.raises(InvalidLayerError) as caught:
        upload_size(path, "units", source="河道网格.gpkg")
    assert time.perf_counter() - t < 1.0
    message = str(caught.value)
    assert "河道网格.gpkg: layer 'units' is an SQL view" in message
    assert "Save the layer as a table" in message and str(tmp_path) not in message


def test_the_only_layer_is_checked_whatever_its_name(tmp_path: Path) -> None:
    path = recursive_view_gpkg(tmp_path / "draft.gpkg", rows=10)
    with (
        closing(sqlite3.connect(path)) as con,
        con,
    ):  # the seed unregistered: the view is the only layer
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'seed'")
        con.execute("UPDATE gpkg_contents SET table_name = 'grid_2026' WHERE table_name = 'units'")
        con.execute("ALTER TABLE seed RENAME TO s0")
        con.execute("DROP VIEW units")
        con.execute("CREATE VIEW grid_2026 AS SELECT * FROM s0")
    with pytest.raises(InvalidLayerError, match="layer 'grid_2026' is an SQL view"):
        upload_size(path, "units")


def test_counts_and_bounds_of_tables(tmp_path: Path) -> None:
    units = grid_units(10, 8)
    path = tmp_path / "draft.gpkg"
    units.to_file(path, layer="units", driver="GPKG")
    size = upload_size(path, "units")
    assert size.layer == "units" and size.features == 80
    exact = count_vertices(units)
    assert exact <= size.max_vertices <= 2 * exact  # a bound, and not a loose one
    geojson = tmp_path / "draft.geojson"
    units.to_file(geojson)
    size = upload_size(geojson, "units")
    assert size.features == 80 and size.max_vertices is None  # read to count


def test_a_bound_holds_for_any_grid(tmp_path: Path) -> None:
    """Multipolygons, holes, empty and missing geometries: the bound is never below
    the count."""
    import shapely

    geoms = [
        shapely.box(0, 0, 1, 1).difference(shapely.box(0.2, 0.2, 0.4, 0.4)),
        shapely.MultiPolygon([shapely.box(2, 0, 3, 1), shapely.box(4, 0, 5, 1)]),
        shapely.Polygon(),
        None,
    ]
    frame = gpd.GeoDataFrame({"unit_id": list("abcd")}, geometry=geoms, crs=4326)
    path = tmp_path / "odd.gpkg"
    frame.to_file(path, layer="units", driver="GPKG")
    size = upload_size(path, "units")
    assert size.features == 4 and size.max_vertices >= count_vertices(frame)


def test_not_a_geopackage(tmp_path: Path) -> None:
    path = tmp_path / "网格.gpkg"
    path.write_bytes(b"not a geopackage at all" * 10)
    with pytest.raises(InputFileError, match="网格.gpkg: cannot open"):
        upload_size(path, "units", source="网格.gpkg")
