"""The seeded season simulator: reproducible, contract-shaped, fakes and clusters planted."""

from __future__ import annotations

import numpy as np
import pytest

from gridkit._ops_synth import grid_units, grid_workers
from gridkit.hotspots import hotspots
from gridkit.layers import check_layer
from gridkit.patrols import patrol_compliance
from gridkit.simulate import simulate


@pytest.fixture(scope="module")
def season():
    units = grid_units(8, 8, river_rows=1, seed=2)
    workers, assignments = grid_workers(units)
    sim = simulate(
        units,
        workers,
        assignments,
        start="2026-03-02",
        end="2026-06-01",
        seed=4,
        reports_per_unit=2.0,
        clusters=1,
        cluster_boost=8.0,
        fake_share=0.05,
    )
    return units, workers, assignments, sim


def test_same_seed_same_season(season):
    units, workers, assignments, sim = season
    again = simulate(
        units,
        workers,
        assignments,
        start="2026-03-02",
        end="2026-06-01",
        seed=4,
        reports_per_unit=2.0,
        clusters=1,
        cluster_boost=8.0,
        fake_share=0.05,
    )
    assert sim.patrols["patrol_id"].tolist() == again.patrols["patrol_id"].tolist()
    assert np.allclose(sim.patrols["length_m"], again.patrols["length_m"])
    assert sim.reports["report_id"].tolist() == again.reports["report_id"].tolist()


def test_layers_follow_the_contract(season):
    *_, sim = season
    check_layer(sim.reports, "reports")
    check_layer(sim.report_events, "report_events")
    check_layer(sim.patrol_points, "patrol_points")
    check_layer(sim.departments, "departments")
    assert (
        set(sim.reports["status"]) > {"closed", "reported"} or len(set(sim.reports["status"])) > 3
    )
    # Every report has its intake event.
    intake = sim.report_events[sim.report_events["to_status"] == "reported"]
    assert set(intake["report_id"]) == set(sim.reports["report_id"])


def test_fakes_are_caught_and_genuine_patrols_count(season):
    *_, sim = season
    p = sim.patrols.set_index("patrol_id")
    assert len(sim.fake_patrol_ids) > 0
    assert not p.loc[sim.fake_patrol_ids, "valid"].any()
    genuine = p.drop(index=sim.fake_patrol_ids)
    assert genuine["valid"].mean() > 0.97


def test_planted_cluster_is_hot_and_compliance_runs(season):
    units, workers, assignments, sim = season
    hs = hotspots(sim.reports, units, permutations=199, seed=1)
    planted = hs["unit_id"].isin(sim.planted_units).to_numpy()
    hot = hs["hotspot"].str.startswith("hot").to_numpy()
    assert hot[planted].mean() >= 0.5
    assert hot[~planted].mean() <= 0.15
    res = patrol_compliance(
        sim.patrols,
        assignments,
        period=("2026-03-02", "2026-06-01"),
        units=units,
        workers=workers,
        now="2026-06-01T00:00Z",
    )
    assert len(res) == len(assignments)
    assert 0.2 < res["compliant"].mean() <= 1.0
