"""Handlers at every level (issue 21, item 2): routing to the most local handler of the
preferred type, checked against a brute-force search over every department."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit import codes
from gridkit.errors import InvalidLayerError
from gridkit.layers import check_layer
from gridkit.ops.routing import (
    HANDLER_TYPES,
    RoutingError,
    RoutingRules,
    handler_rules,
    load_handler_rules,
    route,
    synthetic_departments,
)
from gridkit.synth import sample_layers

RULES = RoutingRules.from_dict(
    {
        "default": ["township_office", "bureau"],
        "categories": {
            "street_light": list(HANDLER_TYPES),
            "sewage": ["property_company", "township_office", "bureau"],
            "sand_mining": ["bureau"],
        },
    }
)
CATS = ["street_light", "sewage", "sand_mining", "cctv"]  # cctv: the default preference
# Zhuzhou codes at every level: city, two districts, townships, villages
CODES = [
    "430200",
    "430202",
    "430203",
    "430202001",
    "430202002",
    "430203001",
    "430202001001",
    "430202001002",
    "430202002001",
    "430203001001",
]
CASE_CODES = [*CODES, "430202001003", "430204001001", "430000"]


def _significant(code: str) -> str:
    """Brute force, independent of gridkit.codes: strip the zero padding of a level."""
    for n in (2, 4, 6, 9, 12):
        if len(code) >= n and set(code[n:]) <= {"0"}:
            return code[:n]
    return code


def brute_route(area: str, category: str, departments: pd.DataFrame) -> str | None:
    pref = RULES.preference(category)
    sig_area = _significant(area)
    best = None
    for dept, code, htype, cats in departments[
        ["department_id", "admin_code", "handler_type", "categories"]
    ].itertuples(index=False):
        if category not in cats.split(";") or htype not in pref:
            continue
        sig = _significant(code)
        if not sig_area.startswith(sig):
            continue
        key = (pref.index(htype), -len(sig), dept)
        best = min(best, key) if best else key
    return best[2] if best else None


_departments = st.lists(
    st.tuples(
        st.sampled_from(CODES),
        st.sampled_from(HANDLER_TYPES),
        st.sets(st.sampled_from(CATS), min_size=1, max_size=3),
    ),
    min_size=0,
    max_size=12,
).map(
    lambda rows: pd.DataFrame(
        {
            "department_id": [f"D{k:02d}" for k in range(len(rows))],
            "name": [f"部门{k}" for k in range(len(rows))],
            "admin_code": [r[0] for r in rows],
            "handler_type": [r[1] for r in rows],
            "categories": [";".join(sorted(r[2])) for r in rows],
        }
    )
)


@settings(max_examples=80, deadline=None)
@given(
    _departments,
    st.lists(st.tuples(st.sampled_from(CASE_CODES), st.sampled_from(CATS)), min_size=1, max_size=8),
)
def test_route_matches_a_brute_force_search(departments, cases):
    frame = pd.DataFrame(
        cases, columns=["admin_code", "category"], index=range(10, 10 + len(cases))
    )
    got = route(frame, departments, RULES)
    assert list(got.index) == list(frame.index)
    want = [brute_route(a, c, departments) for a, c in cases]
    assert got["department_id"].tolist() == want
    for (area, cat), dept, zh, en in zip(
        cases, want, got["reason_zh"], got["reason_en"], strict=True
    ):
        assert area in zh and area in en and cat in en
        if dept is None:
            assert zh.startswith("无处置部门") and en.startswith("no handler")
        else:
            assert dept in zh and dept in en and "nearest" in en


def test_small_things_stay_in_the_community_on_the_sample():
    """Issue 21: every handler was a city or county bureau. On the sample, a street light
    in a community with a property company goes to it, one without to the community
    committee, a road to the township office, sand mining to the district's water bureau."""
    layers = sample_layers(seed=1, n_buildings=50, n_communities=6, tributary_km=10)
    d = check_layer(layers["departments"], "departments")
    assert set(d["handler_type"]) == set(HANDLER_TYPES)
    levels = d["admin_code"].str.len()
    assert set(levels) == {6, 9, 12}
    prop = d.loc[d["handler_type"] == "property_company", "admin_code"].iloc[0]
    com = d.loc[d["handler_type"] == "community_committee", "admin_code"]
    bare = com[~com.isin(d.loc[d["handler_type"] == "property_company", "admin_code"])].iloc[0]
    cases = pd.DataFrame(
        {
            "admin_code": [prop, bare, bare, bare],
            "category": ["street_light", "street_light", "road_damage", "sand_mining"],
        }
    )
    r = route(cases, d)
    types = d.set_index("department_id").loc[r["department_id"], "handler_type"].tolist()
    assert types == ["property_company", "community_committee", "township_office", "bureau"]
    assert r["department_id"].iloc[3] == f"D{codes.ancestor(bare, 'county')}-01"  # 区水利局
    assert r["reason_zh"].iloc[0].startswith("最近的物业")
    assert r["reason_en"].iloc[0].startswith("nearest property company serving street_light")
    assert r["handler_reason"].iloc[1].count(" / ") == 1


def test_synthetic_departments_for_a_simulation_route_every_category():
    codes = ["430202001001", "430202001002", "430202002001", "430202002002"]
    d = check_layer(synthetic_departments(codes), "departments")
    cats = list(handler_rules().routing.categories)
    cases = pd.DataFrame(
        {"admin_code": np.repeat(codes, len(cats)), "category": np.tile(cats, len(codes))}
    )
    r = route(cases, d)
    assert r["department_id"].notna().all()
    assert r.loc[cases["category"] == "street_light", "department_id"].str[0].tolist() == [
        "P",
        "C",
        "P",
        "C",
    ]


def test_route_is_per_distinct_area_and_category():
    d = synthetic_departments(["430202001001", "430202001002"])
    rng = np.random.default_rng(0)
    n = 200_000
    cases = pd.DataFrame(
        {
            "admin_code": rng.choice(["430202001001", "430202001002", None], n),
            "category": rng.choice(["street_light", "sand_mining", "cctv"], n),
        }
    )
    t = time.perf_counter()
    r = route(cases, d)
    assert time.perf_counter() - t < 3.0
    assert r["department_id"].isna().sum() == cases["admin_code"].isna().sum()
    assert (r.loc[cases["admin_code"].isna(), "reason_en"].str.contains("no admin code")).all()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"handler_type": ["police", "bureau"]}, r"handler_type 'police' .*\(departments D1\)"),
        ({"admin_code": ["abc", "430202"]}, "admin_code is no admin code for departments D1"),
    ],
)
def test_bad_departments_name_the_rows(change, match):
    d = pd.DataFrame(
        {
            "department_id": ["D1", "D2"],
            "name": ["a", "b"],
            "admin_code": ["430202", "430202"],
            "handler_type": ["bureau", None],
            "categories": ["cctv", "cctv"],
        }
    )
    d = d.assign(**change)
    with pytest.raises(RoutingError, match=match):
        route(pd.DataFrame({"admin_code": ["430202"], "category": ["cctv"]}), d)


def test_handler_type_is_optional_and_checked_by_the_layer_contract():
    d = pd.DataFrame(
        {
            "department_id": ["D1"],
            "name": ["区城管局"],
            "admin_code": ["430202"],
            "categories": ["cctv"],
        }
    )
    check_layer(d, "departments")
    assert route(pd.DataFrame({"admin_code": ["430202001"], "category": ["cctv"]}), d)[
        "department_id"
    ].tolist() == ["D1"]
    with pytest.raises(InvalidLayerError, match="handler_type"):
        check_layer(d.assign(handler_type="police"), "departments")


def test_a_bad_rules_file_names_itself(tmp_path):
    p = tmp_path / "handlers.toml"
    p.write_text(
        '[routing.categories]\nstreet_light = ["property", "bureau"]\n'
        '[stage_limits.default]\nopen="4h"\ndispatch="4h"\nhandle="5d"\nverify="1d"\n',
        encoding="utf-8",
    )
    with pytest.raises(RoutingError, match=r"handlers.toml: \[routing.categories\] street_light"):
        load_handler_rules(p)
