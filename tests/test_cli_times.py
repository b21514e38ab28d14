"""Every command-line time or date option reads a zone-less value as Beijing time
(Asia/Shanghai, as CSV and XLSX tables are read), keeps an explicit zone, and takes a
date alone as that day's start in Beijing: one parser (gridkit.cli.times) for all."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pandas as pd
import pytest
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.cli import main
from gridkit.cli.app import app
from gridkit.cli.times import ZONE_HELP, cli_date, cli_time
from gridkit.errors import GridkitError
from gridkit.io import read_table
from gridkit.store import create_store

#: (command path, the other arguments it needs, option, parameter): every time option
TIME_OPTIONS = [
    (("escalate",), ["ws.gpkg"], "--at", "at"),
    (("hotspots",), ["r.csv", "u.gpkg", "-o", "h.gpkg"], "--start", "start"),
    (("hotspots",), ["r.csv", "u.gpkg", "-o", "h.gpkg"], "--end", "end"),
    (("reports", "export"), ["ws.gpkg", "-o", "x.csv"], "--since", "since"),
    (("reports", "export"), ["ws.gpkg", "-o", "x.csv"], "--until", "until"),
    (("targets",), ["ws.gpkg", "-o", "t.csv"], "--at", "at"),
    (("heads",), ["ws.gpkg", "-o", "h.csv"], "--at", "at"),
]
#: ... the start of ``--period START..END`` (its end: test_period_end_as_its_start)
PERIOD = (("assess",), ["ws.gpkg", "-o", "a.xlsx"], "--period", "period")
#: ... and the date options (a day, in Beijing)
DATE_OPTIONS = [(("summons",), ["ws.gpkg", "--period", "2026"], "--held-on", "held_on")]
#: options whose name reads like a time but that take none
NOT_TIMES = {
    ("assign", "--time-limit"): "seconds of solver time",
    ("compliance", "--period"): "a calendar period (Asia/Shanghai): 2026-Q1",
    ("summons", "--period"): "a calendar period (Asia/Shanghai)",
    ("patrols ledger", "--period"): "a calendar period (Asia/Shanghai)",
    ("map", "--period"): "a calendar period (Asia/Shanghai), or the title",
    ("serve", "--header-timeout"): "seconds",
    ("db upgrade", "--to"): "a schema revision",
}
_TIMELIKE = re.compile(
    r"--(at|start|end|since|until|from|to|before|after|when|period)$|time|date|-on$|-at$"
)

_COMMAND = typer.main.get_command(app)


def _parsed(path: tuple[str, ...], args: list[str], option: str, param: str, value: str):
    """The value the command receives for ``option value``, parsed as on the command
    line (click's own parsing of the whole line, the command not run)."""
    cmd = _COMMAND
    for name in path:
        cmd = cmd.commands[name]
    if option == "--period":
        value = f"{value}..2100-01-01"
    ctx = cmd.make_context(" ".join(path), [*args, option, value])
    got = ctx.params[param]
    return got[0] if option == "--period" else got


ALL_TIMES = [*TIME_OPTIONS, PERIOD]
IDS = [f"{' '.join(c[0])} {c[2]}" for c in ALL_TIMES]

#: (typed, the instant meant, its UTC offset kept in hours)
EXPECTED = [
    ("2026-12-01 08:00", "2026-12-01T00:00Z", 8),
    ("2026-12-01T08:00:00", "2026-12-01T00:00Z", 8),
    ("2026-12-01", "2026-11-30T16:00Z", 8),  # the day's start in Beijing
    ("2026-12-01T08:00+08:00", "2026-12-01T00:00Z", 8),
    ("2026-12-01T08:00Z", "2026-12-01T08:00Z", 0),  # an explicit zone is kept
    ("2026-12-01T08:00+05:00", "2026-12-01T03:00Z", 5),
    ("2026-07-01 23:30", "2026-07-01T15:30Z", 8),  # no summer time in Beijing
]


@pytest.mark.parametrize("case", ALL_TIMES, ids=IDS)
def test_every_time_option_reads_beijing_time_unless_a_zone_is_given(case) -> None:
    for typed, meant, offset_h in EXPECTED:
        got = _parsed(*case, typed)
        assert isinstance(got, pd.Timestamp), (typed, got)
        assert got == pd.Timestamp(meant), (typed, got)
        assert got.utcoffset() == timedelta(hours=offset_h), (typed, got)


@pytest.mark.parametrize("case", ALL_TIMES, ids=IDS)
def test_every_time_option_refuses_a_non_time_naming_itself(case) -> None:
    for typed in ("garbage", "now", "2026-13-01", "08:00 tomorrow"):
        with pytest.raises(GridkitError, match=re.escape(f"{case[2]} ")) as err:
            _parsed(*case, typed)
        assert "not a time" in err.value.message and ZONE_HELP in (err.value.hint or "")


@pytest.mark.parametrize("case", DATE_OPTIONS, ids=[c[2] for c in DATE_OPTIONS])
def test_date_options_take_the_day_in_beijing(case) -> None:
    assert _parsed(*case, "2026-12-01") == "2026-12-01"
    assert _parsed(*case, "2026-12-01 23:59") == "2026-12-01"
    assert _parsed(*case, "2026-12-01T20:00Z") == "2026-12-02"  # 04:00 the next day in Beijing
    with pytest.raises(GridkitError, match="--held-on 'Monday': not a time"):
        _parsed(*case, "Monday")


def test_period_end_as_its_start() -> None:
    cmd = _COMMAND.commands["assess"]
    for text, (a, b) in {
        "2026-03-01..2026-04-01": ("2026-02-28T16:00Z", "2026-03-31T16:00Z"),
        "2026-03-01 08:00..2026-03-02T00:00Z": ("2026-03-01T00:00Z", "2026-03-02T00:00Z"),
    }.items():
        got = cmd.make_context("assess", ["ws.gpkg", "-o", "a.xlsx", "--period", text])
        assert got.params["period"] == (pd.Timestamp(a), pd.Timestamp(b))
    calendar = cmd.make_context("assess", ["ws.gpkg", "-o", "a.xlsx", "--period", "2026-Q1"])
    assert calendar.params["period"] == "2026-Q1"  # calendar periods: Beijing too (assess)
    with pytest.raises(GridkitError, match="START before END"):
        cmd.make_context(
            "assess", ["ws.gpkg", "-o", "a.xlsx", "--period", "2026-03-01..2026-03-01"]
        )


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_option_taking_a_time_is_listed_and_says_beijing_time() -> None:
    """A new time option must join the table above (and so the shared parser)."""
    listed = {(" ".join(c[0]), c[2]) for c in [*ALL_TIMES, *DATE_OPTIONS]}
    found = set()
    for path, cmd in _commands(_COMMAND):
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                if opt.startswith("--") and _TIMELIKE.search(opt):
                    found.add((" ".join(path), opt))
                    if (" ".join(path), opt) in listed:
                        assert ZONE_HELP in (p.help or ""), (path, opt, p.help)
    assert found - set(NOT_TIMES) == listed


naive = st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2099, 12, 31))


@settings(max_examples=60, deadline=None)
@given(t=naive, sep=st.sampled_from([" ", "T"]))
def test_naive_is_the_same_instant_as_with_plus_eight(t: datetime, sep: str) -> None:
    """Beijing has kept UTC+8 since 1991: a naive time is that time at +08:00, in the
    shared parser and in every command's option."""
    typed = t.isoformat(sep=sep)
    want = pd.Timestamp(t.isoformat() + "+08:00")
    assert cli_time(typed) == want
    for case in ALL_TIMES:
        assert _parsed(*case, typed) == want, case[:3]


@settings(max_examples=60, deadline=None)
@given(t=naive, minutes=st.integers(-12 * 60, 14 * 60), z=st.booleans())
def test_an_explicit_zone_is_kept(t: datetime, minutes: int, z: bool) -> None:
    zone = "Z" if z else f"{'+-'[minutes < 0]}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    typed = t.isoformat() + zone
    got = cli_time(typed, option="--at")
    assert got == pd.Timestamp(typed)
    assert got.utcoffset() == (timedelta(0) if z else timedelta(minutes=minutes))
    assert cli_date(typed) == got.tz_convert("Asia/Shanghai").date().isoformat()


def test_reports_export_since_until_on_a_workspace(tmp_path, capsys) -> None:
    """The command's output, not just its parsing: a ticket closed at 07:30 Beijing
    time (23:30 UTC the day before) is closed on the 3rd for ``--since 2026-05-03``."""
    reports = pd.DataFrame(
        {
            "report_id": ["R1", "R2"],
            "ticket_id": ["T-早", "T-晚"],
            "ticket_system": ["12345", "12345"],
            "category": ["路灯损坏", "污水管道"],
            "status": ["closed", "closed"],
        }
    )
    events = pd.DataFrame(
        {
            "report_id": ["R1", "R2"],
            "at": pd.to_datetime(["2026-05-02T23:30Z", "2026-05-02T15:30Z"]),
            "to_status": ["closed", "closed"],
            "note": ["已修复", "已疏通"],
        }
    )
    ws = tmp_path / "ws.gpkg"
    create_store(ws, {"reports": reports, "report_events": events})

    def exported(*options: str) -> list[str]:
        out = tmp_path / "out.csv"
        code = main(["reports", "export", str(ws), "-o", str(out), *options])
        assert code == 0, capsys.readouterr().err
        return sorted(read_table(out)["ticket_id"].astype(str))

    assert exported("--since", "2026-05-03") == ["T-早"]
    assert exported("--since", "2026-05-03T00:00+08:00") == ["T-早"]
    assert exported("--since", "2026-05-03T00:00Z") == []  # a zone given: UTC midnight
    assert exported("--until", "2026-05-03") == ["T-晚"]
    assert exported("--since", "2026-05-02 23:31", "--until", "2026-05-03 07:31") == ["T-早"]
