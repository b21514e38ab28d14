"""Working time (工作时间): a workday calendar and deadlines counted in it.

A case's stage limits are written in working hours (``"4h"``) or working days
(``"5d"``). Working time runs only inside the working hours of a working day (by
default 08:30-12:00 and 14:00-17:30, Asia/Shanghai); a working day is a weekday that
is no public holiday, or an adjusted working weekend day (调休上班). The calendar is
data: ``gridkit/rules/workdays.toml`` (2025 and 2026 from the State Council's
schedules); a date outside the years it covers is an error naming the year and the
file, never a silent guess.

Every function takes arrays of UTC timestamps and works on whole arrays (no loop per
row): an instant maps to its *working clock*, the working microseconds since the first
covered day, through per-day cumulative sums; adding working time is a ``searchsorted``
back. The cost is bounded by the calendar's covered years (a few hundred days), never
by how far the deadlines reach.

Examples
--------
A street light reported on Thursday 30 April 2026 at 16:00 Beijing time, to be handled
in 8 working hours: 1.5 hours that afternoon, then the Labour Day holiday (1-5 May),
then 6.5 hours of Wednesday 6 May, which ends at 17:00:

>>> start = pd.Series(pd.to_datetime(["2026-04-30T08:00Z"]))
>>> add_working_hours(start, 8).dt.tz_convert("Asia/Shanghai").astype(str).tolist()
['2026-05-06 17:00:00+08:00']
>>> working_hours_between(start, add_working_hours(start, 8)).tolist()
[8.0]
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from gridkit.errors import GridkitError
from gridkit.ops.rulefiles import read_rules
from gridkit.ops.times import utc_series

__all__ = [
    "STAGES",
    "CalendarError",
    "Limit",
    "StageLimits",
    "WorkCalendar",
    "add_working_days",
    "add_working_hours",
    "load_calendar",
    "pause_shift",
    "stage_deadline",
    "stage_limits",
    "work_calendar",
    "working_hours_between",
]

#: Stages with a limit: open 立案, dispatch 派遣, handle 处置, verify 核查.
STAGES = ("open", "dispatch", "handle", "verify")
_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_MIN_US = 60_000_000
_NAT = np.iinfo("int64").min  # NaT as datetime64 integers
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarError(GridkitError, ValueError):
    """A workday calendar that cannot answer: a date outside its years, or a bad file.

    Examples
    --------
    >>> try:
    ...     add_working_hours(pd.Series(pd.to_datetime(["2031-03-02T01:00Z"])), 4)
    ... except CalendarError as e:
    ...     print(str(e).splitlines()[0][:58])
    the workday calendar has no year 2031 (it covers 2025-2026
    """


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class WorkCalendar:
    """Working hours, weekends, public holidays and adjusted working days per year.

    Read one with :func:`load_calendar` (an edited ``workdays.toml``) or
    :func:`work_calendar` (the packaged one).

    Examples
    --------
    >>> cal = work_calendar()
    >>> cal.years, cal.timezone, cal.hours_per_day
    ((2025, 2026), 'Asia/Shanghai', 7.0)
    >>> cal.is_workday(date(2026, 2, 14)), cal.is_workday(date(2026, 2, 16))  # 调休, 春节
    (True, False)
    """

    timezone: str
    hours: tuple[tuple[int, int], ...]  # working periods of a day, minutes after midnight
    weekend: frozenset[int]  # weekday numbers, Monday 0
    holidays: frozenset[date]
    workdays: frozenset[date]  # adjusted working days (调休上班)
    years: tuple[int, ...]
    source: str = field(default="<dict>", compare=False)

    @property
    def hours_per_day(self) -> float:
        """Working hours of one working day."""
        return sum(e - s for s, e in self.hours) / 60

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` (a local date) is a working day (raises outside the years).

        Examples
        --------
        >>> work_calendar().is_workday(date(2025, 10, 11))  # a Saturday worked (调休)
        True
        """
        self._check_years(np.array([day.year]))
        return bool(self._tables.work[(day - self._first).days])

    @property
    def _first(self) -> date:
        return date(self.years[0], 1, 1)

    @functools.cached_property
    def _tables(self) -> _Tables:
        return _Tables.build(self)

    @functools.cached_property
    def _fixed(self) -> tuple[int, int, int] | None:
        """``(offset, low, high)``: the zone's one UTC offset (us) over the instants
        from ``low`` to ``high`` (UTC us: the covered years and one year either side),
        or None when it changes there (daylight saving time). Within that span local
        time is UTC plus the offset, plain integer arithmetic."""
        return _fixed_offset(self.timezone, self.years[0] - 1, self.years[-1] + 1)

    def _check_years(self, years: np.ndarray) -> None:
        if not len(years):
            return
        low, high = int(years.min()), int(years.max())
        span = self.years[-1] - self.years[0] + 1 == len(self.years)  # no year missing
        if span and self.years[0] <= low and high <= self.years[-1]:
            return  # within the years covered (a few comparisons, not a set difference)
        bad = np.setdiff1d(np.unique(years), np.asarray(self.years))
        if len(bad):
            raise CalendarError(
                f"the workday calendar has no year {int(bad[0])} (it covers "
                f"{self.years[0]}-{self.years[-1]}; {self.source}).",
                hint=f"Add a [years.{int(bad[0])}] table with that year's public holidays and "
                f"adjusted working days (调休) to {self.source}, and pass it as calendar=.",
            )


@dataclass(frozen=True)
class _Tables:
    """Per covered day: working day or not, working microseconds before it, working days
    up to and including it; per working period: start, end, working time before it."""

    work: np.ndarray  # bool, one per day
    before: np.ndarray  # int64 working us before each day (len days + 1)
    count: np.ndarray  # int64 working days up to and including each day
    starts: np.ndarray  # int64 us after midnight
    ends: np.ndarray
    within: np.ndarray  # int64 working us of the day before each period (len periods + 1)
    first_day: int  # days since 1970-01-01 of the first covered day

    @classmethod
    def build(cls, cal: WorkCalendar) -> _Tables:
        first = np.datetime64(cal._first, "D")
        days = np.arange(first, np.datetime64(f"{cal.years[-1] + 1}-01-01", "D"))
        weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday
        work = ~np.isin(weekday, sorted(cal.weekend))
        hol = np.array(sorted(cal.holidays), dtype="datetime64[D]")
        adj = np.array(sorted(cal.workdays), dtype="datetime64[D]")
        work &= ~np.isin(days, hol)
        work |= np.isin(days, adj)
        starts = np.array([s for s, _ in cal.hours], dtype="int64") * _MIN_US
        ends = np.array([e for _, e in cal.hours], dtype="int64") * _MIN_US
        within = np.concatenate([[0], np.cumsum(ends - starts)])
        before = np.concatenate([[0], np.cumsum(work * within[-1])]).astype("int64")
        return cls(work, before, np.cumsum(work), starts, ends, within, int(first.astype(int)))


def _parse_hours(items: list, source: str) -> tuple[tuple[int, int], ...]:
    out = []
    for item in items:
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(item))
        if not m:
            raise CalendarError(
                f"{source}: working hours {item!r} are not 'HH:MM-HH:MM'.",
                hint='e.g. hours = ["08:30-12:00", "14:00-17:30"]',
            )
        h1, m1, h2, m2 = map(int, m.groups())
        out.append((h1 * 60 + m1, h2 * 60 + m2))
    ok = all(0 <= s < e <= 1440 for s, e in out) and all(
        a[1] <= b[0] for a, b in itertools.pairwise(out)
    )
    if not out or not ok:
        raise CalendarError(
            f"{source}: working hours {items!r} must be one or more periods within a day, "
            "in order and not overlapping.",
            hint='e.g. hours = ["08:30-12:00", "14:00-17:30"]',
        )
    return tuple(out)


def _parse_dates(items: list, year: int, what: str, source: str) -> set[date]:
    out: set[date] = set()
    for item in items:
        try:
            a, _, b = str(item).partition("..")
            d0, d1 = date.fromisoformat(a.strip()), date.fromisoformat((b or a).strip())
        except ValueError:
            d0 = d1 = None
        if d0 is None or d1 is None or d1 < d0 or d0.year != year or d1.year != year:
            raise CalendarError(
                f"{source}: [years.{year}] {what} has {item!r}, not a date or range "
                f"(YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD) in {year}.",
                hint=f'e.g. {what} = ["{year}-10-01..{year}-10-07"]',
            )
        out.update(d0 + timedelta(days=k) for k in range((d1 - d0).days + 1))
    return out


def _calendar_from_dict(data: Mapping, source: str) -> WorkCalendar:
    weekend = set()
    for w in data.get("weekend", ["sat", "sun"]):
        if str(w).lower()[:3] not in _WEEKDAYS:
            raise CalendarError(f"{source}: weekend day {w!r} is none of {', '.join(_WEEKDAYS)}.")
        weekend.add(_WEEKDAYS.index(str(w).lower()[:3]))
    years = sorted(int(y) for y in dict(data.get("years", {})))
    if not years or years != list(range(years[0], years[-1] + 1)):
        raise CalendarError(
            f"{source}: the calendar must cover consecutive years, found {years or 'none'}.",
            hint="Add a [years.YYYY] table for every year in between.",
        )
    holidays: set[date] = set()
    workdays: set[date] = set()
    for y in years:
        table = data["years"][str(y)] if str(y) in data["years"] else data["years"][y]
        hol = _parse_dates(table.get("holidays", []), y, "holidays", source)
        adj = _parse_dates(table.get("workdays", []), y, "workdays", source)
        both = sorted(hol & adj)
        off = sorted(d for d in adj if d.weekday() not in weekend)
        if both or off:
            raise CalendarError(
                f"{source}: [years.{y}] "
                + (f"{both[0]} is both a holiday and a working day" if both else "")
                + (f"adjusted working day {off[0]} is no weekend day" if off and not both else "")
                + ".",
                hint="workdays lists only the weekend days worked to bridge a holiday (调休).",
            )
        holidays |= hol
        workdays |= adj
    tz = str(data.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        raise CalendarError(
            f"{source}: timezone {tz!r} is no IANA time zone.", hint='e.g. "Asia/Shanghai"'
        ) from None
    return WorkCalendar(
        timezone=tz,
        hours=_parse_hours(list(data.get("hours", ["08:30-12:00", "14:00-17:30"])), source),
        weekend=frozenset(weekend),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        years=tuple(years),
        source=source,
    )


def load_calendar(path: str | Path | None = None) -> WorkCalendar:
    """Read a workday calendar (default: the packaged ``rules/workdays.toml``).

    Parameters
    ----------
    path
        An edited copy of ``workdays.toml`` (another city's hours, next year's
        holidays); ``None`` for the packaged one.

    Examples
    --------
    >>> cal = load_calendar()
    >>> cal.hours, sorted(d.isoformat() for d in cal.workdays if d.year == 2026)[:2]
    (((510, 720), (840, 1050)), ['2026-01-04', '2026-02-14'])
    """
    data, source = read_rules("workdays.toml", path, CalendarError)
    return _calendar_from_dict(data, source)


@functools.cache
def _packaged() -> WorkCalendar:
    return load_calendar()


def work_calendar(calendar: WorkCalendar | str | Path | None = None) -> WorkCalendar:
    """The calendar to use: ``calendar`` itself, read from a path, or the packaged one.

    Examples
    --------
    >>> work_calendar() is work_calendar(), work_calendar().years[-1]
    (True, 2026)
    """
    if isinstance(calendar, WorkCalendar):
        return calendar
    return _packaged() if calendar is None else load_calendar(calendar)


# --------------------------------------------------------------------------- the clock


def _local_us(t: pd.Series, cal: WorkCalendar) -> tuple[np.ndarray, np.ndarray]:
    """Local wall-clock microseconds since 1970 (0 where missing) and the missing mask."""
    utc, missing = _utc_us(t)
    return _to_local(utc, missing, cal), missing


def _utc_us(t: object) -> tuple[np.ndarray, np.ndarray]:
    """UTC microseconds since 1970 of each time (0 where missing) and the missing mask."""
    s = utc_series(t)
    us = np.asarray(s.array.asi8, dtype="int64")  # datetime64[us, UTC]: no conversion
    missing = s.isna().to_numpy()
    return np.where(missing, 0, us), missing


@functools.lru_cache(maxsize=64)
def _fixed_offset(timezone: str, first: int, last: int) -> tuple[int, int, int] | None:
    """See :attr:`WorkCalendar._fixed`: the zone's offset sampled every 6 hours from
    1 January ``first`` to 1 January ``last + 1`` (a daylight-saving period lasts
    months), in UTC microseconds."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    low = datetime(first, 1, 1, tzinfo=UTC)
    high = datetime(last + 1, 1, 1, tzinfo=UTC)
    steps = int((high - low) / timedelta(hours=6))
    offsets = {
        (low + timedelta(hours=6 * k)).astimezone(zone).utcoffset() for k in range(steps + 1)
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (
        int(offset / timedelta(microseconds=1)),
        int((low - epoch) / timedelta(microseconds=1)),
        int((high - epoch) / timedelta(microseconds=1)),
    )


def _offset(cal: WorkCalendar, utc_us: np.ndarray) -> int | None:
    """The calendar zone's fixed offset when it holds for every one of ``utc_us``
    (with a day's margin), else None: the zone's rules are asked (pandas)."""
    fixed = cal._fixed
    if fixed is None:
        return None
    offset, low, high = fixed
    if len(utc_us) and (utc_us.min() < low + _DAY_US or utc_us.max() > high - _DAY_US):
        return None
    return offset


def _to_local(utc_us: np.ndarray, missing: np.ndarray, cal: WorkCalendar) -> np.ndarray:
    """Local wall-clock microseconds of UTC microseconds (0 where missing)."""
    offset = _offset(cal, utc_us[~missing])
    if offset is not None:
        return np.where(missing, 0, utc_us + offset)
    s = pd.Series(np.where(missing, _NAT, utc_us).view("datetime64[us]")).dt.tz_localize("UTC")
    local = s.dt.tz_convert(cal.timezone).dt.tz_localize(None).dt.as_unit("us")
    us = local.to_numpy().astype("datetime64[us]").astype("int64")
    return np.where(missing, 0, us)


def _from_local(
    local_us: np.ndarray, missing: np.ndarray, cal: WorkCalendar
) -> tuple[np.ndarray, np.ndarray]:
    """UTC microseconds of local wall-clock ones, and where there is none (missing, or
    a local time that happens twice when the clocks go back); a local time skipped
    when they go forward is moved forward."""
    offset = _offset(cal, local_us[~missing])  # the local times, a day's margin
    if offset is not None:
        return np.where(missing, 0, local_us - offset), missing
    local = pd.Series(np.where(missing, 0, local_us).view("datetime64[us]"))
    out = local.dt.tz_localize(cal.timezone, ambiguous="NaT", nonexistent="shift_forward")
    utc = out.dt.tz_convert("UTC").dt.as_unit("us")
    none = missing | utc.isna().to_numpy()
    return np.where(none, 0, np.asarray(utc.array.asi8, dtype="int64")), none


def _utc_times(utc_us: np.ndarray, missing: np.ndarray, index: pd.Index) -> pd.Series:
    """UTC microseconds as a ``datetime64[us, UTC]`` Series (NaT where missing)."""
    raw = np.where(missing, _NAT, utc_us).view("datetime64[us]")
    return pd.Series(pd.DatetimeIndex(raw).tz_localize("UTC"), index=index)


def _day_index(cal: WorkCalendar, local_us: np.ndarray, missing: np.ndarray) -> np.ndarray:
    tb = cal._tables
    days = local_us // _DAY_US - tb.first_day
    years = (local_us[~missing] // _DAY_US).astype("datetime64[D]").astype("datetime64[Y]")
    cal._check_years(years.astype(int) + 1970)
    return np.where(missing, 0, days)


def _clock(cal: WorkCalendar, local_us: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Working microseconds between the first covered day and each instant."""
    tb = cal._tables
    d = _day_index(cal, local_us, missing)
    tod = local_us - (d + tb.first_day) * _DAY_US
    inside = np.clip(tod[:, None] - tb.starts, 0, tb.ends - tb.starts).sum(axis=1)
    return tb.before[d] + np.where(tb.work[d], inside, 0)


def _past_end(cal: WorkCalendar) -> CalendarError:
    nxt = cal.years[-1] + 1
    return CalendarError(
        f"a deadline runs past the end of {cal.years[-1]}, the last year of the workday "
        f"calendar (it has no year {nxt}; {cal.source}).",
        hint=f"Add a [years.{nxt}] table with that year's public holidays and adjusted "
        f"working days (调休) to {cal.source}, and pass it as calendar=.",
    )


def _unclock(cal: WorkCalendar, w: np.ndarray) -> np.ndarray:
    """The earliest local instant at which the working clock reads ``w`` (> 0)."""
    tb = cal._tables
    if len(w) and w.max() > tb.before[-1]:
        raise _past_end(cal)
    # the first day whose working time reaches w (a working day, as w > 0)
    d = np.searchsorted(tb.before[1:], w, side="left")
    rest = w - tb.before[d]
    p = np.searchsorted(tb.within[1:], rest, side="left")
    p = np.minimum(p, len(tb.starts) - 1)
    return (d + tb.first_day) * _DAY_US + tb.starts[p] + (rest - tb.within[p])


def _series(t: object) -> pd.Series:
    return t if isinstance(t, pd.Series) else pd.Series(np.atleast_1d(np.asarray(t, dtype=object)))


def _amount(value: object, n: int, name: str) -> np.ndarray:
    a = np.broadcast_to(np.asarray(value, dtype="float64"), (n,)) if n else np.zeros(0)
    if np.any(a[~np.isnan(a)] < 0):
        raise ValueError(f"{name} must not be negative (got {np.nanmin(a)}).")
    return a


def add_working_hours(
    start: object, hours: object, *, calendar: WorkCalendar | str | Path | None = None
) -> pd.Series:
    """The instant ``hours`` working hours after each ``start`` (UTC in, UTC out).

    The result is the earliest instant at which that much working time has passed:
    3.5 hours from 08:30 is 12:00 (not 14:00). Zero hours give ``start`` itself;
    missing starts or hours give NaT.

    Parameters
    ----------
    start
        UTC timestamps (a Series keeps its index; naive values are taken as UTC).
    hours
        One number or one per start, not negative.
    calendar
        A :class:`WorkCalendar`, a path to an edited ``workdays.toml``, or None.

    Examples
    --------
    Friday 2 January 2026, 17:00 Beijing time (a holiday): 3.5 working hours end on
    Sunday 4 January (an adjusted working day) at 12:00, not 14:00; 4 hours from
    Monday 08:00 end at 14:30:

    >>> t = pd.Series(pd.to_datetime(["2026-01-02T09:00Z", "2026-01-05T00:00Z"]))
    >>> due = add_working_hours(t, [3.5, 4]).dt.tz_convert("Asia/Shanghai")
    >>> due.dt.strftime("%a %d %H:%M").tolist()
    ['Sun 04 12:00', 'Mon 05 14:30']
    """
    cal = work_calendar(calendar)
    s = _series(start)
    utc, missing = _utc_us(s)
    local = _to_local(utc, missing, cal)
    due = _hours_local(cal, local, missing, _amount(hours, len(s), "hours"))
    return _utc_times(*_finish(cal, utc, *due), s.index)


def _hours_local(
    cal: WorkCalendar, local: np.ndarray, missing: np.ndarray, hours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`add_working_hours` in local microseconds: the deadlines, which are
    missing, and which add nothing (their deadline is the start itself)."""
    missing = missing | np.isnan(hours)
    add = np.round(np.nan_to_num(hours) * _HOUR_US).astype("int64")
    w = _clock(cal, local, missing) + add
    return _unclock(cal, np.where(missing | (add == 0), 1, w)), missing, add == 0


def _finish(
    cal: WorkCalendar,
    utc: np.ndarray,
    local: np.ndarray,
    missing: np.ndarray,
    zero: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Deadlines in local microseconds back in UTC ones: the start itself where
    nothing is added; and which are missing."""
    due, none = _from_local(local, missing, cal)
    return np.where(zero, utc, due), np.where(zero, missing, none)


def add_working_days(
    start: object, days: object, *, calendar: WorkCalendar | str | Path | None = None
) -> pd.Series:
    """The close of business of the ``days``-th working day after each ``start``'s day.

    The day of the start does not count (期间开始之日不计算在内); the deadline is the
    end of the working hours of the last day. Zero days give ``start`` itself.

    Examples
    --------
    Handed over on Friday 13 February 2026 (Beijing time), 3 working days: Saturday 14
    February is worked (调休), the Spring Festival holiday runs 15-23 February, so the
    deadline is Wednesday 25 February at 17:30:

    >>> t = pd.Series(pd.to_datetime(["2026-02-13T02:00Z"]))
    >>> add_working_days(t, 3).dt.tz_convert("Asia/Shanghai").astype(str).tolist()
    ['2026-02-25 17:30:00+08:00']
    """
    cal = work_calendar(calendar)
    s = _series(start)
    utc, missing = _utc_us(s)
    local = _to_local(utc, missing, cal)
    due = _days_local(cal, local, missing, _amount(days, len(s), "days"))
    return _utc_times(*_finish(cal, utc, *due), s.index)


def _days_local(
    cal: WorkCalendar, local: np.ndarray, missing: np.ndarray, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`add_working_days` in local microseconds (as :func:`_hours_local`)."""
    missing = missing | np.isnan(days)
    if np.any(np.nan_to_num(days) % 1):
        raise ValueError("days must be whole numbers of working days (use hours for parts).")
    n = np.nan_to_num(days).astype("int64")
    tb = cal._tables
    d = _day_index(cal, local, missing)
    want = tb.count[d] + n
    if len(want) and want[~missing].max(initial=0) > tb.count[-1]:
        raise _past_end(cal)
    last = np.searchsorted(tb.count, np.where(missing, 1, want), side="left")
    return (last + tb.first_day) * _DAY_US + tb.ends[-1], missing, n == 0


def working_hours_between(
    start: object, end: object, *, calendar: WorkCalendar | str | Path | None = None
) -> pd.Series:
    """Working hours from each ``start`` to each ``end`` (negative when end is earlier).

    For the average handling time in working hours, and for the working time a case
    was paused (see :func:`pause_shift`). Missing values give NaN.

    Examples
    --------
    From Thursday 30 April 2026 09:00 to Wednesday 6 May 09:00 (Beijing time): 6.5
    hours on 30 April, none on 1-5 May (劳动节), half an hour on 6 May:

    >>> a = pd.Series(pd.to_datetime(["2026-04-30T01:00Z"]))
    >>> b = pd.Series(pd.to_datetime(["2026-05-06T01:00Z"]))
    >>> working_hours_between(a, b).tolist(), working_hours_between(b, a).tolist()
    ([7.0], [-7.0])
    """
    cal = work_calendar(calendar)
    s, e = _series(start), _series(end)
    if len(s) != len(e):
        raise ValueError(f"start has {len(s)} values, end {len(e)}.")
    ls, ms = _local_us(s, cal)
    le, me = _local_us(e.set_axis(s.index), cal)
    missing = ms | me
    diff = _clock(cal, le, missing) - _clock(cal, ls, missing)
    return pd.Series(np.where(missing, np.nan, diff / _HOUR_US), index=s.index)


def pause_shift(
    due_at: object,
    paused_at: object,
    resumed_at: object,
    *,
    calendar: WorkCalendar | str | Path | None = None,
) -> pd.Series:
    """Deadlines moved on by the working time each case was paused (挂起).

    Rows without a pause (``paused_at`` or ``resumed_at`` missing) keep their deadline;
    missing deadlines stay missing.

    Examples
    --------
    Due Monday 9 March 2026 12:00 (Beijing), paused from Friday 6 March 16:30 to
    Monday 9 March 09:30 (2 working hours): the deadline moves to 16:00:

    >>> due = pd.Series(pd.to_datetime(["2026-03-09T04:00Z", "2026-03-09T04:00Z"]))
    >>> p = pd.Series(pd.to_datetime(["2026-03-06T08:30Z", None]))
    >>> r = pd.Series(pd.to_datetime(["2026-03-09T01:30Z", None]))
    >>> pause_shift(due, p, r).dt.tz_convert("Asia/Shanghai").dt.strftime("%H:%M").tolist()
    ['16:00', '12:00']
    """
    cal = work_calendar(calendar)
    due = _series(due_at)
    idx = due.index
    hours = working_hours_between(
        _series(paused_at).set_axis(idx), _series(resumed_at).set_axis(idx), calendar=cal
    )
    return add_working_hours(due, hours.fillna(0).clip(lower=0), calendar=cal)


# --------------------------------------------------------------------------- stage limits


@dataclass(frozen=True)
class Limit:
    """A stage limit: ``amount`` working hours (``unit="h"``) or working days (``"d"``).

    Examples
    --------
    >>> Limit.parse("4h"), Limit.parse("5d"), str(Limit.parse(" 1.5 h "))
    (Limit(amount=4.0, unit='h'), Limit(amount=5.0, unit='d'), '1.5h')
    """

    amount: float
    unit: str

    @classmethod
    def parse(cls, text: object, *, where: str = "limit") -> Limit:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hd])\s*", str(text))
        if not m or (m.group(2) == "d" and float(m.group(1)) % 1):
            raise CalendarError(
                f"{where} is {text!r}: write working hours as '4h' or whole working days as '5d'.",
                hint='e.g. handle = "5d", open = "4h"',
            )
        return cls(float(m.group(1)), m.group(2))

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


@dataclass(frozen=True)
class StageLimits:
    """Limits per stage (``open`` 立案, ``dispatch`` 派遣, ``handle`` 处置, ``verify`` 核查):
    defaults and per-category overrides (the ``[stage_limits]`` of ``handlers.toml``).

    Examples
    --------
    >>> lim = StageLimits.from_dict({"default": {"open": "4h", "dispatch": "4h",
    ...     "handle": "5d", "verify": "1d"}, "street_light": {"handle": "3d"}})
    >>> str(lim.limit("street_light", "handle")), str(lim.limit("cctv", "handle"))
    ('3d', '5d')
    """

    defaults: Mapping[str, Limit]
    categories: Mapping[str, Mapping[str, Limit]]
    source: str = field(default="<dict>", compare=False)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "<dict>") -> StageLimits:
        """Parse ``{"default": {stage: "4h"}, category: {stage: "5d"}}``; every stage
        needs a default."""

        def table(name: str, t: Mapping) -> dict[str, Limit]:
            bad = sorted(set(t) - set(STAGES))
            if bad:
                raise CalendarError(
                    f"{source}: [stage_limits.{name}] has unknown stage {bad[0]!r}.",
                    hint=f"stages are {', '.join(STAGES)}",
                )
            return {
                k: Limit.parse(v, where=f"{source}: [stage_limits.{name}] {k}")
                for k, v in t.items()
            }

        defaults = table("default", dict(data.get("default", {})))
        missing = [s for s in STAGES if s not in defaults]
        if missing:
            raise CalendarError(
                f"{source}: [stage_limits.default] has no limit for {', '.join(missing)}.",
                hint='e.g. [stage_limits.default] open = "4h", dispatch = "4h", '
                'handle = "5d", verify = "1d"',
            )
        cats = {k: table(k, dict(v)) for k, v in data.items() if k != "default"}
        return cls(defaults, cats, source)

    def limit(self, category: str, stage: str) -> Limit:
        """The limit of ``stage`` for ``category`` (its override, else the default)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}.")
        return self.categories.get(category, {}).get(stage) or self.defaults[stage]


def _limits_in(path: str | Path | None) -> StageLimits:
    """The ``[stage_limits]`` of a ``handlers.toml`` (default the packaged one)."""
    data, source = read_rules("handlers.toml", path, CalendarError)
    return StageLimits.from_dict(dict(data.get("stage_limits", {})), source=source)


@functools.cache
def _packaged_limits() -> StageLimits:
    return _limits_in(None)


def stage_limits(rules: object = None) -> StageLimits:
    """The stage limits to apply: ``rules`` itself (:class:`StageLimits`, or rules holding
    them as ``.stage_limits``), the ``[stage_limits]`` of a ``handlers.toml`` at a path,
    or the packaged ones.

    Examples
    --------
    >>> str(stage_limits().limit("street_light", "handle")), stage_limits() is stage_limits()
    ('3d', True)
    """
    if rules is None:
        return _packaged_limits()
    if isinstance(rules, StageLimits):
        return rules
    held = getattr(rules, "stage_limits", None)
    if isinstance(held, StageLimits):
        return held
    return _limits_in(str(rules))


def stage_deadline(
    start: object,
    category: object,
    stage: str,
    rules: object,
    calendar: WorkCalendar | str | Path | None = None,
) -> pd.Series:
    """Deadlines of ``stage`` for cases entering it at ``start`` (UTC), per category.

    Parameters
    ----------
    start
        UTC timestamps, one per case.
    category
        One category or one per case (a category without overrides takes the defaults).
    stage
        ``open``, ``dispatch``, ``handle`` or ``verify``.
    rules
        :class:`StageLimits`, or rules holding them as ``.stage_limits`` (the handler
        rules of :func:`gridkit.ops.routing.load_handler_rules`).
    calendar
        The workday calendar (default the packaged one).

    Examples
    --------
    Opened Friday 13 February 2026, 10:00 Beijing time; street lights are handled in 3
    working days, road damage in the default 5; sand mining's 8 working hours take 5.5
    on Friday and 2.5 on Saturday 14 February, an adjusted working day (调休):

    >>> lim = StageLimits.from_dict({"default": {"open": "4h", "dispatch": "4h",
    ...     "handle": "5d", "verify": "1d"}, "street_light": {"handle": "3d"},
    ...     "sand_mining": {"handle": "8h"}})
    >>> t = pd.Series(pd.to_datetime(["2026-02-13T02:00Z"] * 3))
    >>> due = stage_deadline(t, ["street_light", "road_damage", "sand_mining"], "handle", lim)
    >>> due.dt.tz_convert("Asia/Shanghai").dt.strftime("%m-%d %H:%M").tolist()
    ['02-25 17:30', '02-27 17:30', '02-14 11:00']
    """
    limits = rules if isinstance(rules, StageLimits) else getattr(rules, "stage_limits", None)
    if not isinstance(limits, StageLimits):
        raise TypeError("rules must be StageLimits or hold them as .stage_limits.")
    s = _series(start)
    amount, in_days = _limit_arrays(limits, category, stage, len(s))
    utc, missing = _utc_us(s)
    due, none = _deadline_us(work_calendar(calendar), utc, missing, amount, in_days)
    return _utc_times(due, none, s.index)


def _limit_arrays(
    limits: StageLimits, category: object, stage: str, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The limit of ``stage`` for each of ``n`` cases of ``category`` (one, or one per
    case): its amount and whether it counts working days."""
    cats = np.broadcast_to(np.asarray(category, dtype=object), (n,)).astype(str)
    keys, uniq = pd.factorize(cats, use_na_sentinel=False)
    per = [limits.limit(c, stage) for c in uniq]  # one per distinct category
    amount = np.array([lim.amount for lim in per], dtype="float64")[keys]
    in_days = np.array([lim.unit == "d" for lim in per], dtype=bool)[keys]
    return amount, in_days


def _deadline_us(
    cal: WorkCalendar,
    utc: np.ndarray,
    missing: np.ndarray,
    amount: np.ndarray,
    in_days: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Deadlines ``amount`` working days (where ``in_days``) or hours after each start,
    all in UTC microseconds (0 where missing, see :func:`_utc_us`): the deadlines and
    which are missing. What :func:`stage_deadline` gives, without a Series on the way
    (the report writer's batches are a few rows)."""
    local = _to_local(utc, missing, cal)
    # each way of counting only where a limit counts that way (a batch of reports
    # mostly has one: the other's dozens of array operations would be for nothing)
    if not in_days.any():
        return _finish(cal, utc, *_hours_local(cal, local, missing, amount))
    if in_days.all():
        return _finish(cal, utc, *_days_local(cal, local, missing, amount))
    by_h = _hours_local(cal, local, missing, np.where(in_days, 0, amount))
    by_d = _days_local(cal, local, missing, np.where(in_days, amount, 0))
    due, miss, zero = (np.where(in_days, d, h) for d, h in zip(by_d, by_h, strict=True))
    return _finish(cal, utc, due, miss, zero)
