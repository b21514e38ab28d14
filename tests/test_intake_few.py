"""A few new reports (the API's batches) are taken in without a frame per step
(:func:`gridkit.ops.reports._intake_few`): the same reports and events as the general
path of :func:`gridkit.ops.reports.intake`, row for row, type for type, index and
column order included: ids, due times from the work calendar, unit and admin code
located (inside a unit, on a shared edge, between units, address-only), duplicate
links to earlier reports of the batch and to open stored ones, the events' notes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridkit.ops import reports as rep
from gridkit.ops.intake import report_frame
from gridkit.ops.reports import intake, report_rules
from gridkit.synth.ops import grid_units

UNITS = grid_units(4, 4)  # 500 m cells from (113.1, 27.8)
X0, Y0, X1, Y1 = UNITS.total_bounds
RULES = report_rules()
CATEGORIES = ["floating_garbage", "street_light", "cctv", "sewage"]
AT = pd.Timestamp("2026-02-13T02:00Z")  # a Friday before the Spring Festival holiday

#: ~a metre in degrees: points a few metres apart are duplicates (radius 50 m)
M = 1 / 111_000
spots = st.sampled_from([(113.1023, 27.8021), (113.1077, 27.8102), (113.11, 27.805)])
points = st.one_of(
    st.tuples(st.floats(X0 - 0.002, X1 + 0.002), st.floats(Y0 - 0.002, Y1 + 0.002)),
    # near a few spots: duplicates, within the batch and of stored reports
    st.tuples(spots, st.integers(-80, 80), st.integers(-80, 80)).map(
        lambda t: (t[0][0] + t[1] * M, t[0][1] + t[2] * M)
    ),
    st.sampled_from([(113.105, 27.805), (113.1, 27.8)]),  # a unit's corner, edges
    st.none(),  # address-only
)
times = st.one_of(
    st.none(),
    st.integers(0, 5 * 24 * 60).map(
        lambda m: (AT - pd.Timedelta(minutes=m)).tz_convert("Asia/Shanghai").isoformat()
    ),
)


@st.composite
def records(draw: st.DrawFn) -> dict:
    point = draw(points)
    rec = {
        "category": draw(st.sampled_from(CATEGORIES)),
        "source": draw(st.sampled_from(list(RULES.sources))),
        "description": draw(st.one_of(st.none(), st.sampled_from(["河面漂浮物", "路灯不亮", ""]))),
        "reported_at": draw(times),
        "admin_code": None,
        "unit_id": None,
        "evidence": draw(st.one_of(st.none(), st.just("before:abc.jpg"))),
    }
    if point is None:  # a hotline report: a unit or an admin area chosen by hand
        if draw(st.booleans()):
            rec["unit_id"] = draw(st.sampled_from(UNITS["unit_id"].tolist()))
        else:
            rec["admin_code"] = "430202001"
    elif draw(st.booleans()):
        rec["admin_code"] = draw(st.sampled_from([None, "430202002"]))
    return {"record": rec, "point": None if point is None else shapely.Point(point)}


def _new(batch: list[dict], first: int, reporter: bool) -> gpd.GeoDataFrame:
    recs = [b["record"] for b in batch]
    if reporter:
        recs = [{**r, "reporter_id": f"W{k % 3}" if k % 4 else None} for k, r in enumerate(recs)]
    ids = [f"R{first + k:07d}" for k in range(len(batch))]
    return report_frame(recs, [b["point"] for b in batch], report_ids=ids)


def _general(new, **kw) -> rep.ReportChange:
    few = rep.FEW_REPORTS
    rep.FEW_REPORTS = -1  # the general path
    try:
        return intake(new, **kw)
    finally:
        rep.FEW_REPORTS = few


def _same(a: rep.ReportChange, b: rep.ReportChange) -> None:
    pd.testing.assert_frame_equal(a.reports, b.reports, check_exact=True)
    assert isinstance(a.reports, gpd.GeoDataFrame) and a.reports.crs == b.reports.crs
    assert a.reports.geometry.name == b.reports.geometry.name
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(records(), min_size=1, max_size=12),
    st.lists(records(), min_size=0, max_size=8),
    st.sampled_from([None, "W9"]),
    st.booleans(),
    st.sampled_from(["collected", "handling", "closed"]),
)
def test_few_reports_taken_in_as_the_general_path_does(
    batch, stored, actor, reporter, stored_status
) -> None:
    existing = None
    if stored:  # reports taken in before (some closed): the candidates of this batch
        before = _general(_new(stored, 1, False), units=UNITS, at=AT - pd.Timedelta(days=1))
        existing = before.reports.copy()
        existing.loc[existing.index[::2], "status"] = stored_status
    new = _new(batch, len(stored) + 1, reporter)
    kw = {"units": UNITS, "existing": existing, "at": AT, "actor_id": actor}
    few = rep._intake_few(new, rules=RULES, **kw)
    assert few is not None  # every batch here takes the fast path
    _same(few, _general(new, **kw))
    _same(intake(new, **kw), few)  # and intake takes it
    # the new rows alone (what the report writer asks for): the tail of the above
    alone = rep._intake_few(new, rules=RULES, keep_existing=False, **kw)
    _same(alone, _general(new, keep_existing=False, **kw))
    tail = few.reports.iloc[len(few.reports) - len(new) :]
    # (in the order of their own columns: a concatenation takes the stored rows')
    _same(alone, rep.ReportChange(tail[list(alone.reports.columns)], few.events))


def test_duplicates_within_the_batch_and_of_stored_reports() -> None:
    """The property above on a hand-made case whose answer is known."""
    p = (113.1023, 27.8021)
    rec = {"category": "street_light", "source": "resident", "reported_at": None}
    stored = report_frame([rec], [shapely.Point(p)], report_ids=["R0000001"])
    existing = _general(stored, units=UNITS, at=AT - pd.Timedelta(days=1)).reports
    new = report_frame(
        [{**rec, "reported_at": "2026-02-13T09:00+08:00"}, rec, {**rec, "category": "cctv"}],
        [shapely.Point(p[0], p[1] + 10 * M), shapely.Point(p[0] + 0.01, p[1]),
         shapely.Point(p[0], p[1] + 20 * M)],
        report_ids=["R0000002", "R0000003", "R0000004"],
    )  # fmt: skip
    few = intake(new, units=UNITS, existing=existing, at=AT)
    _same(few, _general(new, units=UNITS, existing=existing, at=AT))
    rows = few.reports.set_index("report_id")
    assert rows.loc["R0000002", "duplicate_of"] == "R0000001"
    assert pd.isna(rows.loc["R0000003", "duplicate_of"]) and pd.isna(
        rows.loc["R0000004", "duplicate_of"]
    )
    note = few.events.set_index("report_id").loc["R0000002", "note"]
    assert note.endswith("likely duplicate of R0000001")


@pytest.mark.parametrize(
    "change",
    [
        {"category": "no_such_category"},
        {"source": "pigeon"},
    ],
)
def test_refused_batches_raise_the_general_paths_error(change) -> None:
    rec = {"category": "cctv", "source": "patrol", "reported_at": None, **change}
    new = report_frame([rec], [shapely.Point(113.102, 27.802)], report_ids=["R0000001"])
    assert rep._intake_few(new, units=UNITS, existing=None, rules=RULES, at=AT,
                           actor_id=None) is None  # fmt: skip
    with pytest.raises(rep.ReportError) as fast:
        intake(new, units=UNITS, at=AT)
    with pytest.raises(rep.ReportError) as general:
        _general(new, units=UNITS, at=AT)
    assert str(fast.value) == str(general.value)


def test_unplaced_reports_raise_the_general_paths_error() -> None:
    rec = {"category": "cctv", "source": "hotline", "reported_at": None}
    new = report_frame([rec], [None], report_ids=["R0000001"])
    with pytest.raises(rep.ReportError, match="no point, unit_id or admin_code"):
        intake(new, units=UNITS, at=AT)


def test_a_point_off_wgs84_takes_the_general_path() -> None:
    rec = {"category": "cctv", "source": "patrol", "reported_at": None}
    new = report_frame([rec], [shapely.Point(113.102, 27.802)], report_ids=["R0000001"])
    moved = new.to_crs(3857)
    assert rep._intake_few(moved, units=UNITS, existing=None, rules=RULES, at=AT,
                           actor_id=None) is None  # fmt: skip
    a = intake(moved, units=UNITS, at=AT).reports
    assert a["unit_id"].iloc[0] == "430202001000000"
    assert np.allclose(shapely.get_coordinates(a.geometry.array), [[113.102, 27.802]])
