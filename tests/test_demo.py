"""``gridkit demo`` runs the whole job on the embedded sample, end to end."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest

from gridkit.cli import main
from gridkit.io import read_layer
from gridkit.versions import read_version, versions


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    ws = tmp_path_factory.mktemp("demo") / "zhuzhou.gpkg"
    capture = pytest.MonkeyPatch()
    import io

    from rich.console import Console

    from gridkit.cli import util as _cliutil

    buf = io.StringIO()
    capture.setattr(_cliutil, "console", Console(file=buf, width=200))
    import gridkit.cli.app as cli

    capture.setattr(cli, "console", _cliutil.console)
    try:
        assert main(["demo", "--workspace", str(ws)]) == 0
    finally:
        capture.undo()
    return ws, buf.getvalue()


def test_demo_writes_real_and_synthetic_layers(demo) -> None:
    ws, _ = demo
    names = {n for n, _ in pyogrio.list_layers(ws)}
    assert {
        "admin_areas",
        "rivers",
        "water_bodies",
        "communities",
        "buildings",
        "workers",
        "river_chiefs",
        "departments",
        "reaches",
        "units",
        "assignments",
        "lineage",
        "versions",
    } <= names
    admin = read_layer(ws, "admin_areas")  # passes its schema check
    assert admin.crs.to_epsg() == 4326
    districts = admin[admin["level"] == "county"]
    assert sorted(districts["admin_code"]) == [
        "430202",
        "430203",
        "430204",
        "430211",
        "430212",
        "430223",
        "430224",
        "430225",
        "430281",
    ]
    assert not districts["synthetic"].any()
    assert (read_layer(ws, "rivers")["name"] == "湘江").sum() == 1


def test_demo_grids_are_valid_and_versioned(demo) -> None:
    ws, _ = demo
    assert versions(ws)["version"].tolist() == [1, 2]
    v1, v2 = read_version(ws, 1), read_version(ws, 2)
    assert set(v1["kind"]) == {"river_reach", "water_body", "community_grid"}
    lineage = read_layer(ws, "lineage")
    changed = lineage[lineage["relation"] != "unchanged"]
    touched = set(changed["old_id"].dropna()) | set(changed["new_id"].dropna())
    communities = {i.rsplit("-", 1)[0] for i in touched}
    assert len(communities) == 1  # the redraw touched one community only
    untouched = set(v1["unit_id"]) - touched
    assert untouched <= set(v2["unit_id"])
    reaches = read_layer(ws, "reaches")
    assert reaches["length_m"].max() <= 3000 * (1 + 1e-9)


def test_demo_staffing_and_maps(demo) -> None:
    ws, out = demo
    assignments = read_layer(ws, "assignments")
    units = read_layer(ws, "units")
    assert set(assignments["unit_id"]) <= set(units["unit_id"])
    assert len(assignments) > 0.5 * len(units)
    maps = ws.parent / "maps"
    for name in ("coverage.html", "diff.html"):
        html = (maps / name).read_text(encoding="utf-8")
        assert '<script src="http' not in html  # offline: no CDN
    for words in (
        "rivers:",
        "four-level chief coverage",
        "communities:",
        "staffing:",
        "versions:",
        "map coverage",
    ):
        assert words in out


def _lapses(reports, at):
    """Brute force, case by case: the cases a run at ``at`` must escalate, and the level
    each lapse reaches (72 h repeat, 3 levels: the packaged rules)."""
    import math

    import pandas as pd

    open_stages = {"collected", "opened", "dispatched", "handling", "reported_back", "returned"}
    want = {}
    for r in reports.itertuples():
        due = pd.Timestamp(r.due_at) if pd.notna(r.due_at) else None
        paused = pd.notna(getattr(r, "paused_at", None))
        if (r.status not in open_stages and r.status != "verified") or due is None or paused:
            continue
        if not due < at:
            continue
        reached = min(3, 1 + math.floor((at - due) / pd.Timedelta(hours=72)))
        same = pd.notna(r.escalated_due_at) and pd.Timestamp(r.escalated_due_at) == due
        current = int(r.escalation_level) if same else 0
        if reached > current:
            want[r.report_id] = reached
    return want


def test_demo_cases_run_the_centres_workflow_and_escalate(demo, tmp_path) -> None:
    """The demo's month goes through every stage; ``gridkit escalate --at`` on its
    workspace escalates exactly the cases whose stage deadline has lapsed (brute force),
    and a second run changes nothing."""
    import shutil

    import pandas as pd

    ws, out = demo
    flat = " ".join(out.split())  # the console wraps long lines
    assert "cases (案件)" in flat and "escalations in the season" in flat
    assert "river chiefs (河长) 2026, rules met: province" in flat and "to summon (约谈)" in flat
    assert "12345 tickets taken in" in flat and "building heads with" in flat
    events = read_layer(ws, "report_events")
    for action in (
        "collect",
        "open",
        "dispatch",
        "accept",
        "return",
        "report_back",
        "verify",
        "rework",
        "close",
        "escalate",
        "extend",
    ):
        assert (events["action"] == action).any(), action
    copy = tmp_path / "ws.gpkg"
    shutil.copy(ws, copy)
    at = pd.Timestamp("2026-04-06T00:00Z")
    before = read_layer(copy, "reports")
    want = _lapses(before, at)
    assert want  # the month ends with cases overdue
    assert main(["escalate", str(copy), "--at", at.isoformat()]) == 0
    after = read_layer(copy, "reports").set_index("report_id")
    new = read_layer(copy, "report_events")
    new = new.iloc[len(events) :]
    assert sorted(new["report_id"]) == sorted(want)
    assert (new["action"] == "escalate").all()
    assert (new["from_status"] == new["to_status"]).all()
    assert new["note"].str.startswith("escalated (督办) to level").all()
    for rid, level in want.items():
        assert after.loc[rid, "escalation_level"] == level
    assert main(["escalate", str(copy), "--at", at.isoformat()]) == 0
    assert len(read_layer(copy, "report_events")) == len(events) + len(new)  # nothing twice
