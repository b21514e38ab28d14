"""The store, on both backends: rows of several layers in one transaction; the
GeoPackage readable by GDAL, the PostGIS tables by SQL.

Every test runs on a GeoPackage workspace and on a PostGIS database (a throwaway
cluster: tests/postgis_cluster.py; skipped without PostgreSQL, failing under CI).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from gridkit.errors import GridkitError, LayerNotFoundError
from gridkit.io import read_layer, write_layer
from gridkit.store import open_store, upgrade
from tests import postgis_cluster

#: what a failed write raises, on either backend
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error,)
try:
    import psycopg

    DB_ERRORS = (sqlite3.Error, psycopg.Error, GridkitError)
except ImportError:
    pass


def _layers() -> dict[str, pd.DataFrame]:
    return {
        "reports": gpd.GeoDataFrame(
            {
                "report_id": ["R1"],
                "category": ["floating_garbage"],
                "reported_at": pd.to_datetime(["2026-05-01T08:00:00Z"]),
                "extensions": [0],
                "score": [1.5],
                "urgent": [False],
            },
            geometry=[shapely.Point(113.0, 27.7)],
            crs=4326,
        ),
        "report_events": pd.DataFrame(
            {"report_id": ["R1"], "to_status": ["reported"], "note": ["首报"]}
        ),
    }


@pytest.fixture(params=["gpkg", "postgis"])
def workspace(request, tmp_path: Path) -> Path | str:
    """The same two layers in a GeoPackage file, or in a PostGIS database (its URL)."""
    if request.param == "gpkg":
        path = tmp_path / "ws.gpkg"
        for name, df in _layers().items():
            write_layer(df, path, name)
        return path
    url = postgis_cluster.new_database()
    upgrade(url)
    store = open_store(url)
    for name, df in _layers().items():
        store.save_layer(name, df)
    store.close()
    return url


def _is_file(workspace: Path | str) -> bool:
    return isinstance(workspace, Path)


def _fresh(workspace: Path | str, layer: str) -> pd.DataFrame:
    """The layer as stored, read by a new reader (GDAL for a file, a new store else)."""
    if _is_file(workspace):
        return read_layer(workspace, layer, check=False)
    return open_store(workspace).read(layer)


def _bbox_ids(workspace: Path | str, layer: str, box: tuple[float, ...]) -> list[str]:
    """Ids of the rows the spatial index finds in a lon/lat box (R-tree or GiST)."""
    if _is_file(workspace):
        return pyogrio.read_dataframe(workspace, layer=layer, bbox=box)["report_id"].tolist()
    with psycopg.connect(str(workspace)) as con:
        con.execute("SET enable_seqscan = off")  # the GiST index answers, not a scan
        rows = con.execute(
            f"SELECT report_id FROM {layer} WHERE geometry && ST_MakeEnvelope(%s, %s, %s, %s, "
            "4326) ORDER BY fid",
            box,
        ).fetchall()
    return [r[0] for r in rows]


def _reports(ids: list[str], xs: list[float]) -> gpd.GeoDataFrame:
    n = len(ids)
    return gpd.GeoDataFrame(
        {
            "report_id": ids,
            "category": ["河面漂浮物"] * n,
            "reported_at": pd.to_datetime(["2026-05-02T09:30:15.250Z"] * n),
            "extensions": pd.array([2] + [None] * (n - 1), dtype="Int64"),
            "score": [float("nan")] + [2.0] * (n - 1),
            "urgent": [True] * n,
        },
        geometry=shapely.points([(x, 27.75) for x in xs]),
        crs=4326,
    )


def test_append_many_is_read_back_by_gdal_with_types_index_and_counts(workspace: Path) -> None:
    store = open_store(workspace)
    events = pd.DataFrame({"note": ["交办", "核查"], "report_id": ["R2", "R3"]})
    store.append_many({"reports": _reports(["R2", "R3"], [113.2, 113.3]), "report_events": events})
    back = _fresh(workspace, "reports")
    assert back["report_id"].tolist() == ["R1", "R2", "R3"]
    assert back["category"].iloc[1] == "河面漂浮物"
    assert back["reported_at"].iloc[2] == pd.Timestamp("2026-05-02T09:30:15.250Z")
    assert back["extensions"].iloc[1] == 2 and pd.isna(back["extensions"].iloc[2])
    assert pd.isna(back["score"].iloc[1]) and back["score"].iloc[2] == 2.0
    assert back["urgent"].tolist() == [False, True, True]
    assert back.geometry.iloc[2].equals(shapely.Point(113.3, 27.75))
    # the spatial index is maintained: a bbox read finds the new rows
    assert _bbox_ids(workspace, "reports", (113.25, 27.7, 113.35, 27.8)) == ["R3"]
    if _is_file(workspace):
        # feature counts and extent in the GeoPackage metadata follow
        assert pyogrio.read_info(workspace, layer="reports")["features"] == 3
        with closing(sqlite3.connect(workspace)) as con, con:
            max_x = con.execute(
                "SELECT max_x FROM gpkg_contents WHERE table_name = 'reports'"
            ).fetchone()[0]
        assert max_x == pytest.approx(113.3)
    ev = _fresh(workspace, "report_events")
    assert ev["note"].tolist() == ["首报", "交办", "核查"]  # matched by column name
    # the store's own copy follows its writes; a fresh store reads the same rows
    assert store.read("reports")["report_id"].tolist() == ["R1", "R2", "R3"]
    assert open_store(workspace).read("report_events")["report_id"].tolist() == ["R1", "R2", "R3"]


def test_append_many_is_one_transaction(workspace: Path) -> None:
    store = open_store(workspace)
    bad = pd.DataFrame({"report_id": ["R9"], "note": [["not", "storable"]]})
    with pytest.raises(DB_ERRORS):
        store.append_many({"reports": _reports(["R2"], [113.2]), "report_events": bad})
    # the report written before the failing events is rolled back with them
    assert _fresh(workspace, "reports")["report_id"].tolist() == ["R1"]
    if _is_file(workspace):
        assert pyogrio.read_info(workspace, layer="reports")["features"] == 1
    store.append("reports", _reports(["R2"], [113.2]))  # the store still works
    assert open_store(workspace).read("reports")["report_id"].tolist() == ["R1", "R2"]


def test_update_and_its_events_are_one_transaction(workspace: Path) -> None:
    store = open_store(workspace)
    bad = pd.DataFrame({"report_id": ["R1"], "note": [["not", "storable"]]})
    with pytest.raises(DB_ERRORS):
        store.update(
            "reports", "report_id", "R1", {"category": "sewage"}, append={"report_events": bad}
        )
    # the update is rolled back with the failing events, in the file and in the store
    assert _fresh(workspace, "reports")["category"].tolist() == ["floating_garbage"]
    assert store.read("reports")["category"].tolist() == ["floating_garbage"]
    event = pd.DataFrame({"report_id": ["R1"], "to_status": ["assigned"], "note": ["交办"]})
    with pytest.raises(LayerNotFoundError):  # no such row: the events are not kept either
        store.update(
            "reports", "report_id", "R9", {"category": "x"}, append={"report_events": event}
        )
    assert len(_fresh(workspace, "report_events")) == 1
    store.update(
        "reports", "report_id", "R1", {"category": "sewage"}, append={"report_events": event}
    )
    fresh = open_store(workspace)
    assert fresh.read("reports")["category"].tolist() == ["sewage"]
    assert fresh.read("report_events")["note"].tolist() == ["首报", "交办"]
    assert store.read("report_events")["note"].tolist() == ["首报", "交办"]


def test_append_many_adds_missing_columns_and_creates_layers(workspace: Path) -> None:
    store = open_store(workspace)
    rows = _reports(["R2"], [113.2]).assign(idempotency_key="phone-1")
    store.append_many({"reports": rows, "patrols": pd.DataFrame({"patrol_id": ["P1"]})})
    back = open_store(workspace)
    assert back.read("reports")["idempotency_key"].tolist()[-1] == "phone-1"
    assert back.read("patrols")["patrol_id"].tolist() == ["P1"]


def test_empty_and_missing_geometries_round_trip(workspace: Path) -> None:
    store = open_store(workspace)
    rows = _reports(["R2", "R3", "R4"], [113.2, 113.3, 113.4])
    rows.loc[1, "geometry"] = None
    rows.loc[2, "geometry"] = shapely.box(113.4, 27.7, 113.5, 27.8)
    store.append("reports", rows)
    back = _fresh(workspace, "reports")
    assert back.geometry.iloc[2] is None
    assert back.geometry.iloc[3].equals(shapely.box(113.4, 27.7, 113.5, 27.8))
    # polygon envelope in the R-tree / GiST index
    assert _bbox_ids(workspace, "reports", (113.45, 27.71, 113.46, 27.72)) == ["R4"]


def test_many_rows_take_the_vectorised_path_with_the_same_encoding(workspace: Path) -> None:
    store = open_store(workspace)
    n = 150
    rows = _reports([f"R{i}" for i in range(2, 2 + n)], [113.0 + i * 1e-3 for i in range(n)])
    rows.loc[3, "reported_at"] = pd.NaT
    store.append("reports", rows)
    back = _fresh(workspace, "reports").iloc[1:].reset_index(drop=True)
    assert len(back) == n
    assert pd.isna(back["reported_at"].iloc[3])
    assert (back["reported_at"].drop(index=3) == pd.Timestamp("2026-05-02T09:30:15.250Z")).all()
    assert back["category"].eq("河面漂浮物").all()


def test_update_keeps_the_store_copy_equal_to_the_file(workspace: Path) -> None:
    store = open_store(workspace)
    store.append("reports", _reports(["R2", "R3"], [113.2, 113.3]))
    before = store.read("reports")
    store.update(
        "reports",
        "report_id",
        "R2",
        {"category": "已处理", "reported_at": pd.Timestamp("2026-06-01T10:00:00Z"), "score": 9.5},
    )
    mine = store.read("reports")
    fresh = open_store(workspace).read("reports")
    assert mine is not before  # readers holding the old copy keep it unchanged
    assert before.loc[before["report_id"] == "R2", "category"].item() == "河面漂浮物"
    for frame in (mine, fresh):
        row = frame[frame["report_id"] == "R2"].iloc[0]
        assert row["category"] == "已处理" and row["score"] == 9.5
        assert row["reported_at"] == pd.Timestamp("2026-06-01T10:00:00Z")
    assert mine["report_id"].tolist() == fresh["report_id"].tolist()
    with pytest.raises(LayerNotFoundError):
        store.update("reports", "report_id", "R404", {"category": "x"})


def test_appends_without_reads_between_are_read_back_whole_and_in_order(
    workspace: Path,
) -> None:
    # appended rows wait as frames of their own until a read joins them; the joined
    # copy must be the file's rows in the file's order, however many batches waited
    store = open_store(workspace)
    store.read("reports")  # held from here on
    ids = [f"R{k}" for k in range(2, 2 + 70 * 2)]  # 70 batches: past the join at 64
    for k in range(0, len(ids), 2):
        store.append("reports", _reports(ids[k : k + 2], [113.1, 113.2]))
    store.update("reports", "report_id", "R5", {"category": "已处理"})
    mine = store.read("reports")
    fresh = open_store(workspace).read("reports")
    assert mine["report_id"].tolist() == fresh["report_id"].tolist() == ["R1", *ids]
    assert mine.loc[mine["report_id"] == "R5", "category"].item() == "已处理"
    assert isinstance(mine, gpd.GeoDataFrame) and mine.crs.equals(fresh.crs)


def test_writes_by_other_processes_are_noticed(workspace: Path, monkeypatch) -> None:
    """A server's store sees what others wrote (a CLI publish rewriting a layer through
    GDAL, another writer appending): within SYNC_S, here 0 for the test. Its own writes
    are not taken for someone else's."""
    import subprocess
    import sys

    import gridkit.store.gpkg as store_module

    monkeypatch.setattr(store_module, "SYNC_S", 0.0)
    server = open_store(workspace)
    assert server.read("reports")["report_id"].tolist() == ["R1"]
    gen = server.generation("reports")
    server.append("reports", _reports(["R2"], [113.2]))
    assert server.generation("reports") == gen + 1  # once: its own write, not an outsider's
    assert server.generation("reports") == gen + 1
    # another process appends through its own store
    script = (
        "import sys, geopandas as gpd, shapely; from gridkit.store import open_store; "
        "open_store(sys.argv[1]).append('reports', gpd.GeoDataFrame({'report_id': ['R3'], "
        "'category': ['x']}, geometry=[shapely.Point(113.3, 27.7)], crs=4326))"
    )
    subprocess.run([sys.executable, "-c", script, str(workspace)], check=True)
    _soon(lambda: server.read("reports")["report_id"].tolist() == ["R1", "R2", "R3"])
    # and a layer rewritten whole (by GDAL, as `gridkit publish` does), or a new one
    rewrite = (
        "import sys, pandas as pd; from gridkit.io import write_layer; "
        "from gridkit.store import open_store; "
        "e = pd.DataFrame({'report_id': ['R9'], 'to_status': ['closed'], 'note': ['改写']}); "
        "s = None if sys.argv[1].endswith('.gpkg') else open_store(sys.argv[1]); "
        "[write_layer(e, sys.argv[1], n) if s is None else s.save_layer(n, e) "
        "for n in ('reports', 'report_events', 'notes')]"
    )
    subprocess.run([sys.executable, "-c", rewrite, str(workspace)], check=True)
    _soon(lambda: server.read("report_events")["note"].tolist() == ["改写"])
    assert "notes" in server.layers()


def _soon(check, within_s: float = 2.0) -> None:
    """``check()`` becomes true within the time another process's write is noticed
    (the GeoPackage's SYNC_S, patched to 0, or PostGIS's NOTIFY, a few ms)."""
    import time

    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "another process's write was not noticed"
        time.sleep(0.01)


def test_own_write_does_not_hide_another_process_write(workspace: Path) -> None:
    """Another process appends, then this store appends to the same layer before it
    looked again: its own commit must not pass the other's rows off as seen."""
    import subprocess
    import sys

    from gridkit.store import ConcurrentWriteError

    server = open_store(workspace)
    assert server.read("reports")["report_id"].tolist() == ["R1"]
    script = (
        "import sys, geopandas as gpd, shapely; from gridkit.store import open_store; "
        "open_store(sys.argv[1]).append('reports', gpd.GeoDataFrame({'report_id': "
        "[sys.argv[2]], 'category': ['x']}, geometry=[shapely.Point(113.3, 27.7)], crs=4326))"
    )
    subprocess.run([sys.executable, "-c", script, str(workspace), "EXT"], check=True)
    server.append("reports", _reports(["R2"], [113.2]))  # within the same second
    assert server.read("reports")["report_id"].tolist() == ["R1", "EXT", "R2"]
    # with if_unchanged, a write over someone else's change writes nothing
    subprocess.run([sys.executable, "-c", script, str(workspace), "EXT2"], check=True)
    with pytest.raises(ConcurrentWriteError, match="reports"):
        server.append_many({"reports": _reports(["R3"], [113.1])}, if_unchanged=True)
    assert server.read("reports")["report_id"].tolist() == ["R1", "EXT", "R2", "EXT2"]


def test_attribute_tables_written_elsewhere_are_noticed(workspace: Path, monkeypatch) -> None:
    import subprocess
    import sys

    import gridkit.store.gpkg as store_module

    monkeypatch.setattr(store_module, "SYNC_S", 0.0)
    server = open_store(workspace)
    script = (
        "import sys, pandas as pd; from gridkit.io import write_layer; "
        "from gridkit.store import open_store; "
        "v = pd.DataFrame({'version': [int(sys.argv[2])]}); a = sys.argv[2] != '1'; "
        "write_layer(v, sys.argv[1], 'versions', append=a) if sys.argv[1].endswith('.gpkg') "
        "else open_store(sys.argv[1]).save_layer('versions', v, append=a)"
    )
    subprocess.run([sys.executable, "-c", script, str(workspace), "1"], check=True)
    _soon(lambda: "versions" in server.layers())
    assert server.read("versions")["version"].tolist() == [1]
    subprocess.run([sys.executable, "-c", script, str(workspace), "2"], check=True)
    _soon(lambda: server.read("versions")["version"].tolist() == [1, 2])


def test_the_interface_holds_persistence_only() -> None:
    """Keys and grid versions are services over the store, not part of its interface;
    the store does not import gridkit.versions."""
    import ast
    import inspect

    import gridkit.store.base
    import gridkit.store.gpkg
    from gridkit.store import GeoPackageStore, Store

    for cls in (Store, GeoPackageStore):
        methods = {n for n in dir(cls) if not n.startswith("_")}
        assert not methods & {"add_key", "add_keys", "find_key", "revoke_key", "keys", "publish"}
        assert not methods & {"versions"}
    for module in (gridkit.store.base, gridkit.store.gpkg):
        tree = ast.parse(inspect.getsource(module))
        imported = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        } | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "gridkit.versions" not in imported and "api" not in imported


def test_save_layer_and_exclusive(workspace: Path, monkeypatch) -> None:
    """A whole layer written through GDAL is read again at once by this store, and is
    not taken for another process's write; exclusive() lets reads and writes in."""
    import gridkit.store.gpkg as store_module

    monkeypatch.setattr(store_module, "SYNC_S", 0.0)
    store = open_store(workspace)
    store.read("reports")
    with store.exclusive():
        n = len(store.read("reports"))
        store.save_layer("reports", _reports(["A", "B", "C"], [113.1, 113.2, 113.3]))
        store.save_layer("reports", _reports(["D"], [113.4]), append=True)
    assert len(store.read("reports")) == 4 != n
    gen = store.generation("reports")
    assert store.generation("reports") == gen  # its own write is no news
    assert open_store(workspace).read("reports")["report_id"].tolist() == ["A", "B", "C", "D"]


def test_service_tables_are_read_at_each_call_and_written_all_or_none(workspace: Path) -> None:
    from gridkit.store import Column, RecordTable

    table = RecordTable(
        "gridkit_test_notes",
        (Column("note_id"), Column("text", required=True), Column("n", int, default=0)),
        key="note_id",
    )
    store = open_store(workspace)
    assert store.records(table).columns.tolist() == ["note_id", "text", "n"]
    assert store.set_records(table, {"text": "x"}, where={"note_id": "N1"}) == 0
    store.add_records(table, [{"note_id": "N1", "text": "a"}])
    with pytest.raises(DB_ERRORS):  # a duplicate key: nothing written
        store.add_records(table, [{"note_id": "N2", "text": "b"}, {"note_id": "N1", "text": "c"}])
    other = open_store(workspace)  # another process's view: no cache in between
    other.set_records(table, {"text": "z"}, where={"note_id": "N1"})
    assert store.records(table).to_dict("records") == [{"note_id": "N1", "text": "z", "n": 0}]
    assert "gridkit_test_notes" not in store.layers()
    with pytest.raises(Exception, match="no column"):
        store.records(table, where={"note_id; DROP TABLE x": 1})
