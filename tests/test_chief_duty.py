"""River chiefs' records (issue 20 items 3, 4, 6): the 看/查/交 checklist handed over as
reports, the paper ledger round trip, assessment and summons, the CLI commands and the
synthetic season of chiefs' patrols."""

from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest

from gridkit.cli.app import main
from gridkit.errors import InputFileError, InvalidLayerError
from gridkit.io import write_layer
from gridkit.ops.chiefs import chief_compliance
from gridkit.ops.ledger import checklist_results, ledger_frame, patrol_problems, read_ledger
from gridkit.ops.summons import assess_chiefs, chief_assessment, summons_list
from gridkit.store import open_store
from gridkit.synth.chief_patrols import chief_patrols, night_shift
from gridkit.synth.people import chief_demo

# --------------------------------------------------------------------------- item 3


def test_checklist_items_and_labels_from_rules():
    _, _, patrols = chief_demo()
    patrols.loc[0, "checklist"] = json.dumps(
        {"water_colour": "ok", "sand_mining": {"result": "problem", "note": "夜间采砂"}},
        ensure_ascii=False,
    )
    res = checklist_results(patrols)
    assert res[["item", "step", "label_en", "result"]].values.tolist() == [
        ["water_colour", "look", "water colour", "ok"],
        ["sand_mining", "check", "sand mining", "problem"],
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"outfall": "ok"}', "'outfall'"),
        ('{"outfalls": "bad"}', "'bad'"),
        ("{not json", "not JSON"),
    ],
)
def test_bad_checklists_name_the_patrol(text, match):
    _, _, patrols = chief_demo()
    patrols.loc[0, "checklist"] = text
    with pytest.raises(InvalidLayerError, match=f"P-CAR.*{match}|{match}.*P-CAR"):
        checklist_results(patrols)


def test_problem_becomes_a_report_linked_to_the_patrol():
    units, _, patrols = chief_demo()
    patrols.loc[0, "checklist"] = json.dumps(
        {
            "outfalls": {"result": "problem", "photo": "a.jpg", "lon": 113.12, "lat": 27.8003},
            "sand_mining": {"result": "problem"},
            "smell": "ok",
        }
    )
    reports, events = patrol_problems(patrols, units=units, at="2026-05-06T03:00Z")
    assert reports["category"].tolist() == ["illegal_discharge", "sand_mining"]
    assert set(reports["patrol_id"]) == {"P-CAR"} and set(reports["source"]) == {"patrol"}
    assert reports["unit_id"].tolist() == ["430202001001R1-1", "430202001002R1-1"]
    assert reports["reporter_id"].tolist() == ["W-C", "W-C"]
    assert reports["evidence"].iloc[0] == "a.jpg"
    assert len(events) == 2 and events["to_status"].notna().all()
    # handed over once: a second call adds nothing
    again, more = patrol_problems(patrols, units=units, existing=reports, at="2026-05-07")
    assert len(again) == 2 and len(more) == 0


# --------------------------------------------------------------------------- item 4


def test_ledger_round_trip_counts_as_unverified(tmp_path):
    units, chiefs, patrols = chief_demo()
    paper = patrols.iloc[1:].copy()
    paper.loc[:, "checklist"] = json.dumps({"floating": {"result": "problem"}})
    path = tmp_path / "台账.xlsx"
    ledger_frame(paper, chiefs, tz="Asia/Shanghai").to_excel(path, index=False)
    back = read_ledger(path, chiefs)
    assert back[["worker_id", "chief_id", "source", "verified"]].values.tolist() == [
        ["W-V", "RC-V", "ledger", False]
    ]
    assert back["started_at"].iloc[0] == pd.Timestamp("2026-05-07T01:00Z")
    assert json.loads(back["checklist"].iloc[0]) == {"floating": {"result": "problem"}}
    both = pd.concat([patrols.iloc[:1], back], ignore_index=True)
    c = chief_compliance(both, chiefs, units, "2026-Q2").set_index("chief_id")
    assert (c.loc["RC-V", "done"], c.loc["RC-V", "unverified"]) == (0, 1)
    assert not c.loc["RC-V", "compliant"]


def test_bad_ledger_rows_are_named(tmp_path):
    _, chiefs, _ = chief_demo()
    path = tmp_path / "bad.xlsx"
    pd.DataFrame(
        {
            "日期": ["2026-05-07", "someday"],
            "河长": ["RC-V", "RC-X"],
            "河段": ["", ""],
            "时长(分钟)": [60, -5],
            "发现问题": ["", ""],
        }
    ).to_excel(path, index=False)
    with pytest.raises(InputFileError, match="row 3: 日期.*row 3: 河长.*row 3: 时长"):
        read_ledger(path, chiefs)
    pd.DataFrame({"日期": ["2026-05-07"]}).to_excel(path, index=False)
    with pytest.raises(InputFileError, match="no column 河长"):
        read_ledger(path, chiefs)


# --------------------------------------------------------------------------- item 6


def test_assessment_by_level_above_and_summons():
    comp = pd.DataFrame(
        {
            "chief_id": [f"C{i}" for i in range(12)],
            "worker_id": [f"W{i}" for i in range(12)],
            "name": "x",
            "level": "village",
            "river_id": "R1",
            "admin_code": [f"430202001{i + 1:03d}" for i in range(12)],
            "rule": "1/week",
            "windows": 13,
            "windows_met": [13] * 10 + [12, 13],
            "done": 13,
            "unverified": 0,
            "missing": [0] * 10 + [1, 0],
            "compliant": [True] * 10 + [False, True],
        }
    )
    a = assess_chiefs(comp, river_chiefs=comp)
    assert set(a["assessed_by"]) == {"430202001"}
    s = summons_list(a, bottom_share=0.1)
    # W10 broke the rule and ranks last of 12: named once, with both reasons
    assert s["worker_id"].tolist() == ["W10"]
    assert "1/week" in s["reason"].iloc[0] and "12/12" in s["reason"].iloc[0]


# --------------------------------------------------------------------------- CLI


def _run(*args) -> int:
    return main([str(a) for a in args])


def test_cli_compliance_import_summons(tmp_path, capsys):
    ws = tmp_path / "ws.gpkg"
    units, chiefs, patrols = chief_demo("car")
    for name, df in (("units", units), ("river_chiefs", chiefs), ("patrols", patrols.iloc[:1])):
        write_layer(df, ws, name)
    ledger = tmp_path / "台账.xlsx"
    ledger_frame(patrols.iloc[1:], chiefs, tz="Asia/Shanghai").to_excel(ledger, index=False)
    assert _run("patrols", "import", ledger, "--workspace", ws) == 0
    assert _run("compliance", ws, "--period", "2026-Q2", "-o", tmp_path / "c.csv") == 0
    c = pd.read_csv(tmp_path / "c.csv", encoding="utf-8-sig").set_index("chief_id")
    assert c.loc["RC-V", "unverified"] == 1 and bool(c.loc["RC-CAR", "compliant"])
    assert (
        _run(
            "compliance",
            ws,
            "--period",
            "2026-Q2",
            "--level",
            "county",
            "-o",
            tmp_path / "county.xlsx",
        )
        == 0
    )
    assert pd.read_excel(tmp_path / "county.xlsx")["chief_id"].tolist() == ["RC-CAR"]
    capsys.readouterr()
    # nothing to judge (the county's rule is per quarter, the period a month): an empty
    # table and why, not a traceback (KeyError 'rule' before)
    out = tmp_path / "may.csv"
    assert _run("compliance", ws, "--period", "2026-05", "--level", "county", "-o", out) == 0
    assert pd.read_csv(out, encoding="utf-8-sig").empty
    assert "nothing to judge in 2026-05" in capsys.readouterr().out
    rec = ("--record", "W-V", "--held-on", "2026-07-02", "--by", "区河长办")
    assert _run("summons", ws, "--period", "2026-Q2", *rec) == 0
    assert _run("summons", ws, "--period", "2026-Q2", "-o", tmp_path / "s.csv") == 0
    s = pd.read_csv(tmp_path / "s.csv", encoding="utf-8-sig")
    assert s[["worker_id", "held_by"]].values.tolist() == [["W-V", "区河长办"]]
    assert len(open_store(ws).read("summons")) == 1
    assert _run("compliance", ws, "--period", "2026-Q5", "-o", tmp_path / "x.csv") == 1
    assert "not understood" in capsys.readouterr().err


# --------------------------------------------------------------------------- synthetic season


@pytest.fixture(scope="module")
def sample_season(tmp_path_factory):
    from gridkit import split_rivers
    from gridkit.demo import CORRIDOR_M, RIVER_MAX_M, RIVER_MIN_M
    from gridkit.synth import sample_layers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = sample_layers(n_buildings=500, n_communities=5, tributary_km=150)
        split = split_rivers(
            layers["rivers"],
            layers["admin_areas"],
            max_length_m=RIVER_MAX_M,
            min_length_m=RIVER_MIN_M,
            corridor_m=CORRIDOR_M,
            water_bodies=layers["water_bodies"],
        )
    sim = chief_patrols(
        split.reaches, layers["river_chiefs"], start="2026-01-01", end="2027-01-01", seed=3
    )
    return layers, split, sim


def test_simulated_chiefs_patrol_at_every_level(sample_season):
    layers, split, sim = sample_season
    season = chief_assessment(
        {
            "units": split.units,
            "river_chiefs": layers["river_chiefs"],
            "patrols": sim.patrols,
            "workers": layers["workers"],
        },
        "2026",
    )
    by = season.by_level().set_index("level")
    assert set(by.index) == {"province", "city", "county", "township", "village", "general"}
    # every level patrols and meets rules; paper records are counted apart
    c = season.compliance
    assert (c.groupby("level")["done"].sum() > 0).all()
    share = by["compliant"] / by["rules"]
    assert share.loc[["township", "county", "city"]].min() > 0.3 and share["village"] > 0.1
    assert by.loc["village", "unverified"] > 0
    # fakes are caught: a drive declared as a walk never counts
    hits = season.hits
    assert not hits["patrol_id"].isin(sim.fake_patrol_ids).any()
    assert len(season.summons) > 0


def test_night_shift_moves_patrols_and_fixes(sample_season):
    _, _, sim = sample_season
    p, pts = night_shift(sim.patrols, sim.patrol_points, share=0.2, seed=1)
    moved = p["started_at"] != sim.patrols["started_at"]
    hours = p.loc[moved, "started_at"].dt.tz_convert("Asia/Shanghai").dt.hour
    assert 0.1 < moved.mean() < 0.3 and hours.isin([20, 21]).all()
    first = pts.groupby("patrol_id")["t"].min()
    starts = p.set_index("patrol_id")["started_at"]
    both = first.index.intersection(starts.index)
    assert (first[both] == starts[both]).all()


# --------------------------------------------------------------------------- item 8


def test_chiefs_map_colours_marks_gaps_and_hides_phones():
    pytest.importorskip("folium")
    from gridkit.maps import map_html
    from gridkit.maps.chiefs import chiefs_map

    units, chiefs, patrols = chief_demo("car")
    c = chief_compliance(patrols, chiefs, units, "2026-Q2")
    c["name"] = c["chief_id"].map({"RC-CAR": "张三", "RC-V": "<script>alert(1)</script>"})
    workers = pd.DataFrame({"worker_id": ["W-C", "W-V"], "phone": ["13800000001", "1390002"]})
    page = map_html(chiefs_map(units, c, level="village", workers=workers, tiles=None))
    # folium writes JSON as ASCII: decode \uXXXX before looking for raw payloads
    page = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    assert "&lt;script&gt;alert(1)" in page
    assert "无河长" in page  # the second village's section has no chief at this level
    assert "<script>alert(1)" not in page and "1390002" not in page
    page = map_html(
        chiefs_map(units, c, level="county", workers=workers, show_phone=True, tiles=None)
    )
    assert "13800000001" in page and "#1a9641" in page  # the county chief met his rule


def test_signboard_lists_chiefs_not_their_phones():
    from gridkit.maps.chiefs import signboard_html

    chiefs = pd.DataFrame(
        {
            "level": ["village", "city", "general"],
            "name": ["李四", "张三", "王五"],
            "phone": ["13800000001"] * 3,
        }
    )
    page = signboard_html("湘江", "荷塘区段", chiefs, office_phone="0731-1234567")
    assert page.index("总河长") < page.index("市级河长") < page.index("村级河长")
    assert "0731-1234567" in page and "13800000001" not in page
    assert "@page" in page  # printable


def test_handed_over_problems_keep_the_reports_index_unique():
    units, _, patrols = chief_demo()
    patrols.loc[0, "checklist"] = json.dumps({"outfalls": {"result": "problem"}})
    first, _ = patrol_problems(patrols, units=units, at="2026-05-06T03:00Z")
    patrols.loc[0, "patrol_id"] = "P-CAR-2"
    both, _ = patrol_problems(patrols, units=units, existing=first, at="2026-05-07")
    assert len(both) == 2 and both.index.is_unique


def test_cli_ledger_workbook_reads_back_as_the_patrols(tmp_path, capsys):
    """`gridkit patrols ledger` writes the chiefs' patrols as a paper ledger workbook
    (Beijing wall time, as gridkit writes every workbook): imported again, the same
    chiefs at the same instants, as unverified paper records."""
    ws = tmp_path / "ws.gpkg"
    units, chiefs, patrols = chief_demo("car")
    for name, df in (("units", units), ("river_chiefs", chiefs), ("patrols", patrols)):
        write_layer(df, ws, name)
    out = tmp_path / "台账.xlsx"
    assert _run("patrols", "ledger", ws, "--period", "2026-Q2", "-o", out) == 0
    assert "wrote" in capsys.readouterr().out
    back = read_ledger(out, chiefs).sort_values("chief_id").reset_index(drop=True)
    want = patrols[patrols["chief_id"].notna()].sort_values("chief_id").reset_index(drop=True)
    assert back["chief_id"].tolist() == want["chief_id"].tolist()
    got_t = pd.to_datetime(back["started_at"], utc=True).tolist()
    assert got_t == pd.to_datetime(want["started_at"], utc=True).dt.floor("min").tolist()
    assert set(back["source"]) == {"ledger"} and not back["verified"].any()
