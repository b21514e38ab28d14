"""``gridkit demo`` builds the sample workspace end to end."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest

from gridkit.cli import main
from gridkit.io import read_layer


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("demo") / "zhuzhou.gpkg"
    assert main(["demo", "--workspace", str(ws)]) == 0
    return ws


def test_demo_writes_real_and_synthetic_layers(demo_ws: Path) -> None:
    names = {n for n, _ in pyogrio.list_layers(demo_ws)}
    assert {"admin_areas", "rivers", "water_bodies", "communities", "buildings", "workers",
            "river_chiefs", "departments"} <= names
    admin = read_layer(demo_ws, "admin_areas")  # passes its schema check
    assert admin.crs.to_epsg() == 4326
    districts = admin[admin["level"] == "county"]
    assert sorted(districts["admin_code"]) == [
        "430202", "430203", "430204", "430211", "430212", "430223", "430224", "430225",
        "430281",
    ]
    assert not districts["synthetic"].any()
    rivers = read_layer(demo_ws, "rivers")
    assert (rivers["name"] == "湘江").sum() == 1


def test_demo_is_deterministic(demo_ws: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.gpkg"
    assert main(["demo", "--workspace", str(again)]) == 0
    for layer in ("admin_areas", "buildings", "river_chiefs"):
        a = read_layer(demo_ws, layer)
        b = read_layer(again, layer)
        assert a.equals(b), layer


def test_demo_prints_summary(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workspace", str(tmp_path / "w.gpkg")]) == 0
    out = capsys.readouterr().out
    assert "buildings" in out and "schema checks" in out
