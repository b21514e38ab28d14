"""Report ids continued after a few taken ids (the highest stored one, asked of the
database by the report writer for every batch) are read without pandas: the same
ids as the Series path gives, whatever the taken ids look like."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.ops.intake import ReportIds

ids = st.one_of(
    st.integers(0, 10**9).map(lambda k: f"R{k:07d}"),
    st.integers(0, 99).map(lambda k: f"R{k}"),
    st.sampled_from(["hotline-3", "R", "R12a", "r0000004", "R0000009\n", "R０１", " R5", "", None]),
    st.text(max_size=6),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ids, max_size=8), st.integers(0, 5))
def test_few_ids_read_without_pandas_continue_the_same(taken, n) -> None:
    fast, general = ReportIds(list(taken)), ReportIds(pd.Series(taken, dtype=object))
    assert fast.take(n) == general.take(n)
    assert next(fast) == next(general)
