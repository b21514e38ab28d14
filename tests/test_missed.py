"""漏报 missed reports (issue 22 item 8): the issue's case, and a property test of
:func:`gridkit.ops.missed.missed_reports` against a brute-force computation on random
patrols and reports."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.crs import local_metric_crs
from gridkit.ops.missed import PUBLIC, missed_reports
from gridkit.synth.ops import grid_units

T0 = pd.Timestamp("2026-05-01T00:00Z")
CATEGORIES = ["street_light", "road_damage"]
SOURCES = ["hotline", "resident", "media", "patrol", "referral"]


def _line(points):
    return shapely.LineString(points)


@pytest.fixture
def city():
    units = grid_units(2, 2)  # four 500 m cells around (113.1, 27.8)
    assignments = pd.DataFrame({"unit_id": units["unit_id"], "worker_id": ["W1", "W2", "W3", "W4"]})
    return units, assignments


def _patrol(pid, worker, end, coords):
    return {
        "patrol_id": pid,
        "worker_id": worker,
        "started_at": end - pd.Timedelta("1h"),
        "ended_at": end,
        "geometry": _line(coords),
    }


def _report(rid, cat, src, unit, t, x, y, reporter=None):
    return {
        "report_id": rid,
        "category": cat,
        "source": src,
        "unit_id": unit,
        "reported_at": t,
        "reporter_id": reporter,
        "geometry": shapely.Point(x, y),
    }


def test_the_issues_case_hotline_report_the_day_after_a_patrol(city):
    units, assignments = city
    u0 = units["unit_id"][0]
    patrols = gpd.GeoDataFrame(
        [
            _patrol(
                "P1", "W1", T0 + pd.Timedelta("1D"), [(113.1005, 27.8025), (113.1045, 27.8025)]
            ),
            _patrol(
                "P0", "W1", T0 - pd.Timedelta("20D"), [(113.1005, 27.8025), (113.1045, 27.8025)]
            ),
            # W2 walks only in its own unit: not evidence for unit 0
            _patrol(
                "P2", "W2", T0 + pd.Timedelta("1D"), [(113.1055, 27.8025), (113.1095, 27.8025)]
            ),
        ],
        crs=4326,
    )
    reports = gpd.GeoDataFrame(
        [
            _report("R1", "street_light", "hotline", u0, T0 + pd.Timedelta("2D"), 113.1025, 27.803),
            # the same worker reported road damage 30 m from R2 the day before: covered
            _report(
                "R0", "road_damage", "patrol", u0, T0 + pd.Timedelta("1D"), 113.1020, 27.8040, "W1"
            ),
            _report(
                "R2", "road_damage", "resident", u0, T0 + pd.Timedelta("2D"), 113.1020, 27.8043
            ),
            # reported 12 days after the patrol: outside the 7-day window
            _report("R3", "street_light", "media", u0, T0 + pd.Timedelta("13D"), 113.1030, 27.803),
            # a grid worker's own patrol report is not a resident's: not checked
            _report("R4", "road_damage", "patrol", u0, T0 + pd.Timedelta("2D"), 113.1045, 27.8045),
        ],
        crs=4326,
    )
    m = missed_reports(reports, patrols, assignments=assignments, units=units)
    assert m[["worker_id", "report_id", "patrol_id", "patrols"]].values.tolist() == [
        ["W1", "R1", "P1", 1]
    ]
    assert m["distance_m"].iloc[0] == pytest.approx(55.6, abs=1.0)
    assert m["days_before"].iloc[0] == pytest.approx(1.0)
    wider = missed_reports(reports, patrols, assignments=assignments, units=units, within_days=30)
    assert set(wider["report_id"]) == {"R1", "R3"}
    assert wider.set_index("report_id").loc["R1", "patrols"] == 2


def test_expired_assignment_is_not_the_units_worker(city):
    units, assignments = city
    # W1 left unit 0 before the report
    a = assignments.assign(valid_to=[T0, pd.NaT, pd.NaT, pd.NaT])
    u0 = units["unit_id"][0]
    patrols = gpd.GeoDataFrame(
        [_patrol("P1", "W1", T0 - pd.Timedelta("1h"), [(113.1005, 27.8025), (113.1045, 27.8025)])],
        crs=4326,
    )
    reports = gpd.GeoDataFrame(
        [_report("R1", "street_light", "hotline", u0, T0 + pd.Timedelta("1D"), 113.1025, 27.803)],
        crs=4326,
    )
    assert missed_reports(reports, patrols, assignments=a, units=units).empty
    assert len(missed_reports(reports, patrols, assignments=assignments, units=units)) == 1


# ---------------------------------------------------------------------- brute force


def brute_force(reports, patrols, assignments, units, within_days, radius_m):
    crs = local_metric_crs(units)
    rm = reports.to_crs(crs).geometry.tolist()
    pm = patrols.to_crs(crs).geometry.tolist()
    um = dict(zip(units["unit_id"], units.to_crs(crs).geometry, strict=True))
    window = pd.Timedelta(days=within_days)
    first_worker = {}
    for u, w in zip(assignments["unit_id"], assignments["worker_id"], strict=True):
        first_worker.setdefault(u, w)

    def reporter(i):
        who = reports["reporter_id"].iloc[i]
        if who is not None and not pd.isna(who):
            return who
        if reports["source"].iloc[i] == "patrol":
            return first_worker.get(reports["unit_id"].iloc[i])
        return None

    out = set()
    for i in range(len(reports)):
        if reports["source"].iloc[i] not in PUBLIC or reports["unit_id"].iloc[i] is None:
            continue
        t, unit, cat = (
            reports["reported_at"].iloc[i],
            reports["unit_id"].iloc[i],
            reports["category"].iloc[i],
        )
        workers = []
        for _, a in assignments.iterrows():
            if a["unit_id"] != unit:
                continue
            if not pd.isna(a["valid_from"]) and a["valid_from"] > t:
                continue
            if not pd.isna(a["valid_to"]) and a["valid_to"] <= t:
                continue
            if a["worker_id"] not in workers:
                workers.append(a["worker_id"])
        for w in workers:
            pats = [
                j
                for j in range(len(patrols))
                if patrols["worker_id"].iloc[j] == w
                and patrols["ended_at"].iloc[j] >= t - window
                and patrols["started_at"].iloc[j] < t
                and pm[j].intersects(um[unit])
            ]
            if not pats:
                continue
            covered = any(
                k != i
                and reporter(k) == w
                and reports["category"].iloc[k] == cat
                and t - window <= reports["reported_at"].iloc[k] <= t
                and rm[k].distance(rm[i]) <= radius_m
                for k in range(len(reports))
            )
            if covered:
                continue
            last = max(pats, key=lambda j: (patrols["ended_at"].iloc[j], j))
            out.add(
                (
                    w,
                    reports["report_id"].iloc[i],
                    patrols["patrol_id"].iloc[last],
                    len(pats),
                    round(pm[last].distance(rm[i]), 1),
                )
            )
    return out


@st.composite
def scenario(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    units = grid_units(3, 3)  # 1.5 km square, nine cells
    x0, y0, x1, y1 = units.total_bounds
    n_workers = draw(st.integers(2, 6))
    workers = [f"W{i}" for i in range(n_workers)]
    rows = []
    for u in units["unit_id"]:
        for w in rng.choice(workers, size=rng.integers(1, 3), replace=False):
            vf = (
                T0 + pd.Timedelta(days=float(rng.uniform(-5, 10))) if rng.random() < 0.3 else pd.NaT
            )
            vt = T0 + pd.Timedelta(days=float(rng.uniform(5, 25))) if rng.random() < 0.3 else pd.NaT
            rows.append({"unit_id": u, "worker_id": w, "valid_from": vf, "valid_to": vt})
    assignments = pd.DataFrame(rows)
    n_p = draw(st.integers(0, 25))
    patrols = gpd.GeoDataFrame(
        {
            "patrol_id": [f"P{i}" for i in range(n_p)],
            "worker_id": rng.choice(workers, size=n_p),
            "started_at": T0 + pd.to_timedelta(rng.uniform(0, 20 * 24, n_p), unit="h"),
        },
        geometry=[
            _line(np.column_stack([rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)]))
            for k in rng.integers(2, 5, n_p)
        ],
        crs=4326,
    )
    patrols["ended_at"] = patrols["started_at"] + pd.Timedelta("90min")
    n_r = draw(st.integers(1, 30))
    rx, ry = rng.uniform(x0, x1, n_r), rng.uniform(y0, y1, n_r)
    pts = gpd.GeoDataFrame(geometry=shapely.points(rx, ry), crs=4326)
    unit_of = gpd.sjoin(pts, units[["unit_id", "geometry"]], predicate="within", how="left")
    unit_of = unit_of[~unit_of.index.duplicated()]
    reporter = [rng.choice(workers) if rng.random() < 0.4 else None for _ in range(n_r)]
    reports = gpd.GeoDataFrame(
        {
            "report_id": [f"R{i}" for i in range(n_r)],
            "category": rng.choice(CATEGORIES, size=n_r),
            "source": rng.choice(SOURCES, size=n_r),
            "unit_id": unit_of["unit_id"]
            .astype(object)
            .where(unit_of["unit_id"].notna(), None)
            .to_numpy(),
            "reported_at": T0 + pd.to_timedelta(rng.uniform(0, 25 * 24, n_r), unit="h"),
            "reporter_id": reporter,
        },
        geometry=shapely.points(rx, ry),
        crs=4326,
    )
    within = draw(st.sampled_from([1.0, 3.0, 7.0, 30.0]))
    radius = draw(st.sampled_from([0.0, 150.0, 600.0]))
    return reports, patrols, assignments, units, within, radius


@settings(max_examples=40, deadline=None)
@given(scenario())
def test_missed_reports_match_brute_force(case):
    reports, patrols, assignments, units, within, radius = case
    got = missed_reports(
        reports, patrols, assignments=assignments, units=units, within_days=within, radius_m=radius
    )
    mine = {
        (w, r, p, int(n), round(float(d), 1))
        for w, r, p, n, d in got[
            ["worker_id", "report_id", "patrol_id", "patrols", "distance_m"]
        ].values
    }
    assert mine == brute_force(reports, patrols, assignments, units, within, radius)
