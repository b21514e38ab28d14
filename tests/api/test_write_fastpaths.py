"""The single-row fast paths of the writes give the same results as the general ones."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import orjson
import pandas as pd
import pytest
import shapely

from api.geojson import feature, serialise
from gridkit.io import read_layer
from gridkit.layers import LAYERS
from gridkit.store import open_store
from tests.api.test_writes import field_workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return field_workspace(tmp_path_factory.mktemp("fast") / "ws.gpkg")[0]


def test_feature_matches_serialise(workspace: Path) -> None:
    store = open_store(workspace)
    for name in store.layers():
        df = store.read(name)
        spec = LAYERS.get(name)
        id_col = spec.id if spec else None
        for hidden, hide_geometry in (([], False), (list(spec.private) if spec else [], True)):
            ser = serialise(
                df, id_col=id_col, hidden=hidden, hide_geometry=hide_geometry, time_col=None
            )
            for row in range(min(len(df), 3)):
                one = feature(
                    df, id_col=id_col, hidden=hidden, hide_geometry=hide_geometry, row=row
                )
                assert one == ser.features[row]


def test_feature_nulls_times_and_polygons() -> None:
    df = gpd.GeoDataFrame(
        {
            "k": ["a"],
            "n": [float("nan")],
            "i": [3],
            "s": pd.array([None], dtype="string"),
            "t": pd.to_datetime(["2026-05-01T08:00Z"]),
            "b": [True],
        },
        geometry=[shapely.box(0.123456789, 0, 1, 1, ccw=False)],
        crs=4326,
    )
    ser = serialise(df, id_col="k", hidden=[], hide_geometry=False, time_col=None)
    assert feature(df, id_col="k", hidden=[], hide_geometry=False) == ser.features[0]
    assert orjson.loads(ser.features[0])["properties"]["n"] is None


def test_append_adds_columns_after_fields_are_cached(workspace: Path, tmp_path: Path) -> None:
    store = open_store(workspace)
    row = {"department_id": ["D9"], "name": ["x"], "admin_code": ["430202"]}
    store.append("departments", pd.DataFrame({**row, "categories": ["cctv"]}))
    # a column the (cached) field list lacks: added, then the row written in field order
    store.append("departments", pd.DataFrame({"phone": ["123"], **row, "categories": ["a"]}))
    store.append("departments", pd.DataFrame({**row, "categories": ["b"], "phone": ["456"]}))
    back = read_layer(workspace, "departments", check=False)
    tail = back.tail(3)
    assert tail["categories"].tolist() == ["cctv", "a", "b"]
    assert tail["phone"].tolist()[1:] == ["123", "456"]
    assert tail["department_id"].tolist() == ["D9"] * 3
    fresh = open_store(workspace).read("departments")
    assert fresh["phone"].tolist()[-2:] == ["123", "456"]
