"""Grid versions: diff classification, lineage shares, carry-over, history, publish."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.versions import (
    carry_over,
    diff_units,
    publish,
    read_version,
    remap_unit_ids,
    versions,
)

CRS = 32649  # UTM 49N, Zhuzhou


def grid_units(
    community: str,
    x0: float,
    cuts: list[float],
    *,
    width: float = 1000.0,
    households: list[int] | None = None,
) -> gpd.GeoDataFrame:
    """One community ``width`` m wide cut into vertical strips at ``cuts`` (in 0..1)."""
    edges = [0.0, *sorted(cuts), 1.0]
    cells = [
        shapely.box(x0 + a * width, 0, x0 + b * width, 500) for a, b in itertools.pairwise(edges)
    ]
    n = len(cells)
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"{community}-{i + 1:03d}" for i in range(n)],
            "kind": "community_grid",
            "parent_id": community,
            "admin_code": "430202001001",
            "households": households or [100] * n,
        },
        geometry=cells,
        crs=CRS,
    )


def city(cuts_by_community: dict[str, list[float]]) -> gpd.GeoDataFrame:
    parts = [
        grid_units(c, i * 1000.0, cuts)
        for i, (c, cuts) in enumerate(sorted(cuts_by_community.items()))
    ]
    return pd.concat(parts, ignore_index=True)


BASE = {"C1": [0.5], "C2": [0.3, 0.6], "C3": [], "C4": [0.25, 0.5, 0.75]}


def test_identical_input_all_unchanged() -> None:
    d = diff_units(city(BASE), city(BASE))
    assert set(d.lineage["relation"]) == {"unchanged"}
    assert (d.lineage["old_id"] == d.lineage["new_id"]).all()
    assert d.lineage["share"].eq(1).all()
    assert d.summary["households_moved"] == 0
    assert d.touched_ids() == set()


def test_change_in_one_community_touches_only_it() -> None:
    changed = dict(BASE, C2=[0.2, 0.4, 0.6, 0.8])  # tighter cap in C2
    d = diff_units(city(BASE), city(changed))
    assert {i.split("-")[0] for i in d.touched_ids()} == {"C2"}
    untouched = d.lineage[~d.lineage["old_id"].fillna("").str.startswith("C2")]
    assert set(untouched["relation"]) == {"unchanged"}


def test_split_and_merge_classified() -> None:
    split = diff_units(city({"C1": []}), city({"C1": [0.5]}))
    assert split.lineage["relation"].tolist() == ["split", "split"]
    assert split.lineage["share"].tolist() == [0.5, 0.5]
    assert split.summary["old_units"]["split"] == 1
    merged = diff_units(city({"C1": [0.5]}), city({"C1": []}))
    assert merged.lineage["relation"].tolist() == ["merged", "merged"]
    assert merged.lineage["share_new"].tolist() == [0.5, 0.5]


def test_modified_when_boundary_moves_or_households_change() -> None:
    d = diff_units(city({"C1": []}), grid_units("C1", 0, [], width=1100))
    assert d.lineage["relation"].tolist() == ["modified"]
    hh = city({"C1": []})
    hh2 = hh.assign(households=[150])
    assert diff_units(hh, hh2).lineage["relation"].tolist() == ["modified"]


def test_added_and_removed() -> None:
    d = diff_units(city({"C1": [], "C2": []}), city({"C1": [], "C3": []}))
    rel = dict(
        zip(d.lineage["old_id"].fillna(d.lineage["new_id"]), d.lineage["relation"], strict=True)
    )
    # C3 sits where C2 was (same x range): ids differ, geometry equal -> modified pair
    assert rel["C1-001"] == "unchanged"
    far = grid_units("C9", 10_000, [])
    d2 = diff_units(city({"C1": []}), pd.concat([city({"C1": []}), far], ignore_index=True))
    assert d2.lineage.set_index("new_id").loc["C9-001", "relation"] == "added"
    d3 = diff_units(pd.concat([city({"C1": []}), far], ignore_index=True), city({"C1": []}))
    assert d3.lineage.set_index("old_id").loc["C9-001", "relation"] == "removed"
    assert d3.summary["households_moved"] == 100


def test_slivers_from_tiny_boundary_noise_are_ignored() -> None:
    old = city({"C1": [0.5]})
    new = old.copy()
    new.geometry = shapely.buffer(old.geometry.array, 0.001, join_style="mitre")
    d = diff_units(old, new)
    assert set(d.lineage["relation"]) == {"unchanged"}
    assert len(d.lineage) == 2


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.05, 0.95), max_size=4, unique=True),
    st.lists(st.floats(0.05, 0.95), max_size=4, unique=True),
)
def test_shares_conserve_area(old_cuts: list[float], new_cuts: list[float]) -> None:
    def spaced(cuts):
        cuts = sorted(cuts)
        return [c for i, c in enumerate(cuts) if i == 0 or c - cuts[i - 1] > 0.03]

    old = grid_units("C1", 0, spaced(old_cuts))
    new = grid_units("C1", 0, spaced(new_cuts))
    lin = diff_units(old, new, min_share=0).lineage
    # every old unit's area lands somewhere in the new grid, and every new one comes from old
    assert np.allclose(lin.groupby("old_id")["share"].sum(), 1, atol=1e-6)
    assert np.allclose(lin.groupby("new_id")["share_new"].sum(), 1, atol=1e-6)
    assert set(lin["relation"]) <= {"unchanged", "modified", "split", "merged"}


def test_deterministic() -> None:
    changed = dict(BASE, C4=[0.5])
    a = diff_units(city(BASE), city(changed)).lineage
    b = diff_units(city(BASE).iloc[::-1], city(changed).sample(frac=1, random_state=3)).lineage
    pd.testing.assert_frame_equal(a, b)


def assignments_for(units: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit_id": units["unit_id"],
            "worker_id": [f"W{i}" for i in range(len(units))],
            "role": "grid_worker",
        }
    )


def test_carry_over_keeps_unchanged_and_proposes_for_split() -> None:
    old = city(BASE)
    new = city(dict(BASE, C2=[0.5]))  # C2: three units become two
    d = diff_units(old, new)
    co = carry_over(assignments_for(old), d.lineage)
    unchanged = d.lineage.loc[d.lineage["relation"] == "unchanged", "new_id"]
    kept = co.assignments.set_index("unit_id")
    old_worker = assignments_for(old).set_index("unit_id")["worker_id"]
    for uid in unchanged:  # never leaves an unchanged unit without its worker
        assert kept.loc[uid, "worker_id"] == old_worker[uid]
        assert kept.loc[uid, "decision"] == "kept"
    assert set(co.needs_decision["unit_id"]) == {"C2-001", "C2-002"}
    # C2-002 (x 500..1000 of C2) takes most of its area from old C2-003 (600..1000)
    assert kept.loc["C2-002", "worker_id"] == old_worker["C2-003"]
    assert set(co.assignments["unit_id"]) == set(new["unit_id"])


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["C1", "C2", "C3"]),
        st.lists(st.floats(0.1, 0.9), max_size=3, unique=True),
        min_size=1,
    )
)
def test_carry_over_never_drops_an_unchanged_unit(change: dict[str, list[float]]) -> None:
    def spaced(cuts):
        cuts = sorted(cuts)
        return [c for i, c in enumerate(cuts) if i == 0 or c - cuts[i - 1] > 0.05]

    old = city(BASE)
    new = city({**BASE, **{k: spaced(v) for k, v in change.items()}})
    d = diff_units(old, new)
    co = carry_over(assignments_for(old), d.lineage)
    unchanged = set(d.lineage.loc[d.lineage["relation"] == "unchanged", "new_id"])
    assert unchanged <= set(co.assignments["unit_id"])
    assert set(co.assignments["unit_id"]) | set(co.needs_decision["unit_id"]) == set(new["unit_id"])


def test_remap_history_through_lineage() -> None:
    old = city({"C1": [0.5], "C9": []})
    new = city({"C1": []})
    lin = diff_units(old, new).lineage
    history = pd.Series(["C1-001", "C1-002", "C9-001", "X-1"])
    out = remap_unit_ids(history, lin)
    assert out.tolist()[:2] == ["C1-001", "C1-001"]
    # C9 sat at x 1000..2000 and is gone in the new grid
    assert pd.isna(out.iloc[2])
    assert out.iloc[3] == "X-1"


def test_publish_versions_in_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws.gpkg"
    v1_units = city(BASE).to_crs(4326)
    v, diff = publish(v1_units, ws, note="first grid", validate=False)
    assert (v, diff) == (1, None)
    v2_units = city(dict(BASE, C2=[0.5])).to_crs(4326)
    v, diff = publish(v2_units, ws, note="tighter cap in C2", validate=False)
    assert v == 2
    assert {i.split("-")[0] for i in diff.touched_ids()} == {"C2"}
    table = versions(ws)
    assert table["version"].tolist() == [1, 2]
    assert table["note"].tolist() == ["first grid", "tighter cap in C2"]
    old = read_version(ws, 1)  # older versions stay queryable
    assert len(old) == len(v1_units)
    assert set(read_version(ws)["version"]) == {2}
    from gridkit.io import read_layer

    lineage = read_layer(ws, "lineage")
    assert set(lineage["version"]) == {2}
    assert len(read_layer(ws, "units")) == len(v2_units)


def test_publish_through_a_store_serves_the_new_grid_at_once(tmp_path: Path) -> None:
    """A running service's store publishes under its one writer: the versions, the
    lineage and the grid it serves follow at once, and the same workspace read as a
    file agrees."""
    from gridkit.store import open_store

    ws = tmp_path / "ws.gpkg"
    publish(city(BASE).to_crs(4326), ws, note="first grid", validate=False)
    store = open_store(ws)
    served = store.read("units")
    gen = store.generation("units")
    v, diff = publish(city(dict(BASE, C2=[0.5])).to_crs(4326), store, note="C2", validate=False)
    assert v == 2 and {i.split("-")[0] for i in diff.touched_ids()} == {"C2"}
    assert store.generation("units") > gen
    assert len(store.read("units")) == len(served) - 1
    assert set(store.read("units")["version"]) == {2}
    assert versions(store)["version"].tolist() == versions(ws)["version"].tolist() == [1, 2]
    assert set(store.read("lineage")["version"]) == {2}
    assert len(read_version(store, 1)) == len(served)


def test_publish_checks_the_units_before_taking_the_writer(tmp_path: Path) -> None:
    """Invalid units are refused before the store's writer is taken (a city's grid
    takes a while to check): nothing is written."""
    from gridkit.errors import InvalidLayerError
    from gridkit.store import open_store

    ws = tmp_path / "ws.gpkg"
    publish(city(BASE).to_crs(4326), ws, validate=False)
    store = open_store(ws)
    taken: list[bool] = []
    lock = store.exclusive()

    class Watched:
        def __init__(self) -> None:
            self.inner = lock

        def __enter__(self):
            taken.append(True)
            return self.inner.__enter__()

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    store.exclusive = Watched  # type: ignore[method-assign]
    with pytest.raises(InvalidLayerError):
        publish(city(BASE).to_crs(4326).drop(columns="unit_id"), store)
    assert taken == [] and versions(store)["version"].tolist() == [1]
    publish(city(BASE).to_crs(4326), store, validate=False)
    assert taken == [True] and versions(store)["version"].tolist() == [1, 2]


def test_cli_diff_prints_summary_and_writes_lineage(tmp_path: Path, capsys) -> None:
    from gridkit.cli import main
    from gridkit.io import read_layer, write_layer

    old = write_layer(city(BASE).to_crs(4326), tmp_path / "old.gpkg", "units")
    new = write_layer(city(dict(BASE, C2=[0.5])).to_crs(4326), tmp_path / "new.gpkg", "units")
    code = main(["diff", str(old), str(new), "-o", str(tmp_path / "lineage.parquet")])
    out = capsys.readouterr().out
    assert code == 0
    assert "7 unchanged, 1 split, 2 merged" in out
    lineage = read_layer(tmp_path / "lineage.parquet", "lineage")
    assert len(lineage) == 11


def test_river_units_crossing_communities_are_not_lineage() -> None:
    grids = city({"C1": [0.5]})
    river = gpd.GeoDataFrame(
        {
            "unit_id": ["430202-XJ-001"],
            "kind": "river_reach",
            "parent_id": "XJ",
            "admin_code": "430202001001",
        },
        geometry=[shapely.box(200, -50, 300, 550)],
        crs=CRS,
    )
    old = pd.concat([grids, river], ignore_index=True)
    new = pd.concat([city({"C1": [0.3, 0.6]}), river], ignore_index=True)
    lin = diff_units(old, new).lineage
    assert lin.set_index("old_id").loc["430202-XJ-001", "relation"] == "unchanged"
    assert not ((lin["old_id"] == "430202-XJ-001") & (lin["new_id"] != "430202-XJ-001")).any()
