"""The reports layer as the writer holds it: what a batch reads from it is what the
whole layer would give, however many batches were appended."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from api._held import JOIN_AT, HeldReports
from gridkit.crs import local_metric_crs
from gridkit.ops.reports import normalise_reports

CATS = ["street_light", "green_belt", "sewage"]
STATUSES = ["collected", "dispatched", "closed"]  # closed is not open
LON, LAT = 113.0, 27.7
M_LAT = 1 / 111_000.0
M_LON = M_LAT / np.cos(np.radians(LAT))


def _rows(start: int, spec: list[tuple[float, float, int, int, bool, str | None]]):
    """Typed report rows from (east m, north m, category, status, duplicate, key)."""
    n = len(spec)
    ids = [f"R{start + k:07d}" for k in range(n)]
    return normalise_reports(
        gpd.GeoDataFrame(
            {
                "report_id": ids,
                "category": [CATS[c] for _, _, c, _, _, _ in spec],
                "source": ["patrol"] * n,
                "status": [STATUSES[s] for _, _, _, s, _, _ in spec],
                "duplicate_of": ["R0000000" if d else None for *_, d, _ in spec],
                "idempotency_key": pd.array([k for *_, k in spec], dtype="string"),
            },
            geometry=shapely.points([(LON + e * M_LON, LAT + n_ * M_LAT) for e, n_, *_ in spec]),
            crs=4326,
        )
    )


row = st.tuples(
    st.floats(-400, 400),
    st.floats(-400, 400),
    st.integers(0, 2),
    st.integers(0, 2),
    st.booleans(),
    st.none() | st.sampled_from(["k1", "k2", "k3"]),
)


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.lists(row, min_size=1, max_size=6), min_size=1, max_size=45),
    new=st.lists(
        st.tuples(st.floats(-400, 400), st.floats(-400, 400), st.integers(0, 2)),
        min_size=1,
        max_size=5,
    ),
)
def test_held_layer_answers_as_the_whole_layer_would(batches, new) -> None:
    frames, start = [], 1
    for spec in batches:
        frames.append(_rows(start, spec))
        start += len(spec)
    held = HeldReports(0, frames[0])
    for gen, f in enumerate(frames[1:], start=1):
        held.append(gen, f)
    whole = pd.concat(frames, ignore_index=True)
    assert len(held) == len(whole)
    assert held.report_ids().tolist() == whole["report_id"].tolist()

    # any rows, across chunks (joined or not), come back as the layer's rows
    pick = np.arange(len(whole))[:: max(1, len(whole) // 7)]
    got = held.take(pick[::-1])
    assert got["report_id"].tolist() == whole["report_id"].iloc[pick].tolist()
    assert isinstance(got, gpd.GeoDataFrame) and got.crs.equals(4326)

    # replays: the first row stored under each key
    keys = ["k1", "k2", "k3", "k9"]
    replay = held.replays(keys)
    for k in keys:
        rows = whole[whole["idempotency_key"].fillna("") == k]
        if len(rows):
            assert replay.loc[k, "report_id"] == rows["report_id"].iloc[0]
        else:
            assert k not in replay.index

    # duplicate candidates: every open original of the category within the radius
    # is there; nothing closed, duplicated or of another category
    radius = 50.0
    pts = gpd.GeoDataFrame(
        {"category": [CATS[c] for *_, c in new]},
        geometry=shapely.points([(LON + e * M_LON, LAT + n_ * M_LAT) for e, n_, _ in new]),
        crs=4326,
    )
    near = held.near(pts, radius)
    ids = set(near["report_id"])
    is_open = whole["status"].isin(["collected", "dispatched"]) & whole["duplicate_of"].isna()
    assert set(whole.loc[~is_open, "report_id"]).isdisjoint(ids)
    metric = local_metric_crs(whole.geometry)
    w = whole.geometry.to_crs(metric).to_numpy()
    p = pts.geometry.to_crs(metric).to_numpy()
    for j, cat in enumerate(pts["category"]):
        same = (whole["category"] == cat).to_numpy() & is_open.to_numpy()
        within = shapely.distance(w, p[j]) <= radius
        assert set(whole.loc[same & within, "report_id"]) <= ids
    assert set(near["category"]) <= set(pts["category"])


def test_chunks_are_joined_past_the_limit() -> None:
    held = HeldReports(0, _rows(1, [(0, 0, 0, 0, False, None)]))
    for k in range(JOIN_AT + 3):
        held.append(k + 1, _rows(2 + k, [(10.0 * k, 0, 0, 0, False, None)]))
    assert len(held._chunks) <= JOIN_AT + 1
    assert held.report_ids().tolist() == [f"R{k:07d}" for k in range(1, JOIN_AT + 5)]
