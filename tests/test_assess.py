"""Assessment as centres do it (issue 21, item 6): departments on handling, grid workers
on collection and verification, areas on every stage; a minimum number of cases before
ranking; the XLSX layout. The case data is built by hand in the case model of CASES.md
(report_events with ``action`` and ``due_at``)."""

from __future__ import annotations

import importlib
import io

import openpyxl
import pandas as pd
import pytest

from gridkit.ops.assess import HEADERS_ZH, Assessment, assess, assess_period, register_sheet

NOW = "2026-06-01T00:00Z"
assess_module = importlib.import_module("gridkit.ops.assess")  # the name is also a function


def _t(local: str | None) -> pd.Timestamp:
    """Beijing wall time (2026) -> UTC."""
    if local is None or local != local:  # None or NaN
        return pd.NaT
    return pd.Timestamp(f"2026-{local}", tz="Asia/Shanghai").tz_convert("UTC")


# report, at (local), actor, from, to, action, due (local)
EVENTS = [
    ("R1", "05-11 08:00", "W1", None, "collected", "collect", None),
    ("R1", "05-11 08:00", "system", "collected", "opened", "open", "05-11 12:30"),
    ("R1", "05-11 09:00", "S1", "opened", "dispatched", "dispatch", "05-11 12:00"),
    ("R1", "05-11 09:30", "P1-staff", "dispatched", "handling", "accept", "05-14 17:30"),
    ("R1", "05-11 11:00", "P1-staff", "handling", "reported_back", "report_back", "05-14 17:30"),
    ("R1", "05-11 15:00", "W1", "reported_back", "verified", "verify", "05-12 17:30"),
    ("R1", "05-11 16:00", "S1", "verified", "closed", "close", None),
    ("R2", "05-11 10:00", "W1", None, "collected", "collect", None),
    ("R2", "05-11 16:00", "S1", "collected", "opened", "open", "05-11 14:00"),  # late
    ("R2", "05-12 09:00", "S1", "opened", "dispatched", "dispatch", "05-12 10:00"),
    ("R2", "05-12 10:00", "D1-staff", "dispatched", "handling", "accept", "05-19 17:30"),
    ("R2", "05-13 10:00", "D1-staff", "handling", "reported_back", "report_back", "05-12 17:30"),
    ("R2", "05-13 15:00", "W2", "reported_back", "handling", "rework", "05-13 12:00"),  # late
    ("R2", "05-14 10:00", "D1-staff", "handling", "reported_back", "report_back", "05-15 17:30"),
    ("R2", "05-14 16:00", "W2", "reported_back", "verified", "verify", "05-15 17:30"),
    ("R2", "05-15 09:00", "S1", "verified", "closed", "close", None),
    ("R3", "05-12 08:00", "W2", None, "collected", "collect", None),
    ("R3", "05-12 09:00", "S1", "collected", "rejected", "reject", "05-12 12:00"),
    ("R4", "05-18 08:00", "W2", None, "collected", "collect", None),
    ("R4", "05-18 08:00", "system", "collected", "opened", "open", "05-18 12:00"),
    ("R4", "05-18 09:00", "S1", "opened", "dispatched", "dispatch", "05-18 12:00"),
    ("R4", "05-18 10:00", "D1-staff", "dispatched", "handling", "accept", "05-25 17:30"),
    ("R5", "05-11 09:00", "W2", None, "collected", "collect", None),
    ("R6", "05-19 08:00", "W2", None, "collected", "collect", None),
    ("R6", "05-19 08:00", "system", "collected", "opened", "open", "05-19 12:00"),
    ("R6", "05-19 09:00", "S1", "opened", "dispatched", "dispatch", "05-19 12:00"),
    ("R6", "05-19 10:00", "D1-staff", "dispatched", "handling", "accept", "05-26 17:30"),
]


@pytest.fixture
def season():
    events = pd.DataFrame(
        EVENTS,
        columns=["report_id", "at", "actor_id", "from_status", "to_status", "action", "due_at"],
    )
    events["at"] = events["at"].map(_t)
    events["due_at"] = events["due_at"].map(_t)
    a, b = "430202001001", "430202002001"
    reports = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3", "R4", "R5", "R6"],
            "category": ["street_light", "road_damage", "cctv", "road_damage", "street_light",
                         "sewage"],
            "status": ["closed", "closed", "rejected", "handling", "collected", "handling"],
            "admin_code": [a, a, a, b, a, b],
            "lead_department_id": ["P1", "D1", None, "D1", None, "D1"],
            "assignee_id": ["W1", "W2", "W1", "W2", "W1", "W2"],
            "reported_at": [_t(x) for x in ("05-11 08:00", "05-11 10:00", "05-12 08:00",
                                            "05-18 08:00", "05-11 09:00", "05-19 08:00")],
            "opened_at": [_t(x) for x in ("05-11 08:00", "05-11 16:00", None, "05-18 08:00",
                                          None, "05-19 08:00")],
            "due_at": [_t(x) for x in (None, None, None, "05-25 17:30", "05-11 12:00",
                                       "05-26 17:30")],
            "resolved_at": [_t(x) for x in ("05-11 11:00", "05-14 10:00", None, None, None, None)],
            "paused_at": [_t(x) for x in (None, None, None, None, None, "05-20 10:00")],
            "duplicate_of": [None, None, None, None, "R1", None],
            "reworks": [0, 1, 0, 0, 0, 0],
            "returns": [0, 0, 0, 1, 0, 0],
            "escalation_level": [0, 0, 0, 1, 0, 0],
        }
    )  # fmt: skip
    workers = pd.DataFrame(
        {"worker_id": ["W1", "W2"], "name": ["张三", "李四"], "admin_code": [a, b]}
    )
    departments = pd.DataFrame(
        {
            "department_id": ["D1", "P1"],
            "name": ["荷塘区城市管理局", "西塘物业服务有限公司"],
            "admin_code": ["430202", a],
            "handler_type": ["bureau", "property_company"],
            "categories": ["road_damage,sewage", "street_light"],
        }
    )
    admin_areas = pd.DataFrame({"admin_code": [a, b], "name": ["西塘社区", "竹山社区"]})
    compliance = pd.DataFrame(
        {"worker_id": ["W1", "W1", "W2", "W2"], "compliant": [True, True, True, False]}
    )
    return dict(
        compliance=compliance,
        reports=reports,
        events=events,
        workers=workers,
        departments=departments,
        admin_areas=admin_areas,
        now=NOW,
    )


def test_workers_are_scored_on_collection_and_verification_not_on_departments(season):
    """Issue 21: `assess` scored grid workers on how fast departments fixed things."""
    a = assess(**season, min_cases=3)
    w = a.workers.set_index("worker_id")
    assert not {"handle_on_time_rate", "rework_rate", "avg_handling_wh"} & set(w.columns)
    assert w.loc["W1", ["collected", "collected_valid_rate", "verified"]].tolist() == [2, 1.0, 1]
    # W2 collected a rejected case (R3) and a duplicate (R5): half were valid
    assert w.loc["W2", ["collected", "collected_valid_rate", "verified"]].tolist() == [4, 0.5, 2]
    # W2 sent R2 back for rework late, verified it on time
    assert w.loc["W2", "verify_on_time_rate"] == 0.5 and w.loc["W1", "verify_on_time_rate"] == 1
    assert w.loc["W2", "patrol_compliance"] == 0.5
    assert w.loc["W1", "score"] == 100.0 and w.loc["W2", "score"] == 50.0
    assert w.loc["W1", "name"] == "张三" and list(a.workers.columns[:3]) == [
        "worker_id",
        "name",
        "admin_code",
    ]
    assert "S1" not in w.index and "system" not in w.index  # the centre is no grid worker


def test_departments_are_scored_on_handling(season):
    a = assess(**season, min_cases=1)
    d = a.departments.set_index("department_id")
    assert (
        d.loc["D1", "name"] == "荷塘区城市管理局"
        and d.loc["P1", "handler_type"] == "property_company"
    )
    # D1: accepts of R2, R4, R6 on time, R2's first report back late, its second on
    # time, R4 still handling past its deadline: 4 of 6; R6 is paused, so not late
    assert d.loc["D1", "handle_on_time_rate"] == pytest.approx(4 / 6)
    assert d.loc["P1", "handle_on_time_rate"] == 1.0
    assert d.loc["D1", ["cases", "reported_back", "overdue", "escalated", "returns"]].tolist() == [
        3,
        2,
        1,
        1,
        1,
    ]
    assert d.loc["D1", "rework_rate"] == 0.5 and d.loc["P1", "rework_rate"] == 0.0
    assert d.loc["D1", "first_time_fix_rate"] == 0.0 and d.loc["P1", "first_time_fix_rate"] == 1
    # working hours: R1 Mon 11 May 09:00-11:00; R2 Tue 12 May 09:00 - Thu 14 May 10:00
    assert d.loc["P1", "avg_handling_wh"] == 2.0 and d.loc["D1", "avg_handling_wh"] == 15.0
    assert a.departments["department_id"].tolist() == ["P1", "D1"]
    assert a.departments["list"].tolist() == ["红榜", "黑榜"]


def test_areas_have_on_time_rates_per_stage(season):
    a = assess(**season, min_cases=1)
    ar = a.areas.set_index("admin_code")
    west = ar.loc["430202001001"]
    assert west["name"] == "西塘社区"
    assert (west["open_on_time_rate"], west["dispatch_on_time_rate"]) == (0.5, 1.0)
    assert west["handle_on_time_rate"] == pytest.approx(4 / 5)
    assert west["verify_on_time_rate"] == pytest.approx(2 / 3)
    east = ar.loc["430202002001"]
    assert east["handle_on_time_rate"] == pytest.approx(2 / 3)
    assert (east["overdue"], east["escalated"], east["cases"]) == (1, 1, 2)
    assert pd.isna(east["verify_on_time_rate"])


def test_too_few_cases_are_shown_but_not_ranked(season):
    a = assess(**season, min_cases=5)
    w = a.workers.set_index("worker_id")
    assert w.loc["W1", "cases"] == 3 and not w.loc["W1", "ranked"]
    assert pd.isna(w.loc["W1", "rank"]) and w.loc["W1", "list"] == ""
    assert w.loc["W2", "ranked"] and w.loc["W2", "rank"] == 1
    assert a.workers["worker_id"].tolist() == ["W2", "W1"]  # the ranked first
    assert a.departments["ranked"].sum() == 0 and set(a.departments["list"]) == {""}


def test_xlsx_layout(season, tmp_path):
    """Issue 21: the department sheet labelled its name column 姓名."""
    a = assess(**season, min_cases=1)
    wb = openpyxl.load_workbook(a.to_xlsx(tmp_path / "考核.xlsx"))
    assert wb.sheetnames == ["网格员", "部门", "行政区域"]
    dept = wb["部门"]
    header = [c.value for c in dept[1]]
    assert header[:4] == ["部门编号", "部门名称", "行政区划代码", "处置主体类型"]
    assert "姓名" not in header and "姓名" in [c.value for c in wb["网格员"][1]]
    assert [c.value for c in wb["行政区域"][1]][:2] == ["行政区划代码", "区域名称"]
    assert dept["B2"].value == "西塘物业服务有限公司"
    col = {h: i + 1 for i, h in enumerate(header)}
    rate = dept.cell(row=2, column=col[HEADERS_ZH["handle_on_time_rate"]])
    assert rate.number_format == "0.0%" and rate.value == 1.0
    hours = dept.cell(row=2, column=col[HEADERS_ZH["avg_handling_wh"]])
    assert hours.number_format == "0.0" and hours.value == 2.0
    assert dept.cell(row=2, column=col["排名"]).number_format == "0"
    assert (
        dept.freeze_panes == "C2"
        and dept.auto_filter.ref == f"A1:{dept.cell(1, len(header)).column_letter}3"
    )
    assert dept.cell(row=2, column=col["参与排名"]).value == "是"
    assert wb["网格员"].column_dimensions["B"].width >= 6
    buf = a.to_xlsx(io.BytesIO())  # the API's download
    assert openpyxl.load_workbook(buf).sheetnames[1] == "部门"


def test_other_issues_add_sheets(season, tmp_path):
    a = assess(**season, min_cases=1)
    a.add_sheet(
        "callbacks",
        pd.DataFrame({"unit_id": ["U1"], "satisfied_rate": [0.875]}),
        title="回访满意度",
        headers={"unit_id": "网格编号", "satisfied_rate": "满意率"},
    )
    wb = openpyxl.load_workbook(a.to_xlsx(tmp_path / "a.xlsx"))
    ws = wb["回访满意度"]
    assert [c.value for c in ws[1]] == ["网格编号", "满意率"] and ws["B2"].number_format == "0.0%"
    assert [p.name for p in a.to_csv(tmp_path / "csv")][-1] == "callbacks.csv"
    with pytest.raises(ValueError, match="built-in"):
        a.add_sheet("workers", pd.DataFrame(), title="x")

    seen = []

    def chiefs(layers, start, end):
        seen.append((str(start), str(end)))
        return pd.DataFrame({"chief_id": ["C1"], "patrols": [4]})

    register_sheet("chiefs", "河长", chiefs, headers={"chief_id": "河长编号"})
    try:
        out = assess_period({"reports": season["reports"]}, "2026-05")
    finally:
        assess_module._BUILDERS.pop("chiefs")
    assert out.titles["chiefs"] == "河长" and out.extra["chiefs"]["patrols"].tolist() == [4]
    # the month in Beijing time
    assert seen == [("2026-04-30 16:00:00+00:00", "2026-05-31 16:00:00+00:00")]


def test_assess_period_reads_the_history(season):
    layers = {
        "reports": season["reports"],
        "report_events": season["events"],
        "workers": season["workers"],
        "departments": season["departments"],
        "admin_areas": season["admin_areas"],
    }
    a = assess_period(layers, ("2026-05-01", "2026-06-01"), min_cases=1)
    d = a.departments.set_index("department_id")
    assert d.loc["D1", "handle_on_time_rate"] == pytest.approx(4 / 6)
    assert a.workers.set_index("worker_id").loc["W2", "collected"] == 4
    # a period that holds only R1's and R2's collection: R4, R6 are left out
    b = assess_period(layers, ("2026-05-01", "2026-05-15"), min_cases=1)
    assert b.departments.set_index("department_id").loc["D1", "cases"] == 1


def test_an_earlier_workspace_still_reads():
    """Reports of the earlier model (reported/assigned/in_progress/resolved, returns
    were reworks, due_at the case's deadline) and no stage deadlines in the history."""
    t = pd.Timestamp("2026-05-11T01:00Z")
    reports = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3", "R4"],
            "status": ["closed", "in_progress", "resolved", "rejected"],
            "assignee_id": ["W1", "W1", "W2", "W2"],
            "lead_department_id": ["D1", "D2", "D2", "D2"],
            "admin_code": ["430202001", "430202002", "430202002", "430202002"],
            "reported_at": [t] * 4,
            "due_at": [t + pd.Timedelta(hours=72)] * 4,
            "resolved_at": [
                t + pd.Timedelta(hours=10),
                pd.NaT,
                t + pd.Timedelta(hours=100),
                pd.NaT,
            ],
            "returns": [1, 0, 0, 0],
        }
    )
    a = assess(reports=reports, now=NOW, min_cases=1)
    d = a.departments.set_index("department_id")
    assert d.loc["D1", "handle_on_time_rate"] == 1.0 and d.loc["D2", "handle_on_time_rate"] == 0
    assert d.loc["D1", "rework_rate"] == 1.0 and "returns" not in d  # returns were reworks
    assert d.loc["D2", "overdue"] == 1  # in progress past its deadline; R3 was resolved
    # Mon 11 May 09:00 + 10 h: 09:00-12:00, 14:00-17:30 = 6.5 working hours
    assert d.loc["D1", "avg_handling_wh"] == 6.5
    assert a.workers.empty  # no history: nothing to say of who collected or verified


def test_a_calendar_gap_warns_and_leaves_the_handling_time_out(season):
    reports = season["reports"].copy()
    reports["reported_at"] = reports["reported_at"] - pd.Timedelta(days=800)
    reports["resolved_at"] = reports["resolved_at"] - pd.Timedelta(days=800)
    with pytest.warns(UserWarning, match="no year 2024"):
        a = assess(reports=reports, now=NOW, min_cases=1)
    assert a.departments["avg_handling_wh"].isna().all()


def test_the_assess_command_reads_the_history(season, tmp_path, capsys):
    import geopandas as gpd

    from gridkit.cli import main
    from gridkit.io import write_layer

    ws = tmp_path / "ws.gpkg"
    reports = gpd.GeoDataFrame(
        season["reports"], geometry=gpd.points_from_xy([113.1] * 6, [27.8] * 6), crs=4326
    )
    for name, df in (
        ("reports", reports),
        ("report_events", season["events"]),
        ("workers", season["workers"]),
        ("departments", season["departments"]),
    ):
        write_layer(df, ws, name)
    out = tmp_path / "考核.xlsx"
    args = ["assess", ws, "--period", "2026-05", "-o", out, "--min-cases", "1"]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    sheet = pd.read_excel(out, sheet_name="部门").set_index("部门编号")
    assert sheet.loc["D1", "部门名称"] == "荷塘区城市管理局"
    assert sheet.loc["D1", "按期处置率"] == pytest.approx(4 / 6)
    assert sheet.loc["P1", "平均处置时长(工作小时)"] == 2.0


def test_events_that_leave_the_status_unchanged_end_no_stage(season):
    """督办, 延期 and 挂起 are rows of the history with the status unchanged: a late
    escalation of R2's report back is no second (late) report back, nor R4's a late
    handling stage beside the one counted as open past due."""
    extra = pd.DataFrame(
        [
            ("R2", _t("05-13 12:00"), "system", "reported_back", "reported_back", "escalate",
             _t("05-13 11:00")),
            ("R4", _t("05-26 09:00"), "system", "handling", "handling", "escalate",
             _t("05-25 17:30")),
            ("R4", _t("05-20 09:00"), "D1-staff", "handling", "handling", "extend",
             _t("05-21 17:30")),
        ],
        columns=season["events"].columns,
    )  # fmt: skip
    more = dict(season, events=pd.concat([season["events"], extra], ignore_index=True))
    a, b = assess(**season, min_cases=1), assess(**more, min_cases=1)
    pd.testing.assert_frame_equal(a.departments, b.departments)
    pd.testing.assert_frame_equal(a.areas, b.areas)
    pd.testing.assert_frame_equal(a.workers, b.workers)


def test_patrol_finds_without_an_intake_event_are_the_unit_workers(season):
    events = season["events"][season["events"]["action"] != "collect"]
    reports = season["reports"].assign(
        source=["patrol", "hotline", "patrol", "patrol", "patrol", "x"]
    )
    a = assess(**dict(season, events=events, reports=reports), min_cases=1)
    w = a.workers.set_index("worker_id")
    # R1 by W1; R3 (rejected) and R5 (a duplicate) by W1, the unit's worker; R4 by W2
    assert w.loc["W1", ["collected", "collected_valid_rate"]].tolist() == [3, 1 / 3]
    assert w.loc["W2", ["collected", "collected_valid_rate"]].tolist() == [1, 1.0]


def test_a_simulated_month_of_the_case_workflow():
    from gridkit.ops import simulate
    from gridkit.synth.ops import grid_units, grid_workers

    units = grid_units(4, 3)
    workers, assignments = grid_workers(units)
    s = simulate(units, workers, assignments, start="2026-03-01", end="2026-04-01", seed=3)
    layers = {
        "units": units,
        "workers": workers,
        "assignments": assignments,
        "patrols": s.patrols,
        "reports": s.reports,
        "report_events": s.report_events,
        "departments": s.departments,
    }
    a = assess_period(layers, "2026-03", min_cases=3)
    d, ar = a.departments, a.areas.iloc[0]
    assert len(d) and d["handle_on_time_rate"].between(0, 1).all()
    assert (d["avg_handling_wh"] > 0).all() and d["reported_back"].sum() > 0
    assert 0 <= ar["dispatch_on_time_rate"] <= 1 and 0 <= ar["verify_on_time_rate"] <= 1
    assert a.workers["collected"].sum() == (s.reports["source"] == "patrol").sum()
    assert a.workers["ranked"].any()


def test_masked_tables_write_the_same_workbook(season):
    """The API masks names for readers without the right, then writes the same layout."""
    a = assess(**season, min_cases=1).add_sheet(
        "callbacks", pd.DataFrame({"unit_id": ["U1"]}), title="回访"
    )
    masked = {k: t.assign(name="***") if "name" in t else t for k, t in a.tables().items()}
    b = Assessment.from_tables(masked, titles=a.titles)
    wb = openpyxl.load_workbook(b.to_xlsx(io.BytesIO()))
    assert wb.sheetnames == ["网格员", "部门", "行政区域", "回访"]
    assert wb["部门"]["B1"].value == "部门名称" and wb["部门"]["B2"].value == "***"
    assert wb["部门"].freeze_panes == "C2"
