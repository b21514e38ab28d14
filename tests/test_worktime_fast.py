"""Working-time deadlines without pandas' time zones (issue 25: the report writer's
batches): where the calendar's zone keeps one UTC offset over its years (Asia/Shanghai
since 1991), local time is UTC plus that offset in integer arithmetic. The property
tests below check that this path gives exactly what the zone's rules (pandas) give, on
random calendars (zones, working hours, weekends, holidays, 调休), times and limits;
and that the report deadlines (``stage_due``) equal the stage-by-stage computation
they replace."""

from __future__ import annotations

from datetime import date, timedelta
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.ops.reports import report_rules, stage_due
from gridkit.ops.worktime import (
    StageLimits,
    WorkCalendar,
    add_working_days,
    add_working_hours,
    pause_shift,
    stage_deadline,
    stage_limits,
    work_calendar,
    working_hours_between,
)

#: zones with one offset over 2024-2027 (the fast path) and with daylight saving time
FIXED = ["Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata", "UTC", "Etc/GMT+5", "Asia/Kathmandu"]
DST = ["Europe/Berlin", "America/New_York", "Australia/Sydney"]
Y0 = pd.Timestamp("2025-01-01T00:00Z").value // 1000
Y1 = pd.Timestamp("2027-01-01T00:00Z").value // 1000


def _general():
    """The zone's rules (pandas) for every calendar: the path the fast one must equal."""
    return mock.patch.object(WorkCalendar, "_fixed", property(lambda self: None))


@st.composite
def calendars(draw, zones=FIXED + DST) -> WorkCalendar:
    tz = draw(st.sampled_from(zones))
    cuts = sorted(draw(st.sets(st.integers(0, 24 * 4 - 1), min_size=2, max_size=6)))
    cuts = cuts[: len(cuts) // 2 * 2]
    hours = tuple((a * 15, b * 15) for a, b in zip(cuts[::2], cuts[1::2], strict=True))
    days = st.dates(date(2025, 1, 1), date(2026, 12, 31))
    weekend = draw(st.sets(st.integers(0, 6), max_size=3))
    return WorkCalendar(
        timezone=tz,
        hours=hours,
        weekend=frozenset(weekend),
        holidays=frozenset(draw(st.sets(days, max_size=40))),
        workdays=frozenset(draw(st.sets(days, max_size=10))),
        years=(2025, 2026),
        source="<random>",
    )


def starts(n_max: int = 12):
    # the first ten months of the covered years (deadlines stay inside them), the
    # first hours of 2025 included (a UTC time whose local day may be the year before)
    t = st.integers(Y0, Y0 + (Y1 - Y0) * 5 // 6)
    return st.lists(st.one_of(t, st.just(Y0), st.none()), min_size=0, max_size=n_max)


def _times(us: list[int | None]) -> pd.Series:
    return pd.Series(
        [pd.NaT if u is None else pd.Timestamp(u, unit="us", tz="UTC") for u in us],
        dtype="datetime64[us, UTC]",
    )


def _both(func):
    """``func()`` by the fast path and by the zone's rules: results or errors."""

    def run():
        try:
            return func()
        except (ValueError, ArithmeticError) as exc:  # CalendarError is a ValueError
            return type(exc).__name__, str(exc)

    fast = run()
    with _general():
        general = run()
    return fast, general


def _same(a, b) -> None:
    if isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    else:
        assert a == b


@settings(max_examples=60, deadline=None)
@given(calendars(), starts(), st.lists(st.floats(0, 60), min_size=12, max_size=12))
def test_working_hours_fast_path_equals_zone_rules(cal, us, hours) -> None:
    t = _times(us)
    h = np.array(hours[: len(t)])
    _same(*_both(lambda: add_working_hours(t, h, calendar=cal)))
    _same(*_both(lambda: add_working_days(t, np.floor(h / 6), calendar=cal)))
    later = t + pd.to_timedelta(h, unit="h")
    _same(*_both(lambda: working_hours_between(t, later, calendar=cal)))
    _same(*_both(lambda: pause_shift(later, t, later, calendar=cal)))


LIMITS = StageLimits.from_dict(
    {
        "default": {"open": "4h", "dispatch": "2h", "handle": "5d", "verify": "1d"},
        "street_light": {"handle": "3d", "open": "0h"},
        "sand_mining": {"handle": "8.5h"},
    }
)


@settings(max_examples=60, deadline=None)
@given(
    calendars(),
    starts(),
    st.lists(st.sampled_from(["street_light", "sand_mining", "cctv", None]), min_size=12),
    st.sampled_from(["open", "dispatch", "handle", "verify"]),
)
def test_stage_deadline_fast_path_equals_zone_rules(cal, us, cats, stage) -> None:
    t = _times(us)
    _same(*_both(lambda: stage_deadline(t, cats[: len(t)], stage, LIMITS, calendar=cal)))


def test_fixed_offset_only_where_the_zone_keeps_one() -> None:
    assert work_calendar()._fixed is not None  # Asia/Shanghai: +08:00 since 1991
    assert work_calendar()._fixed[0] == 8 * 3600 * 10**6
    for tz in DST:
        cal = WorkCalendar(tz, ((510, 720),), frozenset({5, 6}), frozenset(), frozenset(),
                           (2025, 2026))  # fmt: skip
        assert cal._fixed is None, tz


def _stage_due_reference(start, categories, statuses, rules, limits) -> pd.Series:
    """stage_due as it was: a Series mapped to each status's clock, then
    stage_deadline per clock (the zone's rules)."""
    begin = _times(start)
    cats = np.asarray(categories, dtype=object)
    clock = pd.Series(np.asarray(statuses, dtype=object)).map(rules.stage_clock)
    out = pd.Series(pd.NaT, index=begin.index, dtype="datetime64[us, UTC]")
    timed = (clock.notna() & begin.notna()).to_numpy()
    for key in clock[timed].unique():
        mask = timed & (clock == key).to_numpy()
        with _general():
            due = stage_deadline(begin[mask], cats[mask], str(key), limits)
        out[mask] = due.to_numpy()
    return out


@settings(max_examples=60, deadline=None)
@given(
    starts(16),
    st.lists(st.sampled_from(["street_light", "sand_mining", "cctv", "sewage"]), min_size=16),
    st.lists(
        st.sampled_from(
            [
                "collected",
                "opened",
                "dispatched",
                "handling",
                "verified",
                "closed",
                "reported_back",
                "returned",
                None,
            ]
        ),
        min_size=16,
    ),
)
def test_stage_due_equals_stage_by_stage(us, cats, statuses) -> None:
    n = len(us)
    rules, limits = report_rules(), stage_limits()
    want = _stage_due_reference(us, cats[:n], statuses[:n], rules, limits)
    # as the intake passes them (a typed column), and as plain values
    column = _times(us).set_axis(pd.RangeIndex(7, 7 + n))
    got = stage_due(column, cats[:n], statuses[:n])
    pd.testing.assert_series_equal(got, want)
    plain = [None if u is None else pd.Timestamp(u, unit="us", tz="UTC").isoformat() for u in us]
    pd.testing.assert_series_equal(stage_due(plain, cats[:n], statuses[:n]), want)


def test_stage_due_of_a_batch_is_cheap() -> None:
    """The writer's batch of 16 reports: deadlines without a pandas time-zone pass
    (which cost ~15 ms, a quarter of the intake's time), in integer arithmetic."""
    from pandas.core.indexes.accessors import DatetimeProperties

    t = _times([Y0 + k * 3_600_000_000 * 7 for k in range(16)])
    cats, sts = ["street_light"] * 16, ["collected"] * 16
    naive = np.asarray(t.array.asi8).view("datetime64[us]")  # a UTC column's values
    zone = AssertionError("a pandas time-zone pass")
    with (
        mock.patch.object(DatetimeProperties, "tz_convert", side_effect=zone),
        mock.patch.object(DatetimeProperties, "tz_localize", side_effect=zone),
    ):
        due = stage_due(naive, cats, sts)
    assert (due.to_numpy() == stage_due(t, cats, sts).to_numpy()).all()
    assert timedelta(0) < (stage_due(t, cats, sts) - t).min() <= timedelta(hours=16 * 7)
