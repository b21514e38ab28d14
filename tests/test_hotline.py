"""The 12345 hotline (issue 22 item 3): ticket ids unique per source system, daily
exports in, results out, address-only tickets placed offline with a review queue; and
the commands ``gridkit reports import|export``."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.cli import main
from gridkit.io import read_table
from gridkit.ops.gazetteer import Gazetteer, match_addresses
from gridkit.ops.hotline import HotlineError, export_results, read_hotline_export, take_in_tickets
from gridkit.store import create_store, open_store


def layers():
    """Two districts, a township each, two communities of the same name in different
    townships (和平社区), buildings named in one community."""
    xs, ys = np.meshgrid(np.arange(8), np.arange(4))
    xs, ys = xs.ravel(), ys.ravel()
    x0, y0 = 113.10 + xs * 0.0025, 27.80 + ys * 0.0025
    west = xs < 4
    village = np.where(west, "430202001001", "430203001001")
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"{v}-C01-{i:03d}" for i, v in enumerate(village)],
            "kind": "community_grid",
            "parent_id": np.where(west, "430202001001-C01", "430203001001-C01"),
            "admin_code": village,
        },
        geometry=shapely.box(x0, y0, x0 + 0.0025, y0 + 0.0025),
        crs=4326,
    )
    w, e = shapely.box(113.10, 27.80, 113.11, 27.81), shapely.box(113.11, 27.80, 113.12, 27.81)
    admin = gpd.GeoDataFrame(
        {
            "admin_code": [
                "430202",
                "430202001",
                "430202001001",
                "430203",
                "430203001",
                "430203001001",
            ],
            "name": ["荷塘区", "桂花街道", "和平社区", "芦淞区", "建设街道", "和平社区"],
            "level": ["county", "township", "village", "county", "township", "village"],
        },
        geometry=[w, w, w, e, e, e],
        crs=4326,
    )
    communities = gpd.GeoDataFrame(
        {
            "community_id": ["430202001001-C01", "430203001001-C01"],
            "name": ["和平社区", "和平社区"],
            "admin_code": ["430202001001", "430203001001"],
        },
        geometry=[w, e],
        crs=4326,
    )
    bx = 113.111 + np.arange(3) * 0.003
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"430203001001-C01-B{i:05d}" for i in range(3)],
            "community_id": "430203001001-C01",
            "households": 40,
            "name": ["枫林苑1栋", "枫林苑2栋", "枫林苑3栋"],
        },
        geometry=shapely.box(bx, 27.805, bx + 0.0004, 27.8054),
        crs=4326,
    )
    return {
        "units": units,
        "admin_areas": admin,
        "communities": communities,
        "buildings": buildings,
    }


TICKETS = pd.DataFrame(
    {
        "工单编号": [
            "20260501-0001",
            "20260501-0002",
            "20260501-0003",
            "20260501-0004",
            "20260501-0005",
        ],
        "诉求类别": ["路灯损坏", "污水管道", "噪音扰民", "道路破损", "路灯损坏"],
        "诉求内容": ["路灯不亮", "井盖冒水", "夜间施工噪音", "路面塌陷", "楼下路灯坏了"],
        "诉求地址": [
            "荷塘区桂花街道和平社区文化路12号",
            "枫林苑2栋",
            "芦淞区建设街道",
            "和平社区",  # two 和平社区: which one?
            "芦淞区建设街道和平社区",
        ],
        "来电时间": [
            "2026-05-01 08:05",
            "2026-05-01 09:10",
            "2026-05-01 10:00",
            "2026-05-01 11:30",
            "2026-05-01 12:00",
        ],
        "联系电话": ["13800000001", "13800000002", "13800000003", "13800000004", "13800000005"],
    }
)


@pytest.fixture
def export(tmp_path) -> Path:
    path = tmp_path / "12345_20260501.xlsx"
    TICKETS.to_excel(path, index=False)
    return path


@pytest.fixture
def ws(tmp_path) -> Path:
    path = tmp_path / "ws.gpkg"
    create_store(path, layers())
    return path


def test_export_read_with_chinese_headers_and_beijing_time(export):
    t = read_hotline_export(export)
    assert t["ticket_id"].tolist()[0] == "20260501-0001"
    assert t["ticket_system"].unique().tolist() == ["12345"]
    assert str(t["reported_at"].iloc[0]) == "2026-05-01 00:05:00+00:00"  # 08:05 Beijing
    assert t.geometry.isna().all() and t["address"].iloc[1] == "枫林苑2栋"


def test_gbk_csv_and_a_ticket_without_id(tmp_path):
    csv = tmp_path / "export.csv"
    TICKETS.iloc[:2].to_csv(csv, index=False, encoding="gbk")
    assert read_hotline_export(csv, encoding="gbk")["category"].tolist() == ["路灯损坏", "污水管道"]
    bad = TICKETS.iloc[:3].copy()
    bad.loc[1, "工单编号"] = None
    bad.to_csv(csv, index=False, encoding="utf-8")
    with pytest.raises(HotlineError, match=r"rows 3 have no ticket id"):
        read_hotline_export(csv)
    TICKETS.drop(columns="工单编号").to_csv(csv, index=False)
    with pytest.raises(HotlineError, match="no ticket id column"):
        read_hotline_export(csv)


def test_tickets_placed_reviewed_and_never_taken_twice(export):
    lay = layers()
    t = read_hotline_export(export)
    got = take_in_tickets(
        t,
        units=lay["units"],
        admin_areas=lay["admin_areas"],
        communities=lay["communities"],
        buildings=lay["buildings"],
        at="2026-05-01T06:00Z",
    )
    new = got.reports.set_index("ticket_id")
    assert sorted(new.index) == ["20260501-0001", "20260501-0002", "20260501-0005"]
    assert new.loc["20260501-0001", "admin_code"] == "430202001001"
    # a named building gives a point, hence the unit
    assert new.loc["20260501-0002", "unit_id"].startswith("430203001001")
    assert new.loc["20260501-0005", "admin_code"] == "430203001001"
    assert (new["source"] == "hotline").all() and (
        new["reporter_contact"].str.startswith("138")
    ).all()
    review = got.review.set_index("ticket_id")
    assert review.loc["20260501-0003", "reason"] == "category"
    assert review.loc["20260501-0003", "category"] == "噪音扰民"
    assert review.loc["20260501-0004", "reason"] == "address"
    assert review.loc["20260501-0004", "confidence"] < 0.7
    # the next day's export repeats ticket 1: the same case, not a second
    again = take_in_tickets(
        t.iloc[[0]], reports=got.reports, units=lay["units"], admin_areas=lay["admin_areas"]
    )
    assert again.created == [] and len(again.reports) == len(got.reports)
    assert again.resent["report_id"].tolist() == [new.loc["20260501-0001", "report_id"]]
    # the same number from another system is another case
    other = take_in_tickets(
        t.iloc[[0]].assign(ticket_system="市长信箱"),
        reports=got.reports,
        units=lay["units"],
        admin_areas=lay["admin_areas"],
    )
    assert len(other.created) == 1


def test_gazetteer_confidence_and_review():
    lay = layers()
    gaz = Gazetteer.from_layers(
        admin_areas=lay["admin_areas"], communities=lay["communities"], buildings=lay["buildings"]
    )
    m = match_addresses(
        pd.Series(
            ["荷塘区桂花街道和平社区", "和平社区", "枫林苑3栋", "桂花文化路", None, ""],
            index=list("abcdef"),
        ),
        gaz,
    )
    assert list(m.index) == list("abcdef")
    assert m.loc["a", "admin_code"] == "430202001001" and m.loc["a", "confidence"] == 1.0
    assert m.loc["b", "candidates"] == 2 and m.loc["b", "review"]
    assert m.loc["c", "kind"] == "building" and m.loc["c", "ref_id"].endswith("B00002")
    assert not m.loc["c", "review"] and np.isfinite(m.loc["c", "lon"])
    assert m.loc["d", "kind"] == "township" and m.loc["d", "confidence"] == 0.6  # 桂花 short
    assert m.loc[["e", "f"], "confidence"].tolist() == [0.0, 0.0]
    assert m.loc[["e", "f"], "review"].all()


def test_export_results_closed_with_notes():
    reports = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3"],
            "ticket_id": ["T1", "T2", None],
            "ticket_system": ["12345", "12345", None],
            "category": ["sewage"] * 3,
            "status": ["closed", "handling", "closed"],
            "lead_department_id": ["D1", "D1", "D1"],
        }
    )
    events = pd.DataFrame(
        {
            "report_id": ["R1", "R1", "R1", "R2"],
            "at": pd.to_datetime(
                ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-02"], utc=True
            ),
            "to_status": ["handling", "reported_back", "closed", "handling"],
            "note": ["派人查看", "已疏通, 附照片", "核查属实", "处理中"],
        }
    )
    departments = pd.DataFrame({"department_id": ["D1"], "name": ["荷塘区城管局"]})
    callbacks = pd.DataFrame({"report_id": ["R1"], "at": ["2026-05-04"], "result": ["satisfied"]})
    out = export_results(reports, events, departments=departments, callbacks=callbacks)
    assert out["ticket_id"].tolist() == ["T1"]
    row = out.iloc[0]
    assert row["handling"] == "派人查看; 已疏通, 附照片; 核查属实"
    assert row["department"] == "荷塘区城管局" and row["satisfaction"] == "satisfied"
    assert str(row["closed_at"]) == "2026-05-03 00:00:00+00:00"
    assert export_results(reports, events, since="2026-05-04").empty
    # a day with no case closed yet (the events hold none): an empty export, no error
    none = export_results(reports, events[events["to_status"] != "closed"])
    assert none["closed_at"].isna().all()
    assert export_results(reports.assign(status="handling"), events).empty


def test_cli_import_twice_then_export(capsys, ws, export, tmp_path):
    assert (
        main(["reports", "import", str(export), "-w", str(ws), "--review", str(tmp_path / "r.csv")])
        == 0
    )
    out = capsys.readouterr().out
    assert "3 new cases" in out and "2 left for review" in out
    store = open_store(ws)
    assert len(store.read("reports")) == 3 and len(store.read("ticket_review")) == 2
    assert len(read_table(tmp_path / "r.csv")) == 2
    assert main(["reports", "import", str(export), "-w", str(ws)]) == 0
    assert "0 new cases, 3 sent again" in capsys.readouterr().out
    assert len(open_store(ws).read("reports")) == 3
    assert len(open_store(ws).read("ticket_review")) == 2  # queued once
    store = open_store(ws)
    rid = store.read("reports")["report_id"].iloc[0]
    store.update(
        "reports",
        "report_id",
        rid,
        {"status": "closed"},
        append={
            "report_events": pd.DataFrame(
                {
                    "report_id": [rid],
                    "at": [pd.Timestamp("2026-05-03T00:00Z")],
                    "from_status": ["verified"],
                    "to_status": ["closed"],
                    "note": ["已修复"],
                }
            )
        },
    )
    assert main(["reports", "export", str(ws), "-o", str(tmp_path / "back.xlsx")]) == 0
    back = read_table(tmp_path / "back.xlsx")
    assert back["report_id"].tolist() == [rid] and "已修复" in back["handling"].iloc[0]


def test_cli_import_errors_are_messages(capsys, ws, tmp_path):
    csv = tmp_path / "bad.csv"
    TICKETS.drop(columns="工单编号").to_csv(csv, index=False)
    assert main(["reports", "import", str(csv), "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "no ticket id column" in err and "Traceback" not in err
    assert main(["reports", "import", str(csv), "-w", str(tmp_path / "none.gpkg")]) == 1
    assert "no such workspace" in capsys.readouterr().err


def test_gazetteer_a_name_read_two_ways_still_supports():
    """Two townships called 东湾镇 (the sample has such): the one holding the community
    supports it, the other does not count against it."""
    admin = pd.DataFrame(
        {
            "admin_code": ["430224008", "430225001", "430225001003"],
            "name": ["东湾镇", "东湾镇", "李桥社区"],
            "level": ["township", "township", "village"],
        }
    )
    m = match_addresses(["东湾镇李桥社区长江路53号"], Gazetteer.from_layers(admin_areas=admin))
    assert m.loc[0, "admin_code"] == "430225001003" and m.loc[0, "confidence"] == 0.9


def test_a_sample_month_of_tickets_goes_in(tmp_path):
    from gridkit.synth.residents import sample_hotline_export

    lay = layers()
    # names unique, as in the sample
    lay["communities"].loc[1, "name"] = lay["admin_areas"].loc[5, "name"] = "北坪社区"
    export = sample_hotline_export(
        lay["communities"],
        admin_areas=lay["admin_areas"],
        start="2026-03-01",
        end="2026-04-01",
        n=120,
        seed=5,
    )
    export.to_excel(tmp_path / "12345.xlsx", index=False)
    got = take_in_tickets(
        read_hotline_export(tmp_path / "12345.xlsx"),
        units=lay["units"],
        admin_areas=lay["admin_areas"],
        communities=lay["communities"],
    )
    assert set(got.review["reason"]) <= {"category"}  # 噪音扰民 only
    assert len(got.created) + len(got.review) == 120
    assert got.reports["admin_code"].isin(["430202001001", "430203001001"]).all()


def test_cli_import_dispatches_what_the_rules_open_at_once(capsys, tmp_path, export):
    """A ticket of an auto_open category (street_light) is dispatched at once, like
    any new case; the others wait in 'collected' for 立案."""
    from gridkit.ops.reports import report_rules

    lay = layers()
    lay["departments"] = pd.DataFrame(
        {
            "department_id": ["D1"],
            "name": ["荷塘区城管局"],
            "admin_code": ["430202"],
            "categories": ["street_light;sewage;road_damage"],
        }
    )
    ws = tmp_path / "ws2.gpkg"
    create_store(ws, lay)
    assert main(["reports", "import", str(export), "-w", str(ws)]) == 0
    rows = open_store(ws).read("reports").set_index("ticket_id")
    rules = report_rules()
    for ticket, row in rows.iterrows():
        routed = row["admin_code"].startswith("430202")  # D1 serves 荷塘区 only
        if not rules.auto_open(row["category"]):
            assert row["status"] == "collected", ticket
        else:  # opened by the system; dispatched where a department serves the place
            assert row["status"] == ("dispatched" if routed else "opened"), ticket
    assert (rows["status"] == "dispatched").any()
    events = open_store(ws).read("report_events")
    assert set(events.loc[events["action"] != "collect", "actor_id"]) <= {"system"}
