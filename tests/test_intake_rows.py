"""A batch of reports taken in as values (:func:`gridkit.ops.reports.intake_rows`, what
the API's writer does over PostGIS) gives the reports and events :func:`intake` gives
for the same records: every column in the same order, every value, the events in
time order; pieces of the rows serialise as those of the frame. Where it cannot
answer (a point in no unit given) it says so and :func:`intake` places the report."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridkit.geojson import column_pieces, pieces
from gridkit.ops.intake import report_frame
from gridkit.ops.reports import intake, intake_clock, intake_rows, report_rules
from tests.test_intake_few import AT, UNITS, _general, _new, records

RULES = report_rules()
UNIT_ARRAYS = (UNITS["unit_id"], UNITS["admin_code"], UNITS.geometry)


def _plain(values: object) -> list:
    """Values as Python ones: missing -> None, times -> UTC datetimes."""
    out = []
    for v in values:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, pd.Timestamp):
            out.append(v.to_pydatetime())
        elif isinstance(v, np.integer):
            out.append(int(v))
        else:
            out.append(v)
    return out


def _candidates(existing: gpd.GeoDataFrame | None) -> tuple:
    """The open originals of ``existing``, as the database answers them."""
    if existing is None:
        return ((), (), ())
    keep = existing["status"].isin(RULES.open_statuses) & existing["duplicate_of"].isna()
    rows = existing[keep.to_numpy()]
    return (rows.geometry.array, rows["category"].tolist(), rows["report_id"].tolist())


def _api_records(batch: list[dict]) -> list[dict]:
    """The records as the API hands them (its fields, in its order)."""
    keys = ["category", "description", "source", "admin_code", "unit_id", "reporter_contact",
            "reported_at"]  # fmt: skip
    return [{k: b["record"].get(k) for k in keys} for b in batch]


located = records().filter(lambda b: b["point"] is not None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(located, min_size=1, max_size=12),
    st.lists(records(), min_size=0, max_size=8),
    st.sampled_from([None, "W9"]),
    st.sampled_from(["collected", "handling", "closed"]),
    st.booleans(),
)
def test_rows_taken_in_as_intake_takes_them(batch, stored, actor, stored_status, api) -> None:
    existing = None
    if stored:
        before = _general(_new(stored, 1, False), units=UNITS, at=AT - pd.Timedelta(days=1))
        existing = before.reports.copy()
        existing.loc[existing.index[::2], "status"] = stored_status
    recs = _api_records(batch) if api else [b["record"] for b in batch]
    points = [b["point"] for b in batch]
    ids = [f"R{len(stored) + 1 + k:07d}" for k in range(len(batch))]
    want = intake(report_frame(recs, points, report_ids=ids), units=UNITS, existing=existing,
                  at=AT, actor_id=actor, keep_existing=False)  # fmt: skip
    got = intake_rows(recs, points, ids, units=UNIT_ARRAYS, candidates=_candidates(existing),
                      actors=[actor] * len(batch), at=AT)  # fmt: skip
    # the same with the clock worked out before (as the API's writer does)
    clock = intake_clock(recs, at=AT)
    again = intake_rows(recs, points, ids, units=UNIT_ARRAYS, candidates=_candidates(existing),
                        actors=[actor] * len(batch), at=AT, clock=clock)  # fmt: skip
    assert (got is None) == (again is None)
    if got is not None:
        assert got.reports == again.reports and got.events == again.events
    geoms = np.asarray(points, dtype=object)
    in_some = shapely.intersects(geoms[:, None], np.asarray(UNITS.geometry.array)[None, :])
    if got is None:  # only a point outside every unit sends a batch to intake
        assert not in_some.any(axis=1).all()
        return
    assert in_some.any(axis=1).all()
    rows = want.reports.set_index(want.reports["report_id"].to_numpy()).loc[ids]
    gcol = rows.geometry.name
    assert list(got.reports) == [c for c in rows.columns if c != gcol]
    for col, values in got.reports.items():
        assert values == _plain(rows[col]), col
    assert list(shapely.to_wkb(got.geometry)) == list(shapely.to_wkb(rows.geometry.array))
    assert list(got.events) == list(want.events.columns)
    for col, values in got.events.items():
        assert values == _plain(want.events[col]), col
    # served the same: the pieces of the rows are those of the frame
    assert column_pieces(got.reports, got.geometry, id_col="report_id") == pieces(
        rows.reset_index(drop=True), id_col="report_id"
    )


def test_a_point_between_units_is_left_to_intake() -> None:
    rec = {"category": "cctv", "source": "patrol", "reported_at": None}
    far = shapely.Point(113.2, 27.9)  # ~10 km off the grid
    assert intake_rows([rec], [far], ["R0000001"], units=UNIT_ARRAYS, at=AT) is None
    placed = intake(report_frame([rec], [far], report_ids=["R0000001"]), units=UNITS, at=AT)
    assert placed.reports["unit_id"].notna().all()  # the nearest unit: the whole layer's


def test_refused_and_unknown_records_are_left_to_intake() -> None:
    p = [shapely.Point(113.102, 27.802)]
    refused = [
        {"category": "no_such", "source": "patrol"},
        {"category": "cctv", "source": "pigeon"},
        {"category": "cctv", "source": "patrol", "lon": 1.0},
    ]
    for rec in refused:
        assert intake_rows([rec], p, ["R0000001"], units=UNIT_ARRAYS, at=AT) is None
