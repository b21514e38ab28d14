"""Schema checks: each problem gets a readable error naming layer, rows and the fix."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.errors import GridkitWarning, InvalidLayerError
from gridkit.layers import LAYERS, check_layer
from tests import geometries as g


def test_every_contract_layer_is_described() -> None:
    expected = {
        "admin_areas",
        "rivers",
        "water_bodies",
        "communities",
        "buildings",
        "reaches",
        "units",
        "lineage",
        "workers",
        "river_chiefs",
        "assignments",
        "departments",
        "staff",
        "building_heads",
        "head_records",
        "inspection_targets",
        "callbacks",
        "ticket_review",
        "patrols",
        "patrol_points",
        "reports",
        "report_events",
    }
    assert set(LAYERS) == expected


def test_valid_layers_pass_unchanged(rivers, admin_areas) -> None:
    assert check_layer(rivers, "rivers") is rivers
    out = check_layer(admin_areas, "admin_areas", source="zz.gpkg")
    assert out.index.equals(admin_areas.index)


def test_empty_layer(rivers) -> None:
    with pytest.raises(InvalidLayerError, match=r"zz\.gpkg, layer 'rivers' is empty"):
        check_layer(rivers.iloc[:0], "rivers", source="zz.gpkg")


def test_missing_columns_named_with_what_is_there(rivers) -> None:
    with pytest.raises(InvalidLayerError, match="missing column.*river_id") as info:
        check_layer(rivers.rename(columns={"river_id": "id"}), "rivers")
    assert "id" in info.value.hint


def test_unknown_layer_name(rivers) -> None:
    with pytest.raises(InvalidLayerError, match="Unknown layer 'river'"):
        check_layer(rivers, "river")


def test_duplicate_and_null_ids(rivers) -> None:
    bad = pd.concat([rivers, rivers.iloc[:1]], ignore_index=True)
    with pytest.raises(InvalidLayerError, match="duplicate river_id values: XJ") as info:
        check_layer(bad, "rivers")
    assert "XJ" in info.value.rows
    bad = rivers.copy()
    bad.loc[1, "river_id"] = None
    with pytest.raises(InvalidLayerError, match="'river_id' has empty values in rows index 1"):
        check_layer(bad, "rivers")


def test_wrong_value_kind_and_unknown_choice(admin_areas) -> None:
    bad = admin_areas.copy()
    bad["level"] = ["county", "district", "county"]
    with pytest.raises(InvalidLayerError, match="unknown value.*district.*rows 430203"):
        check_layer(bad, "admin_areas")
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["U1", "U2"],
            "kind": ["community_grid"] * 2,
            "parent_id": ["C", "C"],
            "admin_code": ["430202"] * 2,
            "households": ["many", 12],
        },
        geometry=[g.square, g.square_with_hole],
        crs=4326,
    )
    with pytest.raises(InvalidLayerError, match="'households' must hold int values; rows U1"):
        check_layer(units, "units")


def test_all_problems_reported_at_once(rivers) -> None:
    bad = pd.concat([rivers, rivers.iloc[:1]], ignore_index=True)
    bad["name"] = [1, "a", "b"]
    bad.loc[2, "geometry"] = g.point
    with pytest.raises(InvalidLayerError) as info:
        check_layer(bad, "rivers")
    assert len(info.value.problems) == 3


def test_wrong_geometry_type(rivers) -> None:
    bad = rivers.copy()
    bad.loc[0, "geometry"] = g.square
    with pytest.raises(InvalidLayerError, match="rows XJ have geometry type Polygon; rivers must"):
        check_layer(bad, "rivers")


@pytest.mark.parametrize("geom", [None, g.empty_line])
def test_missing_geometry(rivers, geom) -> None:
    bad = rivers.copy()
    bad.loc[1, "geometry"] = geom
    with pytest.raises(InvalidLayerError, match="rows R2 have no geometry"):
        check_layer(bad, "rivers")


def test_null_geometry_allowed_where_contract_says(rivers) -> None:
    reports = gpd.GeoDataFrame(
        {
            "report_id": ["R1"],
            "category": ["street_light"],
            "description": ["路灯不亮"],
            "source": ["hotline"],
            "status": ["reported"],
            "unit_id": ["U1"],
            "assignee_id": [None],
            "lead_department_id": [None],
            "reported_at": [pd.Timestamp("2026-01-01", tz="UTC")],
            "due_at": [pd.NaT],
            "resolved_at": [pd.NaT],
            "duplicate_of": [None],
            "reporter_contact": [None],
        },
        geometry=[None],
        crs=4326,
    )
    assert len(check_layer(reports, "reports")) == 1


def test_non_finite_coordinates(rivers) -> None:
    bad = rivers.copy()
    with np.errstate(invalid="ignore"):
        bad.loc[0, "geometry"] = shapely.LineString([(113.1, np.nan), (113.2, 27.8)])
    with pytest.raises(InvalidLayerError, match="non-finite"):
        check_layer(bad, "rivers")


def test_invalid_geometry_named_and_repairable(admin_areas) -> None:
    bad = admin_areas.copy()
    bad.loc[1, "geometry"] = g.bowtie
    with pytest.raises(
        InvalidLayerError, match="rows 430203 have invalid geometry.*Self-int"
    ) as info:
        check_layer(bad, "admin_areas")
    assert "repair" in info.value.hint
    with pytest.warns(GridkitWarning, match="repaired 1 invalid geometries.*430203"):
        fixed = check_layer(bad, "admin_areas", repair=True)
    assert shapely.is_valid(fixed.geometry.array).all()
    assert fixed.geometry.iloc[1].area == pytest.approx(g.bowtie.buffer(0).area * 2, rel=0.01)
    assert bad.geometry.iloc[1] is g.bowtie or not bad.geometry.iloc[1].is_valid  # input untouched


def test_attribute_table_without_geometry() -> None:
    chiefs = pd.DataFrame(
        {
            "chief_id": ["H1"],
            "worker_id": ["W1"],
            "level": ["village"],
            "river_id": ["XJ"],
            "admin_code": ["430202001001"],
        }
    )
    assert len(check_layer(chiefs, "river_chiefs")) == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=8))
def test_duplicate_detection_matches_pandas(ids: list[str]) -> None:
    df = gpd.GeoDataFrame(
        {"river_id": ids, "name": ["x"] * len(ids)}, geometry=[g.line] * len(ids), crs=4326
    )
    has_dup = len(set(ids)) < len(ids)
    if has_dup:
        with pytest.raises(InvalidLayerError, match="duplicate"):
            check_layer(df, "rivers")
    else:
        check_layer(df, "rivers")
