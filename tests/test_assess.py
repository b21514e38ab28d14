"""Assessment (考核): measures, ranking, red/black lists and XLSX/CSV export."""

from __future__ import annotations

import pandas as pd
import pytest

from gridkit.ops.assess import HEADERS_ZH, assess

NOW = pd.Timestamp("2026-06-01T00:00Z")


@pytest.fixture
def data():
    compliance = pd.DataFrame(
        {
            "worker_id": ["W1", "W1", "W2", "W3"],
            "unit_id": ["U1", "U2", "U3", "U4"],
            "compliant": [True, True, False, True],
            "days_overdue": [0, 0, 12, 0],
        }
    )
    t = pd.Timestamp("2026-05-01T00:00Z")
    reports = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3", "R4", "R5"],
            "status": ["closed", "closed", "in_progress", "resolved", "rejected"],
            "assignee_id": ["W1", "W1", "W2", "W3", "W3"],
            "lead_department_id": ["D1", "D1", "D2", "D2", "D2"],
            "admin_code": ["430202001", "430202001", "430202002", "430202002", "430202002"],
            "reported_at": [t] * 5,
            "due_at": [t + pd.Timedelta(hours=72)] * 5,
            "resolved_at": [
                t + pd.Timedelta(hours=10),
                t + pd.Timedelta(hours=30),
                pd.NaT,
                t + pd.Timedelta(hours=100),
                pd.NaT,
            ],
            "returns": [0, 1, 0, 0, 0],
        }
    )
    workers = pd.DataFrame(
        {
            "worker_id": ["W1", "W2", "W3"],
            "name": ["张三", "李四", "王五"],
            "admin_code": ["430202001", "430202002", "430202002"],
        }
    )
    departments = pd.DataFrame({"department_id": ["D1", "D2"], "name": ["城管局", "水利局"]})
    return compliance, reports, workers, departments


def test_measures_per_worker(data):
    compliance, reports, workers, departments = data
    a = assess(
        compliance=compliance, reports=reports, workers=workers, departments=departments, now=NOW
    )
    w = a.workers.set_index("worker_id")
    assert w.loc["W1", "patrol_compliance"] == 1.0
    assert w.loc["W1", "on_time_share"] == 1.0
    assert w.loc["W1", "median_resolution_h"] == 20.0
    assert w.loc["W1", "returns"] == 1
    assert w.loc["W2", "patrol_compliance"] == 0.0 and w.loc["W2", "max_days_overdue"] == 12
    assert w.loc["W2", "on_time_share"] == 0.0  # open past due counts as late
    assert w.loc["W3", "reports"] == 1  # rejected ones are not assessed
    assert w.loc["W3", "on_time_share"] == 0.0  # resolved after the deadline
    assert w.loc["W1", "name"] == "张三"
    assert list(a.workers["worker_id"]) == ["W1", "W3", "W2"]
    assert a.workers["rank"].tolist() == [1, 2, 3]
    assert a.workers["list"].tolist() == ["红榜", "", "黑榜"]


def test_departments_and_areas(data):
    compliance, reports, workers, departments = data
    a = assess(
        compliance=compliance,
        reports=reports,
        workers=workers,
        departments=departments,
        now=NOW,
        area_digits=9,
    )
    d = a.departments.set_index("department_id")
    assert d.loc["D1", "on_time_share"] == 1.0 and d.loc["D2", "on_time_share"] == 0.0
    assert d.loc["D1", "name"] == "城管局"
    assert a.departments["list"].tolist() == ["红榜", "黑榜"]
    ar = a.areas.set_index("admin_code")
    assert ar.loc["430202001", "patrol_compliance"] == 1.0
    assert ar.loc["430202002", "patrol_compliance"] == 0.5
    assert a.areas.iloc[-1]["list"] == "黑榜"


def test_export_xlsx_and_csv_with_chinese_headers(data, tmp_path):
    import openpyxl

    compliance, reports, workers, departments = data
    a = assess(
        compliance=compliance, reports=reports, workers=workers, departments=departments, now=NOW
    )
    path = a.to_xlsx(tmp_path / "考核.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["网格员", "部门", "行政区域"]
    header = [c.value for c in wb["网格员"][1]]
    assert header[:2] == ["网格员编号", "姓名"] and "红黑榜" in header and "综合得分" in header
    files = a.to_csv(tmp_path / "csv")
    text = files[0].read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith(HEADERS_ZH["worker_id"])
    assert "黑榜" in text


def test_compliance_only_and_empty():
    a = assess(compliance=pd.DataFrame({"worker_id": ["A"], "compliant": [True]}))
    assert a.workers["list"].tolist() == [""]  # a single worker is on no list
    assert a.departments.empty
