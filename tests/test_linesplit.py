"""A line's measures in the line table do not depend on the other lines given with it:
a partition given fewer lines cuts at the same floats as the whole run."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gridkit.rivers.linesplit import LineTable

coords = st.floats(-1e5, 1e5, allow_nan=False, allow_infinity=False)
lines = st.lists(
    st.lists(st.tuples(coords, coords), min_size=2, max_size=40).filter(
        lambda pts: len(set(pts)) > 1
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(lines)
# measures closer than the last bit of the lines before them (found by CI)
@example([[(0.0, 0.0), (0.0, 1.0)], [(0.0, 0.0), (0.0, 5.310882114677547e-32), (0.0, 0.0)]])
def test_measures_of_a_line_equal_its_own_running_sum(pts):
    geoms = [shapely.LineString(p) for p in pts]
    table = LineTable.from_lines(geoms)
    for i, p in enumerate(pts):
        a = np.asarray(p)
        seg = np.concatenate([[0.0], np.hypot(*(a[1:] - a[:-1]).T)])
        got = table.cum[table.offsets[i] : table.offsets[i + 1]]
        assert np.array_equal(got, np.cumsum(seg))  # bit for bit, as the line alone
        alone = LineTable.from_lines([geoms[i]])
        assert np.array_equal(alone.cum, got)
        m = np.linspace(0, alone.lengths[0], 7)
        assert np.array_equal(
            table.interpolate(np.full(7, i), m), alone.interpolate(np.zeros(7, int), m)
        )
