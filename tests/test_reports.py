"""Report intake, duplicates, hand-over (交办), lifecycle transitions and escalation (督办)."""

from __future__ import annotations

import itertools
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import Point

from gridkit.errors import GridkitError, GridkitWarning
from gridkit.layers import check_layer
from gridkit.ops.cases import act, escalate, extend_deadline, hand_over, overdue, transition
from gridkit.ops.reports import (
    EVENT_COLUMNS,
    ReportError,
    TransitionError,
    intake,
    load_report_rules,
    parent_admin_code,
)
from gridkit.ops.routing import handler_rules
from gridkit.ops.routing import route as route_handlers
from gridkit.ops.worktime import add_working_hours, stage_deadline
from gridkit.synth.ops import grid_units, grid_workers

RULES = load_report_rules()
HANDLERS = handler_rules()


def _due(start, category: str, stage: str) -> pd.Timestamp:
    """The deadline of ``stage`` entered at ``start``, counted in working time."""
    return stage_deadline(pd.Series([pd.Timestamp(start)]), category, stage, HANDLERS).iloc[0]


def _plus_working_h(start, hours: float) -> pd.Timestamp:
    return add_working_hours(pd.Series([pd.Timestamp(start)]), hours).iloc[0]


STATUSES = [
    "collected",
    "opened",
    "dispatched",
    "handling",
    "reported_back",
    "verified",
    "closed",
    "returned",
    "rejected",
]
T0 = pd.Timestamp("2026-05-01T08:00Z")


@pytest.fixture(scope="module")
def units():
    return grid_units(3, 3, admin_code="430202001")


@pytest.fixture(scope="module")
def departments():
    return pd.DataFrame(
        {
            "department_id": ["CITY-UM", "D-UM", "T-UM", "D-WATER"],
            "name": ["市城管局", "区城管局", "街道城管办", "区水利局"],
            "admin_code": ["4302", "430202", "430202001", "430202"],
            "categories": [
                "street_light;road_damage",
                "street_light",
                "street_light;cctv",
                "sand_mining",
            ],
        }
    )


def _new(points, categories, sources=None, times=None, **cols):
    n = len(points)
    return gpd.GeoDataFrame(
        {
            "category": categories,
            "source": sources or ["patrol"] * n,
            "reported_at": times or [T0] * n,
            **cols,
        },
        geometry=[None if p is None else Point(p) for p in points],
        crs=4326,
    )


def test_intake_places_reports_and_writes_events(units):
    new = _new(
        [(113.1025, 27.8025), None],
        ["street_light", "cctv"],
        unit_id=[None, "X9"],
        admin_code=[None, "430202001"],
    )
    reports, events = intake(new, units=units)
    # every report enters the first stage, 采集 (collected), whatever its category
    assert reports["status"].tolist() == ["collected", "collected"]
    assert reports["unit_id"].tolist() == [units.unit_id[0], "X9"]
    assert reports["admin_code"].tolist() == ["430202001", "430202001"]
    assert reports["report_id"].is_unique
    assert list(events.columns) == EVENT_COLUMNS
    assert events["to_status"].tolist() == ["collected"] * 2
    assert events["action"].tolist() == ["collect"] * 2
    assert events["from_status"].isna().all()
    check_layer(reports, "reports")
    check_layer(events, "report_events")


def test_intake_rejects_unknown_category_source_and_unplaced(units):
    with pytest.raises(ReportError, match="unknown report categories"):
        intake(_new([(113.1, 27.8)], ["ufo"]), units=units)
    with pytest.raises(ReportError, match="unknown report sources"):
        intake(_new([(113.1, 27.8)], ["cctv"], sources=["rumour"]), units=units)
    with pytest.raises(ReportError, match="no point, unit_id or admin_code"):
        intake(_new([None], ["cctv"], sources=["hotline"]), units=units)
    assert issubclass(ReportError, GridkitError) and issubclass(TransitionError, ValueError)


def test_intake_gcj02_points(units):
    from gridkit.crs import wgs84_to_gcj02

    lon, lat = wgs84_to_gcj02(113.1003, 27.8025)
    new = _new([(float(lon), float(lat))], ["cctv"]).set_crs(None, allow_override=True)
    reports, _ = intake(new, units=units, crs="gcj02")
    assert reports["unit_id"].iloc[0] == units.unit_id[0]


def test_duplicates_link_to_open_report_of_same_category(units):
    base = (113.1025, 27.8025)
    near = (113.1025 + 0.0003, 27.8025)  # ~30 m east
    far = (113.1025 + 0.001, 27.8025)  # ~100 m east
    first, _ = intake(_new([base], ["street_light"]), units=units)
    rid = first["report_id"].iloc[0]
    new = _new(
        [near, near, far],
        ["street_light", "cctv", "street_light"],
        times=[T0 + pd.Timedelta(hours=h) for h in (1, 1, 1)],
    )
    reports, events = intake(new, units=units, existing=first)
    dup = reports.set_index("report_id")["duplicate_of"]
    assert len(reports) == 4
    new_ids = reports["report_id"].iloc[1:].tolist()
    assert dup[new_ids[0]] == rid  # near, same category
    assert pd.isna(dup[new_ids[1]])  # near, other category
    assert pd.isna(dup[new_ids[2]])  # beyond 50 m
    assert "duplicate of " + rid in events["note"].iloc[0]
    # A wider radius links the far one too.
    reports2, _ = intake(
        new, units=units, existing=first, rules=load_report_rules(duplicate_radius_m=150)
    )
    assert reports2.set_index("report_id")["duplicate_of"][new_ids[2]] == rid


def test_duplicates_within_a_batch_chain_to_the_first(units):
    pts = [(113.1025 + k * 0.0003, 27.8025) for k in range(3)]  # 30 m apart
    times = [T0 + pd.Timedelta(minutes=m) for m in (0, 5, 10)]
    reports, _ = intake(_new(pts, ["road_damage"] * 3, times=times), units=units)
    ids = reports["report_id"].tolist()
    assert pd.isna(reports["duplicate_of"].iloc[0])
    assert reports["duplicate_of"].iloc[1] == ids[0]
    # 60 m from the first, 30 m from a duplicate: not linked through the duplicate.
    assert pd.isna(reports["duplicate_of"].iloc[2])


def test_closed_reports_do_not_attract_duplicates(units):
    first, _ = intake(_new([(113.1025, 27.8025)], ["street_light"]), units=units)
    first["status"] = "closed"
    reports, _ = intake(_new([(113.1026, 27.8025)], ["street_light"]), units=units, existing=first)
    assert reports["duplicate_of"].isna().all()


def test_hand_over_routes_to_most_local_department_with_support_and_worker(units, departments):
    _, assignments = grid_workers(units)
    new = _new(
        [(113.1025, 27.8025), (113.1075, 27.8025), (113.1075, 27.8075), (113.1025, 27.8075)],
        ["street_light", "road_damage", "sand_mining", "street_light"],
    )
    reports, _ = intake(new, units=units)
    reports.loc[3, "duplicate_of"] = reports["report_id"].iloc[0]
    at = pd.Timestamp("2026-05-01T09:00Z")
    out, events = hand_over(
        reports, departments=departments, assignments=assignments, at=at, actor_id="S1"
    )
    # opened (立案) and dispatched (派遣); the duplicate stays collected
    assert out["status"].tolist() == ["dispatched", "dispatched", "dispatched", "collected"]
    assert out["lead_department_id"].tolist()[:3] == ["T-UM", "CITY-UM", "D-WATER"]
    assert out["support_department_ids"].iloc[0] == "CITY-UM;D-UM"
    assert pd.isna(out["support_department_ids"].iloc[1])
    # routing says why it chose the lead: no property company, committee or township
    # office serves street lights here (these departments are all bureaus, the layer
    # giving no handler_type), so the most local bureau serving them, in Chinese and English
    reason = out["handler_reason"].iloc[0]
    assert reason == route_handlers(out.iloc[[0]], departments)["handler_reason"].iloc[0]
    assert reason.startswith(
        f"{out['admin_code'].iloc[0]}没有负责路灯损坏的物业、社区居委会、街道办事处; "
        "最近的主管部门: 街道城管办(T-UM, 430202001)负责"
    )
    assert "nearest bureau serving street_light in " in reason
    # the unit's grid worker is the assignee: the one who verifies on site (核查)
    assert (
        out["assignee_id"].iloc[0]
        == assignments.set_index("unit_id").loc[units.unit_id[0], "worker_id"]
    )
    assert (out["opened_at"].iloc[:3] == at).all() and pd.isna(out["opened_at"].iloc[3])
    # the deadline is the handling limit of the category, counted in working time from
    # the dispatch (1 May, a holiday until 5 May): street lights 3 working days,
    # sand mining 8 working hours
    assert out["due_at"].iloc[0] == _due(at, "street_light", "handle")
    assert out["due_at"].iloc[0] == pd.Timestamp("2026-05-08T17:30+08:00")
    assert out["due_at"].iloc[2] == _due(at, "sand_mining", "handle")
    # Wednesday 6 May 08:30-12:00, 14:00-17:30 (7 h), then 1 h on Thursday
    assert out["due_at"].iloc[2] == pd.Timestamp("2026-05-07T09:30+08:00")
    assert len(events) == 6 and (events["actor_id"] == "S1").all()
    ids = out["report_id"].iloc[:3].tolist()
    assert events["report_id"].tolist() == ids + ids
    assert events["action"].tolist() == ["open"] * 3 + ["dispatch"] * 3
    assert (events["from_status"] == ["collected"] * 3 + ["opened"] * 3).all()
    assert (events["to_status"] == ["opened"] * 3 + ["dispatched"] * 3).all()
    # the dispatch event names the lead, the supporting departments and why
    assert events["note"].iloc[3] == f"派遣 lead T-UM; support CITY-UM;D-UM; {reason}"


def test_hand_over_accepts_comma_or_semicolon_separated_categories(units):
    # gridkit.synth writes "encroachment,reclamation,sand_mining"; hand-made layers use ";".
    departments = pd.DataFrame(
        {
            "department_id": ["D-WATER", "D-UM"],
            "name": ["区水利局", "区城管局"],
            "admin_code": ["430202", "430202"],
            "categories": ["encroachment,reclamation, sand_mining", "street_light; cctv;"],
        }
    )
    new = _new(
        [(113.1025, 27.8025), (113.1075, 27.8025), (113.1075, 27.8075)],
        ["sand_mining", "cctv", "reclamation"],
    )
    reports, _ = intake(new, units=units)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridkitWarning)  # every report finds a department
        out, events = hand_over(reports, departments=departments, at=T0)
    assert out["lead_department_id"].tolist() == ["D-WATER", "D-UM", "D-WATER"]
    assert (out["status"] == "dispatched").all() and len(events) == 6


def test_hand_over_warns_when_no_department_handles_it(units, departments):
    reports, _ = intake(_new([(113.1025, 27.8025)], ["green_belt"]), units=units)
    with pytest.warns(GridkitWarning, match="no department"):
        out, events = hand_over(reports, departments=departments, at=T0)
    # opened, waiting for a dispatcher to name a department; never dispatched to nobody
    assert out["status"].tolist() == ["opened"] and events["action"].tolist() == ["open"]
    assert pd.isna(out["lead_department_id"].iloc[0])


def test_hand_over_respects_assignment_validity(units, departments):
    assignments = pd.DataFrame(
        {
            "unit_id": [units.unit_id[0]] * 2,
            "worker_id": ["OLD", "NEW"],
            "role": ["grid_worker"] * 2,
            "valid_from": pd.to_datetime(["2025-01-01", "2026-04-01"], utc=True),
            "valid_to": pd.to_datetime(["2026-04-01", None], utc=True),
        }
    )
    reports, _ = intake(_new([(113.1025, 27.8025)], ["cctv"]), units=units)
    out, _ = hand_over(reports, departments=departments, assignments=assignments, at=T0)
    assert out["assignee_id"].iloc[0] == "NEW"


def _one(status="collected", category="cctv", **extra):
    return pd.DataFrame(
        {
            "report_id": ["R1"],
            "category": [category],
            "source": ["patrol"],
            "status": [status],
            "admin_code": ["430202001001"],
            "lead_department_id": ["D1"],
            "reported_at": [T0],
            "due_at": [T0 + pd.Timedelta(days=3)],
            **{k: [v] for k, v in extra.items()},
        }
    )


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(STATUSES, STATUSES)))
def test_every_transition_rule(frm, to):
    # by status (transition): allowed exactly when an action of the rules leads from
    # frm to to; the action taken is that one
    r = _one(frm, category="illegal_fishing", resolved_by="W1")  # needs no evidence
    allowed = to in RULES.transitions.get(frm, ())
    if (frm, to) == ("reported_back", "returned"):
        # the first wave's "returned" from resolved meant rework: read so, not refused
        out, ev = transition(
            r, "R1", to, actor_id="W2", note="reason", at=T0 + pd.Timedelta(1, "D")
        )
        assert ev["action"].iloc[0] == "rework" and out["status"].iloc[0] == "handling"
        return
    kwargs = {"actor_id": "W2", "at": T0 + pd.Timedelta(days=1), "note": "reason"}
    if allowed:
        out, ev = transition(r, "R1", to, department_id="D2", **kwargs)
        assert out["status"].iloc[0] == to
        assert ev[["from_status", "to_status"]].iloc[0].tolist() == [frm, to]
        assert ev["actor_id"].iloc[0] == "W2"
        action = RULES.actions[ev["action"].iloc[0]]
        assert frm in action.from_ and action.to == to
    else:
        with pytest.raises(TransitionError, match=f"it is '{frm}'"):
            transition(r, "R1", to, department_id="D2", **kwargs)
        # nothing in the rules leads there
        assert not any(frm in a.from_ and a.to == to for a in RULES.actions.values())


@pytest.mark.parametrize(
    ("old", "new", "target", "action"),
    [
        ("reported", "collected", "assigned", None),
        ("assigned", "dispatched", "in_progress", "accept"),
        ("in_progress", "handling", "resolved", "report_back"),
        ("resolved", "reported_back", "returned", "rework"),
        ("resolved", "reported_back", "verified", "verify"),
    ],
)
def test_first_wave_statuses_read_as_the_stages_they_meant(old, new, target, action):
    r = _one(old, category="illegal_fishing", resolved_by="W1")
    kwargs = {"actor_id": "W2", "at": T0 + pd.Timedelta(days=1), "note": "reason"}
    if action is None:  # reported -> assigned needs an open case first
        with pytest.raises(TransitionError, match=f"it is '{new}'"):
            transition(r, "R1", target, **kwargs)
        return
    out, ev = transition(r, "R1", target, **kwargs)
    assert ev["from_status"].iloc[0] == new and ev["action"].iloc[0] == action
    assert out["status"].iloc[0] == RULES.actions[action].to


def test_full_lifecycle_with_evidence_rework_and_verification():
    # road damage needs before and after photos before it may be reported back
    r = _one("dispatched", category="road_damage", assignee_id="W1")
    t = [T0 + pd.Timedelta(hours=h) for h in range(1, 12)]
    r, e1 = act(r, "R1", "accept", actor_id="D1-staff", at=t[0], evidence="before:b.jpg")
    with pytest.raises(TransitionError, match="lacks after evidence"):
        act(r, "R1", "report_back", actor_id="D1-staff", at=t[1])
    r, e2 = act(r, "R1", "report_back", actor_id="D1-staff", at=t[1], evidence={"after": "a.jpg"})
    assert r["resolved_at"].iloc[0] == t[1] and r["resolved_by"].iloc[0] == "D1-staff"
    assert r["evidence"].iloc[0] == "before:b.jpg;after:a.jpg"
    # who reported back cannot verify, nor send it back for rework
    for step in ("verify", "rework"):
        with pytest.raises(TransitionError, match="cannot also verify"):
            act(r, "R1", step, actor_id="D1-staff", at=t[2], note="x")
    with pytest.raises(TransitionError, match="reason"):
        act(r, "R1", "rework", actor_id="W1", at=t[2])
    r, e3 = act(r, "R1", "rework", actor_id="W1", at=t[2], note="photo angle differs")
    assert r["status"].iloc[0] == "handling" and r["reworks"].iloc[0] == 1
    assert r["returns"].iloc[0] == 0 and pd.isna(r["resolved_at"].iloc[0])
    assert pd.isna(r["resolved_by"].iloc[0])
    # the handling clock starts again for the rework (road damage: 5 working days)
    assert r["due_at"].iloc[0] == _due(t[2], "road_damage", "handle")
    r, e4 = act(r, "R1", "report_back", actor_id="D1-staff", at=t[3], evidence="after:a2.jpg")
    r, e5 = act(r, "R1", "verify", actor_id="W1", at=t[4])
    with pytest.raises(TransitionError, match="allowed from: closed"):
        act(r, "R1", "reopen", actor_id="C1", at=t[5], note="x")  # not closed yet
    r, e6 = act(r, "R1", "close", actor_id="C1", at=t[5])
    assert r["status"].iloc[0] == "closed" and r["closed_at"].iloc[0] == t[5]
    assert pd.isna(r["due_at"].iloc[0])  # no clock once closed
    events = pd.concat([e1, e2, e3, e4, e5, e6])
    assert events["action"].tolist() == [
        "accept",
        "report_back",
        "rework",
        "report_back",
        "verify",
        "close",
    ]
    assert events["to_status"].tolist() == [
        "handling",
        "reported_back",
        "handling",
        "reported_back",
        "verified",
        "closed",
    ]
    # each event records the deadline of the stage it ended
    assert events["due_at"].iloc[0] == T0 + pd.Timedelta(days=3)
    assert events["due_at"].iloc[2] == _due(t[1], "road_damage", "verify")  # 核查 clock


def test_rejection_needs_reason_and_time_cannot_precede_report():
    with pytest.raises(TransitionError, match="reason"):
        transition(_one(), "R1", "rejected", actor_id="S1")
    with pytest.raises(TransitionError, match="reason"):
        act(_one(), "R1", "reject", actor_id="S1", note="   ")
    out, ev = act(_one(), "R1", "reject", actor_id="S1", note="不属于受理范围", at=T0)
    assert out["status"].iloc[0] == "rejected" and ev["note"].iloc[0] == "不属于受理范围"
    with pytest.raises(TransitionError, match="before it was reported"):
        act(_one("dispatched"), "R1", "accept", actor_id="D1", at=T0 - pd.Timedelta(days=1))


def test_transition_is_all_or_nothing():
    r = pd.concat([_one("dispatched"), _one("collected").assign(report_id="R2")], ignore_index=True)
    before = r.copy()
    with pytest.raises(TransitionError, match="R2 is 'collected'") as err:
        act(r, ["R1", "R2"], "accept", actor_id="D1", at=T0)
    assert "R1" not in err.value.message  # R1 could; only R2 is named
    pd.testing.assert_frame_equal(r, before)  # the caller's frame is untouched
    # every case that may not is named, and nothing changes
    with pytest.raises(TransitionError, match="R1 is 'dispatched'.*R2 is 'collected'"):
        act(r, ["R1", "R2"], "close", actor_id="C1", at=T0)
    with pytest.raises(TransitionError, match="it is 'collected', 'dispatched'"):
        transition(r, ["R1", "R2"], "in_progress", actor_id="W1", at=T0)
    out, ev = act(r, ["R1"], "accept", actor_id="D1", at=T0)
    assert out["status"].tolist() == ["handling", "collected"] and len(ev) == 1
    with pytest.raises(ReportError, match="unknown report_id"):
        act(r, ["R9"], "accept", actor_id="D1")
    with pytest.raises(ReportError, match="unknown action 'fix'"):
        act(r, ["R1"], "fix", actor_id="D1")


def test_extend_deadline_limits():
    r = _one("handling")
    due = r["due_at"].iloc[0]
    r, ev = extend_deadline(r, "R1", by_h=24, actor_id="D1", note="rain", at=T0)
    # 延期 adds working hours (4 May is a holiday: the 24 hours start on 6 May)
    assert r["due_at"].iloc[0] == _plus_working_h(due, 24)
    assert r["due_at"].iloc[0] == pd.Timestamp("2026-05-09T11:30+08:00")  # 调休 Saturday
    assert r["extensions"].iloc[0] == 1
    assert ev["from_status"].iloc[0] == ev["to_status"].iloc[0] == "handling"
    assert ev["action"].iloc[0] == "extend" and "rain" in ev["note"].iloc[0]
    assert pd.isna(ev["due_at"].iloc[0])  # the stage goes on: it ended nothing
    # at most max_extension (10 days) each time
    with pytest.raises(TransitionError, match="between 0 and 240"):
        extend_deadline(r, "R1", by_h=241, actor_id="D1", note="x", at=T0)
    with pytest.raises(TransitionError, match="between 0 and 240"):
        act(r, "R1", "extend", actor_id="D1", note="x", at=T0)  # no hours
    r, _ = extend_deadline(r, "R1", by_h=240, actor_id="D1", note="x", at=T0)
    assert r["due_at"].iloc[0] == _plus_working_h(_plus_working_h(due, 24), 240)
    assert r["due_at"].iloc[0] == _plus_working_h(due, 264)
    # at most max_extensions (2) times
    with pytest.raises(TransitionError, match="already extended 2 times"):
        extend_deadline(r, "R1", by_h=1, actor_id="D1", note="again", at=T0)
    with pytest.raises(TransitionError, match="reason"):
        extend_deadline(_one("handling"), "R1", by_h=1, actor_id="D1", note="")
    # only while handling
    for status in ("dispatched", "reported_back", "closed"):
        with pytest.raises(TransitionError, match=f"R1 is '{status}'"):
            extend_deadline(_one(status), "R1", by_h=1, actor_id="D1", note="x", at=T0)


def test_escalation_climbs_levels_and_repeats():
    r = _one("handling")
    due = r["due_at"].iloc[0]
    assert not overdue(r, at=due - pd.Timedelta(hours=1)).iloc[0]
    out, ev = escalate(r, at=due - pd.Timedelta(hours=1))
    assert len(ev) == 0
    t1 = due + pd.Timedelta(hours=1)
    out, ev = escalate(r, at=t1)
    assert out["escalated_to"].iloc[0] == "430202001" and out["escalation_level"].iloc[0] == 1
    assert ev["note"].iloc[0].startswith("escalated (督办) to level 1, 430202001")
    assert ev["from_status"].iloc[0] == ev["to_status"].iloc[0] == "handling"
    assert out["status"].iloc[0] == "handling"
    out, ev = escalate(out, at=t1 + pd.Timedelta(hours=10))  # too soon to repeat
    assert len(ev) == 0
    out, ev = escalate(out, at=t1 + pd.Timedelta(hours=72))
    assert out["escalated_to"].iloc[0] == "430202" and len(ev) == 1
    out, _ = escalate(out, at=t1 + pd.Timedelta(hours=144))
    out, ev = escalate(out, at=t1 + pd.Timedelta(hours=216))  # max_level 3 reached
    assert out["escalation_level"].iloc[0] == 3 and len(ev) == 0
    assert out["escalated_to"].iloc[0] == "430200"
    # finished cases are not overdue, nor a case waiting on its reporter
    for status in ("closed", "rejected"):
        assert len(escalate(_one(status), at=t1).events) == 0
    paused = _one("handling", paused_at=T0 + pd.Timedelta(days=2))
    assert not overdue(paused, at=t1).iloc[0] and len(escalate(paused, at=t1).events) == 0
    # reported back but not verified in time: the 核查 stage lapses too
    assert len(escalate(_one("reported_back"), at=t1).events) == 1


def test_parent_admin_code_from_table_and_codes():
    areas = pd.DataFrame({"admin_code": ["X1"], "parent_code": ["X0"]})
    assert parent_admin_code("X1", areas) == "X0"
    assert parent_admin_code("430200") == "43"
    assert parent_admin_code("430202001001") == "430202001"
    assert parent_admin_code("430202000000") == "4302"


def test_generated_ids_do_not_collide(units):
    first, _ = intake(_new([(113.1025, 27.8025)], ["cctv"]), units=units)
    second, _ = intake(_new([(113.1125, 27.8125)], ["cctv"]), units=units, existing=first)
    assert second["report_id"].is_unique and len(second) == 2
    assert np.all(second["reported_at"].notna())


# ------------------------------------------------------------------ the duplicate search


def _around(lon: float, lat: float, metres: list[tuple[float, float]]) -> np.ndarray:
    import shapely

    m_lat = 1 / 111_000.0
    m_lon = m_lat / np.cos(np.radians(lat))
    return shapely.points([(lon + e * m_lon, lat + n * m_lat) for e, n in metres])


def test_duplicate_pairs_exact_and_coarse() -> None:
    from gridkit.ops.reports import duplicate_pairs

    new = _around(113.1, 27.8, [(0, 0), (500, 0)])
    old = _around(113.1, 27.8, [(30, 0), (0, 45), (0, 70), (10, 0)])
    cats_old = ["cctv", "cctv", "cctv", "sewage"]
    pairs = duplicate_pairs(new, ["cctv", "cctv"], old, cats_old, radius_m=50)
    assert pairs.report.tolist() == [0, 0] and pairs.candidate.tolist() == [0, 1]
    assert np.allclose(pairs.distance_m, [30, 45], atol=0.5)
    # the coarse stage holds the exact pairs and a margin, never another category
    coarse = duplicate_pairs(new, ["cctv", "cctv"], old, cats_old, radius_m=50, exact=False)
    assert set(coarse.candidate) >= {0, 1} and 3 not in set(coarse.candidate)
    assert np.isnan(coarse.distance_m).all()


def test_duplicate_pairs_ignore_missing_points_and_no_radius() -> None:
    from gridkit.ops.reports import duplicate_pairs

    new = np.array([None, *_around(113.1, 27.8, [(0, 0)])], dtype=object)
    old = np.array([*_around(113.1, 27.8, [(5, 0)]), None], dtype=object)
    pairs = duplicate_pairs(new, ["a", "a"], old, ["a", "a"], radius_m=50)
    assert pairs.report.tolist() == [1] and pairs.candidate.tolist() == [0]
    assert len(duplicate_pairs(new, ["a", "a"], old, ["a", "a"], radius_m=0).report) == 0
    assert len(duplicate_pairs(new[:1], ["a"], old, ["a", "a"], radius_m=50).report) == 0


def test_duplicate_pairs_large_search_uses_a_tree_with_the_same_answer(monkeypatch) -> None:
    import gridkit.ops.reports as reports

    rng = np.random.default_rng(5)
    new = _around(113.1, 27.8, rng.uniform(-300, 300, (40, 2)).tolist())
    old = _around(113.1, 27.8, rng.uniform(-300, 300, (300, 2)).tolist())
    cats_new, cats_old = rng.integers(0, 2, 40), rng.integers(0, 2, 300)
    small = reports.duplicate_pairs(new, cats_new, old, cats_old, radius_m=60)
    monkeypatch.setattr(reports, "_BROADCAST_MAX", 0)  # always the R-tree
    tree = reports.duplicate_pairs(new, cats_new, old, cats_old, radius_m=60)
    assert len(small.report) > 10
    assert small.report.tolist() == tree.report.tolist()
    assert small.candidate.tolist() == tree.candidate.tolist()


#: a point's offset east and north (metres) and its category
_OFFSET = st.tuples(st.floats(-150, 150), st.floats(-150, 150), st.integers(0, 1))


@settings(max_examples=60, deadline=None)
@given(
    lon=st.sampled_from([113.1, 113.999, 114.0005, -70.6]),  # 114°E: zones 49 and 50 meet
    lat=st.sampled_from([27.8, -33.4, 0.0005]),
    radius=st.floats(1, 120),
    new=st.lists(_OFFSET, min_size=1, max_size=8),
    old=st.lists(_OFFSET, max_size=12),
)
def test_duplicate_pairs_are_every_pair_within_the_radius_by_brute_force(
    lon, lat, radius, new, old
) -> None:
    """Each pair of a report and a candidate of its category within the radius, at the
    distance the layers' own projection gives (GeoSeries.to_crs to local_metric_crs of
    them all), whatever the zone (across a UTM zone edge, south, at the equator)."""
    from gridkit.crs import WGS84, local_metric_crs
    from gridkit.ops.reports import duplicate_pairs

    pts = _around(lon, lat, [(e, n) for e, n, _ in new])
    earlier = _around(lon, lat, [(e, n) for e, n, _ in old] or [(0, 0)])[: len(old)]
    cand = np.concatenate([earlier, pts])
    cats = np.array([c for *_, c in new])
    cand_cats = np.concatenate([np.array([c for *_, c in old], dtype=int), cats])
    pairs = duplicate_pairs(pts, cats, cand, cand_cats, radius_m=radius)

    both = gpd.GeoSeries(np.concatenate([pts, cand]), crs=WGS84)
    metric = np.asarray(both.to_crs(local_metric_crs(both)).array)
    p_m, c_m = metric[: len(pts)], metric[len(pts) :]
    want = [
        (i, j, shapely.distance(p_m[i], c_m[j]))
        for i in range(len(pts))
        for j in range(len(cand))
        if cats[i] == cand_cats[j] and shapely.distance(p_m[i], c_m[j]) <= radius
    ]
    got = list(zip(pairs.report.tolist(), pairs.candidate.tolist(), pairs.distance_m.tolist(),
                   strict=True))  # fmt: skip
    assert got == want
