"""Publishing cannot wipe the grid by mistake (issue 19, items 9 and 12): a preview
first, a guard asking for a confirmation, a redraw of one area, a restore, and a
write that fails on the workspace's side publishes nothing."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridkit.errors import InvalidLayerError
from gridkit.io import read_layer, write_layer
from gridkit.synth.ops import grid_units
from gridkit.versions import (
    ConfirmationRequiredError,
    VersionWriteError,
    confirm_reasons,
    diff_units,
    preview,
    publish,
    read_version,
    restore,
    versions,
)

X0 = 113.10


def city() -> gpd.GeoDataFrame:
    """Two districts of 10 x 10 units, the first row of each a river (20 river units,
    180 community grids)."""
    a = grid_units(10, 10, river_rows=1, admin_code="430202001")
    b = grid_units(10, 10, river_rows=1, x0=X0 + 0.06, admin_code="430203001")
    return gpd.GeoDataFrame(pd.concat([a, b], ignore_index=True), crs=4326).drop(columns="version")


def river_grid(n: int = 34) -> gpd.GeoDataFrame:
    """A redrawn river: ``n`` reaches along the rows the river units cover."""
    xs = X0 + np.arange(n) * 0.0035
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"430202001-XJ-{i:03d}" for i in range(n)],
            "kind": "river_reach",
            "parent_id": "XJ",
            "admin_code": "430202001",
            "length_m": 350.0,
        },
        geometry=shapely.box(xs, 27.80, xs + 0.0035, 27.805),
        crs=4326,
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A published city with workers on its community grids and cases open and closed."""
    path = tmp_path / "ws.gpkg"
    units = city()
    publish(units, path, note="现行网格", validate=False)
    grids = units.loc[units["kind"] == "community_grid", "unit_id"]
    assignments = pd.DataFrame(
        {"unit_id": grids, "worker_id": [f"W{i % 40:02d}" for i in range(len(grids))]}
    )
    write_layer(assignments, path, "assignments")
    t = pd.Timestamp("2026-05-01T00:00:00Z")
    status = ["reported", "assigned", "in_progress", "closed", "verified", "reported"]
    reports = gpd.GeoDataFrame(
        {
            "report_id": [f"R{i}" for i in range(6)],
            "category": "street_light",
            "source": "patrol",
            "status": status,
            "unit_id": list(grids.iloc[[0, 0, 5, 6, 7, 8]]),
            "reported_at": t,
        },
        geometry=[shapely.Point(113.1, 27.8)] * 6,
        crs=4326,
    )
    write_layer(reports, path, "reports")
    return path


def test_a_river_grid_posted_for_the_city_is_stopped(ws: Path) -> None:
    """The incident: a 34-unit river grid posted as the whole grid would remove every
    community grid. It is stopped with a preview saying so, and nothing is written."""
    before = read_layer(ws, "units")
    with pytest.raises(ConfirmationRequiredError) as caught:
        publish(river_grid(), ws, note="河道网格", validate=False)
    p = caught.value.preview
    assert len(p.reasons) == 2, p.reasons
    assert "180 of the 200 units in force (90 %, more than 20 %)" in p.reasons[0]
    assert "180 community units and has none of that kind" in p.reasons[1]
    d = p.to_dict()
    assert d["staffing"]["staffed_before"] == 180 and d["staffing"]["share_before"] == 0.9
    assert d["staffing"]["staffed_after"] == 0 and d["staffing"]["share_after"] == 0.0
    assert d["staffing"]["workers_before"] == 40 and d["staffing"]["workers_after"] == 0
    # every community grid goes, with its worker; the open cases on them are counted
    assert d["affected_units"] == 180 and d["affected_open_reports"] == 4
    first = p.affected.set_index("unit_id").loc["430202001000010"]
    assert first["relation"] == "removed" and first["open_reports"] == 2
    assert first["workers"] == ["W00"]
    # nothing written: the version, the grid in force and its layers are as they were
    assert versions(ws)["version"].tolist() == [1]
    assert read_layer(ws, "units")["unit_id"].tolist() == before["unit_id"].tolist()
    # confirmed, it is published
    version, diff = publish(river_grid(), ws, validate=False, confirm=True)
    assert version == 2 and diff.summary["old_units"]["removed"] == 180


def test_a_small_redraw_needs_no_confirmation(ws: Path) -> None:
    units = city()
    draft = units.drop(index=[150, 151])  # two units dropped: 1 %
    assert preview(draft, ws, validate=False).reasons == []
    assert publish(draft, ws, validate=False)[0] == 2


def test_dry_run_writes_nothing(ws: Path) -> None:
    mtime = ws.stat().st_mtime_ns
    p = preview(river_grid(), ws, validate=False)
    assert p.needs_confirm and p.version == 1 and len(p.units) == 34
    assert "needs confirmation" in str(p) and "0/34 (0%)" in str(p)
    assert ws.stat().st_mtime_ns == mtime


def test_an_unversioned_grid_in_force_is_guarded_too(tmp_path: Path) -> None:
    """A workspace with a ``units`` layer but no version yet: the first publish is
    checked against that grid, not taken as a blank page."""
    path = write_layer(city(), tmp_path / "ws.gpkg", "units")
    with pytest.raises(ConfirmationRequiredError):
        publish(river_grid(), path, validate=False)
    assert versions(path).empty
    version, diff = publish(city(), path, validate=False)
    assert version == 1 and diff.summary["old_units"]["unchanged"] == 200


def test_redraw_of_one_area_keeps_the_rest_with_its_ids(ws: Path) -> None:
    units = city()
    # district 430202's community grids merged pairwise into 45 units with new ids
    area = units[units["admin_code"].str.startswith("430202")]
    grids = area[area["kind"] == "community_grid"].reset_index(drop=True)
    merged = grids.dissolve(by=grids.index // 2).reset_index(drop=True)
    merged["unit_id"] = [f"430202001-M{i:02d}" for i in range(len(merged))]
    draft = pd.concat([area[area["kind"] != "community_grid"], merged], ignore_index=True)
    version, diff = publish(draft, ws, area="430202", validate=False, confirm=False)
    assert version == 2
    now = read_layer(ws, "units")
    assert len(now) == 100 + 10 + 45
    other = units[units["admin_code"].str.startswith("430203")].set_index("unit_id")
    kept = now.set_index("unit_id").loc[other.index]
    assert (kept.geometry.geom_equals_exact(other.geometry, 1e-9)).all()
    assert diff.summary["old_units"]["unchanged"] == 100 + 10
    assert diff.summary["old_units"]["merged"] == 90
    assert versions(ws)["area"].tolist()[-1] == "430202"


def test_redraw_of_an_area_refuses_units_outside_it(ws: Path) -> None:
    units = city()
    draft = units[units["admin_code"].str.startswith("430202")].copy()
    draft.loc[draft.index[:3], "admin_code"] = "430203001"
    with pytest.raises(InvalidLayerError, match="3 lie outside it: 430202001000000"):
        publish(draft, ws, area="430202", validate=False)
    with pytest.raises(InvalidLayerError, match="not an admin code"):
        publish(draft, ws, area="河西", validate=False)
    assert versions(ws)["version"].tolist() == [1]


def test_redraw_of_an_area_cannot_take_ids_of_another(ws: Path) -> None:
    units = city()
    draft = units[units["admin_code"].str.startswith("430202")].copy()
    draft.loc[draft.index[0], "unit_id"] = "430203001000000"
    with pytest.raises(InvalidLayerError, match="taken by units outside it"):
        publish(draft, ws, area="430202", validate=False)


def test_restore_publishes_an_old_version_with_lineage(ws: Path) -> None:
    publish(river_grid(), ws, validate=False, confirm=True)  # the wipe
    version, diff = restore(ws, 1)
    assert version == 3
    restored = read_version(ws)
    assert sorted(restored["unit_id"]) == sorted(city()["unit_id"])
    assert diff.summary["new_units"]["added"] == 180
    table = versions(ws)
    assert table["restored_from"].tolist()[-1] == 1
    assert table["note"].tolist()[-1] == "restored from version 1"
    assert set(read_layer(ws, "lineage")["version"]) == {2, 3}
    # restoring the version in force changes nothing
    assert restore(ws, 3)[1].summary["old_units"]["unchanged"] == 200


# ------------------------------------------------------------------ the guard, by brute force

SLOTS = 12


def _slots(kinds: list[str | None]) -> gpd.GeoDataFrame:
    """Units in a row of slots; ``None`` leaves a slot empty."""
    cells = [(i, k) for i, k in enumerate(kinds) if k is not None]
    return gpd.GeoDataFrame(
        {
            "unit_id": [f"U{i:02d}{k[0]}" for i, k in cells],
            "kind": [k for _, k in cells],
            "parent_id": "P",
            "admin_code": "430202001",
        },
        geometry=[shapely.box(113 + i * 0.01, 27.8, 113.01 + i * 0.01, 27.81) for i, _ in cells],
        crs=4326,
    )


KIND = st.sampled_from([None, "community_grid", "river_reach", "water_body"])


@settings(max_examples=60, deadline=None)
@given(
    old=st.lists(KIND, min_size=SLOTS, max_size=SLOTS),
    new=st.lists(KIND, min_size=SLOTS, max_size=SLOTS),
    share=st.sampled_from([0.0, 0.2, 0.5]),
)
def test_guard_against_brute_force(old, new, share) -> None:
    if all(k is None for k in old) or all(k is None for k in new):
        return
    water = {"river_reach", "water_body"}
    fam = lambda k: k in water  # noqa: E731
    removed = [
        i for i, k in enumerate(old) if k is not None and (new[i] is None or fam(new[i]) != fam(k))
    ]
    n_old = sum(k is not None for k in old)
    new_families = {fam(k) for k in new if k is not None}
    expect_share = len(removed) / n_old > share
    expect_kinds = {fam(old[i]) for i in removed} - new_families
    a, b = _slots(old), _slots(new)
    reasons = confirm_reasons(a, b, diff_units(a, b).lineage, max_removed_share=share)
    assert any("units in force" in r for r in reasons) == expect_share
    assert any("river and water units" in r for r in reasons) == (True in expect_kinds)
    assert any("community units" in r for r in reasons) == (False in expect_kinds)
    assert len(reasons) == expect_share + len(expect_kinds)


# ------------------------------------------------------------------ writes (item 12)


def test_a_grid_with_a_new_column_is_published(ws: Path) -> None:
    """The failure behind item 12: a draft with a column the history lacks failed to
    append (and answered naming the workspace). The history takes the column."""
    draft = city().assign(网格长="张三")
    version, _ = publish(draft, ws, validate=False)
    assert version == 2
    assert read_version(ws)["网格长"].eq("张三").all()
    assert read_version(ws, 1)["网格长"].isna().all()


def test_a_failing_write_is_a_version_write_error_and_publishes_nothing(
    ws: Path, monkeypatch
) -> None:
    import gridkit.versions as gv

    real = gv.write_layer

    def broken(frame, path, layer, **kw):
        if layer == "units":
            raise OSError(28, "No space left on device")
        return real(frame, path, layer, **kw)

    monkeypatch.setattr(gv, "write_layer", broken)
    draft = city().drop(index=[150])
    with pytest.raises(VersionWriteError, match="writing version 2 failed.*No space left"):
        publish(draft, ws, validate=False)
    monkeypatch.setattr(gv, "write_layer", real)
    assert versions(ws)["version"].tolist() == [1]
    # the history rows left by the failed write do not leak into the next version
    version, _ = publish(draft, ws, validate=False)
    assert version == 2 and len(read_version(ws)) == 199
    assert len(read_version(ws, 1)) == 200


# ------------------------------------------------------------------ the command line


def test_cli_dry_run_guard_confirm_and_restore(ws: Path, tmp_path: Path, capsys) -> None:
    from gridkit.cli import main

    draft = write_layer(river_grid(), tmp_path / "river.gpkg", "units")
    assert main(["publish", str(draft), "-w", str(ws), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "needs confirmation" in out and "180/200 (90%) -> 0/34 (0%)" in out
    assert versions(ws)["version"].tolist() == [1]

    assert main(["publish", str(draft), "-w", str(ws)]) == 1
    captured = capsys.readouterr()
    assert "needs confirmation" in captured.err and "--confirm" in captured.err
    assert versions(ws)["version"].tolist() == [1]

    assert main(["publish", str(draft), "-w", str(ws), "--confirm"]) == 0
    assert main(["publish", "--restore", "1", "-w", str(ws), "--confirm"]) == 0
    assert "published version 3" in capsys.readouterr().out
    assert versions(ws)["restored_from"].tolist()[-1] == 1
    assert sorted(read_version(ws)["unit_id"]) == sorted(city()["unit_id"])
    assert main(["publish", str(draft), "--restore", "1", "-w", str(ws)]) == 1
    assert "not both" in capsys.readouterr().err


def test_cli_redraw_of_one_area(ws: Path, tmp_path: Path) -> None:
    from gridkit.cli import main

    units = city()
    draft = units[units["admin_code"].str.startswith("430203")].drop(index=[150])
    path = write_layer(draft, tmp_path / "d.gpkg", "units")
    assert main(["publish", str(path), "-w", str(ws), "--area", "430203"]) == 0
    assert len(read_version(ws)) == 199 and versions(ws)["area"].tolist()[-1] == "430203"
