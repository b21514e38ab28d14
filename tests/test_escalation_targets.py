"""Where an escalated case goes (issue: the case workflow): ``levels`` steps up from the
case's area, by the admin areas' own parents where they give one (a county-level city
directly under its province), else by the code; never above the top. Taken a step of
every case at a time; checked against the case-by-case walk with
:func:`gridkit.codes.parent` on one code, the rule as written."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit import codes
from gridkit.ops.cases import _escalation_targets

AREAS = pd.DataFrame(
    {
        "admin_code": ["429004", "429004001", "430202", "430202001000"],
        "parent_code": ["420000", "429004", "430200", None],
    }
)
CODES = ["430202001001", "430202001", "430202", "430200", "430000", "429004001002",
         "429004001", "429004", "430202001000", "4302", None]  # fmt: skip


def _walk(code, k, areas):
    up = code
    for _ in range(int(k)):
        nxt = codes.parent(str(up), areas) if up is not None else None
        if nxt is None:
            break
        up = nxt
    return None if up == code else up


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(CODES), st.integers(0, 6)), min_size=1, max_size=30),
    st.booleans(),
)
def test_targets_equal_the_case_by_case_walk(cases, with_areas) -> None:
    areas = AREAS if with_areas else None
    admin = pd.Series([c for c, _ in cases], dtype=object)
    levels = np.array([k for _, k in cases])
    want = [_walk(c, k, areas) for c, k in cases]
    assert _escalation_targets(admin, levels, areas) == want


def test_a_county_level_city_goes_to_its_province() -> None:
    got = _escalation_targets(pd.Series(["429004001002", "430202001001"]), np.array([3, 3]),
                              AREAS)  # fmt: skip
    assert got == ["420000", "430200"]
