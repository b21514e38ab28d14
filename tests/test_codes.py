"""gridkit.codes: admin codes read from the whole code, one code or many, against a
brute-force reading of the hierarchy."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit import codes

# a real-shaped code at a random level: province 43, city 02, county 81, township 003, village 012
_part = {
    "province": st.integers(11, 65).map(lambda n: f"{n:02d}"),
    "city": st.integers(1, 90).map(lambda n: f"{n:02d}"),
    "county": st.integers(1, 99).map(lambda n: f"{n:02d}"),
    "township": st.integers(1, 999).map(lambda n: f"{n:03d}"),
    "village": st.integers(1, 999).map(lambda n: f"{n:03d}"),
}


@st.composite
def admin_code(draw) -> tuple[str, list[str]]:
    """A code and, by construction, the canonical codes of the area and every area
    above it (nearest first)."""
    depth = draw(st.integers(1, len(codes.LEVELS)))
    parts = [draw(_part[lv]) for lv in codes.LEVELS[:depth]]
    chain = []
    for d in range(1, depth + 1):
        chain.append("".join(parts[:d]).ljust(6, "0"))
    return chain[-1], chain[::-1]


def _padded(code: str) -> str:
    """How a statistical export writes it: twelve digits."""
    return code.ljust(12, "0")


@settings(max_examples=300, deadline=None)
@given(admin_code(), st.booleans())
def test_level_parent_and_ancestors_follow_the_construction(drawn, pad) -> None:
    code, chain = drawn
    given_code = _padded(code) if pad else code
    assert codes.normalise(given_code) == code
    assert codes.level(given_code) == codes.LEVELS[len(chain) - 1]
    assert codes.ancestors(given_code) == chain[1:]
    assert codes.parent(given_code) == (chain[1] if len(chain) > 1 else None)
    for i, lv in enumerate(codes.LEVELS):
        want = chain[len(chain) - 1 - i] if i < len(chain) else None
        assert codes.ancestor(given_code, lv) == want


@settings(max_examples=300, deadline=None)
@given(admin_code(), admin_code(), st.booleans())
def test_in_scope_is_membership_of_the_chain(a, b, pad) -> None:
    """Brute force: a code is in a scope when the scope is the code's area or one of
    the areas above it, whatever form either is written in."""
    (code, chain), (scope, _) = a, b
    want = scope in chain
    assert codes.in_scope(_padded(code) if pad else code, scope) is want
    assert codes.in_scope(code, codes.prefix(scope)) is want
    assert codes.in_scope(code, "") is True


@settings(max_examples=100, deadline=None)
@given(st.lists(admin_code(), min_size=1, max_size=30), admin_code())
def test_many_codes_give_what_each_gives(drawn, scope) -> None:
    """The vectorised forms agree with one code at a time, index kept."""
    values = [c for c, _ in drawn] + [None]
    series = pd.Series(values, index=range(100, 100 + len(values)), dtype=object)
    for fn in (codes.normalise, codes.level, codes.prefix, codes.parent, codes.district):
        out = fn(series)
        assert list(out.index) == list(series.index)
        assert out.tolist() == [fn(v) for v in values]
    inside = codes.in_scope(series, scope[0])
    assert inside.tolist() == [codes.in_scope(v, scope[0]) for v in values]
    pairwise = codes.in_scope(series, pd.Series([scope[0]] * len(values), dtype=object))
    assert pairwise.tolist() == inside.tolist()


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("430000", "province"),
        ("430200", "city"),
        ("430202", "county"),  # a district
        ("430281", "county"),  # a county-level city: six digits, not a city
        ("430221", "county"),
        ("430202001", "township"),
        ("430202001001", "village"),
        ("430202000000", "county"),
        ("4302021", None),
    ],
)
def test_level_is_read_from_the_whole_code(code: str, level: str | None) -> None:
    assert codes.level(code) == level


def test_a_county_level_city_under_the_province_takes_its_parent_from_the_table() -> None:
    areas = pd.DataFrame({"admin_code": ["429004", "429004001"], "parent_code": ["420000", None]})
    assert codes.parent("429004", areas) == "420000"
    assert codes.parent("429004001", areas) == "429004"
    assert codes.parent(pd.Series(["429004", "430202"]), areas).tolist() == ["420000", "430200"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of province"):
        codes.ancestor("430202", "district")
