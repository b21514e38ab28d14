"""Every rules loader reads its file through one reader: a missing file, a file that
is not UTF-8 and a file that is not TOML each get a clear error naming the file and
the fix, of the loader's own error class (the CLI shows it in one line)."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pytest

from gridkit.errors import GridkitError
from gridkit.ops.callbacks import CallbackError, load_callback_rules
from gridkit.ops.patrols import RulesError, load_patrol_rules
from gridkit.ops.reports import ReportError, load_report_rules
from gridkit.ops.routing import RoutingError, load_handler_rules
from gridkit.ops.worktime import CalendarError, load_calendar, stage_limits

LOADERS = [
    (load_report_rules, ReportError, "reports.toml"),
    (load_patrol_rules, RulesError, "patrol_rules.toml"),
    (load_handler_rules, RoutingError, "handlers.toml"),
    (load_calendar, CalendarError, "workdays.toml"),
    (load_callback_rules, CallbackError, "callbacks.toml"),
    (stage_limits, CalendarError, "handlers.toml"),
]


@pytest.mark.parametrize(("load", "error", "name"), LOADERS)
def test_broken_rules_files_are_named_with_the_fix(load, error, name, tmp_path: Path) -> None:
    missing = tmp_path / "不在" / name
    with pytest.raises(error) as e:
        load(missing)
    assert str(missing) in e.value.message and "no such rules file" in e.value.message
    assert f"gridkit/rules/{name}" in e.value.hint
    gbk = tmp_path / f"gbk-{name}"
    gbk.write_bytes('label_zh = "河道垃圾"\n'.encode("gbk"))
    with pytest.raises(error, match="not UTF-8") as e:
        load(gbk)
    assert e.value.hint == "save the rules file as UTF-8."
    broken = tmp_path / f"broken-{name}"
    broken.write_text("[categories\nfloating_garbage = 1\n", encoding="utf-8")
    with pytest.raises(error, match="not valid TOML") as e:
        load(broken)
    assert str(broken) in e.value.message and f"gridkit/rules/{name}" in e.value.hint
    assert issubclass(error, GridkitError)


@pytest.mark.parametrize(("load", "error", "name"), LOADERS)
def test_an_unedited_copy_reads_as_the_packaged_rules(load, error, name, tmp_path) -> None:
    copy = tmp_path / name
    copy.write_text(resources.files("gridkit").joinpath("rules", name).read_text("utf-8"))
    mine, packaged = load(copy), load()
    assert mine.source == str(copy) and packaged.source == f"gridkit/rules/{name}"
    assert dataclasses.replace(mine, source=packaged.source) == packaged
