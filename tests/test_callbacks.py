"""回访 callbacks (issue 22 item 4): a dissatisfied answer reopens the case per the
rules (closed -> opened, action reopen), checked against a brute-force reading of the
rules; satisfaction per area, department and worker; ``gridkit callbacks``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.cli import main
from gridkit.io import read_table
from gridkit.ops.callbacks import (
    CallbackError,
    callback_rules,
    record_callbacks,
    satisfaction,
)
from gridkit.store import create_store, open_store

T0 = pd.Timestamp("2026-05-01T00:00Z")
RESULTS = ["satisfied", "basically_satisfied", "dissatisfied", "unreachable"]


def cases(n=3):
    return pd.DataFrame(
        {
            "report_id": [f"R{i}" for i in range(1, n + 1)],
            "status": ["closed"] * n,
            "closed_at": [T0] * n,
            "admin_code": ["430202001001", "430202001002", "430203001001"][:n],
            "lead_department_id": ["D1", "D1", "D2"][:n],
            "assignee_id": ["W1", "W2", "W3"][:n],
        }
    )


def test_dissatisfied_reopens_once_then_is_listed_not_reopened():
    calls = pd.DataFrame(
        {
            "report_id": ["R1", "R2"],
            "result": ["不满意", "基本满意"],
            "at": ["2026-05-02T02:00Z"] * 2,
            "caller_id": ["C9", "C9"],
            "note": ["路灯还是不亮", None],
        }
    )
    change = record_callbacks(calls, reports=cases())
    assert change.reopened == ["R1"]
    assert change.reports.set_index("report_id").loc["R1", "status"] == "opened"
    assert pd.isna(change.reports.set_index("report_id").loc["R1", "closed_at"])
    ev = change.events.iloc[0]
    assert (ev["action"], ev["from_status"], ev["to_status"], ev["actor_id"]) == (
        "reopen",
        "closed",
        "opened",
        "C9",
    )
    assert "路灯还是不亮" in ev["note"]
    assert change.callbacks["result"].tolist() == ["dissatisfied", "basically_satisfied"]
    # closed again after rework; a second dissatisfied answer: max_reopens = 1 reached
    events = change.events.assign(at=pd.Timestamp("2026-05-02T02:00Z"))
    again = cases().assign(closed_at=pd.Timestamp("2026-05-06T00:00Z"))
    second = record_callbacks(
        pd.DataFrame({"report_id": ["R1"], "result": ["dissatisfied"], "at": ["2026-05-07"]}),
        reports=again,
        events=events,
        existing=change.callbacks,
    )
    assert second.reopened == [] and second.callbacks["callback_id"].tolist()[-1] == "CB000003"


def test_bad_callbacks_are_refused_naming_rows():
    reports = cases().assign(status=["closed", "handling", "closed"])
    with pytest.raises(CallbackError, match="unknown callback answers at rows 1: 很好"):
        record_callbacks(
            pd.DataFrame({"report_id": ["R1", "R3"], "result": ["满意", "很好"]}), reports=reports
        )
    with pytest.raises(CallbackError, match=r"not closed \(handling\)"):
        record_callbacks(pd.DataFrame({"report_id": ["R2"], "result": ["满意"]}), reports=reports)
    with pytest.raises(CallbackError, match="name no case: R9"):
        record_callbacks(pd.DataFrame({"report_id": ["R9"], "result": ["满意"]}), reports=reports)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(RESULTS), st.floats(0, 30)),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.integers(0, 2), min_size=5, max_size=5),
)
def test_reopen_rule_matches_brute_force(calls, reopened_before):
    rules = callback_rules()
    reports = pd.DataFrame(
        {"report_id": [f"R{i}" for i in range(5)], "status": "closed", "closed_at": T0}
    )
    events = pd.DataFrame(
        [
            {
                "report_id": f"R{i}",
                "at": T0 - pd.Timedelta("3D"),
                "from_status": "closed",
                "to_status": "opened",
            }
            for i, k in enumerate(reopened_before)
            for _ in range(k)
        ],
        columns=["report_id", "at", "from_status", "to_status"],
    )
    table = pd.DataFrame(
        {
            "report_id": [f"R{c}" for c, _, _ in calls],
            "result": [r for _, r, _ in calls],
            "at": [T0 + pd.Timedelta(days=d) for _, _, d in calls],
        }
    )
    got = record_callbacks(table, reports=reports, events=events)
    expect = []
    for i in range(5):
        mine = sorted(
            (d, k)
            for k, (c, r, d) in enumerate(calls)
            if c == i and r in rules.reopen_on and d <= rules.within_days
        )
        if mine and reopened_before[i] < rules.max_reopens:
            expect.append(f"R{i}")
    assert sorted(got.reopened) == expect
    assert sorted(got.reports.loc[got.reports["status"] == "opened", "report_id"]) == expect
    assert len(got.callbacks) == len(calls)


def test_satisfaction_per_area_department_worker():
    reports = cases()
    calls = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3", "R3", "R2"],
            "result": [
                "satisfied",
                "dissatisfied",
                "unreachable",
                "basically_satisfied",
                "satisfied",
            ],
            "at": pd.to_datetime(
                ["2026-05-02", "2026-05-02", "2026-05-02", "2026-05-03", "2026-05-05"], utc=True
            ),
        }
    )
    areas = satisfaction(calls, reports, level="township").set_index("admin_code")
    assert areas.loc["430202001", "answered"] == 2  # R2's last answer counts: satisfied
    assert areas.loc["430202001", "satisfaction_rate"] == 1.0
    assert areas.loc["430203001", "satisfaction_score"] == 80.0
    depts = satisfaction(calls, reports, by="lead_department_id").set_index("department_id")
    assert depts.loc["D1", "callbacks"] == 2
    workers = satisfaction(calls, reports, by="assignee_id", end="2026-05-04").set_index(
        "worker_id"
    )
    assert workers.loc["W2", "dissatisfied"] == 1 and workers.loc["W2", "satisfaction_rate"] == 0.0
    assert np.isnan(satisfaction(calls.iloc[[2]], reports).loc[0, "satisfaction_rate"])


def test_cli_callbacks_record_and_satisfaction(capsys, tmp_path):
    ws = tmp_path / "ws.gpkg"
    create_store(ws, {"reports": cases()})
    calls = tmp_path / "回访.csv"
    pd.DataFrame(
        {"report_id": ["R1", "R2"], "result": ["不满意", "满意"], "at": ["2026-05-02T08:00Z"] * 2}
    ).to_csv(calls, index=False)
    assert main(["callbacks", "record", str(calls), "-w", str(ws)]) == 0
    assert "reopened 1 case: R1" in capsys.readouterr().out
    store = open_store(ws)
    assert store.read("reports").set_index("report_id").loc["R1", "status"] == "opened"
    assert store.read("report_events")["action"].tolist() == ["reopen"]
    assert len(store.read("callbacks")) == 2
    out = tmp_path / "满意度.xlsx"
    assert main(["callbacks", "satisfaction", str(ws), "--by", "department", "-o", str(out)]) == 0
    table = read_table(out)
    assert table.set_index("department_id").loc["D1", "satisfaction_rate"] == 0.5
    assert main(["callbacks", "record", str(calls), "-w", str(ws)]) == 1  # R1 is open now
    assert "not closed (opened)" in capsys.readouterr().err


def test_satisfaction_enters_the_assessment_tables(tmp_path):
    from gridkit.ops.assess import assess
    from gridkit.ops.callbacks import with_satisfaction

    reports = cases().assign(
        reported_at=T0 - pd.Timedelta("5D"), due_at=T0, resolved_at=T0 - pd.Timedelta("1D")
    )
    calls = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3"],
            "result": ["satisfied", "dissatisfied", "basically_satisfied"],
            "at": ["2026-05-02"] * 3,
        }
    )
    # workers are scored on what they control (patrols here): satisfaction joins them
    compliance = pd.DataFrame({"worker_id": ["W1", "W2", "W3"], "compliant": [True] * 3})
    a = with_satisfaction(
        assess(compliance=compliance, reports=reports, now=T0, area_digits=6),
        calls,
        reports,
        area_digits=6,
    )
    assert a.workers.set_index("worker_id")["satisfaction_rate"].to_dict() == {
        "W1": 1.0,
        "W2": 0.0,
        "W3": 1.0,
    }
    assert a.departments.set_index("department_id").loc["D1", "satisfaction_rate"] == 0.5
    areas = a.areas.set_index("admin_code")
    assert areas.loc["430202", "callbacks"] == 2 and areas.loc["430203", "satisfaction_rate"] == 1.0
    sheet = pd.read_excel(a.to_xlsx(tmp_path / "考核.xlsx"), sheet_name="网格员")
    assert {"回访数", "回访满意率"} <= set(sheet.columns)  # Chinese headers in the workbook
