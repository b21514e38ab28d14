"""River chiefs' duty (issue 20): contract, patrol modes, compliance by chief with the
period grammar (against a brute force over random calendars), joint and night patrols."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString

from gridkit import check_layer
from gridkit.errors import InvalidLayerError
from gridkit.ops.chiefs import (
    chief_compliance,
    count_by_rule,
    joint_pairs,
    night_compliance,
    period_kind,
    rule_windows,
    section_hits,
)
from gridkit.ops.patrols import RulesError, flag_patrols, load_patrol_rules, period_bounds
from gridkit.synth.people import chief_demo

TZ = ZoneInfo("Asia/Shanghai")
RULES = load_patrol_rules()


# --------------------------------------------------------------------------- item 1


def test_contract_takes_province_general_roles_and_terms():
    rc = pd.DataFrame(
        {
            "chief_id": ["P", "G", "PC"],
            "worker_id": ["W1", "W2", "W3"],
            "level": ["province", "general", "county"],
            "river_id": ["XJ", None, "XJ"],
            "admin_code": ["430000", "430202", "430202"],
            "role": ["chief", "chief", "police"],
            "valid_from": pd.to_datetime(["2025-01-01", "2025-01-01", None], utc=True),
            "valid_to": pd.to_datetime([None, "2026-06-30", None], utc=True),
        }
    )
    assert len(check_layer(rc, "river_chiefs")) == 3
    admin = gpd.GeoDataFrame(
        {"admin_code": ["430000"], "name": ["湖南省"], "level": ["province"]},
        geometry=[LineString([(0, 0), (1, 1)]).buffer(1)],
        crs=4326,
    )
    assert check_layer(admin, "admin_areas")["level"].tolist() == ["province"]
    with pytest.raises(InvalidLayerError, match="role"):
        check_layer(rc.assign(role=["chief", "chief", "boss"]), "river_chiefs")


# --------------------------------------------------------------------------- item 2


def test_car_patrol_by_county_chief_counts():
    units, chiefs, patrols = chief_demo("car")
    flagged = flag_patrols(patrols.iloc[:1])
    assert flagged["valid"].tolist() == [True]
    hits = section_hits(patrols, chiefs, units)
    assert hits.loc[hits["verified"], "chief_id"].tolist() == ["RC-CAR"]


def test_same_track_on_foot_is_flagged():
    units, chiefs, patrols = chief_demo("foot")
    flagged = flag_patrols(patrols.iloc[:1])
    assert flagged["flags"].tolist() == ["implausible_speed"]
    assert not section_hits(patrols, chiefs, units)["verified"].any()


def test_foot_tolerance_misses_the_riverside_road():
    # declared as a bike (plausible at 30 km/h) the road 170 m off is not the river
    units, chiefs, patrols = chief_demo("bike")
    assert flag_patrols(patrols.iloc[:1])["valid"].tolist() == [True]
    assert not section_hits(patrols, chiefs, units)["verified"].any()


def test_car_mode_minimum_length():
    _units, _chiefs, patrols = chief_demo("car")
    short = patrols.iloc[:1].copy()
    short["geometry"] = [LineString([(113.10, 27.8015), (113.13, 27.8015)])]  # ~3 km
    assert flag_patrols(short, level="city")["flags"].tolist() == ["too_short"]


def test_unknown_mode_is_named():
    _, _, patrols = chief_demo("car")
    with pytest.raises(InvalidLayerError, match="unknown mode.*P-CAR"):
        flag_patrols(patrols.iloc[:1].assign(mode="horse"))


# --------------------------------------------------------------------------- item 5


@pytest.mark.parametrize(
    ("rule", "period", "n"),
    [
        ("1/quarter", "2026-Q1", 1),
        ("1/month", "2026-Q1", 3),
        ("1/week", "2026-Q1", 13),  # ISO weeks starting in the quarter: 5 Jan .. 30 Mar
        ("1/week", "2026-W10", 1),
        ("3/year", "2026", 1),
        ("1/half", "2026", 2),
        ("1/half", "2026-H1", 1),
        ("1/half", "2026-Q1", 0),
        ("2/year", "2026-H1", 0),
        ("1/month", "2026-W10", 0),
    ],
)
def test_rule_windows_follow_the_period_grammar(rule, period, n):
    assert len(rule_windows(rule, period)) == n


@pytest.mark.parametrize("bad", ["2026-Q5", "2026-13", "2026-W54", "2025-W53", "Q1", "2026-H3"])
def test_bad_periods_are_named(bad):
    with pytest.raises(RulesError, match="not understood"):
        period_kind(bad)


def _brute_windows(per: str, period: str) -> list[tuple[datetime, datetime]]:
    """The rule's windows, by walking the calendar day by day."""
    kind = period_kind(period)
    rank = ["week", "month", "quarter", "half", "year"]
    if rank.index(per) > rank.index(kind):
        return []
    y = int(period[:4])
    if kind == "week":
        monday = datetime.fromisocalendar(y, int(period[6:]), 1)
        a, b = monday, monday + timedelta(days=7)
    elif kind == "year":
        a, b = datetime(y, 1, 1), datetime(y + 1, 1, 1)
    else:
        n = int(period[-1]) if kind in ("half", "quarter") else int(period[5:])
        months = {"half": 6, "quarter": 3, "month": 1}[kind]
        m0 = (n - 1) * months
        a = datetime(y, m0 + 1, 1)
        b = datetime(y + (m0 + months) // 12, (m0 + months) % 12 + 1, 1)
    out, d = [], a
    step = {"month": 1, "quarter": 3, "half": 6, "year": 12}.get(per)
    while d < b:
        if per == "week":
            if d.weekday() == 0:
                out.append((d, d + timedelta(days=7)))
            d += timedelta(days=1)
        else:
            m = d.month - 1 + step
            e = datetime(d.year + m // 12, m % 12 + 1, 1)
            out.append((d, e))
            d = e
    return [(s.replace(tzinfo=TZ), e.replace(tzinfo=TZ)) for s, e in out]


def _brute(hits: pd.DataFrame, chiefs: pd.DataFrame, period: str) -> dict:
    got = {}
    for ch in chiefs.itertuples():
        for rule in RULES.frequency[ch.level]:
            windows = _brute_windows(rule["per"], period)
            if not windows:
                continue
            vf = ch.valid_from if pd.notna(ch.valid_from) else pd.Timestamp.min.tz_localize("UTC")
            vt = ch.valid_to if pd.notna(ch.valid_to) else pd.Timestamp.max.tz_localize("UTC")
            mine = hits[hits["chief_id"] == ch.chief_id]
            due = done = unv = missing = met = 0
            for s, e in windows:
                mid = pd.Timestamp(s) + (pd.Timestamp(e) - pd.Timestamp(s)) / 2
                if not (vf <= mid < vt):
                    continue
                t = mine["started_at"]
                inside = mine[(t >= s) & (t < e) & (t >= vf) & (t < vt)]
                v = int(inside["verified"].sum())
                due += 1
                done += v
                unv += int((~inside["verified"]).sum())
                missing += max(rule["count"] - v, 0)
                met += v >= rule["count"]
            key = (ch.chief_id, f"{rule['count']}/{rule['per']}")
            got[key] = (due, met, rule["count"] * due, done, unv, missing, missing == 0)
    return got


_PERIODS = st.one_of(
    st.integers(2019, 2031).map(str),
    st.tuples(st.integers(2019, 2031), st.integers(1, 2)).map(lambda t: f"{t[0]}-H{t[1]}"),
    st.tuples(st.integers(2019, 2031), st.integers(1, 4)).map(lambda t: f"{t[0]}-Q{t[1]}"),
    st.tuples(st.integers(2019, 2031), st.integers(1, 12)).map(lambda t: f"{t[0]}-{t[1]:02d}"),
    st.tuples(st.integers(2019, 2031), st.integers(1, 52)).map(lambda t: f"{t[0]}-W{t[1]:02d}"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(period=_PERIODS, seed=st.integers(0, 2**31 - 1))
def test_count_by_rule_matches_brute_force(period, seed):
    rng = np.random.default_rng(seed)
    levels = np.array(["province", "city", "county", "township", "village", "general"])
    n = 12
    a, b = (t.tz_convert("UTC") for t in period_bounds(period))
    span = (b - a) + pd.Timedelta(days=20)
    origin = a - pd.Timedelta(days=10)

    def when(k):
        return origin + pd.to_timedelta(rng.random(k) * span.total_seconds(), unit="s")

    chiefs = pd.DataFrame(
        {
            "chief_id": [f"C{i}" for i in range(n)],
            "level": np.r_[levels, rng.choice(levels, n - len(levels))],
            "valid_from": pd.Series(when(n)).where(rng.random(n) < 0.4),
            "valid_to": pd.Series(when(n)).where(rng.random(n) < 0.3),
        }
    )
    k = int(rng.integers(0, 120))
    hits = pd.DataFrame(
        {
            "chief_id": rng.choice(chiefs["chief_id"].to_numpy(), k),
            "started_at": pd.Series(when(k)).dt.floor("s"),
            "verified": rng.random(k) < 0.8,
        }
    )
    # some patrols exactly on a local midnight at window starts
    if k:
        hits.loc[0, "started_at"] = a
    got = count_by_rule(hits, chiefs, period)
    cols = ["windows", "windows_met", "required", "done", "unverified", "missing", "compliant"]
    ours = {(r.chief_id, r.rule): tuple(getattr(r, c) for c in cols) for r in got.itertuples()}
    assert ours == _brute(hits, chiefs, period)


def test_chief_compliance_columns_and_level():
    units, chiefs, patrols = chief_demo("car")
    c = chief_compliance(patrols, chiefs, units, "2026-Q2", level="county")
    assert list(c.columns[:11]) == [
        "chief_id",
        "worker_id",
        "name",
        "level",
        "admin_code",
        "river_id",
        "rule",
        "required",
        "done",
        "unverified",
        "compliant",
    ]
    assert c[["chief_id", "done", "compliant"]].values.tolist() == [["RC-CAR", 1, True]]


def test_supporting_roles_have_no_duty():
    units, chiefs, patrols = chief_demo("car")
    chiefs = pd.concat([chiefs, chiefs.iloc[:1].assign(chief_id="POL", role="police")])
    c = chief_compliance(patrols, chiefs, units, "2026-Q2")
    assert "POL" not in set(c["chief_id"])


def test_appointment_terms_bound_the_patrols_that_count():
    units, chiefs, patrols = chief_demo("car")
    # the county chief took office after the drive: it does not count for him
    later = chiefs.assign(valid_from=pd.Timestamp("2026-05-10", tz="UTC"))
    c = chief_compliance(patrols, later, units, "2026-Q2")
    assert c.set_index("chief_id").loc["RC-CAR", "done"] == 0
    # and a chief who left in January has no Q2 windows due
    gone = chiefs.assign(valid_to=pd.Timestamp("2026-01-31", tz="UTC"))
    assert chief_compliance(patrols, gone, units, "2026-Q2")["required"].sum() == 0


def test_general_chief_counts_any_river_of_his_area():
    units, _chiefs, patrols = chief_demo("car")
    general = pd.DataFrame(
        {
            "chief_id": ["G"],
            "worker_id": ["W-C"],
            "level": ["general"],
            "river_id": [None],
            "admin_code": ["430202"],
        }
    )
    c = chief_compliance(patrols, general, units, "2026")
    assert c[["rule", "done", "compliant"]].values.tolist() == [["1/year", 1, True]]


# --------------------------------------------------------------------------- item 7


def _banks():
    """A boundary reach: one unit per bank, 430202 north and 430203 south."""
    river = LineString([(113.10, 27.80), (113.14, 27.80)])
    north = gpd.GeoSeries([river], crs=4326).to_crs(32649).buffer(60, single_sided=True)
    south = gpd.GeoSeries([river], crs=4326).to_crs(32649).buffer(-60, single_sided=True)
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["N", "S"],
            "kind": "river_reach",
            "parent_id": "R1",
            "reach_id": "R1-x",
            "bank": ["left", "right"],
            "admin_code": ["430202001001", "430203001001"],
            "length_m": 3940.0,
        },
        geometry=pd.concat([north, south]).to_crs(4326).to_numpy(),
        crs=4326,
    )
    chiefs = pd.DataFrame(
        {
            "chief_id": ["CN", "CS"],
            "worker_id": ["WN", "WS"],
            "level": "village",
            "river_id": "R1",
            "admin_code": ["430202001001", "430203001001"],
        }
    )
    return units, chiefs


def _walk(pid, worker, y, start):
    t0 = pd.Timestamp(start)
    return {
        "patrol_id": pid,
        "worker_id": worker,
        "started_at": t0,
        "ended_at": t0 + pd.Timedelta(minutes=50),
        "mode": "foot",
        "geometry": LineString([(113.10, y), (113.14, y)]),
    }


def test_joint_patrol_counts_for_both_banks():
    units, chiefs = _banks()
    # both walk the north bank together, 20 m apart; the south bank is 100+ m away
    rows = [
        _walk("PN", "WN", 27.8004, "2026-05-06T01:00Z"),
        _walk("PS", "WS", 27.8006, "2026-05-06T01:05Z"),
    ]
    patrols = gpd.GeoDataFrame(rows, crs=4326)
    hits = section_hits(patrols, chiefs, units)
    assert sorted(zip(hits["chief_id"], hits["patrol_id"], strict=True)) == [
        ("CN", "PN"),
        ("CS", "PS"),
    ]
    # walking alone on another day, the south chief's track covers the north bank only
    alone = gpd.GeoDataFrame([_walk("PS2", "WS", 27.8006, "2026-05-08T01:00Z")], crs=4326)
    assert section_hits(alone, chiefs, units).empty
    assert len(joint_pairs(patrols)) == 1


# --------------------------------------------------------------------------- issue 22 item 6


def test_night_patrols_by_rule():
    workers = pd.DataFrame(
        {
            "worker_id": ["W1", "W2", "W3"],
            "name": ["甲", "乙", "丙"],
            "role": ["grid_worker", "grid_worker", "building_head"],
            "admin_code": ["430202001001", "430211001001", "430202001001"],
        }
    )
    t = pd.to_datetime(
        ["2026-05-04T12:00Z", "2026-05-04T11:59Z", "2026-05-20T21:59Z", "2026-05-21T22:00Z"]
    )  # 20:00, 19:59, 05:59 and 06:00 local
    patrols = pd.DataFrame(
        {"patrol_id": list("abcd"), "worker_id": "W1", "valid": True, "started_at": t}
    )
    rules = load_patrol_rules(
        night=[{"role": "grid_worker", "admin_code": "430202", "count": 2, "per": "month"}]
    )
    c = night_compliance(patrols, workers, "2026-Q2", rules=rules)
    # only W1 is a grid worker in 430202; 20:00 and 05:59 are night, 19:59 and 06:00 not
    assert c["worker_id"].tolist() == ["W1"]
    assert c[["required", "done", "windows_met", "compliant"]].values.tolist() == [[6, 2, 1, False]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), quad=st.integers(1, 8))
def test_lengths_inside_corridors_match_the_overlay(seed, quad):
    """The length of a track inside a corridor, cut in numpy, is GEOS's intersection."""
    from shapely import Polygon, box, buffer, intersection, length, linestrings

    from gridkit.ops.chiefs import _clipped_lengths, _inside_lengths

    rng = np.random.default_rng(seed)
    ring = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [[(20, 20), (40, 20), (40, 40)]])
    polys = np.array([buffer(ring, 5, quad_segs=quad), box(50, 50, 200, 80), ring])
    a, b = rng.uniform(-50, 220, (200, 2)), rng.uniform(-50, 220, (200, 2))
    pi = rng.integers(0, 3, 200)
    want = length(intersection(linestrings(np.stack([a, b], axis=1)), polys[pi]))
    assert np.allclose(_clipped_lengths(a, b, polys, pi), want, atol=1e-9)
    tracks = np.array(
        [linestrings(rng.uniform(-50, 220, (int(rng.integers(2, 9)), 2))) for _ in range(20)]
    )
    ti, ci, got = _inside_lengths(tracks, polys)
    full = length(intersection(tracks[:, None], polys[None, :]))
    assert np.allclose(got, full[ti, ci], atol=1e-9)
    assert np.isclose(got.sum(), full.sum(), atol=1e-6)
