"""Shared fixtures: small contract layers built from the geometry catalogue."""

from __future__ import annotations

import geopandas as gpd
import pytest

from tests import geometries as g


@pytest.fixture
def rivers() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"river_id": ["XJ", "R2"], "name": ["湘江", "枫溪港"]},
        geometry=[g.line, g.multiline],
        crs=4326,
    )


@pytest.fixture
def admin_areas() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "admin_code": ["430202", "430203", "430211"],
            "name": ["荷塘区", "芦淞区", "天元区"],
            "level": ["county"] * 3,
            "parent_code": ["430200"] * 3,
        },
        geometry=[g.square, g.square_with_hole, g.two_squares],
        crs=4326,
    )
