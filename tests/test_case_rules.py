"""Issue 19 rules in gridkit: who may hold a case (check_assignment), typed evidence
that was never received, the contact retention, water bodies' areas, phone masking.
Properties against brute force where the rule is a rule."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.ops.areas import admin_codes_of
from gridkit.ops.cases import transition
from gridkit.ops.privacy import mask_phones
from gridkit.ops.reports import (
    AssignmentError,
    TransitionError,
    check_assignment,
    expired_contacts,
    purge_contacts,
)

# ------------------------------------------------------------------ check_assignment

_LEN = {2: 2, 4: 4, 6: 6, 9: 9, 12: 12}


def _code(parts: tuple[int, int, int, int]) -> str:
    """A code of Zhuzhou at the depth given (0: city .. 3: village)."""
    district, town, village, depth = parts
    code = "4302"
    if depth >= 1:
        code += f"{district:02d}"
    else:
        return "430200"
    if depth >= 2:
        code += f"{town:03d}"
    if depth >= 3:
        code += f"{village:03d}"
    return code


codes_st = st.tuples(
    st.sampled_from([2, 3, 81]), st.integers(1, 2), st.integers(1, 2), st.integers(0, 3)
).map(_code)


def _holds(outer: str, inner: str) -> bool:
    # a city's 6-digit code is held by its 4 significant digits
    significant = outer[:4] if outer.endswith("00") and len(outer) == 6 else outer
    return inner.startswith(significant)


def _brute(case, worker, role, me, scope, assignee, exists) -> str | None:
    if role == "worker" and assignee != me:
        return "not_yours"
    if not exists:
        return "unknown"
    same_district = len(case) >= 6 and len(worker) >= 6 and case[:6] == worker[:6]
    city = "430200"
    if case != city and worker != city:
        related = same_district
    else:
        related = True  # the city holds every area
    if not related:
        return "outside"
    if role == "supervisor" and scope and not _holds(scope, worker):
        return "not_yours"
    return None


@settings(max_examples=150, deadline=None)
@given(
    case=codes_st,
    worker=codes_st,
    role=st.sampled_from(["worker", "supervisor", "admin"]),
    scope=st.one_of(st.just(""), codes_st),
    pick_self=st.booleans(),
    exists=st.booleans(),
)
def test_check_assignment_matches_brute_force(case, worker, role, scope, pick_self, exists):
    reports = pd.DataFrame({"report_id": ["R1"], "admin_code": [case]})
    workers = pd.DataFrame({"worker_id": ["W1", "W2"], "admin_code": ["430202001001", worker]})
    assignee = "W1" if pick_self else "W2"
    if not exists:
        workers = workers[workers["worker_id"] != assignee]
    w_code = "430202001001" if pick_self else worker
    want = _brute(case, w_code, role, "W1", scope, assignee, exists)
    try:
        got_code = check_assignment(
            reports, "R1", assignee, workers=workers, by_role=role, by_worker="W1", by_scope=scope
        )
        got = None
    except AssignmentError as exc:
        got, got_code = exc.reason, None
    assert got == want, (case, w_code, role, scope, assignee, exists)
    if want is None:
        assert got_code == w_code


def test_check_assignment_names_the_rule() -> None:
    reports = pd.DataFrame({"report_id": ["R1"], "admin_code": ["430202001001"]})
    workers = pd.DataFrame({"worker_id": ["W2"], "admin_code": ["430203001001"]})
    with pytest.raises(AssignmentError, match="W2 .*outside case R1") as err:
        check_assignment(reports, "R1", "W2", workers=workers, by_role="admin")
    assert "district" in err.value.hint
    with pytest.raises(AssignmentError, match="no worker 'W1'"):
        check_assignment(reports, "R1", "W1", workers=None, by_role="admin")
    with pytest.raises(AssignmentError, match="may not assign"):
        check_assignment(reports, "R1", "W2", workers=workers, by_role="viewer")


# ------------------------------------------------------------------ evidence received


def _case(category: str = "sand_mining") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "report_id": ["R1", "R2"],
            "category": category,
            "source": "patrol",
            "status": "in_progress",
            "reported_at": "2026-05-01T00:00Z",
            "evidence": ["before:old.jpg;after:old2.jpg", None],  # typed long ago
        }
    )


def test_only_received_photos_count() -> None:
    files = pd.DataFrame(
        {"report_id": ["R1", "R2"], "kind": ["before", "after"], "name": ["a.jpg", "b.jpg"]}
    )
    # the typed evidence column does not count once the uploads are known
    with pytest.raises(TransitionError, match="R1 lacks after evidence"):
        transition(_case(), "R1", "resolved", actor_id="W1", uploaded=files)
    with pytest.raises(TransitionError, match=r"after:b\.jpg was never uploaded"):
        # R2's file is not R1's
        transition(_case(), "R1", "resolved", actor_id="W1", uploaded=files, evidence="after:b.jpg")
    both = pd.concat([files, files.iloc[[1]].assign(report_id="R1")], ignore_index=True)
    out, _ = transition(
        _case(), "R1", "resolved", actor_id="W1", uploaded=both, evidence="after:b.jpg"
    )
    # the first wave's statuses read as the stages they meant (resolved = reported back)
    assert out["status"].tolist() == ["reported_back", "handling"]
    # what was received, each photo once; not what was typed long ago
    assert out["evidence"].iloc[0] == "after:b.jpg;before:a.jpg"
    # without the uploads (a library user, a ledger import), typed evidence counts as before
    out, _ = transition(_case(), "R1", "resolved", actor_id="W1")
    assert out["status"].iloc[0] == "reported_back"


# ------------------------------------------------------------------ retention


def test_contacts_expire_only_on_finished_cases() -> None:
    r = pd.DataFrame(
        {
            "report_id": ["R1", "R2", "R3", "R4", "R5"],
            "category": "cctv",
            "source": "hotline",
            "status": ["closed", "rejected", "closed", "resolved", "closed"],
            "reported_at": "2026-01-01T00:00Z",
            "resolved_at": [None, None, "2026-04-25T00:00Z", "2026-01-02T00:00Z", None],
            "reporter_contact": ["13800000001", "13800000002", "13800000003", "138", None],
        }
    )
    at = "2026-05-01T00:00Z"
    assert expired_contacts(r, days=30, at=at).tolist() == [True, True, False, False, False]
    # a case closed lately (its event) keeps its contact though reported long ago
    ev = pd.DataFrame({"report_id": ["R1"], "to_status": ["closed"], "at": ["2026-04-30T00:00Z"]})
    assert expired_contacts(r, days=30, events=ev, at=at).tolist()[:2] == [False, True]
    out, events = purge_contacts(r, days=30, events=ev, at=at)
    assert out["reporter_contact"].isna().tolist() == [False, True, False, False, True]
    assert events["report_id"].tolist() == ["R2"] and events["to_status"].tolist() == ["rejected"]
    assert len(purge_contacts(out, days=30, events=ev, at=at).events) == 0  # done once
    with pytest.raises(ValueError, match="negative"):
        expired_contacts(r, days=-1)


# ------------------------------------------------------------------ areas of water bodies

ADMIN = gpd.GeoDataFrame(
    {"admin_code": ["430200", "430202", "430203", "430202001", "430202002"]},
    geometry=[
        shapely.box(0, 0, 4, 2),
        shapely.box(0, 0, 2, 2),
        shapely.box(2, 0, 4, 2),
        shapely.box(0, 0, 1, 2),
        shapely.box(1, 0, 2, 2),
    ],
    crs=4326,
)


def _brute_area(geom) -> str | None:
    met = [
        c
        for c, a in zip(ADMIN["admin_code"], ADMIN.geometry, strict=True)
        if geom.intersects(a) and not geom.touches(a)
    ]
    leaves = [c for c in met if not any(o != c and _holds(c, o) for o in met)]
    if not leaves:
        return None
    for code in ("430202001", "430202002", "430202", "430203", "430200"):
        if all(_holds(code, leaf) for leaf in leaves):
            return code
    return None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-2, 16), st.integers(-2, 8), st.integers(1, 8), st.integers(1, 4)),
        min_size=1,
        max_size=8,
    )
)
def test_admin_codes_of_matches_brute_force(boxes) -> None:
    # quarter-degree boxes: some inside one township, some across, some on a boundary
    geoms = [shapely.box(x / 4, y / 4, (x + w) / 4, (y + h) / 4) for x, y, w, h in boxes]
    lakes = gpd.GeoDataFrame({"n": range(len(geoms))}, geometry=geoms, crs=4326)
    got = admin_codes_of(lakes, ADMIN).tolist()
    assert got == [_brute_area(g) for g in geoms]


def test_admin_codes_of_keeps_own_codes() -> None:
    lakes = gpd.GeoDataFrame(
        {"admin_code": ["430203", None]},
        geometry=[shapely.box(0.1, 0.1, 0.2, 0.2), shapely.box(0.1, 0.1, 0.2, 0.2)],
        crs=4326,
    )
    assert admin_codes_of(lakes, ADMIN).tolist() == ["430203", "430202001"]


# ------------------------------------------------------------------ phones


@given(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.text(alphabet="网格路灯 ,:", max_size=5)
)
def test_every_mobile_is_masked(phone, text) -> None:
    out = mask_phones(pd.Series([f"{text}{phone}{text}"], dtype=object)).iloc[0]
    assert phone not in out and f"{phone[:3]}****{phone[-4:]}" in out
