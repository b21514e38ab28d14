"""Working time (issue 21, item 3): the workday calendar, deadlines in working hours and
working days, checked against a brute-force minute-by-minute walk of the calendar built
from the TOML itself (holidays and 调休 included)."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.ops.worktime import (
    CalendarError,
    StageLimits,
    add_working_days,
    add_working_hours,
    load_calendar,
    pause_shift,
    stage_deadline,
    working_hours_between,
)

TZ = ZoneInfo("Asia/Shanghai")
MIN = timedelta(minutes=1)


# ------------------------------------------------------------------ brute force


def _dates(items: list[str]) -> set[date]:
    out = set()
    for item in items:
        a, _, b = item.partition("..")
        d, end = date.fromisoformat(a), date.fromisoformat(b or a)
        while d <= end:
            out.add(d)
            d += timedelta(days=1)
    return out


_RAW = tomllib.loads(resources.files("gridkit").joinpath("rules/workdays.toml").read_text("utf-8"))
HOL = set().union(*(_dates(y["holidays"]) for y in _RAW["years"].values()))
ADJ = set().union(*(_dates(y["workdays"]) for y in _RAW["years"].values()))
PERIODS = [(8 * 60 + 30, 12 * 60), (14 * 60, 17 * 60 + 30)]
END = datetime(2027, 1, 1, tzinfo=TZ)


def _workday(d: date) -> bool:
    return d in ADJ or (d.weekday() < 5 and d not in HOL)


def _working_minute(t: datetime) -> bool:
    """Is the minute starting at local time ``t`` working time?"""
    m = t.hour * 60 + t.minute
    return _workday(t.date()) and any(s <= m < e for s, e in PERIODS)


def brute_add(start: datetime, minutes: int) -> datetime | None:
    """The end of the ``minutes``-th working minute from ``start`` (None: past the calendar)."""
    if minutes == 0:
        return start
    t, n = start, 0
    while t < END:
        if _working_minute(t):
            n += 1
            if n == minutes:
                return t + MIN
        t += MIN
    return None


def brute_between(a: datetime, b: datetime) -> int:
    """Working minutes in [a, b)."""
    sign = 1 if a <= b else -1
    a, b = min(a, b), max(a, b)
    n, t = 0, a
    while t < b:
        n += _working_minute(t)
        t += MIN
    return sign * n


def brute_days(start: datetime, days: int) -> datetime | None:
    if days == 0:
        return start
    d, k = start.date(), 0
    while k < days:
        d += timedelta(days=1)
        if d.year > 2026:
            return None
        k += _workday(d)
    return datetime(d.year, d.month, d.day, 17, 30, tzinfo=TZ)


def _utc(ts: list[datetime]) -> pd.Series:
    return pd.Series(pd.to_datetime([t.astimezone(ZoneInfo("UTC")) for t in ts]))


def _local(s: pd.Series) -> list[datetime]:
    return [t.to_pydatetime().astimezone(TZ) for t in s]


# starts: minute-aligned local times across both covered years, weighted toward the
# holidays so that 春节, 国庆 and the 调休 weekends are walked often
_HOLIDAY_WEEKS = [
    date(2025, 1, 24),
    date(2025, 9, 26),
    date(2026, 2, 10),
    date(2026, 9, 17),
    date(2025, 4, 25),
    date(2026, 4, 29),
    date(2025, 12, 29),
]
_starts = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 28)),
    st.builds(
        lambda d, m: datetime(d.year, d.month, d.day) + timedelta(minutes=m),
        st.sampled_from(_HOLIDAY_WEEKS).flatmap(
            lambda d: st.builds(lambda k: d + timedelta(days=k), st.integers(0, 14))
        ),
        st.integers(0, 24 * 60 - 1),
    ),
).map(lambda t: t.replace(second=0, microsecond=0, tzinfo=TZ))


# ------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_starts, st.integers(0, 2400)), min_size=1, max_size=4))
def test_add_working_hours_matches_a_minute_by_minute_walk(cases):
    starts, minutes = [c[0] for c in cases], [c[1] for c in cases]
    want = [brute_add(s, m) for s, m in cases]
    if any(w is None for w in want):
        with pytest.raises(CalendarError, match="2027"):
            add_working_hours(_utc(starts), np.array(minutes) / 60)
        return
    got = _local(add_working_hours(_utc(starts), np.array(minutes) / 60))
    assert got == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_starts, st.integers(-3 * 1440, 12 * 1440)), min_size=1, max_size=3))
def test_working_hours_between_matches_a_minute_by_minute_walk(cases):
    a = [c[0] for c in cases]
    start = datetime(2025, 1, 1, tzinfo=TZ)
    b = [min(max(c[0] + timedelta(minutes=c[1]), start), END - MIN) for c in cases]
    got = working_hours_between(_utc(a), _utc(b))
    want = [brute_between(x, y) / 60 for x, y in zip(a, b, strict=True)]
    assert np.allclose(got.to_numpy(), want, atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_starts, st.integers(0, 12)), min_size=1, max_size=5))
def test_add_working_days_matches_a_day_by_day_walk(cases):
    starts, days = [c[0] for c in cases], [c[1] for c in cases]
    want = [brute_days(s, d) for s, d in cases]
    if any(w is None for w in want):
        with pytest.raises(CalendarError, match="no year 2027"):
            add_working_days(_utc(starts), days)
        return
    assert _local(add_working_days(_utc(starts), days)) == want


LIMITS = StageLimits.from_dict(
    {
        "default": {"open": "4h", "dispatch": "2h", "handle": "5d", "verify": "1d"},
        "street_light": {"handle": "3d", "verify": "6h"},
        "sand_mining": {"handle": "8h", "open": "1h"},
    }
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(_starts, st.sampled_from(["street_light", "sand_mining", "road_damage"])),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["open", "dispatch", "handle", "verify"]),
)
def test_stage_deadline_follows_the_limit_of_each_category(cases, stage):
    starts = [c[0] for c in cases]
    starts = [s for s in starts if s < datetime(2026, 12, 1, tzinfo=TZ)] or [starts[0]]
    cats = [c[1] for c in cases][: len(starts)]
    want = []
    for s, c in zip(starts, cats, strict=True):
        lim = LIMITS.limit(c, stage)
        want.append(
            brute_days(s, int(lim.amount))
            if lim.unit == "d"
            else brute_add(s, int(lim.amount * 60))
        )
    if any(w is None for w in want):
        return
    got = stage_deadline(_utc(starts), cats, stage, LIMITS)
    assert _local(got) == want


# ------------------------------------------------------------------ what the issue saw


def test_a_deadline_before_spring_festival_lands_after_it_not_in_calendar_hours():
    """Issue 21: deadlines were calendar hours. 72 hours from Friday 13 February 2026
    would be Monday 16 February, inside the Spring Festival holiday; 3 working days
    count Saturday 14 February (调休) and end on Wednesday 25 February."""
    t = pd.Series(pd.to_datetime(["2026-02-13T02:00Z"]))
    due = add_working_days(t, 3)
    assert str(due.iloc[0]) == "2026-02-25 09:30:00+00:00"
    assert working_hours_between(t, due).iloc[0] == 5.5 + 7 * 3


def test_index_and_missing_values_are_kept():
    t = pd.Series(pd.to_datetime(["2026-03-02T01:00Z", None], utc=True), index=["a", "b"])
    out = add_working_hours(t, 1)
    assert list(out.index) == ["a", "b"] and out.isna().tolist() == [False, True]
    assert working_hours_between(t, out).isna().tolist() == [False, True]
    assert add_working_days(t, [2, 1]).isna().tolist() == [False, True]
    assert str(add_working_hours(t, 0).iloc[0]) == "2026-03-02 01:00:00+00:00"


def test_pause_moves_the_deadline_by_the_working_time_paused():
    due = pd.Series(pd.to_datetime(["2026-02-13T09:30Z"]))  # Fri 13 Feb 17:30
    p = pd.Series(pd.to_datetime(["2026-02-13T07:30Z"]))  # Fri 15:30
    r = pd.Series(pd.to_datetime(["2026-02-24T01:30Z"]))  # Tue 24 Feb 09:30 after 春节
    # 2 h Friday + 7 h Saturday (调休) + 1 h Tuesday = 10 working hours
    assert working_hours_between(p, r).iloc[0] == 10
    # the deadline: 7 h on Saturday 14 February, 3 h on Tuesday 24 February (11:30)
    assert str(pause_shift(due, p, r).iloc[0]) == "2026-02-24 03:30:00+00:00"


# ------------------------------------------------------------------ clear errors


@pytest.mark.parametrize("when", ["2024-12-31T12:00Z", "2027-01-04T01:00Z"])
def test_a_date_outside_the_calendar_names_the_year_and_the_file(when):
    year = when[:4] if when[:4] == "2027" else "2024"
    with pytest.raises(CalendarError) as e:
        add_working_hours(pd.Series(pd.to_datetime([when])), 1)
    msg = str(e.value)
    assert f"no year {year}" in msg and "gridkit/rules/workdays.toml" in msg
    assert f"[years.{year}]" in e.value.hint


def test_a_deadline_running_past_the_last_year_is_refused():
    t = pd.Series(pd.to_datetime(["2026-12-30T01:00Z"]))
    with pytest.raises(CalendarError, match="runs past the end of 2026"):
        add_working_days(t, 5)
    with pytest.raises(CalendarError, match="no year 2027"):
        add_working_hours(t, 40)


def _write(tmp_path, text):
    p = tmp_path / "workdays.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('[years.2026]\nholidays = ["2026-13-01"]', r"\[years.2026\] holidays has '2026-13-01'"),
        ('[years.2026]\nholidays = ["2025-10-01"]', "not a date or range .* in 2026"),
        ('[years.2026]\nworkdays = ["2026-02-16"]', "2026-02-16 is no weekend day"),
        ('[years.2026]\nholidays = ["2026-02-14"]\nworkdays = ["2026-02-14"]', "both"),
        ("[years.2025]\n[years.2027]", "consecutive years"),
        ('hours = ["14:00-12:00"]\n[years.2026]', "periods within a day"),
        ('hours = ["8h-12h"]\n[years.2026]', "not 'HH:MM-HH:MM'"),
        ('timezone = "Beijing"\n[years.2026]', "no IANA time zone"),
    ],
)
def test_a_bad_calendar_file_says_where(tmp_path, body, match):
    p = _write(tmp_path, body)
    with pytest.raises(CalendarError, match=match) as e:
        load_calendar(p)
    assert str(p) in str(e.value)


def test_an_edited_calendar_with_other_hours_and_a_new_year(tmp_path):
    p = _write(
        tmp_path,
        'hours = ["09:00-17:00"]\n[years.2027]\nholidays = ["2027-01-01"]\n',
    )
    cal = load_calendar(p)
    t = pd.Series(pd.to_datetime(["2026-12-31T15:00Z"]))  # 31 Dec 2026 23:00 local
    with pytest.raises(CalendarError, match="no year 2026"):
        add_working_hours(t, 1, calendar=cal)
    t = pd.Series(pd.to_datetime(["2027-01-01T01:00Z"]))  # holiday, then the weekend
    assert str(add_working_hours(t, 9, calendar=cal).iloc[0]) == "2027-01-05 02:00:00+00:00"


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"default": {"open": "4h"}}, "no limit for dispatch, handle, verify"),
        ({"default": {"open": "4 hours"}}, "write working hours as '4h'"),
        ({"default": {"open": "1.5d"}}, "whole working days"),
        (
            {
                "default": {s: "1d" for s in ("open", "dispatch", "handle", "verify")},
                "cctv": {"fix": "1d"},
            },
            "unknown stage 'fix'",
        ),
    ],
)
def test_bad_stage_limits_say_what_to_write(table, match):
    with pytest.raises(CalendarError, match=match):
        StageLimits.from_dict(table, source="handlers.toml")
