"""``gridkit missed | targets | heads`` on a workspace (issue 22 items 5, 7, 8)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from gridkit.cli import main
from gridkit.io import read_layer, read_table
from gridkit.store import create_store
from gridkit.synth.heads import link_building_heads
from gridkit.synth.ops import grid_units
from tests.test_heads import sample_community
from tests.test_missed import T0, _patrol, _report


def workspace(tmp_path):
    units = grid_units(2, 2)
    assignments = pd.DataFrame({"unit_id": units["unit_id"], "worker_id": ["W1", "W2", "W3", "W4"]})
    u0 = units["unit_id"][0]
    patrols = gpd.GeoDataFrame(
        [_patrol("P1", "W1", T0 + pd.Timedelta("1D"), [(113.1005, 27.8025), (113.1045, 27.8025)])],
        crs=4326,
    )
    fixes = gpd.GeoDataFrame(
        {"patrol_id": ["P1", "P1"], "t": [T0 + pd.Timedelta("23h"), T0 + pd.Timedelta("1D")]},
        geometry=[shapely.Point(113.1005, 27.8025), shapely.Point(113.1045, 27.8025)],
        crs=4326,
    )
    reports = gpd.GeoDataFrame(
        [_report("R1", "street_light", "hotline", u0, T0 + pd.Timedelta("2D"), 113.1025, 27.803)],
        crs=4326,
    )
    targets = gpd.GeoDataFrame(
        {
            "target_id": ["T1", "T2"],
            "name": ["好再来饭店", "如家旅馆"],
            "kind": ["restaurant", "hostel"],
            "frequency_days": [30.0, 7.0],
            "admin_code": "430202001001",
        },
        geometry=[shapely.Point(113.10051, 27.8025), shapely.Point(113.108, 27.808)],
        crs=4326,
    )
    buildings, workers, communities = sample_community(10, 2)
    heads = link_building_heads(buildings, workers, communities=communities).iloc[2:]
    path = tmp_path / "ws.gpkg"
    create_store(
        path,
        {
            "units": units,
            "assignments": assignments,
            "patrols": patrols,
            "patrol_points": fixes,
            "reports": reports,
            "inspection_targets": targets,
            "buildings": buildings,
            "building_heads": heads,
        },
    )
    return path


def test_missed_targets_heads_commands(capsys, tmp_path):
    ws = workspace(tmp_path)
    assert main(["missed", str(ws), "-o", str(tmp_path / "漏报.xlsx"), "--days", "3"]) == 0
    assert "1 possible miss by 1 worker" in capsys.readouterr().out
    missed = read_table(tmp_path / "漏报.xlsx")
    assert missed[["worker_id", "report_id", "patrol_id"]].values.tolist() == [["W1", "R1", "P1"]]
    assert (
        main(["targets", str(ws), "-o", str(tmp_path / "t.csv"), "--at", "2026-05-20", "--overdue"])
        == 0
    )
    assert "1 target overdue of 2" in capsys.readouterr().out
    late = read_table(tmp_path / "t.csv")
    assert late["target_id"].tolist() == ["T2"]
    assert main(["heads", str(ws), "-o", str(tmp_path / "heads.gpkg")]) == 0
    assert "2 buildings without a head of 10" in capsys.readouterr().out
    cov = read_layer(tmp_path / "heads.gpkg", "buildings")
    assert int((~cov["has_head"].astype(bool)).sum()) == 2


def test_missed_targets_heads_on_a_database_as_on_the_file(capsys, tmp_path):
    from gridkit.store.transfer import load
    from tests import postgis_cluster

    url = postgis_cluster.new_database()  # skips, or fails under CI=true, without PostGIS
    load(workspace(tmp_path), url)
    url = url.replace("postgres@", "postgres:pw-9@", 1)  # a password: never printed
    assert main(["missed", url, "-o", str(tmp_path / "m.csv"), "--days", "3"]) == 0
    assert "1 possible miss by 1 worker" in capsys.readouterr().out
    assert read_table(tmp_path / "m.csv")["report_id"].tolist() == ["R1"]
    assert main(["targets", url, "-o", str(tmp_path / "t.csv"), "--at", "2026-05-20"]) == 0
    assert "1 target overdue of 2" in capsys.readouterr().out
    assert main(["heads", url, "-o", str(tmp_path / "heads.gpkg")]) == 0
    assert "2 buildings without a head of 10" in capsys.readouterr().out
    assert main(["callbacks", "satisfaction", url, "-o", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert "postgres:***@" in err and "no callbacks recorded" in err and "pw-9" not in err


def test_missing_layers_are_messages(capsys, tmp_path):
    path = tmp_path / "ws.gpkg"
    create_store(path, {"units": grid_units(2, 1)})
    assert main(["missed", str(path), "-o", str(tmp_path / "m.csv")]) == 1
    err = capsys.readouterr().err
    assert "no reports, patrols, assignments layer" in err and "Traceback" not in err
    assert main(["targets", str(path), "-o", str(tmp_path / "t.csv")]) == 1
    assert "no inspection_targets layer" in capsys.readouterr().err
