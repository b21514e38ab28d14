"""The seeded season simulator: reproducible, contract-shaped, fakes and clusters planted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridkit.layers import check_layer
from gridkit.ops.cases import overdue
from gridkit.ops.hotspots import hotspots
from gridkit.ops.patrols import patrol_compliance
from gridkit.ops.reports import load_report_rules
from gridkit.ops.simulate import simulate
from gridkit.synth.ops import grid_units, grid_workers


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
    assert set(sim.reports["status"]) > {"closed", "handling", "reported_back", "verified"}
    # Every report has its intake event (采集), and only one.
    intake = sim.report_events[sim.report_events["action"] == "collect"]
    assert (intake["to_status"] == "collected").all() and intake["from_status"].isna().all()
    assert sorted(intake["report_id"]) == sorted(sim.reports["report_id"])


def test_the_season_runs_the_centres_workflow(season):
    # every step is one the rules allow from where the case was, the branches happen
    # (return, rework, extension, rejection, escalation), and each case's history ends
    # in its status
    *_, sim = season
    rules = load_report_rules()
    ev = sim.report_events
    counts = ev["action"].value_counts()
    for action in ("open", "dispatch", "accept", "report_back", "verify", "close"):
        assert counts.get(action, 0) > 0.4 * len(sim.reports), action
    for action in ("return", "rework", "extend", "reject", "escalate"):
        assert counts.get(action, 0) > 0, action
    steps = ev[~ev["action"].isin(["collect", "escalate"])]
    for action, frm, to in steps[["action", "from_status", "to_status"]].itertuples(index=False):
        spec = rules.actions[action]
        assert frm in spec.from_ and to == (spec.to or frm), (action, frm, to)
    esc = ev[ev["action"] == "escalate"]
    assert (esc["from_status"] == esc["to_status"]).all()
    assert esc["note"].str.startswith("escalated (督办) to level ").all()
    # never two escalations to the same level of one lapse
    level = esc["note"].str.extract(r"level (\d)")[0]
    assert (
        not pd.DataFrame({"r": esc["report_id"], "d": esc["due_at"], "l": level}).duplicated().any()
    )
    moves = ev[ev["action"] != "escalate"].sort_values("at", kind="stable")
    last = moves.groupby("report_id")["to_status"].last()
    now = sim.reports.set_index("report_id")["status"]
    assert (last.reindex(now.index) == now).all()
    # the cases still open and past their stage's deadline at the season's end are escalated
    late = overdue(sim.reports, at="2026-06-01T00:00+08:00")
    assert late.any() and (sim.reports.loc[late, "escalation_level"] >= 1).all()


def test_fakes_are_caught_and_genuine_patrols_count(season):
    *_, sim = season
    p = sim.patrols.set_index("patrol_id")
    assert len(sim.fake_patrol_ids) > 0
    assert not p.loc[sim.fake_patrol_ids, "valid"].any()
    assert not p.loc[sim.short_patrol_ids, "valid"].any()
    assert p.loc[sim.short_patrol_ids, "too_short"].all()
    genuine = p.drop(index=sim.fake_patrol_ids + sim.short_patrol_ids)
    assert genuine["valid"].mean() > 0.99


def test_genuine_patrols_meet_the_level_minimum_with_margin(season):
    *_, sim = season
    p = sim.patrols.set_index("patrol_id")
    genuine = p.drop(index=sim.fake_patrol_ids + sim.short_patrol_ids)
    # 2.5-5 km measured, 40-90 min typical; never just above the 2 km / 30 min minimum.
    assert 2500 <= genuine["length_m"].median() <= 5000
    assert 40 <= genuine["duration_min"].median() <= 90
    assert (genuine["length_m"] < 2200).mean() < 0.02
    assert (p["too_short"]).mean() < 0.1
    # Planted short patrols are a small share.
    assert 0 < len(sim.short_patrol_ids) < 0.06 * len(p)


def test_patrols_follow_local_calendar_weeks(season):
    *_, assignments, sim = season
    # Village workers patrol every local (Monday-first) week unless they skip it: most
    # worker-weeks have a valid patrol, so weekly compliance is not an artefact.
    v = sim.patrols[sim.patrols["valid"]]
    local = v["started_at"].dt.tz_convert("Asia/Shanghai")
    assert (local.dt.hour >= 8).all() and (local.dt.hour < 17).all()
    week = (local.dt.tz_localize(None) - pd.Timestamp("2026-03-02")).dt.days // 7
    per = pd.DataFrame({"w": v["worker_id"].to_numpy(), "k": week.to_numpy()}).drop_duplicates()
    share = len(per) / (len(assignments) * 13)
    assert 0.75 < share < 0.95  # 15 % of worker-weeks missed, a few fakes


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
