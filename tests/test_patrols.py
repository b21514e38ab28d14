"""Patrol tracks, fake-patrol flags, unit coverage and compliance per level."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from gridkit.ops.patrols import (
    RulesError,
    flag_patrols,
    load_patrol_rules,
    patrol_compliance,
    patrol_coverage,
    patrols_from_points,
    period_bounds,
)
from gridkit.synth.ops import grid_units

RULES = load_patrol_rules()
CELL = 0.005  # degrees, ~492 m east-west at 27.8 N
T0 = pd.Timestamp("2026-05-04T01:00Z")
LATER = "2030-01-01T00:00Z"  # clipped to the period end; independent of the clock


@pytest.fixture(scope="module")
def units():
    # Row 0: five river-reach units (river R1); rows 1-2: community grids.
    return grid_units(5, 3, river_rows=1)


def _fixes(pid, xs, ys, *, start=T0, step_s=60.0, worker="W1", accuracy=5.0):
    n = len(xs)
    return gpd.GeoDataFrame(
        {
            "patrol_id": pid,
            "worker_id": worker,
            "t": start + pd.to_timedelta(np.arange(n) * step_s, unit="s"),
            "accuracy_m": accuracy,
        },
        geometry=gpd.points_from_xy(xs, ys),
        crs=4326,
    )


def _walk(pid, x0, x1, y, *, n=60, start=T0, step_s=60.0, noise_deg=0.0, seed=0, worker="W1"):
    """A walk from x0 to x1 at latitude y, n fixes, one a minute (default ~4 km/h for 2.5 km)."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(x0, x1, n) + rng.normal(0, noise_deg, n)
    ys = np.full(n, y) + rng.normal(0, noise_deg, n)
    return _fixes(pid, xs, ys, start=start, step_s=step_s, worker=worker)


RIVER_Y = 27.80 + CELL / 2


def test_tracks_from_points_length_duration_and_dropped_fixes():
    pts = _walk("P1", 113.10, 113.125, RIVER_Y, n=61)
    pts.loc[30, "accuracy_m"] = 500.0  # a bad fix is dropped
    pts.loc[30, "geometry"] = pts.geometry[30].buffer(0.0).centroid  # unchanged position
    tracks = patrols_from_points(pts)
    assert len(tracks) == 1
    row = tracks.iloc[0]
    assert row["n_points"] == 60
    assert row["duration_min"] == pytest.approx(60)
    assert row["length_m"] == pytest.approx(0.025 * 98_500, rel=0.01)
    assert row["p90_speed_kmh"] == pytest.approx(2.46, rel=0.05)
    assert tracks.geometry.iloc[0].geom_type == "LineString"
    checkin = patrols_from_points(_fixes("C1", [113.11], [27.81]))
    assert checkin.geometry.iloc[0].geom_type == "Point"


def _flagged(*parts):
    tracks = patrols_from_points(pd.concat(parts, ignore_index=True))
    return flag_patrols(tracks).set_index("patrol_id")


def test_genuine_patrol_is_valid_and_short_ones_do_not_count():
    f = _flagged(
        _walk("OK", 113.10, 113.125, RIVER_Y, n=61, noise_deg=0.00003),
        _walk("SHORT_T", 113.10, 113.125, RIVER_Y, n=21, step_s=60, seed=1),  # 20 min
        _walk("SHORT_L", 113.10, 113.11, RIVER_Y, n=61, seed=2),  # ~1 km
    )
    assert f.loc["OK", "valid"] and f.loc["OK", "flags"] == ""
    assert f.loc["SHORT_T", "too_short"] and not f.loc["SHORT_T", "valid"]
    assert f.loc["SHORT_L", "too_short"] and not f.loc["SHORT_L", "valid"]


def test_fake_patrols_are_detected():
    genuine = _walk("G", 113.10, 113.125, RIVER_Y, n=61, noise_deg=0.00005, seed=3)
    # Replay of the same file a week later, by another worker.
    replay = genuine.assign(
        patrol_id="REPLAY", worker_id="W2", t=genuine["t"] + pd.Timedelta(days=7)
    )
    # The same route walked again: independent GPS noise, not a replay.
    again = _walk(
        "AGAIN",
        113.10,
        113.125,
        RIVER_Y,
        n=61,
        noise_deg=0.00005,
        seed=4,
        start=T0 + pd.Timedelta(days=1),
    )
    # Driven, not walked: 20 km in 30 min.
    car = _walk("CAR", 113.10, 113.30, RIVER_Y + 0.01, n=31, start=T0 + pd.Timedelta(days=2))
    # A teleport: 5 km jump in one minute in the middle of a walk.
    tele = _walk("TELE", 113.10, 113.125, RIVER_Y, n=61, start=T0 + pd.Timedelta(days=3))
    tele.loc[30:, "geometry"] = gpd.GeoSeries(tele.geometry[30:]).translate(0.05, 0)
    f = _flagged(genuine, replay, again, car, tele)
    assert f.loc["G", "valid"]
    assert f.loc["AGAIN", "valid"] and pd.isna(f.loc["AGAIN", "duplicate_of"])
    assert f.loc["REPLAY", "duplicate_of"] == "G" and not f.loc["REPLAY", "valid"]
    assert "duplicate" in f.loc["REPLAY", "flags"]
    assert f.loc["CAR", "implausible_speed"] and not f.loc["CAR", "valid"]
    assert f.loc["TELE", "teleport"] and not f.loc["TELE", "valid"]


def test_level_minimums_from_workers():
    rules = load_patrol_rules(minimum={"city": {"duration_min": 10, "length_m": 500}})
    t = patrols_from_points(_walk("P", 113.10, 113.11, RIVER_Y, n=21))
    workers = pd.DataFrame({"worker_id": ["W1"], "level": ["city"]})
    assert flag_patrols(t, rules=rules, workers=workers)["valid"].iloc[0]
    assert flag_patrols(t)["too_short"].iloc[0]


def test_coverage_river_share_and_grid_entry(units):
    # Walk along the river row over units 0..2 and 40% into unit 3.
    river = patrols_from_points(_walk("R", 113.10, 113.10 + 3.4 * CELL, RIVER_Y, n=80))
    cov = patrol_coverage(river, units)
    assert sorted(cov["unit_id"]) == list(units.unit_id[:3])
    assert (cov["share"] >= 0.99).all()
    half = patrol_coverage(river, units, rules=load_patrol_rules(coverage={"share": 0.3}))
    assert units.unit_id[3] in set(half["unit_id"])
    # A walk inside grid row 1 that grazes row 2 by ~10 m does not cover row 2.
    y = 27.80 + 2 * CELL - 0.0001
    grid = patrols_from_points(_walk("G", 113.10, 113.10 + 2 * CELL, y, n=40))
    ids = set(patrol_coverage(grid, units)["unit_id"])
    assert ids == {units.unit_id[5], units.unit_id[6]}
    # A check-in point covers its grid.
    checkin = patrols_from_points(_fixes("C", [113.1025], [27.8075]))
    assert patrol_coverage(checkin, units)["unit_id"].tolist() == [units.unit_id[5]]


def test_coverage_lengths_are_sampled_within_a_segment_per_crossing(units):
    from gridkit.crs import local_metric_crs

    # A noisy diagonal walk across several grids and river units.
    walk = _walk("D", 113.101, 113.101 + 3.3 * CELL, 27.8025, n=90, noise_deg=0.00004, seed=9)
    walk["geometry"] = gpd.points_from_xy(
        walk.geometry.x, 27.8025 + (walk.geometry.x - 113.101) * 0.6
    )
    track = patrols_from_points(walk)
    cov = patrol_coverage(track, units, sample_m=10.0)
    metric = local_metric_crs(units)
    um = units.to_crs(metric).set_index("unit_id").geometry
    tm = track.to_crs(metric).geometry.iloc[0]
    grids = cov[cov["kind"] == "community_grid"]
    assert len(grids) >= 2
    for row in grids.itertuples():
        exact = tm.intersection(um[row.unit_id]).length
        assert abs(row.inside_m - exact) <= 2 * 10.0  # in and out: two crossings
    # A finer sample is closer to the exact length.
    fine = patrol_coverage(track, units, sample_m=1.0).set_index("unit_id")
    for row in grids.itertuples():
        exact = tm.intersection(um[row.unit_id]).length
        assert abs(fine.loc[row.unit_id, "inside_m"] - exact) <= 2 * 1.0


def test_coverage_restricted_to_assigned_units(units):
    walks = pd.concat(
        [
            _walk("A", 113.10, 113.10 + 3.4 * CELL, RIVER_Y, n=80, worker="W1"),
            _walk("B", 113.10, 113.10 + 2 * CELL, 27.8075, n=40, worker="W2"),
        ],
        ignore_index=True,
    )
    tracks = patrols_from_points(walks)
    full = patrol_coverage(tracks, units)
    asg = pd.DataFrame(
        {"worker_id": ["W1", "W1", "W2"], "unit_id": [units.unit_id[1], units.unit_id[6], "X"]}
    )
    only = patrol_coverage(tracks, units, assignments=asg)
    keys = set(zip(asg["worker_id"], asg["unit_id"], strict=True))
    expected = full[
        [(w, u) in keys for w, u in zip(full["worker_id"], full["unit_id"], strict=True)]
    ]
    assert only[["patrol_id", "unit_id"]].values.tolist() == (
        expected[["patrol_id", "unit_id"]].values.tolist()
    )
    # Unit 6 was walked by W2 but is assigned to W1 only; "X" is no unit.
    assert only["unit_id"].tolist() == [units.unit_id[1]]
    assert units.unit_id[6] in set(full["unit_id"])


def _cov(worker, unit, times):
    return pd.DataFrame(
        {
            "patrol_id": [f"{worker}-{k}" for k in range(len(times))],
            "worker_id": worker,
            "unit_id": unit,
            "started_at": pd.to_datetime(times, utc=True),
        }
    )


def _asg(*pairs, level=None):
    a = pd.DataFrame(pairs, columns=["worker_id", "unit_id"])
    if level is not None:
        a["level"] = level
    return a


def _row(result, worker):
    return result.set_index("worker_id").loc[worker]


def test_period_bounds_local_time():
    a, b = period_bounds("2026-05")
    assert str(a) == "2026-05-01 00:00:00+08:00" and str(b) == "2026-06-01 00:00:00+08:00"
    assert [str(x.date()) for x in period_bounds("2026-H2")] == ["2026-07-01", "2027-01-01"]
    with pytest.raises(RulesError):
        period_bounds("May 2026")


def test_village_weekly_with_timezone_boundary():
    # May 2026: full ISO weeks start Mon 4, 11, 18, 25 May (local).
    times = [
        "2026-04-30T17:00Z",  # 1 May 01:00 local: in May, but in no full week
        "2026-04-30T15:59Z",  # 30 Apr 23:59 local: not in May
        "2026-05-04T00:30Z",  # week 1
        "2026-05-17T15:30Z",  # Sun 17 May 23:30 local: week 2
        "2026-05-17T16:30Z",  # Mon 18 May 00:30 local: week 3
        "2026-05-31T15:00Z",  # Sun 31 May 23:00 local: week 4
    ]
    res = patrol_compliance(
        _cov("V", "U1", times), _asg(("V", "U1")), RULES, "2026-05", level="village", now=LATER
    )
    r = _row(res, "V")
    assert (r["required"], r["done"], r["windows_due"], r["windows_met"]) == (4, 5, 4, 4)
    assert r["compliant"] and r["days_overdue"] == 0
    assert r["last_patrol"] == pd.Timestamp("2026-05-31T15:00Z")
    # Missing weeks 3 and 4: overdue since the end of week 3's predecessor run start.
    res = patrol_compliance(
        _cov("V", "U1", times[:4]), _asg(("V", "U1")), RULES, "2026-05", now=LATER
    )
    r = _row(res, "V")
    assert (r["windows_met"], r["compliant"]) == (2, False)
    # Run of missed windows = weeks 3-4; it began to be overdue at the end of week 3
    # (25 May 00:00 local); evaluated at period end (1 June 00:00 local): 7 days.
    assert r["days_overdue"] == 7


def test_village_now_inside_period_only_counts_ended_weeks():
    times = ["2026-05-05T02:00Z", "2026-05-12T02:00Z"]
    res = patrol_compliance(
        _cov("V", "U1", times), _asg(("V", "U1")), RULES, "2026-05", now="2026-05-19T16:00Z"
    )
    r = _row(res, "V")  # weeks of 4 and 11 May have ended; 18 May not yet
    assert (r["windows_due"], r["windows_met"], r["compliant"]) == (2, 2, True)


def test_township_monthly_and_month_boundary():
    times = ["2026-04-10T02:00Z", "2026-05-31T16:30Z"]  # the second is 1 June local
    res = patrol_compliance(
        _cov("T", "U1", times), _asg(("T", "U1"), level="township"), RULES, "2026-Q2", now=LATER
    )
    r = _row(res, "T")
    assert (r["required"], r["windows_due"], r["windows_met"]) == (3, 3, 2)
    assert not r["compliant"] and r["days_overdue"] == 0  # June (the last month) was met


def test_county_quarterly_new_year_boundary():
    times = ["2026-02-01T00:00Z", "2026-05-01T00:00Z", "2026-08-01T00:00Z", "2026-12-31T16:00Z"]
    workers = pd.DataFrame({"worker_id": ["C"], "level": ["county"]})
    res = patrol_compliance(
        _cov("C", "U1", times), _asg(("C", "U1")), RULES, "2026", workers=workers, now=LATER
    )
    r = _row(res, "C")
    # 31 Dec 16:00 UTC is 1 Jan 2027 in Zhuzhou: Q4 was missed.
    assert (r["windows_due"], r["windows_met"], r["done"]) == (4, 3, 3)
    assert not r["compliant"]
    assert r["days_overdue"] == 0  # a patrol happened after Q4 ended (local)
    res = patrol_compliance(
        _cov("C", "U1", times[:3]), _asg(("C", "U1")), RULES, "2026", workers=workers, now=LATER
    )
    # Q4 missed, evaluated at its end (1 Jan 2027 00:00 local): 0 whole days yet.
    assert _row(res, "C")["days_overdue"] == 0


def test_city_three_per_year_and_one_per_half():
    a = _asg(("A", "U1"), ("B", "U1"), level="city")
    h1 = ["2026-01-15T02:00Z", "2026-03-15T02:00Z", "2026-06-15T02:00Z"]
    mixed = ["2026-01-15T02:00Z", "2026-03-15T02:00Z", "2026-09-15T02:00Z"]
    cov = pd.concat([_cov("A", "U1", h1), _cov("B", "U1", mixed)])
    res = patrol_compliance(cov, a, RULES, "2026", now=LATER)
    ra, rb = _row(res, "A"), _row(res, "B")
    assert ra["required"] == 3 and ra["windows_due"] == 3
    assert not ra["compliant"] and ra["windows_met"] == 2  # H2 missed
    # Evaluated at the end of 2026 (1 Jan 2027 00:00 local): H2 ended then; 0 days.
    assert ra["days_overdue"] == 0
    assert rb["compliant"]


def test_province_twice_a_year_and_overdue_days():
    res = patrol_compliance(
        _cov("P", "U1", ["2026-03-01T00:00Z"]),
        _asg(("P", "U1"), level="province"),
        RULES,
        "2026",
        now="2027-01-11T00:00Z",
    )
    r = _row(res, "P")
    assert (r["required"], r["done"], r["compliant"]) == (2, 1, False)
    # now is clipped to the period end (2026-12-31T16:00Z): overdue 0 whole days.
    assert r["days_overdue"] == 0


def test_overdue_days_count_from_first_missed_window():
    res = patrol_compliance(
        _cov("V", "U1", ["2026-05-05T02:00Z"]),
        _asg(("V", "U1")),
        RULES,
        "2026-05",
        now="2026-05-28T16:00Z",  # Fri 29 May 00:00 local
    )
    r = _row(res, "V")
    # Weeks of 11 and 18 May missed; overdue since 18 May 00:00 local (end of week 2): 11 days.
    assert (r["windows_due"], r["windows_met"], r["days_overdue"]) == (3, 1, 11)


def test_assignments_outside_period_and_other_workers_do_not_count():
    a = pd.DataFrame(
        {
            "worker_id": ["V", "OLD"],
            "unit_id": ["U1", "U1"],
            "valid_from": pd.to_datetime(["2026-01-01", "2025-01-01"], utc=True),
            "valid_to": pd.to_datetime([None, "2026-01-01"], utc=True),
        }
    )
    cov = pd.concat(
        [_cov("X", "U1", ["2026-05-05T02:00Z"]), _cov("V", "U2", ["2026-05-05T02:00Z"])]
    )
    res = patrol_compliance(cov, a, RULES, "2026-05", now=LATER)
    assert res["worker_id"].tolist() == ["V"]
    assert res["done"].iloc[0] == 0 and pd.isna(res["last_patrol"].iloc[0])


def test_invalid_patrols_do_not_count_and_unknown_level_errors():
    cov = _cov("V", "U1", ["2026-05-05T02:00Z", "2026-05-12T02:00Z"]).assign(valid=[True, False])
    res = patrol_compliance(cov, _asg(("V", "U1")), RULES, "2026-05", now=LATER)
    assert res["done"].iloc[0] == 1
    with pytest.raises(RulesError, match="no patrol frequency rule"):
        patrol_compliance(cov, _asg(("V", "U1"), level="galaxy"), RULES, "2026-05")


def test_compliance_from_tracks_and_river_chief_sections(units):
    walks = [
        _walk(
            f"P{k}",
            113.10,
            113.10 + 4.9 * CELL,
            RIVER_Y,
            n=61,
            noise_deg=0.00005,  # identical noiseless tracks would be replays
            start=pd.Timestamp(day) + pd.Timedelta(hours=1),
            seed=k,
            worker="W0",
        )
        for k, day in enumerate(["2026-05-04", "2026-05-11", "2026-05-18", "2026-05-25"])
    ]
    tracks = patrols_from_points(pd.concat(walks, ignore_index=True))
    tracks = tracks.assign(
        started_at=tracks["started_at"].dt.tz_localize(None).dt.tz_localize("Asia/Shanghai")
    )
    a = _asg(("W0", units.unit_id[0]))
    chiefs = pd.DataFrame(
        {
            "chief_id": ["CH1"],
            "worker_id": ["W0"],
            "level": ["township"],
            "river_id": ["R1"],
            "admin_code": ["430202001"],
        }
    )
    res = patrol_compliance(
        tracks, a, RULES, "2026-05", units=units, river_chiefs=chiefs, now=LATER
    )
    unit_row = res[(res["unit_id"] == units.unit_id[0]).fillna(False)].iloc[0]
    assert unit_row["compliant"] and unit_row["done"] == 4
    sec = res[res["chief_id"] == "CH1"].iloc[0]
    assert sec["river_id"] == "R1" and sec["level"] == "township"
    assert sec["done"] == 4 and sec["compliant"] and sec["required"] == 1


# ------------------------------------------------- compliance costs what the data cost


def _brute_force(times, level, start, end, now):
    """Compliance of one row by listing every calendar window (the old way)."""
    tz = RULES.timezone
    a, b = period_bounds((start, end), tz=tz)
    now = min(pd.Timestamp(now), b.tz_convert("UTC"))
    t = pd.to_datetime(times, utc=True)
    required = due = met = 0
    since = None
    for rule in RULES.frequency[level]:
        per, cnt = rule["per"], rule["count"]
        if per == "week":
            first = (a.normalize() + pd.Timedelta(days=(7 - a.weekday()) % 7)).normalize()
            if first < a:
                first += pd.Timedelta(days=7)
            starts = list(pd.date_range(first, b, freq="7D", tz=tz))
            ends = [s + pd.Timedelta(days=7) for s in starts]
        else:
            months = {"month": 1, "quarter": 3, "half": 6, "year": 12}[per]
            cand = pd.date_range(pd.Timestamp(a.year, a.month, 1, tz=tz), b, freq="MS", tz=tz)
            starts = [c for c in cand if (c.month - 1) % months == 0 and c >= a]
            ends = [s + pd.DateOffset(months=months) for s in starts]
        windows = [(s, e) for s, e in zip(starts, ends, strict=True) if e <= b and e <= now]
        if not windows:
            continue
        hits = [sum((t >= s) & (t < e)) >= cnt for s, e in windows]
        required = max(required, cnt * len(windows))
        due += len(windows)
        met += sum(hits)
        run = 0
        while run < len(hits) and not hits[-1 - run]:
            run += 1
        if run:
            end_first_missed = windows[len(windows) - run][1].tz_convert("UTC")
            since = end_first_missed if since is None else min(since, end_first_missed)
    return required, due, met, since


@pytest.mark.parametrize("level", ["village", "township", "county", "city", "province"])
def test_windows_from_the_data_match_listing_every_window(level):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    day = st.integers(0, 3 * 365).map(lambda d: pd.Timestamp("2025-01-01") + pd.Timedelta(days=d))
    stamp = st.integers(0, 4 * 365 * 24).map(
        lambda h: pd.Timestamp("2024-12-01T00:00Z") + pd.Timedelta(hours=h)
    )

    @settings(max_examples=25, deadline=None)
    @given(
        times=st.lists(stamp, max_size=25),
        start=day,
        days=st.integers(1, 800),
        now_h=st.integers(0, 4 * 365 * 24),
    )
    def check(times, start, days, now_h):
        end = start + pd.Timedelta(days=days)
        now = pd.Timestamp("2025-01-01T00:00Z") + pd.Timedelta(hours=now_h)
        a = _asg(("V", "U1"), level=level)
        res = patrol_compliance(
            _cov("V", "U1", [str(x) for x in times]), a, RULES, (start, end), now=now
        )
        r = _row(res, "V")
        required, due, met, since = _brute_force(times, level, start, end, now)
        assert (r["required"], r["windows_due"], r["windows_met"]) == (required, due, met)
        at = min(now, period_bounds((start, end))[1].tz_convert("UTC"))
        last = r["last_patrol"]
        late = since is not None and (pd.isna(last) or last < since)
        assert r["days_overdue"] == ((at - since) // pd.Timedelta(days=1) if late else 0)

    check()


def test_compliance_over_millennia_costs_what_the_patrols_cost():
    # /stats/assessment?end=9669-01-09 listed 400,000 weeks for every row: 34 s, 16 GB
    import time
    import tracemalloc

    rows = [(f"W{i}", f"U{i}") for i in range(2_000)]
    cov = pd.concat([_cov(w, u, ["2026-05-05T02:00Z", "2026-05-12T02:00Z"]) for w, u in rows[:50]])
    tracemalloc.start()
    t0 = time.perf_counter()
    res = patrol_compliance(
        cov, _asg(*rows), RULES, ("2026-05-01", "9669-01-09"), now="2026-06-01T00:00Z"
    )
    took = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert took < 2.0 and peak < 50e6, (took, peak)
    r = _row(res, "W1")  # the weeks of 4, 11, 18 and 25 May ended; patrolled in two
    assert (r["windows_due"], r["windows_met"], r["days_overdue"]) == (4, 2, 7)


def _tracks(lines, starts):
    from shapely import LineString

    t = pd.to_datetime(starts, utc=True)
    return gpd.GeoDataFrame(
        {
            "patrol_id": [f"P{i}" for i in range(len(lines))],
            "worker_id": "W1",
            "started_at": t,
            "ended_at": t + pd.Timedelta(hours=1),
        },
        geometry=[LineString(c) for c in lines],
        crs=4326,
    )


def test_replays_match_the_hausdorff_distance():
    import shapely
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gridkit.crs import local_metric_crs

    # tracks of a few metres' steps near 27.8N (1e-5 deg ~ 1 m), some replaying others
    step = st.tuples(st.integers(-40, 40), st.integers(-40, 40))
    base = st.lists(step, min_size=2, max_size=12)

    @settings(max_examples=40, deadline=None)
    @given(
        walks=st.lists(base, min_size=2, max_size=5),
        copies=st.lists(st.tuples(st.integers(0, 4), st.integers(-4, 4)), max_size=4),
        hours=st.lists(st.integers(0, 3), min_size=9, max_size=9),
    )
    def check(walks, copies, hours):
        lines = [np.cumsum(np.array(w, float), axis=0) * 1e-5 + [113.1, 27.8] for w in walks]
        for i, shift in copies:  # a replay: another walk shifted by up to 4 m
            lines.append(lines[i % len(walks)] + [shift * 1e-5, 0.0])
        tracks = _tracks(lines, [f"2026-05-0{1 + h}T01:00Z" for h in hours[: len(lines)]])
        got = flag_patrols(tracks)["duplicate_of"].tolist()
        mg = np.asarray(tracks.to_crs(local_metric_crs(tracks)).geometry.array)
        t = tracks["started_at"].to_numpy()
        tol = RULES.duplicate_tolerance_m
        for i in range(len(lines)):
            best = None
            for j in sorted(range(len(lines)), key=lambda j: (t[j], j)):
                earlier = t[j] < t[i] or (t[j] == t[i] and j < i)
                length = shapely.length(mg[i])
                similar = abs(length - shapely.length(mg[j])) <= max(2 * tol, 0.02 * length)
                if earlier and similar:
                    # a tie within a hair of tol is either way: GEOS and we round apart
                    d = shapely.hausdorff_distance(mg[i], mg[j], densify=0.25)
                    if abs(d - tol) < 1e-6:
                        return
                    if d <= tol:
                        best = f"P{j}"
                        break
            assert (None if pd.isna(got[i]) else got[i]) == best, (i, got, best)

    check()


def test_replays_of_long_tracks_cost_linear_time():
    # 5 x 20,000 fixes took 196 s: the Hausdorff distance compares every pair of vertices
    import time

    n = 20_000
    rng = np.random.default_rng(0)
    x = 113.0 + np.cumsum(rng.normal(0, 1e-5, n)) + np.arange(n) * 1e-6
    y = 27.8 + np.cumsum(rng.normal(0, 1e-5, n))
    walk = np.c_[x, y]
    # replays: shifted by a metre, or with a few fixes lost (no fix-by-fix twin)
    lost = [np.delete(walk, rng.choice(n, 50, replace=False), axis=0) for _ in range(3)]
    lines = [walk, walk + np.array([1e-5, 0.0]), *lost]
    tracks = _tracks(lines, [f"2026-05-0{d}T01:00Z" for d in range(1, 6)])
    t0 = time.perf_counter()
    flagged = flag_patrols(tracks)
    took = time.perf_counter() - t0
    assert flagged["duplicate_of"].fillna("-").tolist() == ["-"] + ["P0"] * 4
    assert took < 15, took
